/* SPDX-License-Identifier: MIT */
#include "pvh.h"

#include <stdlib.h>
#include <string.h>

uint64_t pvh_size(const struct pvh_cfg *cfg)
{
	return sizeof(struct hvm_start_info) +
	       (cfg->initrd_size ? sizeof(struct hvm_modlist_entry) : 0) +
	       (uint64_t)cfg->e820->n * sizeof(struct hvm_memmap_table_entry);
}

int pvh_write(const struct gmem *mem, gpa_t gpa, const struct pvh_cfg *cfg, struct nb_error *err)
{
	if (gpa % 8)
		return nb_error_set(err, NB_EINVAL, "PVH start info at %#llx is not 8-byte aligned",
				    (unsigned long long)gpa);
	if (e820_check(cfg->e820, err) < 0)
		return -1;
	uint64_t end, size = pvh_size(cfg);
	if (__builtin_add_overflow(gpa, size, &end) || !gmem_ptr(mem, gpa, size))
		return nb_error_set(err, NB_EINVAL,
				    "PVH start info [%#llx, +%#llx) is not inside guest memory",
				    (unsigned long long)gpa, (unsigned long long)size);
	if (cfg->initrd_size && !gmem_ptr(mem, cfg->initrd, cfg->initrd_size))
		return nb_error_set(err, NB_EINVAL, "PVH module [%#llx, +%#llx) is not in memory",
				    (unsigned long long)cfg->initrd,
				    (unsigned long long)cfg->initrd_size);
	uint8_t *buf = calloc(1, size);
	if (!buf)
		return nb_error_set(err, NB_ERESOURCE, "out of memory");
	struct hvm_start_info si = {
	    .magic = PVH_MAGIC,
	    .version = PVH_VERSION,
	    .cmdline_paddr = cfg->cmdline,
	    .rsdp_paddr = cfg->rsdp,
	    .memmap_entries = cfg->e820->n,
	};
	uint64_t off = sizeof(si);
	if (cfg->initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = cfg->initrd, .size = cfg->initrd_size};
		si.nr_modules = 1;
		si.modlist_paddr = gpa + off;
		memcpy(buf + off, &mod, sizeof(mod));
		off += sizeof(mod);
	}
	si.memmap_paddr = gpa + off;
	for (unsigned i = 0; i < cfg->e820->n; i++, off += sizeof(struct hvm_memmap_table_entry)) {
		struct hvm_memmap_table_entry e = {.addr = cfg->e820->e[i].addr,
						   .size = cfg->e820->e[i].size,
						   .type = cfg->e820->e[i].type};
		memcpy(buf + off, &e, sizeof(e));
	}
	memcpy(buf, &si, sizeof(si));
	int rc = gmem_write(mem, gpa, buf, size);
	free(buf);
	if (rc < 0)
		return nb_error_set(err, NB_EINTERNAL, "PVH start info copy failed");
	return 0;
}
