/* SPDX-License-Identifier: MIT */
/*
 * The zero page (struct boot_params) for the 64-bit Linux boot protocol, and placement of
 * the command line and the initrd.
 *
 * Layout from Documentation/arch/x86/zero-page.rst and boot.rst; every offset the monitor
 * writes is checked by a static_assert. The page is built in host memory by
 * bootparams_fill() and copied into the guest by the caller (gmem_write); %rsi at the
 * 64-bit entry holds its guest address.
 */
#ifndef NUBIS_BOOT_BOOTPARAMS_H
#define NUBIS_BOOT_BOOTPARAMS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../core/gmem.h"
#include "bzimage.h"
#include "e820.h"

#define BOOTPARAMS_SIZE		4096
#define BOOTPARAMS_LOADER_TYPE	0xffu	/* type_of_loader: no assigned boot loader id */
#define BOOTPARAMS_HEAP_END_PTR 0xfe00u /* heap_end_ptr: end of the setup heap - 0x200 */

/* A conventional low-memory layout (as Firecracker and Cloud Hypervisor use). */
#define BOOTPARAMS_ZERO_PAGE_GPA 0x7000ull
#define BOOTPARAMS_CMDLINE_GPA	 0x20000ull

struct bootparams {
	uint8_t screen_info[0x40];	 /* 0x000 */
	uint8_t apm_bios_info[0x14];	 /* 0x040 */
	uint8_t pad_054[4];		 /* 0x054 */
	uint64_t tboot_addr;		 /* 0x058 */
	uint8_t ist_info[0x10];		 /* 0x060 */
	uint64_t acpi_rsdp_addr;	 /* 0x070 */
	uint8_t pad_078[8];		 /* 0x078 */
	uint8_t hd0_info[0x10];		 /* 0x080 */
	uint8_t hd1_info[0x10];		 /* 0x090 */
	uint8_t sys_desc_table[0x10];	 /* 0x0a0 */
	uint8_t olpc_ofw_header[0x10];	 /* 0x0b0 */
	uint32_t ext_ramdisk_image;	 /* 0x0c0 */
	uint32_t ext_ramdisk_size;	 /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;	 /* 0x0c8 */
	uint8_t pad_0cc[0x13c - 0x0cc];	 /* 0x0cc */
	uint32_t cc_blob_address;	 /* 0x13c */
	uint8_t edid_info[0x80];	 /* 0x140 */
	uint8_t efi_info[0x20];		 /* 0x1c0 */
	uint32_t alt_mem_k;		 /* 0x1e0 */
	uint32_t scratch;		 /* 0x1e4 */
	uint8_t e820_entries;		 /* 0x1e8 */
	uint8_t eddbuf_entries;		 /* 0x1e9 */
	uint8_t edd_mbr_sig_buf_entries; /* 0x1ea */
	uint8_t kbd_status;		 /* 0x1eb */
	uint8_t secure_boot;		 /* 0x1ec */
	uint8_t pad_1ed[2];		 /* 0x1ed */
	uint8_t sentinel;		 /* 0x1ef: must stay 0 (the kernel then trusts the page) */
	uint8_t pad_1f0;		 /* 0x1f0 */
	struct bzimage_setup_header hdr; /* 0x1f1 */
	uint8_t pad_26c[0x290 - 0x26c];	 /* 0x26c */
	uint32_t edd_mbr_sig_buffer[16]; /* 0x290 */
	struct e820_entry e820_table[E820_MAX_ENTRIES]; /* 0x2d0 */
	uint8_t pad_cd0[0xd00 - 0xcd0];			/* 0xcd0 */
	uint8_t eddbuf[0x1ec];				/* 0xd00: 6 struct edd_info */
	uint8_t pad_eec[0x1000 - 0xeec];		/* 0xeec */
} __attribute__((packed));

