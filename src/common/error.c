/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void verr(struct nb_error *err, enum nb_errcode code, int errnum, const char *fmt,
		 va_list ap)
{
	if (!err)
		return;
	err->code = code;
	err->sys_errno = errnum;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (errnum && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(errnum));
}

int nb_error_set(struct nb_error *err, enum nb_errcode code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(err, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int nb_error_sys(struct nb_error *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(err, errnum == ENOENT ? NB_ENOENT : NB_ERESOURCE, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

void nb_error_clear(struct nb_error *err)
{
	if (err) {
		err->code = NB_OK;
		err->sys_errno = 0;
		err->msg[0] = '\0';
	}
}

const char *nb_errcode_name(enum nb_errcode code)
{
	static const char *const names[] = {
	    [NB_OK] = "ok",
	    [NB_EINVAL] = "invalid",
	    [NB_ENOENT] = "not-found",
	    [NB_EFORMAT] = "bad-format",
	    [NB_ERESOURCE] = "resource",
	    [NB_EKVM] = "kvm",
	    [NB_EHOSTFILE] = "host-file",
	    [NB_EINTERNAL] = "internal",
	};
	if ((unsigned)code < sizeof(names) / sizeof(names[0]) && names[code])
		return names[code];
	return "unknown";
}
