/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of src/svc/net.c without KVM: the socket system-call handlers
 * are called directly, over a small stand-in for the rest of src/svc/ (a
 * "guest memory" arena with checked copies, an fd table, poll() waits).
 * Real host sockets, real policy: published ports reached from the host,
 * allowed and refused destinations, two VMs that must not meet, Unix
 * sockets and SCM_RIGHTS, and hostile arguments (run it under ASan too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "svc/net.h"
#include "svc/svc.h"

/* ---- a stand-in for core and fs ----------------------------------------- */

#define ARENA_BASE 0x40000000ull
#define ARENA_SIZE (1u << 20)
#define NFDS	   64

struct svc_vm {
	struct svc_net *net;
	struct svc_config cfg;
	struct svc_file *fds[NFDS];
	unsigned char *arena;
	int sigpipes;
	bool nowait; /* waits end at once with -EINTR (hostile test) */
};

struct svc_thread {
	struct svc_vm *vm;
};

struct svc_vm *svc_thread_vm(struct svc_thread *t)
{
	return t->vm;
}
int svc_thread_tid(struct svc_thread *t)
{
	(void)t;
	return 1;
}
void *svc_uptr(struct svc_thread *t, uint64_t gva, uint64_t len)
{
	if (gva < ARENA_BASE || len > ARENA_SIZE || gva - ARENA_BASE > ARENA_SIZE - len)
		return NULL;
	return t->vm->arena + (gva - ARENA_BASE);
}
int svc_copy_in(struct svc_thread *t, void *dst, uint64_t gva, uint64_t len)
{
	void *p = svc_uptr(t, gva, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}
int svc_copy_out(struct svc_thread *t, uint64_t gva, const void *src, uint64_t len)
{
	void *p = svc_uptr(t, gva, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}
int svc_wait_fds(struct svc_thread *t, struct pollfd *fds, unsigned n, int64_t timeout_ns)
{
	int ms = timeout_ns < 0 ? 5000 : (int)(timeout_ns / 1000000);
	if (t->vm->nowait)
		ms = 0;
	int r = poll(fds, n, ms);
	if (r == 0 && (timeout_ns < 0 || t->vm->nowait))
		return -EINTR; /* a test must not hang: "stopped" */
	return r < 0 ? -errno : r;
}
int svc_sleep(struct svc_thread *t, uint64_t ns, uint64_t *left)
{
	(void)t;
	struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
	nanosleep(&ts, NULL);
	*left = 0;
	return 0;
}
void svc_signal_thread(struct svc_thread *t, int sig)
{
	if (sig == SIGPIPE)
		t->vm->sigpipes++;
}
struct svc_file *svc_file_new(enum svc_file_kind kind, int host_fd, int accmode, int status_flags)
{
	struct svc_file *f = calloc(1, sizeof(*f));
	if (!f) {
		close(host_fd);
		return NULL;
	}
	f->kind = kind;
	f->host_fd = host_fd;
	f->accmode = accmode;
	f->status_flags = status_flags;
	f->refs = 1;
	return f;
}
void svc_file_get(struct svc_file *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}
void svc_file_put(struct svc_file *f)
{
	if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (f->release)
		f->release(f);
	close(f->host_fd);
	free(f);
}
int svc_fd_install(struct svc_vm *vm, struct svc_file *f, int min, bool cloexec)
{
	(void)cloexec;
	for (int i = min < 3 ? 3 : min; i < NFDS; i++)
		if (!vm->fds[i]) {
			vm->fds[i] = f;
			return i;
		}
	svc_file_put(f);
	return -EMFILE;
}
struct svc_file *svc_fd_get(struct svc_vm *vm, long fd)
{
	if (fd < 0 || fd >= NFDS || !vm->fds[fd])
		return NULL;
	svc_file_get(vm->fds[fd]);
	return vm->fds[fd];
}
struct svc_net *svc_vm_net(struct svc_vm *vm)
{
	return vm->net;
}
void svc_vm_set_net(struct svc_vm *vm, struct svc_net *net)
{
	vm->net = net;
}
const struct svc_config *svc_vm_config(struct svc_vm *vm)
{
	return &vm->cfg;
}

/* ---- helpers -------------------------------------------------------------- */

struct gvm {
	struct svc_vm vm;
	struct svc_thread t;
	uint64_t brk; /* arena allocator */
};

static struct gvm *gvm_new(const struct svc_publish *pub, size_t npub, const struct svc_allow *al,
			   size_t nal)
{
	struct gvm *g = calloc(1, sizeof(*g));
	struct nb_error err;
	assert_non_null(g);
	g->vm.arena =
	    mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->vm.arena != MAP_FAILED);
	g->t.vm = &g->vm;
	g->brk = ARENA_BASE;
	svc_config_defaults(&g->vm.cfg);
	g->vm.cfg.publish = pub;
	g->vm.cfg.npublish = npub;
	g->vm.cfg.allow = al;
	g->vm.cfg.nallow = nal;
	assert_int_equal(svc_net_init(&g->vm, &g->vm.cfg, &err), 0);
	return g;
}

static void gvm_free(struct gvm *g)
{
	svc_net_fini(&g->vm);
	for (int i = 0; i < NFDS; i++)
		svc_file_put(g->vm.fds[i]);
	munmap(g->vm.arena, ARENA_SIZE);
	free(g);
}

/* Guest copy of @len bytes of @src: its guest address. */
static uint64_t gput(struct gvm *g, const void *src, size_t len)
{
	uint64_t a = g->brk;
	g->brk += (len + 15) & ~15ull;
	assert_true(g->brk <= ARENA_BASE + ARENA_SIZE);
	if (src)
		memcpy(g->vm.arena + (a - ARENA_BASE), src, len);
	else
		memset(g->vm.arena + (a - ARENA_BASE), 0, len);
	return a;
}

static void *gptr(struct gvm *g, uint64_t a)
{
	return g->vm.arena + (a - ARENA_BASE);
}

static long sys(struct gvm *g, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5)
{
	svc_sys_fn fn = svc_net_handler((unsigned)nr);
	assert_non_null(fn);
	const uint64_t a[6] = {a0, a1, a2, a3, a4, a5};
	return fn(&g->t, a);
}

static struct sockaddr_storage sa_of(const char *ip, int port, socklen_t *len)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	}
	return ss;
}

