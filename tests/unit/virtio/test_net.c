/* virtio-net (src/virtio/net.c) on a fake backend, driven through the
 * transport with hand-written rings: a transmitted frame reaches the
 * backend without its header and with the partial checksum the driver
 * left completed; a received frame lands after a header that counts its
 * buffers (MRG_RXBUF), spread over two when one is too small; the frames
 * of one notification end with one commit to the backend (compounding),
 * before the driver sees them used; without
 * buffers the frame is kept (no room), before DRIVER_OK it is dropped;
 * the configuration holds the backend's MAC and link up. */
#include "hw/netdev.h"
#include "machine/bus.h"
#include "machine/timer.h"
#include "hw/device.h"
#include "hw/pci.h"
#include "util/error.h"
#include "virtio/net.h"
#include "virtio/virtio_pci.h"

#include "fake_board.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Queue 0 (receive) and 1 (transmit) rings, and buffers. */
#define RX_DESC 0x1000u
#define RX_AVAIL 0x2000u
#define RX_USED 0x3000u
#define TX_DESC 0x4000u
#define TX_AVAIL 0x5000u
#define TX_USED 0x6000u
#define TX_BUF 0x10000u
#define RX_BUF 0x20000u

static void *dev;
static struct virtio_board board;
static struct virtio_net_conf conf;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* With batching (compounding): the VM clock, which the test moves. */
static struct timer_service *ts;
static uint64_t now_ns;
static uint64_t fake_clock(void *opaque) { (void)opaque; return now_ns; }

/* Whether the fake backend asks a batching device to wait for more
 * frames (a tap does, user networking does not). */
static bool backend_wait_pays;

static void use_batching(void)
{
	backend_wait_pays = true;
	ts = timer_service_new(&lock);
	now_ns = 1000;
	timer_service_set_clock(ts, fake_clock, NULL);
}

/* The fake backend: records what was sent, counts wakes and commits. */
static struct netdev nd;
static uint8_t sent[2048];
static size_t sent_len;
static unsigned n_sent, n_wakes, n_commits;
static unsigned sent_at_commit;   /* frames sent when the last commit came */
static uint16_t used_at_commit;   /* the transmit used ring's index then */

static void fake_send(struct netdev *d, const uint8_t *frame, size_t len)
{
	(void)d;
	memcpy(sent, frame, len < sizeof(sent) ? len : sizeof(sent));
	sent_len = len;
	n_sent++;
}

static void fake_commit(struct netdev *d)
{
	(void)d;
	n_commits++;
	sent_at_commit = n_sent;
	used_at_commit = split_used_idx(TX_USED);
}

static void fake_wake(struct netdev *d) { (void)d; n_wakes++; }
static void fake_destroy(struct netdev *d) { netdev_fini(d); }
static const struct netdev_ops fake_ops = { .send = fake_send, .commit = fake_commit, .wake = fake_wake,
					    .destroy = fake_destroy };


/* Creates the device; with driver_ok, initialises it as a driver would
 * (section 3.1.1) accepting VERSION_1, MAC, CSUM and MRG_RXBUF, and the
 * features of extra. */
static void start_with(bool driver_ok, uint32_t extra)
{
	fake_board_start();
	memset(&nd, 0, sizeof(nd));
	netdev_init(&nd, &fake_ops, "fake");
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
	memcpy(nd.mac, mac, 6);
	nd.tx_wait_pays = backend_wait_pays;
	n_sent = n_wakes = n_commits = sent_at_commit = 0;
	used_at_commit = 0;
	conf = (struct virtio_net_conf){ .backend = &nd, .batch = ts != NULL };
	board = (struct virtio_board){ .dma = fake_dma, .pci = host, .slot = 3, .bar0 = BAR, .conf = &conf };
	struct dev_ctx ctx = { .name = "virtio-net.0", .pio = &pio, .mmio = &mmio, .arg = &board, .lock = &lock,
			       .clock = ts };
	dev = virtio_net_device.create(&ctx);
	cr_assert(dev, "%s", err_msg());
	if (!driver_ok)
		return;
	fake_driver_init(1u << 0 | 1u << 5 | 1u << 15 | extra);   /* CSUM, MAC, MRG_RXBUF */
	fake_driver_queue(0, 16, RX_DESC, RX_AVAIL, RX_USED);
	fake_driver_queue(1, 16, TX_DESC, TX_AVAIL, TX_USED);
	fake_driver_ok();
}

static void start(bool driver_ok) { start_with(driver_ok, 0); }

