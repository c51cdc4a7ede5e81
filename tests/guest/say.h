/* SPDX-License-Identifier: MIT */
/* say(): one printf-style line on stdout, written by a single write() (no stdio
 * buffer), cut to 1022 characters plus the newline. Header-only: shared by the
 * guest test programs, each a single static program built from one .c file. */
#ifndef NUBIS_TESTS_GUEST_SAY_H
#define NUBIS_TESTS_GUEST_SAY_H

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char b[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(b) - 2)
		n = (int)sizeof(b) - 2;
	b[n++] = '\n';
	ssize_t r = write(1, b, (size_t)n);
	(void)r;
}

#endif
