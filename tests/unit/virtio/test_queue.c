/* The split virtqueue parser (src/virtio/queue.c) against rings a hostile
 * or broken driver writes: every case must end in a clean error, never a
 * loop, a crash or a pointer outside guest memory. */
#include "util/error.h"
#include "virtio/queue.h"

#include "fake_board.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QSIZE 8
#define DESC  0x1000u
#define AVAIL 0x2000u
#define USED  0x3000u
#define DATA  0x10000u

static struct virtq q;
static struct virtq_elem e;

static void setup(void)
{
	fake_ram_start();
	fake_queue_init(&q, QSIZE, DESC, AVAIL, USED, false);
}

static void teardown(void) { fake_ram_stop(); }

static void desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	ring_desc(table, i, addr, len, flags, next);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(DESC, i, addr, len, flags, next);
}

static uint16_t avail_idx;

/* Offers head as the next available entry. */
static void offer(uint16_t head)
{
	uint16_t *ring = (uint16_t *)(ram + AVAIL + 4);
	ring[avail_idx % QSIZE] = head;
	avail_idx++;
	memcpy(ram + AVAIL + 2, &avail_idx, 2);
}

static void reset_avail(void) { avail_idx = 0; }

TestSuite(virtq, .init = setup, .fini = teardown);

Test(virtq, empty_ring_gives_nothing)
{
	reset_avail();
	cr_assert_eq(virtq_pop(&q, &e), 0);
}

Test(virtq, readable_then_writable_chain)
{
	reset_avail();
	desc(0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA + 512, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	desc(2, DATA + 1024, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), 1, "%s", err_msg());
	cr_assert_eq(e.head, 0);
	cr_assert_eq(e.n_out, 1);
	cr_assert_eq(e.n_in, 2);
	cr_assert_eq(e.out_len, 16);
	cr_assert_eq(e.in_len, 513);
	cr_assert_eq(e.iov[1].iov_base, ram + DATA + 512);
	cr_assert_eq(virtq_pop(&q, &e), 0, "one request only");
	cr_assert_eq(virtq_push(&q, &e, 513), 0);
	uint16_t used_idx;
	uint32_t id, len;
	memcpy(&used_idx, ram + USED + 2, 2);
	memcpy(&id, ram + USED + 4, 4);
	memcpy(&len, ram + USED + 8, 4);
	cr_assert_eq(used_idx, 1);
	cr_assert_eq(id, 0);
	cr_assert_eq(len, 513);
}

Test(virtq, descriptor_loop_is_refused)
{
	reset_avail();
	desc(0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -ELOOP);
}

Test(virtq, self_loop_is_refused)
{
	reset_avail();
	desc(3, DATA, 16, VIRTQ_DESC_F_NEXT, 3);
	offer(3);
	cr_assert_eq(virtq_pop(&q, &e), -ELOOP);
}

Test(virtq, chain_as_long_as_the_queue_is_fine)
{
	reset_avail();
	for (unsigned i = 0; i < QSIZE; i++)
		desc(i, DATA + 16 * i, 16, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), 1, "%s", err_msg());
	cr_assert_eq(e.n_out, QSIZE);
}

