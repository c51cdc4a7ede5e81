/* SPDX-License-Identifier: MIT */
#include "payload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20) /* decompressed size of every block but the last */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int dec_gzip(const struct codec *c, const uint8_t *in, size_t in_len, uint8_t *out,
		    size_t cap, size_t *got, struct nb_error *err)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (c->inflateInit2_(&z, 16 + MAX_WBITS, ZLIB_VERSION, (int)sizeof(z)) != Z_OK)
		return nb_error_set(err, NB_ERESOURCE, "payload: zlib init failed");
	int rc = Z_OK;
	size_t ipos = 0, opos = 0;
	while (rc == Z_OK) {
		/* zlib counts in uInt: feed at most 1 GiB at a time */
		size_t ichunk = in_len - ipos > (1u << 30) ? (1u << 30) : in_len - ipos;
		size_t ochunk = cap - opos > (1u << 30) ? (1u << 30) : cap - opos;
		z.next_in = (Bytef *)(uintptr_t)(in + ipos);
		z.avail_in = (uInt)ichunk;
		z.next_out = out + opos;
		z.avail_out = (uInt)ochunk;
		rc = c->inflate(&z, Z_NO_FLUSH);
		ipos += ichunk - z.avail_in;
		opos += ochunk - z.avail_out;
		if (rc == Z_BUF_ERROR || (rc == Z_OK && opos == cap))
			rc = opos == cap ? Z_MEM_ERROR : Z_DATA_ERROR;
	}
	c->inflateEnd(&z);
	*got = opos;
	if (rc != Z_STREAM_END)
		return nb_error_set(err, NB_EFORMAT, "payload: gzip: %s",
				    rc == Z_MEM_ERROR ? "larger than its declared size"
						      : "corrupt or truncated data");
	return 0;
}

static int dec_xz(const struct codec *c, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
		  size_t *got, struct nb_error *err)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (c->lzma_stream_decoder(&s, 256u << 20, 0) != LZMA_OK)
		return nb_error_set(err, NB_ERESOURCE, "payload: liblzma init failed");
	s.next_in = in;
	s.avail_in = in_len;
	s.next_out = out;
	s.avail_out = cap;
	lzma_ret rc = c->lzma_code(&s, LZMA_FINISH);
	*got = cap - s.avail_out;
	c->lzma_end(&s);
	if (rc != LZMA_STREAM_END)
		return nb_error_set(err, NB_EFORMAT, "payload: xz: %s (liblzma code %d)",
				    rc == LZMA_BUF_ERROR && !s.avail_out
					? "larger than its declared size"
					: "corrupt or truncated data",
				    (int)rc);
	return 0;
}

static int dec_zstd(const struct codec *c, const uint8_t *in, size_t in_len, uint8_t *out,
		    size_t cap, size_t *got, struct nb_error *err)
{
	ZSTD_DStream *z = c->ZSTD_createDStream();
	if (!z)
		return nb_error_set(err, NB_ERESOURCE, "payload: zstd init failed");
	/* the kernel's decompressor has a bounded window; so do we */
	c->ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, 27);
	ZSTD_inBuffer ib = {in, in_len, 0};
	ZSTD_outBuffer ob = {out, cap, 0};
	size_t rc = 1;
	while (rc != 0) {
		size_t before_in = ib.pos, before_out = ob.pos;
		rc = c->ZSTD_decompressStream(z, &ob, &ib);
		if (c->ZSTD_isError(rc) || (ib.pos == before_in && ob.pos == before_out))
			break;
	}
	c->ZSTD_freeDStream(z);
	*got = ob.pos;
	if (rc != 0)
		return nb_error_set(err, NB_EFORMAT, "payload: zstd: %s",
				    c->ZSTD_isError(rc) ? c->ZSTD_getErrorName(rc)
				    : ob.pos == cap	? "larger than its declared size"
							: "truncated data");
	return 0;
}

/* lz4 legacy frames: a magic, then blocks of (4-byte compressed length, data), each
 * decompressing to 8 MiB except the last; a repeated magic starts a new frame. */
static int dec_lz4(const struct codec *c, const uint8_t *in, size_t in_len, uint8_t *out,
		   size_t cap, size_t *got, struct nb_error *err)
{
	size_t ipos = 0, opos = 0;
	*got = 0;
	if (in_len < 4 || le32(in) != LZ4_LEGACY_MAGIC)
		return nb_error_set(err, NB_EFORMAT, "payload: lz4: no legacy-frame magic");
	ipos = 4;
	while (in_len - ipos >= 4) {
		uint32_t clen = le32(in + ipos);
		ipos += 4;
		if (clen == LZ4_LEGACY_MAGIC)
			continue;
		if (clen == 0 || clen > (uint32_t)LZ4_COMPRESSBOUND(LZ4_LEGACY_BLOCK) ||
		    clen > in_len - ipos)
			return nb_error_set(err, NB_EFORMAT,
					    "payload: lz4: block at +%zu has length %u (%zu bytes "
					    "left)",
					    ipos - 4, clen, in_len - ipos);
		size_t room = cap - opos > LZ4_LEGACY_BLOCK ? LZ4_LEGACY_BLOCK : cap - opos;
		int n = c->LZ4_decompress_safe((const char *)in + ipos, (char *)out + opos,
					       (int)clen, (int)room);
		if (n < 0)
			return nb_error_set(err, NB_EFORMAT,
					    "payload: lz4: block at +%zu is corrupt or larger "
					    "than the declared size",
					    ipos - 4);
		ipos += clen;
		opos += (size_t)n;
		*got = opos;
	}
	if (ipos != in_len)
		return nb_error_set(err, NB_EFORMAT, "payload: lz4: %zu stray bytes at the end",
				    in_len - ipos);
	return 0;
}

