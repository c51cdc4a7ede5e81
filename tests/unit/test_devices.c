/* SPDX-License-Identifier: MIT */
/* Unit tests: the legacy PC devices (src/devices/legacy/: serial, pm, i8042,
 * reset) and the I/O bus they hang on (src/core/bus.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/bus.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pm.h"
#include "devices/legacy/reset.h"
#include "devices/legacy/serial.h"

/* Serial register offsets and the bits the tests name. */
#define RBR 0
#define IER 1
#define IIR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define COM1	 0x3f8
#define PM_EVT	 0x600
#define PM_CNT	 0x604
#define S5_TYP	 5
#define SLP(typ) ((uint16_t)((typ) << PM1_SLP_TYP_SHIFT))

/* What the callbacks saw. */
struct rec {
	uint8_t tx[256];
	size_t ntx;
	int level;  /* last level reported */
	int nirq;   /* number of irq calls */
	int sleeps; /* sleep calls */
	int typ;    /* last sleep type */
	int resets; /* reset calls */
};

static void rec_tx(void *opaque, uint8_t b)
{
	struct rec *r = opaque;
	r->tx[r->ntx++ % sizeof(r->tx)] = b;
}

static void rec_irq(void *opaque, int level)
{
	struct rec *r = opaque;
	assert_true(level == 0 || level == 1);
	assert_int_not_equal(level, r->level); /* only changes are reported */
	r->level = level;
	r->nirq++;
}

static void rec_sleep(void *opaque, int typ)
{
	struct rec *r = opaque;
	r->sleeps++;
	r->typ = typ;
}

static void rec_reset(void *opaque)
{
	struct rec *r = opaque;
	r->resets++;
}

static uint8_t rd(const struct bus_dev_ops *ops, void *dev, unsigned off)
{
	uint8_t v = 0xa5;
	ops->read(dev, off, &v, 1);
	return v;
}

static void wr(const struct bus_dev_ops *ops, void *dev, unsigned off, uint8_t v)
{
	ops->write(dev, off, &v, 1);
}

static uint16_t rd16(const struct bus_dev_ops *ops, void *dev, unsigned off)
{
	uint8_t b[2];
	ops->read(dev, off, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

static void wr16(const struct bus_dev_ops *ops, void *dev, unsigned off, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	ops->write(dev, off, b, 2);
}

#define SR(s, off)    rd(&serial_bus_ops, (s), (off))
#define SW(s, off, v) wr(&serial_bus_ops, (s), (off), (v))

static struct serial *new_serial(struct rec *r)
{
	struct serial *s = NULL;
	memset(r, 0, sizeof(*r));
	assert_int_equal(serial_create(rec_tx, rec_irq, r, &s), 0);
	assert_non_null(s);
	return s;
}

static void test_destroy_null(void **state)
{
	(void)state;
	serial_destroy(NULL);
	pm_destroy(NULL);
	i8042_destroy(NULL);
	reset_destroy(NULL);
}

static void expect_serial_reset_values(struct serial *s)
{
	assert_int_equal(SR(s, LCR), 0x00);
	assert_int_equal(SR(s, IER), 0x00);
	assert_int_equal(SR(s, IIR), 0x01);
	assert_int_equal(SR(s, MCR), 0x00);
	assert_int_equal(SR(s, LSR), 0x60);
	assert_int_equal(SR(s, MSR), 0xb0);
	assert_int_equal(SR(s, SCR), 0x00);
	assert_int_equal(SR(s, RBR), 0x00);
	SW(s, LCR, 0x80);
	assert_int_equal(SR(s, RBR), 12); /* DLL: 9600 baud */
	assert_int_equal(SR(s, IER), 0);  /* DLM */
	SW(s, LCR, 0x00);
	assert_int_equal(serial_rx_room(s), 1);
}

static void test_reset_values(void **state)
{
	(void)state;
	struct rec r;
	struct serial *s = new_serial(&r);
	expect_serial_reset_values(s);
	assert_int_equal(r.nirq, 0);

	/* dirty everything, raise the line, then reset */
	SW(s, LCR, 0x80);
	SW(s, RBR, 0x01);
	SW(s, IER, 0x02);
	SW(s, LCR, 0x1b);
	SW(s, IER, 0x0f);
	SW(s, IIR, 0xc7);
	SW(s, MCR, 0x0b);
	SW(s, SCR, 0x5a);
	assert_int_equal(serial_receive(s, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(r.level, 1);
	serial_reset(s);
	assert_int_equal(r.level, 0);
	expect_serial_reset_values(s);
	serial_destroy(s);

	struct pm *pm = NULL;
	assert_int_equal(pm_create(S5_TYP, rec_sleep, rec_irq, &r, &pm), 0);
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 0), 0);	/* PM1_STS */
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 2), 0);	/* PM1_EN */
	assert_int_equal(rd16(&pm_cnt_bus_ops, pm, 0), 0x0001); /* SCI_EN */
	pm_destroy(pm);
	assert_int_equal(pm_create(8, NULL, NULL, NULL, &pm), -EINVAL);

	struct i8042 *k = NULL;
	assert_int_equal(i8042_create(rec_reset, &r, &k), 0);
	assert_int_equal(rd(&i8042_cmd_bus_ops, k, 0), 0x14); /* SYS | not inhibited */
	assert_int_equal(rd(&i8042_data_bus_ops, k, 0), 0x00);
	wr(&i8042_cmd_bus_ops, k, 0, 0x20);
	assert_int_equal(rd(&i8042_data_bus_ops, k, 0), 0x45);
	i8042_destroy(k);

	struct reset *rs = NULL;
	assert_int_equal(reset_create(rec_reset, &r, &rs), 0);
	assert_int_equal(rd(&reset_bus_ops, rs, 0), 0x00);
	reset_destroy(rs);
}

static void test_serial_dlab(void **state)
{
	(void)state;
	struct rec r;
	struct serial *s = new_serial(&r);
	SW(s, IER, 0x05);
	SW(s, LCR, 0x83); /* DLAB, 8N1 */
	SW(s, RBR, 0x01); /* DLL: no transmission */
	SW(s, IER, 0x02); /* DLM: IER untouched */
	assert_int_equal(r.ntx, 0);
	assert_int_equal(SR(s, RBR), 0x01);
	assert_int_equal(SR(s, IER), 0x02);
	assert_int_equal(SR(s, LCR), 0x83);
	assert_int_equal(SR(s, SCR), 0x00);
	SW(s, LCR, 0x03);
	assert_int_equal(SR(s, IER), 0x05);
	assert_int_equal(SR(s, LCR), 0x03);
	SW(s, IER, 0xff); /* only the low four bits exist */
	assert_int_equal(SR(s, IER), 0x0f);
	SW(s, LCR, 0x80);
	assert_int_equal(SR(s, RBR), 0x01); /* the divisor survived */
	assert_int_equal(SR(s, IER), 0x02);
	/* a 16-bit access at offset 0 is DLL then DLM */
	wr16(&serial_bus_ops, s, 0, 0x0180);
	assert_int_equal(rd16(&serial_bus_ops, s, 0), 0x0180);
	serial_destroy(s);
}

