/* SPDX-License-Identifier: MIT */
/*
 * System-call filter (seccomp, libseccomp) of a service-VM monitor: applied
 * to every thread once the VM is created (KVM opened, program loaded, root
 * filesystem and network set up), before the guest runs. Wider than the
 * function-VM filter: threads, futexes, polling, eventfds, and the host calls
 * the fs and net modules make on the guest's behalf. Anything else kills the
 * process (SIGSYS). Builds with -Dseccomp=false leave it out (debugging).
 */
#ifndef NUBIS_SVC_SANDBOX_H
#define NUBIS_SVC_SANDBOX_H

#include "../common/error.h"

/* Install the filter on every thread of the process. 0 or -1 with @err. */
int svc_sandbox_apply(struct nb_error *err);

#endif
