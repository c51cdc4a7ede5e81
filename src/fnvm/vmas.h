/* SPDX-License-Identifier: MIT */
/*
 * A sorted list of disjoint guest ranges [start, end): the memory map that
 * function VMs (src/fnvm/sys.c) and service VMs (src/svc/sys.c) keep for
 * mmap/munmap/mremap/brk. The caller owns the array (@v, with room for @cap
 * entries) and its count (@n); nothing here allocates. Plain data, so it
 * serializes with the VM state.
 */
#ifndef NUBIS_FNVM_VMAS_H
#define NUBIS_FNVM_VMAS_H

#include <stdint.h>

struct fnvm_vma {
	uint64_t start, end;
};

/* True if any entry overlaps [a, e). */
int vmas_overlaps(const struct fnvm_vma *v, unsigned n, uint64_t a, uint64_t e);
/* True if one entry covers all of [a, e). */
int vmas_covers(const struct fnvm_vma *v, unsigned n, uint64_t a, uint64_t e);
/* Remove [a, e), splitting an entry if needed. 0, or -ENOMEM when a split
 * needs an entry beyond @cap (nothing changed then). */
int vmas_remove(struct fnvm_vma *v, unsigned *n, unsigned cap, uint64_t a, uint64_t e);
/* Insert [a, e), which must not overlap, merging with neighbours. 0 or -ENOMEM. */
int vmas_insert(struct fnvm_vma *v, unsigned *n, unsigned cap, uint64_t a, uint64_t e);

#endif