static void test_serial_tx(void **state)
{
	(void)state;
	struct rec r;
	struct serial *s = new_serial(&r);
	const char *msg = "Linux version";
	for (const char *c = msg; *c; c++) {
		assert_int_equal(SR(s, LSR) & 0x60, 0x60); /* THRE, TEMT: ready */
		SW(s, RBR, (uint8_t)*c);
	}
	assert_int_equal(r.ntx, strlen(msg));
	assert_memory_equal(r.tx, msg, strlen(msg));
	assert_int_equal(SR(s, LSR), 0x60);
	assert_int_equal(r.nirq, 0); /* ETBEI off: no interrupt */
	/* a 4-byte write at offset 0 is THR, IER, FCR, LCR */
	uint8_t w[4] = {'!', 0x00, 0x00, 0x03};
	serial_bus_ops.write(s, 0, w, 4);
	assert_int_equal(r.ntx, strlen(msg) + 1);
	assert_int_equal(r.tx[r.ntx - 1], '!');
	assert_int_equal(SR(s, LCR), 0x03);
	/* no callback: output is dropped */
	struct serial *q = NULL;
	assert_int_equal(serial_create(NULL, NULL, NULL, &q), 0);
	wr(&serial_bus_ops, q, RBR, 'x');
	serial_destroy(q);
	serial_destroy(s);
}

static void test_serial_rx_fifo(void **state)
{
	(void)state;
	struct rec r;
	struct serial *s = new_serial(&r);

	/* FIFO off: one byte of buffer, a second one overruns */
	assert_int_equal(serial_rx_room(s), 1);
	assert_int_equal(serial_receive(s, (const uint8_t *)"xy", 2), 1);
	assert_int_equal(SR(s, LSR), 0x63); /* DR, OE, THRE, TEMT */
	assert_int_equal(SR(s, LSR), 0x61); /* OE cleared by reading */
	assert_int_equal(serial_rx_room(s), 0);
	assert_int_equal(serial_receive(s, (const uint8_t *)"z", 1), 0);
	assert_int_equal(SR(s, LSR), 0x63);
	assert_int_equal(SR(s, RBR), 'x');
	assert_int_equal(SR(s, LSR), 0x60);
	assert_int_equal(SR(s, RBR), 'x'); /* empty: the last byte again */
	assert_int_equal(serial_receive(s, NULL, 0), 0);
	assert_int_equal(SR(s, LSR), 0x60);

	/* FIFO on: 16 bytes, in order */
	SW(s, IIR, 0x01);
	assert_int_equal(SR(s, IIR), 0xc1);
	assert_int_equal(serial_rx_room(s), 16);
	const uint8_t in[20] = "0123456789abcdefghij";
	assert_int_equal(serial_receive(s, in, 5), 5);
	assert_int_equal(serial_rx_room(s), 11);
	assert_int_equal(SR(s, LSR), 0x61);
	assert_int_equal(SR(s, RBR), '0');
	assert_int_equal(SR(s, RBR), '1');
	/* wrap around the ring */
	assert_int_equal(serial_receive(s, in + 5, 15), 13);
	assert_int_equal(s->rx_count, 16);
	assert_int_equal(SR(s, LSR), 0x63); /* overrun */
	assert_int_equal(SR(s, LSR), 0x61);
	for (int i = 2; i < 18; i++)
		assert_int_equal(SR(s, RBR), in[i]);
	assert_int_equal(SR(s, LSR), 0x60);
	assert_int_equal(SR(s, RBR), in[17]);

	/* FCR bit 1 empties the FIFO; toggling the enable bit too */
	assert_int_equal(serial_receive(s, in, 3), 3);
	SW(s, IIR, 0x03);
	assert_int_equal(SR(s, LSR), 0x60);
	assert_int_equal(SR(s, IIR), 0xc1);
	assert_int_equal(serial_receive(s, in, 3), 3);
	SW(s, IIR, 0x00);
	assert_int_equal(SR(s, LSR), 0x60);
	assert_int_equal(SR(s, IIR), 0x01); /* FIFO off: no 0xC0 */
	serial_destroy(s);
}

static void test_serial_trigger_levels(void **state)
{
	(void)state;
	static const struct {
		uint8_t fcr;
		unsigned level;
	} t[] = {{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xc1, 14}, {0xc9, 14}};
	uint8_t buf[16];
	memset(buf, 'q', sizeof(buf));
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct rec r;
		struct serial *s = new_serial(&r);
		SW(s, IIR, t[i].fcr);
		SW(s, IER, 0x01);
		assert_int_equal(r.level, 0);
		/* below the trigger: the character timeout (the line is idle) */
		if (t[i].level > 1) {
			assert_int_equal(serial_receive(s, buf, t[i].level - 1), t[i].level - 1);
			assert_int_equal(r.level, 1);
			assert_int_equal(SR(s, IIR), 0xcc);
		}
		assert_int_equal(serial_receive(s, buf, 1), 1);
		assert_int_equal(r.level, 1);
		assert_int_equal(SR(s, IIR), 0xc4); /* received data available */
		/* reading one below the trigger again: timeout */
		SR(s, RBR);
		assert_int_equal(SR(s, IIR), t[i].level > 1 ? 0xcc : 0xc1);
		/* reading everything lowers the line */
		for (unsigned j = 1; j < t[i].level; j++)
			SR(s, RBR);
		assert_int_equal(SR(s, IIR), 0xc1);
		assert_int_equal(r.level, 0);
		assert_int_equal(r.nirq, 2);
		serial_destroy(s);
	}
	/* FIFO off: any byte is "data available" */
	struct rec r;
	struct serial *s = new_serial(&r);
	SW(s, IER, 0x01);
	assert_int_equal(serial_receive(s, buf, 1), 1);
	assert_int_equal(SR(s, IIR), 0x04);
	SR(s, RBR);
	assert_int_equal(SR(s, IIR), 0x01);
	serial_destroy(s);
}

static void test_serial_iir_priority(void **state)
{
	(void)state;
	struct rec r;
	struct serial *s = new_serial(&r);

	/* set every source: modem status deltas (loopback on and off) ... */
	SW(s, MCR, 0x10);
	SW(s, MCR, 0x00);
	assert_int_equal(r.nirq, 0); /* nothing enabled yet */
	/* ... THR empty (enabling ETBEI), data and an overrun */
	SW(s, IER, 0x0f);
	assert_int_equal(r.level, 1);
	assert_int_equal(serial_receive(s, (const uint8_t *)"ab", 2), 1);
	assert_int_equal(r.nirq, 1);

	assert_int_equal(SR(s, IIR), 0x06); /* line status */
	assert_int_equal(SR(s, IIR), 0x06); /* reading IIR does not clear it */
	assert_int_equal(SR(s, LSR), 0x63);
	assert_int_equal(SR(s, IIR), 0x04); /* data */
	assert_int_equal(SR(s, RBR), 'a');
	assert_int_equal(SR(s, IIR), 0x02); /* THR empty: cleared by this read */
	assert_int_equal(SR(s, IIR), 0x00); /* modem status */
	assert_int_equal(SR(s, MSR), 0xbb); /* inputs back, DCTS DDSR DDCD */
	assert_int_equal(SR(s, MSR), 0xb0);
	assert_int_equal(SR(s, IIR), 0x01);
	assert_int_equal(r.level, 0);
	assert_int_equal(r.nirq, 2);

	/* a THR write raises THR empty again once the byte is gone */
	SW(s, RBR, 'c');
	assert_int_equal(r.level, 1);
	assert_int_equal(r.nirq, 3);
	/* with the line already high, each THR write drops and raises it: a new edge */
	SW(s, RBR, 'd');
	assert_int_equal(r.level, 1);
	assert_int_equal(r.nirq, 5);
	/* a lower priority source does not show while a higher one is pending */
	assert_int_equal(serial_receive(s, (const uint8_t *)"e", 1), 1);
	assert_int_equal(SR(s, IIR), 0x04);
	SR(s, RBR);
	assert_int_equal(SR(s, IIR), 0x02);
	assert_int_equal(SR(s, IIR), 0x01);
	assert_int_equal(r.level, 0);

	/* disabling ETBEI drops a pending THRE; enabling it raises THRE (Linux's
	 * UART_BUG_THRE probe relies on that) */
	SW(s, IER, 0x00);
	SW(s, IER, 0x02);
	assert_int_equal(r.level, 1);
	SW(s, IER, 0x00);
	assert_int_equal(r.level, 0);
	SW(s, IER, 0x02);
	(void)SR(s, LSR);
	assert_int_equal(SR(s, IIR), 0x02);
	SW(s, IER, 0x00);
	SW(s, IER, 0x02);
	assert_int_equal(SR(s, IIR), 0x02);
	SW(s, IER, 0x00);
	assert_int_equal(SR(s, IIR), 0x01);

	/* masked sources do not interrupt but their status is there */
	assert_int_equal(serial_receive(s, (const uint8_t *)"fg", 2), 1);
	assert_int_equal(r.level, 0);
	assert_int_equal(SR(s, LSR), 0x63);
	serial_destroy(s);
}

