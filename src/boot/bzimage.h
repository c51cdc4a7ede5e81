/* SPDX-License-Identifier: MIT */
/*
 * bzImage: validation per the Linux x86 boot protocol
 * (Documentation/arch/x86/boot.rst) and loading of the protected-mode code
 * for the 64-bit boot protocol.
 *
 * The file is untrusted. bzimage_parse() checks every field it reports
 * against the file size with overflow-checked arithmetic; a caller may then
 * use the reported offsets and sizes on the same buffer without checking
 * them again. Only little-endian x86 hosts are supported (the header is read
 * with memcpy).
 */
#ifndef NUBIS_BOOT_BZIMAGE_H
#define NUBIS_BOOT_BZIMAGE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../core/gmem.h"

#define BZIMAGE_HDR_OFF	     0x1f1u	 /* the setup header, in the file and in the zero page */
#define BZIMAGE_BOOT_FLAG    0xaa55u	 /* at 0x1fe */
#define BZIMAGE_JUMP_OPCODE  0xebu	 /* at 0x200: short jmp; the header ends at 0x202 + rel8 */
#define BZIMAGE_MAGIC	     0x53726448u /* "HdrS" at 0x202 */
#define BZIMAGE_MIN_VERSION  0x0206u	 /* oldest protocol accepted (cmdline_size) */
#define BZIMAGE_XLF_VERSION  0x020cu	 /* 2.12: xloadflags, so the 64-bit entry can be known */
#define BZIMAGE_ENTRY64_OFF  0x200u /* 64-bit entry, from the start of the protected-mode code */
#define BZIMAGE_SECTOR	     512u
#define BZIMAGE_DEFAULT_LOAD 0x100000u /* where a bzImage goes when pref_address is 0 */

/* loadflags (0x211) */
#define BZIMAGE_LOADED_HIGH   0x01u
#define BZIMAGE_KASLR_FLAG    0x02u
#define BZIMAGE_QUIET_FLAG    0x20u
#define BZIMAGE_KEEP_SEGMENTS 0x40u
#define BZIMAGE_CAN_USE_HEAP  0x80u

/* xloadflags (0x236) */
#define BZIMAGE_XLF_KERNEL_64		   0x01u
#define BZIMAGE_XLF_CAN_BE_LOADED_ABOVE_4G 0x02u
#define BZIMAGE_XLF_EFI_HANDOVER_32	   0x04u
#define BZIMAGE_XLF_EFI_HANDOVER_64	   0x08u
#define BZIMAGE_XLF_EFI_KEXEC		   0x10u

/* The setup header as it is in the file at 0x1f1 and in the zero page at 0x1f1. */
struct bzimage_setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

