/* SPDX-License-Identifier: MIT */
/* nubis-vmm: boot a kernel in a fresh VM (see vmm.h). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <stdlib.h>

#include "../common/parse.h"
#include "pvm.h"
#include "vmm.h"

/* vmmem: --hugepages / "hugepages" value: "hugetlb" (also no value / true), "thp", "off"
 * (false). Returns 0 or -1. */
static int parse_hugepages(const char *v, int *out)
{
	if (!v || !strcmp(v, "hugetlb") || !strcmp(v, "on"))
		*out = VMM_HUGE_HUGETLB;
	else if (!strcmp(v, "thp"))
		*out = VMM_HUGE_THP;
	else if (!strcmp(v, "off"))
		*out = VMM_HUGE_OFF;
	else
		return -1;
	return 0;
}

/* vmmem: --on-reset / "on_reset": "exit" or "restart". Returns 0 or -1. */
static int parse_on_reset(const char *v, int *out)
{
	if (!strcmp(v, "exit"))
		*out = VMM_RESET_EXIT;
	else if (!strcmp(v, "restart"))
		*out = VMM_RESET_RESTART;
	else
		return -1;
	return 0;
}

/* --config FILE: the same settings as JSON, e.g.
 *   {"kernel": "tiny.bzImage", "cmdline": "console=ttyS0", "cpus": 1,
 *    "memory": "256M", "console": "stdio", "timeout": "10s", "initrd": null,
 *    "hugepages": "thp", "on_reset": "restart", "max_restarts": 3}
 * Unknown fields and wrong types are errors. Strings are kept in *@store. */
