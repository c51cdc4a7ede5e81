/* SPDX-License-Identifier: MIT */
#include "elf.h"

#include "../common/elfhdr.h"

#include <elf.h>
#include <string.h>

int elf_parse(const uint8_t *img, size_t len, struct elf_info *out, struct nb_error *err)
{
	Elf64_Ehdr eh;
	memset(out, 0, sizeof(*out));
	if (elfhdr_check_x86_64(img, len, "program", &eh, err) < 0)
		return -1;
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return nb_error_set(err, NB_EFORMAT, "not an executable (e_type=%u)", eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr))
		return nb_error_set(err, NB_EFORMAT, "bad e_phentsize %u", eh.e_phentsize);
	if (eh.e_phnum == 0 || eh.e_phnum > 128)
		return nb_error_set(err, NB_EFORMAT, "bad e_phnum %u", eh.e_phnum);
	uint64_t ph_end;
	if (__builtin_mul_overflow((uint64_t)eh.e_phnum, (uint64_t)sizeof(Elf64_Phdr), &ph_end) ||
	    __builtin_add_overflow(ph_end, eh.e_phoff, &ph_end) || ph_end > len)
		return nb_error_set(
		    err, NB_EFORMAT,
		    "program headers out of file (e_phoff=%#llx, e_phnum=%u, size=%zu)",
		    (unsigned long long)eh.e_phoff, eh.e_phnum, len);

	out->pie = eh.e_type == ET_DYN;
	out->entry = eh.e_entry;
	out->phnum = eh.e_phnum;
	out->phentsize = eh.e_phentsize;
	out->lo = UINT64_MAX;
	out->max_align = 0x1000;
	uint64_t phdr_vaddr = 0;
	int have_phdr = 0, has_dynamic = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_INTERP) {
			char interp[128] = "?";
			if (ph.p_offset < len && ph.p_filesz > 1) {
				size_t n = len - ph.p_offset;
				if (n > ph.p_filesz)
					n = ph.p_filesz;
				if (n > sizeof(interp) - 1)
					n = sizeof(interp) - 1;
				memcpy(interp, img + ph.p_offset, n);
				interp[n] = 0;
			}
			return nb_error_set(err, NB_EFORMAT,
					    "dynamically linked (interpreter %s); nubis runs "
					    "static executables only "
					    "(link with -static or -static-pie)",
					    interp);
		}
		if (ph.p_type == PT_DYNAMIC)
			has_dynamic = 1;
		if (ph.p_type == PT_PHDR) {
			phdr_vaddr = ph.p_vaddr;
			have_phdr = 1;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (out->nsegs == ELF_MAX_SEGS)
			return nb_error_set(err, NB_EFORMAT, "more than %d PT_LOAD segments",
					    ELF_MAX_SEGS);
		uint64_t fend, vend;
		if (ph.p_filesz > ph.p_memsz)
			return nb_error_set(
			    err, NB_EFORMAT, "segment %u: p_filesz %#llx > p_memsz %#llx", i,
			    (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
		if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &fend) || fend > len)
			return nb_error_set(
			    err, NB_EFORMAT,
			    "segment %u: file range [%#llx, +%#llx) beyond file size %zu", i,
			    (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz, len);
		if (__builtin_add_overflow(ph.p_vaddr, ph.p_memsz, &vend) || vend > (1ull << 47))
			return nb_error_set(
			    err, NB_EFORMAT, "segment %u: address range overflows (%#llx+%#llx)", i,
			    (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz);
		if (ph.p_align > 1) {
			if (ph.p_align & (ph.p_align - 1))
				return nb_error_set(err, NB_EFORMAT,
						    "segment %u: p_align %#llx not a power of 2", i,
						    (unsigned long long)ph.p_align);
			if (ph.p_align > (1ull << 30))
				return nb_error_set(err, NB_EFORMAT,
						    "segment %u: p_align %#llx too large", i,
						    (unsigned long long)ph.p_align);
			if (ph.p_align > out->max_align)
				out->max_align = ph.p_align;
		}
		if ((ph.p_vaddr & 0xfff) != (ph.p_offset & 0xfff))
			return nb_error_set(
			    err, NB_EFORMAT,
			    "segment %u: p_vaddr %#llx and p_offset %#llx not congruent", i,
			    (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_offset);
		for (unsigned j = 0; j < out->nsegs; j++) {
			const struct elf_seg *o = &out->segs[j];
			if (ph.p_vaddr < o->vaddr + o->memsz && o->vaddr < vend)
				return nb_error_set(err, NB_EFORMAT,
						    "segment %u overlaps segment %u", i, j);
		}
		struct elf_seg *s = &out->segs[out->nsegs++];
		s->vaddr = ph.p_vaddr;
		s->memsz = ph.p_memsz;
		s->offset = ph.p_offset;
		s->filesz = ph.p_filesz;
		s->flags = ph.p_flags;
		if ((ph.p_vaddr & ~0xfffull) < out->lo)
			out->lo = ph.p_vaddr & ~0xfffull;
		if (vend > out->hi)
			out->hi = vend;
		if (!have_phdr && eh.e_phoff >= ph.p_offset && ph_end <= fend)
			phdr_vaddr = ph.p_vaddr + (eh.e_phoff - ph.p_offset);
	}
	if (!out->nsegs)
		return nb_error_set(err, NB_EFORMAT, "no loadable segments");
	if (out->pie && !has_dynamic)
		return nb_error_set(err, NB_EFORMAT,
				    "ET_DYN without PT_DYNAMIC is not a static-pie executable");
	int entry_ok = 0;
	for (unsigned j = 0; j < out->nsegs; j++) {
		const struct elf_seg *s = &out->segs[j];
		if ((s->flags & PF_X) && out->entry >= s->vaddr && out->entry < s->vaddr + s->memsz)
			entry_ok = 1;
	}
	if (!entry_ok)
		return nb_error_set(err, NB_EFORMAT,
				    "entry point %#llx is not in an executable segment",
				    (unsigned long long)out->entry);
	out->phdr_vaddr = phdr_vaddr;
	return 0;
}
