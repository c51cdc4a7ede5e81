/* SPDX-License-Identifier: MIT */
/*
 * The payload of a bzImage: its compressed vmlinux (boot.rst, payload_offset /
 * payload_length), decompressed on the host so a loader can skip the kernel's
 * own decompressor (which runs at emulation speed on kvm_pvm).
 *
 * The payload is untrusted: every size is capped (PAYLOAD_MAX_OUT), every
 * decompressor is bounded by the output cap and the input length, and the
 * result must then pass vmlinux_parse() like any other vmlinux.
 *
 * Formats: gzip (zlib), xz (liblzma), zstd (libzstd), lz4 legacy frames
 * (liblz4; Debian 12's kernels), and an uncompressed ELF. The kernel build
 * appends the decompressed size as 4 little-endian bytes; it must match.
 */
#ifndef NUBIS_BOOT_PAYLOAD_H
#define NUBIS_BOOT_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "bzimage.h"
#include "vmlinux.h"

#define PAYLOAD_MAX_OUT (512ull << 20) /* largest decompressed vmlinux accepted */

/* Decompress the payload of @img (the buffer @bz was parsed from by bzimage_parse()).
 * On success *@out is a malloc()ed buffer of *@out_len bytes the caller frees (the
 * vmlinux ELF, not yet validated: pass it to vmlinux_parse()). Returns 0, or -1 with
 * @err (may be NULL): NB_EFORMAT for a missing, unsupported or corrupt payload,
 * NB_ERESOURCE when memory runs out. @max_out caps the output (at most PAYLOAD_MAX_OUT). */
int payload_extract(const struct bzimage_info *bz, const uint8_t *img, size_t len, uint64_t max_out,
		    uint8_t **out, size_t *out_len, struct nb_error *err);

/* Decompress @in (@in_len bytes) of format @fmt; the same contract as payload_extract
 * (@in excludes the 4-byte size trailer, which is @declared). For tests and tools. */
int payload_decompress(enum bzimage_payload_fmt fmt, const uint8_t *in, size_t in_len,
		       uint64_t declared, uint64_t max_out, uint8_t **out, size_t *out_len,
		       struct nb_error *err);

/* Extract the payload of @img (parsed as @bz), validate it as a vmlinux and load its
 * segments at their physical addresses through @mem: the kernel then starts at *@entry
 * (startup_64, 64-bit boot protocol, RSI = boot_params) without its decompressor and
 * without relocation (so the guest must run with nokaslr). *@end is the end of the
 * highest segment. Returns 0, or -1 with @err. */
int payload_load(const struct bzimage_info *bz, const uint8_t *img, size_t len,
		 const struct gmem *mem, uint64_t *entry, uint64_t *end, struct nb_error *err);

#endif
