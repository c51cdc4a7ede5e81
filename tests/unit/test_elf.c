/* SPDX-License-Identifier: MIT */
/* Unit tests: elf_parse (src/fnvm/elf.c) on ELF images crafted in memory,
 * plus a deterministic mutation loop that must never crash or accept an
 * image that breaks the documented guarantees. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "fnvm/elf.h"

/*
 * The valid image (ET_EXEC, like `gcc -static -no-pie`):
 *   0x0000 Ehdr, then 4 Phdrs at 0x40
 *   0x1000 text   (R X)  vaddr 0x401000, 0x100 bytes, entry at its start
 *   0x2000 data   (R W)  vaddr 0x402000, 0x80 bytes in the file, 0x1000 in memory
 * Segment 0 (R) covers the headers: vaddr 0x400000, 0x200 bytes.
 */
#define IMG_LEN	 0x2080u
#define NPHDR	 4
#define TEXT_OFF 0x1000u
#define TEXT_VA	 0x401000u
#define DATA_OFF 0x2000u
#define DATA_VA	 0x402000u

struct img {
	uint8_t *b;
	size_t len;
};

static Elf64_Ehdr *EH(struct img *im)
{
	return (Elf64_Ehdr *)(void *)im->b;
}

static Elf64_Phdr *PH(struct img *im, unsigned i)
{
	return (Elf64_Phdr *)(void *)(im->b + 64 + i * sizeof(Elf64_Phdr));
}

static void set_phdr(Elf64_Phdr *p, uint32_t type, uint32_t flags, uint64_t off, uint64_t va,
		     uint64_t filesz, uint64_t memsz, uint64_t align)
{
	*p = (Elf64_Phdr){.p_type = type,
			  .p_flags = flags,
			  .p_offset = off,
			  .p_vaddr = va,
			  .p_paddr = va,
			  .p_filesz = filesz,
			  .p_memsz = memsz,
			  .p_align = align};
}

/* A fresh valid image in a buffer with room for extra program headers. */
static struct img make_valid(void)
{
	struct img im = {.b = calloc(1, IMG_LEN), .len = IMG_LEN};
	assert_non_null(im.b);
	Elf64_Ehdr *e = EH(&im);
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_ident[EI_OSABI] = ELFOSABI_SYSV;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = TEXT_VA;
	e->e_phoff = 64;
	e->e_ehsize = sizeof(Elf64_Ehdr);
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = NPHDR;
	set_phdr(PH(&im, 0), PT_LOAD, PF_R, 0, 0x400000, 0x200, 0x200, 0x1000);
	set_phdr(PH(&im, 1), PT_LOAD, PF_R | PF_X, TEXT_OFF, TEXT_VA, 0x100, 0x100, 0x1000);
	set_phdr(PH(&im, 2), PT_LOAD, PF_R | PF_W, DATA_OFF, DATA_VA, 0x80, 0x1000, 0x1000);
	set_phdr(PH(&im, 3), PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16);
	/* mov $60, %eax; xor %edi, %edi; syscall */
	static const uint8_t code[] = {0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05};
	memcpy(im.b + TEXT_OFF, code, sizeof(code));
	memset(im.b + DATA_OFF, 0xd5, 0x80);
	return im;
}

/* Parse a copy of exactly @len bytes (so ASan sees any read past the end). */
static int parse_exact(const uint8_t *b, size_t len, struct elf_info *out, struct nb_error *err)
{
	uint8_t *copy = testutil_copy_exact(b, len);
	memset(err, 0, sizeof(*err));
	int rc = elf_parse(copy, len, out, err);
	free(copy);
	return rc;
}

