/* SPDX-License-Identifier: MIT */
/*
 * The tiny guest: a bzImage that is not Linux, for fast boot tests of
 * nubis-vmm. Entered by head.S in long mode with the zero page, it writes on
 * the 16550 UART at 0x3f8:
 *
 *   nubis tiny guest: hello
 *   cmdline: <the command line, bytes outside 0x20-0x7e as '?'>
 *   e820: <entries> entries, RAM <sum of the type-1 entries, in MiB, rounded down> MiB
 *   acpi: FADT ok, PM1a_CNT=0x<port, hex>
 *   cpus: <enabled Processor Local APIC (and x2APIC) entries in the MADT>
 *   mcfg: ECAM 0x<base> buses <start>-<end>, <check>   (only if the XSDT has an MCFG)
 *          check: "reserved in e820", or "error: overlaps RAM" / "error: not reserved"
 *   cpuid: hypervisor "<CPUID 0x40000000 EBX ECX EDX>", features 0x<0x40000001 EAX>
 *          (KVM: "KVMKVMKVM"; bit 3 of the features is kvmclock)
 *   msr: MTRRdefType 0x<v> MISC_ENABLE 0x<v> LSTAR 0x<v> FCW 0x<x87 control word>
 *          (with tiny.state: the state the monitor set up — nubis-vmm: write-back default
 *          type enabled, fast strings, 0, 0x37f)
 *
 * and, after the e820 line, when the map has RAM above 4 GiB:
 *   high: wrote and read back 0x<address of the last byte of the highest RAM entry>
 * (it maps that address itself, with a spare page directory, if the page tables it was
 * given do not cover it).
 *
 * Booted through PVH (tiny-pvh.elf: pvh.S), it reads the hvm_start_info instead of a zero
 * page and first prints
 *   pvh: start_info magic 0x<magic>, version <n>, memmap <entries> entries, modules <n>
 * (a wrong magic ends it there: "pvh: error magic").
 *
 * then powers off: SLP_TYP from the DSDT's \_S5 package (5 if it has none)
 * and SLP_EN written to PM1a_CNT with a 16-bit out, or, on a hardware-reduced
 * FADT without PM1a_CNT (QEMU microvm), to the sleep control register. If the
 * machine is still running after that, or on any error in the ACPI tables
 * (printed as "acpi: error <table> <what>"), it halts with interrupts off for
 * good: the monitor's timeout or kill ends it.
 *
 * Words on the command line change the end:
 *   tiny.echo    print "echo: ready", then copy every received byte back to
 *                the UART until a 'q' arrives; then power off
 *   tiny.halt    halt instead of powering off
 *   tiny.reboot  reset through the FADT reset register instead ("acpi: error
 *                FACP no reset register" and halt if it has none)
 *   tiny.state   print the "msr:" line (above)
 *   tiny.poke    first access what no device claims: POKE_COUNT writes and reads of I/O
 *                port 0x3e0 and of the address 0xd0000000 in the PCI hole, printing
 *                "poke: port 0x<last value read> mmio 0x<last value read>"
 *
 * ACPI: the RSDP from boot_params.acpi_rsdp_addr, or, when that is 0, the
 * BIOS areas (EBDA, 0xE0000-0xFFFFF); the XSDT, or the RSDT of an RSDP of
 * revision < 2. Every table used is checked: signature, length and checksum
 * (the RSDP's 20-byte one and, from revision 2, the extended one). Tables
 * must lie below 4 GiB, which the monitor identity-maps.
 *
 * Cost: on hosts where the guest kernel's instructions are emulated one by one
 * (kvm_pvm: ~250 ns each) every instruction counts, and every port access is
 * an exit to the monitor (~20 us there, measured as the cost of one more
 * command-line character). So checksums add 8 bytes per step, the UART's
 * LSR is read once per 16 bytes (the FIFO is enabled), and the DSDT search
 * stops at the first \_S5 (nubis puts it first). On nubis-vmm, with a short
 * command line, a run is about 140 exits (counted with strace) and some 4,000
 * instructions (from a one-instruction-per-block QEMU trace, less the
 * BIOS-area RSDP search and QEMU's large DSDT, which nubis-vmm spares it).
 *
 * Only general-purpose integer instructions (-mgeneral-regs-only); no file-
 * scope state; position independent (-fpie, checked by build.sh).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 16550 registers */
