/* SPDX-License-Identifier: MIT */
/* Unit tests of src/svc/netpolicy.c: guest sockaddr parsing (hostile
 * lengths, families), the port table, the connect/sendto verdicts, option
 * parsing and abstract Unix names. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "svc/netpolicy.h"

static struct netpol_addr A(const char *s) {
	struct netpol_addr a;
	assert_int_equal(netpol_parse_hostport(s, &a), 0);
	return a;
}

static struct sockaddr_in
sin4(const char *ip, uint16_t port)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};
	assert_int_equal(inet_pton(AF_INET, ip, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 sin6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 s = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	assert_int_equal(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
	return s;
}

static void test_parse_lengths(void **state)
{
	(void)state;
	struct netpol_addr a;
	struct sockaddr_in s4 = sin4("10.1.2.3", 80);
	struct sockaddr_in6 s6 = sin6("2001:db8::1", 443);
	unsigned char big[512];

	assert_int_equal(netpol_parse(&s4, sizeof(s4), AF_INET, &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.port, 80);
	assert_memory_equal(a.ip, "\x0a\x01\x02\x03", 4);
	/* Every truncation of an AF_INET address is refused. */
	for (size_t l = 0; l < sizeof(s4); l++)
		assert_int_not_equal(netpol_parse(&s4, l, AF_INET, &a), 0);
	assert_int_equal(netpol_parse(NULL, 16, AF_INET, &a), -EINVAL);
	/* Too long for a sockaddr_storage. */
	memset(big, 0, sizeof(big));
	memcpy(big, &s4, sizeof(s4));
	assert_int_equal(netpol_parse(big, sizeof(big), AF_INET, &a), -EINVAL);
	assert_int_equal(netpol_parse(big, 129, AF_INET, &a), -EINVAL);
	assert_int_equal(netpol_parse(big, 128, AF_INET, &a), 0);

	assert_int_equal(netpol_parse(&s6, sizeof(s6), AF_INET6, &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.port, 443);
	assert_int_equal(netpol_parse(&s6, 24, AF_INET6, &a), 0); /* RFC 2133 length */
	for (size_t l = 2; l < 24; l++)
		assert_int_equal(netpol_parse(&s6, l, AF_INET6, &a), -EINVAL);

	/* Family mismatches. */
	assert_int_equal(netpol_parse(&s6, sizeof(s6), AF_INET, &a), -EAFNOSUPPORT);
	assert_int_equal(netpol_parse(&s4, sizeof(s4), AF_INET6, &a), -EAFNOSUPPORT);
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	assert_int_equal(netpol_parse(&su, sizeof(su), AF_INET, &a), -EAFNOSUPPORT);
	assert_int_equal(netpol_parse(&s4, sizeof(s4), AF_UNIX, &a), -EAFNOSUPPORT);
	/* AF_UNSPEC is reported (connect: dissolve), even when short. */
	struct sockaddr sa = {.sa_family = AF_UNSPEC};
	assert_int_equal(netpol_parse(&sa, 2, AF_INET, &a), 1);
	assert_int_equal(netpol_parse(&sa, 1, AF_INET, &a), -EINVAL);
	/* Garbage families. */
	for (int fam = 0; fam < 64; fam++) {
		if (fam == AF_INET || fam == AF_UNSPEC)
			continue;
		s4.sin_family = (sa_family_t)fam;
		assert_int_not_equal(netpol_parse(&s4, sizeof(s4), AF_INET, &a), 0);
	}
}

