/*
 * net-test: a static multi-call test program for the networking of nubis
 * service VMs (tests/e2e/test_svc_net.py). Built with musl and glibc; it is
 * an ordinary Linux program and its self-contained behaviours (loopback,
 * unix, sigpipe, hostile, sockopt) also pass natively.
 *
 *   net-test tcp-echo PORT [v6] [N]     listen on PORT (any address), echo N
 *                                       connections (default 1), then exit
 *   net-test udp-echo PORT [v6] [N]     echo N datagrams back to their sender
 *   net-test client ADDR PORT MSG [udp] connect, send MSG, print the reply
 *   net-test try ADDR PORT [udp]        one connect (or UDP send+recv with a
 *                                       1 s timeout): result=ok|ERRNAME
 *   net-test loopback [BASE]            TCP/UDP between the VM's own sockets
 *                                       (IPv4, IPv6, mapped), non-blocking
 *                                       connect + epoll, names as the guest sees
 *   net-test unix                       socketpair, abstract and path sockets,
 *                                       SCM_RIGHTS
 *   net-test unix-escape HOSTPATH       try to reach a host socket file
 *   net-test sigpipe                    EPIPE with SIGPIPE, and MSG_NOSIGNAL
 *   net-test sockopt [vm]               vetted/refused options, SO_RCVTIMEO
 *   net-test hostile                    garbage pointers, lengths, msghdrs, cmsgs
 *   net-test threads                    blocking TCP between two threads; a
 *                                       blocked accept/recv interrupted by a signal
 *   net-test hold PORT                  listen on PORT, print the real port
 *                                       the guest sees, sleep until killed
 *
 * Output is `key=value` lines; exit 0 when every check passed, 1 otherwise
 * (the failing check on stderr), 64 on a usage error.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "net-test: %s:%d: check failed: %s (errno %d %s)\n",       \
				__func__, __LINE__, #cond, errno, strerror(errno));                \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* clang-format off */
static const char *errname(int e)
{
	static const struct { int e; const char *n; } t[] = {
		{ECONNREFUSED, "ECONNREFUSED"}, {ENETUNREACH, "ENETUNREACH"},
		{EHOSTUNREACH, "EHOSTUNREACH"}, {EACCES, "EACCES"}, {EPERM, "EPERM"},
		{EINVAL, "EINVAL"}, {EFAULT, "EFAULT"}, {EAGAIN, "EAGAIN"},
		{ETIMEDOUT, "ETIMEDOUT"}, {EAFNOSUPPORT, "EAFNOSUPPORT"},
		{EADDRNOTAVAIL, "EADDRNOTAVAIL"}, {EADDRINUSE, "EADDRINUSE"},
		{EINPROGRESS, "EINPROGRESS"}, {ENOTSOCK, "ENOTSOCK"}, {EBADF, "EBADF"},
		{ENOPROTOOPT, "ENOPROTOOPT"}, {EPIPE, "EPIPE"}, {ECONNRESET, "ECONNRESET"},
		{EOPNOTSUPP, "EOPNOTSUPP"}, {EMSGSIZE, "EMSGSIZE"}, {ENOENT, "ENOENT"},
		{ENOTCONN, "ENOTCONN"}, {EISCONN, "EISCONN"}, {ENOBUFS, "ENOBUFS"},
		{EPROTONOSUPPORT, "EPROTONOSUPPORT"}, {ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"},
		{ENAMETOOLONG, "ENAMETOOLONG"}, {EINTR, "EINTR"}, {ENOSYS, "ENOSYS"},
		{EROFS, "EROFS"}, {ENOTDIR, "ENOTDIR"}, {ELOOP, "ELOOP"}, {EEXIST, "EEXIST"},
	};
	static char buf[16];
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].e == e)
			return t[i].n;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}
/* clang-format on */

/* Address for "ADDR" (v4 or v6 text) and @port. */
static socklen_t mkaddr(const char *ip, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return sizeof(*s6);
	}
	fprintf(stderr, "net-test: bad address %s\n", ip);
	exit(64);
}

