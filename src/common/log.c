/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void nb_log(enum nb_log_level lvl, const char *fmt, ...)
{
	static const char *const tag[] = {"error: ", "warning: ", "", "debug: "};
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "nubis: %s%s\n", tag[lvl], buf);
}

uint64_t nb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int nb_ratelimit_ok(struct nb_ratelimit *rl)
{
	uint64_t now = nb_now_ns();
	if (now - rl->window_start_ns > rl->interval_ns) {
		rl->window_start_ns = now;
		rl->count = 0;
	}
	return rl->count++ < rl->burst;
}

void nb_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "nubis: assertion failed: %s (%s:%d)\n", expr, file, line);
	abort();
}