static void stop(void)
{
	virtio_net_detach(dev);
	virtio_net_device.destroy(dev);
	netdev_fini(&nd);
	if (ts)
		timer_service_free(ts);
	ts = NULL;
	backend_wait_pays = false;
	fake_board_stop();
}

static void desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	ring_desc(table, i, addr, len, flags, next);
}

static void avail(uint64_t ring, uint16_t head) { split_offer(ring, 16, head); }
static uint16_t used_idx(uint64_t ring) { return split_used_idx(ring); }
static uint32_t used_len(uint64_t ring, unsigned i) { return split_used_len(ring, 16, i); }

/* An IPv4 UDP frame whose checksum the driver left partial: the
 * pseudo-header sum at the checksum field, csum_start at the UDP header. */
static size_t udp_frame(uint8_t *f)
{
	static const uint8_t eth_ip[34] = {
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc, 0x08, 0x00,
		0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2,
	};
	memcpy(f, eth_ip, sizeof(eth_ip));
	uint8_t *u = f + 34;
	u[0] = 0x30; u[1] = 0x39; u[2] = 0x00; u[3] = 0x35;   /* ports 12345 -> 53 */
	u[4] = 0; u[5] = 12;                                /* length */
	memcpy(u + 8, "ping", 4);
	/* Pseudo-header: 10.0.2.15 + 10.0.2.2 + proto 17 + length 12. */
	uint32_t sum = 0x0a00 + 0x020f + 0x0a00 + 0x0202 + 17 + 12;
	u[6] = (uint8_t)(sum >> 8);
	u[7] = (uint8_t)sum;
	return 34 + 12;
}

static uint16_t fold(const uint8_t *p, size_t len)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

Test(net, config_holds_the_mac_and_link_up, .fini = stop)
{
	start(true);
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(rd(0x2000 + i, 1), nd.mac[i]);
	cr_assert_eq(rd(0x2006, 2), 1, "VIRTIO_NET_S_LINK_UP");
}

Test(net, transmit_strips_the_header_and_completes_the_checksum, .fini = stop)
{
	start(true);
	uint8_t *hdr = ram + TX_BUF;
	memset(hdr, 0, 12);
	hdr[0] = 1;                        /* NEEDS_CSUM */
	hdr[6] = 34; hdr[7] = 0;           /* csum_start: the UDP header */
	hdr[8] = 6; hdr[9] = 0;            /* csum_offset: its checksum */
	size_t len = udp_frame(ram + TX_BUF + 0x100);
	/* Header and frame in two descriptors, as Linux sends them. */
	desc(TX_DESC, 0, TX_BUF, 12, 1, 1);
	desc(TX_DESC, 1, TX_BUF + 0x100, (uint32_t)len, 0, 0);
	avail(TX_AVAIL, 0);
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_sent, 1);
	cr_assert_eq(sent_len, len, "the backend got %zu bytes, not the frame alone", sent_len);
	cr_assert_eq(used_idx(TX_USED), 1);
	/* The UDP checksum over pseudo-header + datagram now verifies. */
	uint8_t pseudo[12] = { 10, 0, 2, 15, 10, 0, 2, 2, 0, 17, 0, 12 };
	uint32_t s = (uint32_t)fold(pseudo, 12) + fold(sent + 34, 12);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	cr_assert_eq(s, 0xffff, "checksum %02x%02x does not verify", sent[40], sent[41]);
}

Test(net, a_notification_s_frames_end_with_one_commit, .fini = stop)
{
	start(true);
	/* Three frames (header and frame in one descriptor each), one
	 * notification. */
	for (unsigned i = 0; i < 3; i++) {
		memset(ram + TX_BUF + 0x100 * i, 0, 12);
		size_t len = udp_frame(ram + TX_BUF + 0x100 * i + 12);
		desc(TX_DESC, i, TX_BUF + 0x100 * i, (uint32_t)(12 + len), 0, 0);
		avail(TX_AVAIL, (uint16_t)i);
	}
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_sent, 3);
	cr_assert_eq(n_commits, 1, "%u commits for one notification", n_commits);
	cr_assert_eq(sent_at_commit, 3, "the commit came before the last frame");
	cr_assert_eq(used_idx(TX_USED), 3);
	/* Each was on the used ring when the commit came (a backend that
	 * holds frames has copied them), so the commit sees the whole batch. */
	cr_assert_eq(used_at_commit, 3);
	/* A notification with nothing to send commits nothing. */
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_commits, 1, "a commit without frames");
}

/* With batching a notification is taken up a moment later, with the
 * driver's notifications off meanwhile: the frames queued in between go
 * in the same batch. */
