/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART: the register model of the PC's COM1 (0x3f8, IRQ 4).
 *
 * Eight byte-wide registers at offsets 0-7 of the range it is registered at
 * (SERIAL_PORT_LEN); an access of 2, 4 or 8 bytes is handled as that many
 * byte accesses at consecutive offsets, as an ISA bus splits it. Offsets past
 * 7 read as 0xff and ignore writes.
 *
 *   off  DLAB=0 read / write     DLAB=1 (LCR bit 7)
 *   0    RBR / THR               DLL
 *   1    IER                     DLM
 *   2    IIR / FCR
 *   3    LCR
 *   4    MCR
 *   5    LSR (writes ignored)
 *   6    MSR (writes ignored)
 *   7    SCR
 *
 * The model has no clock:
 * - Transmission is instantaneous: a byte written to THR goes to the tx
 *   callback (or, in loopback, to the receive FIFO) during the write, so
 *   LSR.THRE and LSR.TEMT always read as set. Each THR write lowers the
 *   THR-empty interrupt and raises it again, so an edge-triggered interrupt
 *   controller sees a new edge per byte, as with real hardware.
 * - The receive line counts as idle as soon as serial_receive() returns, so
 *   with the FIFO enabled and fewer bytes in it than the trigger level the
 *   character-timeout interrupt (IIR 0x0C) is pending at once.
 *
 * Modem inputs: with loopback off, CTS, DSR and DCD are asserted and RI is
 * not (MSR reads 0xB0 after reset). With loopback on (MCR bit 4) the inputs
 * follow MCR: CTS = RTS, DSR = DTR, RI = OUT1, DCD = OUT2; tx output stops
 * and serial_receive() accepts nothing.
 *
 * The interrupt output is the 16550A's INTR pin; it is not gated by
 * MCR.OUT2 (Linux sets OUT2 anyway).
 *
 * Callbacks run synchronously inside the bus handlers, serial_receive(),
 * serial_reset() and serial_restore(); they must not call back into the
 * same device. Not thread-safe: the caller serialises all calls on one UART.
 */
#ifndef NUBIS_DEVICES_LEGACY_SERIAL_H
#define NUBIS_DEVICES_LEGACY_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/bus.h"

#define SERIAL_PORT_LEN	 8
#define SERIAL_FIFO_SIZE 16

/* Called with each byte the guest transmits (not in loopback). */
typedef void (*serial_tx_fn)(void *opaque, uint8_t byte);
/* Called when the interrupt line changes level (0 or 1); never twice with the same level. */
typedef void (*serial_irq_fn)(void *opaque, int level);

/* The state. Fields are private to serial.c; tests may read them. */
struct serial {
	serial_tx_fn tx;
	serial_irq_fn irq;
	void *opaque;
	int irq_level; /* last level passed to irq */

	uint8_t ier;	  /* bits 0-3 */
	uint8_t lcr;	  /* bit 7 = DLAB */
	uint8_t mcr;	  /* bits 0-4 */
	uint8_t lsr_err;  /* the sticky LSR error bits (only OE is ever set) */
	uint8_t msr;	  /* inputs in bits 4-7, deltas in bits 0-3 */
	uint8_t scr;	  /* scratch */
	uint8_t dll, dlm; /* divisor latch */
	uint8_t fcr;	  /* FIFO enable, DMA mode, RX trigger; 0 when the FIFO is off */
	uint8_t thri;	  /* THR-empty interrupt pending */
	uint8_t rbr;	  /* the byte last read from RBR, returned again when empty */
	uint8_t rx_head;  /* index of the oldest byte in rx[] */
	uint8_t rx_count; /* bytes in rx[]; at most 16, or 1 with the FIFO off */
	uint8_t rx[SERIAL_FIFO_SIZE];
};

/* Port I/O handlers; register with the struct serial as the device pointer. */
extern const struct bus_dev_ops serial_bus_ops;

/* Allocate a UART in its reset state. Any callback may be NULL (output is
 * then dropped / the line is not reported). @opaque is passed to both.
 * Returns 0 and *@out (free with serial_destroy), or -ENOMEM. */
int serial_create(serial_tx_fn tx, serial_irq_fn irq, void *opaque, struct serial **out);
/* Free @s. serial_destroy(NULL) is a no-op. */
void serial_destroy(struct serial *s);

/* Hardware reset (the MR pin): every register to its datasheet value
 * (IER 0, IIR 0x01, FCR 0, LCR 0, MCR 0, LSR 0x60, MSR 0xB0, SCR 0), FIFO
 * emptied. The divisor latch, which the datasheet leaves alone, is set to
 * 12 (9600 baud from 1.8432 MHz) so it is never 0. Lowers the line if high. */
void serial_reset(struct serial *s);

/* Feed up to @n received bytes into the receive FIFO. Returns how many were
 * taken: all that fit (16 minus the FIFO count, or 1 when the FIFO is off
 * and RBR is empty). If some did not fit they are lost to the guest: LSR.OE
 * is set (the caller may keep them, but the guest has seen an overrun).
 * Returns 0, and sets nothing, in loopback. To avoid overruns, pass at most
 * serial_rx_room() bytes. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t n);
/* How many bytes serial_receive() would take now without an overrun. */
size_t serial_rx_room(const struct serial *s);

/* Save and restore. The blob is SERIAL_STATE_SIZE bytes, little-endian:
 *   0 u32 magic SERIAL_STATE_MAGIC, 4 u16 version 1, 6 u16 size
 *   8 ier, 9 lcr, 10 mcr, 11 lsr_err, 12 msr, 13 scr, 14 dll, 15 dlm,
 *   16 fcr, 17 flags (bit 0: THR-empty interrupt pending), 18 rbr,
 *   19 rx_count, 20-35 the FIFO, oldest byte first, unused bytes zero.
 * Callbacks and the line level are not part of it. */
#define SERIAL_STATE_MAGIC   0x5253424eu /* "NBSR" */
#define SERIAL_STATE_VERSION 1
#define SERIAL_STATE_SIZE    36
/* Write the state into @buf (@cap bytes). Returns SERIAL_STATE_SIZE or -ENOSPC. */
int serial_save(const struct serial *s, void *buf, size_t cap);
/* Replace the state of @s by the blob's. Returns 0, or -EINVAL (and leaves @s
 * unchanged) if @len, the header or any field is not what serial_save()
 * writes. Then drives the line to the restored state's level. */
int serial_restore(struct serial *s, const void *buf, size_t len);

#endif
