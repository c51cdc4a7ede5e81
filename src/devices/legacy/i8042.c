/* SPDX-License-Identifier: MIT */
#include "i8042.h"

#include <errno.h>
#include <stdlib.h>

#include "devstate.h"

#define STS_OBF	    0x01
#define STS_SYS	    0x04
#define STS_CMD	    0x08
#define STS_NOTINH  0x10
#define CTR_SYS	    0x04
#define CTR_KBDDIS  0x10
#define CTR_AUXDIS  0x20
#define CTR_RESET   0x45 /* KBDINT | SYS | XLATE */
#define CMD_RD_CTR  0x20
#define CMD_WR_CTR  0x60
#define CMD_AUX_DIS 0xa7
#define CMD_AUX_EN  0xa8
#define CMD_AUX_TST 0xa9
#define CMD_SELFTST 0xaa
#define CMD_KBD_TST 0xab
#define CMD_KBD_DIS 0xad
#define CMD_KBD_EN  0xae
#define CMD_PULSE   0xf0 /* 0xf0-0xff; bits 0-3 = lines not pulsed */
#define FLAG_OBF    0x01
#define FLAG_CMD    0x02

static void i8042_put(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = 1;
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->pending = 0;
	switch (cmd) {
	case CMD_RD_CTR:
		i8042_put(k, k->ctr);
		return;
	case CMD_WR_CTR:
		k->pending = cmd;
		return;
	case CMD_AUX_DIS:
		k->ctr |= CTR_AUXDIS;
		return;
	case CMD_AUX_EN:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		return;
	case CMD_KBD_DIS:
		k->ctr |= CTR_KBDDIS;
		return;
	case CMD_KBD_EN:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		return;
	case CMD_SELFTST:
		k->ctr |= CTR_SYS;
		i8042_put(k, 0x55);
		return;
	case CMD_KBD_TST:
	case CMD_AUX_TST:
		i8042_put(k, 0x00);
		return;
	}
	if ((cmd & 0xf0) == CMD_PULSE && !(cmd & 0x01) && k->reset)
		k->reset(k->opaque);
}

static void i8042_data_read(void *dev, uint64_t off, void *data, unsigned len)
{
	struct i8042 *k = dev;
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		if (off + i) {
			p[i] = 0xff;
			continue;
		}
		if (k->out_full) {
			k->last = k->out;
			k->out_full = 0;
		}
		p[i] = k->last;
	}
}

static void i8042_data_write(void *dev, uint64_t off, const void *data, unsigned len)
{
	struct i8042 *k = dev;
	const uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		if (off + i)
			continue;
		k->cmd_last = 0;
		if (k->pending == CMD_WR_CTR)
			k->ctr = p[i];
		/* else: a byte for the keyboard, and there is none */
		k->pending = 0;
	}
}

static void i8042_cmd_read(void *dev, uint64_t off, void *data, unsigned len)
{
	const struct i8042 *k = dev;
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++)
		p[i] = off + i ? 0xff
			       : (uint8_t)((k->out_full ? STS_OBF : 0) | (k->ctr & CTR_SYS) |
					   (k->cmd_last ? STS_CMD : 0) | STS_NOTINH);
}

static void i8042_cmd_write(void *dev, uint64_t off, const void *data, unsigned len)
{
	struct i8042 *k = dev;
	const uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		if (off + i)
			continue;
		k->cmd_last = 1;
		i8042_command(k, p[i]);
	}
}

const struct bus_dev_ops i8042_data_bus_ops = {
    .read = i8042_data_read,
    .write = i8042_data_write,
};

const struct bus_dev_ops i8042_cmd_bus_ops = {
    .read = i8042_cmd_read,
    .write = i8042_cmd_write,
};

int i8042_create(i8042_reset_fn reset, void *opaque, struct i8042 **out)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->reset = reset;
	k->opaque = opaque;
	i8042_reset(k);
	*out = k;
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	free(k);
}

void i8042_reset(struct i8042 *k)
{
	k->ctr = CTR_RESET;
	k->out = 0;
	k->out_full = 0;
	k->last = 0;
	k->cmd_last = 0;
	k->pending = 0;
}

int i8042_save(const struct i8042 *k, void *buf, size_t cap)
{
	uint8_t *p = buf;
	int rc = devstate_begin(p, cap, I8042_STATE_MAGIC, I8042_STATE_VERSION, I8042_STATE_SIZE);
	if (rc)
		return rc;
	p[8] = k->ctr;
	p[9] = k->out;
	p[10] = (uint8_t)((k->out_full ? FLAG_OBF : 0) | (k->cmd_last ? FLAG_CMD : 0));
	p[11] = k->last;
	p[12] = k->pending;
	return I8042_STATE_SIZE;
}

int i8042_restore(struct i8042 *k, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (devstate_check(p, len, I8042_STATE_MAGIC, I8042_STATE_VERSION, I8042_STATE_SIZE))
		return -EINVAL;
	if (p[10] & ~(FLAG_OBF | FLAG_CMD) || (p[12] && p[12] != CMD_WR_CTR) ||
	    devstate_zero(p + 13, 3))
		return -EINVAL;
	k->ctr = p[8];
	k->out = p[9];
	k->out_full = (p[10] & FLAG_OBF) != 0;
	k->cmd_last = (p[10] & FLAG_CMD) != 0;
	k->last = p[11];
	k->pending = p[12];
	return 0;
}
