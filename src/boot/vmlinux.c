/* SPDX-License-Identifier: MIT */
#include "vmlinux.h"

#include "../common/elfhdr.h"

#include <elf.h>
#include <string.h>

/* Walk the notes of PT_NOTE segment @i, [off, off + size) of the file (checked), and record a
 * Xen PHYS32_ENTRY note in @out. Notes are 4-byte aligned unless the segment says 8. */
static int parse_notes(const uint8_t *img, uint64_t off, uint64_t size, uint64_t p_align,
		       unsigned i, struct vmlinux_info *out, struct nb_error *err)
{
	uint64_t align;
	if (p_align <= 4)
		align = 4;
	else if (p_align == 8)
		align = 8;
	else
		return nb_error_set(err, NB_EFORMAT,
				    "PT_NOTE segment %u: p_align %#llx (expected 4 or 8)", i,
				    (unsigned long long)p_align);
	uint64_t pos = 0;
	while (size - pos >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t at = pos, name_sz, desc_sz;
		memcpy(&nh, img + off + pos, sizeof(nh));
		pos += sizeof(nh);
		/* 32-bit sizes in 64-bit arithmetic: rounding up cannot wrap */
		name_sz = ((uint64_t)nh.n_namesz + align - 1) & ~(align - 1);
		if (name_sz > size - pos)
			return nb_error_set(err, NB_EFORMAT,
					    "PT_NOTE segment %u: note at +%#llx has n_namesz %u, "
					    "beyond the segment (%#llx bytes)",
					    i, (unsigned long long)at, nh.n_namesz,
					    (unsigned long long)size);
		const uint8_t *name = img + off + pos;
		pos += name_sz;
		if (nh.n_descsz > size - pos)
			return nb_error_set(err, NB_EFORMAT,
					    "PT_NOTE segment %u: note at +%#llx has n_descsz %u, "
					    "beyond the segment (%#llx bytes)",
					    i, (unsigned long long)at, nh.n_descsz,
					    (unsigned long long)size);
		const uint8_t *desc = img + off + pos;
		desc_sz = ((uint64_t)nh.n_descsz + align - 1) & ~(align - 1);
		/* the last note's padding may be missing */
		pos = desc_sz > size - pos ? size : pos + desc_sz;

		if (nh.n_namesz != 4 || memcmp(name, "Xen", 4) != 0 ||
		    nh.n_type != XEN_ELFNOTE_PHYS32_ENTRY)
			continue;
		uint64_t entry;
		if (nh.n_descsz == 4) {
			uint32_t e32;
			memcpy(&e32, desc, 4);
			entry = e32;
		} else if (nh.n_descsz == 8) {
			memcpy(&entry, desc, 8);
		} else {
			return nb_error_set(err, NB_EFORMAT,
					    "PVH entry note (Xen, type 18): n_descsz %u (expected "
					    "4 or 8)",
					    nh.n_descsz);
		}
		if (entry > UINT32_MAX)
			return nb_error_set(err, NB_EFORMAT,
					    "PVH entry %#llx is above 4 GiB (a 32-bit entry point)",
					    (unsigned long long)entry);
		if (out->has_pvh)
			return nb_error_set(err, NB_EFORMAT, "two PVH entry notes (%#x and %#llx)",
					    out->pvh_entry, (unsigned long long)entry);
		out->has_pvh = true;
		out->pvh_entry = (uint32_t)entry;
	}
	return 0;
}

static int in_exec_seg(const struct vmlinux_info *info, uint64_t addr)
{
	for (unsigned j = 0; j < info->nsegs; j++) {
		const struct vmlinux_seg *s = &info->segs[j];
		if ((s->flags & PF_X) && addr >= s->paddr && addr - s->paddr < s->memsz)
			return 1;
	}
	return 0;
}

