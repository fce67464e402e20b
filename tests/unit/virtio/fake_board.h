/* What the virtio unit tests stand on, one header for all of them
 * (header-only, one copy per test program):
 *
 * - 1 MiB of fake guest RAM behind the dma callback (every test);
 * - a queue set up on it as the transport would after the driver's
 *   configuration (the queue parsers' tests, which have no device);
 * - writers and readers of ring memory: a descriptor of a split or packed
 *   ring, the split available ring, the split used ring;
 * - port and memory buses, a PCI host, BAR 0 accessors and the driver's
 *   initialisation through the common configuration (the devices' tests).
 *
 * Everything is static inline, and the variables a test may not use are
 * marked unused, so that a test takes what it needs. */
#ifndef VESSEL_TESTS_VIRTIO_FAKE_BOARD_H
#define VESSEL_TESTS_VIRTIO_FAKE_BOARD_H

#include "hw/pci.h"
#include "machine/bus.h"
#include "virtio/queue.h"
#include "virtio/virtio_pci.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define RAM_SIZE (1u << 20)
#define BAR 0xc1000000u

static uint8_t *ram;
static struct bus pio __attribute__((unused)), mmio __attribute__((unused));
static struct pci_host *host __attribute__((unused));

static inline void *fake_dma(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return ram + gpa;
}

/* ---- RAM and queues ---- */

static inline void fake_ram_start(void)
{
	ram = calloc(1, RAM_SIZE);
	cr_assert(ram);
}

static inline void fake_ram_stop(void)
{
	free(ram);
	ram = NULL;
}

/* q as the transport leaves it once the driver has configured the queue
 * and enabled it, indirect descriptors negotiated. */
static inline void fake_queue_init(struct virtq *q, uint16_t size, uint64_t desc, uint64_t driver, uint64_t device,
				   bool packed)
{
	memset(q, 0, sizeof(*q));
	q->dma = fake_dma;
	virtq_reset(q);
	q->size = size;
	q->desc = desc;
	q->avail = driver;
	q->used = device;
	q->ready = true;
	q->indirect = true;
	q->packed = packed;
}

/* Descriptor i of the table at base: addr, len, then the two 16-bit
 * fields, a split ring's flags and next (section 2.7.5) or a packed
 * ring's id and flags (section 2.8.13). */
static inline void ring_desc(uint64_t base, unsigned i, uint64_t addr, uint32_t len, uint16_t w12, uint16_t w14)
{
	uint8_t *d = ram + base + 16u * i;
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &w12, 2);
	memcpy(d + 14, &w14, 2);
}

/* The split available ring at base, qsize entries (section 2.7.6): head
 * as the next entry, then idx moved past it. */
static inline void split_offer(uint64_t base, unsigned qsize, uint16_t head)
{
	uint16_t idx;
	memcpy(&idx, ram + base + 2, 2);
	memcpy(ram + base + 4 + 2 * (idx % qsize), &head, 2);
	idx++;
	memcpy(ram + base + 2, &idx, 2);
}

/* The split used ring at base (section 2.7.8): idx, and the length of
 * entry i of qsize. */
static inline uint16_t split_used_idx(uint64_t base)
{
	uint16_t v;
	memcpy(&v, ram + base + 2, 2);
	return v;
}

static inline uint32_t split_used_len(uint64_t base, unsigned qsize, unsigned i)
{
	uint32_t v;
	memcpy(&v, ram + base + 4 + 8 * (i % qsize) + 4, 4);
	return v;
}

/* ---- the board ---- */

static inline void fake_board_start(void)
{
	fake_ram_start();
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	struct dev_ctx hctx = { .name = "pci", .pio = &pio, .mmio = &mmio, .base = { 0xcf8, 0xb0000000, 0x10000000 } };
	host = pci_host_new(&hctx);
	cr_assert(host);
}

static inline void fake_board_stop(void)
{
	pci_host_free(host);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	fake_ram_stop();
}

static inline void wr(uint64_t off, unsigned size, uint64_t v) { bus_write(&mmio, NULL, BAR + off, size, v); }

static inline uint64_t rd(uint64_t off, unsigned size)
{
	uint64_t v = 0;
	bus_read(&mmio, NULL, BAR + off, size, &v);
	return v;
}

/* The driver's initialisation (section 3.1.1) through the common
 * configuration at BAR 0, up to FEATURES_OK: ACKNOWLEDGE, DRIVER, the
 * features (features_lo, and VIRTIO_F_VERSION_1 in the high word), which
 * the device must accept. */
static inline void fake_driver_init(uint32_t features_lo)
{
	wr(0x14, 1, 1);
	wr(0x14, 1, 3);
	wr(0x08, 4, 0);
	wr(0x0c, 4, features_lo);
	wr(0x08, 4, 1);
	wr(0x0c, 4, 1);
	wr(0x14, 1, 11);
	cr_assert_eq(rd(0x14, 1) & 8, 8, "FEATURES_OK refused");
}

/* Queue qi: size entries at desc, avail and used, enabled. */
static inline void fake_driver_queue(unsigned qi, unsigned size, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(0x16, 2, qi);
	wr(0x18, 2, size);
	wr(0x20, 8, desc);
	wr(0x28, 8, avail);
	wr(0x30, 8, used);
	wr(0x1c, 2, 1);
}

static inline void fake_driver_ok(void) { wr(0x14, 1, 15); }

#endif
