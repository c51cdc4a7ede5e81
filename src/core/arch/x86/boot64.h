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
 * vCPU id. KVM's paravirtual leaves (0x40000000 signature, 0x40000001 features: the
 * guest finds kvmclock there) are passed on from KVM's list, or added with the signature
 * and no features if the host's list lacks them. Returns 0 or -errno. */
int x86_vcpu_set_cpuid(struct vcpu *c, unsigned ncpus);

/* KVM's paravirtual CPUID leaves (Documentation/virt/kvm/x86/cpuid.rst). */
#define X86_CPUID_KVM_SIGNATURE 0x40000000u /* EBX ECX EDX = "KVMKVMKVM\0\0\0" */
#define X86_CPUID_KVM_FEATURES	0x40000001u /* EAX = features (kvmclock, ...) */

/* Put @c in the state a VMM gives a vCPU at power-on, as Firecracker and Cloud Hypervisor
 * do: the boot MSRs (SYSENTER_*, STAR/LSTAR/CSTAR/SYSCALL_MASK, KERNEL_GS_BASE and TSC = 0,
 * MISC_ENABLE with fast strings, MTRRdefType enabled and write-back), the x87/SSE state
 * (FCW 0x37f, MXCSR 0x1f80) and XCR0 = x87|SSE through KVM_SET_XCRS when the host has
 * KVM_CAP_XCRS. Call on every vCPU before it first runs. Returns 0 or -errno; an MSR the
 * host refuses is not an error: its index goes to *@refused (may be NULL; 0 if none). */
int x86_vcpu_init_state(struct vcpu *c, uint32_t *refused);

/* Write the GDT and page tables into guest memory (@c's VM) and set the
 * boot vCPU's control registers, segments and registers so it starts at
 * @entry with RSI = @zero_page. Set its CPUID first. Returns 0 or -errno. */
int x86_boot64_setup(struct vcpu *c, uint64_t entry, uint64_t zero_page);

/* PVH entry (Xen's PVH boot ABI, as Linux implements it): 32-bit protected mode, paging
 * off, flat 4 GiB CS (0x10, read/execute) and DS/ES/SS (0x18, read/write) from a GDT written
 * at BOOT64_GDT, EBX = @start_info, EIP = @entry, interrupts off. Returns 0 or -errno. */
int x86_pvh_setup(struct vcpu *c, uint32_t entry, uint32_t start_info);

#endif
