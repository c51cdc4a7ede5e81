/* SPDX-License-Identifier: MIT */
/*
 * The per-container monitor process of a service VM (no daemon): it builds
 * the VM from containers/<id>/config.json, pumps the guest's stdout/stderr
 * into the size-capped log, serves the control socket (src/svc/ctl.h),
 * records the life cycle in state.json and holds the container's lock for
 * its whole life (the liveness test of svcstate_monitor_alive()).
 */
#ifndef NUBIS_CLI_SVCMON_H
#define NUBIS_CLI_SVCMON_H

#include <stdio.h>

#include "svcstate.h"

#define SVCMON_LOG_MAX_DEFAULT	(10u << 20) /* bytes of log before it rotates to log.1 */
#define SVCMON_READY_TIMEOUT_MS 60000

/* `nubis __monitor [--home DIR] [--ready-fd N] ID`: the detached monitor
 * (started by svcmon_spawn, not by users). Its exit status is the guest's. */
int svcmon_main(int argc, char **argv);

/* Start a detached monitor for @r (double fork + setsid + exec of this
 * binary) and wait until it reports that the guest runs (0) or why it could
 * not start (-1 with @err; the message is the monitor's). */
int svcmon_spawn(const struct svcstate_store *s, const struct svcstate_rec *r,
		 struct nb_error *err);

/* Run @r's VM in this process with the terminal's stdio (output is also
 * logged); SIGINT/SIGTERM/SIGHUP/SIGQUIT are forwarded to the guest.
 * Returns the guest's shell-style status, or 125 after printing why it could
 * not start. */
int svcmon_foreground(const struct svcstate_store *s, struct svcstate_rec *r);

#endif