static const char *addrstr(const void *sa)
{
	static char out[96];
	char ip[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *s = sa;
	if (s->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(out, sizeof(out), "%s:%u", ip, ntohs(s4->sin_port));
	} else if (s->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(out, sizeof(out), "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		snprintf(out, sizeof(out), "family%d", s->sa_family);
	}
	return out;
}

static int port_of(const void *sa)
{
	const struct sockaddr *s = sa;
	if (s->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (s->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return -1;
}

static int listener(int fam, int type, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(fam == AF_INET6 ? "::" : "0.0.0.0", port, &ss);
	int fd = socket(fam, type | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (type == SOCK_STREAM && listen(fd, 64) < 0)
		return -1;
	return fd;
}

static ssize_t write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* ---- servers and clients ------------------------------------------------ */

static int do_tcp_echo(int argc, char **argv)
{
	int port = atoi(argv[2]);
	bool v6 = argc > 3 && strcmp(argv[3], "v6") == 0;
	int n = argc > 4 ? atoi(argv[4]) : (argc > 3 && !v6 ? atoi(argv[3]) : 1);
	int lfd = listener(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, port);
	if (lfd < 0) {
		printf("listen=%s\n", errname(errno));
		return 1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &sl);
	printf("listening=%s\n", addrstr(&ss));
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		sl = sizeof(ss);
		int c = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (c < 0) {
			printf("accept=%s\n", errname(errno));
			return 1;
		}
		char buf[65536];
		long total = 0;
		for (;;) {
			ssize_t r = read(c, buf, sizeof(buf));
			if (r <= 0)
				break;
			if (write_all(c, buf, (size_t)r) < 0)
				break;
			total += r;
		}
		printf("conn%d=%ld\n", i, total);
		fflush(stdout);
		close(c);
	}
	close(lfd);
	return 0;
}

static int do_udp_echo(int argc, char **argv)
{
	int port = atoi(argv[2]);
	bool v6 = argc > 3 && strcmp(argv[3], "v6") == 0;
	int n = argc > 4 ? atoi(argv[4]) : (argc > 3 && !v6 ? atoi(argv[3]) : 1);
	int fd = listener(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, port);
	if (fd < 0) {
		printf("bind=%s\n", errname(errno));
		return 1;
	}
	printf("listening=udp\n");
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		char buf[2048];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (r < 0) {
			printf("recvfrom=%s\n", errname(errno));
			return 1;
		}
		ssize_t w = sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
		printf("dgram%d=%zd sent=%s\n", i, r, w < 0 ? errname(errno) : "ok");
		fflush(stdout);
	}
	return 0;
}

static int do_client(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(argv[2], atoi(argv[3]), &ss);
	bool udp = argc > 5 && strcmp(argv[5], "udp") == 0;
	int fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		printf("connect=%s\n", errname(errno));
		return 1;
	}
	printf("connect=ok\n");
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0)
		printf("peer=%s\n", addrstr(&peer));
	else
		printf("peer=%s\n", errname(errno));
	if (write_all(fd, argv[4], strlen(argv[4])) < 0) {
		printf("write=%s\n", errname(errno));
		return 1;
	}
	if (!udp)
		shutdown(fd, SHUT_WR);
	char buf[4096];
	size_t got = 0;
	for (;;) {
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r <= 0 || (got += (size_t)r) >= sizeof(buf) - 1 || udp)
			break;
	}
	buf[got] = 0;
	printf("reply=%s\n", buf);
	close(fd);
	return 0;
}

static int do_try(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(argv[2], atoi(argv[3]), &ss);
	bool udp = argc > 4 && strcmp(argv[4], "udp") == 0;
	int fam = ss.ss_family;
	if (argc > 5 && strcmp(argv[5], "v6sock") == 0 && fam == AF_INET) {
		/* The same destination as an IPv4-mapped address on an IPv6 socket. */
		struct sockaddr_in s4;
		memcpy(&s4, &ss, sizeof(s4));
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		memset(&ss, 0, sizeof(ss));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = s4.sin_port;
		s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &s4.sin_addr, 4);
		len = sizeof(*s6);
		fam = AF_INET6;
	}
	int fd = socket(fam, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		printf("result=%s\n", errname(errno));
		return 0;
	}
	if (!udp) {
		int r = connect(fd, (struct sockaddr *)&ss, len);
		printf("result=%s\n", r == 0 ? "ok" : errname(errno));
		return 0;
	}
	ssize_t w = sendto(fd, "ping", 4, 0, (struct sockaddr *)&ss, len);
	if (w < 0) {
		printf("result=%s\n", errname(errno));
		return 0;
	}
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char buf[64];
	ssize_t r = recv(fd, buf, sizeof(buf), 0);
	printf("result=%s\n", r >= 0 ? "ok" : "sent-noreply");
	return 0;
}

