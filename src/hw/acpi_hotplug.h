/* The part the ACPI hot-plug controllers (pci_hotplug, cpu_hotplug,
 * mem_hotplug) share: bitmaps of up to ACPI_HOTPLUG_MAX devices that the
 * DSDT's GPE handler reads, the GPE raised on each change and the eject
 * handshake with the OS (ACPI 6.4 sections 5.6.4 "General-Purpose Event
 * Handling", 5.6.6 device object notifications, 6.3.3 _EJx).  Each
 * controller keeps its register layout, what its devices are and its
 * snapshot format.
 *
 * Device i is bit i % 32 of word i / 32 of a bitmap:
 *   prs      present (what _STA reports), a state the OS never consumes
 *   ins      device check pending (Notify 1)
 *   ejr      eject request pending (Notify 3)
 *   ejected  the OS ran the device's _EJ0; the host has not taken it yet
 * Guarded by vm->dev_lock, as the controllers are. */
#ifndef VESSEL_HW_ACPI_HOTPLUG_H
#define VESSEL_HW_ACPI_HOTPLUG_H

#include "hw/device.h"

struct bus_ops;

#define ACPI_HOTPLUG_MAX 256
#define ACPI_HOTPLUG_WORDS (ACPI_HOTPLUG_MAX / 32)

struct acpi_hotplug {
	struct dev_ctx ctx;   /* ctx.irq[0]: the GPE line */
	unsigned n;           /* devices 0 .. n - 1 */
	uint32_t prs[ACPI_HOTPLUG_WORDS], ins[ACPI_HOTPLUG_WORDS];
	uint32_t ejr[ACPI_HOTPLUG_WORDS], ejected[ACPI_HOTPLUG_WORDS];
};

/* A controller of size bytes that begins with its struct acpi_hotplug, for
 * n devices, its len-byte registers at ctx->base[0] on ctx->pio served by ops. */
void *acpi_hotplug_create(size_t size, const struct dev_ctx *ctx, unsigned n, uint64_t len,
			  const struct bus_ops *ops, const char *name);
void acpi_hotplug_destroy(void *dev);
/* Drops what is pending; what is present stays plugged in across a reset. */
void acpi_hotplug_reset(void *dev);

bool acpi_hotplug_test(const struct acpi_hotplug *hp, const uint32_t *map, unsigned i);
/* Device i is present; notify: it arrived, a device check for the OS. */
void acpi_hotplug_plug(struct acpi_hotplug *hp, unsigned i, bool notify);
/* Sets device i's bit in map, a bitmap pending for the OS, and raises the GPE. */
void acpi_hotplug_raise(struct acpi_hotplug *hp, uint32_t *map, unsigned i);
/* Whether the OS ejected device i since the last call; clears it. */
bool acpi_hotplug_take_eject(struct acpi_hotplug *hp, unsigned i);
/* Device i's place is empty: it is absent and nothing for it stays pending. */
void acpi_hotplug_forget(struct acpi_hotplug *hp, unsigned i);

/* A read of size bytes at byte off of a register of words dwords of map;
 * consume: an aligned dword read (the AML's Field) clears what it returns, so
 * a change raised while the GPE handler runs raises the GPE again, never lost. */
uint64_t acpi_hotplug_read(uint32_t *map, unsigned words, uint64_t off, unsigned size, bool consume);
/* The OS's _EJ0 wrote bits to word w of EJ: ejected, and an eject answers
 * any request for the device. */
void acpi_hotplug_eject(struct acpi_hotplug *hp, unsigned w, uint32_t bits);

#endif