static int parse_load(const Elf64_Phdr *ph, unsigned i, size_t len, struct vmlinux_info *out,
		      struct nb_error *err)
{
	uint64_t fend, pend;
	if (out->nsegs == VMLINUX_MAX_SEGS)
		return nb_error_set(err, NB_EFORMAT, "more than %d PT_LOAD segments",
				    VMLINUX_MAX_SEGS);
	if (ph->p_filesz > ph->p_memsz)
		return nb_error_set(err, NB_EFORMAT, "segment %u: p_filesz %#llx > p_memsz %#llx",
				    i, (unsigned long long)ph->p_filesz,
				    (unsigned long long)ph->p_memsz);
	if (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &fend) || fend > len)
		return nb_error_set(
		    err, NB_EFORMAT, "segment %u: file range [%#llx, +%#llx) beyond file size %zu",
		    i, (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz, len);
	if (ph->p_paddr < VMLINUX_MIN_PADDR)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "segment %u: p_paddr %#llx is below 1 MiB (boot data lives there)", i,
		    (unsigned long long)ph->p_paddr);
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &pend) || pend > VMLINUX_MAX_PADDR)
		return nb_error_set(
		    err, NB_EFORMAT, "segment %u: physical range [%#llx, +%#llx) ends beyond 2^46",
		    i, (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
	if (ph->p_align > 1 && (ph->p_align & (ph->p_align - 1)))
		return nb_error_set(err, NB_EFORMAT, "segment %u: p_align %#llx not a power of 2",
				    i, (unsigned long long)ph->p_align);
	/* Segments are copied, not mapped: no congruence of address and offset is needed.
	 * Linux's per-CPU segment has p_vaddr 0, so only physical ranges are compared. */
	for (unsigned j = 0; j < out->nsegs; j++) {
		const struct vmlinux_seg *o = &out->segs[j];
		if (ph->p_paddr < o->paddr + o->memsz && o->paddr < pend)
			return nb_error_set(
			    err, NB_EFORMAT,
			    "segment %u [%#llx, +%#llx) overlaps segment %u "
			    "[%#llx, +%#llx)",
			    i, (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz, j,
			    (unsigned long long)o->paddr, (unsigned long long)o->memsz);
	}
	struct vmlinux_seg *s = &out->segs[out->nsegs++];
	s->paddr = ph->p_paddr;
	s->memsz = ph->p_memsz;
	s->offset = ph->p_offset;
	s->filesz = ph->p_filesz;
	s->flags = ph->p_flags;
	if (s->paddr < out->lo)
		out->lo = s->paddr;
	if (pend > out->hi)
		out->hi = pend;
	return 0;
}

int vmlinux_parse(const uint8_t *img, size_t len, struct vmlinux_info *out, struct nb_error *err)
{
	Elf64_Ehdr eh;
	memset(out, 0, sizeof(*out));
	if (elfhdr_check_x86_64(img, len, "kernel", &eh, err) < 0)
		return -1;
	if (eh.e_type != ET_EXEC)
		return nb_error_set(err, NB_EFORMAT,
				    "not an executable kernel image (e_type=%u, expected ET_EXEC)",
				    eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr))
		return nb_error_set(err, NB_EFORMAT, "bad e_phentsize %u", eh.e_phentsize);
	if (eh.e_phnum == 0 || eh.e_phnum > VMLINUX_MAX_PHNUM)
		return nb_error_set(err, NB_EFORMAT, "bad e_phnum %u", eh.e_phnum);
	uint64_t ph_end;
	if (__builtin_mul_overflow((uint64_t)eh.e_phnum, (uint64_t)sizeof(Elf64_Phdr), &ph_end) ||
	    __builtin_add_overflow(ph_end, eh.e_phoff, &ph_end) || ph_end > len)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "program headers out of file (e_phoff=%#llx, e_phnum=%u, size=%zu)",
		    (unsigned long long)eh.e_phoff, eh.e_phnum, len);

	out->entry = eh.e_entry;
	out->lo = UINT64_MAX;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_NOTE) {
			uint64_t end;
			if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &end) || end > len)
				return nb_error_set(
				    err, NB_EFORMAT,
				    "PT_NOTE segment %u: file range [%#llx, +%#llx) "
				    "beyond file size %zu",
				    i, (unsigned long long)ph.p_offset,
				    (unsigned long long)ph.p_filesz, len);
			if (parse_notes(img, ph.p_offset, ph.p_filesz, ph.p_align, i, out, err) < 0)
				return -1;
		} else if (ph.p_type == PT_LOAD && ph.p_memsz != 0) {
			if (parse_load(&ph, i, len, out, err) < 0)
				return -1;
		}
	}
	if (!out->nsegs)
		return nb_error_set(err, NB_EFORMAT, "no loadable segments");
	if (!in_exec_seg(out, out->entry))
		return nb_error_set(err, NB_EFORMAT,
				    "entry point %#llx (e_entry) is not in an executable segment",
				    (unsigned long long)out->entry);
	if (out->has_pvh && !in_exec_seg(out, out->pvh_entry))
		return nb_error_set(err, NB_EFORMAT,
				    "PVH entry point %#x is not in an executable segment",
				    out->pvh_entry);
	return 0;
}

int vmlinux_load(const struct vmlinux_info *info, const uint8_t *img, size_t len,
		 const struct gmem *mem, struct nb_error *err)
{
	if (info->nsegs > VMLINUX_MAX_SEGS)
		return nb_error_set(err, NB_EINVAL, "%u segments (at most %d)", info->nsegs,
				    VMLINUX_MAX_SEGS);
	for (unsigned i = 0; i < info->nsegs; i++) {
		const struct vmlinux_seg *s = &info->segs[i];
		if (s->filesz > s->memsz || s->offset > len || s->filesz > len - s->offset)
			return nb_error_set(err, NB_EINVAL,
					    "segment %u: file range [%#llx, +%#llx) is not in the "
					    "image (%zu bytes)",
					    i, (unsigned long long)s->offset,
					    (unsigned long long)s->filesz, len);
		if (!gmem_ptr(mem, s->paddr, s->memsz))
			return nb_error_set(
			    err, NB_EINVAL,
			    "segment %u: [%#llx, +%#llx) is not inside guest memory "
			    "[%#llx, +%#llx)",
			    i, (unsigned long long)s->paddr, (unsigned long long)s->memsz,
			    (unsigned long long)mem->r[0].base, (unsigned long long)gmem_end(mem));
	}
	for (unsigned i = 0; i < info->nsegs; i++) {
		const struct vmlinux_seg *s = &info->segs[i];
		/* both ranges lie inside [paddr, paddr + memsz), checked above */
		void *tail = gmem_ptr(mem, s->paddr + s->filesz, s->memsz - s->filesz);
		if (gmem_write(mem, s->paddr, img + s->offset, s->filesz) < 0 || !tail)
			return nb_error_set(err, NB_EINTERNAL, "segment %u: copy failed", i);
		memset(tail, 0, s->memsz - s->filesz);
	}
	return 0;
}
