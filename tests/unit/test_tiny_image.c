/* SPDX-License-Identifier: MIT */
/*
 * The built tiny guest (guest/tiny) against our bzImage loader: bzimage_parse accepts
 * tiny.bzImage with the header fields the guest's sources set, bzimage_load places it at
 * the addresses nubis-vmm and QEMU use, bootparams_fill takes it, and the file is laid out
 * as setup.S and head.S say (a clean zero page in the setup, the 64-bit entry at +0x200).
 *
 * usage: test_tiny_image PATH/tiny.bzImage   (meson passes the custom_target's output)
 * Exit status 0 if every check holds; each failure is printed with its line.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/bootparams.h"
#include "boot/bzimage.h"
#include "boot/e820.h"

#define MIB (1ull << 20)

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);     \
		if (a_ != b_) {                                                                    \
			fprintf(stderr, "%s:%d: %s is %#llx, expected %s (%#llx)\n", __FILE__,     \
				__LINE__, #a, a_, #b, b_);                                         \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *b = malloc(cap);
	while (b) {
		n += fread(b + n, 1, cap - n, f);
		if (n < cap)
			break;
		uint8_t *nb = realloc(b, cap * 2);
		if (!nb) {
			free(b);
			b = NULL;
			break;
		}
		b = nb;
		cap *= 2;
	}
	if (b && ferror(f)) {
		perror(path);
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = n;
	return b;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static bool contains(const uint8_t *p, size_t len, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(p + i, s, n))
			return true;
	return false;
}

static void check_header(const uint8_t *img, size_t len, const struct bzimage_info *bz)
{
	const struct bzimage_setup_header *h = &bz->hdr;

	CHECK_EQ(bz->version, 0x020f);
	CHECK(h->setup_sects >= 1);
	CHECK_EQ(bz->setup_size, (h->setup_sects + 1u) * 512u);
	CHECK_EQ(bz->kernel_offset, bz->setup_size);
	CHECK_EQ(bz->kernel_size, len - bz->setup_size);
	/* syssize is exact: the file ends on a whole paragraph */
	CHECK_EQ(bz->kernel_size % 16, 0);
	CHECK_EQ(bz->syssize_bytes, bz->kernel_size);
	CHECK_EQ(bz->pref_address, 0x1000000);
	CHECK_EQ(bz->load_addr, 0x1000000);
	/* code, page tables for the 32-bit path (24 KiB) and an 8 KiB stack, whole pages */
	CHECK(bz->init_size >= bz->kernel_size + 32 * 1024);
	CHECK(bz->init_size <= 1 * MIB);
	CHECK_EQ(bz->init_size % 4096, 0);
	CHECK_EQ(bz->kernel_alignment, 0x200000);
	CHECK_EQ(bz->min_alignment, 0x1000);
	CHECK(bz->relocatable);
	CHECK_EQ(bz->loadflags, BZIMAGE_LOADED_HIGH);
	CHECK_EQ(bz->xloadflags, BZIMAGE_XLF_KERNEL_64 | BZIMAGE_XLF_CAN_BE_LOADED_ABOVE_4G);
	CHECK_EQ(bz->code32_start, 0x100000);
	CHECK_EQ(bz->entry64_offset, BZIMAGE_ENTRY64_OFF);
	CHECK_EQ(bz->cmdline_size, 2047);
	CHECK_EQ(bz->initrd_addr_max, 0x7fffffff);
	CHECK_EQ(bz->payload_offset, 0);
	CHECK_EQ(bz->payload_length, 0);
	CHECK_EQ(bz->payload_fmt, BZIMAGE_PAYLOAD_NONE);
	CHECK_EQ(bz->hdr_len, sizeof(bz->hdr)); /* the whole 2.15 header */
	CHECK_EQ(h->boot_flag, BZIMAGE_BOOT_FLAG);
	CHECK_EQ(h->jump, 0x6aeb); /* jmp to 0x26c, the end of the header */
	CHECK_EQ(h->header, BZIMAGE_MAGIC);
	CHECK_EQ(h->setup_data, 0);
	CHECK_EQ(h->handover_offset, 0);
	CHECK_EQ(h->kernel_info_offset, 0);
	/* kernel_version points at a NUL-terminated name inside the setup */
	size_t kv = 0x200u + h->kernel_version;
	CHECK(h->kernel_version != 0 && kv + 17 <= bz->setup_size);
	if (kv + 17 <= bz->setup_size)
		CHECK(!memcmp(img + kv, "nubis tiny guest", 17));
}

