/* SPDX-License-Identifier: MIT */
/*
 * The service-VM vDSO's data page ("vvar"), shared between the guest's vDSO
 * (src/svc/vdso/vdso.c, read-only use) and the monitor (svm.c, writer).
 * Version 1. Only standard headers.
 *
 * time_ns(tsc) = base_ns + ((tsc - base_tsc) * mult) >> shift, for tsc -
 * base_tsc <= max_delta; otherwise (or when !enabled) the vDSO makes the
 * real system call, which refreshes the page. Writers bump seq to odd,
 * write, bump to even.
 */
#ifndef NUBIS_SVC_VDSO_H
#define NUBIS_SVC_VDSO_H

#include <stdint.h>

#define SVC_VVAR_VERSION 1

struct svc_vvar {
	volatile uint32_t seq;
	uint32_t version;
	uint32_t enabled;
	uint32_t shift;
	uint64_t mult;
	uint64_t base_tsc;
	uint64_t max_delta;
	uint64_t mono_ns; /* CLOCK_MONOTONIC at base_tsc */
	int64_t real_off; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	int64_t boot_off; /* CLOCK_BOOTTIME - CLOCK_MONOTONIC */
};

#endif
