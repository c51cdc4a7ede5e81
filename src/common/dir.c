/* SPDX-License-Identifier: MIT */
#include "dir.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RMTREE_MAX_DEPTH 4096

DIR *nb_opendir_at(int dirfd, const char *path, int flags)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

static int rmtree_depth(int dfd, const char *name, int depth)
{
	if (depth > RMTREE_MAX_DEPTH)
		return -ELOOP;
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	DIR *d = nb_opendir_at(dfd, name, O_NOFOLLOW);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	/* a directory without write/search permission (chmod 0 by a guest) */
	(void)fchmod(dirfd(d), 0700);
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int r = rmtree_depth(dirfd(d), de->d_name, depth + 1);
		if (r < 0 && !rc)
			rc = r;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

int nb_rmtree_at(int dirfd, const char *name)
{
	return rmtree_depth(dirfd, name, 0);
}