static int load_config(const char *path, struct vmm_config *cfg, const char **console,
		       json_t **store)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		fprintf(stderr, "nubis-vmm: --config %s: line %d: %s\n", path, jerr.line,
			jerr.text);
		return -1;
	}
	*store = root;
	if (!json_is_object(root)) {
		fprintf(stderr, "nubis-vmm: --config %s: not a JSON object\n", path);
		return -1;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		uint64_t n;
		if (!strcmp(key, "kernel") || !strcmp(key, "initrd") || !strcmp(key, "cmdline") ||
		    !strcmp(key, "console")) {
			if (json_is_null(v) && strcmp(key, "kernel"))
				continue;
			if (!json_is_string(v)) {
				fprintf(stderr, "nubis-vmm: --config %s: \"%s\" must be a string\n",
					path, key);
				return -1;
			}
			const char *str = json_string_value(v);
			if (!strcmp(key, "kernel"))
				cfg->kernel = str;
			else if (!strcmp(key, "initrd"))
				cfg->initrd = str;
			else if (!strcmp(key, "cmdline"))
				cfg->cmdline = str;
			else
				*console = str;
		} else if (!strcmp(key, "api_sock")) {
			if (!json_is_string(v) && !json_is_null(v)) {
				fprintf(stderr,
					"nubis-vmm: --config %s: \"api_sock\" must be a string\n",
					path);
				return -1;
			}
			cfg->api_sock = json_is_string(v) ? json_string_value(v) : NULL;
		} else if (!strcmp(key, "pvm_compat")) { /* pvm.h: "auto", "on", "off" */
			enum pvm_mode pm;
			if (!json_is_string(v) || pvm_mode_parse(json_string_value(v), &pm)) {
				fprintf(stderr,
					"nubis-vmm: --config %s: \"pvm_compat\" must be \"auto\", "
					"\"on\" or \"off\"\n",
					path);
				return -1;
			}
			cfg->pvm_compat = (int)pm;
		} else if (!strcmp(key, "cpus")) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 254) {
				fprintf(stderr, "nubis-vmm: --config %s: \"cpus\" must be 1..254\n",
					path);
				return -1;
			}
			cfg->cpus = (unsigned)json_integer_value(v);
		} else if (!strcmp(key, "memory") || !strcmp(key, "timeout")) {
			int bad = !json_is_string(v);
			if (!bad && !strcmp(key, "memory"))
				bad = nb_parse_size(json_string_value(v), &n) != 0;
			else if (!bad)
				bad = nb_parse_duration(json_string_value(v), &n) != 0 || !n;
			if (bad) {
				fprintf(stderr,
					"nubis-vmm: --config %s: \"%s\" must be a string like %s\n",
					path, key, !strcmp(key, "memory") ? "\"256M\"" : "\"10s\"");
				return -1;
			}
			if (!strcmp(key, "memory"))
				cfg->mem_size = n;
			else
				cfg->timeout_ns = n;
		} else if (!strcmp(key, "hugepages")) { /* vmmem */
			int bad = 0;
			if (json_is_boolean(v))
				cfg->hugepages = json_is_true(v) ? VMM_HUGE_HUGETLB : VMM_HUGE_OFF;
			else
				bad = !json_is_string(v) ||
				      parse_hugepages(json_string_value(v), &cfg->hugepages);
			if (bad) {
				fprintf(
				    stderr,
				    "nubis-vmm: --config %s: \"hugepages\" must be true, false, "
				    "\"hugetlb\", \"thp\" or \"off\"\n",
				    path);
				return -1;
			}
		} else if (!strcmp(key, "on_reset")) { /* vmmem */
			if (!json_is_string(v) ||
			    parse_on_reset(json_string_value(v), &cfg->on_reset)) {
				fprintf(stderr,
					"nubis-vmm: --config %s: \"on_reset\" must be \"exit\" or "
					"\"restart\"\n",
					path);
				return -1;
			}
		} else if (!strcmp(key, "max_restarts")) { /* vmmem */
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 1000000) {
				fprintf(
				    stderr,
				    "nubis-vmm: --config %s: \"max_restarts\" must be 0..1000000\n",
				    path);
				return -1;
			}
			cfg->max_restarts = (unsigned)json_integer_value(v);
		} else {
			fprintf(stderr, "nubis-vmm: --config %s: unknown field \"%s\"\n", path,
				key);
			return -1;
		}
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: nubis-vmm --kernel BZIMAGE|VMLINUX [--initrd PATH] [--cmdline STR] [--cpus N]\n"
	    "                 [--memory SIZE] [--console stdio|file:PATH|none] [--timeout D]\n"
	    "                 [--hugepages[=hugetlb|thp|off]] [--on-reset exit|restart]\n"
	    "                 [--max-restarts N] [--pvm-compat auto|on|off]\n"
	    "       nubis-vmm --config FILE.json [OPTIONS]  (the same keys as JSON; options\n"
	    "                 after it override)\n\n"
	    "Boot a bzImage (64-bit boot protocol) or a vmlinux ELF with a PVH note (PVH\n"
	    "entry) directly: ACPI tables, a 16550A console\n"
	    "on 0x3f8, ACPI poweroff through PM1. Exit status: 0 poweroff, 1 bad usage or\n"
	    "input, 2 guest reset, 3 triple fault, 4 KVM error, 5 timeout, 6 Ctrl-A x,\n"
	    "7 killed through the control API (--api-sock PATH: see docs/VMM-API.md).\n"
	    "With --console stdio, stdin feeds the serial port (raw mode on a terminal).\n"
	    "--memory up to 64G: RAM below 3 GiB, the rest from 4 GiB, mapped lazily.\n"
	    "--hugepages: 2 MiB hugetlb pages (an error if HugePages_Free is short);\n"
	    "=thp: transparent huge pages (madvise). --on-reset restart: a guest reset\n"
	    "boots it again, at most --max-restarts times (default 10), then status 2.\n"
	    "--pvm-compat auto|on|off: the kvm_pvm compatibility mode for stock Linux\n"
	    "kernels (default auto: on when guest kernel mode is emulated; see\n"
	    "docs/LINUX-VMS.md).\n");
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
	    {"config", required_argument, NULL, 'f'},
	    {"api-sock", required_argument, NULL, 'a'},
	    {"hugepages", optional_argument, NULL, 'H'}, /* vmmem */
	    {"on-reset", required_argument, NULL, 'R'},
	    {"max-restarts", required_argument, NULL, 'M'},
	    {"pvm-compat", required_argument, NULL, 'P'},
	    {0},
	};
	struct vmm_config cfg = {.cpus = 1,
				 .mem_size = 256ull << 20,
				 .console_fd = 1,
				 .input_fd = 0,
				 .max_restarts = VMM_DEFAULT_MAX_RESTARTS};
	const char *console = "stdio";
	json_t *config = NULL; /* owns the strings --config points cfg at */
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
		case 'a':
			cfg.api_sock = optarg;
			break;
		case 'H': /* vmmem */
			if (parse_hugepages(optarg, &cfg.hugepages)) {
				fprintf(stderr,
					"nubis-vmm: --hugepages=%s: need hugetlb, thp or off\n",
					optarg);
				return VMM_STATUS_USAGE;
			}
			break;
		case 'R':
			if (parse_on_reset(optarg, &cfg.on_reset)) {
				fprintf(stderr, "nubis-vmm: --on-reset %s: need exit or restart\n",
					optarg);
				return VMM_STATUS_USAGE;
			}
			break;
		case 'M':
			if (nb_parse_u64(optarg, &v) || v > 1000000) {
				fprintf(stderr, "nubis-vmm: --max-restarts %s: need 0..1000000\n",
					optarg);
				return VMM_STATUS_USAGE;
			}
			cfg.max_restarts = (unsigned)v;
			break;
		case 'P': { /* pvm compatibility mode (pvm.h, docs/LINUX-VMS.md) */
			enum pvm_mode pm;
			if (pvm_mode_parse(optarg, &pm)) {
				fprintf(stderr,
					"nubis-vmm: --pvm-compat %s: need auto, on or off\n",
					optarg);
				return VMM_STATUS_USAGE;
			}
			cfg.pvm_compat = (int)pm;
			break;
		}
		case 'f':
			if (config) {
				json_decref(config);
				config = NULL;
				fprintf(stderr, "nubis-vmm: --config given twice\n");
				return VMM_STATUS_USAGE;
			}
			if (load_config(optarg, &cfg, &console, &config) < 0) {
				json_decref(config);
				return VMM_STATUS_USAGE;
			}
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
	if (strcmp(console, "stdio"))
		cfg.input_fd = -1; /* serial input comes from stdin with --console stdio only */
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
	json_decref(config);
	if ((status == VMM_STATUS_USAGE || status == VMM_STATUS_INTERNAL) && err.msg[0])
		fprintf(stderr, "nubis-vmm: %s\n", err.msg);
	else if (status == VMM_STATUS_TIMEOUT)
		fprintf(stderr, "nubis-vmm: timeout\n");
	return status;
}
