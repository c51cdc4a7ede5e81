/* SPDX-License-Identifier: MIT */
#include "bzimage.h"

#include <string.h>

/* Highest guest-physical address (exclusive) a kernel may need: 46 address bits. */
#define BZIMAGE_MAX_ADDR (1ull << 46)
#define MIB		 (1ull << 20)

static const struct {
	enum bzimage_payload_fmt fmt;
	unsigned len;
	uint8_t magic[6];
} payload_magics[] = {
    {BZIMAGE_PAYLOAD_GZIP, 2, {0x1f, 0x8b}},
    {BZIMAGE_PAYLOAD_GZIP, 2, {0x1f, 0x9e}},
    {BZIMAGE_PAYLOAD_BZIP2, 3, {'B', 'Z', 'h'}},
    {BZIMAGE_PAYLOAD_LZMA, 3, {0x5d, 0x00, 0x00}},
    {BZIMAGE_PAYLOAD_XZ, 6, {0xfd, '7', 'z', 'X', 'Z', 0x00}},
    {BZIMAGE_PAYLOAD_LZO, 4, {0x89, 'L', 'Z', 'O'}},
    {BZIMAGE_PAYLOAD_LZ4, 4, {0x02, 0x21, 0x4c, 0x18}},
    {BZIMAGE_PAYLOAD_ZSTD, 4, {0x28, 0xb5, 0x2f, 0xfd}},
    {BZIMAGE_PAYLOAD_ELF, 4, {0x7f, 'E', 'L', 'F'}},
};

const char *bzimage_payload_name(enum bzimage_payload_fmt fmt)
{
	switch (fmt) {
	case BZIMAGE_PAYLOAD_NONE:
		return "none";
	case BZIMAGE_PAYLOAD_GZIP:
		return "gzip";
	case BZIMAGE_PAYLOAD_BZIP2:
		return "bzip2";
	case BZIMAGE_PAYLOAD_LZMA:
		return "lzma";
	case BZIMAGE_PAYLOAD_XZ:
		return "xz";
	case BZIMAGE_PAYLOAD_LZO:
		return "lzo";
	case BZIMAGE_PAYLOAD_LZ4:
		return "lz4";
	case BZIMAGE_PAYLOAD_ZSTD:
		return "zstd";
	case BZIMAGE_PAYLOAD_ELF:
		return "elf";
	case BZIMAGE_PAYLOAD_UNKNOWN:
		break;
	}
	return "unknown";
}