#define COM1	 0x3f8
#define UART_RBR 0
#define UART_THR 0
#define UART_FCR 2
#define UART_IIR 2
#define UART_LSR 5
#define LSR_DR	 0x01
#define LSR_THRE 0x20
#define FIFO_LEN 16
#define POLL_MAX 100000 /* LSR reads before writing anyway */

/* boot_params (the zero page) */
#define ZP_ACPI_RSDP	0x070
#define ZP_EXT_CMD_LINE 0x0c8
#define ZP_E820_ENTRIES 0x1e8
#define ZP_CMD_LINE_PTR 0x228
#define ZP_E820_TABLE	0x2d0
#define E820_MAX	128
#define E820_ENTRY_SIZE 20
#define E820_RAM	1
#define CMDLINE_MAX	2047 /* the header's cmdline_size */
#define BIOS_EBDA_SEG	0x40e
#define BIOS_AREA	0xe0000
#define BIOS_AREA_END	0x100000
#define MAPPED_END	0x100000000ull /* the monitor identity-maps at least this */
#define HIGH_START	0x100000000ull /* RAM above the 32-bit hole */
#define PVH_MARK	0x4856504e     /* pvh.S: "NPVH" at +0 of its zero page, +8 start info */
#define PVH_MAGIC	0x336ec578u
#define SI_VERSION	4 /* hvm_start_info */
#define SI_NR_MODULES	12
#define SI_CMDLINE	24
#define SI_RSDP		32
#define SI_MEMMAP	40
#define SI_MEMMAP_N	48
#define PVH_ENTRY_SIZE	24
#define POKE_PORT	0x3e0
#define POKE_MMIO	0xd0000000ull
#define POKE_COUNT	40

/* ACPI */
#define SIG4(a, b, c, d)                                                                           \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define RSDP_SIG	  0x2052545020445352ull /* "RSD PTR " */
#define SIG_XSDT	  SIG4('X', 'S', 'D', 'T')
#define SIG_RSDT	  SIG4('R', 'S', 'D', 'T')
#define SIG_FACP	  SIG4('F', 'A', 'C', 'P')
#define SIG_APIC	  SIG4('A', 'P', 'I', 'C')
#define SIG_MCFG	  SIG4('M', 'C', 'F', 'G')
#define MCFG_ALLOC	  44 /* first allocation: base u64, segment u16, start bus, end bus */
#define MCFG_MIN	  (MCFG_ALLOC + 16)
#define E820_RESERVED	  2
#define SIG_DSDT	  SIG4('D', 'S', 'D', 'T')
#define SIG_S5		  SIG4('_', 'S', '5', '_')
#define SDT_HDR		  36
#define SDT_MAX		  0x100000u
#define FADT_MIN	  116 /* ACPI 1.0: through FLAGS */
#define FADT_DSDT	  40
#define FADT_PM1A_CNT	  64
#define FADT_FLAGS	  112
#define FADT_RESET_REG	  116 /* GAS: space, width, offset, size, address */
#define FADT_RESET_VAL	  128
#define FADT_X_DSDT	  140
#define FADT_X_PM1A_CNT	  172
#define FADT_SLEEP_CTL	  244
#define FADT_RESET_SUP	  (1u << 10)
#define GAS_MEM		  0
#define GAS_IO		  1
#define MADT_ENTRIES	  44
#define MADT_LAPIC	  0
#define MADT_X2APIC	  9
#define SLP_TYP_DEFAULT	  5
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_EN	  (1u << 13)
#define SLEEP_TYP_SHIFT	  2 /* sleep control register */
#define SLEEP_EN	  (1u << 5)
#define AML_NAME	  0x08
#define AML_ROOT	  0x5c
#define AML_PACKAGE	  0x12
#define AML_ZERO	  0x00
#define AML_ONE		  0x01
#define AML_BYTE	  0x0a

enum end_mode { END_POWEROFF, END_HALT, END_REBOOT };
enum { WANT_POKE = 1, WANT_STATE = 2 }; /* tiny.poke, tiny.state */

