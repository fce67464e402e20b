/* virtio-blk (src/virtio/blk.c) on a raw image, driven through the
 * transport with hand-written requests: reads and writes reach the file,
 * GET_ID gives the serial, and broken requests (data on the wrong side,
 * past the end, a write to a read-only disk) answer IOERR without
 * touching the image. */
#include "block/block.h"
#include "machine/bus.h"
#include "hw/device.h"
#include "hw/intc/lapic.h"
#include "hw/pci.h"
#include "util/error.h"
#include "virtio/blk.h"
#include "virtio/virtio_pci.h"

#include "fake_board.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define HDR 0x8000u
#define DATA 0x9000u
#define STATUS 0xa000u
#define SECTORS 64

static void *blk;
static struct virtio_board board;
static struct virtio_blk_conf conf;
static char path[64];
static uint16_t n_req;

static void start(bool readonly)
{
	fake_board_start();
	snprintf(path, sizeof(path), "/tmp/vessel-blk-test-%d.raw", getpid());
	unlink(path);
	cr_assert_eq(raw_create(path, SECTORS * 512, false), 0, "%s", err_msg());
	conf = (struct virtio_blk_conf){ .readonly = readonly, .serial = "SERIAL-0123456789-ABC" };
	cr_assert_eq(block_open(path, "raw", readonly ? BLOCK_OPEN_RDONLY : 0, &conf.disk), 0, "%s", err_msg());
	board = (struct virtio_board){ .dma = fake_dma, .pci = host, .slot = 2, .bar0 = BAR, .conf = &conf };
	struct dev_ctx ctx = { .name = "virtio-blk.0", .pio = &pio, .mmio = &mmio, .arg = &board };
	blk = virtio_blk_device.create(&ctx);
	cr_assert(blk, "%s", err_msg());
	/* Driver initialisation (section 3.1.1) with INTx: features VERSION_1. */
	fake_driver_init(0);
	fake_driver_queue(0, 16, DESC, AVAIL, USED);
	fake_driver_ok();
	n_req = 0;
}

static void stop(void)
{
	virtio_blk_device.destroy(blk);
	fake_board_stop();
	unlink(path);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	ring_desc(DESC, i, addr, len, flags, next);
}

/* Header, data (len bytes, writable or not), status; returns the status
 * byte and the used length through *used_len. */
static uint8_t request(uint32_t type, uint64_t sector, uint32_t len, bool data_writable, uint32_t *used_len)
{
	memcpy(ram + HDR, &type, 4);
	memset(ram + HDR + 4, 0, 4);
	memcpy(ram + HDR + 8, &sector, 8);
	ram[STATUS] = 0xee;
	unsigned n = 0;
	desc(n, HDR, 16, 1, (uint16_t)(n + 1));
	n++;
	if (len) {
		desc(n, DATA, len, (uint16_t)(1 | (data_writable ? 2 : 0)), (uint16_t)(n + 1));
		n++;
	}
	desc(n, STATUS, 1, 2, 0);
	split_offer(AVAIL, 16, 0);
	n_req++;
	wr(0x3000, 2, 0);
	/* Requests complete on the block layer's workers: wait for the used
	 * index (the notifying thread never does). */
	uint16_t used = 0;
	for (int i = 0; i < 10000; i++) {
		used = __atomic_load_n((uint16_t *)(ram + USED + 2), __ATOMIC_ACQUIRE);
		if (used == n_req)
			break;
		usleep(1000);
	}
	cr_assert_eq(used, n_req, "request %u not completed", n_req);
	if (used_len)
		*used_len = split_used_len(USED, 16, n_req - 1u);
	return ram[STATUS];
}

static void file_bytes(uint64_t off, void *buf, size_t len)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f);
	fseek(f, (long)off, SEEK_SET);
	cr_assert_eq(fread(buf, 1, len, f), len);
	fclose(f);
}

Test(blk, write_read_flush_get_id, .fini = stop)
{
	start(false);
	memset(ram + DATA, 0xab, 1024);
	cr_assert_eq(request(1, 3, 1024, false, NULL), 0);
	uint8_t buf[1024];
	file_bytes(3 * 512, buf, sizeof(buf));
	for (unsigned i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0xab);
	memset(ram + DATA, 0, 1024);
	uint32_t used_len;
	cr_assert_eq(request(0, 3, 512, true, &used_len), 0);
	cr_assert_eq(used_len, 513, "data and status");
	cr_assert_eq(ram[DATA], 0xab);
	cr_assert_eq(request(4, 0, 0, false, NULL), 0, "FLUSH");
	cr_assert_eq(request(8, 0, 20, true, &used_len), 0, "GET_ID");
	cr_assert_eq(memcmp(ram + DATA, "SERIAL-0123456789-AB", 20), 0, "20 bytes, not terminated");
	cr_assert_eq(request(99, 0, 0, false, NULL), 2, "unknown type: UNSUPP");
}

