/* SPDX-License-Identifier: MIT */
#include "vmas.h"

#include <errno.h>
#include <string.h>

int vmas_overlaps(const struct fnvm_vma *v, unsigned n, uint64_t a, uint64_t e)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i].start < e && a < v[i].end)
			return 1;
	return 0;
}

int vmas_covers(const struct fnvm_vma *v, unsigned n, uint64_t a, uint64_t e)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i].start <= a && e <= v[i].end)
			return 1;
	return 0;
}

int vmas_remove(struct fnvm_vma *v, unsigned *n, unsigned cap, uint64_t a, uint64_t e)
{
	for (unsigned i = 0; i < *n; i++) {
		struct fnvm_vma *m = &v[i];
		if (m->end <= a || m->start >= e)
			continue;
		if (m->start < a && m->end > e) { /* split */
			if (*n == cap)
				return -ENOMEM;
			memmove(m + 2, m + 1, (*n - i - 1) * sizeof(*m));
			(*n)++;
			m[1].start = e;
			m[1].end = m->end;
			m->end = a;
			return 0;
		}
		if (m->start < a) {
			m->end = a;
		} else if (m->end > e) {
			m->start = e;
		} else {
			memmove(m, m + 1, (*n - i - 1) * sizeof(*m));
			(*n)--;
			i--;
		}
	}
	return 0;
}

int vmas_insert(struct fnvm_vma *v, unsigned *n, unsigned cap, uint64_t a, uint64_t e)
{
	unsigned i = 0;
	while (i < *n && v[i].start < a)
		i++;
	if (i > 0 && v[i - 1].end == a) {
		v[i - 1].end = e;
		if (i < *n && v[i].start == e) {
			v[i - 1].end = v[i].end;
			memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(v[0]));
			(*n)--;
		}
		return 0;
	}
	if (i < *n && v[i].start == e) {
		v[i].start = a;
		return 0;
	}
	if (*n == cap)
		return -ENOMEM;
	memmove(&v[i + 1], &v[i], (*n - i) * sizeof(v[0]));
	v[i] = (struct fnvm_vma){a, e};
	(*n)++;
	return 0;
}
