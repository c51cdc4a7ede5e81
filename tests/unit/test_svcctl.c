/* SPDX-License-Identifier: MIT */
/* Unit tests: the service monitor's control socket (src/svc/ctl.c) with
 * recording fake operations, driven by the CLI's client (svcstate_ctl) and
 * by raw bytes: garbage, half requests and floods get errors, never a crash
 * or a hang, and the server keeps serving. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/svcstate.h"
#include "svc/ctl.h"

struct fake {
	int stops, last_timeout, kills, last_sig, pauses, resumes;
	bool paused, ended;
};

static char *f_state(void *arg)
{
	struct fake *f = arg;
	char *s;
	if (asprintf(&s, "{\"status\":\"%s\"}", f->paused ? "paused" : "running") < 0)
		return NULL;
	return s;
}
static int f_stop(void *arg, unsigned t)
{
	struct fake *f = arg;
	if (f->ended)
		return -ESRCH;
	f->stops++;
	f->last_timeout = (int)t;
	return 0;
}
static int f_kill(void *arg, int sig)
{
	struct fake *f = arg;
	if (f->ended)
		return -ESRCH;
	f->kills++;
	f->last_sig = sig;
	return 0;
}
static int f_pause(void *arg)
{
	struct fake *f = arg;
	if (f->paused)
		return -EALREADY;
	f->paused = true;
	f->pauses++;
	return 0;
}
static int f_resume(void *arg)
{
	struct fake *f = arg;
	if (!f->paused)
		return -EALREADY;
	f->paused = false;
	f->resumes++;
	return 0;
}
static const struct ctl_ops fops = {f_state, f_stop, f_kill, f_pause, f_resume};

struct fx {
	char dir[64];
	struct fake fake;
	struct ctl *ctl;
	struct svcstate_rec rec;
	char sock[64];
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/nubis-svcctl-XXXXXX");
	if (!mkdtemp(x->dir))
		return -1;
	x->rec.dirfd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	x->rec.name = (char *)(uintptr_t) "fake";
	svcstate_sock_path(&x->rec, x->sock, sizeof(x->sock));
	struct nb_error err;
	if (ctl_start(x->sock, &fops, &x->fake, &x->ctl, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	ctl_stop(x->ctl);
	close(x->rec.dirfd);
	rmdir(x->dir); /* fails (and the test notices below) if ctl.sock stayed */
	free(x);
	return 0;
}

static long req(struct fx *x, const char *method, const char *path, char **body)
{
	struct nb_error err;
	long st = svcstate_ctl(&x->rec, method, path, body, &err);
	if (st < 0)
		fail_msg("%s %s: %s", method, path, err.msg);
	return st;
}

static void test_requests(void **state)
{
	struct fx *x = *state;
	char *body = NULL, msg[256];
	assert_int_equal(req(x, "GET", "/state", &body), 200);
	assert_string_equal(body, "{\"status\":\"running\"}");
	free(body);

	assert_int_equal(req(x, "PUT", "/stop?timeout=3", NULL), 202);
	assert_int_equal(x->fake.last_timeout, 3);
	assert_int_equal(req(x, "PUT", "/stop", NULL), 202);
	assert_int_equal(x->fake.last_timeout, 10);
	assert_int_equal(req(x, "PUT", "/stop?timeout=-1", &body), 400);
	assert_non_null(strstr(svcstate_ctl_message(body, msg, sizeof(msg)), "timeout"));
	free(body);
	assert_int_equal(req(x, "PUT", "/stop?timeout=99999999999999999999", NULL), 400);
	assert_int_equal(x->fake.stops, 2);

	assert_int_equal(req(x, "PUT", "/kill?signal=TERM", NULL), 204);
	assert_int_equal(x->fake.last_sig, SIGTERM);
	assert_int_equal(req(x, "PUT", "/kill?signal=sigusr1", NULL), 204);
	assert_int_equal(x->fake.last_sig, SIGUSR1);
	assert_int_equal(req(x, "PUT", "/kill?signal=9", NULL), 204);
	assert_int_equal(x->fake.last_sig, SIGKILL);
	assert_int_equal(req(x, "PUT", "/kill", NULL), 204);
	assert_int_equal(x->fake.last_sig, SIGKILL);
	assert_int_equal(req(x, "PUT", "/kill?signal=65", NULL), 400);
	assert_int_equal(req(x, "PUT", "/kill?signal=NOPE", NULL), 400);
	assert_int_equal(req(x, "PUT", "/kill?signal=", NULL), 400);
	assert_int_equal(x->fake.kills, 4);

	assert_int_equal(req(x, "PUT", "/pause", NULL), 204);
	assert_int_equal(req(x, "PUT", "/pause", &body), 409);
	assert_non_null(strstr(svcstate_ctl_message(body, msg, sizeof(msg)), "already paused"));
	free(body);
	assert_int_equal(req(x, "PUT", "/resume", NULL), 204);
	assert_int_equal(req(x, "PUT", "/resume", &body), 409);
	assert_non_null(strstr(svcstate_ctl_message(body, msg, sizeof(msg)), "not paused"));
	free(body);

	assert_int_equal(req(x, "GET", "/stop", NULL), 405);
	assert_int_equal(req(x, "PUT", "/state", NULL), 405);
	assert_int_equal(req(x, "DELETE", "/pause", NULL), 405);
	assert_int_equal(req(x, "GET", "/../../etc/passwd", NULL), 404);
	assert_int_equal(req(x, "GET", "/", NULL), 404);

	x->fake.ended = true;
	assert_int_equal(req(x, "PUT", "/stop", &body), 409);
	assert_non_null(strstr(svcstate_ctl_message(body, msg, sizeof(msg)), "ended"));
	free(body);
}