static void queue_frame(unsigned i)
{
	memset(ram + TX_BUF + 0x100 * i, 0, 12);
	size_t len = udp_frame(ram + TX_BUF + 0x100 * i + 12);
	desc(TX_DESC, i, TX_BUF + 0x100 * i, (uint32_t)(12 + len), 0, 0);
	avail(TX_AVAIL, (uint16_t)i);
}

Test(net, batched_transmit_waits_for_the_frames_queued_after_the_notification, .fini = stop)
{
	use_batching();
	start(true);
	queue_frame(0);
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_sent, 0, "sent at once");
	/* The driver queues two more.  This one negotiated no EVENT_IDX, so
	 * nothing tells it not to notify (with it, the avail_event left
	 * behind does: section 2.7.10): its notifications change nothing. */
	queue_frame(1);
	wr(0x3000 + 4, 2, 1);
	queue_frame(2);
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_sent, 0, "sent at a later notification");
	now_ns += 99999;
	pthread_mutex_lock(&lock);
	timer_service_poll(ts);
	pthread_mutex_unlock(&lock);
	cr_assert_eq(n_sent, 0, "sent before the delay");
	now_ns += 1;
	pthread_mutex_lock(&lock);
	timer_service_poll(ts);
	pthread_mutex_unlock(&lock);
	cr_assert_eq(n_sent, 3);
	cr_assert_eq(n_commits, 1, "three frames, %u commits", n_commits);
	cr_assert_eq(used_idx(TX_USED), 3);
	/* A reset drops a transmit that was waiting. */
	queue_frame(3);
	wr(0x3000 + 4, 2, 1);
	wr(0x14, 1, 0);
	now_ns += 200000;
	pthread_mutex_lock(&lock);
	timer_service_poll(ts);
	pthread_mutex_unlock(&lock);
	cr_assert_eq(n_sent, 3, "a reset device transmitted");
}

/* A backend that takes frames in-process (user networking) gains
 * nothing from the wait: batching or not, the notification's frames go
 * at once, with one commit. */
Test(net, batched_transmit_on_an_in_process_backend_goes_at_once, .fini = stop)
{
	use_batching();
	backend_wait_pays = false;
	start(true);
	queue_frame(0);
	queue_frame(1);
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_sent, 2, "the transmit waited");
	cr_assert_eq(n_commits, 1);
	cr_assert_eq(used_idx(TX_USED), 2);
	pthread_mutex_lock(&lock);
	cr_assert_eq(timer_service_poll(ts), 0, "a transmit timer armed");
	pthread_mutex_unlock(&lock);
}

/* Pause and save: a transmit waiting for its delay is done at once, and
 * nothing is left to fire afterwards. */
Test(net, quiesce_does_a_waiting_transmit_now, .fini = stop)
{
	use_batching();
	start(true);
	queue_frame(0);
	queue_frame(1);
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_sent, 0);
	pthread_mutex_lock(&lock);
	virtio_net_quiesce(dev);
	pthread_mutex_unlock(&lock);
	cr_assert_eq(n_sent, 2, "quiesce left the frames in the ring");
	cr_assert_eq(n_commits, 1);
	cr_assert_eq(used_idx(TX_USED), 2);
	now_ns += 1000000;
	pthread_mutex_lock(&lock);
	cr_assert_eq(timer_service_poll(ts), 0, "a transmit timer still armed after quiesce");
	pthread_mutex_unlock(&lock);
}

Test(net, transmit_checksum_outside_the_frame_is_refused, .fini = stop)
{
	start(true);
	memset(ram + TX_BUF, 0, 12);
	ram[TX_BUF] = 1;
	ram[TX_BUF + 6] = 0xf0;            /* csum_start 240 of a 46-byte frame */
	size_t len = udp_frame(ram + TX_BUF + 12);
	desc(TX_DESC, 0, TX_BUF, (uint32_t)(12 + len), 0, 0);
	avail(TX_AVAIL, 0);
	wr(0x3000 + 4, 2, 1);
	cr_assert_eq(n_sent, 0, "a frame with a checksum outside it went out");
	cr_assert_eq(n_commits, 0, "a commit without frames");
	cr_assert_eq(used_idx(TX_USED), 1, "the buffer is not given back");
}