static int do_hold(int argc, char **argv)
{
	(void)argc;
	int fd = listener(AF_INET, SOCK_STREAM, atoi(argv[2]));
	if (fd < 0) {
		printf("listen=%s\n", errname(errno));
		return 1;
	}
	printf("holding=%s\n", argv[2]);
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c >= 0) {
			write_all(c, "hold\n", 5);
			close(c);
		}
	}
}

/* ---- loopback inside the VM --------------------------------------------- */

static void loop_tcp(int lfam, const char *lip, int cfam, const char *cip, int port)
{
	struct sockaddr_storage ss, got;
	socklen_t len = mkaddr(lip, port, &ss), gl;
	int lfd = socket(lfam, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	CHECK(lfd >= 0);
	CHECK(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
	CHECK(bind(lfd, (struct sockaddr *)&ss, len) == 0);
	CHECK(listen(lfd, 8) == 0);
	gl = sizeof(got);
	CHECK(getsockname(lfd, (struct sockaddr *)&got, &gl) == 0);
	CHECK(port_of(&got) == port); /* the guest's port, not the host's */

	int c = socket(cfam, SOCK_STREAM | SOCK_NONBLOCK, 0);
	len = mkaddr(cip, port, &ss);
	int r = connect(c, (struct sockaddr *)&ss, len);
	CHECK(r == 0 || errno == EINPROGRESS);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == 0);
	ev = (struct epoll_event){.events = EPOLLOUT, .data.fd = c};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0);
	int a = -1, writable = 0;
	for (int i = 0; i < 10 && (a < 0 || !writable); i++) {
		struct epoll_event out[4];
		int n = epoll_wait(ep, out, 4, 2000);
		CHECK(n > 0);
		for (int k = 0; k < n; k++) {
			if (out[k].data.fd == lfd && a < 0) {
				gl = sizeof(got);
				a = accept4(lfd, (struct sockaddr *)&got, &gl, SOCK_NONBLOCK);
			}
			if (out[k].data.fd == c)
				writable = 1;
		}
	}
	CHECK(a >= 0 && writable);
	int err = -1;
	socklen_t el = sizeof(err);
	CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0);
	/* The client's local name matches what the server sees as its peer. */
	struct sockaddr_storage cl, sp;
	socklen_t cll = sizeof(cl), spl = sizeof(sp);
	CHECK(getsockname(c, (struct sockaddr *)&cl, &cll) == 0);
	CHECK(getpeername(a, (struct sockaddr *)&sp, &spl) == 0);
	CHECK(port_of(&cl) == port_of(&sp));
	spl = sizeof(sp);
	CHECK(getpeername(c, (struct sockaddr *)&sp, &spl) == 0 && port_of(&sp) == port);

	char msg[100000], back[100000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 7);
	size_t sent = 0, recvd = 0;
	while (recvd < sizeof(msg)) {
		if (sent < sizeof(msg)) {
			ssize_t w = send(c, msg + sent, sizeof(msg) - sent, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else
				CHECK(errno == EAGAIN);
		}
		ssize_t rr = recv(a, back + recvd, sizeof(back) - recvd, 0);
		if (rr > 0)
			recvd += (size_t)rr;
		else if (rr < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = a, .events = POLLIN};
			poll(&p, 1, 100);
		} else {
			CHECK(rr > 0);
			break;
		}
	}
	CHECK(recvd == sizeof(msg) && memcmp(msg, back, sizeof(msg)) == 0);
	close(a);
	close(c);
	close(lfd);
	close(ep);
}

