/* SPDX-License-Identifier: MIT */
/* Unit tests: fnvm_stack_build (the initial process stack) and the PRNG
 * fnvm_rng_seed/fnvm_rng_next (src/fnvm/stack.c). */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fnvm/fnvm_int.h"

/* A writable string (string literals are const with -Wwrite-strings). */
#define S(x) ((char[]){x})

#define TOP 0x4000000ull /* 64 MiB: where program.c puts it for the default size */

/* A built stack, read back as the program would read it. */
struct view {
	const uint8_t *buf;
	uint64_t lo, top, sp;
};

static uint64_t rd64(const struct view *v, uint64_t a)
{
	if (a < v->sp || a > v->top - 8)
		fail_msg("read of %#llx outside the stack [%#llx, %#llx)", (unsigned long long)a,
			 (unsigned long long)v->sp, (unsigned long long)v->top);
	uint64_t x;
	memcpy(&x, v->buf + (a - v->lo), 8);
	return x;
}

/* The string at @a; it must be NUL-terminated inside the stack. */
static const char *rdstr(const struct view *v, uint64_t a)
{
	if (a < v->sp || a >= v->top)
		fail_msg("string at %#llx outside the stack", (unsigned long long)a);
	const char *s = (const char *)(v->buf + (a - v->lo));
	if (!memchr(s, 0, v->top - a))
		fail_msg("string at %#llx is not terminated", (unsigned long long)a);
	return s;
}

