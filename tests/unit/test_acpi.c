/* SPDX-License-Identifier: MIT */
/* Unit tests: acpi_build, acpi_parse_check, acpi_find_rsdp (src/devices/acpi/acpi.{h,c}).
 * Tables are built into buffer-backed guest memory, checked byte by byte and
 * through the checker; every single-byte corruption must be noticed, and a
 * deterministic mutation loop must never crash the checker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/acpi/acpi.h"

#define MEM_BASE   0x0ull
#define MEM_SIZE   0x100000ull /* the first MiB: EBDA and the BIOS area included */
#define TBL_BASE   0x80000ull
#define TBL_REGION 0x10000ull
#define FILL	   0xaa /* what guest memory holds before the build */

struct mem {
	uint8_t *buf; /* exactly m.r[0].size bytes, so ASan sees any stray access */
	struct gmem m;
};

static struct mem mem_new(gpa_t base, uint64_t size)
{
	struct mem x = {.buf = malloc(size)};
	assert_non_null(x.buf);
	memset(x.buf, FILL, size);
	x.m = gmem_one(x.buf, base, size);
	return x;
}

static void mem_free(struct mem *x)
{
	free(x->buf);
	x->buf = NULL;
}

static const uint8_t *at(const struct mem *x, gpa_t gpa, uint64_t len)
{
	const uint8_t *p = gmem_ptr(&x->m, gpa, len);
	assert_non_null(p);
	return p;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static const struct acpi_table_ref *find_ref(const struct acpi_layout *l, const char *sig)
{
	for (unsigned i = 0; i < l->ntables; i++)
		if (!strcmp(l->tables[i].sig, sig))
			return &l->tables[i];
	return NULL;
}

static const struct acpi_table_ref *find_info_ref(const struct acpi_info *in, const char *sig)
{
	for (unsigned i = 0; i < in->ntables; i++)
		if (!strcmp(in->tables[i].sig, sig))
			return &in->tables[i];
	return NULL;
}

static void expect_parse_ok(const struct mem *x, gpa_t rsdp, struct acpi_info *info)
{
	struct nb_error err = {0};
	int rc = acpi_parse_check(&x->m, rsdp, info, &err);
	if (rc)
		fail_msg("acpi_parse_check: %s", err.msg);
}

static void expect_parse_fail(const struct mem *x, gpa_t rsdp, const char *what)
{
	struct acpi_info info;
	struct nb_error err = {0};
	int rc = acpi_parse_check(&x->m, rsdp, &info, &err);
	if (rc != -1)
		fail_msg("checker accepted %s", what);
	assert_int_equal(err.code, NB_EFORMAT);
	assert_true(err.msg[0] != 0);
	assert_non_null(memchr(err.msg, 0, sizeof(err.msg)));
}

/* --------------------------------------------------- independent byte checks */

static uint8_t expected_rev(const char *sig)
{
	if (!strcmp(sig, "XSDT") || !strcmp(sig, "MCFG"))
		return 1;
	if (!strcmp(sig, "FACP"))
		return 6;
	if (!strcmp(sig, "DSDT"))
		return 2;
	if (!strcmp(sig, "APIC"))
		return 5;
	fail_msg("unexpected table %s", sig);
	return 0;
}

/* Every header, checksum and placement rule, read straight from guest memory. */
static void check_layout_bytes(const struct mem *x, const struct acpi_config *cfg,
			       const struct acpi_layout *l, gpa_t base)
{
	assert_int_equal(l->base, base);
	assert_true(l->size > 0 && l->size <= ACPI_MAX_SIZE);
	uint64_t size;
	struct nb_error err;
	assert_int_equal(acpi_size(cfg, &size, &err), 0);
	assert_int_equal(size, l->size);

	/* RSDP */
	const uint8_t *r = at(x, l->rsdp, 36);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(r, 20), 0);
	assert_int_equal(acpi_checksum(r, 36), 0);
	assert_memory_equal(r + 9, "NUBIS ", 6);
	assert_int_equal(r[15], 2);
	assert_int_equal(le32(r + 16), 0);
	assert_int_equal(le32(r + 20), 36);
	assert_int_equal(le64(r + 24), find_ref(l, "XSDT")->gpa);
	assert_int_equal(r[33] | r[34] | r[35], 0);
	assert_int_equal(l->rsdp % 16, 0);
	if (cfg->rsdp_gpa)
		assert_int_equal(l->rsdp, cfg->rsdp_gpa);
	else
		assert_int_equal(l->rsdp, base);

	/* tables: placement, alignment, headers, checksums */
	gpa_t prev_end = base;
	uint64_t covered = 0;
	for (unsigned i = 0; i < l->ntables; i++) {
		const struct acpi_table_ref *t = &l->tables[i];
		if (!strcmp(t->sig, "RSDP")) {
			assert_int_equal(t->len, 36);
			if (cfg->rsdp_gpa)
				continue;
		}
		assert_int_equal(t->gpa % (strcmp(t->sig, "FACS") ? 16 : 64), 0);
		assert_true(t->gpa >= prev_end);
		/* padding between tables is zero */
		for (gpa_t g = prev_end; g < t->gpa; g++)
			assert_int_equal(*at(x, g, 1), 0);
		assert_true(t->gpa - prev_end < 64);
		prev_end = t->gpa + t->len;
		covered += t->len;
		if (!strcmp(t->sig, "RSDP"))
			continue;
		const uint8_t *h = at(x, t->gpa, t->len);
		assert_memory_equal(h, t->sig, 4);
		assert_int_equal(le32(h + 4), t->len);
		if (!strcmp(t->sig, "FACS")) {
			assert_int_equal(t->len, 64);
			assert_int_equal(h[32], 2); /* version */
			for (unsigned k = 8; k < 64; k++)
				if (k != 32)
					assert_int_equal(h[k], 0);
			continue;
		}
		assert_int_equal(h[8], expected_rev(t->sig));
		assert_int_equal(t->rev, h[8]);
		assert_int_equal(acpi_checksum(h, t->len), 0);
		assert_memory_equal(h + 10, "NUBIS ", 6);
		assert_memory_equal(h + 16, "NBVM", 4);
		assert_memory_equal(h + 20, t->sig, 4);
		assert_int_equal(le32(h + 24), 1);
		assert_memory_equal(h + 28, "NUBS", 4);
		assert_int_equal(le32(h + 32), 1);
	}
	assert_int_equal(prev_end, base + l->size);
	assert_true(covered <= l->size);
	/* nothing written past the end */
	if (base + l->size < gmem_end(&x->m))
		assert_int_equal(*at(x, base + l->size, 1), FILL);

	/* XSDT entries */
	const struct acpi_table_ref *xs = find_ref(l, "XSDT");
	const uint8_t *xb = at(x, xs->gpa, xs->len);
	unsigned n = (xs->len - 36) / 8;
	assert_int_equal(n, cfg->ecam_base ? 3 : 2);
	assert_int_equal(le64(xb + 36), find_ref(l, "FACP")->gpa);
	assert_int_equal(le64(xb + 44), find_ref(l, "APIC")->gpa);
	if (cfg->ecam_base)
		assert_int_equal(le64(xb + 52), find_ref(l, "MCFG")->gpa);
	else
		assert_null(find_ref(l, "MCFG"));

	/* FADT fields read straight from memory */
	const struct acpi_table_ref *fr = find_ref(l, "FACP");
	const uint8_t *f = at(x, fr->gpa, fr->len);
	gpa_t dsdt = find_ref(l, "DSDT")->gpa, facs = find_ref(l, "FACS")->gpa;
	assert_int_equal(fr->len, 276);
	assert_int_equal(le32(f + 36), facs); /* FIRMWARE_CTRL (below 4 GiB) */
	assert_int_equal(le64(f + 132), 0);   /* X_FIRMWARE_CTRL: exactly one is set */
	assert_int_equal(le32(f + 40), dsdt);
	assert_int_equal(le64(f + 140), dsdt); /* X_DSDT */
	assert_int_equal(le16(f + 46), cfg->sci_irq);
	assert_int_equal(le32(f + 48), 0); /* SMI_CMD */
	assert_int_equal(le32(f + 56), cfg->pm1a_evt_port);
	assert_int_equal(le32(f + 60), 0); /* PM1b */
	assert_int_equal(le32(f + 64), cfg->pm1a_cnt_port);
	assert_int_equal(le32(f + 76), cfg->pm_tmr_port);
	assert_int_equal(le32(f + 80), cfg->gpe0_port);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], cfg->pm_tmr_port ? 4 : 0);
	assert_int_equal(f[92], cfg->gpe0_len);
	assert_int_equal(le16(f + 96), 101);
	assert_int_equal(le16(f + 98), 1001);
	assert_int_equal(f[131], 4); /* minor version: ACPI 6.4 */
	/* X_PM1a_EVT_BLK: I/O, 32 bits, word access, the port */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(f[150], 0);
	assert_int_equal(f[151], 2);
	assert_int_equal(le64(f + 152), cfg->pm1a_evt_port);
	/* X_PM1a_CNT_BLK */
	assert_int_equal(f[172], 1);
	assert_int_equal(f[173], 16);
	assert_int_equal(le64(f + 176), cfg->pm1a_cnt_port);
	/* X_PM_TMR_BLK */
	assert_int_equal(f[209], cfg->pm_tmr_port ? 32 : 0);
	assert_int_equal(le64(f + 212), cfg->pm_tmr_port);
	/* X_GPE0_BLK */
	assert_int_equal(f[221], cfg->gpe0_len * 8);
	assert_int_equal(le64(f + 224), cfg->gpe0_port);
	/* reset register */
	if (cfg->reset_port) {
		assert_int_equal(f[116], 1);
		assert_int_equal(f[117], 8);
		assert_int_equal(le64(f + 120), cfg->reset_port);
		assert_int_equal(f[128], cfg->reset_value);
	} else {
		assert_int_equal(le64(f + 120), 0);
	}
	/* sleep control/status registers unused (not hardware-reduced) */
	for (unsigned k = 244; k < 268; k++)
		assert_int_equal(f[k], 0);
	assert_memory_equal(f + 268, "NUBISVMM", 8);

	/* MADT entries read straight from memory */
	const struct acpi_table_ref *mr = find_ref(l, "APIC");
	const uint8_t *m = at(x, mr->gpa, mr->len);
	assert_int_equal(mr->len, 44 + 8 * cfg->ncpus + 12 + 2 * 10 + 6);
	assert_int_equal(le32(m + 36), 0xfee00000u);
	assert_int_equal(le32(m + 40), 1);
	const uint8_t *e = m + 44;
	for (unsigned i = 0; i < cfg->ncpus; i++, e += 8) {
		assert_int_equal(e[0], 0);
		assert_int_equal(e[1], 8);
		assert_int_equal(e[2], i);
		assert_int_equal(e[3], i);
		assert_int_equal(le32(e + 4), 1);
	}
	uint8_t ioapic[12] = {1, 12, cfg->ioapic_id, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0};
	assert_memory_equal(e, ioapic, 12);
	e += 12;
	static const uint8_t iso0[10] = {2, 10, 0, 0, 2, 0, 0, 0, 0, 0};
	assert_memory_equal(e, iso0, 10);
	e += 10;
	uint8_t iso_sci[10] = {2, 10, 0, cfg->sci_irq, cfg->sci_irq, 0, 0, 0, 0x0d, 0};
	assert_memory_equal(e, iso_sci, 10);
	e += 10;
	static const uint8_t nmi[6] = {4, 6, 0xff, 0, 0, 1};
	assert_memory_equal(e, nmi, 6);

	/* MCFG */
	if (cfg->ecam_base) {
		const struct acpi_table_ref *cr = find_ref(l, "MCFG");
		const uint8_t *c = at(x, cr->gpa, cr->len);
		assert_int_equal(cr->len, 60);
		assert_int_equal(le64(c + 36), 0);
		assert_int_equal(le64(c + 44), cfg->ecam_base);
		assert_int_equal(le16(c + 52), 0);
		assert_int_equal(c[54], 0);
		assert_int_equal(c[55], cfg->ecam_end_bus);
		assert_int_equal(le32(c + 56), 0);
	}
}