Test(blk, broken_requests_are_ioerr, .fini = stop)
{
	start(false);
	uint8_t before[SECTORS * 512], after[SECTORS * 512];
	file_bytes(0, before, sizeof(before));
	memset(ram + DATA, 0x77, 4096);
	cr_assert_eq(request(1, SECTORS - 1, 1024, false, NULL), 1, "write past the end");
	cr_assert_eq(request(1, UINT64_MAX, 512, false, NULL), 1, "sector wraps");
	cr_assert_eq(request(1, 0, 1000, false, NULL), 1, "not whole sectors");
	cr_assert_eq(request(1, 0, 512, true, NULL), 1, "write data on the writable side");
	cr_assert_eq(request(0, 0, 512, false, NULL), 1, "read into a readable buffer");
	file_bytes(0, after, sizeof(after));
	cr_assert_eq(memcmp(before, after, sizeof(before)), 0, "the image was touched");
}

Test(blk, read_only_disk, .fini = stop)
{
	start(true);
	uint32_t f;
	wr(0x00, 4, 0);
	uint64_t v = 0;
	bus_read(&mmio, NULL, BAR + 0x04, 4, &v);
	f = (uint32_t)v;
	cr_assert(f & (1u << 5), "VIRTIO_BLK_F_RO offered");
	memset(ram + DATA, 0x55, 512);
	cr_assert_eq(request(1, 0, 512, false, NULL), 1, "write refused with IOERR");
	uint8_t buf[512];
	file_bytes(0, buf, sizeof(buf));
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(request(0, 0, 512, true, NULL), 0, "reads still work");
}

/* Feature word `sel` (0: bits 0-31) as the device offers it. */
static uint32_t offered(unsigned sel)
{
	wr(0x00, 4, sel);
	uint64_t v = 0;
	bus_read(&mmio, NULL, BAR + 0x04, 4, &v);
	return (uint32_t)v;
}

static uint64_t cfg(unsigned off, unsigned size)
{
	uint64_t v = 0;
	bus_read(&mmio, NULL, BAR + 0x2000 + off, size, &v);
	return v;
}

Test(blk, topology_discard_and_write_zeroes_offered, .fini = stop)
{
	start(false);
	uint32_t f = offered(0);
	cr_assert(f & (1u << 10), "TOPOLOGY");
	cr_assert(f & (1u << 13) && f & (1u << 14), "DISCARD and WRITE_ZEROES");
	cr_assert(!(f & (1u << 12)), "one queue: no MQ");
	cr_assert(!(f & (1u << 5)), "not read-only");
	cr_assert_eq(cfg(20, 4), 512, "blk_size");
	cr_assert_eq(cfg(24, 1), 3, "4 KiB physical blocks");
	cr_assert_eq(cfg(34, 2), 1, "num_queues");
	cr_assert_gt(cfg(36, 4), 0, "max_discard_sectors");
	cr_assert_gt(cfg(48, 4), 0, "max_write_zeroes_sectors");
}

/* A DISCARD or WRITE_ZEROES of the given ranges {sector, count, flags}. */
static uint8_t ranges_request(uint32_t type, const uint64_t (*rg)[3], unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t sector = rg[i][0];
		uint32_t count = (uint32_t)rg[i][1], flags = (uint32_t)rg[i][2];
		memcpy(ram + DATA + 16 * i, &sector, 8);
		memcpy(ram + DATA + 16 * i + 8, &count, 4);
		memcpy(ram + DATA + 16 * i + 12, &flags, 4);
	}
	return request(type, 0, 16 * n, false, NULL);
}

