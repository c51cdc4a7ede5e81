/* SPDX-License-Identifier: MIT */
#include "gmem.h"

#include <errno.h>

int gmem_add(struct gmem *m, void *host, gpa_t base, uint64_t size)
{
	uint64_t end;
	if (!size || __builtin_add_overflow(base, size - 1, &end))
		return -EINVAL;
	if (m->n >= GMEM_MAX_REGIONS)
		return -ENOSPC;
	unsigned at = 0;
	while (at < m->n && m->r[at].base < base)
		at++;
	/* sorted and disjoint: only the neighbours can overlap (ends compared inclusively) */
	if (at > 0 && m->r[at - 1].base + (m->r[at - 1].size - 1) >= base)
		return -EINVAL;
	if (at < m->n && m->r[at].base <= end)
		return -EINVAL;
	memmove(&m->r[at + 1], &m->r[at], (m->n - at) * sizeof(m->r[0]));
	m->r[at] = (struct gmem_region){.host = host, .base = base, .size = size};
	m->n++;
	return 0;
}

uint64_t gmem_total(const struct gmem *m)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < m->n && i < GMEM_MAX_REGIONS; i++)
		sum += m->r[i].size;
	return sum;
}

int gmem_read(const struct gmem *m, gpa_t gpa, void *dst, uint64_t len)
{
	const void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gmem_write(const struct gmem *m, gpa_t gpa, const void *src, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

long gmem_strnlen(const struct gmem *m, gpa_t gpa, uint64_t max)
{
	const struct gmem_region *r = gmem_region(m, gpa, 1); /* a byte: not the end of a region */
	if (!r)
		return -EFAULT;
	const char *p = (const char *)r->host + (gpa - r->base);
	uint64_t avail = r->size - (gpa - r->base);
	uint64_t lim = max >= avail ? avail : max + 1;
	const char *nul = memchr(p, 0, lim);
	if (!nul)
		return lim == avail ? -EFAULT : -ENAMETOOLONG;
	return nul - p;
}