/* Where the boot information is: from a zero page or from a PVH start info. */
struct bootinfo {
	uint64_t cmdline; /* 0: none */
	uint64_t rsdp;	  /* 0: search the BIOS areas */
	uint64_t e820;	  /* table: addr u64, size u64, type u32 at +16 ... */
	unsigned e820_n, e820_stride;
};

/* A spare page directory (head.S, in the bss). */
extern uint64_t tiny_spare_pd[512] __attribute__((visibility("hidden")));

struct uart {
	unsigned room; /* bytes the transmit FIFO takes before LSR must be polled again */
	unsigned fifo; /* its size: 16, or 1 without a FIFO */
};

/* What the ACPI walk found. */
struct acpi {
	uint32_t pm1a_cnt;   /* I/O port, 0 if none */
	uint8_t sleep_space; /* hardware-reduced sleep control register, if sleep_addr */
	uint64_t sleep_addr;
	uint8_t slp_typ; /* S5 */
	bool reset;	 /* FADT reset register usable (system I/O or memory) */
	uint8_t reset_space, reset_val;
	uint64_t reset_addr;
	uint64_t madt; /* its address, 0 if the XSDT has none */
	uint64_t mcfg; /* likewise */
	unsigned cpus;
	uint32_t err_sig; /* on error: the table (0: none) ... */
	const char *err;  /* ... and what is wrong */
};

/* Unaligned little-endian loads from guest memory. */
struct u16p {
	uint16_t v;
} __attribute__((packed, may_alias));
struct u32p {
	uint32_t v;
} __attribute__((packed, may_alias));
struct u64p {
	uint64_t v;
} __attribute__((packed, may_alias));

/* A guest-physical address as a pointer. The empty asm hides constant addresses (the BIOS
 * areas) from gcc, which would otherwise take them for null pointer arithmetic. */
static inline const uint8_t *at(uint64_t a)
{
	__asm__("" : "+r"(a));
	return (const uint8_t *)(uintptr_t)a;
}
static inline uint16_t ld16(uint64_t a)
{
	return ((const struct u16p *)at(a))->v;
}
static inline uint32_t ld32(uint64_t a)
{
	return ((const struct u32p *)at(a))->v;
}
static inline uint64_t ld64(uint64_t a)
{
	return ((const struct u64p *)at(a))->v;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static __attribute__((noreturn)) void halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" : : : "memory");
}

/* Enable and clear the FIFOs; IIR bits 6-7 then tell whether there are any. */
static void uart_init(struct uart *u)
{
	outb(COM1 + UART_FCR, 0x07);
	u->fifo = (inb(COM1 + UART_IIR) & 0xc0) == 0xc0 ? FIFO_LEN : 1;
	u->room = 0;
}

static void uart_putc(struct uart *u, char c)
{
	if (!u->room) {
		/* THRE: with the FIFO on, the whole FIFO is empty */
		for (unsigned i = 0; i < POLL_MAX && !(inb(COM1 + UART_LSR) & LSR_THRE); i++)
			;
		u->room = u->fifo;
	}
	outb(COM1 + UART_THR, (uint8_t)c);
	u->room--;
}

static void uart_puts(struct uart *u, const char *s)
{
	while (*s)
		uart_putc(u, *s++);
}

