/* SPDX-License-Identifier: MIT */
/*
 * Time a command to its first line on stdout and to its exit, N times.
 * Not a test: prints medians in milliseconds.
 *
 *   firstline [-n N] [-w WARMUP] [-l LABEL] PROGRAM [ARGS...]
 *
 * For each run: the clock starts just before fork; the child gets stdin from /dev/null,
 * stdout into a pipe, stderr on /dev/null, and execs PROGRAM; "line" is when the parent
 * has read the first '\n' from the pipe, "exit" when wait4 returns. The peak RSS of the
 * child (rusage ru_maxrss: guest pages it touched included) is reported too. The child
 * must exit with status 0 (a monitor's poweroff). One output line:
 *   LABEL  line p50 X ms (min Y)  exit p50 X ms (min Y)  maxrss p50 Z KiB  (n=N)
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static uint64_t median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One run: 0, or -1 (message printed). */
static int run_once(char **argv, uint64_t *line_ns, uint64_t *exit_ns, uint64_t *rss_kib)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("firstline: pipe");
		return -1;
	}
	uint64_t t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		perror("firstline: fork");
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(null, 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	char buf[4096];
	*line_ns = 0;
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf));
		if (n <= 0)
			break;
		if (!*line_ns && memchr(buf, '\n', (size_t)n))
			*line_ns = now_ns() - t0;
	}
	close(p[0]);
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0) {
		perror("firstline: wait4");
		return -1;
	}
	*exit_ns = now_ns() - t0;
	*rss_kib = (uint64_t)ru.ru_maxrss;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !*line_ns) {
		fprintf(stderr, "firstline: %s: status 0x%x%s\n", argv[0], st,
			*line_ns ? "" : ", no output line");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long n = 20, warm = 3;
	const char *label = NULL;
	int c;
	while ((c = getopt(argc, argv, "+n:w:l:")) != -1) {
		switch (c) {
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 'w':
			warm = strtol(optarg, NULL, 10);
			break;
		case 'l':
			label = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind >= argc || n < 1 || n > 100000 || warm < 0)
		goto usage;
	uint64_t *line = calloc((size_t)n, 8), *ex = calloc((size_t)n, 8),
		 *rss = calloc((size_t)n, 8);
	if (!line || !ex || !rss)
		return 1;
	uint64_t l, e, r;
	for (long i = 0; i < warm; i++)
		if (run_once(argv + optind, &l, &e, &r) < 0)
			return 1;
	for (long i = 0; i < n; i++)
		if (run_once(argv + optind, &line[i], &ex[i], &rss[i]) < 0)
			return 1;
	uint64_t lmin = line[0], emin = ex[0];
	for (long i = 1; i < n; i++) {
		lmin = line[i] < lmin ? line[i] : lmin;
		emin = ex[i] < emin ? ex[i] : emin;
	}
	printf("%-15s line p50 %7.2f ms (min %6.2f)   exit p50 %7.2f ms (min %6.2f)   "
	       "maxrss p50 %6llu KiB   (n=%ld)\n",
	       label ? label : argv[optind], (double)median(line, (size_t)n) / 1e6,
	       (double)lmin / 1e6, (double)median(ex, (size_t)n) / 1e6, (double)emin / 1e6,
	       (unsigned long long)median(rss, (size_t)n), n);
	free(line);
	free(ex);
	free(rss);
	return 0;
usage:
	fprintf(stderr, "usage: firstline [-n N] [-w WARMUP] [-l LABEL] PROGRAM [ARGS...]\n");
	return 2;
}
