/* SPDX-License-Identifier: MIT */
/*
 * The service-VM vDSO: clock_gettime, gettimeofday, time, clock_getres and
 * getcpu in guest ring 3, without an exit to the monitor. Built as a tiny
 * ELF shared object (vdso.lds: one read+execute PT_LOAD, DT_HASH and
 * DT_GNU_HASH, symbol versions LINUX_2.6 like Linux's x86-64 vDSO) and
 * embedded in the monitor, which maps it at UVM_VDSO and names it in
 * AT_SYSINFO_EHDR. The clock page (vvar.h) is the page just below it,
 * reached PC-relatively through the hidden linker symbol svc_vvar_page.
 *
 * Freestanding: no libc, no data, no relocations (bin2c.py checks). When
 * the page says so, or for clocks it does not serve, each function makes
 * the real system call, as Linux's vDSO does.
 */
#include <stdint.h>

#include "vvar.h"

#define NR_gettimeofday	 96
#define NR_time		 201
#define NR_clock_gettime 228
#define NR_clock_getres	 229

struct vdso_timespec {
	int64_t tv_sec, tv_nsec;
};
struct vdso_timeval {
	int64_t tv_sec, tv_usec;
};
struct vdso_timezone {
	int32_t tz_minuteswest, tz_dsttime;
};

extern const volatile struct svc_vvar svc_vvar_page __attribute__((visibility("hidden")));

static long vsys2(long nr, long a, long b)
{
	long r;
	__asm__ __volatile__("syscall"
			     : "=a"(r)
			     : "a"(nr), "D"(a), "S"(b)
			     : "rcx", "r11", "memory");
	return r;
}

static uint64_t tsc_ordered(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

static int clock_ns(long clk, uint64_t *ns)
{
	return svc_vvar_read(&svc_vvar_page, clk, tsc_ordered, ns);
}

int __vdso_clock_gettime(long clk, struct vdso_timespec *ts);
int __vdso_gettimeofday(struct vdso_timeval *tv, struct vdso_timezone *tz);
long __vdso_time(long *t);
int __vdso_clock_getres(long clk, struct vdso_timespec *res);
int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused);

int __vdso_clock_gettime(long clk, struct vdso_timespec *ts)
{
	uint64_t ns;
	if (clock_ns(clk, &ns))
		return (int)vsys2(NR_clock_gettime, clk, (long)ts);
	ts->tv_sec = (int64_t)(ns / 1000000000u);
	ts->tv_nsec = (int64_t)(ns % 1000000000u);
	return 0;
}

int __vdso_gettimeofday(struct vdso_timeval *tv, struct vdso_timezone *tz)
{
	if (tv) {
		uint64_t ns;
		if (clock_ns(SVC_VVAR_CLOCK_REALTIME, &ns))
			return (int)vsys2(NR_gettimeofday, (long)tv, (long)tz);
		tv->tv_sec = (int64_t)(ns / 1000000000u);
		tv->tv_usec = (int64_t)(ns % 1000000000u / 1000u);
	}
	if (tz) {
		/* the monitor keeps no time zone: UTC, as its system call says */
		tz->tz_minuteswest = 0;
		tz->tz_dsttime = 0;
	}
	return 0;
}

long __vdso_time(long *t)
{
	uint64_t ns;
	if (clock_ns(SVC_VVAR_CLOCK_REALTIME, &ns))
		return vsys2(NR_time, (long)t, 0);
	long s = (long)(ns / 1000000000u);
	if (t)
		*t = s;
	return s;
}

int __vdso_clock_getres(long clk, struct vdso_timespec *res)
{
	uint64_t ns;
	/* a clock the page serves now is read from the TSC: 1 ns steps */
	if (clock_ns(clk, &ns))
		return (int)vsys2(NR_clock_getres, clk, (long)res);
	if (res) {
		res->tv_sec = 0;
		res->tv_nsec = 1;
	}
	return 0;
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
	(void)unused;
	/* the monitor's getcpu answers CPU 0, node 0 for every thread */
	if (cpu)
		*cpu = 0;
	if (node)
		*node = 0;
	return 0;
}

int clock_gettime(long clk, struct vdso_timespec *ts)
    __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct vdso_timeval *tv, struct vdso_timezone *tz)
    __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *t) __attribute__((weak, alias("__vdso_time")));
int clock_getres(long clk, struct vdso_timespec *res)
    __attribute__((weak, alias("__vdso_clock_getres")));
int getcpu(unsigned *cpu, unsigned *node, void *unused)
    __attribute__((weak, alias("__vdso_getcpu")));
