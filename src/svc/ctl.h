/* SPDX-License-Identifier: MIT */
/*
 * The control socket of a service-VM monitor: HTTP/1.1 + JSON on a Unix
 * socket (libmicrohttpd, loaded at start), the one error shape of every
 * nubis API ({"error":{"code","message"}}).
 *
 *   GET /state                      200 {"status","pid","exit_code",...}
 *   PUT /stop?timeout=SECONDS       202: SIGTERM now, SIGKILL after the grace
 *                                   period (default 10, at most 86400)
 *   PUT /kill?signal=N|NAME         204: deliver a signal (default SIGKILL)
 *   PUT /pause, PUT /resume         204; 409 if already paused / not paused
 *
 * Errors: 400 bad parameter, 404 unknown path, 405 wrong method, 409 the VM
 * is not in a state for the request (exited, stopping, paused), 500.
 * The OpenAPI document is src/svc/ctl-openapi.json.
 */
#ifndef NUBIS_SVC_CTL_H
#define NUBIS_SVC_CTL_H

#include "../common/error.h"

/* What the monitor does for each request. Called from the server's thread;
 * the functions return 0 or a negative errno (-EALREADY: nothing to do,
 * -ESRCH: the VM has ended or is ending, -EINVAL: bad argument). */
struct ctl_ops {
	char *(*state)(void *arg); /* malloc'd JSON object, NULL on ENOMEM */
	int (*stop)(void *arg, unsigned timeout_s);
	int (*kill)(void *arg, int sig);
	int (*pause)(void *arg);
	int (*resume)(void *arg);
};

struct ctl;

/* Listen on @path (a stale socket of a dead monitor is replaced, a live one
 * is an error) and serve @ops with @arg. Returns 0 or -1 with @err. */
int ctl_start(const char *path, const struct ctl_ops *ops, void *arg, struct ctl **out,
	      struct nb_error *err);
/* Stop serving (responses in flight are let out first) and remove the
 * socket file. NULL is a no-op. */
void ctl_stop(struct ctl *c);

/* Signal number of "TERM", "SIGTERM", "sigterm" or "15"; -1 if none. */
int ctl_signal_parse(const char *s);

#endif