static size_t count(char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

/* Walk the stack at v->sp and check it against the inputs. Returns the
 * address just past the auxiliary vector. */
static uint64_t check_stack(const struct view *v, char *const *argv, char *const *envp,
			    const uint64_t *aux, size_t nauxv, const uint8_t rnd16[16],
			    const char *execfn)
{
	size_t argc = count(argv), envc = count(envp);
	assert_int_equal(v->sp % 16, 0);
	assert_true(v->sp >= v->lo && v->sp < v->top);
	uint64_t a = v->sp;
	assert_int_equal(rd64(v, a), argc);
	a += 8;
	size_t ncap = argc + envc + 3;
	uint64_t *strs = calloc(ncap, sizeof(*strs));
	size_t nstr = 0;
#define ADD_STR(x)                                                                                 \
	do {                                                                                       \
		assert_true(nstr < ncap);                                                          \
		strs[nstr++] = (x);                                                                \
	} while (0)
	assert_non_null(strs);
	for (size_t i = 0; i < argc; i++, a += 8) {
		uint64_t p = rd64(v, a);
		assert_string_equal(rdstr(v, p), argv[i]);
		ADD_STR(p);
	}
	assert_int_equal(rd64(v, a), 0);
	a += 8;
	for (size_t i = 0; i < envc; i++, a += 8) {
		uint64_t p = rd64(v, a);
		assert_string_equal(rdstr(v, p), envp[i]);
		ADD_STR(p);
	}
	assert_int_equal(rd64(v, a), 0);
	a += 8;
	/* auxv: the caller's pairs in order, then AT_RANDOM, AT_EXECFN,
	 * AT_PLATFORM (in any order), then AT_NULL */
	for (size_t i = 0; i < nauxv; i++, a += 16) {
		assert_int_equal(rd64(v, a), aux[2 * i]);
		assert_int_equal(rd64(v, a + 8), aux[2 * i + 1]);
	}
	int have_random = 0, have_execfn = 0, have_platform = 0;
	for (;; a += 16) {
		uint64_t type = rd64(v, a), val = rd64(v, a + 8);
		if (type == AT_NULL) {
			assert_int_equal(val, 0);
			a += 16;
			break;
		}
		if (type == AT_RANDOM) {
			have_random++;
			/* points to the 16 random bytes, inside the stack */
			assert_true(val >= v->sp && val + 16 <= v->top);
			assert_memory_equal(v->buf + (val - v->lo), rnd16, 16);
			ADD_STR(val);
		} else if (type == AT_EXECFN) {
			have_execfn++;
			assert_string_equal(rdstr(v, val), execfn);
			ADD_STR(val);
		} else if (type == AT_PLATFORM) {
			have_platform++;
			assert_string_equal(rdstr(v, val), "x86_64");
			ADD_STR(val);
		} else {
			fail_msg("unexpected auxv entry %llu", (unsigned long long)type);
		}
	}
	assert_int_equal(have_random, 1);
	assert_int_equal(have_execfn, 1);
	assert_int_equal(have_platform, 1);
	/* all strings (and the random bytes) live above the vectors, below the
	 * 8-byte end marker, and do not overlap one another */
	for (size_t i = 0; i < nstr; i++) {
		assert_true(strs[i] >= a);
		assert_true(strs[i] < v->top - 8);
	}
	assert_int_equal(rd64(v, v->top - 8), 0);
	free(strs);
#undef ADD_STR
	return a;
}

static void test_basic(void **state)
{
	(void)state;
	char *argv[] = {S("/bin/prog"), S("hello world"), S(""), S("--flag=x"), NULL};
	char *envp[] = {S("A=1"), S("PATH=/bin:/usr/bin"), NULL};
	const uint64_t aux[] = {AT_PAGESZ, 4096, AT_ENTRY, 0x401000, AT_PHNUM, 4, AT_UID, 1000};
	uint8_t rnd16[16];
	for (int i = 0; i < 16; i++)
		rnd16[i] = (uint8_t)(0xf0 ^ i);
	uint64_t cap = 64 * 1024;
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	memset(buf, 0xcc, cap);
	uint64_t sp =
	    fnvm_stack_build(buf, cap, TOP, argv, envp, aux, 4, rnd16, "/bin/prog-execfn");
	assert_int_not_equal(sp, 0);
	struct view v = {.buf = buf, .lo = TOP - cap, .top = TOP, .sp = sp};
	check_stack(&v, argv, envp, aux, 4, rnd16, "/bin/prog-execfn");
	/* the strings are separate copies: argv[2] (empty) and argv[1] differ */
	uint64_t p1 = rd64(&v, sp + 16), p2 = rd64(&v, sp + 24);
	assert_int_not_equal(p1, p2);
	/* all of it is small: a few hundred bytes */
	assert_true(TOP - sp < 1024);
	free(buf);
}

static void test_empty_vectors(void **state)
{
	(void)state;
	char *none[] = {NULL};
	uint8_t rnd16[16] = {1, 2, 3};
	uint64_t cap = 4096;
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	uint64_t sp = fnvm_stack_build(buf, cap, TOP, none, none, NULL, 0, rnd16, "");
	assert_int_not_equal(sp, 0);
	struct view v = {.buf = buf, .lo = TOP - cap, .top = TOP, .sp = sp};
	check_stack(&v, none, none, NULL, 0, rnd16, "");
	free(buf);
}

/* RSP is 16-byte aligned whatever the parity of the vector and the lengths
 * of the strings. */
static void test_alignment(void **state)
{
	(void)state;
	static char names[8][24];
	uint8_t rnd16[16];
	memset(rnd16, 0x42, 16);
	uint64_t cap = 8192;
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	const uint64_t aux[] = {AT_PAGESZ, 4096, AT_CLKTCK, 100, AT_FLAGS, 0};
	for (int argc = 0; argc <= 6; argc++)
		for (int envc = 0; envc <= 3; envc++)
			for (int slen = 0; slen < 18; slen++)
				for (size_t nauxv = 0; nauxv <= 3; nauxv++) {
					char *argv[8], *envp[8];
					for (int i = 0; i < 8; i++) {
						memset(names[i], 'a' + i, 23);
						names[i][(slen + i * 3) % 23] = 0;
					}
					for (int i = 0; i < argc; i++)
						argv[i] = names[i];
					argv[argc] = NULL;
					for (int i = 0; i < envc; i++)
						envp[i] = names[7 - i];
					envp[envc] = NULL;
					uint64_t top =
					    TOP - (uint64_t)slen * 16; /* aligned tops only */
					uint64_t sp =
					    fnvm_stack_build(buf, cap, top, argv, envp, aux, nauxv,
							     rnd16, names[slen % 8]);
					assert_int_not_equal(sp, 0);
					struct view v = {
					    .buf = buf, .lo = top - cap, .top = top, .sp = sp};
					check_stack(&v, argv, envp, aux, nauxv, rnd16,
						    names[slen % 8]);
				}
	free(buf);
}

/* Every capacity from 0 up: too small a buffer gives 0, a large enough one
 * the same stack whatever its size, and nothing is ever written outside
 * the buffer. The buffer sits between guard zones and is placed so that
 * its end (the stack top) is 16-byte aligned, as guest memory would be.
 * Both parities of the vector's word count are tried: an odd count needs
 * 8 bytes of padding below the strings (this once wrote below the buffer
 * when the strings ended 0..15 bytes above its bottom). */
static void check_every_cap(char *const *argv, char *const *envp)
{
	const uint64_t aux[] = {AT_PAGESZ, 4096};
	uint8_t rnd16[16];
	memset(rnd16, 7, 16);
	uint64_t refcap = 4096;
	uint8_t *ref = malloc(refcap);
	assert_non_null(ref);
	memset(ref, 0xcc, refcap); /* alignment gaps are not written */
	uint64_t sp = fnvm_stack_build(ref, refcap, TOP, argv, envp, aux, 1, rnd16, "prog");
	assert_int_not_equal(sp, 0);
	uint64_t need = TOP - sp;
	assert_int_equal(need % 16, 0);
	const uint64_t guard = 256;
	for (uint64_t cap = 0; cap <= need + 64; cap++) {
		uint64_t total = guard + cap + guard + 16;
		uint8_t *mem = malloc(total);
		assert_non_null(mem);
		memset(mem, 0xa5, total);
		/* buf + cap 16-byte aligned, with at least `guard` bytes around */
		uintptr_t end = ((uintptr_t)mem + guard + cap + 15) & ~(uintptr_t)15;
		uint8_t *buf = (uint8_t *)end - cap;
		memset(buf, 0xcc, cap);
		uint64_t got = fnvm_stack_build(buf, cap, TOP, argv, envp, aux, 1, rnd16, "prog");
		int outside = 0;
		for (uint8_t *g = mem; g < buf; g++)
			outside |= *g != 0xa5;
		for (uint8_t *g = buf + cap; g < mem + total; g++)
			outside |= *g != 0xa5;
		int same =
		    cap >= need && memcmp(buf + (cap - need), ref + (refcap - need), need) == 0;
		free(mem);
		if (outside)
			fail_msg("cap %llu: wrote outside the buffer (sp %#llx)",
				 (unsigned long long)cap, (unsigned long long)got);
		if (cap < need && got != 0)
			fail_msg("cap %llu < needed %llu but got sp %#llx", (unsigned long long)cap,
				 (unsigned long long)need, (unsigned long long)got);
		if (cap >= need && (got != sp || !same))
			fail_msg("cap %llu >= needed %llu: sp %#llx (want %#llx), same contents %d",
				 (unsigned long long)cap, (unsigned long long)need,
				 (unsigned long long)got, (unsigned long long)sp, same);
	}
	free(ref);
}

static void test_every_cap(void **state)
{
	(void)state;
	/* argc + envc odd: an even number of vector words */
	char *argv1[] = {S("prog"), S("a"), S("bb"), S("ccc"), NULL};
	char *envp1[] = {S("K=V"), S("LONGER=vvvvvvvvvvvvvvvvvvvvvvv"), S("Z=z"), NULL};
	check_every_cap(argv1, envp1);
	/* argc + envc even: odd word count, 8 bytes of padding */
	char *envp2[] = {S("K=V"), S("LONGER=vvvvvvvvvvvvvvvvvvvvvvv"), NULL};
	check_every_cap(argv1, envp2);
	char *argv3[] = {S("prog"), S("a"), S("bb"), NULL};
	char *envp3[] = {S("K=V"), NULL};
	check_every_cap(argv3, envp3);
	char *argv4[] = {S("p"), NULL};
	char *envp4[] = {NULL};
	check_every_cap(argv4, envp4);
}

static void test_too_small(void **state)
{
	(void)state;
	char *envp[] = {S("K=V"), NULL};
	const uint64_t aux[] = {AT_PAGESZ, 4096};
	uint8_t rnd16[16];
	memset(rnd16, 7, 16);
	uint64_t refcap = 4096;
	uint8_t *ref = malloc(refcap);
	assert_non_null(ref);
	/* a single string larger than the buffer */
	static char huge[10000];
	memset(huge, 'h', sizeof(huge) - 1);
	char *argv2[] = {S("prog"), huge, NULL};
	assert_int_equal(fnvm_stack_build(ref, refcap, TOP, argv2, envp, aux, 1, rnd16, "prog"), 0);
	/* strings fit but the vector does not: many empty arguments */
	char *many[600];
	static char empty[] = "";
	for (int i = 0; i < 599; i++)
		many[i] = empty;
	many[599] = NULL;
	assert_int_equal(fnvm_stack_build(ref, refcap, TOP, many, envp, aux, 1, rnd16, "prog"), 0);
	uint8_t *big = malloc(16384);
	assert_non_null(big);
	uint64_t sp = fnvm_stack_build(big, 16384, TOP, many, envp, aux, 1, rnd16, "prog");
	assert_int_not_equal(sp, 0);
	struct view v = {.buf = big, .lo = TOP - 16384, .top = TOP, .sp = sp};
	check_stack(&v, many, envp, aux, 1, rnd16, "prog");
	free(big);
	free(ref);
}

/* ------------------------------------------------------------ PRNG */

static void test_rng_reference(void **state)
{
	(void)state;
	uint64_t s[4];
	/* seeding is splitmix64: its well-known first outputs for seed 0 */
	fnvm_rng_seed(s, 0);
	assert_int_equal(s[0], 0xe220a8397b1dcdafull);
	assert_int_equal(s[1], 0x6e789e6aa1b965f4ull);
	assert_int_equal(s[2], 0x06c45d188009454full);
	assert_int_equal(s[3], 0xf88bb8a8724c81ecull);
	/* xoshiro256** outputs (computed with an independent implementation) */
	static const uint64_t want0[] = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull,
					 0x1a5f849d4933e6e0ull, 0x6aa594f1262d2d2cull};
	for (int i = 0; i < 4; i++)
		assert_int_equal(fnvm_rng_next(s), want0[i]);
	static const uint64_t want42[] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
					  0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
	fnvm_rng_seed(s, 42);
	for (int i = 0; i < 4; i++)
		assert_int_equal(fnvm_rng_next(s), want42[i]);
}

