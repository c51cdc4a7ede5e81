/* SPDX-License-Identifier: MIT */
/*
 * In-process function-VM benchmark, side by side with fork+exec+wait of the
 * same binary on the host. Not a test: prints figures.
 *
 *   fnvm_bench [OPTS] PROGRAM [N]                latency of requests
 *   fnvm_bench [OPTS] --rate SECONDS THREADS PROGRAM   fresh VMs per second, in process
 *   fnvm_bench [OPTS] --idle N PROGRAM           host memory per prepared idle VM
 *   fnvm_bench [OPTS] --first-insn N FIRST_INSN  request -> first guest instruction,
 *                      with bench/first-insn (its first instruction is rdtsc)
 * OPTS: --memory MB (guest memory, default 64), --pool-threads N (default 1)
 *
 * fork+exec+wait, the peer, is measured by bench/forkexec (a small launcher:
 * forking this big process would flatter nubis); bench/run.sh runs both.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "fnvm/fnvm.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void stats(const char *name, uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%-34s p50 %8.1f us   p99 %8.1f us   (n=%zu)\n", name, v[n / 2] / 1e3,
	       v[(n * 99) / 100] / 1e3, n);
}

static uint64_t opt_mem_mb = 64;
static unsigned opt_pool_threads = 1;

static struct fnvm_program *load(struct kvmhost *kvm, const char *path)
{
	static char *argv[2];
	static char *envp[1];
	struct fnvm_config cfg;
	struct nb_error err;
	struct fnvm_program *p;
	fnvm_config_defaults(&cfg);
	cfg.mem_size = opt_mem_mb << 20;
	argv[0] = (char *)(uintptr_t)path;
	cfg.argv = argv;
	cfg.envp = envp;
	if (fnvm_program_create(kvm, path, &cfg, &p, &err) < 0) {
		fprintf(stderr, "fnvm_bench: %s: %s\n", path, err.msg);
		exit(1);
	}
	return p;
}

/* Open KVM and prepare @path, or exit: this is a benchmark tool. */
static struct fnvm_program *open_and_load(struct kvmhost *kvm, const char *path)
{
	struct nb_error err;
	if (kvmhost_open(kvm, &err) < 0) {
		fprintf(stderr, "fnvm_bench: %s\n", err.msg);
		exit(1);
	}
	return load(kvm, path);
}

/* A pool of @depth VMs for @p, or exit. */
static struct fnvm_pool *start_pool(struct fnvm_program *p, unsigned depth)
{
	struct nb_error err;
	struct fnvm_pool *pool;
	if (fnvm_pool_create(p, depth, opt_pool_threads, &pool, &err) < 0) {
		fprintf(stderr, "fnvm_bench: %s\n", err.msg);
		exit(1);
	}
	return pool;
}

static int run_once(struct fnvm_runner *rn, struct fnvm_program *p, struct fnvm_pool *pool,
		    struct fnvm_result *res)
{
	struct nb_error err;
	struct fnvm_stdio io = {.in_fd = -1, .out = {.fd = -1}, .err = {.fd = -1}};
	int rc = fnvm_run(rn, p, pool, &io, res, &err);
	free(io.out.buf);
	free(io.err.buf);
	if (rc < 0 || res->outcome != FNVM_EXITED || res->status != 0) {
		fprintf(stderr, "fnvm_bench: run failed: %s %s\n", rc < 0 ? err.msg : "",
			res->message);
		exit(1);
	}
	return 0;
}

static int latency(const char *path, size_t n)
{
	struct kvmhost kvm;
	struct nb_error err;
	struct fnvm_program *p = open_and_load(&kvm, path);
	struct fnvm_runner *rn;
	fnvm_runner_create(&rn, &err);
	struct fnvm_pool *pool = start_pool(p, 8);
	uint64_t *whole = calloc(n, 8), *first = calloc(n, 8), *cold = calloc(n, 8);
	for (size_t i = 0; i < n; i++) {
		struct fnvm_result res;
		usleep(200); /* let the pool refill: measure a request that finds a prepared VM */
		run_once(rn, p, pool, &res);
		whole[i] = res.t_end_ns - res.t_start_ns;
		first[i] = res.t_first_entry_ns - res.t_start_ns;
		fnvm_result_release(&res);
	}
	for (size_t i = 0; i < n / 4; i++) {
		struct fnvm_result res;
		run_once(rn, p, NULL, &res);
		cold[i] = res.t_end_ns - res.t_start_ns;
		fnvm_result_release(&res);
	}
	printf("program: %s (guest memory %llu MiB)\n", path, (unsigned long long)opt_mem_mb);
	stats("nubis request (prepared VM)", whole, n);
	stats("nubis request -> first exit", first, n);
	stats("nubis request (VM made inline)", cold, n / 4);
	free(whole);
	free(first);
	free(cold);
	fnvm_pool_destroy(pool);
	fnvm_runner_destroy(rn);
	fnvm_program_destroy(p);
	kvmhost_close(&kvm);
	return 0;
}

struct rate_arg {
	struct fnvm_program *p;
	struct fnvm_pool *pool;
	uint64_t until;
	uint64_t count;
};

static void *rate_thread(void *a)
{
	struct rate_arg *ra = a;
	struct fnvm_runner *rn;
	struct nb_error err;
	fnvm_runner_create(&rn, &err);
	while (nb_now_ns() < ra->until) {
		struct fnvm_result res;
		run_once(rn, ra->p, ra->pool, &res);
		fnvm_result_release(&res);
		ra->count++;
	}
	fnvm_runner_destroy(rn);
	return NULL;
}

