/* SPDX-License-Identifier: MIT */
/*
 * Network policy of a service VM, as pure data and functions (no KVM, no
 * file descriptors, no locks: the caller, net.c, holds the VM's net lock).
 *
 *   - guest socket addresses are parsed once from guest bytes into a
 *     struct netpol_addr (IPv4-mapped IPv6 addresses normalized to IPv4);
 *   - the port table maps the guest's virtual ports to the real host
 *     addresses its sockets are bound to;
 *   - netpol_decide() says where a guest connect()/sendto() may go: one of
 *     the VM's own sockets (translated through the table), an
 *     --allow-connect service (to the configured address, never to guest
 *     bytes), or nowhere.
 *   - abstract AF_UNIX names get a per-VM prefix.
 */
#ifndef NUBIS_SVC_NETPOLICY_H
#define NUBIS_SVC_NETPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address and port; IPv4-mapped IPv6 is stored as IPv4. */
struct netpol_addr {
	int family;	/* AF_INET or AF_INET6 */
	uint8_t ip[16]; /* 4 bytes used for AF_INET */
	uint16_t port;	/* host byte order */
	uint32_t scope; /* IPv6 scope id */
};

/* Parse the guest's sockaddr @buf of @len bytes for a socket of @domain
 * (AF_INET or AF_INET6). Accepts what Linux accepts: AF_INET needs len >=
 * 16, AF_INET6 len >= 24; an AF_INET6 socket also takes AF_INET6 addresses
 * only. Returns 0, -EINVAL (short/bad length), -EAFNOSUPPORT (family
 * mismatch), or 1 for AF_UNSPEC (len >= 2; *@out untouched). */
int netpol_parse(const void *buf, size_t len, int domain, struct netpol_addr *out);

/* From a host sockaddr (as the kernel returns it). -EAFNOSUPPORT if not inet. */
int netpol_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct netpol_addr *out);

/* Express @a for a socket of @domain into @ss (@*len set). AF_INET6 sockets
 * get IPv4 addresses mapped (::ffff:a.b.c.d); an AF_INET socket cannot
 * express a pure IPv6 address: -EAFNOSUPPORT. */
int netpol_to_sockaddr(const struct netpol_addr *a, int domain, struct sockaddr_storage *ss,
		       socklen_t *len);

/* Loopback (127/8, ::1) or unspecified (0.0.0.0, ::): "this machine" in the
 * guest's view. */
bool netpol_is_local(const struct netpol_addr *a);
bool netpol_is_any(const struct netpol_addr *a);
/* Same family, address, port (scope ignored unless both non-zero). */
bool netpol_addr_eq(const struct netpol_addr *a, const struct netpol_addr *b);

/* Text form "1.2.3.4:80" / "[::1]:80" into @buf (>= 64 bytes). */
const char *netpol_addr_str(const struct netpol_addr *a, char *buf, size_t cap);
/* Parse "ADDR:PORT" ("[v6]:PORT" for IPv6; port 1..65535) into @out. 0 or -EINVAL. */
int netpol_parse_hostport(const char *s, struct netpol_addr *out);
/* Parse a --publish value "HOST_ADDR:HOST_PORT:GUEST_PORT[/tcp|/udp]"
 * (HOST_ADDR may be "[v6]"; omitted "HOST_PORT:GUEST_PORT" means
 * 127.0.0.1). @proto gets IPPROTO_TCP (default) or IPPROTO_UDP. */
int netpol_parse_publish(const char *s, struct netpol_addr *host, uint16_t *guest_port, int *proto);
/* Parse an --allow-connect value "ADDR:PORT[/tcp|/udp]"; @proto = 0 (both)
 * unless a suffix is given. */
int netpol_parse_allow(const char *s, struct netpol_addr *addr, int *proto);

/* ---- rules and the port table ------------------------------------------ */

/* Address families a bound socket serves: an AF_INET socket serves IPv4, a
 * dual-stack AF_INET6 socket both, an IPV6_V6ONLY socket IPv6 only. */
#define NETPOL_COVER_V4 1u
#define NETPOL_COVER_V6 2u

struct netpol_port {
	int proto;		 /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t vport;		 /* the guest's port */
	unsigned cover;		 /* NETPOL_COVER_* */
	struct netpol_addr real; /* where the host socket is bound */
	const void *owner;	 /* the socket (identity only) */
};

