#include "machine/memory.h"

#include "util/error.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

static int add_region(struct guest_memory *mem, uint64_t gpa, uint64_t size)
{
	/* MAP_NORESERVE: the guest's RAM is committed page by page as it is touched. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return err_set(-errno, "cannot allocate %llu MiB of guest memory: %s",
			       (unsigned long long)(size >> 20), strerror(errno));
	madvise(p, size, MADV_HUGEPAGE);
	mem->regions[mem->n_regions++] = (struct gmem_region){ .gpa = gpa, .size = size, .host = p };
	return 0;
}

int gmem_init(struct guest_memory *mem, uint64_t ram_size)
{
	memset(mem, 0, sizeof(*mem));
	uint64_t low = ram_size < GMEM_LOW_RAM_END ? ram_size : GMEM_LOW_RAM_END;
	int rc = add_region(mem, 0, low);
	if (rc == 0 && ram_size > low)
		rc = add_region(mem, GMEM_HIGH_RAM_BASE, ram_size - low);
	if (rc < 0) {
		gmem_destroy(mem);
		return rc;
	}
	mem->ram_size = ram_size;
	return 0;
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
	mem->regions[mem->n_regions++] = (struct gmem_region){ .gpa = gpa, .size = size, .host = p, .rom = true };
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
		munmap(mem->regions[i].host, mem->regions[i].size);
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
