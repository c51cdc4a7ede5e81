/* SPDX-License-Identifier: MIT */
/* Network policy of a service VM: see netpolicy.h. Pure; unit-tested. */
#include "netpolicy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define EPH_LO 32768u
#define EPH_HI 60999u

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- addresses ----------------------------------------------------------- */

static void from_in6(const struct sockaddr_in6 *s6, struct netpol_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->port = ntohs(s6->sin6_port);
	if (memcmp(s6->sin6_addr.s6_addr, v4mapped_prefix, 12) == 0) {
		out->family = AF_INET;
		memcpy(out->ip, s6->sin6_addr.s6_addr + 12, 4);
		return;
	}
	out->family = AF_INET6;
	memcpy(out->ip, s6->sin6_addr.s6_addr, 16);
	out->scope = s6->sin6_scope_id;
}

static void from_in4(const struct sockaddr_in *s4, struct netpol_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	out->port = ntohs(s4->sin_port);
	memcpy(out->ip, &s4->sin_addr, 4);
}

int netpol_parse(const void *buf, size_t len, int domain, struct netpol_addr *out)
{
	sa_family_t fam;

	if (!buf || len < sizeof(fam) || len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	memcpy(&fam, buf, sizeof(fam));
	if (fam == AF_UNSPEC)
		return 1;
	if (domain == AF_INET) {
		struct sockaddr_in s4;
		if (fam != AF_INET)
			return -EAFNOSUPPORT;
		if (len < sizeof(s4))
			return -EINVAL;
		memcpy(&s4, buf, sizeof(s4));
		from_in4(&s4, out);
		return 0;
	}
	if (domain == AF_INET6) {
		struct sockaddr_in6 s6;
		if (fam != AF_INET6)
			return -EAFNOSUPPORT;
		if (len < 24) /* SIN6_LEN_RFC2133: without sin6_scope_id */
			return -EINVAL;
		memset(&s6, 0, sizeof(s6));
		memcpy(&s6, buf, len < sizeof(s6) ? len : sizeof(s6));
		from_in6(&s6, out);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int netpol_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct netpol_addr *out)
{
	if (!sa || len < sizeof(sa_family_t))
		return -EAFNOSUPPORT;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in s4;
		memcpy(&s4, sa, sizeof(s4));
		from_in4(&s4, out);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 s6;
		memcpy(&s6, sa, sizeof(s6));
		from_in6(&s6, out);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int netpol_to_sockaddr(const struct netpol_addr *a, int domain, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (domain == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (a->family != AF_INET)
			return -EAFNOSUPPORT;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(a->port);
		memcpy(&s4->sin_addr, a->ip, 4);
		*len = sizeof(*s4);
		return 0;
	}
	if (domain == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		if (a->family == AF_INET) {
			memcpy(s6->sin6_addr.s6_addr, v4mapped_prefix, 12);
			memcpy(s6->sin6_addr.s6_addr + 12, a->ip, 4);
		} else if (a->family == AF_INET6) {
			memcpy(s6->sin6_addr.s6_addr, a->ip, 16);
			s6->sin6_scope_id = a->scope;
		} else {
			return -EAFNOSUPPORT;
		}
		*len = sizeof(*s6);
		return 0;
	}
	return -EAFNOSUPPORT;
}

bool netpol_is_any(const struct netpol_addr *a)
{
	static const uint8_t zero[16];
	if (a->family == AF_INET)
		return memcmp(a->ip, zero, 4) == 0;
	return a->family == AF_INET6 && memcmp(a->ip, zero, 16) == 0;
}

bool netpol_is_local(const struct netpol_addr *a)
{
	static const uint8_t v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if (netpol_is_any(a))
		return true;
	if (a->family == AF_INET)
		return a->ip[0] == 127;
	return a->family == AF_INET6 && memcmp(a->ip, v6lo, 16) == 0;
}

bool netpol_addr_eq(const struct netpol_addr *a, const struct netpol_addr *b)
{
	size_t n = a->family == AF_INET ? 4 : 16;
	if (a->family != b->family || a->port != b->port || memcmp(a->ip, b->ip, n) != 0)
		return false;
	return !(a->scope && b->scope && a->scope != b->scope);
}

const char *netpol_addr_str(const struct netpol_addr *a, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->ip, ip, sizeof(ip));
	snprintf(buf, cap, a->family == AF_INET ? "%s:%u" : "[%s]:%u", ip, a->port);
	return buf;
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned long v = 0;
	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* "ADDR" or "[V6]" of @n bytes; returns the bytes consumed or -EINVAL. */
static int parse_ip(const char *s, size_t n, struct netpol_addr *out)
{
	char tmp[INET6_ADDRSTRLEN + 2];
	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	if (s[0] == '[') {
		struct in6_addr a6;
		if (n < 3 || s[n - 1] != ']')
			return -EINVAL;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = 0;
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -EINVAL;
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = a6};
		from_in6(&s6, out);
		return 0;
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	out->family = AF_INET;
	if (inet_pton(AF_INET, tmp, out->ip) != 1)
		return -EINVAL;
	return 0;
}

/* Split an optional "/tcp" or "/udp" suffix off @s: the length before it. */
static int split_proto(const char *s, int *proto, int dflt)
{
	const char *slash = strrchr(s, '/');
	*proto = dflt;
	if (!slash)
		return (int)strlen(s);
	if (strcmp(slash, "/tcp") == 0)
		*proto = IPPROTO_TCP;
	else if (strcmp(slash, "/udp") == 0)
		*proto = IPPROTO_UDP;
	else
		return -EINVAL;
	return (int)(slash - s);
}

int netpol_parse_hostport(const char *s, struct netpol_addr *out)
{
	if (!s)
		return -EINVAL;
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return -EINVAL;
	uint16_t port;
	if (parse_port(colon + 1, strlen(colon + 1), &port) < 0 ||
	    parse_ip(s, (size_t)(colon - s), out) < 0)
		return -EINVAL;
	out->port = port;
	return 0;
}

int netpol_parse_publish(const char *s, struct netpol_addr *host, uint16_t *guest_port, int *proto)
{
	char buf[128];
	if (!s)
		return -EINVAL;
	int n = split_proto(s, proto, IPPROTO_TCP);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)n);
	buf[n] = 0;
	char *last = strrchr(buf, ':');
	if (!last || parse_port(last + 1, strlen(last + 1), guest_port) < 0)
		return -EINVAL;
	*last = 0;
	/* "HOST_PORT:GUEST_PORT": loopback only. */
	if (!strchr(buf, ':')) {
		uint16_t hp;
		if (parse_port(buf, strlen(buf), &hp) < 0)
			return -EINVAL;
		memset(host, 0, sizeof(*host));
		host->family = AF_INET;
		host->ip[0] = 127;
		host->ip[3] = 1;
		host->port = hp;
		return 0;
	}
	return netpol_parse_hostport(buf, host);
}

int netpol_parse_allow(const char *s, struct netpol_addr *addr, int *proto)
{
	char buf[128];
	if (!s)
		return -EINVAL;
	int n = split_proto(s, proto, 0);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)n);
	buf[n] = 0;
	return netpol_parse_hostport(buf, addr);
}

