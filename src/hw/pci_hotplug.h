/* ACPI PCI hot-plug controller for bus 0 (docs/hotplug.md): the register
 * block the DSDT's slot objects and GPE handler use to learn which slots
 * changed and to eject a device (ACPI 6.4 sections 5.6.4 "General-Purpose
 * Event Handling", 6.3.3 _EJx, 5.6.6 device object notifications).
 *
 * Three 32-bit registers, one bit per PCI slot (bit s is slot s):
 *   +0 CHK  read: slots with a device check pending (a device arrived);
 *           the dword read clears what it returns
 *   +4 EJR  read: slots whose device the host asks the OS to release
 *           (eject request); the dword read clears what it returns
 *   +8 EJ   write: slots the OS ejected (the slot's _EJ0 writes its bit)
 *   +12 GONE read: slots whose device left without the OS's eject (surprise
 *           removal); the dword read clears what it returns
 * Every new CHK, EJR or GONE bit pulses ctx->irq[0], which the board wires
 * to a GPE status bit.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_PCI_HOTPLUG_H
#define VESSEL_HW_PCI_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pci_hotplug;

#define PCI_HOTPLUG_CHK 0x0
#define PCI_HOTPLUG_EJR 0x4
#define PCI_HOTPLUG_EJ  0x8
#define PCI_HOTPLUG_GONE 0xc
#define PCI_HOTPLUG_LEN 16

/* ctx->base[0]: the register block on ctx->pio; ctx->irq[0]: the GPE line. */
extern const struct dev_desc pci_hotplug_device;

/* A device arrived in slot. */
void pci_hotplug_device_check(struct pci_hotplug *hp, unsigned slot);
/* The device in slot left without the OS's eject (surprise removal). */
void pci_hotplug_device_gone(struct pci_hotplug *hp, unsigned slot);
/* Asks the OS to release the device in slot (Notify 3, eject request). */
void pci_hotplug_request_eject(struct pci_hotplug *hp, unsigned slot);
/* Whether the OS ejected slot since the last call; clears it. */
bool pci_hotplug_take_eject(struct pci_hotplug *hp, unsigned slot);
/* The slots the OS ejected on its own (no request of the host's waits
 * for them: `echo 0 > /sys/bus/pci/slots/N/power`); clears them. */
uint32_t pci_hotplug_take_guest_ejects(struct pci_hotplug *hp);
/* Slot is empty again: nothing pending for it stays. */
void pci_hotplug_forget(struct pci_hotplug *hp, unsigned slot);

#endif
