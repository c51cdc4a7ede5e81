/* SPDX-License-Identifier: MIT */
/* Measured costs of the host's KVM, for `nubis info --measure`. */
#ifndef NUBIS_CORE_ARCH_X86_PROBE_H
#define NUBIS_CORE_ARCH_X86_PROBE_H

#include "../../kvmhost.h"

struct x86_probe {
	double vm_cycle_us; /* create VM + vCPU + memory, run to first exit, destroy */
	double
	    exit_user_us; /* one exit from guest ring 3 to the monitor and back (MMIO doorbell) */
	double ring3_ns_per_insn; /* guest user-mode instruction */
	double ring0_ns_per_insn; /* guest kernel-mode instruction (emulated on kvm_pvm) */
};

/* Run small guests and time them (~0.2 s). Returns 0 or -errno. */
int x86_probe_measure(const struct kvmhost *kvm, struct x86_probe *out);

#endif