Test(blk, write_zeroes_and_discard, .fini = stop)
{
	start(false);
	memset(ram + DATA, 0xcd, 4096);   /* 8 sectors: the status byte follows */
	cr_assert_eq(request(1, 0, 4096, false, NULL), 0);
	const uint64_t z[2][3] = { { 2, 3, 0 }, { 6, 1, 1 } };
	cr_assert_eq(ranges_request(13, z, 2), 0, "WRITE_ZEROES");
	uint8_t buf[4096];
	file_bytes(0, buf, sizeof(buf));
	for (unsigned s = 0; s < 8; s++) {
		bool zero = (s >= 2 && s < 5) || s == 6;
		cr_assert_eq(buf[s * 512], zero ? 0 : 0xcd, "sector %u", s);
		cr_assert_eq(buf[s * 512 + 511], zero ? 0 : 0xcd, "sector %u", s);
	}
	const uint64_t d[1][3] = { { 20, 8, 0 } };
	cr_assert_eq(ranges_request(11, d, 1), 0, "DISCARD");
	const uint64_t past[1][3] = { { SECTORS - 1, 2, 0 } };
	cr_assert_eq(ranges_request(13, past, 1), 1, "past the end: IOERR");
	const uint64_t badflag[1][3] = { { 0, 1, 1 } };
	cr_assert_eq(ranges_request(11, badflag, 1), 2, "DISCARD with unmap: UNSUPP");
	file_bytes(0, buf, 512);
	cr_assert_eq(buf[0], 0xcd, "a refused request changed nothing");
}

Test(blk, many_requests_in_flight_complete, .fini = stop)
{
	/* Sixteen writes notified at once run on the workers together; each
	 * gets its used entry and the file has them all. */
	start(false);
	for (unsigned i = 0; i < 16; i++) {
		uint64_t hdr = HDR + 16 * i, sector = i;
		uint32_t type = 1;
		memcpy(ram + hdr, &type, 4);
		memset(ram + hdr + 4, 0, 4);
		memcpy(ram + hdr + 8, &sector, 8);
		memset(ram + DATA + 512 * i, (int)(0x10 + i), 512);
		ram[STATUS + i] = 0xee;
	}
	/* 48 descriptors do not fit 16: use an indirect-free layout of one
	 * request per 3 descriptors over a 16-entry ring, 5 at a time. */
	unsigned done = 0;
	while (done < 15) {
		unsigned batch = 0;
		for (; batch < 5 && done + batch < 15; batch++) {
			unsigned i = done + batch, d = 3 * batch;
			desc(d, HDR + 16 * i, 16, 1, (uint16_t)(d + 1));
			desc(d + 1, DATA + 512 * i, 512, 1, (uint16_t)(d + 2));
			desc(d + 2, STATUS + i, 1, 2, 0);
			uint16_t head = (uint16_t)d;
			memcpy(ram + AVAIL + 4 + 2 * ((n_req + batch) % 16), &head, 2);
		}
		n_req = (uint16_t)(n_req + batch);
		memcpy(ram + AVAIL + 2, &n_req, 2);
		wr(0x3000, 2, 0);
		uint16_t used = 0;
		for (int t = 0; t < 10000 && used != n_req; t++) {
			used = __atomic_load_n((uint16_t *)(ram + USED + 2), __ATOMIC_ACQUIRE);
			if (used != n_req)
				usleep(1000);
		}
		cr_assert_eq(used, n_req);
		done += batch;
	}
	uint8_t buf[15 * 512];
	file_bytes(0, buf, sizeof(buf));
	for (unsigned i = 0; i < 15; i++) {
		cr_assert_eq(ram[STATUS + i], 0, "request %u", i);
		cr_assert_eq(buf[512 * i + 100], 0x10 + i, "sector %u", i);
	}
}

Test(blk, drain_with_more_requests_than_workers, .fini = stop)
{
	/* Eight FLUSHes notified at once, more than the device's workers;
	 * drain (the device lock held, as save and pause do) returns with
	 * all of them on the used ring: a worker never waits for the lock
	 * while requests queue behind it. */
	start(false);
	for (unsigned i = 0; i < 8; i++) {
		uint32_t type = 4;
		memcpy(ram + HDR + 16 * i, &type, 4);
		memset(ram + HDR + 16 * i + 4, 0, 12);
		ram[STATUS + i] = 0xee;
		desc(2 * i, HDR + 16 * i, 16, 1, (uint16_t)(2 * i + 1));
		desc(2 * i + 1, STATUS + i, 1, 2, 0);
		uint16_t head = (uint16_t)(2 * i);
		memcpy(ram + AVAIL + 4 + 2 * i, &head, 2);
	}
	n_req = 8;
	memcpy(ram + AVAIL + 2, &n_req, 2);
	wr(0x3000, 2, 0);
	virtio_blk_drain(blk);
	uint16_t used;
	memcpy(&used, ram + USED + 2, 2);
	cr_assert_eq(used, 8, "all completed by the drain");
	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(ram[STATUS + i], 0);
}
