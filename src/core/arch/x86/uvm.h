/* SPDX-License-Identifier: MIT */
/*
 * x86-64 "user-mode VM" layout: the guest runs one program in ring 3 of a
 * flat, identity-mapped 64-bit address space (guest virtual == guest
 * physical). The monitor serves its system calls; the only ring-0 code is
 * a few bytes of stubs:
 *
 *   - SYSCALL enters UVM_SYSCALL_STUB, which stores EAX to the doorbell page
 *     (a page whose guest-physical address has no memory behind it, so the
 *     store is one MMIO exit to the monitor, which serves the call) and then
 *     `sysretq`s. kvm_pvm enters that stub without leaving ring 3; the
 *     monitor then returns to RCX/R11 itself, so no guest ring-0 instruction
 *     runs at all. (A port write would need IOPL 3, which kvm_pvm drops.)
 *   - Each exception vector 0..31 enters a 16-byte stub that executes `hlt`
 *     (an exit that names the vector by its address), then pops the error
 *     code if any and `iretq`s, so the monitor may resume the program after
 *     emulating an instruction (rdtsc with CR4.TSD set) or stop it.
 *
 * Guest-physical map (all below UVM_USER_BASE is the monitor's):
 *   0x000000            not present (NULL guard)
 *   UVM_PML4 .. UVM_PD  page tables: 4 KiB pages below 2 MiB, 2 MiB pages above
 *   UVM_GDT, UVM_TSS, UVM_IDT, UVM_EXC_STUBS, UVM_SYSCALL_STUB, ring-0 stack
 *   UVM_VVAR, UVM_VDSO  service VMs only: the clock page and the vDSO, user
 *                       read-only (vDSO executable), see src/svc/vdso.h
 *   UVM_USER_BASE ..    the program's: ELF segments, heap, mappings, stack
 */
#ifndef NUBIS_CORE_ARCH_X86_UVM_H
#define NUBIS_CORE_ARCH_X86_UVM_H

#include <linux/kvm.h>
#include <stdint.h>

#include "../../vm.h"

#define UVM_PML4	      0x1000ull
#define UVM_PDPT	      0x2000ull
#define UVM_PT0		      0x3000ull /* 4 KiB page table for [0, 2 MiB) */
#define UVM_PD		      0x4000ull /* one page directory per GiB */
#define UVM_MAX_GIB	      64ull
#define UVM_GDT		      0x48000ull
#define UVM_TSS		      0x49000ull /* one 128-byte slot per vCPU id (UVM_MAX_VCPUS) */
#define UVM_TSS_SLOT	      0x80ull
#define UVM_IDT		      0x4b000ull
#define UVM_EXC_STUBS	      0x4c000ull
#define UVM_EXC_STUB_SZ	      16
#define UVM_SYSCALL_STUB      0x4d000ull
#define UVM_DOORBELL	      0x4f000ull	     /* virtual; maps UVM_DOORBELL_GPA */
#define UVM_DOORBELL_GPA      UVM_MAX_MEM	     /* just above the largest guest memory */
#define UVM_SYSCALL_STUB_DONE (UVM_SYSCALL_STUB + 7) /* RIP after the doorbell store */
/* Warm-up routine in the same page: reads one byte of every page in
 * [RSI, RDI) (so their shadow/EPT mappings exist), then executes SYSCALL,
 * which reaches the doorbell through the stub. The monitor learns there, from
 * code of its own, at which privilege level SYSCALL enters the stub. */
#define UVM_WARMUP     (UVM_SYSCALL_STUB + 0x40)
#define UVM_STACK0_LO  0x4e000ull
#define UVM_STACK0_TOP 0x4f000ull
/* Ring-0 stacks of vCPUs 1..UVM_MAX_VCPUS-1 (vCPU 0 uses UVM_STACK0_*):
 * exceptions of several vCPUs at once must not share a stack. */
#define UVM_STACKS    0x50000ull
#define UVM_STACK_SZ  0x400ull
#define UVM_MAX_VCPUS 64
/* Exitless system calls (service VMs, src/svc/exitless.h): a control page
 * and UVM_MAX_VCPUS request slots of 128 bytes, user-accessible; the fast
 * stub lives in the SYSCALL stub page (written by the service-VM monitor). */
