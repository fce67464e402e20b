#include "machine/memory.h"

#include "util/error.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

const char *gmem_backend_name(enum gmem_backend b)
{
	return b == GMEM_BACKEND_HUGETLB ? "hugetlb" : b == GMEM_BACKEND_NORMAL ? "normal" : "thp";
}

int gmem_backend_parse(const char *s, enum gmem_backend *out)
{
	for (enum gmem_backend b = GMEM_BACKEND_THP; b <= GMEM_BACKEND_HUGETLB; b++) {
		if (!strcmp(s, gmem_backend_name(b))) {
			*out = b;
			return 0;
		}
	}
	return err_set(-EINVAL, "memory backend: '%s' is not a backend (expected thp, normal or hugetlb)", s);
}

const char *gmem_page_name(uint64_t page)
{
	return page == GMEM_HUGE_PAGE_1G ? "1 GiB" : "2 MiB";
}

/* mmap(2)'s hugetlb page size: log2 of the size at MAP_HUGE_SHIFT. */
static int huge_flag(uint64_t page)
{
	return __builtin_ctzll(page) << MAP_HUGE_SHIFT;
}

/* A host mapping of size bytes of guest RAM as mem's backend says; its
 * length (size, rounded up to whole hugetlb pages) in *map_size. */
static void *map_ram(const struct guest_memory *mem, uint64_t size, uint64_t *map_size)
{
	void *p;
	*map_size = size;
	if (mem->backend == GMEM_BACKEND_HUGETLB) {
		uint64_t page = mem->huge_page;
		*map_size = (size + page - 1) / page * page;
		/* Reserved now (no MAP_NORESERVE): a host without enough huge
		 * pages fails here rather than with SIGBUS at a guest access. */
		p = mmap(NULL, *map_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | huge_flag(page), -1, 0);
		if (p == MAP_FAILED)
			err_set(-errno, "cannot allocate %llu MiB of guest memory in %s huge pages: %s (the host has "
					"too few free: %s/hugepages-%llukB/nr_hugepages)",
				(unsigned long long)(*map_size >> 20), gmem_page_name(page), strerror(errno),
				GMEM_HUGE_SYSFS, (unsigned long long)(page >> 10));
		return p;
	}
	/* MAP_NORESERVE: the guest's RAM is committed page by page as it is touched. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		err_set(-errno, "cannot allocate %llu MiB of guest memory: %s", (unsigned long long)(size >> 20),
			strerror(errno));
		return p;
	}
	madvise(p, size, mem->backend == GMEM_BACKEND_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return p;
}

static int add_region(struct guest_memory *mem, uint64_t gpa, uint64_t size)
{
	uint64_t map_size;
	void *p = map_ram(mem, size, &map_size);
	if (p == MAP_FAILED)
		return -ENOMEM;
	mem->regions[mem->n_regions++] =
		(struct gmem_region){ .gpa = gpa, .size = size, .host = p, .map_size = map_size };
	return 0;
}

int gmem_init(struct guest_memory *mem, uint64_t ram_size)
{
	return gmem_init_hotplug(mem, ram_size, 0);
}

int gmem_init_hotplug(struct guest_memory *mem, uint64_t ram_size, uint64_t hp_size)
{
	return gmem_init_backend(mem, ram_size, hp_size, GMEM_BACKEND_THP);
}

int gmem_init_backend(struct guest_memory *mem, uint64_t ram_size, uint64_t hp_size, enum gmem_backend backend)
{
	return gmem_init_pages(mem, ram_size, hp_size, backend, GMEM_HUGE_PAGE);
}

int gmem_init_pages(struct guest_memory *mem, uint64_t ram_size, uint64_t hp_size, enum gmem_backend backend,
		    uint64_t huge_page)
{
	memset(mem, 0, sizeof(*mem));
	mem->backend = backend;
	mem->huge_page = huge_page == GMEM_HUGE_PAGE_1G ? GMEM_HUGE_PAGE_1G : GMEM_HUGE_PAGE;
	if (backend == GMEM_BACKEND_HUGETLB && ram_size % mem->huge_page)
		return err_set(-EINVAL, "memory backend hugetlb: %llu KiB of RAM is not a multiple of %s",
			       (unsigned long long)(ram_size >> 10), gmem_page_name(mem->huge_page));
	if (hp_size % GMEM_HOTPLUG_BLOCK || hp_size > GMEM_HOTPLUG_MAX)
		return err_set(-EINVAL, "hot-pluggable memory: %llu MiB is not a multiple of %llu MiB up to %llu GiB",
			       (unsigned long long)(hp_size >> 20), GMEM_HOTPLUG_BLOCK >> 20, GMEM_HOTPLUG_MAX >> 30);
	uint64_t low = ram_size < GMEM_LOW_RAM_END ? ram_size : GMEM_LOW_RAM_END;
	int rc = add_region(mem, 0, low);
	if (rc == 0 && ram_size > low)
		rc = add_region(mem, GMEM_HIGH_RAM_BASE, ram_size - low);
	if (rc < 0) {
		gmem_destroy(mem);
		return rc;
	}
	mem->ram_size = ram_size;
	if (hp_size) {
		/* Above the last RAM byte (and 4 GiB, clear of the 32-bit PCI
		 * window), aligned so that every block is. */
		uint64_t end = ram_size > low ? GMEM_HIGH_RAM_BASE + (ram_size - low) : GMEM_HIGH_RAM_BASE;
		mem->hp_base = (end + GMEM_HOTPLUG_ALIGN - 1) & ~(GMEM_HOTPLUG_ALIGN - 1);
		mem->hp_size = hp_size;
	}
	return 0;
}

