/* SPDX-License-Identifier: MIT */
/* Unit tests: src/boot (bzImage and vmlinux parsing and loading, e820, zero page, command
 * line and initrd placement) on images crafted in memory, plus deterministic mutation
 * loops that must never crash (run under ASan/UBSan in build-asan). */
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

#include "boot/bootparams.h"
#include "boot/bzimage.h"
#include "boot/e820.h"
#include "boot/vmlinux.h"

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)

struct img {
	uint8_t *b;
	size_t len;
};

static uint32_t rd32(const void *base, size_t off)
{
	uint32_t v;
	memcpy(&v, (const uint8_t *)base + off, 4);
	return v;
}

static uint64_t rd64(const void *base, size_t off)
{
	uint64_t v;
	memcpy(&v, (const uint8_t *)base + off, 8);
	return v;
}

static uint16_t rd16(const void *base, size_t off)
{
	uint16_t v;
	memcpy(&v, (const uint8_t *)base + off, 2);
	return v;
}

static void expect_msg(const struct nb_error *err, const char *needle)
{
	assert_true(memchr(err->msg, 0, sizeof(err->msg)) != NULL);
	if (!strstr(err->msg, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", err->msg, needle);
}

/* Guest memory for loading: calloc'ed (untouched pages cost nothing). */
struct guest {
	uint8_t *buf;
	struct gmem mem;
};

static struct guest guest_new(uint64_t size)
{
	struct guest g = {.buf = calloc(1, size)};
	assert_non_null(g.buf);
	g.mem = gmem_one(g.buf, 0, size);
	return g;
}

/* ================================================================== bzImage */

/*
 * The synthetic bzImage: setup_sects 4 (real-mode part 0xa00 bytes), then 0x1000 bytes of
 * protected-mode code whose payload, at +0x300, is 0x200 bytes starting with a gzip magic.
 */
#define BZ_SETUP  0xa00u
#define BZ_KSIZE  0x1000u
#define BZ_LEN	  (BZ_SETUP + BZ_KSIZE)
#define BZ_PL_OFF 0x300u
#define BZ_PL_LEN 0x200u

static struct bzimage_setup_header *BH(struct img *im)
{
	return (struct bzimage_setup_header *)(void *)(im->b + BZIMAGE_HDR_OFF);
}

static struct img bz_make_len(size_t len)
{
	struct img im = {.b = calloc(1, len), .len = len};
	assert_non_null(im.b);
	im.b[0x1ef] = 0xff; /* the sentinel, as real images have it */
	struct bzimage_setup_header *h = BH(&im);
	h->setup_sects = 4;
	h->syssize = BZ_KSIZE / 16;
	h->vid_mode = 0xffff;
	h->boot_flag = BZIMAGE_BOOT_FLAG;
	h->jump = 0x6aeb; /* jmp to 0x26c: the header is complete */
	h->header = BZIMAGE_MAGIC;
	h->version = 0x020f;
	h->loadflags = BZIMAGE_LOADED_HIGH;
	h->code32_start = 0x100000;
	h->initrd_addr_max = 0x7fffffff;
	h->kernel_alignment = 0x200000;
	h->relocatable_kernel = 1;
	h->min_alignment = 21;
	h->xloadflags = BZIMAGE_XLF_KERNEL_64 | BZIMAGE_XLF_CAN_BE_LOADED_ABOVE_4G;
	h->cmdline_size = 2047;
	h->payload_offset = BZ_PL_OFF;
	h->payload_length = BZ_PL_LEN;
	h->pref_address = 0x1000000;
	h->init_size = 0x800000;
	h->handover_offset = 0x190;
	h->kernel_info_offset = 0x1234;
	for (size_t i = BZ_SETUP; i < len; i++)
		im.b[i] = (uint8_t)(i * 7 + 3);
	im.b[BZ_SETUP + BZ_PL_OFF] = 0x1f;
	im.b[BZ_SETUP + BZ_PL_OFF + 1] = 0x8b;
	return im;
}

static struct img bz_make(void)
{
	return bz_make_len(BZ_LEN);
}

/* Parse a copy of exactly @len bytes (so ASan sees any read past the end). */
static int bz_parse_exact(const uint8_t *b, size_t len, struct bzimage_info *out,
			  struct nb_error *err)
{
	uint8_t *copy = testutil_copy_exact(b, len);
	memset(err, 0, sizeof(*err));
	int rc = bzimage_parse(copy, len, out, err);
	free(copy);
	return rc;
}

static void bz_reject_len(struct img *im, size_t len, const char *needle)
{
	struct bzimage_info info;
	struct nb_error err;
	if (bz_parse_exact(im->b, len, &info, &err) != -1)
		fail_msg("accepted a bzImage that should fail with \"%s\"", needle);
	assert_int_equal(err.code, NB_EFORMAT);
	expect_msg(&err, needle);
}

static void bz_reject(struct img *im, const char *needle)
{
	bz_reject_len(im, im->len, needle);
	free(im->b);
	im->b = NULL;
}

static void bz_accept(struct img *im, struct bzimage_info *info)
{
	struct nb_error err;
	int rc = bz_parse_exact(im->b, im->len, info, &err);
	if (rc != 0)
		fail_msg("rejected: %s", err.msg);
}

static void test_bz_valid(void **state)
{
	(void)state;
	struct img im = bz_make();
	struct bzimage_info info;
	bz_accept(&im, &info);
	assert_int_equal(info.version, 0x020f);
	assert_int_equal(info.setup_size, BZ_SETUP);
	assert_int_equal(info.kernel_offset, BZ_SETUP);
	assert_int_equal(info.kernel_size, BZ_KSIZE);
	assert_int_equal(info.syssize_bytes, BZ_KSIZE);
	assert_int_equal(info.pref_address, 0x1000000);
	assert_int_equal(info.load_addr, 0x1000000);
	assert_int_equal(info.init_size, 0x800000);
	assert_int_equal(info.kernel_alignment, 0x200000);
	assert_int_equal(info.min_alignment, 0x200000);
	assert_true(info.relocatable);
	assert_int_equal(info.loadflags, BZIMAGE_LOADED_HIGH);
	assert_int_equal(info.xloadflags,
			 BZIMAGE_XLF_KERNEL_64 | BZIMAGE_XLF_CAN_BE_LOADED_ABOVE_4G);
	assert_int_equal(info.code32_start, 0x100000);
	assert_int_equal(info.entry64_offset, 0x200);
	assert_int_equal(info.cmdline_size, 2047);
	assert_int_equal(info.initrd_addr_max, 0x7fffffff);
	assert_int_equal(info.payload_offset, BZ_PL_OFF);
	assert_int_equal(info.payload_length, BZ_PL_LEN);
	assert_int_equal(info.payload_fmt, BZIMAGE_PAYLOAD_GZIP);
	assert_string_equal(bzimage_payload_name(info.payload_fmt), "gzip");
	assert_int_equal(info.hdr_len, sizeof(struct bzimage_setup_header));
	assert_memory_equal(&info.hdr, im.b + BZIMAGE_HDR_OFF, sizeof(info.hdr));

	/* setup_sects 0 means 4 */
	BH(&im)->setup_sects = 0;
	bz_accept(&im, &info);
	assert_int_equal(info.setup_size, BZ_SETUP);
	assert_int_equal(info.hdr.setup_sects, 0);

	/* a larger setup: 0x1200 bytes of real-mode code */
	BH(&im)->setup_sects = 8;
	BH(&im)->syssize = (BZ_LEN - 0x1200) / 16;
	BH(&im)->payload_offset = 0x100;
	bz_accept(&im, &info);
	assert_int_equal(info.kernel_offset, 0x1200);
	assert_int_equal(info.kernel_size, BZ_LEN - 0x1200);
	assert_int_equal(info.payload_fmt, BZIMAGE_PAYLOAD_UNKNOWN);
	/* the smallest setup: the boot sector and one sector holding the header */
	BH(&im)->setup_sects = 1;
	BH(&im)->syssize = (BZ_LEN - 0x400) / 16;
	bz_accept(&im, &info);
	assert_int_equal(info.kernel_offset, 0x400);
	free(im.b);
}

static void test_bz_payload_formats(void **state)
{
	(void)state;
	static const struct {
		uint8_t m[6];
		enum bzimage_payload_fmt fmt;
		const char *name;
	} cases[] = {
	    {{0x1f, 0x8b}, BZIMAGE_PAYLOAD_GZIP, "gzip"},
	    {{0x1f, 0x9e}, BZIMAGE_PAYLOAD_GZIP, "gzip"},
	    {{'B', 'Z', 'h', '9'}, BZIMAGE_PAYLOAD_BZIP2, "bzip2"},
	    {{0x5d, 0, 0, 0x80}, BZIMAGE_PAYLOAD_LZMA, "lzma"},
	    {{0xfd, '7', 'z', 'X', 'Z', 0}, BZIMAGE_PAYLOAD_XZ, "xz"},
	    {{0x89, 'L', 'Z', 'O'}, BZIMAGE_PAYLOAD_LZO, "lzo"},
	    {{0x02, 0x21, 0x4c, 0x18}, BZIMAGE_PAYLOAD_LZ4, "lz4"},
	    {{0x28, 0xb5, 0x2f, 0xfd}, BZIMAGE_PAYLOAD_ZSTD, "zstd"},
	    {{0x7f, 'E', 'L', 'F'}, BZIMAGE_PAYLOAD_ELF, "elf"},
	    {{0x12, 0x34}, BZIMAGE_PAYLOAD_UNKNOWN, "unknown"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct img im = bz_make();
		memcpy(im.b + BZ_SETUP + BZ_PL_OFF, cases[i].m, 6);
		struct bzimage_info info;
		bz_accept(&im, &info);
		assert_int_equal(info.payload_fmt, cases[i].fmt);
		assert_string_equal(bzimage_payload_name(info.payload_fmt), cases[i].name);
		free(im.b);
	}
	/* a payload too short for its magic is unknown */
	struct img im = bz_make();
	memcpy(im.b + BZ_SETUP + BZ_PL_OFF, (const uint8_t[]){0x28, 0xb5, 0x2f, 0xfd}, 4);
	BH(&im)->payload_length = 3;
	struct bzimage_info info;
	bz_accept(&im, &info);
	assert_int_equal(info.payload_fmt, BZIMAGE_PAYLOAD_UNKNOWN);
	/* no payload */
	BH(&im)->payload_offset = 0;
	BH(&im)->payload_length = 0;
	bz_accept(&im, &info);
	assert_int_equal(info.payload_fmt, BZIMAGE_PAYLOAD_NONE);
	assert_string_equal(bzimage_payload_name(info.payload_fmt), "none");
	assert_string_equal(bzimage_payload_name((enum bzimage_payload_fmt)99), "unknown");
	free(im.b);
}

static void test_bz_too_small(void **state)
{
	(void)state;
	struct img im = bz_make();
	bz_reject_len(&im, 0, "too small");
	bz_reject_len(&im, 1, "too small");
	bz_reject_len(&im, 0x1f1, "too small");
	bz_reject_len(&im, 0x206, "too small");
	bz_reject_len(&im, 0x26b, "too small for a bzImage: 619 bytes");
	/* the header is complete but the protected-mode code is missing */
	bz_reject_len(&im, 0x26c, "setup_sects 4");
	bz_reject_len(&im, BZ_SETUP, "beyond the end of the file");
	/* ... or too short for the 64-bit entry */
	bz_reject_len(&im, BZ_SETUP + 0x200, "too short to hold the 64-bit entry");
	free(im.b);
}

static void test_bz_bad_magic(void **state)
{
	(void)state;
	struct img im = bz_make();
	BH(&im)->header = 0x53726449;
	bz_reject(&im, "bad magic 0x53726449");
	im = bz_make();
	im.b[0x202] = 'h';
	bz_reject(&im, "HdrS");
	/* an ELF file is not a bzImage */
	im = bz_make();
	memset(im.b, 0, 0x400);
	memcpy(im.b, ELFMAG, SELFMAG);
	bz_reject(&im, "bad magic");
	/* boot_flag */
	im = bz_make();
	BH(&im)->boot_flag = 0x55aa;
	bz_reject(&im, "boot_flag 0x55aa");
}

static void test_bz_old_protocol(void **state)
{
	(void)state;
	static const uint16_t too_old[] = {0x0000, 0x0100, 0x0200, 0x0201, 0x0204, 0x0205};
	for (size_t i = 0; i < sizeof(too_old) / sizeof(too_old[0]); i++) {
		struct img im = bz_make();
		BH(&im)->version = too_old[i];
		bz_reject_len(&im, im.len, "too old");
		bz_reject(&im, "need 2.06");
	}
	struct img im = bz_make();
	BH(&im)->version = 0x0205;
	bz_reject(&im, "version 2.05 (0x0205)");
	/* 2.06 - 2.11 parse, but have no xloadflags, hence no known 64-bit entry */
	for (uint16_t v = 0x0206; v < 0x020c; v++) {
		im = bz_make();
		BH(&im)->version = v;
		bz_reject_len(&im, im.len, "no 64-bit entry point");
		bz_reject(&im, "no xloadflags");
	}
	im = bz_make();
	BH(&im)->version = 0x020a;
	bz_reject(&im, "protocol 2.10");
	struct bzimage_info info;
	im = bz_make();
	BH(&im)->version = 0x020c;
	bz_accept(&im, &info);
	BH(&im)->version = 0x0300; /* a future protocol */
	bz_accept(&im, &info);
	free(im.b);
}

static void test_bz_no_64bit_entry(void **state)
{
	(void)state;
	struct img im = bz_make();
	BH(&im)->xloadflags = 0;
	bz_reject(&im, "XLF_KERNEL_64");
	im = bz_make();
	BH(&im)->xloadflags = (uint16_t)~BZIMAGE_XLF_KERNEL_64;
	bz_reject(&im, "xloadflags 0xfffe");
	/* not loaded high: a zImage */
	im = bz_make();
	BH(&im)->loadflags = BZIMAGE_CAN_USE_HEAP;
	bz_reject(&im, "LOADED_HIGH");
}

static void test_bz_jump_and_header_length(void **state)
{
	(void)state;
	struct img im = bz_make();
	BH(&im)->jump = 0x6ae9; /* not a short jmp */
	bz_reject(&im, "not a short jmp");
	im = bz_make();
	BH(&im)->jump = 0x61eb; /* header ends at 0x263: init_size cut off */
	bz_reject(&im, "ends at 0x263");
	im = bz_make();
	BH(&im)->jump = 0x80eb; /* rel8 -128: ends at 0x182 */
	bz_reject(&im, "jump offset -128");

	/* a 2.10-era header ending right after init_size: later fields read as 0 */
	struct bzimage_info info;
	im = bz_make();
	BH(&im)->jump = 0x62eb;
	bz_accept(&im, &info);
	assert_int_equal(info.hdr_len, 0x264 - 0x1f1);
	assert_int_equal(info.init_size, 0x800000);
	assert_int_equal(info.hdr.handover_offset, 0);
	assert_int_equal(info.hdr.kernel_info_offset, 0);
	/* a header longer than the fields we know: only those are kept */
	BH(&im)->jump = 0x7feb;
	bz_accept(&im, &info);
	assert_int_equal(info.hdr_len, sizeof(struct bzimage_setup_header));
	assert_int_equal(info.hdr.kernel_info_offset, 0x1234);
	free(im.b);
}

static void test_bz_setup_sects_beyond_file(void **state)
{
	(void)state;
	struct img im = bz_make();
	BH(&im)->setup_sects = 255; /* 0x20000 bytes of setup in a 0x1a00-byte file */
	bz_reject(&im, "setup_sects 255: the protected-mode code would start at 0x20000");
	im = bz_make();
	BH(&im)->setup_sects = 12; /* starts exactly at the end */
	bz_reject(&im, "setup_sects 12");
	im = bz_make();
	BH(&im)->setup_sects = 11; /* leaves 0x200 bytes: no room past the 64-bit entry */
	bz_reject(&im, "too short");
}

static void test_bz_syssize(void **state)
{
	(void)state;
	struct bzimage_info info;
	struct img im = bz_make();
	BH(&im)->syssize = 0;
	bz_reject(&im, "syssize 0");
	im = bz_make();
	BH(&im)->syssize = BZ_KSIZE / 16 + 1;
	bz_reject(&im, "syssize 0x101 (0x1010 bytes)");
	im = bz_make();
	BH(&im)->syssize = 0xffffffff; /* * 16 does not wrap */
	bz_reject(&im, "syssize 0xffffffff");
	/* smaller is fine (data appended, e.g. a signature) */
	im = bz_make();
	BH(&im)->syssize = BZ_KSIZE / 16 - 0x10;
	bz_accept(&im, &info);
	assert_int_equal(info.kernel_size, BZ_KSIZE);
	assert_int_equal(info.syssize_bytes, BZ_KSIZE - 0x100);
	/* the last paragraph may be partial in the file */
	im.len -= 15;
	BH(&im)->syssize = BZ_KSIZE / 16;
	bz_accept(&im, &info);
	assert_int_equal(info.kernel_size, BZ_KSIZE - 15);
	im.len -= 1;
	bz_reject(&im, "does not match");
}

static void test_bz_alignment(void **state)
{
	(void)state;
	static const uint32_t bad[] = {0,      1,	 0x800,	      0xfff,
				       0x3000, 0x200001, 0x80000000u, 0xffffffffu};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct img im = bz_make();
		BH(&im)->kernel_alignment = bad[i];
		BH(&im)->min_alignment = 0;
		bz_reject(&im, "kernel_alignment");
	}
	static const uint8_t bad_min[] = {1, 11, 22, 31, 32, 255};
	for (size_t i = 0; i < sizeof(bad_min) / sizeof(bad_min[0]); i++) {
		struct img im = bz_make();
		BH(&im)->min_alignment = bad_min[i];
		bz_reject(&im, "min_alignment");
	}
	struct bzimage_info info;
	struct img im = bz_make();
	BH(&im)->min_alignment = 0; /* then kernel_alignment is required */
	bz_accept(&im, &info);
	assert_int_equal(info.min_alignment, 0x200000);
	BH(&im)->min_alignment = 12;
	BH(&im)->pref_address = 0x1001000; /* aligned to the minimum only */
	bz_accept(&im, &info);
	assert_int_equal(info.min_alignment, 0x1000);
	BH(&im)->kernel_alignment = 1u << 30;
	BH(&im)->min_alignment = 30;
	BH(&im)->pref_address = 1ull << 30;
	bz_accept(&im, &info);
	free(im.b);
}

static void test_bz_pref_address(void **state)
{
	(void)state;
	struct bzimage_info info;
	struct img im = bz_make();
	/* 0: loaded at 1 MiB aligned up to kernel_alignment */
	BH(&im)->pref_address = 0;
	bz_accept(&im, &info);
	assert_int_equal(info.pref_address, 0);
	assert_int_equal(info.load_addr, 0x200000);
	BH(&im)->kernel_alignment = 0x1000;
	BH(&im)->min_alignment = 0;
	bz_accept(&im, &info);
	assert_int_equal(info.load_addr, 0x100000);
	BH(&im)->relocatable_kernel = 0;
	bz_reject(&im, "pref_address 0 in a kernel that is not relocatable");

	im = bz_make();
	BH(&im)->pref_address = 0x80000;
	bz_reject(&im, "pref_address 0x80000 is below 1 MiB");
	im = bz_make();
	BH(&im)->pref_address = 0x1010000;
	bz_reject(&im, "pref_address 0x1010000 is not aligned to 0x200000");
	/* a non-relocatable kernel's address is what it is */
	im = bz_make();
	BH(&im)->pref_address = 0x1010000;
	BH(&im)->relocatable_kernel = 0;
	bz_accept(&im, &info);
	assert_false(info.relocatable);
	assert_int_equal(info.load_addr, 0x1010000);
	free(im.b);
	/* beyond 46 bits, and wrapping */
	im = bz_make();
	BH(&im)->pref_address = (1ull << 46) - 0x200000;
	bz_reject(&im, "46-bit");
	im = bz_make();
	BH(&im)->pref_address = (1ull << 46) - 0x800000; /* init_size ends exactly there */
	bz_accept(&im, &info);
	free(im.b);
	im = bz_make();
	BH(&im)->pref_address = 0xffffffffffe00000ull;
	bz_reject(&im, "pref_address 0xffffffffffe00000");
}

static void test_bz_sizes(void **state)
{
	(void)state;
	struct bzimage_info info;
	struct img im = bz_make();
	BH(&im)->init_size = BZ_KSIZE - 1;
	bz_reject(&im, "init_size 0xfff is smaller than the kernel");
	im = bz_make();
	BH(&im)->init_size = 0;
	bz_reject(&im, "init_size 0");
	im = bz_make();
	BH(&im)->init_size = BZ_KSIZE;
	bz_accept(&im, &info);
	free(im.b);
	im = bz_make();
	BH(&im)->cmdline_size = 0;
	bz_reject(&im, "cmdline_size 0");
}

static void test_bz_payload_range(void **state)
{
	(void)state;
	struct bzimage_info info;
	struct img im = bz_make();
	BH(&im)->payload_length = BZ_KSIZE - BZ_PL_OFF + 1;
	bz_reject(&im, "payload [0x300, +0xd01) is beyond");
	im = bz_make();
	BH(&im)->payload_offset = BZ_KSIZE;
	BH(&im)->payload_length = 1;
	bz_reject(&im, "beyond the protected-mode code");
	/* offset + length wraps in 32 bits */
	im = bz_make();
	BH(&im)->payload_offset = 0xffffff00u;
	BH(&im)->payload_length = 0x200;
	bz_reject(&im, "payload [0xffffff00, +0x200)");
	im = bz_make();
	BH(&im)->payload_offset = 0x10;
	BH(&im)->payload_length = 0xfffffff0u;
	bz_reject(&im, "payload");
	im = bz_make();
	BH(&im)->payload_length = 0;
	bz_reject(&im, "payload_length 0");
	im = bz_make();
	BH(&im)->payload_offset = 0;
	bz_reject(&im, "payload_length 0x200 with payload_offset 0");
	/* exactly to the end is fine */
	im = bz_make();
	BH(&im)->payload_length = BZ_KSIZE - BZ_PL_OFF;
	bz_accept(&im, &info);
	assert_int_equal(info.payload_length, BZ_KSIZE - BZ_PL_OFF);
	free(im.b);
}

static void test_bz_load(void **state)
{
	(void)state;
	struct bzimage_info info;
	struct nb_error err;
	struct img im = bz_make();
	bz_accept(&im, &info);
	struct guest g = guest_new(32 * MIB);
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, info.load_addr, &err), 0);
	assert_memory_equal(g.buf + 0x1000000, im.b + BZ_SETUP, BZ_KSIZE);
	/* the 64-bit entry is at load address + 0x200 */
	assert_int_equal(g.buf[info.load_addr + info.entry64_offset], im.b[BZ_SETUP + 0x200]);
	assert_int_equal(g.buf[0x1000000 + BZ_KSIZE], 0);
	/* another aligned address */
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0x200000, &err), 0);
	assert_memory_equal(g.buf + 0x200000, im.b + BZ_SETUP, BZ_KSIZE);

	memset(g.buf, 0, 32 * MIB);
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0x1100000, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	expect_msg(&err, "not aligned to 0x200000");
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0, &err), -1);
	expect_msg(&err, "below 1 MiB");
	/* init_size must fit, not just the file bytes: 24 MiB + 8 MiB ends at 32 MiB exactly */
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0x1800000, &err), 0);
	memset(g.buf, 0, 32 * MIB);
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0x1a00000, &err), -1);
	expect_msg(&err, "init_size 0x800000");
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0xffffffffffe00000ull, &err),
			 -1);
	/* nothing was written by the failures */
	for (size_t i = 0; i < 32 * MIB; i += 4096)
		assert_int_equal(g.buf[i], 0);
	/* a different buffer than the one parsed */
	assert_int_equal(bzimage_load(&info, im.b, im.len - 1, &g.mem, info.load_addr, &err), -1);
	expect_msg(&err, "not the one parsed");
	/* not relocatable: only its own address */
	BH(&im)->relocatable_kernel = 0;
	bz_accept(&im, &info);
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0x200000, &err), -1);
	expect_msg(&err, "not relocatable");
	assert_int_equal(bzimage_load(&info, im.b, im.len, &g.mem, 0x1000000, &err), 0);
	/* guest memory that does not start at 0 */
	struct gmem hi = gmem_one(g.buf, 0x1000000, 16 * MIB);
	assert_int_equal(bzimage_load(&info, im.b, im.len, &hi, 0x1000000, &err), 0);
	assert_memory_equal(g.buf, im.b + BZ_SETUP, BZ_KSIZE);
	free(g.buf);
	free(im.b);
}

