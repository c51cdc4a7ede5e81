/* SPDX-License-Identifier: MIT */
/*
 * The service-VM clock page ("vvar"): written by the monitor, read by the
 * vDSO (src/svc/vdso/vdso.c) in guest ring 3. Shared between the monitor
 * and guest code, so it includes only standard headers.
 *
 * The page sits one page below the vDSO image (guest address UVM_VVAR, the
 * vDSO at UVM_VDSO = UVM_VVAR + 4096); the guest maps it read-only.
 *
 * Time is a line in the guest TSC, re-anchored by the monitor every
 * ~200 ms:
 *
 *     mono(tsc) = mono_base + ((tsc - tsc_base) * mono_mult) >> shift
 *     raw(tsc)  = raw_base  + ((tsc - tsc_base) * raw_mult)  >> shift
 *     REALTIME = mono + real_off, BOOTTIME = mono + boot_off, TAI = mono + tai_off
 *
 * (all in nanoseconds, 64-bit wrap-around arithmetic; the product is
 * 128-bit, so a late refresh never overflows). A TSC value below tsc_base
 * counts as tsc_base, so a reader never computes a time before the anchor.
 *
 * Seqlock: the monitor makes @seq odd, samples the TSC and the host clocks,
 * writes the fields, then makes @seq even again. A reader retries while
 * @seq is odd or changed. Without SVC_VVAR_F_TSC in @flags the reader must
 * make the real system call (TSC not usable on this host, page not set up
 * yet — the initial all-zero page means "system call").
 */
#ifndef NUBIS_SVC_VDSO_VVAR_H
#define NUBIS_SVC_VDSO_VVAR_H

#include <stdint.h>

#define SVC_VVAR_VERSION 1
#define SVC_VVAR_F_TSC	 1u /* the lines below are valid: read the TSC */

struct svc_vvar {
	uint32_t seq;
	uint32_t flags;
	uint32_t version; /* SVC_VVAR_VERSION */
	uint32_t shift;
	uint64_t tsc_base;
	uint64_t mono_base, mono_mult;
	uint64_t raw_base, raw_mult;
	uint64_t real_off, boot_off, tai_off; /* added to mono (mod 2^64) */
};

/* Linux clock ids the page serves. */
#define SVC_VVAR_CLOCK_REALTIME		0
#define SVC_VVAR_CLOCK_MONOTONIC	1
#define SVC_VVAR_CLOCK_MONOTONIC_RAW	4
#define SVC_VVAR_CLOCK_REALTIME_COARSE	5
#define SVC_VVAR_CLOCK_MONOTONIC_COARSE 6
#define SVC_VVAR_CLOCK_BOOTTIME		7
#define SVC_VVAR_CLOCK_TAI		11

/* One point of a line: base + (tsc - tsc_base) * mult >> shift. */
static inline uint64_t svc_vvar_line(uint64_t base, uint64_t mult, uint32_t shift,
				     uint64_t tsc_base, uint64_t tsc)
{
	uint64_t d = tsc > tsc_base ? tsc - tsc_base : 0;
	return base + (uint64_t)(((unsigned __int128)d * mult) >> (shift & 63));
}

/* True if the page serves clock @clk. */
static inline int svc_vvar_clock_ok(long clk)
{
	return clk == SVC_VVAR_CLOCK_REALTIME || clk == SVC_VVAR_CLOCK_MONOTONIC ||
	       clk == SVC_VVAR_CLOCK_MONOTONIC_RAW || clk == SVC_VVAR_CLOCK_REALTIME_COARSE ||
	       clk == SVC_VVAR_CLOCK_MONOTONIC_COARSE || clk == SVC_VVAR_CLOCK_BOOTTIME ||
	       clk == SVC_VVAR_CLOCK_TAI;
}

/* Read clock @clk from @v into *@ns using @tsc() (called inside the seqlock
 * section, so it must be ordered: lfence; rdtsc; lfence in the guest).
 * Returns 0, or -1 when the caller must make the system call instead
 * (clock not served, or the page says so). The compiler barriers suffice
 * on x86 (loads are not reordered with loads). */
static inline int svc_vvar_read(const volatile struct svc_vvar *v, long clk, uint64_t (*tsc)(void),
				uint64_t *ns)
{
	if (!svc_vvar_clock_ok(clk))
		return -1;
	int raw = clk == SVC_VVAR_CLOCK_MONOTONIC_RAW;
	for (;;) {
		uint32_t s = v->seq;
		if (s & 1) {
			__asm__ __volatile__("pause" ::: "memory");
			continue;
		}
		__asm__ __volatile__("" ::: "memory");
		if (!(v->flags & SVC_VVAR_F_TSC))
			return -1;
		uint64_t tb = v->tsc_base, base, mult, off = 0;
		uint32_t shift = v->shift;
		if (raw) {
			base = v->raw_base;
			mult = v->raw_mult;
		} else {
			base = v->mono_base;
			mult = v->mono_mult;
			if (clk == SVC_VVAR_CLOCK_REALTIME || clk == SVC_VVAR_CLOCK_REALTIME_COARSE)
				off = v->real_off;
			else if (clk == SVC_VVAR_CLOCK_BOOTTIME)
				off = v->boot_off;
			else if (clk == SVC_VVAR_CLOCK_TAI)
				off = v->tai_off;
		}
		uint64_t t = tsc();
		__asm__ __volatile__("" ::: "memory");
		if (v->seq != s)
			continue;
		*ns = svc_vvar_line(base, mult, shift, tb, t) + off;
		return 0;
	}
}

#endif
