/* SPDX-License-Identifier: MIT */
/*
 * PVH boot: the start-of-day structure a PVH kernel (a vmlinux with a
 * XEN_ELFNOTE_PHYS32_ENTRY note, see vmlinux.h) is entered with in %ebx, as
 * defined by Xen's public/arch-x86/hvm/start_info.h (version 1: with a
 * memory map). All fields are little-endian; structures are packed by layout.
 *
 * pvh_write() lays out, from one guest-physical address: the hvm_start_info,
 * then the module list (one module: the initrd, if any), then the memory map
 * (the e820 map in hvm_memmap_table_entry form).
 */
#ifndef NUBIS_BOOT_PVH_H
#define NUBIS_BOOT_PVH_H

#include <assert.h>
#include <stdint.h>

#include "../common/error.h"
#include "../core/gmem.h"
#include "e820.h"

#define PVH_MAGIC   0x336ec578u
#define PVH_VERSION 1u

struct hvm_start_info {
	uint32_t magic;		/* PVH_MAGIC */
	uint32_t version;	/* 1: memmap_paddr and memmap_entries are valid */
	uint32_t flags;		/* SIF_xxx: 0 */
	uint32_t nr_modules;	/* entries at modlist_paddr */
	uint64_t modlist_paddr; /* struct hvm_modlist_entry[nr_modules] */
	uint64_t cmdline_paddr; /* NUL-terminated, 0: none */
	uint64_t rsdp_paddr;	/* the ACPI RSDP, 0: search */
	uint64_t memmap_paddr;	/* struct hvm_memmap_table_entry[memmap_entries] */
	uint32_t memmap_entries;
	uint32_t reserved;
};
static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info is 56 bytes");

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry is 32 bytes");

struct hvm_memmap_table_entry {
	uint64_t addr, size;
	uint32_t type; /* E820_* */
	uint32_t reserved;
};
static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry is 24 bytes");

struct pvh_cfg {
	gpa_t cmdline;		     /* 0: none */
	gpa_t rsdp;		     /* 0: none */
	gpa_t initrd;		     /* with initrd_size > 0: one module */
	uint64_t initrd_size;	     /* 0: no module */
	const struct e820_map *e820; /* must pass e820_check() */
};

/* Bytes pvh_write() uses for @cfg. */
uint64_t pvh_size(const struct pvh_cfg *cfg);

/* Write the start info, module list and memory map for @cfg at @gpa (8-byte aligned) into
 * @mem; nothing is written unless it all fits in one region and @cfg is valid. Returns 0, or
 * -1 with @err (NB_EINVAL) naming the problem. %ebx = @gpa at the PVH entry. */
int pvh_write(const struct gmem *mem, gpa_t gpa, const struct pvh_cfg *cfg, struct nb_error *err);

#endif
