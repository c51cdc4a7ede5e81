/* SPDX-License-Identifier: MIT */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/mhd.h"
#include "../common/sock.h"

struct vmm_api {
	struct mhd_api mhd;
	struct MHD_Daemon *d;
	const struct vmm_api_ops *ops;
	void *vm;
	int fd;
	char *path;
};

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *upload,
			     size_t *upload_size, void **con_cls)
{
	struct vmm_api *a = cls;
	(void)version;
	(void)upload;
	if (!*con_cls) { /* first call: headers only */
		*con_cls = a;
		return MHD_YES;
	}
	if (*upload_size) { /* bodies are not used: drop them */
		*upload_size = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/vm")) {
		if (strcmp(method, "GET"))
			return mhd_respond_error(&a->mhd, c, 405, "method", "use GET on /vm");
		char *j = a->ops->describe(a->vm);
		if (!j)
			return mhd_respond_error(&a->mhd, c, 500, "internal", "out of memory");
		mhd_result r = mhd_respond(&a->mhd, c, 200, "application/json", j, strlen(j));
		free(j);
		return r;
	}
	static const struct {
		const char *path;
		size_t off; /* of the op in struct vmm_api_ops */
	} actions[] = {
	    {"/vm/pause", offsetof(struct vmm_api_ops, pause)},
	    {"/vm/resume", offsetof(struct vmm_api_ops, resume)},
	    {"/vm/shutdown", offsetof(struct vmm_api_ops, shutdown)},
	    {"/vm/kill", offsetof(struct vmm_api_ops, kill)},
	};
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(url, actions[i].path))
			continue;
		if (strcmp(method, "PUT"))
			return mhd_respond_error(&a->mhd, c, 405, "method", "use PUT");
		int (*op)(void *);
		memcpy(&op, (const char *)a->ops + actions[i].off, sizeof(op));
		int rc = op(a->vm);
		if (rc == -EALREADY)
			return mhd_respond_error(&a->mhd, c, 409, "conflict",
						 !strcmp(actions[i].path, "/vm/resume")
						     ? "the VM is not paused"
						     : "the VM is already paused");
		if (rc == -ESRCH)
			return mhd_respond_error(&a->mhd, c, 409, "conflict", "the VM is stopping");
		if (rc < 0)
			return mhd_respond_error(&a->mhd, c, 500, "internal", strerror(-rc));
		return mhd_respond(&a->mhd, c, 204, "application/json", "", 0);
	}
	return mhd_respond_error(&a->mhd, c, 404, "not-found", "unknown path");
}

int vmm_api_start(const char *path, const struct vmm_api_ops *ops, void *vm, struct vmm_api **out,
		  struct nb_error *err)
{
	struct vmm_api *a = calloc(1, sizeof(*a));
	if (!a)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	a->ops = ops;
	a->vm = vm;
	char what[160];
	snprintf(what, sizeof(what), "--api-sock %s", path ? path : "");
	if (mhd_load(&a->mhd, err) < 0 || (a->fd = nb_unix_listen(path, 16, what, err)) < 0) {
		a->fd = -1;
		goto fail;
	}
	a->path = strdup(path);
	a->d = a->mhd.start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, 0, NULL, NULL,
				   on_request, a, MHD_OPTION_LISTEN_SOCKET, a->fd,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!a->d || !a->path) {
		nb_error_set(err, NB_ERESOURCE, "--api-sock %s: cannot start the HTTP server",
			     path);
		goto fail;
	}
	*out = a;
	return 0;
fail:
	vmm_api_stop(a);
	return -1;
}

void vmm_api_stop(struct vmm_api *a)
{
	if (!a)
		return;
	if (a->d) {
		/* let responses in flight (the one to /vm/kill) reach their clients:
		 * wait up to 200 ms for open connections to end */
		for (int i = 0, idle = 0; i < 200 && idle < 3; i++) {
			const union MHD_DaemonInfo *info =
			    a->mhd.get_daemon_info(a->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
			idle = (!info || !info->num_connections) ? idle + 1 : 0;
			usleep(1000);
		}
		a->mhd.stop_daemon(a->d);
	}
	if (a->fd >= 0)
		close(a->fd);
	if (a->path) {
		unlink(a->path);
		free(a->path);
	}
	mhd_unload(&a->mhd);
	free(a);
}
