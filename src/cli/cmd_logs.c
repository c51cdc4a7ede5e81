/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "svcstate.h"

void cmd_logs_usage(FILE *out)
{
	fprintf(out,
		"usage: nubis logs [-f] NAME\n\n"
		"Print a service VM's output (stdout and stderr, as the guest wrote them; the\n"
		"log rotates once at the --log-size of nubis run, keeping one older part).\n\n"
		"options:\n"
		"  -f, --follow   keep printing new output until the VM has ended\n");
}

/* Copy @fd from its offset to the end onto stdout. 0, or -1 if stdout broke. */
static int drain(int fd)
{
	char buf[65536];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(1, buf + off, (size_t)(r - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			off += w;
		}
	}
}

int cmd_logs_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"follow", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
	bool follow = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
		if (c == 'f')
			follow = true;
		else if (c == 'h') {
			cmd_logs_usage(stdout);
			return 0;
		} else {
			cmd_logs_usage(stderr);
			return FNVM_STATUS_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "nubis logs: need exactly one NAME\n");
		return FNVM_STATUS_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	struct svcstate_store s;
	struct svcstate_rec *r = NULL;
	struct nb_error err;
	int status = 1;
	if (svcstate_store_open(NULL, &s, &err) < 0) {
		fprintf(stderr, "nubis logs: %s\n", err.msg);
		return 1;
	}
	if (svcstate_find(&s, argv[optind], &r, &err) < 0) {
		fprintf(stderr, "nubis logs: %s\n", err.msg);
		goto out;
	}
	int old = openat(r->dirfd, "log.1", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (old >= 0) {
		int rc = drain(old);
		close(old);
		if (rc < 0) {
			status = 0;
			goto out;
		}
	}
	int fd = openat(r->dirfd, "log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && drain(fd) < 0) {
		status = 0;
		close(fd);
		goto out;
	}
	while (follow) {
		bool alive = svcstate_monitor_alive(r);
		/* rotated? finish the old file, then read the new one */
		struct stat a, b;
		int cur = openat(r->dirfd, "log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (cur >= 0 && (fd < 0 || (fstat(fd, &a) == 0 && fstat(cur, &b) == 0 &&
					    (a.st_ino != b.st_ino || a.st_dev != b.st_dev)))) {
			if (fd >= 0) {
				drain(fd);
				close(fd);
			}
			fd = cur;
			cur = -1;
		}
		if (cur >= 0)
			close(cur);
		if (fd >= 0 && drain(fd) < 0)
			break;
		if (!alive)
			break; /* everything the guest wrote is in the file now */
		usleep(50000);
	}
	if (fd >= 0)
		close(fd);
	status = 0;
out:
	svcstate_rec_free(r);
	svcstate_store_close(&s);
	return status;
}