static void check_layout(const uint8_t *img, const struct bzimage_info *bz)
{
	const uint8_t *code = img + bz->kernel_offset;

	/* The setup's first page serves as the zero page in the real-mode path: zero but for
	 * the header and the 3-byte jump at 0x26c. */
	CHECK(all_zero(img, BZIMAGE_HDR_OFF));
	CHECK_EQ(img[0x26c], 0xe9); /* jmp rel16 to the real-mode code */
	CHECK(bz->setup_size > 0x1000);
	if (bz->setup_size > 0x1000)
		CHECK(all_zero(img + 0x26f, 0x1000 - 0x26f));
	/* Both entries start with cld (head.S). */
	CHECK_EQ(code[0], 0xfc);
	CHECK_EQ(code[BZIMAGE_ENTRY64_OFF], 0xfc);
	CHECK(contains(code, bz->kernel_size, "nubis tiny guest: hello\n"));
	CHECK(contains(code, bz->kernel_size, "acpi: FADT ok, PM1a_CNT=0x"));
}

/* Load at @addr into a guest of @size bytes starting at @base; returns bzimage_load's result
 * and checks the copy on success. */
static int load_at(const uint8_t *img, size_t len, const struct bzimage_info *bz, gpa_t base,
		   uint64_t size, gpa_t addr)
{
	struct nb_error err;
	uint8_t *buf = calloc(1, size);
	if (!buf) {
		perror("calloc");
		exit(2);
	}
	struct gmem mem = gmem_one(buf, base, size);
	int r = bzimage_load(bz, img, len, &mem, addr, &err);
	if (r == 0)
		CHECK(!memcmp(buf + (addr - base), img + bz->kernel_offset, bz->kernel_size));
	free(buf);
	return r;
}

static void check_load(const uint8_t *img, size_t len, const struct bzimage_info *bz)
{
	/* nubis-vmm: at pref_address, in 64 MiB of RAM */
	CHECK_EQ(load_at(img, len, bz, 0, 64 * MIB, bz->load_addr), 0);
	/* QEMU's loaders: at 1 MiB (4 KiB alignment is all the image asks for) */
	CHECK_EQ(load_at(img, len, bz, 0, 4 * MIB, 0x100000), 0);
	/* anywhere 2 MiB-aligned, also above 4 GiB */
	CHECK_EQ(load_at(img, len, bz, 0x100000000ull, 4 * MIB, 0x100200000ull), 0);
	/* not below 1 MiB, not off the minimum alignment, not past the end of memory */
	CHECK_EQ(load_at(img, len, bz, 0, 4 * MIB, 0x80000), -1);
	CHECK_EQ(load_at(img, len, bz, 0, 4 * MIB, 0x100800), -1);
	CHECK_EQ(load_at(img, len, bz, 0, 4 * MIB, 4 * MIB - bz->init_size + 0x1000), -1);
}

static void check_bootparams(const struct bzimage_info *bz)
{
	struct nb_error err;
	struct e820_map map;
	static struct bootparams bp;
	CHECK_EQ(e820_build(&map, 256 * MIB, &err), 0);
	struct bootparams_cfg cfg = {
	    .kernel_addr = bz->load_addr,
	    .cmdline = BOOTPARAMS_CMDLINE_GPA,
	    .acpi_rsdp = 0xe0000,
	    .e820 = &map,
	};
	CHECK_EQ(bootparams_fill(&bp, bz, &cfg, &err), 0);
	CHECK_EQ(bp.hdr.code32_start, bz->load_addr);
	CHECK_EQ(bp.hdr.cmd_line_ptr, BOOTPARAMS_CMDLINE_GPA);
	CHECK_EQ(bp.acpi_rsdp_addr, 0xe0000);
	CHECK_EQ(bp.e820_entries, map.n);
	CHECK_EQ(bp.hdr.xloadflags, bz->xloadflags);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH/tiny.bzImage\n", argv[0]);
		return 2;
	}
	size_t len;
	uint8_t *img = read_file(argv[1], &len);
	if (!img)
		return 2;

	struct bzimage_info bz;
	struct nb_error err;
	if (bzimage_parse(img, len, &bz, &err)) {
		fprintf(stderr, "%s: bzimage_parse refuses it: %s\n", argv[1], err.msg);
		free(img);
		return 1;
	}
	check_header(img, len, &bz);
	check_layout(img, &bz);
	check_load(img, len, &bz);
	check_bootparams(&bz);

	/* a truncated image is refused, as are the setup alone and a short code part */
	CHECK(bzimage_parse(img, bz.setup_size, &bz, &err) != 0);
	CHECK(bzimage_parse(img, len - 16, &bz, &err) != 0);

	free(img);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("tiny.bzImage: %zu bytes, all checks passed\n", len);
	return 0;
}