/* ================================================================== e820 */

static void check_layout(const struct e820_map *m, uint64_t size)
{
	struct nb_error err;
	assert_int_equal(e820_check(m, &err), 0);
	assert_true(m->n >= 3 && m->n <= 4);
	uint64_t ram = 0, covered = 0;
	for (unsigned i = 0; i < m->n; i++) {
		const struct e820_entry *e = &m->e[i];
		/* nothing in the PCI hole */
		assert_true(e->addr + e->size <= E820_HOLE_START || e->addr >= E820_HOLE_END);
		assert_true(e->type == E820_RAM || e->type == E820_RESERVED);
		if (i)
			assert_true(m->e[i - 1].addr + m->e[i - 1].size <= e->addr);
		if (e->type == E820_RAM)
			ram += e->size;
		covered += e->size;
	}
	/* the low reserved area is guest memory too: everything adds up to the size */
	assert_int_equal(covered, size);
	assert_int_equal(ram, size - (E820_HIGH_RAM_START - E820_LOW_RAM_END));
	assert_int_equal(e820_total(m, E820_RAM), ram);
	assert_int_equal(e820_total(m, E820_RESERVED), 0x60400);
	assert_int_equal(e820_low_size(size) + e820_high_size(size), size);
	/* fixed low part */
	assert_int_equal(m->e[0].addr, 0);
	assert_int_equal(m->e[0].size, 0x9fc00);
	assert_int_equal(m->e[0].type, E820_RAM);
	assert_int_equal(m->e[1].addr, 0x9fc00);
	assert_int_equal(m->e[1].addr + m->e[1].size, MIB);
	assert_int_equal(m->e[1].type, E820_RESERVED);
	assert_int_equal(m->e[2].addr, MIB);
	assert_int_equal(m->e[2].type, E820_RAM);
}

