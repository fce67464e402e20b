/* ACPI PCI hot-plug controller (see pci_hotplug.h and docs/hotplug.md).
 *
 * The OS learns of a change from a GPE whose handler (the DSDT's
 * \_GPE._Exx, which calls \_SB.PCI0.PCNT) reads CHK and EJR and notifies
 * each slot named there: Notify 1 (device check) makes the OS rescan the
 * slot, Notify 3 (eject request) makes it stop the driver, remove the
 * function and run the slot's _EJ0, which writes the slot's bit to EJ.
 * A slot's device check only looks for new functions (Linux's acpiphp
 * rescans the slot), so a surprise removal sets GONE instead, on which
 * PCNT sends the root bridge a bus check (Notify 0): the OS checks every
 * slot and removes the functions that no longer answer.
 * Reads clear what they return, so a change raised while the handler runs
 * raises the GPE again and is never lost between the read and the clear. */
#include "hw/pci_hotplug.h"

#include "hw/device.h"
#include "machine/bus.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>

struct pci_hotplug {
	struct dev_ctx ctx;
	uint32_t chk, ejr, gone;   /* pending for the OS */
	uint32_t ejected;    /* ejected by the OS, not yet taken by the host */
	uint32_t requested;  /* slots the host asked to release, until it takes the eject */
};

static void hp_signal(struct pci_hotplug *hp)
{
	irq_line_pulse(&hp->ctx.irq[0]);
}

static uint32_t slot_bit(unsigned slot)
{
	return slot > 0 && slot < 32 ? 1u << slot : 0;
}

/* Sets slot's bit in one of the pending bitmaps and tells the OS. */
static void hp_raise(struct pci_hotplug *hp, uint32_t *pending, unsigned slot)
{
	if (!slot_bit(slot))
		return;
	*pending |= slot_bit(slot);
	hp_signal(hp);
}

void pci_hotplug_device_check(struct pci_hotplug *hp, unsigned slot) { hp_raise(hp, &hp->chk, slot); }
void pci_hotplug_device_gone(struct pci_hotplug *hp, unsigned slot) { hp_raise(hp, &hp->gone, slot); }

void pci_hotplug_request_eject(struct pci_hotplug *hp, unsigned slot)
{
	hp->requested |= slot_bit(slot);
	hp_raise(hp, &hp->ejr, slot);
}

bool pci_hotplug_take_eject(struct pci_hotplug *hp, unsigned slot)
{
	bool was = (hp->ejected & slot_bit(slot)) != 0;
	hp->ejected &= ~slot_bit(slot);
	if (was)
		hp->requested &= ~slot_bit(slot);
	return was;
}

uint32_t pci_hotplug_take_guest_ejects(struct pci_hotplug *hp)
{
	uint32_t own = hp->ejected & ~hp->requested;
	hp->ejected &= ~own;
	return own;
}

void pci_hotplug_forget(struct pci_hotplug *hp, unsigned slot)
{
	hp->chk &= ~slot_bit(slot);
	hp->ejr &= ~slot_bit(slot);
	hp->ejected &= ~slot_bit(slot);
	hp->requested &= ~slot_bit(slot);
}

static uint64_t hp_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pci_hotplug *hp = opaque;
	uint32_t *reg = off < PCI_HOTPLUG_CHK + 4 ? &hp->chk : off < PCI_HOTPLUG_EJR + 4 ? &hp->ejr :
			off >= PCI_HOTPLUG_GONE ? &hp->gone : NULL;
	if (!reg)
		return 0;   /* EJ reads as 0 */
	unsigned shift = 8 * (off & 3);
	uint32_t v = *reg >> shift;
	if (size < 4)
		v &= (1u << (8 * size)) - 1;
	/* Only the dword read the DSDT's Field does consumes the bits. */
	if (size == 4 && (off & 3) == 0)
		*reg = 0;
	return v;
}

static void hp_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_hotplug *hp = opaque;
	if (off < PCI_HOTPLUG_EJ || off >= PCI_HOTPLUG_EJ + 4)
		return;   /* CHK, EJR and GONE are read-only */
	uint32_t bits = (uint32_t)(val << (8 * (off & 3))) & ~1u;   /* slot 0 is the host bridge */
	hp->ejected |= bits;
	/* An eject answers any request for that slot. */
	hp->ejr &= ~bits;
}

static const struct bus_ops hp_ops = { hp_read, hp_write };

static void *hp_create(const struct dev_ctx *ctx)
{
	struct pci_hotplug *hp = calloc(1, sizeof(*hp));
	if (!hp) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	hp->ctx = *ctx;
	if (bus_register(ctx->pio, ctx->base[0], PCI_HOTPLUG_LEN, &hp_ops, hp, "pci-hotplug") < 0) {
		free(hp);
		return NULL;
	}
	return hp;
}

static void hp_reset(void *dev)
{
	struct pci_hotplug *hp = dev;
	hp->chk = hp->ejr = hp->gone = hp->ejected = hp->requested = 0;
}

static void hp_destroy(void *dev)
{
	struct pci_hotplug *hp = dev;
	if (!hp)
		return;
	bus_release(hp->ctx.pio, hp);
	free(hp);
}

/* Version 2: CHK, EJR, the ejects not yet taken, GONE and the slots the
 * host asked to release (version 1 lacked the last). */
static int64_t hp_save(void *dev, void *buf, size_t cap)
{
	struct pci_hotplug *hp = dev;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 2);
	hw_snap_u32(&w, hp->chk);
	hw_snap_u32(&w, hp->ejr);
	hw_snap_u32(&w, hp->ejected);
	hw_snap_u32(&w, hp->gone);
	hw_snap_u32(&w, hp->requested);
	return hw_snap_end(&w);
}

static int hp_load(void *dev, const void *buf, size_t len)
{
	struct pci_hotplug *hp = dev;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "pci-hotplug", 2, 20);
	if (rc < 0)
		return rc;
	hp->chk = hw_snap_get_u32(&r) & ~1u;
	hp->ejr = hw_snap_get_u32(&r) & ~1u;
	hp->ejected = hw_snap_get_u32(&r) & ~1u;
	hp->gone = hw_snap_get_u32(&r) & ~1u;
	hp->requested = hw_snap_get_u32(&r) & ~1u;
	return 0;
}

const struct dev_desc pci_hotplug_device = {
	.name = "pci-hotplug", .create = hp_create, .reset = hp_reset,
	.save = hp_save, .load = hp_load, .destroy = hp_destroy,
};