static void test_serial_loopback(void **state)
{
	(void)state;
	struct rec r;
	struct serial *s = new_serial(&r);

	/* Linux's 8250 probe: MCR = LOOP | OUT2 | RTS must read DCD | CTS */
	SW(s, MCR, 0x1a);
	assert_int_equal(SR(s, MSR) & 0xf0, 0x90);
	SW(s, MCR, 0x1f);
	assert_int_equal(SR(s, MSR), 0xf2); /* DSR rose: DDSR; RI rose: no delta */
	SW(s, MCR, 0x1b);		    /* OUT1 off: RI falls */
	assert_int_equal(SR(s, MSR), 0xb4); /* TERI */
	SW(s, MCR, 0x10);
	assert_int_equal(SR(s, MSR), 0x0b); /* CTS DSR DCD fell */
	assert_int_equal(SR(s, MCR), 0x10);

	/* transmitted bytes come back, nothing goes out, input is ignored */
	SW(s, IIR, 0x07);
	SW(s, RBR, 'L');
	SW(s, RBR, 'B');
	assert_int_equal(r.ntx, 0);
	assert_int_equal(serial_rx_room(s), 0);
	assert_int_equal(serial_receive(s, (const uint8_t *)"ext", 3), 0);
	assert_int_equal(SR(s, LSR), 0x61);
	assert_int_equal(SR(s, RBR), 'L');
	assert_int_equal(SR(s, RBR), 'B');
	assert_int_equal(SR(s, LSR), 0x60);
	for (int i = 0; i < 17; i++)
		SW(s, RBR, (uint8_t)i);
	assert_int_equal(s->rx_count, 16);
	assert_int_equal(SR(s, LSR), 0x63); /* the 17th overran */

	/* modem status interrupt from MCR in loopback */
	SW(s, IIR, 0x00); /* FIFO off */
	SR(s, RBR);
	SW(s, IER, 0x08);
	assert_int_equal(r.level, 0);
	SW(s, MCR, 0x11); /* DTR -> DSR */
	assert_int_equal(r.level, 1);
	assert_int_equal(SR(s, IIR), 0x00);
	assert_int_equal(SR(s, MSR), 0x22);
	assert_int_equal(r.level, 0);

	/* loopback off: output and the external inputs are back */
	SW(s, MCR, 0x00);
	assert_int_equal(SR(s, MSR), 0xb9); /* CTS, DCD rose; DSR was already up */
	SW(s, RBR, 'o');
	assert_int_equal(r.ntx, 1);
	assert_int_equal(r.tx[0], 'o');
	assert_int_equal(serial_receive(s, (const uint8_t *)"i", 1), 1);
	serial_destroy(s);
}

static void test_serial_scr(void **state)
{
	(void)state;
	struct rec r;
	struct serial *s = new_serial(&r);
	for (unsigned v = 0; v < 256; v++) {
		SW(s, SCR, (uint8_t)v);
		assert_int_equal(SR(s, SCR), v);
	}
	SW(s, LCR, 0x80); /* DLAB does not hide it */
	assert_int_equal(SR(s, SCR), 0xff);
	/* LSR and MSR ignore writes; offsets past 7 read 0xff */
	SW(s, LCR, 0x00);
	SW(s, LSR, 0x00);
	SW(s, MSR, 0x00);
	assert_int_equal(SR(s, LSR), 0x60);
	assert_int_equal(SR(s, MSR), 0xb0);
	assert_int_equal(rd(&serial_bus_ops, s, 8), 0xff);
	wr(&serial_bus_ops, s, 9, 0x12);
	assert_int_equal(r.nirq, 0);
	serial_destroy(s);
}

/* A UART with data in a FIFO that has wrapped, an overrun, deltas, a
 * pending THRE and non-default registers. */
static void make_busy_serial(struct serial *s)
{
	uint8_t buf[16];
	for (int i = 0; i < 16; i++)
		buf[i] = (uint8_t)(0x40 + i);
	SW(s, IIR, 0x81);
	assert_int_equal(serial_receive(s, buf, 12), 12);
	for (int i = 0; i < 7; i++)
		SR(s, RBR);
	assert_int_equal(serial_receive(s, buf, 16), 11);
	SW(s, MCR, 0x10);
	SW(s, MCR, 0x0b);
	SW(s, IER, 0x0e);
	SW(s, SCR, 0x77);
	SW(s, LCR, 0x80);
	SW(s, RBR, 0x03);
	SW(s, IER, 0x00);
	SW(s, LCR, 0x1b);
}

