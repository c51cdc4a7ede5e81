/* SPDX-License-Identifier: MIT */
/* Unit tests: gmem_ptr, gmem_add, gmem_read, gmem_write, gmem_strnlen (src/core/gmem.{h,c}). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/gmem.h"

#define BASE 0x200000ull
#define SIZE 0x2000ull

struct fixture {
	uint8_t *buf; /* exactly SIZE bytes, so ASan sees any stray access */
	struct gmem m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->buf = malloc(SIZE);
	if (!f->buf)
		return -1;
	for (size_t i = 0; i < SIZE; i++)
		f->buf[i] = (uint8_t)(i * 7 + 1) | 1; /* no NUL bytes */
	f->m = gmem_one(f->buf, BASE, SIZE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	free(f->buf);
	free(f);
	return 0;
}

static void test_ptr_inside(void **state)
{
	struct fixture *f = *state;
	const struct gmem *m = &f->m;
	assert_ptr_equal(gmem_ptr(m, BASE, 0), f->buf);
	assert_ptr_equal(gmem_ptr(m, BASE, 1), f->buf);
	assert_ptr_equal(gmem_ptr(m, BASE, SIZE), f->buf);
	assert_ptr_equal(gmem_ptr(m, BASE + 1, SIZE - 1), f->buf + 1);
	assert_ptr_equal(gmem_ptr(m, BASE + SIZE - 1, 1), f->buf + SIZE - 1);
	assert_ptr_equal(gmem_ptr(m, BASE + 0x1000, 0x1000), f->buf + 0x1000);
	/* an empty range at the very end is inside */
	assert_ptr_equal(gmem_ptr(m, BASE + SIZE, 0), f->buf + SIZE);
}

static void test_ptr_outside(void **state)
{
	struct fixture *f = *state;
	const struct gmem *m = &f->m;
	assert_null(gmem_ptr(m, BASE, SIZE + 1));
	assert_null(gmem_ptr(m, BASE + 1, SIZE));
	assert_null(gmem_ptr(m, BASE + SIZE - 1, 2));
	assert_null(gmem_ptr(m, BASE + SIZE, 1));
	assert_null(gmem_ptr(m, BASE + SIZE + 1, 0));
	assert_null(gmem_ptr(m, BASE - 1, 0));
	assert_null(gmem_ptr(m, BASE - 1, 1));
	assert_null(gmem_ptr(m, BASE - 1, 2));
	assert_null(gmem_ptr(m, 0, 0));
	assert_null(gmem_ptr(m, 0, BASE + 1));
	/* lengths and addresses whose sum overflows 64 bits */
	assert_null(gmem_ptr(m, BASE, UINT64_MAX));
	assert_null(gmem_ptr(m, BASE + 1, UINT64_MAX));
	assert_null(gmem_ptr(m, BASE + 0x10, UINT64_MAX - 0xf));
	assert_null(gmem_ptr(m, BASE + SIZE - 1, UINT64_MAX));
	assert_null(gmem_ptr(m, UINT64_MAX, 0));
	assert_null(gmem_ptr(m, UINT64_MAX, 1));
	assert_null(gmem_ptr(m, UINT64_MAX - 0x10, 0x20));
	assert_null(gmem_ptr(m, UINT64_MAX - BASE + 1, BASE));
}

/* Memory that ends exactly at the top of the 64-bit space. */
static void test_ptr_top_of_space(void **state)
{
	struct fixture *f = *state;
	struct gmem top = gmem_one(f->buf, UINT64_MAX - SIZE + 1, SIZE);
	assert_ptr_equal(gmem_ptr(&top, UINT64_MAX, 1), f->buf + SIZE - 1);
	assert_ptr_equal(gmem_ptr(&top, top.r[0].base, SIZE), f->buf);
	assert_null(gmem_ptr(&top, UINT64_MAX, 2));
	assert_null(gmem_ptr(&top, top.r[0].base, SIZE + 1));
	assert_null(gmem_ptr(&top, top.r[0].base - 1, 1));
	assert_null(gmem_ptr(&top, UINT64_MAX, UINT64_MAX));
	assert_null(gmem_ptr(&top, 0, 1)); /* wrapped around */
	assert_null(gmem_ptr(&top, 0, 0));
	assert_int_equal(gmem_strnlen(&top, UINT64_MAX, 100),
			 -EFAULT); /* unterminated at the end */
	f->buf[SIZE - 1] = 0;
	assert_int_equal(gmem_strnlen(&top, UINT64_MAX, 100), 0);
	assert_int_equal(gmem_strnlen(&top, UINT64_MAX - 3, 100), 3);
}

/* Empty memory: nothing but the empty range at base is inside. */
static void test_ptr_empty(void **state)
{
	struct fixture *f = *state;
	struct gmem e = gmem_one(f->buf, BASE, 0);
	assert_ptr_equal(gmem_ptr(&e, BASE, 0), f->buf);
	assert_null(gmem_ptr(&e, BASE, 1));
	assert_null(gmem_ptr(&e, BASE + 1, 0));
	assert_int_equal(gmem_strnlen(&e, BASE, 10), -EFAULT);
}

