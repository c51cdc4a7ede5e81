/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for a Linux VM booted without firmware.
 *
 * acpi_build() writes, through gmem only, the tables a stock x86-64 Linux
 * kernel needs: RSDP (ACPI 2.0+), XSDT, FADT (revision 6, 276 bytes, full
 * hardware model with a PM1 block — not hardware-reduced), FACS, DSDT (a
 * small hand-encoded AML body: \_S5 and optionally a PCI root bridge), MADT
 * (xAPIC: one Processor Local APIC entry per vCPU, one I/O APIC, interrupt
 * source overrides, local APIC NMI) and MCFG (PCI ECAM). Layout version:
 * ACPI 6.4.
 *
 * acpi_parse_check() walks RSDP -> XSDT -> tables, verifies every checksum,
 * length and the structure of every table it knows, and reports what it
 * found. The unit tests use it; a guest test can use the same code.
 *
 * What the device model must do to match these tables:
 *   - PM1a event block at pm1a_evt_port: 2 bytes PM1_STS then 2 bytes PM1_EN
 *     (PWRBTN_STS/EN is bit 8 when power_button is set).
 *   - PM1a control block at pm1a_cnt_port (2 bytes): SCI_EN (bit 0) must read
 *     as 1 — SMI_CMD is 0, so the OS takes the machine as always in ACPI
 *     mode. Poweroff is the write (s5_slp_typ << 10) | (1 << 13) (SLP_TYP,
 *     SLP_EN).
 *   - The SCI is ISA IRQ sci_irq, level-triggered, active high (the MADT
 *     carries that override): hold the line high while an enabled status bit
 *     is set.
 *   - Reset: a byte write of reset_value to I/O port reset_port.
 *   - The ECAM window [ecam_base, +(ecam_end_bus + 1) MiB) is also described
 *     as a PNP0C02 motherboard resource in the DSDT; list it as reserved in
 *     the e820 map too.
 */
#ifndef NUBIS_DEVICES_ACPI_ACPI_H
#define NUBIS_DEVICES_ACPI_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"
#include "../../core/gmem.h"

#define ACPI_MAX_CPUS	   254u	     /* xAPIC ids 0..253; more need x2APIC entries (future work) */
#define ACPI_TABLE_ALIGN   16u	     /* every table starts 16-byte aligned */
#define ACPI_BASE_ALIGN	   64u	     /* the region's base: the FACS needs 64-byte alignment */
#define ACPI_MAX_TABLES	   16u	     /* table references in struct acpi_layout / struct acpi_info */
#define ACPI_MAX_TABLE_LEN 0x100000u /* the checker refuses longer tables */
#define ACPI_MAX_SIZE	   4096u     /* acpi_size() never exceeds this, for any valid config */

#define ACPI_OEM_ID	       "NUBIS " /* 6 bytes */
#define ACPI_OEM_TABLE_PREFIX  "NBVM"	/* OEM table id: prefix + signature, e.g. "NBVMFACP" */
#define ACPI_OEM_REVISION      1u
#define ACPI_CREATOR_ID	       "NUBS"
#define ACPI_CREATOR_REVISION  1u
#define ACPI_HYPERVISOR_VENDOR "NUBISVMM" /* FADT Hypervisor Vendor Identity (8 bytes) */

/* FADT Flags (ACPI 6.4 table 5.10) */
#define ACPI_FADT_WBINVD	(1u << 0)
#define ACPI_FADT_PROC_C1	(1u << 2)
#define ACPI_FADT_PWR_BUTTON	(1u << 4) /* set: no fixed-feature power button */
#define ACPI_FADT_SLP_BUTTON	(1u << 5) /* set: no fixed-feature sleep button */
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_HW_REDUCED	(1u << 20)
/* FADT IAPC_BOOT_ARCH (table 5.11) */
#define ACPI_BOOT_LEGACY_DEVICES (1u << 0)
#define ACPI_BOOT_8042		 (1u << 1)
#define ACPI_BOOT_NO_VGA	 (1u << 2)
#define ACPI_BOOT_NO_MSI	 (1u << 3)
#define ACPI_BOOT_NO_ASPM	 (1u << 4)
#define ACPI_BOOT_NO_CMOS_RTC	 (1u << 5)
/* MADT */
#define ACPI_MADT_PCAT_COMPAT 1u
/* Interrupt source override flags (MPS INTI flags) */
#define ACPI_IRQ_ACTIVE_HIGH   0x1u
#define ACPI_IRQ_ACTIVE_LOW    0x3u
#define ACPI_IRQ_EDGE	       (0x1u << 2)
#define ACPI_IRQ_LEVEL	       (0x3u << 2)
#define ACPI_SCI_OVERRIDE_FLAG (ACPI_IRQ_ACTIVE_HIGH | ACPI_IRQ_LEVEL)