static void test_save_restore_roundtrip(void **state)
{
	(void)state;
	struct rec ra, rb;
	struct serial *a = new_serial(&ra), *b = new_serial(&rb);
	make_busy_serial(a);
	uint8_t blob[SERIAL_STATE_SIZE], blob2[SERIAL_STATE_SIZE];
	assert_int_equal(serial_save(a, blob, sizeof(blob) - 1), -ENOSPC);
	assert_int_equal(serial_save(a, blob, sizeof(blob)), SERIAL_STATE_SIZE);
	assert_int_equal(serial_restore(b, blob, sizeof(blob)), 0);
	assert_int_equal(rb.level, 1); /* the restored device drives its line */
	assert_int_equal(rb.level, ra.level);
	assert_int_equal(serial_save(b, blob2, sizeof(blob2)), SERIAL_STATE_SIZE);
	assert_memory_equal(blob, blob2, sizeof(blob));
	/* and they behave the same from here */
	for (unsigned off = 0; off < 8; off++)
		for (int n = 0; n < 18; n++)
			assert_int_equal(SR(a, off), SR(b, off));
	assert_int_equal(serial_save(a, blob, sizeof(blob)), SERIAL_STATE_SIZE);
	assert_int_equal(serial_save(b, blob2, sizeof(blob2)), SERIAL_STATE_SIZE);
	assert_memory_equal(blob, blob2, sizeof(blob));
	/* restoring the reset state lowers the line */
	struct rec rc;
	struct serial *c = new_serial(&rc);
	uint8_t clean[SERIAL_STATE_SIZE];
	assert_int_equal(serial_save(c, clean, sizeof(clean)), SERIAL_STATE_SIZE);
	assert_int_equal(serial_restore(c, blob, sizeof(blob)), 0);
	assert_int_equal(serial_restore(c, clean, sizeof(clean)), 0);
	assert_int_equal(rc.level, 0);
	serial_destroy(a);
	serial_destroy(b);
	serial_destroy(c);

	struct rec r;
	memset(&r, 0, sizeof(r));
	struct pm *p = NULL, *q = NULL;
	assert_int_equal(pm_create(S5_TYP, rec_sleep, rec_irq, &r, &p), 0);
	assert_int_equal(pm_create(S5_TYP, NULL, NULL, NULL, &q), 0);
	wr16(&pm_evt_bus_ops, p, 2, 0x0121);
	wr16(&pm_cnt_bus_ops, p, 0, SLP(3) | 0x0002);
	pm_power_button(p);
	uint8_t pb[PM_STATE_SIZE], pb2[PM_STATE_SIZE];
	assert_int_equal(pm_save(p, pb, sizeof(pb) - 1), -ENOSPC);
	assert_int_equal(pm_save(p, pb, sizeof(pb)), PM_STATE_SIZE);
	assert_int_equal(pm_restore(q, pb, sizeof(pb)), 0);
	assert_int_equal(q->irq_level, 1);
	assert_int_equal(pm_save(q, pb2, sizeof(pb2)), PM_STATE_SIZE);
	assert_memory_equal(pb, pb2, sizeof(pb));
	assert_int_equal(rd16(&pm_cnt_bus_ops, q, 0), SLP(3) | 0x0003);
	pm_destroy(p);
	pm_destroy(q);

	struct i8042 *k = NULL, *l = NULL;
	assert_int_equal(i8042_create(NULL, NULL, &k), 0);
	assert_int_equal(i8042_create(NULL, NULL, &l), 0);
	wr(&i8042_cmd_bus_ops, k, 0, 0xaa);
	rd(&i8042_data_bus_ops, k, 0);
	wr(&i8042_cmd_bus_ops, k, 0, 0x20);
	wr(&i8042_cmd_bus_ops, k, 0, 0x60); /* pending parameter, output full */
	uint8_t kb[I8042_STATE_SIZE], kb2[I8042_STATE_SIZE];
	assert_int_equal(i8042_save(k, kb, sizeof(kb) - 1), -ENOSPC);
	assert_int_equal(i8042_save(k, kb, sizeof(kb)), I8042_STATE_SIZE);
	assert_int_equal(i8042_restore(l, kb, sizeof(kb)), 0);
	assert_int_equal(i8042_save(l, kb2, sizeof(kb2)), I8042_STATE_SIZE);
	assert_memory_equal(kb, kb2, sizeof(kb));
	assert_int_equal(rd(&i8042_cmd_bus_ops, l, 0), 0x1d);
	wr(&i8042_data_bus_ops, l, 0, 0x01);
	assert_int_equal(rd(&i8042_data_bus_ops, l, 0), 0x45);
	wr(&i8042_cmd_bus_ops, l, 0, 0x20);
	assert_int_equal(rd(&i8042_data_bus_ops, l, 0), 0x01);
	i8042_destroy(k);
	i8042_destroy(l);

	struct reset *x = NULL, *y = NULL;
	assert_int_equal(reset_create(NULL, NULL, &x), 0);
	assert_int_equal(reset_create(NULL, NULL, &y), 0);
	wr(&reset_bus_ops, x, 0, 0x0a);
	uint8_t xb[RESET_STATE_SIZE], xb2[RESET_STATE_SIZE];
	assert_int_equal(reset_save(x, xb, sizeof(xb) - 1), -ENOSPC);
	assert_int_equal(reset_save(x, xb, sizeof(xb)), RESET_STATE_SIZE);
	assert_int_equal(reset_restore(y, xb, sizeof(xb)), 0);
	assert_int_equal(reset_save(y, xb2, sizeof(xb2)), RESET_STATE_SIZE);
	assert_memory_equal(xb, xb2, sizeof(xb));
	assert_int_equal(rd(&reset_bus_ops, y, 0), 0x0a);
	reset_destroy(x);
	reset_destroy(y);
}

/* One device kind behind a common face, for the hostile-blob tests. */
struct kind {
	const char *name;
	size_t size;
	void *(*make)(void);
	void (*destroy)(void *);
	int (*save)(const void *, void *, size_t);
	int (*restore)(void *, const void *, size_t);
};

static void *mk_serial(void)
{
	struct serial *s = NULL;
	assert_int_equal(serial_create(NULL, NULL, NULL, &s), 0);
	make_busy_serial(s);
	return s;
}
static void rm_serial(void *d)
{
	serial_destroy(d);
}
static int sv_serial(const void *d, void *b, size_t n)
{
	return serial_save(d, b, n);
}
static int rs_serial(void *d, const void *b, size_t n)
{
	return serial_restore(d, b, n);
}
static void *mk_pm(void)
{
	struct pm *p = NULL;
	assert_int_equal(pm_create(S5_TYP, NULL, NULL, NULL, &p), 0);
	wr16(&pm_evt_bus_ops, p, 2, 0x0100);
	pm_power_button(p);
	return p;
}
static void rm_pm(void *d)
{
	pm_destroy(d);
}
static int sv_pm(const void *d, void *b, size_t n)
{
	return pm_save(d, b, n);
}
static int rs_pm(void *d, const void *b, size_t n)
{
	return pm_restore(d, b, n);
}
static void *mk_i8042(void)
{
	struct i8042 *k = NULL;
	assert_int_equal(i8042_create(NULL, NULL, &k), 0);
	wr(&i8042_cmd_bus_ops, k, 0, 0xaa);
	return k;
}
static void rm_i8042(void *d)
{
	i8042_destroy(d);
}
static int sv_i8042(const void *d, void *b, size_t n)
{
	return i8042_save(d, b, n);
}
static int rs_i8042(void *d, const void *b, size_t n)
{
	return i8042_restore(d, b, n);
}
static void *mk_reset(void)
{
	struct reset *r = NULL;
	assert_int_equal(reset_create(NULL, NULL, &r), 0);
	wr(&reset_bus_ops, r, 0, 0x02);
	return r;
}
static void rm_reset(void *d)
{
	reset_destroy(d);
}
static int sv_reset(const void *d, void *b, size_t n)
{
	return reset_save(d, b, n);
}
static int rs_reset(void *d, const void *b, size_t n)
{
	return reset_restore(d, b, n);
}

static const struct kind kinds[] = {
    {"serial", SERIAL_STATE_SIZE, mk_serial, rm_serial, sv_serial, rs_serial},
    {"pm", PM_STATE_SIZE, mk_pm, rm_pm, sv_pm, rs_pm},
    {"i8042", I8042_STATE_SIZE, mk_i8042, rm_i8042, sv_i8042, rs_i8042},
    {"reset", RESET_STATE_SIZE, mk_reset, rm_reset, sv_reset, rs_reset},
};

/* restore(blob) either fails with -EINVAL and leaves the device as it was, or
 * succeeds and a save gives the blob back exactly (accepted blobs are
 * canonical). Returns 1 if accepted. */
