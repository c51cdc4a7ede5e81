/* SPDX-License-Identifier: MIT */
/* Unit tests: fnvm_path_norm (src/fnvm/path.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fnvm/path.h"

static void expect_norm(const char *cwd, const char *path, const char *want)
{
	char out[FNVM_PATH_MAX + 1];
	memset(out, 'X', sizeof(out));
	int n = fnvm_path_norm(cwd, path, out, sizeof(out));
	if (n < 0)
		fail_msg("norm(%s, %s) = %d, want \"%s\"", cwd, path, n, want);
	if (strcmp(out, want) != 0 || (size_t)n != strlen(want))
		fail_msg("norm(%s, %s) = \"%s\" (%d), want \"%s\"", cwd, path, out, n, want);
}

static void test_absolute(void **state)
{
	(void)state;
	expect_norm("/", "/", "/");
	expect_norm("/", "/a", "/a");
	expect_norm("/", "/a/b/c", "/a/b/c");
	expect_norm("/", "/a/b/", "/a/b");     /* trailing slash */
	expect_norm("/", "//a///b//", "/a/b"); /* repeated slashes */
	expect_norm("/", "///", "/");
	expect_norm("/cwd/ignored", "/x", "/x"); /* absolute ignores cwd */
}

static void test_dot(void **state)
{
	(void)state;
	expect_norm("/", "/.", "/");
	expect_norm("/", "/./a/./b/.", "/a/b");
	expect_norm("/", "./a", "/a");
	expect_norm("/", ".", "/");
	expect_norm("/", "/.hidden/..x/...",
		    "/.hidden/..x/..."); /* names that merely start with dots */
	expect_norm("/", "/a./.b", "/a./.b");
}

static void test_dotdot(void **state)
{
	(void)state;
	expect_norm("/", "/a/b/../c", "/a/c");
	expect_norm("/", "/a/b/..", "/a");
	expect_norm("/", "/a/b/../..", "/");
	expect_norm("/", "/a/../b/../c/d/../../e", "/e");
	expect_norm("/", "/a/b/c/../../../x", "/x");
	expect_norm("/", "/a//b/.//..//c", "/a/c");
}

static void test_root_escape(void **state)
{
	(void)state;
	/* ".." at the root stays at the root: nothing can climb above "/" */
	expect_norm("/", "/..", "/");
	expect_norm("/", "/../..", "/");
	expect_norm("/", "/../../etc/passwd", "/etc/passwd");
	expect_norm("/", "../../../etc", "/etc");
	expect_norm("/", "/a/../../../b", "/b");
	expect_norm("/dir", "../../..", "/");
	expect_norm("/dir", "../../../x", "/x");
	expect_norm("/", "..", "/");
}

static void test_relative(void **state)
{
	(void)state;
	expect_norm("/home/u", "f", "/home/u/f");
	expect_norm("/home/u", "a/b", "/home/u/a/b");
	expect_norm("/home/u", "../v", "/home/v");
	expect_norm("/home/u", "./x/../y", "/home/u/y");
	expect_norm("/home/u/", "f", "/home/u/f");
	expect_norm("/home//u/.", "f", "/home/u/f"); /* cwd is normalized too */
	expect_norm("/home/u", "", "/home/u");
	expect_norm("/", "", "/");
}

