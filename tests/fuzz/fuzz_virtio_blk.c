/* libFuzzer target: the virtqueue parsers (split and packed) and
 * virtio-blk with random rings in guest memory.  The input is a guest:
 * the negotiated features, the queue size the driver writes, how often it
 * notifies, and the contents of its 64 KiB of RAM, where the rings sit at
 * fixed addresses and every descriptor, request header and range list is
 * whatever the fuzzer wrote.  The device runs as in a VM (requests on the
 * block layer's workers, completed by virtio_blk_drain) over a 1 MiB raw
 * image; ASan and UBSan catch any access outside RAM or the image. */
#include "block/block.h"
#include "hw/device.h"
#include "hw/pci.h"
#include "machine/bus.h"
#include "util/error.h"
#include "virtio/blk.h"
#include "virtio/virtio_pci.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RAM_SIZE 0x10000u
#define BAR 0xc1000000u
#define DESC 0x0000u
#define AVAIL 0x1000u   /* split: available ring; packed: driver event suppression */
#define USED 0x2000u    /* split: used ring; packed: device event suppression */
#define HDR 4u          /* flags, queue size (2), notifications */

struct apic_bus;
/* The fuzzed device raises INTx only (MSI-X stays off): no APIC. */
void apic_deliver_msi(const struct apic_bus *bus, uint64_t addr, uint32_t data)
{
	(void)bus;
	(void)addr;
	(void)data;
}

static uint8_t ram[RAM_SIZE];
static struct bus pio, mmio;
static struct pci_host *host;
static struct virtio_board board;
static struct virtio_blk_conf conf;
static void *blk;

static void *fuzz_dma(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (!len || gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return ram + gpa;
}

static void wr(uint64_t off, unsigned size, uint64_t v) { bus_write(&mmio, NULL, BAR + off, size, v); }

static void unlink_image(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/vessel-fuzz-virtio-blk-%d.raw", getpid());
	unlink(path);
}

static int setup(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/vessel-fuzz-virtio-blk-%d.raw", getpid());
	unlink(path);
	if (raw_create(path, 1 << 20, false) < 0)
		return -1;
	atexit(unlink_image);
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	struct dev_ctx hctx = { .name = "pci", .pio = &pio, .mmio = &mmio, .base = { 0xcf8, 0xb0000000, 0x10000000 } };
	if (!(host = pci_host_new(&hctx)))
		return -1;
	conf = (struct virtio_blk_conf){ .serial = "FUZZ", .queues = 2 };
	if (block_open(path, "raw", 0, &conf.disk) < 0)
		return -1;
	board = (struct virtio_board){ .dma = fuzz_dma, .pci = host, .slot = 2, .bar0 = BAR, .conf = &conf };
	struct dev_ctx ctx = { .name = "virtio-blk.0", .pio = &pio, .mmio = &mmio, .arg = &board };
	return (blk = virtio_blk_device.create(&ctx)) ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!blk && setup() < 0)
		abort();
	if (size < HDR)
		return 0;
	uint8_t flags = data[0];
	uint16_t qsize = (uint16_t)(data[1] | data[2] << 8);
	unsigned notifies = data[3] & 7;
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data + HDR, size - HDR < RAM_SIZE ? size - HDR : RAM_SIZE);
	/* Driver initialisation (section 3.1.1): reset, features, queue 0
	 * (and queue 1 with the same rings when flag 0x20 says so). */
	wr(0x14, 1, 0);
	wr(0x14, 1, 1);
	wr(0x14, 1, 3);
	uint64_t f = 1ull << VIRTIO_F_VERSION_1;
	if (flags & 1)
		f |= 1ull << VIRTIO_F_RING_PACKED;
	if (flags & 2)
		f |= 1ull << VIRTIO_F_EVENT_IDX;
	if (flags & 4)
		f |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (flags & 8)
		f |= 1ull << 13 | 1ull << 14;   /* DISCARD, WRITE_ZEROES */
	wr(0x08, 4, 0);
	wr(0x0c, 4, (uint32_t)f);
	wr(0x08, 4, 1);
	wr(0x0c, 4, (uint32_t)(f >> 32));
	wr(0x14, 1, 11);
	for (unsigned qi = 0; qi < ((flags & 0x20) ? 2u : 1u); qi++) {
		wr(0x16, 2, qi);
		wr(0x18, 2, qsize);
		wr(0x20, 8, DESC);
		wr(0x28, 8, AVAIL);
		wr(0x30, 8, USED);
		wr(0x1c, 2, 1);
	}
	if (!(flags & 0x10))
		wr(0x14, 1, 15);   /* DRIVER_OK, or notifications before it */
	for (unsigned n = 0; n <= notifies; n++) {
		wr(0x3000, 2, 0);
		if (flags & 0x20)
			wr(0x3004, 2, 1);
		if (flags & 0x40)
			virtio_blk_drain(blk);   /* completions between notifications */
	}
	virtio_blk_drain(blk);
	uint64_t isr;
	bus_read(&mmio, NULL, BAR + 0x1000, 1, &isr);
	return 0;
}
