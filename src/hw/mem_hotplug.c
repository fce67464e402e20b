/* ACPI memory hot-plug controller (see mem_hotplug.h and docs/hotplug.md).
 *
 * The OS learns of a change from a GPE whose handler (\_GPE._Exx, which
 * calls \_SB.MSCN of the memory SSDT, src/acpi/memhp.c) reads INS and EJR
 * and notifies each slot named there: Notify 1 (device check) makes the
 * OS evaluate the slot's _STA, find it present and add the range of its
 * _CRS to the node of its _PXM; Notify 3 (eject request) makes it offline
 * and remove that memory and run the slot's _EJ0.  Reads clear what they
 * return, so a change raised while the handler runs raises the GPE again. */
#include "hw/mem_hotplug.h"

#include "hw/device.h"
#include "machine/bus.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>

struct mem_hotplug {
	struct dev_ctx ctx;
	uint32_t prs[MEM_HOTPLUG_GROUPS];
	uint32_t ins[MEM_HOTPLUG_GROUPS], ejr[MEM_HOTPLUG_GROUPS];   /* pending for the OS */
	uint32_t ejected[MEM_HOTPLUG_GROUPS];   /* by the OS, not yet taken by the host */
};

#define SLOT_OK(s) ((s) < MEM_HOTPLUG_SLOTS)
#define GROUP(s) ((s) / 32)
#define BIT(s) (1u << ((s) % 32))

void mem_hotplug_plug(struct mem_hotplug *hp, unsigned slot, bool notify)
{
	if (!SLOT_OK(slot))
		return;
	hp->prs[GROUP(slot)] |= BIT(slot);
	if (notify) {
		hp->ins[GROUP(slot)] |= BIT(slot);
		irq_line_pulse(&hp->ctx.irq[0]);
	}
}

void mem_hotplug_request_eject(struct mem_hotplug *hp, unsigned slot)
{
	if (!SLOT_OK(slot))
		return;
	hp->ejr[GROUP(slot)] |= BIT(slot);
	irq_line_pulse(&hp->ctx.irq[0]);
}

bool mem_hotplug_take_eject(struct mem_hotplug *hp, unsigned slot)
{
	if (!SLOT_OK(slot))
		return false;
	bool was = (hp->ejected[GROUP(slot)] & BIT(slot)) != 0;
	hp->ejected[GROUP(slot)] &= ~BIT(slot);
	return was;
}

void mem_hotplug_unplug(struct mem_hotplug *hp, unsigned slot)
{
	if (!SLOT_OK(slot))
		return;
	hp->prs[GROUP(slot)] &= ~BIT(slot);
	hp->ins[GROUP(slot)] &= ~BIT(slot);
	hp->ejr[GROUP(slot)] &= ~BIT(slot);
	hp->ejected[GROUP(slot)] &= ~BIT(slot);
}

bool mem_hotplug_present(const struct mem_hotplug *hp, unsigned slot)
{
	return SLOT_OK(slot) && (hp->prs[GROUP(slot)] & BIT(slot));
}

static uint64_t mhp_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct mem_hotplug *hp = opaque;
	unsigned g = (unsigned)(off & 0x1f) / 4;
	uint32_t *reg = off < MEM_HOTPLUG_INS ? &hp->prs[g] : off < MEM_HOTPLUG_EJR ? &hp->ins[g]
			: off < MEM_HOTPLUG_EJ ? &hp->ejr[g] : NULL;
	if (!reg)
		return 0;   /* EJ reads as 0 */
	uint32_t v = *reg >> (8 * (off & 3));
	if (size < 4)
		v &= (1u << (8 * size)) - 1;
	/* Only the dword read the SSDT's Field does consumes pending bits. */
	if (reg != &hp->prs[g] && size == 4 && (off & 3) == 0)
		*reg = 0;
	return v;
}

static void mhp_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct mem_hotplug *hp = opaque;
	if (off < MEM_HOTPLUG_EJ)
		return;   /* PRS, INS and EJR are read-only */
	unsigned g = (unsigned)(off & 0x1f) / 4;
	uint32_t bits = (uint32_t)(val << (8 * (off & 3))) & hp->prs[g];
	hp->ejected[g] |= bits;
	/* An eject answers any request for that slot. */
	hp->ejr[g] &= ~bits;
}

static const struct bus_ops mhp_ops = { mhp_read, mhp_write };

static void *mhp_create(const struct dev_ctx *ctx)
{
	struct mem_hotplug *hp = calloc(1, sizeof(*hp));
	if (!hp) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	hp->ctx = *ctx;
	if (bus_register(ctx->pio, ctx->base[0], MEM_HOTPLUG_LEN, &mhp_ops, hp, "mem-hotplug") < 0) {
		free(hp);
		return NULL;
	}
	return hp;
}

/* A reset keeps what is present (the memory stays plugged, as DIMMs do)
 * and drops what was pending. */
static void mhp_reset(void *dev)
{
	struct mem_hotplug *hp = dev;
	for (unsigned g = 0; g < MEM_HOTPLUG_GROUPS; g++)
		hp->ins[g] = hp->ejr[g] = hp->ejected[g] = 0;
}

static void mhp_destroy(void *dev)
{
	struct mem_hotplug *hp = dev;
	if (!hp)
		return;
	bus_release(hp->ctx.pio, hp);
	free(hp);
}

/* Version 1: per group PRS, INS, EJR and the ejects not yet taken. */
static int64_t mhp_save(void *dev, void *buf, size_t cap)
{
	struct mem_hotplug *hp = dev;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	for (unsigned g = 0; g < MEM_HOTPLUG_GROUPS; g++) {
		hw_snap_u32(&w, hp->prs[g]);
		hw_snap_u32(&w, hp->ins[g]);
		hw_snap_u32(&w, hp->ejr[g]);
		hw_snap_u32(&w, hp->ejected[g]);
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
		hp->prs[g] = hw_snap_get_u32(&r);
		hp->ins[g] = hw_snap_get_u32(&r);
		hp->ejr[g] = hw_snap_get_u32(&r);
		hp->ejected[g] = hw_snap_get_u32(&r);
	}
	return 0;
}

const struct dev_desc mem_hotplug_device = {
	.name = "mem-hotplug", .create = mhp_create, .reset = mhp_reset,
	.save = mhp_save, .load = mhp_load, .destroy = mhp_destroy,
};