static long gsock(struct gvm *g, int dom, int type)
{
	long fd = sys(g, SYS_socket, (uint64_t)dom, (uint64_t)type, 0, 0, 0, 0);
	assert_true(fd >= 3);
	return fd;
}

static long gbind(struct gvm *g, long fd, const char *ip, int port)
{
	socklen_t l;
	struct sockaddr_storage ss = sa_of(ip, port, &l);
	return sys(g, SYS_bind, (uint64_t)fd, gput(g, &ss, l), l, 0, 0, 0);
}

static long gconnect(struct gvm *g, long fd, const char *ip, int port)
{
	socklen_t l;
	struct sockaddr_storage ss = sa_of(ip, port, &l);
	return sys(g, SYS_connect, (uint64_t)fd, gput(g, &ss, l), l, 0, 0, 0);
}

static long gsendto(struct gvm *g, long fd, const char *msg, const char *ip, int port)
{
	socklen_t l;
	struct sockaddr_storage ss = sa_of(ip, port, &l);
	return sys(g, SYS_sendto, (uint64_t)fd, gput(g, msg, strlen(msg)), strlen(msg), 0,
		   gput(g, &ss, l), l);
}

/* The guest's name of @fd (getsockname): its port. */
static int gport(struct gvm *g, long fd, long nr)
{
	uint32_t l = sizeof(struct sockaddr_storage);
	uint64_t a = gput(g, NULL, l), la = gput(g, &l, sizeof(l));
	assert_int_equal(sys(g, nr, (uint64_t)fd, a, la, 0, 0, 0), 0);
	struct sockaddr_in *s4 = gptr(g, a);
	return ntohs(s4->sin_port); /* same offset for sin6_port */
}

/* The real host port under guest fd @fd. */
static int host_port(struct gvm *g, long fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	assert_int_equal(getsockname(g->vm.fds[fd]->host_fd, (struct sockaddr *)&ss, &l), 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Connects from the host to 127.0.0.1:@hp and asserts that the guest's
 * listening socket @l accepts the connection. */
static void host_connect_accepted(struct gvm *g, long l, int hp)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t sl;
	struct sockaddr_storage ss = sa_of("127.0.0.1", hp, &sl);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, sl), 0);
	assert_true(sys(g, SYS_accept, (uint64_t)l, 0, 0, 0, 0, 0) >= 3);
	close(c);
}

/* A free host TCP port (bound and released). */
static int free_port(int type)
{
	int s = socket(AF_INET, type, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(s, (struct sockaddr *)&a, &l);
	close(s);
	return ntohs(a.sin_port);
}

static int host_listener(int fam, int port)
{
	socklen_t l;
	struct sockaddr_storage ss = sa_of(fam == AF_INET ? "127.0.0.1" : "::1", port, &l);
	int s = socket(fam, SOCK_STREAM, 0), one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(s, (struct sockaddr *)&ss, l), 0);
	assert_int_equal(listen(s, 16), 0);
	return s;
}

static struct svc_publish publish_of(const char *ip, int hport, int gport_, int proto)
{
	struct svc_publish p = {.guest_port = (uint16_t)gport_, .proto = proto};
	p.host = sa_of(ip, hport, &p.host_len);
	return p;
}

static struct svc_allow allow_of(const char *ip, int port, int proto)
{
	struct svc_allow a = {.proto = proto};
	a.addr = sa_of(ip, port, &a.len);
	return a;
}

/* ---- tests ------------------------------------------------------------------ */

/* A guest TCP listener published on the host; the host connects and
 * exchanges data through the real accepted socket. */
