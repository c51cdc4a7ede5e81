/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "svcmon.h"

static const struct cli_cmd cmds[] = {
    {"run", "run a static Linux program in a fresh VM", cmd_run_main, cmd_run_usage},
    {"serve", "serve a program over HTTP, a fresh VM per request", cmd_serve_main, cmd_serve_usage},
    {"info", "report the host's KVM flavour and capabilities", cmd_info_main, cmd_info_usage},
    /* service VMs (services) */
    {"ps", "list service VMs", cmd_ps_main, cmd_ps_usage},
    {"logs", "print a service VM's output", cmd_logs_main, cmd_logs_usage},
    {"stop", "stop service VMs (SIGTERM, SIGKILL after a grace period)", cmd_stop_main,
     cmd_stop_usage},
    {"kill", "send a signal to service VMs", cmd_kill_main, cmd_kill_usage},
    {"pause", "pause service VMs", cmd_pause_main, cmd_pause_usage},
    {"resume", "resume paused service VMs", cmd_resume_main, cmd_resume_usage},
    {"start", "start stopped service VMs again", cmd_start_main, cmd_start_usage},
    {"rm", "remove service VMs and their writable layers", cmd_rm_main, cmd_rm_usage},
    {"inspect", "show service VMs' state and configuration as JSON", cmd_inspect_main,
     cmd_inspect_usage},
    {"image", "import, list and remove images (OCI, docker save, dir, tar)", cmd_image_main,
     cmd_image_usage},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: nubis COMMAND [OPTIONS] [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(out, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(out, "\nnubis help COMMAND shows a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return FNVM_STATUS_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "help")) {
		for (size_t i = 0; argc > 2 && i < NCMDS; i++)
			if (!strcmp(argv[2], cmds[i].name)) {
				cmds[i].usage(stdout);
				return 0;
			}
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NCMDS; i++)
		if (!strcmp(name, cmds[i].name))
			return cmds[i].main(argc - 1, argv + 1);
	if (!strcmp(name, "__monitor")) /* internal: a detached service-VM monitor */
		return svcmon_main(argc - 1, argv + 1);
	fprintf(stderr, "nubis: unknown command '%s'\n", name);
	usage(stderr);
	return FNVM_STATUS_USAGE;
}
