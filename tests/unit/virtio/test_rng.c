/* virtio-rng (src/virtio/rng.c) with a rate limit, on a VM clock the test
 * moves: a request takes at most the bucket's bytes, a request that finds
 * it empty waits in the ring, and the timer serves it once the clock has
 * given a byte's worth back; without a limit a request gets what it asks. */
#include "machine/bus.h"
#include "machine/timer.h"
#include "hw/device.h"
#include "hw/pci.h"
#include "util/error.h"
#include "virtio/rng.h"
#include "virtio/virtio_pci.h"

#include "fake_board.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define BUF 0x10000u

static void *dev;
static struct virtio_board board;
static struct virtio_rng_conf conf;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct timer_service *ts;
static uint64_t now_ns;

static uint64_t fake_clock(void *opaque) { (void)opaque; return now_ns; }


static void start(uint64_t rate)
{
	fake_board_start();
	ts = timer_service_new(&lock);
	now_ns = 1000;
	timer_service_set_clock(ts, fake_clock, NULL);
	conf.rate = rate;
	board = (struct virtio_board){ .dma = fake_dma, .pci = host, .slot = 4, .bar0 = BAR, .conf = &conf };
	struct dev_ctx ctx = { .name = "virtio-rng", .pio = &pio, .mmio = &mmio, .arg = &board, .lock = &lock,
			       .clock = ts };
	dev = virtio_rng_device.create(&ctx);
	cr_assert(dev, "%s", err_msg());
	fake_driver_init(0);
	fake_driver_queue(0, 16, DESC, AVAIL, USED);
	fake_driver_ok();
}

static void stop(void)
{
	virtio_rng_device.destroy(dev);
	timer_service_free(ts);
	fake_board_stop();
}

/* Posts a 4 KiB writable buffer as request n and notifies. */
static void request(uint16_t n)
{
	ring_desc(DESC, n, BUF + 0x1000u * n, 4096, 2, 0);
	split_offer(AVAIL, 16, n);
	wr(0x3000, 2, 0);
}

static uint16_t used_idx(void) { return split_used_idx(USED); }
static uint32_t used_len(unsigned i) { return split_used_len(USED, 16, i); }

Test(rng, no_limit_fills_the_request, .fini = stop)
{
	start(0);
	request(0);
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(used_len(0), 4096);
}

Test(rng, rate_limit_bounds_and_delays_requests, .fini = stop)
{
	start(100);
	request(0);
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(used_len(0), 100, "the first request took %u bytes of a 100-byte bucket", used_len(0));
	request(1);
	cr_assert_eq(used_idx(), 1, "a request was served from an empty bucket");
	pthread_mutex_lock(&lock);
	cr_assert_eq(timer_service_poll(ts), 0, "the retry fired before its time");
	now_ns += 500000000;   /* half a second: 50 bytes */
	cr_assert_eq(timer_service_poll(ts), 1);
	pthread_mutex_unlock(&lock);
	cr_assert_eq(used_idx(), 2, "the waiting request was not served after the refill");
	cr_assert_eq(used_len(1), 50);
}
