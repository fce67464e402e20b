/* Devices instantiated alone from a fake struct dev_ctx (hw/device.h):
 * buses of their own, bases no PC uses, recorded lines and requests, a
 * manual clock.  Nothing of a VM or a board exists here, so a device that
 * reached past its context would crash or fail these. */
#include "machine/bus.h"
#include "hw/debug_exit.h"
#include "hw/device.h"
#include "hw/hpet.h"
#include "hw/pit.h"
#include "hw/port80.h"
#include "hw/rtc.h"
#include "machine/timer.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#define FAKE_LINES 64

struct fake_board {
	struct bus pio, mmio;
	pthread_mutex_t lock;
	struct timer_service *ts;
	uint64_t now;
	bool level[FAKE_LINES];
	unsigned rises[FAKE_LINES];
	unsigned n_requests;
	enum dev_request last_req;
	int last_value;
};

static uint64_t fake_clock(void *opaque) { return ((struct fake_board *)opaque)->now; }

static void fake_line(void *opaque, unsigned n, bool level)
{
	struct fake_board *b = opaque;
	cr_assert_lt(n, FAKE_LINES, "line %u outside the bank the test gave", n);
	if (level && !b->level[n])
		b->rises[n]++;
	b->level[n] = level;
}

static void fake_request(void *opaque, enum dev_request req, int value)
{
	struct fake_board *b = opaque;
	b->n_requests++;
	b->last_req = req;
	b->last_value = value;
}

static struct fake_board *board_new(void)
{
	struct fake_board *b = calloc(1, sizeof(*b));
	cr_assert(b);
	bus_init(&b->pio, "pio");
	bus_init(&b->mmio, "mmio");
	pthread_mutex_init(&b->lock, NULL);
	b->ts = timer_service_new(&b->lock);
	cr_assert(b->ts);
	b->now = 1000000000ull;
	timer_service_set_clock(b->ts, fake_clock, b);
	return b;
}

