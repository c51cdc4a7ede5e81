/* SPDX-License-Identifier: MIT */
/*
 * Sockets of service VMs: socket, socketpair, bind, listen, accept/accept4,
 * connect, send/recv (sendto, recvfrom, sendmsg, recvmsg, sendmmsg,
 * recvmmsg), shutdown, get/setsockopt, getsockname/getpeername.
 *
 * Policy (netpolicy.h): a guest inet address never reaches the host's
 * socket calls. bind() binds the host socket to the --publish address of
 * the guest's port, or to an ephemeral loopback port recorded in the VM's
 * port table; connect()/sendto() go to the real address of one of the VM's
 * own sockets, to a configured --allow-connect address, or nowhere. Data
 * moves directly between guest memory and the host socket (no proxy).
 *
 * Blocking: host sockets are O_NONBLOCK; a guest call that would block
 * waits in svc_wait_fds(), so signals and stop interrupt it, with
 * SO_RCVTIMEO/SO_SNDTIMEO as deadlines.
 *
 * Locking: struct svc_net's lock protects the policy tables and the
 * metadata of every socket of the VM (never held across a wait).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/log.h"
#include "net.h"
#include "netpolicy.h"

#define NET_MAX_IOV	 1024 /* UIO_MAXIOV */
#define NET_STACK_IOV	 16   /* iovecs on the stack; more are allocated */
#define NET_MAX_CONTROL	 4096 /* control bytes passed per message */
#define NET_MAX_OPTLEN	 256  /* option value bytes */
#define NET_MAX_MMSG	 1024 /* sendmmsg/recvmmsg vlen cap */
#define NET_UDP_PEERS	 64   /* remembered senders of a published UDP socket */
#define NET_MAX_BACKLOG	 4096
#define NET_MAX_INFLIGHT 4096 /* files in SCM_RIGHTS messages not yet received */

#ifndef SO_RCVTIMEO_NEW
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
#endif
#define SO_RCVTIMEO_OLD_ 20
#define SO_SNDTIMEO_OLD_ 21

struct net_inflight {
	dev_t dev;
	ino_t ino;
	struct svc_file *f; /* one reference held */
	unsigned count;	    /* messages carrying it, not yet received */
};

struct svc_net {
	unsigned refs; /* atomic: the VM + each socket */
	pthread_mutex_t lock;
	struct netpol pol;
	/* Host abstract-name prefixes of this VM's Unix names: guest abstract
	 * names, and guest path names when fs keeps no socket files. */
	char prefix[32];
	char pprefix[32];
	struct nb_ratelimit rl;
	struct net_inflight *inflight;
	size_t ninflight;
};

struct net_sock {
	struct svc_net *net;
	int domain; /* AF_INET, AF_INET6, AF_UNIX */
	int type;   /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	int proto;  /* IPPROTO_TCP / IPPROTO_UDP; 0 for AF_UNIX */
	bool bound, listening, v6only, published, accepted;
	unsigned cover;
	struct sockaddr_storage name; /* guest view; valid if namelen */
	socklen_t namelen;
	struct sockaddr_storage peer; /* guest view; valid if peerlen */
	socklen_t peerlen;
	int64_t rcvtimeo_ns, sndtimeo_ns; /* 0: forever */
	/* Published UDP: recent senders, who may get replies. */
	struct netpol_addr *peers; /* NET_UDP_PEERS, allocated on first use */
	unsigned npeers, peer_next;
};

/* ---- state ------------------------------------------------------------- */

static void net_get(struct svc_net *net)
{
	__atomic_add_fetch(&net->refs, 1, __ATOMIC_RELAXED);
}

