/* SPDX-License-Identifier: MIT */
#include "uvm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define PTE_P  0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull
#define PTE_NX (1ull << 63)

#define MSR_STAR	   0xc0000081u
#define MSR_LSTAR	   0xc0000082u
#define MSR_CSTAR	   0xc0000083u
#define MSR_SFMASK	   0xc0000084u
#define MSR_FS_BASE	   0xc0000100u
#define MSR_GS_BASE	   0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u

#define CR0_PE	       (1ull << 0)
#define CR0_MP	       (1ull << 1)
#define CR0_ET	       (1ull << 4)
#define CR0_NE	       (1ull << 5)
#define CR0_WP	       (1ull << 16)
#define CR0_AM	       (1ull << 18)
#define CR0_PG	       (1ull << 31)
#define CR4_TSD	       (1ull << 2)
#define CR4_PAE	       (1ull << 5)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_OSXSAVE    (1ull << 18)
#define EFER_SCE       (1ull << 0)
#define EFER_LME       (1ull << 8)
#define EFER_LMA       (1ull << 10)
#define EFER_NXE       (1ull << 11)

/* TSS: the 104-byte 64-bit TSS, no I/O permission bitmap. */
#define TSS_LIMIT 0x67u

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t seg_desc(uint64_t flags_access)
{
	/* base 0, limit 0xfffff, G=1 */
	return 0xffffull | (0xfull << 48) | flags_access;
}

int x86_uvm_build(uint8_t *sys, uint64_t mem_size)
{
	if (mem_size % UVM_PAGE_2M || mem_size < 2 * UVM_PAGE_2M || mem_size > UVM_MAX_MEM)
		return -EINVAL;
	memset(sys, 0, UVM_SYS_END);

	/* Page tables. */
	uint64_t ngib = (mem_size + (1ull << 30) - 1) >> 30;
	put64(sys + UVM_PML4, UVM_PDPT | PTE_P | PTE_RW | PTE_US);
	for (uint64_t g = 0; g < ngib; g++)
		put64(sys + UVM_PDPT + 8 * g, (UVM_PD + 0x1000 * g) | PTE_P | PTE_RW | PTE_US);
	for (uint64_t a = UVM_PAGE_2M; a < mem_size; a += UVM_PAGE_2M)
		put64(sys + UVM_PD + 8 * (a >> 21), a | PTE_P | PTE_RW | PTE_US | PTE_PS);
	put64(sys + UVM_PD, UVM_PT0 | PTE_P | PTE_RW | PTE_US);
	/* First 2 MiB: supervisor pages for the tables and stubs, the SYSCALL
	 * stub readable by ring 3 (kvm_pvm runs it there), the rest absent. */
	for (uint64_t a = UVM_PML4; a < UVM_SYS_END; a += 0x1000) {
		uint64_t f = PTE_P;
		uint64_t target = a;
		if (a == UVM_SYSCALL_STUB)
			f |= PTE_US;
		else if (a >= UVM_FAST_CTRL)
			f |= PTE_US | PTE_RW; /* exitless control page and slots */
		else if (a == UVM_DOORBELL)
			f |= PTE_US | PTE_RW, target = UVM_DOORBELL_GPA;
		else if (a != UVM_EXC_STUBS)
			f |= PTE_RW;
		put64(sys + UVM_PT0 + 8 * (a >> 12), target | f);
	}

	/* GDT: null, kernel code, kernel data, user data, user code, TSS (2 slots). */
	put64(sys + UVM_GDT + 0x08, seg_desc(0x00209a0000000000ull)); /* L=1 P DPL0 code */
	put64(sys + UVM_GDT + 0x10, seg_desc(0x00c0920000000000ull)); /* D=1 P DPL0 data */
	put64(sys + UVM_GDT + 0x18, seg_desc(0x00c0f20000000000ull)); /* D=1 P DPL3 data */
	put64(sys + UVM_GDT + 0x20, seg_desc(0x0020fa0000000000ull)); /* L=1 P DPL3 code */
	/* One TSS per vCPU id: the ring-0 stack for exceptions; I/O map base
	 * past the limit (no bitmap). */
	for (int i = 0; i < UVM_MAX_VCPUS; i++) {
		uint64_t tss = UVM_TSS + UVM_TSS_SLOT * (uint64_t)i, lim = TSS_LIMIT;
		uint64_t d = UVM_GDT + UVM_SEL_TSS + 16 * (uint64_t)i;
		put64(sys + d, (lim & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ull << 40) |
				   (((tss >> 24) & 0xff) << 56));
		put64(sys + d + 8, tss >> 32);
		put64(sys + tss + 4, x86_uvm_stack0_top(i));
		uint16_t iomap = 0x68;
		memcpy(sys + tss + 0x66, &iomap, 2);
	}

	/* IDT: 32 interrupt gates (IF cleared on entry), DPL 0 except int3/into. */
	for (uint64_t v = 0; v < 32; v++) {
		uint64_t h = UVM_EXC_STUBS + UVM_EXC_STUB_SZ * v;
		/* int3 and into may be executed by ring 3, as on Linux */
		uint64_t type = (v == 3 || v == 4) ? 0xeeull : 0x8eull;
		uint64_t lo = (h & 0xffff) | ((uint64_t)UVM_SEL_KCODE << 16) | (type << 40) |
			      (((h >> 16) & 0xffff) << 48);
		put64(sys + UVM_IDT + 16 * v, lo);
		put64(sys + UVM_IDT + 16 * v + 8, h >> 32);
		uint8_t *s = sys + h;
		int n = 0;
		s[n++] = 0xf4; /* hlt: exit names the vector */
		if (x86_exc_has_error_code((int)v)) {
			/* add $8, %rsp */
			s[n++] = 0x48, s[n++] = 0x83, s[n++] = 0xc4, s[n++] = 0x08;
		}
		s[n++] = 0x48, s[n++] = 0xcf; /* iretq */
	}

	/* SYSCALL stub: mov %eax, UVM_DOORBELL ; sysretq */
	static const uint8_t stub[] = {0x89,
				       0x04,
				       0x25,
				       UVM_DOORBELL & 0xff,
				       (UVM_DOORBELL >> 8) & 0xff,
				       (UVM_DOORBELL >> 16) & 0xff,
				       0x00,
				       0x48,
				       0x0f,
				       0x07};
	memcpy(sys + UVM_SYSCALL_STUB, stub, sizeof(stub));
	/* warm-up: 1: movb (%rsi),%al; add $0x1000,%rsi; cmp %rdi,%rsi; jb 1b; syscall */
	static const uint8_t warm[] = {0x8a, 0x06, 0x48, 0x81, 0xc6, 0x00, 0x10, 0x00,
				       0x00, 0x48, 0x39, 0xfe, 0x72, 0xf2, 0x0f, 0x05};
	memcpy(sys + UVM_WARMUP, warm, sizeof(warm));
	return 0;
}

