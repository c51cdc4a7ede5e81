/* SPDX-License-Identifier: MIT */
/* Unit tests: bzImage payload extraction (src/boot/payload.{h,c}): round trips
 * through gzip, xz, zstd and lz4 (legacy frames), the size trailer, caps,
 * truncated/corrupt/oversized payloads and a mutation loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "boot/codec.h"
#include "boot/payload.h"

#define PLAIN_LEN (300u * 1024u)

static uint8_t *plain(void)
{
	uint8_t *p = malloc(PLAIN_LEN);
	for (size_t i = 0; i < PLAIN_LEN; i++)
		p[i] = (uint8_t)((i * 2654435761u) >> 24) & (i % 3 ? 0xff : 0x0f);
	memcpy(p, "\177ELF", 4);
	return p;
}

/* Compress @in with @fmt into a new buffer (no size trailer). */
static uint8_t *compress_with(enum bzimage_payload_fmt fmt, const uint8_t *in, size_t n,
			      size_t *out_len)
{
	size_t cap = n * 2 + 65536;
	uint8_t *out = malloc(cap);
	switch (fmt) {
	case BZIMAGE_PAYLOAD_GZIP: {
		z_stream z;
		memset(&z, 0, sizeof(z));
		assert_int_equal(
		    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = (Bytef *)(uintptr_t)in;
		z.avail_in = (uInt)n;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		*out_len = cap - z.avail_out;
		deflateEnd(&z);
		break;
	}
	case BZIMAGE_PAYLOAD_XZ: {
		size_t pos = 0;
		assert_int_equal(
		    lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, n, out, &pos, cap),
		    LZMA_OK);
		*out_len = pos;
		break;
	}
	case BZIMAGE_PAYLOAD_ZSTD: {
		size_t r = ZSTD_compress(out, cap, in, n, 3);
		assert_false(ZSTD_isError(r));
		*out_len = r;
		break;
	}
	case BZIMAGE_PAYLOAD_LZ4: { /* legacy frame: magic, then (len, block) per 8 MiB */
		uint32_t magic = 0x184c2102u;
		memcpy(out, &magic, 4);
		size_t pos = 4;
		for (size_t off = 0; off < n; off += 8u << 20) {
			size_t chunk = n - off > (8u << 20) ? (8u << 20) : n - off;
			int c = LZ4_compress_default((const char *)in + off, (char *)out + pos + 4,
						     (int)chunk, (int)(cap - pos - 4));
			assert_true(c > 0);
			uint32_t l = (uint32_t)c;
			memcpy(out + pos, &l, 4);
			pos += 4 + (size_t)c;
		}
		*out_len = pos;
		break;
	}
	default:
		memcpy(out, in, n);
		*out_len = n;
		break;
	}
	return out;
}

static const enum bzimage_payload_fmt fmts[] = {BZIMAGE_PAYLOAD_GZIP, BZIMAGE_PAYLOAD_XZ,
						BZIMAGE_PAYLOAD_ZSTD, BZIMAGE_PAYLOAD_LZ4};

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t *p = plain();
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		size_t clen;
		uint8_t *c = compress_with(fmts[f], p, PLAIN_LEN, &clen);
		uint8_t *out = NULL;
		size_t out_len = 0;
		struct nb_error err = {0};
		int rc = payload_decompress(fmts[f], c, clen, PLAIN_LEN, PAYLOAD_MAX_OUT, &out,
					    &out_len, &err);
		if (rc)
			fail_msg("%s: %s", bzimage_payload_name(fmts[f]), err.msg);
		assert_int_equal(out_len, PLAIN_LEN);
		assert_memory_equal(out, p, PLAIN_LEN);
		free(out);
		free(c);
	}
	free(p);
}

