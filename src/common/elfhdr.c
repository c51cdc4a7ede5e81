/* SPDX-License-Identifier: MIT */
#include "elfhdr.h"

#include <string.h>

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386:
		return "i386";
	case EM_ARM:
		return "arm";
	case EM_AARCH64:
		return "aarch64";
	case EM_RISCV:
		return "riscv";
	case EM_PPC64:
		return "ppc64";
	case EM_S390:
		return "s390";
	case EM_MIPS:
		return "mips";
	default:
		return "unknown";
	}
}

int elfhdr_check_x86_64(const uint8_t *img, size_t len, const char *what, Elf64_Ehdr *eh,
			struct nb_error *err)
{
	if (len < SELFMAG || memcmp(img, ELFMAG, SELFMAG))
		return nb_error_set(err, NB_EFORMAT, "not an ELF file (bad magic)");
	if (len < sizeof(*eh))
		return nb_error_set(err, NB_EFORMAT, "truncated ELF header (%zu bytes)", len);
	memcpy(eh, img, sizeof(*eh));
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return nb_error_set(err, NB_EFORMAT, "not a 64-bit ELF (EI_CLASS=%u)",
				    eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return nb_error_set(err, NB_EFORMAT, "not little-endian (EI_DATA=%u)",
				    eh->e_ident[EI_DATA]);
	if (eh->e_machine != EM_X86_64)
		return nb_error_set(err, NB_EFORMAT, "not an x86-64 %s (e_machine=%u, %s)", what,
				    eh->e_machine, machine_name(eh->e_machine));
	return 0;
}
