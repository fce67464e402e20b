/* A PCI function whose registers another party serves (docs/plugins.md
 * "PCI functions"): vessel builds its configuration space from a
 * description -- identity, BARs, an MSI capability, the INTx pin -- and
 * hands BAR accesses to the description's callbacks.  The plug-in layer
 * (src/vmm/plugin.c) puts a plug-in's VESSEL_RES_PCI resource on the bus
 * through it.
 *
 * MSI (PCI Local Bus 3.0, 6.8.1): 64-bit message address, per-vector
 * masking, up to 32 vectors; a vector raised while masked stays pending
 * (its Pending bit) and goes out once unmasked.  Without MSI enabled,
 * INTx follows the vectors held at level 1 (PCI 3.0, 2.2.6), gated by the
 * command register's Interrupt Disable bit, and the status register's
 * Interrupt Status bit shows it (PCI 3.0, 6.2.3): what Linux's
 * uio_pci_generic relies on.
 *
 * At power-on vessel places the BARs as firmware would (the guest boots
 * without firmware); a function plugged into a running guest leaves them
 * to the guest.  Everything runs under the device lock. */
#ifndef VESSEL_HW_PCI_FUNC_H
#define VESSEL_HW_PCI_FUNC_H

#include "hw/pci.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct apic_bus;
struct pci_func;

/* Where power-on placement puts the BARs of the function in slot s:
 * memory BARs from PCI_FUNC_MEM_BASE + s * PCI_FUNC_MEM_STEP, largest
 * first (each naturally aligned), I/O BARs likewise from
 * PCI_FUNC_IO_BASE + s * PCI_FUNC_IO_STEP.  Inside the root bridge's
 * windows (the DSDT's _CRS), beside the virtio functions' BARs at
 * 0xc1000000 (docs/devices.md). */
#define PCI_FUNC_MEM_BASE 0xd0000000ull
#define PCI_FUNC_MEM_STEP 0x1000000ull    /* 16 MiB: the most one function's memory BARs take */
#define PCI_FUNC_IO_BASE  0x1000u
#define PCI_FUNC_IO_STEP  0x100u          /* 256 ports: the most its I/O BARs take */

#define PCI_FUNC_MAX_MSI 32
#define PCI_CAP_ID_MSI 0x05

struct pci_func_bar {
	uint64_t size;            /* 0: not implemented */
	bool io, prefetch;
};

struct pci_func_desc {
	uint16_t vendor, device, subsys_vendor, subsys;
	uint32_t class_code;
	uint8_t revision;
	uint8_t irq_pin;          /* 0: none, 1-4: INTA-INTD */
	uint8_t msi_vectors;      /* 0: no MSI capability; else a power of two up to 32 */
	struct pci_func_bar bars[PCI_NUM_BARS];
	/* BAR accesses where the guest mapped them. */
	uint64_t (*read)(void *opaque, unsigned bar, uint64_t off, unsigned size);
	void (*write)(void *opaque, unsigned bar, uint64_t off, unsigned size, uint64_t val);
	void *opaque;
};

/* Checks a description: the BARs' sizes (powers of two, memory from 16
 * bytes and at most 16 MiB in all, I/O from 4 bytes and at most 256 in
 * all), the vector count and the pin.  0, or -EINVAL with a message
 * naming the field as `what`.FIELD. */
int pci_func_check(const struct pci_func_desc *d, const char *what);

/* Creates the function and plugs it into slot (1-31) of h; place: put
 * its BARs where power-on placement says and enable decoding and bus
 * mastering, as firmware would.  apic receives MSI messages.  NULL with
 * a message on failure (the slot taken, a bad description). */
struct pci_func *pci_func_new(struct pci_host *h, const struct apic_bus *apic, const char *name,
			      const struct pci_func_desc *d, unsigned slot, bool place);
/* Unplugs (its BARs unmapped, INTx lowered) and frees. */
void pci_func_free(struct pci_func *f);
unsigned pci_func_slot(const struct pci_func *f);
struct pci_device *pci_func_device(struct pci_func *f);
/* Interrupt vector at level (see the header comment); -EINVAL if vector
 * is past the function's vectors (past 0 without MSI). */
int pci_func_irq(struct pci_func *f, unsigned vector, bool level);
/* The command register's Bus Master Enable: may the function reach
 * guest memory (PCI 3.0, 6.2.2)? */
bool pci_func_bus_master(const struct pci_func *f);

/* Snapshot state: the configuration space (guest-writable bytes and MSI
 * pending bits) and the vectors at level 1.  Load refuses another
 * function's state (other IDs) with -EINVAL and changes nothing then. */
int64_t pci_func_save(struct pci_func *f, void *buf, size_t cap);
int pci_func_load(struct pci_func *f, const void *buf, size_t len);

#endif