/* Offsets are file offsets minus 0x1f1 (boot.rst, "The Real-Mode Kernel Header"). */
#define BZIMAGE_HDR_AT(field, off)                                                                 \
	static_assert(offsetof(struct bzimage_setup_header, field) == (off)-BZIMAGE_HDR_OFF,       \
		      #field " at " #off)
BZIMAGE_HDR_AT(setup_sects, 0x1f1);
BZIMAGE_HDR_AT(syssize, 0x1f4);
BZIMAGE_HDR_AT(vid_mode, 0x1fa);
BZIMAGE_HDR_AT(boot_flag, 0x1fe);
BZIMAGE_HDR_AT(jump, 0x200);
BZIMAGE_HDR_AT(header, 0x202);
BZIMAGE_HDR_AT(version, 0x206);
BZIMAGE_HDR_AT(type_of_loader, 0x210);
BZIMAGE_HDR_AT(loadflags, 0x211);
BZIMAGE_HDR_AT(code32_start, 0x214);
BZIMAGE_HDR_AT(ramdisk_image, 0x218);
BZIMAGE_HDR_AT(ramdisk_size, 0x21c);
BZIMAGE_HDR_AT(heap_end_ptr, 0x224);
BZIMAGE_HDR_AT(cmd_line_ptr, 0x228);
BZIMAGE_HDR_AT(initrd_addr_max, 0x22c);
BZIMAGE_HDR_AT(kernel_alignment, 0x230);
BZIMAGE_HDR_AT(relocatable_kernel, 0x234);
BZIMAGE_HDR_AT(min_alignment, 0x235);
BZIMAGE_HDR_AT(xloadflags, 0x236);
BZIMAGE_HDR_AT(cmdline_size, 0x238);
BZIMAGE_HDR_AT(payload_offset, 0x248);
BZIMAGE_HDR_AT(payload_length, 0x24c);
BZIMAGE_HDR_AT(setup_data, 0x250);
BZIMAGE_HDR_AT(pref_address, 0x258);
BZIMAGE_HDR_AT(init_size, 0x260);
BZIMAGE_HDR_AT(handover_offset, 0x264);
BZIMAGE_HDR_AT(kernel_info_offset, 0x268);
#undef BZIMAGE_HDR_AT
static_assert(sizeof(struct bzimage_setup_header) == 0x26c - BZIMAGE_HDR_OFF, "setup header size");

/* The compression of the payload, from its magic number (boot.rst, payload_offset). */
enum bzimage_payload_fmt {
	BZIMAGE_PAYLOAD_NONE = 0, /* payload_offset is 0 */
	BZIMAGE_PAYLOAD_UNKNOWN,
	BZIMAGE_PAYLOAD_GZIP,
	BZIMAGE_PAYLOAD_BZIP2,
	BZIMAGE_PAYLOAD_LZMA,
	BZIMAGE_PAYLOAD_XZ,
	BZIMAGE_PAYLOAD_LZO,
	BZIMAGE_PAYLOAD_LZ4,
	BZIMAGE_PAYLOAD_ZSTD,
	BZIMAGE_PAYLOAD_ELF, /* uncompressed */
};

/* What bzimage_parse() found. Offsets are into the file; every range lies inside it. */
struct bzimage_info {
	uint16_t version;	/* boot protocol, e.g. 0x020f for 2.15 */
	uint32_t setup_size;	/* real-mode part: boot sector + setup, (setup_sects + 1) * 512 */
	uint64_t kernel_offset; /* file offset of the protected-mode code (== setup_size) */
	uint64_t kernel_size;	/* its length: the rest of the file, > BZIMAGE_ENTRY64_OFF */
	uint64_t syssize_bytes; /* syssize * 16, <= kernel_size rounded up to 16 */
	uint64_t pref_address;	/* preferred load address as in the header (may be 0) */
	uint64_t load_addr;	/* where to load: pref_address, or 1 MiB aligned up if it is 0 */
	uint32_t init_size; /* memory the kernel needs from its load address, >= syssize_bytes */
	uint32_t kernel_alignment; /* power of 2 in [4 KiB, 1 GiB] */
	uint32_t min_alignment; /* required alignment (1 << min_alignment, or kernel_alignment) */
	bool relocatable;
	uint8_t loadflags;
	uint16_t xloadflags;	 /* has BZIMAGE_XLF_KERNEL_64 */
	uint32_t code32_start;	 /* 32-bit entry as in the header (unused by the 64-bit protocol) */
	uint32_t entry64_offset; /* BZIMAGE_ENTRY64_OFF: the 64-bit entry is load address + this */
	uint32_t cmdline_size;	 /* max command line length without its NUL, >= 1 */
	uint32_t initrd_addr_max; /* highest address the initrd may occupy (last byte) */
	/* The (usually compressed) vmlinux inside the protected-mode code, for a loader that
	 * skips the decompressor: payload_offset is relative to kernel_offset and
	 * [payload_offset, +payload_length) lies inside [0, kernel_size). Both 0 if absent. */
	uint32_t payload_offset, payload_length;
	enum bzimage_payload_fmt payload_fmt;
	uint32_t hdr_len; /* bytes of setup header the image has (0x202 + jump offset - 0x1f1),
			     at most sizeof(hdr) */
	struct bzimage_setup_header hdr; /* the image's header; zero beyond hdr_len */
};

/* Validate @img (@len bytes, untrusted) as a bzImage with a 64-bit entry point.
 * Fills @out. Returns 0, or -1 with @err (may be NULL) set to NB_EFORMAT and a
 * message naming the field and its value. Does not keep @img. */
int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *out, struct nb_error *err);

/* Copy the protected-mode code of @img (the buffer @bz was parsed from) to guest
 * address @addr through @mem. @addr must be at least 1 MiB, equal load_addr if the
 * kernel is not relocatable, be aligned to min_alignment if it is, and
 * [addr, addr + max(init_size, kernel_size)) must be guest memory. Writes nothing on
 * failure. Returns 0, or -1 with @err (NB_EINVAL). The 64-bit entry point is then
 * addr + bz->entry64_offset. */
int bzimage_load(const struct bzimage_info *bz, const uint8_t *img, size_t len,
		 const struct gmem *mem, gpa_t addr, struct nb_error *err);

/* "gzip", "zstd", ..., "none", "unknown". Never NULL. */
const char *bzimage_payload_name(enum bzimage_payload_fmt fmt);

#endif
