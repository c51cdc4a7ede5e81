/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for Linux VMs: the builder (acpi_build) and the checker
 * (acpi_parse_check). Field offsets are those of the ACPI 6.4
 * specification, chapter 5; every multi-byte field is little-endian.
 *
 * The builder validates the configuration, encodes the DSDT's AML into a
 * local buffer, plans the layout, fills a host buffer and copies it into
 * guest memory with gmem_write() — nothing reaches the guest unless all of
 * it fits.
 */
#include "acpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ byte fields */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum;
}

/* ------------------------------------------------------------ layouts */

/* System description table header (ACPI 6.4 table 5.4), 36 bytes. */
#define HDR_SIG	    0
#define HDR_LEN	    4
#define HDR_REV	    8
#define HDR_CSUM    9
#define HDR_OEMID   10 /* 6 bytes */
#define HDR_OEMTID  16 /* 8 bytes */
#define HDR_OEMREV  24
#define HDR_CREATOR 28 /* 4 bytes */
#define HDR_CREV    32
#define HDR_SIZE    36

/* RSDP (table 5.3), 36 bytes for revision 2. */
#define RSDP_SIG     0 /* "RSD PTR " */
#define RSDP_CSUM    8 /* over bytes 0..19 */
#define RSDP_OEMID   9
#define RSDP_REV     15
#define RSDP_RSDT    16
#define RSDP_LEN     20
#define RSDP_XSDT    24
#define RSDP_XCSUM   32 /* over all 36 bytes */
#define RSDP_SIZE    36
#define RSDP_V1_SIZE 20

/* FADT (table 5.9), revision 6: 276 bytes. */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT	   40
#define FADT_PM_PROFILE	   45
#define FADT_SCI_INT	   46
#define FADT_SMI_CMD	   48
#define FADT_PM1A_EVT	   56
#define FADT_PM1A_CNT	   64
#define FADT_PM_TMR	   76
#define FADT_GPE0	   80
#define FADT_PM1_EVT_LEN   88
#define FADT_PM1_CNT_LEN   89
#define FADT_PM_TMR_LEN	   91
#define FADT_GPE0_LEN	   92
#define FADT_P_LVL2_LAT	   96
#define FADT_P_LVL3_LAT	   98
#define FADT_CENTURY	   108
#define FADT_BOOT_ARCH	   109
#define FADT_FLAGS	   112
#define FADT_RESET_REG	   116 /* GAS */
#define FADT_RESET_VALUE   128
#define FADT_MINOR	   131
#define FADT_X_FIRMWARE	   132
#define FADT_X_DSDT	   140
#define FADT_X_PM1A_EVT	   148 /* GAS */
#define FADT_X_PM1A_CNT	   172
#define FADT_X_PM_TMR	   208
#define FADT_X_GPE0	   220
#define FADT_HYPERVISOR	   268
#define FADT_SIZE	   276
#define FADT_V3_SIZE	   244 /* through X_GPE1_BLK: all this checker reads */
#define FADT_REVISION	   6
#define FADT_MINOR_VERSION 4 /* ACPI 6.4 */

/* Generic Address Structure (table 5.1), 12 bytes. */
#define GAS_SPACE  0
#define GAS_WIDTH  1
#define GAS_OFFSET 2
#define GAS_ACCESS 3 /* 1 byte, 2 word, 3 dword, 4 qword */
#define GAS_ADDR   4
#define GAS_IO	   1 /* address space: system I/O */

/* FACS (table 5.14), 64 bytes, 64-byte aligned, no checksum. */
#define FACS_SIG	0
#define FACS_LEN	4
#define FACS_FLAGS	20
#define FACS_VERSION	32
#define FACS_OSPM_FLAGS 36
#define FACS_SIZE	64
#define FACS_VER	2

/* MADT (table 5.19): header, local APIC address, flags, entries. */
#define MADT_LAPIC_ADDR	   36
#define MADT_FLAGS	   40
#define MADT_ENTRIES	   44
#define MADT_REVISION	   5
#define MADT_LAPIC	   0  /* Processor Local APIC, 8 bytes */
#define MADT_IOAPIC	   1  /* I/O APIC, 12 bytes */
#define MADT_ISO	   2  /* Interrupt Source Override, 10 bytes */
#define MADT_NMI_SRC	   3  /* NMI Source, 8 bytes */
#define MADT_LAPIC_NMI	   4  /* Local APIC NMI, 6 bytes */
#define MADT_LAPIC_OVR	   5  /* Local APIC Address Override, 12 bytes */
#define MADT_X2APIC	   9  /* Processor Local x2APIC, 16 bytes */
#define MADT_X2APIC_NMI	   10 /* Local x2APIC NMI, 12 bytes */
#define MADT_LAPIC_ENABLED 1u
#define MADT_LAPIC_ONLINE  2u
#define MADT_NISO	   2 /* IRQ0 -> GSI2, SCI */

/* MCFG (PCI Firmware Specification 3.2, table 4-3): header, 8 reserved, allocations. */
#define MCFG_ALLOCS 44
#define MCFG_ALLOC  16 /* base u64, segment u16, start bus, end bus, 4 reserved */

#define XSDT_REVISION 1
#define DSDT_REVISION 2 /* 2 and up: AML integers are 64-bit */
#define MCFG_REVISION 1

#define ECAM_BUS_SIZE (1ull << 20)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* ------------------------------------------------------------ AML emitter */

/*
 * The DSDT body is AML (ACPI 6.4 chapter 20) encoded by hand. Objects with
 * a body (Scope, Device, Package, Buffer) carry a PkgLength that counts
 * itself and the body; aml_open() marks where it goes, aml_close() encodes
 * it in 1..4 bytes and moves the body up behind it.
 */
#define AML_CAP 1024

struct aml {
	uint8_t b[AML_CAP];
	size_t len;
	bool overflow;
};

#define AML_ZERO       0x00
#define AML_ONE	       0x01
#define AML_NAME       0x08
#define AML_BYTE       0x0A
#define AML_WORD       0x0B
#define AML_DWORD      0x0C
#define AML_STRING     0x0D
#define AML_QWORD      0x0E
#define AML_SCOPE      0x10
#define AML_BUFFER     0x11
#define AML_PACKAGE    0x12
#define AML_EXT	       0x5B /* ExtOpPrefix; DeviceOp is 5B 82 */
#define AML_DEVICE     0x82
#define AML_ROOT       0x5C /* '\' */
#define AML_PARENT     0x5E /* '^' */
#define AML_DUAL_NAME  0x2E
#define AML_MULTI_NAME 0x2F
#define AML_ONES       0xFF

static void aml_byte(struct aml *a, uint8_t v)
{
	if (a->len >= sizeof(a->b)) {
		a->overflow = true;
		return;
	}
	a->b[a->len++] = v;
}

static void aml_bytes(struct aml *a, const void *p, size_t n)
{
	const uint8_t *s = p;
	for (size_t i = 0; i < n; i++)
		aml_byte(a, s[i]);
}

static void aml_u16(struct aml *a, uint16_t v)
{
	aml_byte(a, (uint8_t)v);
	aml_byte(a, (uint8_t)(v >> 8));
}

static void aml_u32(struct aml *a, uint32_t v)
{
	aml_u16(a, (uint16_t)v);
	aml_u16(a, (uint16_t)(v >> 16));
}

static void aml_u64(struct aml *a, uint64_t v)
{
	aml_u32(a, (uint32_t)v);
	aml_u32(a, (uint32_t)(v >> 32));
}

/* Integer: ZeroOp, OneOp, or the shortest of BytePrefix/WordPrefix/DWordPrefix/QWordPrefix. */
static void aml_int(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= UINT8_MAX) {
		aml_byte(a, AML_BYTE);
		aml_byte(a, (uint8_t)v);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, AML_WORD);
		aml_u16(a, (uint16_t)v);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, AML_DWORD);
		aml_u32(a, (uint32_t)v);
	} else {
		aml_byte(a, AML_QWORD);
		aml_u64(a, v);
	}
}

/* EisaId("PNP0A08"): three letters in 5 bits each ('A' = 1) and four hex digits, stored big-endian
 * as a DWordConst: "PNP0A08" -> 41 D0 0A 08. */
static uint32_t eisa_id(const char id[7])
{
	uint32_t v = (uint32_t)(id[0] - '@') << 26 | (uint32_t)(id[1] - '@') << 21 |
		     (uint32_t)(id[2] - '@') << 16;
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d = (uint32_t)(c <= '9' ? c - '0' : c - 'A' + 10);
		v |= d << (4 * (6 - i));
	}
	return __builtin_bswap32(v); /* most significant byte first in memory */
}

/* Name (SEG, EisaId (...)): 08 'S' 'E' 'G' ' ' 0C xx xx xx xx */
static void aml_name_eisa(struct aml *a, const char seg[4], const char id[7])
{
	aml_byte(a, AML_NAME);
	aml_bytes(a, seg, 4);
	aml_byte(a, AML_DWORD);
	aml_u32(a, eisa_id(id));
}

/* Name (SEG, integer) */
static void aml_name_int(struct aml *a, const char seg[4], uint64_t v)
{
	aml_byte(a, AML_NAME);
	aml_bytes(a, seg, 4);
	aml_int(a, v);
}

static size_t aml_open(struct aml *a)
{
	return a->len;
}

