/* SPDX-License-Identifier: MIT */
/*
 * nubis-vmm: one Linux-style VM — a bzImage booted directly (64-bit boot
 * protocol, no firmware), ACPI tables, a 16550A console, an ACPI PM1 block
 * for poweroff, i8042 and 0xCF9 for reset.
 *
 * First step of the Linux-VM issue: one thread per vCPU (the others wait for
 * INIT/SIPI from the boot vCPU), memory up to 3 GiB, a control API (api.h),
 * no virtio, no kvm_pvm compatibility mode yet.
 */
#ifndef NUBIS_VMM_VMM_H
#define NUBIS_VMM_VMM_H

#include <stdint.h>

#include "../common/error.h"

/* Exit statuses of nubis-vmm. */
#define VMM_STATUS_POWEROFF 0 /* the guest powered off (ACPI S5) */
#define VMM_STATUS_USAGE    1 /* bad option, file or configuration */
#define VMM_STATUS_REBOOT   2 /* the guest asked for a reset (policy: exit) */
#define VMM_STATUS_CRASH    3 /* triple fault: registers dumped */
#define VMM_STATUS_INTERNAL 4 /* KVM error: registers dumped */
#define VMM_STATUS_TIMEOUT  5 /* --timeout passed */
#define VMM_STATUS_QUIT	    6 /* the user typed Ctrl-A x on the console */
#define VMM_STATUS_KILLED   7 /* PUT /vm/kill on the control API */

struct vmm_config {
	const char *kernel;  /* bzImage */
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* NULL: "" */
	unsigned cpus;
	uint64_t mem_size;
	int console_fd;	      /* serial output; -1: discarded */
	int input_fd;	      /* serial input (raw mode on a terminal); -1: none */
	uint64_t timeout_ns;  /* 0: none */
	const char *api_sock; /* control API socket path; NULL: none */
	int pvm_compat;	      /* enum pvm_mode (pvm.h): PVM_AUTO (0), PVM_ON, PVM_OFF */
};

/* Boot and run the VM until it powers off, resets, crashes or times out.
 * Returns a VMM_STATUS_*; fills @err (one line) for USAGE/INTERNAL. */
int vmm_run(const struct vmm_config *cfg, struct nb_error *err);

#endif