static void test_publish_tcp(void **state)
{
	(void)state;
	int hp = free_port(SOCK_STREAM), hp6 = free_port(SOCK_STREAM);
	struct svc_publish pub[2] = {publish_of("127.0.0.1", hp, 80, IPPROTO_TCP),
				     publish_of("::1", hp6, 80, IPPROTO_TCP)};
	struct gvm *g = gvm_new(pub, 2, NULL, 0);

	long l4 = gsock(g, AF_INET, SOCK_STREAM);
	assert_int_equal(gbind(g, l4, "0.0.0.0", 80), 0);
	assert_int_equal(sys(g, SYS_listen, (uint64_t)l4, 16, 0, 0, 0, 0), 0);
	assert_int_equal(gport(g, l4, SYS_getsockname), 80);
	assert_int_equal(host_port(g, l4), hp);

	/* An IPv6-only socket on the same guest port takes the IPv6 publish. */
	long l6 = gsock(g, AF_INET6, SOCK_STREAM);
	int one = 1;
	assert_int_equal(
	    sys(g, SYS_setsockopt, (uint64_t)l6, IPPROTO_IPV6, IPV6_V6ONLY, gput(g, &one, 4), 4, 0),
	    0);
	assert_int_equal(gbind(g, l6, "::", 80), 0);
	assert_int_equal(sys(g, SYS_listen, (uint64_t)l6, 16, 0, 0, 0, 0), 0);
	assert_int_equal(host_port(g, l6), hp6);

	for (int fam = AF_INET; fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		socklen_t sl;
		struct sockaddr_storage ss =
		    sa_of(fam == AF_INET ? "127.0.0.1" : "::1", fam == AF_INET ? hp : hp6, &sl);
		int c = socket(fam, SOCK_STREAM, 0);
		assert_int_equal(connect(c, (struct sockaddr *)&ss, sl), 0);
		uint32_t al = sizeof(struct sockaddr_storage);
		uint64_t aa = gput(g, NULL, al), ala = gput(g, &al, 4);
		long a = sys(g, SYS_accept4, (uint64_t)(fam == AF_INET ? l4 : l6), aa, ala,
			     SOCK_CLOEXEC, 0, 0);
		assert_true(a >= 3);
		assert_int_equal(write(c, "hello", 5), 5);
		uint64_t buf = gput(g, NULL, 64);
		assert_int_equal(sys(g, SYS_recvfrom, (uint64_t)a, buf, 64, 0, 0, 0), 5);
		assert_memory_equal(gptr(g, buf), "hello", 5);
		assert_int_equal(sys(g, SYS_sendto, (uint64_t)a, buf, 5, 0, 0, 0), 5);
		char back[8];
		assert_int_equal(read(c, back, sizeof(back)), 5);
		/* The accepted socket's name is the guest's port. */
		assert_int_equal(gport(g, a, SYS_getsockname), 80);
		close(c);
		/* EOF, then EPIPE with SIGPIPE (and none with MSG_NOSIGNAL). */
		assert_int_equal(sys(g, SYS_recvfrom, (uint64_t)a, buf, 64, 0, 0, 0), 0);
		long r = 0;
		int before = g->vm.sigpipes;
		for (int i = 0; i < 50 && r >= 0; i++) {
			r = sys(g, SYS_sendto, (uint64_t)a, buf, 5, MSG_NOSIGNAL, 0, 0);
			usleep(2000);
		}
		assert_true(r == -EPIPE || r == -ECONNRESET);
		assert_int_equal(g->vm.sigpipes, before);
		r = sys(g, SYS_sendto, (uint64_t)a, buf, 5, 0, 0, 0);
		if (r == -EPIPE)
			assert_int_equal(g->vm.sigpipes, before + 1);
	}
	gvm_free(g);
}

/* --publish [::]:HP:P serves an IPv4-only guest socket as 0.0.0.0:HP. */
static void test_publish_any(void **state)
{
	(void)state;
	int hp = free_port(SOCK_STREAM);
	struct svc_publish pub = publish_of("::", hp, 81, IPPROTO_TCP);
	struct gvm *g = gvm_new(&pub, 1, NULL, 0);
	long l = gsock(g, AF_INET, SOCK_STREAM);
	assert_int_equal(gbind(g, l, "0.0.0.0", 81), 0);
	assert_int_equal(sys(g, SYS_listen, (uint64_t)l, 4, 0, 0, 0, 0), 0);
	assert_int_equal(host_port(g, l), hp);
	host_connect_accepted(g, l, hp);
	gvm_free(g);
}

/* A published UDP socket answers whoever wrote to it, and nobody else. */
static void test_publish_udp(void **state)
{
	(void)state;
	int hp = free_port(SOCK_DGRAM);
	struct svc_publish pub = publish_of("127.0.0.1", hp, 53, IPPROTO_UDP);
	struct gvm *g = gvm_new(&pub, 1, NULL, 0);
	long u = gsock(g, AF_INET, SOCK_DGRAM);
	assert_int_equal(gbind(g, u, "0.0.0.0", 53), 0);
	assert_int_equal(host_port(g, u), hp);

	int c = socket(AF_INET, SOCK_DGRAM, 0);
	socklen_t sl;
	struct sockaddr_storage ss = sa_of("127.0.0.1", hp, &sl);
	assert_int_equal(sendto(c, "q", 1, 0, (struct sockaddr *)&ss, sl), 1);
	uint32_t fl = sizeof(struct sockaddr_storage);
	uint64_t from = gput(g, NULL, fl), fla = gput(g, &fl, 4), buf = gput(g, NULL, 16);
	assert_int_equal(sys(g, SYS_recvfrom, (uint64_t)u, buf, 16, 0, from, fla), 1);
	uint32_t got_len = *(uint32_t *)gptr(g, fla);
	assert_int_equal(sys(g, SYS_sendto, (uint64_t)u, buf, 1, 0, from, got_len), 1);
	char r;
	assert_int_equal(recv(c, &r, 1, 0), 1);
	/* Another destination stays unreachable. */
	assert_int_equal(gsendto(g, u, "x", "127.0.0.1", free_port(SOCK_DGRAM)), -ENETUNREACH);
	close(c);
	gvm_free(g);
}

