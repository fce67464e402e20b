/* The VMBus host (src/hv/vmbus.c) on a fake transport and plain guest
 * memory: the version handshake, offers, GPADLs, opening a channel, both
 * rings, the queue of messages that wait for the SINT's slot, snapshots,
 * and malformed messages and rings, which close the channel or are
 * ignored, never crash; and the heartbeat integration service
 * (src/hv/vmbus_ic.c) on that bus. */
#include <criterion/criterion.h>

#include "hv/vmbus.h"
#include "hv/vmbus_ic.h"
#include "machine/timer.h"
#include "machine/memory.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM (4u << 20)
#define PAGE 4096u
/* The channel's GPADL: 4 pages of guest-to-host ring (header + 3), then
 * 4 of host-to-guest ring, at this guest-physical address. */
#define RING_GPA 0x100000ull
#define RING_PAGES 8u
#define DOWNSTREAM 4u
#define GPADL 0xe1e10u

struct fake {
	struct guest_memory mem;
	struct vmbus *bus;
	/* Messages the host posted, in order. */
	uint8_t msgs[64][240];
	unsigned lens[64], n_msgs;
	int post_rc;               /* what the transport answers */
	unsigned signals, last_flag, last_vp, kicks;
	/* The test device. */
	int relid;
	bool open;
	unsigned closed;
	uint8_t pkt[8192];
	size_t pkt_len;
	unsigned packets;
	uint64_t trans;
	int packet_rc;
};

static int fake_post(void *opaque, unsigned vp, const void *msg, unsigned len)
{
	struct fake *f = opaque;
	if (f->post_rc)
		return f->post_rc;
	cr_assert_lt(f->n_msgs, 64);
	cr_assert_leq(len, 240);
	memcpy(f->msgs[f->n_msgs], msg, len);
	f->lens[f->n_msgs++] = len;
	f->last_vp = vp;
	return 0;
}

static void fake_signal(void *opaque, unsigned vp, unsigned flag)
{
	struct fake *f = opaque;
	f->signals++;
	f->last_flag = flag;
	f->last_vp = vp;
}

static void fake_kick(void *opaque, unsigned vp)
{
	struct fake *f = opaque;
	f->kicks |= 1u << vp;
}

static void dev_opened(struct vmbus_channel *ch, void *opaque) { ((struct fake *)opaque)->open = true; }
static void dev_closed(struct vmbus_channel *ch, void *opaque)
{
	struct fake *f = opaque;
	f->open = false;
	f->closed++;
}
static int dev_packet(struct vmbus_channel *ch, void *opaque, const uint8_t *data, size_t len, uint64_t trans)
{
	struct fake *f = opaque;
	cr_assert_leq(len, sizeof(f->pkt));
	memcpy(f->pkt, data, len);
	f->pkt_len = len;
	f->trans = trans;
	f->packets++;
	return f->packet_rc;
}

static const struct vmbus_device_ops dev_ops = {
	.name = "test device", .type = { 1, 2, 3 }, .instance = { 4, 5, 6 },
	.opened = dev_opened, .closed = dev_closed, .packet = dev_packet,
};

static struct fake *fake_new(unsigned n_vps)
{
	struct fake *f = calloc(1, sizeof(*f));
	cr_assert_eq(gmem_init(&f->mem, RAM), 0);
	struct vmbus_transport t = { fake_post, fake_signal, fake_kick, n_vps };
	f->bus = vmbus_new(&f->mem, &t, f);
	cr_assert(f->bus);
	f->relid = vmbus_add_device(f->bus, &dev_ops, f);
	cr_assert_eq(f->relid, 1);
	return f;
}

static void fake_free(struct fake *f)
{
	vmbus_free(f->bus);
	gmem_destroy(&f->mem);
	free(f);
}

static uint32_t u32at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static int post(struct fake *f, const uint8_t *m, unsigned len)
{
	return vmbus_post_message(f->bus, VMBUS_MESSAGE_CONNECTION_ID, 1, m, len);
}

static int initiate(struct fake *f, uint32_t version)
{
	uint8_t m[40] = { 0 };
	put32(m, 14);
	put32(m + 8, version);
	return post(f, m, sizeof(m));
}

