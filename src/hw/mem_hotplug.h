/* ACPI memory hot-plug controller (docs/hotplug.md "Memory"): the
 * register block the memory device objects (PNP0C80, one per block of
 * the hot-pluggable range) and their GPE handler read to learn which
 * blocks are present and changed, and write to eject one (ACPI 6.4
 * sections 9.13 "Memory Devices", 5.6.4 "General-Purpose Event
 * Handling", 6.3.3 _EJx).
 *
 * Up to MEM_HOTPLUG_SLOTS slots, bit s % 32 of the dword s / 32 of each
 * bank below:
 *   +0x00 PRS  read: slots holding memory (their _STA says present)
 *   +0x20 INS  read: slots with a device check pending (memory arrived);
 *              the dword read clears what it returns
 *   +0x40 EJR  read: slots whose memory the host asks the OS to release
 *              (eject request); the dword read clears what it returns
 *   +0x60 EJ   write: slots the OS ejected (the slot's _EJ0 writes its bit)
 * Every new INS or EJR bit pulses ctx->irq[0], which the board wires to a
 * GPE status bit.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_MEM_HOTPLUG_H
#define VESSEL_HW_MEM_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

#define MEM_HOTPLUG_SLOTS 256
#define MEM_HOTPLUG_GROUPS (MEM_HOTPLUG_SLOTS / 32)
#define MEM_HOTPLUG_PRS 0x00
#define MEM_HOTPLUG_INS 0x20
#define MEM_HOTPLUG_EJR 0x40
#define MEM_HOTPLUG_EJ  0x60
#define MEM_HOTPLUG_LEN 0x80

struct mem_hotplug;

/* ctx->base[0]: the register block on ctx->pio; ctx->irq[0]: the GPE line. */
extern const struct dev_desc mem_hotplug_device;

/* Memory arrived in slot; notify: tell the OS (a device check), else it
 * is simply present (a machine built with it, which the OS finds at boot). */
void mem_hotplug_plug(struct mem_hotplug *hp, unsigned slot, bool notify);
/* Asks the OS to release the memory in slot (Notify 3, eject request). */
void mem_hotplug_request_eject(struct mem_hotplug *hp, unsigned slot);
/* Whether the OS ejected slot since the last call; clears it. */
bool mem_hotplug_take_eject(struct mem_hotplug *hp, unsigned slot);
/* Slot is empty again: nothing pending for it stays. */
void mem_hotplug_unplug(struct mem_hotplug *hp, unsigned slot);
bool mem_hotplug_present(const struct mem_hotplug *hp, unsigned slot);

#endif
