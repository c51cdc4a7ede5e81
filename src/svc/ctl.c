/* SPDX-License-Identifier: MIT */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/mhd.h"
#include "../common/parse.h"
#include "../common/sock.h"

#define CTL_STOP_TIMEOUT_DEFAULT 10u
#define CTL_STOP_TIMEOUT_MAX	 86400u

struct ctl {
	struct mhd_api mhd;
	struct MHD_Daemon *d;
	const struct ctl_ops *ops;
	void *arg;
	int fd;
	char *path;
};

int ctl_signal_parse(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {
	    {"HUP", SIGHUP},	   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
	    {"TRAP", SIGTRAP},	   {"ABRT", SIGABRT}, {"BUS", SIGBUS},	   {"FPE", SIGFPE},
	    {"KILL", SIGKILL},	   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
	    {"PIPE", SIGPIPE},	   {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
	    {"CONT", SIGCONT},	   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
	    {"TTOU", SIGTTOU},	   {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
	    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
	    {"PWR", SIGPWR},	   {"SYS", SIGSYS},
	};
	uint64_t v;
	if (!s || !*s)
		return -1;
	if (nb_parse_u64(s, &v) == 0)
		return (v >= 1 && v <= 64) ? (int)v : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i].name))
			return names[i].sig;
	return -1;
}

static mhd_result respond_rc(struct ctl *c, struct MHD_Connection *conn, int rc, unsigned ok,
			     const char *what)
{
	char msg[160];
	switch (rc) {
	case 0:
		return mhd_respond(&c->mhd, conn, ok, "application/json", "", 0);
	case -EALREADY:
		snprintf(msg, sizeof(msg), "%s: %s", what,
			 !strcmp(what, "resume") ? "the VM is not paused"
						 : "the VM is already paused");
		return mhd_respond_error(&c->mhd, conn, 409, "conflict", msg);
	case -ESRCH:
		snprintf(msg, sizeof(msg), "%s: the VM has ended or is ending", what);
		return mhd_respond_error(&c->mhd, conn, 409, "conflict", msg);
	case -EINVAL:
		snprintf(msg, sizeof(msg), "%s: invalid argument", what);
		return mhd_respond_error(&c->mhd, conn, 400, "invalid", msg);
	default:
		snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-rc));
		return mhd_respond_error(&c->mhd, conn, 500, "internal", msg);
	}
}

static mhd_result on_request(void *cls, struct MHD_Connection *conn, const char *url,
			     const char *method, const char *version, const char *upload,
			     size_t *upload_size, void **con_cls)
{
	struct ctl *c = cls;
	(void)version;
	(void)upload;
	if (!*con_cls) { /* first call: headers only */
		*con_cls = c;
		return MHD_YES;
	}
	if (*upload_size) { /* no request has a body: drop it */
		*upload_size = 0;
		return MHD_YES;
	}
	bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT");
	if (!strcmp(url, "/state")) {
		if (!get)
			return mhd_respond_error(&c->mhd, conn, 405, "method", "use GET on /state");
		char *j = c->ops->state(c->arg);
		if (!j)
			return mhd_respond_error(&c->mhd, conn, 500, "internal", "out of memory");
		mhd_result r = mhd_respond(&c->mhd, conn, 200, "application/json", j, strlen(j));
		free(j);
		return r;
	}
	if (!strcmp(url, "/stop")) {
		if (!put)
			return mhd_respond_error(&c->mhd, conn, 405, "method", "use PUT on /stop");
		const char *t =
		    c->mhd.lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeout");
		uint64_t v = CTL_STOP_TIMEOUT_DEFAULT;
		if (t && (nb_parse_u64(t, &v) || v > CTL_STOP_TIMEOUT_MAX))
			return mhd_respond_error(&c->mhd, conn, 400, "invalid",
						 "timeout: need whole seconds from 0 to 86400");
		return respond_rc(c, conn, c->ops->stop(c->arg, (unsigned)v), 202, "stop");
	}
	if (!strcmp(url, "/kill")) {
		if (!put)
			return mhd_respond_error(&c->mhd, conn, 405, "method", "use PUT on /kill");
		const char *s =
		    c->mhd.lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "signal");
		int sig = s ? ctl_signal_parse(s) : SIGKILL;
		if (sig < 0)
			return mhd_respond_error(&c->mhd, conn, 400, "invalid",
						 "signal: need a number 1..64 or a name like TERM");
		return respond_rc(c, conn, c->ops->kill(c->arg, sig), 204, "kill");
	}
	if (!strcmp(url, "/pause") || !strcmp(url, "/resume")) {
		if (!put)
			return mhd_respond_error(&c->mhd, conn, 405, "method", "use PUT");
		bool pause = !strcmp(url, "/pause");
		int rc = pause ? c->ops->pause(c->arg) : c->ops->resume(c->arg);
		return respond_rc(c, conn, rc, 204, pause ? "pause" : "resume");
	}
	return mhd_respond_error(&c->mhd, conn, 404, "not-found", "unknown path");
}

int ctl_start(const char *path, const struct ctl_ops *ops, void *arg, struct ctl **out,
	      struct nb_error *err)
{
	struct ctl *c = calloc(1, sizeof(*c));
	if (!c)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	c->ops = ops;
	c->arg = arg;
	c->fd = -1;
	if (mhd_load(&c->mhd, err) < 0 ||
	    (c->fd = nb_unix_listen(path, 16, "control socket", err)) < 0)
		goto fail;
	c->path = strdup(path);
	c->d = c->mhd.start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, 0, NULL, NULL, on_request, c,
	    MHD_OPTION_LISTEN_SOCKET, c->fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)32768, MHD_OPTION_END);
	if (!c->d || !c->path) {
		nb_error_set(err, NB_ERESOURCE, "control socket: cannot start the HTTP server");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	ctl_stop(c);
	return -1;
}

void ctl_stop(struct ctl *c)
{
	if (!c)
		return;
	if (c->d) {
		/* let responses in flight reach their clients: wait up to 200 ms
		 * for open connections to end (none open: stop at once) */
		for (int i = 0; i < 200; i++) {
			const union MHD_DaemonInfo *info =
			    c->mhd.get_daemon_info(c->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
			if (!info || !info->num_connections)
				break;
			usleep(1000);
		}
		c->mhd.stop_daemon(c->d);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->path) {
		unlinkat(AT_FDCWD, c->path, 0); /* unlink(2) is not in the sandbox */
		free(c->path);
	}
	mhd_unload(&c->mhd);
	free(c);
}
