/* SPDX-License-Identifier: MIT */
/* Parsers for command-line and config values. All return 0 or -EINVAL/-ERANGE. */
#ifndef NUBIS_COMMON_PARSE_H
#define NUBIS_COMMON_PARSE_H

#include <stdint.h>

/* Decimal unsigned integer, whole string, no sign, no overflow. */
int nb_parse_u64(const char *s, uint64_t *out);
/* Byte size: "4096", "64K", "64M", "2G", "1T" (binary units, optional "iB"/"B"). */
int nb_parse_size(const char *s, uint64_t *out);
/* Duration in nanoseconds: "150ms", "2s", "1.5s", "3m", "500us", "10ns"; bare numbers are seconds.
 */
int nb_parse_duration(const char *s, uint64_t *out_ns);

#endif
