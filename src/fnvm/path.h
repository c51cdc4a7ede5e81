/* SPDX-License-Identifier: MIT */
/* Guest path names: lexical normalization (no host file system is consulted). */
#ifndef NUBIS_FNVM_PATH_H
#define NUBIS_FNVM_PATH_H

#include <stddef.h>

#define FNVM_PATH_MAX 4095

/* Resolve @path against directory @cwd (absolute) into @out: absolute, no
 * "." or ".." components, no repeated or trailing slashes ("/" for the root;
 * ".." at the root stays at the root). Returns the length or -ENAMETOOLONG. */
int fnvm_path_norm(const char *cwd, const char *path, char *out, size_t outsz);

#endif