Test(virtq, next_outside_the_table_is_refused)
{
	reset_avail();
	desc(0, DATA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
}

Test(virtq, head_outside_the_table_is_refused)
{
	reset_avail();
	offer(QSIZE + 3);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
}

Test(virtq, avail_index_jumping_past_the_queue_is_refused)
{
	reset_avail();
	uint16_t idx = QSIZE + 1;
	memcpy(ram + AVAIL + 2, &idx, 2);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
}

Test(virtq, buffers_outside_ram_are_refused)
{
	const uint64_t bad[][2] = {
		{ RAM_SIZE, 16 },                /* just past the end */
		{ RAM_SIZE - 8, 16 },            /* straddles the end */
		{ UINT64_MAX - 7, 16 },          /* wraps around */
		{ 0x100000000ull, 512 },         /* far away */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setup();
		reset_avail();
		desc(0, bad[i][0], (uint32_t)bad[i][1], 0, 0);
		offer(0);
		cr_assert_eq(virtq_pop(&q, &e), -EFAULT, "case %u", i);
		teardown();
	}
	setup();   /* for the fixture's teardown */
}

Test(virtq, rings_outside_ram_are_refused)
{
	reset_avail();
	q.desc = RAM_SIZE - 16;   /* table of 8 runs off the end */
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -EFAULT);
	q.desc = DESC;
	q.avail = RAM_SIZE - 4;
	cr_assert_eq(virtq_pop(&q, &e), -EFAULT);
	q.avail = AVAIL + 1;      /* misaligned */
	cr_assert_eq(virtq_pop(&q, &e), -EFAULT);
	q.avail = AVAIL;
	q.used = RAM_SIZE;
	cr_assert_lt(virtq_push(&q, &e, 0), 0);
}

