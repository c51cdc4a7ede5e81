/* SPDX-License-Identifier: MIT */
/* Unit tests: the PVH start info (src/boot/pvh.{h,c}) read back field by field, and the
 * e820 map nubis-vmm gives a 16 GiB guest (RAM below the hole and from 4 GiB, ECAM
 * reserved in the hole). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot/e820.h"
#include "boot/pvh.h"

#define GIB	  (1ull << 30)
#define MEM	  0x10000ull /* guest memory [0, 64 KiB) for the start info */
#define ECAM	  0xe0000000ull
#define AT	  0x6000ull
#define RD	  0x8000ull
#define RD_SIZE	  0x1234ull
#define CMDLINE	  0x9000ull
#define RSDP_ADDR 0xe0000ull

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void map_16g(struct e820_map *m)
{
	assert_int_equal(e820_build(m, 16 * GIB, NULL), 0);
	assert_int_equal(e820_add(m, ECAM, 1 << 20, E820_RESERVED, NULL), 0);
}

static void test_e820_16g_with_ecam(void **state)
{
	(void)state;
	struct e820_map m;
	map_16g(&m);
	assert_int_equal(e820_check(&m, NULL), 0);
	assert_int_equal(m.n, 5);
	/* RAM below the hole ends at 3 GiB; the ECAM is reserved inside the hole; the rest of
	 * the RAM (13 GiB) starts at 4 GiB */
	assert_int_equal(m.e[2].addr + m.e[2].size, 3 * GIB);
	assert_int_equal(m.e[3].addr, ECAM);
	assert_int_equal(m.e[3].type, E820_RESERVED);
	assert_int_equal(m.e[4].addr, 4 * GIB);
	assert_int_equal(m.e[4].size, 13 * GIB);
	assert_int_equal(e820_total(&m, E820_RAM), 16 * GIB - (0x100000 - 0x9fc00));
	assert_int_equal(e820_low_size(16 * GIB) + e820_high_size(16 * GIB), 16 * GIB);
	/* the ECAM cannot go over RAM */
	assert_int_equal(e820_add(&m, 2 * GIB, 1 << 20, E820_RESERVED, NULL), -1);
}

static void test_start_info_read_back(void **state)
{
	(void)state;
	uint8_t *buf = calloc(1, MEM);
	assert_non_null(buf);
	struct gmem mem = gmem_one(buf, 0, MEM);
	struct e820_map m;
	map_16g(&m);
	struct pvh_cfg cfg = {.cmdline = CMDLINE,
			      .rsdp = RSDP_ADDR,
			      .initrd = RD,
			      .initrd_size = RD_SIZE,
			      .e820 = &m};
	assert_int_equal(pvh_size(&cfg), 56 + 32 + 5 * 24);
	struct nb_error err = {0};
	assert_int_equal(pvh_write(&mem, AT, &cfg, &err), 0);
	const uint8_t *si = buf + AT;
	assert_int_equal(rd32(si), 0x336ec578u);
	assert_int_equal(rd32(si + 4), 1);  /* version */
	assert_int_equal(rd32(si + 8), 0);  /* flags */
	assert_int_equal(rd32(si + 12), 1); /* nr_modules */
	uint64_t modlist = rd64(si + 16);
	assert_int_equal(rd64(si + 24), CMDLINE);
	assert_int_equal(rd64(si + 32), RSDP_ADDR);
	uint64_t memmap = rd64(si + 40);
	assert_int_equal(rd32(si + 48), 5);
	assert_true(modlist >= AT + 56 && modlist + 32 <= MEM);
	assert_int_equal(rd64(buf + modlist), RD);
	assert_int_equal(rd64(buf + modlist + 8), RD_SIZE);
	assert_int_equal(rd64(buf + modlist + 16), 0);
	assert_true(memmap >= AT + 56 && memmap + 5 * 24 <= MEM);
	assert_true(memmap >= modlist + 32 || memmap + 5 * 24 <= modlist);
	for (unsigned i = 0; i < 5; i++) {
		const uint8_t *e = buf + memmap + 24 * i;
		assert_int_equal(rd64(e), m.e[i].addr);
		assert_int_equal(rd64(e + 8), m.e[i].size);
		assert_int_equal(rd32(e + 16), m.e[i].type);
		assert_int_equal(rd32(e + 20), 0);
	}
	free(buf);
}

static void test_start_info_no_initrd(void **state)
{
	(void)state;
	uint8_t *buf = calloc(1, MEM);
	assert_non_null(buf);
	struct gmem mem = gmem_one(buf, 0, MEM);
	struct e820_map m;
	assert_int_equal(e820_build(&m, 256ull << 20, NULL), 0);
	struct pvh_cfg cfg = {.e820 = &m};
	assert_int_equal(pvh_write(&mem, AT, &cfg, NULL), 0);
	assert_int_equal(rd32(buf + AT + 12), 0);	/* no modules */
	assert_int_equal(rd64(buf + AT + 16), 0);	/* modlist */
	assert_int_equal(rd64(buf + AT + 40), AT + 56); /* memmap right after */
	assert_int_equal(rd32(buf + AT + 48), m.n);
	free(buf);
}

static void test_start_info_rejects(void **state)
{
	(void)state;
	uint8_t *buf = calloc(1, MEM);
	assert_non_null(buf);
	struct gmem mem = gmem_one(buf, 0, MEM);
	struct e820_map m;
	map_16g(&m);
	struct pvh_cfg cfg = {.e820 = &m};
	struct nb_error err = {0};
	/* misaligned, outside memory, running off its end, a module outside memory, a bad map:
	 * an error and nothing written */
	assert_int_equal(pvh_write(&mem, AT + 4, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "aligned"));
	assert_int_equal(pvh_write(&mem, MEM, &cfg, &err), -1);
	assert_int_equal(pvh_write(&mem, MEM - 64, &cfg, &err), -1);
	assert_int_equal(pvh_write(&mem, UINT64_MAX - 7, &cfg, &err), -1);
	cfg.initrd = MEM - 16;
	cfg.initrd_size = 32;
	assert_int_equal(pvh_write(&mem, AT, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "module"));
	cfg.initrd_size = 0;
	m.e[3].addr = 2 * GIB; /* overlaps RAM */
	assert_int_equal(pvh_write(&mem, AT, &cfg, &err), -1);
	for (size_t i = 0; i < MEM; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_e820_16g_with_ecam),
	    cmocka_unit_test(test_start_info_read_back),
	    cmocka_unit_test(test_start_info_no_initrd),
	    cmocka_unit_test(test_start_info_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
