/* SPDX-License-Identifier: MIT */
/*
 * Service-VM vDSO, monitor side (vdso helper): the embedded vDSO image, the
 * clock page it reads (vdso/vvar.h) and the host thread that keeps that page
 * following the host's clocks.
 *
 * The page holds a line in the guest TSC per clock (CLOCK_MONOTONIC, and
 * CLOCK_MONOTONIC_RAW; REALTIME, BOOTTIME and TAI are MONOTONIC plus an
 * offset). Every SVC_VDSO_PERIOD_NS the monitor samples the TSC next to the
 * host clocks and re-anchors the lines where the old ones are at that TSC
 * (so CLOCK_MONOTONIC never goes back, in any thread), steering the slope so
 * that the error left is worked off within a second (at most +1 % / -10 %);
 * an error above SVC_VDSO_STEP_NS ahead of the guest is stepped at once.
 * Offsets follow host steps of the wall clock (settimeofday) at once.
 *
 * The vDSO serves clocks only when the TSC is usable: invariant, the host
 * kernel's own clocksource, a known frequency, and the same in every vCPU
 * of the VM; otherwise (or with --vdso syscall) its functions make the
 * system call. Function VMs never get a vDSO.
 */
#ifndef NUBIS_SVC_VDSO_H
#define NUBIS_SVC_VDSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdso/vvar.h"

#define SVC_VDSO_PERIOD_NS  200000000ull  /* refresh of the page */
#define SVC_VDSO_HORIZON_NS 1000000000ull /* an error is worked off within this */
#define SVC_VDSO_STEP_NS    20000000ll	  /* guest behind by more: step forward */
#define SVC_VDSO_SHIFT	    32

/* The vDSO ELF image, built from vdso/vdso.c and embedded (bin2c.py). */
extern const unsigned char svc_vdso_image[];
extern const size_t svc_vdso_image_len;

/* ---- the clock lines: pure arithmetic, no KVM (unit-tested) ---- */

/* One reading of the guest TSC with the host clocks (ns) beside it. */
struct svc_vclock_sample {
	uint64_t tsc;
	uint64_t mono, raw, real, boot, tai;
};

struct svc_vclock {
	bool started;
	uint64_t tsc_hz;
	uint64_t mono_mult0, raw_mult0;	 /* nominal slopes (ns per tick << shift) */
	struct svc_vclock_sample anchor; /* the first sample: slopes are refined from it */
	struct svc_vvar page;		 /* what the guest page holds (seq unused) */
};

/* Start lines for a TSC of @tsc_hz ticks per second (> 0); the first
 * svc_vclock_update() anchors them. */
void svc_vclock_init(struct svc_vclock *c, uint64_t tsc_hz);
/* Re-anchor the lines at guest TSC @tsc (read after the sample @s, inside
 * the seqlock section), steered by the error found at @s (see the top of
 * this file). The first call anchors at @s itself. Afterwards the new lines
 * are >= the old ones at every TSC >= @tsc at which they were read. */
void svc_vclock_update(struct svc_vclock *c, const struct svc_vclock_sample *s, uint64_t tsc);

/* Seqlock writer of the guest page: begin makes seq odd (then the caller
 * samples the TSC, after a full fence), end stores @data's fields and makes
 * seq even again. */
void svc_vvar_write_begin(volatile struct svc_vvar *v);
void svc_vvar_write_end(volatile struct svc_vvar *v, const struct svc_vvar *data);

/* ---- per VM ---- */

struct vcpu;
struct svc_vdso;

enum svc_vdso_mode {
	SVC_VDSO_ON = 0,  /* default: clocks in the guest when the TSC allows */
	SVC_VDSO_OFF,	  /* no vDSO mapped, no AT_SYSINFO_EHDR (as before) */
	SVC_VDSO_SYSCALL, /* vDSO mapped, every function makes the system call */
};

/* Set up the clock page at @page (host address of guest UVM_VVAR, which must
 * stay mapped until svc_vdso_destroy) for a VM whose vCPU 0 is @cpu0 (not
 * running), and start the refresh thread. With @mode SVC_VDSO_SYSCALL, or
 * when the TSC is not usable (the reason is logged once), the page tells
 * the vDSO to make system calls and no thread runs. Returns 0 or -errno. */
int svc_vdso_create(struct vcpu *cpu0, void *page, enum svc_vdso_mode mode, struct svc_vdso **out);
/* A new vCPU @c of the VM (before it first runs): if its TSC is not the
 * one vCPU 0 has, the page falls back to system calls for good. Safe
 * from any thread; @v NULL is a no-op. */
void svc_vdso_vcpu_added(struct svc_vdso *v, struct vcpu *c);
/* Clock @clk now, on the same line the vDSO reads (for the system calls,
 * so both paths agree): 0 and *@ns, or -1 (clock not served, vDSO off or
 * fallen back: use the host's clock). Safe from any thread; @v may be NULL. */
int svc_vdso_clock(struct svc_vdso *v, long clk, uint64_t *ns);
/* True if the page currently lets the vDSO read the TSC. */
bool svc_vdso_active(const struct svc_vdso *v);
/* Stop the thread and free; NULL is a no-op. */
void svc_vdso_destroy(struct svc_vdso *v);

#endif
