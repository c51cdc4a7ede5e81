/* SPDX-License-Identifier: MIT */
/* Unix-socket helpers shared by every nubis server (serve, the VMM's API). */
#ifndef NUBIS_COMMON_SOCK_H
#define NUBIS_COMMON_SOCK_H

#include "error.h"

/* Listen on the Unix socket @path. A socket file left by a dead process
 * (nobody accepts on it) is replaced; one with a live listener is an error.
 * @what names the option in messages ("--listen unix:/x"). Returns the
 * listening fd (close-on-exec) or -1 with @err. */
int nb_unix_listen(const char *path, int backlog, const char *what, struct nb_error *err);

#endif
