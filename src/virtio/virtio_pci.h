/* The virtio-pci modern transport (virtio 1.2, section 4.1) shared by the
 * virtio devices of this folder (one device per file: blk.c, rng.c).
 *
 * One memory BAR (BAR 0, 32 KiB) holds the common configuration, the ISR
 * status, the device configuration, the notification area and the MSI-X
 * table and PBA; the vendor capabilities of section 4.1.4 point into it.
 * Interrupts are MSI-X messages to the LAPICs (through the board's APIC
 * bus) with per-queue vectors, or INTx A when MSI-X is off.
 *
 * A device creates its transport with virtio_pci_new(), gets its queues
 * with virtio_pci_queue() and signals used buffers with
 * virtio_pci_queue_done().  Everything runs under the device lock
 * (bus callbacks hold it). */
#ifndef VESSEL_VIRTIO_PCI_H
#define VESSEL_VIRTIO_PCI_H

#include "hw/device.h"
#include "virtio/queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct apic_bus;
struct pci_host;
struct virtio_pci;

/* Device IDs (section 5). */
#define VIRTIO_ID_NET   1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG   4

/* Reserved feature bits (section 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_F_RING_PACKED   34   /* offered when the device's features include it */

/* Device status (section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_CONFIG_MAX 256

/* What the board hands a virtio device through dev_ctx.arg. */
struct virtio_board {
	virtio_dma_fn dma;            /* guest RAM, bounds-checked */
	virtio_dma_written_fn dma_written;   /* what the device wrote there */
	void *dma_opaque;
	const struct apic_bus *apic;  /* where MSI-X messages go */
	struct pci_host *pci;         /* the bus the function joins */
	unsigned slot;                /* PCI slot, 0: the first free one */
	/* Where BAR 0 is placed at power-on, as firmware would (the guest
	 * boots without one); 0 leaves it to the guest. */
	uint32_t bar0;
	const void *conf;             /* the device's own options (blk.h) */
};

struct virtio_device_ops {
	uint16_t device_id;           /* VIRTIO_ID_* */
	uint32_t class_code;          /* PCI class, subclass, prog-if */
	unsigned n_queues;
	uint16_t queue_max;           /* queue size offered */
	uint64_t features;            /* device-specific bits offered, and VIRTIO_F_RING_PACKED */
	unsigned config_len;          /* bytes of the device configuration */
	/* The device configuration as the driver reads it (little-endian). */
	void (*config)(void *dev, uint8_t *buf);
	/* The driver notified queue q (after DRIVER_OK). */
	void (*notify)(void *dev, unsigned q);
	/* The driver reset the device (status 0), or the machine did. */
	void (*reset)(void *dev);
};

struct virtio_pci *virtio_pci_new(const struct dev_ctx *ctx, const struct virtio_device_ops *ops, void *dev);
void virtio_pci_free(struct virtio_pci *t);
/* Power-on state, BAR 0 placed again. */
void virtio_pci_reset(struct virtio_pci *t);
struct virtq *virtio_pci_queue(struct virtio_pci *t, unsigned q);
uint64_t virtio_pci_features(const struct virtio_pci *t);   /* negotiated */
bool virtio_pci_driver_ok(const struct virtio_pci *t);
/* Interrupts the driver for queue q if its suppression says so. */
void virtio_pci_queue_done(struct virtio_pci *t, unsigned q);
/* The driver broke queue q: DEVICE_NEEDS_RESET, a configuration-change
 * interrupt (section 2.1.2) and one rate-limited log line with err_msg(). */
void virtio_pci_broken(struct virtio_pci *t, unsigned q);
/* A rate-limited warning about the guest's use of the device (at most
 * one a second per device). */
void virtio_pci_guest_error(struct virtio_pci *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *virtio_pci_name(const struct virtio_pci *t);

/* Snapshot state: transport, queues and the PCI function (its
 * configuration space and MSI-X table); dev_desc save/load. */
int64_t virtio_pci_save(struct virtio_pci *t, void *buf, size_t cap);
int virtio_pci_load(struct virtio_pci *t, const void *buf, size_t len);

#endif
