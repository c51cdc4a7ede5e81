/* SPDX-License-Identifier: MIT */
/* nubis-vmm: boot a kernel in a fresh VM (see vmm.h). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/parse.h"
#include "vmm.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: nubis-vmm --kernel BZIMAGE [--initrd PATH] [--cmdline STR] [--cpus 1]\n"
	    "                 [--memory SIZE] [--console stdio|file:PATH|none] [--timeout D]\n\n"
	    "Boot a bzImage (64-bit boot protocol) directly: ACPI tables, a 16550A console\n"
	    "on 0x3f8, ACPI poweroff through PM1. Exit status: 0 poweroff, 1 bad usage or\n"
	    "input, 2 guest reset, 3 triple fault, 4 KVM error, 5 timeout.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"kernel", required_argument, NULL, 'k'},
	    {"initrd", required_argument, NULL, 'i'},
	    {"cmdline", required_argument, NULL, 'c'},
	    {"cpus", required_argument, NULL, 'n'},
	    {"memory", required_argument, NULL, 'm'},
	    {"console", required_argument, NULL, 'o'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct vmm_config cfg = {.cpus = 1, .mem_size = 256ull << 20, .console_fd = 1};
	const char *console = "stdio";
	uint64_t v;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			cfg.kernel = optarg;
			break;
		case 'i':
			cfg.initrd = optarg;
			break;
		case 'c':
			cfg.cmdline = optarg;
			break;
		case 'n':
			if (nb_parse_u64(optarg, &v) || !v || v > 254) {
				fprintf(stderr, "nubis-vmm: --cpus %s: need 1..254\n", optarg);
				return VMM_STATUS_USAGE;
			}
			cfg.cpus = (unsigned)v;
			break;
		case 'm':
			if (nb_parse_size(optarg, &v)) {
				fprintf(stderr, "nubis-vmm: --memory %s: not a size\n", optarg);
				return VMM_STATUS_USAGE;
			}
			cfg.mem_size = v;
			break;
		case 'o':
			console = optarg;
			break;
		case 't':
			if (nb_parse_duration(optarg, &v) || !v) {
				fprintf(stderr, "nubis-vmm: --timeout %s: not a duration\n",
					optarg);
				return VMM_STATUS_USAGE;
			}
			cfg.timeout_ns = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return VMM_STATUS_USAGE;
		}
	}
	if (optind != argc || !cfg.kernel) {
		fprintf(stderr, "nubis-vmm: %s\n",
			cfg.kernel ? "unexpected argument" : "--kernel is required");
		usage(stderr);
		return VMM_STATUS_USAGE;
	}
	if (!strcmp(console, "none")) {
		cfg.console_fd = -1;
	} else if (!strncmp(console, "file:", 5) && console[5]) {
		cfg.console_fd = open(console + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (cfg.console_fd < 0) {
			perror(console + 5);
			return VMM_STATUS_USAGE;
		}
	} else if (strcmp(console, "stdio")) {
		fprintf(stderr, "nubis-vmm: --console %s: need stdio, file:PATH or none\n",
			console);
		return VMM_STATUS_USAGE;
	}
	struct nb_error err = {0};
	int status = vmm_run(&cfg, &err);
	if ((status == VMM_STATUS_USAGE || status == VMM_STATUS_INTERNAL) && err.msg[0])
		fprintf(stderr, "nubis-vmm: %s\n", err.msg);
	else if (status == VMM_STATUS_TIMEOUT)
		fprintf(stderr, "nubis-vmm: timeout\n");
	return status;
}
