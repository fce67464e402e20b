/* Memory hot-add (see memhp.h and docs/hotplug.md "Memory"). */
#include "vmm/memhp.h"

#include "board/pc.h"
#include "hw/mem_hotplug.h"
#include "machine/machine.h"
#include "machine/vnuma.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdbool.h>

static bool range_free(const struct guest_memory *mem, uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return false;
	}
	return true;
}

int memhp_add(struct vm *vm, uint64_t size, int node, uint64_t gpa, bool notify, struct memhp_piece *piece)
{
	struct guest_memory *mem = &vm->mem;
	struct platform *p = vm->platform;
	if (!mem->hp_size || !p || !p->memhp)
		return err_set(-ENOTSUP, "memory add: this VM has no hot-pluggable memory range (start it with "
					 "--memory-hotplug SIZE)");
	if (!size || size % GMEM_HOTPLUG_BLOCK)
		return err_set(-EINVAL, "memory add: %llu MiB is not a multiple of the %llu MiB memory block",
			       (unsigned long long)(size >> 20), GMEM_HOTPLUG_BLOCK >> 20);
	/* Each piece its own whole hugetlb pages (docs/numa.md "Huge pages"). */
	if (mem->backend == GMEM_BACKEND_HUGETLB && size % mem->huge_page)
		return err_set(-EINVAL, "memory add: %llu MiB is not a multiple of the %s huge page (--memory-page-size)",
			       (unsigned long long)(size >> 20), gmem_page_name(mem->huge_page));
	unsigned n_nodes = vm->numa.n_nodes ? vm->numa.n_nodes : 1;
	if (node < 0)
		node = 0;
	if ((unsigned)node >= n_nodes)
		return err_set(-EINVAL, "memory add: the guest has no NUMA node %d (it has 0-%u)", node, n_nodes - 1);
	uint64_t base, share;
	vnuma_hotplug_share(&vm->numa, mem, (unsigned)node, &base, &share);
	pthread_mutex_lock(&vm->dev_lock);
	int rc = 0;
	if (gpa) {
		if (gpa < base || gpa - base > share || size > share - (gpa - base) || !range_free(mem, gpa, size))
			rc = err_set(-EINVAL, "memory add: %#llx (%llu MiB) is not free in node %d's hot-pluggable range",
				     (unsigned long long)gpa, (unsigned long long)(size >> 20), node);
	} else {
		uint64_t a = base;
		while (a + size <= base + share && !range_free(mem, a, size))
			a += GMEM_HOTPLUG_BLOCK;
		if (a + size > base + share) {
			uint64_t used = 0;
			for (unsigned i = 0; i < mem->n_regions; i++)
				if (mem->regions[i].hotplug && mem->regions[i].gpa >= base &&
				    mem->regions[i].gpa < base + share)
					used += mem->regions[i].size;
			rc = err_set(-ENOSPC, "memory add: no room for %llu MiB in node %d's hot-pluggable range (%llu of "
					      "%llu MiB in use)", (unsigned long long)(size >> 20), node,
				     (unsigned long long)(used >> 20), (unsigned long long)(share >> 20));
		}
		gpa = a;
	}
	unsigned index = 0;
	if (rc == 0)
		rc = gmem_add_hotplug(mem, gpa, size, (unsigned)node, &index);
	/* Bound before the guest touches it, as boot RAM is. */
	if (rc == 0 && (rc = vnuma_bind_hotplug(&vm->numa, &mem->regions[index])) == 0 && vm->accel->memory_changed)
		rc = vm->accel->memory_changed(vm, index);
	if (rc < 0 && index) {
		gmem_unplug(mem, index);
	} else if (rc == 0) {
		for (uint64_t a = gpa; a < gpa + size; a += GMEM_HOTPLUG_BLOCK)
			mem_hotplug_plug(p->memhp, (unsigned)((a - mem->hp_base) / GMEM_HOTPLUG_BLOCK), notify);
		*piece = (struct memhp_piece){ .gpa = gpa, .size = size, .node = (unsigned)node };
	}
	pthread_mutex_unlock(&vm->dev_lock);
	if (rc == 0)
		log_info("hotplug", "%llu MiB of memory at %#llx in node %d", (unsigned long long)(size >> 20),
			 (unsigned long long)gpa, node);
	return rc;
}

static unsigned first_slot(const struct guest_memory *mem, const struct gmem_region *r)
{
	return (unsigned)((r->gpa - mem->hp_base) / GMEM_HOTPLUG_BLOCK);
}

int memhp_request_remove(struct vm *vm, uint64_t gpa, unsigned *index)
{
	struct guest_memory *mem = &vm->mem;
	struct platform *p = vm->platform;
	int rc = -ENOENT;
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned i = 0; p && p->memhp && i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (!r->hotplug || !r->size || r->gpa != gpa)
			continue;
		unsigned s0 = first_slot(mem, r), n = (unsigned)(r->size / GMEM_HOTPLUG_BLOCK);
		for (unsigned s = s0; s < s0 + n; s++)
			mem_hotplug_request_eject(p->memhp, s);
		*index = i;
		rc = 0;
	}
	pthread_mutex_unlock(&vm->dev_lock);
	if (rc < 0)
		return err_set(rc, "memory remove: no hot-added memory starts at %#llx (see `vessel ctl status`)",
			       (unsigned long long)gpa);
	return 0;
}

bool memhp_ejected(struct vm *vm, unsigned index, uint8_t *seen)
{
	struct guest_memory *mem = &vm->mem;
	const struct gmem_region *r = &mem->regions[index];
	unsigned s0 = first_slot(mem, r), n = (unsigned)(r->size / GMEM_HOTPLUG_BLOCK);
	bool all = true;
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned s = s0; s < s0 + n; s++) {
		if (mem_hotplug_take_eject(vm->platform->memhp, s))
			seen[s] = 1;
		all &= seen[s] != 0;
	}
	pthread_mutex_unlock(&vm->dev_lock);
	return all;
}

void memhp_unplug(struct vm *vm, unsigned index, struct memhp_piece *piece)
{
	struct guest_memory *mem = &vm->mem;
	struct gmem_region *r = &mem->regions[index];
	*piece = (struct memhp_piece){ .gpa = r->gpa, .size = r->size, .node = r->node };
	unsigned s0 = first_slot(mem, r), n = (unsigned)(r->size / GMEM_HOTPLUG_BLOCK);
	pthread_mutex_lock(&vm->dev_lock);
	/* What the engine derived from those bytes (decoded code, watched
	 * page tables) goes first, then the translations to them. */
	if (vm->accel->memory_written)
		vm->accel->memory_written(vm, r->gpa, r->size);
	gmem_unplug(mem, index);
	vm_request_tlb_flush_all(vm);
	if (vm->accel->memory_changed && vm->accel->memory_changed(vm, index) < 0)
		log_warn("hotplug", "%s", err_msg());
	for (unsigned s = s0; s < s0 + n; s++)
		mem_hotplug_unplug(vm->platform->memhp, s);
	pthread_mutex_unlock(&vm->dev_lock);
	log_info("hotplug", "%llu MiB of memory at %#llx left node %u", (unsigned long long)(piece->size >> 20),
		 (unsigned long long)piece->gpa, piece->node);
}