int x86_uvm_map_user(uint8_t *sys, uint64_t gva, uint64_t len, int exec)
{
	uint64_t end;
	if (gva % 0x1000 || !len || __builtin_add_overflow(gva, len, &end) || gva < UVM_SYS_END ||
	    end > UVM_USER_BASE)
		return -EINVAL;
	for (uint64_t a = gva; a < end; a += 0x1000)
		put64(sys + UVM_PT0 + 8 * (a >> 12), a | PTE_P | PTE_US | (exec ? 0 : PTE_NX));
	return 0;
}

int x86_uvm_exc_vector(uint64_t rip_after_hlt)
{
	uint64_t a = rip_after_hlt - 1;
	if (a < UVM_EXC_STUBS || a >= UVM_EXC_STUBS + 32 * UVM_EXC_STUB_SZ ||
	    (a - UVM_EXC_STUBS) % UVM_EXC_STUB_SZ)
		return -1;
	return (int)((a - UVM_EXC_STUBS) / UVM_EXC_STUB_SZ);
}

static struct kvm_segment seg(uint16_t sel, uint8_t type, uint8_t dpl, int code64)
{
	struct kvm_segment s = {
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .dpl = dpl,
	    .db = code64 ? 0 : 1,
	    .s = 1,
	    .l = code64 ? 1 : 0,
	    .g = 1,
	};
	return s;
}