static int check_restore(const struct kind *k, void *dev, const uint8_t *blob, size_t len)
{
	uint8_t before[64], after[64];
	assert_int_equal(k->save(dev, before, sizeof(before)), k->size);
	int rc = k->restore(dev, blob, len);
	assert_int_equal(k->save(dev, after, sizeof(after)), k->size);
	if (rc) {
		assert_int_equal(rc, -EINVAL);
		assert_memory_equal(before, after, k->size);
		return 0;
	}
	assert_int_equal(len, k->size);
	assert_memory_equal(blob, after, k->size);
	return 1;
}

static void test_restore_hostile(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
		const struct kind *k = &kinds[ki];
		void *dev = k->make();
		uint8_t good[64], b[64];
		assert_true(k->size <= sizeof(good));
		assert_int_equal(k->save(dev, good, sizeof(good)), k->size);
		assert_int_equal(check_restore(k, dev, good, k->size), 1);

		/* truncated, extended, empty, NULL */
		for (size_t n = 0; n < k->size; n++) {
			uint8_t *t = malloc(n ? n : 1); /* exact size: ASan sees overreads */
			assert_non_null(t);
			memcpy(t, good, n);
			assert_int_equal(check_restore(k, dev, t, n), 0);
			free(t);
		}
		memcpy(b, good, k->size);
		b[k->size] = 0;
		assert_int_equal(check_restore(k, dev, b, k->size + 1), 0);
		assert_int_equal(k->restore(dev, NULL, 0), -EINVAL);
		assert_int_equal(k->restore(dev, NULL, k->size), -EINVAL);

		/* wrong magic, version, size field */
		static const size_t hdr_at[] = {0, 3, 4, 5, 6, 7};
		for (size_t i = 0; i < sizeof(hdr_at) / sizeof(hdr_at[0]); i++) {
			memcpy(b, good, k->size);
			b[hdr_at[i]] ^= 0x01;
			assert_int_equal(check_restore(k, dev, b, k->size), 0);
		}
		memcpy(b, good, k->size);
		b[4] = 2; /* version 2 */
		assert_int_equal(check_restore(k, dev, b, k->size), 0);
		memcpy(b, good, k->size);
		b[6] = (uint8_t)(k->size - 1); /* a size field that disagrees */
		assert_int_equal(check_restore(k, dev, b, k->size), 0);

		/* every single-bit flip and every byte value past the header */
		for (size_t i = 0; i < k->size * 8; i++) {
			memcpy(b, good, k->size);
			b[i / 8] ^= (uint8_t)(1u << (i % 8));
			check_restore(k, dev, b, k->size);
		}
		for (size_t i = 8; i < k->size; i++)
			for (unsigned v = 0; v < 256; v++) {
				memcpy(b, good, k->size);
				b[i] = (uint8_t)v;
				check_restore(k, dev, b, k->size);
			}
		/* garbage with a valid header */
		int accepted = 0;
		for (int it = 0; it < 20000; it++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (it % 2) { /* all random past the header */
				memcpy(b, good, 8);
				for (size_t i = 8; i < k->size; i++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					b[i] = (uint8_t)(x >> 8);
				}
			} else { /* a few random bytes in a good blob */
				memcpy(b, good, k->size);
				for (unsigned n = 0; n < 1 + x % 3; n++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					b[8 + (x >> 8) % (k->size - 8)] = (uint8_t)(x >> 32);
				}
			}
			accepted += check_restore(k, dev, b, k->size);
		}
		(void)accepted;
		/* and still restores the good one */
		assert_int_equal(check_restore(k, dev, good, k->size), 1);
		k->destroy(dev);
	}

	/* serial: specific bad fields */
	struct serial *s = mk_serial();
	uint8_t good[SERIAL_STATE_SIZE], b[SERIAL_STATE_SIZE];
	assert_int_equal(serial_save(s, good, sizeof(good)), SERIAL_STATE_SIZE);
	static const struct {
		size_t at;
		uint8_t v;
	} bad[] = {
	    {8, 0x10},	/* IER bit 4 */
	    {10, 0x20}, /* MCR bit 5 */
	    {11, 0x04}, /* an LSR error this model never sets */
	    {12, 0x00}, /* MSR inputs that MCR does not drive */
	    {16, 0x02}, /* FCR self-clearing bit stored */
	    {16, 0x80}, /* FCR bits without the enable bit */
	    {17, 0x02}, /* unknown flag */
	    {19, 17},	/* more than 16 bytes in the FIFO */
	    {19, 200},	/* far more */
	    {19, 15},	/* a stored byte past the count */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(b, good, sizeof(b));
		b[bad[i].at] = bad[i].v;
		assert_int_equal(serial_restore(s, b, sizeof(b)), -EINVAL);
	}
	memcpy(b, good, sizeof(b));
	b[16] = 0x00; /* FIFO off with more than one byte */
	assert_int_equal(serial_restore(s, b, sizeof(b)), -EINVAL);
	memcpy(b, good, sizeof(b));
	b[8] = 0x00; /* THRE pending with ETBEI off */
	assert_int_equal(serial_restore(s, b, sizeof(b)), -EINVAL);
	serial_destroy(s);
}

/* All devices on one port I/O bus at their PC addresses. */
struct pc {
	struct bus bus;
	struct rec rs, rp, rk;
	struct serial *s;
	struct pm *pm;
	struct i8042 *k;
	struct reset *r;
};

static void pc_init(struct pc *pc)
{
	struct nb_error err;
	memset(pc, 0, sizeof(*pc));
	bus_init(&pc->bus, "pio");
	assert_int_equal(serial_create(rec_tx, rec_irq, &pc->rs, &pc->s), 0);
	assert_int_equal(pm_create(S5_TYP, rec_sleep, rec_irq, &pc->rp, &pc->pm), 0);
	assert_int_equal(i8042_create(rec_reset, &pc->rk, &pc->k), 0);
	assert_int_equal(reset_create(rec_reset, &pc->rk, &pc->r), 0);
	assert_int_equal(
	    bus_register(&pc->bus, COM1, SERIAL_PORT_LEN, &serial_bus_ops, pc->s, "serial", &err),
	    0);
	assert_int_equal(
	    bus_register(&pc->bus, I8042_DATA_PORT, 1, &i8042_data_bus_ops, pc->k, "i8042", &err),
	    0);
	assert_int_equal(
	    bus_register(&pc->bus, I8042_CMD_PORT, 1, &i8042_cmd_bus_ops, pc->k, "i8042", &err), 0);
	assert_int_equal(bus_register(&pc->bus, RESET_PORT, RESET_PORT_LEN, &reset_bus_ops, pc->r,
				      "reset", &err),
			 0);
	assert_int_equal(
	    bus_register(&pc->bus, PM_EVT, PM_EVT_LEN, &pm_evt_bus_ops, pc->pm, "pm1a_evt", &err),
	    0);
	assert_int_equal(
	    bus_register(&pc->bus, PM_CNT, PM_CNT_LEN, &pm_cnt_bus_ops, pc->pm, "pm1a_cnt", &err),
	    0);
	assert_int_equal(pc->bus.n, 6);
}

static void pc_fini(struct pc *pc)
{
	serial_destroy(pc->s);
	pm_destroy(pc->pm);
	i8042_destroy(pc->k);
	reset_destroy(pc->r);
}