static void loop_udp(int fam, const char *ip, int port)
{
	struct sockaddr_storage ss, from, me;
	socklen_t len = mkaddr(ip, port, &ss), fl = sizeof(from), ml = sizeof(me);
	int s = socket(fam, SOCK_DGRAM, 0), c = socket(fam, SOCK_DGRAM, 0);
	CHECK(bind(s, (struct sockaddr *)&ss, len) == 0);
	CHECK(sendto(c, "hello", 5, 0, (struct sockaddr *)&ss, len) == 5);
	char buf[32];
	CHECK(recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) == 5);
	CHECK(getsockname(c, (struct sockaddr *)&me, &ml) == 0);
	CHECK(port_of(&from) == port_of(&me));
	/* The reply goes to the translated source address. */
	CHECK(sendto(s, "world", 5, 0, (struct sockaddr *)&from, fl) == 5);
	struct timeval tv = {.tv_sec = 2};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	fl = sizeof(from);
	CHECK(recvfrom(c, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) == 5);
	CHECK(memcmp(buf, "world", 5) == 0 && port_of(&from) == port);
	/* recvmsg with two iovecs. */
	CHECK(sendto(c, "abcdef", 6, 0, (struct sockaddr *)&ss, len) == 6);
	char p1[2], p2[8];
	struct iovec iov[2] = {{p1, 2}, {p2, 8}};
	struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = iov,
			    .msg_iovlen = 2};
	CHECK(recvmsg(s, &mh, 0) == 6 && memcmp(p1, "ab", 2) == 0 && memcmp(p2, "cdef", 4) == 0);
	CHECK(port_of(&from) == port_of(&me));
	/* sendmmsg/recvmmsg: three datagrams. */
	struct mmsghdr mm[3];
	struct iovec mi[3];
	char mb[3][8];
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 3; i++) {
		snprintf(mb[i], sizeof(mb[i]), "m%d", i);
		mi[i] = (struct iovec){mb[i], 2};
		mm[i].msg_hdr.msg_iov = &mi[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &ss;
		mm[i].msg_hdr.msg_namelen = len;
	}
	CHECK(sendmmsg(c, mm, 3, 0) == 3);
	memset(mb, 0, sizeof(mb));
	for (int i = 0; i < 3; i++) {
		mi[i] = (struct iovec){mb[i], sizeof(mb[i])};
		mm[i].msg_hdr.msg_name = NULL;
		mm[i].msg_hdr.msg_namelen = 0;
	}
	struct timespec to = {2, 0};
	CHECK(recvmmsg(s, mm, 3, MSG_WAITFORONE, &to) >= 1);
	CHECK(mm[0].msg_len == 2 && memcmp(mb[0], "m0", 2) == 0);
	close(s);
	close(c);
}

static int do_loopback(int base)
{
	loop_tcp(AF_INET, "127.0.0.1", AF_INET, "127.0.0.1", base + 1);
	loop_tcp(AF_INET, "0.0.0.0", AF_INET, "127.0.0.1", base + 2);
	loop_tcp(AF_INET6, "::", AF_INET6, "::1", base + 3);
	loop_tcp(AF_INET6, "::", AF_INET, "127.0.0.1", base + 4); /* dual stack */
	loop_tcp(AF_INET, "0.0.0.0", AF_INET6, "::ffff:127.0.0.1", base + 5);
	loop_udp(AF_INET, "127.0.0.1", base + 101);
	loop_udp(AF_INET6, "::1", base + 102);
	/* A second bind of the same port fails; a closed port is free again. */
	int a = listener(AF_INET, SOCK_STREAM, base + 201);
	CHECK(a >= 0);
	int b = listener(AF_INET, SOCK_STREAM, base + 201);
	CHECK(b < 0 && errno == EADDRINUSE);
	close(a);
	b = listener(AF_INET, SOCK_STREAM, base + 201);
	CHECK(b >= 0);
	close(b);
	/* Nothing listens on base + 999: refused. */
	struct sockaddr_storage ss;
	socklen_t len = mkaddr("127.0.0.1", base + 999, &ss);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&ss, len) < 0 && errno == ECONNREFUSED);
	close(c);
	/* bind to a foreign address fails. */
	len = mkaddr("192.0.2.1", base + 300, &ss);
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(bind(c, (struct sockaddr *)&ss, len) < 0 && errno == EADDRNOTAVAIL);
	close(c);
	printf("loopback=%s\n", failures ? "FAIL" : "ok");
	return failures != 0;
}

/* ---- threads ---------------------------------------------------------------- */

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
}

struct tsrv {
	int lfd;
	long echoed;
	int accept_err; /* errno of the interrupted accept */
};

static void *tsrv_main(void *arg)
{
	struct tsrv *ts = arg;
	int c = accept(ts->lfd, NULL, NULL);
	if (c >= 0) {
		char buf[4096];
		ssize_t r;
		while ((r = read(c, buf, sizeof(buf))) > 0) {
			write_all(c, buf, (size_t)r);
			ts->echoed += r;
		}
		close(c);
	}
	/* The second accept blocks until SIGUSR1 (no SA_RESTART): EINTR. */
	c = accept(ts->lfd, NULL, NULL);
	ts->accept_err = c < 0 ? errno : 0;
	return NULL;
}

