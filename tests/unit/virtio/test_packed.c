/* The packed virtqueue (src/virtio/queue.c, virtio 1.2 section 2.8)
 * against rings a driver writes: buffers are found by their AVAIL/USED
 * flags and the wrap counter, used descriptors go where the next buffer
 * starts, and broken rings (chains longer than the ring, buffers outside
 * RAM, zero lengths, writable before readable, bad indirect tables) end
 * in a clean error. */
#include "util/error.h"
#include "virtio/queue.h"

#include "fake_board.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QSIZE 6       /* packed rings need not be a power of two */
#define RING 0x1000u
#define DRV  0x2000u  /* driver event suppression */
#define DEV  0x3000u  /* device event suppression */
#define DATA 0x10000u
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4
#define F_AVAIL (1u << 7)
#define F_USED (1u << 15)

static struct virtq q;
static struct virtq_elem e;
static bool drv_wrap;   /* the driver's wrap counter */
static unsigned drv_next;

static void setup(void)
{
	fake_ram_start();
	fake_queue_init(&q, QSIZE, RING, DRV, DEV, true);
	drv_wrap = true;
	drv_next = 0;
}

static void teardown(void) { fake_ram_stop(); }

static void pdesc_at(uint64_t base, unsigned i, uint64_t addr, uint32_t len, uint16_t id, uint16_t flags)
{
	ring_desc(base, i, addr, len, id, flags);
}

/* The driver makes the next slot available (section 2.8.21.1). */
static void offer(uint64_t addr, uint32_t len, uint16_t id, uint16_t flags)
{
	uint16_t avail = drv_wrap ? F_AVAIL : F_USED;
	pdesc_at(RING, drv_next, addr, len, id, (uint16_t)(flags | avail));
	if (++drv_next == QSIZE) {
		drv_next = 0;
		drv_wrap = !drv_wrap;
	}
}

TestSuite(packed, .init = setup, .fini = teardown);

Test(packed, empty_ring_gives_nothing)
{
	cr_assert_eq(virtq_pop(&q, &e), 0);
}

Test(packed, chains_wrap_around_and_used_descriptors_follow)
{
	/* Three 2-descriptor buffers in a 6-slot ring, used, then two more
	 * that cross the end of the ring under the flipped wrap counter. */
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned b = 0; b < 2; b++) {
			uint16_t id = (uint16_t)(10 * round + b);
			offer(DATA + 0x100 * b, 16, 0, F_NEXT);
			offer(DATA + 0x100 * b + 0x80, 8, id, F_WRITE);
		}
		for (unsigned b = 0; b < 2; b++) {
			cr_assert_eq(virtq_pop(&q, &e), 1, "round %u buffer %u: %s", round, b, err_msg());
			cr_assert_eq(e.head, 10 * round + b, "the ID of the chain's last descriptor");
			cr_assert_eq(e.n_out, 1);
			cr_assert_eq(e.n_in, 1);
			cr_assert_eq(e.ndesc, 2);
			unsigned slot = q.used_idx;
			bool wrap = q.used_wrap;
			cr_assert_eq(virtq_push(&q, &e, 5), 0);
			uint16_t flags, id;
			uint32_t len;
			memcpy(&len, ram + RING + 16 * slot + 8, 4);
			memcpy(&id, ram + RING + 16 * slot + 12, 2);
			memcpy(&flags, ram + RING + 16 * slot + 14, 2);
			cr_assert_eq(id, 10 * round + b);
			cr_assert_eq(len, 5);
			cr_assert_eq(!!(flags & F_AVAIL), wrap, "AVAIL is the device's wrap counter");
			cr_assert_eq(!!(flags & F_USED), wrap, "USED too");
		}
		cr_assert_eq(virtq_pop(&q, &e), 0, "nothing more in round %u", round);
	}
}

Test(packed, event_suppression)
{
	offer(DATA, 8, 1, F_WRITE);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	virtq_push(&q, &e, 0);
	uint16_t disable = 1;
	memcpy(ram + DRV + 2, &disable, 2);
	cr_assert_not(virtq_should_notify(&q), "the driver disabled interrupts");
	uint16_t enable = 0;
	memcpy(ram + DRV + 2, &enable, 2);
	cr_assert(virtq_should_notify(&q));
	/* With EVENT_IDX: interrupt only when the used index passes off_wrap. */
	q.event_idx = true;
	uint16_t desc_mode = 2, off_wrap = (uint16_t)(3 | 0x8000);
	memcpy(ram + DRV, &off_wrap, 2);
	memcpy(ram + DRV + 2, &desc_mode, 2);
	offer(DATA, 8, 2, F_WRITE);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	virtq_push(&q, &e, 0);   /* used index 2: event 3 not reached */
	cr_assert_not(virtq_should_notify(&q));
	offer(DATA, 8, 3, F_WRITE);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	virtq_push(&q, &e, 0);   /* used index 3: slot 3 is not passed yet */
	offer(DATA, 8, 4, F_WRITE);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	virtq_push(&q, &e, 0);   /* used index 4: slot 3 written */
	cr_assert(virtq_should_notify(&q));
}

/* The device's own event suppression (section 2.8.10), as the driver
 * reads it before notifying: DISABLE while the device takes buffers and
 * ENABLE after, without EVENT_IDX; with it, DESC at the slot and wrap
 * counter of the next buffer, moving on as the ring goes round. */
