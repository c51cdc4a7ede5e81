/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parse.h"
#include "../core/kvmhost.h"
#include "../fnvm/sandbox.h"
#include "../fnvm/serve.h"
#include "cli.h"

enum { OPT_LISTEN = 2000, OPT_WORKERS, OPT_QUEUE, OPT_MAX_BODY };

void cmd_serve_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: nubis serve PROGRAM [ARGS...] --listen unix:PATH|tcp:ADDR:PORT [OPTIONS]\n\n"
	    "Serve PROGRAM over HTTP: every request runs it in a fresh VM, the request body\n"
	    "is its stdin and its stdout the response body. Headers X-Nubis-Status and\n"
	    "X-Nubis-Outcome carry the exit status and outcome; 503 when the queue is full.\n\n"
	    "options:\n"
	    "  --listen ADDR          unix:PATH or tcp:127.0.0.1:PORT (required)\n"
	    "  --workers N            requests run in parallel (default: online CPUs)\n"
	    "  --queue N              requests that may wait for a worker (default 64)\n"
	    "  --max-body SIZE        largest request body (default 16M)\n");
	fn_opts_usage(out);
	fprintf(out, "  (write channels are not allowed: requests would share the file)\n");
}

int cmd_serve_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    FN_LONGOPTS,
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"workers", required_argument, NULL, OPT_WORKERS},
	    {"queue", required_argument, NULL, OPT_QUEUE},
	    {"max-body", required_argument, NULL, OPT_MAX_BODY},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct fn_opts o;
	struct fnvm_server_config sc = {0};
	int status = FNVM_STATUS_USAGE, c;
	struct kvmhost kvm = {.fd = -1};
	struct fnvm_program *prog = NULL;
	struct fnvm_server *srv = NULL;
	struct nb_error err;
	uint64_t v;

	fn_opts_init(&o);
	o.cfg.allow_write_channels = false;
	char **args = fn_reorder_argv(&argc, &argv, longopts);
	if (!args)
		goto out;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cmd_serve_usage(stdout);
			status = 0;
			goto out;
		case OPT_LISTEN:
			sc.listen = optarg;
			continue;
		case OPT_WORKERS:
			if (nb_parse_u64(optarg, &v) || !v || v > 256) {
				fprintf(stderr, "nubis: --workers %s: need 1..256\n", optarg);
				goto out;
			}
			sc.workers = (unsigned)v;
			continue;
		case OPT_QUEUE:
			if (nb_parse_u64(optarg, &v) || !v || v > 100000) {
				fprintf(stderr, "nubis: --queue %s: need 1..100000\n", optarg);
				goto out;
			}
			sc.queue = (unsigned)v;
			continue;
		case OPT_MAX_BODY:
			if (nb_parse_size(optarg, &v) || !v || v > (1ull << 30)) {
				fprintf(stderr, "nubis: --max-body %s: need a size up to 1G\n",
					optarg);
				goto out;
			}
			sc.max_body = (size_t)v;
			continue;
		}
		int r = fn_opts_handle(&o, c, optarg);
		if (r <= 0) {
			if (r == 0)
				cmd_serve_usage(stderr);
			goto out;
		}
	}
	if (!sc.listen || optind >= argc) {
		fprintf(stderr, "nubis serve: need --listen and PROGRAM\n");
		cmd_serve_usage(stderr);
		goto out;
	}
	if (o.cfg.trace) {
		fprintf(stderr, "nubis serve: --trace is for nubis run\n");
		goto out;
	}
	/* SIGINT/SIGTERM are taken by sigwait below; block them before threads start. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((status = fn_load(&o, argv + optind, &kvm, &prog)))
		goto out;
	if (fnvm_server_start(prog, &sc, &srv, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = err.code == NB_EINVAL ? FNVM_STATUS_USAGE : FNVM_STATUS_INTERNAL;
		goto out;
	}
	if (fnvm_sandbox_apply(FNVM_SANDBOX_SERVE, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		status = FNVM_STATUS_INTERNAL;
		goto out;
	}
	fprintf(stderr, "nubis: serving %s on %s\n", argv[optind], sc.listen);
	int sig;
	sigwait(&set, &sig);
	uint64_t served, refused;
	fnvm_server_stats(srv, &served, &refused);
	fprintf(stderr, "nubis: stopping (signal %d): %llu requests served, %llu refused\n", sig,
		(unsigned long long)served, (unsigned long long)refused);
	status = 0;
out:
	free(args);
	fnvm_server_stop(srv);
	fnvm_program_destroy(prog);
	if (kvm.fd >= 0)
		kvmhost_close(&kvm);
	fn_opts_free(&o);
	return status;
}