static void uart_dec(struct uart *u, uint64_t v)
{
	char b[20];
	unsigned n = 0;
	do {
		b[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		uart_putc(u, b[--n]);
}

static void uart_hex(struct uart *u, uint64_t v)
{
	char b[16];
	unsigned n = 0;
	do {
		unsigned d = v & 0xf;
		b[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v >>= 4;
	} while (v);
	while (n)
		uart_putc(u, b[--n]);
}

static bool word_is(const uint8_t *w, unsigned len, const char *s)
{
	unsigned i = 0;
	for (; i < len && s[i]; i++)
		if (w[i] != (uint8_t)s[i])
			return false;
	return i == len && !s[i];
}

/* A "tiny.*" word of the command line. */
static void cmdline_word(const uint8_t *w, unsigned len, enum end_mode *mode, bool *echo,
			 unsigned *flags)
{
	if (len < 5 || !word_is(w, 5, "tiny."))
		return;
	if (word_is(w, len, "tiny.echo"))
		*echo = true;
	else if (word_is(w, len, "tiny.halt"))
		*mode = END_HALT;
	else if (word_is(w, len, "tiny.reboot"))
		*mode = END_REBOOT;
	else if (word_is(w, len, "tiny.poke"))
		*flags |= WANT_POKE;
	else if (word_is(w, len, "tiny.state"))
		*flags |= WANT_STATE;
}

/* Print the command line and pick out our words in the same pass. */
static void cmdline(struct uart *u, uint64_t a, enum end_mode *mode, bool *echo, unsigned *flags)
{
	uart_puts(u, "cmdline: ");
	if (a) {
		const uint8_t *s = at(a), *w = s;
		unsigned i = 0;
		for (; i < CMDLINE_MAX && s[i]; i++) {
			uint8_t c = s[i];
			uart_putc(u, c >= 0x20 && c < 0x7f ? (char)c : '?');
			if (c == ' ') {
				cmdline_word(w, (unsigned)(s + i - w), mode, echo, flags);
				w = s + i + 1;
			}
		}
		cmdline_word(w, (unsigned)(s + i - w), mode, echo, flags);
	}
	uart_putc(u, '\n');
}

/* Print the e820 summary; *@high_last: the last byte of the highest RAM entry above 4 GiB
 * (0: none). */
static void e820(struct uart *u, const struct bootinfo *bi, uint64_t *high_last)
{
	unsigned n = bi->e820_n;
	if (n > E820_MAX)
		n = E820_MAX;
	uint64_t ram = 0;
	*high_last = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = bi->e820 + (uint64_t)i * bi->e820_stride;
		uint64_t addr = ld64(e), size = ld64(e + 8);
		if (ld32(e + 16) != E820_RAM)
			continue;
		ram += size;
		if (addr >= HIGH_START && size && addr + size - 1 > *high_last)
			*high_last = addr + size - 1;
	}
	uart_puts(u, "e820: ");
	uart_dec(u, n);
	uart_puts(u, " entries, RAM ");
	uart_dec(u, ram >> 20);
	uart_puts(u, " MiB\n");
}

/* Sum of @len bytes at @a, mod 256: eight bytes per step, added as four 16-bit lanes of byte
 * pairs (at most 510 a step, so 128 steps cannot carry out of a lane); the rest byte by byte. */
static uint8_t checksum(uint64_t a, uint32_t len)
{
	const uint64_t m = 0x00ff00ff00ff00ffull;
	uint32_t sum = 0;
	while (len >= 8) {
		uint64_t lanes = 0;
		uint32_t steps = len / 8 > 128 ? 128 : len / 8;
		len -= steps * 8;
		for (; steps; steps--, a += 8) {
			uint64_t w = ld64(a);
			lanes += (w & m) + ((w >> 8) & m);
		}
		sum += (uint32_t)(lanes & 0xffff) + (uint32_t)(lanes >> 16 & 0xffff) +
		       (uint32_t)(lanes >> 32 & 0xffff) + (uint32_t)(lanes >> 48);
	}
	for (; len; len--)
		sum += *at(a++);
	return (uint8_t)sum;
}

static bool fail(struct acpi *p, uint32_t sig, const char *what)
{
	p->err_sig = sig;
	p->err = what;
	return false;
}

/* The table at @a: mapped, signature @sig, at least @min bytes, checksum 0. Sets *@len. */
static bool sdt(struct acpi *p, uint64_t a, uint32_t sig, uint32_t min, uint32_t *len)
{
	if (!a || a >= MAPPED_END - SDT_HDR)
		return fail(p, sig, "address");
	if (ld32(a) != sig)
		return fail(p, sig, "signature");
	*len = ld32(a + 4);
	if (*len < min || *len > SDT_MAX || a + *len > MAPPED_END)
		return fail(p, sig, "length");
	if (checksum(a, *len))
		return fail(p, sig, "checksum");
	return true;
}

static bool rsdp_ok(uint64_t a)
{
	return ld64(a) == RSDP_SIG && !checksum(a, 20);
}

/* The RSDP the loader names, or one in the BIOS areas (a loader without ACPI support). */
static uint64_t rsdp_find(uint64_t a)
{
	if (a)
		return a;
	uint64_t ebda = (uint64_t)ld16(BIOS_EBDA_SEG) << 4;
	if (ebda >= 0x400 && ebda < BIOS_AREA_END - 1024)
		for (a = ebda; a < ebda + 1024; a += 16)
			if (rsdp_ok(a))
				return a;
	for (a = BIOS_AREA; a < BIOS_AREA_END; a += 16)
		if (rsdp_ok(a))
			return a;
	return 0;
}

/* SLP_TYPa of the DSDT's first \_S5 package, if it is written as AML does it:
 * Name (_S5, Package (n) { typ_a, ... }) with typ_a a Zero, One or BytePrefix constant. */
static void dsdt_s5(struct acpi *p, uint64_t dsdt, uint32_t len)
{
	uint64_t end = dsdt + len;
	for (uint64_t a = dsdt + SDT_HDR + 1; a + 4 + 5 <= end; a++) {
		if (ld32(a) != SIG_S5)
			continue;
		uint8_t prev = *at(a - 1);
		if (prev != AML_NAME && !(prev == AML_ROOT && *at(a - 2) == AML_NAME))
			continue;
		uint64_t q = a + 4;
		if (*at(q) != AML_PACKAGE)
			continue;
		q += 1 + 1 + (*at(q + 1) >> 6); /* PkgLength: 1-4 bytes */
		q++;				/* NumElements */
		if (q + 2 > end)
			return;
		uint8_t op = *at(q);
		if (op == AML_ZERO || op == AML_ONE)
			p->slp_typ = op;
		else if (op == AML_BYTE)
			p->slp_typ = *at(q + 1) & 7;
		return;
	}
}

static bool fadt(struct acpi *p, uint64_t f)
{
	uint32_t len, dlen;
	if (!sdt(p, f, SIG_FACP, FADT_MIN, &len))
		return false;
	p->pm1a_cnt = ld32(f + FADT_PM1A_CNT);
	if (!p->pm1a_cnt && len >= FADT_X_PM1A_CNT + 12 && *at(f + FADT_X_PM1A_CNT) == GAS_IO)
		p->pm1a_cnt = (uint32_t)ld64(f + FADT_X_PM1A_CNT + 4);
	if (!p->pm1a_cnt && len >= FADT_SLEEP_CTL + 12) {
		p->sleep_space = *at(f + FADT_SLEEP_CTL);
		p->sleep_addr = ld64(f + FADT_SLEEP_CTL + 4);
	}
	if (!p->pm1a_cnt && !p->sleep_addr)
		return fail(p, SIG_FACP, "no PM1a_CNT");
	if (p->pm1a_cnt > 0xffff)
		return fail(p, SIG_FACP, "PM1a_CNT");
	if (len > FADT_RESET_VAL && (ld32(f + FADT_FLAGS) & FADT_RESET_SUP)) {
		p->reset_space = *at(f + FADT_RESET_REG);
		p->reset_addr = ld64(f + FADT_RESET_REG + 4);
		p->reset_val = *at(f + FADT_RESET_VAL);
		p->reset = p->reset_space == GAS_IO || p->reset_space == GAS_MEM;
	}

	uint64_t d = len >= FADT_X_DSDT + 8 ? ld64(f + FADT_X_DSDT) : 0;
	if (!d)
		d = ld32(f + FADT_DSDT);
	if (d) {
		if (!sdt(p, d, SIG_DSDT, SDT_HDR, &dlen))
			return false;
		dsdt_s5(p, d, dlen);
	}
	return true;
}

static bool madt(struct acpi *p)
{
	uint64_t m = p->madt;
	uint32_t len;
	if (!m)
		return fail(p, 0, "no MADT");
	if (!sdt(p, m, SIG_APIC, MADT_ENTRIES, &len))
		return false;
	for (uint64_t e = m + MADT_ENTRIES, end = m + len; e < end;) {
		uint8_t type = *at(e), elen = e + 2 <= end ? *at(e + 1) : 0;
		if (elen < 2 || e + elen > end)
			return fail(p, SIG_APIC, "entry length");
		if (type == MADT_LAPIC && elen >= 8 && (ld32(e + 4) & 1))
			p->cpus++;
		else if (type == MADT_X2APIC && elen >= 16 && (ld32(e + 8) & 1))
			p->cpus++;
		e += elen;
	}
	return true;
}

/* RSDP -> XSDT (or RSDT) -> FADT (and the DSDT it names); notes where the MADT is. */
static bool acpi_fadt(struct acpi *p, uint64_t rsdp)
{
	uint64_t r = rsdp_find(rsdp), root;
	uint32_t len, sig, esize;
	if (!r)
		return fail(p, 0, "no RSDP");
	if (r >= MAPPED_END - 36 || ld64(r) != RSDP_SIG)
		return fail(p, 0, "RSDP signature");
	if (checksum(r, 20))
		return fail(p, 0, "RSDP checksum");
	if (*at(r + 15) >= 2 && ld64(r + 24)) {
		uint32_t rlen = ld32(r + 20);
		if (rlen < 36 || rlen > 4096 || checksum(r, rlen))
			return fail(p, 0, "RSDP extended checksum");
		root = ld64(r + 24), sig = SIG_XSDT, esize = 8;
	} else {
		root = ld32(r + 16), sig = SIG_RSDT, esize = 4;
	}
	if (!sdt(p, root, sig, SDT_HDR, &len))
		return false;

	uint64_t f = 0;
	for (uint64_t e = root + SDT_HDR; e + esize <= root + len; e += esize) {
		uint64_t t = esize == 8 ? ld64(e) : ld32(e);
		if (!t || t >= MAPPED_END - SDT_HDR)
			return fail(p, sig, "entry");
		uint32_t s = ld32(t);
		if (s == SIG_FACP && !f)
			f = t;
		else if (s == SIG_APIC && !p->madt)
			p->madt = t;
		else if (s == SIG_MCFG && !p->mcfg)
			p->mcfg = t;
	}
	if (!f)
		return fail(p, 0, "no FADT");
	return fadt(p, f);
}

static void echo(struct uart *u)
{
	uart_puts(u, "echo: ready\n");
	for (;;) {
		if (!(inb(COM1 + UART_LSR) & LSR_DR))
			continue;
		uint8_t c = inb(COM1 + UART_RBR);
		if (c == 'q')
			return;
		uart_putc(u, (char)c);
	}
}

static void gas_write8(uint8_t space, uint64_t addr, uint8_t v)
{
	if (space == GAS_IO)
		outb((uint16_t)addr, v);
	else if (space == GAS_MEM && addr && addr < MAPPED_END)
		*(volatile uint8_t *)(uintptr_t)addr = v;
}

static __attribute__((noreturn)) void acpi_error(struct uart *u, const struct acpi *p)
{
	uart_puts(u, "acpi: error ");
	if (p->err_sig) {
		for (unsigned i = 0; i < 4; i++)
			uart_putc(u, (char)(p->err_sig >> (8 * i)));
		uart_putc(u, ' ');
	}
	uart_puts(u, p->err);
	uart_putc(u, '\n');
	halt();
}

static void cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(0));
}