static void test_too_long(void **state)
{
	(void)state;
	char out[16];
	/* "/abc" needs 5 bytes with the NUL */
	assert_int_equal(fnvm_path_norm("/", "/abc", out, 5), 4);
	assert_string_equal(out, "/abc");
	assert_int_equal(fnvm_path_norm("/", "/abc", out, 4), -ENAMETOOLONG);
	assert_int_equal(fnvm_path_norm("/", "/", out, 2), 1);
	assert_string_equal(out, "/");
	assert_int_equal(fnvm_path_norm("/", "/", out, 1), -ENAMETOOLONG);
	assert_int_equal(fnvm_path_norm("/", "/", out, 0), -ENAMETOOLONG);
	/* a component that is later removed still has to fit while it is there */
	assert_int_equal(fnvm_path_norm("/", "/abcdefghijklmnopq/..", out, sizeof(out)),
			 -ENAMETOOLONG);
	/* the cwd part counts */
	assert_int_equal(fnvm_path_norm("/0123456789", "abcdef", out, sizeof(out)), -ENAMETOOLONG);
	assert_int_equal(fnvm_path_norm("/012345", "abc", out, sizeof(out)), 11);

	/* FNVM_PATH_MAX: a result of exactly FNVM_PATH_MAX characters fits in
	 * FNVM_PATH_MAX + 1 bytes; one more does not. */
	size_t big = FNVM_PATH_MAX + 64;
	char *in = malloc(big + 1);
	char *o = malloc(FNVM_PATH_MAX + 1);
	assert_non_null(in);
	assert_non_null(o);
	in[0] = '/';
	memset(in + 1, 'a', FNVM_PATH_MAX - 1);
	in[FNVM_PATH_MAX] = 0;
	assert_int_equal(fnvm_path_norm("/", in, o, FNVM_PATH_MAX + 1), FNVM_PATH_MAX);
	assert_int_equal(strlen(o), FNVM_PATH_MAX);
	memset(in + 1, 'a', FNVM_PATH_MAX);
	in[FNVM_PATH_MAX + 1] = 0;
	assert_int_equal(fnvm_path_norm("/", in, o, FNVM_PATH_MAX + 1), -ENAMETOOLONG);
	/* lots of "/./" and "//" is fine even if the input is long: only the
	 * result has to fit */
	size_t k = 0;
	while (k + 3 < big) {
		in[k++] = '/';
		in[k++] = '.';
		in[k++] = '/';
	}
	in[k++] = 'z';
	in[k] = 0;
	assert_int_equal(fnvm_path_norm("/", in, o, FNVM_PATH_MAX + 1), 2);
	assert_string_equal(o, "/z");
	free(in);
	free(o);
}

/* Every output is canonical: absolute, no "//", no "." or ".." component,
 * no trailing slash, idempotent. Checked over many generated inputs. */
static void test_canonical_property(void **state)
{
	(void)state;
	static const char *const parts[] = {"a", "bb", ".", "..", "", "c.d", "...", "/"};
	uint64_t x = 0x1234567887654321ull;
	for (int iter = 0; iter < 20000; iter++) {
		char in[256] = "", out[FNVM_PATH_MAX + 1], again[FNVM_PATH_MAX + 1];
		int nparts = (int)(x % 9);
		size_t len = 0;
		if (x & 0x100)
			in[len++] = '/';
		for (int i = 0; i < nparts; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			const char *pp = parts[x % (sizeof(parts) / sizeof(parts[0]))];
			size_t pl = strlen(pp);
			memcpy(in + len, pp, pl);
			len += pl;
			in[len++] = '/';
		}
		if (len && (x & 0x200))
			len--; /* drop the trailing slash sometimes */
		in[len] = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int n = fnvm_path_norm("/w/v", in, out, sizeof(out));
		assert_true(n > 0);
		assert_int_equal((size_t)n, strlen(out));
		assert_true(out[0] == '/');
		assert_null(strstr(out, "//"));
		assert_null(strstr(out, "/./"));
		assert_null(strstr(out, "/../"));
		if (n > 1) {
			assert_true(out[n - 1] != '/');
			assert_false(n >= 2 && !strcmp(out + n - 2, "/."));
			assert_false(n >= 3 && !strcmp(out + n - 3, "/.."));
		}
		assert_int_equal(fnvm_path_norm("/", out, again, sizeof(again)), n);
		assert_string_equal(again, out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_absolute),
	    cmocka_unit_test(test_dot),
	    cmocka_unit_test(test_dotdot),
	    cmocka_unit_test(test_root_escape),
	    cmocka_unit_test(test_relative),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_canonical_property),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