struct acpi_config {
	unsigned ncpus; /* 1..ACPI_MAX_CPUS; vCPU i has APIC id i and ACPI processor UID i */

	/* Where the RSDP goes: 0 = at the start of the table region; otherwise this address
	 * (16-byte aligned, outside the region), e.g. 0xE0000 for the legacy BIOS-area scan. */
	gpa_t rsdp_gpa;

	/* FADT: the emulated PM1 block (I/O ports). */
	uint8_t sci_irq;	/* ISA IRQ 1..15, not 2; default 9 */
	uint16_t pm1a_evt_port; /* 4 bytes: PM1_STS, PM1_EN; default 0x600 */
	uint16_t pm1a_cnt_port; /* 2 bytes: PM1_CNT; default 0x604 */
	uint16_t pm_tmr_port;	/* 4 bytes, 24-bit 3.579545 MHz counter; 0 = none (default) */
	uint16_t gpe0_port;	/* GPE0 block; 0 = none (default) */
	uint8_t gpe0_len;	/* bytes, even, 2..30 when gpe0_port is set */
	uint16_t reset_port;	/* FADT reset register (I/O, 1 byte); 0 = none; default 0xcf9 */
	uint8_t reset_value;	/* default 6 (0xcf9: system reset + CPU reset) */
	bool power_button;	/* fixed-feature power button in PM1 (default true) */
	uint8_t s5_slp_typ;	/* 0..7, the \_S5 SLP_TYPa/b value; default 5 */
	/* IAPC_BOOT_ARCH */
	bool legacy_devices; /* LPC/ISA devices such as the 16550 UART (default true) */
	bool i8042;	     /* an 8042 at 0x60/0x64 is emulated (default false) */
	bool vga;	     /* a VGA is present (default false: VGA Not Present is set) */
	bool cmos_rtc; /* a CMOS RTC at 0x70 is present (default false: CMOS RTC Not Present) */

	/* MADT */
	uint32_t lapic_addr;  /* default 0xFEE00000 */
	uint8_t ioapic_id;    /* default 0 */
	uint32_t ioapic_addr; /* default 0xFEC00000; GSI base is 0 */

	/* MCFG: one ECAM allocation for segment 0, buses 0..ecam_end_bus. ecam_base 0 = no MCFG. */
	uint64_t ecam_base;   /* 1 MiB aligned; default 0xB0000000 */
	uint8_t ecam_end_bus; /* default 0 (one bus, 1 MiB) */

	/* DSDT: a PCI root bridge \_SB.PCI0 (PNP0A08, compatible PNP0A03) with _CRS. */
	bool pci_root;		  /* default true */
	uint32_t pci_mmio32_base; /* 32-bit MMIO window; size 0 = none */
	uint32_t pci_mmio32_size; /* default [0xC0000000, 0xFEC00000) */
	uint64_t pci_mmio64_base; /* 64-bit MMIO window; size 0 = none (default) */
	uint64_t pci_mmio64_size;
};

/* One table (or the RSDP, signature "RSDP"). */
struct acpi_table_ref {
	char sig[5]; /* NUL-terminated */
	uint8_t rev; /* header revision (RSDP: revision; FACS: version) */
	gpa_t gpa;
	uint32_t len;
};

struct acpi_layout {
	gpa_t rsdp;	  /* the RSDP: boot_params.acpi_rsdp_addr */
	gpa_t base;	  /* the table region used: [base, base + size) */
	uint64_t size;	  /* bytes used from base (the RSDP included unless placed elsewhere) */
	unsigned ntables; /* RSDP, XSDT, FACP, FACS, DSDT, APIC, then MCFG if present */
	struct acpi_table_ref tables[ACPI_MAX_TABLES];
};

/* Fill @cfg with the defaults documented above for @ncpus vCPUs. Cannot fail. */
void acpi_config_default(struct acpi_config *cfg, unsigned ncpus);

/* Bytes acpi_build() will use from the region's base for @cfg (RSDP included unless
 * cfg->rsdp_gpa is set). Returns 0, or -1 with @err (NB_EINVAL) naming the bad field. */
