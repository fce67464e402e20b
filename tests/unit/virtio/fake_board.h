/* What a virtio device's unit test stands on: 1 MiB of fake guest RAM
 * behind the dma callback, port and memory buses, a PCI host, and BAR 0
 * accessors.  Header-only, one copy per test program. */
#ifndef VESSEL_TESTS_VIRTIO_FAKE_BOARD_H
#define VESSEL_TESTS_VIRTIO_FAKE_BOARD_H

#include "hw/pci.h"
#include "machine/bus.h"
#include "virtio/virtio_pci.h"

#include <criterion/criterion.h>
#include <stdlib.h>

#define RAM_SIZE (1u << 20)
#define BAR 0xc1000000u

static struct bus pio, mmio;
static uint8_t *ram;
static struct pci_host *host;

static void *fake_dma(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return ram + gpa;
}

static void fake_board_start(void)
{
	ram = calloc(1, RAM_SIZE);
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	struct dev_ctx hctx = { .name = "pci", .pio = &pio, .mmio = &mmio, .base = { 0xcf8, 0xb0000000, 0x10000000 } };
	host = pci_host_new(&hctx);
	cr_assert(host);
}

static void fake_board_stop(void)
{
	pci_host_free(host);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	free(ram);
}

static inline void wr(uint64_t off, unsigned size, uint64_t v) { bus_write(&mmio, NULL, BAR + off, size, v); }

static inline uint64_t rd(uint64_t off, unsigned size)
{
	uint64_t v = 0;
	bus_read(&mmio, NULL, BAR + off, size, &v);
	return v;
}

#endif
