/* The host side of networking (src/vmm/net*.c): --net parsing and its
 * one-line errors, and the tap backend on a socketpair standing for the
 * tap device (the same read/write/poll path): frames both ways, a frame
 * kept while the frontend has no room and delivered on netdev_wake(),
 * nothing delivered while held, and none after detach; a backend thread's
 * wake-up under a busy signaller. */
#include "hw/netdev.h"
#include "util/error.h"
#include "util/hostcall.h"
#include "vmm/net.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

Test(net_parse, user_with_forwards_and_mac)
{
	struct vm_net_config n;
	cr_assert_eq(net_parse("user,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-:53,mac=52:54:00:01:02:03", &n), 0,
		     "%s", err_msg());
	cr_assert_str_eq(n.type, "user");
	cr_assert_eq(n.n_hostfwd, 2);
	cr_assert(!n.hostfwd[0].udp && n.hostfwd[0].host_port == 8080 && n.hostfwd[0].guest_port == 80 &&
		  n.hostfwd[0].host_addr == 0);
	cr_assert(n.hostfwd[1].udp && n.hostfwd[1].host_addr == 0x7f000001 && n.hostfwd[1].guest_port == 53);
	cr_assert(n.has_mac && n.mac[5] == 3);
	free(n.type);
}

Test(net_parse, tap_needs_a_name)
{
	struct vm_net_config n;
	cr_assert_eq(net_parse("tap,ifname=vtap0", &n), 0, "%s", err_msg());
	cr_assert_str_eq(n.ifname, "vtap0");
	free(n.type);
	free(n.ifname);
	cr_assert_lt(net_parse("tap", &n), 0);
	cr_assert(strstr(err_msg(), "ifname"), "%s", err_msg());
	free(n.type);
}