static uint64_t supported_xcr0(const struct kvmhost *h)
{
	for (unsigned i = 0; i < h->cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &h->cpuid->entries[i];
		if (e->function == 0xd && e->index == 0)
			return ((uint64_t)e->edx << 32) | e->eax;
	}
	return 0;
}

static int cpuid_has_xsave(const struct kvmhost *h)
{
	for (unsigned i = 0; i < h->cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &h->cpuid->entries[i];
		if (e->function == 1)
			return (e->ecx >> 26) & 1;
	}
	return 0;
}

static int vcpu_setup(struct vcpu *c, int set_cpuid)
{
	const struct kvmhost *h = c->vm->kvm;
	if (set_cpuid && ioctl(c->fd, KVM_SET_CPUID2, h->cpuid) < 0)
		return -errno;

	struct kvm_sregs sr;
	if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	int xsave = h->has_xcrs && cpuid_has_xsave(h);
	sr.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	sr.cr3 = UVM_PML4;
	sr.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_TSD | (xsave ? CR4_OSXSAVE : 0);
	sr.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	sr.cs = seg(UVM_SEL_UCODE, 11, 3, 1);
	sr.ss = seg(UVM_SEL_UDATA, 3, 3, 0);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss;
	sr.gdt.base = UVM_GDT;
	sr.gdt.limit = UVM_GDT_LIMIT;
	sr.idt.base = UVM_IDT;
	sr.idt.limit = 32 * 16 - 1;
	if (c->id < 0 || c->id >= UVM_MAX_VCPUS)
		return -EINVAL;
	sr.tr = (struct kvm_segment){.base = UVM_TSS + UVM_TSS_SLOT * (uint64_t)c->id,
				     .limit = TSS_LIMIT,
				     .selector = (uint16_t)(UVM_SEL_TSS + 16 * c->id),
				     .type = 11,
				     .present = 1};
	sr.ldt = (struct kvm_segment){.type = 2, .present = 1, .unusable = 1};
	if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;

	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[7];
	} m;
	memset(&m, 0, sizeof(m));
	/* SYSRET loads CS = STAR[63:48]+16, SS = STAR[63:48]+8 (RPL 3). */
	m.e[0] = (struct kvm_msr_entry){.index = MSR_STAR,
					.data = ((uint64_t)(UVM_SEL_KDATA) << 48) |
						((uint64_t)UVM_SEL_KCODE << 32)};
	m.e[1] = (struct kvm_msr_entry){.index = MSR_LSTAR, .data = UVM_SYSCALL_STUB};
	m.e[2] = (struct kvm_msr_entry){.index = MSR_CSTAR, .data = UVM_SYSCALL_STUB};
	/* Mask TF, IF, DF, AC, NT on entry (as Linux); RFLAGS come back from R11. */
	m.e[3] = (struct kvm_msr_entry){.index = MSR_SFMASK, .data = 0x47700};
	m.e[4] = (struct kvm_msr_entry){.index = MSR_FS_BASE, .data = 0};
	m.e[5] = (struct kvm_msr_entry){.index = MSR_KERNEL_GS_BASE, .data = 0};
	m.e[6] = (struct kvm_msr_entry){.index = MSR_GS_BASE, .data = 0};
	m.hdr.nmsrs = 7;
	int n = ioctl(c->fd, KVM_SET_MSRS, &m);
	if (n < 0)
		return -errno;
	if (n != 7)
		return -EIO;

	if (xsave) {
		struct kvm_xcrs x;
		memset(&x, 0, sizeof(x));
		x.nr_xcrs = 1;
		x.xcrs[0].xcr = 0;
		/* x87, SSE, AVX, and the AVX-512 state when offered; no PKRU/AMX. */
		x.xcrs[0].value = supported_xcr0(h) & 0xe7;
		x.xcrs[0].value |= 3;
		if (ioctl(c->fd, KVM_SET_XCRS, &x) < 0)
			return -errno;
	}
	c->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	return 0;
}

int x86_uvm_vcpu_init(struct vcpu *c)
{
	return vcpu_setup(c, 1);
}

int x86_uvm_vcpu_reset(struct vcpu *c)
{
	/* CPUID is fixed once a vCPU has run (KVM refuses to change it) */
	return vcpu_setup(c, 0);
}
