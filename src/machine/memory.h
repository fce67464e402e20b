/* Guest-physical memory: RAM regions backed by host memory.  Everything
 * that touches guest memory goes through these bounds-checked helpers
 * (docs/architecture.md "Conventions"); an address that is not RAM is MMIO. */
#ifndef VESSEL_MACHINE_MEMORY_H
#define VESSEL_MACHINE_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 8

/* PC memory map (docs/architecture.md). RAM above LOW_RAM_END moves
 * above 4 GiB so that the 32-bit MMIO window stays free. */
#define GMEM_LOW_RAM_END   0xb0000000ull   /* RAM below this, then ECAM */
#define GMEM_ECAM_BASE     0xb0000000ull   /* PCI MMCONFIG, 256 buses */
#define GMEM_ECAM_SIZE     0x10000000ull
#define GMEM_PCI_MMIO_BASE 0xc0000000ull
#define GMEM_IOAPIC_BASE   0xfec00000ull
#define GMEM_HPET_BASE     0xfed00000ull
#define GMEM_LAPIC_BASE    0xfee00000ull
#define GMEM_HIGH_RAM_BASE 0x100000000ull

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	bool rom;       /* read-only to the guest: engines ignore its writes */
};

struct guest_memory {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned n_regions;
	uint64_t ram_size;      /* total RAM bytes */
};

/* Allocates ram_size bytes of RAM laid out per the PC map. */
int gmem_init(struct guest_memory *mem, uint64_t ram_size);
void gmem_destroy(struct guest_memory *mem);

/* Firmware ROM at the top of the 4 GiB space: the reset vector lives at
 * 0xfffffff0 (SDM vol. 3A, 9.1.4 "First Instruction Executed"). */
#define GMEM_ROM_BASE      0xffff0000ull
#define GMEM_ROM_SIZE      0x10000ull

/* Adds a guest-read-only region (firmware ROM) of size bytes at gpa, zero
 * filled; the host fills it through gmem_write() or *host.  -EEXIST if it
 * overlaps a region, -ENOSPC if the map is full.  Engines must not let
 * the guest write a region with .rom set (gmem_is_rom()). */
int gmem_add_rom(struct guest_memory *mem, uint64_t gpa, uint64_t size, uint8_t **host);
/* The region holding gpa, or NULL if gpa is not backed by memory. */
const struct gmem_region *gmem_find_region(const struct guest_memory *mem, uint64_t gpa);
static inline bool gmem_is_rom(const struct guest_memory *mem, uint64_t gpa)
{
	const struct gmem_region *r = gmem_find_region(mem, gpa);
	return r && r->rom;
}

/* Host pointer to [gpa, gpa+len) if it lies entirely in one RAM region, else NULL. */
static inline void *gmem_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

/* Copy to/from guest RAM; -EFAULT if any byte is outside RAM. */
int gmem_read(const struct guest_memory *mem, uint64_t gpa, void *buf, size_t len);
int gmem_write(struct guest_memory *mem, uint64_t gpa, const void *buf, size_t len);

#endif
