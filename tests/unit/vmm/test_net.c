/* The host side of networking (src/vmm/net*.c): --net parsing and its
 * one-line errors, and the tap backend on a socketpair standing for the
 * tap device (the same read/write/poll path): frames both ways, a frame
 * kept while the frontend has no room and delivered on netdev_wake(),
 * nothing delivered while held, and none after detach; a backend thread's
 * wake-up under a busy signaller. */
#include "hw/netdev.h"
#include "util/error.h"
#include "vmm/net.h"

#include <criterion/criterion.h>
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
