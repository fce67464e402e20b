/* Network backends: the frontend contract and the queue of frames kept
 * for a frontend without room (see netdev.h). */
#include "hw/netdev.h"

#include "util/error.h"
#include "util/hostcall.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void netdev_init(struct netdev *nd, const struct netdev_ops *ops, const char *name)
{
	nd->ops = ops;
	snprintf(nd->name, sizeof(nd->name), "%s", name);
	pthread_mutex_init(&nd->lock, NULL);
	pthread_cond_init(&nd->idle, NULL);
	pthread_mutex_init(&nd->q_lock, NULL);
}

void netdev_fini(struct netdev *nd)
{
	for (unsigned i = 0; i < nd->q_len; i++)
		free(nd->q[(nd->q_head + i) % NETDEV_QUEUE_MAX]);
	nd->q_len = 0;
	pthread_mutex_destroy(&nd->q_lock);
	pthread_cond_destroy(&nd->idle);
	pthread_mutex_destroy(&nd->lock);
}

enum netdev_rx netdev_deliver(struct netdev *nd, const uint8_t *frame, size_t len)
{
	pthread_mutex_lock(&nd->lock);
	if (!nd->receive || nd->holds) {
		enum netdev_rx rc = nd->receive ? NETDEV_RX_NO_ROOM : NETDEV_RX_DROP;
		pthread_mutex_unlock(&nd->lock);
		return rc;
	}
	/* busy keeps the frontend attached (and unheld) until the call
	 * returns; the frontend's lock is taken without ours, whose holder
	 * (detach, hold) may hold the frontend's. */
	nd->busy = true;
	enum netdev_rx (*receive)(void *, const uint8_t *, size_t) = nd->receive;
	void *opaque = nd->fe_opaque;
	pthread_mutex_t *fe_lock = nd->fe_lock;
	pthread_mutex_unlock(&nd->lock);
	if (fe_lock)
		pthread_mutex_lock(fe_lock);
	enum netdev_rx rc = receive(opaque, frame, len);
	if (fe_lock)
		pthread_mutex_unlock(fe_lock);
	pthread_mutex_lock(&nd->lock);
	nd->busy = false;
	pthread_cond_broadcast(&nd->idle);
	pthread_mutex_unlock(&nd->lock);
	return rc;
}

bool netdev_queue_frame(struct netdev *nd, const uint8_t *frame, size_t len)
{
	struct netdev_frame *f = NULL;
	pthread_mutex_lock(&nd->q_lock);
	if (nd->q_len < NETDEV_QUEUE_MAX && len <= NETDEV_FRAME_MAX && (f = malloc(sizeof(*f) + len))) {
		f->len = len;
		memcpy(f->data, frame, len);
		nd->q[(nd->q_head + nd->q_len++) % NETDEV_QUEUE_MAX] = f;
	} else {
		nd->rx_dropped++;
	}
	pthread_mutex_unlock(&nd->q_lock);
	return f != NULL;
}

bool netdev_flush(struct netdev *nd)
{
	for (;;) {
		pthread_mutex_lock(&nd->q_lock);
		struct netdev_frame *f = nd->q_len ? nd->q[nd->q_head] : NULL;
		pthread_mutex_unlock(&nd->q_lock);
		if (!f)
			return true;
		/* Only this thread takes frames off the queue: f stays first. */
		if (netdev_deliver(nd, f->data, f->len) == NETDEV_RX_NO_ROOM)
			return false;
		pthread_mutex_lock(&nd->q_lock);
		nd->q_head = (nd->q_head + 1) % NETDEV_QUEUE_MAX;
		nd->q_len--;
		pthread_mutex_unlock(&nd->q_lock);
		free(f);
	}
}

int netdev_wakeup_init(struct netdev_wakeup *w)
{
	atomic_init(&w->pending, false);
	w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->fd < 0)
		return err_set(-errno, "eventfd: %s", strerror(errno));
	return 0;
}

void netdev_wakeup_fini(struct netdev_wakeup *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

void netdev_wakeup_signal(struct netdev_wakeup *w)
{
	/* One write until the thread reads it: a busy sender costs one
	 * system call per poll round, not per frame. */
	if (!atomic_exchange(&w->pending, true)) {
		uint64_t one = 1;
		ssize_t n = write(w->fd, &one, sizeof(one));
		(void)n;
		host_call_note(HOST_CALL_WAKE);
	}
}

void netdev_wakeup_consume(struct netdev_wakeup *w)
{
	/* Read, then clear: a signal between the two finds the flag still
	 * set and writes nothing, which is fine, as the thread has yet to
	 * look at what it asked for.  Clearing first lost wake-ups: a
	 * signaller that saw the flag clear wrote, the read then took its
	 * count, and the flag stayed set over an empty eventfd, so every
	 * later signal was skipped and the thread woke only on its poll
	 * timeout (a guest's TCP stream through user networking then moved
	 * one window per slirp timeout, about 128 KiB/s). */
	uint64_t v;
	ssize_t n = read(w->fd, &v, sizeof(v));
	(void)n;
	atomic_store(&w->pending, false);
}

int netdev_attach(struct netdev *nd, enum netdev_rx (*receive)(void *, const uint8_t *, size_t), void *opaque,
		  pthread_mutex_t *lock)
{
	pthread_mutex_lock(&nd->lock);
	int rc = 0;
	if (nd->receive)
		rc = err_set(-EBUSY, "network backend %s is in use by another device", nd->name);
	else {
		nd->receive = receive;
		nd->fe_opaque = opaque;
		nd->fe_lock = lock;
	}
	pthread_mutex_unlock(&nd->lock);
	if (rc == 0)
		netdev_wake(nd);
	return rc;
}

void netdev_detach(struct netdev *nd)
{
	pthread_mutex_lock(&nd->lock);
	nd->receive = NULL;
	nd->fe_opaque = NULL;
	nd->fe_lock = NULL;
	while (nd->busy)
		pthread_cond_wait(&nd->idle, &nd->lock);
	pthread_mutex_unlock(&nd->lock);
}

void netdev_send(struct netdev *nd, const uint8_t *frame, size_t len)
{
	if (nd && nd->ops->send && len) {
		nd->ops->send(nd, frame, len);
		compound_note(COMPOUND_NET_TX_FRAMES, 1);
	}
}

void netdev_commit(struct netdev *nd)
{
	if (!nd)
		return;
	compound_note(COMPOUND_NET_TX_BATCHES, 1);
	if (nd->ops->commit)
		nd->ops->commit(nd);
}

void netdev_wake(struct netdev *nd)
{
	if (nd && nd->ops->wake)
		nd->ops->wake(nd);
}

int netdev_start(struct netdev *nd)
{
	return nd->ops->start ? nd->ops->start(nd) : 0;
}

void netdev_hold(struct netdev *nd)
{
	pthread_mutex_lock(&nd->lock);
	nd->holds++;
	while (nd->busy)
		pthread_cond_wait(&nd->idle, &nd->lock);
	pthread_mutex_unlock(&nd->lock);
}

void netdev_release(struct netdev *nd)
{
	pthread_mutex_lock(&nd->lock);
	if (nd->holds)
		nd->holds--;
	bool wake = nd->holds == 0;
	pthread_mutex_unlock(&nd->lock);
	if (wake)
		netdev_wake(nd);
}

void netdev_free(struct netdev *nd)
{
	if (nd)
		nd->ops->destroy(nd);
}
