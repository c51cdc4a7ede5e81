/* SPDX-License-Identifier: MIT */
/*
 * The service-VM vDSO: clock_gettime, gettimeofday and time without a VM
 * exit, from the TSC and the monitor's data page just below this image.
 * Built as a tiny shared object (vdso.lds), embedded in the monitor and
 * mapped into each service VM; programs find it through AT_SYSINFO_EHDR.
 * Freestanding: no libc, no stack protector.
 */
#include "vdso.h"

#define NR_gettimeofday	 96
#define NR_time		 201
#define NR_clock_gettime 228

struct k_timespec {
	long tv_sec, tv_nsec;
};
struct k_timeval {
	long tv_sec, tv_usec;
};

extern const struct svc_vvar vvar __attribute__((visibility("hidden")));

static long sys2(long nr, long a, long b)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return r;
}

static inline uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

/* CLOCK_MONOTONIC in ns and the offsets, or 0 if the page cannot be used. */
static int read_clock(uint64_t *mono, int64_t *real_off, int64_t *boot_off)
{
	const volatile struct svc_vvar *v = &vvar;
	for (int tries = 0; tries < 64; tries++) {
		uint32_t s = v->seq;
		if (s & 1)
			continue;
		__asm__ volatile("" ::: "memory");
		if (!v->enabled || v->version != SVC_VVAR_VERSION)
			return 0;
		uint64_t tsc = rdtsc_ordered();
		uint64_t d = tsc - v->base_tsc;
		if (tsc < v->base_tsc || d > v->max_delta)
			return 0;
		uint64_t ns = v->mono_ns + (uint64_t)(((unsigned __int128)d * v->mult) >> v->shift);
		int64_t ro = v->real_off, bo = v->boot_off;
		__asm__ volatile("" ::: "memory");
		if (v->seq != s)
			continue;
		*mono = ns;
		*real_off = ro;
		*boot_off = bo;
		return 1;
	}
	return 0;
}

int __vdso_clock_gettime(int clk, struct k_timespec *ts);
int __vdso_clock_gettime(int clk, struct k_timespec *ts)
{
	uint64_t mono;
	int64_t ro, bo;
	/* REALTIME 0, MONOTONIC 1, REALTIME_COARSE 5, MONOTONIC_COARSE 6, BOOTTIME 7 */
	if ((clk == 0 || clk == 1 || clk == 5 || clk == 6 || clk == 7) &&
	    read_clock(&mono, &ro, &bo)) {
		int64_t ns = (int64_t)mono;
		if (clk == 0 || clk == 5)
			ns += ro;
		else if (clk == 7)
			ns += bo;
		ts->tv_sec = ns / 1000000000;
		ts->tv_nsec = ns % 1000000000;
		return 0;
	}
	return (int)sys2(NR_clock_gettime, clk, (long)ts);
}

int __vdso_gettimeofday(struct k_timeval *tv, void *tz);
int __vdso_gettimeofday(struct k_timeval *tv, void *tz)
{
	uint64_t mono;
	int64_t ro, bo;
	if (!tz && read_clock(&mono, &ro, &bo)) {
		if (tv) {
			int64_t ns = (int64_t)mono + ro;
			tv->tv_sec = ns / 1000000000;
			tv->tv_usec = ns % 1000000000 / 1000;
		}
		return 0;
	}
	return (int)sys2(NR_gettimeofday, (long)tv, (long)tz);
}

long __vdso_time(long *t);
long __vdso_time(long *t)
{
	uint64_t mono;
	int64_t ro, bo;
	if (read_clock(&mono, &ro, &bo)) {
		long s = ((int64_t)mono + ro) / 1000000000;
		if (t)
			*t = s;
		return s;
	}
	return sys2(NR_time, (long)t, 0);
}

int clock_gettime(int, struct k_timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct k_timeval *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