uint64_t gmem_span_end(const struct guest_memory *mem)
{
	uint64_t end = mem->hp_size ? mem->hp_base + mem->hp_size : 0;
	for (unsigned i = 0; i < mem->n_regions; i++) {
		uint64_t e = mem->regions[i].gpa + mem->regions[i].size;
		if (e > end)
			end = e;
	}
	return end;
}

int gmem_add_hotplug(struct guest_memory *mem, uint64_t gpa, uint64_t size, unsigned node, unsigned *index)
{
	if (!size || gpa < mem->hp_base || gpa - mem->hp_base > mem->hp_size || size > mem->hp_size - (gpa - mem->hp_base))
		return err_set(-EINVAL, "memory at %#llx (%llu MiB) is outside the hot-pluggable range",
			       (unsigned long long)gpa, (unsigned long long)(size >> 20));
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return err_set(-EEXIST, "memory at %#llx overlaps guest memory at %#llx",
				       (unsigned long long)gpa, (unsigned long long)r->gpa);
	}
	if (mem->n_regions >= GMEM_MAX_REGIONS)
		return err_set(-ENOSPC, "no room for another piece of guest memory (at most %d pieces in all)",
			       GMEM_MAX_REGIONS);
	/* Whole hugetlb pages: a piece never shares one with another. */
	if (mem->backend == GMEM_BACKEND_HUGETLB && size % mem->huge_page)
		return err_set(-EINVAL, "%llu MiB is not a multiple of the %s huge page (--memory-page-size)",
			       (unsigned long long)(size >> 20), gmem_page_name(mem->huge_page));
	uint64_t map_size;
	void *p = map_ram(mem, size, &map_size);
	if (p == MAP_FAILED)
		return -ENOMEM;
	unsigned i = mem->n_regions;
	mem->regions[i] = (struct gmem_region){ .gpa = gpa, .size = size, .host = p, .hotplug = true, .node = node,
						.map_size = map_size };
	/* gmem_ptr() reads n_regions, then the entries below it. */
	__atomic_store_n(&mem->n_regions, i + 1, __ATOMIC_RELEASE);
	*index = i;
	return 0;
}

void gmem_unplug(struct guest_memory *mem, unsigned index)
{
	if (index >= mem->n_regions || !mem->regions[index].hotplug || !mem->regions[index].size)
		return;
	struct gmem_region *r = &mem->regions[index];
	__atomic_store_n(&r->size, 0, __ATOMIC_RELEASE);
	madvise(r->host, r->map_size, MADV_DONTNEED);
}

int gmem_add_rom(struct guest_memory *mem, uint64_t gpa, uint64_t size, uint8_t **host)
{
	if (size == 0 || gpa + size < gpa)
		return err_set(-EINVAL, "ROM at %#llx: bad size %#llx", (unsigned long long)gpa,
			       (unsigned long long)size);
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return err_set(-EEXIST, "ROM at %#llx overlaps guest memory at %#llx",
				       (unsigned long long)gpa, (unsigned long long)r->gpa);
	}
	if (mem->n_regions >= GMEM_MAX_REGIONS)
		return err_set(-ENOSPC, "no room for another guest memory region");
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return err_set(-errno, "cannot allocate the ROM: %s", strerror(errno));
	mem->regions[mem->n_regions++] =
		(struct gmem_region){ .gpa = gpa, .size = size, .host = p, .rom = true, .map_size = size };
	if (host)
		*host = p;
	return 0;
}

const struct gmem_region *gmem_find_region(const struct guest_memory *mem, uint64_t gpa)
{
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void gmem_destroy(struct guest_memory *mem)
{
	for (unsigned i = 0; i < mem->n_regions; i++)
		munmap(mem->regions[i].host, mem->regions[i].map_size);
	memset(mem, 0, sizeof(*mem));
}

/* Copies piecewise so that a range spanning two adjacent regions still works. */
int gmem_read(const struct guest_memory *mem, uint64_t gpa, void *buf, size_t len)
{
	uint8_t *out = buf;
	while (len) {
		size_t chunk = len;
		void *p;
		while (!(p = gmem_ptr(mem, gpa, chunk)) && chunk > 1)
			chunk = chunk > 4096 ? chunk / 2 : chunk - 1;
		if (!p)
			return -EFAULT;
		memcpy(out, p, chunk);
		out += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int gmem_write(struct guest_memory *mem, uint64_t gpa, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	while (len) {
		size_t chunk = len;
		void *p;
		while (!(p = gmem_ptr(mem, gpa, chunk)) && chunk > 1)
			chunk = chunk > 4096 ? chunk / 2 : chunk - 1;
		if (!p)
			return -EFAULT;
		memcpy(p, in, chunk);
		in += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}
