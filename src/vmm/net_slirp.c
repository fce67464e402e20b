/* User networking (--net user): libslirp, the TCP/IP stack QEMU uses,
 * gives the guest 10.0.2.0/24 with a gateway at 10.0.2.2 that is the
 * host, DHCP (10.0.2.15 first), a DNS forwarder at 10.0.2.3, outbound TCP
 * and UDP on host sockets, and host ports forwarded to the guest.
 *
 * libslirp is not thread-safe: every call into it holds b->lock.  Frames
 * from the guest go in on the vCPU thread that sent them (slirp_input);
 * the backend's thread polls the host sockets and runs slirp's timers.
 * Frames slirp makes for the guest, on either thread, are queued and the
 * backend's thread delivers them without b->lock, so that the order of
 * locks is always the device lock before b->lock.
 *
 * Compounding (docs/compounding.md "Network"): slirp takes each frame
 * in-process, with no system call; what costs one is the wake-up of the
 * thread (an eventfd write) that every frame needs, its poll set having
 * changed.  With nd.batch the wake-ups a notification's frames ask for
 * are deferred to the commit after the last: one for the batch. */
#include "vmm/net.h"

#include "hw/netdev.h"
#include "util/error.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLIRP_MAX_TIMERS 8

struct slirp_timer {
	bool used, armed;
	int64_t expire_ms;
	SlirpTimerId id;          /* timer_new_opaque */
	SlirpTimerCb cb;          /* timer_new (older interface) */
	void *cb_opaque;
};

struct slirp_backend {
	struct netdev nd;
	pthread_mutex_t lock;     /* every call into slirp */
	Slirp *slirp;
	struct netdev_wakeup wake; /* wakes the thread's poll */
	bool deferring;           /* in a batch: wake-ups wait for the commit (b->lock) */
	bool wake_due;            /* ... and one was asked for (b->lock) */
	atomic_bool stop;
	pthread_t thread;
	bool started;
	struct pollfd *pfds;      /* thread only */
	unsigned n_pfds, cap_pfds;
	struct slirp_timer timers[SLIRP_MAX_TIMERS];
	struct timespec last_warn;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sb_wake(struct slirp_backend *b)
{
	netdev_wakeup_signal(&b->wake);
}

/* A wake-up asked for with b->lock held: deferred inside a batch. */
static void sb_wake_locked(struct slirp_backend *b)
{
	if (b->deferring)
		b->wake_due = true;
	else
		sb_wake(b);
}

/* ---- callbacks from slirp (b->lock held) ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_backend *b = opaque;
	/* A full queue drops the frame as a wire would; TCP sends it again. */
	netdev_queue_frame(&b->nd, buf, len);
	sb_wake_locked(b);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct slirp_backend *b = opaque;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (b->last_warn.tv_sec && now.tv_sec - b->last_warn.tv_sec < 1)
		return;   /* a guest must not flood the host's log */
	b->last_warn = now;
	log_warn("net", "%s: the guest: %s", b->nd.name, msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static struct slirp_timer *timer_alloc(struct slirp_backend *b)
{
	for (unsigned i = 0; i < SLIRP_MAX_TIMERS; i++) {
		if (!b->timers[i].used) {
			memset(&b->timers[i], 0, sizeof(b->timers[i]));
			b->timers[i].used = true;
			return &b->timers[i];
		}
	}
	log_warn("net", "%s: more than %d slirp timers", b->nd.name, SLIRP_MAX_TIMERS);
	return NULL;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = timer_alloc(opaque);
	if (t) {
		t->cb = cb;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = timer_alloc(opaque);
	if (t) {
		t->id = id;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct slirp_timer *)timer)->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct slirp_timer *t = timer;
	if (!t)
		return;
	t->expire_ms = expire_ms;
	t->armed = true;
	sb_wake_locked(opaque);
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;   /* the thread asks slirp for its descriptors each round */
}

static void cb_notify(void *opaque)
{
	sb_wake_locked(opaque);
}

static const SlirpCb slirp_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_register_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct slirp_backend *b = opaque;
	if (b->n_pfds == b->cap_pfds) {
		unsigned cap = b->cap_pfds ? 2 * b->cap_pfds : 64;
		struct pollfd *p = realloc(b->pfds, cap * sizeof(*p));
		if (!p)
			return -1;
		b->pfds = p;
		b->cap_pfds = cap;
	}
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	b->pfds[b->n_pfds] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)b->n_pfds++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct slirp_backend *b = opaque;
	if (idx < 0 || (unsigned)idx >= b->n_pfds)
		return 0;
	short r = b->pfds[idx].revents;
	int ev = 0;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & POLLERR)
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

/* ---- the thread ---- */

static void run_timers(struct slirp_backend *b, int64_t now_ms)
{
	for (unsigned i = 0; i < SLIRP_MAX_TIMERS; i++) {
		struct slirp_timer *t = &b->timers[i];
		if (!t->used || !t->armed || t->expire_ms > now_ms)
			continue;
		t->armed = false;
		if (t->cb)
			t->cb(t->cb_opaque);
		else
			slirp_handle_timer(b->slirp, t->id, t->cb_opaque);
	}
}

