/* SPDX-License-Identifier: MIT */
#include "gmem.h"

#include <errno.h>

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
	const char *p = gmem_ptr(m, gpa, 0);
	if (!p)
		return -EFAULT;
	uint64_t avail = m->size - (gpa - m->base);
	uint64_t lim = max >= avail ? avail : max + 1;
	const char *nul = memchr(p, 0, lim);
	if (!nul)
		return lim == avail ? -EFAULT : -ENAMETOOLONG;
	return nul - p;
}
