/* SPDX-License-Identifier: MIT */
/*
 * System-call filter (seccomp, libseccomp) applied to the whole monitor
 * process once it is set up: /dev/kvm open, the program and its channels
 * loaded, for a server the listening socket bound and every thread started.
 * From then on a guest that found a bug in the monitor could use only the
 * calls listed in sandbox.c (ioctl only with the KVM requests the monitor
 * makes); anything else kills the process (SIGSYS).
 *
 * Builds with -Dseccomp=false leave it out, for debugging only.
 */
#ifndef NUBIS_FNVM_SANDBOX_H
#define NUBIS_FNVM_SANDBOX_H

#include "../common/error.h"

enum fnvm_sandbox_kind {
	FNVM_SANDBOX_RUN,   /* nubis run: one VM, already prepared */
	FNVM_SANDBOX_SERVE, /* nubis serve: makes VMs and answers HTTP */
};

/* Install the filter on every thread of the process. Returns 0 or -1 with @err. */
int fnvm_sandbox_apply(enum fnvm_sandbox_kind kind, struct nb_error *err);

#endif
