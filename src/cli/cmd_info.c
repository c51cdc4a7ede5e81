/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "../core/arch/x86/probe.h"
#include "../core/kvmhost.h"
#include "cli.h"

void cmd_info_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: nubis info [--measure]\n\nReport the host's KVM flavour (vmx, svm or pvm) and "
	    "capabilities.\n"
	    "On pvm hosts guest ring-0 code is emulated, so nubis keeps guest kernel-mode work "
	    "minimal.\n"
	    "  --measure   also time a VM life cycle, a guest exit, and guest ring-3 and ring-0\n"
	    "              instructions with small test guests (about a second)\n");
}

int cmd_info_main(int argc, char **argv)
{
	int measure = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			cmd_info_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--measure")) {
			measure = 1;
		} else {
			fprintf(stderr, "nubis info: unknown option %s\n", argv[i]);
			cmd_info_usage(stderr);
			return FNVM_STATUS_USAGE;
		}
	}
	struct kvmhost h;
	struct nb_error err;
	if (kvmhost_open(&h, &err) < 0) {
		fprintf(stderr, "nubis: %s\n", err.msg);
		return FNVM_STATUS_INTERNAL;
	}
	kvmhost_report(&h, stdout);
	int status = 0;
	if (measure) {
		struct x86_probe pr;
		int rc = x86_probe_measure(&h, &pr);
		if (rc < 0) {
			fprintf(stderr, "nubis: measuring failed: %s\n", strerror(-rc));
			status = FNVM_STATUS_INTERNAL;
		} else {
			printf("measured.vm_cycle_us: %.1f\n", pr.vm_cycle_us);
			printf("measured.exit_to_monitor_us: %.2f\n", pr.exit_user_us);
			printf("measured.ring3_ns_per_insn: %.3f\n", pr.ring3_ns_per_insn);
			printf("measured.ring0_ns_per_insn: %.1f\n", pr.ring0_ns_per_insn);
			if (pr.ring3_ns_per_insn > 0)
				printf("measured.ring0_slowdown: %.0fx\n",
				       pr.ring0_ns_per_insn / pr.ring3_ns_per_insn);
		}
	}
	kvmhost_close(&h);
	return status;
}