static int claimed(uint16_t port, unsigned len)
{
	static const struct {
		uint16_t base, len;
	} r[] = {{COM1, 8}, {0x60, 1}, {0x64, 1}, {0xcf9, 1}, {PM_EVT, 4}, {PM_CNT, 2}};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (port >= r[i].base && port + len <= r[i].base + r[i].len)
			return 1;
	return 0;
}

static void check_invariants(struct pc *pc)
{
	struct serial *s = pc->s;
	assert_true(s->rx_count <= SERIAL_FIFO_SIZE);
	assert_true(s->rx_head < SERIAL_FIFO_SIZE);
	if (!(s->fcr & 0x01))
		assert_true(s->rx_count <= 1);
	assert_true((s->ier & ~0x0f) == 0 && (s->mcr & ~0x1f) == 0);
	assert_int_equal(pc->rs.level, s->irq_level);
	assert_int_equal(pc->rp.level, pc->pm->irq_level);
	assert_int_equal(pc->pm->irq_level, (pc->pm->sts & pc->pm->en & 0x0100) != 0);
	assert_true(pc->pm->cnt & 0x0001);
	assert_true(pc->k->out_full <= 1);
	assert_true(pc->k->pending == 0 || pc->k->pending == 0x60);

	/* the serial line matches the state: a fresh copy, restored from a
	 * save, computes the same level; and the save round-trips */
	uint8_t a[SERIAL_STATE_SIZE], b[SERIAL_STATE_SIZE];
	struct rec r;
	struct serial *c = new_serial(&r);
	assert_int_equal(serial_save(s, a, sizeof(a)), SERIAL_STATE_SIZE);
	assert_int_equal(serial_restore(c, a, sizeof(a)), 0);
	assert_int_equal(c->irq_level, s->irq_level);
	assert_int_equal(serial_save(c, b, sizeof(b)), SERIAL_STATE_SIZE);
	assert_memory_equal(a, b, sizeof(a));
	serial_destroy(c);

	uint8_t pa[PM_STATE_SIZE], ka[I8042_STATE_SIZE], ra[RESET_STATE_SIZE];
	assert_int_equal(pm_save(pc->pm, pa, sizeof(pa)), PM_STATE_SIZE);
	assert_int_equal(pm_restore(pc->pm, pa, sizeof(pa)), 0);
	assert_int_equal(i8042_save(pc->k, ka, sizeof(ka)), I8042_STATE_SIZE);
	assert_int_equal(i8042_restore(pc->k, ka, sizeof(ka)), 0);
	assert_int_equal(reset_save(pc->r, ra, sizeof(ra)), RESET_STATE_SIZE);
	assert_int_equal(reset_restore(pc->r, ra, sizeof(ra)), 0);
}

static void test_random_bus(void **state)
{
	(void)state;
	struct pc pc;
	pc_init(&pc);
	/* every claimed port, and the ones just around each range */
	static const uint16_t ports[] = {
	    0x3f6, 0x3f7, 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x400,
	    0x5f,  0x60,  0x61,	 0x62,	0x63,  0x64,  0x65,  0xcf8, 0xcf9, 0xcfa, 0xcfb,
	    0x5fe, 0x5ff, 0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x606, 0x607, 0x0,
	};
	static const unsigned lens[] = {1, 2, 4, 1, 1, 8};
	uint64_t x = 0x0123456789abcdefull;
	for (int it = 0; it < 300000; it++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint16_t port = ports[x % (sizeof(ports) / sizeof(ports[0]))];
		unsigned len = lens[(x >> 8) % (sizeof(lens) / sizeof(lens[0]))];
		int is_write = (x >> 16) & 1;
		uint8_t data[8], orig[8];
		for (int i = 0; i < 8; i++)
			data[i] = orig[i] = (uint8_t)(x >> (24 + i * 4));
		/* MCR: stay out of loopback most of the time so input flows */
		if (is_write && port <= 0x3fc && port + len > 0x3fc && (x >> 60) % 4)
			data[0x3fc - port] &= 0x0f;
		int rc = bus_access(&pc.bus, port, is_write, data, len);
		if (claimed(port, len)) {
			assert_int_equal(rc, 0);
		} else {
			assert_int_equal(rc, -ENOENT);
			if (!is_write)
				for (unsigned i = 0; i < len; i++)
					assert_int_equal(data[i], 0xff);
		}
		(void)orig;
		switch ((x >> 56) % 32) {
		case 0: {
			uint8_t in[24];
			size_t n = (x >> 40) % sizeof(in), room = serial_rx_room(pc.s);
			memset(in, (int)(x >> 32), sizeof(in));
			size_t got = serial_receive(pc.s, in, n);
			assert_int_equal(got, n < room ? n : room);
			break;
		}
		case 1:
			pm_power_button(pc.pm);
			break;
		case 2:
			if ((x >> 40) % 64 == 0)
				serial_reset(pc.s);
			break;
		default:
			break;
		}
		assert_int_equal(bus_access(&pc.bus, port, is_write, data, 3), -EINVAL);
		if (it % 97 == 0)
			check_invariants(&pc);
	}
	check_invariants(&pc);
	/* the loop did reach the interesting states */
	assert_true(pc.rs.nirq > 0);
	assert_true(pc.rp.nirq > 0);
	assert_true(pc.rs.ntx > 0);
	assert_true(pc.rk.resets > 0);
	assert_true(pc.rp.sleeps > 0);
	pc_fini(&pc);
}

static const struct bus_dev_ops null_ops = {NULL, NULL};

