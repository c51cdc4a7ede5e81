/* SPDX-License-Identifier: MIT */
/*
 * The host's KVM: /dev/kvm, its capabilities and its flavour.
 *
 * One struct kvmhost per process is typical, but nothing is global: tests may
 * open several. After kvmhost_open() the struct is read-only, so it may be shared
 * between threads.
 */
#ifndef NUBIS_CORE_KVMHOST_H
#define NUBIS_CORE_KVMHOST_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>

#include "../common/error.h"

enum kvmhost_flavour {
	KVMHOST_UNKNOWN,
	KVMHOST_VMX, /* Intel VT-x: guest ring 0 runs natively */
	KVMHOST_SVM, /* AMD-V: guest ring 0 runs natively */
	KVMHOST_PVM, /* kvm_pvm: guest ring 3 native, guest ring 0 emulated */
};

struct kvmhost {
	int fd;
	int api_version;
	int run_mmap_size;
	int max_vcpus;
	enum kvmhost_flavour flavour;
	bool has_sync_regs, has_immediate_exit, has_irqchip, has_ioeventfd, has_irqfd,
	    has_dirty_log_ring, has_user_msr, has_guest_debug, has_xsave, has_xcrs, has_tsc_control,
	    has_nested_state;
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, owned */
};

/* Open /dev/kvm (or $NUBIS_KVM_DEVICE) and probe. Fills @err and returns -1 on failure. */
int kvmhost_open(struct kvmhost *h, struct nb_error *err);
void kvmhost_close(struct kvmhost *h);
const char *kvmhost_flavour_name(enum kvmhost_flavour f);
/* Human-readable report of flavour and capabilities (nubis info). */
void kvmhost_report(const struct kvmhost *h, FILE *out);

#endif