/* Insert the PkgLength for the body that started at @at. */
static void aml_close(struct aml *a, size_t at)
{
	if (a->overflow)
		return;
	size_t body = a->len - at;
	size_t n = body + 1 <= 0x3f ? 1 : body + 2 <= 0xfff ? 2 : body + 3 <= 0xfffff ? 3 : 4;
	size_t total = body + n;
	if (total > 0xfffffff || a->len + n > sizeof(a->b)) {
		a->overflow = true;
		return;
	}
	memmove(a->b + at + n, a->b + at, body);
	a->len += n;
	if (n == 1) {
		a->b[at] = (uint8_t)total; /* bits 7-6 = 0: one byte, length in bits 5-0 */
		return;
	}
	/* bits 7-6: following byte count; bits 3-0: low nibble; then 8 bits per byte */
	a->b[at] = (uint8_t)((n - 1) << 6 | (total & 0xf));
	for (size_t i = 1; i < n; i++)
		a->b[at + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

/* ---- resource template descriptors (ACPI 6.4 section 6.4) ---- */

#define RES_IO	      0x47 /* small item: I/O port descriptor, 7 data bytes */
#define RES_END	      0x79 /* small item: End Tag, 1 data byte (checksum) */
#define RES_DWORD     0x87 /* large item: DWord Address Space */
#define RES_WORD      0x88 /* large item: Word Address Space */
#define RES_QWORD     0x8A /* large item: QWord Address Space */
#define RES_MEM	      0	   /* address space resource type: memory */
#define RES_IO_RANGE  1	   /* ... I/O */
#define RES_BUS	      2	   /* ... bus number */
#define RES_PRODUCER  0x0C /* general flags: _MAF | _MIF, positive decode, producer (bit 0 = 0) */
#define RES_CONSUMER  0x0D /* the same with bit 0: consumer */
#define RES_MEM_RW_NC 0x01 /* memory type flags: read/write, non-cacheable */
#define RES_IO_ENTIRE 0x03 /* I/O type flags: _RNG = ISA and non-ISA ranges */

/* Word Address Space Descriptor, 16 bytes:
 * 88 | 0D 00 (length 13) | type | general flags | type flags | granularity 0 | min | max |
 * translation 0 | length (max - min + 1) */
static void res_word(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	aml_byte(a, RES_WORD);
	aml_u16(a, 13);
	aml_byte(a, type);
	aml_byte(a, RES_PRODUCER);
	aml_byte(a, tflags);
	aml_u16(a, 0);
	aml_u16(a, min);
	aml_u16(a, max);
	aml_u16(a, 0);
	aml_u16(a, (uint16_t)(max - min + 1));
}

/* DWord Address Space Descriptor (memory), 26 bytes: 87 | 17 00 | the fields above in 4 bytes. */
static void res_dword_mem(struct aml *a, uint32_t min, uint32_t len)
{
	aml_byte(a, RES_DWORD);
	aml_u16(a, 23);
	aml_byte(a, RES_MEM);
	aml_byte(a, RES_PRODUCER);
	aml_byte(a, RES_MEM_RW_NC);
	aml_u32(a, 0);
	aml_u32(a, min);
	aml_u32(a, min + (len - 1));
	aml_u32(a, 0);
	aml_u32(a, len);
}

/* QWord Address Space Descriptor (memory), 46 bytes: 8A | 2B 00 | the fields in 8 bytes. */
static void res_qword_mem(struct aml *a, uint8_t gflags, uint64_t min, uint64_t len)
{
	aml_byte(a, RES_QWORD);
	aml_u16(a, 43);
	aml_byte(a, RES_MEM);
	aml_byte(a, gflags);
	aml_byte(a, RES_MEM_RW_NC);
	aml_u64(a, 0);
	aml_u64(a, min);
	aml_u64(a, min + (len - 1));
	aml_u64(a, 0);
	aml_u64(a, len);
}

/* Name (_CRS, ResourceTemplate () {...}) opens as
 *   08 '_CRS' 11 <PkgLength> 0A <size> <descriptors...> 79 00
 * where 11 is BufferOp and 0A <size> the BufferSize as a ByteConst. */
static size_t crs_open(struct aml *a)
{
	aml_byte(a, AML_NAME);
	aml_bytes(a, "_CRS", 4);
	aml_byte(a, AML_BUFFER);
	size_t at = aml_open(a);
	aml_byte(a, AML_BYTE);
	aml_byte(a, 0); /* size, patched in crs_close */
	return at;
}

static void crs_close(struct aml *a, size_t at)
{
	aml_byte(a, RES_END);
	aml_byte(a, 0); /* checksum 0: "treat as valid" */
	if (a->overflow)
		return;
	size_t size = a->len - (at + 2);
	if (size > UINT8_MAX) {
		a->overflow = true;
		return;
	}
	a->b[at + 1] = (uint8_t)size;
	aml_close(a, at);
}

/*
 * The DSDT body (the ASL it encodes):
 *
 *   Name (_S5, Package (0x04) { S5, S5, Zero, Zero })
 *   Scope (\_SB) {
 *     Device (PCI0) {                                  if pci_root
 *       Name (_HID, EisaId ("PNP0A08"))                PCI Express root bridge
 *       Name (_CID, EisaId ("PNP0A03"))                compatible: PCI root bridge
 *       Name (_SEG, Zero)
 *       Name (_BBN, Zero)
 *       Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () {
 *         WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, END, 0, END+1)
 *         IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)    the config-address/data ports
 *         WordIO (..., EntireRange, 0, 0x0000, 0x0CF7, 0, 0x0CF8)
 *         WordIO (..., EntireRange, 0, 0x0D00, 0xFFFF, 0, 0xF300)
 *         DWordMemory (..., NonCacheable, ReadWrite, 0, MMIO32, ...)  if pci_mmio32_size
 *         QWordMemory (..., NonCacheable, ReadWrite, 0, MMIO64, ...)  if pci_mmio64_size
 *       })
 *     }
 *     Device (ECAM) {                                  if ecam_base
 *       Name (_HID, EisaId ("PNP0C02"))                motherboard resources: reserves
 *       Name (_CRS, ResourceTemplate () {              the MCFG window for Linux's check
 *         QWordMemory (ResourceConsumer, ..., ECAM base, ..., (END+1) MiB)
 *       })
 *     }
 *   }
 */
static void dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	/*
	 * 08 5F 53 35 5F   NameOp "_S5_"
	 * 12 LL            PackageOp, PkgLength (1 byte)
	 * 04               NumElements
	 * 0A tt 0A tt      SLP_TYPa, SLP_TYPb (ZeroOp 00 / OneOp 01 for 0 / 1)
	 * 00 00            Zero, Zero (reserved)
	 * For S5 = 5: 08 5F 53 35 5F 12 08 04 0A 05 0A 05 00 00
	 */
	aml_byte(a, AML_NAME);
	aml_bytes(a, "_S5_", 4);
	aml_byte(a, AML_PACKAGE);
	size_t pkg = aml_open(a);
	aml_byte(a, 4);
	aml_int(a, cfg->s5_slp_typ);
	aml_int(a, cfg->s5_slp_typ);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_close(a, pkg);

	if (!cfg->pci_root && !cfg->ecam_base)
		return;
	/* 10 <PkgLength> 5C 5F 53 42 5F   ScopeOp, '\' "_SB_" */
	aml_byte(a, AML_SCOPE);
	size_t sb = aml_open(a);
	aml_byte(a, AML_ROOT);
	aml_bytes(a, "_SB_", 4);

	uint8_t end_bus = cfg->ecam_base ? cfg->ecam_end_bus : 0xff;
	if (cfg->pci_root) {
		/* 5B 82 <PkgLength> 50 43 49 30   DeviceOp "PCI0" */
		aml_byte(a, AML_EXT);
		aml_byte(a, AML_DEVICE);
		size_t dev = aml_open(a);
		aml_bytes(a, "PCI0", 4);
		aml_name_eisa(a, "_HID", "PNP0A08");
		aml_name_eisa(a, "_CID", "PNP0A03");
		aml_name_int(a, "_SEG", 0);
		aml_name_int(a, "_BBN", 0);
		aml_name_int(a, "_UID", 0);
		size_t crs = crs_open(a);
		res_word(a, RES_BUS, 0, 0, end_bus);
		/* 47 01 F8 0C F8 0C 01 08: 16-bit decode, min = max = 0xCF8, align 1, 8 ports */
		aml_byte(a, RES_IO);
		aml_byte(a, 0x01);
		aml_u16(a, 0x0cf8);
		aml_u16(a, 0x0cf8);
		aml_byte(a, 0x01);
		aml_byte(a, 0x08);
		res_word(a, RES_IO_RANGE, RES_IO_ENTIRE, 0x0000, 0x0cf7);
		res_word(a, RES_IO_RANGE, RES_IO_ENTIRE, 0x0d00, 0xffff);
		if (cfg->pci_mmio32_size)
			res_dword_mem(a, cfg->pci_mmio32_base, cfg->pci_mmio32_size);
		if (cfg->pci_mmio64_size)
			res_qword_mem(a, RES_PRODUCER, cfg->pci_mmio64_base, cfg->pci_mmio64_size);
		crs_close(a, crs);
		aml_close(a, dev);
	}
	if (cfg->ecam_base) {
		aml_byte(a, AML_EXT);
		aml_byte(a, AML_DEVICE);
		size_t dev = aml_open(a);
		aml_bytes(a, "ECAM", 4);
		aml_name_eisa(a, "_HID", "PNP0C02");
		size_t crs = crs_open(a);
		res_qword_mem(a, RES_CONSUMER, cfg->ecam_base,
			      ((uint64_t)cfg->ecam_end_bus + 1) * ECAM_BUS_SIZE);
		crs_close(a, crs);
		aml_close(a, dev);
	}
	aml_close(a, sb);
}

/* ------------------------------------------------------------ configuration */

void acpi_config_default(struct acpi_config *cfg, unsigned ncpus)
{
	*cfg = (struct acpi_config){
	    .ncpus = ncpus,
	    .sci_irq = 9,
	    .pm1a_evt_port = 0x600,
	    .pm1a_cnt_port = 0x604,
	    .reset_port = 0xcf9,
	    .reset_value = 6,
	    .power_button = true,
	    .s5_slp_typ = 5,
	    .legacy_devices = true,
	    .lapic_addr = 0xfee00000u,
	    .ioapic_addr = 0xfec00000u,
	    .ecam_base = 0xb0000000u,
	    .pci_root = true,
	    .pci_mmio32_base = 0xc0000000u,
	    .pci_mmio32_size = 0xfec00000u - 0xc0000000u,
	};
}

struct port_range {
	const char *name;
	uint32_t lo, len;
};

static int check_config(const struct acpi_config *cfg, struct nb_error *err)
{
	if (cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS)
		return nb_error_set(err, NB_EINVAL,
				    "ACPI: ncpus %u out of range 1..%u (more need x2APIC MADT "
				    "entries, not supported yet)",
				    cfg->ncpus, ACPI_MAX_CPUS);
	if (cfg->sci_irq < 1 || cfg->sci_irq > 15 || cfg->sci_irq == 2)
		return nb_error_set(err, NB_EINVAL,
				    "ACPI: sci_irq %u is not an ISA IRQ 1..15 other than 2",
				    cfg->sci_irq);
	if (!cfg->pm1a_evt_port || !cfg->pm1a_cnt_port)
		return nb_error_set(
		    err, NB_EINVAL,
		    "ACPI: pm1a_evt_port %#x and pm1a_cnt_port %#x must both be set",
		    cfg->pm1a_evt_port, cfg->pm1a_cnt_port);
	if (cfg->gpe0_port && (cfg->gpe0_len < 2 || cfg->gpe0_len > 30 || cfg->gpe0_len % 2))
		return nb_error_set(err, NB_EINVAL, "ACPI: gpe0_len %u is not even and in 2..30",
				    cfg->gpe0_len);
	if (!cfg->gpe0_port && cfg->gpe0_len)
		return nb_error_set(err, NB_EINVAL, "ACPI: gpe0_len %u without gpe0_port",
				    cfg->gpe0_len);
	if (cfg->s5_slp_typ > 7)
		return nb_error_set(err, NB_EINVAL,
				    "ACPI: s5_slp_typ %u does not fit SLP_TYP (0..7)",
				    cfg->s5_slp_typ);

	struct port_range r[5];
	unsigned nr = 0;
	r[nr++] = (struct port_range){"pm1a_evt_port", cfg->pm1a_evt_port, 4};
	r[nr++] = (struct port_range){"pm1a_cnt_port", cfg->pm1a_cnt_port, 2};
	if (cfg->pm_tmr_port)
		r[nr++] = (struct port_range){"pm_tmr_port", cfg->pm_tmr_port, 4};
	if (cfg->gpe0_port)
		r[nr++] = (struct port_range){"gpe0_port", cfg->gpe0_port, cfg->gpe0_len};
	if (cfg->reset_port)
		r[nr++] = (struct port_range){"reset_port", cfg->reset_port, 1};
	for (unsigned i = 0; i < nr; i++) {
		if (r[i].lo + r[i].len > 0x10000)
			return nb_error_set(err, NB_EINVAL,
					    "ACPI: %s %#x + %u bytes runs past I/O port 0xffff",
					    r[i].name, r[i].lo, r[i].len);
		for (unsigned j = 0; j < i; j++)
			if (r[i].lo < r[j].lo + r[j].len && r[j].lo < r[i].lo + r[i].len)
				return nb_error_set(
				    err, NB_EINVAL,
				    "ACPI: %s %#x (%u bytes) overlaps %s %#x (%u bytes)", r[i].name,
				    r[i].lo, r[i].len, r[j].name, r[j].lo, r[j].len);
	}

	if (!cfg->lapic_addr || cfg->lapic_addr % 0x1000)
		return nb_error_set(err, NB_EINVAL, "ACPI: lapic_addr %#x is not a 4 KiB page",
				    cfg->lapic_addr);
	if (!cfg->ioapic_addr || cfg->ioapic_addr % 0x1000)
		return nb_error_set(err, NB_EINVAL, "ACPI: ioapic_addr %#x is not a 4 KiB page",
				    cfg->ioapic_addr);
	if (cfg->ioapic_id == 0xff)
		return nb_error_set(err, NB_EINVAL, "ACPI: ioapic_id 0xff is the broadcast id");

	if (cfg->ecam_base) {
		uint64_t end, size = ((uint64_t)cfg->ecam_end_bus + 1) * ECAM_BUS_SIZE;
		if (cfg->ecam_base % ECAM_BUS_SIZE)
			return nb_error_set(err, NB_EINVAL,
					    "ACPI: ecam_base %#llx is not 1 MiB aligned",
					    (unsigned long long)cfg->ecam_base);
		if (__builtin_add_overflow(cfg->ecam_base, size - 1, &end))
			return nb_error_set(err, NB_EINVAL,
					    "ACPI: ECAM at %#llx for buses 0..%u overflows",
					    (unsigned long long)cfg->ecam_base, cfg->ecam_end_bus);
	}
	if (cfg->pci_root && cfg->pci_mmio32_size &&
	    (uint64_t)cfg->pci_mmio32_base + cfg->pci_mmio32_size > 0x100000000ull)
		return nb_error_set(err, NB_EINVAL,
				    "ACPI: pci_mmio32 window %#x + %#x runs past 4 GiB",
				    cfg->pci_mmio32_base, cfg->pci_mmio32_size);
	uint64_t end64;
	if (cfg->pci_root && cfg->pci_mmio64_size &&
	    __builtin_add_overflow(cfg->pci_mmio64_base, cfg->pci_mmio64_size - 1, &end64))
		return nb_error_set(err, NB_EINVAL,
				    "ACPI: pci_mmio64 window %#llx + %#llx overflows",
				    (unsigned long long)cfg->pci_mmio64_base,
				    (unsigned long long)cfg->pci_mmio64_size);
	if (cfg->pci_root && cfg->ecam_base) {
		/* the root bridge must not hand out its own configuration space */
		uint64_t e0 = cfg->ecam_base,
			 e1 = e0 + ((uint64_t)cfg->ecam_end_bus + 1) * ECAM_BUS_SIZE;
		uint64_t w0 = cfg->pci_mmio32_base, w1 = w0 + cfg->pci_mmio32_size;
		uint64_t x0 = cfg->pci_mmio64_base, x1 = x0 + cfg->pci_mmio64_size;
		if ((cfg->pci_mmio32_size && w0 < e1 && e0 < w1) ||
		    (cfg->pci_mmio64_size && x0 < e1 && e0 < x1))
			return nb_error_set(
			    err, NB_EINVAL,
			    "ACPI: ECAM window %#llx + %#llx overlaps a PCI MMIO window",
			    (unsigned long long)e0, (unsigned long long)(e1 - e0));
	}
	if (cfg->rsdp_gpa % ACPI_TABLE_ALIGN)
		return nb_error_set(err, NB_EINVAL, "ACPI: rsdp_gpa %#llx is not 16-byte aligned",
				    (unsigned long long)cfg->rsdp_gpa);
	return 0;
}

/* ------------------------------------------------------------ layout */

enum { T_RSDP, T_XSDT, T_FADT, T_FACS, T_DSDT, T_MADT, T_MCFG, T_COUNT };

static const char *const table_sig[T_COUNT] = {"RSDP", "XSDT", "FACP", "FACS",
					       "DSDT", "APIC", "MCFG"};

struct plan {
	bool present[T_COUNT];
	uint64_t off[T_COUNT]; /* from the region's base */
	uint32_t len[T_COUNT];
	uint64_t size;
	unsigned nxsdt; /* XSDT entries */
};

static uint32_t madt_len(unsigned ncpus)
{
	return MADT_ENTRIES + 8 * ncpus + 12 + 10 * MADT_NISO + 6;
}

static void make_plan(const struct acpi_config *cfg, size_t aml_len, struct plan *p)
{
	memset(p, 0, sizeof(*p));
	p->present[T_RSDP] = !cfg->rsdp_gpa;
	p->present[T_XSDT] = p->present[T_FADT] = p->present[T_FACS] = true;
	p->present[T_DSDT] = p->present[T_MADT] = true;
	p->present[T_MCFG] = cfg->ecam_base != 0;
	p->nxsdt = 2 + p->present[T_MCFG]; /* FACP, APIC, MCFG */
	p->len[T_RSDP] = RSDP_SIZE;
	p->len[T_XSDT] = HDR_SIZE + 8 * p->nxsdt;
	p->len[T_FADT] = FADT_SIZE;
	p->len[T_FACS] = FACS_SIZE;
	p->len[T_DSDT] = (uint32_t)(HDR_SIZE + aml_len);
	p->len[T_MADT] = madt_len(cfg->ncpus);
	p->len[T_MCFG] = MCFG_ALLOCS + MCFG_ALLOC;
	uint64_t off = 0;
	for (int t = 0; t < T_COUNT; t++) {
		if (!p->present[t])
			continue;
		off = align_up(off, t == T_FACS ? FACS_SIZE : ACPI_TABLE_ALIGN);
		p->off[t] = off;
		off += p->len[t];
	}
	p->size = off;
}

/* Validate, encode the DSDT body into @a and plan. */
static int prepare(const struct acpi_config *cfg, struct aml *a, struct plan *p,
		   struct nb_error *err)
{
	if (check_config(cfg, err))
		return -1;
	a->len = 0;
	a->overflow = false;
	dsdt_body(a, cfg);
	if (a->overflow)
		return nb_error_set(err, NB_EINTERNAL, "ACPI: DSDT body exceeds %d bytes", AML_CAP);
	make_plan(cfg, a->len, p);
	if (p->size > ACPI_MAX_SIZE)
		return nb_error_set(err, NB_EINTERNAL, "ACPI: tables need %llu bytes, over %u",
				    (unsigned long long)p->size, ACPI_MAX_SIZE);
	return 0;
}

int acpi_size(const struct acpi_config *cfg, uint64_t *size, struct nb_error *err)
{
	struct aml a;
	struct plan p;
	if (prepare(cfg, &a, &p, err))
		return -1;
	*size = p.size;
	return 0;
}

/* ------------------------------------------------------------ builder */

static void put_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t + HDR_SIG, sig, 4);
	put32(t + HDR_LEN, len);
	t[HDR_REV] = rev;
	memcpy(t + HDR_OEMID, ACPI_OEM_ID, 6);
	memcpy(t + HDR_OEMTID, ACPI_OEM_TABLE_PREFIX, 4);
	memcpy(t + HDR_OEMTID + 4, sig, 4);
	put32(t + HDR_OEMREV, ACPI_OEM_REVISION);
	memcpy(t + HDR_CREATOR, ACPI_CREATOR_ID, 4);
	put32(t + HDR_CREV, ACPI_CREATOR_REVISION);
}