/* Everything the checker reports equals the configuration. */
static void check_info(const struct acpi_info *in, const struct acpi_config *cfg,
		       const struct acpi_layout *l)
{
	assert_int_equal(in->rsdp, l->rsdp);
	assert_int_equal(in->rsdp_revision, 2);
	assert_string_equal(in->oem_id, "NUBIS ");
	assert_int_equal(in->xsdt, find_ref(l, "XSDT")->gpa);
	/* XSDT entries in order, then DSDT and FACS */
	static const char *const order_mcfg[] = {"FACP", "APIC", "MCFG", "DSDT", "FACS"};
	static const char *const order[] = {"FACP", "APIC", "DSDT", "FACS"};
	const char *const *want = cfg->ecam_base ? order_mcfg : order;
	unsigned nwant = cfg->ecam_base ? 5 : 4;
	assert_int_equal(in->ntables, nwant);
	for (unsigned i = 0; i < nwant; i++) {
		const struct acpi_table_ref *b = find_ref(l, want[i]);
		assert_string_equal(in->tables[i].sig, want[i]);
		assert_int_equal(in->tables[i].gpa, b->gpa);
		assert_int_equal(in->tables[i].len, b->len);
		assert_int_equal(in->tables[i].rev, b->rev);
	}
	assert_non_null(find_info_ref(in, "DSDT"));

	/* FADT */
	assert_true(in->have_fadt);
	assert_int_equal(in->fadt_minor, 4);
	uint32_t flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_SLP_BUTTON;
	if (!cfg->power_button)
		flags |= ACPI_FADT_PWR_BUTTON;
	if (cfg->reset_port)
		flags |= ACPI_FADT_RESET_REG_SUP;
	assert_int_equal(in->fadt_flags, flags);
	assert_false(in->fadt_flags & ACPI_FADT_HW_REDUCED);
	uint16_t boot = (cfg->legacy_devices ? ACPI_BOOT_LEGACY_DEVICES : 0) |
			(cfg->i8042 ? ACPI_BOOT_8042 : 0) | (cfg->vga ? 0 : ACPI_BOOT_NO_VGA) |
			(cfg->cmos_rtc ? 0 : ACPI_BOOT_NO_CMOS_RTC);
	assert_int_equal(in->boot_arch, boot);
	assert_int_equal(in->sci_irq, cfg->sci_irq);
	assert_int_equal(in->pm1a_evt, cfg->pm1a_evt_port);
	assert_int_equal(in->pm1a_cnt, cfg->pm1a_cnt_port);
	assert_int_equal(in->pm1_evt_len, 4);
	assert_int_equal(in->pm1_cnt_len, 2);
	assert_int_equal(in->pm_tmr, cfg->pm_tmr_port);
	assert_int_equal(in->pm_tmr_len, cfg->pm_tmr_port ? 4 : 0);
	assert_int_equal(in->gpe0, cfg->gpe0_port);
	assert_int_equal(in->gpe0_len, cfg->gpe0_len);
	assert_int_equal(in->have_reset, cfg->reset_port != 0);
	if (cfg->reset_port) {
		assert_int_equal(in->reset_space, 1);
		assert_int_equal(in->reset_addr, cfg->reset_port);
		assert_int_equal(in->reset_value, cfg->reset_value);
	}
	assert_int_equal(in->dsdt, find_ref(l, "DSDT")->gpa);
	assert_int_equal(in->facs, find_ref(l, "FACS")->gpa);

	/* DSDT, FACS */
	assert_true(in->have_dsdt);
	assert_true(in->have_s5);
	assert_int_equal(in->s5_slp_typ_a, cfg->s5_slp_typ);
	assert_int_equal(in->s5_slp_typ_b, cfg->s5_slp_typ);
	assert_int_equal(in->have_pci_root, cfg->pci_root);
	assert_int_equal(in->have_mb_res, cfg->ecam_base != 0);
	assert_true(in->have_facs);

	/* MADT */
	assert_true(in->have_madt);
	assert_int_equal(in->lapic_addr, cfg->lapic_addr);
	assert_int_equal(in->madt_flags, ACPI_MADT_PCAT_COMPAT);
	assert_int_equal(in->ncpus, cfg->ncpus);
	assert_int_equal(in->ncpus_enabled, cfg->ncpus);
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		assert_int_equal(in->cpu_uid[i], i);
		assert_int_equal(in->cpu_apic_id[i], i);
	}
	assert_int_equal(in->nioapic, 1);
	assert_int_equal(in->ioapic_id, cfg->ioapic_id);
	assert_int_equal(in->ioapic_addr, cfg->ioapic_addr);
	assert_int_equal(in->ioapic_gsi_base, 0);
	assert_int_equal(in->niso, 2);
	assert_int_equal(in->iso[0].bus, 0);
	assert_int_equal(in->iso[0].source, 0);
	assert_int_equal(in->iso[0].gsi, 2);
	assert_int_equal(in->iso[0].flags, 0);
	assert_int_equal(in->iso[1].source, cfg->sci_irq);
	assert_int_equal(in->iso[1].gsi, cfg->sci_irq);
	assert_int_equal(in->iso[1].flags, ACPI_IRQ_ACTIVE_HIGH | ACPI_IRQ_LEVEL);
	assert_int_equal(in->nlapic_nmi, 1);
	assert_int_equal(in->lapic_nmi_uid, 0xff);
	assert_int_equal(in->lapic_nmi_lint, 1);
	assert_int_equal(in->lapic_nmi_flags, 0);

	/* MCFG */
	assert_int_equal(in->have_mcfg, cfg->ecam_base != 0);
	if (cfg->ecam_base) {
		assert_int_equal(in->nmcfg, 1);
		assert_int_equal(in->ecam_base, cfg->ecam_base);
		assert_int_equal(in->ecam_segment, 0);
		assert_int_equal(in->ecam_start_bus, 0);
		assert_int_equal(in->ecam_end_bus, cfg->ecam_end_bus);
	}
}