static int do_threads(void)
{
	struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	struct tsrv ts = {.lfd = listener(AF_INET, SOCK_STREAM, 7600)};
	CHECK(ts.lfd >= 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, tsrv_main, &ts) == 0);
	struct sockaddr_storage ss;
	socklen_t len = mkaddr("127.0.0.1", 7600, &ss);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&ss, len) == 0);
	char msg[50000], back[50000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 13);
	CHECK(write_all(c, msg, sizeof(msg)) == (ssize_t)sizeof(msg));
	CHECK(recv(c, back, sizeof(back), MSG_WAITALL) == (ssize_t)sizeof(back));
	CHECK(memcmp(msg, back, sizeof(msg)) == 0);
	close(c);
	struct timespec d = {0, 100000000};
	nanosleep(&d, NULL); /* let the server block in its second accept */
	CHECK(pthread_kill(th, SIGUSR1) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	printf("echoed=%ld accept_after_signal=%s\n", ts.echoed,
	       ts.accept_err ? errname(ts.accept_err) : "ok");
	CHECK(ts.echoed == (long)sizeof(msg));
	CHECK(ts.accept_err == EINTR && got_usr1 == 1);
	/* A blocked recv in this thread, interrupted by an alarm. */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval it = {.it_value = {0, 100000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	char b;
	errno = 0;
	CHECK(recv(sv[0], &b, 1, 0) < 0 && errno == EINTR);
	printf("threads=%s\n", failures ? "FAIL" : "ok");
	return failures != 0;
}

/* ---- Unix sockets ---------------------------------------------------------- */

static int send_fd(int s, int fd)
{
	char c = 'F';
	struct iovec iov = {&c, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return (int)sendmsg(s, &mh, 0);
}

static int recv_fd(int s)
{
	char c;
	struct iovec iov = {&c, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	if (recvmsg(s, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -2;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static void unix_pair_check(int x, int y)
{
	char buf[16];
	CHECK(write(x, "ping", 4) == 4);
	CHECK(read(y, buf, sizeof(buf)) == 4 && memcmp(buf, "ping", 4) == 0);
	CHECK(send(y, "pong", 4, 0) == 4);
	CHECK(recv(x, buf, sizeof(buf), 0) == 4 && memcmp(buf, "pong", 4) == 0);
}

static void unix_named(const struct sockaddr_un *sa, socklen_t len, const char *what)
{
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(l, (const struct sockaddr *)sa, len) < 0) {
		printf("%s=%s\n", what, errname(errno));
		if (errno != EOPNOTSUPP)
			failures++;
		close(l);
		return;
	}
	CHECK(listen(l, 4) == 0);
	if (sa->sun_path[0]) {
		/* A socket file, where the root filesystem keeps them. */
		struct stat st;
		bool file = stat(sa->sun_path, &st) == 0 && S_ISSOCK(st.st_mode);
		printf("%s_file=%s\n", what, file ? "sock" : "none");
		/* Reached through a symlink too, as on Linux. */
		char link[128];
		snprintf(link, sizeof(link), "%s.lnk", sa->sun_path);
		unlink(link);
		if (file && symlink(sa->sun_path, link) == 0) {
			struct sockaddr_un la = {.sun_family = AF_UNIX};
			snprintf(la.sun_path, sizeof(la.sun_path), "%.100s", link);
			int lc = socket(AF_UNIX, SOCK_STREAM, 0);
			CHECK(connect(lc, (struct sockaddr *)&la, sizeof(la)) == 0);
			int la_fd = accept(l, NULL, NULL);
			CHECK(la_fd >= 0);
			close(la_fd);
			close(lc);
			unlink(link);
		}
	}
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(c, (const struct sockaddr *)sa, len) == 0);
	int a = accept(l, NULL, NULL);
	CHECK(a >= 0);
	unix_pair_check(c, a);
	struct sockaddr_un got;
	socklen_t gl = sizeof(got);
	CHECK(getsockname(l, (struct sockaddr *)&got, &gl) == 0);
	CHECK(gl == len && memcmp(&got, sa, len) == 0); /* the guest's name, not the host's */
	gl = sizeof(got);
	CHECK(getpeername(c, (struct sockaddr *)&got, &gl) == 0);
	CHECK(gl == len && memcmp(&got, sa, len) == 0);
	/* Unix datagrams to a name. */
	printf("%s=ok\n", what);
	close(a);
	close(c);
	close(l);
}

static int do_unix(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	unix_pair_check(sv[0], sv[1]);
	/* SCM_RIGHTS: pass one end of a pipe, write through it. */
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(send_fd(sv[0], p[1]) == 1);
	int got = recv_fd(sv[1]);
	CHECK(got >= 0 && got != p[1]);
	if (got >= 0) {
		char b[8];
		CHECK(write(got, "via", 3) == 3);
		CHECK(read(p[0], b, sizeof(b)) == 3 && memcmp(b, "via", 3) == 0);
		close(got);
	}
	/* Pass a socket: the received one is the same socket. */
	int sv2[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv2) == 0);
	CHECK(send_fd(sv[0], sv2[0]) == 1);
	got = recv_fd(sv[1]);
	CHECK(got >= 0);
	if (got >= 0) {
		char b[8];
		CHECK(send(got, "dg", 2, 0) == 2);
		CHECK(recv(sv2[1], b, sizeof(b), 0) == 2);
		close(got);
	}
	printf("scm_rights=%s\n", failures ? "FAIL" : "ok");
	close(sv[0]);
	close(sv[1]);

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, "\0net-test-abstract", 18);
	unix_named(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 18), "abstract");

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/net-test.%d.sock", (int)getpid());
	unlink(sa.sun_path);
	unix_named(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path) + 1),
		   "path");
	unlink(sa.sun_path);
	printf("unix=%s\n", failures ? "FAIL" : "ok");
	return failures != 0;
}