static int rate(double secs, unsigned threads, const char *path)
{
	struct kvmhost kvm;
	struct fnvm_program *p = open_and_load(&kvm, path);
	struct fnvm_pool *pool = start_pool(p, 4 * threads);
	usleep(100000);
	pthread_t t[64];
	struct rate_arg ra[64];
	uint64_t start = nb_now_ns();
	for (unsigned i = 0; i < threads; i++) {
		ra[i] = (struct rate_arg){p, pool, start + (uint64_t)(secs * 1e9), 0};
		pthread_create(&t[i], NULL, rate_thread, &ra[i]);
	}
	uint64_t total = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += ra[i].count;
	}
	double el = (double)(nb_now_ns() - start) / 1e9;
	printf("fresh VMs per second (in process, %u threads): %.0f\n", threads,
	       (double)total / el);
	fnvm_pool_destroy(pool);
	fnvm_program_destroy(p);
	kvmhost_close(&kvm);
	return 0;
}

static long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int idle(unsigned n, const char *path)
{
	struct kvmhost kvm;
	struct nb_error err;
	struct fnvm_program *p = open_and_load(&kvm, path);
	long before = meminfo_kb("MemAvailable");
	struct fnvm_pool *pool;
	if (fnvm_pool_create(p, n, 1, &pool, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	/* wait for the pool to fill (at most 60 s), then hold the VMs a while */
	for (int i = 0; i < 6000 && fnvm_pool_ready(pool) < n; i++)
		usleep(10000);
	unsigned ready = fnvm_pool_ready(pool);
	usleep(500000);
	long after = meminfo_kb("MemAvailable");
	printf(
	    "prepared idle VMs: %u, host memory each: %.1f KiB (MemAvailable delta, includes the "
	    "pages each VM touches)\n",
	    ready, ready ? (double)(before - after) / ready : 0.0);
	sleep(8);
	fnvm_pool_destroy(pool);
	fnvm_program_destroy(p);
	kvmhost_close(&kvm);
	return 0;
}

static uint64_t host_tsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Request -> first guest instruction, from the guest's own rdtsc. Valid only
 * where guest ring-3 rdtsc reads the host TSC (kvm_pvm); elsewhere the value
 * falls outside [start, end] and the mode says so. */
static int first_insn(size_t n, const char *path)
{
	struct kvmhost kvm;
	struct nb_error err;
	struct fnvm_program *p = open_and_load(&kvm, path);
	struct fnvm_runner *rn;
	fnvm_runner_create(&rn, &err);
	struct fnvm_pool *pool = start_pool(p, 8);
	/* TSC ticks per microsecond, against CLOCK_MONOTONIC over 50 ms */
	uint64_t t0 = nb_now_ns(), c0 = host_tsc();
	usleep(50000);
	double per_us = (double)(host_tsc() - c0) / ((double)(nb_now_ns() - t0) / 1e3);
	uint64_t *v = calloc(n, 8);
	size_t got = 0;
	for (size_t i = 0; i < n; i++) {
		usleep(200);
		struct fnvm_stdio io = {.in_fd = -1, .out = {.fd = -1}, .err = {.fd = -1}};
		struct fnvm_result res;
		uint64_t start = host_tsc();
		if (fnvm_run(rn, p, pool, &io, &res, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		uint64_t end = host_tsc(), g = 0;
		if (io.out.len == 8)
			memcpy(&g, io.out.buf, 8);
		if (g >= start && g <= end)
			v[got++] = (uint64_t)((double)(g - start) / per_us * 1e3); /* ns */
		free(io.out.buf);
		free(io.err.buf);
		fnvm_result_release(&res);
	}
	if (got < n / 2) {
		printf(
		    "request -> first guest instruction: not measurable here (guest rdtsc does not "
		    "read the host TSC)\n");
	} else {
		stats("nubis request -> first instruction", v, got);
	}
	free(v);
	fnvm_pool_destroy(pool);
	fnvm_runner_destroy(rn);
	fnvm_program_destroy(p);
	kvmhost_close(&kvm);
	return 0;
}

int main(int argc, char **argv)
{
	while (argc > 2 && (!strcmp(argv[1], "--memory") || !strcmp(argv[1], "--pool-threads"))) {
		if (!strcmp(argv[1], "--memory"))
			opt_mem_mb = strtoull(argv[2], NULL, 10);
		else
			opt_pool_threads = (unsigned)atoi(argv[2]);
		argc -= 2;
		argv += 2;
	}
	if (argc >= 4 && !strcmp(argv[1], "--first-insn"))
		return first_insn((size_t)atol(argv[2]), argv[3]);
	if (argc >= 5 && !strcmp(argv[1], "--rate"))
		return rate(atof(argv[2]), (unsigned)atoi(argv[3]), argv[4]);
	if (argc >= 4 && !strcmp(argv[1], "--idle"))
		return idle((unsigned)atoi(argv[2]), argv[3]);
	if (argc < 2) {
		fprintf(stderr, "usage: fnvm_bench [--memory MB] [--pool-threads N] "
				"PROGRAM [N] | --rate SECS THREADS PROGRAM | --idle N PROGRAM\n");
		return 2;
	}
	return latency(argv[1], argc > 2 ? (size_t)atol(argv[2]) : 500);
}