/* @p has @len readable bytes. */
static enum bzimage_payload_fmt payload_fmt(const uint8_t *p, uint64_t len)
{
	for (size_t i = 0; i < sizeof(payload_magics) / sizeof(payload_magics[0]); i++)
		if (len >= payload_magics[i].len &&
		    !memcmp(p, payload_magics[i].magic, payload_magics[i].len))
			return payload_magics[i].fmt;
	return BZIMAGE_PAYLOAD_UNKNOWN;
}

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *out, struct nb_error *err)
{
	struct bzimage_setup_header h;
	const size_t hdr_end_max = BZIMAGE_HDR_OFF + sizeof(h);

	memset(out, 0, sizeof(*out));
	if (len < hdr_end_max)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "too small for a bzImage: %zu bytes, the setup header ends at %#zx", len,
		    hdr_end_max);
	memcpy(&h, img + BZIMAGE_HDR_OFF, sizeof(h));
	if (h.header != BZIMAGE_MAGIC)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "not a bzImage: bad magic %#010x at 0x202 (expected 0x53726448, "
		    "\"HdrS\")",
		    h.header);
	if (h.boot_flag != BZIMAGE_BOOT_FLAG)
		return nb_error_set(err, NB_EFORMAT,
				    "bad boot_flag %#06x at 0x1fe (expected 0xaa55)", h.boot_flag);
	if (h.version < BZIMAGE_MIN_VERSION)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "boot protocol version %u.%02u (%#06x) is too old: need 2.06 or later",
		    h.version >> 8, h.version & 0xff, h.version);

	/* The header ends where the jump at 0x200 lands: 0x202 + its signed rel8. */
	if ((h.jump & 0xff) != BZIMAGE_JUMP_OPCODE)
		return nb_error_set(err, NB_EFORMAT,
				    "jump at 0x200 starts with %#04x, not a short jmp (0xeb)",
				    h.jump & 0xff);
	int rel8 = (int8_t)(h.jump >> 8);
	long hdr_end = 0x202 + rel8;
	if (hdr_end < 0x264)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "setup header ends at %#lx (jump offset %d at 0x201), before the end "
		    "of init_size at 0x264",
		    hdr_end, rel8);
	size_t hdr_len =
	    (size_t)hdr_end < hdr_end_max ? (size_t)hdr_end - BZIMAGE_HDR_OFF : sizeof(h);
	memset((uint8_t *)&h + hdr_len, 0, sizeof(h) - hdr_len);

	unsigned sects = h.setup_sects ? h.setup_sects : 4;
	uint64_t setup_size = (uint64_t)(sects + 1) * BZIMAGE_SECTOR;
	if (setup_size >= len)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "setup_sects %u: the protected-mode code would start at %#llx, at or "
		    "beyond the end of the file (%zu bytes)",
		    h.setup_sects, (unsigned long long)setup_size, len);
	if (!(h.loadflags & BZIMAGE_LOADED_HIGH))
		return nb_error_set(
		    err, NB_EFORMAT,
		    "loadflags %#04x: LOADED_HIGH not set (a zImage, not a bzImage)", h.loadflags);
	if (h.version < BZIMAGE_XLF_VERSION)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "no 64-bit entry point: boot protocol %u.%02u has no xloadflags "
		    "(need 2.12 or later)",
		    h.version >> 8, h.version & 0xff);
	if (!(h.xloadflags & BZIMAGE_XLF_KERNEL_64))
		return nb_error_set(err, NB_EFORMAT,
				    "no 64-bit entry point: xloadflags %#06x lacks XLF_KERNEL_64",
				    h.xloadflags);

	uint64_t kernel_size = len - setup_size;
	if (kernel_size <= BZIMAGE_ENTRY64_OFF)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "protected-mode code is %#llx bytes, too short to hold the 64-bit "
		    "entry at +0x200",
		    (unsigned long long)kernel_size);
	/* syssize counts 16-byte paragraphs; allow the last one to be partial in the file, and
	 * data after it (a signature appended to a signed kernel). */
	uint64_t sys_bytes = (uint64_t)h.syssize * 16;
	if (h.syssize == 0 || (sys_bytes > kernel_size && sys_bytes - kernel_size >= 16))
		return nb_error_set(
		    err, NB_EFORMAT,
		    "syssize %#x (%#llx bytes) does not match the protected-mode code "
		    "in the file (%#llx bytes)",
		    h.syssize, (unsigned long long)sys_bytes, (unsigned long long)kernel_size);

	if (!is_pow2(h.kernel_alignment) || h.kernel_alignment < 0x1000 ||
	    h.kernel_alignment > (1u << 30))
		return nb_error_set(
		    err, NB_EFORMAT,
		    "kernel_alignment %#x is not a power of 2 between 4 KiB and 1 GiB",
		    h.kernel_alignment);
	uint32_t min_align = h.kernel_alignment;
	if (h.min_alignment) {
		if (h.min_alignment < 12 || h.min_alignment > 30 ||
		    (1u << h.min_alignment) > h.kernel_alignment)
			return nb_error_set(err, NB_EFORMAT,
					    "min_alignment %u is not between 12 and log2 of "
					    "kernel_alignment %#x",
					    h.min_alignment, h.kernel_alignment);
		min_align = 1u << h.min_alignment;
	}
	if (h.cmdline_size == 0)
		return nb_error_set(err, NB_EFORMAT, "cmdline_size 0");
	if (h.init_size < sys_bytes)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "init_size %#x is smaller than the kernel (syssize %#x = %#llx bytes)",
		    h.init_size, h.syssize, (unsigned long long)sys_bytes);

	uint64_t load = h.pref_address;
	if (load == 0) {
		if (!h.relocatable_kernel)
			return nb_error_set(err, NB_EFORMAT,
					    "pref_address 0 in a kernel that is not relocatable");
		/* 1 MiB aligned up; kernel_alignment <= 1 GiB, no overflow */
		load = (BZIMAGE_DEFAULT_LOAD + h.kernel_alignment - 1) &
		       ~(uint64_t)(h.kernel_alignment - 1);
	} else if (load < MIB) {
		return nb_error_set(err, NB_EFORMAT, "pref_address %#llx is below 1 MiB",
				    (unsigned long long)load);
	} else if (h.relocatable_kernel && (load & (min_align - 1))) {
		return nb_error_set(err, NB_EFORMAT, "pref_address %#llx is not aligned to %#x",
				    (unsigned long long)load, min_align);
	}
	uint64_t need = h.init_size > kernel_size ? h.init_size : kernel_size, load_end;
	if (__builtin_add_overflow(load, need, &load_end) || load_end > BZIMAGE_MAX_ADDR)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "pref_address %#llx + %#llx bytes (init_size %#x) is beyond the "
		    "46-bit physical address space",
		    (unsigned long long)load, (unsigned long long)need, h.init_size);

	enum bzimage_payload_fmt fmt = BZIMAGE_PAYLOAD_NONE;
	if (h.payload_offset == 0) {
		if (h.payload_length != 0)
			return nb_error_set(err, NB_EFORMAT,
					    "payload_length %#x with payload_offset 0",
					    h.payload_length);
	} else {
		uint64_t pend = (uint64_t)h.payload_offset + h.payload_length; /* < 2^33 */
		if (h.payload_length == 0)
			return nb_error_set(err, NB_EFORMAT,
					    "payload_length 0 (payload_offset %#x)",
					    h.payload_offset);
		if (pend > kernel_size)
			return nb_error_set(err, NB_EFORMAT,
					    "payload [%#x, +%#x) is beyond the protected-mode code "
					    "(%#llx bytes)",
					    h.payload_offset, h.payload_length,
					    (unsigned long long)kernel_size);
		fmt = payload_fmt(img + setup_size + h.payload_offset, h.payload_length);
	}

	out->version = h.version;
	out->setup_size = (uint32_t)setup_size;
	out->kernel_offset = setup_size;
	out->kernel_size = kernel_size;
	out->syssize_bytes = sys_bytes;
	out->pref_address = h.pref_address;
	out->load_addr = load;
	out->init_size = h.init_size;
	out->kernel_alignment = h.kernel_alignment;
	out->min_alignment = min_align;
	out->relocatable = h.relocatable_kernel != 0;
	out->loadflags = h.loadflags;
	out->xloadflags = h.xloadflags;
	out->code32_start = h.code32_start;
	out->entry64_offset = BZIMAGE_ENTRY64_OFF;
	out->cmdline_size = h.cmdline_size;
	out->initrd_addr_max = h.initrd_addr_max;
	out->payload_offset = h.payload_offset;
	out->payload_length = h.payload_length;
	out->payload_fmt = fmt;
	out->hdr_len = (uint32_t)hdr_len;
	out->hdr = h;
	return 0;
}

