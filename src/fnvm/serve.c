/* SPDX-License-Identifier: MIT */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/mhd.h"
#include "../common/sock.h"

/* Threads that prepare and destroy VMs beside the workers. Two measured best
 * on 2 cores (hello-musl under wrk: 1 -> ~700, 2 -> ~900, 3 -> ~850 req/s):
 * much of a VM's creation and teardown is spent waiting (SRCU grace periods),
 * which a second preparer overlaps. */
#define FNVM_SERVE_PREPARERS 2

struct req {
	struct MHD_Connection *conn;
	char *body;
	size_t len, cap;
	int too_large;
	int queued, done;
	struct fnvm_result res;
	struct fnvm_stdio io;
	int run_failed;
	char err[512];
	struct req *next;
};

struct fnvm_server {
	struct mhd_api mhd_api;
	struct fnvm_program *prog;
	struct fnvm_server_config cfg;
	struct fnvm_pool *pool;
	struct MHD_Daemon *mhd;
	int lfd;
	char *unix_path;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct req *head, *tail;
	unsigned pending;
	int stop;
	pthread_t *workers;
	unsigned nworkers, workers_ready;
	uint64_t served, refused;
};

static const char *outcome_name(enum fnvm_outcome o)
{
	static const char *const n[] = {
	    [FNVM_EXITED] = "exited",
	    [FNVM_SIGNALED] = "signaled",
	    [FNVM_TIMEOUT] = "timeout",
	    [FNVM_OUTPUT_LIMIT] = "output-limit",
	    [FNVM_SYSCALL_LIMIT] = "syscall-limit",
	    [FNVM_DEADLOCK] = "deadlock",
	    [FNVM_ERROR] = "error",
	};
	return (unsigned)o < sizeof(n) / sizeof(n[0]) ? n[o] : "error";
}

static void *worker_main(void *arg)
{
	struct fnvm_server *s = arg;
	struct fnvm_runner *rn = NULL;
	struct nb_error err;
	int ok = fnvm_runner_create(&rn, &err) == 0;
	if (!ok)
		nb_log(NB_LOG_ERROR, "worker: %s", err.msg);
	pthread_mutex_lock(&s->mu);
	s->workers_ready++; /* set up: fnvm_server_start may return (and a sandbox follow) */
	pthread_cond_broadcast(&s->cv);
	if (!ok) {
		pthread_mutex_unlock(&s->mu);
		return NULL;
	}
	for (;;) {
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->head)
			break;
		struct req *r = s->head;
		s->head = r->next;
		if (!s->head)
			s->tail = NULL;
		s->pending--;
		pthread_mutex_unlock(&s->mu);

		r->io = (struct fnvm_stdio){.in_fd = -1,
					    .in_buf = r->body,
					    .in_len = r->len,
					    .out = {.fd = -1},
					    .err = {.fd = -1}};
		if (fnvm_run(rn, s->prog, s->pool, &r->io, &r->res, &err) < 0) {
			r->run_failed = 1;
			snprintf(r->err, sizeof(r->err), "%s", err.msg);
		}
		pthread_mutex_lock(&s->mu);
		r->done = 1;
		s->served++;
		s->mhd_api.resume_connection(r->conn);
	}
	pthread_mutex_unlock(&s->mu);
	fnvm_runner_destroy(rn);
	return NULL;
}

static mhd_result respond_text(struct fnvm_server *s, struct MHD_Connection *c, unsigned status,
			       const char *code, const char *msg)
{
	return mhd_respond_error(&s->mhd_api, c, status, code, msg);
}

static mhd_result respond_result(struct fnvm_server *s, struct req *r)
{
	if (r->run_failed)
		return respond_text(s, r->conn, 500, "vm", r->err);
	struct fnvm_result *res = &r->res;
	struct MHD_Response *rs = s->mhd_api.create_response_from_buffer(
	    r->io.out.len, r->io.out.buf ? r->io.out.buf : (void *)(uintptr_t) "",
	    MHD_RESPMEM_MUST_COPY);
	if (!rs)
		return MHD_NO;
	char num[32];
	snprintf(num, sizeof(num), "%d", res->status);
	s->mhd_api.add_response_header(rs, "X-Nubis-Status", num);
	s->mhd_api.add_response_header(rs, "X-Nubis-Outcome", outcome_name(res->outcome));
	snprintf(num, sizeof(num), "%llu",
		 (unsigned long long)((res->t_end_ns - res->t_start_ns) / 1000));
	s->mhd_api.add_response_header(rs, "X-Nubis-Duration-Us", num);
	if (res->message[0]) {
		for (char *q = res->message; *q; q++)
			if ((unsigned char)*q < 0x20)
				*q = ' ';
		s->mhd_api.add_response_header(rs, "X-Nubis-Message", res->message);
	}
	s->mhd_api.add_response_header(rs, "Content-Type", "application/octet-stream");
	mhd_result ret = s->mhd_api.queue_response(r->conn, MHD_HTTP_OK, rs);
	s->mhd_api.destroy_response(rs);
	return ret;
}