static void test_e820_sizes(void **state)
{
	(void)state;
	struct e820_map m;
	struct nb_error err;

	assert_int_equal(e820_build(&m, 64 * MIB, &err), 0);
	check_layout(&m, 64 * MIB);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.e[2].size, 63 * MIB);

	assert_int_equal(e820_build(&m, 3 * GIB, &err), 0);
	check_layout(&m, 3 * GIB);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.e[2].addr + m.e[2].size, 3 * GIB);
	assert_int_equal(e820_high_size(3 * GIB), 0);

	assert_int_equal(e820_build(&m, 3 * GIB + 4096, &err), 0);
	check_layout(&m, 3 * GIB + 4096);
	assert_int_equal(m.n, 4);
	assert_int_equal(m.e[3].addr, 4 * GIB);
	assert_int_equal(m.e[3].size, 4096);

	assert_int_equal(e820_build(&m, 5 * GIB, &err), 0);
	check_layout(&m, 5 * GIB);
	assert_int_equal(m.n, 4);
	assert_int_equal(m.e[2].addr + m.e[2].size, 3 * GIB);
	assert_int_equal(m.e[3].addr, 4 * GIB);
	assert_int_equal(m.e[3].size, 2 * GIB);
	assert_int_equal(e820_low_size(5 * GIB), 3 * GIB);
	assert_int_equal(e820_high_size(5 * GIB), 2 * GIB);

	assert_int_equal(e820_build(&m, 16 * GIB, &err), 0);
	check_layout(&m, 16 * GIB);
	assert_int_equal(m.e[3].addr, 4 * GIB);
	assert_int_equal(m.e[3].addr + m.e[3].size, 17 * GIB);

	assert_int_equal(e820_build(&m, 2 * MIB, &err), 0);
	check_layout(&m, 2 * MIB);
	assert_int_equal(e820_build(&m, E820_MAX_RAM, &err), 0);
	check_layout(&m, E820_MAX_RAM);

	/* a sweep: every layout is valid and adds up */
	for (uint64_t size = 2 * MIB; size <= 20 * GIB; size += 97 * MIB + 4096) {
		assert_int_equal(e820_build(&m, size, &err), 0);
		check_layout(&m, size);
	}
}

static void test_e820_bad_sizes(void **state)
{
	(void)state;
	struct e820_map m;
	struct nb_error err;
	static const uint64_t bad[] = {0,
				       4096,
				       MIB,
				       2 * MIB - 4096,
				       64 * MIB + 1,
				       64 * MIB + 2048,
				       E820_MAX_RAM + 4096,
				       UINT64_MAX,
				       UINT64_MAX - 4095};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(e820_build(&m, bad[i], &err), -1);
		assert_int_equal(err.code, NB_EINVAL);
		expect_msg(&err, "memory size");
		assert_int_equal(m.n, 0);
	}
}

static void test_e820_check(void **state)
{
	(void)state;
	struct e820_map m;
	struct nb_error err;
	assert_int_equal(e820_build(&m, 5 * GIB, &err), 0);

	struct e820_map b = m;
	b.e[1] = m.e[2];
	b.e[2] = m.e[1];
	assert_int_equal(e820_check(&b, &err), -1);
	expect_msg(&err, "not sorted");
	b = m;
	b.e[1].size += 1; /* runs into 1 MiB */
	assert_int_equal(e820_check(&b, &err), -1);
	expect_msg(&err, "e820 entry 2 at 0x100000 overlaps entry 1");
	b = m;
	b.e[3].size = 0;
	assert_int_equal(e820_check(&b, &err), -1);
	expect_msg(&err, "empty");
	b = m;
	b.e[2].type = 0;
	assert_int_equal(e820_check(&b, &err), -1);
	expect_msg(&err, "type 0");
	b = m;
	b.e[3].type = 6;
	assert_int_equal(e820_check(&b, &err), -1);
	b = m;
	b.e[3].size = UINT64_MAX - 100; /* wraps */
	assert_int_equal(e820_check(&b, &err), -1);
	expect_msg(&err, "ends beyond");
	b = m;
	b.e[3].size = E820_MAX_ADDR; /* no wrap, too high */
	assert_int_equal(e820_check(&b, &err), -1);
	b = m;
	b.n = E820_MAX_ENTRIES + 1;
	assert_int_equal(e820_check(&b, &err), -1);
	expect_msg(&err, "129 entries");
	b.n = 0;
	assert_int_equal(e820_check(&b, &err), 0);
	/* adjacent entries are fine */
	b = m;
	b.e[0].size = 0x9fc00;
	assert_int_equal(e820_check(&b, &err), 0);
}

