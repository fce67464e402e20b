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

/* Removal (docs/hotplug.md "Memory"): asks the guest to release the
 * hot-added piece that starts at gpa (an eject request per block);
 * *index is its region.  -ENOENT when no piece starts there. */
int memhp_request_remove(struct vm *vm, uint64_t gpa, unsigned *index);
/* Whether the guest ejected every block of region index; seen (one byte
 * per block of the range, zeroed by the caller) keeps those it did. */
bool memhp_ejected(struct vm *vm, unsigned index, uint8_t *seen);
/* Takes region index out of the machine once the guest let go of it.
 * Every vCPU is held out of its engine (the vCPU gate) meanwhile: its
 * addresses stop being RAM, the vCPUs will drop their translations and
 * decoded code of it, the engine unmaps it, the host memory is given
 * back.  Fills *piece with what went. */
void memhp_unplug(struct vm *vm, unsigned index, struct memhp_piece *piece);

#endif
