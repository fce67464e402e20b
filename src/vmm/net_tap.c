/* A tap device (--net tap,ifname=NAME): the guest's frames are written
 * to the host interface as they are, and what the host sends there is
 * read by the backend's thread and delivered to the guest.
 *
 * The interface is opened before the sandbox (TUNSETIFF needs
 * CAP_NET_ADMIN, or a tap made for this user with `ip tuntap add ...
 * user`); afterwards only read, write and poll on the descriptor are
 * made, and io_uring_enter for batches of them.  Any packet descriptor works the same (net_tap_open_fd): the unit
 * tests use a socketpair. */
#include "vmm/net.h"

#include "hw/netdev.h"
#include "util/error.h"
#include "util/hostcall.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Compounding (docs/compounding.md "Network"): a tap takes one frame per
 * write(2) and gives one per read(2) (it is no socket: no sendmmsg or
 * recvmmsg), so a batch is one io_uring_enter carrying a write or a read
 * for each frame. */
#define TAP_TX_FRAMES 64               /* frames held for one submission */
#define TAP_TX_BYTES (256u << 10)      /* their bytes: at least three of the largest */
#define TAP_RX_FRAMES 16               /* reads in one submission */
#define TAP_RING_ENTRIES 64

struct tap_backend {
	struct netdev nd;
	int fd;
	int wake_fd;
	atomic_bool stop;
	pthread_t thread;
	bool started;
	atomic_uint_fast64_t tx_dropped;
	/* Transmit, with nd.batch: the frames of the notification under way
	 * (vCPU thread, frontend lock held), copied as they come. */
	bool tx_uring;
	struct io_uring tx_ring;
	uint8_t *tx_buf;                   /* TAP_TX_BYTES */
	size_t tx_used;
	unsigned tx_n;
	size_t tx_off[TAP_TX_FRAMES], tx_len[TAP_TX_FRAMES];
	bool tx_redo[TAP_TX_FRAMES];       /* a batch's frames to write again by write(2) */
	/* Receive (thread only): frames read and not yet taken by the
	 * frontend, rx_n of them from slot rx_head; one slot without batching. */
	bool rx_uring;
	struct io_uring rx_ring;
	uint8_t *rx_buf;                   /* rx_slots * NETDEV_FRAME_MAX */
	unsigned rx_slots, rx_head, rx_n;
	size_t rx_len[TAP_RX_FRAMES];
	unsigned rx_ok;                    /* reads of the batch that found a frame */
	bool rx_unsupported;
};

static void tap_write(struct tap_backend *t, const uint8_t *frame, size_t len)
{
	/* Non-blocking: a full host queue drops the frame, as a wire
	 * would, rather than stall the vCPU. */
	host_call_note(HOST_CALL_NET_WRITE);
	if (write(t->fd, frame, len) < 0)
		atomic_fetch_add(&t->tx_dropped, 1);
}

/* Takes the completions of n requests submitted on ring, in the order
 * they come, handing each to done(); waits for those not there yet (the
 * submission's own wait was cut short by a signal: counted as kind). */
static void tap_reap(struct tap_backend *t, struct io_uring *ring, unsigned n, enum host_call kind,
		     void (*done)(struct tap_backend *t, uint64_t i, int res))
{
	for (unsigned got = 0; got < n;) {
		struct io_uring_cqe *cqe;
		if (io_uring_peek_cqe(ring, &cqe) != 0) {
			host_call_note(kind);
			int rc = io_uring_wait_cqe(ring, &cqe);
			if (rc == -EINTR)
				continue;
			if (rc < 0)
				break;
		}
		done(t, io_uring_cqe_get_data64(cqe), cqe->res);
		io_uring_cqe_seen(ring, cqe);
		got++;
	}
}

static void tx_done(struct tap_backend *t, uint64_t i, int res)
{
	bool unsupported = res == -EOPNOTSUPP;   /* a descriptor without RWF_NOWAIT */
	if ((res == -ECANCELED || unsupported) && i < TAP_TX_FRAMES)
		t->tx_redo[i] = true;
	else if (res < 0)
		atomic_fetch_add(&t->tx_dropped, 1);
	if (unsupported && t->tx_uring) {
		log_warn("net", "%s: batched writes unavailable; writing frames one at a time", t->nd.name);
		t->tx_uring = false;
	}
}

/* The held frames in one io_uring_enter that also waits for their
 * completions: a tap's write does not block (the kernel takes the frame
 * at once or refuses it), so the wait is short and the buffer is free
 * for the next batch when it returns.  The writes are linked so that the
 * kernel does them in the guest's order; one that fails (a frame the
 * interface refuses) cancels those after it, which go out by write(2). */
