/* SPDX-License-Identifier: MIT */
#include "boot64.h"

#include <errno.h>
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
	struct kvm_cpuid2 *cp = malloc(sz);
	if (!cp)
		return -ENOMEM;
	memcpy(cp, src, sz);
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

int x86_boot64_setup(struct vcpu *c, uint64_t entry, uint64_t zero_page)
{
	const struct gmem *m = &c->vm->mem;
	/* GDT: null, null, __BOOT_CS (64-bit code), __BOOT_DS */
	if (put64(m, BOOT64_GDT, 0) || put64(m, BOOT64_GDT + 8, 0) ||
	    put64(m, BOOT64_GDT + 0x10, 0x00af9b000000ffffull) ||
	    put64(m, BOOT64_GDT + 0x18, 0x00cf93000000ffffull))
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
	sr.cs = seg(BOOT64_SEL_CS, 11, 1);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = seg(BOOT64_SEL_DS, 3, 0);
	sr.gdt.base = BOOT64_GDT;
	sr.gdt.limit = 0x1f;
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
