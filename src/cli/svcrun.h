/* SPDX-License-Identifier: MIT */
/*
 * `nubis run` for service VMs: IMAGE resolution, the -d/--name/--rm branch,
 * and the service options kept in config.json.
 *
 * Which `nubis run` is a service VM: one given -d/--detach, --name or --rm,
 * or whose first argument is not a path with a '/' and names an image in the
 * store. Anything else (./prog, /usr/bin/prog, a host program path) keeps
 * running as a function VM (src/cli/cmd_run.c).
 */
#ifndef NUBIS_CLI_SVCRUN_H
#define NUBIS_CLI_SVCRUN_H

#include <jansson.h>
#include <stdbool.h>

#include "../common/error.h"
#include "svcopts.h"

/* The service options (core's struct svc_opts) plus what services adds. */
struct svcrun_opts {
	struct svc_opts svc;
};
void svcrun_opts_init(struct svcrun_opts *o);
void svcrun_opts_free(struct svcrun_opts *o);
/* Apply config.json's "options" ([[name, value], ...], values kept by
 * pointer: @pairs must outlive @o). Returns 0 or -1 with @err. */
int svcrun_opts_from_json(struct svcrun_opts *o, json_t *pairs, struct nb_error *err);

/* true if `nubis run ARGS` (@argv[0] is "run") is for a service VM. */
bool svcrun_wanted(int argc, char **argv);
/* `nubis run` of a service VM; returns the exit status. */
int svcrun_main(int argc, char **argv);
void svcrun_usage(FILE *out);

#endif
