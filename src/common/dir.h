/* SPDX-License-Identifier: MIT */
/* Directory helpers relative to a directory fd: opening one for readdir(),
 * removing a tree. */
#ifndef NUBIS_COMMON_DIR_H
#define NUBIS_COMMON_DIR_H

#include <dirent.h>

/* Open @path relative to @dirfd as a directory stream: openat() with
 * O_RDONLY | O_DIRECTORY | O_CLOEXEC | @flags (e.g. O_NOFOLLOW), then
 * fdopendir(). NULL with errno set (the fd closed) on failure; closedir() it. */
DIR *nb_opendir_at(int dirfd, const char *path, int flags);

/* Remove @name in directory @dirfd and, if it is a directory, everything under it, never
 * following symbolic links. A directory without write/search permission is made 0700
 * first. A name that is already gone (or vanishes meanwhile) is not an error. 0, or the
 * first -errno met (removal goes on past it); -ELOOP for a tree deeper than 4096. */
int nb_rmtree_at(int dirfd, const char *name);

#endif