static void net_put(struct svc_net *net)
{
	if (!net || __atomic_sub_fetch(&net->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	netpol_fini(&net->pol);
	free(net->inflight);
	pthread_mutex_destroy(&net->lock);
	free(net);
}

static void net_release(struct svc_file *f)
{
	struct net_sock *s = f->priv;
	if (!s)
		return;
	pthread_mutex_lock(&s->net->lock);
	netpol_port_remove(&s->net->pol, s);
	pthread_mutex_unlock(&s->net->lock);
	net_put(s->net);
	free(s->peers);
	free(s);
	f->priv = NULL;
}

bool svc_net_is_socket(const struct svc_file *f)
{
	return f && f->kind == SVC_F_SOCKET && f->release == net_release;
}

static int rule_from(const struct sockaddr_storage *ss, socklen_t len, struct netpol_addr *a)
{
	return netpol_from_sockaddr((const struct sockaddr *)ss, len, a);
}

int svc_net_init(struct svc_vm *vm, const struct svc_config *cfg, struct nb_error *err)
{
	struct svc_net *net = calloc(1, sizeof(*net));
	uint64_t rnd = 0;
	int rc = -1;

	if (!net)
		return nb_error_set(err, NB_ERESOURCE, "network state: out of memory");
	net->refs = 1;
	pthread_mutex_init(&net->lock, NULL);
	netpol_init(&net->pol);
	net->rl = (struct nb_ratelimit)NB_RATELIMIT_INIT(10, 1000000000ull);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = nb_now_ns() ^ ((uint64_t)(uintptr_t)net << 16);
	snprintf(net->prefix, sizeof(net->prefix), "nubis-%012llx/a",
		 (unsigned long long)(rnd & 0xffffffffffffull));
	snprintf(net->pprefix, sizeof(net->pprefix), "nubis-%012llx/p",
		 (unsigned long long)(rnd & 0xffffffffffffull));

	for (size_t i = 0; i < cfg->npublish; i++) {
		const struct svc_publish *p = &cfg->publish[i];
		struct netpol_addr a;
		int proto = p->proto ? p->proto : IPPROTO_TCP;
		int r = rule_from(&p->host, p->host_len, &a);
		if (r == 0)
			r = netpol_add_publish(&net->pol, &a, p->guest_port, proto);
		if (r < 0) {
			nb_error_set(err, NB_EINVAL, "--publish #%zu (guest port %u): %s", i + 1,
				     p->guest_port,
				     r == -EEXIST
					 ? "guest port published twice for one address family"
					 : "bad address, port or protocol");
			goto out;
		}
	}
	for (size_t i = 0; i < cfg->nallow; i++) {
		const struct svc_allow *p = &cfg->allow[i];
		struct netpol_addr a;
		int r = rule_from(&p->addr, p->len, &a);
		if (r == 0)
			r = netpol_add_allow(&net->pol, &a, p->proto);
		if (r < 0) {
			nb_error_set(err, NB_EINVAL,
				     "--allow-connect #%zu: bad address, port or protocol", i + 1);
			goto out;
		}
	}
	svc_vm_set_net(vm, net);
	net = NULL;
	rc = 0;
out:
	net_put(net);
	return rc;
}

void svc_net_fini(struct svc_vm *vm)
{
	struct svc_net *net = svc_vm_net(vm);
	if (!net)
		return;
	svc_vm_set_net(vm, NULL);
	/* Files still in flight in SCM_RIGHTS messages: their references end
	 * here (they may hold sockets, which hold the state: no cycle left). */
	pthread_mutex_lock(&net->lock);
	struct net_inflight *v = net->inflight;
	size_t n = net->ninflight;
	net->inflight = NULL;
	net->ninflight = 0;
	pthread_mutex_unlock(&net->lock);
	for (size_t i = 0; i < n; i++)
		svc_file_put(v[i].f);
	free(v);
	net_put(net);
}

/* ---- helpers ------------------------------------------------------------- */

static int sock_get(struct svc_thread *t, uint64_t fd, struct svc_file **fp, struct net_sock **sp)
{
	struct svc_file *f = svc_fd_get(svc_thread_vm(t), (long)(int)fd);
	if (!f)
		return -EBADF;
	if (!svc_net_is_socket(f) || !f->priv) {
		svc_file_put(f);
		return -ENOTSOCK;
	}
	*fp = f;
	*sp = f->priv;
	return 0;
}

static bool would_block_ok(const struct svc_file *f, int flags)
{
	int sf = __atomic_load_n(&f->status_flags, __ATOMIC_RELAXED);
	return !(sf & O_NONBLOCK) && !(flags & MSG_DONTWAIT);
}

static uint64_t deadline_of(int64_t timeo_ns)
{
	return timeo_ns > 0 ? nb_now_ns() + (uint64_t)timeo_ns : 0;
}

/* Wait for @ev on host @fd until @deadline (0: none): 0 ready, -EAGAIN on
 * timeout, -EINTR if a signal or stop came first. */
static int sock_wait(struct svc_thread *t, int fd, short ev, uint64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int64_t to = -1;
	if (deadline) {
		uint64_t now = nb_now_ns();
		if (now >= deadline)
			return -EAGAIN;
		to = (int64_t)(deadline - now);
	}
	int r = svc_wait_fds(t, &p, 1, to);
	if (r < 0)
		return r;
	return r == 0 ? -EAGAIN : 0;
}

/* Copy a guest sockaddr of @len bytes (as the guest gave it). */
static int addr_in(struct svc_thread *t, uint64_t gva, uint64_t len, struct sockaddr_storage *ss,
		   socklen_t *outlen)
{
	if ((int32_t)len < 0 || len > sizeof(*ss))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (len && svc_copy_in(t, ss, gva, len) < 0)
		return -EFAULT;
	*outlen = (socklen_t)len;
	return 0;
}

/* Write @sa (@len bytes) to guest @gaddr, truncated to the guest's *@glenp,
 * and the full length to *@glenp. */
static int addr_out(struct svc_thread *t, uint64_t gaddr, uint64_t glenp, const void *sa,
		    socklen_t len)
{
	int32_t glen;
	if (svc_copy_in(t, &glen, glenp, sizeof(glen)) < 0)
		return -EFAULT;
	if (glen < 0)
		return -EINVAL;
	uint32_t n = (uint32_t)glen < len ? (uint32_t)glen : len;
	if (n && svc_copy_out(t, gaddr, sa, n) < 0)
		return -EFAULT;
	uint32_t l = len;
	return svc_copy_out(t, glenp, &l, sizeof(l)) < 0 ? -EFAULT : 0;
}

/* Check that the guest can receive an address at @gaddr/@glenp before a
 * call that cannot be undone (accept). */
static int addr_out_check(struct svc_thread *t, uint64_t gaddr, uint64_t glenp)
{
	int32_t glen;
	if (!gaddr)
		return 0;
	if (svc_copy_in(t, &glen, glenp, sizeof(glen)) < 0 || !svc_uptr(t, glenp, sizeof(glen)))
		return -EFAULT;
	if (glen < 0)
		return -EINVAL;
	if (glen && !svc_uptr(t, gaddr, (uint64_t)glen))
		return -EFAULT;
	return 0;
}

static void loopback_of(struct netpol_addr *a, int family)
{
	memset(a->ip, 0, sizeof(a->ip));
	a->family = family;
	a->scope = 0;
	if (family == AF_INET) {
		a->ip[0] = 127;
		a->ip[3] = 1;
	} else {
		a->ip[15] = 1;
	}
}

/* The guest's view of a host address (peer of accept/recvfrom/getpeername):
 * a real address of one of the VM's sockets becomes loopback:vport. */
static void guest_view(struct net_sock *s, const struct sockaddr_storage *hs, socklen_t hlen,
		       struct sockaddr_storage *gs, socklen_t *glen)
{
	memset(gs, 0, sizeof(*gs));
	if (s->domain == AF_UNIX) {
		const struct sockaddr_un *hu = (const struct sockaddr_un *)hs;
		struct sockaddr_un *gu = (struct sockaddr_un *)gs;
		gu->sun_family = AF_UNIX;
		*glen = sizeof(sa_family_t);
		if (hlen > sizeof(sa_family_t) && hlen <= sizeof(*hu) && hu->sun_path[0] == 0) {
			size_t hl = hlen - sizeof(sa_family_t);
			int n = netpol_unix_abstract_out(s->net->prefix, strlen(s->net->prefix),
							 hu->sun_path, hl, gu->sun_path);
			if (n >= 0) {
				*glen = (socklen_t)(sizeof(sa_family_t) + (size_t)n);
			} else {
				/* A virtual path name: "\0" + pprefix + "/path". */
				n = netpol_unix_abstract_out(s->net->pprefix,
							     strlen(s->net->pprefix), hu->sun_path,
							     hl, gu->sun_path);
				if (n > 1 && (size_t)n < sizeof(gu->sun_path)) {
					memmove(gu->sun_path, gu->sun_path + 1, (size_t)n - 1);
					gu->sun_path[n - 1] = 0;
					*glen = (socklen_t)(sizeof(sa_family_t) + (size_t)n);
				}
			}
		}
		return;
	}
	struct netpol_addr a;
	if (netpol_from_sockaddr((const struct sockaddr *)hs, hlen, &a) == 0) {
		pthread_mutex_lock(&s->net->lock);
		const struct netpol_port *e = netpol_port_find_real(&s->net->pol, s->proto, &a);
		if (e) {
			loopback_of(&a, e->real.family);
			a.port = e->vport;
		}
		pthread_mutex_unlock(&s->net->lock);
		if (netpol_to_sockaddr(&a, s->domain, gs, glen) == 0)
			return;
	}
	gs->ss_family = (sa_family_t)s->domain;
	*glen = s->domain == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void deny_log(struct net_sock *s, const char *what, const struct netpol_addr *dst)
{
	char buf[80];
	bool ok;
	pthread_mutex_lock(&s->net->lock);
	ok = nb_ratelimit_ok(&s->net->rl);
	pthread_mutex_unlock(&s->net->lock);
	if (ok)
		nb_log(NB_LOG_WARN, "service VM: %s to %s %s denied (not --allow-connect)", what,
		       s->proto == IPPROTO_UDP ? "udp" : "tcp",
		       netpol_addr_str(dst, buf, sizeof(buf)));
}

static unsigned cover_of(const struct net_sock *s)
{
	if (s->domain == AF_INET)
		return NETPOL_COVER_V4;
	return s->v6only ? NETPOL_COVER_V6 : NETPOL_COVER_V4 | NETPOL_COVER_V6;
}

/* ---- creating sockets ---------------------------------------------------- */

static int check_type(int domain, int type, int proto, int *norm)
{
	if (domain == AF_INET || domain == AF_INET6) {
		if (type == SOCK_STREAM && (proto == 0 || proto == IPPROTO_TCP))
			*norm = IPPROTO_TCP;
		else if (type == SOCK_DGRAM && (proto == 0 || proto == IPPROTO_UDP))
			*norm = IPPROTO_UDP;
		else if (type == SOCK_RAW || type == SOCK_PACKET)
			return -EPERM;
		else if (type == SOCK_STREAM || type == SOCK_DGRAM)
			return -EPROTONOSUPPORT;
		else
			return -ESOCKTNOSUPPORT;
		return 0;
	}
	if (domain == AF_UNIX) {
		if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
			return -ESOCKTNOSUPPORT;
		if (proto != 0 && proto != PF_UNIX)
			return -EPROTONOSUPPORT;
		*norm = 0;
		return 0;
	}
	return -EAFNOSUPPORT;
}

static struct net_sock *sock_new(struct svc_net *net, int domain, int type, int proto)
{
	struct net_sock *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	net_get(net);
	s->net = net;
	s->domain = domain;
	s->type = type;
	s->proto = proto;
	return s;
}

/* Wrap host socket @hfd (taken over) with @s (taken over) as a guest fd. */
static int sock_install(struct svc_thread *t, int hfd, struct net_sock *s, int flags)
{
	struct svc_file *f =
	    svc_file_new(SVC_F_SOCKET, hfd, O_RDWR, (flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
	if (!f) {
		net_put(s->net);
		free(s);
		return -ENOMEM;
	}
	f->priv = s;
	f->release = net_release;
	return svc_fd_install(svc_thread_vm(t), f, 0, (flags & SOCK_CLOEXEC) != 0);
}

static long sys_socket(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_net *net = svc_vm_net(svc_thread_vm(t));
	int domain = (int)a[0], flags = (int)a[1] & (SOCK_NONBLOCK | SOCK_CLOEXEC);
	int type = (int)a[1] & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), proto = (int)a[2], norm;

	if (!net)
		return -EAFNOSUPPORT;
	if (type & ~0xf)
		return -EINVAL;
	int r = check_type(domain, type, proto, &norm);
	if (r < 0)
		return r;
	int hfd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, norm);
	if (hfd < 0)
		return -errno;
	struct net_sock *s = sock_new(net, domain, type, norm);
	if (!s) {
		close(hfd);
		return -ENOMEM;
	}
	return sock_install(t, hfd, s, flags);
}

static long sys_socketpair(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_net *net = svc_vm_net(svc_thread_vm(t));
	int domain = (int)a[0], flags = (int)a[1] & (SOCK_NONBLOCK | SOCK_CLOEXEC);
	int type = (int)a[1] & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), proto = (int)a[2], norm, sv[2];
	int out[2];

	if (!net)
		return -EAFNOSUPPORT;
	if (type & ~0xf)
		return -EINVAL;
	int r = check_type(domain, type, proto, &norm);
	if (r < 0)
		return r;
	if (domain != AF_UNIX)
		return -EOPNOTSUPP;
	if (!svc_uptr(t, a[3], sizeof(out)))
		return -EFAULT;
	if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		struct net_sock *s = sock_new(net, AF_UNIX, type, 0);
		if (!s) {
			close(sv[i]);
			if (i == 0)
				close(sv[1]);
			return -ENOMEM;
		}
		out[i] = sock_install(t, sv[i], s, flags);
		if (out[i] < 0) {
			/* The first end stays installed (no fd-table removal in
			 * svc.h); its peer is closed, so it reads EOF. */
			if (i == 0)
				close(sv[1]);
			return out[i];
		}
	}
	return svc_copy_out(t, a[3], out, sizeof(out));
}

/* ---- bind / listen --------------------------------------------------------- */

/* Bind inet socket @s to guest address @want (port 0: ephemeral). Caller
 * does not hold the lock. */
static int inet_bind(struct svc_file *f, struct net_sock *s, const struct netpol_addr *want)
{
	struct svc_net *net = s->net;
	struct netpol_addr real;
	struct sockaddr_storage hs;
	socklen_t hl;
	int r = 0;

	if (!netpol_is_local(want))
		return -EADDRNOTAVAIL;
	if (s->domain == AF_INET && want->family != AF_INET)
		return -EAFNOSUPPORT;
	pthread_mutex_lock(&net->lock);
	if (s->bound) {
		r = -EINVAL;
		goto out;
	}
	unsigned cover = cover_of(s);
	if (s->domain == AF_INET6 && want->family == AF_INET) /* ::ffff:a.b.c.d */
		cover = s->v6only ? 0 : NETPOL_COVER_V4;
	else if (s->domain == AF_INET6 && !netpol_is_any(want)) /* [::1]: IPv6 only */
		cover = NETPOL_COVER_V6;
	if (!cover) {
		r = -EADDRNOTAVAIL;
		goto out;
	}
	const struct netpol_rule *rule =
	    want->port ? netpol_published(&net->pol, s->proto, want->port, cover) : NULL;
	if (want->port) {
		for (unsigned c = NETPOL_COVER_V4; c <= NETPOL_COVER_V6; c <<= 1)
			if ((cover & c) &&
			    netpol_port_find(&net->pol, s->proto, want->port,
					     c == NETPOL_COVER_V4 ? AF_INET : AF_INET6)) {
				r = -EADDRINUSE;
				goto out;
			}
	}
	if (rule) {
		real = rule->addr;
		bool v4 = real.family == AF_INET;
		if ((v4 && !(cover & NETPOL_COVER_V4)) || (!v4 && !(cover & NETPOL_COVER_V6))) {
			/* The other family's "any": this family's "any". */
			memset(real.ip, 0, sizeof(real.ip));
			real.family = v4 ? AF_INET6 : AF_INET;
			real.scope = 0;
		}
	} else {
		memset(&real, 0, sizeof(real));
		loopback_of(&real, (cover & NETPOL_COVER_V4) ? AF_INET : AF_INET6);
	}
	r = netpol_to_sockaddr(&real, s->domain, &hs, &hl);
	if (r < 0)
		goto out;
	if (s->domain == AF_INET6) {
		int v = s->v6only;
		setsockopt(f->host_fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
	}
	if (rule && s->proto == IPPROTO_TCP) {
		/* A restarted service gets its published port back while old
		 * connections are in TIME_WAIT (Linux never lets it share a
		 * listening port this way). */
		int one = 1;
		setsockopt(f->host_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (bind(f->host_fd, (struct sockaddr *)&hs, hl) < 0) {
		r = -errno;
		goto out;
	}
	hl = sizeof(hs);
	if (getsockname(f->host_fd, (struct sockaddr *)&hs, &hl) < 0 ||
	    netpol_from_sockaddr((struct sockaddr *)&hs, hl, &real) < 0) {
		r = -EADDRNOTAVAIL;
		goto out;
	}
	uint16_t vport =
	    want->port ? want->port : netpol_port_alloc(&net->pol, s->proto, real.port);
	if (!vport) {
		r = -EADDRINUSE;
		goto out;
	}
	r = netpol_port_add(&net->pol, s->proto, vport, cover, &real, s);
	if (r < 0)
		goto out;
	struct netpol_addr g = *want;
	g.port = vport;
	if (netpol_to_sockaddr(&g, s->domain, &s->name, &s->namelen) < 0)
		s->namelen = 0;
	s->bound = true;
	s->published = rule != NULL;
	s->cover = cover;
out:
	pthread_mutex_unlock(&net->lock);
	return r;
}

/* Implicit bind of an unbound inet socket before it talks to the VM's own
 * sockets, so that replies can find it (its port is in the table). */
static int inet_autobind(struct svc_file *f, struct net_sock *s, int dst_family)
{
	struct netpol_addr any;
	pthread_mutex_lock(&s->net->lock);
	bool bound = s->bound;
	pthread_mutex_unlock(&s->net->lock);
	if (bound)
		return 0;
	memset(&any, 0, sizeof(any));
	any.family = s->domain; /* 0.0.0.0 or [::] */
	if (s->domain == AF_INET6 && dst_family == AF_INET6)
		any.ip[15] = 1; /* [::1]: to reach an IPv6-only socket */
	int r = inet_bind(f, s, &any);
	return r == -EINVAL ? 0 : r; /* bound meanwhile by another thread */
}

/* AF_UNIX guest address -> host address. Abstract names get the VM's
 * prefix. A path, when fs keeps socket files (svc_fs_sock_path), is
 * resolved in the VM's filesystem: bind (@create) names
 * "/proc/self/fd/DIR/NAME"; connect opens the socket inode
 * O_PATH|O_NOFOLLOW (a symlink planted by the guest is refused) and names
 * "/proc/self/fd/N". Otherwise a path is a name in the VM's private
 * abstract namespace ("\0nubis-ID/p/normalized/path"): no file appears,
 * and no host socket file can be reached. *@tmpfd: close after the call. */
static int unix_addr(struct svc_thread *t, struct net_sock *s, const struct sockaddr_storage *gs,
		     socklen_t glen, bool create, struct sockaddr_un *hu, socklen_t *hlen,
		     int *tmpfd)
{
	const struct sockaddr_un *gu = (const struct sockaddr_un *)gs;
	size_t plen = glen > sizeof(sa_family_t) ? glen - sizeof(sa_family_t) : 0;

	*tmpfd = -1;
	memset(hu, 0, sizeof(*hu));
	hu->sun_family = AF_UNIX;
	if (glen < sizeof(sa_family_t) || glen > sizeof(*gu) || gu->sun_family != AF_UNIX)
		return -EINVAL;
	if (plen == 0) {
		if (!create)
			return -EINVAL;
		*hlen = sizeof(sa_family_t); /* autobind */
		return 0;
	}
	if (gu->sun_path[0] == 0) {
		int n = netpol_unix_abstract_in(s->net->prefix, strlen(s->net->prefix),
						gu->sun_path, plen, hu->sun_path);
		if (n < 0)
			return n;
		*hlen = (socklen_t)(sizeof(sa_family_t) + (size_t)n);
		return 0;
	}
	char path[sizeof(gu->sun_path) + 1], name[256];
	size_t n = strnlen(gu->sun_path, plen);
	memcpy(path, gu->sun_path, n);
	path[n] = 0;
	if (!svc_fs_sock_path) {
		char norm[sizeof(gu->sun_path)];
		int k = netpol_unix_path_norm(path, n, norm, sizeof(norm));
		if (k < 0)
			return k;
		char g[sizeof(gu->sun_path) + 1];
		g[0] = 0; /* as an abstract name of the path namespace */
		memcpy(g + 1, norm, (size_t)k);
		k = netpol_unix_abstract_in(s->net->pprefix, strlen(s->net->pprefix), g,
					    (size_t)k + 1, hu->sun_path);
		if (k < 0)
			return k;
		*hlen = (socklen_t)(sizeof(sa_family_t) + (size_t)k);
		return 0;
	}
	int dirfd = -1;
	int r = svc_fs_sock_path(svc_thread_vm(t), path, create, &dirfd, name, sizeof(name));
	if (r < 0)
		return r;
	if (create) {
		int k = snprintf(hu->sun_path, sizeof(hu->sun_path), "/proc/self/fd/%d/%s", dirfd,
				 name);
		if (k < 0 || (size_t)k >= sizeof(hu->sun_path)) {
			close(dirfd);
			return -ENAMETOOLONG;
		}
		*tmpfd = dirfd;
		*hlen = (socklen_t)(sizeof(sa_family_t) + (size_t)k + 1);
		return 0;
	}
	int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	r = pfd < 0 ? -errno : 0;
	close(dirfd);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(pfd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		close(pfd);
		return -ECONNREFUSED;
	}
	snprintf(hu->sun_path, sizeof(hu->sun_path), "/proc/self/fd/%d", pfd);
	*tmpfd = pfd;
	*hlen = (socklen_t)(sizeof(sa_family_t) + strlen(hu->sun_path) + 1);
	return 0;
}

static long sys_bind(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	struct sockaddr_storage gs;
	socklen_t glen;
	int r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	r = addr_in(t, a[1], a[2], &gs, &glen);
	if (r < 0)
		goto out;
	if (s->domain == AF_UNIX) {
		struct sockaddr_un hu;
		socklen_t hl;
		int tmp;
		r = unix_addr(t, s, &gs, glen, true, &hu, &hl, &tmp);
		if (r < 0)
			goto out;
		r = bind(f->host_fd, (struct sockaddr *)&hu, hl) < 0 ? -errno : 0;
		if (tmp >= 0)
			close(tmp);
		if (r == 0 && glen > sizeof(sa_family_t)) {
			pthread_mutex_lock(&s->net->lock);
			memcpy(&s->name, &gs, glen);
			s->namelen = glen;
			s->bound = true;
			pthread_mutex_unlock(&s->net->lock);
		}
		goto out;
	}
	struct netpol_addr want;
	r = netpol_parse(&gs, glen, s->domain, &want);
	if (r == 1)
		r = s->domain == AF_INET ? -EAFNOSUPPORT : -EINVAL;
	if (r < 0)
		goto out;
	r = inet_bind(f, s, &want);
out:
	svc_file_put(f);
	return r;
}

static long sys_listen(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	int r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	int backlog = (int)a[1];
	if (backlog < 0 || backlog > NET_MAX_BACKLOG)
		backlog = NET_MAX_BACKLOG;
	if (s->domain != AF_UNIX && s->type == SOCK_STREAM)
		r = inet_autobind(f, s, s->domain);
	if (r == 0)
		r = listen(f->host_fd, backlog) < 0 ? -errno : 0;
	if (r == 0) {
		pthread_mutex_lock(&s->net->lock);
		s->listening = true;
		pthread_mutex_unlock(&s->net->lock);
	}
	svc_file_put(f);
	return r;
}

/* ---- accept ---------------------------------------------------------------- */

static long do_accept(struct svc_thread *t, const uint64_t a[6], int flags)
{
	struct svc_file *f;
	struct net_sock *s;
	struct sockaddr_storage hs, gs;
	socklen_t hl, gl;
	int r, hfd;

	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	r = addr_out_check(t, a[1], a[2]);
	if (r < 0)
		goto out;
	uint64_t deadline = deadline_of(s->rcvtimeo_ns);
	for (;;) {
		hl = sizeof(hs);
		hfd =
		    accept4(f->host_fd, (struct sockaddr *)&hs, &hl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (hfd >= 0)
			break;
		r = -errno;
		if (r == -EINTR)
			continue;
		if ((r != -EAGAIN) || !would_block_ok(f, 0))
			goto out;
		r = sock_wait(t, f->host_fd, POLLIN, deadline);
		if (r < 0)
			goto out;
	}
	struct net_sock *ns = sock_new(s->net, s->domain, s->type, s->proto);
	if (!ns) {
		close(hfd);
		r = -ENOMEM;
		goto out;
	}
	guest_view(ns, &hs, hl, &gs, &gl);
	pthread_mutex_lock(&s->net->lock);
	ns->v6only = s->v6only;
	ns->accepted = true;
	ns->rcvtimeo_ns = s->rcvtimeo_ns;
	ns->sndtimeo_ns = s->sndtimeo_ns;
	memcpy(&ns->peer, &gs, gl);
	ns->peerlen = gl;
	if (s->namelen) {
		memcpy(&ns->name, &s->name, s->namelen);
		ns->namelen = s->namelen;
	}
	pthread_mutex_unlock(&s->net->lock);
	if (s->domain != AF_UNIX && ns->namelen) {
		struct netpol_addr me;
		if (netpol_parse(&ns->name, ns->namelen, ns->domain, &me) == 0 &&
		    netpol_is_any(&me)) {
			loopback_of(&me, me.family);
			netpol_to_sockaddr(&me, ns->domain, &ns->name, &ns->namelen);
		}
	}
	r = sock_install(t, hfd, ns, flags);
	if (r >= 0 && a[1]) {
		/* Checked above; only a racing unmap can fail here. */
		int w = addr_out(t, a[1], a[2], &gs, gl);
		(void)w;
	}
out:
	svc_file_put(f);
	return r;
}

static long sys_accept(struct svc_thread *t, const uint64_t a[6])
{
	return do_accept(t, a, 0);
}

static long sys_accept4(struct svc_thread *t, const uint64_t a[6])
{
	return do_accept(t, a, (int)a[3]);
}

/* ---- connect --------------------------------------------------------------- */

/* A guest destination address: like netpol_parse(), and an IPv6 datagram
 * socket also takes an AF_INET address (as Linux does, unless V6ONLY). */
static int dest_parse(struct net_sock *s, const struct sockaddr_storage *gs, socklen_t glen,
		      struct netpol_addr *dst)
{
	int r = netpol_parse(gs, glen, s->domain, dst);
	if (r == -EAFNOSUPPORT && s->domain == AF_INET6 && s->type == SOCK_DGRAM &&
	    gs->ss_family == AF_INET) {
		r = netpol_parse(gs, glen, AF_INET, dst);
		if (r == 0 && s->v6only)
			r = -ENETUNREACH;
	}
	return r;
}

/* Where a guest inet destination goes: 0 with *@hs set, or -errno. */
static int inet_route(struct svc_file *f, struct net_sock *s, const struct netpol_addr *dst,
		      struct sockaddr_storage *hs, socklen_t *hl, const char *what)
{
	struct netpol_addr real;
	enum netpol_verdict v;

	pthread_mutex_lock(&s->net->lock);
	v = netpol_decide(&s->net->pol, s->proto, dst, &real);
	if (v == NETPOL_DENY && s->published && s->proto == IPPROTO_UDP) {
		/* Replies of a published UDP socket to whoever wrote to it. */
		for (unsigned i = 0; i < s->npeers; i++)
			if (netpol_addr_eq(&s->peers[i], dst)) {
				real = s->peers[i];
				v = NETPOL_ALLOWED;
				break;
			}
	}
	pthread_mutex_unlock(&s->net->lock);
	if (v == NETPOL_DENY) {
		deny_log(s, what, dst);
		return s->proto == IPPROTO_TCP ? -ECONNREFUSED : -ENETUNREACH;
	}
	if (v == NETPOL_INTERNAL) {
		int r = inet_autobind(f, s, real.family);
		if (r < 0)
			return r;
	}
	if (netpol_to_sockaddr(&real, s->domain, hs, hl) < 0)
		return s->proto == IPPROTO_TCP ? -ECONNREFUSED : -ENETUNREACH;
	return 0;
}

static long sys_connect(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	struct sockaddr_storage gs, hs;
	socklen_t glen, hl = 0;
	int tmp = -1;
	int r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	r = addr_in(t, a[1], a[2], &gs, &glen);
	if (r < 0)
		goto out;
	if (s->domain == AF_UNIX) {
		r = unix_addr(t, s, &gs, glen, false, (struct sockaddr_un *)&hs, &hl, &tmp);
		if (r < 0)
			goto out;
	} else {
		struct netpol_addr dst;
		r = dest_parse(s, &gs, glen, &dst);
		if (r == 1) { /* AF_UNSPEC: dissolve the association */
			memset(&hs, 0, sizeof(hs));
			hs.ss_family = AF_UNSPEC;
			r = connect(f->host_fd, (struct sockaddr *)&hs, sizeof(sa_family_t)) < 0
				? -errno
				: 0;
			pthread_mutex_lock(&s->net->lock);
			s->peerlen = 0;
			pthread_mutex_unlock(&s->net->lock);
			goto out;
		}
		if (r < 0)
			goto out;
		r = inet_route(f, s, &dst, &hs, &hl, "connect");
		if (r < 0)
			goto out;
	}
	r = connect(f->host_fd, (struct sockaddr *)&hs, hl) < 0 ? -errno : 0;
	if (r == -EAGAIN && s->domain == AF_UNIX && would_block_ok(f, 0)) {
		/* Unix listener's backlog full: retry until there is room. */
		uint64_t deadline = deadline_of(s->sndtimeo_ns);
		while (r == -EAGAIN) {
			uint64_t left;
			if (deadline && nb_now_ns() >= deadline)
				break;
			r = svc_sleep(t, 1000000, &left);
			if (r < 0)
				break;
			r = connect(f->host_fd, (struct sockaddr *)&hs, hl) < 0 ? -errno : 0;
		}
	}
	if (r == -EINPROGRESS && would_block_ok(f, 0)) {
		r = sock_wait(t, f->host_fd, POLLOUT, deadline_of(s->sndtimeo_ns));
		if (r == -EAGAIN)
			r = -EINPROGRESS;
		if (r == 0) {
			int err = 0;
			socklen_t el = sizeof(err);
			if (getsockopt(f->host_fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				err = errno;
			r = -err;
		}
	}
	if (r == 0 || r == -EINPROGRESS) {
		pthread_mutex_lock(&s->net->lock);
		memcpy(&s->peer, &gs, glen);
		s->peerlen = glen;
		if (s->domain != AF_UNIX) {
			struct netpol_addr dst;
			if (dest_parse(s, &gs, glen, &dst) == 0)
				netpol_to_sockaddr(&dst, s->domain, &s->peer, &s->peerlen);
		}
		pthread_mutex_unlock(&s->net->lock);
	}
out:
	if (tmp >= 0)
		close(tmp);
	svc_file_put(f);
	return r;
}

/* ---- send / receive ------------------------------------------------------- */

/* The guest's struct msghdr (x86-64 layout, same as the host's). */
struct gmsg {
	uint64_t name;
	uint32_t namelen;
	uint32_t pad0;
	uint64_t iov;
	uint64_t iovlen;
	uint64_t control;
	uint64_t controllen;
	int32_t flags;
	uint32_t pad1;
};
_Static_assert(sizeof(struct gmsg) == sizeof(struct msghdr), "msghdr layout");

struct giov {
	uint64_t base;
	uint64_t len;
};

/* Host iovecs pointing into guest memory. */
struct net_iov {
	struct iovec stack[NET_STACK_IOV];
	struct iovec *v;     /* current first iovec */
	struct iovec *alloc; /* heap array, or NULL */
	size_t n;
	uint64_t total;
};

static void iov_free(struct net_iov *io)
{
	free(io->alloc);
	io->alloc = NULL;
	io->v = NULL;
}

static int iov_one(struct svc_thread *t, struct net_iov *io, uint64_t base, uint64_t len)
{
	io->v = io->stack;
	io->alloc = NULL;
	io->n = 0;
	io->total = 0;
	if (len > INT_MAX)
		len = INT_MAX & ~4095ull;
	if (len) {
		void *p = svc_uptr(t, base, len);
		if (!p)
			return -EFAULT;
		io->stack[0] = (struct iovec){p, len};
		io->n = 1;
		io->total = len;
	}
	return 0;
}

static int iov_load(struct svc_thread *t, struct net_iov *io, uint64_t gva, uint64_t n)
{
	io->v = io->stack;
	io->alloc = NULL;
	io->n = 0;
	io->total = 0;
	if (n > NET_MAX_IOV)
		return -EMSGSIZE;
	if (n > NET_STACK_IOV) {
		io->alloc = calloc(n, sizeof(*io->alloc));
		if (!io->alloc)
			return -ENOMEM;
		io->v = io->alloc;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct giov g;
		if (svc_copy_in(t, &g, gva + i * sizeof(g), sizeof(g)) < 0)
			goto fault;
		if ((int64_t)g.len < 0)
			goto inval;
		if (g.len == 0)
			continue;
		if (io->total + g.len > INT_MAX) /* MAX_RW_COUNT-like cap */
			g.len = INT_MAX - io->total;
		if (g.len == 0)
			break;
		void *p = svc_uptr(t, g.base, g.len);
		if (!p)
			goto fault;
		io->v[io->n++] = (struct iovec){p, g.len};
		io->total += g.len;
	}
	return 0;
fault:
	iov_free(io);
	return -EFAULT;
inval:
	iov_free(io);
	return -EINVAL;
}

/* Drop @n sent/received bytes from the front of @io. */
static void iov_advance(struct net_iov *io, size_t n)
{
	while (n && io->n) {
		if (n < io->v[0].iov_len) {
			io->v[0].iov_base = (char *)io->v[0].iov_base + n;
			io->v[0].iov_len -= n;
			return;
		}
		n -= io->v[0].iov_len;
		io->v++;
		io->n--;
	}
}

/* ---- SCM_RIGHTS ---- */

static void inflight_note(struct svc_net *net, struct svc_file *f)
{
	struct stat st;
	if (fstat(f->host_fd, &st) < 0)
		return;
	pthread_mutex_lock(&net->lock);
	for (size_t i = 0; i < net->ninflight; i++)
		if (net->inflight[i].f == f) {
			net->inflight[i].count++;
			goto out;
		}
	if (net->ninflight < NET_MAX_INFLIGHT) {
		struct net_inflight *nv =
		    realloc(net->inflight, (net->ninflight + 1) * sizeof(*nv));
		if (nv) {
			net->inflight = nv;
			svc_file_get(f);
			nv[net->ninflight++] = (struct net_inflight){
			    .dev = st.st_dev, .ino = st.st_ino, .f = f, .count = 1};
		}
	}
out:
	pthread_mutex_unlock(&net->lock);
}

/* Whether host fds @a and @b (same device and inode) are one open file.
 * kcmp() would say it exactly but is outside the monitor's seccomp
 * profile; a socket has a single open file, a pipe end is told by its
 * access mode, other files by access mode, status flags and offset. */
static bool same_file(int a, int b, const struct stat *st)
{
	int fa = fcntl(a, F_GETFL), fb = fcntl(b, F_GETFL);
	if (fa < 0 || fb < 0)
		return false;
	if (S_ISSOCK(st->st_mode))
		return true;
	if ((fa & O_ACCMODE) != (fb & O_ACCMODE))
		return false;
	if (S_ISFIFO(st->st_mode))
		return true;
	return fa == fb && lseek(a, 0, SEEK_CUR) == lseek(b, 0, SEEK_CUR);
}

/* A host fd received in SCM_RIGHTS (taken over) as a guest file: the
 * guest's own file if it was sent from this VM, else a new wrapper. */
static int received_fd(struct svc_thread *t, struct svc_net *net, int hfd, bool cloexec)
{
	struct svc_file *f = NULL;
	struct stat st;

	if (fstat(hfd, &st) < 0) {
		close(hfd);
		return -EBADF;
	}
	pthread_mutex_lock(&net->lock);
	for (size_t i = 0; i < net->ninflight; i++) {
		struct net_inflight *e = &net->inflight[i];
		if (e->dev != st.st_dev || e->ino != st.st_ino ||
		    !same_file(e->f->host_fd, hfd, &st))
			continue;
		f = e->f;
		svc_file_get(f);
		if (--e->count == 0) {
			svc_file_put(e->f); /* f still holds one */
			*e = net->inflight[--net->ninflight];
		}
		break;
	}
	pthread_mutex_unlock(&net->lock);
	if (f) {
		close(hfd);
		return svc_fd_install(svc_thread_vm(t), f, 0, cloexec);
	}
	int fl = fcntl(hfd, F_GETFL);
	fcntl(hfd, F_SETFL, (fl < 0 ? 0 : fl) | O_NONBLOCK);
	int acc = fl < 0 ? O_RDWR : (fl & O_ACCMODE);
	if (S_ISSOCK(st.st_mode)) {
		int dom = 0, type = 0, proto = 0;
		socklen_t l = sizeof(int);
		getsockopt(hfd, SOL_SOCKET, SO_DOMAIN, &dom, &l);
		l = sizeof(int);
		getsockopt(hfd, SOL_SOCKET, SO_TYPE, &type, &l);
		l = sizeof(int);
		getsockopt(hfd, SOL_SOCKET, SO_PROTOCOL, &proto, &l);
		if (dom == AF_UNIX)
			proto = 0;
		struct net_sock *s = (dom == AF_UNIX || dom == AF_INET || dom == AF_INET6)
					 ? sock_new(net, dom, type, proto)
					 : NULL;
		if (!s) {
			close(hfd);
			return -ENOMEM;
		}
		s->bound = true; /* never rebound by us */
		return sock_install(t, hfd, s, cloexec ? SOCK_CLOEXEC : 0);
	}
	enum svc_file_kind k = S_ISFIFO(st.st_mode)  ? SVC_F_PIPE
			       : S_ISDIR(st.st_mode) ? SVC_F_DIR
						     : SVC_F_FILE;
	struct svc_file *nf = svc_file_new(k, hfd, acc, 0);
	if (!nf)
		return -ENOMEM;
	return svc_fd_install(svc_thread_vm(t), nf, 0, cloexec);
}

/* Guest control messages -> host: only SCM_RIGHTS on Unix sockets. The
 * files are returned in @files (references) for after the send. */
static int control_in(struct svc_thread *t, struct net_sock *s, const struct gmsg *gm,
		      unsigned char *hbuf, size_t *hlen, struct svc_file **files, unsigned *nfiles)
{
	unsigned char gbuf[NET_MAX_CONTROL];
	size_t glen = gm->controllen, off = 0, hoff = 0;

	*hlen = 0;
	*nfiles = 0;
	if (glen == 0)
		return 0;
	if (glen > sizeof(gbuf))
		return -ENOBUFS;
	if (svc_copy_in(t, gbuf, gm->control, glen) < 0)
		return -EFAULT;
	while (off + sizeof(struct cmsghdr) <= glen) {
		struct cmsghdr ch;
		memcpy(&ch, gbuf + off, sizeof(ch));
		if (ch.cmsg_len < sizeof(ch) || ch.cmsg_len > glen - off)
			return -EINVAL;
		if (s->domain != AF_UNIX || ch.cmsg_level != SOL_SOCKET ||
		    ch.cmsg_type != SCM_RIGHTS)
			return -EINVAL;
		size_t n = (ch.cmsg_len - sizeof(ch)) / sizeof(int);
		if (*nfiles + n > 253) /* SCM_MAX_FD */
			return -EINVAL;
		struct cmsghdr hh = ch;
		hh.cmsg_len = CMSG_LEN(n * sizeof(int));
		if (hoff + CMSG_SPACE(n * sizeof(int)) > NET_MAX_CONTROL)
			return -ENOBUFS;
		memcpy(hbuf + hoff, &hh, sizeof(hh));
		for (size_t i = 0; i < n; i++) {
			int gfd;
			memcpy(&gfd, gbuf + off + sizeof(ch) + i * sizeof(int), sizeof(int));
			struct svc_file *f = svc_fd_get(svc_thread_vm(t), gfd);
			if (!f)
				return -EBADF;
			files[(*nfiles)++] = f;
			memcpy(hbuf + hoff + sizeof(hh) + i * sizeof(int), &f->host_fd,
			       sizeof(int));
		}
		hoff += CMSG_SPACE(n * sizeof(int));
		off += CMSG_ALIGN(ch.cmsg_len);
	}
	*hlen = hoff;
	return 0;
}

/* Host control messages -> guest: SCM_RIGHTS fds become guest fds, other
 * messages are copied. Returns the guest bytes written; sets MSG_CTRUNC. */
static size_t control_out(struct svc_thread *t, struct net_sock *s, struct msghdr *hm,
			  const struct gmsg *gm, bool cloexec, int *gflags)
{
	unsigned char out[NET_MAX_CONTROL];
	size_t cap = gm->controllen < sizeof(out) ? gm->controllen : sizeof(out), used = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(hm); c; c = CMSG_NXTHDR(hm, c)) {
		size_t off =
		    (size_t)((unsigned char *)CMSG_DATA(c) - (unsigned char *)hm->msg_control);
		if (c->cmsg_len < CMSG_LEN(0) || off > hm->msg_controllen)
			break;
		size_t dlen = c->cmsg_len - CMSG_LEN(0);
		if (dlen > hm->msg_controllen - off) /* truncated (MSG_CTRUNC) */
			dlen = hm->msg_controllen - off;
		bool rights = c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS;
		if (rights) {
			size_t n = dlen / sizeof(int);
			int *fds = (int *)CMSG_DATA(c);
			for (size_t i = 0; i < n; i++) {
				int hfd = fds[i];
				fds[i] = used + CMSG_SPACE((i + 1) * sizeof(int)) <= cap
					     ? received_fd(t, s->net, hfd, cloexec)
					     : (close(hfd), -1);
				if (fds[i] < 0) {
					*gflags |= MSG_CTRUNC;
					n = i;
					/* Close the rest. */
					for (size_t j = i + 1; j < dlen / sizeof(int); j++)
						close(fds[j]);
					break;
				}
			}
			dlen = n * sizeof(int);
			if (n == 0)
				continue;
		}
		if (used + CMSG_LEN(dlen) > cap) {
			*gflags |= MSG_CTRUNC;
			break;
		}
		struct cmsghdr h = *c;
		h.cmsg_len = CMSG_LEN(dlen);
		memcpy(out + used, &h, sizeof(h));
		memcpy(out + used + sizeof(h), CMSG_DATA(c), dlen);
		used += CMSG_SPACE(dlen) <= cap ? CMSG_SPACE(dlen) : CMSG_LEN(dlen);
	}
	if (used && svc_copy_out(t, gm->control, out, used) < 0)
		return 0;
	return used;
}

#define SEND_FLAGS                                                                                 \
	(MSG_OOB | MSG_DONTWAIT | MSG_EOR | MSG_MORE | MSG_NOSIGNAL | MSG_CONFIRM | MSG_DONTROUTE)
#define RECV_FLAGS (MSG_OOB | MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT | MSG_WAITALL | MSG_CMSG_CLOEXEC)

/* Send @io (and @gm's name/control if @gm) on @f; the core of every send. */
static long do_send(struct svc_thread *t, struct svc_file *f, struct net_sock *s,
		    struct net_iov *io, uint64_t gname, uint32_t gnamelen, const struct gmsg *gm,
		    int flags)
{
	struct sockaddr_storage gs, hs;
	socklen_t glen = 0, hl = 0;
	unsigned char cbuf[NET_MAX_CONTROL] __attribute__((aligned(8)));
	struct svc_file *files[253];
	unsigned nfiles = 0;
	size_t clen = 0;
	int tmp = -1;
	long r;

	if (flags & MSG_FASTOPEN)
		return -EOPNOTSUPP;
	if (gname && gnamelen) {
		r = addr_in(t, gname, gnamelen, &gs, &glen);
		if (r < 0)
			return r;
		if (s->domain == AF_UNIX) {
			r = unix_addr(t, s, &gs, glen, false, (struct sockaddr_un *)&hs, &hl, &tmp);
			if (r < 0)
				return r;
		} else if (s->type == SOCK_DGRAM) {
			struct netpol_addr dst;
			r = dest_parse(s, &gs, glen, &dst);
			if (r == 1)
				r = -EINVAL;
			if (r < 0)
				return r;
			r = inet_route(f, s, &dst, &hs, &hl, "sendto");
			if (r < 0)
				return r;
		} /* TCP: the name is ignored, as on Linux for a connected socket */
	}
	if (gm) {
		r = control_in(t, s, gm, cbuf, &clen, files, &nfiles);
		if (r < 0)
			goto out;
	}
	struct msghdr hm = {
	    .msg_name = hl ? &hs : NULL,
	    .msg_namelen = hl,
	    .msg_iov = io->v,
	    .msg_iovlen = io->n,
	    .msg_control = clen ? cbuf : NULL,
	    .msg_controllen = clen,
	};
	int hflags = (flags & SEND_FLAGS) | MSG_DONTWAIT | MSG_NOSIGNAL;
	bool block = would_block_ok(f, flags);
	uint64_t deadline = deadline_of(s->sndtimeo_ns), sent = 0;
	for (;;) {
		ssize_t n = sendmsg(f->host_fd, &hm, hflags);
		if (n >= 0) {
			sent += (uint64_t)n;
			/* A blocking stream send returns when all is sent. */
			if (!block || s->type != SOCK_STREAM || sent >= io->total)
				break;
			iov_advance(io, (size_t)n);
			hm.msg_iov = io->v;
			hm.msg_iovlen = io->n;
			hm.msg_control = NULL; /* sent with the first bytes */
			hm.msg_controllen = 0;
			continue;
		}
		r = -errno;
		if (r == -EINTR)
			continue;
		if (r == -EAGAIN && block) {
			r = sock_wait(t, f->host_fd, POLLOUT, deadline);
			if (r == 0)
				continue;
		}
		if (sent)
			break; /* the partial count; the error comes next time */
		if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
			svc_signal_thread(t, SIGPIPE);
		goto out;
	}
	r = (long)sent;
	for (unsigned i = 0; i < nfiles; i++)
		inflight_note(s->net, files[i]);
out:
	for (unsigned i = 0; i < nfiles; i++)
		svc_file_put(files[i]);
	if (tmp >= 0)
		close(tmp);
	return r;
}

/* Remember a sender of a published UDP socket (replies may go to it). */
static void note_peer(struct net_sock *s, const struct sockaddr_storage *hs, socklen_t hl)
{
	struct netpol_addr a;
	if (!s->published || s->proto != IPPROTO_UDP ||
	    netpol_from_sockaddr((const struct sockaddr *)hs, hl, &a) < 0)
		return;
	pthread_mutex_lock(&s->net->lock);
	for (unsigned i = 0; i < s->npeers; i++)
		if (netpol_addr_eq(&s->peers[i], &a))
			goto out;
	if (!s->peers && !(s->peers = calloc(NET_UDP_PEERS, sizeof(*s->peers))))
		goto out;
	s->peers[s->peer_next] = a;
	s->peer_next = (s->peer_next + 1) % NET_UDP_PEERS;
	if (s->npeers < NET_UDP_PEERS)
		s->npeers++;
out:
	pthread_mutex_unlock(&s->net->lock);
}

/* Receive into @io; the source address goes to @gname/@gnamelenp (recvfrom)
 * or into @gm (recvmsg: name, control, flags written back at @gmaddr). */
static long do_recv(struct svc_thread *t, struct svc_file *f, struct net_sock *s,
		    struct net_iov *io, uint64_t gname, uint64_t gnamelenp, struct gmsg *gm,
		    uint64_t gmaddr, int flags)
{
	struct sockaddr_storage hs, gs;
	unsigned char cbuf[NET_MAX_CONTROL] __attribute__((aligned(8)));
	long r;

	if (flags & MSG_ERRQUEUE)
		return -EAGAIN;
	size_t ccap = gm ? (gm->controllen < sizeof(cbuf) ? gm->controllen : sizeof(cbuf)) : 0;
	if (gm && gm->controllen && !svc_uptr(t, gm->control, ccap))
		return -EFAULT;
	struct msghdr hm = {
	    .msg_name = &hs,
	    .msg_namelen = sizeof(hs),
	    .msg_iov = io->v,
	    .msg_iovlen = io->n,
	    .msg_control = ccap ? cbuf : NULL,
	    .msg_controllen = ccap,
	};
	int hflags = (flags & RECV_FLAGS & ~MSG_WAITALL) | MSG_DONTWAIT | MSG_CMSG_CLOEXEC;
	bool block = would_block_ok(f, flags);
	bool waitall =
	    (flags & MSG_WAITALL) && block && s->type == SOCK_STREAM && !(flags & MSG_PEEK);
	uint64_t deadline = deadline_of(s->rcvtimeo_ns), got = 0;
	socklen_t namelen = 0;
	int mflags = 0;
	size_t cused = 0;
	for (;;) {
		ssize_t n = recvmsg(f->host_fd, &hm, hflags);
		if (n >= 0) {
			if (got == 0) {
				namelen = hm.msg_namelen;
				mflags = hm.msg_flags & ~MSG_CMSG_CLOEXEC;
				if (gm && hm.msg_controllen)
					cused =
					    control_out(t, s, &hm, gm,
							(flags & MSG_CMSG_CLOEXEC) != 0, &mflags);
			}
			got += (uint64_t)n;
			if (!waitall || n == 0 || got >= io->total)
				break;
			iov_advance(io, (size_t)n);
			hm.msg_iov = io->v;
			hm.msg_iovlen = io->n;
			hm.msg_name = NULL;
			hm.msg_namelen = 0;
			hm.msg_control = NULL;
			hm.msg_controllen = 0;
			continue;
		}
		r = -errno;
		if (r == -EINTR)
			continue;
		if (r == -EAGAIN && block) {
			r = sock_wait(t, f->host_fd, POLLIN, deadline);
			if (r == 0)
				continue;
		}
		if (got)
			break;
		return r;
	}
	socklen_t gl = 0;
	if (namelen) {
		note_peer(s, &hs, namelen);
		guest_view(s, &hs, namelen, &gs, &gl);
	}
	if (gm) {
		if (gm->name && gm->namelen) {
			uint32_t k = gm->namelen < gl ? gm->namelen : gl;
			if (k && svc_copy_out(t, gm->name, &gs, k) < 0)
				return -EFAULT;
		}
		uint32_t nl = gm->name ? gl : 0;
		uint64_t cl = cused;
		int32_t fl = mflags;
		if (svc_copy_out(t, gmaddr + offsetof(struct gmsg, namelen), &nl, sizeof(nl)) < 0 ||
		    svc_copy_out(t, gmaddr + offsetof(struct gmsg, controllen), &cl, sizeof(cl)) <
			0 ||
		    svc_copy_out(t, gmaddr + offsetof(struct gmsg, flags), &fl, sizeof(fl)) < 0)
			return -EFAULT;
	} else if (gname && gl) {
		r = addr_out(t, gname, gnamelenp, &gs, gl);
		if (r < 0)
			return r;
	}
	return (long)got; /* with MSG_TRUNC on a datagram: its real length */
}

static long sys_sendto(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	struct net_iov io;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	r = iov_one(t, &io, a[1], a[2]);
	if (r == 0)
		r = do_send(t, f, s, &io, a[4], (uint32_t)a[5], NULL, (int)a[3]);
	svc_file_put(f);
	return r;
}

static long sys_recvfrom(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	struct net_iov io;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	r = iov_one(t, &io, a[1], a[2]);
	if (r == 0 && a[4])
		r = addr_out_check(t, a[4], a[5]);
	if (r == 0)
		r = do_recv(t, f, s, &io, a[4], a[5], NULL, 0, (int)a[3]);
	svc_file_put(f);
	return r;
}

static long send_one_msg(struct svc_thread *t, struct svc_file *f, struct net_sock *s,
			 uint64_t gmaddr, int flags)
{
	struct gmsg gm;
	struct net_iov io;
	if (svc_copy_in(t, &gm, gmaddr, sizeof(gm)) < 0)
		return -EFAULT;
	long r = iov_load(t, &io, gm.iov, gm.iovlen);
	if (r < 0)
		return r;
	r = do_send(t, f, s, &io, gm.name, gm.namelen, &gm, flags);
	iov_free(&io);
	return r;
}

static long recv_one_msg(struct svc_thread *t, struct svc_file *f, struct net_sock *s,
			 uint64_t gmaddr, int flags)
{
	struct gmsg gm;
	struct net_iov io;
	if (svc_copy_in(t, &gm, gmaddr, sizeof(gm)) < 0)
		return -EFAULT;
	if ((int32_t)gm.namelen < 0)
		return -EINVAL;
	long r = iov_load(t, &io, gm.iov, gm.iovlen);
	if (r < 0)
		return r;
	r = do_recv(t, f, s, &io, 0, 0, &gm, gmaddr, flags);
	iov_free(&io);
	return r;
}

static long sys_sendmsg(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	r = send_one_msg(t, f, s, a[1], (int)a[2]);
	svc_file_put(f);
	return r;
}

static long sys_recvmsg(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	r = recv_one_msg(t, f, s, a[1], (int)a[2]);
	svc_file_put(f);
	return r;
}

/* struct mmsghdr: a msghdr and the byte count. */
#define MMSG_SIZE 64

static long sys_sendmmsg(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	unsigned vlen = (unsigned)a[2] > NET_MAX_MMSG ? NET_MAX_MMSG : (unsigned)a[2];
	int flags = (int)a[3];
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	unsigned i;
	for (i = 0; i < vlen; i++) {
		uint64_t m = a[1] + (uint64_t)i * MMSG_SIZE;
		r = send_one_msg(t, f, s, m, flags);
		if (r < 0)
			break;
		uint32_t len = (uint32_t)r;
		if (svc_copy_out(t, m + sizeof(struct gmsg), &len, sizeof(len)) < 0) {
			r = -EFAULT;
			break;
		}
	}
	svc_file_put(f);
	return i ? (long)i : r;
}

static long sys_recvmmsg(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	unsigned vlen = (unsigned)a[2] > NET_MAX_MMSG ? NET_MAX_MMSG : (unsigned)a[2];
	int flags = (int)a[3];
	struct timespec ts;
	uint64_t deadline = 0;
	long r;

	if (a[4]) {
		if (svc_copy_in(t, &ts, a[4], sizeof(ts)) < 0)
			return -EFAULT;
		if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L)
			return -EINVAL;
		deadline = nb_now_ns() + (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	unsigned i;
	for (i = 0; i < vlen; i++) {
		uint64_t m = a[1] + (uint64_t)i * MMSG_SIZE;
		r = recv_one_msg(t, f, s, m, flags);
		if (r < 0)
			break;
		uint32_t len = (uint32_t)r;
		if (svc_copy_out(t, m + sizeof(struct gmsg), &len, sizeof(len)) < 0) {
			r = -EFAULT;
			break;
		}
		if (flags & MSG_WAITFORONE)
			flags |= MSG_DONTWAIT;
		if (deadline && nb_now_ns() >= deadline)
			break;
	}
	svc_file_put(f);
	return i ? (long)i : r;
}

static long sys_shutdown(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	if (a[1] > SHUT_RDWR)
		r = -EINVAL;
	else
		r = shutdown(f->host_fd, (int)a[1]) < 0 ? -errno : 0;
	svc_file_put(f);
	return r;
}

/* ---- names ------------------------------------------------------------------ */

/* getsockname (@peer false) or getpeername (@peer true): the guest's view
 * of the name recorded at bind/connect, else the host's name translated
 * into it. For the peer the host is asked first, so that a socket without
 * one gives ENOTCONN. */
static long sock_name(struct svc_thread *t, const uint64_t a[6], bool peer)
{
	struct svc_file *f;
	struct net_sock *s;
	struct sockaddr_storage hs, gs;
	socklen_t hl = sizeof(hs), gl = 0;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	bool have_host = false;
	if (peer) {
		if (getpeername(f->host_fd, (struct sockaddr *)&hs, &hl) < 0) {
			r = -errno;
			goto out;
		}
		have_host = true;
	}
	pthread_mutex_lock(&s->net->lock);
	const struct sockaddr_storage *saved = peer ? &s->peer : &s->name;
	socklen_t savedlen = peer ? s->peerlen : s->namelen;
	if (savedlen) {
		memcpy(&gs, saved, savedlen);
		gl = savedlen;
	}
	pthread_mutex_unlock(&s->net->lock);
	if (!gl) {
		if (!have_host && getsockname(f->host_fd, (struct sockaddr *)&hs, &hl) < 0) {
			r = -errno;
			goto out;
		}
		guest_view(s, &hs, hl, &gs, &gl);
	}
	r = addr_out(t, a[1], a[2], &gs, gl);
out:
	svc_file_put(f);
	return r;
}

static long sys_getsockname(struct svc_thread *t, const uint64_t a[6])
{
	return sock_name(t, a, false);
}

static long sys_getpeername(struct svc_thread *t, const uint64_t a[6])
{
	return sock_name(t, a, true);
}

/* ---- options ------------------------------------------------------------------ */

enum { OPT_GET = 1, OPT_SET = 2, OPT_BOTH = 3 };

struct net_opt {
	int level, name;
	unsigned mode;
};

/* Options passed through to the host socket (everything else:
 * ENOPROTOOPT). None of them changes where the socket may send. */
static const struct net_opt net_opts[] = {
    {SOL_SOCKET, SO_REUSEADDR, OPT_BOTH},
    {SOL_SOCKET, SO_REUSEPORT, OPT_BOTH},
    {SOL_SOCKET, SO_KEEPALIVE, OPT_BOTH},
    {SOL_SOCKET, SO_RCVBUF, OPT_BOTH},
    {SOL_SOCKET, SO_SNDBUF, OPT_BOTH},
    {SOL_SOCKET, SO_LINGER, OPT_BOTH},
    {SOL_SOCKET, SO_OOBINLINE, OPT_BOTH},
    {SOL_SOCKET, SO_RCVLOWAT, OPT_BOTH},
    {SOL_SOCKET, SO_SNDLOWAT, OPT_GET},
    {SOL_SOCKET, SO_BROADCAST, OPT_BOTH},
    {SOL_SOCKET, SO_ERROR, OPT_GET},
    {SOL_SOCKET, SO_TYPE, OPT_GET},
    {SOL_SOCKET, SO_DOMAIN, OPT_GET},
    {SOL_SOCKET, SO_PROTOCOL, OPT_GET},
    {SOL_SOCKET, SO_ACCEPTCONN, OPT_GET},
    {IPPROTO_TCP, TCP_NODELAY, OPT_BOTH},
    {IPPROTO_TCP, TCP_MAXSEG, OPT_BOTH},
    {IPPROTO_TCP, TCP_CORK, OPT_BOTH},
    {IPPROTO_TCP, TCP_KEEPIDLE, OPT_BOTH},
    {IPPROTO_TCP, TCP_KEEPINTVL, OPT_BOTH},
    {IPPROTO_TCP, TCP_KEEPCNT, OPT_BOTH},
    {IPPROTO_TCP, TCP_SYNCNT, OPT_BOTH},
    {IPPROTO_TCP, TCP_LINGER2, OPT_BOTH},
    {IPPROTO_TCP, TCP_DEFER_ACCEPT, OPT_BOTH},
    {IPPROTO_TCP, TCP_WINDOW_CLAMP, OPT_BOTH},
    {IPPROTO_TCP, TCP_INFO, OPT_GET},
    {IPPROTO_TCP, TCP_QUICKACK, OPT_BOTH},
    {IPPROTO_TCP, TCP_USER_TIMEOUT, OPT_BOTH},
    {IPPROTO_TCP, TCP_NOTSENT_LOWAT, OPT_BOTH},
    {IPPROTO_TCP, TCP_FASTOPEN, OPT_BOTH}, /* server side; client TFO is refused */
    {IPPROTO_IP, IP_TOS, OPT_BOTH},
    {IPPROTO_IP, IP_TTL, OPT_BOTH},
    {IPPROTO_IP, IP_MTU_DISCOVER, OPT_BOTH},
    {IPPROTO_IP, IP_MTU, OPT_GET},
    {IPPROTO_IPV6, IPV6_V6ONLY, OPT_BOTH},
    {IPPROTO_IPV6, IPV6_TCLASS, OPT_BOTH},
    {IPPROTO_IPV6, IPV6_UNICAST_HOPS, OPT_BOTH},
};

static const struct net_opt *opt_find(int level, int name)
{
	for (size_t i = 0; i < sizeof(net_opts) / sizeof(net_opts[0]); i++)
		if (net_opts[i].level == level && net_opts[i].name == name)
			return &net_opts[i];
	return NULL;
}

static bool is_timeo(int level, int name, bool *rcv)
{
	if (level != SOL_SOCKET)
		return false;
	*rcv = name == SO_RCVTIMEO_OLD_ || name == SO_RCVTIMEO_NEW;
	return *rcv || name == SO_SNDTIMEO_OLD_ || name == SO_SNDTIMEO_NEW;
}

static long sys_setsockopt(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	unsigned char val[NET_MAX_OPTLEN];
	int level = (int)a[1], name = (int)a[2];
	int32_t len = (int32_t)a[4];
	bool rcv;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	if (len < 0 || (size_t)len > sizeof(val)) {
		r = -EINVAL;
		goto out;
	}
	if (len && svc_copy_in(t, val, a[3], (uint64_t)len) < 0) {
		r = -EFAULT;
		goto out;
	}
	if (is_timeo(level, name, &rcv)) {
		struct timeval tv;
		if ((size_t)len < sizeof(tv)) {
			r = -EINVAL;
			goto out;
		}
		memcpy(&tv, val, sizeof(tv));
		if (tv.tv_usec < 0 || tv.tv_usec >= 1000000) {
			r = -EDOM;
			goto out;
		}
		int64_t ns = 0;
		if (tv.tv_sec > 0 || tv.tv_usec > 0) {
			if (tv.tv_sec < 0)
				tv.tv_sec = 0;
			if (tv.tv_sec > INT64_MAX / 1000000000 - 1)
				tv.tv_sec = INT64_MAX / 1000000000 - 1;
			ns = tv.tv_sec * 1000000000ll + tv.tv_usec * 1000ll;
		}
		pthread_mutex_lock(&s->net->lock);
		*(rcv ? &s->rcvtimeo_ns : &s->sndtimeo_ns) = ns;
		pthread_mutex_unlock(&s->net->lock);
		r = 0;
		goto out;
	}
	const struct net_opt *o = opt_find(level, name);
	if (!o || !(o->mode & OPT_SET)) {
		r = -ENOPROTOOPT;
		goto out;
	}
	r = setsockopt(f->host_fd, level, name, val, (socklen_t)len) < 0 ? -errno : 0;
	if (r == 0 && level == IPPROTO_IPV6 && name == IPV6_V6ONLY && len >= (int)sizeof(int)) {
		int v;
		memcpy(&v, val, sizeof(v));
		pthread_mutex_lock(&s->net->lock);
		s->v6only = v != 0;
		pthread_mutex_unlock(&s->net->lock);
	}
out:
	svc_file_put(f);
	return r;
}

static long sys_getsockopt(struct svc_thread *t, const uint64_t a[6])
{
	struct svc_file *f;
	struct net_sock *s;
	unsigned char val[NET_MAX_OPTLEN];
	int level = (int)a[1], name = (int)a[2];
	int32_t glen;
	socklen_t len;
	bool rcv;
	long r = sock_get(t, a[0], &f, &s);
	if (r < 0)
		return r;
	if (svc_copy_in(t, &glen, a[4], sizeof(glen)) < 0) {
		r = -EFAULT;
		goto out;
	}
	if (glen < 0) {
		r = -EINVAL;
		goto out;
	}
	len = (size_t)glen < sizeof(val) ? (socklen_t)glen : sizeof(val);
	memset(val, 0, sizeof(val));
	if (is_timeo(level, name, &rcv)) {
		pthread_mutex_lock(&s->net->lock);
		int64_t ns = rcv ? s->rcvtimeo_ns : s->sndtimeo_ns;
		pthread_mutex_unlock(&s->net->lock);
		struct timeval tv = {.tv_sec = ns / 1000000000,
				     .tv_usec = (ns % 1000000000) / 1000};
		if (len > sizeof(tv))
			len = sizeof(tv);
		memcpy(val, &tv, len);
	} else if (level == SOL_SOCKET && name == SO_PEERCRED) {
		/* The guest's view: its own process (pid 1, root). */
		struct ucred uc = {.pid = 1, .uid = 0, .gid = 0};
		if (s->domain != AF_UNIX) {
			r = -ENOPROTOOPT;
			goto out;
		}
		if (len > sizeof(uc))
			len = sizeof(uc);
		memcpy(val, &uc, len);
	} else {
		const struct net_opt *o = opt_find(level, name);
		if (!o || !(o->mode & OPT_GET)) {
			r = -ENOPROTOOPT;
			goto out;
		}
		if (getsockopt(f->host_fd, level, name, val, &len) < 0) {
			r = -errno;
			goto out;
		}
		if (len > sizeof(val))
			len = sizeof(val);
	}
	if (len && svc_copy_out(t, a[3], val, len) < 0) {
		r = -EFAULT;
		goto out;
	}
	uint32_t l = len;
	r = svc_copy_out(t, a[4], &l, sizeof(l)) < 0 ? -EFAULT : 0;
out:
	svc_file_put(f);
	return r;
}

/* ---- dispatch ------------------------------------------------------------------ */

svc_sys_fn svc_net_handler(unsigned nr)
{
	switch (nr) {
	case SYS_socket:
		return sys_socket;
	case SYS_socketpair:
		return sys_socketpair;
	case SYS_bind:
		return sys_bind;
	case SYS_listen:
		return sys_listen;
	case SYS_accept:
		return sys_accept;
	case SYS_accept4:
		return sys_accept4;
	case SYS_connect:
		return sys_connect;
	case SYS_sendto:
		return sys_sendto;
	case SYS_recvfrom:
		return sys_recvfrom;
	case SYS_sendmsg:
		return sys_sendmsg;
	case SYS_recvmsg:
		return sys_recvmsg;
	case SYS_sendmmsg:
		return sys_sendmmsg;
	case SYS_recvmmsg:
		return sys_recvmmsg;
	case SYS_shutdown:
		return sys_shutdown;
	case SYS_getsockname:
		return sys_getsockname;
	case SYS_getpeername:
		return sys_getpeername;
	case SYS_setsockopt:
		return sys_setsockopt;
	case SYS_getsockopt:
		return sys_getsockopt;
	default:
		return NULL;
	}
}