Test(virtq, writable_before_readable_is_refused)
{
	reset_avail();
	desc(0, DATA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, DATA + 16, 16, 0, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
}

Test(virtq, zero_length_buffer_is_refused)
{
	reset_avail();
	desc(0, DATA, 0, 0, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
}

Test(virtq, indirect_table)
{
	reset_avail();
	const uint64_t table = 0x4000;
	desc_at(table, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc_at(table, 1, DATA + 16, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	desc_at(table, 2, DATA + 8192, 1, VIRTQ_DESC_F_WRITE, 0);
	desc(5, table, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(5);
	cr_assert_eq(virtq_pop(&q, &e), 1, "%s", err_msg());
	cr_assert_eq(e.head, 5);
	cr_assert_eq(e.n_out, 1);
	cr_assert_eq(e.n_in, 2);
	cr_assert_eq(e.in_len, 4097);
}

Test(virtq, bad_indirect_tables_are_refused)
{
	const uint64_t table = 0x4000;
	/* without the feature */
	reset_avail();
	q.indirect = false;
	desc_at(table, 0, DATA, 16, 0, 0);
	desc(0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
	/* nested */
	setup();
	reset_avail();
	desc_at(table, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc(0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -EINVAL);
	/* a loop inside the table */
	setup();
	reset_avail();
	desc_at(table, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc_at(table, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
	desc(0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), -ELOOP);
	/* not a whole number of descriptors, empty, outside RAM, with NEXT */
	const struct { uint64_t addr; uint32_t len; uint16_t flags; int rc; } bad[] = {
		{ table, 24, VIRTQ_DESC_F_INDIRECT, -EINVAL },
		{ table, 0, VIRTQ_DESC_F_INDIRECT, -EINVAL },
		{ RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, -EFAULT },
		{ table, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, -EINVAL },
		{ table, 16u * (VIRTQ_MAX_SEGS + 1), VIRTQ_DESC_F_INDIRECT, -EINVAL },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setup();
		reset_avail();
		desc_at(table, 0, DATA, 16, 0, 0);
		desc(0, bad[i].addr, bad[i].len, bad[i].flags, 1);
		desc(1, DATA, 16, 0, 0);
		offer(0);
		cr_assert_eq(virtq_pop(&q, &e), bad[i].rc, "case %u: %s", i, err_msg());
	}
}

Test(virtq, event_idx_suppresses_interrupts)
{
	reset_avail();
	q.event_idx = true;
	desc(0, DATA, 16, 0, 0);
	uint16_t used_event = 1;   /* interrupt me once used->idx passes 1 */
	memcpy(ram + AVAIL + 4 + 2 * QSIZE, &used_event, 2);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(virtq_push(&q, &e, 0), 0);
	cr_assert(virtq_should_notify(&q), "the first completion always interrupts");
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(virtq_push(&q, &e, 0), 0);   /* used idx 2: passes used_event 1 */
	cr_assert(virtq_should_notify(&q));
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(virtq_push(&q, &e, 0), 0);   /* used idx 3: used_event still 1 */
	cr_assert_not(virtq_should_notify(&q));
	/* avail_event tells the driver where we are. */
	cr_assert_not(virtq_enable_notify(&q));
	uint16_t avail_event;
	memcpy(&avail_event, ram + USED + 4 + 8 * QSIZE, 2);
	cr_assert_eq(avail_event, 3);
	offer(0);
	cr_assert(virtq_enable_notify(&q), "a request that arrived is reported");
}

Test(virtq, no_interrupt_flag_without_event_idx)
{
	reset_avail();
	desc(0, DATA, 16, 0, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(virtq_push(&q, &e, 0), 0);
	cr_assert(virtq_should_notify(&q));
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	memcpy(ram + AVAIL, &flags, 2);
	cr_assert_not(virtq_should_notify(&q));
}

Test(virtq, size_check)
{
	cr_assert(virtq_size_valid(256, 256));
	cr_assert(virtq_size_valid(1, 256));
	cr_assert_not(virtq_size_valid(0, 256));
	cr_assert_not(virtq_size_valid(3, 256));
	cr_assert_not(virtq_size_valid(512, 256));
}

/* Random rings: the parser ends every time and only ever hands out
 * buffers inside guest RAM. */
Test(virtq, random_rings_stay_in_ram)
{
	srand(1234);
	for (unsigned round = 0; round < 2000; round++) {
		q.size = QSIZE;
		q.last_avail = 0;
		q.event_idx = round & 1;
		for (unsigned i = 0; i < 0x5000; i++)
			ram[DESC + i] = (uint8_t)rand();
		/* Addresses mostly small so some chains are valid. */
		for (unsigned i = 0; i < QSIZE; i++) {
			uint64_t addr = (uint64_t)(rand() % (RAM_SIZE + 4096));
			if (rand() % 4 == 0)
				addr = 0x4000 + 16u * (unsigned)(rand() % 8);
			memcpy(ram + DESC + 16u * i, &addr, 8);
			uint32_t len = (uint32_t)(rand() % 600);
			memcpy(ram + DESC + 16u * i + 8, &len, 4);
			uint16_t next = (uint16_t)(rand() % (QSIZE + 2));
			memcpy(ram + DESC + 16u * i + 14, &next, 2);
		}
		for (unsigned k = 0; k < 3 * QSIZE; k++) {
			int rc = virtq_pop(&q, &e);
			if (rc <= 0)
				break;
			for (unsigned s = 0; s < e.n_out + e.n_in; s++) {
				uint8_t *p = e.iov[s].iov_base;
				cr_assert(p >= ram && p + e.iov[s].iov_len <= ram + RAM_SIZE);
			}
			virtq_push(&q, &e, 0);
			virtq_should_notify(&q);
		}
	}
}

static uint64_t written_gpa[8], written_len[8];
static unsigned n_written;

static void record_written(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (n_written < 8) {
		written_gpa[n_written] = gpa;
		written_len[n_written] = len;
	}
	n_written++;
}

/* What the device wrote is reported (the emu engine drops code decoded
 * from those pages): the writable buffers up to the length used, then the
 * used ring. */
Test(virtq, device_writes_are_reported)
{
	reset_avail();
	q.dma_written = record_written;
	n_written = 0;
	desc(0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA + 4096, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	desc(2, DATA + 8192, 512, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	cr_assert_eq(virtq_pop(&q, &e), 1);
	cr_assert_eq(virtq_push(&q, &e, 600), 0);
	cr_assert_eq(n_written, 3);
	cr_assert_eq(written_gpa[0], DATA + 4096);
	cr_assert_eq(written_len[0], 512);
	cr_assert_eq(written_gpa[1], DATA + 8192);
	cr_assert_eq(written_len[1], 88);
	cr_assert_eq(written_gpa[2], USED);
}
