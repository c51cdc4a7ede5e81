/* SPDX-License-Identifier: MIT */
#include "boot64.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static int put64(const struct gmem *m, uint64_t gpa, uint64_t v)
{
	return gmem_write(m, gpa, &v, 8);
}

static struct kvm_segment seg(uint16_t sel, uint8_t type, int code)
{
	return (struct kvm_segment){.base = 0,
				    .limit = 0xffffffff,
				    .selector = sel,
				    .type = type,
				    .present = 1,
				    .dpl = 0,
				    .db = code ? 0 : 1,
				    .s = 1,
				    .l = code ? 1 : 0,
				    .g = 1};
}

int x86_vcpu_set_cpuid(struct vcpu *c, unsigned ncpus)
{
	const struct kvm_cpuid2 *src = c->vm->kvm->cpuid;
	size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *cp = malloc(sz + 2 * sizeof(src->entries[0]));
	if (!cp)
		return -ENOMEM;
	memcpy(cp, src, sz);
	bool have_sig = false;
	for (unsigned i = 0; i < cp->nent; i++)
		have_sig |= cp->entries[i].function == X86_CPUID_KVM_SIGNATURE;
	if (!have_sig) {
		/* "KVMKVMKVM\0\0\0", the highest paravirtual leaf, and no features */
		cp->entries[cp->nent++] =
		    (struct kvm_cpuid_entry2){.function = X86_CPUID_KVM_SIGNATURE,
					      .eax = X86_CPUID_KVM_FEATURES,
					      .ebx = 0x4b4d564b,
					      .ecx = 0x564b4d56,
					      .edx = 0x4d};
		cp->entries[cp->nent++] =
		    (struct kvm_cpuid_entry2){.function = X86_CPUID_KVM_FEATURES};
	}
	uint32_t id = (uint32_t)c->id;
	for (unsigned i = 0; i < cp->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cp->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (id << 24) | ((ncpus & 0xffu) << 16);
			if (ncpus > 1)
				e->edx |= 1u << 28; /* HTT: the count above is valid */
			break;
		case 0xb:
		case 0x1f:
			/* level 0: SMT, one thread per core; level 1: cores, ncpus per package */
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;
			} else if (e->index == 1) {
				unsigned shift = 0;
				while ((1u << shift) < ncpus)
					shift++;
				e->eax = shift;
				e->ebx = ncpus;
				e->ecx = (2u << 8) | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			e->edx = id;
			break;
		case 0x8000001e:
			e->eax = id;
			break;
		}
	}
	int rc = ioctl(c->fd, KVM_SET_CPUID2, cp) < 0 ? -errno : 0;
	free(cp);
	return rc;
}

/* MSR indices (Intel SDM vol. 4) */
#define MSR_IA32_TSC		0x10
#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_ENABLE		(1ull << 11)
#define MTRR_TYPE_WB		6ull
#define XCR0_X87_SSE		3ull

int x86_vcpu_init_state(struct vcpu *c, uint32_t *refused)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} boot_msrs[] = {
	    {MSR_IA32_SYSENTER_CS, 0},
	    {MSR_IA32_SYSENTER_ESP, 0},
	    {MSR_IA32_SYSENTER_EIP, 0},
	    {MSR_STAR, 0},
	    {MSR_LSTAR, 0},
	    {MSR_CSTAR, 0},
	    {MSR_SYSCALL_MASK, 0},
	    {MSR_KERNEL_GS_BASE, 0},
	    {MSR_IA32_TSC, 0},
	    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
	    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB},
	};
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[N];
	} msrs;
	memset(&msrs, 0, sizeof(msrs));
	if (refused)
		*refused = 0;
	/* KVM_SET_MSRS stops at the first MSR it refuses and returns how many it set: go on
	 * after that one, so one refused MSR does not leave the rest unset. */
	for (unsigned from = 0; from < N;) {
		msrs.hdr.nmsrs = N - from;
		for (unsigned i = from; i < N; i++)
			msrs.e[i - from] = (struct kvm_msr_entry){.index = boot_msrs[i].index,
								  .data = boot_msrs[i].value};
		int n = ioctl(c->fd, KVM_SET_MSRS, &msrs);
		if (n < 0)
			return -errno;
		from += (unsigned)n;
		if (from < N) {
			if (refused && !*refused)
				*refused = boot_msrs[from].index;
			from++;
		}
	}

	struct kvm_fpu fpu;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;

	if (ioctl(c->vm->kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		struct kvm_xcrs xcrs;
		memset(&xcrs, 0, sizeof(xcrs));
		xcrs.nr_xcrs = 1;
		xcrs.xcrs[0].xcr = 0;
		xcrs.xcrs[0].value = XCR0_X87_SSE;
		if (ioctl(c->fd, KVM_SET_XCRS, &xcrs) < 0)
			return -errno;
	}
	return 0;
}