static void test_rng_determinism(void **state)
{
	(void)state;
	static const uint64_t seeds[] = {0, 1, 2, 42, 0x6e75626973415452ull, UINT64_MAX};
	for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
		uint64_t a[4], b[4], c[4];
		fnvm_rng_seed(a, seeds[k]);
		fnvm_rng_seed(b, seeds[k]);
		assert_false(a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0);
		fnvm_rng_seed(c, seeds[k] + 1);
		int differ = 0, ones = 0;
		for (int i = 0; i < 10000; i++) {
			uint64_t x = fnvm_rng_next(a), y = fnvm_rng_next(b), z = fnvm_rng_next(c);
			assert_int_equal(x, y);
			differ += x != z;
			ones += __builtin_popcountll(x);
		}
		/* neighbouring seeds give unrelated streams */
		assert_true(differ > 9990);
		/* about half the bits set: 320000 expected, sd ~ 400 */
		assert_true(ones > 316000 && ones < 324000);
		assert_memory_equal(a, b, sizeof(a));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),	    cmocka_unit_test(test_empty_vectors),
	    cmocka_unit_test(test_alignment),	    cmocka_unit_test(test_every_cap),
	    cmocka_unit_test(test_too_small),	    cmocka_unit_test(test_rng_reference),
	    cmocka_unit_test(test_rng_determinism),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