static void test_e820_add(void **state)
{
	(void)state;
	struct e820_map m;
	struct nb_error err;
	assert_int_equal(e820_build(&m, 5 * GIB, &err), 0);
	/* PCIe ECAM in the hole, between the low and high RAM */
	assert_int_equal(e820_add(&m, 0xe0000000, 0x10000000, E820_RESERVED, &err), 0);
	assert_int_equal(m.n, 5);
	assert_int_equal(m.e[3].addr, 0xe0000000);
	assert_int_equal(m.e[4].addr, 4 * GIB);
	assert_int_equal(e820_check(&m, &err), 0);
	/* at the end */
	assert_int_equal(e820_add(&m, 1ull << 40, 4096, E820_NVS, &err), 0);
	assert_int_equal(m.e[5].addr, 1ull << 40);
	/* overlaps: with the previous and with the next entry */
	assert_int_equal(e820_add(&m, 0xe0000000 + 0x0fffffff, 2, E820_ACPI, &err), -1);
	expect_msg(&err, "overlaps");
	assert_int_equal(e820_add(&m, 0xd0000000, 0x10000001, E820_ACPI, &err), -1);
	expect_msg(&err, "overlaps [0xe0000000");
	assert_int_equal(e820_add(&m, 0, 1, E820_ACPI, &err), -1);
	assert_int_equal(e820_add(&m, 0xd0000000, 0, E820_ACPI, &err), -1);
	expect_msg(&err, "empty");
	assert_int_equal(e820_add(&m, UINT64_MAX - 10, 100, E820_ACPI, &err), -1);
	assert_int_equal(e820_add(&m, 0xd0000000, 4096, 9, &err), -1);
	assert_int_equal(m.n, 6);
	assert_int_equal(e820_check(&m, &err), 0);
	/* fill up: 128 entries, then full */
	while (m.n < E820_MAX_ENTRIES)
		assert_int_equal(
		    e820_add(&m, 0xc0000000 + (uint64_t)m.n * 0x10000, 0x1000, E820_ACPI, &err), 0);
	assert_int_equal(e820_check(&m, &err), 0);
	assert_int_equal(e820_add(&m, 0xd0000000, 4096, E820_ACPI, &err), -1);
	expect_msg(&err, "full");
	/* a broken map is refused */
	m.n = 200;
	assert_int_equal(e820_add(&m, 0xd0000000, 4096, E820_ACPI, &err), -1);
}

/* ================================================================== zero page */

static struct bootparams *bp_new(void)
{
	struct bootparams *bp = malloc(sizeof(*bp));
	assert_non_null(bp);
	memset(bp, 0xee, sizeof(*bp)); /* fill must overwrite everything */
	return bp;
}

static void test_bootparams_round_trip(void **state)
{
	(void)state;
	struct img im = bz_make();
	BH(&im)->loadflags |= BZIMAGE_KEEP_SEGMENTS | BZIMAGE_QUIET_FLAG;
	/* loader-written fields with junk in the image must not reach the guest */
	BH(&im)->setup_data = 0xdeadbeefcafef00dull;
	BH(&im)->hardware_subarch = 2;
	BH(&im)->hardware_subarch_data = 0x1234;
	BH(&im)->ext_loader_ver = 7;
	BH(&im)->ext_loader_type = 9;
	BH(&im)->ramdisk_image = 0x1111;
	BH(&im)->cmd_line_ptr = 0x2222;
	struct bzimage_info info;
	bz_accept(&im, &info);
	struct e820_map m;
	struct nb_error err;
	assert_int_equal(e820_build(&m, 64 * MIB, &err), 0);
	struct bootparams_cfg cfg = {.kernel_addr = 0x1000000,
				     .cmdline = BOOTPARAMS_CMDLINE_GPA,
				     .initrd = 0x3e00000,
				     .initrd_size = 0x123456,
				     .acpi_rsdp = 0xe0000,
				     .e820 = &m};
	struct bootparams *bp = bp_new();
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), 0);
	const uint8_t *raw = (const uint8_t *)bp;

	/* the image's header, at 0x1f1 */
	assert_int_equal(raw[0x1f1], 4);
	assert_int_equal(rd32(raw, 0x1f4), BZ_KSIZE / 16);
	assert_int_equal(rd16(raw, 0x1fa), 0xffff);
	assert_int_equal(rd16(raw, 0x1fe), 0xaa55);
	assert_memory_equal(raw + 0x202, "HdrS", 4);
	assert_int_equal(rd16(raw, 0x206), 0x020f);
	assert_int_equal(rd32(raw, 0x22c), 0x7fffffff);
	assert_int_equal(rd32(raw, 0x230), 0x200000);
	assert_int_equal(raw[0x234], 1);
	assert_int_equal(raw[0x235], 21);
	assert_int_equal(rd16(raw, 0x236), 3);
	assert_int_equal(rd32(raw, 0x238), 2047);
	assert_int_equal(rd32(raw, 0x248), BZ_PL_OFF);
	assert_int_equal(rd64(raw, 0x258), 0x1000000);
	assert_int_equal(rd32(raw, 0x260), 0x800000);
	assert_int_equal(rd32(raw, 0x268), 0x1234);
	/* what the loader writes */
	assert_int_equal(rd64(raw, 0x250), 0);
	assert_int_equal(rd32(raw, 0x23c), 0);
	assert_int_equal(rd64(raw, 0x240), 0);
	assert_int_equal(raw[0x226], 0);
	assert_int_equal(raw[0x227], 0);
	assert_int_equal(raw[0x210], 0xff);
	assert_int_equal(raw[0x211],
			 BZIMAGE_LOADED_HIGH | BZIMAGE_QUIET_FLAG | BZIMAGE_CAN_USE_HEAP);
	assert_int_equal(rd32(raw, 0x214), 0x1000000);
	assert_int_equal(rd16(raw, 0x224), 0xfe00);
	assert_int_equal(rd32(raw, 0x228), 0x20000);
	assert_int_equal(rd32(raw, 0x0c8), 0);
	assert_int_equal(rd32(raw, 0x218), 0x3e00000);
	assert_int_equal(rd32(raw, 0x0c0), 0);
	assert_int_equal(rd32(raw, 0x21c), 0x123456);
	assert_int_equal(rd32(raw, 0x0c4), 0);
	assert_int_equal(rd64(raw, 0x070), 0xe0000);
	assert_int_equal(raw[0x1e8], 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(rd64(raw, 0x2d0 + 20 * i), m.e[i].addr);
		assert_int_equal(rd64(raw, 0x2d0 + 20 * i + 8), m.e[i].size);
		assert_int_equal(rd32(raw, 0x2d0 + 20 * i + 16), m.e[i].type);
	}
	assert_int_equal(rd64(raw, 0x2d0 + 20 * 2 + 8), 63 * MIB);
	/* everything else is zero: the sentinel, the rest of the page */
	assert_int_equal(raw[0x1ef], 0);
	for (size_t i = 0; i < 0x70; i++)
		assert_int_equal(raw[i], 0);
	for (size_t i = 0x78; i < 0xc0; i++)
		assert_int_equal(raw[i], 0);
	for (size_t i = 0xcc; i < 0x1e8; i++)
		assert_int_equal(raw[i], 0);
	for (size_t i = 0x1e9; i < 0x1f1; i++)
		assert_int_equal(raw[i], 0);
	for (size_t i = 0x26c; i < 0x2d0; i++)
		assert_int_equal(raw[i], 0);
	for (size_t i = 0x2d0 + 3 * 20; i < BOOTPARAMS_SIZE; i++)
		assert_int_equal(raw[i], 0);

	/* no initrd, no RSDP */
	cfg.initrd = 0;
	cfg.initrd_size = 0;
	cfg.acpi_rsdp = 0;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), 0);
	assert_int_equal(rd32(raw, 0x218), 0);
	assert_int_equal(rd32(raw, 0x21c), 0);
	assert_int_equal(rd64(raw, 0x070), 0);

	/* a shorter header in the image: the fields it lacks stay 0 */
	BH(&im)->jump = 0x62eb;
	bz_accept(&im, &info);
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), 0);
	assert_int_equal(rd32(raw, 0x260), 0x800000);
	assert_int_equal(rd32(raw, 0x264), 0);
	assert_int_equal(rd32(raw, 0x268), 0);
	free(bp);
	free(im.b);
}

static void test_bootparams_above_4g(void **state)
{
	(void)state;
	struct img im = bz_make();
	struct bzimage_info info;
	bz_accept(&im, &info);
	struct e820_map m;
	struct nb_error err;
	assert_int_equal(e820_build(&m, 16 * GIB, &err), 0);
	struct bootparams_cfg cfg = {.kernel_addr = 0x140000000ull,
				     .cmdline = 0x123456000ull,
				     .initrd = 0x140000000ull,
				     .initrd_size = 0x100001000ull,
				     .e820 = &m};
	struct bootparams *bp = bp_new();
	const uint8_t *raw = (const uint8_t *)bp;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), 0);
	assert_int_equal(rd32(raw, 0x228), 0x23456000);
	assert_int_equal(rd32(raw, 0x0c8), 0x1);
	assert_int_equal(rd32(raw, 0x218), 0x40000000);
	assert_int_equal(rd32(raw, 0x0c0), 0x1);
	assert_int_equal(rd32(raw, 0x21c), 0x1000);
	assert_int_equal(rd32(raw, 0x0c4), 0x1);
	assert_int_equal(rd32(raw, 0x214), 0x100000); /* unchanged: no 32-bit address */
	assert_int_equal(raw[0x1e8], 4);

	/* without XLF_CAN_BE_LOADED_ABOVE_4G */
	BH(&im)->xloadflags = BZIMAGE_XLF_KERNEL_64;
	bz_accept(&im, &info);
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	expect_msg(&err, "command line at 0x123456000 is above 4 GiB");
	cfg.cmdline = 0x20000;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	expect_msg(&err, "beyond initrd_addr_max 0x7fffffff");
	/* initrd_addr_max is the last byte the initrd may occupy */
	cfg.initrd = 0x7ff00000;
	cfg.initrd_size = 0x100000;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), 0);
	cfg.initrd_size = 0x100001;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	free(bp);
	free(im.b);
}