/* The last message the host sent: its type. */
static uint32_t last_type(struct fake *f)
{
	cr_assert_gt(f->n_msgs, 0);
	return u32at(f->msgs[f->n_msgs - 1]);
}

static void gpadl(struct fake *f, uint32_t handle, uint64_t first_pfn, unsigned pages)
{
	/* Header with 2 pfns, the rest in one body message (Linux splits
	 * the same way when the list does not fit). */
	uint8_t m[240] = { 0 };
	put32(m, 8);
	put32(m + 8, (uint32_t)f->relid);
	put32(m + 12, handle);
	put16(m + 16, (uint16_t)(8 + 8 * pages));
	put16(m + 18, 1);
	put32(m + 20, pages * PAGE);
	for (unsigned i = 0; i < 2; i++)
		put64(m + 28 + 8 * i, first_pfn + i);
	cr_assert_eq(post(f, m, 28 + 16), 0);
	uint8_t b[240] = { 0 };
	put32(b, 9);
	put32(b + 12, handle);
	for (unsigned i = 2; i < pages; i++)
		put64(b + 16 + 8 * (i - 2), first_pfn + i);
	cr_assert_eq(post(f, b, 16 + 8 * (pages - 2)), 0);
}

static void open_channel(struct fake *f, uint32_t handle, uint32_t downstream, uint32_t vp)
{
	uint8_t m[148] = { 0 };
	put32(m, 5);
	put32(m + 8, (uint32_t)f->relid);
	put32(m + 12, 77);
	put32(m + 16, handle);
	put32(m + 20, vp);
	put32(m + 24, downstream);
	cr_assert_eq(post(f, m, sizeof(m)), 0);
}

/* Connected, the GPADL made and the channel open on VP 1. */
static struct fake *opened(void)
{
	struct fake *f = fake_new(2);
	initiate(f, 0x40000);
	gpadl(f, GPADL, RING_GPA / PAGE, RING_PAGES);
	cr_assert_eq(last_type(f), 10, "GPADL_CREATED");
	open_channel(f, GPADL, DOWNSTREAM, 1);
	cr_assert_eq(last_type(f), 6, "OPENCHANNEL_RESULT");
	cr_assert_eq(u32at(f->msgs[f->n_msgs - 1] + 16), 0, "status");
	cr_assert(f->open);
	return f;
}

static uint8_t *gpa(struct fake *f, uint64_t a) { return gmem_ptr(&f->mem, a, 1); }
#define OUT_HDR (RING_GPA)                          /* guest-to-host ring header */
#define OUT_DATA (RING_GPA + PAGE)
#define IN_HDR (RING_GPA + DOWNSTREAM * PAGE)       /* host-to-guest ring header */
#define IN_DATA (IN_HDR + PAGE)

/* The guest's side: one in-band packet into its outbound ring at the
 * write index, then the index moved on. */
static void guest_write(struct fake *f, const void *data, unsigned len, uint64_t trans)
{
	uint32_t w = u32at(gpa(f, OUT_HDR)), padded = (len + 7) & ~7u;
	uint8_t *p = gpa(f, OUT_DATA + w);
	put16(p, 6);
	put16(p + 2, 2);
	put16(p + 4, (uint16_t)((16 + padded) / 8));
	put64(p + 8, trans);
	memcpy(p + 16, data, len);
	put64(p + 16 + padded, (uint64_t)w << 32);
	put32(gpa(f, OUT_HDR), w + 16 + padded + 8);
}

