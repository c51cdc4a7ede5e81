/* SPDX-License-Identifier: MIT */
/*
 * HTTP front end for function VMs: each request runs the program in a fresh
 * VM; the request body is its stdin, its stdout the response body.
 *
 *   POST|PUT|GET /...   200, body = stdout, headers:
 *                         X-Nubis-Status   the shell-style status (see fnvm.h)
 *                         X-Nubis-Outcome  exited|signaled|timeout|output-limit|
 *                                          syscall-limit|deadlock|error
 *                         X-Nubis-Message  one line for non-exit outcomes
 *                         X-Nubis-Duration-Us
 *                       413 body too large, 503 queue full, 500 no VM could be made
 *
 * Workers run requests in parallel; at most `queue` requests wait for one.
 */
#ifndef NUBIS_FNVM_SERVE_H
#define NUBIS_FNVM_SERVE_H

#include "fnvm.h"

struct fnvm_server_config {
	const char *listen; /* "unix:PATH" or "tcp:ADDR:PORT" (ADDR IPv4 or [IPv6]) */
	unsigned workers;   /* parallel VMs (default: online CPUs) */
	unsigned queue;	    /* waiting requests before 503 (default 64) */
	size_t max_body;    /* bytes (default 16 MiB) */
};

struct fnvm_server;
/* Bind, start the HTTP server, the workers and a VM pool. Returns 0 or -1 with @err. */
int fnvm_server_start(struct fnvm_program *p, const struct fnvm_server_config *cfg,
		      struct fnvm_server **out, struct nb_error *err);
/* Stop accepting, finish running requests, free everything. NULL is a no-op. */
void fnvm_server_stop(struct fnvm_server *s);
/* Requests served so far (any outcome) and refused with 503. */
void fnvm_server_stats(struct fnvm_server *s, uint64_t *served, uint64_t *refused);

#endif