static void test_bootparams_errors(void **state)
{
	(void)state;
	struct img im = bz_make();
	struct bzimage_info info;
	bz_accept(&im, &info);
	struct e820_map m;
	struct nb_error err;
	assert_int_equal(e820_build(&m, 64 * MIB, &err), 0);
	struct bootparams *bp = bp_new();
	struct bootparams_cfg good = {.kernel_addr = 0x1000000, .cmdline = 0x20000, .e820 = &m};
	struct bootparams_cfg cfg = good;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), 0);

	cfg.e820 = NULL;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	expect_msg(&err, "e820");
	struct e820_map empty = {.n = 0};
	cfg.e820 = &empty;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	struct e820_map bad = m;
	bad.e[1].addr = 0;
	cfg.e820 = &bad;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	expect_msg(&err, "e820 entry 1");

	cfg = good;
	cfg.cmdline = 0;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	expect_msg(&err, "cmd_line_ptr 0");
	cfg = good;
	cfg.kernel_addr = 0x10000;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	expect_msg(&err, "below 1 MiB");
	cfg = good;
	cfg.initrd = 0x2000000;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	expect_msg(&err, "size 0");
	cfg = good;
	cfg.initrd = UINT64_MAX - 0xfff;
	cfg.initrd_size = 0x2000;
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), -1);
	expect_msg(&err, "wraps");
	cfg.initrd_size = 0x1000; /* ends at exactly 2^64: last byte is UINT64_MAX */
	assert_int_equal(bootparams_fill(bp, &info, &cfg, &err), 0);
	free(bp);
	free(im.b);
}