static void test_mapped(void **state)
{
	(void)state;
	struct netpol_addr a;
	struct sockaddr_in6 s6 = sin6("::ffff:127.0.0.1", 6379);
	assert_int_equal(netpol_parse(&s6, sizeof(s6), AF_INET6, &a), 0);
	assert_int_equal(a.family, AF_INET); /* normalized */
	assert_true(netpol_is_local(&a));
	assert_true(netpol_addr_eq(&a, &(struct netpol_addr[1]){A("127.0.0.1:6379")}[0]));

	struct sockaddr_storage ss;
	socklen_t len;
	assert_int_equal(netpol_to_sockaddr(&a, AF_INET6, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_memory_equal(&((struct sockaddr_in6 *)&ss)->sin6_addr, &s6.sin6_addr, 16);
	assert_int_equal(netpol_to_sockaddr(&a, AF_INET, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in));

	struct netpol_addr v6 = A("[::1]:80");
	assert_int_equal(netpol_to_sockaddr(&v6, AF_INET, &ss, &len), -EAFNOSUPPORT);
	assert_int_equal(netpol_to_sockaddr(&v6, AF_UNIX, &ss, &len), -EAFNOSUPPORT);
}

static void test_local(void **state)
{
	(void)state;
	const char *local[] = {"127.0.0.1:1",	    "127.255.0.9:1", "0.0.0.0:1",
			       "[::1]:1",	    "[::]:1",	     "[::ffff:127.0.0.2]:1",
			       "[::ffff:0.0.0.0]:1"};
	const char *other[] = {"10.0.0.1:1",	    "192.168.1.1:1",	   "[::2]:1",
			       "[fe80::1]:1",	    "[::ffff:10.0.0.1]:1", "128.0.0.1:1",
			       "255.255.255.255:1", "[ff02::1]:1"};
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		struct netpol_addr a = A(local[i]);
		assert_true(netpol_is_local(&a));
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		struct netpol_addr a = A(other[i]);
		assert_false(netpol_is_local(&a));
	}
}

static void test_parse_options(void **state)
{
	(void)state;
	struct netpol_addr a;
	uint16_t gp;
	int proto;

	assert_int_equal(netpol_parse_publish("127.0.0.1:8080:80", &a, &gp, &proto), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.port, 8080);
	assert_int_equal(gp, 80);
	assert_int_equal(proto, IPPROTO_TCP);
	assert_int_equal(netpol_parse_publish("[::1]:5353:53/udp", &a, &gp, &proto), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.port, 5353);
	assert_int_equal(gp, 53);
	assert_int_equal(proto, IPPROTO_UDP);
	assert_int_equal(netpol_parse_publish("8080:80", &a, &gp, &proto), 0);
	assert_memory_equal(a.ip, "\x7f\0\0\x01", 4);

	const char *bad[] = {"",
			     ":",
			     "1.2.3.4:80",
			     "1.2.3.4:0:80",
			     "1.2.3.4:80:0",
			     "1.2.3.4:80:65536",
			     "1.2.3.4:80:80/sctp",
			     "x:80:80",
			     "[::1:80:80",
			     "::1:80:80",
			     "1.2.3.4:-1:80",
			     "1.2.3.4:8a:80",
			     "1.2.3.4:80:80/",
			     "[]:80:80",
			     "1.2.3.4::80",
			     "1.2.3.4:80:999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(netpol_parse_publish(bad[i], &a, &gp, &proto), -EINVAL);
	assert_int_equal(netpol_parse_publish(NULL, &a, &gp, &proto), -EINVAL);

	assert_int_equal(netpol_parse_allow("10.0.0.1:5432", &a, &proto), 0);
	assert_int_equal(proto, 0);
	assert_int_equal(netpol_parse_allow("[2001:db8::5]:53/udp", &a, &proto), 0);
	assert_int_equal(proto, IPPROTO_UDP);
	assert_int_equal(netpol_parse_allow("10.0.0.1", &a, &proto), -EINVAL);
	assert_int_equal(netpol_parse_allow("10.0.0.1:0", &a, &proto), -EINVAL);
	assert_int_equal(netpol_parse_allow("localhost:80", &a, &proto), -EINVAL);

	char buf[64];
	a = A("[2001:db8::5]:53");
	assert_string_equal(netpol_addr_str(&a, buf, sizeof(buf)), "[2001:db8::5]:53");
	a = A("1.2.3.4:5");
	assert_string_equal(netpol_addr_str(&a, buf, sizeof(buf)), "1.2.3.4:5");
}

static void test_ports(void **state)
{
	(void)state;
	struct netpol p;
	int o1, o2, o3;
	struct netpol_addr r1 = A("127.0.0.1:40001"), r2 = A("[::1]:40002"),
			   r3 = A("127.0.0.1:40003");

	netpol_init(&p);
	assert_int_equal(netpol_port_add(&p, IPPROTO_TCP, 80, NETPOL_COVER_V4, &r1, &o1), 0);
	/* Same port: IPv4 taken, IPv6-only free (like Linux with V6ONLY). */
	assert_int_equal(
	    netpol_port_add(&p, IPPROTO_TCP, 80, NETPOL_COVER_V4 | NETPOL_COVER_V6, &r2, &o2),
	    -EADDRINUSE);
	assert_int_equal(netpol_port_add(&p, IPPROTO_TCP, 80, NETPOL_COVER_V6, &r2, &o2), 0);
	/* UDP is another space. */
	assert_int_equal(netpol_port_add(&p, IPPROTO_UDP, 80, NETPOL_COVER_V4, &r3, &o3), 0);

	assert_ptr_equal(netpol_port_find(&p, IPPROTO_TCP, 80, AF_INET)->owner, &o1);
	assert_ptr_equal(netpol_port_find(&p, IPPROTO_TCP, 80, AF_INET6)->owner, &o2);
	assert_ptr_equal(netpol_port_find(&p, IPPROTO_UDP, 80, AF_INET)->owner, &o3);
	assert_null(netpol_port_find(&p, IPPROTO_UDP, 80, AF_INET6));
	assert_null(netpol_port_find(&p, IPPROTO_TCP, 81, AF_INET));
	assert_int_equal(netpol_port_find_real(&p, IPPROTO_TCP, &r2)->vport, 80);
	assert_null(netpol_port_find_real(&p, IPPROTO_UDP, &r2));

	/* Allocation avoids used ports and prefers the real one. */
	assert_int_equal(netpol_port_alloc(&p, IPPROTO_TCP, 40005), 40005);
	assert_int_equal(netpol_port_alloc(&p, IPPROTO_TCP, 80) >= 32768, 1);
	netpol_port_remove(&p, &o1);
	assert_null(netpol_port_find(&p, IPPROTO_TCP, 80, AF_INET));
	assert_non_null(netpol_port_find(&p, IPPROTO_TCP, 80, AF_INET6));
	assert_int_equal(netpol_port_add(&p, IPPROTO_TCP, 80, NETPOL_COVER_V4, &r1, &o1), 0);

	/* Fill many entries; the table grows. */
	static int owners[3000];
	for (int i = 0; i < 3000; i++) {
		struct netpol_addr r = r1;
		r.port = (uint16_t)(1000 + i);
		uint16_t v = netpol_port_alloc(&p, IPPROTO_UDP, 0);
		assert_int_not_equal(v, 0);
		assert_int_equal(
		    netpol_port_add(&p, IPPROTO_UDP, v, NETPOL_COVER_V4, &r, &owners[i]), 0);
	}
	for (int i = 0; i < 3000; i++)
		netpol_port_remove(&p, &owners[i]);
	assert_int_equal(p.nports, 3);
	netpol_fini(&p);
}

static void test_decide(void **state)
{
	(void)state;
	struct netpol p;
	struct netpol_addr real, r;
	int o1, o2;

	netpol_init(&p);
	r = A("127.0.0.1:8080");
	assert_int_equal(netpol_add_publish(&p, &r, 80, IPPROTO_TCP), 0);
	r = A("[::1]:8080");
	assert_int_equal(netpol_add_publish(&p, &r, 80, IPPROTO_TCP), 0);
	r = A("127.0.0.1:9090");
	assert_int_equal(netpol_add_publish(&p, &r, 80, IPPROTO_TCP), -EEXIST);
	assert_int_equal(netpol_add_publish(&p, &r, 0, IPPROTO_TCP), -EINVAL);
	assert_int_equal(netpol_add_publish(&p, &r, 81, 0), -EINVAL);
	r = A("0.0.0.0:5353");
	assert_int_equal(netpol_add_publish(&p, &r, 53, IPPROTO_UDP), 0);
	r = A("127.0.0.1:6379");
	assert_int_equal(netpol_add_allow(&p, &r, IPPROTO_TCP), 0);
	r = A("[2001:db8::7]:53");
	assert_int_equal(netpol_add_allow(&p, &r, 0), 0);
	r.port = 0;
	assert_int_equal(netpol_add_allow(&p, &r, 0), -EINVAL);

	/* Publish rules by coverage. */
	assert_int_equal(netpol_published(&p, IPPROTO_TCP, 80, NETPOL_COVER_V4)->addr.family,
			 AF_INET);
	assert_int_equal(netpol_published(&p, IPPROTO_TCP, 80, NETPOL_COVER_V6)->addr.family,
			 AF_INET6);
	assert_int_equal(
	    netpol_published(&p, IPPROTO_TCP, 80, NETPOL_COVER_V4 | NETPOL_COVER_V6)->addr.family,
	    AF_INET6);
	assert_null(netpol_published(&p, IPPROTO_UDP, 80, NETPOL_COVER_V4));
	/* 0.0.0.0 serves an IPv6-only socket too; a specific address does not. */
	assert_non_null(netpol_published(&p, IPPROTO_UDP, 53, NETPOL_COVER_V6));
	r = A("[::]:7000");
	assert_int_equal(netpol_add_publish(&p, &r, 70, IPPROTO_TCP), 0);
	assert_int_equal(netpol_published(&p, IPPROTO_TCP, 70, NETPOL_COVER_V4)->addr.family,
			 AF_INET6);
	r = A("[::1]:7001");
	assert_int_equal(netpol_add_publish(&p, &r, 71, IPPROTO_TCP), 0);
	assert_null(netpol_published(&p, IPPROTO_TCP, 71, NETPOL_COVER_V4));
	assert_null(netpol_published(&p, IPPROTO_TCP, 81, NETPOL_COVER_V4));

	/* Allowed service: the configured address is used. */
	struct netpol_addr d = A("127.0.0.1:6379");
	assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_ALLOWED);
	assert_true(netpol_addr_eq(&real, &d));
	assert_int_equal(netpol_decide(&p, IPPROTO_UDP, &d, &real), NETPOL_DENY);
	d = A("[::ffff:127.0.0.1]:6379"); /* the mapped form is the same service */
	assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_ALLOWED);
	d = A("[2001:db8::7]:53");
	assert_int_equal(netpol_decide(&p, IPPROTO_UDP, &d, &real), NETPOL_ALLOWED);
	assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_ALLOWED);

	/* Everything else is denied. */
	const char *deny[] = {"127.0.0.1:6380",	      "127.0.0.2:6379",	    "0.0.0.0:6379",
			      "[::1]:6379",	      "10.0.0.1:6379",	    "127.0.0.1:22",
			      "127.0.0.1:8080",	      "[::1]:8080",	    "[2001:db8::7]:54",
			      "[::ffff:10.0.0.1]:80", "255.255.255.255:53", "127.0.0.1:80"};
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++) {
		d = A(deny[i]);
		assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_DENY);
		assert_int_equal(netpol_decide(&p, IPPROTO_UDP, &d, &real), NETPOL_DENY);
	}
	d = A("127.0.0.1:6379");
	d.port = 0;
	assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_DENY);

	/* The VM's own ports, by any local address, translated. */
	r = A("127.0.0.1:41000");
	assert_int_equal(netpol_port_add(&p, IPPROTO_TCP, 80, NETPOL_COVER_V4, &r, &o1), 0);
	const char *self[] = {"127.0.0.1:80", "127.9.9.9:80", "0.0.0.0:80",
			      "[::ffff:127.0.0.1]:80"};
	for (size_t i = 0; i < sizeof(self) / sizeof(self[0]); i++) {
		d = A(self[i]);
		assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_INTERNAL);
		assert_true(netpol_addr_eq(&real, &r));
	}
	d = A("[::1]:80"); /* an IPv4-only socket is not reached over IPv6 */
	assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_DENY);
	d = A("10.0.0.1:80"); /* not by a foreign address */
	assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_DENY);
	assert_int_equal(
	    netpol_decide(&p, IPPROTO_UDP, &(struct netpol_addr[1]){A("127.0.0.1:80")}[0], &real),
	    NETPOL_DENY);

	/* A published socket bound to the host's any address: via loopback. */
	r = A("0.0.0.0:5353");
	assert_int_equal(netpol_port_add(&p, IPPROTO_UDP, 53, NETPOL_COVER_V4, &r, &o2), 0);
	d = A("127.0.0.1:53");
	assert_int_equal(netpol_decide(&p, IPPROTO_UDP, &d, &real), NETPOL_INTERNAL);
	assert_true(netpol_addr_eq(&real, &(struct netpol_addr[1]){A("127.0.0.1:5353")}[0]));

	/* After close, the port is gone. */
	netpol_port_remove(&p, &o1);
	d = A("127.0.0.1:80");
	assert_int_equal(netpol_decide(&p, IPPROTO_TCP, &d, &real), NETPOL_DENY);
	netpol_fini(&p);
}