/* Only --allow-connect destinations are reachable from the guest. */
static void test_allow_and_deny(void **state)
{
	(void)state;
	int okp = free_port(SOCK_STREAM);
	int allowed = host_listener(AF_INET, okp);
	int other = host_listener(AF_INET, 0);
	struct sockaddr_in oa;
	socklen_t ol = sizeof(oa);
	getsockname(other, (struct sockaddr *)&oa, &ol);
	int op = ntohs(oa.sin_port);
	int other6 = host_listener(AF_INET6, op); /* [::1] on the same port number */
	struct svc_allow al = allow_of("127.0.0.1", okp, IPPROTO_TCP);
	struct gvm *g = gvm_new(NULL, 0, &al, 1);

	long c = gsock(g, AF_INET, SOCK_STREAM);
	assert_int_equal(gconnect(g, c, "127.0.0.1", okp), 0);
	assert_int_equal(gport(g, c, SYS_getpeername), okp);
	/* The mapped form on an IPv6 socket is the same allowed service. */
	long c6 = gsock(g, AF_INET6, SOCK_STREAM);
	assert_int_equal(gconnect(g, c6, "::ffff:127.0.0.1", okp), 0);

	const char *ips[] = {
	    "127.0.0.1",    "127.0.0.2",      "0.0.0.0",	"::1", "::", "::ffff:127.0.0.1",
	    "10.255.255.1", "::ffff:0.0.0.0", "255.255.255.255"};
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		int fam = strchr(ips[i], ':') ? AF_INET6 : AF_INET;
		long s = gsock(g, fam, SOCK_STREAM);
		assert_int_equal(gconnect(g, s, ips[i], op), -ECONNREFUSED);
		long u = gsock(g, fam, SOCK_DGRAM);
		assert_int_equal(gsendto(g, u, "x", ips[i], op), -ENETUNREACH);
		assert_int_equal(gconnect(g, u, ips[i], op), -ENETUNREACH);
		/* Allowed for TCP only. */
		assert_int_equal(gsendto(g, u, "x", ips[i], okp), -ENETUNREACH);
	}
	/* sendmsg with a name, and MSG_FASTOPEN on TCP. */
	long u = gsock(g, AF_INET, SOCK_DGRAM);
	socklen_t sl;
	struct sockaddr_storage ss = sa_of("127.0.0.1", op, &sl);
	struct iovec iov = {(void *)(uintptr_t)gput(g, "y", 1), 1};
	struct msghdr mh = {.msg_name = (void *)(uintptr_t)gput(g, &ss, sl),
			    .msg_namelen = sl,
			    .msg_iov = (void *)(uintptr_t)gput(g, &iov, sizeof(iov)),
			    .msg_iovlen = 1};
	assert_int_equal(sys(g, SYS_sendmsg, (uint64_t)u, gput(g, &mh, sizeof(mh)), 0, 0, 0, 0),
			 -ENETUNREACH);
	long t = gsock(g, AF_INET, SOCK_STREAM);
	assert_int_equal(
	    sys(g, SYS_sendto, (uint64_t)t, gput(g, "z", 1), 1, MSG_FASTOPEN, gput(g, &ss, sl), sl),
	    -EOPNOTSUPP);
	/* Nothing ever reached the other listeners. */
	struct pollfd p[2] = {{.fd = other, .events = POLLIN}, {.fd = other6, .events = POLLIN}};
	assert_int_equal(poll(p, 2, 50), 0);
	gvm_free(g);
	close(allowed);
	close(other);
	close(other6);
}

/* The VM's own sockets reach each other through their virtual ports; another
 * VM does not see them, by virtual or by real port. */
