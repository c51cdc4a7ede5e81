/* SPDX-License-Identifier: MIT */
/*
 * Entering a Linux-style kernel at its 64-bit entry point (boot protocol
 * 2.12+): long mode, paging with the first 4 GiB identity-mapped, a GDT
 * with __BOOT_CS (0x10) and __BOOT_DS (0x18), interrupts off, RSI = the
 * zero page.
 */
#ifndef NUBIS_CORE_ARCH_X86_BOOT64_H
#define NUBIS_CORE_ARCH_X86_BOOT64_H

#include <stdint.h>

#include "../../vm.h"

#define BOOT64_GDT    0x500ull	/* 4 descriptors */
#define BOOT64_PML4   0x9000ull /* PML4, PDPT, then 4 page directories: 0x9000-0xEFFF */
#define BOOT64_PT_END 0xf000ull
#define BOOT64_SEL_CS 0x10
#define BOOT64_SEL_DS 0x18

/* Set @c's CPUID from KVM's supported list with the topology of a guest
 * of @ncpus vCPUs: its initial APIC id (leaf 1 EBX, x2APIC leaves 0xB and
 * 0x1F, AMD leaf 0x8000001E) and the logical processor count. APIC id =
 * vCPU id. Returns 0 or -errno. */
int x86_vcpu_set_cpuid(struct vcpu *c, unsigned ncpus);

/* Write the GDT and page tables into guest memory (@c's VM) and set the
 * boot vCPU's control registers, segments and registers so it starts at
 * @entry with RSI = @zero_page. Set its CPUID first. Returns 0 or -errno. */
int x86_boot64_setup(struct vcpu *c, uint64_t entry, uint64_t zero_page);

#endif