static void test_read_write(void **state)
{
	struct fixture *f = *state;
	const struct gmem *m = &f->m;
	uint8_t src[64], dst[64];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(gmem_write(m, BASE + 0x100, src, sizeof(src)), 0);
	assert_memory_equal(f->buf + 0x100, src, sizeof(src));
	memset(dst, 0, sizeof(dst));
	assert_int_equal(gmem_read(m, BASE + 0x100, dst, sizeof(dst)), 0);
	assert_memory_equal(dst, src, sizeof(src));

	/* last bytes of memory */
	assert_int_equal(gmem_write(m, BASE + SIZE - 8, src, 8), 0);
	assert_memory_equal(f->buf + SIZE - 8, src, 8);
	assert_int_equal(gmem_read(m, BASE + SIZE - 8, dst, 8), 0);

	/* out of range: -EFAULT and nothing copied */
	uint8_t before[SIZE];
	memcpy(before, f->buf, SIZE);
	memset(dst, 0x55, sizeof(dst));
	assert_int_equal(gmem_write(m, BASE + SIZE - 8, src, 9), -EFAULT);
	assert_int_equal(gmem_write(m, BASE - 1, src, 2), -EFAULT);
	assert_int_equal(gmem_write(m, UINT64_MAX - 3, src, 8), -EFAULT);
	assert_int_equal(gmem_write(m, BASE + 8, src, UINT64_MAX - 4), -EFAULT);
	assert_memory_equal(f->buf, before, SIZE);
	assert_int_equal(gmem_read(m, BASE + SIZE - 8, dst, 9), -EFAULT);
	assert_int_equal(gmem_read(m, BASE - 8, dst, 8), -EFAULT);
	assert_int_equal(gmem_read(m, UINT64_MAX, dst, 1), -EFAULT);
	assert_int_equal(gmem_read(m, BASE + 1, dst, UINT64_MAX), -EFAULT);
	for (size_t i = 0; i < sizeof(dst); i++)
		assert_int_equal(dst[i], 0x55);

	/* zero-length copies inside memory succeed */
	assert_int_equal(gmem_read(m, BASE + SIZE, dst, 0), 0);
	assert_int_equal(gmem_write(m, BASE, src, 0), 0);
}

static void test_strnlen(void **state)
{
	struct fixture *f = *state;
	const struct gmem *m = &f->m;
	memcpy(f->buf + 0x10, "hello", 6);
	assert_int_equal(gmem_strnlen(m, BASE + 0x10, 100), 5);
	assert_int_equal(gmem_strnlen(m, BASE + 0x10, 5), 5); /* exactly max */
	assert_int_equal(gmem_strnlen(m, BASE + 0x10, 4), -ENAMETOOLONG);
	assert_int_equal(gmem_strnlen(m, BASE + 0x10, 0), -ENAMETOOLONG);
	assert_int_equal(gmem_strnlen(m, BASE + 0x15, 0), 0); /* empty string */
	assert_int_equal(gmem_strnlen(m, BASE + 0x13, 10), 2);

	/* outside memory */
	assert_int_equal(gmem_strnlen(m, BASE - 1, 10), -EFAULT);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE, 10), -EFAULT);
	assert_int_equal(gmem_strnlen(m, UINT64_MAX, 10), -EFAULT);
	assert_int_equal(gmem_strnlen(m, 0, 10), -EFAULT);

	/* unterminated up to the end of memory: -EFAULT, not a read past it */
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 4096), -EFAULT);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 1, 4096), -EFAULT);
	/* ...unless max runs out first */
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 8), -ENAMETOOLONG);
	/* max + 1 == what is left: the NUL would have to be beyond memory */
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 15), -EFAULT);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 14), -ENAMETOOLONG);

	/* max = UINT64_MAX means no limit (max + 1 must not wrap to 0) */
	assert_int_equal(gmem_strnlen(m, BASE + 0x10, UINT64_MAX), 5);
	assert_int_equal(gmem_strnlen(m, BASE + 0x10, UINT64_MAX - 1), 5);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, UINT64_MAX), -EFAULT);
	/* max around what is left */
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 16), -EFAULT);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 17), -EFAULT);

	/* NUL in the last byte */
	f->buf[SIZE - 1] = 0;
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 4096), 15);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 15), 15);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 1, 4096), 0);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, UINT64_MAX), 15);
	assert_int_equal(gmem_strnlen(m, BASE + SIZE - 16, 14), -ENAMETOOLONG);
}

/* Several regions (RAM below the PCI hole and above 4 GiB, as nubis-vmm maps it): a range
 * must lie inside ONE region, adjacent regions are not joined, gaps are outside. */