int payload_decompress(enum bzimage_payload_fmt fmt, const uint8_t *in, size_t in_len,
		       uint64_t declared, uint64_t max_out, uint8_t **out, size_t *out_len,
		       struct nb_error *err)
{
	*out = NULL;
	*out_len = 0;
	if (max_out > PAYLOAD_MAX_OUT)
		max_out = PAYLOAD_MAX_OUT;
	if (declared == 0 || declared > max_out)
		return nb_error_set(err, NB_EFORMAT,
				    "payload: declared decompressed size %llu (need 1..%llu)",
				    (unsigned long long)declared, (unsigned long long)max_out);
	size_t cap = (size_t)declared, got = 0;
	uint8_t *buf = NULL;
	int rc;
	if (fmt == BZIMAGE_PAYLOAD_ELF) {
		if (in_len != declared)
			return nb_error_set(err, NB_EFORMAT,
					    "payload: uncompressed ELF of %zu bytes, declared %llu",
					    in_len, (unsigned long long)declared);
		buf = malloc(cap);
		if (!buf)
			return nb_error_set(err, NB_ERESOURCE, "payload: out of memory");
		memcpy(buf, in, cap);
		*out = buf;
		*out_len = cap;
		return 0;
	}
	struct codec c = {0};
	switch (fmt) {
	case BZIMAGE_PAYLOAD_GZIP:
	case BZIMAGE_PAYLOAD_XZ:
	case BZIMAGE_PAYLOAD_ZSTD:
	case BZIMAGE_PAYLOAD_LZ4:
		break;
	default:
		return nb_error_set(
		    err, NB_EFORMAT,
		    "payload: %s compression is not supported (gzip, xz, zstd, lz4)",
		    bzimage_payload_name(fmt));
	}
	/* the decompressor's library is loaded now, not when nubis-vmm starts (codec.h) */
	if (codec_load(&c, fmt, err) < 0)
		return -1;
	rc = -1;
	buf = malloc(cap);
	if (!buf) {
		nb_error_set(err, NB_ERESOURCE, "payload: out of memory (%zu bytes)", cap);
		goto out;
	}
	switch (fmt) {
	case BZIMAGE_PAYLOAD_GZIP:
		rc = dec_gzip(&c, in, in_len, buf, cap, &got, err);
		break;
	case BZIMAGE_PAYLOAD_XZ:
		rc = dec_xz(&c, in, in_len, buf, cap, &got, err);
		break;
	case BZIMAGE_PAYLOAD_ZSTD:
		rc = dec_zstd(&c, in, in_len, buf, cap, &got, err);
		break;
	default: /* BZIMAGE_PAYLOAD_LZ4, the last format let through above */
		rc = dec_lz4(&c, in, in_len, buf, cap, &got, err);
		break;
	}
	if (rc == 0 && got != cap)
		rc = nb_error_set(err, NB_EFORMAT,
				  "payload: decompressed to %zu bytes, declared %zu", got, cap);
out:
	codec_unload(&c);
	if (rc) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = cap;
	return 0;
}

int payload_extract(const struct bzimage_info *bz, const uint8_t *img, size_t len, uint64_t max_out,
		    uint8_t **out, size_t *out_len, struct nb_error *err)
{
	*out = NULL;
	*out_len = 0;
	/* bzimage_parse() checked the payload range against the file; check again, cheaply,
	 * since a caller could pass another buffer */
	uint64_t start, end;
	if (bz->payload_length < 8 ||
	    __builtin_add_overflow(bz->kernel_offset, (uint64_t)bz->payload_offset, &start) ||
	    __builtin_add_overflow(start, (uint64_t)bz->payload_length, &end) || end > len)
		return nb_error_set(err, NB_EFORMAT,
				    "payload: offset %#x length %u: absent or outside the file",
				    bz->payload_offset, bz->payload_length);
	const uint8_t *p = img + start;
	size_t plen = bz->payload_length;
	if (bz->payload_fmt == BZIMAGE_PAYLOAD_ELF) /* no size trailer */
		return payload_decompress(bz->payload_fmt, p, plen, plen, max_out, out, out_len,
					  err);
	uint32_t declared = le32(p + plen - 4);
	return payload_decompress(bz->payload_fmt, p, plen - 4, declared, max_out, out, out_len,
				  err);
}

int payload_load(const struct bzimage_info *bz, const uint8_t *img, size_t len,
		 const struct gmem *mem, uint64_t *entry, uint64_t *end, struct nb_error *err)
{
	uint8_t *elf = NULL;
	size_t elf_len = 0;
	struct vmlinux_info vi;
	struct nb_error perr = {0};
	int rc = -1;
	if (payload_extract(bz, img, len, PAYLOAD_MAX_OUT, &elf, &elf_len, err) < 0)
		return -1;
	if (vmlinux_parse(elf, elf_len, &vi, &perr) < 0) {
		nb_error_set(err, NB_EFORMAT, "payload: not a usable vmlinux: %s", perr.msg);
		goto out;
	}
	if (vmlinux_load(&vi, elf, elf_len, mem, err) < 0)
		goto out;
	*entry = vi.entry;
	*end = vi.hi;
	rc = 0;
out:
	free(elf);
	return rc;
}