Test(net_parse, bad_input_is_named)
{
	static const char *bad[][2] = {
		{ "bridge", "user or tap" },
		{ "user,hostfwd=tcp::0-:80", "hostfwd" },
		{ "user,hostfwd=tcp::80-:99999", "hostfwd" },
		{ "user,hostfwd=sctp::80-:80", "hostfwd" },
		{ "user,hostfwd=tcp::80-10.0.2.15:80", "hostfwd" },
		{ "user,mac=01:00:5e:00:00:01", "multicast" },
		{ "user,mac=52:54:00:12:34", "six hex bytes" },
		{ "user,speed=10", "bad option" },
		{ "user,ifname=x", "tap only" },
		{ "tap,ifname=a-name-longer-than-15", "15 characters" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vm_net_config n;
		cr_assert_lt(net_parse(bad[i][0], &n), 0, "%s accepted", bad[i][0]);
		cr_assert(strstr(err_msg(), bad[i][1]), "%s: %s", bad[i][0], err_msg());
		cr_assert(strncmp(err_msg(), "--net", 5) == 0, "%s", err_msg());
		free(n.type);
		free(n.ifname);
	}
}

/* The frontend: takes frames unless told it has no room. */
static pthread_mutex_t fe_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int got, room;
static uint8_t last[256];
static size_t last_len;

static enum netdev_rx fe_receive(void *opaque, const uint8_t *frame, size_t len)
{
	(void)opaque;
	if (!atomic_load(&room))
		return NETDEV_RX_NO_ROOM;
	memcpy(last, frame, len < sizeof(last) ? len : sizeof(last));
	last_len = len;
	atomic_fetch_add(&got, 1);
	return NETDEV_RX_DONE;
}

static bool wait_got(int n)
{
	for (int i = 0; i < 500; i++) {
		if (atomic_load(&got) >= n)
			return true;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

Test(net_tap, frames_both_ways_with_flow_control_hold_and_detach)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct netdev *nd;
	cr_assert_eq(net_tap_open_fd(sv[0], "tap:test", &nd), 0, "%s", err_msg());
	cr_assert_eq(netdev_start(nd), 0, "%s", err_msg());
	atomic_store(&got, 0);
	atomic_store(&room, 1);
	cr_assert_eq(netdev_attach(nd, fe_receive, NULL, &fe_lock), 0);
	cr_assert_lt(netdev_attach(nd, fe_receive, NULL, &fe_lock), 0, "a second frontend attached");

	/* Guest to host: the frame as it is. */
	netdev_send(nd, (const uint8_t *)"guest-frame", 11);
	char buf[64];
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 11);
	cr_assert_arr_eq(buf, "guest-frame", 11);

	/* Host to guest. */
	cr_assert_eq(write(sv[1], "host-frame-1", 12), 12);
	cr_assert(wait_got(1), "the frame did not arrive");
	cr_assert_eq(last_len, 12);
	cr_assert_arr_eq(last, "host-frame-1", 12);

	/* No room: kept, then delivered once the frontend wakes the backend. */
	atomic_store(&room, 0);
	cr_assert_eq(write(sv[1], "host-frame-2", 12), 12);
	cr_assert(!wait_got(2), "delivered without room");
	atomic_store(&room, 1);
	netdev_wake(nd);
	cr_assert(wait_got(2), "the kept frame was not delivered after the wake");
	cr_assert_arr_eq(last, "host-frame-2", 12);

	/* Held (pause, save): nothing is delivered until released. */
	netdev_hold(nd);
	cr_assert_eq(write(sv[1], "host-frame-3", 12), 12);
	cr_assert(!wait_got(3), "delivered while held");
	netdev_release(nd);
	cr_assert(wait_got(3), "not delivered after the release");

	/* Detached: frames are dropped, the frontend is not called. */
	netdev_detach(nd);
	cr_assert_eq(write(sv[1], "host-frame-4", 12), 12);
	cr_assert(!wait_got(4), "delivered to a detached frontend");
	netdev_free(nd);
	close(sv[1]);
}

/* A backend thread's wake-up (hw/netdev.h) under a signaller that never
 * waits: the thread polls with no timeout, so a signal that leaves the
 * flag set over an empty eventfd (the lost wake-up that stalled a guest's
 * uploads through user networking) leaves it asleep for good, and the
 * last signal, after the stop flag, never reaches it. */
static struct netdev_wakeup stress_wake;
static atomic_bool stress_stop;
static atomic_long stress_rounds;

static void *wakeup_consumer(void *arg)
{
	(void)arg;
	/* Stops at the first wake-up after the stop flag: there is one. */
	for (;;) {
		struct pollfd p = { .fd = stress_wake.fd, .events = POLLIN };
		if (poll(&p, 1, -1) == 1 && (p.revents & POLLIN)) {
			netdev_wakeup_consume(&stress_wake);
			atomic_fetch_add(&stress_rounds, 1);
			if (atomic_load(&stress_stop))
				return NULL;
		}
	}
}

Test(netdev_wakeup, no_signal_is_lost_to_a_busy_signaller, .timeout = 120)
{
	cr_assert_eq(netdev_wakeup_init(&stress_wake), 0, "%s", err_msg());
	for (int run = 0; run < 4; run++) {
		atomic_store(&stress_stop, false);
		atomic_store(&stress_rounds, 0);
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, wakeup_consumer, NULL), 0);
		/* Signals as the thread consumes them, 5000 rounds (or, once
		 * a signal is lost, until the bound). */
		for (long i = 0; i < 20000000 && atomic_load(&stress_rounds) < 5000; i++)
			netdev_wakeup_signal(&stress_wake);
		atomic_store(&stress_stop, true);
		netdev_wakeup_signal(&stress_wake);
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 20;   /* a wake-up takes microseconds; a lost one never comes */
		int rc = pthread_timedjoin_np(t, NULL, &dl);
		if (rc != 0) {
			/* Let the thread go before failing, then say what happened. */
			uint64_t one = 1;
			cr_assert_eq(write(stress_wake.fd, &one, sizeof(one)), 8);
			pthread_join(t, NULL);
			cr_assert_fail("run %d: the last signal was lost (the flag says pending, the eventfd is empty; "
				       "%ld wake-ups before it)", run, atomic_load(&stress_rounds));
		}
		cr_assert_gt(atomic_load(&stress_rounds), 0);
	}
	netdev_wakeup_fini(&stress_wake);
}