Test(net, receive_spreads_a_frame_over_merged_buffers, .fini = stop)
{
	start(true);
	uint8_t frame[200];
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	/* No buffer: the backend keeps the frame. */
	cr_assert_eq(netdev_deliver(&nd, frame, sizeof(frame)), NETDEV_RX_NO_ROOM);
	/* Two 128-byte buffers: 12 header + 116, then 84 bytes. */
	desc(RX_DESC, 0, RX_BUF, 128, 2, 0);
	desc(RX_DESC, 1, RX_BUF + 0x100, 128, 2, 0);
	avail(RX_AVAIL, 0);
	avail(RX_AVAIL, 1);
	unsigned wakes = n_wakes;
	wr(0x3000, 2, 0);
	cr_assert_gt(n_wakes, wakes, "new receive buffers do not wake the backend");
	cr_assert_eq(netdev_deliver(&nd, frame, sizeof(frame)), NETDEV_RX_DONE);
	cr_assert_eq(used_idx(RX_USED), 2);
	cr_assert_eq(used_len(RX_USED, 0), 128);
	cr_assert_eq(used_len(RX_USED, 1), 12 + sizeof(frame) - 128);
	cr_assert_eq(ram[RX_BUF + 10], 2, "num_buffers");
	cr_assert_eq(ram[RX_BUF], 0, "flags: no partial checksum, not vouched for");
	cr_assert_arr_eq(ram + RX_BUF + 12, frame, 116);
	cr_assert_arr_eq(ram + RX_BUF + 0x100, frame + 116, sizeof(frame) - 116);
}

/* The driver's side of section 2.7.10 with VIRTIO_F_EVENT_IDX: having
 * moved avail->idx from old to new, it notifies when avail_event (after
 * the used ring's entries) is one of the indices it passed. */
static bool driver_would_notify(uint16_t old, uint16_t new)
{
	uint16_t event;
	memcpy(&event, ram + RX_USED + 4 + 8 * 16, 2);
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

/* A frame that needs more merged buffers than are posted waits for the
 * driver's next one: the device must ask to be notified of that buffer,
 * not of the first of the frame's, which the driver has passed already
 * (it would never notify again, and the frame and all after it waited
 * for some unrelated wake-up of the backend). */
Test(net, receive_short_of_merged_buffers_asks_for_the_next_one, .fini = stop)
{
	start_with(true, 1u << 29);   /* VIRTIO_F_EVENT_IDX */
	uint8_t frame[200];
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 5);
	desc(RX_DESC, 0, RX_BUF, 128, 2, 0);
	avail(RX_AVAIL, 0);
	cr_assert_eq(netdev_deliver(&nd, frame, sizeof(frame)), NETDEV_RX_NO_ROOM);
	cr_assert_eq(used_idx(RX_USED), 0, "a part of the frame was delivered");
	/* The driver posts a second buffer: avail->idx 1 -> 2. */
	desc(RX_DESC, 1, RX_BUF + 0x100, 128, 2, 0);
	avail(RX_AVAIL, 1);
	cr_assert(driver_would_notify(1, 2), "the driver is not asked to notify of the buffer the frame waits for");
	unsigned wakes = n_wakes;
	wr(0x3000, 2, 0);
	cr_assert_gt(n_wakes, wakes);
	cr_assert_eq(netdev_deliver(&nd, frame, sizeof(frame)), NETDEV_RX_DONE);
	cr_assert_eq(used_idx(RX_USED), 2);
	cr_assert_eq(ram[RX_BUF + 10], 2, "num_buffers");
	cr_assert_arr_eq(ram + RX_BUF + 12, frame, 116);
	cr_assert_arr_eq(ram + RX_BUF + 0x100, frame + 116, sizeof(frame) - 116);
	/* Out of buffers between frames: the next one the driver posts. */
	cr_assert_eq(netdev_deliver(&nd, frame, 64), NETDEV_RX_NO_ROOM);
	desc(RX_DESC, 2, RX_BUF + 0x200, 128, 2, 0);
	avail(RX_AVAIL, 2);
	cr_assert(driver_would_notify(2, 3));
}

Test(net, receive_before_driver_ok_drops, .fini = stop)
{
	start(false);
	uint8_t frame[64] = { 0 };
	cr_assert_eq(netdev_deliver(&nd, frame, sizeof(frame)), NETDEV_RX_DROP);
}

Test(net, held_backend_delivers_nothing, .fini = stop)
{
	start(true);
	desc(RX_DESC, 0, RX_BUF, 2048, 2, 0);
	avail(RX_AVAIL, 0);
	uint8_t frame[64] = { 1 };
	netdev_hold(&nd);
	cr_assert_eq(netdev_deliver(&nd, frame, sizeof(frame)), NETDEV_RX_NO_ROOM);
	cr_assert_eq(used_idx(RX_USED), 0, "a frame reached guest memory while held");
	netdev_release(&nd);
	cr_assert_eq(netdev_deliver(&nd, frame, sizeof(frame)), NETDEV_RX_DONE);
	cr_assert_eq(used_idx(RX_USED), 1);
}
