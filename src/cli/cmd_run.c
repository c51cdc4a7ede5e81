/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kvmhost.h"
#include "../fnvm/sandbox.h"
#include "cli.h"
#include "svcopts.h"
#include "svcrun.h"

static int sandbox_run(void *arg, struct nb_error *err)
{
	(void)arg;
	return fnvm_sandbox_apply(FNVM_SANDBOX_RUN, err);
}

void cmd_run_usage(FILE *out)
{
	fprintf(out,
		"usage: nubis run [OPTIONS] PROGRAM [ARGS...] [OPTIONS] [-- ARGS...]\n\n"
		"Run an unmodified static x86-64 Linux executable in a fresh VM. nubis options\n"
		"may also follow PROGRAM; other arguments, and all after \"--\", are PROGRAM's.\n"
		"Its standard streams are nubis's; its exit status becomes nubis's.\n"
		"Statuses nubis itself uses:\n"
		"  119 a channel's host file cannot be used  120 internal error  121 output limit\n"
		"  122 system-call limit  123 deadlock\n"
		"  124 timeout  125 bad usage/config  126 not a static x86-64 executable  127 not "
		"found\n"
		"  128+N killed by signal N (a fault: 132 SIGILL, 136 SIGFPE, 139 SIGSEGV)\n\n"
		"options:\n");
	fn_opts_usage(out);
	fprintf(out,
		"\nWith --rootfs, PROGRAM runs as a service VM: a long-running program with a\n"
		"root filesystem, threads, signals and sockets (docs/SERVICE-VMS.md). PROGRAM\n"
		"is a path in the root filesystem or a name looked up in PATH. Options:\n");
	svc_opts_usage(out);
	fprintf(out, "\nService VMs from images, detached and managed (ps, logs, stop, ...): see\n"
		     "`nubis run -d --help`.\n");
}

/* True if the command line asks for a service VM (--rootfs before "--"). */
static bool wants_service_vm(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--rootfs") || !strncmp(argv[i], "--rootfs=", 9))
			return true;
	return false;
}

int cmd_run_main(int argc, char **argv)
{
	/* service VMs (IMAGE, -d, --name, --rm): src/cli/svcrun.c */
	if (svcrun_wanted(argc, argv))
		return svcrun_main(argc, argv);
	if (wants_service_vm(argc, argv))
		return cmd_svc_run(argc, argv);
	static const struct option longopts[] = {
	    FN_LONGOPTS, {"help", no_argument, NULL, 'h'}, {0}};
	struct fn_opts o;
	int status = FNVM_STATUS_USAGE, c;
	struct kvmhost kvm = {.fd = -1};
	struct fnvm_program *prog = NULL;
	struct fnvm_runner *rn = NULL;
	struct nb_error err;

	fn_opts_init(&o);
	char **args = fn_reorder_argv(&argc, &argv, longopts);
	if (!args)
		goto out;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'h') {
			cmd_run_usage(stdout);
			status = 0;
			goto out;
		}
		int r = fn_opts_handle(&o, c, optarg);
		if (r <= 0) {
			if (r == 0)
				cmd_run_usage(stderr);
			goto out;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "nubis run: missing PROGRAM\n");
		cmd_run_usage(stderr);
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((status = fn_load(&o, argv + optind, &kvm, &prog)))
		goto out;
	if (fnvm_runner_create(&rn, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = FNVM_STATUS_INTERNAL;
		goto out;
	}
	fnvm_runner_on_ready(rn, sandbox_run, NULL);
	struct fnvm_stdio io = {.in_fd = 0, .out = {.fd = 1}, .err = {.fd = 2}};
	struct fnvm_result res;
	if (fnvm_run(rn, prog, NULL, &io, &res, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = FNVM_STATUS_INTERNAL;
		goto out;
	}
	if (res.outcome != FNVM_EXITED)
		fprintf(stderr, "nubis: %s: %s\n", argv[optind], res.message);
	if (o.cfg.trace)
		fnvm_result_report(&res, stderr);
	status = res.status;
	fnvm_result_release(&res);
out:
	free(args);
	fnvm_runner_destroy(rn);
	fnvm_program_destroy(prog);
	if (kvm.fd >= 0)
		kvmhost_close(&kvm);
	fn_opts_free(&o);
	return status;
}
