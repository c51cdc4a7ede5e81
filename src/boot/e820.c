/* SPDX-License-Identifier: MIT */
#include "e820.h"

#include <string.h>

uint64_t e820_low_size(uint64_t ram_size)
{
	return ram_size < E820_HOLE_START ? ram_size : E820_HOLE_START;
}

uint64_t e820_high_size(uint64_t ram_size)
{
	return ram_size > E820_HOLE_START ? ram_size - E820_HOLE_START : 0;
}

static void push(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type)
{
	map->e[map->n++] = (struct e820_entry){.addr = addr, .size = size, .type = type};
}

int e820_build(struct e820_map *map, uint64_t ram_size, struct nb_error *err)
{
	memset(map, 0, sizeof(*map));
	if (ram_size < E820_MIN_RAM || ram_size > E820_MAX_RAM)
		return nb_error_set(err, NB_EINVAL,
				    "memory size %#llx is outside [%#llx, %#llx] (2 MiB to 32 TiB)",
				    (unsigned long long)ram_size, E820_MIN_RAM, E820_MAX_RAM);
	if (ram_size & 0xfff)
		return nb_error_set(err, NB_EINVAL, "memory size %#llx is not a multiple of 4 KiB",
				    (unsigned long long)ram_size);
	uint64_t low = e820_low_size(ram_size), high = e820_high_size(ram_size);
	push(map, 0, E820_LOW_RAM_END, E820_RAM);
	push(map, E820_LOW_RAM_END, E820_HIGH_RAM_START - E820_LOW_RAM_END, E820_RESERVED);
	push(map, E820_HIGH_RAM_START, low - E820_HIGH_RAM_START, E820_RAM);
	if (high)
		push(map, E820_HOLE_END, high, E820_RAM);
	return 0;
}

static int check_entry(const struct e820_entry *e, unsigned i, struct nb_error *err)
{
	uint64_t end;
	if (e->size == 0)
		return nb_error_set(err, NB_EINVAL, "e820 entry %u at %#llx is empty", i,
				    (unsigned long long)e->addr);
	if (e->type < E820_RAM || e->type > E820_UNUSABLE)
		return nb_error_set(err, NB_EINVAL, "e820 entry %u has type %u (not 1-5)", i,
				    e->type);
	if (__builtin_add_overflow(e->addr, e->size, &end) || end > E820_MAX_ADDR)
		return nb_error_set(
		    err, NB_EINVAL, "e820 entry %u [%#llx, +%#llx) ends beyond %#llx", i,
		    (unsigned long long)e->addr, (unsigned long long)e->size, E820_MAX_ADDR);
	return 0;
}

int e820_check(const struct e820_map *map, struct nb_error *err)
{
	if (map->n > E820_MAX_ENTRIES)
		return nb_error_set(err, NB_EINVAL, "e820 map has %u entries (at most %d)", map->n,
				    E820_MAX_ENTRIES);
	for (unsigned i = 0; i < map->n; i++) {
		const struct e820_entry *e = &map->e[i];
		if (check_entry(e, i, err) < 0)
			return -1;
		if (i == 0)
			continue;
		const struct e820_entry *p = &map->e[i - 1];
		if (e->addr < p->addr)
			return nb_error_set(
			    err, NB_EINVAL,
			    "e820 entry %u at %#llx is below entry %u at %#llx (not "
			    "sorted)",
			    i, (unsigned long long)e->addr, i - 1, (unsigned long long)p->addr);
		if (e->addr < p->addr + p->size) /* p checked: no wrap */
			return nb_error_set(
			    err, NB_EINVAL,
			    "e820 entry %u at %#llx overlaps entry %u [%#llx, +%#llx)", i,
			    (unsigned long long)e->addr, i - 1, (unsigned long long)p->addr,
			    (unsigned long long)p->size);
	}
	return 0;
}

int e820_add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type,
	     struct nb_error *err)
{
	struct e820_entry ne = {.addr = addr, .size = size, .type = type};
	if (e820_check(map, err) < 0)
		return -1;
	if (map->n == E820_MAX_ENTRIES)
		return nb_error_set(err, NB_EINVAL, "e820 map is full (%d entries)",
				    E820_MAX_ENTRIES);
	if (check_entry(&ne, map->n, err) < 0)
		return -1;
	unsigned at = 0;
	while (at < map->n && map->e[at].addr < addr)
		at++;
	/* Sorted and non-overlapping: only the neighbours can overlap. */
	if (at > 0 && map->e[at - 1].addr + map->e[at - 1].size > addr)
		return nb_error_set(err, NB_EINVAL,
				    "e820 range [%#llx, +%#llx) overlaps [%#llx, +%#llx)",
				    (unsigned long long)addr, (unsigned long long)size,
				    (unsigned long long)map->e[at - 1].addr,
				    (unsigned long long)map->e[at - 1].size);
	if (at < map->n && map->e[at].addr < addr + size)
		return nb_error_set(
		    err, NB_EINVAL, "e820 range [%#llx, +%#llx) overlaps [%#llx, +%#llx)",
		    (unsigned long long)addr, (unsigned long long)size,
		    (unsigned long long)map->e[at].addr, (unsigned long long)map->e[at].size);
	memmove(&map->e[at + 1], &map->e[at], (map->n - at) * sizeof(map->e[0]));
	map->e[at] = ne;
	map->n++;
	return 0;
}

uint64_t e820_total(const struct e820_map *map, uint32_t type)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < map->n && i < E820_MAX_ENTRIES; i++)
		if (map->e[i].type == type)
			sum += map->e[i].size;
	return sum;
}