static void test_bus(void **state)
{
	(void)state;
	struct bus b;
	struct nb_error err;
	int dummy[4];
	bus_init(&b, "pio");
	assert_null(bus_find(&b, 0, 1));
	assert_int_equal(bus_register(&b, 0x3f8, 8, &null_ops, &dummy[0], "com1", &err), 0);
	/* overlaps: inside, across the start, across the end, covering */
	memset(&err, 0, sizeof(err));
	assert_int_equal(bus_register(&b, 0x3ff, 1, &null_ops, &dummy[1], "late", &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	assert_non_null(strstr(err.msg, "late"));
	assert_non_null(strstr(err.msg, "com1"));
	assert_int_equal(bus_register(&b, 0x3f0, 9, &null_ops, &dummy[1], "x", &err), -1);
	assert_int_equal(bus_register(&b, 0x3fc, 8, &null_ops, &dummy[1], "x", &err), -1);
	assert_int_equal(bus_register(&b, 0x300, 0x200, &null_ops, &dummy[1], "x", &err), -1);
	assert_int_equal(bus_register(&b, 0x3f8, 8, &null_ops, &dummy[1], "x", &err), -1);
	/* empty and overflowing ranges */
	assert_int_equal(bus_register(&b, 0x100, 0, &null_ops, &dummy[1], "x", &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 2, &null_ops, &dummy[1], "x", &err), -1);
	assert_int_equal(bus_register(&b, 2, UINT64_MAX, &null_ops, &dummy[1], "x", &err), -1);
	assert_int_equal(b.n, 1);
	/* adjacent ranges are fine, in any order */
	assert_int_equal(bus_register(&b, 0x400, 4, &null_ops, &dummy[2], "after", &err), 0);
	assert_int_equal(bus_register(&b, 0x3f0, 8, &null_ops, &dummy[1], "before", &err), 0);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 1, &null_ops, &dummy[3], "top", NULL), 0);
	assert_int_equal(b.n, 4);
	for (unsigned i = 1; i < b.n; i++)
		assert_true(b.r[i - 1].base + b.r[i - 1].len <= b.r[i].base);

	/* find: inside, at the edges, straddling two ranges or an end */
	assert_ptr_equal(bus_find(&b, 0x3f8, 1)->dev, &dummy[0]);
	assert_ptr_equal(bus_find(&b, 0x3f8, 8)->dev, &dummy[0]);
	assert_ptr_equal(bus_find(&b, 0x3fc, 4)->dev, &dummy[0]);
	assert_ptr_equal(bus_find(&b, 0x3ff, 1)->dev, &dummy[0]);
	assert_ptr_equal(bus_find(&b, 0x3f7, 1)->dev, &dummy[1]);
	assert_ptr_equal(bus_find(&b, 0x400, 4)->dev, &dummy[2]);
	assert_null(bus_find(&b, 0x3f7, 2)); /* before | com1 */
	assert_null(bus_find(&b, 0x3fd, 4)); /* com1 | after */
	assert_null(bus_find(&b, 0x3ff, 2));
	assert_null(bus_find(&b, 0x402, 4)); /* past the end */
	assert_null(bus_find(&b, 0x3ef, 2)); /* before the first */
	assert_null(bus_find(&b, 0x3ef, 1));
	assert_null(bus_find(&b, 0x404, 1));
	assert_null(bus_find(&b, UINT64_MAX, 1));
	assert_ptr_equal(bus_find(&b, UINT64_MAX - 1, 1)->dev, &dummy[3]);
	assert_null(bus_find(&b, UINT64_MAX - 1, 2));

	/* access: unclaimed reads are all ones; bad lengths; no handlers */
	uint8_t d[8];
	memset(d, 0, sizeof(d));
	assert_int_equal(bus_access(&b, 0x500, 0, d, 4), -ENOENT);
	assert_int_equal(d[0] & d[1] & d[2] & d[3], 0xff);
	assert_int_equal(d[4], 0);
	assert_int_equal(bus_access(&b, 0x3f8, 0, d, 3), -EINVAL);
	assert_int_equal(bus_access(&b, 0x3f8, 0, d, 0), -EINVAL);
	memset(d, 0, sizeof(d));
	assert_int_equal(bus_access(&b, 0x3f8, 0, d, 8), 0);
	assert_int_equal(d[7], 0xff);
	assert_int_equal(bus_access(&b, 0x3f8, 1, d, 8), 0);

	/* a full bus */
	bus_init(&b, "mmio");
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&b, 0x1000 * (BUS_MAX_RANGES - i), 0x1000, &null_ops,
					      NULL, "m", &err),
				 0);
	assert_int_equal(bus_register(&b, 0, 0x1000, &null_ops, NULL, "one-more", &err), -1);
	assert_int_equal(err.code, NB_EINVAL);
	for (unsigned i = 1; i < b.n; i++)
		assert_true(b.r[i - 1].base < b.r[i].base);
	assert_null(bus_find(&b, 0xfff, 2));
	assert_non_null(bus_find(&b, 0x1fff, 1));
	assert_null(bus_find(&b, 0x1fff, 2)); /* two adjacent ranges */
}

static void test_pm_sleep(void **state)
{
	(void)state;
	struct rec r;
	memset(&r, 0, sizeof(r));
	struct pm *pm = NULL;
	assert_int_equal(pm_create(S5_TYP, rec_sleep, rec_irq, &r, &pm), 0);
	/* SLP_TYP alone (ACPICA writes it first) */
	wr16(&pm_cnt_bus_ops, pm, 0, SLP(S5_TYP));
	assert_int_equal(r.sleeps, 0);
	assert_int_equal(rd16(&pm_cnt_bus_ops, pm, 0), SLP(S5_TYP) | 0x0001);
	/* another sleep type with SLP_EN: not supported, nothing happens */
	for (int t = 0; t < 8; t++) {
		if (t == S5_TYP)
			continue;
		wr16(&pm_cnt_bus_ops, pm, 0, SLP(t) | PM1_CNT_SLP_EN);
		assert_int_equal(r.sleeps, 0);
	}
	/* S5 with SLP_EN */
	wr16(&pm_cnt_bus_ops, pm, 0, SLP(S5_TYP) | PM1_CNT_SLP_EN | 0x0001);
	assert_int_equal(r.sleeps, 1);
	assert_int_equal(r.typ, S5_TYP);
	assert_int_equal(rd16(&pm_cnt_bus_ops, pm, 0), SLP(S5_TYP) | 0x0001); /* SLP_EN reads 0 */
	/* a byte write of the high half carries both fields */
	wr(&pm_cnt_bus_ops, pm, 1, (uint8_t)((SLP(S5_TYP) | PM1_CNT_SLP_EN) >> 8));
	assert_int_equal(r.sleeps, 2);
	/* the low byte alone never sleeps, even with SLP_TYP set */
	wr(&pm_cnt_bus_ops, pm, 0, 0xff);
	assert_int_equal(r.sleeps, 2);
	assert_int_equal(rd16(&pm_cnt_bus_ops, pm, 0), SLP(S5_TYP) | 0x0003); /* BM_RLD kept */
	/* SCI_EN cannot be cleared */
	wr16(&pm_cnt_bus_ops, pm, 0, 0x0000);
	assert_int_equal(rd16(&pm_cnt_bus_ops, pm, 0), 0x0001);
	/* SLP_EN and S5 through the bus at 0x604 */
	struct bus b;
	struct nb_error err;
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, PM_CNT, PM_CNT_LEN, &pm_cnt_bus_ops, pm, "cnt", &err), 0);
	uint32_t v = SLP(S5_TYP) | PM1_CNT_SLP_EN;
	assert_int_equal(bus_access(&b, PM_CNT, 1, &v, 2), 0);
	assert_int_equal(r.sleeps, 3);
	assert_int_equal(bus_access(&b, PM_CNT, 1, &v, 4), -ENOENT); /* wider than the block */
	assert_int_equal(r.sleeps, 3);
	assert_int_equal(r.nirq, 0);
	pm_destroy(pm);

	/* a different S5 value */
	memset(&r, 0, sizeof(r));
	assert_int_equal(pm_create(0, rec_sleep, NULL, &r, &pm), 0);
	wr16(&pm_cnt_bus_ops, pm, 0, SLP(5) | PM1_CNT_SLP_EN);
	assert_int_equal(r.sleeps, 0);
	wr16(&pm_cnt_bus_ops, pm, 0, PM1_CNT_SLP_EN);
	assert_int_equal(r.sleeps, 1);
	assert_int_equal(r.typ, 0);
	pm_destroy(pm);
}

