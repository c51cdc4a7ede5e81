/* SPDX-License-Identifier: MIT */
/*
 * nubis-vmm: one Linux-style VM — a bzImage booted directly (64-bit boot
 * protocol, no firmware), ACPI tables, a 16550A console, an ACPI PM1 block
 * for poweroff, i8042 and 0xCF9 for reset.
 *
 * One thread per vCPU (the others wait for INIT/SIPI from the boot vCPU);
 * memory up to VMM_MAX_MEM, RAM below the 32-bit PCI hole [3 GiB, 4 GiB) and
 * the rest from 4 GiB (one KVM slot each), mapped lazily, optionally in huge
 * pages; a bzImage (64-bit boot protocol) or a vmlinux with a PVH note (PVH
 * entry); KVM's paravirtual CPUID leaves (kvmclock); a reset either ends the
 * run or restarts the guest; a control API (api.h).
 */
#ifndef NUBIS_VMM_VMM_H
#define NUBIS_VMM_VMM_H

#include <stdint.h>

#include "../common/error.h"

/* Exit statuses of nubis-vmm. */
#define VMM_STATUS_POWEROFF 0 /* the guest powered off (ACPI S5) */
#define VMM_STATUS_USAGE    1 /* bad option, file or configuration */
#define VMM_STATUS_REBOOT   2 /* the guest asked for a reset (policy exit, or restarts used up) */
#define VMM_STATUS_CRASH    3 /* triple fault: registers dumped */
#define VMM_STATUS_INTERNAL 4 /* KVM error: registers dumped */
#define VMM_STATUS_TIMEOUT  5 /* --timeout passed */
#define VMM_STATUS_QUIT	    6 /* the user typed Ctrl-A x on the console */
#define VMM_STATUS_KILLED   7 /* PUT /vm/kill on the control API */

#define VMM_MIN_MEM (16ull << 20)
#define VMM_MAX_MEM (64ull << 30)

/* Guest RAM backing (--hugepages). */
enum vmm_hugepages {
	VMM_HUGE_OFF,	  /* 4 KiB pages (the kernel may still use THP if it is "always") */
	VMM_HUGE_HUGETLB, /* MAP_HUGETLB 2 MiB pages from the host's pool, reserved at start;
			     an error if HugePages_Free is too small */
	VMM_HUGE_THP,	  /* transparent huge pages: madvise(MADV_HUGEPAGE) */
};

/* What a guest reset does (--on-reset). */
enum vmm_on_reset {
	VMM_RESET_EXIT,	   /* end with VMM_STATUS_REBOOT */
	VMM_RESET_RESTART, /* boot again in this process: a fresh VM, devices and RAM */
};
#define VMM_DEFAULT_MAX_RESTARTS 10

struct vmm_config {
	const char *kernel;  /* bzImage, or vmlinux (ELF) with a PVH note */
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* NULL: "" */
	unsigned cpus;
	uint64_t mem_size;
	int console_fd;	       /* serial output; -1: discarded */
	int input_fd;	       /* serial input (raw mode on a terminal); -1: none */
	uint64_t timeout_ns;   /* 0: none */
	const char *api_sock;  /* control API socket path; NULL: none */
	int hugepages;	       /* enum vmm_hugepages */
	int on_reset;	       /* enum vmm_on_reset */
	unsigned max_restarts; /* with VMM_RESET_RESTART: boots after the first, at most */
	int pvm_compat;	       /* enum pvm_mode (pvm.h): PVM_AUTO (0), PVM_ON, PVM_OFF */
};

/* Boot and run the VM until it powers off, resets, crashes or times out.
 * Returns a VMM_STATUS_*; fills @err (one line) for USAGE/INTERNAL. */
int vmm_run(const struct vmm_config *cfg, struct nb_error *err);

#endif
