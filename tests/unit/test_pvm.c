/* SPDX-License-Identifier: MIT */
/* Unit tests: the kvm_pvm compatibility mode's pure parts (src/vmm/pvm.{h,c}):
 * the guest page-table walker (4 and 5 levels, 1 GiB / 2 MiB pages, faults,
 * hostile table pointers), the instruction decoder (every ldmxcsr/stmxcsr
 * operand form), operand addresses and the command-line join. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/pvm.h"

#define MEM (4ull << 20) /* 4 MiB of guest memory at gpa 0 */
#define P   0x1ull
#define W   0x2ull
#define PS  0x80ull
#define NX  (1ull << 63)

struct fx {
	uint8_t *buf;
	struct gmem m;
	struct pvm_paging pg;
};

static void put(struct fx *f, uint64_t gpa, uint64_t v)
{
	memcpy(f->buf + gpa, &v, 8);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->buf = calloc(1, MEM);
	f->m = gmem_one(f->buf, 0, MEM);
	f->pg = (struct pvm_paging){
	    .cr0 = 1ull << 31, .cr3 = 0x1000, .cr4 = 1ull << 5, .efer = (1ull << 10) | (1ull << 8)};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	free(f->buf);
	free(f);
	return 0;
}

/* 4-level: la 0xffffffff81234567 → 4 KiB page at 0x300000 */
static uint64_t build4(struct fx *f)
{
	uint64_t la = 0xffffffff81234567ull;
	put(f, 0x1000 + ((la >> 39) & 511) * 8, 0x2000 | P | W);
	put(f, 0x2000 + ((la >> 30) & 511) * 8, 0x3000 | P | W);
	put(f, 0x3000 + ((la >> 21) & 511) * 8, 0x4000 | P | W);
	put(f, 0x4000 + ((la >> 12) & 511) * 8, 0x300000 | P | W | NX);
	return la;
}

static void test_walk_4level(void **state)
{
	struct fx *f = *state;
	uint64_t la = build4(f);
	gpa_t g = 0;
	assert_int_equal(pvm_translate(&f->m, &f->pg, la, false, &g), 0);
	assert_int_equal(g, 0x300000 + 0x567);
	/* the neighbouring page is not present */
	assert_int_equal(pvm_translate(&f->m, &f->pg, la + 0x1000, false, &g), -ENOENT);
	/* a read-only PTE refuses writes only */
	put(f, 0x4000 + ((la >> 12) & 511) * 8, 0x300000 | P);
	assert_int_equal(pvm_translate(&f->m, &f->pg, la, true, &g), -ENOENT);
	assert_int_equal(pvm_translate(&f->m, &f->pg, la, false, &g), 0);
	/* non-canonical */
	assert_int_equal(pvm_translate(&f->m, &f->pg, 0x0000800000000000ull, false, &g), -ENOTSUP);
	/* paging off: identity */
	struct pvm_paging off = f->pg;
	off.cr0 = 0;
	assert_int_equal(pvm_translate(&f->m, &off, 0x1234, false, &g), 0);
	assert_int_equal(g, 0x1234);
	/* protected mode without long mode is not handled */
	off = f->pg;
	off.efer = 0;
	assert_int_equal(pvm_translate(&f->m, &off, 0x1234, false, &g), -ENOTSUP);
}

static void test_walk_large_pages(void **state)
{
	struct fx *f = *state;
	/* 1 GiB page for la 0x40000000.. → gpa 0x0 (+PAT bit 12 set, must be masked) */
	put(f, 0x1000, 0x2000 | P | W);
	put(f, 0x2000 + 1 * 8, 0x0 | P | W | PS | (1ull << 12));
	gpa_t g;
	assert_int_equal(pvm_translate(&f->m, &f->pg, 0x40012345ull, false, &g), 0);
	assert_int_equal(g, 0x12345);
	/* 2 MiB page for la 0x80200000.. → gpa 0x200000 */
	put(f, 0x2000 + 2 * 8, 0x3000 | P | W);
	put(f, 0x3000 + 1 * 8, 0x200000 | P | W | PS);
	assert_int_equal(pvm_translate(&f->m, &f->pg, 0x80212345ull, false, &g), 0);
	assert_int_equal(g, 0x212345);
}