static void roundtrip(struct mem *x, const struct acpi_config *cfg, gpa_t base,
		      struct acpi_layout *l)
{
	struct nb_error err = {0};
	if (acpi_build(&x->m, base, TBL_REGION, cfg, l, &err))
		fail_msg("acpi_build: %s", err.msg);
	check_layout_bytes(x, cfg, l, base);
	struct acpi_info info;
	expect_parse_ok(x, l->rsdp, &info);
	check_info(&info, cfg, l);
}

static void roundtrip_default(unsigned ncpus)
{
	struct mem x = mem_new(MEM_BASE, MEM_SIZE);
	struct acpi_config cfg;
	struct acpi_layout l;
	acpi_config_default(&cfg, ncpus);
	roundtrip(&x, &cfg, TBL_BASE, &l);
	print_message("acpi: %u vCPUs: %llu bytes\n", ncpus, (unsigned long long)l.size);
	mem_free(&x);
}

/* ------------------------------------------------------------ valid tables */

static void test_defaults(void **state)
{
	(void)state;
	struct acpi_config c;
	acpi_config_default(&c, 3);
	assert_int_equal(c.ncpus, 3);
	assert_int_equal(c.rsdp_gpa, 0);
	assert_int_equal(c.sci_irq, 9);
	assert_int_equal(c.pm1a_evt_port, 0x600);
	assert_int_equal(c.pm1a_cnt_port, 0x604);
	assert_int_equal(c.pm_tmr_port, 0);
	assert_int_equal(c.gpe0_port, 0);
	assert_int_equal(c.reset_port, 0xcf9);
	assert_int_equal(c.reset_value, 6);
	assert_true(c.power_button);
	assert_int_equal(c.s5_slp_typ, 5);
	assert_true(c.legacy_devices);
	assert_false(c.i8042);
	assert_false(c.vga);
	assert_false(c.cmos_rtc);
	assert_int_equal(c.lapic_addr, 0xfee00000u);
	assert_int_equal(c.ioapic_addr, 0xfec00000u);
	assert_int_equal(c.ioapic_id, 0);
	assert_int_equal(c.ecam_base, 0xb0000000u);
	assert_int_equal(c.ecam_end_bus, 0);
	assert_true(c.pci_root);
	assert_int_equal(c.pci_mmio32_base, 0xc0000000u);
	assert_int_equal(c.pci_mmio32_size, 0x3ec00000u);
	assert_int_equal(c.pci_mmio64_size, 0);
}

