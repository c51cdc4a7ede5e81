/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests that parse crafted images and run deterministic
 * mutation loops over them (test_boot.c, test_elf.c). Header-only: each test is its own
 * executable. Include after <cmocka.h>'s prerequisites (setjmp.h, stdarg.h, stddef.h). */
#ifndef NUBIS_TESTS_UNIT_TESTUTIL_H
#define NUBIS_TESTS_UNIT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"

/* The next value of the xorshift64* generator whose state is *@state (never 0); the
 * sequence is fixed by the seed, so a mutation loop is reproducible. */
static inline uint64_t testutil_rng_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

/* A malloc'd copy of exactly @len bytes of @b (at least one byte allocated), so that a
 * parser reading past @len trips ASan; fails the test when out of memory. Free it. */
static inline uint8_t *testutil_copy_exact(const uint8_t *b, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, b, len);
	return copy;
}

/* Asserts that @rc and @err are what a parser gives for a malformed image: -1, NB_EFORMAT
 * and a non-empty, NUL-terminated message. */
static inline void testutil_assert_format_error(int rc, const struct nb_error *err)
{
	assert_int_equal(rc, -1);
	assert_int_equal(err->code, NB_EFORMAT);
	assert_true(err->msg[0] != 0);
	assert_true(memchr(err->msg, 0, sizeof(err->msg)) != NULL);
}

#endif