static void test_walk_5level(void **state)
{
	struct fx *f = *state;
	struct pvm_paging pg = f->pg;
	pg.cr4 |= 1ull << 12;		     /* LA57 */
	uint64_t la = 0xff00000000001234ull; /* canonical with 57 bits */
	put(f, 0x1000 + ((la >> 48) & 511) * 8, 0x2000 | P);
	put(f, 0x2000 + ((la >> 39) & 511) * 8, 0x3000 | P);
	put(f, 0x3000 + ((la >> 30) & 511) * 8, 0x4000 | P);
	put(f, 0x4000 + ((la >> 21) & 511) * 8, 0x5000 | P);
	put(f, 0x5000 + ((la >> 12) & 511) * 8, 0x7000 | P);
	gpa_t g;
	assert_int_equal(pvm_translate(&f->m, &pg, la, false, &g), 0);
	assert_int_equal(g, 0x7234);
	/* the same address is not canonical with 4 levels */
	assert_int_equal(pvm_translate(&f->m, &f->pg, la, false, &g), -ENOTSUP);
}

static void test_walk_hostile(void **state)
{
	struct fx *f = *state;
	gpa_t g;
	/* a table pointer beyond guest memory */
	put(f, 0x1000, 0x000ffffffffff000ull | P);
	assert_int_equal(pvm_translate(&f->m, &f->pg, 0x1000, false, &g), -EFAULT);
	/* CR3 outside memory */
	struct pvm_paging pg = f->pg;
	pg.cr3 = 0x7ffffffff000ull;
	assert_int_equal(pvm_translate(&f->m, &pg, 0x1000, false, &g), -EFAULT);
	/* a self-referencing table terminates after 4 levels */
	put(f, 0x1000, 0x1000 | P);
	assert_int_equal(pvm_translate(&f->m, &f->pg, 0, false, &g), 0);
	assert_int_equal(g, 0x1000);
	/* a leaf pointing outside memory translates, but reading it fails cleanly */
	put(f, 0x1000, 0x2000 | P);
	put(f, 0x2000, 0x3000 | P);
	put(f, 0x3000, 0x4000 | P);
	put(f, 0x4000, 0x7fff0000000ull | P);
	uint8_t b[8];
	assert_int_equal(pvm_read_virt(&f->m, &f->pg, 0, b, 8), -EFAULT);
}

static void test_virt_copy_across_pages(void **state)
{
	struct fx *f = *state;
	/* la 0x0000 → gpa 0x100000, la 0x1000 → gpa 0x50000 (not contiguous) */
	put(f, 0x1000, 0x2000 | P | W);
	put(f, 0x2000, 0x3000 | P | W);
	put(f, 0x3000, 0x4000 | P | W);
	put(f, 0x4000, 0x100000 | P | W);
	put(f, 0x4008, 0x50000 | P); /* read-only */
	uint32_t v = 0xa1b2c3d4, r = 0;
	assert_int_equal(pvm_write_virt(&f->m, &f->pg, 0xffe, &v, 4), -ENOENT);
	/* nothing was written by the failing write */
	assert_int_equal(f->buf[0x100ffe], 0);
	put(f, 0x4008, 0x50000 | P | W);
	assert_int_equal(pvm_write_virt(&f->m, &f->pg, 0xffe, &v, 4), 0);
	assert_int_equal(f->buf[0x100ffe], 0xd4);
	assert_int_equal(f->buf[0x100fff], 0xc3);
	assert_int_equal(f->buf[0x50000], 0xb2);
	assert_int_equal(f->buf[0x50001], 0xa1);
	assert_int_equal(pvm_read_virt(&f->m, &f->pg, 0xffe, &r, 4), 0);
	assert_int_equal(r, v);
}

struct dcase {
	const char *name;
	uint8_t code[15];
	size_t n;
	enum pvm_op op;
	unsigned len;
	int base, index;
	unsigned scale;
	int64_t disp;
	bool rip_rel;
	int seg;
};

