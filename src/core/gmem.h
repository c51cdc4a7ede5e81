/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: the only way from a guest-physical address to a host pointer.
 *
 * A struct gmem describes the host mapping of one contiguous guest-physical
 * range [base, base + size). gmem_ptr() is the single checked translation:
 * it returns NULL for any range that is not entirely inside, including
 * ranges whose end overflows. No other code adds offsets to ->host.
 */
#ifndef NUBIS_CORE_GMEM_H
#define NUBIS_CORE_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint64_t gpa_t;

struct gmem {
	uint8_t *host; /* host address of gpa base; owned by whoever mapped it */
	gpa_t base;
	uint64_t size;
};

/* Host pointer for [gpa, gpa+len) or NULL if any byte is outside. len 0 is allowed. */
static inline void *gmem_ptr(const struct gmem *m, gpa_t gpa, uint64_t len)
{
	uint64_t off;
	if (__builtin_sub_overflow(gpa, m->base, &off) || off > m->size || len > m->size - off)
		return NULL;
	return m->host + off;
}

/* Copy out of / into guest memory. Return 0 or -EFAULT. */
int gmem_read(const struct gmem *m, gpa_t gpa, void *dst, uint64_t len);
int gmem_write(const struct gmem *m, gpa_t gpa, const void *src, uint64_t len);
/* Length of the NUL-terminated string at gpa, at most max; -EFAULT if unterminated within memory,
 * -ENAMETOOLONG if longer than max. */
long gmem_strnlen(const struct gmem *m, gpa_t gpa, uint64_t max);

#endif