static void test_pm_power_button(void **state)
{
	(void)state;
	struct rec r;
	memset(&r, 0, sizeof(r));
	struct pm *pm = NULL;
	assert_int_equal(pm_create(S5_TYP, rec_sleep, rec_irq, &r, &pm), 0);
	/* not enabled: status only */
	pm_power_button(pm);
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 0), PM1_STS_PWRBTN);
	assert_int_equal(r.nirq, 0);
	/* enabling the event with the status set raises the SCI */
	wr16(&pm_evt_bus_ops, pm, 2, PM1_EN_PWRBTN);
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 2), PM1_EN_PWRBTN);
	assert_int_equal(r.level, 1);
	/* writing 0 clears nothing, writing 1 clears */
	wr16(&pm_evt_bus_ops, pm, 0, 0x0000);
	wr16(&pm_evt_bus_ops, pm, 0, 0xfeff);
	assert_int_equal(r.level, 1);
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 0), PM1_STS_PWRBTN);
	wr16(&pm_evt_bus_ops, pm, 0, PM1_STS_PWRBTN);
	assert_int_equal(r.level, 0);
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 0), 0);
	/* enabled: a press raises it at once; pressing again changes nothing */
	pm_power_button(pm);
	assert_int_equal(r.level, 1);
	pm_power_button(pm);
	assert_int_equal(r.nirq, 3);
	/* a 32-bit read of the block is STS | EN << 16 */
	uint8_t d[4];
	pm_evt_bus_ops.read(pm, 0, d, 4);
	assert_int_equal(d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24, 0x01000100);
	/* disabling lowers it, the status stays */
	wr(&pm_evt_bus_ops, pm, 3, 0x00);
	assert_int_equal(r.level, 0);
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 0), PM1_STS_PWRBTN);
	/* undefined enable bits do not stick */
	wr16(&pm_evt_bus_ops, pm, 2, 0xffff);
	assert_int_equal(rd16(&pm_evt_bus_ops, pm, 2), 0x4721);
	assert_int_equal(r.level, 1);
	pm_reset(pm);
	assert_int_equal(r.level, 0);
	assert_int_equal(r.sleeps, 0);
	pm_destroy(pm);
}

static void test_i8042(void **state)
{
	(void)state;
	struct rec r;
	memset(&r, 0, sizeof(r));
	struct i8042 *k = NULL;
	assert_int_equal(i8042_create(rec_reset, &r, &k), 0);
#define KSTS()	rd(&i8042_cmd_bus_ops, k, 0)
#define KDAT()	rd(&i8042_data_bus_ops, k, 0)
#define KCMD(v) wr(&i8042_cmd_bus_ops, k, 0, (v))
	KCMD(0xaa);
	assert_int_equal(KSTS(), 0x1d); /* OBF, SYS, command, not inhibited */
	assert_int_equal(KDAT(), 0x55);
	assert_int_equal(KSTS(), 0x1c);
	assert_int_equal(KDAT(), 0x55); /* nothing pending: the last value */
	KCMD(0xab);
	assert_int_equal(KDAT(), 0x00);
	KCMD(0xa9);
	assert_int_equal(KSTS() & 1, 1);
	assert_int_equal(KDAT(), 0x00);
	/* command byte */
	KCMD(0x20);
	assert_int_equal(KDAT(), 0x45);
	KCMD(0x60);
	wr(&i8042_data_bus_ops, k, 0, 0x30);
	assert_int_equal(KSTS(), 0x10); /* SYS follows the command byte; last write was data */
	KCMD(0x20);
	assert_int_equal(KDAT(), 0x30);
	wr(&i8042_data_bus_ops, k, 0, 0x99); /* no parameter expected: ignored */
	KCMD(0x20);
	assert_int_equal(KDAT(), 0x30);
	KCMD(0xa7);
	KCMD(0xad);
	KCMD(0x20);
	assert_int_equal(KDAT(), 0x30);
	KCMD(0xa8);
	KCMD(0xae);
	KCMD(0x20);
	assert_int_equal(KDAT(), 0x00);
	KCMD(0xaa); /* self-test sets the system flag */
	assert_int_equal(KDAT(), 0x55);
	assert_int_equal(KSTS(), 0x1c);
	/* a command cancels a pending parameter */
	KCMD(0x60);
	KCMD(0xd4);
	wr(&i8042_data_bus_ops, k, 0, 0x00);
	KCMD(0x20);
	assert_int_equal(KDAT(), 0x04);
	/* ignored commands reply nothing */
	KCMD(0xd3);
	KCMD(0xc0);
	KCMD(0xff);
	assert_int_equal(KSTS() & 1, 0);
	assert_int_equal(r.resets, 0);
	/* 0xfe pulses the reset line */
	KCMD(0xfe);
	assert_int_equal(r.resets, 1);
	KCMD(0xf0);
	assert_int_equal(r.resets, 2);
	KCMD(0xf1);
	assert_int_equal(r.resets, 2);
	/* through the bus at 0x64; wider accesses straddle: not delivered */
	struct bus b;
	struct nb_error err;
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x60, 1, &i8042_data_bus_ops, k, "kbd", &err), 0);
	assert_int_equal(bus_register(&b, 0x64, 1, &i8042_cmd_bus_ops, k, "kbd", &err), 0);
	uint32_t v = 0xfe;
	assert_int_equal(bus_access(&b, 0x64, 1, &v, 1), 0);
	assert_int_equal(r.resets, 3);
	assert_int_equal(bus_access(&b, 0x64, 1, &v, 2), -ENOENT);
	assert_int_equal(r.resets, 3);
	assert_int_equal(bus_access(&b, 0x61, 0, &v, 1), -ENOENT); /* not ours */
	/* a reset of the model does not call the callback */
	i8042_reset(k);
	assert_int_equal(KSTS(), 0x14);
	assert_int_equal(KDAT(), 0x00);
	assert_int_equal(r.resets, 3);
	i8042_destroy(k);
#undef KSTS
#undef KDAT
#undef KCMD
}

static void test_reset_port(void **state)
{
	(void)state;
	struct rec r;
	memset(&r, 0, sizeof(r));
	struct reset *rs = NULL;
	assert_int_equal(reset_create(rec_reset, &r, &rs), 0);
	/* Linux reboot=pci: 0x02 then 0x06 */
	wr(&reset_bus_ops, rs, 0, 0x02);
	assert_int_equal(r.resets, 0);
	assert_int_equal(rd(&reset_bus_ops, rs, 0), 0x02);
	wr(&reset_bus_ops, rs, 0, 0x06);
	assert_int_equal(r.resets, 1);
	assert_int_equal(rd(&reset_bus_ops, rs, 0), 0x02); /* RST_CPU reads 0 */
	wr(&reset_bus_ops, rs, 0, 0x0e);
	assert_int_equal(r.resets, 2);
	assert_int_equal(rd(&reset_bus_ops, rs, 0), 0x0a);
	/* a soft reset, other values: nothing */
	static const uint8_t no[] = {0x00, 0x01, 0x04, 0x08, 0x0a, 0x0c, 0xf0, 0x02};
	for (size_t i = 0; i < sizeof(no); i++)
		wr(&reset_bus_ops, rs, 0, no[i]);
	assert_int_equal(r.resets, 2);
	reset_reset(rs);
	assert_int_equal(rd(&reset_bus_ops, rs, 0), 0x00);
	assert_int_equal(r.resets, 2);
	reset_destroy(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_destroy_null),
	    cmocka_unit_test(test_reset_values),
	    cmocka_unit_test(test_serial_dlab),
	    cmocka_unit_test(test_serial_tx),
	    cmocka_unit_test(test_serial_rx_fifo),
	    cmocka_unit_test(test_serial_trigger_levels),
	    cmocka_unit_test(test_serial_iir_priority),
	    cmocka_unit_test(test_serial_loopback),
	    cmocka_unit_test(test_serial_scr),
	    cmocka_unit_test(test_save_restore_roundtrip),
	    cmocka_unit_test(test_restore_hostile),
	    cmocka_unit_test(test_bus),
	    cmocka_unit_test(test_random_bus),
	    cmocka_unit_test(test_pm_sleep),
	    cmocka_unit_test(test_pm_power_button),
	    cmocka_unit_test(test_i8042),
	    cmocka_unit_test(test_reset_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