Test(vmbus, version_handshake_and_offers)
{
	struct fake *f = fake_new(1);
	uint8_t req[8] = { 3 };
	/* Before INITIATE_CONTACT nothing is answered. */
	cr_assert_eq(post(f, req, 8), 0);
	cr_assert_eq(f->n_msgs, 0);
	/* Linux tries the newest first: 5.x is refused, 4.0 accepted. */
	initiate(f, 0x50003);
	cr_assert_eq(last_type(f), 15);
	cr_assert_eq(f->msgs[0][8], 0, "5.3 not supported");
	cr_assert_not(vmbus_connected(f->bus));
	initiate(f, 0x40000);
	cr_assert_eq(f->msgs[1][8], 1, "4.0 supported");
	cr_assert_eq(u32at(f->msgs[1] + 12), VMBUS_MESSAGE_CONNECTION_ID);
	cr_assert_eq(vmbus_version(f->bus), 0x40000);
	cr_assert_eq(post(f, req, 8), 0);
	cr_assert_eq(f->n_msgs, 4, "one offer and ALLOFFERS_DELIVERED");
	const uint8_t *offer = f->msgs[2];
	cr_assert_eq(u32at(offer), 1);
	cr_assert_eq(f->lens[2], 196, "struct vmbus_channel_offer_channel");
	cr_assert_eq(memcmp(offer + 8, dev_ops.type, 16), 0);
	cr_assert_eq(memcmp(offer + 24, dev_ops.instance, 16), 0);
	cr_assert_eq(u32at(offer + 184), 1, "relid");
	cr_assert_eq(offer[189] & 1, 0, "no monitor page");
	cr_assert_eq(u32at(offer + 192), VMBUS_CHANNEL_CONNECTION_BASE + 1);
	cr_assert_eq(u32at(f->msgs[3]), 4);
	/* Posts elsewhere are refused by connection id, as Hyper-V does. */
	cr_assert_eq(vmbus_post_message(f->bus, 9, 1, req, 8), VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	cr_assert_eq(vmbus_post_message(f->bus, 1, 1, req, 241), VMBUS_HV_STATUS_INVALID_PARAMETER);
	cr_assert_eq(vmbus_signal_event(f->bus, 5, 0), VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	fake_free(f);
}

Test(vmbus, packets_both_ways)
{
	struct fake *f = opened();
	/* Guest to host: the device gets the payload, the read index moves. */
	guest_write(f, "hello, host", 11, 42);
	cr_assert_eq(vmbus_signal_event(f->bus, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0), 0);
	cr_assert_eq(f->packets, 1);
	cr_assert_eq(f->trans, 42);
	cr_assert_geq(f->pkt_len, 11);
	cr_assert_eq(memcmp(f->pkt, "hello, host", 11), 0);
	cr_assert_eq(u32at(gpa(f, OUT_HDR + 4)), u32at(gpa(f, OUT_HDR)));
	/* Host to guest: descriptor, data, trailer, write index; the guest's
	 * channel flag on its VP. */
	struct vmbus_channel *ch = vmbus_channel_of(f->bus, f->relid);
	cr_assert(ch);
	cr_assert_eq(vmbus_channel_send(ch, "hi", 2, 7), 0);
	const uint8_t *p = gpa(f, IN_DATA);
	cr_assert_eq(p[0], 6);
	cr_assert_eq(p[2], 2);
	cr_assert_eq(p[4], 3, "16 + 8 bytes");
	cr_assert_eq(p[8], 7);
	cr_assert_eq(memcmp(p + 16, "hi", 2), 0);
	cr_assert_eq(u32at(gpa(f, IN_HDR)), 32);
	cr_assert_eq(f->signals, 1);
	cr_assert_eq(f->last_flag, 1);
	cr_assert_eq(f->last_vp, 1);
	/* Interrupts masked by the guest: no signal. */
	put32(gpa(f, IN_HDR + 8), 1);
	cr_assert_eq(vmbus_channel_send(ch, "hi", 2, 8), 0);
	cr_assert_eq(f->signals, 1);
	/* A full ring refuses; nothing is written. */
	static uint8_t big[4096];
	int rc = 0;
	for (unsigned i = 0; i < 4 && rc == 0; i++)
		rc = vmbus_channel_send(ch, big, sizeof(big), 9);
	cr_assert_eq(rc, -ENOSPC);
	fake_free(f);
}

Test(vmbus, messages_wait_for_the_slot)
{
	struct fake *f = fake_new(1);
	f->post_rc = -EAGAIN;
	initiate(f, 0x40000);
	uint8_t req[8] = { 3 };
	post(f, req, 8);
	cr_assert_eq(f->n_msgs, 0);
	f->post_rc = 0;
	vmbus_slot_freed(f->bus);
	cr_assert_eq(f->n_msgs, 3, "version response, offer, all delivered, in order");
	cr_assert_eq(u32at(f->msgs[0]), 15);
	cr_assert_eq(u32at(f->msgs[1]), 1);
	cr_assert_eq(u32at(f->msgs[2]), 4);
	fake_free(f);
}

Test(vmbus, malformed_rings_close_the_channel)
{
	struct fake *f = opened();
	/* A write index past the ring. */
	put32(gpa(f, OUT_HDR), 3 * PAGE + 8);
	vmbus_signal_event(f->bus, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0);
	cr_assert_not(f->open);
	cr_assert_eq(f->closed, 1);
	struct vmbus_stats st;
	vmbus_get_stats(f->bus, &st);
	cr_assert_eq(st.bad, 1);
	cr_assert_null(vmbus_channel_of(f->bus, f->relid));
	fake_free(f);

	/* A descriptor whose data offset lies past its length. */
	f = opened();
	guest_write(f, "x", 1, 1);
	gpa(f, OUT_DATA)[2] = 9;
	vmbus_signal_event(f->bus, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0);
	cr_assert_not(f->open);
	cr_assert_eq(f->packets, 0);
	fake_free(f);

	/* A packet the device finds malformed. */
	f = opened();
	f->packet_rc = -EINVAL;
	guest_write(f, "x", 1, 1);
	vmbus_signal_event(f->bus, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0);
	cr_assert_not(f->open);
	fake_free(f);

	/* A host ring index the guest broke: the send fails, the channel closes. */
	f = opened();
	put32(gpa(f, IN_HDR + 4), 5);
	cr_assert_lt(vmbus_channel_send(vmbus_channel_of(f->bus, f->relid), "x", 1, 1), 0);
	cr_assert_not(f->open);
	fake_free(f);
}

Test(vmbus, bad_gpadls_and_opens_are_refused)
{
	struct fake *f = fake_new(1);
	initiate(f, 0x40000);
	/* Pages outside RAM: created (the host keeps page numbers), but no
	 * channel opens on them. */
	gpadl(f, 5, (RAM / PAGE) - 2, RING_PAGES);
	cr_assert_eq(last_type(f), 10);
	open_channel(f, 5, DOWNSTREAM, 0);
	cr_assert_neq(u32at(f->msgs[f->n_msgs - 1] + 16), 0);
	cr_assert_not(f->open);
	/* A ring offset leaving no room for the host's ring, an unknown
	 * GPADL, a VP that does not exist. */
	gpadl(f, 6, RING_GPA / PAGE, RING_PAGES);
	open_channel(f, 6, RING_PAGES - 1, 0);
	cr_assert_neq(u32at(f->msgs[f->n_msgs - 1] + 16), 0);
	open_channel(f, 99, DOWNSTREAM, 0);
	cr_assert_neq(u32at(f->msgs[f->n_msgs - 1] + 16), 0);
	open_channel(f, 6, DOWNSTREAM, 3);
	cr_assert_neq(u32at(f->msgs[f->n_msgs - 1] + 16), 0);
	cr_assert_not(f->open);
	/* A header claiming a huge page list, or two ranges: refused. */
	uint8_t m[240] = { 0 };
	put32(m, 8);
	put32(m + 12, 7);
	put16(m + 16, 0xfff8);
	put16(m + 18, 1);
	post(f, m, 44);
	cr_assert_eq(last_type(f), 10);
	cr_assert_neq(u32at(f->msgs[f->n_msgs - 1] + 16), 0);
	put16(m + 16, 24);
	put16(m + 18, 2);
	post(f, m, 44);
	cr_assert_neq(u32at(f->msgs[f->n_msgs - 1] + 16), 0);
	/* The GPADL made before is still torn down on request. */
	uint8_t td[16] = { 11 };
	put32(td + 12, 6);
	post(f, td, 16);
	cr_assert_eq(last_type(f), 12);
	cr_assert_eq(u32at(f->msgs[f->n_msgs - 1] + 8), 6);
	fake_free(f);
}

Test(vmbus, short_and_random_messages_never_crash)
{
	struct fake *f = opened();
	/* Every type, every length below its layout. */
	for (uint32_t type = 0; type < 30; type++) {
		for (unsigned len = 0; len < 40; len++) {
			uint8_t m[240] = { 0 };
			put32(m, type);
			put32(m + 8, 1);
			if (type == 14 || type == 16)
				continue;   /* a valid reconnect or unload would reset the bus */
			f->n_msgs = 0;
			vmbus_post_message(f->bus, 1, 1, m, len);
		}
	}
	/* Random messages and random ring contents. */
	srand(12);
	for (unsigned i = 0; i < 20000; i++) {
		uint8_t m[240];
		for (unsigned k = 0; k < sizeof(m); k++)
			m[k] = (uint8_t)rand();
		put32(m, (uint32_t)(rand() % 20));
		f->n_msgs = 0;
		vmbus_post_message(f->bus, 1, 1, m, (uint32_t)(rand() % 241));
		if (i % 16 == 0) {
			uint8_t *ring = gpa(f, RING_GPA);
			for (unsigned k = 0; k < 64; k++)
				ring[rand() % (RING_PAGES * PAGE)] = (uint8_t)rand();
			vmbus_signal_event(f->bus, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0);
		}
	}
	fake_free(f);
}

Test(vmbus, snapshot_keeps_the_open_channel)
{
	struct fake *f = opened();
	static uint8_t blob[65536];
	int64_t n = vmbus_save(f->bus, blob, sizeof(blob));
	cr_assert_gt(n, 0);
	/* A blob cut short, or with a trailing byte, changes nothing. */
	cr_assert_eq(vmbus_load(f->bus, blob, (size_t)n - 3), -EINVAL);
	cr_assert(f->open);
	/* Loaded into a fresh bus: connected, the channel open again
	 * (opened() runs), its rings where they were. */
	struct fake *g = fake_new(2);
	memcpy(gmem_ptr(&g->mem, 0, RAM), gmem_ptr(&f->mem, 0, RAM), RAM);
	cr_assert_eq(vmbus_load(g->bus, blob, (size_t)n), 0, "%s", err_msg());
	cr_assert(vmbus_connected(g->bus));
	cr_assert(g->open);
	guest_write(g, "after", 5, 3);
	vmbus_signal_event(g->bus, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0);
	cr_assert_eq(g->packets, 1);
	cr_assert_eq(memcmp(g->pkt, "after", 5), 0);
	/* Saved with another VP count than the channel's target: refused. */
	struct fake *h = fake_new(1);
	cr_assert_eq(vmbus_load(h->bus, blob, (size_t)n), -EINVAL);
	cr_assert_not(h->open);
	fake_free(h);
	fake_free(g);
	fake_free(f);
}

Test(vmbus, a_wake_kicks_the_vps_of_open_channels_and_messages)
{
	struct fake *f = opened();
	vmbus_kick(f->bus);
	cr_assert_eq(f->kicks, 3, "VP 0 (messages) and VP 1 (the channel)");
	/* Unread host packets get their flag again; none when all is read
	 * or the guest masked the interrupt. */
	unsigned sig = f->signals;
	vmbus_renotify(f->bus);
	cr_assert_eq(f->signals, sig);
	cr_assert_eq(vmbus_channel_send(vmbus_channel_of(f->bus, f->relid), "x", 1, 1), 0);
	sig = f->signals;
	vmbus_renotify(f->bus);
	cr_assert_eq(f->signals, sig + 1);
	cr_assert_eq(f->last_flag, 1);
	put32(gpa(f, IN_HDR + 8), 1);
	vmbus_renotify(f->bus);
	cr_assert_eq(f->signals, sig + 1);
	fake_free(f);
}

Test(vmbus, unload_closes_everything)
{
	struct fake *f = opened();
	uint8_t m[8] = { 16 };
	post(f, m, 8);
	cr_assert_eq(last_type(f), 17);
	cr_assert_not(f->open);
	cr_assert_not(vmbus_connected(f->bus));
	fake_free(f);
}

/* The guest's answer in the heartbeat channel's ring (hv_utils'
 * icmsg_hdr: type at 4, status at 12, flags at 17 after the 8-byte pipe
 * header), then the host told. */
#define IC_RELID 3           /* after the test device and the shutdown IC */
#define IC_MSG_HDR (8 + 20)
static void ic_answer(struct fake *f, uint16_t type, const uint8_t *data, unsigned dlen, uint64_t trans)
{
	uint8_t m[IC_MSG_HDR + 40] = { 0 };
	cr_assert_leq(dlen, 40);
	put32(m, 1);
	put32(m + 4, 20 + dlen);
	put16(m + 8, 3);                /* framework 3.0 */
	put16(m + 8 + 4, type);
	put16(m + 8 + 6, 3);            /* service 3.0 */
	put16(m + 8 + 10, (uint16_t)dlen);
	m[8 + 17] = 1 | 4;              /* ICMSG_FLAG_TRANSACTION | RESPONSE */
	memcpy(m + IC_MSG_HDR, data, dlen);
	guest_write(f, m, IC_MSG_HDR + dlen, trans);
	cr_assert_eq(vmbus_signal_event(f->bus, VMBUS_CHANNEL_CONNECTION_BASE + IC_RELID, 0), 0);
}

/* The type of the host's packet at offset off of the channel's
 * host-to-guest ring; off moves to the next packet. */
static uint16_t ic_sent_type(struct fake *f, uint32_t *off)
{
	const uint8_t *p = gpa(f, IN_DATA + *off);
	cr_assert_lt(*off, u32at(gpa(f, IN_HDR)), "no packet there");
	*off += p[4] * 8u + 8u;         /* descriptor and data, then the trailer */
	return (uint16_t)(p[16 + 8 + 4] | p[16 + 8 + 5] << 8);
}

/* A heartbeat answer that reaches the host before the guest's answer to
 * the version offer (after a restore: one the guest owed at the save,
 * while the restored channel negotiates again) is stale, not malformed:
 * dropped, the channel kept open, and the negotiation then starts the
 * heartbeats, which the guest answers. */
Test(vmbus, ic_answer_before_the_negotiation_is_dropped)
{
	struct fake *f = fake_new(2);
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct timer_service *ts = timer_service_new(&lock);
	cr_assert(ts);
	struct vmbus_ic *ic = vmbus_ic_new(f->bus, ts, NULL, NULL);
	cr_assert(ic, "%s", err_msg());
	initiate(f, 0x40000);
	f->relid = IC_RELID;
	gpadl(f, GPADL, RING_GPA / PAGE, RING_PAGES);
	open_channel(f, GPADL, DOWNSTREAM, 1);
	cr_assert_eq(u32at(f->msgs[f->n_msgs - 1] + 16), 0, "opened");
	uint32_t off = 0;
	cr_assert_eq(ic_sent_type(f, &off), 0, "the version offer (ICMSG_NEGOTIATE) first");

	uint8_t seq[40] = { 9 };
	ic_answer(f, 1, seq, sizeof(seq), 1);
	struct vmbus_ic_info info;
	vmbus_ic_get_info(ic, &info);
	cr_assert(info.heartbeat_open, "a stale answer closed the channel");
	cr_assert_eq(info.heartbeats, 0, "the stale answer was taken for a heartbeat");

	/* icmsg_negotiate: counts, then the chosen framework and service 3.0. */
	uint8_t nego[16] = { 1, 0, 1, 0 };
	put16(nego + 8, 3);
	put16(nego + 12, 3);
	ic_answer(f, 0, nego, sizeof(nego), 2);
	cr_assert_eq(ic_sent_type(f, &off), 1, "a heartbeat (ICMSG_HEARTBEAT) after the negotiation");
	uint8_t seq2[40] = { 10 };
	ic_answer(f, 1, seq2, sizeof(seq2), 3);
	vmbus_ic_get_info(ic, &info);
	cr_assert(info.heartbeat_open);
	cr_assert_eq(info.heartbeats, 1);
	cr_assert_eq(info.heartbeat, 10);

	fake_free(f);
	vmbus_ic_free(ic);
	timer_service_free(ts);
}
