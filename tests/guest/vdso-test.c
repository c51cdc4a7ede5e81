/* SPDX-License-Identifier: MIT */
/*
 * Service-VM vDSO test program (vdso helper), built static with musl and
 * glibc. Prints key=value lines; tests/e2e/test_svc_vdso.py checks them
 * against the host clock and the monitor's system-call counts.
 *
 *   vdso-test clocks N       N rounds of every clock call; values and checks
 *   vdso-test threads T N    T threads x N CLOCK_MONOTONIC reads: never back,
 *                            also across threads
 *   vdso-test spin MS        read CLOCK_MONOTONIC for MS ms (across refreshes
 *                            of the clock page): never back, max step
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint64_t ns_of(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static uint64_t now(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts)) {
		printf("error=clock_gettime(%d)\n", (int)c);
		exit(1);
	}
	return ns_of(&ts);
}

/* |system call - vDSO| for clock @c: the vDSO read before and after the call
 * bracket it; the distance to their midpoint, less half the bracket. */
static long long err_vs_syscall(clockid_t c)
{
	long long best = -1;
	for (int i = 0; i < 5; i++) {
		struct timespec s;
		uint64_t v1 = now(c);
		syscall(SYS_clock_gettime, c, &s);
		uint64_t v2 = now(c);
		long long mid = (long long)(v1 + (v2 - v1) / 2), d = (long long)ns_of(&s) - mid;
		if (d < 0)
			d = -d;
		d -= (long long)(v2 - v1) / 2;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best;
}

static int clocks(long n)
{
	static const clockid_t ids[] = {CLOCK_REALTIME,
					CLOCK_MONOTONIC,
					CLOCK_MONOTONIC_RAW,
					CLOCK_REALTIME_COARSE,
					CLOCK_MONOTONIC_COARSE,
					CLOCK_BOOTTIME,
					CLOCK_TAI};
	static const char *const names[] = {
	    "realtime",		"monotonic", "raw", "realtime_coarse",
	    "monotonic_coarse", "boottime",  "tai"};
	enum { NC = sizeof(ids) / sizeof(ids[0]) };
	uint64_t last[NC] = {0};
	int back = 0;
	for (long i = 0; i < n; i++) {
		for (int k = 0; k < NC; k++) {
			uint64_t v = now(ids[k]);
			/* all but REALTIME/TAI must never go back (no host steps here) */
			if (v < last[k])
				back++;
			last[k] = v;
		}
		struct timeval tv;
		gettimeofday(&tv, NULL);
		time_t t = time(NULL);
		(void)t;
	}
	for (int k = 0; k < NC; k++)
		printf("%s_ns=%llu\n", names[k], (unsigned long long)last[k]);
	struct timeval tv;
	struct timezone tz = {123, 456};
	int r = gettimeofday(&tv, &tz);
	printf("gettimeofday_us=%llu\n",
	       (unsigned long long)tv.tv_sec * 1000000ull + (unsigned long long)tv.tv_usec);
	printf("gettimeofday_rc=%d\ntz=%d,%d\n", r, tz.tz_minuteswest, tz.tz_dsttime);
	time_t tt = 0;
	time_t t = time(&tt);
	printf("time=%lld\ntime_arg_same=%d\n", (long long)t, t == tt);
	struct timespec res;
	clock_getres(CLOCK_MONOTONIC, &res);
	printf("res_mono_ns=%lld\n", (long long)res.tv_sec * 1000000000ll + res.tv_nsec);
	/* a clock the vDSO does not serve: must still work (system call) */
	struct timespec cpu;
	printf("cputime_rc=%d\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu));
	printf("bad_clock_rc=%d\n", clock_gettime((clockid_t)9999, &cpu));
	printf("getcpu=%d\n", sched_getcpu());
	printf("vdso=%#lx\n", getauxval(AT_SYSINFO_EHDR));
	printf("mono_err_ns=%lld\n", err_vs_syscall(CLOCK_MONOTONIC));
	printf("real_err_ns=%lld\n", err_vs_syscall(CLOCK_REALTIME));
	printf("raw_err_ns=%lld\n", err_vs_syscall(CLOCK_MONOTONIC_RAW));
	printf("boot_err_ns=%lld\n", err_vs_syscall(CLOCK_BOOTTIME));
	printf("back=%d\n", back);
	printf("ok=%d\n", back == 0);
	return back != 0;
}

static atomic_uint_fast64_t seen_max;
static atomic_int backs;
static long per_thread;

static void *reader(void *arg)
{
	(void)arg;
	uint64_t mine = 0;
	for (long i = 0; i < per_thread; i++) {
		/* a value another thread returned before this read starts */
		uint64_t g = atomic_load(&seen_max);
		uint64_t v = now(CLOCK_MONOTONIC);
		if (v < g || v < mine)
			atomic_fetch_add(&backs, 1);
		mine = v;
		uint64_t cur = atomic_load(&seen_max);
		while (cur < v && !atomic_compare_exchange_weak(&seen_max, &cur, v))
			;
	}
	return NULL;
}

static int threads(int nt, long n)
{
	pthread_t th[64];
	per_thread = n;
	if (nt > 64)
		nt = 64;
	for (int i = 0; i < nt; i++)
		if (pthread_create(&th[i], NULL, reader, NULL)) {
			printf("error=pthread_create\n");
			return 1;
		}
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	printf("reads=%ld\nback=%d\nok=%d\n", n * nt, atomic_load(&backs),
	       atomic_load(&backs) == 0);
	return atomic_load(&backs) != 0;
}

static int spin(long ms)
{
	uint64_t t0 = now(CLOCK_MONOTONIC), last = t0, maxstep = 0, reads = 0;
	uint64_t r0 = now(CLOCK_REALTIME);
	int back = 0;
	for (;;) {
		uint64_t v = now(CLOCK_MONOTONIC);
		reads++;
		if (v < last)
			back++;
		else if (v - last > maxstep)
			maxstep = v - last;
		last = v;
		if (v - t0 >= (uint64_t)ms * 1000000ull)
			break;
	}
	uint64_t r1 = now(CLOCK_REALTIME);
	printf("reads=%llu\nmax_step_ns=%llu\nmono_elapsed_ns=%llu\nreal_elapsed_ns=%llu\n",
	       (unsigned long long)reads, (unsigned long long)maxstep,
	       (unsigned long long)(last - t0), (unsigned long long)(r1 - r0));
	printf("mono_err_ns=%lld\nreal_err_ns=%lld\n", err_vs_syscall(CLOCK_MONOTONIC),
	       err_vs_syscall(CLOCK_REALTIME));
	printf("back=%d\nok=%d\n", back, back == 0);
	return back != 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "clocks"))
		return clocks(atol(argv[2]));
	if (argc >= 4 && !strcmp(argv[1], "threads"))
		return threads(atoi(argv[2]), atol(argv[3]));
	if (argc >= 3 && !strcmp(argv[1], "spin"))
		return spin(atol(argv[2]));
	fprintf(stderr, "usage: vdso-test clocks N | threads T N | spin MS\n");
	return 2;
}