/* Try to reach host socket file @path: directly, and through a symlink. */
static int do_unix_escape(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	int r = connect(c, (struct sockaddr *)&sa, sizeof(sa));
	printf("direct=%s\n", r == 0 ? "ok" : errname(errno));
	close(c);
	unlink("/tmp/escape.lnk");
	if (symlink(path, "/tmp/escape.lnk") == 0) {
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/escape.lnk");
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		r = connect(c, (struct sockaddr *)&sa, sizeof(sa));
		printf("symlink=%s\n", r == 0 ? "ok" : errname(errno));
		close(c);
	} else {
		printf("symlink=nolink-%s\n", errname(errno));
	}
	/* Relative climb. */
	char rel[200];
	snprintf(rel, sizeof(rel), "../../../../../../..%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", rel);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	r = connect(c, (struct sockaddr *)&sa, sizeof(sa));
	printf("relative=%s\n", r == 0 ? "ok" : errname(errno));
	return 0;
}

/* ---- SIGPIPE ---------------------------------------------------------------- */

static volatile sig_atomic_t got_sigpipe;

static void on_sigpipe(int sig)
{
	(void)sig;
	got_sigpipe++;
}

static int do_sigpipe(void)
{
	int sv[2];
	struct sigaction sa = {.sa_handler = on_sigpipe};
	CHECK(sigaction(SIGPIPE, &sa, NULL) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[1]);
	errno = 0;
	CHECK(send(sv[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
	printf("nosignal_sigpipes=%d\n", (int)got_sigpipe);
	CHECK(got_sigpipe == 0);
	errno = 0;
	CHECK(send(sv[0], "x", 1, 0) < 0 && errno == EPIPE);
	printf("send_sigpipes=%d\n", (int)got_sigpipe);
	CHECK(got_sigpipe == 1);
	printf("sigpipe=%s\n", failures ? "FAIL" : "ok");
	return failures != 0;
}

/* ---- options ---------------------------------------------------------------- */

static int do_sockopt(bool vm)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, v = 0;
	socklen_t l = sizeof(v);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &l) == 0 && v == 1);
	CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);
	l = sizeof(v);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) == 0 && v == SOCK_STREAM);
	if (vm) { /* refused in the VM: they would change where the socket may send */
		CHECK(setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) < 0 &&
		      errno == ENOPROTOOPT);
		CHECK(setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0 &&
		      errno == ENOPROTOOPT);
		CHECK(setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0 &&
		      errno == ENOPROTOOPT);
	}
	CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, -1) < 0 && errno == EINVAL);
	close(fd);

	/* SO_RCVTIMEO as a wait deadline. */
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_storage ss;
	socklen_t len = mkaddr("127.0.0.1", 7401, &ss);
	CHECK(bind(u, (struct sockaddr *)&ss, len) == 0);
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000}, tv2;
	CHECK(setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	l = sizeof(tv2);
	CHECK(getsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv2, &l) == 0 && tv2.tv_usec == 200000);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char b[4];
	CHECK(recv(u, b, sizeof(b), 0) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("rcvtimeo_ms=%ld\n", ms);
	CHECK(ms >= 150 && ms < 3000);
	close(u);
	/* Unsupported families and types (natively, root may have them). */
	if (vm) {
		CHECK(socket(AF_PACKET, SOCK_RAW, 0) < 0);
		CHECK(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0);
		CHECK(socket(AF_NETLINK, SOCK_RAW, 0) < 0);
	}
	printf("sockopt=%s\n", failures ? "FAIL" : "ok");
	return failures != 0;
}

