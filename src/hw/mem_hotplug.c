/* ACPI memory hot-plug controller (see mem_hotplug.h and docs/hotplug.md).
 *
 * The OS learns of a change from a GPE whose handler (\_GPE._Exx, which
 * calls \_SB.MSCN of the memory SSDT, src/acpi/memhp.c) reads INS and EJR
 * and notifies each slot named there: Notify 1 (device check) makes the
 * OS evaluate the slot's _STA, find it present and add the range of its
 * _CRS to the node of its _PXM; Notify 3 (eject request) makes it offline
 * and remove that memory and run the slot's _EJ0 (hw/acpi_hotplug.h). */
#include "hw/mem_hotplug.h"

#include "hw/acpi_hotplug.h"
#include "machine/bus.h"
#include "machine/snap_state.h"

_Static_assert(MEM_HOTPLUG_SLOTS <= ACPI_HOTPLUG_MAX, "the core holds every slot");

/* PRS, INS and EJR are the core's prs, ins and ejr. */
struct mem_hotplug {
	struct acpi_hotplug core;
};

void mem_hotplug_plug(struct mem_hotplug *hp, unsigned slot, bool notify) { acpi_hotplug_plug(&hp->core, slot, notify); }
void mem_hotplug_request_eject(struct mem_hotplug *hp, unsigned slot) { acpi_hotplug_raise(&hp->core, hp->core.ejr, slot); }
bool mem_hotplug_take_eject(struct mem_hotplug *hp, unsigned slot) { return acpi_hotplug_take_eject(&hp->core, slot); }
void mem_hotplug_unplug(struct mem_hotplug *hp, unsigned slot) { acpi_hotplug_forget(&hp->core, slot); }

bool mem_hotplug_present(const struct mem_hotplug *hp, unsigned slot)
{
	return acpi_hotplug_test(&hp->core, hp->core.prs, slot);
}

static uint64_t mhp_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct mem_hotplug *hp = opaque;
	unsigned g = (unsigned)(off & 0x1f) / 4;
	uint32_t *bank = off < MEM_HOTPLUG_INS ? hp->core.prs : off < MEM_HOTPLUG_EJR ? hp->core.ins
			: off < MEM_HOTPLUG_EJ ? hp->core.ejr : NULL;
	if (!bank)
		return 0;   /* EJ reads as 0 */
	/* PRS is a state, never consumed. */
	return acpi_hotplug_read(&bank[g], 1, off & 3, size, bank != hp->core.prs);
}

static void mhp_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct mem_hotplug *hp = opaque;
	if (off < MEM_HOTPLUG_EJ)
		return;   /* PRS, INS and EJR are read-only */
	unsigned g = (unsigned)(off & 0x1f) / 4;
	acpi_hotplug_eject(&hp->core, g, (uint32_t)(val << (8 * (off & 3))) & hp->core.prs[g]);
}

static const struct bus_ops mhp_ops = { mhp_read, mhp_write };

static void *mhp_create(const struct dev_ctx *ctx)
{
	return acpi_hotplug_create(sizeof(struct mem_hotplug), ctx, MEM_HOTPLUG_SLOTS, MEM_HOTPLUG_LEN, &mhp_ops,
				   "mem-hotplug");
}

/* Version 1: per group PRS, INS, EJR and the ejects not yet taken. */
static int64_t mhp_save(void *dev, void *buf, size_t cap)
{
	struct mem_hotplug *hp = dev;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	for (unsigned g = 0; g < MEM_HOTPLUG_GROUPS; g++) {
		hw_snap_u32(&w, hp->core.prs[g]);
		hw_snap_u32(&w, hp->core.ins[g]);
		hw_snap_u32(&w, hp->core.ejr[g]);
		hw_snap_u32(&w, hp->core.ejected[g]);
	}
	return hw_snap_end(&w);
}

static int mhp_load(void *dev, const void *buf, size_t len)
{
	struct mem_hotplug *hp = dev;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "mem-hotplug", 1, 16 * MEM_HOTPLUG_GROUPS);
	if (rc < 0)
		return rc;
	for (unsigned g = 0; g < MEM_HOTPLUG_GROUPS; g++) {
		hp->core.prs[g] = hw_snap_get_u32(&r);
		hp->core.ins[g] = hw_snap_get_u32(&r);
		hp->core.ejr[g] = hw_snap_get_u32(&r);
		hp->core.ejected[g] = hw_snap_get_u32(&r);
	}
	return 0;
}

/* A reset keeps what is present (the memory stays plugged, as DIMMs do)
 * and drops what was pending. */
const struct dev_desc mem_hotplug_device = {
	.name = "mem-hotplug", .create = mhp_create, .reset = acpi_hotplug_reset,
	.save = mhp_save, .load = mhp_load, .destroy = acpi_hotplug_destroy,
};