static void test_loopback_and_isolation(void **state)
{
	(void)state;
	struct gvm *a = gvm_new(NULL, 0, NULL, 0), *b = gvm_new(NULL, 0, NULL, 0);

	long la = gsock(a, AF_INET, SOCK_STREAM);
	assert_int_equal(gbind(a, la, "0.0.0.0", 6000), 0);
	assert_int_equal(sys(a, SYS_listen, (uint64_t)la, 8, 0, 0, 0, 0), 0);
	int real = host_port(a, la);
	assert_int_not_equal(real, 6000);
	long lb = gsock(b, AF_INET, SOCK_STREAM);
	assert_int_equal(gbind(b, lb, "0.0.0.0", 6000), 0); /* same port, other VM: fine */
	assert_int_equal(sys(b, SYS_listen, (uint64_t)lb, 8, 0, 0, 0, 0), 0);

	long c = gsock(a, AF_INET, SOCK_STREAM);
	assert_int_equal(gconnect(a, c, "127.0.0.1", 6000), 0);
	long s = sys(a, SYS_accept, (uint64_t)la, 0, 0, 0, 0, 0);
	assert_true(s >= 3);
	assert_int_equal(gport(a, s, SYS_getpeername), gport(a, c, SYS_getsockname));
	assert_int_equal(gport(a, c, SYS_getpeername), 6000);
	/* Dual-stack and mapped forms reach it too. */
	long c6 = gsock(a, AF_INET6, SOCK_STREAM);
	assert_int_equal(gconnect(a, c6, "::ffff:127.0.0.1", 6000), 0);
	assert_true(sys(a, SYS_accept, (uint64_t)la, 0, 0, 0, 0, 0) >= 3);
	/* An IPv6-only listener, reached by a dual-stack client over [::1]. */
	long l6 = gsock(a, AF_INET6, SOCK_STREAM);
	int one = 1;
	assert_int_equal(
	    sys(a, SYS_setsockopt, (uint64_t)l6, IPPROTO_IPV6, IPV6_V6ONLY, gput(a, &one, 4), 4, 0),
	    0);
	assert_int_equal(gbind(a, l6, "::", 6100), 0);
	assert_int_equal(sys(a, SYS_listen, (uint64_t)l6, 8, 0, 0, 0, 0), 0);
	long c6c = gsock(a, AF_INET6, SOCK_STREAM);
	assert_int_equal(gconnect(a, c6c, "::1", 6100), 0);
	long s6 = sys(a, SYS_accept, (uint64_t)l6, 0, 0, 0, 0, 0);
	assert_true(s6 >= 3);
	assert_int_equal(gport(a, s6, SYS_getpeername), gport(a, c6c, SYS_getsockname));
	long c4 = gsock(a, AF_INET, SOCK_STREAM);
	assert_int_equal(gconnect(a, c4, "127.0.0.1", 6100), -ECONNREFUSED);
	/* A socket bound to [::1] explicitly serves IPv6 only. */
	long l61 = gsock(a, AF_INET6, SOCK_STREAM);
	assert_int_equal(gbind(a, l61, "::1", 6101), 0);
	assert_int_equal(sys(a, SYS_listen, (uint64_t)l61, 8, 0, 0, 0, 0), 0);
	assert_int_equal(gconnect(a, gsock(a, AF_INET6, SOCK_STREAM), "::1", 6101), 0);
	assert_int_equal(gconnect(a, gsock(a, AF_INET, SOCK_STREAM), "127.0.0.1", 6101),
			 -ECONNREFUSED);
	/* An IPv4 listener is not reached over pure IPv6. */
	long c6b = gsock(a, AF_INET6, SOCK_STREAM);
	assert_int_equal(gconnect(a, c6b, "::1", 6000), -ECONNREFUSED);

	/* B cannot reach A's listener: not by 6000 (B's own is there), not by
	 * A's real port. */
	long cb = gsock(b, AF_INET, SOCK_STREAM);
	assert_int_equal(gconnect(b, cb, "127.0.0.1", real), -ECONNREFUSED);
	assert_int_equal(gconnect(b, cb, "127.0.0.1", 6000), 0);
	struct pollfd p = {.fd = a->vm.fds[la]->host_fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 50), 0); /* nothing new for A */

	/* UDP inside the VM, with translated source addresses. */
	long u1 = gsock(a, AF_INET, SOCK_DGRAM), u2 = gsock(a, AF_INET, SOCK_DGRAM);
	assert_int_equal(gbind(a, u1, "127.0.0.1", 5000), 0);
	assert_int_equal(gsendto(a, u2, "ping", "127.0.0.1", 5000), 4);
	uint32_t fl = sizeof(struct sockaddr_storage);
	uint64_t from = gput(a, NULL, fl), fla = gput(a, &fl, 4), buf = gput(a, NULL, 16);
	assert_int_equal(sys(a, SYS_recvfrom, (uint64_t)u1, buf, 16, 0, from, fla), 4);
	int src = ntohs(((struct sockaddr_in *)gptr(a, from))->sin_port);
	assert_int_equal(src, gport(a, u2, SYS_getsockname));
	assert_int_equal(sys(a, SYS_sendto, (uint64_t)u1, buf, 4, 0, from, 16), 4);
	assert_int_equal(sys(a, SYS_recvfrom, (uint64_t)u2, buf, 16, 0, 0, 0), 4);
	/* An IPv6 datagram socket takes an IPv4 destination too. */
	long u6 = gsock(a, AF_INET6, SOCK_DGRAM);
	assert_int_equal(gsendto(a, u6, "v4", "127.0.0.1", 5000), 2);
	assert_int_equal(sys(a, SYS_recvfrom, (uint64_t)u1, buf, 16, 0, 0, 0), 2);
	/* B cannot send to A's UDP port. */
	long ub = gsock(b, AF_INET, SOCK_DGRAM);
	assert_int_equal(gsendto(b, ub, "x", "127.0.0.1", host_port(a, u1)), -ENETUNREACH);
	assert_int_equal(gsendto(b, ub, "x", "127.0.0.1", 5000), -ENETUNREACH);

	/* Port reuse rules and bad binds. */
	long d = gsock(a, AF_INET, SOCK_STREAM);
	assert_int_equal(gbind(a, d, "0.0.0.0", 6000), -EADDRINUSE);
	assert_int_equal(gbind(a, d, "192.0.2.1", 6001), -EADDRNOTAVAIL);
	assert_int_equal(gbind(a, d, "::1", 6001), -EAFNOSUPPORT);
	assert_int_equal(gbind(a, d, "127.0.0.1", 6001), 0);
	assert_int_equal(gbind(a, d, "127.0.0.1", 6002), -EINVAL);
	gvm_free(a);
	gvm_free(b);
}

static long gunix_name(struct gvm *g, long nr, long fd, const char *name, size_t n)
{
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	memcpy(su.sun_path, name, n);
	socklen_t l = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return sys(g, nr, (uint64_t)fd, gput(g, &su, l), l, 0, 0, 0);
}

