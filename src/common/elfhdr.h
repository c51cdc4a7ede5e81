/* SPDX-License-Identifier: MIT */
/* The checks every x86-64 ELF loader makes on an untrusted file's header. */
#ifndef NUBIS_COMMON_ELFHDR_H
#define NUBIS_COMMON_ELFHDR_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Check magic, size, class (64-bit), byte order (little) and machine
 * (x86-64) of @img (@len bytes) and copy its header to @eh. @what names the
 * file's kind in the machine error ("program", "kernel"). Returns 0 or -1
 * with @err (NB_EFORMAT) naming the field and value. */
int elfhdr_check_x86_64(const uint8_t *img, size_t len, const char *what, Elf64_Ehdr *eh,
			struct nb_error *err);

#endif
