/* SPDX-License-Identifier: MIT */
/* Diagnostics to stderr, prefixed "nubis: ". Thread-safe (one fprintf per message). */
#ifndef NUBIS_COMMON_LOG_H
#define NUBIS_COMMON_LOG_H

#include <stdint.h>

enum nb_log_level { NB_LOG_ERROR, NB_LOG_WARN, NB_LOG_INFO, NB_LOG_DEBUG };

void nb_log(enum nb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rate limit: at most @burst messages per @interval_ns; returns 1 if this one may be logged. */
struct nb_ratelimit {
	uint64_t window_start_ns;
	unsigned count, burst;
	uint64_t interval_ns;
};
#define NB_RATELIMIT_INIT(burst_, interval_ns_)                                                    \
	{                                                                                          \
		0, 0, (burst_), (interval_ns_)                                                     \
	}
int nb_ratelimit_ok(struct nb_ratelimit *rl);

uint64_t nb_now_ns(void); /* CLOCK_MONOTONIC */

#define NB_ASSERT(expr)                                                                            \
	do {                                                                                       \
		if (__builtin_expect(!(expr), 0))                                                  \
			nb_assert_fail(#expr, __FILE__, __LINE__);                                 \
	} while (0)
_Noreturn void nb_assert_fail(const char *expr, const char *file, int line);

#endif
