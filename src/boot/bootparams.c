/* SPDX-License-Identifier: MIT */
#include "bootparams.h"

#include <string.h>

#define MIB	(1ull << 20)
#define GIB4	(1ull << 32)
#define PAGE_4K 0x1000ull

int bootparams_fill(struct bootparams *bp, const struct bzimage_info *bz,
		    const struct bootparams_cfg *cfg, struct nb_error *err)
{
	const int above_4g = (bz->xloadflags & BZIMAGE_XLF_CAN_BE_LOADED_ABOVE_4G) != 0;

	memset(bp, 0, sizeof(*bp));
	if (!cfg->e820 || cfg->e820->n == 0)
		return nb_error_set(err, NB_EINVAL, "no e820 memory map");
	if (e820_check(cfg->e820, err) < 0)
		return -1;
	if (cfg->kernel_addr < MIB)
		return nb_error_set(err, NB_EINVAL, "kernel address %#llx is below 1 MiB",
				    (unsigned long long)cfg->kernel_addr);
	if (cfg->cmdline == 0)
		return nb_error_set(err, NB_EINVAL, "no command line address (cmd_line_ptr 0)");
	if (cfg->cmdline >= GIB4 && !above_4g)
		return nb_error_set(err, NB_EINVAL,
				    "command line at %#llx is above 4 GiB and the kernel lacks "
				    "XLF_CAN_BE_LOADED_ABOVE_4G",
				    (unsigned long long)cfg->cmdline);
	if (cfg->initrd_size) {
		uint64_t last;
		if (__builtin_add_overflow(cfg->initrd, cfg->initrd_size - 1, &last))
			return nb_error_set(err, NB_EINVAL, "initrd [%#llx, +%#llx) wraps",
					    (unsigned long long)cfg->initrd,
					    (unsigned long long)cfg->initrd_size);
		if (last > bz->initrd_addr_max && !above_4g)
			return nb_error_set(
			    err, NB_EINVAL,
			    "initrd [%#llx, +%#llx) ends beyond initrd_addr_max %#x",
			    (unsigned long long)cfg->initrd, (unsigned long long)cfg->initrd_size,
			    bz->initrd_addr_max);
	} else if (cfg->initrd) {
		return nb_error_set(err, NB_EINVAL, "initrd address %#llx with size 0",
				    (unsigned long long)cfg->initrd);
	}

	bp->hdr = bz->hdr; /* the image's header, zero beyond what the image has */
	bp->hdr.type_of_loader = BOOTPARAMS_LOADER_TYPE;
	bp->hdr.ext_loader_ver = 0;
	bp->hdr.ext_loader_type = 0;
	/* Fields the loader writes and we do not use: whatever the image has there is not ours
	 * to pass on (setup_data is a pointer the kernel follows). */
	bp->hdr.hardware_subarch = 0; /* x86/PC */
	bp->hdr.hardware_subarch_data = 0;
	bp->hdr.setup_data = 0;
	/* CAN_USE_HEAP with heap_end_ptr as the protocol asks (only the real-mode setup,
	 * which the 64-bit entry skips, uses the heap). KEEP_SEGMENTS is obsolete and meant
	 * the 32-bit entry; clear it. */
	bp->hdr.loadflags =
	    (uint8_t)((bz->hdr.loadflags | BZIMAGE_CAN_USE_HEAP) & ~BZIMAGE_KEEP_SEGMENTS);
	bp->hdr.heap_end_ptr = BOOTPARAMS_HEAP_END_PTR;
	if (cfg->kernel_addr < GIB4)
		bp->hdr.code32_start = (uint32_t)cfg->kernel_addr;
	bp->hdr.cmd_line_ptr = (uint32_t)cfg->cmdline;
	bp->ext_cmd_line_ptr = (uint32_t)(cfg->cmdline >> 32);
	bp->hdr.ramdisk_image = (uint32_t)cfg->initrd;
	bp->ext_ramdisk_image = (uint32_t)(cfg->initrd >> 32);
	bp->hdr.ramdisk_size = (uint32_t)cfg->initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(cfg->initrd_size >> 32);
	bp->acpi_rsdp_addr = cfg->acpi_rsdp;
	bp->e820_entries = (uint8_t)cfg->e820->n; /* <= 128, checked */
	memcpy(bp->e820_table, cfg->e820->e, cfg->e820->n * sizeof(cfg->e820->e[0]));
	return 0;
}

long bootparams_cmdline_check(const char *cmdline, uint32_t cmdline_size, struct nb_error *err)
{
	if (!cmdline)
		return nb_error_set(err, NB_EINVAL, "no kernel command line");
	size_t n = strnlen(cmdline, (size_t)cmdline_size + 1);
	if (n > cmdline_size)
		return nb_error_set(err, NB_EINVAL,
				    "kernel command line is %zu bytes, longer than the kernel's "
				    "cmdline_size %u",
				    strlen(cmdline), cmdline_size);
	return (long)n;
}

int bootparams_cmdline_place(const struct gmem *mem, gpa_t gpa, const char *cmdline,
			     uint32_t cmdline_size, struct nb_error *err)
{
	long n = bootparams_cmdline_check(cmdline, cmdline_size, err);
	if (n < 0)
		return -1;
	if (gmem_write(mem, gpa, cmdline, (uint64_t)n + 1) < 0)
		return nb_error_set(err, NB_EINVAL,
				    "kernel command line [%#llx, +%#lx) is not inside guest memory "
				    "[%#llx, +%#llx)",
				    (unsigned long long)gpa, n + 1,
				    (unsigned long long)mem->r[0].base,
				    (unsigned long long)gmem_end(mem));
	return 0;
}

int bootparams_initrd_place(uint64_t initrd_size, uint64_t addr_max, uint64_t ram_size,
			    gpa_t kernel_start, uint64_t kernel_size, gpa_t *out,
			    struct nb_error *err)
{
	uint64_t low_top = e820_low_size(ram_size), top, kernel_end, addr;

	*out = 0;
	if (initrd_size == 0)
		return nb_error_set(err, NB_EINVAL, "initrd is empty");
	if (__builtin_add_overflow(kernel_start, kernel_size, &kernel_end))
		return nb_error_set(err, NB_EINVAL, "kernel range [%#llx, +%#llx) wraps",
				    (unsigned long long)kernel_start,
				    (unsigned long long)kernel_size);
	/* the initrd may end at addr_max + 1 */
	top = addr_max >= low_top ? low_top : addr_max + 1;
	if (top < initrd_size || ((top - initrd_size) & ~(PAGE_4K - 1)) < MIB)
		goto nofit;
	addr = (top - initrd_size) & ~(PAGE_4K - 1);
	if (addr < kernel_end && kernel_start < addr + initrd_size) {
		/* the next highest place is just below the kernel */
		if (kernel_start < initrd_size ||
		    ((kernel_start - initrd_size) & ~(PAGE_4K - 1)) < MIB)
			goto nofit;
		addr = (kernel_start - initrd_size) & ~(PAGE_4K - 1);
	}
	*out = addr;
	return 0;
nofit:
	return nb_error_set(err, NB_EINVAL,
			    "initrd of %#llx bytes does not fit between 1 MiB and %#llx "
			    "(initrd_addr_max %#llx, RAM below 4 GiB ends at %#llx) outside the "
			    "kernel [%#llx, %#llx)",
			    (unsigned long long)initrd_size, (unsigned long long)top,
			    (unsigned long long)addr_max, (unsigned long long)low_top,
			    (unsigned long long)kernel_start, (unsigned long long)kernel_end);
}