int acpi_size(const struct acpi_config *cfg, uint64_t *size, struct nb_error *err);

/*
 * Build all tables for @cfg into guest memory @mem: contiguous from @base
 * (ACPI_BASE_ALIGN aligned), at most @region_size bytes, each table 16-byte
 * aligned, padding zeroed; the RSDP at cfg->rsdp_gpa if set. Call before
 * the guest runs. Nothing is written unless everything fits. Returns 0 and
 * fills @out (may be NULL), or -1 with @err (NB_EINVAL: bad configuration,
 * region too small, outside guest memory or overlapping the RSDP;
 * NB_EINTERNAL: a bug).
 */
int acpi_build(const struct gmem *mem, gpa_t base, uint64_t region_size,
	       const struct acpi_config *cfg, struct acpi_layout *out, struct nb_error *err);

/* What acpi_parse_check() found. */
struct acpi_info {
	gpa_t rsdp, xsdt;
	uint8_t rsdp_revision;
	char oem_id[7];
	/* XSDT entries in order, then the DSDT and FACS reached through the FADT. */
	unsigned ntables;
	struct acpi_table_ref tables[ACPI_MAX_TABLES];

	/* FADT */
	bool have_fadt;
	uint8_t fadt_minor;
	uint32_t fadt_flags;
	uint16_t boot_arch, sci_irq;
	uint32_t pm1a_evt, pm1a_cnt, pm_tmr, gpe0; /* I/O ports, 0 if absent */
	uint8_t pm1_evt_len, pm1_cnt_len, pm_tmr_len, gpe0_len;
	bool have_reset;
	uint8_t reset_space, reset_value; /* space: 1 = system I/O */
	uint64_t reset_addr;
	gpa_t dsdt, facs; /* 0 if absent */

	/* DSDT */
	bool have_dsdt;
	bool have_s5;
	uint8_t s5_slp_typ_a, s5_slp_typ_b;
	bool have_pci_root; /* a device with _HID PNP0A08 or PNP0A03 */
	bool have_mb_res;   /* a device with _HID PNP0C02 (motherboard resources) */

	/* FACS */
	bool have_facs;

	/* MADT */
	bool have_madt;
	uint32_t lapic_addr, madt_flags;
	unsigned ncpus;				/* Processor Local APIC entries (enabled or not) */
	unsigned ncpus_enabled;			/* of those, enabled */
	uint8_t cpu_uid[256], cpu_apic_id[256]; /* in MADT order */
	unsigned nioapic;
	uint8_t ioapic_id; /* the first I/O APIC */
	uint32_t ioapic_addr, ioapic_gsi_base;
	unsigned niso;
	struct {
		uint8_t bus, source;
		uint16_t flags;
		uint32_t gsi;
	} iso[16];
	unsigned nlapic_nmi;
	uint8_t lapic_nmi_uid, lapic_nmi_lint; /* the first */
	uint16_t lapic_nmi_flags;

	/* MCFG (the first allocation) */
	bool have_mcfg;
	unsigned nmcfg;
	uint64_t ecam_base;
	uint16_t ecam_segment;
	uint8_t ecam_start_bus, ecam_end_bus;
};

/*
 * Walk the tables from the RSDP at @rsdp in @mem (untrusted: guest memory
 * may have been written by anyone) and verify every checksum, length and
 * known structure: RSDP (revision >= 2, both checksums), XSDT, FADT,
 * FACS, DSDT (a walk of the AML subset acpi_build emits: Name, Scope,
 * Device, integers, strings, buffers with resource templates, packages),
 * MADT (every entry), MCFG. Unknown table signatures are only checksummed.
 * Returns 0 with @out filled, or -1 with @err (NB_EFORMAT) naming the table,
 * the field and the value. Never reads outside @mem.
 */
int acpi_parse_check(const struct gmem *mem, gpa_t rsdp, struct acpi_info *out,
		     struct nb_error *err);

/* Find an RSDP the way a BIOS-booted OS does: on 16-byte boundaries in the
 * first KiB of the EBDA (segment at 0x40E) and in 0xE0000..0xFFFFF, the
 * first with signature, checksum and (revision >= 2) extended checksum
 * right. Returns 0 with *@rsdp set, or -1 with @err (NB_ENOENT). */
int acpi_find_rsdp(const struct gmem *mem, gpa_t *rsdp, struct nb_error *err);

/* Sum of @len bytes mod 256 (0 for a correctly checksummed table). */
uint8_t acpi_checksum(const void *p, size_t len);

#endif
