/* SPDX-License-Identifier: MIT */
/*
 * ACPI fixed-hardware power management: the PM1a event block and the PM1a
 * control block (ACPI 6.5 section 4.8.3), enough for a guest to power off
 * (SLP_TYP = S5, SLP_EN) and to be asked to (the power button).
 *
 * Two port ranges, two ops tables, one device pointer:
 *
 *   pm_evt_bus_ops, PM_EVT_LEN (4) bytes, at the FADT's PM1a_EVT_BLK:
 *     off 0  PM1_STS (16 bits)  write 1 to clear; only PWRBTN_STS (bit 8) is
 *                               ever set, by pm_power_button()
 *     off 2  PM1_EN  (16 bits)  read/write: TMR_EN 0, GBL_EN 5, PWRBTN_EN 8,
 *                               SLPBTN_EN 9, RTC_EN 10, PCIEXP_WAKE_DIS 14
 *   pm_cnt_bus_ops, PM_CNT_LEN (2) bytes, at the FADT's PM1a_CNT_BLK:
 *     off 0  PM1_CNT (16 bits)  SCI_EN (bit 0) always reads 1 (the machine is
 *                               always in ACPI mode: the FADT has no SMI_CMD);
 *                               BM_RLD (1) and SLP_TYP (10-12) read back;
 *                               GBL_RLS (2) and SLP_EN (13) read 0.
 *
 * Writing SLP_EN with SLP_TYP equal to the S5 value given at create (the one
 * the DSDT's \_S5 package names) calls the sleep callback; other sleep types
 * are not supported and such writes do nothing else. Accesses of 2 or 4
 * bytes are split into byte accesses at consecutive offsets; since SLP_TYP
 * and SLP_EN share the high byte of PM1_CNT, a byte write there works too.
 *
 * The SCI (level) is PWRBTN_STS && PWRBTN_EN. Callbacks run synchronously and
 * must not call back into the device. Not thread-safe.
 */
#ifndef NUBIS_DEVICES_LEGACY_PM_H
#define NUBIS_DEVICES_LEGACY_PM_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/bus.h"

#define PM_EVT_LEN 4
#define PM_CNT_LEN 2

#define PM1_STS_PWRBTN	  0x0100
#define PM1_EN_PWRBTN	  0x0100
#define PM1_CNT_SCI_EN	  0x0001
#define PM1_CNT_SLP_EN	  0x2000
#define PM1_SLP_TYP_SHIFT 10

/* The guest asked for sleep state @slp_typ (always the S5 value). */
typedef void (*pm_sleep_fn)(void *opaque, int slp_typ);
/* The SCI line changed level (0 or 1); never twice with the same level. */
typedef void (*pm_irq_fn)(void *opaque, int level);

/* The state. Fields are private to pm.c; tests may read them. */
struct pm {
	pm_sleep_fn sleep;
	pm_irq_fn irq;
	void *opaque;
	int irq_level;
	unsigned s5_typ;
	uint16_t sts, en, cnt; /* cnt holds SCI_EN, BM_RLD, SLP_TYP */
};

extern const struct bus_dev_ops pm_evt_bus_ops;
extern const struct bus_dev_ops pm_cnt_bus_ops;

/* Allocate the PM block in its reset state. @s5_typ (0-7) is the SLP_TYP of
 * S5. Callbacks may be NULL. Returns 0 and *@out (free with pm_destroy),
 * -EINVAL for @s5_typ > 7, or -ENOMEM. */
int pm_create(unsigned s5_typ, pm_sleep_fn sleep, pm_irq_fn irq, void *opaque, struct pm **out);
/* Free @pm. pm_destroy(NULL) is a no-op. */
void pm_destroy(struct pm *pm);
/* Reset: PM1_STS 0, PM1_EN 0, PM1_CNT SCI_EN. Lowers the SCI if high. */
void pm_reset(struct pm *pm);
/* Press the power button: set PWRBTN_STS; raises the SCI if PWRBTN_EN is set
 * (otherwise the guest sees the status when it enables the event). */
void pm_power_button(struct pm *pm);

/* Save and restore. The blob is PM_STATE_SIZE bytes, little-endian:
 *   0 u32 magic PM_STATE_MAGIC, 4 u16 version 1, 6 u16 size,
 *   8 u16 PM1_STS, 10 u16 PM1_EN, 12 u16 PM1_CNT (with SCI_EN), 14 u16 zero.
 * The S5 value, callbacks and line level are configuration, not state. */
#define PM_STATE_MAGIC	 0x4d50424eu /* "NBPM" */
#define PM_STATE_VERSION 1
#define PM_STATE_SIZE	 16
/* Write the state into @buf (@cap bytes). Returns PM_STATE_SIZE or -ENOSPC. */
int pm_save(const struct pm *pm, void *buf, size_t cap);
/* Replace the state by the blob's. Returns 0, or -EINVAL (state unchanged)
 * for a wrong length, header, reserved or undefined bit. Then drives the SCI
 * to the restored level. */
int pm_restore(struct pm *pm, const void *buf, size_t len);

#endif