/* Compounding (docs/compounding.md "Network") on the tap backend, the
 * socketpair standing for the tap: a batch of frames sent between two
 * commits goes to the host in one io_uring_enter, in order and unchanged,
 * where without batching each is one write(2); what the host queued is
 * read in batches of linked reads and delivered in order, frames the
 * frontend has no room for kept until it wakes the backend. */
static uint8_t seq_frames[64];        /* the first byte of each frame received */
static atomic_int seq_got;

static enum netdev_rx seq_receive(void *opaque, const uint8_t *frame, size_t len)
{
	(void)opaque;
	if (!atomic_load(&room))
		return NETDEV_RX_NO_ROOM;
	int i = atomic_load(&seq_got);
	if (len == 100 && i < 64)
		seq_frames[i] = frame[0];
	atomic_fetch_add(&seq_got, 1);
	return NETDEV_RX_DONE;
}

static bool wait_seq(int n, int ms)
{
	for (int i = 0; i < ms / 10 && atomic_load(&seq_got) < n; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return atomic_load(&seq_got) >= n;
}

/* A tap backend on a socketpair, batching or not; sv[1] is the host's end. */
static struct netdev *batch_tap(bool batch, int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct netdev *nd;
	cr_assert_eq(net_tap_open_fd(sv[0], "tap:test", &nd), 0, "%s", err_msg());
	nd->batch = batch;
	return nd;
}

static void send_numbered(struct netdev *nd, unsigned first, unsigned n, size_t len)
{
	static uint8_t f[65536];
	for (unsigned i = first; i < first + n; i++) {
		memset(f, (int)i, len);
		netdev_send(nd, f, len);
	}
}

/* Reads the host's end until it is empty: the frames' first bytes and
 * lengths. */
static unsigned read_numbered(int fd, uint8_t *first, size_t *len, unsigned max)
{
	static uint8_t f[65536];
	unsigned n = 0;
	for (; n < max; n++) {
		ssize_t r = recv(fd, f, sizeof(f), MSG_DONTWAIT);
		if (r <= 0)
			break;
		first[n] = f[0];
		len[n] = (size_t)r;
		for (ssize_t k = 1; k < r; k++)
			cr_assert_eq(f[k], f[0], "frame %u changed at byte %zd", n, k);
	}
	return n;
}

Test(net_tap_batch, a_batch_of_frames_is_one_submission_in_order)
{
	int sv[2];
	struct netdev *nd = batch_tap(true, sv);
	cr_assert_eq(netdev_start(nd), 0, "%s", err_msg());
	uint64_t sub = host_call_total(HOST_CALL_NET_TX_SUBMIT), wr = host_call_total(HOST_CALL_NET_WRITE);
	send_numbered(nd, 0, 40, 1514);
	/* Held until the commit. */
	uint8_t first[64];
	size_t len[64];
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 0, "a frame went out before the commit");
	netdev_commit(nd);
	cr_assert_eq(host_call_total(HOST_CALL_NET_TX_SUBMIT) - sub, 1, "40 frames took %llu submissions",
		     (unsigned long long)(host_call_total(HOST_CALL_NET_TX_SUBMIT) - sub));
	cr_assert_eq(host_call_total(HOST_CALL_NET_WRITE) - wr, 0);
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 40);
	for (unsigned i = 0; i < 40; i++)
		cr_assert(first[i] == i && len[i] == 1514, "frame %u: %u, %zu bytes", i, first[i], len[i]);
	/* More than a submission holds (64 frames, 256 KiB): several, still
	 * in order; one frame alone is one write(2).  The host's end needs
	 * room for 600 KB of frames (root: beyond net.core.wmem_max). */
	int big = 4 << 20;
	cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)), 0, "%s", strerror(errno));
	sub = host_call_total(HOST_CALL_NET_TX_SUBMIT);
	send_numbered(nd, 0, 100, 100);
	netdev_commit(nd);
	cr_assert_eq(host_call_total(HOST_CALL_NET_TX_SUBMIT) - sub, 2, "100 frames: 64 + 36");
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 64);
	cr_assert(first[0] == 0 && first[63] == 63, "%u %u", first[0], first[63]);
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 36);
	cr_assert(first[0] == 64 && first[35] == 99, "%u %u", first[0], first[35]);
	sub = host_call_total(HOST_CALL_NET_TX_SUBMIT);
	send_numbered(nd, 0, 10, 60000);
	netdev_commit(nd);
	cr_assert_eq(host_call_total(HOST_CALL_NET_TX_SUBMIT) - sub, 3, "10 frames of 60000 bytes: 4 + 4 + 2");
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 10);
	for (unsigned i = 0; i < 10; i++)
		cr_assert(first[i] == i && len[i] == 60000, "frame %u: %u, %zu bytes", i, first[i], len[i]);
	send_numbered(nd, 7, 1, 64);
	netdev_commit(nd);
	cr_assert_eq(host_call_total(HOST_CALL_NET_WRITE) - wr, 1);
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 1);
	cr_assert_eq(first[0], 7);
	netdev_free(nd);
	close(sv[1]);
}

