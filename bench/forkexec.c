/* SPDX-License-Identifier: MIT */
/*
 * The fair host peer of a function VM: a small process that launches a
 * binary and waits for it, N times, with the child's stdout on /dev/null.
 * Not a test: prints p50/p99 in microseconds.
 *
 *   forkexec [-n N] [-w WARMUP] [-f] PROGRAM [ARGS...]
 *
 * Measures fork+exec+wait and posix_spawn+wait (vfork-style on glibc) of
 * PROGRAM ARGS..., interleaved so that both see the same machine state;
 * -f measures fork+exec+wait only. The child must exit with status 0.
 * The same launcher also times whole commands (`nubis run hello`,
 * `crun run ...`), so that every row of bench/run.sh is measured alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void stats(const char *name, uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i99 = (n * 99) / 100;
	if (i99 >= n)
		i99 = n - 1;
	printf("%-22s p50 %8.1f us   p99 %8.1f us   (n=%zu)\n", name, (double)v[n / 2] / 1e3,
	       (double)v[i99] / 1e3, n);
}

static int check(int st, const char *what)
{
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "forkexec: %s: child status 0x%x\n", what, st);
		return -1;
	}
	return 0;
}

/* Wait for @pid, check it exited 0, return the time since @t0. */
static uint64_t wait_child(pid_t pid, uint64_t t0, const char *what)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("forkexec: waitpid");
			exit(1);
		}
	uint64_t t = now_ns() - t0;
	if (check(st, what) < 0)
		exit(1);
	return t;
}

static uint64_t fork_exec_wait(const char *path, char *const argv[], int devnull)
{
	uint64_t t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		perror("forkexec: fork");
		exit(1);
	}
	if (pid == 0) {
		dup2(devnull, STDOUT_FILENO);
		execve(path, argv, environ);
		_exit(127);
	}
	return wait_child(pid, t0, "fork+exec");
}

static uint64_t spawn_wait(const char *path, char *const argv[],
			   const posix_spawn_file_actions_t *fa)
{
	uint64_t t0 = now_ns();
	pid_t pid;
	int rc = posix_spawn(&pid, path, fa, NULL, argv, environ);
	if (rc != 0) {
		fprintf(stderr, "forkexec: posix_spawn: %s\n", strerror(rc));
		exit(1);
	}
	return wait_child(pid, t0, "posix_spawn");
}

static void usage(void)
{
	fprintf(stderr, "usage: forkexec [-n N] [-w WARMUP] [-f] PROGRAM [ARGS...]\n");
}

int main(int argc, char **argv)
{
	long n = 1000, warm = 20;
	int fork_only = 0, c;
	while ((c = getopt(argc, argv, "+n:w:fh")) != -1) {
		switch (c) {
		case 'n':
			n = atol(optarg);
			break;
		case 'w':
			warm = atol(optarg);
			break;
		case 'f':
			fork_only = 1;
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc || n < 1 || warm < 0) {
		usage();
		return 2;
	}
	const char *path = argv[optind];
	char *const *cargv = &argv[optind];
	if (access(path, X_OK) < 0) {
		fprintf(stderr, "forkexec: %s: %s\n", path, strerror(errno));
		return 1;
	}
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0) {
		perror("forkexec: /dev/null");
		return 1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, STDOUT_FILENO);

	uint64_t *fe = calloc((size_t)n, sizeof(uint64_t));
	uint64_t *sp = calloc((size_t)n, sizeof(uint64_t));
	if (!fe || !sp) {
		perror("forkexec: calloc");
		return 1;
	}
	for (long i = 0; i < warm; i++) {
		fork_exec_wait(path, cargv, devnull);
		if (!fork_only)
			spawn_wait(path, cargv, &fa);
	}
	for (long i = 0; i < n; i++) {
		fe[i] = fork_exec_wait(path, cargv, devnull);
		if (!fork_only)
			sp[i] = spawn_wait(path, cargv, &fa);
	}
	printf("program:");
	for (char *const *a = cargv; *a; a++)
		printf(" %s", *a);
	printf("\n");
	stats("fork+exec+wait", fe, (size_t)n);
	if (!fork_only)
		stats("posix_spawn+wait", sp, (size_t)n);
	posix_spawn_file_actions_destroy(&fa);
	free(fe);
	free(sp);
	return 0;
}
