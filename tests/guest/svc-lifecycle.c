/* SPDX-License-Identifier: MIT */
/*
 * Guest program for the service-VM life-cycle tests (tests/e2e/test_services.py),
 * built static with musl. Multi-call by its first argument:
 *
 *   counter MS         print 1, 2, 3, ... one line every MS milliseconds
 *   term MS            like counter; on SIGTERM print "sigterm handled" and exit 42
 *   ignore-term MS     ignore SIGTERM, keep counting (only SIGKILL ends it)
 *   persist PATH MS    read a number from PATH (0 if missing), print "persist N",
 *                      write N+1 back (fsync), then count like counter
 *   exit N             print "bye N", exit with status N
 *   spew BYTES         write BYTES bytes of 'x' lines to stdout, then exit 0
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !got_term)
		;
}

static int count(long ms, int exit_on_term)
{
	for (unsigned long i = 1;; i++) {
		if (got_term && exit_on_term) {
			printf("sigterm handled\n");
			fflush(stdout);
			return 42;
		}
		printf("%lu\n", i);
		fflush(stdout);
		sleep_ms(ms);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: svc-lifecycle counter|term|ignore-term|persist|exit|spew ...\n");
		return 2;
	}
	const char *cmd = argv[1];
	long ms = argc > 2 ? atol(argv[argc - 1]) : 100;
	if (ms <= 0)
		ms = 100;
	if (!strcmp(cmd, "counter"))
		return count(ms, 0);
	if (!strcmp(cmd, "term")) {
		struct sigaction sa = {.sa_handler = on_term};
		sigaction(SIGTERM, &sa, NULL);
		printf("handler installed\n");
		return count(ms, 1);
	}
	if (!strcmp(cmd, "ignore-term")) {
		signal(SIGTERM, SIG_IGN);
		printf("ignoring SIGTERM\n");
		return count(ms, 0);
	}
	if (!strcmp(cmd, "persist") && argc > 2) {
		long n = 0;
		char buf[32] = "";
		int fd = open(argv[2], O_RDONLY);
		if (fd >= 0) {
			ssize_t r = read(fd, buf, sizeof(buf) - 1);
			buf[r > 0 ? r : 0] = 0;
			n = atol(buf);
			close(fd);
		}
		printf("persist %ld\n", n);
		fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			perror("open for write");
			return 1;
		}
		int len = snprintf(buf, sizeof(buf), "%ld\n", n + 1);
		if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0) {
			perror("write");
			return 1;
		}
		close(fd);
		return count(ms, 0);
	}
	if (!strcmp(cmd, "exit") && argc > 2) {
		printf("bye %s\n", argv[2]);
		return atoi(argv[2]);
	}
	if (!strcmp(cmd, "spew") && argc > 2) {
		long left = atol(argv[2]);
		char line[64];
		memset(line, 'x', sizeof(line) - 1);
		line[sizeof(line) - 1] = '\n';
		while (left > 0) {
			size_t n = left < (long)sizeof(line) ? (size_t)left : sizeof(line);
			if (write(1, line, n) != (ssize_t)n)
				return 1;
			left -= (long)n;
		}
		return 0;
	}
	fprintf(stderr, "svc-lifecycle: unknown command %s\n", cmd);
	return 2;
}
