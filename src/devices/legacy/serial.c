/* SPDX-License-Identifier: MIT */
#include "serial.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devstate.h"

enum {
	REG_RBR = 0, /* THR, DLL */
	REG_IER = 1, /* DLM */
	REG_IIR = 2, /* FCR */
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f

#define IIR_NONE    0x01
#define IIR_MSR	    0x00
#define IIR_THRE    0x02
#define IIR_RDA	    0x04
#define IIR_RLS	    0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO    0xc0

#define FCR_ENABLE    0x01
#define FCR_CLEAR_RX  0x02
#define FCR_CLEAR_TX  0x04
#define FCR_DMA	      0x08
#define FCR_TRIG_MASK 0xc0
#define FCR_KEEP      (FCR_ENABLE | FCR_DMA | FCR_TRIG_MASK)

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	 0x01
#define LSR_OE	 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS	   0x10
#define MSR_DSR	   0x20
#define MSR_RI	   0x40
#define MSR_DCD	   0x80
#define MSR_INPUTS 0xf0

#define EXT_INPUTS	(MSR_CTS | MSR_DSR | MSR_DCD)
#define DEFAULT_DIVISOR 12

#define FLAG_THRI 0x01

static unsigned serial_rx_cap(const struct serial *s)
{
	return (s->fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

static unsigned serial_rx_trigger(const struct serial *s)
{
	static const uint8_t level[4] = {1, 4, 8, 14};
	return level[(s->fcr & FCR_TRIG_MASK) >> 6];
}

/* The modem inputs MCR drives in loopback. */
static uint8_t serial_loop_inputs(uint8_t mcr)
{
	return (uint8_t)((mcr & MCR_RTS ? MSR_CTS : 0) | (mcr & MCR_DTR ? MSR_DSR : 0) |
			 (mcr & MCR_OUT1 ? MSR_RI : 0) | (mcr & MCR_OUT2 ? MSR_DCD : 0));
}

static uint8_t serial_inputs(uint8_t mcr)
{
	return (mcr & MCR_LOOP) ? serial_loop_inputs(mcr) : EXT_INPUTS;
}

/* The highest-priority pending interrupt, as IIR bits 0-3. */
static uint8_t serial_iir_id(const struct serial *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr_err & LSR_OE))
		return IIR_RLS;
	if ((s->ier & IER_ERBFI) && s->rx_count) {
		if (!(s->fcr & FCR_ENABLE) || s->rx_count >= serial_rx_trigger(s))
			return IIR_RDA;
		return IIR_TIMEOUT; /* the line is always idle here: see serial.h */
	}
	if ((s->ier & IER_ETBEI) && s->thri)
		return IIR_THRE;
	if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS))
		return IIR_MSR;
	return IIR_NONE;
}

static void serial_update_irq(struct serial *s)
{
	int level = serial_iir_id(s) != IIR_NONE;
	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (s->irq)
		s->irq(s->opaque, level);
}

static void serial_rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
	memset(s->rx, 0, sizeof(s->rx));
}

/* Append one byte; sets OE and returns 0 if it does not fit. */
static int serial_rx_push(struct serial *s, uint8_t b)
{
	if (s->rx_count >= serial_rx_cap(s)) {
		s->lsr_err |= LSR_OE;
		return 0;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = b;
	s->rx_count++;
	return 1;
}

static void serial_set_inputs(struct serial *s, uint8_t in)
{
	uint8_t old = s->msr & MSR_INPUTS, chg = old ^ in, d = 0;
	if (chg & MSR_CTS)
		d |= MSR_DCTS;
	if (chg & MSR_DSR)
		d |= MSR_DDSR;
	if ((old & MSR_RI) && !(in & MSR_RI))
		d |= MSR_TERI;
	if (chg & MSR_DCD)
		d |= MSR_DDCD;
	s->msr = (uint8_t)(in | (s->msr & MSR_DELTAS) | d);
}

static uint8_t serial_read(struct serial *s, unsigned reg)
{
	uint8_t v;
	switch (reg) {
	case REG_RBR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_count) {
			s->rbr = s->rx[s->rx_head];
			s->rx[s->rx_head] = 0;
			s->rx_head = (uint8_t)((s->rx_head + 1) % SERIAL_FIFO_SIZE);
			s->rx_count--;
			if (!s->rx_count)
				s->rx_head = 0;
			serial_update_irq(s);
		}
		return s->rbr;
	case REG_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR:
		v = serial_iir_id(s);
		if (v == IIR_THRE) { /* reading IIR acknowledges THR empty */
			s->thri = 0;
			serial_update_irq(s);
		}
		return (uint8_t)(v | ((s->fcr & FCR_ENABLE) ? IIR_FIFO : 0));
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		v = (uint8_t)((s->rx_count ? LSR_DR : 0) | s->lsr_err | LSR_THRE | LSR_TEMT);
		if (s->lsr_err) {
			s->lsr_err = 0;
			serial_update_irq(s);
		}
		return v;
	case REG_MSR:
		v = s->msr;
		if (s->msr & MSR_DELTAS) {
			s->msr &= MSR_INPUTS;
			serial_update_irq(s);
		}
		return v;
	case REG_SCR:
		return s->scr;
	}
	return 0xff;
}

static void serial_write_thr(struct serial *s, uint8_t v)
{
	s->thri = 0; /* THR is full for a moment ... */
	serial_update_irq(s);
	if (s->mcr & MCR_LOOP)
		serial_rx_push(s, v);
	else if (s->tx)
		s->tx(s->opaque, v);
	s->thri = (s->ier & IER_ETBEI) != 0; /* ... and empty again */
	serial_update_irq(s);
}