/* The hypervisor's CPUID signature (leaf 0x40000000) and KVM's features (0x40000001). */
static void hypervisor(struct uart *u)
{
	uint32_t r[4], f[4];
	cpuid(0x40000000u, r);
	uart_puts(u, "cpuid: hypervisor \"");
	uint32_t sig[3] = {r[1], r[2], r[3]};
	for (unsigned i = 0; i < 12; i++) {
		uint8_t c = (uint8_t)(sig[i / 4] >> (8 * (i % 4)));
		if (!c)
			break;
		uart_putc(u, c >= 0x20 && c < 0x7f ? (char)c : '?');
	}
	uart_puts(u, "\", features 0x");
	f[0] = 0;
	if (r[0] >= 0x40000001u && r[0] < 0x40000100u)
		cpuid(0x40000001u, f);
	uart_hex(u, f[0]);
	uart_putc(u, '\n');
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

/* The boot MSRs and the x87 control word the monitor set. */
static void boot_state(struct uart *u)
{
	uint16_t fcw = 0;
	__asm__ volatile("fnstcw %0" : "=m"(fcw));
	uart_puts(u, "msr: MTRRdefType 0x");
	uart_hex(u, rdmsr(0x2ff));
	uart_puts(u, " MISC_ENABLE 0x");
	uart_hex(u, rdmsr(0x1a0));
	uart_puts(u, " LSTAR 0x");
	uart_hex(u, rdmsr(0xc0000082u));
	uart_puts(u, " FCW 0x");
	uart_hex(u, fcw);
	uart_putc(u, '\n');
}

/* Make sure @a (below 512 GiB) is mapped, with tiny_spare_pd if its 1 GiB has no page
 * directory, and write and read back a byte there. Identity mapping; CR3's tables are
 * reachable (below 4 GiB). */
static void high_touch(struct uart *u, uint64_t a)
{
	const uint64_t addr_mask = 0x000ffffffffff000ull;
	uint64_t cr3;
	if (a >> 39)
		return;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(cr3 & addr_mask);
	if (!(pml4[0] & 1))
		return;
	uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[0] & addr_mask);
	unsigned i3 = (unsigned)(a >> 30) & 511, i2 = (unsigned)(a >> 21) & 511;
	if (!(pdpt[i3] & 1)) {
		for (unsigned i = 0; i < 512; i++)
			tiny_spare_pd[i] = 0;
		pdpt[i3] = (uint64_t)(uintptr_t)tiny_spare_pd | 3;
	}
	if (!(pdpt[i3] & 0x80)) { /* not a 1 GiB page: a page directory */
		uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[i3] & addr_mask);
		if (!(pd[i2] & 1))
			pd[i2] = (a & ~0x1fffffull) | 0x83;
	}
	__asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
	volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)a;
	*p = 0xa5;
	uint8_t back = *p;
	uart_puts(u, back == 0xa5 ? "high: wrote and read back 0x" : "high: error at 0x");
	uart_hex(u, a);
	uart_putc(u, '\n');
}