static void test_sizes(void **state)
{
	(void)state;
	uint8_t *p = plain();
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		size_t clen;
		uint8_t *c = compress_with(fmts[f], p, PLAIN_LEN, &clen);
		uint8_t *out = (uint8_t *)1;
		size_t out_len = 7;
		struct nb_error err = {0};
		/* declared smaller than the data, larger than the data, 0, over the cap */
		const uint64_t declared[] = {PLAIN_LEN - 1, PLAIN_LEN + 1, 0, PLAIN_LEN};
		const uint64_t caps[] = {PAYLOAD_MAX_OUT, PAYLOAD_MAX_OUT, PAYLOAD_MAX_OUT,
					 PLAIN_LEN - 1};
		for (size_t k = 0; k < 4; k++) {
			err.msg[0] = 0;
			int rc = payload_decompress(fmts[f], c, clen, declared[k], caps[k], &out,
						    &out_len, &err);
			if (rc != -1 || out || out_len || err.code != NB_EFORMAT || !err.msg[0])
				fail_msg("%s case %zu: rc %d", bzimage_payload_name(fmts[f]), k,
					 rc);
		}
		/* truncated */
		for (size_t cut = 1; cut < clen; cut += clen / 7 + 1) {
			int rc = payload_decompress(fmts[f], c, clen - cut, PLAIN_LEN,
						    PAYLOAD_MAX_OUT, &out, &out_len, &err);
			if (rc != -1 || out)
				fail_msg("%s truncated by %zu accepted",
					 bzimage_payload_name(fmts[f]), cut);
		}
		free(c);
	}
	free(p);
}