static void test_cmdline(void **state)
{
	(void)state;
	struct nb_error err;
	assert_int_equal(bootparams_cmdline_check("", 2047, &err), 0);
	assert_int_equal(bootparams_cmdline_check("console=ttyS0", 2047, &err), 13);
	assert_int_equal(bootparams_cmdline_check("abcd", 4, &err), 4);
	assert_int_equal(bootparams_cmdline_check("abcde", 4, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	expect_msg(&err, "5 bytes, longer than the kernel's cmdline_size 4");
	assert_int_equal(bootparams_cmdline_check("a", 0, &err), -1);
	assert_int_equal(bootparams_cmdline_check(NULL, 10, &err), -1);

	/* a long line: exactly cmdline_size characters, in a buffer of exactly that + NUL */
	char *s = malloc(2048);
	assert_non_null(s);
	memset(s, 'x', 2047);
	s[2047] = 0;
	assert_int_equal(bootparams_cmdline_check(s, 2047, &err), 2047);
	assert_int_equal(bootparams_cmdline_check(s, 2046, &err), -1);
	expect_msg(&err, "2047 bytes");

	/* placement */
	struct guest g = guest_new(1 * MIB);
	memset(g.buf, 0xaa, 1 * MIB);
	assert_int_equal(
	    bootparams_cmdline_place(&g.mem, 0x20000, "console=ttyS0 quiet", 2047, &err), 0);
	assert_string_equal((const char *)g.buf + 0x20000, "console=ttyS0 quiet");
	assert_int_equal(g.buf[0x20000 + 20], 0xaa);
	/* the NUL must fit too */
	assert_int_equal(bootparams_cmdline_place(&g.mem, 1 * MIB - 4, "abc", 2047, &err), 0);
	assert_int_equal(g.buf[MIB - 1], 0);
	assert_int_equal(bootparams_cmdline_place(&g.mem, 1 * MIB - 3, "abc", 2047, &err), -1);
	expect_msg(&err, "not inside guest memory");
	assert_int_equal(bootparams_cmdline_place(&g.mem, UINT64_MAX - 1, "abc", 2047, &err), -1);
	assert_int_equal(bootparams_cmdline_place(&g.mem, 0x20000, s, 2046, &err), -1);
	expect_msg(&err, "cmdline_size 2046");
	assert_int_equal(g.buf[0x20000 + 20], 0xaa); /* nothing written */
	assert_int_equal(bootparams_cmdline_place(&g.mem, 0x20000, s, 2047, &err), 0);
	assert_int_equal(strlen((const char *)g.buf + 0x20000), 2047);
	free(g.buf);
	free(s);
}

static void expect_initrd(uint64_t size, uint64_t addr_max, uint64_t ram, uint64_t kstart,
			  uint64_t ksize, gpa_t want)
{
	struct nb_error err;
	gpa_t at = 1;
	int rc = bootparams_initrd_place(size, addr_max, ram, kstart, ksize, &at, &err);
	if (rc != 0)
		fail_msg("initrd %#llx not placed: %s", (unsigned long long)size, err.msg);
	if (at != want)
		fail_msg("initrd %#llx placed at %#llx, expected %#llx", (unsigned long long)size,
			 (unsigned long long)at, (unsigned long long)want);
}

static void expect_no_initrd(uint64_t size, uint64_t addr_max, uint64_t ram, uint64_t kstart,
			     uint64_t ksize, const char *needle)
{
	struct nb_error err;
	gpa_t at = 1;
	assert_int_equal(bootparams_initrd_place(size, addr_max, ram, kstart, ksize, &at, &err),
			 -1);
	assert_int_equal(at, 0);
	assert_int_equal(err.code, NB_EINVAL);
	expect_msg(&err, needle);
}

static void test_initrd_place(void **state)
{
	(void)state;
	const uint64_t k = 0x1000000, ks = 0x800000; /* kernel [16 MiB, 24 MiB) */
	/* top of RAM */
	expect_initrd(MIB, 0x7fffffff, 64 * MIB, k, ks, 63 * MIB);
	expect_initrd(0x12345, 0x7fffffff, 64 * MIB, k, ks, (64 * MIB - 0x12345) & ~0xfffull);
	expect_initrd(40 * MIB, 0x7fffffff, 64 * MIB, k, ks, 24 * MIB); /* touches the kernel */
	/* initrd_addr_max: the last byte it may use */
	expect_initrd(MIB, 0x7fffffff, 16 * GIB, k, ks, 2 * GIB - MIB);
	expect_initrd(MIB, 0x1ffffff, 64 * MIB, k, ks, 31 * MIB);
	expect_initrd(MIB, 0x1fffffe, 64 * MIB, k, ks, 0x1eff000); /* ends at 0x1fff000 */
	/* the 3 GiB hole, whatever initrd_addr_max says */
	expect_initrd(MIB, UINT64_MAX, 5 * GIB, k, ks, 3 * GIB - MIB);
	expect_initrd(MIB, 0xffffffff, 3 * GIB, k, ks, 3 * GIB - MIB);
	expect_initrd(MIB, UINT32_MAX, 2 * GIB, k, ks, 2 * GIB - MIB);
	/* overlapping the kernel at the top: goes just below it */
	expect_initrd(9 * MIB, 0x7fffffff, 32 * MIB, k, ks, 7 * MIB);
	expect_initrd(10 * MIB, 0x1ffffff, 64 * MIB, k, ks, 6 * MIB);
	expect_initrd(15 * MIB, 0x7fffffff, 32 * MIB, k, ks, 1 * MIB);
	/* kernel above the limit: irrelevant */
	expect_initrd(MIB, 0x7fffffff, 16 * GIB, 4 * GIB, 64 * MIB, 2 * GIB - MIB);

	/* too big */
	expect_no_initrd(64 * MIB, 0x7fffffff, 64 * MIB, k, ks, "does not fit");
	expect_no_initrd(63 * MIB + 1, 0x7fffffff, 64 * MIB, 0x200000, 0, "does not fit");
	expect_no_initrd(16 * MIB, 0x7fffffff, 32 * MIB, k, ks, "initrd of 0x1000000 bytes");
	expect_no_initrd(4 * GIB, UINT64_MAX, 16 * GIB, k, ks, "does not fit");
	expect_no_initrd(UINT64_MAX, UINT64_MAX, 16 * GIB, k, ks, "does not fit");
	expect_no_initrd(MIB, 0xfffff, 64 * MIB, k, ks, "initrd_addr_max 0xfffff");
	expect_no_initrd(MIB, 0x7fffffff, 2 * MIB - 4096, k, ks, "does not fit");
	expect_no_initrd(0, 0x7fffffff, 64 * MIB, k, ks, "empty");
	expect_no_initrd(MIB, 0x7fffffff, 64 * MIB, UINT64_MAX - 10, 100, "wraps");
	/* the whole space taken by the kernel */
	expect_no_initrd(4096, 0x7fffffff, 64 * MIB, MIB, 63 * MIB, "outside the kernel");
	expect_initrd(4096, 0x7fffffff, 64 * MIB, MIB, 63 * MIB - 4096, 64 * MIB - 4096);

	/* sweep: whatever is placed is aligned, inside the limits and off the kernel */
	uint64_t seed = 0x696e697472640000ull;
	for (unsigned it = 0; it < 20000; it++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t ram = ((seed >> 20) % (8 * GIB) + 2 * MIB) & ~0xfffull;
		uint64_t size = (seed >> 7) % (ram / 2 + 1) + 1;
		uint64_t kstart = ((seed >> 13) % ram) & ~0xfffull;
		uint64_t ksize = (seed >> 29) % (ram / 4 + 1);
		uint64_t amax = it & 1 ? 0x7fffffff : ((seed >> 3) % (4 * GIB));
		gpa_t at;
		struct nb_error err;
		if (bootparams_initrd_place(size, amax, ram, kstart, ksize, &at, &err) != 0)
			continue;
		assert_int_equal(at & 0xfff, 0);
		assert_true(at >= MIB);
		assert_true(at + size <= e820_low_size(ram));
		assert_true(at + size - 1 <= amax);
		assert_false(at < kstart + ksize && kstart < at + size);
	}
}

/* ================================================================== vmlinux */

/*
 * The synthetic vmlinux (like Linux's: virtual addresses in the kernel map, physical
 * addresses at 16 MiB, e_entry physical):
 *   0x0000 Ehdr, 4 Phdrs at 0x40
 *   0x0200 notes: GNU build-id, Xen ENTRY (type 1, 8 bytes), Xen PHYS32_ENTRY
 *   0x1000 text R X  paddr 0x1000000, 0x400 bytes
 *   0x2000 data R W  paddr 0x1002000, 0x100 bytes in the file, 0x3000 in memory
 */
#define VL_LEN	    0x2100u
#define VL_NPHDR    4
#define VL_NOTE_OFF 0x200u
#define VL_TEXT_PA  0x1000000ull
#define VL_DATA_PA  0x1002000ull
#define VL_PVH	    (VL_TEXT_PA + 0x100)
#define VL_VBASE    0xffffffff80000000ull

static Elf64_Ehdr *VEH(struct img *im)
{
	return (Elf64_Ehdr *)(void *)im->b;
}

static Elf64_Phdr *VPH(struct img *im, unsigned i)
{
	return (Elf64_Phdr *)(void *)(im->b + 64 + i * sizeof(Elf64_Phdr));
}

/* Append a note at @at with @align; returns the offset after it. */
static size_t put_note(uint8_t *b, size_t at, size_t align, uint32_t namesz, const char *name,
		       uint32_t type, uint32_t descsz, const void *desc)
{
	Elf64_Nhdr nh = {.n_namesz = namesz, .n_descsz = descsz, .n_type = type};
	memcpy(b + at, &nh, sizeof(nh));
	at += sizeof(nh);
	memcpy(b + at, name, namesz);
	at += (namesz + align - 1) & ~(align - 1);
	memcpy(b + at, desc, descsz);
	at += (descsz + align - 1) & ~(align - 1);
	return at;
}

static void set_vphdr(Elf64_Phdr *p, uint32_t type, uint32_t flags, uint64_t off, uint64_t va,
		      uint64_t pa, uint64_t filesz, uint64_t memsz, uint64_t align)
{
	*p = (Elf64_Phdr){.p_type = type,
			  .p_flags = flags,
			  .p_offset = off,
			  .p_vaddr = va,
			  .p_paddr = pa,
			  .p_filesz = filesz,
			  .p_memsz = memsz,
			  .p_align = align};
}

/* Notes with the PVH note of @descsz bytes holding @pvh; returns their length. */
static size_t vl_notes(uint8_t *b, size_t align, uint32_t descsz, uint64_t pvh)
{
	static const uint8_t build_id[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	const uint64_t xen_entry = VL_VBASE + VL_TEXT_PA;
	size_t at = VL_NOTE_OFF;
	at = put_note(b, at, align, 4, "GNU", NT_GNU_BUILD_ID, sizeof(build_id), build_id);
	at = put_note(b, at, align, 4, "Xen", 1, 8, &xen_entry);
	at = put_note(b, at, align, 4, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, descsz, &pvh);
	return at - VL_NOTE_OFF;
}

static struct img vl_make(void)
{
	struct img im = {.b = calloc(1, VL_LEN), .len = VL_LEN};
	assert_non_null(im.b);
	Elf64_Ehdr *e = VEH(&im);
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = VL_TEXT_PA;
	e->e_phoff = 64;
	e->e_ehsize = sizeof(Elf64_Ehdr);
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = VL_NPHDR;
	set_vphdr(VPH(&im, 0), PT_LOAD, PF_R | PF_X, 0x1000, VL_VBASE + VL_TEXT_PA, VL_TEXT_PA,
		  0x400, 0x400, 0x200000);
	set_vphdr(VPH(&im, 1), PT_LOAD, PF_R | PF_W, 0x2000, VL_VBASE + VL_DATA_PA, VL_DATA_PA,
		  0x100, 0x3000, 0x200000);
	size_t nlen = vl_notes(im.b, 4, 4, VL_PVH);
	set_vphdr(VPH(&im, 2), PT_NOTE, PF_R, VL_NOTE_OFF, VL_VBASE + VL_TEXT_PA + VL_NOTE_OFF, 0,
		  nlen, nlen, 4);
	set_vphdr(VPH(&im, 3), PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 0, 16);
	for (size_t i = 0x1000; i < 0x1400; i++)
		im.b[i] = (uint8_t)(i * 13 + 1);
	for (size_t i = 0x2000; i < 0x2100; i++)
		im.b[i] = (uint8_t)(i * 5 + 2);
	return im;
}

static int vl_parse_exact(const uint8_t *b, size_t len, struct vmlinux_info *out,
			  struct nb_error *err)
{
	uint8_t *copy = testutil_copy_exact(b, len);
	memset(err, 0, sizeof(*err));
	int rc = vmlinux_parse(copy, len, out, err);
	free(copy);
	return rc;
}

static void vl_reject_len(struct img *im, size_t len, const char *needle)
{
	struct vmlinux_info info;
	struct nb_error err;
	if (vl_parse_exact(im->b, len, &info, &err) != -1)
		fail_msg("accepted a vmlinux that should fail with \"%s\"", needle);
	assert_int_equal(err.code, NB_EFORMAT);
	expect_msg(&err, needle);
}

static void vl_reject(struct img *im, const char *needle)
{
	vl_reject_len(im, im->len, needle);
	free(im->b);
	im->b = NULL;
}

static void vl_accept(struct img *im, struct vmlinux_info *info)
{
	struct nb_error err;
	if (vl_parse_exact(im->b, im->len, info, &err) != 0)
		fail_msg("rejected: %s", err.msg);
}

static void test_vl_valid(void **state)
{
	(void)state;
	struct img im = vl_make();
	struct vmlinux_info info;
	vl_accept(&im, &info);
	assert_int_equal(info.entry, VL_TEXT_PA);
	assert_true(info.has_pvh);
	assert_int_equal(info.pvh_entry, VL_PVH);
	assert_int_equal(info.nsegs, 2);
	assert_int_equal(info.lo, VL_TEXT_PA);
	assert_int_equal(info.hi, VL_DATA_PA + 0x3000);
	assert_int_equal(info.segs[0].paddr, VL_TEXT_PA);
	assert_int_equal(info.segs[0].offset, 0x1000);
	assert_int_equal(info.segs[0].filesz, 0x400);
	assert_int_equal(info.segs[0].flags, PF_R | PF_X);
	assert_int_equal(info.segs[1].memsz, 0x3000);

	/* an 8-byte PVH note, and 8-byte aligned notes */
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	size_t nlen = vl_notes(im.b, 8, 8, VL_PVH + 4);
	VPH(&im, 2)->p_filesz = VPH(&im, 2)->p_memsz = nlen;
	VPH(&im, 2)->p_align = 8;
	vl_accept(&im, &info);
	assert_true(info.has_pvh);
	assert_int_equal(info.pvh_entry, VL_PVH + 4);

	/* without the PVH note: fine, has_pvh false */
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	nlen = put_note(im.b, VL_NOTE_OFF, 4, 4, "GNU", NT_GNU_BUILD_ID, 4, "abcd") - VL_NOTE_OFF;
	VPH(&im, 2)->p_filesz = nlen;
	VPH(&im, 2)->p_align = 4;
	vl_accept(&im, &info);
	assert_false(info.has_pvh);
	assert_int_equal(info.pvh_entry, 0);
	/* no PT_NOTE at all */
	VPH(&im, 2)->p_type = PT_NULL;
	vl_accept(&im, &info);
	assert_false(info.has_pvh);
	/* "Xen" of type 18 with another name length, or name "Xe\0\0": not the note */
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	uint32_t pvh = VL_PVH;
	size_t at = put_note(im.b, VL_NOTE_OFF, 4, 3, "Xen", 18, 4, &pvh);
	at = put_note(im.b, at, 4, 4, "Xe\0", 18, 4, &pvh);
	VPH(&im, 2)->p_type = PT_NOTE;
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF;
	vl_accept(&im, &info);
	assert_false(info.has_pvh);
	/* trailing bytes shorter than a note header are ignored; a last note may lack padding */
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF + 11;
	vl_accept(&im, &info);
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	at = put_note(im.b, VL_NOTE_OFF, 4, 4, "Xen", 18, 4, &pvh);
	at = put_note(im.b, at, 4, 4, "GNU", 1, 2, "ab");
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF - 2;
	vl_accept(&im, &info);
	assert_true(info.has_pvh);
	/* Linux's per-CPU segment: virtual address 0, overlapping nothing physically */
	set_vphdr(VPH(&im, 3), PT_LOAD, PF_R | PF_W, 0x2000, 0, VL_DATA_PA + 0x3000, 0x100, 0x1000,
		  0x1000);
	vl_accept(&im, &info);
	assert_int_equal(info.nsegs, 3);
	assert_int_equal(info.hi, VL_DATA_PA + 0x4000);
	/* an empty PT_LOAD with nonsense fields is skipped */
	set_vphdr(VPH(&im, 3), PT_LOAD, PF_R, UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, 0, 3);
	vl_accept(&im, &info);
	assert_int_equal(info.nsegs, 2);
	free(im.b);
}

static void test_vl_header_errors(void **state)
{
	(void)state;
	struct img im = vl_make();
	vl_reject_len(&im, 0, "bad magic");
	vl_reject_len(&im, 3, "bad magic");
	vl_reject_len(&im, 63, "truncated ELF header");
	vl_reject_len(&im, 64, "program headers out of file");
	vl_reject_len(&im, 64 + VL_NPHDR * 56 - 1, "program headers out of file");
	vl_reject_len(&im, VL_NOTE_OFF + 8,
		      "segment 0: file range [0x1000, +0x400) beyond file size 520");
	vl_reject_len(&im, 0x1400, "segment 1: file range");
	im.b[1] = 'e';
	vl_reject(&im, "bad magic");
	/* a bzImage is not a vmlinux */
	struct img bz = bz_make();
	vl_reject(&bz, "bad magic");
	im = vl_make();
	im.b[EI_CLASS] = ELFCLASS32;
	vl_reject(&im, "64-bit");
	im = vl_make();
	im.b[EI_DATA] = ELFDATA2MSB;
	vl_reject(&im, "little-endian");
	im = vl_make();
	VEH(&im)->e_machine = EM_386;
	vl_reject(&im, "e_machine=3");
	im = vl_make();
	VEH(&im)->e_type = ET_DYN;
	vl_reject(&im, "e_type=3, expected ET_EXEC");
	im = vl_make();
	VEH(&im)->e_type = ET_REL;
	vl_reject(&im, "ET_EXEC");
	im = vl_make();
	VEH(&im)->e_phentsize = 32;
	vl_reject(&im, "e_phentsize 32");
	im = vl_make();
	VEH(&im)->e_phnum = 0;
	vl_reject(&im, "e_phnum 0");
	im = vl_make();
	VEH(&im)->e_phnum = VMLINUX_MAX_PHNUM + 1;
	vl_reject(&im, "e_phnum 129");
	im = vl_make();
	VEH(&im)->e_phoff = UINT64_MAX - 8;
	vl_reject(&im, "program headers out of file");
	im = vl_make();
	VEH(&im)->e_phoff = UINT64_MAX - 56 * VL_NPHDR + 1; /* wraps to exactly 0 */
	vl_reject(&im, "program headers out of file");
}

static void test_vl_segment_errors(void **state)
{
	(void)state;
	struct img im = vl_make();
	VPH(&im, 1)->p_filesz = 0x101;
	vl_reject(&im, "segment 1: file range [0x2000, +0x101) beyond file size");
	im = vl_make();
	VPH(&im, 1)->p_offset = UINT64_MAX - 0x80;
	vl_reject(&im, "beyond file size");
	im = vl_make();
	VPH(&im, 0)->p_memsz = 0x3ff;
	vl_reject(&im, "segment 0: p_filesz 0x400 > p_memsz 0x3ff");
	im = vl_make();
	VPH(&im, 0)->p_paddr = 0xff000;
	VEH(&im)->e_entry = 0xff000;
	vl_reject(&im, "p_paddr 0xff000 is below 1 MiB");
	im = vl_make();
	VPH(&im, 1)->p_paddr = UINT64_MAX - 0x1000;
	vl_reject(&im, "ends beyond 2^46");
	im = vl_make();
	VPH(&im, 1)->p_paddr = (1ull << 46) - 0x2fff;
	vl_reject(&im, "ends beyond 2^46");
	im = vl_make();
	VPH(&im, 1)->p_align = 0x3000;
	vl_reject(&im, "p_align 0x3000 not a power of 2");
	/* physical overlap, whatever the virtual addresses say */
	im = vl_make();
	VPH(&im, 1)->p_paddr = VL_TEXT_PA + 0x3ff;
	vl_reject(&im, "segment 1 [0x10003ff, +0x3000) overlaps segment 0");
	im = vl_make();
	VPH(&im, 1)->p_paddr = VL_TEXT_PA - 0x3000; /* adjacent below: fine */
	struct vmlinux_info adj;
	vl_accept(&im, &adj);
	assert_int_equal(adj.lo, VL_TEXT_PA - 0x3000);
	VPH(&im, 1)->p_paddr = VL_TEXT_PA - 0x2fff;
	vl_reject(&im, "overlaps");
	/* entry points */
	im = vl_make();
	VEH(&im)->e_entry = VL_DATA_PA;
	vl_reject(&im, "entry point 0x1002000 (e_entry) is not in an executable segment");
	im = vl_make();
	VEH(&im)->e_entry = VL_VBASE + VL_TEXT_PA; /* virtual: not what Linux puts there */
	vl_reject(&im, "e_entry");
	im = vl_make();
	VEH(&im)->e_entry = VL_TEXT_PA + 0x400;
	vl_reject(&im, "e_entry");
	im = vl_make();
	VPH(&im, 0)->p_type = PT_NULL;
	VPH(&im, 1)->p_type = PT_NULL;
	vl_reject(&im, "no loadable segments");

	/* more than 16 PT_LOADs */
	size_t n = VMLINUX_MAX_SEGS + 1, len = 0x1000 + n * 0x1000;
	struct img big = {.b = calloc(1, len), .len = len};
	assert_non_null(big.b);
	im = vl_make();
	memcpy(big.b, im.b, 64);
	free(im.b);
	VEH(&big)->e_phnum = (uint16_t)n;
	for (unsigned i = 0; i < n; i++)
		set_vphdr(VPH(&big, i), PT_LOAD, PF_R | PF_X, 0x1000 + i * 0x1000ull, 0,
			  VL_TEXT_PA + i * 0x1000ull, 0x10, 0x10, 0x1000);
	VEH(&big)->e_phnum = VMLINUX_MAX_SEGS;
	struct vmlinux_info info;
	vl_accept(&big, &info);
	assert_int_equal(info.nsegs, VMLINUX_MAX_SEGS);
	VEH(&big)->e_phnum = (uint16_t)n;
	vl_reject(&big, "more than 16 PT_LOAD");
}

static void test_vl_note_errors(void **state)
{
	(void)state;
	uint32_t pvh = VL_PVH;
	struct img im = vl_make();
	/* a Xen note whose name runs past the segment */
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	size_t at = put_note(im.b, VL_NOTE_OFF, 4, 4, "Xen", 18, 4, &pvh);
	Elf64_Nhdr *nh = (Elf64_Nhdr *)(void *)(im.b + VL_NOTE_OFF);
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF;
	nh->n_namesz = 0xffffffffu;
	vl_reject_len(&im, im.len, "n_namesz 4294967295, beyond the segment");
	nh->n_namesz = 9;
	vl_reject_len(&im, im.len, "n_namesz 9");
	nh->n_namesz = 4;
	nh->n_descsz = 0xfffffffdu;
	vl_reject_len(&im, im.len, "n_descsz 4294967293");
	nh->n_descsz = 5;
	vl_reject_len(&im, im.len, "n_descsz 5, beyond");
	/* PVH descriptor sizes */
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	at = put_note(im.b, VL_NOTE_OFF, 4, 4, "Xen", 18, 2, &pvh);
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF;
	vl_reject_len(&im, im.len, "n_descsz 2 (expected 4 or 8)");
	uint64_t high = 0x100000000ull | VL_PVH;
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	at = put_note(im.b, VL_NOTE_OFF, 4, 4, "Xen", 18, 8, &high);
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF;
	vl_reject_len(&im, im.len, "PVH entry 0x101000100 is above 4 GiB");
	/* two PVH notes */
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	at = put_note(im.b, VL_NOTE_OFF, 4, 4, "Xen", 18, 4, &pvh);
	at = put_note(im.b, at, 4, 4, "Xen", 18, 4, &pvh);
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF;
	vl_reject_len(&im, im.len, "two PVH entry notes");
	/* the PVH entry must be in executable code */
	pvh = (uint32_t)VL_DATA_PA;
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	at = put_note(im.b, VL_NOTE_OFF, 4, 4, "Xen", 18, 4, &pvh);
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF;
	vl_reject_len(&im, im.len, "PVH entry point 0x1002000 is not in an executable segment");
	/* PT_NOTE alignment and range */
	pvh = VL_PVH;
	memset(im.b + VL_NOTE_OFF, 0, 0x100);
	at = put_note(im.b, VL_NOTE_OFF, 4, 4, "Xen", 18, 4, &pvh);
	VPH(&im, 2)->p_filesz = at - VL_NOTE_OFF;
	VPH(&im, 2)->p_align = 16;
	vl_reject_len(&im, im.len, "p_align 0x10 (expected 4 or 8)");
	VPH(&im, 2)->p_align = 4;
	VPH(&im, 2)->p_offset = UINT64_MAX - 4;
	vl_reject_len(&im, im.len, "PT_NOTE segment 2: file range");
	VPH(&im, 2)->p_offset = VL_LEN - 8;
	vl_reject(&im, "beyond file size");
}

static void test_vl_load(void **state)
{
	(void)state;
	struct img im = vl_make();
	struct vmlinux_info info;
	struct nb_error err;
	vl_accept(&im, &info);
	struct guest g = guest_new(32 * MIB);
	memset(g.buf + VL_TEXT_PA, 0xaa, 0x10000);
	assert_int_equal(vmlinux_load(&info, im.b, im.len, &g.mem, &err), 0);
	assert_memory_equal(g.buf + VL_TEXT_PA, im.b + 0x1000, 0x400);
	assert_int_equal(g.buf[VL_TEXT_PA + 0x400], 0xaa); /* between the segments */
	assert_memory_equal(g.buf + VL_DATA_PA, im.b + 0x2000, 0x100);
	for (size_t i = 0x100; i < 0x3000; i++) /* bss zeroed */
		assert_int_equal(g.buf[VL_DATA_PA + i], 0);
	assert_int_equal(g.buf[VL_DATA_PA + 0x3000], 0xaa); /* not beyond */

	/* memory that holds the text but not the data: nothing is written */
	memset(g.buf + VL_TEXT_PA, 0xaa, 0x10000);
	struct gmem small = gmem_one(g.buf, 0, VL_DATA_PA + 0x2fff);
	assert_int_equal(vmlinux_load(&info, im.b, im.len, &small, &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	expect_msg(&err, "segment 1: [0x1002000, +0x3000) is not inside guest memory");
	for (size_t i = 0; i < 0x10000; i++)
		assert_int_equal(g.buf[VL_TEXT_PA + i], 0xaa);
	small.r[0].size = VL_DATA_PA + 0x3000; /* exactly enough */
	assert_int_equal(vmlinux_load(&info, im.b, im.len, &small, &err), 0);
	/* memory starting at 16 MiB */
	struct gmem hi = gmem_one(g.buf, 16 * MIB, 16 * MIB);
	memset(g.buf, 0, 0x10000);
	assert_int_equal(vmlinux_load(&info, im.b, im.len, &hi, &err), 0);
	assert_memory_equal(g.buf, im.b + 0x1000, 0x400);
	/* a shorter buffer than the one parsed */
	assert_int_equal(vmlinux_load(&info, im.b, 0x2000, &g.mem, &err), -1);
	expect_msg(&err, "is not in the image");
	struct vmlinux_info broken = info;
	broken.nsegs = VMLINUX_MAX_SEGS + 1;
	assert_int_equal(vmlinux_load(&broken, im.b, im.len, &g.mem, &err), -1);
	free(g.buf);
	free(im.b);
}

/* ================================================================== mutation loops */

static uint64_t rnd_state = 0x6e75626973626f6full; /* fixed: the loops are reproducible */

static uint64_t rnd(void)
{
	return testutil_rng_next(&rnd_state);
}

static const uint64_t interesting[] = {
    0,
    1,
    2,
    4,
    8,
    0x10,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x1ff,
    0x200,
    0x201,
    0x205,
    0x206,
    0x20c,
    0x26c,
    0xfff,
    0x1000,
    0x1001,
    BZ_SETUP,
    BZ_LEN,
    VL_LEN,
    0x100000,
    0x1000000,
    0x1002000,
    0x7fffffff,
    0x80000000ull,
    0xffffffffull,
    0x100000000ull,
    1ull << 46,
    (1ull << 46) - 1,
    0x7fffffffffffffffull,
    0x8000000000000000ull,
    UINT64_MAX - 0xfff,
    UINT64_MAX - 1,
    UINT64_MAX,
};
#define N_INTERESTING (sizeof(interesting) / sizeof(interesting[0]))

/* One random change to @b: inside [lo, hi) for the structured kinds, anywhere otherwise. */
static void mutate_one(uint8_t *b, size_t *len, size_t lo, size_t hi)
{
	switch (rnd() % 6) {
	case 0:
		b[lo + rnd() % (hi - lo)] = (uint8_t)rnd();
		break;
	case 1:
		b[lo + rnd() % (hi - lo)] ^= (uint8_t)(1u << (rnd() % 8));
		break;
	case 2:
	case 3: { /* an interesting value, 1-8 bytes wide, at any offset of the headers */
		uint64_t v = interesting[rnd() % N_INTERESTING];
		unsigned w = 1u << (rnd() % 4);
		size_t at = lo + rnd() % (hi - lo - w + 1);
		if (rnd() & 1)
			v += rnd() % 3 - 1;
		memcpy(b + at, &v, w);
		break;
	}
	case 4:
		if (*len)
			b[rnd() % *len] = (uint8_t)rnd();
		break;
	case 5:
		if (rnd() % 4 == 0)
			*len = rnd() % (*len + 1);
		break;
	}
}

static void check_bz_accepted(const struct bzimage_info *in, size_t len)
{
	assert_true(in->version >= BZIMAGE_XLF_VERSION);
	assert_true(in->xloadflags & BZIMAGE_XLF_KERNEL_64);
	assert_true(in->loadflags & BZIMAGE_LOADED_HIGH);
	assert_int_equal(in->kernel_offset, in->setup_size);
	assert_true(in->setup_size >= 2 * 512 && in->setup_size <= 256 * 512);
	assert_int_equal(in->kernel_offset + in->kernel_size, len);
	assert_true(in->kernel_size > 0x200);
	assert_true(in->syssize_bytes > 0 && in->syssize_bytes < in->kernel_size + 16);
	assert_true(in->init_size >= in->syssize_bytes);
	assert_true(in->kernel_alignment >= 0x1000 && in->kernel_alignment <= (1u << 30));
	assert_int_equal(in->kernel_alignment & (in->kernel_alignment - 1), 0);
	assert_true(in->min_alignment >= 0x1000 && in->min_alignment <= in->kernel_alignment);
	assert_int_equal(in->min_alignment & (in->min_alignment - 1), 0);
	assert_true(in->load_addr >= MIB);
	assert_true(in->load_addr + in->init_size <= (1ull << 46));
	assert_true(in->load_addr + in->kernel_size <= (1ull << 46));
	if (in->relocatable)
		assert_int_equal(in->load_addr & (in->min_alignment - 1), 0);
	assert_true(in->cmdline_size >= 1);
	if (in->payload_offset) {
		assert_true(in->payload_length > 0);
		assert_true((uint64_t)in->payload_offset + in->payload_length <= in->kernel_size);
		assert_true(in->payload_fmt != BZIMAGE_PAYLOAD_NONE);
	} else {
		assert_int_equal(in->payload_length, 0);
		assert_int_equal(in->payload_fmt, BZIMAGE_PAYLOAD_NONE);
	}
	assert_true(in->hdr_len >= 0x264 - 0x1f1 && in->hdr_len <= sizeof(in->hdr));
}

static void test_bz_mutation_loop(void **state)
{
	(void)state;
	struct img base = bz_make();
	uint8_t *work = malloc(BZ_LEN);
	assert_non_null(work);
	struct guest g = guest_new(32 * MIB);
	struct e820_map m;
	struct nb_error err;
	assert_int_equal(e820_build(&m, 32 * MIB, &err), 0);
	struct bootparams *bp = bp_new();
	unsigned accepted = 0, rejected = 0, loaded = 0, iters = 30000;
	for (unsigned it = 0; it < iters; it++) {
		size_t len = BZ_LEN;
		memcpy(work, base.b, BZ_LEN);
		unsigned nmut = 1 + (unsigned)(rnd() % 3);
		for (unsigned k = 0; k < nmut; k++)
			mutate_one(work, &len, BZIMAGE_HDR_OFF, 0x26c);
		struct bzimage_info info;
		int rc = bz_parse_exact(work, len, &info, &err);
		if (rc != 0) {
			testutil_assert_format_error(rc, &err);
			rejected++;
			continue;
		}
		accepted++;
		check_bz_accepted(&info, len);
		/* what a monitor would do next must not crash either */
		uint8_t *exact = malloc(len);
		assert_non_null(exact);
		memcpy(exact, work, len);
		if (bzimage_load(&info, exact, len, &g.mem, info.load_addr, &err) == 0)
			loaded++;
		free(exact);
		struct bootparams_cfg cfg = {.kernel_addr = info.load_addr,
					     .cmdline = 0x20000,
					     .initrd = 0x1000000,
					     .initrd_size = 0x1000,
					     .e820 = &m};
		if (bootparams_fill(bp, &info, &cfg, &err) == 0) {
			assert_int_equal(bp->sentinel, 0);
			assert_int_equal(bp->hdr.type_of_loader, 0xff);
		}
		gpa_t at;
		(void)bootparams_initrd_place(0x10000, info.initrd_addr_max, 32 * MIB,
					      info.load_addr, info.init_size, &at, &err);
		(void)bootparams_cmdline_check("console=ttyS0", info.cmdline_size, &err);
	}
	print_message("bzImage mutation loop: %u accepted (%u loaded), %u rejected\n", accepted,
		      loaded, rejected);
	assert_true(accepted > iters / 20);
	assert_true(rejected > iters / 4);
	assert_true(loaded > 0);

	/* garbage behind a valid magic */
	for (unsigned it = 0; it < 3000; it++) {
		size_t len = 0x26c + (size_t)(rnd() % 0x1000);
		if (len > BZ_LEN)
			len = BZ_LEN;
		for (size_t i = 0; i < len; i++)
			work[i] = (uint8_t)rnd();
		memcpy(work + 0x202, "HdrS", 4);
		if (it & 1) {
			work[0x1fe] = 0x55;
			work[0x1ff] = 0xaa;
			work[0x200] = 0xeb;
		}
		struct bzimage_info info;
		if (bz_parse_exact(work, len, &info, &err) == 0)
			check_bz_accepted(&info, len);
	}
	free(bp);
	free(g.buf);
	free(work);
	free(base.b);
}

static void check_vl_accepted(const struct vmlinux_info *in, size_t len)
{
	assert_true(in->nsegs >= 1 && in->nsegs <= VMLINUX_MAX_SEGS);
	assert_true(in->lo < in->hi && in->hi <= VMLINUX_MAX_PADDR);
	assert_true(in->lo >= VMLINUX_MIN_PADDR);
	int entry_ok = 0, pvh_ok = !in->has_pvh;
	for (unsigned i = 0; i < in->nsegs; i++) {
		const struct vmlinux_seg *s = &in->segs[i];
		assert_true(s->memsz > 0 && s->filesz <= s->memsz);
		assert_true(s->offset <= len && s->filesz <= len - s->offset);
		assert_true(s->paddr >= in->lo && s->paddr + s->memsz <= in->hi);
		for (unsigned j = 0; j < i; j++) {
			const struct vmlinux_seg *o = &in->segs[j];
			assert_false(s->paddr < o->paddr + o->memsz &&
				     o->paddr < s->paddr + s->memsz);
		}
		if (!(s->flags & PF_X))
			continue;
		if (in->entry >= s->paddr && in->entry - s->paddr < s->memsz)
			entry_ok = 1;
		if (in->has_pvh && in->pvh_entry >= s->paddr && in->pvh_entry - s->paddr < s->memsz)
			pvh_ok = 1;
	}
	assert_true(entry_ok && pvh_ok);
}

static void test_vl_mutation_loop(void **state)
{
	(void)state;
	struct img base = vl_make();
	uint8_t *work = malloc(VL_LEN);
	assert_non_null(work);
	struct guest g = guest_new(32 * MIB);
	struct nb_error err;
	unsigned accepted = 0, rejected = 0, loaded = 0, pvh = 0, iters = 30000;
	const size_t notes_end = VL_NOTE_OFF + VPH(&base, 2)->p_filesz;
	for (unsigned it = 0; it < iters; it++) {
		size_t len = VL_LEN;
		memcpy(work, base.b, VL_LEN);
		unsigned nmut = 1 + (unsigned)(rnd() % 3);
		for (unsigned k = 0; k < nmut; k++) {
			if (rnd() % 4 == 0) /* the notes */
				mutate_one(work, &len, VL_NOTE_OFF, notes_end);
			else /* the ELF and program headers */
				mutate_one(work, &len, 0, 64 + VL_NPHDR * 56);
		}
		struct vmlinux_info info;
		int rc = vl_parse_exact(work, len, &info, &err);
		if (rc != 0) {
			testutil_assert_format_error(rc, &err);
			rejected++;
			continue;
		}
		accepted++;
		pvh += info.has_pvh;
		check_vl_accepted(&info, len);
		uint8_t *exact = malloc(len);
		assert_non_null(exact);
		memcpy(exact, work, len);
		if (vmlinux_load(&info, exact, len, &g.mem, &err) == 0)
			loaded++;
		free(exact);
	}
	print_message("vmlinux mutation loop: %u accepted (%u with PVH, %u loaded), %u rejected\n",
		      accepted, pvh, loaded, rejected);
	assert_true(accepted > iters / 20);
	assert_true(rejected > iters / 4);
	assert_true(loaded > 0 && pvh > 0);

	/* garbage behind a valid ELF identification */
	for (unsigned it = 0; it < 3000; it++) {
		size_t len = (size_t)(rnd() % VL_LEN);
		for (size_t i = 0; i < len; i++)
			work[i] = (uint8_t)rnd();
		if (len >= 20) {
			memcpy(work, base.b, 20); /* ident, type, machine */
			if (it & 1)
				memcpy(work + 52, base.b + 52, 6); /* ehsize, phentsize, phnum */
		}
		struct vmlinux_info info;
		if (vl_parse_exact(work, len, &info, &err) == 0)
			check_vl_accepted(&info, len);
	}
	free(g.buf);
	free(work);
	free(base.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bz_valid),
	    cmocka_unit_test(test_bz_payload_formats),
	    cmocka_unit_test(test_bz_too_small),
	    cmocka_unit_test(test_bz_bad_magic),
	    cmocka_unit_test(test_bz_old_protocol),
	    cmocka_unit_test(test_bz_no_64bit_entry),
	    cmocka_unit_test(test_bz_jump_and_header_length),
	    cmocka_unit_test(test_bz_setup_sects_beyond_file),
	    cmocka_unit_test(test_bz_syssize),
	    cmocka_unit_test(test_bz_alignment),
	    cmocka_unit_test(test_bz_pref_address),
	    cmocka_unit_test(test_bz_sizes),
	    cmocka_unit_test(test_bz_payload_range),
	    cmocka_unit_test(test_bz_load),
	    cmocka_unit_test(test_e820_sizes),
	    cmocka_unit_test(test_e820_bad_sizes),
	    cmocka_unit_test(test_e820_check),
	    cmocka_unit_test(test_e820_add),
	    cmocka_unit_test(test_bootparams_round_trip),
	    cmocka_unit_test(test_bootparams_above_4g),
	    cmocka_unit_test(test_bootparams_errors),
	    cmocka_unit_test(test_cmdline),
	    cmocka_unit_test(test_initrd_place),
	    cmocka_unit_test(test_vl_valid),
	    cmocka_unit_test(test_vl_header_errors),
	    cmocka_unit_test(test_vl_segment_errors),
	    cmocka_unit_test(test_vl_note_errors),
	    cmocka_unit_test(test_vl_load),
	    cmocka_unit_test(test_bz_mutation_loop),
	    cmocka_unit_test(test_vl_mutation_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