static void board_free(struct fake_board *b)
{
	cr_assert_eq(b->pio.n, 0, "a device left %u port ranges behind", b->pio.n);
	cr_assert_eq(b->mmio.n, 0, "a device left %u MMIO ranges behind", b->mmio.n);
	timer_service_free(b->ts);
	bus_destroy(&b->pio);
	bus_destroy(&b->mmio);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* A context whose line i is board line first_line + i. */
static struct dev_ctx ctx_for(struct fake_board *b, uint64_t base0, uint64_t base1, unsigned first_line)
{
	struct dev_ctx ctx = {
		.name = "test", .pio = &b->pio, .mmio = &b->mmio, .base = { base0, base1 }, .clock = b->ts,
		.lock = &b->lock, .request = fake_request, .request_opaque = b,
	};
	for (unsigned i = 0; i < DEV_MAX_IRQS; i++)
		ctx.irq[i] = (struct irq_line){ .set = fake_line, .opaque = b, .n = first_line + i };
	return ctx;
}

static void advance(struct fake_board *b, uint64_t ns)
{
	b->now += ns;
	pthread_mutex_lock(&b->lock);
	timer_service_poll(b->ts);
	pthread_mutex_unlock(&b->lock);
}

Test(device_ctx, debug_exit_reports_through_the_request_callback)
{
	struct fake_board *b = board_new();
	struct dev_ctx ctx = ctx_for(b, 0x500, 0, 0);
	void *d = debug_exit_device.create(&ctx);
	cr_assert_not_null(d, "%s", err_msg());
	uint64_t v;
	cr_assert_not(bus_read(&b->pio, NULL, 0xf4, 1, &v), "the PC's port is not claimed: the base is the table's");
	cr_assert(bus_write(&b->pio, NULL, 0x500, 1, 0x31));
	cr_assert_eq(b->n_requests, 1);
	cr_assert_eq(b->last_req, DEV_REQ_STOP);
	cr_assert_eq(b->last_value, 0x31);
	debug_exit_device.destroy(d);
	board_free(b);
}

Test(device_ctx, port80_claims_its_base_and_releases_it)
{
	struct fake_board *b = board_new();
	struct dev_ctx ctx = ctx_for(b, 0x1080, 0, 0);
	void *d = port80_device.create(&ctx);
	cr_assert_not_null(d, "%s", err_msg());
	uint64_t v;
	cr_assert(bus_write(&b->pio, NULL, 0x1080, 1, 0x42));
	cr_assert(bus_read(&b->pio, NULL, 0x1080, 1, &v));
	cr_assert_eq(v, 0x42);
	/* Its state goes through the table's save/load. */
	uint8_t blob[64];
	int64_t n = port80_device.save(d, blob, sizeof(blob));
	cr_assert_gt(n, 0);
	cr_assert(bus_write(&b->pio, NULL, 0x1080, 1, 0));
	cr_assert_eq(port80_device.load(d, blob, (size_t)n), 0);
	cr_assert(bus_read(&b->pio, NULL, 0x1080, 1, &v));
	cr_assert_eq(v, 0x42);
	port80_device.destroy(d);
	board_free(b);   /* checks that no range is left */
}

Test(device_ctx, rtc_drives_its_nmi_mask_line)
{
	struct fake_board *b = board_new();
	struct dev_ctx ctx = ctx_for(b, 0x170, 0, 10);   /* irq[0] = line 10, irq[1] = line 11 */
	pthread_mutex_lock(&b->lock);
	void *r = rtc_device.create(&ctx);
	cr_assert_not_null(r, "%s", err_msg());
	cr_assert(bus_write(&b->pio, NULL, 0x170, 1, 0x80 | 0x0c));
	cr_assert(b->level[11], "index bit 7 set: NMI masked");
	cr_assert(bus_write(&b->pio, NULL, 0x170, 1, 0x0c));
	cr_assert_not(b->level[11]);
	/* Update-ended interrupt: IRQ8 is the RTC's own line, nothing gates it here. */
	bus_write(&b->pio, NULL, 0x170, 1, 0x0b);
	bus_write(&b->pio, NULL, 0x171, 1, 0x02 | 0x10);   /* 24 h, UIE */
	pthread_mutex_unlock(&b->lock);
	advance(b, 1100000000ull);
	cr_assert(b->level[10], "update-ended interrupt raised IRQ8");
	rtc_device.destroy(r);
	board_free(b);
}

Test(device_ctx, pit_channel0_pulses_its_line)
{
	struct fake_board *b = board_new();
	struct dev_ctx ctx = ctx_for(b, 0x1040, 0x1061, 5);
	pthread_mutex_lock(&b->lock);
	void *p = pit_device.create(&ctx);
	cr_assert_not_null(p, "%s", err_msg());
	cr_assert(bus_write(&b->pio, NULL, 0x1043, 1, 0x34));   /* channel 0, lo/hi, mode 2 */
	bus_write(&b->pio, NULL, 0x1040, 1, 1193 & 0xff);
	bus_write(&b->pio, NULL, 0x1040, 1, 1193 >> 8);
	pthread_mutex_unlock(&b->lock);
	advance(b, 1100000ull);   /* a little over one 1 ms period */
	cr_assert_eq(b->rises[5], 1, "one IRQ0 edge per period");
	cr_assert_not(b->level[5], "periodic modes pulse the line");
	pit_device.destroy(p);
	board_free(b);
}

Test(device_ctx, hpet_legacy_route_is_a_line_and_an_offset_of_its_bank)
{
	struct fake_board *b = board_new();
	/* irq[0] is the bank (GSI g is line 20 + g), irq[1] the legacy output. */
	struct dev_ctx ctx = ctx_for(b, 0xd0000000ull, 0, 0);
	ctx.irq[0].n = 20;
	ctx.irq[1].n = 50;
	pthread_mutex_lock(&b->lock);
	void *h = hpet_device.create(&ctx);
	cr_assert_not_null(h, "%s", err_msg());
	cr_assert(bus_write(&b->mmio, NULL, 0xd0000000ull + 0x10, 8, 0x2));   /* LEG_RT_CNF */
	cr_assert(b->level[50], "legacy replacement on: the gate line is high");
	bus_write(&b->mmio, NULL, 0xd0000000ull + 0x108, 8, 100);             /* timer 0 comparator */
	bus_write(&b->mmio, NULL, 0xd0000000ull + 0x100, 8, 1u << 2);         /* Tn_INT_ENB_CNF */
	bus_write(&b->mmio, NULL, 0xd0000000ull + 0x10, 8, 0x3);              /* and ENABLE_CNF */
	pthread_mutex_unlock(&b->lock);
	advance(b, 20000ull);   /* 200 ticks of 100 ns */
	cr_assert_eq(b->rises[20 + 0], 1, "timer 0 on the legacy route is IRQ0 of the bank");
	pthread_mutex_lock(&b->lock);
	bus_write(&b->mmio, NULL, 0xd0000000ull + 0x10, 8, 0x1);
	pthread_mutex_unlock(&b->lock);
	cr_assert_not(b->level[50], "legacy replacement off: the gate line drops");
	hpet_device.destroy(h);
	board_free(b);
}

/* Bus callbacks are told which vCPU makes the access (the LAPIC page
 * depends on it); NULL when the access comes from no vCPU. */
static struct vcpu *seen;
static uint64_t who_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	seen = vcpu;
	return 0;
}
static void who_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	seen = vcpu;
}
static const struct bus_ops who_ops = { who_read, who_write };

Test(device_ctx, bus_callbacks_get_the_accessing_vcpu)
{
	struct bus bus;
	bus_init(&bus, "pio");
	cr_assert_eq(bus_register(&bus, 0x10, 1, &who_ops, NULL, "who"), 0);
	struct vcpu *fake = (struct vcpu *)&bus;   /* only compared, never dereferenced */
	uint64_t v;
	bus_read(&bus, fake, 0x10, 1, &v);
	cr_assert_eq(seen, fake);
	bus_write(&bus, NULL, 0x10, 1, 0);
	cr_assert_null(seen);
	bus_destroy(&bus);
}
