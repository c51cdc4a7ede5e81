/* SPDX-License-Identifier: MIT */
#include "bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		 void *dev, const char *name, struct nb_error *err)
{
	uint64_t end;
	if (!len || __builtin_add_overflow(base, len, &end))
		return nb_error_set(err, NB_EINVAL, "%s bus: %s: bad range %#llx+%#llx", b->name,
				    name, (unsigned long long)base, (unsigned long long)len);
	if (b->n == BUS_MAX_RANGES)
		return nb_error_set(err, NB_EINVAL, "%s bus: %s: more than %d ranges", b->name,
				    name, BUS_MAX_RANGES);
	unsigned i = 0;
	while (i < b->n && b->r[i].base < base)
		i++;
	if ((i > 0 && b->r[i - 1].base + b->r[i - 1].len > base) ||
	    (i < b->n && b->r[i].base < end)) {
		const struct bus_range *o =
		    (i > 0 && b->r[i - 1].base + b->r[i - 1].len > base) ? &b->r[i - 1] : &b->r[i];
		return nb_error_set(
		    err, NB_EINVAL, "%s bus: %s at %#llx+%#llx overlaps %s at %#llx+%#llx", b->name,
		    name, (unsigned long long)base, (unsigned long long)len, o->name,
		    (unsigned long long)o->base, (unsigned long long)o->len);
	}
	memmove(&b->r[i + 1], &b->r[i], (b->n - i) * sizeof(b->r[0]));
	b->r[i] = (struct bus_range){base, len, ops, dev, name};
	b->n++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr, unsigned len)
{
	unsigned lo = 0, hi = b->n;
	while (lo < hi) { /* first range with base > addr */
		unsigned mid = (lo + hi) / 2;
		if (b->r[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct bus_range *r = &b->r[lo - 1];
	uint64_t off = addr - r->base;
	if (off >= r->len || len > r->len - off)
		return NULL;
	return r;
}

int bus_access(const struct bus *b, uint64_t addr, int is_write, void *data, unsigned len)
{
	if (len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	const struct bus_range *r = bus_find(b, addr, len);
	if (!r) {
		if (!is_write)
			memset(data, 0xff, len);
		return -ENOENT;
	}
	if (is_write) {
		if (r->ops->write)
			r->ops->write(r->dev, addr - r->base, data, len);
	} else if (r->ops->read) {
		r->ops->read(r->dev, addr - r->base, data, len);
	} else {
		memset(data, 0xff, len);
	}
	return 0;
}