/* ---- rules and ports ----------------------------------------------------- */

void netpol_init(struct netpol *p)
{
	memset(p, 0, sizeof(*p));
	p->next_eph = EPH_LO;
}

void netpol_fini(struct netpol *p)
{
	free(p->publish);
	free(p->allow);
	free(p->ports);
	netpol_init(p);
}

static int rule_push(struct netpol_rule **v, size_t *n, const struct netpol_rule *r)
{
	if (*n >= 4096)
		return -ENOMEM;
	struct netpol_rule *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = *r;
	*v = nv;
	return 0;
}

int netpol_add_publish(struct netpol *p, const struct netpol_addr *host, uint16_t guest_port,
		       int proto)
{
	if (!host || guest_port == 0 || host->port == 0 ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP) ||
	    (host->family != AF_INET && host->family != AF_INET6))
		return -EINVAL;
	for (size_t i = 0; i < p->npublish; i++) {
		const struct netpol_rule *r = &p->publish[i];
		if (r->proto == proto && r->guest_port == guest_port &&
		    r->addr.family == host->family)
			return -EEXIST;
	}
	struct netpol_rule r = {.proto = proto, .addr = *host, .guest_port = guest_port};
	return rule_push(&p->publish, &p->npublish, &r);
}

int netpol_add_allow(struct netpol *p, const struct netpol_addr *addr, int proto)
{
	if (!addr || addr->port == 0 ||
	    (proto != 0 && proto != IPPROTO_TCP && proto != IPPROTO_UDP) ||
	    (addr->family != AF_INET && addr->family != AF_INET6))
		return -EINVAL;
	struct netpol_rule r = {.proto = proto, .addr = *addr};
	return rule_push(&p->allow, &p->nallow, &r);
}