/* The boot GDT: null, null, @code at BOOT64_SEL_CS, flat data at BOOT64_SEL_DS. */
static int boot_gdt(const struct gmem *m, uint64_t code)
{
	return put64(m, BOOT64_GDT, 0) || put64(m, BOOT64_GDT + 8, 0) ||
		       put64(m, BOOT64_GDT + BOOT64_SEL_CS, code) ||
		       put64(m, BOOT64_GDT + BOOT64_SEL_DS, 0x00cf93000000ffffull)
		   ? -EFAULT
		   : 0;
}

/* Flat segments from the boot GDT: 64-bit code if @code64, else 32-bit. */
static void flat_segments(struct kvm_sregs *sr, int code64)
{
	sr->cs = seg(BOOT64_SEL_CS, 11, code64);
	sr->ds = sr->es = sr->fs = sr->gs = sr->ss = seg(BOOT64_SEL_DS, 3, 0);
	sr->gdt.base = BOOT64_GDT;
	sr->gdt.limit = 0x1f;
}

int x86_boot64_setup(struct vcpu *c, uint64_t entry, uint64_t zero_page)
{
	const struct gmem *m = &c->vm->mem;
	if (boot_gdt(m, 0x00af9b000000ffffull)) /* __BOOT_CS: 64-bit code */
		return -EFAULT;
	/* identity map [0, 4 GiB) with 2 MiB pages */
	uint64_t pdpt = BOOT64_PML4 + 0x1000, pd = pdpt + 0x1000;
	if (put64(m, BOOT64_PML4, pdpt | 3))
		return -EFAULT;
	for (uint64_t g = 0; g < 4; g++) {
		if (put64(m, pdpt + 8 * g, (pd + 0x1000 * g) | 3))
			return -EFAULT;
		for (uint64_t i = 0; i < 512; i++)
			if (put64(m, pd + 0x1000 * g + 8 * i, ((g << 30) | (i << 21)) | 0x83))
				return -EFAULT;
	}

	struct kvm_sregs sr;
	if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	sr.cr0 = 0x80000001ull | (1ull << 4) | (1ull << 5); /* PG, PE, ET, NE */
	sr.cr3 = BOOT64_PML4;
	sr.cr4 = 1ull << 5;		      /* PAE */
	sr.efer = (1ull << 8) | (1ull << 10); /* LME, LMA */
	flat_segments(&sr, 1);
	if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rsi = zero_page;
	r.rflags = 2;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

int x86_pvh_setup(struct vcpu *c, uint32_t entry, uint32_t start_info)
{
	const struct gmem *m = &c->vm->mem;
	if (boot_gdt(m, 0x00cf9b000000ffffull)) /* 32-bit flat code */
		return -EFAULT;
	struct kvm_sregs sr;
	if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	sr.cr0 = 1ull | (1ull << 4); /* PE, ET; paging off */
	sr.cr3 = 0;
	sr.cr4 = 0;
	sr.efer = 0;
	flat_segments(&sr, 0);
	if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rbx = start_info;
	r.rflags = 2;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}
