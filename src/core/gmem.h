/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: the only way from a guest-physical address to a host pointer.
 *
 * A struct gmem describes up to GMEM_MAX_REGIONS host mappings, each of one
 * contiguous guest-physical range [base, base + size) (a Linux VM has RAM below
 * the 32-bit PCI hole and the rest above 4 GiB; a function VM has one region).
 * gmem_ptr() is the single checked translation: it returns NULL for any range
 * that does not lie entirely inside ONE region, including ranges whose end
 * overflows (adjacent regions are not joined). No other code adds offsets to a
 * region's ->host.
 */
#ifndef NUBIS_CORE_GMEM_H
#define NUBIS_CORE_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint64_t gpa_t;

#define GMEM_MAX_REGIONS 4

struct gmem_region {
	uint8_t *host; /* host address of gpa base; owned by whoever mapped it */
	gpa_t base;
	uint64_t size;
};

struct gmem {
	unsigned n; /* regions in use, sorted by base, not overlapping */
	struct gmem_region r[GMEM_MAX_REGIONS];
};

/* A gmem of the one region [base, base + size) at @host (no checks: the caller's own). */
static inline struct gmem gmem_one(void *host, gpa_t base, uint64_t size)
{
	return (struct gmem){.n = 1, .r = {{.host = host, .base = base, .size = size}}};
}

/* Add the region [base, base + size) at @host, keeping the regions sorted. Returns 0,
 * -EINVAL if it is empty, wraps or overlaps a region, or -ENOSPC if @m is full. */
int gmem_add(struct gmem *m, void *host, gpa_t base, uint64_t size);

/* The region holding all of [gpa, gpa+len), or NULL. len 0 is allowed (the empty range at a
 * region's end is inside it). */
static inline const struct gmem_region *gmem_region(const struct gmem *m, gpa_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->n && i < GMEM_MAX_REGIONS; i++) {
		const struct gmem_region *r = &m->r[i];
		uint64_t off;
		if (!__builtin_sub_overflow(gpa, r->base, &off) && off <= r->size &&
		    len <= r->size - off)
			return r;
	}
	return NULL;
}

/* Host pointer for [gpa, gpa+len) or NULL if any byte is outside the region holding gpa. */
static inline void *gmem_ptr(const struct gmem *m, gpa_t gpa, uint64_t len)
{
	const struct gmem_region *r = gmem_region(m, gpa, len);
	return r ? r->host + (gpa - r->base) : NULL;
}

/* End of the highest region (0 if there are none): for the one-region function VMs, whose
 * memory starts at 0, the memory size. */
static inline uint64_t gmem_end(const struct gmem *m)
{
	return m->n ? m->r[m->n - 1].base + m->r[m->n - 1].size : 0;
}

/* Sum of the regions' sizes. */
uint64_t gmem_total(const struct gmem *m);

/* Copy out of / into guest memory. Return 0 or -EFAULT. */
int gmem_read(const struct gmem *m, gpa_t gpa, void *dst, uint64_t len);
int gmem_write(const struct gmem *m, gpa_t gpa, const void *src, uint64_t len);
/* Length of the NUL-terminated string at gpa, at most max; -EFAULT if unterminated within the
 * region holding gpa, -ENAMETOOLONG if longer than max. */
long gmem_strnlen(const struct gmem *m, gpa_t gpa, uint64_t max);

#endif