/* Set the byte at @at so that @len bytes from @t sum to 0. */
static void set_checksum(uint8_t *t, size_t len, size_t at)
{
	t[at] = 0;
	t[at] = (uint8_t)(0x100 - acpi_checksum(t, len));
}

static void put_gas_io(uint8_t *g, uint16_t port, uint8_t bytes, uint8_t access)
{
	g[GAS_SPACE] = GAS_IO;
	g[GAS_WIDTH] = (uint8_t)(bytes * 8);
	g[GAS_OFFSET] = 0;
	g[GAS_ACCESS] = access;
	put64(g + GAS_ADDR, port);
}

static void build_rsdp(uint8_t *r, gpa_t xsdt)
{
	memcpy(r + RSDP_SIG, "RSD PTR ", 8);
	memcpy(r + RSDP_OEMID, ACPI_OEM_ID, 6);
	r[RSDP_REV] = 2;
	put32(r + RSDP_RSDT, 0); /* no RSDT: the XSDT is used by any ACPI 2.0+ OS */
	put32(r + RSDP_LEN, RSDP_SIZE);
	put64(r + RSDP_XSDT, xsdt);
	set_checksum(r, RSDP_V1_SIZE, RSDP_CSUM);
	set_checksum(r, RSDP_SIZE, RSDP_XCSUM);
}