static void test_abstract(void **state)
{
	(void)state;
	const char *pre = "nubis-0123456789ab/a";
	size_t plen = strlen(pre);
	char out[108], back[108];
	char g[108];

	memcpy(g, "\0foo", 4);
	int n = netpol_unix_abstract_in(pre, plen, g, 4, out);
	assert_int_equal(n, 1 + (int)plen + 3);
	assert_int_equal(out[0], 0);
	assert_memory_equal(out + 1, pre, plen);
	assert_memory_equal(out + 1 + plen, "foo", 3);
	assert_int_equal(netpol_unix_abstract_out(pre, plen, out, (size_t)n, back), 4);
	assert_memory_equal(back, g, 4);
	/* Another VM's name (another prefix) is not ours. */
	assert_int_equal(
	    netpol_unix_abstract_out("nubis-ffffffffffff/a", plen, out, (size_t)n, back), -1);
	assert_int_equal(netpol_unix_abstract_out(pre, plen, "\0x", 2, back), -1);
	assert_int_equal(netpol_unix_abstract_out(pre, plen, "/tmp/x", 6, back), -1);
	/* Longest guest name that fits, and one byte more. */
	memset(g, 'a', sizeof(g));
	g[0] = 0;
	size_t maxg = 108 - plen;
	assert_int_equal(netpol_unix_abstract_in(pre, plen, g, maxg, out), 108);
	assert_int_equal(netpol_unix_abstract_in(pre, plen, g, maxg + 1, out), -ENAMETOOLONG);
	assert_int_equal(netpol_unix_abstract_in(pre, plen, g, 0, out), -ENAMETOOLONG);
	/* Not abstract. */
	assert_int_equal(netpol_unix_abstract_in(pre, plen, "/x", 2, out), -ENAMETOOLONG);
}