#define BOOTPARAMS_AT(field, off)                                                                  \
	static_assert(offsetof(struct bootparams, field) == (off), #field " at " #off)
BOOTPARAMS_AT(tboot_addr, 0x058);
BOOTPARAMS_AT(acpi_rsdp_addr, 0x070);
BOOTPARAMS_AT(ext_ramdisk_image, 0x0c0);
BOOTPARAMS_AT(ext_ramdisk_size, 0x0c4);
BOOTPARAMS_AT(ext_cmd_line_ptr, 0x0c8);
BOOTPARAMS_AT(cc_blob_address, 0x13c);
BOOTPARAMS_AT(edid_info, 0x140);
BOOTPARAMS_AT(efi_info, 0x1c0);
BOOTPARAMS_AT(alt_mem_k, 0x1e0);
BOOTPARAMS_AT(e820_entries, 0x1e8);
BOOTPARAMS_AT(sentinel, 0x1ef);
BOOTPARAMS_AT(hdr, 0x1f1);
BOOTPARAMS_AT(hdr.type_of_loader, 0x210);
BOOTPARAMS_AT(hdr.loadflags, 0x211);
BOOTPARAMS_AT(hdr.code32_start, 0x214);
BOOTPARAMS_AT(hdr.ramdisk_image, 0x218);
BOOTPARAMS_AT(hdr.ramdisk_size, 0x21c);
BOOTPARAMS_AT(hdr.heap_end_ptr, 0x224);
BOOTPARAMS_AT(hdr.cmd_line_ptr, 0x228);
BOOTPARAMS_AT(edd_mbr_sig_buffer, 0x290);
BOOTPARAMS_AT(e820_table, 0x2d0);
BOOTPARAMS_AT(eddbuf, 0xd00);
#undef BOOTPARAMS_AT
static_assert(sizeof(struct bootparams) == BOOTPARAMS_SIZE, "the zero page is 4 KiB");

/* What the monitor placed in the guest, for bootparams_fill(). */
struct bootparams_cfg {
	gpa_t kernel_addr; /* where the protected-mode code was loaded (bzimage_load), >= 1 MiB */
	gpa_t cmdline;	   /* the NUL-terminated command line (bootparams_cmdline_place), != 0 */
	gpa_t initrd;	   /* the initrd, or 0 ... */
	uint64_t initrd_size;	     /* ... with 0 here: none */
	uint64_t acpi_rsdp;	     /* the ACPI RSDP, 0 if none (the kernel then scans for it) */
	const struct e820_map *e820; /* copied; must pass e820_check and not be empty */
};

/* Build the zero page for the kernel @bz into @bp (all of it is overwritten): zeroes it,
 * copies the image's setup header, sets type_of_loader 0xff (ext_loader_* 0), clears
 * hardware_subarch(_data) and setup_data, sets CAN_USE_HEAP with
 * heap_end_ptr, clears the obsolete KEEP_SEGMENTS, sets code32_start to kernel_addr (when
 * below 4 GiB), the command line and initrd addresses (split into the 32-bit header fields
 * and the ext_* high halves), the e820 table and acpi_rsdp_addr. The initrd must end at or
 * below initrd_addr_max, and the command line and initrd must be below 4 GiB, unless the
 * kernel has XLF_CAN_BE_LOADED_ABOVE_4G. Returns 0, or -1 with @err (NB_EINVAL). */
int bootparams_fill(struct bootparams *bp, const struct bzimage_info *bz,
		    const struct bootparams_cfg *cfg, struct nb_error *err);

/* Length of @cmdline if a kernel with @cmdline_size (the header field: the most characters
 * before the NUL) accepts it, else -1 with @err (NB_EINVAL). Reads at most
 * cmdline_size + 1 bytes of @cmdline unless it is too long. */
long bootparams_cmdline_check(const char *cmdline, uint32_t cmdline_size, struct nb_error *err);

/* Check @cmdline as above and write it with its NUL to guest address @gpa.
 * Returns 0, or -1 with @err (NB_EINVAL) if it is too long or does not fit in @mem. */
int bootparams_cmdline_place(const struct gmem *mem, gpa_t gpa, const char *cmdline,
			     uint32_t cmdline_size, struct nb_error *err);

/* Choose where an initrd of @initrd_size bytes goes in a guest of @ram_size bytes (laid out
 * as in e820.h): the highest 4 KiB-aligned address at or above 1 MiB such that the initrd
 * ends at or below @addr_max + 1 (addr_max is the highest byte it may occupy: the kernel's
 * initrd_addr_max), below the RAM under 4 GiB (min(ram_size, 3 GiB)), and does not overlap
 * the kernel [kernel_start, kernel_start + kernel_size) (use init_size for a bzImage).
 * Returns 0 with *@out set, or -1 with @err (NB_EINVAL) if it is empty or does not fit. */
int bootparams_initrd_place(uint64_t initrd_size, uint64_t addr_max, uint64_t ram_size,
			    gpa_t kernel_start, uint64_t kernel_size, gpa_t *out,
			    struct nb_error *err);

#endif
