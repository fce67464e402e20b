/* Memory hot-add (docs/hotplug.md "Memory"): `memory-add` maps new RAM
 * into a free part of a NUMA node's share of the hot-pluggable range,
 * binds it to the node's host nodes, maps it in the engine and tells the
 * guest through the ACPI memory hot-plug controller; the guest's OS adds
 * the memory (and onlines it, by its policy). */
#ifndef VESSEL_VMM_MEMHP_H
#define VESSEL_VMM_MEMHP_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

/* A piece of hot-added RAM, as the session keeps it for the machines it
 * builds later (a guest reset, a restore). */
struct memhp_piece {
	uint64_t gpa, size;
	unsigned node;
};

/* Adds size bytes of RAM to virtual node node (-1: node 0): at gpa, or
 * (gpa 0) the lowest free place in the node's share.  notify: tell a
 * running guest (memory-add); otherwise the memory is simply present
 * when the guest boots.  Fills *piece.  Takes the device lock.
 * -ENOTSUP (no hot-pluggable range), -EINVAL (a size that is not whole
 * blocks, an unknown node), -ENOSPC (no room) with a message. */
int memhp_add(struct vm *vm, uint64_t size, int node, uint64_t gpa, bool notify, struct memhp_piece *piece);

#endif
