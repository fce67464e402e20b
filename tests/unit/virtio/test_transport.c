/* The virtio-pci transport (src/virtio/pci.c) with a virtio-rng on a PCI
 * host of its own: fake buses, a fake APIC bus that records MSIs, guest
 * RAM as a plain buffer.  The driver's side is written out register by
 * register, as virtio 1.2 section 3.1 and 4.1 say. */
#include "machine/bus.h"
#include "hw/device.h"
#include "hw/intc/lapic.h"
#include "hw/pci.h"
#include "util/error.h"
#include "virtio/rng.h"
#include "virtio/virtio_pci.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define RAM_SIZE (1u << 20)
#define BAR 0xc1000000u
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define DATA 0x8000u

static struct bus pio, mmio;
static uint8_t *ram;
static struct pci_host *host;
static void *rng;
static unsigned n_msi;
static uint8_t last_vector;
static bool intx;
static struct apic_bus apic;
static struct virtio_board board;

static void *fake_dma(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return ram + gpa;
}

static void fake_deliver(void *opaque, const struct apic_msg *m, struct lapic *src)
{
	n_msi++;
	last_vector = m->vector;
}

static void fake_line(void *opaque, unsigned n, bool level) { intx = level; }

static void setup(void)
{
	ram = calloc(1, RAM_SIZE);
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	n_msi = 0;
	intx = false;
	struct dev_ctx hctx = { .name = "pci", .pio = &pio, .mmio = &mmio,
				.base = { 0xcf8, 0xb0000000, 0x10000000 },
				.irq = { { .set = fake_line } } };
	host = pci_host_new(&hctx);
	cr_assert(host, "%s", err_msg());
	apic = (struct apic_bus){ .deliver = fake_deliver };
	board = (struct virtio_board){ .dma = fake_dma, .apic = &apic, .pci = host, .slot = 3, .bar0 = BAR };
	struct dev_ctx ctx = { .name = "virtio-rng", .pio = &pio, .mmio = &mmio, .arg = &board };
	rng = virtio_rng_device.create(&ctx);
	cr_assert(rng, "%s", err_msg());
}

static void teardown(void)
{
	virtio_rng_device.destroy(rng);
	pci_host_free(host);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	free(ram);
}

TestSuite(transport, .init = setup, .fini = teardown);

static uint64_t rd(uint64_t off, unsigned size)
{
	uint64_t v = 0;
	cr_assert(bus_read(&mmio, NULL, BAR + off, size, &v), "BAR 0 not mapped at %#x", BAR);
	return v;
}

static void wr(uint64_t off, unsigned size, uint64_t v) { bus_write(&mmio, NULL, BAR + off, size, v); }
static uint32_t cfg(unsigned off, unsigned size) { return pci_config_read(host, 0, 3 << 3, off, size); }

/* Finds the vendor capability of cfg_type and returns its BAR offset. */
static uint32_t cap_offset(uint8_t type)
{
	for (unsigned at = cfg(PCI_CAP_PTR, 1); at; at = cfg(at + 1, 1))
		if (cfg(at, 1) == 0x09 && cfg(at + 3, 1) == type)
			return cfg(at + 8, 4);
	cr_assert_fail("no capability of type %u", type);
	return 0;
}

static unsigned msix_cap(void)
{
	for (unsigned at = cfg(PCI_CAP_PTR, 1); at; at = cfg(at + 1, 1))
		if (cfg(at, 1) == 0x11)
			return at;
	cr_assert_fail("no MSI-X capability");
	return 0;
}

/* Section 3.1.1 up to FEATURES_OK with the given driver features; returns
 * the status read back. */
static uint8_t negotiate(uint64_t features)
{
	uint32_t c = cap_offset(1);
	wr(c + 0x14, 1, 0);
	wr(c + 0x14, 1, 1);
	wr(c + 0x14, 1, 3);
	wr(c + 0x08, 4, 0);
	wr(c + 0x0c, 4, (uint32_t)features);
	wr(c + 0x08, 4, 1);
	wr(c + 0x0c, 4, (uint32_t)(features >> 32));
	wr(c + 0x14, 1, 3 | 8);
	return (uint8_t)rd(c + 0x14, 1);
}