Test(packed, device_event_suppression)
{
	uint16_t off_wrap, flags;
	offer(DATA, 8, 1, F_WRITE);
	virtq_disable_notify(&q);
	memcpy(&flags, ram + DEV + 2, 2);
	cr_assert_eq(flags, 1, "DISABLE while the device works");
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(virtq_pop(&q, &e), 0);
	cr_assert_not(virtq_enable_notify(&q));
	memcpy(&flags, ram + DEV + 2, 2);
	cr_assert_eq(flags, 0, "ENABLE once the ring is empty");
	q.event_idx = true;
	for (unsigned n = 0; n < QSIZE; n++) {
		offer(DATA, 8, (uint16_t)(2 + n), F_WRITE);
		virtq_disable_notify(&q);
		memcpy(&flags, ram + DEV + 2, 2);
		cr_assert_neq(flags, 1, "EVENT_IDX: no DISABLE, the offset does it");
		cr_assert_eq(virtq_pop(&q, &e), 1);
		cr_assert_eq(virtq_pop(&q, &e), 0);
		/* A buffer offered before the device looks again is found. */
		offer(DATA, 8, 99, F_WRITE);
		cr_assert(virtq_enable_notify(&q));
		cr_assert_eq(virtq_pop(&q, &e), 1);
		cr_assert_not(virtq_enable_notify(&q));
		memcpy(&off_wrap, ram + DEV, 2);
		memcpy(&flags, ram + DEV + 2, 2);
		cr_assert_eq(flags, 2, "DESC");
		cr_assert_eq(off_wrap & 0x7fff, drv_next, "the slot of the driver's next buffer (round %u)", n);
		cr_assert_eq(!!(off_wrap & 0x8000), drv_wrap, "in the driver's wrap (round %u)", n);
	}
}

Test(packed, chain_longer_than_the_ring_is_refused)
{
	/* Every slot available with NEXT: the walk wraps onto itself. */
	for (unsigned i = 0; i < QSIZE; i++)
		offer(DATA, 16, (uint16_t)i, F_NEXT);
	cr_assert_eq(virtq_pop(&q, &e), -ELOOP, "%s", err_msg());
}

Test(packed, bad_buffers_are_refused)
{
	offer(RAM_SIZE - 8, 16, 0, 0);
	cr_assert_eq(virtq_pop(&q, &e), -EFAULT, "outside RAM");
	setup();
	offer(DATA, 0, 0, 0);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL, "zero length");
	setup();
	offer(DATA, 8, 0, F_WRITE | F_NEXT);
	offer(DATA, 8, 0, 0);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL, "readable after writable");
}

Test(packed, indirect_tables)
{
	pdesc_at(DATA, 0, DATA + 0x100, 16, 0, 0);
	pdesc_at(DATA, 1, DATA + 0x200, 64, 0, F_WRITE);
	offer(DATA, 32, 7, F_INDIRECT);
	cr_assert_eq(virtq_pop(&q, &e), 1, "%s", err_msg());
	cr_assert_eq(e.head, 7);
	cr_assert_eq(e.ndesc, 1, "an indirect buffer takes one slot");
	cr_assert_eq(e.out_len, 16);
	cr_assert_eq(e.in_len, 64);
	/* Nested, chained or without the feature: refused. */
	setup();
	pdesc_at(DATA, 0, DATA + 0x100, 16, 0, F_INDIRECT);
	offer(DATA, 16, 7, F_INDIRECT);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
	setup();
	pdesc_at(DATA, 0, DATA + 0x100, 16, 0, 0);
	offer(DATA, 16, 7, F_INDIRECT | F_NEXT);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
	setup();
	q.indirect = false;
	offer(DATA, 16, 7, F_INDIRECT);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
	setup();
	offer(DATA, 24, 7, F_INDIRECT);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL, "not a whole number of descriptors");
}

Test(packed, sizes)
{
	cr_assert(virtq_packed_size_valid(6, 256));
	cr_assert_not(virtq_packed_size_valid(0, 256));
	cr_assert_not(virtq_packed_size_valid(257, 256));
	q.avail = DRV + 2;
	cr_assert_not(virtq_rings_aligned(&q), "event suppression 4-aligned");
}

/* A device that took buffers for a request it cannot finish (virtio-net
 * short of merged receive buffers) gives them back: across the ring's
 * end the wrap counter goes back too, or the buffers are lost to the
 * device (their AVAIL bit no longer matches what it expects). */
Test(packed, rewind_across_the_ring_end)
{
	for (unsigned i = 0; i < QSIZE - 1; i++) {
		offer(DATA, 8, (uint16_t)i, F_WRITE);
		cr_assert_eq(virtq_pop(&q, &e), 1);
		cr_assert_eq(virtq_push(&q, &e, 0), 0);
	}
	/* Two buffers from the last slot: the second is past the end. */
	offer(DATA, 8, 40, F_WRITE);
	offer(DATA + 0x100, 8, 41, F_WRITE);
	struct virtq_mark m = virtq_mark(&q);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(e.head, 41);
	virtq_rewind(&q, m);
	cr_assert_eq(virtq_pop(&q, &e), 1, "the first buffer is lost after the rewind");
	cr_assert_eq(e.head, 40);
	cr_assert_eq(virtq_pop(&q, &e), 1, "the second buffer is lost after the rewind");
	cr_assert_eq(e.head, 41);
	cr_assert_eq(virtq_pop(&q, &e), 0);
}
