/* SPDX-License-Identifier: MIT */
/* The nubis command line: a table of subcommands, one file each. */
#ifndef NUBIS_CLI_H
#define NUBIS_CLI_H

#include <stdio.h>

#include "../core/kvmhost.h"
#include "../fnvm/fnvm.h"

struct cli_cmd {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv); /* argv[0] is the subcommand */
	void (*usage)(FILE *out);
};

int cmd_run_main(int argc, char **argv);
void cmd_run_usage(FILE *out);
int cmd_serve_main(int argc, char **argv);
void cmd_serve_usage(FILE *out);
int cmd_info_main(int argc, char **argv);
void cmd_info_usage(FILE *out);
int cmd_image_main(int argc, char **argv);
void cmd_image_usage(FILE *out);

/* Service VMs without a daemon (services): src/cli/cmd_ps.c, cmd_logs.c,
 * cmd_stop.c (stop, kill, pause, resume, start, rm, inspect); the detached
 * monitor is the hidden `nubis __monitor` (svcmon.h). */
int cmd_ps_main(int argc, char **argv);
void cmd_ps_usage(FILE *out);
int cmd_logs_main(int argc, char **argv);
void cmd_logs_usage(FILE *out);
int cmd_stop_main(int argc, char **argv);
void cmd_stop_usage(FILE *out);
int cmd_kill_main(int argc, char **argv);
void cmd_kill_usage(FILE *out);
int cmd_pause_main(int argc, char **argv);
void cmd_pause_usage(FILE *out);
int cmd_resume_main(int argc, char **argv);
void cmd_resume_usage(FILE *out);
int cmd_start_main(int argc, char **argv);
void cmd_start_usage(FILE *out);
int cmd_rm_main(int argc, char **argv);
void cmd_rm_usage(FILE *out);
int cmd_inspect_main(int argc, char **argv);
void cmd_inspect_usage(FILE *out);

/* Options shared by run and serve (memory, limits, channels, env, seed). */
struct fn_opts {
	struct fnvm_config cfg;
	struct fnvm_channel_spec chans[64];
	char *chan_store[64];
	char *env[256];
	size_t nenv;
	int envc_explicit;
};
void fn_opts_init(struct fn_opts *o);
void fn_opts_free(struct fn_opts *o);
/* Handle one shared option (its getopt value @c with @arg). Returns 1 if
 * handled, 0 if not a shared option, -1 on a bad value (message printed). */
int fn_opts_handle(struct fn_opts *o, int c, const char *arg);
void fn_opts_usage(FILE *out);
/* getopt_long codes of the shared options */
enum {
	OPT_MEMORY = 1000,
	OPT_TIMEOUT,
	OPT_CHANNEL,
	OPT_ENV,
	OPT_SEED,
	OPT_OUTPUT_LIMIT,
	OPT_SYSCALL_LIMIT,
	OPT_TRACE,
};
#define FN_LONGOPTS                                                                                \
	{"memory", required_argument, NULL, OPT_MEMORY},                                           \
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},                                     \
	    {"channel", required_argument, NULL, OPT_CHANNEL},                                     \
	    {"env", required_argument, NULL, OPT_ENV},                                             \
	    {"seed", required_argument, NULL, OPT_SEED},                                           \
	    {"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},                           \
	    {"syscall-limit", required_argument, NULL, OPT_SYSCALL_LIMIT},                         \
	{                                                                                          \
		"trace", no_argument, NULL, OPT_TRACE                                              \
	}

/* Rearrange a command line so that nubis's own long options written after
 * PROGRAM (as in `nubis run PROGRAM ARGS --timeout 2s`) come before it;
 * arguments that are not nubis options, and everything after a "--", stay
 * PROGRAM's. Returns a malloc'd array (pointing into argv; free only the
 * array) with a "--" before PROGRAM, or NULL when out of memory. */
struct option;
char **fn_reorder_args(int argc, char **argv, const struct option *opts, int *out_argc);
/* fn_reorder_args() applied to @argc and @argv in place; returns the array to
 * free, or NULL (message printed) when out of memory. */
char **fn_reorder_argv(int *argc, char ***argv, const struct option *opts);

/* Exit status for a failed program creation. */
int fn_status_for_error(const struct nb_error *err);
/* Open KVM and prepare PROGRAM (prog_argv[0]) with the options' config.
 * Returns 0, or an exit status after printing why. The caller closes @kvm
 * (if its fd is >= 0) and destroys *@prog. */
int fn_load(struct fn_opts *o, char **prog_argv, struct kvmhost *kvm, struct fnvm_program **prog);

#endif