static mhd_result on_request(void *cls, struct MHD_Connection *conn, const char *url,
			     const char *method, const char *version, const char *upload_data,
			     size_t *upload_size, void **con_cls)
{
	struct fnvm_server *s = cls;
	(void)url;
	(void)version;
	struct req *r = *con_cls;
	if (!r) {
		if (strcmp(method, "POST") && strcmp(method, "PUT") && strcmp(method, "GET"))
			return respond_text(s, conn, 405, "method",
					    "use POST (body = stdin) or GET");
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->conn = conn;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (r->too_large || r->len + n > s->cfg.max_body) {
			r->too_large = 1;
			return MHD_YES;
		}
		if (r->len + n > r->cap) {
			size_t cap = r->cap ? r->cap : 4096;
			while (cap < r->len + n)
				cap *= 2;
			char *b = realloc(r->body, cap);
			if (!b)
				return MHD_NO;
			r->body = b;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->done)
		return respond_result(s, r);
	if (r->queued)
		return MHD_YES; /* spurious call while suspended */
	if (r->too_large)
		return respond_text(s, conn, 413, "too-large", "request body exceeds the limit");
	pthread_mutex_lock(&s->mu);
	if (s->pending >= s->cfg.queue || s->stop) {
		s->refused++;
		pthread_mutex_unlock(&s->mu);
		return respond_text(s, conn, 503, "busy", "all workers busy and the queue is full");
	}
	r->queued = 1;
	s->mhd_api.suspend_connection(conn);
	if (s->tail)
		s->tail->next = r;
	else
		s->head = r;
	s->tail = r;
	s->pending++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct req *r = *con_cls;
	if (!r)
		return;
	free(r->body);
	free(r->io.out.buf);
	free(r->io.err.buf);
	fnvm_result_release(&r->res);
	free(r);
	*con_cls = NULL;
}

static int listen_on(struct fnvm_server *s, const char *spec, struct nb_error *err)
{
	if (!strncmp(spec, "unix:", 5)) {
		char what[160];
		snprintf(what, sizeof(what), "--listen %s", spec);
		int fd = nb_unix_listen(spec + 5, 512, what, err);
		if (fd < 0)
			return -1;
		s->unix_path = strdup(spec + 5);
		s->lfd = fd;
		return 0;
	}
	if (!strncmp(spec, "tcp:", 4)) {
		char host[128];
		const char *a = spec + 4, *colon = strrchr(a, ':');
		if (!colon || (size_t)(colon - a) >= sizeof(host) || colon == a)
			return nb_error_set(err, NB_EINVAL, "--listen %s: expected tcp:ADDR:PORT",
					    spec);
		memcpy(host, a, (size_t)(colon - a));
		host[colon - a] = 0;
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (*end || port <= 0 || port > 65535)
			return nb_error_set(err, NB_EINVAL, "--listen %s: bad port", spec);
		struct sockaddr_storage ss;
		socklen_t sl;
		memset(&ss, 0, sizeof(ss));
		size_t hl = strlen(host);
		if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
			host[hl - 1] = 0;
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
				return nb_error_set(err, NB_EINVAL, "--listen %s: bad IPv6 address",
						    spec);
			sl = sizeof(*s6);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
				return nb_error_set(err, NB_EINVAL, "--listen %s: bad IPv4 address",
						    spec);
			sl = sizeof(*s4);
		}
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return nb_error_sys(err, errno, "socket");
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0) {
			int e = errno;
			close(fd);
			return nb_error_sys(err, e, "--listen %s", spec);
		}
		s->lfd = fd;
		return 0;
	}
	return nb_error_set(err, NB_EINVAL, "--listen %s: expected unix:PATH or tcp:ADDR:PORT",
			    spec);
}

int fnvm_server_start(struct fnvm_program *p, const struct fnvm_server_config *cfg,
		      struct fnvm_server **out, struct nb_error *err)
{
	struct fnvm_server *s = calloc(1, sizeof(*s));
	if (!s)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	s->prog = p;
	s->cfg = *cfg;
	s->lfd = -1;
	if (!s->cfg.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		s->cfg.workers = n > 0 ? (unsigned)n : 1;
	}
	if (!s->cfg.queue)
		s->cfg.queue = 64;
	if (!s->cfg.max_body)
		s->cfg.max_body = 16u << 20;
	if (s->cfg.workers > 256) {
		nb_error_set(err, NB_EINVAL, "--workers %u: at most 256", s->cfg.workers);
		free(s);
		return -1;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (mhd_load(&s->mhd_api, err) < 0)
		goto fail;
	if (listen_on(s, cfg->listen ? cfg->listen : "", err) < 0)
		goto fail;
	if (fnvm_pool_create(p, 2 * s->cfg.workers, FNVM_SERVE_PREPARERS, &s->pool, err) < 0)
		goto fail;
	s->workers = calloc(s->cfg.workers, sizeof(*s->workers));
	if (!s->workers) {
		nb_error_set(err, NB_ERESOURCE, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < s->cfg.workers; i++) {
		if (pthread_create(&s->workers[i], NULL, worker_main, s)) {
			nb_error_set(err, NB_ERESOURCE, "cannot start worker thread");
			goto fail;
		}
		s->nworkers++;
	}
	pthread_mutex_lock(&s->mu);
	while (s->workers_ready < s->nworkers)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	s->mhd = s->mhd_api.start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ITC,
	    0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->lfd,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)4096, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!s->mhd) {
		nb_error_set(err, NB_ERESOURCE, "cannot start the HTTP server");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	fnvm_server_stop(s);
	return -1;
}

void fnvm_server_stop(struct fnvm_server *s)
{
	if (!s)
		return;
	if (s->mhd)
		s->mhd_api.quiesce_daemon(s->mhd);
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	if (s->mhd)
		s->mhd_api.stop_daemon(s->mhd);
	fnvm_pool_destroy(s->pool);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->unix_path) {
		unlink(s->unix_path);
		free(s->unix_path);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->workers);
	mhd_unload(&s->mhd_api);
	free(s);
}

void fnvm_server_stats(struct fnvm_server *s, uint64_t *served, uint64_t *refused)
{
	pthread_mutex_lock(&s->mu);
	*served = s->served;
	*refused = s->refused;
	pthread_mutex_unlock(&s->mu);
}