static void tap_submit(struct tap_backend *t)
{
	unsigned n = t->tx_n;
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&t->tx_ring);   /* n <= the ring's entries */
		io_uring_prep_write(sqe, t->fd, t->tx_buf + t->tx_off[i], (unsigned)t->tx_len[i], 0);
		sqe->rw_flags = RWF_NOWAIT;   /* a full host queue fails it (EAGAIN), as write(2) would */
		io_uring_sqe_set_data64(sqe, i);
		if (i + 1 < n)
			sqe->flags |= IOSQE_IO_LINK;
	}
	host_call_note(HOST_CALL_NET_TX_SUBMIT);
	int rc = io_uring_submit_and_wait(&t->tx_ring, n);
	if (rc < (int)n) {
		/* Not taken (ENOMEM, a ring that broke): the frames go out one
		 * by one, now and from here on. */
		if (rc <= 0) {
			log_warn("net", "%s: io_uring: %s; writing frames one at a time", t->nd.name,
				 strerror(rc < 0 ? -rc : EIO));
			t->tx_uring = false;
			io_uring_queue_exit(&t->tx_ring);
			for (unsigned i = 0; i < n; i++)
				tap_write(t, t->tx_buf + t->tx_off[i], t->tx_len[i]);
			return;
		}
		n = (unsigned)rc;   /* the rest stay queued for the next submission: cannot happen with n <= entries */
	}
	memset(t->tx_redo, 0, sizeof(t->tx_redo));
	tap_reap(t, &t->tx_ring, n, HOST_CALL_NET_TX_SUBMIT, tx_done);
	if (!t->tx_uring)
		io_uring_queue_exit(&t->tx_ring);
	for (unsigned i = 0; i < n; i++)
		if (t->tx_redo[i])
			tap_write(t, t->tx_buf + t->tx_off[i], t->tx_len[i]);
}

static void tap_commit(struct netdev *nd)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	if (!t->tx_n)
		return;
	/* One frame is one system call either way; write(2) is the lighter. */
	if (t->tx_n == 1 || !t->tx_uring) {
		for (unsigned i = 0; i < t->tx_n; i++)
			tap_write(t, t->tx_buf + t->tx_off[i], t->tx_len[i]);
	} else {
		tap_submit(t);
	}
	t->tx_n = 0;
	t->tx_used = 0;
}

static void tap_send(struct netdev *nd, const uint8_t *frame, size_t len)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	if (!t->tx_buf) {
		tap_write(t, frame, len);
		return;
	}
	if (t->tx_n == TAP_TX_FRAMES || t->tx_used + len > TAP_TX_BYTES)
		tap_commit(nd);
	memcpy(t->tx_buf + t->tx_used, frame, len);
	t->tx_off[t->tx_n] = t->tx_used;
	t->tx_len[t->tx_n++] = len;
	t->tx_used += len;
}

static void tap_wake(struct netdev *nd)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	uint64_t one = 1;
	ssize_t n = write(t->wake_fd, &one, sizeof(one));
	(void)n;
}

static uint8_t *rx_slot(struct tap_backend *t, unsigned i)
{
	return t->rx_buf + (size_t)i * NETDEV_FRAME_MAX;
}

static void rx_done(struct tap_backend *t, uint64_t i, int res)
{
	if (i < t->rx_slots)
		t->rx_len[i] = res > 0 ? (size_t)res : 0;
	if (res > 0)
		t->rx_ok++;
	else if (res == -EOPNOTSUPP || res == -EINVAL)
		t->rx_unsupported = true;   /* a descriptor without RWF_NOWAIT */
}

/* Reads what the tap holds into the slots, once poll(2) said it holds
 * something.  With io_uring, one io_uring_enter of TAP_RX_FRAMES reads,
 * each RWF_NOWAIT so that one finding nothing ends at once with EAGAIN
 * (without it the kernel would wait for a frame); the kernel issues them
 * in order, so slot order is the tap's order.  (Linked reads would not
 * do: a read shorter than its buffer, which every frame is, breaks a
 * link.)  Without, read(2) until EAGAIN, each frame delivered as it
 * comes; the slot is free again unless the frontend had no room.  True
 * when the batch was full, so that more may be waiting. */
