/* SPDX-License-Identifier: MIT */
/*
 * The reset control register at port 0xcf9 (RST_CNT of the PIIX/ICH
 * chipsets; the ACPI FADT's RESET_REG points at it, and Linux's reboot=pci
 * and reboot=acpi write it).
 *
 * One byte, reset_bus_ops, RESET_PORT_LEN (1). Bit 1 SYS_RST selects a hard
 * reset, bit 2 RST_CPU starts it, bit 3 FULL_RST asks for a power cycle. A
 * write with both SYS_RST and RST_CPU set (0x06, or 0x0e) calls the reset
 * callback; a soft reset (RST_CPU without SYS_RST: an INIT of the CPUs only)
 * is not modelled and does nothing. SYS_RST and FULL_RST read back; RST_CPU
 * and the reserved bits read 0. Wider accesses are split into bytes; bytes
 * past the register read 0xff and ignore writes.
 *
 * Callbacks run synchronously and must not call back into the device. Not
 * thread-safe.
 */
#ifndef NUBIS_DEVICES_LEGACY_RESET_H
#define NUBIS_DEVICES_LEGACY_RESET_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/bus.h"

#define RESET_PORT     0xcf9
#define RESET_PORT_LEN 1

/* The guest asked for a hard reset of the machine. */
typedef void (*reset_fn)(void *opaque);

/* The state. Fields are private to reset.c; tests may read them. */
struct reset {
	reset_fn reset;
	void *opaque;
	uint8_t rst_cnt; /* SYS_RST and FULL_RST as last written */
};

extern const struct bus_dev_ops reset_bus_ops;

/* Allocate the register (0 after reset); @reset may be NULL. Returns 0 and
 * *@out (free with reset_destroy), or -ENOMEM. */
int reset_create(reset_fn reset, void *opaque, struct reset **out);
/* Free @r. reset_destroy(NULL) is a no-op. */
void reset_destroy(struct reset *r);
/* Back to the reset state, 0 (does not call the callback). */
void reset_reset(struct reset *r);

/* Save and restore. The blob is RESET_STATE_SIZE bytes, little-endian:
 *   0 u32 magic RESET_STATE_MAGIC, 4 u16 version 1, 6 u16 size,
 *   8 RST_CNT (only bits 1 and 3), 9-11 zero. */
#define RESET_STATE_MAGIC   0x5352424eu /* "NBRS" */
#define RESET_STATE_VERSION 1
#define RESET_STATE_SIZE    12
/* Write the state into @buf (@cap bytes). Returns RESET_STATE_SIZE or -ENOSPC. */
int reset_save(const struct reset *r, void *buf, size_t cap);
/* Replace the state by the blob's. Returns 0, or -EINVAL (state unchanged). */
int reset_restore(struct reset *r, const void *buf, size_t len);

#endif
