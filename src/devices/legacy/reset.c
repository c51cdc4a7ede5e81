/* SPDX-License-Identifier: MIT */
#include "reset.h"

#include <errno.h>
#include <stdlib.h>

#include "devstate.h"

#define RST_SYS	 0x02
#define RST_CPU	 0x04
#define RST_FULL 0x08
#define RST_KEEP (RST_SYS | RST_FULL)

static void reset_bus_read(void *dev, uint64_t off, void *data, unsigned len)
{
	const struct reset *r = dev;
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++)
		p[i] = off + i ? 0xff : r->rst_cnt;
}

static void reset_bus_write(void *dev, uint64_t off, const void *data, unsigned len)
{
	struct reset *r = dev;
	const uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		if (off + i)
			continue;
		r->rst_cnt = p[i] & RST_KEEP;
		if ((p[i] & (RST_SYS | RST_CPU)) == (RST_SYS | RST_CPU) && r->reset)
			r->reset(r->opaque);
	}
}

const struct bus_dev_ops reset_bus_ops = {
    .read = reset_bus_read,
    .write = reset_bus_write,
};

int reset_create(reset_fn reset, void *opaque, struct reset **out)
{
	struct reset *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->reset = reset;
	r->opaque = opaque;
	reset_reset(r);
	*out = r;
	return 0;
}

void reset_destroy(struct reset *r)
{
	free(r);
}

void reset_reset(struct reset *r)
{
	r->rst_cnt = 0;
}

int reset_save(const struct reset *r, void *buf, size_t cap)
{
	uint8_t *p = buf;
	int rc = devstate_begin(p, cap, RESET_STATE_MAGIC, RESET_STATE_VERSION, RESET_STATE_SIZE);
	if (rc)
		return rc;
	p[8] = r->rst_cnt;
	return RESET_STATE_SIZE;
}

int reset_restore(struct reset *r, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (devstate_check(p, len, RESET_STATE_MAGIC, RESET_STATE_VERSION, RESET_STATE_SIZE) ||
	    p[8] & ~RST_KEEP || devstate_zero(p + 9, 3))
		return -EINVAL;
	r->rst_cnt = p[8];
	return 0;
}
