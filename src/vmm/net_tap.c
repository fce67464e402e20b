/* A tap device (--net tap,ifname=NAME): the guest's frames are written
 * to the host interface as they are, and what the host sends there is
 * read by the backend's thread and delivered to the guest.
 *
 * The interface is opened before the sandbox (TUNSETIFF needs
 * CAP_NET_ADMIN, or a tap made for this user with `ip tuntap add ...
 * user`); afterwards only read, write and poll on the descriptor are
 * made.  Any packet descriptor works the same (net_tap_open_fd): the unit
 * tests use a socketpair. */
#include "vmm/net.h"

#include "hw/netdev.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct tap_backend {
	struct netdev nd;
	int fd;
	int wake_fd;
	atomic_bool stop;
	pthread_t thread;
	bool started;
	atomic_uint_fast64_t tx_dropped;
	uint8_t buf[NETDEV_FRAME_MAX];   /* thread only */
};

static void tap_send(struct netdev *nd, const uint8_t *frame, size_t len)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	/* Non-blocking: a full host queue drops the frame, as a wire
	 * would, rather than stall the vCPU. */
	if (write(t->fd, frame, len) < 0)
		atomic_fetch_add(&t->tx_dropped, 1);
}

static void tap_wake(struct netdev *nd)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	uint64_t one = 1;
	ssize_t n = write(t->wake_fd, &one, sizeof(one));
	(void)n;
}

static void *tap_thread(void *arg)
{
	struct tap_backend *t = arg;
	size_t kept = 0;   /* a frame read but not taken yet */
	while (!atomic_load(&t->stop)) {
		if (kept && netdev_deliver(&t->nd, t->buf, kept) != NETDEV_RX_NO_ROOM)
			kept = 0;
		/* While a frame waits for room, the host's queue holds the
		 * rest (flow control, as a NIC without buffers). */
		struct pollfd p[2] = { { .fd = t->wake_fd, .events = POLLIN }, { .fd = t->fd, .events = POLLIN } };
		int n = poll(p, kept ? 1 : 2, -1);
		if (n < 0 && errno != EINTR) {
			log_error("net", "%s: poll: %s", t->nd.name, strerror(errno));
			break;
		}
		if (p[0].revents & POLLIN) {
			uint64_t v;
			ssize_t r = read(t->wake_fd, &v, sizeof(v));
			(void)r;
		}
		if (kept || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		for (int i = 0; i < 64 && !kept; i++) {
			ssize_t r = read(t->fd, t->buf, sizeof(t->buf));
			if (r <= 0)
				break;
			if (netdev_deliver(&t->nd, t->buf, (size_t)r) == NETDEV_RX_NO_ROOM)
				kept = (size_t)r;
		}
	}
	return NULL;
}

static void tap_destroy(struct netdev *nd)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	if (t->started) {
		atomic_store(&t->stop, true);
		tap_wake(nd);
		pthread_join(t->thread, NULL);
	}
	if (t->fd >= 0)
		close(t->fd);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	netdev_fini(&t->nd);
	free(t);
}

static int tap_start(struct netdev *nd)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	if (pthread_create(&t->thread, NULL, tap_thread, t) != 0)
		return err_set(-EAGAIN, "%s: cannot start its thread", t->nd.name);
	t->started = true;
	return 0;
}

static const struct netdev_ops tap_ops = {
	.start = tap_start, .send = tap_send, .wake = tap_wake, .destroy = tap_destroy,
};

int net_tap_open_fd(int fd, const char *name, struct netdev **out)
{
	struct tap_backend *t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return err_set(-ENOMEM, "out of memory");
	}
	netdev_init(&t->nd, &tap_ops, name);
	t->fd = fd;
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc = 0;
	int fl = fcntl(fd, F_GETFL);
	if (t->wake_fd < 0 || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		rc = err_set(-errno, "%s: %s", name, strerror(errno));
	if (rc < 0) {
		tap_destroy(&t->nd);
		return rc;
	}
	*out = &t->nd;
	return 0;
}

int net_tap_open(const struct vm_net_config *n, struct netdev **out)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_set(-errno, "--net tap,ifname=%s: cannot open /dev/net/tun: %s", n->ifname, strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	/* IFF_NO_PI: bare Ethernet frames, no packet information prefix. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", n->ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return err_set(-e, "--net tap,ifname=%s: cannot attach to the interface: %s%s", n->ifname, strerror(e),
			       e == EPERM ? " (it needs CAP_NET_ADMIN, or a tap made for this user with "
					    "`ip tuntap add dev NAME mode tap user USER`)" : "");
	}
	char name[64];
	snprintf(name, sizeof(name), "tap:%s", n->ifname);
	return net_tap_open_fd(fd, name, out);
}