static void *sb_thread(void *arg)
{
	struct slirp_backend *b = arg;
	while (!atomic_load(&b->stop)) {
		/* Frames for the guest first, without b->lock: delivery takes
		 * the device lock, which a sending vCPU holds while it waits
		 * for b->lock. */
		bool drained = netdev_flush(&b->nd);
		pthread_mutex_lock(&b->lock);
		uint32_t timeout = 1000;
		b->n_pfds = 0;
		cb_add_poll(b->wake.fd, SLIRP_POLL_IN, b);
		slirp_pollfds_fill(b->slirp, &timeout, cb_add_poll, b);
		int64_t now_ms = now_ns() / 1000000;
		for (unsigned i = 0; i < SLIRP_MAX_TIMERS; i++) {
			const struct slirp_timer *t = &b->timers[i];
			if (t->used && t->armed)
				timeout = t->expire_ms <= now_ms ? 0
					  : (uint32_t)(t->expire_ms - now_ms < timeout ? t->expire_ms - now_ms : timeout);
		}
		pthread_mutex_unlock(&b->lock);
		(void)drained;   /* kept frames wait for netdev_wake(), which the eventfd carries */
		int n = poll(b->pfds, b->n_pfds, (int)timeout);
		if (n > 0 && (b->pfds[0].revents & POLLIN))
			netdev_wakeup_consume(&b->wake);
		pthread_mutex_lock(&b->lock);
		slirp_pollfds_poll(b->slirp, n < 0, cb_get_revents, b);
		run_timers(b, now_ns() / 1000000);
		pthread_mutex_unlock(&b->lock);
	}
	return NULL;
}

/* ---- the backend ---- */

static void sb_send(struct netdev *nd, const uint8_t *frame, size_t len)
{
	struct slirp_backend *b = (struct slirp_backend *)nd;
	pthread_mutex_lock(&b->lock);
	b->deferring = b->nd.batch;
	slirp_input(b->slirp, frame, (int)len);
	/* The poll set may have changed (a new connection, data to write). */
	sb_wake_locked(b);
	b->deferring = false;
	pthread_mutex_unlock(&b->lock);
}

static void sb_commit(struct netdev *nd)
{
	struct slirp_backend *b = (struct slirp_backend *)nd;
	pthread_mutex_lock(&b->lock);
	bool due = b->wake_due;
	b->wake_due = false;
	pthread_mutex_unlock(&b->lock);
	if (due)
		sb_wake(b);
}

static void sb_wake_op(struct netdev *nd)
{
	sb_wake((struct slirp_backend *)nd);
}

static void sb_destroy(struct netdev *nd)
{
	struct slirp_backend *b = (struct slirp_backend *)nd;
	if (b->started) {
		atomic_store(&b->stop, true);
		uint64_t one = 1;
		ssize_t n = write(b->wake.fd, &one, sizeof(one));
		(void)n;
		pthread_join(b->thread, NULL);
	}
	if (b->slirp)
		slirp_cleanup(b->slirp);
	netdev_wakeup_fini(&b->wake);
	free(b->pfds);
	pthread_mutex_destroy(&b->lock);
	netdev_fini(&b->nd);
	free(b);
}

static int sb_start(struct netdev *nd)
{
	struct slirp_backend *b = (struct slirp_backend *)nd;
	if (pthread_create(&b->thread, NULL, sb_thread, b) != 0)
		return err_set(-EAGAIN, "--net user: cannot start its thread");
	b->started = true;
	return 0;
}

static const struct netdev_ops slirp_ops = {
	.start = sb_start, .send = sb_send, .commit = sb_commit, .wake = sb_wake_op, .destroy = sb_destroy,
};

static struct in_addr ip4(const char *s)
{
	struct in_addr a;
	inet_pton(AF_INET, s, &a);
	return a;
}

int net_slirp_open(const struct vm_net_config *n, struct netdev **out)
{
	struct slirp_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(-ENOMEM, "out of memory");
	netdev_init(&b->nd, &slirp_ops, "user");
	b->nd.checksums_valid = true;   /* slirp computes every checksum it sends */
	pthread_mutex_init(&b->lock, NULL);
	b->wake.fd = -1;
	int rc = netdev_wakeup_init(&b->wake);
	if (rc < 0) {
		rc = err_set(rc, "--net user: %s", err_msg());
		goto fail;
	}
	/* QEMU's addresses, which guides and guests expect; IPv4 only. */
	SlirpConfig cfg = {
		.version = 4,
		.in_enabled = true,
		.vnetwork = ip4("10.0.2.0"),
		.vnetmask = ip4("255.255.255.0"),
		.vhost = ip4("10.0.2.2"),
		.vdhcp_start = ip4("10.0.2.15"),
		.vnameserver = ip4("10.0.2.3"),
		.vhostname = "vessel",
	};
	b->slirp = slirp_new(&cfg, &slirp_callbacks, b);
	if (!b->slirp) {
		rc = err_set(-ENOMEM, "--net user: libslirp could not start");
		goto fail;
	}
	for (unsigned i = 0; i < n->n_hostfwd; i++) {
		const struct vm_hostfwd *f = &n->hostfwd[i];
		struct in_addr host = { .s_addr = htonl(f->host_addr) };
		/* The guest side: the address DHCP gives the guest. */
		if (slirp_add_hostfwd(b->slirp, f->udp, host, f->host_port, cfg.vdhcp_start, f->guest_port) < 0) {
			rc = err_set(-EADDRINUSE, "--net user: hostfwd %s port %u: cannot listen on the host (%s)",
				     f->udp ? "udp" : "tcp", f->host_port, errno ? strerror(errno) : "in use?");
			goto fail;
		}
	}
	*out = &b->nd;
	return 0;
fail:
	sb_destroy(&b->nd);
	return rc;
}