Test(net_tap_batch, a_refused_frame_does_not_take_the_rest_of_its_batch)
{
	int sv[2];
	struct netdev *nd = batch_tap(true, sv);
	/* The host's end takes messages of some 32 KiB at most: a 40000-byte
	 * frame is refused (EMSGSIZE), as a tap refuses a malformed one. */
	int small = 16384;
	cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	cr_assert_eq(netdev_start(nd), 0, "%s", err_msg());
	static uint8_t f[40000];
	send_numbered(nd, 0, 3, 100);
	memset(f, 3, sizeof(f));
	netdev_send(nd, f, sizeof(f));
	send_numbered(nd, 4, 3, 100);
	netdev_commit(nd);
	uint8_t first[64];
	size_t len[64];
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 6, "the frames after the refused one were lost");
	static const uint8_t want[6] = { 0, 1, 2, 4, 5, 6 };
	cr_assert_arr_eq(first, want, 6);
	netdev_free(nd);
	close(sv[1]);
}

Test(net_tap_batch, without_batching_each_frame_is_one_write)
{
	int sv[2];
	struct netdev *nd = batch_tap(false, sv);
	cr_assert_eq(netdev_start(nd), 0, "%s", err_msg());
	uint64_t sub = host_call_total(HOST_CALL_NET_TX_SUBMIT), wr = host_call_total(HOST_CALL_NET_WRITE);
	send_numbered(nd, 0, 40, 1514);
	uint8_t first[64];
	size_t len[64];
	/* Written as they came, before any commit. */
	cr_assert_eq(read_numbered(sv[1], first, len, 64), 40);
	netdev_commit(nd);
	cr_assert_eq(host_call_total(HOST_CALL_NET_WRITE) - wr, 40);
	cr_assert_eq(host_call_total(HOST_CALL_NET_TX_SUBMIT) - sub, 0);
	for (unsigned i = 0; i < 40; i++)
		cr_assert_eq(first[i], i);
	netdev_free(nd);
	close(sv[1]);
}

/* What the host queued before the backend looked: 40 frames in at most
 * four reads' submissions (16 linked reads each; the last finds the end),
 * in order, with the frontend out of room in the middle. */