/* ---- hostile arguments ------------------------------------------------------ */

static long sc(long nr, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(nr, a, b, c, d, e, f);
	return r < 0 ? -errno : r;
}

static int do_hostile(void)
{
	const long bad = 0x10, high = (long)0xffff800000000000ull, wild = 0x7ffffffff000;
	const long ptrs[] = {0, bad, high, wild, -1};
	int s = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
	int u[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, u) == 0);
	long n = 0;
	for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++) {
		long p = ptrs[i];
		const long lens[] = {0, 1, 2, 15, 16, 28, 128, 129, 4096, -1, 0x7fffffff};
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			long l = lens[j];
			n += sc(SYS_bind, t, p, l, 0, 0, 0) < 0;
			n += sc(SYS_connect, s, p, l, 0, 0, 0) < 0;
			n += sc(SYS_connect, t, p, l, 0, 0, 0) < 0;
			n += sc(SYS_sendto, s, p, l, 0, p, l) < 0;
			n += sc(SYS_sendto, s, (long)"x", 1, 0, p, l) < 0;
			n += sc(SYS_recvfrom, s, p, l, MSG_DONTWAIT, p, p) < 0;
			n += sc(SYS_sendmsg, s, p, 0, 0, 0, 0) < 0;
			n += sc(SYS_recvmsg, s, p, MSG_DONTWAIT, 0, 0, 0) < 0;
			n += sc(SYS_getsockname, s, p, p, 0, 0, 0) < 0;
			n += sc(SYS_getpeername, s, p, p, 0, 0, 0) < 0;
			n += sc(SYS_setsockopt, s, SOL_SOCKET, SO_RCVBUF, p, l, 0) < 0;
			n += sc(SYS_getsockopt, s, SOL_SOCKET, SO_RCVBUF, p, p, 0) < 0;
			n += sc(SYS_accept4, t, p, p, 0, 0, 0) < 0;
			n += sc(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, p, 0, 0) < 0;
			n += sc(SYS_sendmmsg, s, p, l, 0, 0, 0) < 0;
			n += sc(SYS_recvmmsg, s, p, l, MSG_DONTWAIT, p, 0) < 0;
		}
		/* msghdrs pointing at garbage. */
		struct iovec iov[3] = {{(void *)p, 100}, {(void *)"ok", 2}, {(void *)p, (size_t)-1}};
		char cbuf[64];
		memset(cbuf, 0xff, sizeof(cbuf));
		/* The kernel's layout (musl's struct msghdr has 32-bit fields). */
		struct rawmsg {
			void *name;
			uint32_t namelen, pad0;
			void *iov;
			uint64_t iovlen;
			void *control;
			uint64_t controllen;
			int32_t flags, pad1;
		} mh[] = {
		    {.name = (void *)p, .namelen = 16, .iov = iov + 1, .iovlen = 1},
		    {.iov = iov, .iovlen = 1},
		    {.iov = iov + 1, .iovlen = 2},
		    {.iov = (void *)p, .iovlen = 3},
		    {.iov = iov + 1, .iovlen = 100000},
		    {.iov = iov + 1, .iovlen = (uint64_t)-1},
		    {.iov = iov + 1, .iovlen = 1, .control = (void *)p, .controllen = 64},
		    {.iov = iov + 1, .iovlen = 1, .control = cbuf, .controllen = 64},
		    {.iov = iov + 1, .iovlen = 1, .control = cbuf, .controllen = (uint64_t)-1},
		    {.iov = iov + 1, .iovlen = 1, .name = cbuf, .namelen = 0xffffffffu},
		};
		for (size_t k = 0; k < sizeof(mh) / sizeof(mh[0]); k++) {
			n += sc(SYS_sendmsg, s, (long)&mh[k], 0, 0, 0, 0) < 0;
			n += sc(SYS_sendmsg, u[0], (long)&mh[k], MSG_DONTWAIT, 0, 0, 0) < 0;
			n += sc(SYS_recvmsg, s, (long)&mh[k], MSG_DONTWAIT, 0, 0, 0) < 0;
			n += sc(SYS_recvmsg, u[1], (long)&mh[k], MSG_DONTWAIT, 0, 0, 0) < 0;
		}
		/* cmsg headers with lying lengths, SCM_RIGHTS with bad fds. */
		struct cmsghdr *cm = (struct cmsghdr *)cbuf;
		size_t clens[] = {0, 1, sizeof(*cm), sizeof(*cm) + 4, 63, 64, 65, (size_t)-1};
		for (size_t k = 0; k < sizeof(clens) / sizeof(clens[0]); k++) {
			memset(cbuf, 0xff, sizeof(cbuf));
			cm->cmsg_len = clens[k];
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			struct rawmsg m = {.iov = iov + 1, .iovlen = 1, .control = cbuf,
					   .controllen = sizeof(cbuf)};
			n += sc(SYS_sendmsg, u[0], (long)&m, MSG_DONTWAIT, 0, 0, 0) < 0;
		}
	}
	/* Bad fds, non-sockets, nonsense domains/types/levels. */
	n += sc(SYS_bind, -1, 0, 0, 0, 0, 0) == -EBADF;
	n += sc(SYS_bind, 0x7fffffff, 0, 0, 0, 0, 0) == -EBADF;
	n += sc(SYS_listen, 1, 1, 0, 0, 0, 0) == -ENOTSOCK;
	n += sc(SYS_socket, 12345, 1, 0, 0, 0, 0) < 0;
	n += sc(SYS_socket, AF_INET, 0x7fffffff, 0, 0, 0, 0) < 0;
	n += sc(SYS_socket, AF_INET, SOCK_STREAM, 9999, 0, 0, 0) < 0;
	n += sc(SYS_setsockopt, s, 0x7fffffff, 0x7fffffff, 0, 0, 0) < 0;
	n += sc(SYS_shutdown, t, 77, 0, 0, 0, 0) < 0;
	n += sc(SYS_listen, t, -5, 0, 0, 0, 0) <= 0;
	n += sc(SYS_accept4, t, 0, 0, 0x7fffffff, 0, 0) == -EINVAL;
	/* Still working afterwards. */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	unix_pair_check(sv[0], sv[1]);
	printf("hostile_calls=%ld\nhostile=%s\n", n, failures ? "FAIL" : "ok");
	return failures != 0;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(m, "tcp-echo") == 0 && argc > 2)
		return do_tcp_echo(argc, argv);
	if (strcmp(m, "udp-echo") == 0 && argc > 2)
		return do_udp_echo(argc, argv);
	if (strcmp(m, "client") == 0 && argc > 4)
		return do_client(argc, argv);
	if (strcmp(m, "try") == 0 && argc > 3)
		return do_try(argc, argv);
	if (strcmp(m, "hold") == 0 && argc > 2)
		return do_hold(argc, argv);
	if (strcmp(m, "loopback") == 0)
		return do_loopback(argc > 2 ? atoi(argv[2]) : 7000);
	if (strcmp(m, "unix") == 0)
		return do_unix();
	if (strcmp(m, "threads") == 0)
		return do_threads();
	if (strcmp(m, "unix-escape") == 0 && argc > 2)
		return do_unix_escape(argv[2]);
	if (strcmp(m, "sigpipe") == 0)
		return do_sigpipe();
	if (strcmp(m, "sockopt") == 0)
		return do_sockopt(argc > 2 && strcmp(argv[2], "vm") == 0);
	if (strcmp(m, "hostile") == 0)
		return do_hostile();
	fprintf(stderr, "usage: net-test tcp-echo|udp-echo|client|try|hold|loopback|threads|unix|sigpipe|"
			"sockopt|hostile ...\n");
	return 64;
}
