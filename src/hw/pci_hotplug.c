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
 * slot and removes the functions that no longer answer.  The bitmaps, the
 * GPE and the eject handshake are hw/acpi_hotplug.h's. */
#include "hw/pci_hotplug.h"

#include "hw/acpi_hotplug.h"
#include "machine/bus.h"
#include "machine/snap_state.h"

/* CHK is the core's ins; no slot is ever present in prs (the OS probes
 * the bus for that). */
struct pci_hotplug {
	struct acpi_hotplug core;
	uint32_t gone;       /* pending for the OS */
	uint32_t requested;  /* slots the host asked to release, until it takes the eject */
};

/* Slot 0 is the host bridge, which never comes or goes. */
static void pcihp_raise(struct pci_hotplug *hp, uint32_t *pending, unsigned slot)
{
	if (slot)
		acpi_hotplug_raise(&hp->core, pending, slot);
}

void pci_hotplug_device_check(struct pci_hotplug *hp, unsigned slot) { pcihp_raise(hp, hp->core.ins, slot); }
void pci_hotplug_device_gone(struct pci_hotplug *hp, unsigned slot) { pcihp_raise(hp, &hp->gone, slot); }

void pci_hotplug_request_eject(struct pci_hotplug *hp, unsigned slot)
{
	if (slot && slot < 32)
		hp->requested |= 1u << slot;
	pcihp_raise(hp, hp->core.ejr, slot);
}

bool pci_hotplug_take_eject(struct pci_hotplug *hp, unsigned slot)
{
	bool was = acpi_hotplug_take_eject(&hp->core, slot);
	if (was)
		hp->requested &= ~(1u << slot);
	return was;
}

uint32_t pci_hotplug_take_guest_ejects(struct pci_hotplug *hp)
{
	uint32_t own = hp->core.ejected[0] & ~hp->requested;
	hp->core.ejected[0] &= ~own;
	return own;
}

void pci_hotplug_forget(struct pci_hotplug *hp, unsigned slot)
{
	acpi_hotplug_forget(&hp->core, slot);
	if (slot < 32)
		hp->requested &= ~(1u << slot);
}

static uint64_t hp_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pci_hotplug *hp = opaque;
	uint32_t *reg = off < PCI_HOTPLUG_CHK + 4 ? hp->core.ins : off < PCI_HOTPLUG_EJR + 4 ? hp->core.ejr :
			off >= PCI_HOTPLUG_GONE ? &hp->gone : NULL;
	if (!reg)
		return 0;   /* EJ reads as 0 */
	return acpi_hotplug_read(reg, 1, off & 3, size, true);
}

static void hp_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_hotplug *hp = opaque;
	if (off < PCI_HOTPLUG_EJ || off >= PCI_HOTPLUG_EJ + 4)
		return;   /* CHK, EJR and GONE are read-only */
	/* Slot 0 is the host bridge. */
	acpi_hotplug_eject(&hp->core, 0, (uint32_t)(val << (8 * (off & 3))) & ~1u);
}

static const struct bus_ops hp_ops = { hp_read, hp_write };

static void *hp_create(const struct dev_ctx *ctx)
{
	return acpi_hotplug_create(sizeof(struct pci_hotplug), ctx, 32, PCI_HOTPLUG_LEN, &hp_ops, "pci-hotplug");
}

static void hp_reset(void *dev)
{
	struct pci_hotplug *hp = dev;
	acpi_hotplug_reset(&hp->core);
	hp->gone = hp->requested = 0;
}

/* Version 2: CHK, EJR, the ejects not yet taken, GONE and the slots the
 * host asked to release (version 1 lacked the last). */
static int64_t hp_save(void *dev, void *buf, size_t cap)
{
	struct pci_hotplug *hp = dev;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 2);
	hw_snap_u32(&w, hp->core.ins[0]);
	hw_snap_u32(&w, hp->core.ejr[0]);
	hw_snap_u32(&w, hp->core.ejected[0]);
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
	hp->core.ins[0] = hw_snap_get_u32(&r) & ~1u;
	hp->core.ejr[0] = hw_snap_get_u32(&r) & ~1u;
	hp->core.ejected[0] = hw_snap_get_u32(&r) & ~1u;
	hp->gone = hw_snap_get_u32(&r) & ~1u;
	hp->requested = hw_snap_get_u32(&r) & ~1u;
	return 0;
}

const struct dev_desc pci_hotplug_device = {
	.name = "pci-hotplug", .create = hp_create, .reset = hp_reset,
	.save = hp_save, .load = hp_load, .destroy = acpi_hotplug_destroy,
};
