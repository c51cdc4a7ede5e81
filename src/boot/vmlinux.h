/* SPDX-License-Identifier: MIT */
/*
 * vmlinux: an uncompressed x86-64 Linux kernel (ELF ET_EXEC), loaded by physical address.
 *
 * vmlinux_parse() validates the file (untrusted) and finds the PVH entry point, the
 * "Xen" ELF note of type XEN_ELFNOTE_PHYS32_ENTRY in a PT_NOTE segment: the 32-bit
 * physical address where a PVH boot starts (32-bit protected mode, paging off, %ebx =
 * address of a struct hvm_start_info). vmlinux_load() copies the PT_LOAD segments into
 * guest memory at their p_paddr.
 */
#ifndef NUBIS_BOOT_VMLINUX_H
#define NUBIS_BOOT_VMLINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../core/gmem.h"

#define VMLINUX_MAX_SEGS	 16
#define VMLINUX_MAX_PHNUM	 128
#define VMLINUX_MIN_PADDR	 0x100000ull /* segments load at or above 1 MiB (boot data below) */
#define VMLINUX_MAX_PADDR	 (1ull << 46) /* and end at or below 2^46 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct vmlinux_seg {
	uint64_t paddr, memsz;	 /* guest-physical destination */
	uint64_t offset, filesz; /* file bytes; the rest of memsz is zeroed */
	uint32_t flags;		 /* PF_R/W/X */
};

/* What vmlinux_parse() found. Every segment's file range lies inside the file; physical
 * ranges are non-empty, inside [VMLINUX_MIN_PADDR, VMLINUX_MAX_PADDR) and do not overlap. */
struct vmlinux_info {
	uint64_t entry;	    /* e_entry: physical, inside an executable segment (Linux links
			       vmlinux with ENTRY(phys_startup_64)) */
	bool has_pvh;	    /* a PHYS32_ENTRY note was found */
	uint32_t pvh_entry; /* then: its address, inside an executable segment */
	uint64_t lo, hi;    /* [lowest p_paddr, highest p_paddr + p_memsz) */
	unsigned nsegs;
	struct vmlinux_seg segs[VMLINUX_MAX_SEGS];
};

/* Validate @img (@len bytes, untrusted) as an x86-64 ET_EXEC kernel. A missing PVH note
 * is not an error (has_pvh is false); a malformed note is. Returns 0, or -1 with @err
 * (may be NULL) set to NB_EFORMAT and a message naming the field and value. */
int vmlinux_parse(const uint8_t *img, size_t len, struct vmlinux_info *out, struct nb_error *err);

/* Copy the segments of @img (the buffer @info was parsed from) into guest memory and zero
 * each segment's tail beyond its file bytes. Checks every segment against @mem first, so
 * nothing is written on failure. Returns 0, or -1 with @err (NB_EINVAL). */
int vmlinux_load(const struct vmlinux_info *info, const uint8_t *img, size_t len,
		 const struct gmem *mem, struct nb_error *err);

#endif
