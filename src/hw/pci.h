/* PCI host bridge (Q35-like: 8086:29c0 at 00:00.0) with type-1
 * configuration access at 0xcf8/0xcfc (PCI Local Bus 3.0, 3.2.2.3.2) and
 * ECAM/MMCONFIG at GMEM_ECAM_BASE (PCI Express base 4.0, 7.2.2), and a
 * registry of devices on bus 0.  Devices own a 4 KiB configuration space
 * with a write mask; BARs are sized and mapped on vm->pio/vm->mmio when
 * the guest programs them and enables decoding.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_PCI_H
#define VESSEL_HW_PCI_H

#include "machine/bus.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct pci_host;

#define PCI_CONFIG_SIZE 4096
#define PCI_NUM_BARS 6
#define PCI_MAX_DEVICES 32        /* bus 0, function 0 of each slot */

/* Configuration header offsets (PCI 3.0, 6.1). */
#define PCI_VENDOR_ID     0x00
#define PCI_DEVICE_ID     0x02
#define PCI_COMMAND       0x04
#define PCI_STATUS        0x06
#define PCI_REVISION      0x08
#define PCI_CLASS_PROG    0x09
#define PCI_CLASS_DEVICE  0x0a
#define PCI_HEADER_TYPE   0x0e
#define PCI_BAR0          0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID     0x2e
#define PCI_CAP_PTR       0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO     0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_STATUS_INTERRUPT 0x08

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_type type;
	uint64_t size;             /* power of two */
	const struct bus_ops *ops;
	void *opaque;
	uint64_t mapped;           /* address claimed on the bus, or 0 */
};

struct pci_device {
	const char *name;
	uint8_t slot;              /* device number on bus 0 */
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CONFIG_SIZE]; /* bits cleared by writing 1 */
	struct pci_bar bars[PCI_NUM_BARS];
	uint16_t cap_free;         /* first free byte for the next capability */
	struct pci_host *host;
	bool intx_level;
	/* Optional hooks after the generic handling (capabilities, MSI...). */
	void (*config_write)(struct pci_device *d, unsigned off, unsigned size, uint32_t val);
	uint32_t (*config_read)(struct pci_device *d, unsigned off, unsigned size, uint32_t val);
	void *opaque;
};

/* ctx->base[0]: CONFIG_ADDRESS (0xcf8; CONFIG_DATA at +4), base[1]: the
 * ECAM window on ctx->mmio, base[2]: its size; ctx->irq[0]: the first
 * interrupt controller input (INTx of slot s drives + pci_intx_gsi()).
 * BARs are mapped on ctx->pio and ctx->mmio. */
struct pci_host *pci_host_new(const struct dev_ctx *ctx);
void pci_host_free(struct pci_host *h);
/* Disables decoding of every device (power-on), unmapping BARs. */
void pci_host_reset(struct pci_host *h);
extern const struct dev_desc pci_host_device;
/* The device answering byte accesses to port 0xcf9 (reset control), which
 * shares the CONFIG_ADDRESS dword. */
void pci_host_set_cf9(struct pci_host *h, const struct bus_ops *ops, void *opaque);

/* Fills the header: IDs, class, interrupt pin (1 = INTA, 0 none). */
void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t irq_pin);
/* Declares a BAR; size a power of two (>= 4 for I/O, >= 16 for memory). */
int pci_device_set_bar(struct pci_device *d, unsigned idx, enum pci_bar_type type, uint64_t size,
		       const struct bus_ops *ops, void *opaque);
/* Appends a capability of len bytes (ID and next pointer included) to the
 * capability list (PCI 3.0, 6.7); returns its configuration-space offset
 * or -ENOSPC.  The caller fills the body and its write mask. */
int pci_device_add_capability(struct pci_device *d, uint8_t cap_id, unsigned len);
/* Plugs d into slot (1-31), or the first free slot when slot is 0; -EBUSY if taken. */
int pci_register_device(struct pci_host *h, struct pci_device *d, unsigned slot);
int pci_unregister_device(struct pci_host *h, struct pci_device *d);
struct pci_device *pci_find_device(struct pci_host *h, unsigned slot);
/* INTx level of a device (routed as the DSDT's _PRT says). */
void pci_set_irq(struct pci_device *d, bool level);
/* GSI of slot's INTx pin (1-4): the swizzle the DSDT's _PRT describes. */
unsigned pci_intx_gsi(unsigned slot, unsigned pin);

/* Configuration access as the guest does it, for tests: bus/dev/fn/off. */
uint32_t pci_config_read(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off, unsigned size);
void pci_config_write(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off, unsigned size, uint32_t val);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t pci_host_snapshot_save(void *opaque, void *buf, size_t cap);
int pci_host_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