static void test_unix(void **state)
{
	(void)state;
	struct gvm *a = gvm_new(NULL, 0, NULL, 0), *b = gvm_new(NULL, 0, NULL, 0);

	/* Same abstract name in two VMs; neither sees the other's. */
	long la = gsock(a, AF_UNIX, SOCK_STREAM), lb = gsock(b, AF_UNIX, SOCK_STREAM);
	assert_int_equal(gunix_name(a, SYS_bind, la, "\0svc", 4), 0);
	assert_int_equal(gunix_name(b, SYS_bind, lb, "\0svc", 4), 0);
	assert_int_equal(sys(a, SYS_listen, (uint64_t)la, 4, 0, 0, 0, 0), 0);
	long cb = gsock(b, AF_UNIX, SOCK_STREAM);
	assert_int_equal(gunix_name(b, SYS_connect, cb, "\0svc", 4),
			 -ECONNREFUSED); /* B's, not listening */
	long ca = gsock(a, AF_UNIX, SOCK_STREAM);
	assert_int_equal(gunix_name(a, SYS_connect, ca, "\0svc", 4), 0);
	long sa = sys(a, SYS_accept4, (uint64_t)la, 0, 0, SOCK_NONBLOCK, 0, 0);
	assert_true(sa >= 3);
	uint32_t nl = sizeof(struct sockaddr_un);
	uint64_t na = gput(a, NULL, nl), nla = gput(a, &nl, 4);
	assert_int_equal(sys(a, SYS_getsockname, (uint64_t)la, na, nla, 0, 0, 0), 0);
	assert_int_equal(*(uint32_t *)gptr(a, nla), 2 + 4);
	assert_memory_equal((char *)gptr(a, na) + 2, "\0svc", 4);
	/* A host process cannot guess it without the VM's prefix. */
	int h = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un hu = {.sun_family = AF_UNIX};
	memcpy(hu.sun_path, "\0svc", 4);
	assert_int_not_equal(connect(h, (struct sockaddr *)&hu, 2 + 4), 0);
	close(h);

	/* socketpair + SCM_RIGHTS of a guest socket: the receiver gets the same file. */
	uint64_t sv = gput(a, NULL, 8);
	assert_int_equal(sys(a, SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv, 0, 0), 0);
	int *fds = gptr(a, sv);
	int s0 = fds[0], s1 = fds[1];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {.msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	int pass = (int)ca;
	memcpy(CMSG_DATA(cm), &pass, sizeof(int));
	struct iovec iov = {(void *)(uintptr_t)gput(a, "F", 1), 1};
	mh.msg_iov = (void *)(uintptr_t)gput(a, &iov, sizeof(iov));
	mh.msg_iovlen = 1;
	mh.msg_control = (void *)(uintptr_t)gput(a, u.buf, sizeof(u.buf));
	assert_int_equal(sys(a, SYS_sendmsg, (uint64_t)s0, gput(a, &mh, sizeof(mh)), 0, 0, 0, 0),
			 1);
	uint64_t rbuf = gput(a, NULL, 4), rctl = gput(a, NULL, 64);
	struct iovec riov = {(void *)(uintptr_t)rbuf, 4};
	struct msghdr rm = {.msg_iov = (void *)(uintptr_t)gput(a, &riov, sizeof(riov)),
			    .msg_iovlen = 1,
			    .msg_control = (void *)(uintptr_t)rctl,
			    .msg_controllen = 64};
	uint64_t rma = gput(a, &rm, sizeof(rm));
	assert_int_equal(sys(a, SYS_recvmsg, (uint64_t)s1, rma, MSG_CMSG_CLOEXEC, 0, 0, 0), 1);
	struct msghdr *back = gptr(a, rma);
	assert_int_equal(back->msg_controllen, CMSG_SPACE(sizeof(int)) - 4 + 4);
	struct cmsghdr *rc = gptr(a, rctl);
	assert_int_equal(rc->cmsg_type, SCM_RIGHTS);
	int got;
	memcpy(&got, (char *)rc + sizeof(*rc), sizeof(int));
	assert_true(got >= 3 && got != ca);
	assert_ptr_equal(a->vm.fds[got], a->vm.fds[ca]); /* the same struct svc_file */

	/* Bad cmsgs: other types, bad fds, lying lengths. */
	cm = (struct cmsghdr *)gptr(a, (uint64_t)(uintptr_t)mh.msg_control);
	cm->cmsg_type = SCM_CREDENTIALS;
	assert_int_equal(sys(a, SYS_sendmsg, (uint64_t)s0, gput(a, &mh, sizeof(mh)), 0, 0, 0, 0),
			 -EINVAL);
	cm->cmsg_type = SCM_RIGHTS;
	pass = 60;
	memcpy(CMSG_DATA(cm), &pass, sizeof(int));
	assert_int_equal(sys(a, SYS_sendmsg, (uint64_t)s0, gput(a, &mh, sizeof(mh)), 0, 0, 0, 0),
			 -EBADF);
	cm->cmsg_len = 1000;
	assert_int_equal(sys(a, SYS_sendmsg, (uint64_t)s0, gput(a, &mh, sizeof(mh)), 0, 0, 0, 0),
			 -EINVAL);
	/* Path names (fs keeps no socket files): a per-VM namespace. */
	if (!svc_fs_sock_path) {
		long p = gsock(a, AF_UNIX, SOCK_STREAM);
		assert_int_equal(gunix_name(a, SYS_bind, p, "/run/app.sock", 14), 0);
		assert_int_equal(sys(a, SYS_listen, (uint64_t)p, 4, 0, 0, 0, 0), 0);
		long q = gsock(a, AF_UNIX, SOCK_STREAM);
		assert_int_equal(gunix_name(a, SYS_connect, q, "/run/..//run/./app.sock", 24), 0);
		long qb = gsock(b, AF_UNIX, SOCK_STREAM);
		assert_int_equal(gunix_name(b, SYS_connect, qb, "/run/app.sock", 14),
				 -ECONNREFUSED);
		long d1 = gsock(a, AF_UNIX, SOCK_DGRAM), d2 = gsock(a, AF_UNIX, SOCK_DGRAM);
		assert_int_equal(gunix_name(a, SYS_bind, d1, "/tmp/d1", 8), 0);
		assert_int_equal(gunix_name(a, SYS_bind, d2, "/tmp/d2", 8), 0);
		struct sockaddr_un to = {.sun_family = AF_UNIX, .sun_path = "/tmp/d1"};
		assert_int_equal(sys(a, SYS_sendto, (uint64_t)d2, gput(a, "hi", 2), 2, 0,
				     gput(a, &to, 2 + 8), 2 + 8),
				 2);
		uint32_t fl = sizeof(struct sockaddr_un);
		uint64_t from = gput(a, NULL, fl), fla = gput(a, &fl, 4);
		assert_int_equal(
		    sys(a, SYS_recvfrom, (uint64_t)d1, gput(a, NULL, 8), 8, 0, from, fla), 2);
		assert_int_equal(*(uint32_t *)gptr(a, fla), 2 + 8);
		assert_string_equal((char *)gptr(a, from) + 2, "/tmp/d2");
		char longp[120];
		memset(longp, 'x', sizeof(longp));
		longp[0] = '/';
		assert_int_equal(
		    gunix_name(a, SYS_bind, gsock(a, AF_UNIX, SOCK_STREAM), longp, 100),
		    -ENAMETOOLONG);
	}
	(void)sa;
	gvm_free(a);
	gvm_free(b);
}

static void test_options(void **state)
{
	(void)state;
	struct gvm *g = gvm_new(NULL, 0, NULL, 0);
	long s = gsock(g, AF_INET, SOCK_DGRAM);
	int one = 1;
	uint64_t v = gput(g, &one, 4);
	assert_int_equal(sys(g, SYS_setsockopt, (uint64_t)s, SOL_SOCKET, SO_REUSEADDR, v, 4, 0), 0);
	assert_int_equal(sys(g, SYS_setsockopt, (uint64_t)s, SOL_SOCKET, SO_BINDTODEVICE, v, 4, 0),
			 -ENOPROTOOPT);
	assert_int_equal(sys(g, SYS_setsockopt, (uint64_t)s, IPPROTO_IP, IP_TRANSPARENT, v, 4, 0),
			 -ENOPROTOOPT);
	assert_int_equal(
	    sys(g, SYS_setsockopt, (uint64_t)s, SOL_SOCKET, SO_REUSEADDR, v, 1u << 20, 0), -EINVAL);
	assert_int_equal(sys(g, SYS_setsockopt, (uint64_t)s, SOL_SOCKET, SO_ERROR, v, 4, 0),
			 -ENOPROTOOPT);
	struct timeval tv = {0, 100000};
	assert_int_equal(sys(g, SYS_setsockopt, (uint64_t)s, SOL_SOCKET, SO_RCVTIMEO,
			     gput(g, &tv, sizeof(tv)), sizeof(tv), 0),
			 0);
	tv.tv_usec = 2000000;
	assert_int_equal(sys(g, SYS_setsockopt, (uint64_t)s, SOL_SOCKET, SO_RCVTIMEO,
			     gput(g, &tv, sizeof(tv)), sizeof(tv), 0),
			 -EDOM);
	assert_int_equal(gbind(g, s, "127.0.0.1", 4000), 0);
	uint64_t t0 = nb_now_ns();
	assert_int_equal(sys(g, SYS_recvfrom, (uint64_t)s, gput(g, NULL, 8), 8, 0, 0, 0), -EAGAIN);
	uint64_t dt = nb_now_ns() - t0;
	assert_true(dt >= 80000000ull && dt < 2000000000ull);
	int32_t ol = 4;
	uint64_t ov = gput(g, NULL, 4), ola = gput(g, &ol, 4);
	assert_int_equal(sys(g, SYS_getsockopt, (uint64_t)s, SOL_SOCKET, SO_TYPE, ov, ola, 0), 0);
	assert_int_equal(*(int *)gptr(g, ov), SOCK_DGRAM);
	ol = -1;
	ola = gput(g, &ol, 4);
	assert_int_equal(sys(g, SYS_getsockopt, (uint64_t)s, SOL_SOCKET, SO_TYPE, ov, ola, 0),
			 -EINVAL);
	/* Families and types. */
	assert_int_equal(sys(g, SYS_socket, AF_PACKET, SOCK_RAW, 0, 0, 0, 0), -EAFNOSUPPORT);
	assert_int_equal(sys(g, SYS_socket, AF_NETLINK, SOCK_RAW, 0, 0, 0, 0), -EAFNOSUPPORT);
	assert_int_equal(sys(g, SYS_socket, AF_INET, SOCK_RAW, IPPROTO_ICMP, 0, 0, 0), -EPERM);
	assert_int_equal(sys(g, SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_UDP, 0, 0, 0),
			 -EPROTONOSUPPORT);
	assert_int_equal(sys(g, SYS_socketpair, AF_INET, SOCK_STREAM, 0, gput(g, NULL, 8), 0, 0),
			 -EOPNOTSUPP);
	assert_int_equal(sys(g, SYS_bind, 0, 0, 0, 0, 0, 0), -EBADF);
	gvm_free(g);
}

/* Random arguments, pointers into and around guest memory: every handler
 * returns, the VM's sockets keep working. */
static void test_hostile(void **state)
{
	(void)state;
	int hp = free_port(SOCK_STREAM);
	struct svc_publish pub = publish_of("127.0.0.1", hp, 80, IPPROTO_TCP);
	struct gvm *g = gvm_new(&pub, 1, NULL, 0);
	static const long nrs[] = {SYS_socket,	   SYS_socketpair, SYS_bind,	    SYS_listen,
				   SYS_accept,	   SYS_accept4,	   SYS_connect,	    SYS_sendto,
				   SYS_recvfrom,   SYS_sendmsg,	   SYS_recvmsg,	    SYS_sendmmsg,
				   SYS_recvmmsg,   SYS_shutdown,   SYS_getsockname, SYS_getpeername,
				   SYS_setsockopt, SYS_getsockopt};
	uint64_t scratch = gput(g, NULL, 8192);
	uint32_t x = 777;
	g->vm.nowait = true;
	for (int it = 0; it < 30000; it++) {
		uint64_t a[6];
		for (int k = 0; k < 6; k++) {
			x = x * 1103515245u + 12345u;
			switch ((x >> 8) % 8) {
			case 0:
				a[k] = 3 + (x >> 12) % 12;
				break; /* likely an fd */
			case 1:
				a[k] = scratch + (x >> 12) % 8192;
				break;
			case 2:
				a[k] = ARENA_BASE + ARENA_SIZE - (x >> 12) % 64;
				break;
			case 3:
				a[k] = (x >> 12) % 200;
				break;
			case 4:
				a[k] = (uint64_t)-1 - (x >> 12) % 4;
				break;
			case 5:
				a[k] = 0;
				break;
			case 6:
				a[k] = 16 + (x >> 20) % 16;
				break;
			default:
				a[k] = ((uint64_t)x << 32) | x;
				break;
			}
		}
		/* Scribble on the scratch memory the pointers aim at. */
		unsigned char *sp = gptr(g, scratch);
		for (int k = 0; k < 64; k++) {
			x = x * 1103515245u + 12345u;
			sp[(x >> 8) % 8192] = (unsigned char)(x >> 24);
		}
		long nr = nrs[(x >> 4) % (sizeof(nrs) / sizeof(nrs[0]))];
		if (nr == SYS_recvmmsg || nr == SYS_recvfrom || nr == SYS_recvmsg ||
		    nr == SYS_accept || nr == SYS_accept4 || nr == SYS_connect)
			a[3] |= MSG_DONTWAIT; /* no long waits in a unit test */
		svc_sys_fn fn = svc_net_handler((unsigned)nr);
		long r = fn(&g->t, a);
		assert_true(r >= -4095);
		/* Do not let the table fill up. */
		if (it % 500 == 0)
			for (int fd = 3; fd < NFDS; fd++) {
				svc_file_put(g->vm.fds[fd]);
				g->vm.fds[fd] = NULL;
			}
	}
	/* Still working: a published listener reached from the host. */
	g->vm.nowait = false;
	for (int fd = 3; fd < NFDS; fd++) {
		svc_file_put(g->vm.fds[fd]);
		g->vm.fds[fd] = NULL;
	}
	long l = gsock(g, AF_INET, SOCK_STREAM);
	assert_int_equal(gbind(g, l, "0.0.0.0", 80), 0);
	assert_int_equal(sys(g, SYS_listen, (uint64_t)l, 4, 0, 0, 0, 0), 0);
	host_connect_accepted(g, l, hp);
	gvm_free(g);
}

static void test_config_errors(void **state)
{
	(void)state;
	struct svc_vm vm;
	struct nb_error err;
	struct svc_publish pub[2] = {publish_of("127.0.0.1", 8080, 80, IPPROTO_TCP),
				     publish_of("127.0.0.1", 8081, 80, IPPROTO_TCP)};
	memset(&vm, 0, sizeof(vm));
	svc_config_defaults(&vm.cfg);
	vm.cfg.publish = pub;
	vm.cfg.npublish = 2;
	assert_int_equal(svc_net_init(&vm, &vm.cfg, &err), -1);
	assert_non_null(strstr(err.msg, "published twice"));
	assert_null(vm.net);
	pub[1].host.ss_family = AF_UNIX;
	assert_int_equal(svc_net_init(&vm, &vm.cfg, &err), -1);
	vm.cfg.npublish = 0;
	struct svc_allow al = allow_of("10.0.0.1", 5432, 0);
	al.len = 3;
	vm.cfg.allow = &al;
	vm.cfg.nallow = 1;
	assert_int_equal(svc_net_init(&vm, &vm.cfg, &err), -1);
	assert_non_null(strstr(err.msg, "--allow-connect"));
}

/* svc_config_defaults belongs to core; a minimal one for this test. */
__attribute__((weak)) void svc_config_defaults(struct svc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_tcp),
	    cmocka_unit_test(test_publish_any),
	    cmocka_unit_test(test_publish_udp),
	    cmocka_unit_test(test_allow_and_deny),
	    cmocka_unit_test(test_loopback_and_isolation),
	    cmocka_unit_test(test_unix),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_config_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