#define UVM_FAST_CTRL  0x60000ull
#define UVM_FAST_SLOTS 0x61000ull
#define UVM_FAST_STUB  (UVM_SYSCALL_STUB + 0x100)
#define UVM_SYS_END    0x63000ull /* end of what x86_uvm_build writes */
#define UVM_GDT_LIMIT  (UVM_SEL_TSS + 16 * UVM_MAX_VCPUS - 1)
#define UVM_USER_BASE  0x200000ull /* lowest address the program may use */
/* vDSO (service VMs): the clock page, then up to UVM_VDSO_MAX bytes of vDSO
 * image, both below UVM_USER_BASE. */
#define UVM_VVAR     0x1e0000ull
#define UVM_VDSO     (UVM_VVAR + 0x1000ull)
#define UVM_VDSO_MAX (UVM_USER_BASE - UVM_VDSO)
#define UVM_PAGE_2M  0x200000ull
#define UVM_MAX_MEM  (UVM_MAX_GIB << 30)

#define UVM_SEL_KCODE 0x08
#define UVM_SEL_KDATA 0x10
#define UVM_SEL_UDATA 0x1b
#define UVM_SEL_UCODE 0x23
#define UVM_SEL_TSS   0x28 /* vCPU i: UVM_SEL_TSS + 16 * i */

/* Initial user RFLAGS: IF set, IOPL 0. No interrupts are ever injected. */
#define UVM_USER_RFLAGS 0x202ull

/* Write page tables, GDT, TSS, IDT and stubs for a guest of @mem_size bytes
 * into @sys, a host buffer that backs guest-physical [0, UVM_SYS_END).
 * @mem_size must be a multiple of 2 MiB in [4 MiB, UVM_MAX_MEM]. Returns 0 or -EINVAL. */
int x86_uvm_build(uint8_t *sys, uint64_t mem_size);

/* Make the 4 KiB pages of [@gva, @gva + @len) in [UVM_SYS_END, UVM_USER_BASE)
 * present and user-readable in the tables x86_uvm_build() wrote to @sys,
 * identity-mapped, read-only, executable only if @exec. Returns 0 or -EINVAL
 * (range outside that area). (vdso helper) */
int x86_uvm_map_user(uint8_t *sys, uint64_t gva, uint64_t len, int exec);

/* Ring-0 stack top of vCPU @id (< UVM_MAX_VCPUS). */
static inline uint64_t x86_uvm_stack0_top(int id)
{
	return id == 0 ? UVM_STACK0_TOP : UVM_STACKS + UVM_STACK_SZ * (uint64_t)id;
}

/* Configure a fresh vCPU for the layout: CPUID, control registers, segments,
 * SYSCALL MSRs, XCR0. Each vCPU id (< UVM_MAX_VCPUS) has its own TSS and
 * ring-0 stack, so vCPUs of one VM may take exceptions at the same time.
 * Call before the first KVM_RUN; calling it again resets a used vCPU to the
 * initial state (ring 3, FS/GS base 0). Returns 0 or -errno. */
int x86_uvm_vcpu_init(struct vcpu *c);
/* Bring a vCPU that has run back to the state x86_uvm_vcpu_init() left it
 * in (for reuse by another guest thread). Returns 0 or -errno. */
int x86_uvm_vcpu_reset(struct vcpu *c);

/* Vector of the exception stub that executed `hlt` at @rip - 1, or -1. */
int x86_uvm_exc_vector(uint64_t rip_after_hlt);
/* True if an MMIO exit at @gpa with RIP @rip is the SYSCALL stub's doorbell. */
static inline int x86_uvm_is_syscall_exit(uint64_t gpa, uint64_t rip)
{
	return gpa == UVM_DOORBELL_GPA && rip == UVM_SYSCALL_STUB_DONE;
}
/* Exceptions that push an error code. */
static inline int x86_exc_has_error_code(int v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

#endif