static void build_fadt(uint8_t *t, const struct acpi_config *cfg, gpa_t dsdt, gpa_t facs)
{
	put_header(t, "FACP", FADT_SIZE, FADT_REVISION);
	/* the FACS by exactly one of the two pointers, as the spec asks */
	if (facs <= UINT32_MAX)
		put32(t + FADT_FIRMWARE_CTRL, (uint32_t)facs);
	else
		put64(t + FADT_X_FIRMWARE, facs);
	/* the DSDT by both where it fits (ACPICA compares them), X_DSDT always */
	if (dsdt <= UINT32_MAX)
		put32(t + FADT_DSDT, (uint32_t)dsdt);
	put64(t + FADT_X_DSDT, dsdt);
	t[FADT_PM_PROFILE] = 0; /* unspecified */
	put16(t + FADT_SCI_INT, cfg->sci_irq);
	put32(t + FADT_SMI_CMD, 0); /* no SMI: always in ACPI mode (SCI_EN reads 1) */
	put32(t + FADT_PM1A_EVT, cfg->pm1a_evt_port);
	put32(t + FADT_PM1A_CNT, cfg->pm1a_cnt_port);
	t[FADT_PM1_EVT_LEN] = 4;
	t[FADT_PM1_CNT_LEN] = 2;
	put_gas_io(t + FADT_X_PM1A_EVT, cfg->pm1a_evt_port, 4, 2);
	put_gas_io(t + FADT_X_PM1A_CNT, cfg->pm1a_cnt_port, 2, 2);
	if (cfg->pm_tmr_port) {
		put32(t + FADT_PM_TMR, cfg->pm_tmr_port);
		t[FADT_PM_TMR_LEN] = 4;
		put_gas_io(t + FADT_X_PM_TMR, cfg->pm_tmr_port, 4, 3);
	}
	if (cfg->gpe0_port) {
		put32(t + FADT_GPE0, cfg->gpe0_port);
		t[FADT_GPE0_LEN] = cfg->gpe0_len;
		put_gas_io(t + FADT_X_GPE0, cfg->gpe0_port, cfg->gpe0_len, 1);
	}
	/* C2 and C3 unsupported: latencies above 100 and 1000 us */
	put16(t + FADT_P_LVL2_LAT, 101);
	put16(t + FADT_P_LVL3_LAT, 1001);
	t[FADT_CENTURY] = cfg->cmos_rtc ? 0x32 : 0;

	uint16_t boot = 0;
	if (cfg->legacy_devices)
		boot |= ACPI_BOOT_LEGACY_DEVICES;
	if (cfg->i8042)
		boot |= ACPI_BOOT_8042;
	if (!cfg->vga)
		boot |= ACPI_BOOT_NO_VGA;
	if (!cfg->cmos_rtc)
		boot |= ACPI_BOOT_NO_CMOS_RTC;
	put16(t + FADT_BOOT_ARCH, boot);

	uint32_t flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_SLP_BUTTON;
	if (!cfg->power_button)
		flags |= ACPI_FADT_PWR_BUTTON;
	if (cfg->reset_port) {
		flags |= ACPI_FADT_RESET_REG_SUP;
		put_gas_io(t + FADT_RESET_REG, cfg->reset_port, 1, 1);
		t[FADT_RESET_VALUE] = cfg->reset_value;
	}
	put32(t + FADT_FLAGS, flags);
	t[FADT_MINOR] = FADT_MINOR_VERSION;
	memcpy(t + FADT_HYPERVISOR, ACPI_HYPERVISOR_VENDOR, 8);
	set_checksum(t, FADT_SIZE, HDR_CSUM);
}

static void build_facs(uint8_t *t)
{
	memcpy(t + FACS_SIG, "FACS", 4);
	put32(t + FACS_LEN, FACS_SIZE);
	t[FACS_VERSION] = FACS_VER;
	/* hardware signature, waking vectors, global lock, flags: 0 */
}

static void build_madt(uint8_t *t, const struct acpi_config *cfg, uint32_t len)
{
	put_header(t, "APIC", len, MADT_REVISION);
	put32(t + MADT_LAPIC_ADDR, cfg->lapic_addr);
	put32(t + MADT_FLAGS, ACPI_MADT_PCAT_COMPAT);
	uint8_t *e = t + MADT_ENTRIES;
	for (unsigned i = 0; i < cfg->ncpus; i++, e += 8) {
		/* type 0, length 8, ACPI processor UID, APIC id, flags (enabled) */
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = (uint8_t)i;
		e[3] = (uint8_t)i;
		put32(e + 4, MADT_LAPIC_ENABLED);
	}
	/* type 1, length 12, I/O APIC id, reserved, address, GSI base 0 */
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = cfg->ioapic_id;
	put32(e + 4, cfg->ioapic_addr);
	put32(e + 8, 0);
	e += 12;
	/* type 2, length 10, bus 0 (ISA), source IRQ, GSI, MPS INTI flags */
	e[0] = MADT_ISO;
	e[1] = 10;
	e[2] = 0;
	e[3] = 0;
	put32(e + 4, 2); /* the PIT's IRQ0 is the I/O APIC's pin 2 */
	put16(e + 8, 0); /* conforms to the bus: edge, active high */
	e += 10;
	e[0] = MADT_ISO;
	e[1] = 10;
	e[2] = 0;
	e[3] = cfg->sci_irq;
	put32(e + 4, cfg->sci_irq);
	put16(e + 8, ACPI_SCI_OVERRIDE_FLAG);
	e += 10;
	/* type 4, length 6, UID 0xff (all processors), flags 0 (conforming), LINT1 */
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xff;
	put16(e + 3, 0);
	e[5] = 1;
	set_checksum(t, len, HDR_CSUM);
}

static void build_mcfg(uint8_t *t, const struct acpi_config *cfg, uint32_t len)
{
	put_header(t, "MCFG", len, MCFG_REVISION);
	uint8_t *a = t + MCFG_ALLOCS;
	put64(a, cfg->ecam_base);
	put16(a + 8, 0);	   /* PCI segment group */
	a[10] = 0;		   /* start bus */
	a[11] = cfg->ecam_end_bus; /* end bus */
	set_checksum(t, len, HDR_CSUM);
}

