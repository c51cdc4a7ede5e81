/* SPDX-License-Identifier: MIT */
/*
 * The e820 memory map a Linux guest is given in its zero page.
 *
 * Guest RAM of N bytes is laid out as on a PC with a 32-bit PCI hole:
 *
 *   [0, 0x9fc00)              RAM (conventional memory)
 *   [0x9fc00, 1 MiB)          reserved (EBDA, VGA, BIOS); backed by guest memory, so the
 *                             monitor can put ACPI tables there
 *   [1 MiB, min(N, 3 GiB))    RAM
 *   [3 GiB, 4 GiB)            no memory: the 32-bit PCI/MMIO hole, not listed
 *   [4 GiB, 4 GiB + N - 3 GiB) RAM, if N > 3 GiB
 *
 * Guest memory backs [0, min(N, 3 GiB)) and, above 3 GiB of RAM,
 * [4 GiB, 4 GiB + N - 3 GiB): e820_low_size() and e820_high_size() give the two parts.
 */
#ifndef NUBIS_BOOT_E820_H
#define NUBIS_BOOT_E820_H

#include <assert.h>
#include <stdint.h>

#include "../common/error.h"

#define E820_MAX_ENTRIES 128 /* what the zero page holds */

/* Entry types (ACPI address range types). */
#define E820_RAM      1u
#define E820_RESERVED 2u
#define E820_ACPI     3u
#define E820_NVS      4u
#define E820_UNUSABLE 5u

#define E820_LOW_RAM_END    0x9fc00ull	   /* end of conventional memory */
#define E820_HIGH_RAM_START 0x100000ull	   /* 1 MiB */
#define E820_HOLE_START	    0xc0000000ull  /* 3 GiB */
#define E820_HOLE_END	    0x100000000ull /* 4 GiB */
#define E820_MIN_RAM	    (2ull << 20)   /* 2 MiB */
#define E820_MAX_RAM	    (1ull << 45)   /* 32 TiB */
#define E820_MAX_ADDR	    (1ull << 46)   /* end of any entry: 46 address bits */

/* One entry, 20 bytes, as in the zero page's e820_table. */
struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
static_assert(sizeof(struct e820_entry) == 20, "e820 entry is 20 bytes");

struct e820_map {
	uint32_t n;
	struct e820_entry e[E820_MAX_ENTRIES];
};

/* Fill @map for a guest of @ram_size bytes (a multiple of 4 KiB in
 * [E820_MIN_RAM, E820_MAX_RAM]). Returns 0, or -1 with @err (NB_EINVAL). */
int e820_build(struct e820_map *map, uint64_t ram_size, struct nb_error *err);

/* Insert [addr, addr + size) of @type, keeping @map sorted. Fails (-1, @err NB_EINVAL) if
 * the map is full or invalid, the range is empty, wraps, ends above E820_MAX_ADDR or
 * overlaps an entry. For the monitor's own regions (ACPI tables, PCIe ECAM). */
int e820_add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type,
	     struct nb_error *err);

/* 0 if @map has at most E820_MAX_ENTRIES entries, each non-empty, of type 1-5, not wrapping,
 * ending at or below E820_MAX_ADDR, sorted by address and not overlapping; else -1 with
 * @err (NB_EINVAL) naming the entry. */
int e820_check(const struct e820_map *map, struct nb_error *err);

/* Sum of the sizes of @map's entries of @type (of a map that passes e820_check). */
uint64_t e820_total(const struct e820_map *map, uint32_t type);

/* Guest memory below the hole: min(ram_size, 3 GiB); and at 4 GiB: the rest. */
uint64_t e820_low_size(uint64_t ram_size);
uint64_t e820_high_size(uint64_t ram_size);

#endif
