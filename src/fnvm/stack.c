/* SPDX-License-Identifier: MIT */
/* The initial process stack (System V x86-64 ABI, as Linux lays it out) and the PRNG. */
#include <elf.h>
#include <string.h>

#include "fnvm_int.h"

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void fnvm_rng_seed(uint64_t s[4], uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		s[i] = z ^ (z >> 31);
	}
}

uint64_t fnvm_rng_next(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

struct sb {
	uint8_t *buf;
	uint64_t lo, top, pos; /* buf represents [lo, top) */
	int overflow;
};

static uint64_t push(struct sb *b, const void *data, uint64_t len)
{
	if (b->overflow || b->pos - b->lo < len) {
		b->overflow = 1;
		return 0;
	}
	b->pos -= len;
	memcpy(b->buf + (b->pos - b->lo), data, len);
	return b->pos;
}

static uint64_t push_str(struct sb *b, const char *s)
{
	return push(b, s, strlen(s) + 1);
}

uint64_t fnvm_stack_build(uint8_t *buf, uint64_t cap, uint64_t top, char *const *argv,
			  char *const *envp, const uint64_t *auxv_pairs, size_t nauxv,
			  const uint8_t random16[16], const char *execfn)
{
	struct sb b = {.buf = buf, .lo = top - cap, .top = top, .pos = top};
	size_t argc = 0, envc = 0;
	while (argv[argc])
		argc++;
	while (envp[envc])
		envc++;
	uint64_t zero = 0;
	push(&b, &zero, 8); /* end marker, as Linux */
	uint64_t a_execfn = push_str(&b, execfn);
	uint64_t a_platform = push_str(&b, "x86_64");
	uint64_t a_random = push(&b, random16, 16);
	/* String addresses, then the vector. Two passes keep this allocation-free:
	 * strings are pushed in reverse so argv[0] ends up lowest. */
	for (size_t i = envc; i-- > 0;)
		push_str(&b, envp[i]);
	for (size_t i = argc; i-- > 0;)
		push_str(&b, argv[i]);
	if (b.overflow)
		return 0;
	uint64_t strs_lo = b.pos;
	size_t extra = 3; /* AT_RANDOM, AT_EXECFN, AT_PLATFORM */
	size_t words = 1 + argc + 1 + envc + 1 + 2 * (nauxv + extra + 1);
	/* align so that RSP (argc) ends 16-byte aligned; check before moving */
	uint64_t pos = b.pos & ~15ull, pad = (words & 1) ? 8 : 0;
	if (pos < b.lo || pos - b.lo < pad + words * 8)
		return 0;
	b.pos = pos - pad;
	uint64_t sp = b.pos - words * 8;
	/* stored word by word with memcpy: buf need not be 8-byte aligned */
	uint8_t *w = b.buf + (sp - b.lo);
	size_t k = 0;
#define PUT(v)                                                                                     \
	do {                                                                                       \
		uint64_t v_ = (v);                                                                 \
		memcpy(w + 8 * k++, &v_, 8);                                                       \
	} while (0)
	PUT(argc);
	uint64_t a = strs_lo;
	for (size_t i = 0; i < argc; i++) {
		PUT(a);
		a += strlen(argv[i]) + 1;
	}
	PUT(0);
	for (size_t i = 0; i < envc; i++) {
		PUT(a);
		a += strlen(envp[i]) + 1;
	}
	PUT(0);
	for (size_t i = 0; i < nauxv; i++) {
		PUT(auxv_pairs[2 * i]);
		PUT(auxv_pairs[2 * i + 1]);
	}
	PUT(AT_RANDOM);
	PUT(a_random);
	PUT(AT_EXECFN);
	PUT(a_execfn);
	PUT(AT_PLATFORM);
	PUT(a_platform);
	PUT(AT_NULL);
	PUT(0);
#undef PUT
	return sp;
}