static void test_unix_path_norm(void **state)
{
	(void)state;
	char out[108];
	const char *cases[][2] = {
	    {"/tmp/x.sock", "/tmp/x.sock"},
	    {"//tmp///x", "/tmp/x"},
	    {"/a/./b/", "/a/b"},
	    {"/a/../../../b", "/b"},
	    {"rel/sock", "/rel/sock"},
	    {"/..", "/"},
	    {"/a/b/..", "/a"},
	    {".", "/"},
	    {"/a/..b/c", "/a/..b/c"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = netpol_unix_path_norm(cases[i][0], strlen(cases[i][0]), out, sizeof(out));
		assert_int_equal(n, (int)strlen(cases[i][1]));
		assert_string_equal(out, cases[i][1]);
	}
	/* Not NUL-terminated within the length: stops at the length. */
	assert_int_equal(netpol_unix_path_norm("/abcdef", 3, out, sizeof(out)), 3);
	assert_string_equal(out, "/ab");
	assert_int_equal(netpol_unix_path_norm("", 0, out, sizeof(out)), -ENOENT);
	assert_int_equal(netpol_unix_path_norm("/abc", 4, out, 4), -ENAMETOOLONG);
	assert_int_equal(netpol_unix_path_norm("/abc", 4, out, 5), 4);
	char big[300];
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	assert_int_equal(netpol_unix_path_norm(big, sizeof(big), out, sizeof(out)), -ENAMETOOLONG);
}

/* Random bytes as guest sockaddrs: never a crash, and anything parsed
 * is consistent with its own encoding. */
static void test_parse_fuzz(void **state)
{
	(void)state;
	unsigned char buf[160];
	uint32_t x = 12345;
	for (int it = 0; it < 20000; it++) {
		for (size_t i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (unsigned char)(x >> 16);
		}
		if (it & 1) {
			sa_family_t f = (it & 2) ? AF_INET : AF_INET6;
			memcpy(buf, &f, sizeof(f));
		}
		size_t len = (x >> 8) % sizeof(buf);
		struct netpol_addr a;
		int dom = (it & 4) ? AF_INET : AF_INET6;
		int r = netpol_parse(buf, len, dom, &a);
		if (r == 0) {
			struct sockaddr_storage ss;
			socklen_t l;
			struct netpol_addr b;
			if (netpol_to_sockaddr(&a, dom, &ss, &l) == 0) {
				assert_int_equal(
				    netpol_from_sockaddr((struct sockaddr *)&ss, l, &b), 0);
				assert_true(netpol_addr_eq(&a, &b));
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_lengths),  cmocka_unit_test(test_mapped),
	    cmocka_unit_test(test_local),	   cmocka_unit_test(test_parse_options),
	    cmocka_unit_test(test_ports),	   cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_abstract),	   cmocka_unit_test(test_parse_fuzz),
	    cmocka_unit_test(test_unix_path_norm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
