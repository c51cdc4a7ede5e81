/* SPDX-License-Identifier: MIT */
#include "sock.h"

#include <errno.h>
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
	unlink(path); /* a stale socket of a dead process, or nothing */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		return nb_error_sys(err, e, "%s", what);
	}
	return fd;
}
