/* SPDX-License-Identifier: MIT */
/*
 * Options of service VMs (`nubis run --rootfs ...`), parsed in one place into
 * a struct svc_config: root filesystem, memory, vCPUs, threads, environment,
 * volumes, published ports and allowed connections.
 */
#ifndef NUBIS_CLI_SVCOPTS_H
#define NUBIS_CLI_SVCOPTS_H

#include <getopt.h>
#include <stdio.h>

#include "../svc/svc.h"

#define SVCOPTS_MAX 64

struct svc_opts {
	struct svc_config cfg;
	const char *lower[SVCOPTS_MAX]; /* --rootfs, top first */
	struct svc_volume vols[SVCOPTS_MAX];
	char *vol_store[SVCOPTS_MAX];
	struct svc_publish pubs[SVCOPTS_MAX];
	struct svc_allow allows[SVCOPTS_MAX];
	char *env[258];
	size_t nenv;
	bool any; /* a service-VM option was given */
};

/* getopt_long codes (kept apart from the function-VM options' codes) */
enum {
	SVCOPT_ROOTFS = 2000,
	SVCOPT_UPPER,
	SVCOPT_MEMORY,
	SVCOPT_CPUS,
	SVCOPT_MAX_THREADS,
	SVCOPT_MAX_FDS,
	SVCOPT_WORKDIR,
	SVCOPT_ENV,
	SVCOPT_VOLUME,
	SVCOPT_PUBLISH,
	SVCOPT_ALLOW,
	SVCOPT_DISK_QUOTA,
	SVCOPT_VDSO,	     /* vdso helper */
	SVCOPT_SYSCALL_MODE, /* exitless */
};

#define SVC_LONGOPTS                                                                               \
	{"rootfs", required_argument, NULL, SVCOPT_ROOTFS},                                        \
	    {"upper", required_argument, NULL, SVCOPT_UPPER},                                      \
	    {"memory", required_argument, NULL, SVCOPT_MEMORY},                                    \
	    {"cpus", required_argument, NULL, SVCOPT_CPUS},                                        \
	    {"max-threads", required_argument, NULL, SVCOPT_MAX_THREADS},                          \
	    {"max-fds", required_argument, NULL, SVCOPT_MAX_FDS},                                  \
	    {"workdir", required_argument, NULL, SVCOPT_WORKDIR},                                  \
	    {"env", required_argument, NULL, SVCOPT_ENV},                                          \
	    {"volume", required_argument, NULL, SVCOPT_VOLUME},                                    \
	    {"publish", required_argument, NULL, SVCOPT_PUBLISH},                                  \
	    {"allow-connect", required_argument, NULL, SVCOPT_ALLOW},                              \
	    {"vdso", required_argument, NULL, SVCOPT_VDSO},                                        \
	    {"disk-quota", required_argument, NULL, SVCOPT_DISK_QUOTA},                            \
	{                                                                                          \
		"syscall-mode", required_argument, NULL, SVCOPT_SYSCALL_MODE                       \
	}

void svc_opts_init(struct svc_opts *o);
void svc_opts_free(struct svc_opts *o);
/* Handle option @c with @arg. Returns 1 if handled, 0 if not a service-VM
 * option, -1 on a bad value (message on stderr). */
int svc_opts_handle(struct svc_opts *o, int c, const char *arg);
/* Finish the config: argv/envp; checks what needs all options. 0 or -1. */
int svc_opts_finish(struct svc_opts *o, char **prog_argv);
void svc_opts_usage(FILE *out);

/* "HOST_ADDR:HOST_PORT:GUEST_PORT[/tcp|/udp]" (IPv6 in brackets; "HOST_PORT:GUEST_PORT"
 * means 127.0.0.1). 0 or -EINVAL. */
int svc_parse_publish(const char *s, struct svc_publish *out);
/* "ADDR:PORT[/tcp|/udp]" (IPv6 in brackets); proto 0 when not given. 0 or -EINVAL. */
int svc_parse_allow(const char *s, struct svc_allow *out);
/* "HOST_DIR:GUEST_DIR[:ro|:rw]"; both absolute. Pointers into *@store (caller frees). */
int svc_parse_volume(const char *s, struct svc_volume *out, char **store);

/* `nubis run --rootfs ...`: a service VM in the foreground. */
int cmd_svc_run(int argc, char **argv);

#endif
