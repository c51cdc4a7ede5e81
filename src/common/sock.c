/* SPDX-License-Identifier: MIT */
#include "sock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int nb_unix_listen(const char *path, int backlog, const char *what, struct nb_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return nb_error_set(err, NB_EINVAL, "%s: bad socket path", what);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nb_error_sys(err, errno, "%s: socket", what);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return nb_error_set(err, NB_EINVAL,
				    "%s: another process is already listening there", what);
	}
	/* Bind and listen under a temporary name, then rename it into place: a
	 * client that sees @path can connect at once (no window between bind()
	 * and listen() in which it would be refused). The rename also replaces
	 * a stale socket of a dead process. */
	struct sockaddr_un tmp = {.sun_family = AF_UNIX};
	int n = snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d.tmp", path, (int)getpid());
	bool staged = n > 0 && (size_t)n < sizeof(tmp.sun_path);
	const struct sockaddr_un *at = staged ? &tmp : &sa;
	unlink(at->sun_path);
	if (bind(fd, (const struct sockaddr *)at, sizeof(*at)) < 0 || listen(fd, backlog) < 0 ||
	    (staged && rename(tmp.sun_path, path) < 0)) {
		int e = errno;
		if (staged)
			unlink(tmp.sun_path);
		close(fd);
		return nb_error_sys(err, e, "%s", what);
	}
	return fd;
}
