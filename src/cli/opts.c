/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parse.h"
#include "cli.h"

void fn_opts_init(struct fn_opts *o)
{
	memset(o, 0, sizeof(*o));
	fnvm_config_defaults(&o->cfg);
}

void fn_opts_free(struct fn_opts *o)
{
	for (size_t i = 0; i < o->cfg.nchannels; i++)
		free(o->chan_store[i]);
}

int fn_opts_handle(struct fn_opts *o, int c, const char *arg)
{
	uint64_t v;
	struct nb_error err;
	switch (c) {
	case OPT_MEMORY:
		if (nb_parse_size(arg, &v) || v % (2u << 20) || v < (4u << 20) ||
		    v > (64ull << 30)) {
			fprintf(stderr,
				"nubis: --memory %s: need a size from 4M to 64G in steps of 2M\n",
				arg);
			return -1;
		}
		o->cfg.mem_size = v;
		return 1;
	case OPT_TIMEOUT:
		if (nb_parse_duration(arg, &v) || !v) {
			fprintf(
			    stderr,
			    "nubis: --timeout %s: need a positive duration like 500ms, 2s, 1m\n",
			    arg);
			return -1;
		}
		o->cfg.timeout_ns = v;
		return 1;
	case OPT_OUTPUT_LIMIT:
		if (nb_parse_size(arg, &v)) {
			fprintf(stderr,
				"nubis: --output-limit %s: need a size like 1M (0 = none)\n", arg);
			return -1;
		}
		o->cfg.output_limit = v;
		return 1;
	case OPT_SYSCALL_LIMIT:
		if (nb_parse_u64(arg, &v)) {
			fprintf(stderr, "nubis: --syscall-limit %s: need a number (0 = none)\n",
				arg);
			return -1;
		}
		o->cfg.syscall_limit = v;
		return 1;
	case OPT_SEED:
		if (nb_parse_u64(arg, &v)) {
			fprintf(stderr, "nubis: --seed %s: need an unsigned number\n", arg);
			return -1;
		}
		o->cfg.seed = v;
		return 1;
	case OPT_TRACE:
		o->cfg.trace = true;
		return 1;
	case OPT_ENV:
		if (!strchr(arg, '=') || arg[0] == '=') {
			fprintf(stderr, "nubis: --env %s: expected K=V\n", arg);
			return -1;
		}
		if (o->nenv + 1 >= sizeof(o->env) / sizeof(o->env[0])) {
			fprintf(stderr, "nubis: too many --env options\n");
			return -1;
		}
		o->env[o->nenv++] =
		    (char *)(uintptr_t)arg; /* argv storage, lives as long as main */
		return 1;
	case OPT_CHANNEL: {
		size_t n = o->cfg.nchannels;
		if (n == sizeof(o->chans) / sizeof(o->chans[0])) {
			fprintf(stderr, "nubis: too many --channel options\n");
			return -1;
		}
		if (fnvm_channel_parse(arg, &o->chans[n], &o->chan_store[n], &err) < 0) {
			fprintf(stderr, "nubis: %s\n", err.msg);
			return -1;
		}
		o->cfg.nchannels = n + 1;
		o->cfg.channels = o->chans;
		return 1;
	}
	default:
		return 0;
	}
}

void fn_opts_usage(FILE *out)
{
	fprintf(
	    out,
	    "  --memory SIZE          guest memory (default 64M; 4M..64G, multiple of 2M)\n"
	    "  --timeout DURATION     wall-clock limit, e.g. 500ms, 2s (default none)\n"
	    "  --channel G=H:r|w|a    expose host file H at guest path G: read, write (truncate), "
	    "append\n"
	    "  --env K=V              add an environment variable (the environment is empty "
	    "otherwise)\n"
	    "  --seed N               seed of the guest's randomness (default 0)\n"
	    "  --output-limit SIZE    bytes per output channel before the program is stopped "
	    "(default 64M, 0 = none)\n"
	    "  --syscall-limit N      system calls before the program is stopped (default none)\n"
	    "  --trace                report system calls (and unsupported ones) on stderr at the "
	    "end\n");
}

int fn_status_for_error(const struct nb_error *err)
{
	switch (err->code) {
	case NB_ENOENT:
		return FNVM_STATUS_NOT_FOUND;
	case NB_EFORMAT:
		return FNVM_STATUS_BAD_PROGRAM;
	case NB_EINVAL:
		return FNVM_STATUS_USAGE;
	case NB_EHOSTFILE:
		return FNVM_STATUS_CHANNEL;
	default:
		return FNVM_STATUS_INTERNAL;
	}
}

int fn_load(struct fn_opts *o, char **prog_argv, struct kvmhost *kvm, struct fnvm_program **prog)
{
	struct nb_error err;
	o->env[o->nenv] = NULL;
	o->cfg.argv = prog_argv;
	o->cfg.envp = o->env;
	if (kvmhost_open(kvm, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		return FNVM_STATUS_INTERNAL;
	}
	if (fnvm_program_create(kvm, prog_argv[0], &o->cfg, prog, &err) < 0) {
		fprintf(stderr, "nubis: %s: %s\n", prog_argv[0], err.msg);
		return fn_status_for_error(&err);
	}
	return 0;
}

/* The long option @arg names, or NULL; *@inline_val points past '=' if given. */
static const struct option *long_opt(const struct option *opts, const char *arg,
				     const char **inline_val)
{
	if (strncmp(arg, "--", 2) || !arg[2])
		return NULL;
	const char *name = arg + 2, *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	for (const struct option *o = opts; o->name; o++)
		if (strlen(o->name) == n && !strncmp(o->name, name, n)) {
			*inline_val = eq ? eq + 1 : NULL;
			return o;
		}
	return NULL;
}

char **fn_reorder_args(int argc, char **argv, const struct option *opts, int *out_argc)
{
	char **out = calloc((size_t)argc + 2, sizeof(*out));
	if (!out)
		return NULL;
	int n = 0, i = 1;
	out[n++] = argv[0];
	/* options before PROGRAM stay where they are */
	while (i < argc && argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--")) {
		const char *val;
		const struct option *o = long_opt(opts, argv[i], &val);
		out[n++] = argv[i++];
		if (o && o->has_arg == required_argument && !val && i < argc)
			out[n++] = argv[i++];
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		*out_argc = n;
		return out;
	}
	char *program = argv[i++];
	/* after PROGRAM: nubis's own long options are nubis's, the rest (and
	 * everything after a "--") is PROGRAM's */
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest) {
		free(out);
		return NULL;
	}
	int nrest = 0;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (++i < argc)
				rest[nrest++] = argv[i];
			break;
		}
		const char *val;
		const struct option *o = long_opt(opts, argv[i], &val);
		if (!o || !strcmp(o->name, "help")) {
			rest[nrest++] = argv[i];
			continue;
		}
		out[n++] = argv[i];
		if (o->has_arg == required_argument && !val && i + 1 < argc)
			out[n++] = argv[++i];
	}
	out[n++] = (char *)(uintptr_t) "--";
	out[n++] = program;
	for (int k = 0; k < nrest; k++)
		out[n++] = rest[k];
	free(rest);
	*out_argc = n;
	return out;
}

char **fn_reorder_argv(int *argc, char ***argv, const struct option *opts)
{
	int n;
	char **args = fn_reorder_args(*argc, *argv, opts, &n);
	if (!args) {
		fprintf(stderr, "nubis: out of memory\n");
		return NULL;
	}
	*argc = n;
	*argv = args;
	return args;
}
