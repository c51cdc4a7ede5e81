/* SPDX-License-Identifier: MIT */
/* Recursive removal of a directory tree relative to a directory fd. */
#ifndef NUBIS_COMMON_RMTREE_H
#define NUBIS_COMMON_RMTREE_H

/* Remove @name in directory @dirfd and, if it is a directory, everything under it, never
 * following symbolic links. A directory without write/search permission is made 0700
 * first. A name that is already gone (or vanishes meanwhile) is not an error. 0, or the
 * first -errno met (removal goes on past it); -ELOOP for a tree deeper than 4096. */
int nb_rmtree_at(int dirfd, const char *name);

#endif