static void expect_reject_len(struct img *im, size_t len, const char *needle)
{
	struct elf_info info;
	struct nb_error err;
	int rc = parse_exact(im->b, len, &info, &err);
	if (rc != -1)
		fail_msg("accepted an image that should fail with \"%s\"", needle);
	assert_int_equal(err.code, NB_EFORMAT);
	assert_true(memchr(err.msg, 0, sizeof(err.msg)) != NULL);
	if (!strstr(err.msg, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void expect_reject(struct img *im, const char *needle)
{
	expect_reject_len(im, im->len, needle);
	free(im->b);
	im->b = NULL;
}

/* ------------------------------------------------------------ valid images */

static void test_valid_exec(void **state)
{
	(void)state;
	struct img im = make_valid();
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	assert_int_equal(info.pie, 0);
	assert_int_equal(info.entry, TEXT_VA);
	assert_int_equal(info.phnum, NPHDR);
	assert_int_equal(info.phentsize, sizeof(Elf64_Phdr));
	assert_int_equal(info.nsegs, 3);
	assert_int_equal(info.lo, 0x400000);
	assert_int_equal(info.hi, DATA_VA + 0x1000);
	assert_int_equal(info.max_align, 0x1000);
	/* no PT_PHDR: found through the segment that maps the headers */
	assert_int_equal(info.phdr_vaddr, 0x400040);
	assert_int_equal(info.segs[1].vaddr, TEXT_VA);
	assert_int_equal(info.segs[1].offset, TEXT_OFF);
	assert_int_equal(info.segs[1].filesz, 0x100);
	assert_int_equal(info.segs[1].memsz, 0x100);
	assert_int_equal(info.segs[1].flags, PF_R | PF_X);
	assert_int_equal(info.segs[2].filesz, 0x80);
	assert_int_equal(info.segs[2].memsz, 0x1000);
	free(im.b);
}

static void test_valid_pt_phdr_and_align(void **state)
{
	(void)state;
	struct img im = make_valid();
	set_phdr(PH(&im, 3), PT_PHDR, PF_R, 64, 0x400040, 4 * 56, 4 * 56, 8);
	PH(&im, 1)->p_align = 0x200000; /* largest alignment is reported */
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	assert_int_equal(info.phdr_vaddr, 0x400040);
	assert_int_equal(info.max_align, 0x200000);

	/* headers not inside any segment, no PT_PHDR: phdr_vaddr 0 */
	set_phdr(PH(&im, 3), PT_NOTE, PF_R, 0, 0, 0, 0, 4);
	set_phdr(PH(&im, 0), PT_LOAD, PF_R, 0x1000, 0x300000, 0, 0x10, 0x1000);
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	assert_int_equal(info.phdr_vaddr, 0);
	assert_int_equal(info.lo, 0x300000);
	free(im.b);
}

static void test_valid_static_pie(void **state)
{
	(void)state;
	struct img im = make_valid();
	Elf64_Ehdr *e = EH(&im);
	e->e_type = ET_DYN;
	e->e_entry = TEXT_VA - 0x400000;
	for (unsigned i = 0; i < 3; i++)
		PH(&im, i)->p_vaddr -= 0x400000;
	set_phdr(PH(&im, 3), PT_DYNAMIC, PF_R | PF_W, DATA_OFF, DATA_VA - 0x400000, 0x40, 0x40, 8);
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	assert_int_equal(info.pie, 1);
	assert_int_equal(info.lo, 0);
	assert_int_equal(info.entry, 0x1000);
	assert_int_equal(info.phdr_vaddr, 0x40);

	/* ET_DYN without PT_DYNAMIC is a shared object, not a static-pie */
	set_phdr(PH(&im, 3), PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16);
	expect_reject(&im, "static-pie");
}

static void test_zero_memsz_load_ignored(void **state)
{
	(void)state;
	struct img im = make_valid();
	/* an empty PT_LOAD with nonsense fields is skipped */
	set_phdr(PH(&im, 3), PT_LOAD, PF_R, 0xfffffff0, 0xffffffffffff0000ull, 0, 0, 3);
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	assert_int_equal(info.nsegs, 3);
	free(im.b);
}

/* ------------------------------------------------------------ header errors */

static void test_bad_magic(void **state)
{
	(void)state;
	struct img im = make_valid();
	im.b[0] = 0x7e;
	expect_reject(&im, "bad magic");
	im = make_valid();
	memcpy(im.b, "#!/bin/sh\n", 10);
	expect_reject(&im, "bad magic");
	im = make_valid();
	im.b[3] = 'f';
	expect_reject(&im, "bad magic");
	/* shorter than the magic */
	im = make_valid();
	expect_reject_len(&im, 3, "bad magic");
	expect_reject_len(&im, 0, "bad magic");
	free(im.b);
}

static void test_truncated_header(void **state)
{
	(void)state;
	struct img im = make_valid();
	expect_reject_len(&im, 4, "truncated ELF header");
	expect_reject_len(&im, 16, "truncated ELF header");
	expect_reject_len(&im, sizeof(Elf64_Ehdr) - 1, "truncated ELF header");
	/* header complete, program headers cut off */
	expect_reject_len(&im, sizeof(Elf64_Ehdr), "program headers out of file");
	expect_reject_len(&im, 64 + NPHDR * 56 - 1, "program headers out of file");
	/* headers complete, segments cut off */
	expect_reject_len(&im, 64 + NPHDR * 56, "beyond file size");
	expect_reject_len(&im, IMG_LEN - 1, "beyond file size");
	free(im.b);
}

static void test_class_and_data(void **state)
{
	(void)state;
	struct img im = make_valid();
	im.b[EI_CLASS] = ELFCLASS32;
	expect_reject(&im, "64-bit");
	im = make_valid();
	im.b[EI_CLASS] = ELFCLASSNONE;
	expect_reject(&im, "64-bit");
	im = make_valid();
	im.b[EI_DATA] = ELFDATA2MSB;
	expect_reject(&im, "little-endian");
	im = make_valid();
	im.b[EI_DATA] = 0;
	expect_reject(&im, "little-endian");
}

static void test_machine(void **state)
{
	(void)state;
	static const struct {
		uint16_t m;
		const char *name;
	} cases[] = {
	    {EM_AARCH64, "aarch64"}, {EM_386, "i386"},	{EM_ARM, "arm"},   {EM_RISCV, "riscv"},
	    {EM_PPC64, "ppc64"},     {EM_S390, "s390"}, {EM_MIPS, "mips"}, {0x1234, "unknown"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct img im = make_valid();
		EH(&im)->e_machine = cases[i].m;
		char num[32];
		snprintf(num, sizeof(num), "e_machine=%u", cases[i].m);
		expect_reject_len(&im, im.len, num);
		expect_reject_len(&im, im.len, "x86-64");
		expect_reject(&im, cases[i].name);
	}
	/* aarch64 is machine 183 */
	assert_int_equal(EM_AARCH64, 183);
}

static void test_type(void **state)
{
	(void)state;
	struct img im = make_valid();
	EH(&im)->e_type = ET_REL;
	expect_reject(&im, "not an executable");
	im = make_valid();
	EH(&im)->e_type = ET_CORE;
	expect_reject(&im, "not an executable");
	im = make_valid();
	EH(&im)->e_type = ET_NONE;
	expect_reject(&im, "not an executable");
}

static void test_phentsize(void **state)
{
	(void)state;
	struct img im = make_valid();
	EH(&im)->e_phentsize = 32; /* Elf32_Phdr */
	expect_reject(&im, "e_phentsize");
	im = make_valid();
	EH(&im)->e_phentsize = 0;
	expect_reject(&im, "e_phentsize");
	im = make_valid();
	EH(&im)->e_phentsize = 0xffff;
	expect_reject(&im, "e_phentsize");
}

static void test_phnum(void **state)
{
	(void)state;
	struct img im = make_valid();
	EH(&im)->e_phnum = 0;
	expect_reject(&im, "bad e_phnum 0");
	im = make_valid();
	EH(&im)->e_phnum = 129;
	expect_reject(&im, "bad e_phnum 129");
	im = make_valid();
	EH(&im)->e_phnum = 0xffff; /* PN_XNUM */
	expect_reject(&im, "e_phnum");
	/* 128 is allowed but does not fit in this file */
	im = make_valid();
	EH(&im)->e_phnum = 128;
	im.len = 64 + 127 * 56; /* one program header short */
	expect_reject(&im, "program headers out of file");
}

static void test_too_many_segments(void **state)
{
	(void)state;
	/* 17 small PT_LOADs in a file built for them */
	size_t n = ELF_MAX_SEGS + 1, len = 0x1000 + n * 0x1000;
	struct img im = {.b = calloc(1, len), .len = len};
	assert_non_null(im.b);
	struct img v = make_valid();
	memcpy(im.b, v.b, 64);
	free(v.b);
	EH(&im)->e_phnum = (uint16_t)n;
	for (unsigned i = 0; i < n; i++)
		set_phdr(PH(&im, i), PT_LOAD, PF_R | PF_X, 0x1000 + i * 0x1000ull,
			 0x400000 + i * 0x1000ull, 0x10, 0x10, 0x1000);
	EH(&im)->e_entry = 0x400000;
	/* 16 are fine */
	EH(&im)->e_phnum = ELF_MAX_SEGS;
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	assert_int_equal(info.nsegs, ELF_MAX_SEGS);
	EH(&im)->e_phnum = (uint16_t)n;
	expect_reject(&im, "more than 16 PT_LOAD");
}

static void test_phoff(void **state)
{
	(void)state;
	struct img im = make_valid();
	EH(&im)->e_phoff = IMG_LEN;
	expect_reject(&im, "program headers out of file");
	im = make_valid();
	EH(&im)->e_phoff = IMG_LEN - 56 * NPHDR + 1;
	expect_reject(&im, "program headers out of file");
	im = make_valid();
	EH(&im)->e_phoff = UINT64_MAX - 8; /* offset + size overflows */
	expect_reject(&im, "program headers out of file");
	im = make_valid();
	EH(&im)->e_phoff = UINT64_MAX - 56 * NPHDR + 1; /* overflows to exactly 0 */
	expect_reject(&im, "program headers out of file");
}

/* ------------------------------------------------------------ dynamic programs */

static void test_interp(void **state)
{
	(void)state;
	struct img im = make_valid();
	static const char interp[] = "/lib64/ld-linux-x86-64.so.2";
	memcpy(im.b + 0x300, interp, sizeof(interp));
	set_phdr(PH(&im, 3), PT_INTERP, PF_R, 0x300, 0x400300, sizeof(interp), sizeof(interp), 1);
	expect_reject_len(&im, im.len, interp);
	expect_reject(&im, "dynamically linked");

	/* the interpreter comes first, even before a bad segment */
	im = make_valid();
	set_phdr(PH(&im, 0), PT_INTERP, PF_R, 0x300, 0x400300, sizeof(interp), sizeof(interp), 1);
	memcpy(im.b + 0x300, interp, sizeof(interp));
	PH(&im, 1)->p_filesz = 0x10000000;
	expect_reject(&im, "dynamically linked");

	/* bogus interpreter ranges: still a clean message, no out-of-bounds read */
	static const uint64_t offs[][2] = {
	    {IMG_LEN, 20},	 {IMG_LEN - 1, 20}, {UINT64_MAX, 20}, {UINT64_MAX - 1, 1000},
	    {0x300, UINT64_MAX}, {0x300, 0},	    {0x300, 1},	      {IMG_LEN - 5, 5000},
	};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		im = make_valid();
		memset(im.b + 0x300, 'A', IMG_LEN - 0x300); /* no NUL anywhere after 0x300 */
		set_phdr(PH(&im, 3), PT_INTERP, PF_R, offs[i][0], 0, offs[i][1], offs[i][1], 1);
		expect_reject(&im, "dynamically linked");
	}
}

/* ------------------------------------------------------------ segment errors */

static void test_segment_beyond_file(void **state)
{
	(void)state;
	struct img im = make_valid();
	PH(&im, 2)->p_filesz = 0x81; /* one byte past the end */
	PH(&im, 2)->p_memsz = 0x1000;
	expect_reject(&im, "beyond file size");
	im = make_valid();
	PH(&im, 1)->p_offset = IMG_LEN;
	PH(&im, 1)->p_vaddr = 0x401000 + (IMG_LEN & 0xfff);
	EH(&im)->e_entry = PH(&im, 1)->p_vaddr;
	expect_reject(&im, "beyond file size");
	/* offset + filesz wraps around */
	im = make_valid();
	PH(&im, 2)->p_offset = UINT64_MAX - 0xfff; /* congruent with vaddr */
	PH(&im, 2)->p_filesz = 0x1000;
	expect_reject(&im, "beyond file size");
	im = make_valid();
	PH(&im, 2)->p_offset = 0x2000;
	PH(&im, 2)->p_filesz = UINT64_MAX - 0x1000;
	PH(&im, 2)->p_memsz = UINT64_MAX;
	expect_reject(&im, "beyond file size");
	/* exactly to the end is fine */
	im = make_valid();
	struct elf_info info;
	struct nb_error err;
	PH(&im, 2)->p_filesz = 0x80;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	free(im.b);
}

static void test_address_overflow(void **state)
{
	(void)state;
	struct img im = make_valid();
	PH(&im, 2)->p_vaddr = 0xfffffffffffff000ull; /* + memsz 0x1000 wraps to 0 */
	expect_reject(&im, "address range overflows");
	im = make_valid();
	PH(&im, 2)->p_memsz = UINT64_MAX;
	expect_reject(&im, "address range overflows");
	/* no wrap, but above the 47-bit user address space */
	im = make_valid();
	PH(&im, 2)->p_vaddr = (1ull << 47) - 0x1000; /* ends exactly at 2^47: allowed */
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	assert_int_equal(info.hi, 1ull << 47);
	PH(&im, 2)->p_memsz = 0x1001;
	expect_reject(&im, "address range overflows");
}

static void test_filesz_gt_memsz(void **state)
{
	(void)state;
	struct img im = make_valid();
	PH(&im, 2)->p_memsz = 0x7f;
	expect_reject(&im, "p_filesz");
	im = make_valid();
	PH(&im, 1)->p_memsz = 1;
	expect_reject(&im, "p_filesz 0x100 > p_memsz 0x1");
}

static void test_entry(void **state)
{
	(void)state;
	struct img im = make_valid();
	EH(&im)->e_entry = DATA_VA + 0x10; /* in a segment, not executable */
	expect_reject(&im, "entry point");
	im = make_valid();
	EH(&im)->e_entry = 0x400010; /* headers segment: R only */
	expect_reject(&im, "not in an executable segment");
	im = make_valid();
	EH(&im)->e_entry = TEXT_VA + 0x100; /* one past the end of text */
	expect_reject(&im, "entry point");
	im = make_valid();
	EH(&im)->e_entry = TEXT_VA - 1;
	expect_reject(&im, "entry point");
	im = make_valid();
	EH(&im)->e_entry = 0;
	expect_reject(&im, "entry point 0");
	im = make_valid();
	EH(&im)->e_entry = UINT64_MAX;
	expect_reject(&im, "entry point");
	/* last byte of text is fine */
	im = make_valid();
	EH(&im)->e_entry = TEXT_VA + 0xff;
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	/* entry in the bss-like tail of an executable segment (memsz > filesz) is in range */
	PH(&im, 1)->p_memsz = 0x200;
	EH(&im)->e_entry = TEXT_VA + 0x1ff;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	free(im.b);
}

static void test_align_congruence_overlap(void **state)
{
	(void)state;
	struct img im = make_valid();
	PH(&im, 1)->p_align = 0x1800;
	expect_reject(&im, "not a power of 2");
	im = make_valid();
	PH(&im, 1)->p_align = 1ull << 31;
	expect_reject(&im, "too large");
	im = make_valid();
	PH(&im, 1)->p_vaddr = TEXT_VA + 0x10; /* offset 0x1000: page offsets differ */
	EH(&im)->e_entry = TEXT_VA + 0x10;
	expect_reject(&im, "congruent");
	im = make_valid();
	PH(&im, 2)->p_vaddr = TEXT_VA; /* data on top of text */
	expect_reject(&im, "overlaps");
	im = make_valid();
	PH(&im, 1)->p_memsz = 0x1001; /* text runs one byte into data */
	expect_reject(&im, "segment 2 overlaps segment 1");
	/* align 0 and 1 mean none */
	im = make_valid();
	PH(&im, 1)->p_align = 0;
	PH(&im, 2)->p_align = 1;
	struct elf_info info;
	struct nb_error err;
	assert_int_equal(parse_exact(im.b, im.len, &info, &err), 0);
	free(im.b);
}

static void test_no_loadable(void **state)
{
	(void)state;
	struct img im = make_valid();
	for (unsigned i = 0; i < NPHDR; i++)
		PH(&im, i)->p_type = i == 3 ? PT_GNU_STACK : PT_NOTE;
	expect_reject(&im, "no loadable segments");
	im = make_valid();
	for (unsigned i = 0; i < 3; i++)
		PH(&im, i)->p_memsz = PH(&im, i)->p_filesz = 0;
	expect_reject(&im, "no loadable segments");
}

static void test_null_err(void **state)
{
	(void)state;
	struct img im = make_valid();
	struct elf_info info;
	EH(&im)->e_machine = EM_AARCH64;
	assert_int_equal(elf_parse(im.b, im.len, &info, NULL), -1);
	EH(&im)->e_machine = EM_X86_64;
	assert_int_equal(elf_parse(im.b, im.len, &info, NULL), 0);
	free(im.b);
}

/* ------------------------------------------------------------ mutation loop */

static uint64_t rnd_state = 0x6e75626973ull; /* fixed: the loop is reproducible */

static uint64_t rnd(void)
{
	return testutil_rng_next(&rnd_state);
}

static const uint64_t interesting[] = {
    0,
    1,
    2,
    7,
    8,
    0x38,
    0x40,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xfff,
    0x1000,
    0x1001,
    0x2000,
    IMG_LEN - 1,
    IMG_LEN,
    IMG_LEN + 1,
    0x400000,
    0x401000,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    0x7fffffff,
    0x80000000ull,
    0xffffffffull,
    1ull << 47,
    (1ull << 47) - 1,
    0x7fffffffffffffffull,
    0x8000000000000000ull,
    UINT64_MAX - 0xfff,
    UINT64_MAX - 1,
    UINT64_MAX,
};

static void mutate(uint8_t *b, size_t *len)
{
	size_t hdr = 64 + NPHDR * 56;
	unsigned nmut = 1 + (unsigned)(rnd() % 4);
	for (unsigned k = 0; k < nmut; k++) {
		switch (rnd() % 6) {
		case 0: /* random byte in the headers */
			b[rnd() % hdr] = (uint8_t)rnd();
			break;
		case 1: /* flip a bit in the headers */
			b[rnd() % hdr] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 2: { /* interesting value into an aligned header field */
			uint64_t v =
			    interesting[rnd() % (sizeof(interesting) / sizeof(interesting[0]))];
			unsigned w = 1u << (rnd() % 4); /* 1, 2, 4, 8 bytes */
			size_t at = (rnd() % (hdr / w)) * w;
			memcpy(b + at, &v, w);
			break;
		}
		case 3: /* random byte anywhere */
			if (*len)
				b[rnd() % *len] = (uint8_t)rnd();
			break;
		case 4: /* truncate */
			if (rnd() % 4 == 0)
				*len = rnd() % (*len + 1);
			break;
		case 5: { /* turn a program header into another type */
			static const uint32_t types[] = {PT_NULL,   PT_LOAD,	  PT_DYNAMIC,
							 PT_INTERP, PT_NOTE,	  PT_PHDR,
							 PT_TLS,    PT_GNU_STACK, 0xffffffffu};
			uint32_t t = types[rnd() % (sizeof(types) / sizeof(types[0]))];
			memcpy(b + 64 + (rnd() % NPHDR) * 56, &t, 4);
			break;
		}
		}
	}
}

/* What elf_parse promises about an image it accepts. */
static void check_accepted(const struct elf_info *in, size_t len)
{
	assert_true(in->nsegs >= 1 && in->nsegs <= ELF_MAX_SEGS);
	assert_true(in->phnum >= 1 && in->phnum <= 128);
	assert_int_equal(in->phentsize, sizeof(Elf64_Phdr));
	assert_true(in->lo <= in->hi);
	assert_true(in->hi <= (1ull << 47));
	assert_true(in->max_align >= 0x1000 && in->max_align <= (1ull << 30));
	assert_int_equal(in->max_align & (in->max_align - 1), 0);
	int entry_ok = 0;
	for (unsigned i = 0; i < in->nsegs; i++) {
		const struct elf_seg *s = &in->segs[i];
		assert_true(s->memsz > 0);
		assert_true(s->filesz <= s->memsz);
		assert_true(s->offset <= len && s->filesz <= len - s->offset);
		assert_true(s->vaddr <= (1ull << 47) && s->memsz <= (1ull << 47) - s->vaddr);
		assert_int_equal(s->vaddr & 0xfff, s->offset & 0xfff);
		assert_true(s->vaddr >= in->lo && s->vaddr + s->memsz <= in->hi);
		for (unsigned j = 0; j < i; j++) {
			const struct elf_seg *o = &in->segs[j];
			assert_false(s->vaddr < o->vaddr + o->memsz &&
				     o->vaddr < s->vaddr + s->memsz);
		}
		if ((s->flags & PF_X) && in->entry >= s->vaddr && in->entry - s->vaddr < s->memsz)
			entry_ok = 1;
	}
	assert_true(entry_ok);
}

static void test_mutation_loop(void **state)
{
	(void)state;
	struct img base = make_valid();
	uint8_t *work = malloc(IMG_LEN);
	assert_non_null(work);
	unsigned accepted = 0, rejected = 0, iters = 5000;
	for (unsigned it = 0; it < iters; it++) {
		size_t len = IMG_LEN;
		memcpy(work, base.b, IMG_LEN);
		mutate(work, &len);
		struct elf_info info;
		struct nb_error err;
		int rc = parse_exact(work, len, &info, &err);
		if (rc == 0) {
			accepted++;
			check_accepted(&info, len);
		} else {
			testutil_assert_format_error(rc, &err);
			rejected++;
		}
	}
	/* the loop must exercise both outcomes to mean anything */
	print_message("elf mutation loop: %u accepted, %u rejected\n", accepted, rejected);
	assert_true(accepted > iters / 20);
	assert_true(rejected > iters / 4);

	/* random garbage behind a valid magic */
	for (unsigned it = 0; it < 2000; it++) {
		size_t len = (size_t)(rnd() % 512);
		for (size_t i = 0; i < len; i++)
			work[i] = (uint8_t)rnd();
		if (len >= 4)
			memcpy(work, ELFMAG, 4);
		if (len > EI_DATA && (it & 1)) {
			work[EI_CLASS] = ELFCLASS64;
			work[EI_DATA] = ELFDATA2LSB;
		}
		struct elf_info info;
		struct nb_error err;
		if (parse_exact(work, len, &info, &err) == 0)
			check_accepted(&info, len);
	}
	free(work);
	free(base.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_exec),
	    cmocka_unit_test(test_valid_pt_phdr_and_align),
	    cmocka_unit_test(test_valid_static_pie),
	    cmocka_unit_test(test_zero_memsz_load_ignored),
	    cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_truncated_header),
	    cmocka_unit_test(test_class_and_data),
	    cmocka_unit_test(test_machine),
	    cmocka_unit_test(test_type),
	    cmocka_unit_test(test_phentsize),
	    cmocka_unit_test(test_phnum),
	    cmocka_unit_test(test_too_many_segments),
	    cmocka_unit_test(test_phoff),
	    cmocka_unit_test(test_interp),
	    cmocka_unit_test(test_segment_beyond_file),
	    cmocka_unit_test(test_address_overflow),
	    cmocka_unit_test(test_filesz_gt_memsz),
	    cmocka_unit_test(test_entry),
	    cmocka_unit_test(test_align_congruence_overlap),
	    cmocka_unit_test(test_no_loadable),
	    cmocka_unit_test(test_null_err),
	    cmocka_unit_test(test_mutation_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
