/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "../core/kvmhost.h"
#include "cli.h"

void cmd_info_usage(FILE *out)
{
	fprintf(out, "usage: nubis info\n\nReport the host's KVM flavour (vmx, svm or pvm) and capabilities.\n"
		     "On pvm hosts guest ring-0 code is emulated, so nubis keeps guest kernel-mode work minimal.\n");
}

int cmd_info_main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		cmd_info_usage(stdout);
		return 0;
	}
	struct kvmhost h;
	struct nb_error err;
	if (kvmhost_open(&h, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		return FNVM_STATUS_INTERNAL;
	}
	kvmhost_report(&h, stdout);
	kvmhost_close(&h);
	return 0;
}
