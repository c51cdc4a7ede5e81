/* SPDX-License-Identifier: MIT */
/*
 * An I/O bus: address ranges (port I/O or MMIO) claimed by devices, and the
 * dispatch of a guest access to the device that claims it.
 *
 * The core never names a device: devices register a range with a const ops
 * table and an opaque pointer. Accesses nobody claims are reported to the
 * caller (which logs them, rate-limited, and ignores them; reads see all
 * ones). A bus belongs to one VM; nothing here is global.
 */
#ifndef NUBIS_CORE_BUS_H
#define NUBIS_CORE_BUS_H

#include <stdint.h>

#include "../common/error.h"

#define BUS_MAX_RANGES 64

struct bus_dev_ops {
	/* @off is relative to the range base; @len is 1, 2, 4 or 8. Handlers run
	 * on the vCPU thread that exited and must not block. */
	void (*read)(void *dev, uint64_t off, void *data, unsigned len);
	void (*write)(void *dev, uint64_t off, const void *data, unsigned len);
};

struct bus_range {
	uint64_t base, len;
	const struct bus_dev_ops *ops;
	void *dev;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	unsigned n;
	struct bus_range r[BUS_MAX_RANGES]; /* sorted by base, disjoint */
};

void bus_init(struct bus *b, const char *name);
/* Claim [base, base+len) for @dev. Fails (NB_EINVAL, naming both devices) on
 * an empty, overflowing or overlapping range, or when the bus is full. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		 void *dev, const char *name, struct nb_error *err);
/* The range containing [addr, addr+len), or NULL (also for an access that
 * straddles two ranges or the end of one). */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr, unsigned len);
/* Dispatch an access. Returns 0, or -ENOENT if nobody claims it (a read then
 * fills @data with 0xff bytes), or -EINVAL for a bad length. */
int bus_access(const struct bus *b, uint64_t addr, int is_write, void *data, unsigned len);

#endif
