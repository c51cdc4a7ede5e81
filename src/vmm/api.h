/* SPDX-License-Identifier: MIT */
/*
 * The monitor's control API: HTTP+JSON on a Unix socket (libmicrohttpd).
 *
 *   GET /vm            200 {"state": "running"|"paused"|"stopping", "cpus": N,
 *                          "memory": BYTES, "kernel": PATH, "cmdline": STR}
 *   PUT /vm/pause      204; 409 if already paused or stopping
 *   PUT /vm/resume     204; 409 if not paused
 *   PUT /vm/shutdown   204: ACPI power-button event (the guest decides)
 *   PUT /vm/kill       204: the monitor exits (status 7)
 *   anything else      404 (unknown path) or 405 (wrong method)
 * Errors are {"error": {"code": "...", "message": "..."}}.
 */
#ifndef NUBIS_VMM_API_H
#define NUBIS_VMM_API_H

#include <stddef.h>

#include "../common/error.h"

struct vmm_api_ops {
	/* The VM's state as a JSON object (malloc'd, the API frees it), or NULL. */
	char *(*describe)(void *vm);
	/* 0, or a negative errno: -EALREADY (nothing to do), -ESRCH (stopping). */
	int (*pause)(void *vm);
	int (*resume)(void *vm);
	int (*shutdown)(void *vm);
	int (*kill)(void *vm);
};

struct vmm_api;
/* Listen on @path (a stale socket of a dead monitor is replaced; a live one
 * is an error) and serve requests on a thread of libmicrohttpd's. */
int vmm_api_start(const char *path, const struct vmm_api_ops *ops, void *vm, struct vmm_api **out,
		  struct nb_error *err);
/* Stop serving and remove the socket. NULL is a no-op. */
void vmm_api_stop(struct vmm_api *a);

#endif
