/* Guest-physical memory: RAM regions backed by host memory.  Everything
 * that touches guest memory goes through these bounds-checked helpers
 * (docs/architecture.md "Conventions"); an address that is not RAM is MMIO. */
#ifndef VESSEL_MACHINE_MEMORY_H
#define VESSEL_MACHINE_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RAM below and above the hole, the ROM, and hot-added pieces. */
#define GMEM_MAX_REGIONS 24

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

/* How RAM is backed on the host (--memory-backend, docs/numa.md "Huge
 * pages"): anonymous memory the kernel may back with transparent huge
 * pages (madvise MADV_HUGEPAGE, the default), anonymous memory without
 * them, or hugetlb pages of 2 MiB or 1 GiB (MAP_HUGETLB, reserved at the
 * mapping; --memory-page-size).  Set before gmem_init*(); RAM sizes must
 * then be multiples of the page. */
enum gmem_backend { GMEM_BACKEND_THP, GMEM_BACKEND_NORMAL, GMEM_BACKEND_HUGETLB };
#define GMEM_HUGE_PAGE (2ull << 20)
#define GMEM_HUGE_PAGE_1G (1ull << 30)
/* Where Linux lists each size of hugetlb page it offers (its pools). */
#define GMEM_HUGE_SYSFS "/sys/kernel/mm/hugepages"

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	bool rom;       /* read-only to the guest: engines ignore its writes */
	/* Hot-added RAM (docs/hotplug.md "Memory"): in the hot-pluggable
	 * range, of virtual NUMA node `node`.  A piece the guest ejected keeps
	 * its slot in the table with size 0 (so that an engine's slot numbers
	 * stay) and its host mapping, emptied, until gmem_destroy(). */
	bool hotplug;
	unsigned node;
	uint64_t map_size;      /* of the host mapping (size, but for an ejected piece) */
};

struct guest_memory {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned n_regions;
	uint64_t ram_size;      /* total RAM bytes, hot-added RAM not included */
	/* The guest-physical range kept free for hot-added RAM: above all
	 * RAM, aligned to GMEM_HOTPLUG_ALIGN; size 0: none. */
	uint64_t hp_base, hp_size;
	enum gmem_backend backend;
	uint64_t huge_page;     /* hugetlb: GMEM_HUGE_PAGE or GMEM_HUGE_PAGE_1G */
};

/* Hot-added RAM comes in blocks of this size, Linux's memory block on
 * x86-64 (memory_block_size_bytes(), MIN_MEMORY_BLOCK_SIZE for guests
 * under 64 GiB), at addresses aligned to it. */
#define GMEM_HOTPLUG_BLOCK (128ull << 20)
#define GMEM_HOTPLUG_ALIGN (1ull << 30)
#define GMEM_HOTPLUG_MAX (32ull << 30)

/* Allocates ram_size bytes of RAM laid out per the PC map, and keeps
 * hp_size bytes of guest-physical space above it for hot-added RAM
 * (a multiple of GMEM_HOTPLUG_BLOCK, at most GMEM_HOTPLUG_MAX). */
int gmem_init(struct guest_memory *mem, uint64_t ram_size);
int gmem_init_hotplug(struct guest_memory *mem, uint64_t ram_size, uint64_t hp_size);
int gmem_init_backend(struct guest_memory *mem, uint64_t ram_size, uint64_t hp_size, enum gmem_backend backend);
/* The same with hugetlb pages of huge_page bytes (GMEM_HUGE_PAGE or
 * GMEM_HUGE_PAGE_1G; 0: 2 MiB): each region's host mapping is whole
 * pages (the low region's last page may be partly used). */
int gmem_init_pages(struct guest_memory *mem, uint64_t ram_size, uint64_t hp_size, enum gmem_backend backend,
		    uint64_t huge_page);
/* "2 MiB" or "1 GiB". */
const char *gmem_page_name(uint64_t page);
const char *gmem_backend_name(enum gmem_backend b);
int gmem_backend_parse(const char *s, enum gmem_backend *out);
void gmem_destroy(struct guest_memory *mem);
/* The end of the guest-physical space RAM may ever occupy (hot-added
 * RAM included): engines size their per-page tables by it. */
uint64_t gmem_span_end(const struct guest_memory *mem);
/* Maps size bytes of new RAM at gpa (inside the hot-pluggable range, not
 * overlapping RAM) for node; the region's index in *index.  The region is
 * published last, so that vCPUs running meanwhile see it whole or not at
 * all.  -EINVAL, -EEXIST, -ENOSPC or -ENOMEM with a message. */
int gmem_add_hotplug(struct guest_memory *mem, uint64_t gpa, uint64_t size, unsigned node, unsigned *index);
/* The guest let go of hot-added region index: its addresses stop being
 * RAM and its host memory is given back; the mapping stays reserved
 * until gmem_destroy(), so a stale pointer never reaches another
 * mapping.  Callers first stop every user of the region's pointers. */
void gmem_unplug(struct guest_memory *mem, unsigned index);

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
