/* SPDX-License-Identifier: MIT */
/*
 * Error object for boundaries (CLI, HTTP, loaders).
 *
 * Core code returns 0 or a negative errno. Code that faces a user (a file
 * parser, the command line, the HTTP server) also fills a struct nb_error
 * with a category code and a one-line message naming the field and value.
 */
#ifndef NUBIS_COMMON_ERROR_H
#define NUBIS_COMMON_ERROR_H

#include <stddef.h>

enum nb_errcode {
	NB_OK = 0,
	NB_EINVAL,    /* bad argument or configuration */
	NB_ENOENT,    /* a named file does not exist */
	NB_EFORMAT,   /* a file exists but is not in an accepted format */
	NB_ERESOURCE, /* out of memory, file descriptors, ... */
	NB_EKVM,      /* /dev/kvm is missing or refused an operation */
	NB_EHOSTFILE, /* a host file named by the configuration (not the program) is unusable */
	NB_EINTERNAL,
};

struct nb_error {
	enum nb_errcode code;
	int sys_errno; /* errno of the failing host call, 0 if none */
	char msg[512];
};

/* Fill @err (may be NULL) with @code and a printf-style message. Returns -1. */
int nb_error_set(struct nb_error *err, enum nb_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like nb_error_set, appending ": strerror(errnum)" and recording errnum. */
int nb_error_sys(struct nb_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void nb_error_clear(struct nb_error *err);
const char *nb_errcode_name(enum nb_errcode code);

#endif
