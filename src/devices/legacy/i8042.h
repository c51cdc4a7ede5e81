/* SPDX-License-Identifier: MIT */
/*
 * The PS/2 controller (i8042), just enough for Linux: the reset line, the
 * command byte and the self-tests. No keyboard or mouse is attached and the
 * model raises no interrupts: replies are read by polling the status.
 *
 * Two one-byte ports, two ops tables, one device pointer (0x61-0x63 between
 * them belong to other devices):
 *
 *   i8042_data_bus_ops  port 0x60: read the output buffer (with nothing
 *                       pending: the byte read last, 0 after reset); write a
 *                       command's parameter (after 0x60), else ignored.
 *   i8042_cmd_bus_ops   port 0x64: read the status; write a command.
 *
 * Status: bit 0 output buffer full, bit 2 system flag (= command byte bit
 * 2), bit 3 last write was to 0x64, bit 4 keyboard not inhibited; so 0x14
 * after reset. Commands: 0x20 read the command byte; 0x60 write it (next byte
 * to 0x60); 0xAA self-test (replies 0x55, sets the system flag); 0xAB and
 * 0xA9 interface tests (reply 0x00); 0xAD/0xAE and 0xA7/0xA8 disable/enable
 * the keyboard and aux ports (command byte bits 4 and 5); 0xF0-0xFF pulse
 * the output-port lines whose bit is 0 for a moment: with bit 0 clear (0xFE
 * and the other even ones) that is the CPU reset line, and the reset callback
 * is called. Every other command is ignored. The command byte is 0x45 after
 * reset (keyboard interrupt, system flag, translation), as firmware leaves it.
 *
 * Callbacks run synchronously and must not call back into the device. Not
 * thread-safe.
 */
#ifndef NUBIS_DEVICES_LEGACY_I8042_H
#define NUBIS_DEVICES_LEGACY_I8042_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/bus.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT	0x64

/* The guest pulsed the CPU reset line. */
typedef void (*i8042_reset_fn)(void *opaque);

/* The state. Fields are private to i8042.c; tests may read them. */
struct i8042 {
	i8042_reset_fn reset;
	void *opaque;
	uint8_t ctr;	  /* command byte */
	uint8_t out;	  /* output buffer */
	uint8_t out_full; /* 0 or 1 */
	uint8_t last;	  /* the byte last read from 0x60 */
	uint8_t cmd_last; /* 1 if the last write was to 0x64 */
	uint8_t pending;  /* the command waiting for its parameter byte, or 0 */
};

extern const struct bus_dev_ops i8042_data_bus_ops;
extern const struct bus_dev_ops i8042_cmd_bus_ops;

/* Allocate the controller in its reset state; @reset may be NULL. Returns 0
 * and *@out (free with i8042_destroy), or -ENOMEM. */
int i8042_create(i8042_reset_fn reset, void *opaque, struct i8042 **out);
/* Free @k. i8042_destroy(NULL) is a no-op. */
void i8042_destroy(struct i8042 *k);
/* Back to the reset state (does not call the reset callback). */
void i8042_reset(struct i8042 *k);

/* Save and restore. The blob is I8042_STATE_SIZE bytes, little-endian:
 *   0 u32 magic I8042_STATE_MAGIC, 4 u16 version 1, 6 u16 size,
 *   8 ctr, 9 out, 10 flags (bit 0 output full, bit 1 last write was a
 *   command), 11 last, 12 pending command (0 or 0x60), 13-15 zero. */
#define I8042_STATE_MAGIC   0x4b50424eu /* "NBPK" */
#define I8042_STATE_VERSION 1
#define I8042_STATE_SIZE    16
/* Write the state into @buf (@cap bytes). Returns I8042_STATE_SIZE or -ENOSPC. */
int i8042_save(const struct i8042 *k, void *buf, size_t cap);
/* Replace the state by the blob's. Returns 0, or -EINVAL (state unchanged). */
int i8042_restore(struct i8042 *k, const void *buf, size_t len);

#endif
