/* SPDX-License-Identifier: MIT */
/* Unit tests: nb_parse_u64, nb_parse_size, nb_parse_duration (src/common/parse.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/parse.h"

#define KIB  (1ull << 10)
#define MIB  (1ull << 20)
#define GIB  (1ull << 30)
#define TIB  (1ull << 40)
#define NS_S 1000000000ull

struct good {
	const char *s;
	uint64_t v;
};
struct bad {
	const char *s;
	int rc;
};

/* A failed parse must not touch *out. */
#define SENTINEL 0x5a5a5a5a5a5a5a5aull

static void check_good(int (*fn)(const char *, uint64_t *), const struct good *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = SENTINEL;
		int rc = fn(g[i].s, &v);
		if (rc != 0 || v != g[i].v)
			fail_msg("\"%s\": rc=%d value=%llu, want rc=0 value=%llu", g[i].s, rc,
				 (unsigned long long)v, (unsigned long long)g[i].v);
	}
}

static void check_bad(int (*fn)(const char *, uint64_t *), const struct bad *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = SENTINEL;
		int rc = fn(b[i].s, &v);
		if (rc != b[i].rc)
			fail_msg("\"%s\": rc=%d, want %d", b[i].s ? b[i].s : "(null)", rc, b[i].rc);
		if (v != SENTINEL)
			fail_msg("\"%s\": failed parse wrote %llu", b[i].s ? b[i].s : "(null)",
				 (unsigned long long)v);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_u64_good(void **state)
{
	(void)state;
	static const struct good g[] = {
	    {"0", 0},
	    {"1", 1},
	    {"007", 7},
	    {"4096", 4096},
	    {"18446744073709551615", UINT64_MAX},
	    {"00000000000000000000018446744073709551615", UINT64_MAX},
	};
	check_good(nb_parse_u64, g, N(g));
}

static void test_u64_bad(void **state)
{
	(void)state;
	static const struct bad b[] = {
	    {NULL, -EINVAL},
	    {"", -EINVAL},
	    {"-1", -EINVAL},
	    {"+1", -EINVAL},
	    {" 1", -EINVAL},
	    {"1 ", -EINVAL},
	    {"1a", -EINVAL},
	    {"0x10", -EINVAL},
	    {"1.0", -EINVAL},
	    {"1K", -EINVAL},
	    {"18446744073709551616", -ERANGE}, /* UINT64_MAX + 1: add overflows */
	    {"18446744073709551620", -ERANGE},
	    {"184467440737095516150", -ERANGE}, /* mul overflows */
	    {"99999999999999999999999999", -ERANGE},
	};
	check_bad(nb_parse_u64, b, N(b));
}

static void test_size_good(void **state)
{
	(void)state;
	static const struct good g[] = {
	    {"0", 0},
	    {"4096", 4096},
	    {"512B", 512},
	    {"512b", 512},
	    {"1K", KIB},
	    {"64K", 64 * KIB},
	    {"64k", 64 * KIB},
	    {"64KB", 64 * KIB},
	    {"64KiB", 64 * KIB},
	    {"64kib", 64 * KIB},
	    {"64M", 64 * MIB},
	    {"64MiB", 64 * MIB},
	    {"3m", 3 * MIB},
	    {"2G", 2 * GIB},
	    {"2GB", 2 * GIB},
	    {"64G", 64 * GIB},
	    {"1T", TIB},
	    {"1TiB", TIB},
	    {"1.5K", 1536},
	    {"1.5M", 3 * MIB / 2},
	    {"0.5G", GIB / 2},
	    {"16777215T", 16777215ull * TIB},	    /* largest whole number of TiB */
	    {"17179869183G", 17179869183ull * GIB}, /* largest whole number of GiB */
	    /* plain byte counts beyond UINT64_MAX / 1e9 (these once overflowed an
	     * internal value * 1e9) */
	    {"68719476736", 64 * GIB},
	    {"20000000000", 20000000000ull},
	    {"18446744073709551615", UINT64_MAX},
	    {"18446744073709551615B", UINT64_MAX},
	    {"18014398509481983.5K", UINT64_MAX - 511},
	};
	check_good(nb_parse_size, g, N(g));
}

static void test_size_bad(void **state)
{
	(void)state;
	static const struct bad b[] = {
	    {NULL, -EINVAL},
	    {"", -EINVAL},
	    {"K", -EINVAL},
	    {"M", -EINVAL},
	    {"-1", -EINVAL},
	    {"-1M", -EINVAL},
	    {"+1M", -EINVAL},
	    {" 1M", -EINVAL},
	    {"1M ", -EINVAL},
	    {"1 M", -EINVAL},
	    {"1X", -EINVAL},
	    {"1P", -EINVAL},
	    {"1KK", -EINVAL},
	    {"1KiBx", -EINVAL},
	    {"1KBB", -EINVAL},
	    {"1iB", -EINVAL}, /* "iB" only after a unit */
	    {"1Bi", -EINVAL},
	    {"1.5.5K", -EINVAL},
	    {"0x10", -EINVAL},
	    {"16777216T", -ERANGE},    /* 2^64 */
	    {"17179869184G", -ERANGE}, /* 2^64 */
	    {"99999999999T", -ERANGE},
	    {"999999999999999999999", -ERANGE},
	    {"18446744073709551616", -ERANGE},
	    {"18446744073709551616B", -ERANGE},
	    {"18014398509481984K", -ERANGE}, /* 2^64 */
	};
	check_bad(nb_parse_size, b, N(b));
}

static void test_duration_good(void **state)
{
	(void)state;
	static const struct good g[] = {
	    {"0", 0},
	    {"10ns", 10},
	    {"500us", 500000},
	    {"150ms", 150000000},
	    {"2s", 2 * NS_S},
	    {"2", 2 * NS_S}, /* bare numbers are seconds */
	    {"1.5s", 3 * NS_S / 2},
	    {"1.5", 3 * NS_S / 2},
	    {"0.001", 1000000},
	    {"0.000000001", 1},
	    {"0.0000000019", 1}, /* digits past nanoseconds are dropped */
	    {"3m", 180 * NS_S},
	    {"1h", 3600 * NS_S},
	    {"1.5ms", 1500000},
	    {"1.5ns", 1}, /* rounded down */
	    {"18446744073s", 18446744073ull * NS_S},
	    {"5124095h", 5124095ull * 3600 * NS_S}, /* just below 2^64 ns */
	    {"30000000000ns", 30000000000ull},
	    {"18446744073709551615ns", UINT64_MAX},
	    {"18446744073709551us", 18446744073709551000ull},
	    {"18446744073.709551615", UINT64_MAX},
	};
	check_good(nb_parse_duration, g, N(g));
}

static void test_duration_bad(void **state)
{
	(void)state;
	static const struct bad b[] = {
	    {NULL, -EINVAL},
	    {"", -EINVAL},
	    {"abc", -EINVAL},
	    {"s", -EINVAL},
	    {"ms", -EINVAL},
	    {"5x", -EINVAL},
	    {"5sec", -EINVAL},
	    {"5S", -EINVAL},
	    {"5 s", -EINVAL},
	    {" 5s", -EINVAL},
	    {"-1s", -EINVAL},
	    {"+1s", -EINVAL},
	    {"1.5.5s", -EINVAL},
	    {"1s2", -EINVAL},
	    {"18446744074s", -ERANGE}, /* > 2^64 ns */
	    {"5124096h", -ERANGE},     /* overflows through the unit multiplier */
	    {"307445735m", -ERANGE},
	    {"99999999999999999999", -ERANGE},
	    {"18446744073709551616ns", -ERANGE},
	    {"18446744073709552us", -ERANGE},
	    {"18446744073.709551616", -ERANGE},
	};
	check_bad(nb_parse_duration, b, N(b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_u64_good),	  cmocka_unit_test(test_u64_bad),
	    cmocka_unit_test(test_size_good),	  cmocka_unit_test(test_size_bad),
	    cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