static void serial_write_fcr(struct serial *s, uint8_t v)
{
	if ((v ^ s->fcr) & FCR_ENABLE) /* entering or leaving FIFO mode empties the FIFOs */
		serial_rx_clear(s);
	if (!(v & FCR_ENABLE)) {
		s->fcr = 0; /* the other bits are only written with bit 0 set */
		return;
	}
	if (v & FCR_CLEAR_RX)
		serial_rx_clear(s);
	/* FCR_CLEAR_TX: the transmitter never holds anything */
	s->fcr = v & FCR_KEEP;
}

static void serial_write(struct serial *s, unsigned reg, uint8_t v)
{
	uint8_t chg;
	switch (reg) {
	case REG_RBR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_write_thr(s, v);
		return;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		chg = (s->ier ^ v) & IER_ETBEI;
		s->ier = v & IER_MASK;
		/* enabling ETBEI with THR empty (always) raises it; disabling drops it */
		if (chg)
			s->thri = (s->ier & IER_ETBEI) != 0;
		break;
	case REG_IIR:
		serial_write_fcr(s, v);
		break;
	case REG_LCR:
		s->lcr = v;
		return;
	case REG_MCR:
		s->mcr = v & MCR_MASK;
		serial_set_inputs(s, serial_inputs(s->mcr));
		break;
	case REG_SCR:
		s->scr = v;
		return;
	default: /* LSR, MSR: read-only */
		return;
	}
	serial_update_irq(s);
}

static void serial_bus_read(void *dev, uint64_t off, void *data, unsigned len)
{
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++)
		p[i] = off + i < SERIAL_PORT_LEN ? serial_read(dev, (unsigned)(off + i)) : 0xff;
}

static void serial_bus_write(void *dev, uint64_t off, const void *data, unsigned len)
{
	const uint8_t *p = data;
	for (unsigned i = 0; i < len; i++)
		if (off + i < SERIAL_PORT_LEN)
			serial_write(dev, (unsigned)(off + i), p[i]);
}

const struct bus_dev_ops serial_bus_ops = {
    .read = serial_bus_read,
    .write = serial_bus_write,
};

int serial_create(serial_tx_fn tx, serial_irq_fn irq, void *opaque, struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->tx = tx;
	s->irq = irq;
	s->opaque = opaque;
	serial_reset(s);
	*out = s;
	return 0;
}

void serial_destroy(struct serial *s)
{
	free(s);
}

void serial_reset(struct serial *s)
{
	s->ier = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->lsr_err = 0;
	s->msr = EXT_INPUTS;
	s->scr = 0;
	s->dll = DEFAULT_DIVISOR;
	s->dlm = 0;
	s->fcr = 0;
	s->thri = 0;
	s->rbr = 0;
	serial_rx_clear(s);
	serial_update_irq(s);
}

size_t serial_rx_room(const struct serial *s)
{
	if (s->mcr & MCR_LOOP)
		return 0;
	return serial_rx_cap(s) - s->rx_count;
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t n)
{
	if (s->mcr & MCR_LOOP)
		return 0;
	size_t room = serial_rx_room(s), k = n < room ? n : room;
	for (size_t i = 0; i < k; i++)
		serial_rx_push(s, buf[i]);
	if (k < n)
		s->lsr_err |= LSR_OE;
	serial_update_irq(s);
	return k;
}

int serial_save(const struct serial *s, void *buf, size_t cap)
{
	uint8_t *p = buf;
	int rc =
	    devstate_begin(p, cap, SERIAL_STATE_MAGIC, SERIAL_STATE_VERSION, SERIAL_STATE_SIZE);
	if (rc)
		return rc;
	p[8] = s->ier;
	p[9] = s->lcr;
	p[10] = s->mcr;
	p[11] = s->lsr_err;
	p[12] = s->msr;
	p[13] = s->scr;
	p[14] = s->dll;
	p[15] = s->dlm;
	p[16] = s->fcr;
	p[17] = s->thri ? FLAG_THRI : 0;
	p[18] = s->rbr;
	p[19] = s->rx_count;
	for (unsigned i = 0; i < s->rx_count; i++)
		p[20 + i] = s->rx[(s->rx_head + i) % SERIAL_FIFO_SIZE];
	return SERIAL_STATE_SIZE;
}

int serial_restore(struct serial *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	struct serial n;
	if (devstate_check(p, len, SERIAL_STATE_MAGIC, SERIAL_STATE_VERSION, SERIAL_STATE_SIZE))
		return -EINVAL;
	n = *s;
	n.ier = p[8];
	n.lcr = p[9];
	n.mcr = p[10];
	n.lsr_err = p[11];
	n.msr = p[12];
	n.scr = p[13];
	n.dll = p[14];
	n.dlm = p[15];
	n.fcr = p[16];
	n.thri = p[17] & FLAG_THRI;
	n.rbr = p[18];
	n.rx_count = p[19];
	if (n.ier & ~IER_MASK || n.mcr & ~MCR_MASK || n.lsr_err & ~LSR_OE ||
	    (n.msr & MSR_INPUTS) != serial_inputs(n.mcr) || n.fcr & ~FCR_KEEP ||
	    (!(n.fcr & FCR_ENABLE) && n.fcr) || p[17] & ~FLAG_THRI ||
	    (n.thri && !(n.ier & IER_ETBEI)) || n.rx_count > serial_rx_cap(&n) ||
	    devstate_zero(p + 20 + n.rx_count, SERIAL_FIFO_SIZE - n.rx_count))
		return -EINVAL;
	n.rx_head = 0;
	memset(n.rx, 0, sizeof(n.rx));
	memcpy(n.rx, p + 20, n.rx_count);
	*s = n; /* keeps the callbacks and irq_level */
	serial_update_irq(s);
	return 0;
}