struct netpol_rule {
	int proto;		 /* IPPROTO_TCP / IPPROTO_UDP; 0 = both (allow only) */
	struct netpol_addr addr; /* host address + port */
	uint16_t guest_port;	 /* publish only */
};

struct netpol {
	struct netpol_rule *publish;
	size_t npublish;
	struct netpol_rule *allow;
	size_t nallow;
	struct netpol_port *ports;
	size_t nports, cap;
	uint16_t next_eph; /* next virtual ephemeral port to try */
};

/* Empty policy: nothing published, nothing allowed. */
void netpol_init(struct netpol *p);
/* Frees the rule and port arrays (p itself is the caller's). */
void netpol_fini(struct netpol *p);
/* Add a rule (copied). -EINVAL for port 0 / bad proto, -EEXIST for a
 * duplicate publish of the same guest port, protocol and host family,
 * -ENOMEM. */
int netpol_add_publish(struct netpol *p, const struct netpol_addr *host, uint16_t guest_port,
		       int proto);
int netpol_add_allow(struct netpol *p, const struct netpol_addr *addr, int proto);

/* The publish rule for a socket of @proto covering @cover binding guest
 * port @vport, or NULL. A dual-stack socket prefers an IPv6 host address;
 * a single-family socket may get a rule on the other family's "any"
 * address (0.0.0.0 / ::), to be bound as its own family's "any". */
const struct netpol_rule *netpol_published(const struct netpol *p, int proto, uint16_t vport,
					   unsigned cover);

/* Register @vport -> @real for @owner. -EADDRINUSE if an entry with the
 * same proto and vport overlaps @cover; -ENOMEM. */
int netpol_port_add(struct netpol *p, int proto, uint16_t vport, unsigned cover,
		    const struct netpol_addr *real, const void *owner);
/* A free virtual port for @proto (the @preferred one if free and non-zero,
 * else one from 32768..60999), or 0 if none. */
uint16_t netpol_port_alloc(struct netpol *p, int proto, uint16_t preferred);
/* Entry for a destination port of family @fam (AF_INET/AF_INET6), or NULL. */
const struct netpol_port *netpol_port_find(const struct netpol *p, int proto, uint16_t vport,
					   int fam);
/* Entry whose real address is @real, or NULL (reverse translation). */
const struct netpol_port *netpol_port_find_real(const struct netpol *p, int proto,
						const struct netpol_addr *real);
/* Remove every entry of @owner. */
void netpol_port_remove(struct netpol *p, const void *owner);

/* Decision for a guest connect()/sendto() to @dst with @proto. */
enum netpol_verdict {
	NETPOL_DENY = 0,
	NETPOL_INTERNAL, /* one of the VM's sockets: *@real = its real address */
	NETPOL_ALLOWED,	 /* --allow-connect: *@real = the configured address */
};
enum netpol_verdict netpol_decide(const struct netpol *p, int proto, const struct netpol_addr *dst,
				  struct netpol_addr *real);

/* ---- AF_UNIX abstract names --------------------------------------------- */

/* The sun_path bytes of a sockaddr_un of @len bytes (len counts the
 * family): an abstract name is sun_path[0] == 0. Guest name @gname of @glen
 * bytes (including the leading NUL) becomes @prefix + rest in @out (108
 * bytes); returns the new sun_path length or -ENAMETOOLONG. */
int netpol_unix_abstract_in(const char *prefix, size_t plen, const char *gname, size_t glen,
			    char *out);
/* Reverse: host sun_path @hname of @hlen bytes -> guest name (same layout).
 * Returns the guest length, or -1 if it is not one of this VM's names. */
int netpol_unix_abstract_out(const char *prefix, size_t plen, const char *hname, size_t hlen,
			     char *out);

/* Lexical normalization of a Unix socket path: "//" and "/./" collapse,
 * ".." drops a component (never above "/"), a relative path is taken from
 * "/". Writes at most @cap bytes with the NUL; the length or -ENAMETOOLONG
 * (-ENOENT for ""). */
int netpol_unix_path_norm(const char *in, size_t inlen, char *out, size_t cap);

#endif