const struct netpol_rule *netpol_published(const struct netpol *p, int proto, uint16_t vport,
					   unsigned cover)
{
	const struct netpol_rule *v4 = NULL, *v6 = NULL;
	for (size_t i = 0; i < p->npublish; i++) {
		const struct netpol_rule *r = &p->publish[i];
		if (r->proto != proto || r->guest_port != vport)
			continue;
		if (r->addr.family == AF_INET && !v4)
			v4 = r;
		if (r->addr.family == AF_INET6 && !v6)
			v6 = r;
	}
	/* A rule on the other family's "any" address serves as well. */
	if (cover == NETPOL_COVER_V4)
		return v4 ? v4 : (v6 && netpol_is_any(&v6->addr) ? v6 : NULL);
	if (cover == NETPOL_COVER_V6)
		return v6 ? v6 : (v4 && netpol_is_any(&v4->addr) ? v4 : NULL);
	if (cover == (NETPOL_COVER_V4 | NETPOL_COVER_V6))
		return v6 ? v6 : v4;
	return NULL;
}

int netpol_port_add(struct netpol *p, int proto, uint16_t vport, unsigned cover,
		    const struct netpol_addr *real, const void *owner)
{
	for (size_t i = 0; i < p->nports; i++) {
		const struct netpol_port *e = &p->ports[i];
		if (e->proto == proto && e->vport == vport && (e->cover & cover))
			return -EADDRINUSE;
	}
	if (p->nports == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		if (ncap > 65536 * 4)
			return -ENOMEM;
		struct netpol_port *nv = realloc(p->ports, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		p->ports = nv;
		p->cap = ncap;
	}
	p->ports[p->nports++] = (struct netpol_port){
	    .proto = proto, .vport = vport, .cover = cover, .real = *real, .owner = owner};
	return 0;
}

static bool port_used(const struct netpol *p, int proto, uint16_t vport)
{
	for (size_t i = 0; i < p->nports; i++)
		if (p->ports[i].proto == proto && p->ports[i].vport == vport)
			return true;
	return false;
}

uint16_t netpol_port_alloc(struct netpol *p, int proto, uint16_t preferred)
{
	if (preferred && !port_used(p, proto, preferred))
		return preferred;
	for (unsigned i = 0; i <= EPH_HI - EPH_LO; i++) {
		uint16_t cand = p->next_eph;
		p->next_eph = cand >= EPH_HI ? (uint16_t)EPH_LO : (uint16_t)(cand + 1);
		if (!port_used(p, proto, cand))
			return cand;
	}
	return 0;
}

const struct netpol_port *netpol_port_find(const struct netpol *p, int proto, uint16_t vport,
					   int fam)
{
	unsigned want = fam == AF_INET ? NETPOL_COVER_V4 : NETPOL_COVER_V6;
	for (size_t i = 0; i < p->nports; i++) {
		const struct netpol_port *e = &p->ports[i];
		if (e->proto == proto && e->vport == vport && (e->cover & want))
			return e;
	}
	return NULL;
}

const struct netpol_port *netpol_port_find_real(const struct netpol *p, int proto,
						const struct netpol_addr *real)
{
	for (size_t i = 0; i < p->nports; i++) {
		const struct netpol_port *e = &p->ports[i];
		if (e->proto == proto && netpol_addr_eq(&e->real, real))
			return e;
	}
	return NULL;
}

void netpol_port_remove(struct netpol *p, const void *owner)
{
	size_t j = 0;
	for (size_t i = 0; i < p->nports; i++)
		if (p->ports[i].owner != owner)
			p->ports[j++] = p->ports[i];
	p->nports = j;
}

enum netpol_verdict netpol_decide(const struct netpol *p, int proto, const struct netpol_addr *dst,
				  struct netpol_addr *real)
{
	if (dst->port == 0)
		return NETPOL_DENY;
	if (netpol_is_local(dst)) {
		const struct netpol_port *e = netpol_port_find(p, proto, dst->port, dst->family);
		if (e) {
			*real = e->real;
			/* A published socket bound to the host's "any" address
			 * is reached through loopback. */
			if (netpol_is_any(real)) {
				memset(real->ip, 0, sizeof(real->ip));
				if (real->family == AF_INET) {
					real->ip[0] = 127;
					real->ip[3] = 1;
				} else {
					real->ip[15] = 1;
				}
			}
			return NETPOL_INTERNAL;
		}
	}
	for (size_t i = 0; i < p->nallow; i++) {
		const struct netpol_rule *r = &p->allow[i];
		if (r->proto && r->proto != proto)
			continue;
		if (netpol_addr_eq(&r->addr, dst)) {
			*real = r->addr;
			return NETPOL_ALLOWED;
		}
	}
	return NETPOL_DENY;
}

/* ---- AF_UNIX abstract names ---------------------------------------------- */

int netpol_unix_abstract_in(const char *prefix, size_t plen, const char *gname, size_t glen,
			    char *out)
{
	size_t cap = sizeof(((struct sockaddr_un *)0)->sun_path);
	if (glen < 1 || gname[0] != 0 || glen > cap || 1 + plen + (glen - 1) > cap)
		return -ENAMETOOLONG;
	out[0] = 0;
	memcpy(out + 1, prefix, plen);
	memcpy(out + 1 + plen, gname + 1, glen - 1);
	return (int)(1 + plen + glen - 1);
}

int netpol_unix_abstract_out(const char *prefix, size_t plen, const char *hname, size_t hlen,
			     char *out)
{
	if (hlen < 1 + plen || hname[0] != 0 || memcmp(hname + 1, prefix, plen) != 0)
		return -1;
	out[0] = 0;
	memcpy(out + 1, hname + 1 + plen, hlen - 1 - plen);
	return (int)(hlen - plen);
}

int netpol_unix_path_norm(const char *in, size_t inlen, char *out, size_t cap)
{
	size_t o = 0, i = 0;
	if (inlen == 0 || in[0] == 0)
		return -ENOENT;
	if (cap < 2)
		return -ENAMETOOLONG;
	out[o++] = '/';
	while (i < inlen && in[i]) {
		while (i < inlen && in[i] == '/')
			i++;
		size_t st = i;
		while (i < inlen && in[i] && in[i] != '/')
			i++;
		size_t n = i - st;
		if (n == 0 || (n == 1 && in[st] == '.'))
			continue;
		if (n == 2 && in[st] == '.' && in[st + 1] == '.') {
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--; /* the '/' before it */
			continue;
		}
		if (o > 1) {
			if (o + 1 >= cap)
				return -ENAMETOOLONG;
			out[o++] = '/';
		}
		if (o + n >= cap)
			return -ENAMETOOLONG;
		memcpy(out + o, in + st, n);
		o += n;
	}
	out[o] = 0;
	return (int)o;
}