static void test_regions(void **state)
{
	(void)state;
	static uint8_t lo[0x2000], mid[0x1000], hi[0x3000];
	struct gmem m = {0};
	/* added out of order: kept sorted */
	assert_int_equal(gmem_add(&m, hi, 0x100000000ull, sizeof(hi)), 0);
	assert_int_equal(gmem_add(&m, lo, 0, sizeof(lo)), 0);
	assert_int_equal(gmem_add(&m, mid, 0x2000, sizeof(mid)), 0); /* adjacent to lo */
	assert_int_equal(m.n, 3);
	assert_int_equal(m.r[0].base, 0);
	assert_int_equal(m.r[1].base, 0x2000);
	assert_int_equal(m.r[2].base, 0x100000000ull);
	assert_int_equal(gmem_end(&m), 0x100003000ull);
	assert_int_equal(gmem_total(&m), sizeof(lo) + sizeof(mid) + sizeof(hi));

	assert_ptr_equal(gmem_ptr(&m, 0x1fff, 1), lo + 0x1fff);
	assert_ptr_equal(gmem_ptr(&m, 0x2000, 0x1000), mid);
	assert_ptr_equal(gmem_ptr(&m, 0x100000000ull, 0x3000), hi);
	assert_ptr_equal(gmem_ptr(&m, 0x100002fffull, 1), hi + 0x2fff);
	/* across the lo/mid boundary: two regions, even though they touch */
	assert_null(gmem_ptr(&m, 0x1fff, 2));
	assert_null(gmem_ptr(&m, 0, 0x3000));
	/* in the gap (the hole) and across it */
	assert_null(gmem_ptr(&m, 0x3000, 1));
	assert_null(gmem_ptr(&m, 0xc0000000ull, 1));
	assert_null(gmem_ptr(&m, 0x2fff, 0x100000000ull));
	assert_null(gmem_ptr(&m, 0xffffffffull, 2));
	/* past the end, overflow */
	assert_null(gmem_ptr(&m, 0x100003000ull, 1));
	assert_null(gmem_ptr(&m, 0x100000001ull, UINT64_MAX));
	assert_null(gmem_ptr(&m, UINT64_MAX, 1));

	uint8_t b[4] = {1, 2, 3, 4}, r[4] = {0};
	assert_int_equal(gmem_write(&m, 0x100001000ull, b, 4), 0);
	assert_int_equal(gmem_read(&m, 0x100001000ull, r, 4), 0);
	assert_memory_equal(r, b, 4);
	assert_int_equal(gmem_write(&m, 0x1ffe, b, 4), -EFAULT);
	assert_int_equal(lo[0x1ffe], 0); /* nothing written on failure */

	/* a string is not read across regions */
	memset(lo + 0x1ff0, 'a', 0x10);
	mid[0] = 0;
	assert_int_equal(gmem_strnlen(&m, 0x1ff0, 100), -EFAULT);
	assert_int_equal(gmem_strnlen(&m, 0x2000, 100), 0);
	hi[5] = 0;
	memset(hi, 'b', 5);
	assert_int_equal(gmem_strnlen(&m, 0x100000000ull, 100), 5);
}

static void test_add_rejects(void **state)
{
	(void)state;
	static uint8_t buf[0x1000];
	struct gmem m = {0};
	assert_int_equal(gmem_add(&m, buf, 0x10000, 0x1000), 0);
	assert_int_equal(gmem_add(&m, buf, 0x10000, 0x1000), -EINVAL);	/* same */
	assert_int_equal(gmem_add(&m, buf, 0xf001, 0x1000), -EINVAL);	/* tail overlaps */
	assert_int_equal(gmem_add(&m, buf, 0x10fff, 0x1000), -EINVAL);	/* head overlaps */
	assert_int_equal(gmem_add(&m, buf, 0x8000, 0x100000), -EINVAL); /* covers it */
	assert_int_equal(gmem_add(&m, buf, 0x20000, 0), -EINVAL);	/* empty */
	assert_int_equal(gmem_add(&m, buf, UINT64_MAX - 0xfff, 0x1001), -EINVAL); /* wraps */
	assert_int_equal(gmem_add(&m, buf, UINT64_MAX - 0xfff, 0x1000), 0);	  /* ends at 2^64 */
	assert_int_equal(m.n, 2);
	assert_int_equal(gmem_add(&m, buf, 0xf000, 0x1000), 0);	 /* exactly adjacent below */
	assert_int_equal(gmem_add(&m, buf, 0x11000, 0x1000), 0); /* and above */
	assert_int_equal(m.n, 4);
	assert_int_equal(gmem_add(&m, buf, 0x100000, 0x1000), -ENOSPC);
	assert_int_equal(m.n, GMEM_MAX_REGIONS);
	for (unsigned i = 1; i < m.n; i++)
		assert_true(m.r[i - 1].base < m.r[i].base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ptr_inside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ptr_outside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ptr_top_of_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ptr_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_strnlen, setup, teardown),
	    cmocka_unit_test(test_regions),
	    cmocka_unit_test(test_add_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
