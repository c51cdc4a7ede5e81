/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY (branch services, until core and image are merged): the option
 * parser of struct svc_config that core provides, as services expects it.
 * Deleted at the merge; nothing here is a finished feature.
 */
#ifndef NUBIS_CLI_SVC_PREMERGE_H
#define NUBIS_CLI_SVC_PREMERGE_H

#include <getopt.h>
#include <stdio.h>

#include "../svc/svc.h"

struct svc_opts {
	struct svc_config cfg;
};
void svc_opts_init(struct svc_opts *o);
void svc_opts_free(struct svc_opts *o);
int svc_opts_handle(struct svc_opts *o, int c, const char *arg);
void svc_opts_usage(FILE *out);
enum { SOPT_MEMORY = 3000, SOPT_CPUS, SOPT_PUBLISH, SOPT_VOLUME };
#define SVC_LONGOPTS                                                                               \
	{"memory", required_argument, NULL, SOPT_MEMORY},                                          \
	    {"cpus", required_argument, NULL, SOPT_CPUS},                                          \
	    {"publish", required_argument, NULL, SOPT_PUBLISH},                                    \
	{                                                                                          \
		"volume", required_argument, NULL, SOPT_VOLUME                                     \
	}

#endif