/* Accesses no device claims: the monitor must log them (rate-limited) and go on. */
static void poke(struct uart *u)
{
	uint32_t pv = 0, mv = 0;
	volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)POKE_MMIO;
	for (unsigned i = 0; i < POKE_COUNT; i++) {
		outb(POKE_PORT, (uint8_t)i);
		pv = inl(POKE_PORT);
		*mmio = i;
		mv = *mmio;
	}
	uart_puts(u, "poke: port 0x");
	uart_hex(u, pv);
	uart_puts(u, " mmio 0x");
	uart_hex(u, mv);
	uart_putc(u, '\n');
}

/* The MCFG's first ECAM window against the e820 map: it must not overlap RAM and must lie in
 * a reserved entry (what Linux checks before it uses ECAM). Printed, never fatal. */
static void mcfg(struct uart *u, struct acpi *p, const struct bootinfo *bi)
{
	uint32_t len;
	if (!p->mcfg)
		return;
	if (!sdt(p, p->mcfg, SIG_MCFG, MCFG_MIN, &len)) {
		uart_puts(u, "mcfg: error table\n");
		return;
	}
	uint64_t base = ld64(p->mcfg + MCFG_ALLOC);
	uint8_t sbus = *at(p->mcfg + MCFG_ALLOC + 10), ebus = *at(p->mcfg + MCFG_ALLOC + 11);
	uint64_t lo = base + ((uint64_t)sbus << 20), hi = base + ((uint64_t)ebus + 1) * (1u << 20);
	const char *verdict = "error: not reserved";
	unsigned n = bi->e820_n > E820_MAX ? E820_MAX : bi->e820_n;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = bi->e820 + (uint64_t)i * bi->e820_stride;
		uint64_t a = ld64(e), end = a + ld64(e + 8);
		uint32_t type = ld32(e + 16);
		if (type == E820_RAM && a < hi && lo < end) {
			verdict = "error: overlaps RAM";
			break;
		}
		if (type == E820_RESERVED && a <= lo && hi <= end)
			verdict = "reserved in e820";
	}
	uart_puts(u, "mcfg: ECAM 0x");
	uart_hex(u, base);
	uart_puts(u, " buses ");
	uart_dec(u, sbus);
	uart_putc(u, '-');
	uart_dec(u, ebus);
	uart_puts(u, ", ");
	uart_puts(u, verdict);
	uart_putc(u, '\n');
}