static int raw_connect(struct fx *x)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", x->sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send @data, read the reply until EOF or 2 s. Returns bytes read. */
static size_t raw_exchange(struct fx *x, const void *data, size_t len, char *out, size_t cap,
			   bool half_close)
{
	int fd = raw_connect(x);
	size_t off = 0;
	while (off < len) {
		ssize_t w = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the server may close on garbage: fine */
		off += (size_t)w;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	size_t got = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			break;
		ssize_t r = read(fd, out + got, cap - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == cap - 1)
			break;
	}
	out[got] = 0;
	close(fd);
	return got;
}

static void test_garbage(void **state)
{
	struct fx *x = *state;
	char out[4096];
	static const char *const junk[] = {
	    "\x00\x01\x02\x03garbage\r\n\r\n",
	    "HELLO\r\n\r\n",
	    "GET\r\n\r\n",
	    "PUT /stop?timeout=1 HTTP/9.9\r\n\r\n",
	    "GET /state HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
	    "PUT /pause HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
	    "GET /state HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		raw_exchange(x, junk[i], strlen(junk[i]) + (i == 0 ? 16 : 0), out, sizeof(out),
			     i % 2);
	/* an oversized header: rejected, not buffered without bound */
	size_t big = 1 << 20;
	char *huge = malloc(big);
	memcpy(huge, "GET /state HTTP/1.1\r\nX: ", 24);
	memset(huge + 24, 'a', big - 24);
	raw_exchange(x, huge, big, out, sizeof(out), true);
	free(huge);
	/* the valid request in raw form works, and the fake saw no stray call */
	const char *ok = "GET /state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	size_t n = raw_exchange(x, ok, strlen(ok), out, sizeof(out), false);
	assert_true(n > 0);
	assert_non_null(strstr(out, "200"));
	if (!strstr(out, "{\"status\":"))
		fail_msg("reply: %s", out);
	char *body = NULL;
	assert_int_equal(req(x, "GET", "/state", &body), 200);
	free(body);
	assert_int_equal(x->fake.stops, 0);
	assert_int_equal(x->fake.kills, 0);
	/* the pause with a body was either refused or served once */
	assert_true(x->fake.pauses <= 1);
}

/* A second server on the same live socket is refused; a stale one replaced. */
static void test_socket_reuse(void **state)
{
	struct fx *x = *state;
	struct fake f2 = {0};
	struct ctl *c2 = NULL;
	struct nb_error err;
	assert_int_equal(ctl_start(x->sock, &fops, &f2, &c2, &err), -1);
	assert_non_null(strstr(err.msg, "already listening"));
	ctl_stop(x->ctl);
	x->ctl = NULL;
	/* a socket file nobody listens on (as after kill -9 of a monitor) */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", x->sock);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(ctl_start(x->sock, &fops, &f2, &x->ctl, &err), 0);
	char *body = NULL;
	assert_int_equal(req(x, "GET", "/state", &body), 200);
	free(body);
}

static void test_signal_parse(void **state)
{
	(void)state;
	assert_int_equal(ctl_signal_parse("TERM"), SIGTERM);
	assert_int_equal(ctl_signal_parse("SIGKILL"), SIGKILL);
	assert_int_equal(ctl_signal_parse("sigHup"), SIGHUP);
	assert_int_equal(ctl_signal_parse("15"), 15);
	assert_int_equal(ctl_signal_parse("64"), 64);
	assert_int_equal(ctl_signal_parse("0"), -1);
	assert_int_equal(ctl_signal_parse("65"), -1);
	assert_int_equal(ctl_signal_parse("-9"), -1);
	assert_int_equal(ctl_signal_parse("SIG"), -1);
	assert_int_equal(ctl_signal_parse(""), -1);
	assert_int_equal(ctl_signal_parse(NULL), -1);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket_reuse, setup, teardown),
	    cmocka_unit_test(test_signal_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