static void setup_queue(uint16_t size, uint16_t vector)
{
	uint32_t c = cap_offset(1);
	wr(c + 0x16, 2, 0);
	wr(c + 0x18, 2, size);
	wr(c + 0x1a, 2, vector);
	wr(c + 0x20, 8, DESC);
	wr(c + 0x28, 4, AVAIL);
	wr(c + 0x2c, 4, 0);
	wr(c + 0x30, 8, USED);
	wr(c + 0x1c, 2, 1);
}

/* One 16-byte writable buffer offered as avail entry n, then a notify. */
static void request(uint16_t n)
{
	uint64_t addr = DATA;
	uint32_t len = 16;
	uint16_t flags = 2 /* WRITE */, head = 0;
	memcpy(ram + DESC, &addr, 8);
	memcpy(ram + DESC + 8, &len, 4);
	memcpy(ram + DESC + 12, &flags, 2);
	memcpy(ram + AVAIL + 4 + 2 * (n % 64), &head, 2);
	uint16_t idx = (uint16_t)(n + 1);
	memcpy(ram + AVAIL + 2, &idx, 2);
	wr(cap_offset(2), 2, 0);
}

static uint16_t used_idx(void)
{
	uint16_t v;
	memcpy(&v, ram + USED + 2, 2);
	return v;
}

Test(transport, identity_and_capabilities)
{
	cr_assert_eq(cfg(PCI_VENDOR_ID, 2), 0x1af4);
	cr_assert_eq(cfg(PCI_DEVICE_ID, 2), 0x1044, "modern ID 0x1040 + 4 (entropy)");
	cr_assert_geq(cfg(PCI_REVISION, 1), 1);
	cr_assert_eq(cfg(PCI_BAR0, 4), BAR);
	cr_assert_eq(cap_offset(1), 0x0000);
	cr_assert_eq(cap_offset(3), 0x1000);
	uint32_t c = cap_offset(1);
	cr_assert_eq(rd(c + 0x12, 2), 1, "one queue");
	wr(c + 0x04 - 4, 4, 1);   /* device_feature_select = 1 */
	cr_assert_eq(rd(c + 0x04, 4) & 1, 1, "VIRTIO_F_VERSION_1 offered");
	cr_assert_eq(cfg(msix_cap() + 2, 2) & 0x7ff, 1, "two MSI-X vectors: configuration and the queue");
}

Test(transport, features_without_version_1_are_refused)
{
	cr_assert_eq(negotiate(0) & 8, 0);
	cr_assert_eq(negotiate(1ull << 32) & 8, 8);
}

Test(transport, features_not_offered_are_refused)
{
	cr_assert_eq(negotiate(1ull << 32 | 1ull << 40) & 8, 0);
}

