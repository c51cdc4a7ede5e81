/* SPDX-License-Identifier: MIT */
/*
 * The decompression libraries of payload.c (zlib, liblzma, libzstd, liblz4),
 * loaded with dlopen() when a payload in that format is extracted rather than
 * when nubis-vmm starts: linking all four cost every start ~1 ms and ~0.5 MiB
 * of RssFile, although a kernel without a compressed payload (our tiny guest)
 * needs none of them. Same pattern as src/common/mhd.h and src/image/libs.h.
 * Headers only at build time.
 *
 * The table holds the calls payload.c makes; every call into these libraries
 * goes through it, so nothing links them (a direct call would not link).
 */
#ifndef NUBIS_BOOT_CODEC_H
#define NUBIS_BOOT_CODEC_H

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "../common/error.h"
#include "bzimage.h"

/* The exact sonames of the ABIs the headers describe (Debian 12: zlib1g,
 * liblzma5, libzstd1, liblz4-1). A newer major version is a different ABI. */
#define CODEC_ZLIB_SONAME "libz.so.1"
#define CODEC_LZMA_SONAME "liblzma.so.5"
#define CODEC_ZSTD_SONAME "libzstd.so.1"
#define CODEC_LZ4_SONAME  "liblz4.so.1"

#if !defined(ZLIB_VERNUM) || ZLIB_VERNUM < 0x1200 || ZLIB_VERNUM >= 0x2000
#error "codec.h: zlib headers are not the libz.so.1 ABI (1.2+)"
#endif
#if LZMA_VERSION_MAJOR != 5
#error "codec.h: liblzma headers are not the liblzma.so.5 ABI"
#endif
#if ZSTD_VERSION_MAJOR != 1
#error "codec.h: zstd headers are not the libzstd.so.1 ABI"
#endif
#if LZ4_VERSION_MAJOR != 1
#error "codec.h: lz4 headers are not the liblz4.so.1 ABI"
#endif

/* X(name): every function payload.c calls, per library. inflateInit2() is a
 * macro over inflateInit2_(); LZ4_COMPRESSBOUND() replaces LZ4_compressBound(). */
#define CODEC_ZLIB_FNS(X) X(inflateInit2_) X(inflate) X(inflateEnd)
#define CODEC_LZMA_FNS(X) X(lzma_stream_decoder) X(lzma_code) X(lzma_end)
#define CODEC_ZSTD_FNS(X)                                                                          \
	X(ZSTD_createDStream)                                                                      \
	X(ZSTD_freeDStream)                                                                        \
	X(ZSTD_DCtx_setParameter)                                                                  \
	X(ZSTD_decompressStream)                                                                   \
	X(ZSTD_isError)                                                                            \
	X(ZSTD_getErrorName)
#define CODEC_LZ4_FNS(X) X(LZ4_decompress_safe)

/* One loaded library and its calls, each member named after the function it
 * points to (c->lzma_code()). Only the members of the library of @fmt are
 * set; the rest stay NULL. Read-only once codec_load() has filled it. */
struct codec {
	void *so;
	enum bzimage_payload_fmt fmt;
#define CODEC_MEMBER(fn) __typeof__(fn) *fn;
	CODEC_ZLIB_FNS(CODEC_MEMBER)
	CODEC_LZMA_FNS(CODEC_MEMBER)
	CODEC_ZSTD_FNS(CODEC_MEMBER)
	CODEC_LZ4_FNS(CODEC_MEMBER)
#undef CODEC_MEMBER
};

/* Load the library that decompresses @fmt (gzip, xz, zstd or lz4) and
 * resolve its calls into @c (overwritten). Returns 0, or -1 with @err
 * (NB_ERESOURCE, one line naming the library, its Debian package and the
 * loader's reason; NB_EFORMAT for a format no library handles) and @c
 * zeroed. */
int codec_load(struct codec *c, enum bzimage_payload_fmt fmt, struct nb_error *err);
/* codec_load() from another soname (tests of the failure path). */
int codec_load_name(struct codec *c, enum bzimage_payload_fmt fmt, const char *soname,
		    struct nb_error *err);
/* Drop the reference taken by codec_load() and zero @c; a zeroed @c is fine.
 * No call through @c may be made afterwards. */
void codec_unload(struct codec *c);

#endif
