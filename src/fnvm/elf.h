/* SPDX-License-Identifier: MIT */
/* Static x86-64 ELF executables: validation and the facts the loader needs. */
#ifndef NUBIS_FNVM_ELF_H
#define NUBIS_FNVM_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define ELF_MAX_SEGS 16

struct elf_seg {
	uint64_t vaddr, memsz; /* unbiased */
	uint64_t offset, filesz;
	uint32_t flags; /* PF_R/W/X */
};

struct elf_info {
	int pie;	/* ET_DYN (static-pie): caller chooses a load bias */
	uint64_t entry; /* unbiased */
	uint64_t
	    phdr_vaddr; /* unbiased address of the program headers in memory, 0 if not loaded */
	uint16_t phnum, phentsize;
	uint64_t max_align;
	uint64_t lo, hi; /* unbiased [lowest vaddr page, end of highest segment) */
	unsigned nsegs;
	struct elf_seg segs[ELF_MAX_SEGS];
};

/* Validate @img (@len bytes, untrusted) as a static x86-64 executable.
 * Returns 0, or -1 with @err naming the offending field (NB_EFORMAT). */
int elf_parse(const uint8_t *img, size_t len, struct elf_info *out, struct nb_error *err);

#endif