/* Boot information from a PVH start info (false: bad magic, printed). */
static bool pvh_info(struct uart *u, uint64_t si, struct bootinfo *bi)
{
	uint32_t magic = ld32(si);
	if (magic != PVH_MAGIC) {
		uart_puts(u, "pvh: error magic 0x");
		uart_hex(u, magic);
		uart_putc(u, '\n');
		return false;
	}
	bi->cmdline = ld64(si + SI_CMDLINE);
	bi->rsdp = ld64(si + SI_RSDP);
	bi->e820 = ld32(si + SI_VERSION) >= 1 ? ld64(si + SI_MEMMAP) : 0;
	bi->e820_n = bi->e820 ? ld32(si + SI_MEMMAP_N) : 0;
	bi->e820_stride = PVH_ENTRY_SIZE;
	uart_puts(u, "pvh: start_info magic 0x");
	uart_hex(u, magic);
	uart_puts(u, ", version ");
	uart_dec(u, ld32(si + SI_VERSION));
	uart_puts(u, ", memmap ");
	uart_dec(u, bi->e820_n);
	uart_puts(u, " entries, modules ");
	uart_dec(u, ld32(si + SI_NR_MODULES));
	uart_putc(u, '\n');
	return true;
}

/* Called by head.S with the zero page's address. */
__attribute__((noreturn)) void tiny_main(uint64_t zp);

