/* SPDX-License-Identifier: MIT */
/* Service-VM option parsing (src/cli/svcopts.c): --publish, --allow-connect,
 * --volume and the option handler, with bad input rejected. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/svcopts.h"

static void test_publish(void **state)
{
	(void)state;
	struct svc_publish p;
	assert_int_equal(svc_parse_publish("127.0.0.1:8080:80", &p), 0);
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&p.host;
	assert_int_equal(a4->sin_family, AF_INET);
	assert_int_equal(ntohs(a4->sin_port), 8080);
	assert_int_equal(ntohl(a4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(p.guest_port, 80);
	assert_int_equal(p.proto, IPPROTO_TCP);
	assert_int_equal(p.host_len, sizeof(struct sockaddr_in));

	assert_int_equal(svc_parse_publish("0.0.0.0:5353:53/udp", &p), 0);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.guest_port, 53);

	assert_int_equal(svc_parse_publish("[::1]:6379:6379/tcp", &p), 0);
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&p.host;
	assert_int_equal(a6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(a6->sin6_port), 6379);
	assert_true(IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));
	assert_int_equal(p.host_len, sizeof(struct sockaddr_in6));

	/* HOST_PORT:GUEST_PORT: loopback */
	assert_int_equal(svc_parse_publish("9000:90", &p), 0);
	assert_int_equal(ntohl(a4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(ntohs(a4->sin_port), 9000);
	assert_int_equal(p.guest_port, 90);

	static const char *const bad[] = {
	    "",
	    "80",
	    ":80",
	    "1.2.3.4:80",
	    "1.2.3.4:0:80",
	    "1.2.3.4:80:0",
	    "1.2.3.4:80:65536",
	    "1.2.3.4:80:80/sctp",
	    "::1:80:80",
	    "[::1:80:80",
	    "[::1]80:80",
	    "[1.2.3.4]:80:80",
	    "host:80:80",
	    "1.2.3.4:-1:80",
	    "1.2.3.4:80:8x",
	    "1.2.3.4:99999999999999999999:80",
	    "999.1.1.1:1:1",
	    "1.2.3.4:80:80/",
	    "a:b:c:d",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(svc_parse_publish(bad[i], &p), 0);
}

static void test_allow(void **state)
{
	(void)state;
	struct svc_allow a;
	assert_int_equal(svc_parse_allow("10.0.0.1:5432", &a), 0);
	assert_int_equal(a.proto, 0);
	assert_int_equal(((const struct sockaddr_in *)&a.addr)->sin_family, AF_INET);
	assert_int_equal(svc_parse_allow("10.0.0.1:53/udp", &a), 0);
	assert_int_equal(a.proto, IPPROTO_UDP);
	assert_int_equal(svc_parse_allow("[fe80::1]:22/tcp", &a), 0);
	assert_int_equal(a.proto, IPPROTO_TCP);
	assert_int_equal(((const struct sockaddr_in6 *)&a.addr)->sin6_family, AF_INET6);
	static const char *const bad[] = {
	    "",	      "10.0.0.1", "10.0.0.1:",	      "10.0.0.1:0",    "[::1]",
	    "::1:22", "x:1",	  "10.0.0.1:22/icmp", "10.0.0.1:70000"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(svc_parse_allow(bad[i], &a), 0);
}

static void test_volume(void **state)
{
	(void)state;
	struct svc_volume v;
	char *st = NULL;
	assert_int_equal(svc_parse_volume("/srv/data:/data", &v, &st), 0);
	assert_string_equal(v.host_dir, "/srv/data");
	assert_string_equal(v.guest_dir, "/data");
	assert_false(v.readonly);
	free(st);
	assert_int_equal(svc_parse_volume("/srv/x:/var/lib/x:ro", &v, &st), 0);
	assert_true(v.readonly);
	free(st);
	static const char *const bad[] = {"",	      "/a",	  "a:/b",     "/a:b",	   "/a:/",
					  "/a:/b:rx", "/a:/../b", "/a:/b/..", "/a:/b/../c"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st = NULL;
		assert_int_not_equal(svc_parse_volume(bad[i], &v, &st), 0);
		assert_null(st);
	}
}

static void test_handle(void **state)
{
	(void)state;
	struct svc_opts o;
	svc_opts_init(&o);
	assert_int_equal(o.cfg.max_threads, SVC_MAX_THREADS_DEFAULT);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_ROOTFS, "/r1"), 1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_ROOTFS, "/r2"), 1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_MEMORY, "512M"), 1);
	assert_int_equal(o.cfg.mem_size, 512ull << 20);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_CPUS, "2"), 1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_MAX_THREADS, "8"), 1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_ENV, "A=1"), 1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_PUBLISH, "8080:80"), 1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_VOLUME, "/h:/g:ro"), 1);
	assert_int_equal(svc_opts_handle(&o, 'x', "whatever"), 0);
	/* bad values: -1 and nothing changes */
	assert_int_equal(svc_opts_handle(&o, SVCOPT_MEMORY, "3M"), -1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_MEMORY, "5M"), -1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_CPUS, "0"), -1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_MAX_THREADS, "65"), -1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_WORKDIR, "rel"), -1);
	assert_int_equal(svc_opts_handle(&o, SVCOPT_ENV, "=x"), -1);
	assert_int_equal(o.cfg.mem_size, 512ull << 20);
	assert_int_equal(o.cfg.cpus, 2);
	assert_int_equal(o.cfg.max_threads, 8);
	char *argv[] = {(char *)(uintptr_t) "prog", NULL};
	assert_int_equal(svc_opts_finish(&o, argv), 0);
	assert_int_equal(o.cfg.nlower, 2);
	assert_string_equal(o.cfg.lower_dirs[0], "/r1");
	assert_string_equal(o.cfg.envp[0], "A=1");
	assert_non_null(strstr(o.cfg.envp[1], "PATH="));
	assert_null(o.cfg.envp[2]);
	assert_int_equal(o.cfg.npublish, 1);
	assert_int_equal(o.cfg.nvolumes, 1);
	svc_opts_free(&o);
	/* no --rootfs */
	svc_opts_init(&o);
	assert_int_equal(svc_opts_finish(&o, argv), -1);
	svc_opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish),
	    cmocka_unit_test(test_allow),
	    cmocka_unit_test(test_volume),
	    cmocka_unit_test(test_handle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