static void test_cpus_1(void **state)
{
	(void)state;
	roundtrip_default(1);
}

static void test_cpus_2(void **state)
{
	(void)state;
	roundtrip_default(2);
}

static void test_cpus_64(void **state)
{
	(void)state;
	roundtrip_default(64);
}

static void test_cpus_254(void **state)
{
	(void)state;
	roundtrip_default(254);
}

/* Every option away from its default. */
static void test_options(void **state)
{
	(void)state;
	struct mem x = mem_new(MEM_BASE, MEM_SIZE);
	struct acpi_config cfg;
	struct acpi_layout l;
	acpi_config_default(&cfg, 8);
	cfg.sci_irq = 10;
	cfg.pm1a_evt_port = 0xb000;
	cfg.pm1a_cnt_port = 0xb004;
	cfg.pm_tmr_port = 0xb008;
	cfg.gpe0_port = 0xafe0;
	cfg.gpe0_len = 16;
	cfg.reset_port = 0;
	cfg.power_button = false;
	cfg.s5_slp_typ = 7;
	cfg.legacy_devices = false;
	cfg.i8042 = true;
	cfg.vga = true;
	cfg.cmos_rtc = true;
	cfg.ioapic_id = 8;
	cfg.ecam_base = 0xe0000000u;
	cfg.ecam_end_bus = 255;
	cfg.pci_mmio32_size = 0x20000000u; /* up to the ECAM window */
	cfg.pci_mmio64_base = 0x8000000000ull;
	cfg.pci_mmio64_size = 0x4000000000ull;
	cfg.rsdp_gpa = 0xe0000;
	roundtrip(&x, &cfg, TBL_BASE, &l);
	assert_int_equal(l.rsdp, 0xe0000);
	assert_string_equal(l.tables[0].sig, "RSDP");
	assert_int_equal(l.tables[0].gpa, 0xe0000);
	assert_int_equal(find_ref(&l, "XSDT")->gpa, TBL_BASE); /* the region starts with the XSDT */
	const uint8_t *f = at(&x, find_ref(&l, "FACP")->gpa, 276);
	assert_int_equal(f[108], 0x32); /* CENTURY with a CMOS RTC */
	mem_free(&x);

	/* no MCFG, no PCI root: the DSDT holds only \_S5, encoded with ZeroOp */
	x = mem_new(MEM_BASE, MEM_SIZE);
	acpi_config_default(&cfg, 1);
	cfg.ecam_base = 0;
	cfg.pci_root = false;
	cfg.s5_slp_typ = 0;
	roundtrip(&x, &cfg, TBL_BASE, &l);
	const struct acpi_table_ref *d = find_ref(&l, "DSDT");
	static const uint8_t s5_zero[] = {0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0, 0, 0, 0};
	assert_int_equal(d->len, 36 + sizeof(s5_zero));
	assert_memory_equal(at(&x, d->gpa + 36, sizeof(s5_zero)), s5_zero, sizeof(s5_zero));
	mem_free(&x);

	/* ECAM but no root bridge; SLP_TYP 1 is OneOp */
	x = mem_new(MEM_BASE, MEM_SIZE);
	acpi_config_default(&cfg, 2);
	cfg.pci_root = false;
	cfg.s5_slp_typ = 1;
	roundtrip(&x, &cfg, TBL_BASE, &l);
	mem_free(&x);
}

/* The AML, byte for byte where it is fixed. */
static bool contains(const uint8_t *h, size_t hl, const uint8_t *n, size_t nl)
{
	for (size_t i = 0; i + nl <= hl; i++)
		if (!memcmp(h + i, n, nl))
			return true;
	return false;
}