static bool tap_read_batch(struct tap_backend *t)
{
	t->rx_head = 0;
	t->rx_n = 0;
	if (!t->rx_uring) {
		for (int i = 0; i < 64; i++) {
			host_call_note(HOST_CALL_NET_READ);
			ssize_t r = read(t->fd, rx_slot(t, 0), NETDEV_FRAME_MAX);
			if (r <= 0)
				return false;
			compound_note(COMPOUND_NET_RX_FRAMES, 1);
			if (i == 0)
				compound_note(COMPOUND_NET_RX_BATCHES, 1);
			if (netdev_deliver(&t->nd, rx_slot(t, 0), (size_t)r) == NETDEV_RX_NO_ROOM) {
				t->rx_len[0] = (size_t)r;
				t->rx_n = 1;
				return false;
			}
		}
		return true;
	}
	for (unsigned i = 0; i < t->rx_slots; i++) {
		t->rx_len[i] = 0;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&t->rx_ring);
		io_uring_prep_read(sqe, t->fd, rx_slot(t, i), NETDEV_FRAME_MAX, 0);
		sqe->rw_flags = RWF_NOWAIT;
		io_uring_sqe_set_data64(sqe, i);
	}
	host_call_note(HOST_CALL_NET_RX_SUBMIT);
	int rc = io_uring_submit_and_wait(&t->rx_ring, t->rx_slots);
	t->rx_ok = 0;
	t->rx_unsupported = false;
	if (rc > 0)
		tap_reap(t, &t->rx_ring, (unsigned)rc, HOST_CALL_NET_RX_SUBMIT, rx_done);
	unsigned ok = t->rx_ok;
	if (rc != (int)t->rx_slots || (t->rx_unsupported && !ok)) {
		/* Not all taken (cannot happen with the ring's room), or the
		 * descriptor takes no RWF_NOWAIT: reads from here on. */
		log_warn("net", "%s: batched reads unavailable (%s); reading frames one at a time", t->nd.name,
			 strerror(rc < 0 ? -rc : EOPNOTSUPP));
		t->rx_uring = false;
		io_uring_queue_exit(&t->rx_ring);
		if (!ok)
			return true;   /* the reads' path picks up what is there */
	}
	t->rx_n = rc > 0 ? (unsigned)rc : 0;
	if (ok) {
		compound_note(COMPOUND_NET_RX_FRAMES, ok);
		compound_note(COMPOUND_NET_RX_BATCHES, 1);
	}
	return ok == t->rx_slots;
}

/* Hands the frames read to the frontend, in order, until it has no room:
 * true when none is left.  Slots of reads that found nothing are empty. */
static bool tap_deliver_read(struct tap_backend *t)
{
	while (t->rx_n) {
		size_t len = t->rx_len[t->rx_head];
		if (len && netdev_deliver(&t->nd, rx_slot(t, t->rx_head), len) == NETDEV_RX_NO_ROOM)
			return false;
		t->rx_head++;
		t->rx_n--;
	}
	return true;
}

static void *tap_thread(void *arg)
{
	struct tap_backend *t = arg;
	bool more = false;   /* the last batch was full: read again without polling */
	while (!atomic_load(&t->stop)) {
		bool kept = !tap_deliver_read(t);
		if (!kept && more) {
			more = tap_read_batch(t);
			continue;
		}
		/* While frames wait for room, the host's queue holds the
		 * rest (flow control, as a NIC without buffers). */
		struct pollfd p[2] = { { .fd = t->wake_fd, .events = POLLIN }, { .fd = t->fd, .events = POLLIN } };
		host_call_note(HOST_CALL_POLL);
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
		more = tap_read_batch(t);
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
	if (t->tx_uring)
		io_uring_queue_exit(&t->tx_ring);
	if (t->rx_uring)
		io_uring_queue_exit(&t->rx_ring);
	free(t->tx_buf);
	free(t->rx_buf);
	netdev_fini(&t->nd);
	free(t);
}

static int tap_start(struct netdev *nd)
{
	struct tap_backend *t = (struct tap_backend *)nd;
	/* Batching needs io_uring; where the host has none (ENOSYS,
	 * kernel.io_uring_disabled) each frame is one write(2) or read(2), as
	 * without batching. */
	t->rx_slots = 1;
	if (t->nd.batch) {
		if ((t->tx_buf = malloc(TAP_TX_BYTES)) && io_uring_queue_init(TAP_RING_ENTRIES, &t->tx_ring, 0) == 0)
			t->tx_uring = true;
		if (io_uring_queue_init(TAP_RING_ENTRIES, &t->rx_ring, 0) == 0) {
			t->rx_uring = true;
			t->rx_slots = TAP_RX_FRAMES;
		}
		if (!t->tx_uring) {
			free(t->tx_buf);
			t->tx_buf = NULL;
		}
	}
	if (!(t->rx_buf = malloc((size_t)t->rx_slots * NETDEV_FRAME_MAX)))
		return err_set(-ENOMEM, "out of memory");
	if (pthread_create(&t->thread, NULL, tap_thread, t) != 0)
		return err_set(-EAGAIN, "%s: cannot start its thread", t->nd.name);
	t->started = true;
	return 0;
}

static const struct netdev_ops tap_ops = {
	.start = tap_start, .send = tap_send, .commit = tap_commit, .wake = tap_wake, .destroy = tap_destroy,
};

int net_tap_open_fd(int fd, const char *name, struct netdev **out)
{
	struct tap_backend *t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return err_set(-ENOMEM, "out of memory");
	}
	netdev_init(&t->nd, &tap_ops, name);
	t->nd.tx_wait_pays = true;   /* a commit is an io_uring_enter (netdev.h) */
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