static void receive_queued(bool batch)
{
	int sv[2];
	struct netdev *nd = batch_tap(batch, sv);
	uint8_t f[100];
	for (unsigned i = 0; i < 40; i++) {
		memset(f, (int)i, sizeof(f));
		cr_assert_eq(write(sv[1], f, sizeof(f)), (ssize_t)sizeof(f));
	}
	atomic_store(&seq_got, 0);
	atomic_store(&room, 0);
	uint64_t sub = host_call_total(HOST_CALL_NET_RX_SUBMIT), rd = host_call_total(HOST_CALL_NET_READ);
	/* Attached first: a backend without a frontend drops what it reads. */
	cr_assert_eq(netdev_attach(nd, seq_receive, NULL, &fe_lock), 0);
	cr_assert_eq(netdev_start(nd), 0, "%s", err_msg());
	cr_assert(!wait_seq(1, 300), "delivered without room");
	atomic_store(&room, 1);
	netdev_wake(nd);
	cr_assert(wait_seq(40, 5000), "%d of 40 frames arrived", atomic_load(&seq_got));
	for (unsigned i = 0; i < 40; i++)
		cr_assert_eq(seq_frames[i], i, "frame %u came as %u", i, seq_frames[i]);
	uint64_t subs = host_call_total(HOST_CALL_NET_RX_SUBMIT) - sub, reads = host_call_total(HOST_CALL_NET_READ) - rd;
	if (batch)
		cr_assert(subs >= 3 && subs <= 4 && reads == 0, "%llu submissions, %llu reads for 40 frames",
			  (unsigned long long)subs, (unsigned long long)reads);
	else
		cr_assert(subs == 0 && reads >= 41, "%llu submissions, %llu reads for 40 frames",
			  (unsigned long long)subs, (unsigned long long)reads);
	netdev_detach(nd);
	netdev_free(nd);
	close(sv[1]);
}

Test(net_tap_batch, queued_frames_are_read_in_batches_in_order) { receive_queued(true); }
Test(net_tap_batch, without_batching_queued_frames_are_read_one_by_one) { receive_queued(false); }

/* User networking: slirp takes frames in-process; what a frame costs is
 * the wake-up of the slirp thread (an eventfd write).  With batching the
 * wake-ups a batch asks for (the poll set, slirp's ARP replies queued for
 * the guest) wait for the commit: one for the batch.  The thread is
 * started only afterwards, so that nothing else signals meanwhile, and
 * then delivers the replies. */
static size_t arp_request(uint8_t *f, uint8_t tag)
{
	static const uint8_t head[] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06,
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,                 /* Ethernet, IPv4, request */
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 2, 15,         /* the guest */
		0, 0, 0, 0, 0, 0, 10, 0, 2, 2,                            /* who has 10.0.2.2 */
	};
	memset(f, 0, 60);
	memcpy(f, head, sizeof(head));
	f[59] = tag;   /* padding: tells the requests apart, ignored by ARP */
	return 60;
}

static void slirp_wakeups(bool batch)
{
	struct vm_net_config n = { .type = "user" };
	struct netdev *nd;
	cr_assert_eq(net_slirp_open(&n, &nd), 0, "%s", err_msg());
	nd->batch = batch;
	atomic_store(&got, 0);
	atomic_store(&room, 1);
	/* Attached afterwards too: attaching wakes the thread.  The replies
	 * wait in the backend's queue meanwhile. */
	uint64_t wakes = host_call_total(HOST_CALL_WAKE);
	uint8_t f[60];
	for (uint8_t i = 0; i < 5; i++) {
		netdev_send(nd, f, arp_request(f, i));
		if (!batch)
			cr_assert_eq(host_call_total(HOST_CALL_WAKE) - wakes, 1, "no wake-up for a frame sent alone");
	}
	if (batch)
		cr_assert_eq(host_call_total(HOST_CALL_WAKE) - wakes, 0, "a wake-up before the batch's commit");
	netdev_commit(nd);
	cr_assert_eq(host_call_total(HOST_CALL_WAKE) - wakes, 1, "%llu wake-ups for a batch of 5",
		     (unsigned long long)(host_call_total(HOST_CALL_WAKE) - wakes));
	cr_assert_eq(netdev_attach(nd, fe_receive, NULL, &fe_lock), 0);
	cr_assert_eq(netdev_start(nd), 0, "%s", err_msg());
	cr_assert(wait_got(5), "%d of 5 ARP replies reached the frontend", atomic_load(&got));
	cr_assert_eq(last[12], 0x08);
	cr_assert_eq(last[13], 0x06);
	cr_assert_eq(last[21], 2, "not an ARP reply");
	netdev_detach(nd);
	netdev_free(nd);
}

Test(net_slirp_batch, a_batch_costs_one_wakeup) { slirp_wakeups(true); }
Test(net_slirp_batch, without_batching_the_first_frame_wakes_the_thread) { slirp_wakeups(false); }