int bzimage_load(const struct bzimage_info *bz, const uint8_t *img, size_t len,
		 const struct gmem *mem, gpa_t addr, struct nb_error *err)
{
	uint64_t end;
	if (bz->kernel_offset > len || len - bz->kernel_offset != bz->kernel_size)
		return nb_error_set(
		    err, NB_EINVAL,
		    "image of %zu bytes is not the one parsed (kernel at %#llx, %#llx "
		    "bytes)",
		    len, (unsigned long long)bz->kernel_offset,
		    (unsigned long long)bz->kernel_size);
	if (addr < MIB)
		return nb_error_set(err, NB_EINVAL, "kernel load address %#llx is below 1 MiB",
				    (unsigned long long)addr);
	if (!bz->relocatable && addr != bz->load_addr)
		return nb_error_set(err, NB_EINVAL,
				    "kernel is not relocatable: it loads at %#llx, not %#llx",
				    (unsigned long long)bz->load_addr, (unsigned long long)addr);
	if (bz->relocatable && (addr & ((uint64_t)bz->min_alignment - 1)))
		return nb_error_set(err, NB_EINVAL,
				    "kernel load address %#llx is not aligned to %#x",
				    (unsigned long long)addr, bz->min_alignment);
	uint64_t need = bz->init_size > bz->kernel_size ? bz->init_size : bz->kernel_size;
	if (__builtin_add_overflow(addr, need, &end) || !gmem_ptr(mem, addr, need))
		return nb_error_set(
		    err, NB_EINVAL,
		    "kernel needs [%#llx, +%#llx) (init_size %#x), not inside guest "
		    "memory [%#llx, +%#llx)",
		    (unsigned long long)addr, (unsigned long long)need, bz->init_size,
		    (unsigned long long)mem->r[0].base, (unsigned long long)gmem_end(mem));
	if (gmem_write(mem, addr, img + bz->kernel_offset, bz->kernel_size) < 0)
		return nb_error_set(err, NB_EINTERNAL, "kernel copy to %#llx failed",
				    (unsigned long long)addr);
	return 0;
}
