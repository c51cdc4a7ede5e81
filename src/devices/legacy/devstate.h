/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the save/restore blobs of the legacy devices (internal to
 * src/devices/legacy/).
 *
 * Every blob has a fixed little-endian layout that starts with an 8-byte
 * header:
 *
 *   offset 0  u32  magic    one per device
 *   offset 4  u16  version  of that device's layout
 *   offset 6  u16  size     of the whole blob, header included
 *
 * A restore checks the header against the one layout it knows (the blob's
 * length, the size field and the constant must all agree; sizes are never
 * used to index anything), then every field, before it changes the device.
 */
#ifndef NUBIS_DEVICES_LEGACY_DEVSTATE_H
#define NUBIS_DEVICES_LEGACY_DEVSTATE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define DEVSTATE_HDR_SIZE 8

static inline void devstate_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void devstate_put32(uint8_t *p, uint32_t v)
{
	devstate_put16(p, (uint16_t)v);
	devstate_put16(p + 2, (uint16_t)(v >> 16));
}

static inline uint16_t devstate_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t devstate_get32(const uint8_t *p)
{
	return devstate_get16(p) | (uint32_t)devstate_get16(p + 2) << 16;
}

/* Write the header of a @size-byte blob into @buf (which holds @cap bytes) and zero the rest.
 * Returns 0, or -ENOSPC if @cap < @size. */
static inline int devstate_begin(uint8_t *buf, size_t cap, uint32_t magic, uint16_t version,
				 uint16_t size)
{
	if (!buf || cap < size)
		return -ENOSPC;
	for (size_t i = 0; i < size; i++)
		buf[i] = 0;
	devstate_put32(buf, magic);
	devstate_put16(buf + 4, version);
	devstate_put16(buf + 6, size);
	return 0;
}

/* 0 if @buf (of @len bytes) carries this header exactly, else -EINVAL. */
static inline int devstate_check(const uint8_t *buf, size_t len, uint32_t magic, uint16_t version,
				 uint16_t size)
{
	if (!buf || len != size || devstate_get32(buf) != magic ||
	    devstate_get16(buf + 4) != version || devstate_get16(buf + 6) != size)
		return -EINVAL;
	return 0;
}

/* 0 if the @n bytes at @p are all zero (reserved fields), else -EINVAL. */
static inline int devstate_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return -EINVAL;
	return 0;
}

#endif
