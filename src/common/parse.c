/* SPDX-License-Identifier: MIT */
#include "parse.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

int nb_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -ERANGE;
	}
	*out = v;
	return 0;
}

/* A leading decimal number with an optional fraction: whole part and the
 * fraction in nanos (digits past the ninth are dropped). */
static int parse_fixed(const char **sp, uint64_t *whole_out, uint64_t *frac_nano)
{
	const char *s = *sp;
	uint64_t whole = 0, frac = 0, scale = 1000000000ull;
	int digits = 0;
	for (; *s >= '0' && *s <= '9'; s++, digits++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, (uint64_t)(*s - '0'), &whole))
			return -ERANGE;
	if (*s == '.') {
		s++;
		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*s - '0') * scale;
			}
		}
	}
	if (!digits)
		return -EINVAL;
	*whole_out = whole;
	*frac_nano = frac;
	*sp = s;
	return 0;
}

/* whole.frac * mult, rounded down, or -ERANGE */
static int scale_fixed(uint64_t whole, uint64_t frac_nano, uint64_t mult, uint64_t *out)
{
	unsigned __int128 r =
	    (unsigned __int128)whole * mult + (unsigned __int128)frac_nano * mult / 1000000000ull;
	if (r > UINT64_MAX)
		return -ERANGE;
	*out = (uint64_t)r;
	return 0;
}

int nb_parse_size(const char *s, uint64_t *out)
{
	uint64_t whole, frac, mult = 1;
	if (!s)
		return -EINVAL;
	int rc = parse_fixed(&s, &whole, &frac);
	if (rc)
		return rc;
	switch (*s) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1ull << 10;
		s++;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		s++;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		s++;
		break;
	case 't':
	case 'T':
		mult = 1ull << 40;
		s++;
		break;
	case 'b':
	case 'B':
		break;
	default:
		return -EINVAL;
	}
	if (mult > 1 && (*s == 'i' || *s == 'I'))
		s++;
	if (*s == 'b' || *s == 'B')
		s++;
	if (*s)
		return -EINVAL;
	return scale_fixed(whole, frac, mult, out);
}

int nb_parse_duration(const char *s, uint64_t *out_ns)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {
	    {"ns", 1},
	    {"us", 1000},
	    {"ms", 1000000},
	    {"s", 1000000000ull},
	    {"m", 60000000000ull},
	    {"h", 3600000000000ull},
	    {"", 1000000000ull},
	};
	uint64_t whole, frac;
	if (!s)
		return -EINVAL;
	int rc = parse_fixed(&s, &whole, &frac);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(s, units[i].unit))
			return scale_fixed(whole, frac, units[i].ns, out_ns);
	return -EINVAL;
}
