/* The host side of networking (src/vmm/net*.c): --net parsing and its
 * one-line errors, and the tap backend on a socketpair standing for the
 * tap device (the same read/write/poll path): frames both ways, a frame
 * kept while the frontend has no room and delivered on netdev_wake(),
 * nothing delivered while held, and none after detach. */
#include "hw/netdev.h"
#include "util/error.h"
#include "vmm/net.h"

#include <criterion/criterion.h>
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
