/* SPDX-License-Identifier: MIT */
/* `nubis run --rootfs DIR ... PROGRAM [ARGS]`: a service VM in the foreground. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kvmhost.h"
#include "../svc/sandbox.h"
#include "cli.h"
#include "svcopts.h"

struct forwarder {
	struct svc_vm *vm;
	sigset_t set;
};

/* SIGINT, SIGTERM, SIGHUP, SIGQUIT to nubis go to the guest; SIGTSTP pauses
 * the VM (every vCPU parks; nubis itself keeps running), SIGCONT resumes it;
 * SIGUSR2 ends the forwarder. */
static void *forward_main(void *arg)
{
	struct forwarder *f = arg;
	for (;;) {
		int sig;
		if (sigwait(&f->set, &sig))
			continue;
		if (sig == SIGUSR2)
			return NULL;
		if (sig == SIGTSTP)
			svc_pause(f->vm);
		else if (sig == SIGCONT)
			svc_resume(f->vm);
		else
			svc_kill(f->vm, sig);
	}
}

int cmd_svc_run(int argc, char **argv)
{
	static const struct option longopts[] = {
	    SVC_LONGOPTS, {"help", no_argument, NULL, 'h'}, {0}};
	struct svc_opts o;
	int status = FNVM_STATUS_USAGE, c;
	struct kvmhost kvm = {.fd = -1};
	struct svc_vm *vm = NULL;
	struct nb_error err;
	pthread_t fwd;
	bool fwd_up = false;
	struct forwarder f;

	svc_opts_init(&o);
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
		if (svc_opts_handle(&o, c, optarg) <= 0)
			goto out;
	}
	if (optind >= argc) {
		fprintf(stderr, "nubis run: missing PROGRAM\n");
		goto out;
	}
	if (svc_opts_finish(&o, argv + optind) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	/* signals for the guest are taken by the forwarder thread only */
	sigemptyset(&f.set);
	sigaddset(&f.set, SIGINT);
	sigaddset(&f.set, SIGTERM);
	sigaddset(&f.set, SIGHUP);
	sigaddset(&f.set, SIGQUIT);
	sigaddset(&f.set, SIGUSR2);
	sigaddset(&f.set, SIGTSTP);
	sigaddset(&f.set, SIGCONT);
	pthread_sigmask(SIG_BLOCK, &f.set, NULL);
	if (kvmhost_open(&kvm, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = FNVM_STATUS_INTERNAL;
		goto out;
	}
	if (svc_create(&kvm, &o.cfg, &vm, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = fn_status_for_error(&err);
		goto out;
	}
	f.vm = vm;
	if (pthread_create(&fwd, NULL, forward_main, &f)) {
		fprintf(stderr, "nubis: cannot start the signal thread\n");
		status = FNVM_STATUS_INTERNAL;
		goto out;
	}
	fwd_up = true;
	if (!getenv("NUBIS_NO_SANDBOX") && svc_sandbox_apply(&err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = FNVM_STATUS_INTERNAL;
		goto out;
	}
	if (svc_start(vm, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = FNVM_STATUS_INTERNAL;
		goto out;
	}
	status = svc_wait(vm);
	if (getenv("NUBIS_SVC_TRACE"))
		svc_syscall_report(vm, stderr);
out:
	if (fwd_up) {
		pthread_kill(fwd, SIGUSR2);
		pthread_join(fwd, NULL);
	}
	svc_destroy(vm);
	free(args);
	if (kvm.fd >= 0)
		kvmhost_close(&kvm);
	svc_opts_free(&o);
	return status;
}