static void test_decode_forms(void **state)
{
	(void)state;
	static const struct dcase cases[] = {
	    {"int3", {0xcc}, 1, PVM_OP_INT3, 1, -1, -1, 0, 0, false, 0},
	    {"fwait", {0x9b}, 1, PVM_OP_FWAIT, 1, -1, -1, 0, 0, false, 0},
	    {"clac", {0x0f, 0x01, 0xca}, 3, PVM_OP_CLAC, 3, -1, -1, 0, 0, false, 0},
	    {"stac", {0x0f, 0x01, 0xcb}, 3, PVM_OP_STAC, 3, -1, -1, 0, 0, false, 0},
	    {"nop3", {0x0f, 0x1f, 0x00}, 3, PVM_OP_NOP, 3, -1, -1, 0, 0, false, 0},
	    {"nop5", {0x0f, 0x1f, 0x44, 0x00, 0x00}, 5, PVM_OP_NOP, 5, -1, -1, 0, 0, false, 0},
	    {"endbr64", {0xf3, 0x0f, 0x1e, 0xfa}, 4, PVM_OP_NOP, 4, -1, -1, 0, 0, false, 0},
	    {"cld", {0xfc}, 1, PVM_OP_CLD, 1, -1, -1, 0, 0, false, 0},
	    /* ldmxcsr (%rdi) */
	    {"ld (rdi)", {0x0f, 0xae, 0x17}, 3, PVM_OP_LDMXCSR, 3, 7, -1, 1, 0, false, 0},
	    /* ldmxcsr 0x8(%rsp): SIB with no index */
	    {"ld 8(rsp)",
	     {0x0f, 0xae, 0x54, 0x24, 0x08},
	     5,
	     PVM_OP_LDMXCSR,
	     5,
	     4,
	     -1,
	     1,
	     8,
	     false,
	     0},
	    /* stmxcsr -0x4(%rbp) */
	    {"st -4(rbp)", {0x0f, 0xae, 0x5d, 0xfc}, 4, PVM_OP_STMXCSR, 4, 5, -1, 1, -4, false, 0},
	    /* ldmxcsr 0x12345678(%rip) */
	    {"ld rip",
	     {0x0f, 0xae, 0x15, 0x78, 0x56, 0x34, 0x12},
	     7,
	     PVM_OP_LDMXCSR,
	     7,
	     -1,
	     -1,
	     1,
	     0x12345678,
	     true,
	     0},
	    /* ldmxcsr 0x10(%r12) : REX.B + SIB (r12 needs a SIB) */
	    {"ld r12",
	     {0x41, 0x0f, 0xae, 0x54, 0x24, 0x10},
	     6,
	     PVM_OP_LDMXCSR,
	     6,
	     12,
	     -1,
	     1,
	     16,
	     false,
	     0},
	    /* ldmxcsr (%rax,%r13,8): REX.X index, scale 8 */
	    {"ld idx", {0x42, 0x0f, 0xae, 0x14, 0xe8}, 5, PVM_OP_LDMXCSR, 5, 0, 13, 8, 0, false, 0},
	    /* stmxcsr 0x1000 (no base, no index: SIB base 5 with mod 0) */
	    {"st abs",
	     {0x0f, 0xae, 0x1c, 0x25, 0x00, 0x10, 0x00, 0x00},
	     8,
	     PVM_OP_STMXCSR,
	     8,
	     -1,
	     -1,
	     1,
	     0x1000,
	     false,
	     0},
	    /* stmxcsr %gs:0x28 */
	    {"st gs",
	     {0x65, 0x0f, 0xae, 0x1c, 0x25, 0x28, 0x00, 0x00, 0x00},
	     9,
	     PVM_OP_STMXCSR,
	     9,
	     -1,
	     -1,
	     1,
	     0x28,
	     false,
	     5},
	    /* ldmxcsr -0x80(%r13) : rm 5 with mod 1 is rbp/r13, not rip */
	    {"ld r13",
	     {0x41, 0x0f, 0xae, 0x55, 0x80},
	     5,
	     PVM_OP_LDMXCSR,
	     5,
	     13,
	     -1,
	     1,
	     -128,
	     false,
	     0},
	    /* ldmxcsr 0x100(%rcx,%rdx,2): mod 2 disp32 */
	    {"ld d32",
	     {0x0f, 0xae, 0x94, 0x51, 0x00, 0x01, 0x00, 0x00},
	     8,
	     PVM_OP_LDMXCSR,
	     8,
	     1,
	     2,
	     2,
	     0x100,
	     false,
	     0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dcase *c = &cases[i];
		struct pvm_insn in;
		int rc = pvm_decode(c->code, c->n, &in);
		if (rc || in.op != c->op || in.len != c->len)
			fail_msg("%s: rc %d op %d len %u", c->name, rc, in.op, in.len);
		if (c->op != PVM_OP_LDMXCSR && c->op != PVM_OP_STMXCSR)
			continue;
		if (in.mem.base != c->base || in.mem.index != c->index ||
		    (c->index >= 0 && in.mem.scale != c->scale) || in.mem.disp != c->disp ||
		    in.mem.rip_rel != c->rip_rel || in.mem.seg != c->seg)
			fail_msg("%s: base %d index %d scale %u disp %lld rip %d seg %d", c->name,
				 in.mem.base, in.mem.index, in.mem.scale, (long long)in.mem.disp,
				 in.mem.rip_rel, in.mem.seg);
		/* every strict prefix of the instruction is truncated */
		for (size_t n = 0; n < c->n; n++)
			if (pvm_decode(c->code, n, &in) == 0)
				fail_msg("%s: accepted truncated to %zu bytes", c->name, n);
	}
}

static void test_decode_rejects(void **state)
{
	(void)state;
	static const uint8_t bad[][4] = {
	    {0x0f, 0xae, 0xd0},	      /* register form of /2: not ldmxcsr */
	    {0x0f, 0xae, 0x07},	      /* fxsave (/0): not ours */
	    {0x66, 0x0f, 0xae, 0x17}, /* prefixed ldmxcsr is another instruction */
	    {0x41, 0x90},	      /* xchg %r8, %rax */
	    {0x0f, 0x01, 0xc1},	      /* vmcall */
	    {0x0f, 0x0b},	      /* ud2 */
	    {0xf4},		      /* hlt */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pvm_insn in;
		if (pvm_decode(bad[i], sizeof(bad[i]), &in) == 0)
			fail_msg("case %zu accepted as op %d", i, in.op);
	}
	/* 15 prefixes: too long, never read beyond 15 bytes */
	uint8_t pre[32];
	memset(pre, 0x2e, sizeof(pre));
	pre[20] = 0xcc;
	struct pvm_insn in;
	assert_int_equal(pvm_decode(pre, sizeof(pre), &in), -EINVAL);
	assert_int_equal(pvm_decode(pre, 0, &in), -EINVAL);
	/* random bytes never crash and never report a length beyond the input */
	srand(7);
	for (int k = 0; k < 200000; k++) {
		uint8_t b[15];
		size_t n = (size_t)(rand() % 16);
		for (size_t j = 0; j < sizeof(b); j++)
			b[j] = (uint8_t)rand();
		if (pvm_decode(b, n, &in) == 0)
			assert_true(in.len >= 1 && in.len <= n);
	}
}

static void test_operand_address(void **state)
{
	(void)state;
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rax = 0x1000;
	r.r13 = 0x20;
	r.rsp = 0x8000;
	struct pvm_insn in;
	static const uint8_t idx[] = {0x42, 0x0f, 0xae, 0x14, 0xe8}; /* (%rax,%r13,8) */
	assert_int_equal(pvm_decode(idx, sizeof(idx), &in), 0);
	assert_int_equal(pvm_operand_address(&in.mem, &r, 0, 0, 0), 0x1000 + 0x20 * 8);
	static const uint8_t rip[] = {0x0f, 0xae, 0x15, 0xf0, 0xff, 0xff, 0xff}; /* -16(%rip) */
	assert_int_equal(pvm_decode(rip, sizeof(rip), &in), 0);
	assert_int_equal(pvm_operand_address(&in.mem, &r, 0xffffffff81000007ull, 0, 0),
			 0xffffffff81000007ull - 16);
	static const uint8_t gs[] = {0x65, 0x0f, 0xae, 0x1c, 0x25, 0x28, 0, 0, 0};
	assert_int_equal(pvm_decode(gs, sizeof(gs), &in), 0);
	assert_int_equal(pvm_operand_address(&in.mem, &r, 0, 0x111, 0xffff888000000000ull),
			 0xffff888000000028ull);
	static const uint8_t sp[] = {0x0f, 0xae, 0x54, 0x24, 0x08}; /* 8(%rsp) */
	assert_int_equal(pvm_decode(sp, sizeof(sp), &in), 0);
	assert_int_equal(pvm_operand_address(&in.mem, &r, 0, 0, 0), 0x8008);
}

static void test_mode_and_cmdline(void **state)
{
	(void)state;
	enum pvm_mode m;
	assert_int_equal(pvm_mode_parse("auto", &m), 0);
	assert_int_equal(m, PVM_AUTO);
	assert_int_equal(pvm_mode_parse("off", &m), 0);
	assert_int_equal(pvm_mode_parse("yes", &m), -EINVAL);
	assert_true(pvm_mode_active(PVM_AUTO, KVMHOST_PVM));
	assert_false(pvm_mode_active(PVM_AUTO, KVMHOST_VMX));
	assert_false(pvm_mode_active(PVM_AUTO, KVMHOST_SVM));
	assert_true(pvm_mode_active(PVM_ON, KVMHOST_VMX));
	assert_false(pvm_mode_active(PVM_OFF, KVMHOST_PVM));
	char *s = pvm_cmdline_join(true, "console=ttyS0");
	assert_non_null(strstr(s, "console=ttyS0 nokaslr "));
	assert_non_null(strstr(s, "noxsave"));
	free(s);
	s = pvm_cmdline_join(false, "a b");
	assert_string_equal(s, "a b");
	free(s);
	s = pvm_cmdline_join(false, NULL);
	assert_string_equal(s, "");
	free(s);
	s = pvm_cmdline_join(true, NULL);
	assert_string_equal(s, pvm_cmdline_extra());
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_walk_4level, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_walk_large_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_walk_5level, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_walk_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_virt_copy_across_pages, setup, teardown),
	    cmocka_unit_test(test_decode_forms),
	    cmocka_unit_test(test_decode_rejects),
	    cmocka_unit_test(test_operand_address),
	    cmocka_unit_test(test_mode_and_cmdline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