static void test_dsdt_bytes(void **state)
{
	(void)state;
	struct mem x = mem_new(MEM_BASE, MEM_SIZE);
	struct acpi_config cfg;
	struct acpi_layout l;
	acpi_config_default(&cfg, 1);
	roundtrip(&x, &cfg, TBL_BASE, &l);
	const struct acpi_table_ref *d = find_ref(&l, "DSDT");
	const uint8_t *a = at(&x, d->gpa, d->len);
	/* Name (_S5, Package (4) {5, 5, 0, 0}) */
	static const uint8_t s5[] = {0x08, '_',	 'S',  '5',  '_',  0x12, 0x08,
				     0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};
	assert_memory_equal(a + 36, s5, sizeof(s5));
	/* Scope (\_SB) with a 2-byte PkgLength covering the rest of the table */
	const uint8_t *sc = a + 36 + sizeof(s5);
	assert_int_equal(sc[0], 0x10);
	assert_int_equal(sc[1] >> 6, 1);
	uint32_t pkglen = (uint32_t)(sc[1] & 0x0f) | (uint32_t)sc[2] << 4;
	assert_int_equal(1 + pkglen, d->len - 36 - sizeof(s5));
	assert_memory_equal(sc + 3, "\\_SB_", 5);
	/* Device (PCI0) */
	assert_int_equal(sc[8], 0x5b);
	assert_int_equal(sc[9], 0x82);
	static const uint8_t hid[] = {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08};
	static const uint8_t cid[] = {0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
	static const uint8_t mb[] = {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x02};
	static const uint8_t seg[] = {0x08, '_', 'S', 'E', 'G', 0x00};
	static const uint8_t cfgio[] = {0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08};
	/* WordBusNumber 0..0 */
	static const uint8_t bus[] = {0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0,
				      0,    0,	  0,	0,    0,    0,	  1, 0};
	/* WordIO 0x0d00..0xffff */
	static const uint8_t io_hi[] = {0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0,	  0,
					0x00, 0x0d, 0xff, 0xff, 0,    0,    0x00, 0xf3};
	/* DWordMemory 0xc0000000..0xfebfffff */
	static const uint8_t mmio[] = {0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0,	 0,    0,
				       0,    0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xbf, 0xfe,
				       0,    0,	   0,	 0,    0x00, 0x00, 0xc0, 0x3e};
	/* the ECAM reservation: QWordMemory consumer, 0xb0000000 + 1 MiB */
	static const uint8_t ecam[] = {
	    0x8a, 0x2b, 0x00,			 /* QWord address space, 43 bytes */
	    0x00, 0x0d, 0x01,			 /* memory, consumer + fixed, RW non-cacheable */
	    0,	  0,	0,    0,    0, 0, 0, 0,	 /* granularity */
	    0x00, 0x00, 0x00, 0xb0, 0, 0, 0, 0,	 /* min 0xb0000000 */
	    0xff, 0xff, 0x0f, 0xb0, 0, 0, 0, 0,	 /* max 0xb00fffff */
	    0,	  0,	0,    0,    0, 0, 0, 0,	 /* translation */
	    0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0}; /* length 1 MiB */
	assert_true(contains(a, d->len, (const uint8_t *)"PCI0", 4));
	assert_true(contains(a, d->len, (const uint8_t *)"ECAM", 4));
	assert_true(contains(a, d->len, hid, sizeof(hid)));
	assert_true(contains(a, d->len, cid, sizeof(cid)));
	assert_true(contains(a, d->len, mb, sizeof(mb)));
	assert_true(contains(a, d->len, seg, sizeof(seg)));
	assert_true(contains(a, d->len, cfgio, sizeof(cfgio)));
	assert_true(contains(a, d->len, bus, sizeof(bus)));
	assert_true(contains(a, d->len, io_hi, sizeof(io_hi)));
	assert_true(contains(a, d->len, mmio, sizeof(mmio)));
	assert_true(contains(a, d->len, ecam, sizeof(ecam)));
	/* the table ends with the ECAM template's End Tag */
	assert_int_equal(a[d->len - 2], 0x79);
	assert_int_equal(a[d->len - 1], 0x00);
	mem_free(&x);
}

static void test_checksum(void **state)
{
	(void)state;
	static const uint8_t b[] = {0x10, 0x20, 0xd0};
	assert_int_equal(acpi_checksum(b, 0), 0);
	assert_int_equal(acpi_checksum(b, 2), 0x30);
	assert_int_equal(acpi_checksum(b, 3), 0x00);
}

/* ------------------------------------------------------------ bad configuration */

static void expect_build_fail(const struct acpi_config *cfg, gpa_t base, uint64_t region,
			      const char *needle)
{
	struct mem x = mem_new(MEM_BASE, MEM_SIZE);
	struct nb_error err = {0};
	struct acpi_layout l;
	if (acpi_build(&x.m, base, region, cfg, &l, &err) != -1)
		fail_msg("acpi_build accepted a config that should fail with \"%s\"", needle);
	assert_int_equal(err.code, NB_EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", err.msg, needle);
	/* nothing was written */
	for (uint64_t i = 0; i < MEM_SIZE; i++)
		if (x.buf[i] != FILL)
			fail_msg("failed build wrote guest memory at %#llx", (unsigned long long)i);
	mem_free(&x);
}

static void test_region_too_small(void **state)
{
	(void)state;
	struct acpi_config cfg;
	struct nb_error err;
	uint64_t size;
	for (unsigned n = 1; n <= ACPI_MAX_CPUS; n += 253) {
		acpi_config_default(&cfg, n);
		assert_int_equal(acpi_size(&cfg, &size, &err), 0);
		expect_build_fail(&cfg, TBL_BASE, size - 1, "need");
		expect_build_fail(&cfg, TBL_BASE, 0, "need");
		/* exactly enough works */
		struct mem x = mem_new(MEM_BASE, MEM_SIZE);
		struct acpi_layout l;
		assert_int_equal(acpi_build(&x.m, TBL_BASE, size, &cfg, &l, &err), 0);
		assert_int_equal(l.size, size);
		mem_free(&x);
	}
	/* the region runs past guest memory; it starts outside; it overflows */
	acpi_config_default(&cfg, 4);
	expect_build_fail(&cfg, MEM_SIZE - 256, TBL_REGION, "outside guest memory");
	expect_build_fail(&cfg, MEM_SIZE + 0x1000, TBL_REGION, "outside guest memory");
	expect_build_fail(&cfg, UINT64_MAX - 63, TBL_REGION, "outside guest memory");
	/* the base must allow the FACS its 64-byte alignment */
	expect_build_fail(&cfg, TBL_BASE + 16, TBL_REGION, "aligned");
	/* the worst case still fits ACPI_MAX_SIZE */
	acpi_config_default(&cfg, ACPI_MAX_CPUS);
	cfg.pci_mmio64_base = 1ull << 40;
	cfg.pci_mmio64_size = 1ull << 38;
	cfg.pm_tmr_port = 0x608;
	cfg.gpe0_port = 0x620;
	cfg.gpe0_len = 30;
	assert_int_equal(acpi_size(&cfg, &size, &err), 0);
	assert_true(size <= ACPI_MAX_SIZE);
}

static void test_ncpus_range(void **state)
{
	(void)state;
	struct acpi_config cfg;
	struct nb_error err = {0};
	uint64_t size;
	unsigned bad[] = {0, 255, 256, 1000, UINT32_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		acpi_config_default(&cfg, bad[i]);
		expect_build_fail(&cfg, TBL_BASE, TBL_REGION, "ncpus");
		assert_int_equal(acpi_size(&cfg, &size, &err), -1);
		assert_int_equal(err.code, NB_EINVAL);
		assert_non_null(strstr(err.msg, "x2APIC"));
	}
	acpi_config_default(&cfg, 254);
	assert_int_equal(acpi_size(&cfg, &size, &err), 0);
}

static void test_config_errors(void **state)
{
	(void)state;
	struct acpi_config c;
#define BAD(stmt, needle)                                                                          \
	do {                                                                                       \
		acpi_config_default(&c, 2);                                                        \
		stmt;                                                                              \
		expect_build_fail(&c, TBL_BASE, TBL_REGION, needle);                               \
	} while (0)
	BAD(c.sci_irq = 0, "sci_irq 0");
	BAD(c.sci_irq = 2, "sci_irq 2");
	BAD(c.sci_irq = 16, "sci_irq 16");
	BAD(c.pm1a_evt_port = 0, "pm1a_evt_port");
	BAD(c.pm1a_cnt_port = 0, "pm1a_cnt_port");
	BAD(c.pm1a_cnt_port = 0x602, "overlaps pm1a_evt_port");
	BAD(c.pm_tmr_port = 0x603, "pm_tmr_port 0x603 (4 bytes) overlaps");
	BAD(c.reset_port = 0x605, "reset_port 0x605 (1 bytes) overlaps pm1a_cnt_port");
	BAD(c.pm1a_evt_port = 0xfffe, "runs past");
	BAD((c.gpe0_port = 0x620, c.gpe0_len = 3), "gpe0_len 3");
	BAD((c.gpe0_port = 0x620, c.gpe0_len = 32), "gpe0_len 32");
	BAD((c.gpe0_port = 0x620, c.gpe0_len = 0), "gpe0_len 0");
	BAD(c.gpe0_len = 4, "without gpe0_port");
	BAD(c.s5_slp_typ = 8, "s5_slp_typ 8");
	BAD(c.lapic_addr = 0xfee00010u, "lapic_addr");
	BAD(c.ioapic_addr = 0, "ioapic_addr");
	BAD(c.ioapic_id = 0xff, "ioapic_id");
	BAD(c.ecam_base = 0xb0080000u, "ecam_base");
	BAD((c.ecam_base = UINT64_MAX - 0xfffff, c.ecam_end_bus = 1), "overflows");
	BAD(c.pci_mmio32_size = 0x40000001u, "past 4 GiB");
	BAD((c.pci_mmio64_base = UINT64_MAX - 0xfff, c.pci_mmio64_size = 0x2000), "pci_mmio64");
	BAD(c.ecam_base = 0xc0000000u, "overlaps a PCI MMIO window");
	BAD((c.pci_mmio64_base = 0xb0000000u - 0x1000, c.pci_mmio64_size = 0x2000),
	    "overlaps a PCI MMIO window");
	BAD(c.rsdp_gpa = 0xe0008, "rsdp_gpa 0xe0008 is not 16-byte aligned");
	BAD(c.rsdp_gpa = TBL_BASE + 0x100, "overlaps the table region");
	BAD(c.rsdp_gpa = TBL_BASE - 16, "overlaps the table region");
	BAD(c.rsdp_gpa = MEM_SIZE - 16, "rsdp_gpa");
#undef BAD
	/* just outside the region is fine */
	struct mem x = mem_new(MEM_BASE, MEM_SIZE);
	struct nb_error err;
	acpi_config_default(&c, 2);
	c.rsdp_gpa = TBL_BASE - 48;
	assert_int_equal(acpi_build(&x.m, TBL_BASE, TBL_REGION, &c, NULL, &err), 0);
	struct acpi_info info;
	expect_parse_ok(&x, c.rsdp_gpa, &info);
	mem_free(&x);
}

/* ------------------------------------------------------------ finding the RSDP */

static void test_find_rsdp(void **state)
{
	(void)state;
	struct acpi_config cfg;
	struct acpi_layout l;
	struct nb_error err = {0};
	gpa_t rsdp = 0;

	struct mem x = mem_new(MEM_BASE, MEM_SIZE);
	assert_int_equal(acpi_find_rsdp(&x.m, &rsdp, &err), -1);
	assert_int_equal(err.code, NB_ENOENT);

	/* in the BIOS area, behind a decoy with a bad checksum */
	acpi_config_default(&cfg, 2);
	cfg.rsdp_gpa = 0xe0000;
	assert_int_equal(acpi_build(&x.m, TBL_BASE, TBL_REGION, &cfg, &l, &err), 0);
	memcpy(x.buf + 0xe0030, x.buf + 0xe0000, 36);
	x.buf[0xe0000 + 8] ^= 1;
	assert_int_equal(acpi_find_rsdp(&x.m, &rsdp, &err), 0);
	assert_int_equal(rsdp, 0xe0030);
	struct acpi_info info;
	expect_parse_ok(&x, rsdp, &info);
	assert_int_equal(info.ncpus, 2);
	mem_free(&x);

	/* in the EBDA (segment at 0x40e) */
	x = mem_new(MEM_BASE, MEM_SIZE);
	x.buf[0x40e] = 0xc0;
	x.buf[0x40f] = 0x9f;
	cfg.rsdp_gpa = 0x9fc00 + 0x100;
	assert_int_equal(acpi_build(&x.m, TBL_BASE, TBL_REGION, &cfg, &l, &err), 0);
	assert_int_equal(acpi_find_rsdp(&x.m, &rsdp, &err), 0);
	assert_int_equal(rsdp, 0x9fd00);
	mem_free(&x);

	/* guest memory that does not reach the BIOS area */
	x = mem_new(0x100000, 0x10000);
	assert_int_equal(acpi_find_rsdp(&x.m, &rsdp, &err), -1);
	mem_free(&x);
}

/* ------------------------------------------------------------ corruption */

static void check_every_byte(unsigned ncpus)
{
	struct mem x = mem_new(MEM_BASE, MEM_SIZE);
	struct acpi_config cfg;
	struct acpi_layout l;
	struct nb_error err;
	acpi_config_default(&cfg, ncpus);
	cfg.pm_tmr_port = 0x608;
	assert_int_equal(acpi_build(&x.m, TBL_BASE, TBL_REGION, &cfg, &l, &err), 0);
	static const uint8_t deltas[] = {0x01, 0x80, 0xff, 0x5a};
	unsigned tried = 0;
	for (unsigned t = 0; t < l.ntables; t++) {
		const struct acpi_table_ref *r = &l.tables[t];
		bool facs = !strcmp(r->sig, "FACS");
		for (uint32_t off = 0; off < r->len; off++) {
			/* the FACS has no checksum; its run-time fields (hardware signature,
			 * waking vectors, global lock, flag bits the OS or platform own) are
			 * not checked — every other byte is */
			if (facs && ((off >= 8 && off < 32) || (off >= 36 && off < 40)))
				continue;
			uint8_t *p = x.buf + (r->gpa - MEM_BASE) + off;
			for (unsigned d = 0; d < sizeof(deltas); d++) {
				*p ^= deltas[d];
				char what[64];
				snprintf(what, sizeof(what), "%s byte %u ^ %#x", r->sig, off,
					 deltas[d]);
				expect_parse_fail(&x, l.rsdp, what);
				*p ^= deltas[d];
				tried++;
			}
		}
	}
	/* the FACS's reserved flag bits */
	uint8_t *facs = x.buf + (find_ref(&l, "FACS")->gpa - MEM_BASE);
	facs[20] ^= 0x04;
	expect_parse_fail(&x, l.rsdp, "FACS flags bit 2");
	facs[20] ^= 0x04;
	facs[36] ^= 0x02;
	expect_parse_fail(&x, l.rsdp, "FACS OSPM flags bit 1");
	facs[36] ^= 0x02;
	struct acpi_info info;
	expect_parse_ok(&x, l.rsdp, &info);
	check_info(&info, &cfg, &l);
	print_message("acpi: %u vCPUs: %u single-byte corruptions all noticed\n", ncpus, tried);
	mem_free(&x);
}

static void test_corrupt_every_byte(void **state)
{
	(void)state;
	check_every_byte(1);
	check_every_byte(5);
	check_every_byte(254);
}

/* ------------------------------------------------------------ mutation loop */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the checksums of the tables (at their built addresses, over the length each now
 * claims, when that stays in memory), so that mutations reach the structure checks. */
static void refix(struct mem *x, const struct acpi_layout *l)
{
	for (unsigned t = 0; t < l->ntables; t++) {
		const struct acpi_table_ref *r = &l->tables[t];
		uint8_t *p = x->buf + (r->gpa - x->m.r[0].base);
		uint64_t room = x->m.r[0].size - (r->gpa - x->m.r[0].base);
		if (!strcmp(r->sig, "FACS"))
			continue;
		if (!strcmp(r->sig, "RSDP")) {
			p[8] = 0;
			p[8] = (uint8_t)(0x100 - acpi_checksum(p, 20));
			p[32] = 0;
			p[32] = (uint8_t)(0x100 - acpi_checksum(p, 36));
			continue;
		}
		uint32_t len = le32(p + 4);
		if (len < 10 || len > room)
			continue;
		p[9] = 0;
		p[9] = (uint8_t)(0x100 - acpi_checksum(p, len));
	}
}

static uint64_t interesting_gpa(const struct mem *x, const struct acpi_layout *l)
{
	uint64_t end = gmem_end(&x->m);
	switch (rnd() % 10) {
	case 0:
		return 0;
	case 1:
		return x->m.r[0].base - 1;
	case 2:
		return end - 36;
	case 3:
		return end - 35;
	case 4:
		return end;
	case 5:
		return UINT64_MAX - (rnd() % 64);
	case 6:
		return l->tables[rnd() % l->ntables].gpa;
	case 7:
		return l->tables[rnd() % l->ntables].gpa + rnd() % 64;
	case 8:
		return x->m.r[0].base + rnd() % x->m.r[0].size;
	default:
		return rnd();
	}
}

static uint32_t interesting_len(uint32_t len)
{
	static const uint32_t v[] = {0,
				     1,
				     2,
				     35,
				     36,
				     37,
				     43,
				     44,
				     45,
				     59,
				     60,
				     61,
				     243,
				     244,
				     275,
				     276,
				     0x7fffffff,
				     0x80000000u,
				     0xffffffffu,
				     ACPI_MAX_TABLE_LEN,
				     ACPI_MAX_TABLE_LEN + 1};
	switch (rnd() % 3) {
	case 0:
		return v[rnd() % (sizeof(v) / sizeof(v[0]))];
	case 1:
		return len + (uint32_t)(rnd() % 17) - 8;
	default:
		return (uint32_t)rnd();
	}
}

static void mutate(struct mem *x, const struct acpi_layout *l)
{
	const struct acpi_table_ref *r = &l->tables[rnd() % l->ntables];
	uint8_t *p = x->buf + (r->gpa - x->m.r[0].base);
	unsigned n = 1 + (unsigned)(rnd() % 4);
	for (unsigned k = 0; k < n; k++) {
		switch (rnd() % 8) {
		case 0:
		case 1:
		case 2: /* random bytes anywhere in the tables */
		{
			uint64_t off = l->base - x->m.r[0].base + rnd() % l->size;
			unsigned cnt = 1 + (unsigned)(rnd() % 8);
			for (unsigned i = 0; i < cnt && off + i < x->m.r[0].size; i++)
				x->buf[off + i] = (uint8_t)rnd();
			break;
		}
		case 3: /* bytes of one table, often with small values or opcodes */
		{
			uint32_t off = (uint32_t)(rnd() % r->len);
			static const uint8_t v[] = {0x00, 0x01, 0x02, 0x08, 0x0a, 0x0b, 0x0c, 0x0d,
						    0x0e, 0x10, 0x11, 0x12, 0x2e, 0x2f, 0x3f, 0x40,
						    0x5b, 0x5c, 0x5e, 0x79, 0x7f, 0x80, 0x82, 0x87,
						    0x88, 0x8a, 0xbf, 0xc0, 0xff};
			p[off] = rnd() % 2 ? v[rnd() % sizeof(v)] : (uint8_t)rnd();
			break;
		}
		case 4: /* a table's length */
			if (strcmp(r->sig, "RSDP"))
				put_le32(p + 4, interesting_len(r->len));
			else
				put_le32(p + 20, interesting_len(36));
			break;
		case 5: /* a pointer: RSDP->XSDT, XSDT entries, FADT->DSDT/FACS */
			if (!strcmp(r->sig, "RSDP")) {
				put_le64(p + 24, interesting_gpa(x, l));
			} else if (!strcmp(r->sig, "XSDT")) {
				put_le64(p + 36 + 8 * (rnd() % ((r->len - 36) / 8)),
					 interesting_gpa(x, l));
			} else if (!strcmp(r->sig, "FACP")) {
				static const unsigned offs[] = {36, 40, 132, 140};
				unsigned o = offs[rnd() % 4];
				uint64_t g = interesting_gpa(x, l);
				if (o < 132)
					put_le32(p + o, (uint32_t)g);
				else
					put_le64(p + o, g);
			}
			break;
		case 6: /* a MADT entry's type or length */
			if (!strcmp(r->sig, "APIC")) {
				uint32_t e = 44 + 8 * (uint32_t)(rnd() % ((r->len - 44) / 8));
				p[e + rnd() % 2] = (uint8_t)(rnd() % 3 ? rnd() % 16 : rnd());
			}
			break;
		default: /* a PkgLength-ish byte in the DSDT */
			if (!strcmp(r->sig, "DSDT")) {
				uint32_t off = 36 + (uint32_t)(rnd() % (r->len - 36));
				p[off] = (uint8_t)(rnd() % 2 ? p[off] ^ (1u << (rnd() % 8))
							     : rnd() % 0x50);
			}
			break;
		}
	}
	if (rnd() % 4)
		refix(x, l);
}

static void mutation_loop(unsigned ncpus, unsigned iters, unsigned *acc, unsigned *rej)
{
	struct acpi_config cfg;
	struct acpi_layout l;
	struct nb_error err;
	uint64_t size;
	acpi_config_default(&cfg, ncpus);
	cfg.pm_tmr_port = 0x608;
	cfg.pci_mmio64_base = 1ull << 40;
	cfg.pci_mmio64_size = 1ull << 36;
	assert_int_equal(acpi_size(&cfg, &size, &err), 0);
	/* the tables end exactly where guest memory ends */
	gpa_t mbase = 0x100000, tbase = mbase + 0x40;
	struct mem x = mem_new(mbase, 0x40 + size);
	assert_int_equal(acpi_build(&x.m, tbase, size, &cfg, &l, &err), 0);
	uint8_t *pristine = malloc(x.m.r[0].size);
	assert_non_null(pristine);
	memcpy(pristine, x.buf, x.m.r[0].size);
	for (unsigned it = 0; it < iters; it++) {
		memcpy(x.buf, pristine, x.m.r[0].size);
		mutate(&x, &l);
		struct acpi_info info;
		memset(&err, 0, sizeof(err));
		int rc = acpi_parse_check(&x.m, l.rsdp, &info, &err);
		if (rc == 0) {
			(*acc)++;
			assert_true(info.ntables <= ACPI_MAX_TABLES);
			assert_true(info.ncpus <= 256);
			assert_true(info.niso <= 16);
			assert_true(info.ncpus_enabled <= info.ncpus);
			if (info.have_s5)
				assert_true(info.s5_slp_typ_a <= 7 && info.s5_slp_typ_b <= 7);
		} else {
			assert_int_equal(rc, -1);
			(*rej)++;
			assert_true(err.code == NB_EFORMAT);
			assert_true(err.msg[0] != 0);
			assert_non_null(memchr(err.msg, 0, sizeof(err.msg)));
		}
	}
	free(pristine);
	mem_free(&x);
}

static void test_mutation_loop(void **state)
{
	(void)state;
	unsigned acc = 0, rej = 0, iters = 0;
	static const unsigned cpus[] = {1, 2, 64, 254};
	for (unsigned i = 0; i < 4; i++) {
		mutation_loop(cpus[i], 20000, &acc, &rej);
		iters += 20000;
	}
	print_message("acpi mutation loop: %u accepted, %u rejected\n", acc, rej);
	/* the loop must exercise both outcomes to mean anything */
	assert_true(acc > iters / 20);
	assert_true(rej > iters / 4);

	/* garbage behind a valid RSDP: random XSDT entries pointing at random bytes */
	struct mem x = mem_new(0x100000, 0x2000);
	for (unsigned it = 0; it < 2000; it++) {
		for (size_t i = 0; i < x.m.r[0].size; i++)
			x.buf[i] = (uint8_t)rnd();
		uint8_t *r = x.buf;
		memcpy(r, "RSD PTR ", 8);
		r[15] = 2;
		put_le32(r + 20, 36);
		put_le64(r + 24, 0x100040);
		uint8_t *t = x.buf + 0x40;
		memcpy(t, "XSDT", 4);
		uint32_t n = (uint32_t)(rnd() % 8);
		put_le32(t + 4, 36 + 8 * n);
		for (uint32_t k = 0; k < n; k++) {
			uint64_t g = 0x100000 + 0x100 + rnd() % (x.m.r[0].size - 0x100);
			put_le64(t + 36 + 8 * k, g);
			uint8_t *h = x.buf + (g - 0x100000);
			static const char *const sigs[] = {"FACP", "APIC", "MCFG", "SSDT"};
			if (g + 8 <= 0x100000 + x.m.r[0].size) {
				memcpy(h, sigs[rnd() % 4], 4);
				put_le32(h + 4, (uint32_t)(36 + rnd() % 512));
			}
		}
		struct acpi_layout l = {.base = 0x100000, .size = x.m.r[0].size, .ntables = 2};
		strcpy(l.tables[0].sig, "RSDP");
		l.tables[0].gpa = 0x100000;
		l.tables[0].len = 36;
		strcpy(l.tables[1].sig, "XSDT");
		l.tables[1].gpa = 0x100040;
		refix(&x, &l);
		struct acpi_info info;
		struct nb_error err;
		(void)acpi_parse_check(&x.m, 0x100000, &info, &err);
	}
	mem_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_cpus_1),
	    cmocka_unit_test(test_cpus_2),
	    cmocka_unit_test(test_cpus_64),
	    cmocka_unit_test(test_cpus_254),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_dsdt_bytes),
	    cmocka_unit_test(test_checksum),
	    cmocka_unit_test(test_region_too_small),
	    cmocka_unit_test(test_ncpus_range),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_find_rsdp),
	    cmocka_unit_test(test_corrupt_every_byte),
	    cmocka_unit_test(test_mutation_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