int acpi_build(const struct gmem *mem, gpa_t base, uint64_t region_size,
	       const struct acpi_config *cfg, struct acpi_layout *out, struct nb_error *err)
{
	struct aml a;
	struct plan p;
	if (prepare(cfg, &a, &p, err))
		return -1;
	if (base % ACPI_BASE_ALIGN)
		return nb_error_set(err, NB_EINVAL, "ACPI: table base %#llx is not %u-byte aligned",
				    (unsigned long long)base, ACPI_BASE_ALIGN);
	if (p.size > region_size)
		return nb_error_set(
		    err, NB_EINVAL,
		    "ACPI: tables for %u vCPUs need %llu bytes; the region at %#llx "
		    "has %llu",
		    cfg->ncpus, (unsigned long long)p.size, (unsigned long long)base,
		    (unsigned long long)region_size);
	if (!gmem_ptr(mem, base, p.size))
		return nb_error_set(err, NB_EINVAL,
				    "ACPI: table region %#llx + %llu bytes is outside guest memory",
				    (unsigned long long)base, (unsigned long long)p.size);
	if (cfg->rsdp_gpa) {
		uint64_t region_end;
		if (!gmem_ptr(mem, cfg->rsdp_gpa, RSDP_SIZE))
			return nb_error_set(err, NB_EINVAL,
					    "ACPI: rsdp_gpa %#llx is outside guest memory",
					    (unsigned long long)cfg->rsdp_gpa);
		if (__builtin_add_overflow(base, region_size, &region_end))
			region_end = UINT64_MAX;
		if (cfg->rsdp_gpa + RSDP_SIZE > base && cfg->rsdp_gpa < region_end)
			return nb_error_set(
			    err, NB_EINVAL,
			    "ACPI: rsdp_gpa %#llx overlaps the table region %#llx + "
			    "%llu bytes",
			    (unsigned long long)cfg->rsdp_gpa, (unsigned long long)base,
			    (unsigned long long)region_size);
	}

	int rc = -1;
	uint8_t *buf = calloc(1, p.size);
	if (!buf)
		return nb_error_set(err, NB_ERESOURCE, "ACPI: out of memory (%llu bytes)",
				    (unsigned long long)p.size);
	gpa_t at[T_COUNT];
	for (int t = 0; t < T_COUNT; t++)
		at[t] = p.present[t] ? base + p.off[t] : 0;

	uint8_t *x = buf + p.off[T_XSDT];
	put_header(x, "XSDT", p.len[T_XSDT], XSDT_REVISION);
	put64(x + HDR_SIZE, at[T_FADT]);
	put64(x + HDR_SIZE + 8, at[T_MADT]);
	if (p.present[T_MCFG])
		put64(x + HDR_SIZE + 16, at[T_MCFG]);
	set_checksum(x, p.len[T_XSDT], HDR_CSUM);

	build_fadt(buf + p.off[T_FADT], cfg, at[T_DSDT], at[T_FACS]);
	build_facs(buf + p.off[T_FACS]);

	uint8_t *d = buf + p.off[T_DSDT];
	put_header(d, "DSDT", p.len[T_DSDT], DSDT_REVISION);
	memcpy(d + HDR_SIZE, a.b, a.len);
	set_checksum(d, p.len[T_DSDT], HDR_CSUM);

	build_madt(buf + p.off[T_MADT], cfg, p.len[T_MADT]);
	if (p.present[T_MCFG])
		build_mcfg(buf + p.off[T_MCFG], cfg, p.len[T_MCFG]);

	uint8_t rsdp_far[RSDP_SIZE] = {0};
	uint8_t *r = p.present[T_RSDP] ? buf + p.off[T_RSDP] : rsdp_far;
	build_rsdp(r, at[T_XSDT]);

	if (gmem_write(mem, base, buf, p.size) ||
	    (cfg->rsdp_gpa && gmem_write(mem, cfg->rsdp_gpa, rsdp_far, RSDP_SIZE))) {
		nb_error_set(err, NB_EINTERNAL, "ACPI: write to checked guest memory failed");
		goto out;
	}

	if (out) {
		memset(out, 0, sizeof(*out));
		out->rsdp = cfg->rsdp_gpa ? cfg->rsdp_gpa : at[T_RSDP];
		out->base = base;
		out->size = p.size;
		for (int t = 0; t < T_COUNT; t++) {
			if (t != T_RSDP && !p.present[t])
				continue;
			struct acpi_table_ref *ref = &out->tables[out->ntables++];
			memcpy(ref->sig, table_sig[t], 5);
			ref->gpa = t == T_RSDP ? out->rsdp : at[t];
			ref->len = p.len[t];
			if (t == T_RSDP)
				ref->rev = 2;
			else if (t == T_FACS)
				ref->rev = FACS_VER;
			else
				ref->rev = buf[p.off[t] + HDR_REV];
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* ------------------------------------------------------------ checker */

struct chk {
	const struct gmem *mem;
	struct acpi_info *out;
	struct nb_error *err;
	uint8_t *buf; /* the table being checked, copied out of guest memory once */
	size_t cap;
};

#define FAIL(c, ...) nb_error_set((c)->err, NB_EFORMAT, __VA_ARGS__)

static bool sig_printable(const uint8_t *s)
{
	for (int i = 0; i < 4; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static void add_ref(struct acpi_info *o, const uint8_t *hdr, gpa_t gpa, uint32_t len, uint8_t rev)
{
	if (o->ntables >= ACPI_MAX_TABLES)
		return; /* callers bound the count first */
	struct acpi_table_ref *r = &o->tables[o->ntables++];
	memcpy(r->sig, hdr, 4);
	r->sig[4] = 0;
	r->gpa = gpa;
	r->len = len;
	r->rev = rev;
}

/* Copy the table at @gpa into c->buf and check its length and checksum. */
static int load_table(struct chk *c, gpa_t gpa, const char *what, uint32_t *len_out)
{
	uint8_t hdr[HDR_SIZE];
	unsigned long long g = gpa;
	if (gmem_read(c->mem, gpa, hdr, sizeof(hdr)))
		return FAIL(c, "%s: header at %#llx outside guest memory", what, g);
	if (!sig_printable(hdr))
		return FAIL(c, "%s: table at %#llx: signature %02x %02x %02x %02x is not a name",
			    what, g, hdr[0], hdr[1], hdr[2], hdr[3]);
	uint32_t len = get32(hdr + HDR_LEN);
	if (len < HDR_SIZE || len > ACPI_MAX_TABLE_LEN)
		return FAIL(c, "%s: %.4s at %#llx: length %u out of range %u..%u", what,
			    (const char *)hdr, g, len, HDR_SIZE, ACPI_MAX_TABLE_LEN);
	if (len > c->cap) {
		uint8_t *nb = realloc(c->buf, len);
		if (!nb)
			return nb_error_set(c->err, NB_ERESOURCE, "out of memory (%u bytes)", len);
		c->buf = nb;
		c->cap = len;
	}
	if (gmem_read(c->mem, gpa, c->buf, len))
		return FAIL(c, "%s: %.4s at %#llx: length %u runs outside guest memory", what,
			    (const char *)hdr, g, len);
	if (get32(c->buf + HDR_LEN) != len)
		return FAIL(c, "%s: %.4s at %#llx: changed while read", what, (const char *)hdr, g);
	uint8_t sum = acpi_checksum(c->buf, len);
	if (sum)
		return FAIL(c, "%s: %.4s at %#llx: bad checksum (%u bytes sum to %#x, not 0)", what,
			    (const char *)hdr, g, len, sum);
	*len_out = len;
	return 0;
}

/* ---- RSDP ---- */

static bool rsdp_ok(const uint8_t *r)
{
	if (memcmp(r + RSDP_SIG, "RSD PTR ", 8) || acpi_checksum(r, RSDP_V1_SIZE))
		return false;
	if (r[RSDP_REV] < 2)
		return true;
	return get32(r + RSDP_LEN) == RSDP_SIZE && !acpi_checksum(r, RSDP_SIZE);
}

static int check_rsdp(struct chk *c, gpa_t gpa)
{
	uint8_t r[RSDP_SIZE];
	unsigned long long g = gpa;
	if (gmem_read(c->mem, gpa, r, sizeof(r)))
		return FAIL(c, "RSDP at %#llx: outside guest memory", g);
	if (memcmp(r + RSDP_SIG, "RSD PTR ", 8))
		return FAIL(c, "RSDP at %#llx: no \"RSD PTR \" signature", g);
	uint8_t sum = acpi_checksum(r, RSDP_V1_SIZE);
	if (sum)
		return FAIL(c, "RSDP at %#llx: bad checksum (20 bytes sum to %#x, not 0)", g, sum);
	if (r[RSDP_REV] < 2)
		return FAIL(c, "RSDP at %#llx: revision %u, need 2 or more (XSDT)", g, r[RSDP_REV]);
	if (get32(r + RSDP_LEN) != RSDP_SIZE)
		return FAIL(c, "RSDP at %#llx: length %u, expected %u", g, get32(r + RSDP_LEN),
			    RSDP_SIZE);
	sum = acpi_checksum(r, RSDP_SIZE);
	if (sum)
		return FAIL(c, "RSDP at %#llx: bad extended checksum (36 bytes sum to %#x, not 0)",
			    g, sum);
	c->out->rsdp = gpa;
	c->out->rsdp_revision = r[RSDP_REV];
	memcpy(c->out->oem_id, r + RSDP_OEMID, 6);
	c->out->xsdt = get64(r + RSDP_XSDT);
	if (!c->out->xsdt)
		return FAIL(c, "RSDP at %#llx: XSDT address is 0", g);
	return 0;
}

int acpi_find_rsdp(const struct gmem *mem, gpa_t *rsdp, struct nb_error *err)
{
	gpa_t lo[2] = {0, 0xe0000}, hi[2] = {0, 0x100000};
	uint8_t seg[2];
	if (!gmem_read(mem, 0x40e, seg, 2) && get16(seg)) {
		lo[0] = (gpa_t)get16(seg) << 4;
		hi[0] = lo[0] + 1024;
	}
	for (int a = 0; a < 2; a++)
		for (gpa_t g = lo[a]; g + RSDP_SIZE <= hi[a]; g += 16) {
			const uint8_t *r = gmem_ptr(mem, g, RSDP_SIZE);
			if (r && rsdp_ok(r)) {
				*rsdp = g;
				return 0;
			}
		}
	return nb_error_set(err, NB_ENOENT,
			    "no RSDP in the EBDA or at 0xe0000..0xfffff of guest memory");
}

/* ---- FADT ---- */

/* A PM register block: the 32-bit port, its length, and the X_ GAS, which must agree. */
static int fadt_block(struct chk *c, const uint8_t *t, const char *name, unsigned off32,
		      unsigned offlen, unsigned offx, uint32_t *port, uint8_t *len)
{
	uint32_t p32 = get32(t + off32);
	uint8_t l = t[offlen];
	const uint8_t *gas = t + offx;
	uint64_t px = get64(gas + GAS_ADDR);
	if (px) {
		if (gas[GAS_SPACE] != GAS_IO)
			return FAIL(
			    c, "FADT X_%s: address space %u, this checker takes system I/O (1)",
			    name, gas[GAS_SPACE]);
		if (px > 0xffff)
			return FAIL(c, "FADT X_%s: I/O port %#llx above 0xffff", name,
				    (unsigned long long)px);
		if (p32 && p32 != px)
			return FAIL(c, "FADT %s %#x and X_%s %#llx differ", name, p32, name,
				    (unsigned long long)px);
		if (gas[GAS_WIDTH] != 8u * l || gas[GAS_OFFSET])
			return FAIL(c,
				    "FADT X_%s: bit width %u offset %u, length field says %u bytes",
				    name, gas[GAS_WIDTH], gas[GAS_OFFSET], l);
		p32 = (uint32_t)px;
	}
	if (p32 > 0xffff)
		return FAIL(c, "FADT %s: I/O port %#x above 0xffff", name, p32);
	if (p32 && p32 + l > 0x10000)
		return FAIL(c, "FADT %s: %#x + %u bytes runs past port 0xffff", name, p32, l);
	*port = p32;
	*len = p32 ? l : 0;
	return 0;
}

/* Both pointers set and different is an error; otherwise the one that is set. */
static int fadt_ptr(struct chk *c, const uint8_t *t, const char *name, unsigned off32,
		    unsigned off64, gpa_t *out)
{
	uint32_t a = get32(t + off32);
	uint64_t b = get64(t + off64);
	if (a && b && a != b)
		return FAIL(c, "FADT: %s %#x and X_%s %#llx differ", name, a, name,
			    (unsigned long long)b);
	*out = b ? b : a;
	return 0;
}

static int check_fadt(struct chk *c, uint32_t len)
{
	const uint8_t *t = c->buf;
	struct acpi_info *o = c->out;
	if (len < FADT_V3_SIZE)
		return FAIL(c, "FADT: length %u, need at least %u (ACPI 2.0+)", len, FADT_V3_SIZE);
	if (t[HDR_REV] < 3)
		return FAIL(c, "FADT: revision %u, need 3 or more", t[HDR_REV]);
	o->have_fadt = true;
	o->fadt_minor = t[FADT_MINOR];
	o->fadt_flags = get32(t + FADT_FLAGS);
	o->boot_arch = get16(t + FADT_BOOT_ARCH);
	o->sci_irq = get16(t + FADT_SCI_INT);
	if (fadt_block(c, t, "PM1a_EVT_BLK", FADT_PM1A_EVT, FADT_PM1_EVT_LEN, FADT_X_PM1A_EVT,
		       &o->pm1a_evt, &o->pm1_evt_len) ||
	    fadt_block(c, t, "PM1a_CNT_BLK", FADT_PM1A_CNT, FADT_PM1_CNT_LEN, FADT_X_PM1A_CNT,
		       &o->pm1a_cnt, &o->pm1_cnt_len) ||
	    fadt_block(c, t, "PM_TMR_BLK", FADT_PM_TMR, FADT_PM_TMR_LEN, FADT_X_PM_TMR, &o->pm_tmr,
		       &o->pm_tmr_len) ||
	    fadt_block(c, t, "GPE0_BLK", FADT_GPE0, FADT_GPE0_LEN, FADT_X_GPE0, &o->gpe0,
		       &o->gpe0_len))
		return -1;
	if (!(o->fadt_flags & ACPI_FADT_HW_REDUCED)) {
		if (!o->pm1a_evt || o->pm1_evt_len < 4 || o->pm1_evt_len % 2)
			return FAIL(c,
				    "FADT: PM1a event block %#x length %u (need a port, even "
				    "length >= 4)",
				    o->pm1a_evt, t[FADT_PM1_EVT_LEN]);
		if (!o->pm1a_cnt || o->pm1_cnt_len < 2)
			return FAIL(c,
				    "FADT: PM1a control block %#x length %u (need a port, "
				    "length >= 2)",
				    o->pm1a_cnt, t[FADT_PM1_CNT_LEN]);
		if (o->sci_irq == 0)
			return FAIL(c, "FADT: SCI_INT is 0");
	}
	if (o->pm_tmr && o->pm_tmr_len != 4)
		return FAIL(c, "FADT: PM_TMR_LEN %u, must be 4", o->pm_tmr_len);
	if (o->gpe0 && (o->gpe0_len == 0 || o->gpe0_len % 2))
		return FAIL(c, "FADT: GPE0_BLK_LEN %u, must be even and nonzero", o->gpe0_len);
	if (o->fadt_flags & ACPI_FADT_RESET_REG_SUP) {
		const uint8_t *g = t + FADT_RESET_REG;
		if (g[GAS_SPACE] > 2 || g[GAS_WIDTH] != 8 || g[GAS_OFFSET] || !get64(g + GAS_ADDR))
			return FAIL(c,
				    "FADT RESET_REG: space %u width %u offset %u address %#llx "
				    "(need a byte register in memory, I/O or PCI config space)",
				    g[GAS_SPACE], g[GAS_WIDTH], g[GAS_OFFSET],
				    (unsigned long long)get64(g + GAS_ADDR));
		o->have_reset = true;
		o->reset_space = g[GAS_SPACE];
		o->reset_addr = get64(g + GAS_ADDR);
		o->reset_value = t[FADT_RESET_VALUE];
	}
	if (fadt_ptr(c, t, "DSDT", FADT_DSDT, FADT_X_DSDT, &o->dsdt) ||
	    fadt_ptr(c, t, "FIRMWARE_CTRL", FADT_FIRMWARE_CTRL, FADT_X_FIRMWARE, &o->facs))
		return -1;
	return 0;
}

/* ---- FACS: no checksum; every field the OS does not write is checked ---- */

static int check_facs(struct chk *c, gpa_t gpa)
{
	uint8_t f[FACS_SIZE];
	unsigned long long g = gpa;
	if (gpa % FACS_SIZE)
		return FAIL(c, "FACS at %#llx: not 64-byte aligned", g);
	if (gmem_read(c->mem, gpa, f, sizeof(f)))
		return FAIL(c, "FACS at %#llx: outside guest memory", g);
	if (memcmp(f + FACS_SIG, "FACS", 4))
		return FAIL(c, "FACS at %#llx: signature %02x %02x %02x %02x", g, f[0], f[1], f[2],
			    f[3]);
	if (get32(f + FACS_LEN) != FACS_SIZE)
		return FAIL(c, "FACS at %#llx: length %u, expected 64", g, get32(f + FACS_LEN));
	if (f[FACS_VERSION] != FACS_VER)
		return FAIL(c, "FACS at %#llx: version %u, expected %u", g, f[FACS_VERSION],
			    FACS_VER);
	if (get32(f + FACS_FLAGS) & ~3u)
		return FAIL(c, "FACS at %#llx: reserved flags %#x", g, get32(f + FACS_FLAGS));
	if (get32(f + FACS_OSPM_FLAGS) & ~1u)
		return FAIL(c, "FACS at %#llx: reserved OSPM flags %#x", g,
			    get32(f + FACS_OSPM_FLAGS));
	for (unsigned i = FACS_VERSION + 1; i < FACS_SIZE; i++) {
		if (i >= FACS_OSPM_FLAGS && i < FACS_OSPM_FLAGS + 4)
			continue;
		if (f[i])
			return FAIL(c, "FACS at %#llx: reserved byte %u is %#x", g, i, f[i]);
	}
	c->out->have_facs = true;
	return 0;
}

/* ---- MADT ---- */

/* Entry lengths by type; 0: not checked. */
static const uint8_t madt_entry_len[11] = {
    [MADT_LAPIC] = 8,	  [MADT_IOAPIC] = 12,	 [MADT_ISO] = 10,    [MADT_NMI_SRC] = 8,
    [MADT_LAPIC_NMI] = 6, [MADT_LAPIC_OVR] = 12, [MADT_X2APIC] = 16, [MADT_X2APIC_NMI] = 12};

static int check_inti_flags(struct chk *c, const char *what, unsigned i, uint16_t flags)
{
	if ((flags & 3) == 2 || (flags >> 2 & 3) == 2 || flags >> 4)
		return FAIL(c, "MADT entry %u (%s): reserved INTI flags %#x", i, what, flags);
	return 0;
}

static int check_madt(struct chk *c, uint32_t len)
{
	const uint8_t *t = c->buf;
	struct acpi_info *o = c->out;
	uint8_t seen_id[32] = {0}, seen_uid[32] = {0};
	if (len < MADT_ENTRIES)
		return FAIL(c, "MADT: length %u, need at least %u", len, MADT_ENTRIES);
	o->have_madt = true;
	o->lapic_addr = get32(t + MADT_LAPIC_ADDR);
	o->madt_flags = get32(t + MADT_FLAGS);
	if (o->madt_flags & ~ACPI_MADT_PCAT_COMPAT)
		return FAIL(c, "MADT: reserved flags %#x", o->madt_flags);
	unsigned i = 0;
	uint8_t elen;
	for (uint32_t pos = MADT_ENTRIES; pos < len; pos += elen, i++) {
		if (len - pos < 2)
			return FAIL(c, "MADT entry %u at +%u: truncated header", i, pos);
		uint8_t type = t[pos];
		const uint8_t *e = t + pos;
		elen = t[pos + 1];
		if (elen < 2 || elen > len - pos)
			return FAIL(c,
				    "MADT entry %u at +%u: type %u length %u (table has %u left)",
				    i, pos, type, elen, len - pos);
		if (type < sizeof(madt_entry_len) && madt_entry_len[type] &&
		    elen != madt_entry_len[type])
			return FAIL(c, "MADT entry %u at +%u: type %u length %u, expected %u", i,
				    pos, type, elen, madt_entry_len[type]);
		switch (type) {
		case MADT_LAPIC: {
			uint8_t uid = e[2], id = e[3];
			uint32_t fl = get32(e + 4);
			if (fl & ~(MADT_LAPIC_ENABLED | MADT_LAPIC_ONLINE))
				return FAIL(c, "MADT entry %u (local APIC %u): reserved flags %#x",
					    i, id, fl);
			if (o->ncpus >= 256)
				return FAIL(c, "MADT: more than 256 local APIC entries");
			if (seen_uid[uid / 8] & 1u << uid % 8)
				return FAIL(c, "MADT entry %u: processor UID %u listed twice", i,
					    uid);
			seen_uid[uid / 8] |= (uint8_t)(1u << uid % 8);
			if (fl & MADT_LAPIC_ENABLED) {
				if (id == 0xff)
					return FAIL(
					    c, "MADT entry %u: enabled CPU with APIC id 0xff", i);
				if (seen_id[id / 8] & 1u << id % 8)
					return FAIL(c, "MADT entry %u: APIC id %u listed twice", i,
						    id);
				seen_id[id / 8] |= (uint8_t)(1u << id % 8);
				o->ncpus_enabled++;
			}
			o->cpu_uid[o->ncpus] = uid;
			o->cpu_apic_id[o->ncpus] = id;
			o->ncpus++;
			break;
		}
		case MADT_IOAPIC:
			if (e[3])
				return FAIL(c, "MADT entry %u (I/O APIC): reserved byte %#x", i,
					    e[3]);
			if (!o->nioapic) {
				o->ioapic_id = e[2];
				o->ioapic_addr = get32(e + 4);
				o->ioapic_gsi_base = get32(e + 8);
			}
			o->nioapic++;
			break;
		case MADT_ISO: {
			uint16_t fl = get16(e + 8);
			if (e[2] != 0)
				return FAIL(c, "MADT entry %u (override): bus %u, must be 0 (ISA)",
					    i, e[2]);
			if (e[3] > 15)
				return FAIL(c, "MADT entry %u (override): source IRQ %u is not ISA",
					    i, e[3]);
			if (check_inti_flags(c, "override", i, fl))
				return -1;
			for (unsigned k = 0; k < o->niso && k < 16; k++)
				if (o->iso[k].source == e[3])
					return FAIL(c, "MADT entry %u: IRQ %u overridden twice", i,
						    e[3]);
			if (o->niso >= 16)
				return FAIL(c, "MADT: more than 16 interrupt source overrides");
			o->iso[o->niso].bus = e[2];
			o->iso[o->niso].source = e[3];
			o->iso[o->niso].gsi = get32(e + 4);
			o->iso[o->niso].flags = fl;
			o->niso++;
			break;
		}
		case MADT_LAPIC_NMI: {
			uint16_t fl = get16(e + 3);
			if (e[5] > 1)
				return FAIL(c, "MADT entry %u (local APIC NMI): LINT%u", i, e[5]);
			if (check_inti_flags(c, "local APIC NMI", i, fl))
				return -1;
			if (!o->nlapic_nmi) {
				o->lapic_nmi_uid = e[2];
				o->lapic_nmi_flags = fl;
				o->lapic_nmi_lint = e[5];
			}
			o->nlapic_nmi++;
			break;
		}
		default:
			break; /* other types: length checked above */
		}
	}
	return 0;
}

/* ---- MCFG ---- */

static int check_mcfg(struct chk *c, uint32_t len)
{
	const uint8_t *t = c->buf;
	struct acpi_info *o = c->out;
	if (len < MCFG_ALLOCS + MCFG_ALLOC || (len - MCFG_ALLOCS) % MCFG_ALLOC)
		return FAIL(c, "MCFG: length %u is not 44 + 16 * n with n >= 1", len);
	if (get64(t + HDR_SIZE))
		return FAIL(c, "MCFG: reserved bytes 36..43 not zero");
	o->nmcfg = (len - MCFG_ALLOCS) / MCFG_ALLOC;
	for (unsigned i = 0; i < o->nmcfg; i++) {
		const uint8_t *a = t + MCFG_ALLOCS + i * MCFG_ALLOC;
		uint64_t b = get64(a);
		if (!b || b % ECAM_BUS_SIZE)
			return FAIL(c, "MCFG allocation %u: base %#llx is not 1 MiB aligned", i,
				    (unsigned long long)b);
		if (a[10] > a[11])
			return FAIL(c, "MCFG allocation %u: start bus %u > end bus %u", i, a[10],
				    a[11]);
		if (get32(a + 12))
			return FAIL(c, "MCFG allocation %u: reserved bytes not zero", i);
		if (i == 0) {
			o->ecam_base = b;
			o->ecam_segment = get16(a + 8);
			o->ecam_start_bus = a[10];
			o->ecam_end_bus = a[11];
		}
	}
	o->have_mcfg = true;
	return 0;
}

/* ---- DSDT: a walk of the AML subset the builder emits ---- */

#define AML_MAX_DEPTH 16

struct amlw {
	struct chk *c;
	const uint8_t *b; /* the whole DSDT; offsets below are from its start */
};

enum aml_kind { K_INT, K_STR, K_BUF, K_PKG };

struct aml_val {
	enum aml_kind kind;
	uint64_t ival;	     /* K_INT */
	uint32_t start, end; /* K_BUF: initializer bytes; K_STR: the characters */
	unsigned nel;	     /* K_PKG: elements present */
	bool el_int[2];	     /* K_PKG: the first two elements are integers */
	uint64_t el_val[2];
};

static int pkg_length(struct amlw *w, uint32_t *pos, uint32_t end, uint32_t *pkg_end)
{
	uint32_t at = *pos;
	if (at >= end)
		return FAIL(w->c, "DSDT+%#x: truncated PkgLength", at);
	uint8_t lead = w->b[at];
	uint32_t n = lead >> 6, len;
	if (n == 0) {
		len = lead & 0x3f;
	} else {
		if (lead & 0x30)
			return FAIL(w->c, "DSDT+%#x: PkgLength lead byte %#x has reserved bits", at,
				    lead);
		if (end - at < 1 + n)
			return FAIL(w->c, "DSDT+%#x: truncated PkgLength", at);
		len = lead & 0x0f;
		for (uint32_t i = 1; i <= n; i++)
			len |= (uint32_t)w->b[at + i] << (4 + 8 * (i - 1));
	}
	if (len < 1 + n || len > end - at)
		return FAIL(w->c, "DSDT+%#x: PkgLength %u does not fit its container (%u bytes)",
			    at, len, end - at);
	*pos = at + 1 + n;
	*pkg_end = at + len;
	return 0;
}

static bool lead_char(uint8_t ch)
{
	return (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool name_char(uint8_t ch)
{
	return lead_char(ch) || (ch >= '0' && ch <= '9');
}

/* NameString: ['\' | '^'*] (NameSeg | 2E seg seg | 2F n seg*n | 00). @last gets the last segment.
 */
static int name_string(struct amlw *w, uint32_t *pos, uint32_t end, char last[5], bool *rooted,
		       unsigned *nsegs)
{
	uint32_t p = *pos;
	*rooted = false;
	if (p < end && w->b[p] == AML_ROOT) {
		*rooted = true;
		p++;
	} else {
		while (p < end && w->b[p] == AML_PARENT)
			p++;
	}
	if (p >= end)
		return FAIL(w->c, "DSDT+%#x: truncated name", *pos);
	unsigned n;
	if (w->b[p] == 0x00) {
		n = 0;
		p++;
	} else if (w->b[p] == AML_DUAL_NAME) {
		n = 2;
		p++;
	} else if (w->b[p] == AML_MULTI_NAME) {
		if (end - p < 2)
			return FAIL(w->c, "DSDT+%#x: truncated name", *pos);
		n = w->b[p + 1];
		p += 2;
		if (n == 0)
			return FAIL(w->c, "DSDT+%#x: MultiNamePrefix with 0 segments", *pos);
	} else {
		n = 1;
	}
	memset(last, 0, 5);
	for (unsigned i = 0; i < n; i++, p += 4) {
		if (end - p < 4)
			return FAIL(w->c, "DSDT+%#x: truncated name segment", p);
		const uint8_t *s = w->b + p;
		if (!lead_char(s[0]) || !name_char(s[1]) || !name_char(s[2]) || !name_char(s[3]))
			return FAIL(w->c, "DSDT+%#x: bad name segment %02x %02x %02x %02x", p, s[0],
				    s[1], s[2], s[3]);
		memcpy(last, s, 4);
	}
	*nsegs = n;
	*pos = p;
	return 0;
}

/* Resource template: small and large items ending in exactly one End Tag at the end. */
static int check_resources(struct amlw *w, uint32_t start, uint32_t end)
{
	const uint8_t *b = w->b;
	uint32_t p = start;
	while (p < end) {
		uint8_t tag = b[p];
		if (tag & 0x80) {
			if (end - p < 3)
				return FAIL(w->c, "DSDT+%#x: truncated large resource item", p);
			uint32_t rl = get16(b + p + 1);
			if (rl > end - p - 3)
				return FAIL(w->c,
					    "DSDT+%#x: resource item %#x length %u overruns "
					    "the buffer",
					    p, tag, rl);
			/* address space descriptors: min <= max, and a fixed range's length */
			const uint8_t *d = b + p + 3;
			uint64_t mn = 0, mx = 0, ln = 0;
			bool addr = true;
			if (tag == RES_WORD && rl >= 13) {
				mn = get16(d + 5), mx = get16(d + 7), ln = get16(d + 11);
			} else if (tag == RES_DWORD && rl >= 23) {
				mn = get32(d + 7), mx = get32(d + 11), ln = get32(d + 19);
			} else if (tag == RES_QWORD && rl >= 43) {
				mn = get64(d + 11), mx = get64(d + 19), ln = get64(d + 35);
			} else {
				addr = false;
			}
			if (addr) {
				if (mn > mx)
					return FAIL(w->c,
						    "DSDT+%#x: address range min %#llx > max "
						    "%#llx",
						    p, (unsigned long long)mn,
						    (unsigned long long)mx);
				if ((d[1] & 0x0c) == 0x0c && ln && mx - mn != ln - 1)
					return FAIL(w->c,
						    "DSDT+%#x: fixed range %#llx..%#llx has "
						    "length %#llx",
						    p, (unsigned long long)mn,
						    (unsigned long long)mx, (unsigned long long)ln);
			}
			p += 3 + rl;
		} else {
			uint32_t rl = tag & 7;
			if (rl > end - p - 1)
				return FAIL(w->c, "DSDT+%#x: resource item %#x overruns the buffer",
					    p, tag);
			if ((tag >> 3) == 0x0f) {
				if (rl != 1 || p + 2 != end)
					return FAIL(w->c,
						    "DSDT+%#x: End Tag (length %u) is not the "
						    "last 2 bytes",
						    p, rl);
				return 0;
			}
			if (tag == RES_IO && get16(b + p + 2) > get16(b + p + 4))
				return FAIL(w->c, "DSDT+%#x: I/O descriptor min %#x > max %#x", p,
					    get16(b + p + 2), get16(b + p + 4));
			p += 1 + rl;
		}
	}
	return FAIL(w->c, "DSDT+%#x: resource template without End Tag", start);
}

static int data_object(struct amlw *w, uint32_t *pos, uint32_t end, unsigned depth,
		       struct aml_val *v)
{
	const uint8_t *b = w->b;
	uint32_t p = *pos;
	if (depth > AML_MAX_DEPTH)
		return FAIL(w->c, "DSDT+%#x: objects nested deeper than %d", p, AML_MAX_DEPTH);
	if (p >= end)
		return FAIL(w->c, "DSDT+%#x: missing data object", p);
	memset(v, 0, sizeof(*v));
	uint8_t op = b[p++];
	unsigned n = 0;
	switch (op) {
	case AML_ZERO:
	case AML_ONE:
		v->kind = K_INT;
		v->ival = op;
		break;
	case AML_ONES:
		v->kind = K_INT;
		v->ival = UINT64_MAX;
		break;
	case AML_BYTE:
		n = 1;
		break;
	case AML_WORD:
		n = 2;
		break;
	case AML_DWORD:
		n = 4;
		break;
	case AML_QWORD:
		n = 8;
		break;
	case AML_STRING: {
		v->kind = K_STR;
		v->start = p;
		while (p < end && b[p] && b[p] < 0x80)
			p++;
		if (p >= end || b[p])
			return FAIL(w->c, "DSDT+%#x: string not terminated inside its package",
				    *pos);
		v->end = p++;
		break;
	}
	case AML_BUFFER: {
		uint32_t pend;
		struct aml_val size;
		if (pkg_length(w, &p, end, &pend) || data_object(w, &p, pend, depth + 1, &size))
			return -1;
		if (size.kind != K_INT)
			return FAIL(w->c, "DSDT+%#x: BufferSize is not an integer", *pos);
		if (size.ival < pend - p || size.ival > 0xffff)
			return FAIL(w->c, "DSDT+%#x: BufferSize %llu with %u initializer bytes",
				    *pos, (unsigned long long)size.ival, pend - p);
		v->kind = K_BUF;
		v->start = p;
		v->end = pend;
		p = pend;
		break;
	}
	case AML_PACKAGE: {
		uint32_t pend;
		if (pkg_length(w, &p, end, &pend))
			return -1;
		if (p >= pend)
			return FAIL(w->c, "DSDT+%#x: Package without NumElements", *pos);
		unsigned num = b[p++];
		v->kind = K_PKG;
		while (p < pend) {
			struct aml_val el;
			if (v->nel >= num)
				return FAIL(w->c, "DSDT+%#x: Package has more than NumElements %u",
					    *pos, num);
			if (data_object(w, &p, pend, depth + 1, &el))
				return -1;
			if (v->nel < 2) {
				v->el_int[v->nel] = el.kind == K_INT;
				v->el_val[v->nel] = el.ival;
			}
			v->nel++;
		}
		break;
	}
	default:
		return FAIL(w->c, "DSDT+%#x: unsupported data object opcode %#x", *pos, op);
	}
	if (n) {
		if (end - p < n)
			return FAIL(w->c, "DSDT+%#x: truncated integer", *pos);
		v->kind = K_INT;
		v->ival = 0;
		for (unsigned i = 0; i < n; i++)
			v->ival |= (uint64_t)b[p + i] << (8 * i);
		p += n;
	}
	*pos = p;
	return 0;
}

static void note_hid(struct amlw *w, const struct aml_val *v)
{
	bool pci = false, mb = false;
	if (v->kind == K_INT) {
		pci = v->ival == eisa_id("PNP0A08") || v->ival == eisa_id("PNP0A03");
		mb = v->ival == eisa_id("PNP0C02") || v->ival == eisa_id("PNP0C01");
	} else if (v->kind == K_STR && v->end - v->start == 7) {
		const char *s = (const char *)w->b + v->start;
		pci = !memcmp(s, "PNP0A08", 7) || !memcmp(s, "PNP0A03", 7);
		mb = !memcmp(s, "PNP0C02", 7) || !memcmp(s, "PNP0C01", 7);
	}
	w->c->out->have_pci_root |= pci;
	w->c->out->have_mb_res |= mb;
}

static int term_list(struct amlw *w, uint32_t p, uint32_t end, unsigned depth, bool in_device)
{
	struct acpi_info *o = w->c->out;
	if (depth > AML_MAX_DEPTH)
		return FAIL(w->c, "DSDT+%#x: scopes nested deeper than %d", p, AML_MAX_DEPTH);
	while (p < end) {
		uint32_t at = p;
		uint8_t op = w->b[p++];
		char seg[5];
		bool rooted;
		unsigned nsegs;
		if (op == AML_NAME) {
			struct aml_val v;
			if (name_string(w, &p, end, seg, &rooted, &nsegs) ||
			    data_object(w, &p, end, depth + 1, &v))
				return -1;
			if (!memcmp(seg, "_S5_", 4) && nsegs == 1 && (rooted || depth == 0)) {
				if (o->have_s5)
					return FAIL(w->c, "DSDT+%#x: \\_S5 defined twice", at);
				if (v.kind != K_PKG || v.nel < 2 || !v.el_int[0] || !v.el_int[1])
					return FAIL(w->c,
						    "DSDT+%#x: \\_S5 is not a package of two or "
						    "more integers",
						    at);
				if (v.el_val[0] > 7 || v.el_val[1] > 7)
					return FAIL(w->c,
						    "DSDT+%#x: \\_S5 SLP_TYP values %llu, %llu "
						    "do not fit 3 bits",
						    at, (unsigned long long)v.el_val[0],
						    (unsigned long long)v.el_val[1]);
				o->have_s5 = true;
				o->s5_slp_typ_a = (uint8_t)v.el_val[0];
				o->s5_slp_typ_b = (uint8_t)v.el_val[1];
			}
			if (in_device && nsegs == 1 && !memcmp(seg, "_HID", 4))
				note_hid(w, &v);
			if (!memcmp(seg, "_CRS", 4) && nsegs == 1) {
				if (v.kind != K_BUF)
					return FAIL(w->c, "DSDT+%#x: _CRS is not a buffer", at);
				if (check_resources(w, v.start, v.end))
					return -1;
			}
		} else if (op == AML_SCOPE || (op == AML_EXT && p < end && w->b[p] == AML_DEVICE)) {
			bool dev = op == AML_EXT;
			uint32_t pend;
			if (dev)
				p++;
			if (pkg_length(w, &p, end, &pend) ||
			    name_string(w, &p, pend, seg, &rooted, &nsegs) ||
			    term_list(w, p, pend, depth + 1, dev))
				return -1;
			p = pend;
		} else {
			return FAIL(w->c, "DSDT+%#x: unsupported AML opcode %#x", at, op);
		}
	}
	return 0;
}

static int check_dsdt(struct chk *c, uint32_t len)
{
	struct amlw w = {.c = c, .b = c->buf};
	if (c->buf[HDR_REV] < 2)
		return FAIL(c, "DSDT: revision %u, need 2 or more (64-bit integers)",
			    c->buf[HDR_REV]);
	if (term_list(&w, HDR_SIZE, len, 0, false))
		return -1;
	c->out->have_dsdt = true;
	return 0;
}

/* ---- the walk ---- */

static int check_all(struct chk *c, gpa_t rsdp)
{
	struct acpi_info *o = c->out;
	uint32_t len;
	if (check_rsdp(c, rsdp) || load_table(c, o->xsdt, "RSDP XSDT address", &len))
		return -1;
	if (memcmp(c->buf, "XSDT", 4))
		return FAIL(c, "RSDP XSDT address %#llx: table is %.4s, not XSDT",
			    (unsigned long long)o->xsdt, (const char *)c->buf);
	if ((len - HDR_SIZE) % 8)
		return FAIL(c, "XSDT: length %u is not 36 + 8 * n", len);
	unsigned n = (len - HDR_SIZE) / 8;
	if (n > ACPI_MAX_TABLES - 2)
		return FAIL(c, "XSDT: %u entries, this checker takes at most %u", n,
			    ACPI_MAX_TABLES - 2);
	gpa_t ent[ACPI_MAX_TABLES];
	for (unsigned i = 0; i < n; i++)
		ent[i] = get64(c->buf + HDR_SIZE + 8 * i);

	for (unsigned i = 0; i < n; i++) {
		char what[24];
		snprintf(what, sizeof(what), "XSDT entry %u", i);
		if (load_table(c, ent[i], what, &len))
			return -1;
		const uint8_t *t = c->buf;
		for (unsigned k = 0; k < o->ntables; k++)
			if (!memcmp(o->tables[k].sig, t, 4) && memcmp(t, "SSDT", 4))
				return FAIL(c, "XSDT entry %u: a second %.4s table", i,
					    (const char *)t);
		if (!memcmp(t, "DSDT", 4) || !memcmp(t, "XSDT", 4) || !memcmp(t, "RSDT", 4))
			return FAIL(c, "XSDT entry %u: %.4s must not be listed in the XSDT", i,
				    (const char *)t);
		add_ref(o, t, ent[i], len, t[HDR_REV]);
		int rc = 0;
		if (!memcmp(t, "FACP", 4))
			rc = check_fadt(c, len);
		else if (!memcmp(t, "APIC", 4))
			rc = check_madt(c, len);
		else if (!memcmp(t, "MCFG", 4))
			rc = check_mcfg(c, len);
		if (rc)
			return -1;
	}

	if (o->have_fadt && o->dsdt) {
		if (load_table(c, o->dsdt, "FADT X_DSDT", &len))
			return -1;
		if (memcmp(c->buf, "DSDT", 4))
			return FAIL(c, "FADT DSDT address %#llx: table is %.4s, not DSDT",
				    (unsigned long long)o->dsdt, (const char *)c->buf);
		add_ref(o, c->buf, o->dsdt, len, c->buf[HDR_REV]);
		if (check_dsdt(c, len))
			return -1;
	}
	if (o->have_fadt && o->facs && !(o->fadt_flags & ACPI_FADT_HW_REDUCED)) {
		if (check_facs(c, o->facs))
			return -1;
		add_ref(o, (const uint8_t *)"FACS", o->facs, FACS_SIZE, FACS_VER);
	}
	return 0;
}

int acpi_parse_check(const struct gmem *mem, gpa_t rsdp, struct acpi_info *out,
		     struct nb_error *err)
{
	struct chk c = {.mem = mem, .out = out, .err = err};
	memset(out, 0, sizeof(*out));
	int rc = check_all(&c, rsdp);
	free(c.buf);
	return rc;
}
