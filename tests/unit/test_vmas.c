/* SPDX-License-Identifier: MIT */
/* Unit tests: the guest memory-map list (src/fnvm/vmas.c), checked against a
 * page bitmap model with random operations. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fnvm/vmas.h"
#include "testutil.h"

static void test_merge_split(void **state)
{
	(void)state;
	struct fnvm_vma v[3];
	unsigned n = 0;
	assert_int_equal(vmas_insert(v, &n, 3, 0x1000, 0x2000), 0);
	assert_int_equal(vmas_insert(v, &n, 3, 0x3000, 0x4000), 0);
	assert_int_equal(n, 2);
	assert_int_equal(vmas_insert(v, &n, 3, 0x2000, 0x3000), 0); /* joins both */
	assert_int_equal(n, 1);
	assert_true(v[0].start == 0x1000 && v[0].end == 0x4000);
	assert_true(vmas_covers(v, n, 0x1000, 0x4000));
	assert_false(vmas_covers(v, n, 0x1000, 0x5000));
	assert_int_equal(vmas_remove(v, &n, 3, 0x2000, 0x3000), 0); /* split */
	assert_int_equal(n, 2);
	assert_false(vmas_overlaps(v, n, 0x2000, 0x3000));
	assert_true(vmas_overlaps(v, n, 0x2fff, 0x3001));
	/* a split with no room left fails and changes nothing */
	assert_int_equal(vmas_insert(v, &n, 3, 0x8000, 0x9000), 0);
	assert_int_equal(vmas_remove(v, &n, 3, 0x1400, 0x1800), -ENOMEM);
	assert_int_equal(n, 3);
	assert_true(v[0].start == 0x1000 && v[0].end == 0x2000);
	assert_int_equal(vmas_insert(v, &n, 3, 0x5000, 0x6000), -ENOMEM);
	assert_int_equal(vmas_remove(v, &n, 3, 0, 0x10000), 0);
	assert_int_equal(n, 0);
}

#define PAGES 64
static void test_random_against_model(void **state)
{
	(void)state;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	struct fnvm_vma v[PAGES];
	unsigned n = 0;
	uint8_t model[PAGES] = {0};
	for (int step = 0; step < 20000; step++) {
		unsigned a = (unsigned)(testutil_rng_next(&rng) % PAGES);
		unsigned e = a + 1 + (unsigned)(testutil_rng_next(&rng) % (PAGES - a));
		int mapped = 0;
		for (unsigned p = a; p < e; p++)
			mapped |= model[p];
		if (testutil_rng_next(&rng) & 1) {
			if (mapped)
				continue; /* insert requires a free range */
			assert_int_equal(vmas_insert(v, &n, PAGES, a, e), 0);
			memset(model + a, 1, e - a);
		} else {
			assert_int_equal(vmas_remove(v, &n, PAGES, a, e), 0);
			memset(model + a, 0, e - a);
		}
		/* sorted, disjoint, merged, and exactly the model's pages */
		uint8_t seen[PAGES] = {0};
		for (unsigned i = 0; i < n; i++) {
			assert_true(v[i].start < v[i].end && v[i].end <= PAGES);
			if (i)
				assert_true(v[i - 1].end < v[i].start);
			memset(seen + v[i].start, 1, v[i].end - v[i].start);
		}
		assert_memory_equal(seen, model, PAGES);
		assert_int_equal(vmas_overlaps(v, n, a, e), !!memchr(model + a, 1, e - a));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_split),
	    cmocka_unit_test(test_random_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