Test(transport, queue_size_not_a_power_of_two_needs_reset)
{
	negotiate(1ull << 32);
	setup_queue(3, 0xffff);
	cr_assert(rd(cap_offset(1) + 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	wr(cap_offset(1) + 0x14, 1, 0);
	cr_assert_eq(rd(cap_offset(1) + 0x14, 1), 0, "a reset clears it");
}

Test(transport, notify_before_driver_ok_is_ignored)
{
	negotiate(1ull << 32);
	setup_queue(64, 0xffff);
	request(0);
	cr_assert_eq(used_idx(), 0);
}

Test(transport, intx_request_and_isr)
{
	negotiate(1ull << 32);
	setup_queue(64, 0xffff);
	wr(cap_offset(1) + 0x14, 1, 3 | 8 | 4);
	request(0);
	cr_assert_eq(used_idx(), 1);
	uint32_t len;
	memcpy(&len, ram + USED + 8, 4);
	cr_assert_eq(len, 16);
	cr_assert(intx, "INTx raised without MSI-X");
	cr_assert_eq(rd(cap_offset(3), 1), 1, "ISR: queue interrupt");
	cr_assert_not(intx, "reading the ISR lowers INTx");
	cr_assert_eq(rd(cap_offset(3), 1), 0);
}

Test(transport, msix_vectors_masking_and_pending)
{
	unsigned m = msix_cap();
	pci_config_write(host, 0, 3 << 3, m + 2, 2, 0x8000);   /* MSI-X enable */
	negotiate(1ull << 32);
	cr_assert_eq((unsigned)rd(cap_offset(1) + 0x10, 2), 0xffff);
	wr(cap_offset(1) + 0x10, 2, 7);
	cr_assert_eq(rd(cap_offset(1) + 0x10, 2), 0xffff, "a vector past the table reads back as NO_VECTOR");
	setup_queue(64, 1);
	wr(cap_offset(1) + 0x14, 1, 3 | 8 | 4);
	/* Entry 1: address, data 0x41, still masked. */
	wr(0x4000 + 16, 4, 0xfee00000);
	wr(0x4000 + 20, 4, 0);
	wr(0x4000 + 24, 4, 0x41);
	request(0);
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(n_msi, 0, "masked: no message");
	cr_assert_eq(rd(0x5000, 8) & 2, 2, "pending bit of vector 1");
	wr(0x4000 + 28, 4, 0);   /* unmask */
	cr_assert_eq(n_msi, 1);
	cr_assert_eq(last_vector, 0x41);
	cr_assert_eq(rd(0x5000, 8), 0);
	request(1);
	cr_assert_eq(n_msi, 2, "unmasked: delivered at once");
	cr_assert_not(intx, "no INTx while MSI-X is on");
}

Test(transport, broken_ring_needs_reset_and_stops)
{
	negotiate(1ull << 32);
	setup_queue(64, 0xffff);
	wr(cap_offset(1) + 0x14, 1, 3 | 8 | 4);
	uint64_t addr = RAM_SIZE * 4ull;   /* outside RAM */
	uint32_t len = 16;
	uint16_t flags = 2;
	memcpy(ram + DESC, &addr, 8);
	memcpy(ram + DESC + 8, &len, 4);
	memcpy(ram + DESC + 12, &flags, 2);
	uint16_t idx = 1;
	memcpy(ram + AVAIL + 2, &idx, 2);
	wr(cap_offset(2), 2, 0);
	cr_assert(rd(cap_offset(1) + 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_eq(used_idx(), 0);
	cr_assert_eq(rd(cap_offset(3), 1) & 2, 2, "configuration change interrupt");
}

Test(transport, snapshot_round_trip)
{
	negotiate(1ull << 32);
	setup_queue(64, 0xffff);
	wr(cap_offset(1) + 0x14, 1, 3 | 8 | 4);
	request(0);
	static uint8_t buf[16384];
	int64_t n = virtio_rng_device.save(rng, buf, sizeof(buf));
	cr_assert_gt(n, 0, "%s", err_msg());
	request(1);
	cr_assert_eq(used_idx(), 2);
	wr(cap_offset(1) + 0x14, 1, 0);   /* reset: queue gone */
	cr_assert_eq(virtio_rng_device.load(rng, buf, (size_t)n), 0, "%s", err_msg());
	cr_assert_eq(rd(cap_offset(1) + 0x14, 1), 15, "status back");
	memset(ram + USED, 0, 16);
	request(1);   /* the saved state had taken one request: the next is entry 1 */
	cr_assert_eq(used_idx(), 2);
	buf[16] ^= 0xff;   /* the vendor ID, first byte after the 16-byte header */
	cr_assert_lt(virtio_rng_device.load(rng, buf, (size_t)n), 0);
	cr_assert_lt(virtio_rng_device.load(rng, buf, (size_t)n - 1), 0);
}