static void test_unsupported_and_lz4_framing(void **state)
{
	(void)state;
	uint8_t data[64] = {0x42, 0x5a, 0x68};
	uint8_t *out = NULL;
	size_t out_len;
	struct nb_error err = {0};
	assert_int_equal(payload_decompress(BZIMAGE_PAYLOAD_BZIP2, data, sizeof(data), 100,
					    PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 -1);
	assert_non_null(strstr(err.msg, "bzip2"));
	/* lz4: wrong magic, a block length beyond the input, a zero-length block */
	uint8_t l4[16] = {0x02, 0x21, 0x4c, 0x18, 0xff, 0xff, 0x00, 0x00};
	assert_int_equal(payload_decompress(BZIMAGE_PAYLOAD_LZ4, l4, sizeof(l4), 100,
					    PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 -1);
	assert_non_null(strstr(err.msg, "length"));
	memset(l4 + 4, 0, 4);
	assert_int_equal(payload_decompress(BZIMAGE_PAYLOAD_LZ4, l4, 8, 100, PAYLOAD_MAX_OUT, &out,
					    &out_len, &err),
			 -1);
	l4[0] = 0;
	assert_int_equal(payload_decompress(BZIMAGE_PAYLOAD_LZ4, l4, sizeof(l4), 100,
					    PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 -1);
	assert_non_null(strstr(err.msg, "magic"));
	/* uncompressed ELF: the length is the size */
	assert_int_equal(payload_decompress(BZIMAGE_PAYLOAD_ELF, data, sizeof(data), sizeof(data),
					    PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 0);
	assert_int_equal(out_len, sizeof(data));
	free(out);
}

static void test_extract_bounds(void **state)
{
	(void)state;
	uint8_t *p = plain();
	size_t clen;
	uint8_t *c = compress_with(BZIMAGE_PAYLOAD_GZIP, p, PLAIN_LEN, &clen);
	/* a fake image: 1 KiB of setup, then 16 bytes, then the payload and its trailer */
	size_t img_len = 1024 + 16 + clen + 4;
	uint8_t *img = calloc(1, img_len);
	memcpy(img + 1040, c, clen);
	uint32_t size = PLAIN_LEN;
	memcpy(img + 1040 + clen, &size, 4);
	struct bzimage_info bz;
	memset(&bz, 0, sizeof(bz));
	bz.kernel_offset = 1024;
	bz.kernel_size = img_len - 1024;
	bz.payload_offset = 16;
	bz.payload_length = (uint32_t)(clen + 4);
	bz.payload_fmt = BZIMAGE_PAYLOAD_GZIP;
	uint8_t *out = NULL;
	size_t out_len;
	struct nb_error err = {0};
	assert_int_equal(payload_extract(&bz, img, img_len, PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 0);
	assert_int_equal(out_len, PLAIN_LEN);
	assert_memory_equal(out, p, PLAIN_LEN);
	free(out);
	/* a payload reaching beyond the buffer, a tiny one, an overflowing offset */
	struct bzimage_info b2 = bz;
	b2.payload_length += 1;
	assert_int_equal(payload_extract(&b2, img, img_len, PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 -1);
	b2 = bz;
	b2.payload_length = 4;
	assert_int_equal(payload_extract(&b2, img, img_len, PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 -1);
	b2 = bz;
	b2.kernel_offset = UINT64_MAX - 8;
	assert_int_equal(payload_extract(&b2, img, img_len, PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 -1);
	/* a trailer claiming 4 GiB - 1 is over the cap */
	size = 0xffffffffu;
	memcpy(img + 1040 + clen, &size, 4);
	assert_int_equal(payload_extract(&bz, img, img_len, PAYLOAD_MAX_OUT, &out, &out_len, &err),
			 -1);
	assert_non_null(strstr(err.msg, "declared"));
	/* payload_load: valid gzip of something that is not a vmlinux */
	size = PLAIN_LEN;
	memcpy(img + 1040 + clen, &size, 4);
	uint8_t *gbuf = calloc(1, 1 << 20);
	struct gmem mem = gmem_one(gbuf, 0, 1 << 20);
	uint64_t entry = 0, end = 0;
	assert_int_equal(payload_load(&bz, img, img_len, &mem, &entry, &end, &err), -1);
	assert_non_null(strstr(err.msg, "vmlinux"));
	free(gbuf);
	free(img);
	free(c);
	free(p);
}

static void test_mutations(void **state)
{
	(void)state;
	uint8_t *p = plain();
	srand(11);
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		size_t clen;
		uint8_t *c = compress_with(fmts[f], p, PLAIN_LEN, &clen);
		uint8_t *m = malloc(clen);
		for (int k = 0; k < 300; k++) {
			memcpy(m, c, clen);
			for (int j = 0; j < 1 + k % 4; j++)
				m[(size_t)rand() % clen] ^= (uint8_t)(1u << (rand() % 8));
			uint8_t *out = NULL;
			size_t out_len = 0;
			struct nb_error err = {0};
			int rc = payload_decompress(fmts[f], m, clen, PLAIN_LEN, PAYLOAD_MAX_OUT,
						    &out, &out_len, &err);
			/* either a clean error or exactly the declared size (lz4 has no
			 * checksum: a flipped literal decodes to other bytes) */
			if (rc == 0)
				assert_int_equal(out_len, PLAIN_LEN);
			else
				assert_true(out == NULL && err.msg[0]);
			free(out);
		}
		free(m);
		free(c);
	}
	free(p);
}

/* paydl: the decompressors are dlopen()ed per format (codec.h): each loads and
 * resolves; a missing library is a one-line error naming it, not a crash. */
static void test_codec_load(void **state)
{
	(void)state;
	struct codec c;
	struct nb_error err = {0};
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		assert_int_equal(codec_load(&c, fmts[f], &err), 0);
		assert_non_null(c.so);
		assert_true(c.inflate || c.lzma_code || c.ZSTD_decompressStream ||
			    c.LZ4_decompress_safe);
		codec_unload(&c);
		assert_null(c.so);
	}
	assert_int_equal(codec_load(&c, BZIMAGE_PAYLOAD_XZ, &err), 0);
	assert_non_null(c.lzma_code);
	assert_null(c.inflate);
	codec_unload(&c);
	/* a library that is not there */
	assert_int_equal(codec_load_name(&c, BZIMAGE_PAYLOAD_ZSTD, "libzstd.so.999", &err), -1);
	assert_int_equal(err.code, NB_ERESOURCE);
	assert_non_null(strstr(err.msg, "libzstd.so.999"));
	assert_non_null(strstr(err.msg, "libzstd1"));
	assert_null(strchr(err.msg, '\n'));
	assert_null(c.so);
	/* a library without the calls: libz in place of liblzma */
	assert_int_equal(codec_load_name(&c, BZIMAGE_PAYLOAD_XZ, "libz.so.1", &err), -1);
	assert_non_null(strstr(err.msg, "lacks lzma_stream_decoder"));
	assert_null(c.so);
	/* no library for these */
	assert_int_equal(codec_load(&c, BZIMAGE_PAYLOAD_BZIP2, &err), -1);
	assert_int_equal(err.code, NB_EFORMAT);
	assert_int_equal(codec_load(&c, BZIMAGE_PAYLOAD_ELF, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_unsupported_and_lz4_framing),
	    cmocka_unit_test(test_extract_bounds),
	    cmocka_unit_test(test_mutations),
	    cmocka_unit_test(test_codec_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