__attribute__((noreturn)) void tiny_main(uint64_t zp)
{
	struct uart u;
	struct acpi p = {.slp_typ = SLP_TYP_DEFAULT};
	enum end_mode mode = END_POWEROFF;
	bool want_echo = false;
	unsigned want = 0; /* WANT_* */
	struct bootinfo bi = {.cmdline = ld32(zp + ZP_CMD_LINE_PTR) |
					 (uint64_t)ld32(zp + ZP_EXT_CMD_LINE) << 32,
			      .rsdp = ld64(zp + ZP_ACPI_RSDP),
			      .e820 = zp + ZP_E820_TABLE,
			      .e820_n = *at(zp + ZP_E820_ENTRIES),
			      .e820_stride = E820_ENTRY_SIZE};
	uint64_t high_last;

	uart_init(&u);
	uart_puts(&u, "nubis tiny guest: hello\n");
	if (ld32(zp) == PVH_MARK && !pvh_info(&u, ld64(zp + 8), &bi))
		halt();
	cmdline(&u, bi.cmdline, &mode, &want_echo, &want);
	e820(&u, &bi, &high_last);
	if (high_last)
		high_touch(&u, high_last);
	if (want & WANT_POKE)
		poke(&u);
	if (!acpi_fadt(&p, bi.rsdp))
		acpi_error(&u, &p);
	uart_puts(&u, "acpi: FADT ok, PM1a_CNT=0x");
	uart_hex(&u, p.pm1a_cnt);
	uart_putc(&u, '\n');
	if (!madt(&p))
		acpi_error(&u, &p);
	uart_puts(&u, "cpus: ");
	uart_dec(&u, p.cpus);
	uart_putc(&u, '\n');
	mcfg(&u, &p, &bi);
	hypervisor(&u);
	if (want & WANT_STATE)
		boot_state(&u);

	if (want_echo)
		echo(&u);
	if (mode == END_HALT)
		halt();
	if (mode == END_REBOOT) {
		if (!p.reset) {
			fail(&p, SIG_FACP, "no reset register");
			acpi_error(&u, &p);
		}
		gas_write8(p.reset_space, p.reset_addr, p.reset_val);
		halt();
	}
	if (p.pm1a_cnt)
		outw((uint16_t)p.pm1a_cnt, (uint16_t)(p.slp_typ << PM1_SLP_TYP_SHIFT | PM1_SLP_EN));
	else
		gas_write8(p.sleep_space, p.sleep_addr,
			   (uint8_t)(p.slp_typ << SLEEP_TYP_SHIFT | SLEEP_EN));
	halt();
}
