/* virtio-net (virtio 1.2, section 5.1): one receive and one transmit
 * queue on a network backend (hw/netdev.h).
 *
 * Offered: VIRTIO_NET_F_MAC, STATUS (the link is always up), MRG_RXBUF,
 * CSUM (the device completes a partial checksum the driver leaves, before
 * the frame reaches the backend) and GUEST_CSUM (frames the backend
 * vouches for are marked DATA_VALID).  No segmentation offloads: every
 * frame is at most the MTU, so no GSO type is ever set either way.
 *
 * Transmit runs on the vCPU thread that notified; receive on the
 * backend's thread through netdev_deliver(), with the device lock held
 * like every other callback.
 *
 * Compounding (docs/compounding.md "Network"), conf->batch: a transmit
 * notification is taken up NET_TX_DELAY_NS later on the timer thread,
 * with the driver's notifications off meanwhile, rather than at once on
 * the vCPU that notified.  Done at once, a batch holds only what the
 * driver queued before it notified, which Linux does after every frame
 * but the last of a burst it knows of; the vCPU that would queue the next
 * is the one doing the transmit.  Deferred, what the guest queues
 * meanwhile joins the batch (QEMU's virtio-net tx=timer is the same
 * idea), for NET_TX_DELAY_NS of latency on the first frame of a burst.
 * Only on a backend for which a commit is a host system call (a tap,
 * netdev.tx_wait_pays): user networking takes frames in-process, and
 * there the timer thread's wake-up per notification cost more than the
 * batch saved (bench/RESULTS.md, "virtio: network guest->host"): its
 * frames go at once, the backend's wake-ups still one per notification
 * (netdev_commit). */
#include "virtio/net.h"

#include "hw/netdev.h"
#include "machine/timer.h"
#include "util/error.h"
#include "virtio/virtio_pci.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Feature bits (section 5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr (section 5.1.6): with VIRTIO_F_VERSION_1 it
 * always has num_buffers, 12 bytes. */
#define NET_HDR_LEN 12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0

#define NET_RXQ 0
#define NET_TXQ 1
#define NET_QUEUE_SIZE 256
#define NET_CONFIG_LEN 10         /* mac, status, max_virtqueue_pairs */
/* Receive buffers one frame may take with MRG_RXBUF.  Linux posts
 * buffers of at least a full frame, so one is the rule. */
#define NET_RX_MAX_BUFS 4
/* How long a transmit notification waits for more frames (VM clock). */
#define NET_TX_DELAY_NS 100000

struct virtio_net {
	struct virtio_pci *t;
	struct netdev *nd;
	bool attached;
	bool tx_defer;                /* conf->batch, and a clock to defer on */
	struct timer_service *clock;
	struct vm_timer tx_timer;
	struct virtq_elem tx;
	struct virtq_elem rx[NET_RX_MAX_BUFS];
	uint8_t frame[NET_HDR_LEN + NETDEV_FRAME_MAX];
};

static void net_config(void *dev, uint8_t *buf)
{
	struct virtio_net *n = dev;
	memcpy(buf, n->nd->mac, 6);
	buf[6] = VIRTIO_NET_S_LINK_UP;
	buf[7] = 0;
	buf[8] = 1;   /* max_virtqueue_pairs: read only with MQ, one pair */
	buf[9] = 0;
}

static bool negotiated(const struct virtio_net *n, unsigned bit)
{
	return virtio_pci_features(n->t) >> bit & 1;
}

/* The Internet checksum (RFC 1071) of [p, p + len), folded, complemented. */
static uint16_t inet_checksum(const uint8_t *p, size_t len)
{
	uint64_t sum = 0;
	size_t i;
	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (i < len)
		sum += (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One frame from the transmit queue to the backend: false when the
 * request was refused (nothing was sent). */
static bool net_tx_one(struct virtio_net *n)
{
	uint64_t total = n->tx.out_len;
	if (total < NET_HDR_LEN || total > sizeof(n->frame)) {
		virtio_pci_guest_error(n->t, "transmit request of %llu bytes (header %u, frame at most %u)",
				       (unsigned long long)total, NET_HDR_LEN, NETDEV_FRAME_MAX);
		return false;
	}
	virtq_copy_from(&n->tx, 0, n->frame, (size_t)total);
	const uint8_t *hdr = n->frame;
	uint8_t *frame = n->frame + NET_HDR_LEN;
	size_t len = (size_t)total - NET_HDR_LEN;
	if (hdr[1] != VIRTIO_NET_HDR_GSO_NONE) {
		virtio_pci_guest_error(n->t, "transmit with GSO type %u, which was not offered", hdr[1]);
		return false;
	}
	if (hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		/* Section 5.1.6.2: the checksum of [csum_start, end) goes at
		 * csum_start + csum_offset, where the driver left the
		 * pseudo-header's sum. */
		uint16_t start = (uint16_t)(hdr[6] | hdr[7] << 8), off = (uint16_t)(hdr[8] | hdr[9] << 8);
		if (!negotiated(n, VIRTIO_NET_F_CSUM) || (size_t)start + off + 2 > len) {
			virtio_pci_guest_error(n->t, "transmit with a partial checksum at %u+%u of a %zu-byte frame%s",
					       start, off, len,
					       negotiated(n, VIRTIO_NET_F_CSUM) ? "" : " without VIRTIO_NET_F_CSUM");
			return false;
		}
		uint16_t sum = inet_checksum(frame + start, len - start);
		frame[start + off] = (uint8_t)(sum >> 8);
		frame[start + off + 1] = (uint8_t)sum;
	}
	netdev_send(n->nd, frame, len);
	return true;
}

static void net_tx(struct virtio_net *n)
{
	struct virtq *q = virtio_pci_queue(n->t, NET_TXQ);
	bool pushed = false, sent = false;
	virtq_disable_notify(q);   /* until the ring is empty (virtq_enable_notify) */
	for (;;) {
		int rc = virtq_pop(q, &n->tx);
		if (rc == 0) {
			if (virtq_enable_notify(q))
				continue;
			break;
		}
		if (rc < 0) {
			virtio_pci_broken(n->t, NET_TXQ);
			break;
		}
		sent |= net_tx_one(n);
		/* Nothing is written back: the used length is 0 (5.1.6.2). */
		if (virtq_push(q, &n->tx, 0) < 0) {
			virtio_pci_broken(n->t, NET_TXQ);
			break;
		}
		pushed = true;
	}
	/* The notification's frames go to the host together (a backend that
	 * batches held them: docs/compounding.md "Network"), before the
	 * driver hears that they went. */
	if (sent)
		netdev_commit(n->nd);
	if (pushed)
		virtio_pci_queue_done(n->t, NET_TXQ);
}

/* The deferred transmit (timer thread, device lock held). */
static void net_tx_timer(void *opaque)
{
	struct virtio_net *n = opaque;
	if (virtio_pci_driver_ok(n->t) && virtio_pci_queue(n->t, NET_TXQ)->ready)
		net_tx(n);
}

static void net_notify(void *dev, unsigned qi)
{
	struct virtio_net *n = dev;
	if (qi == NET_TXQ && n->tx_defer) {
		/* The driver need not notify again until net_tx has emptied
		 * the ring and turned notifications back on. */
		if (!timer_pending(&n->tx_timer)) {
			virtq_disable_notify(virtio_pci_queue(n->t, NET_TXQ));
			timer_mod(&n->tx_timer, vm_clock_ns(n->clock) + NET_TX_DELAY_NS);
		}
	} else if (qi == NET_TXQ) {
		net_tx(n);
	} else
		netdev_wake(n->nd);   /* receive buffers: the backend retries what it keeps */
}

/* Copies bytes [from, from + len) of header + frame into e from offset 0. */
static void rx_fill(struct virtq_elem *e, const uint8_t *hdr, const uint8_t *frame, size_t from, size_t len)
{
	size_t at = 0;
	if (from < NET_HDR_LEN) {
		size_t k = NET_HDR_LEN - from < len ? NET_HDR_LEN - from : len;
		virtq_copy_to(e, 0, hdr + from, k);
		at = k;
		from += k;
		len -= k;
	}
	if (len)
		virtq_copy_to(e, at, frame + (from - NET_HDR_LEN), len);
}

/* Backend thread, device lock held (netdev_deliver). */
static enum netdev_rx net_receive(void *opaque, const uint8_t *frame, size_t len)
{
	struct virtio_net *n = opaque;
	struct virtq *q = virtio_pci_queue(n->t, NET_RXQ);
	if (!virtio_pci_driver_ok(n->t) || !q->ready)
		return NETDEV_RX_DROP;   /* no driver: a NIC without one drops what arrives */
	bool mrg = negotiated(n, VIRTIO_NET_F_MRG_RXBUF);
	unsigned max_bufs = mrg ? NET_RX_MAX_BUFS : 1;
	uint8_t hdr[NET_HDR_LEN] = { 0 };
	/* Section 5.1.6.4: DATA_VALID with GUEST_CSUM tells the driver the
	 * checksums were checked; only a backend that builds its frames
	 * itself (user networking) can say so. */
	size_t need = NET_HDR_LEN + len, done = 0;
	struct virtq_mark start = virtq_mark(q);
	unsigned nb = 0;
	uint32_t used[NET_RX_MAX_BUFS];
	while (done < need) {
		if (nb == max_bufs) {
			virtq_rewind(q, start);
			virtio_pci_guest_error(n->t, "a %zu-byte frame does not fit %u receive buffer%s: dropped", len,
					       max_bufs, max_bufs > 1 ? "s" : "");
			return NETDEV_RX_DROP;
		}
		int rc = virtq_pop(q, &n->rx[nb]);
		if (rc == 0) {
			/* Out of buffers, before the frame or in the middle of
			 * it: ask the driver to notify when it adds some
			 * (section 2.7.10), from where the ring ran out.  Asked
			 * at the frame's first buffer, which the driver has
			 * passed, it would never notify again.  Then the
			 * buffers taken go back for the next try, at once if
			 * the driver added one meanwhile (the frame needs at
			 * most max_bufs: this ends). */
			bool more = virtq_enable_notify(q);
			virtq_rewind(q, start);
			if (more) {
				nb = 0;
				done = 0;
				continue;
			}
			return NETDEV_RX_NO_ROOM;
		}
		if (rc < 0 || n->rx[nb].n_out || (nb == 0 && n->rx[nb].in_len < NET_HDR_LEN)) {
			if (rc > 0)
				err_set(-EINVAL, "receive buffer %s", n->rx[nb].n_out ? "with device-readable parts"
											: "shorter than the header");
			virtio_pci_broken(n->t, NET_RXQ);
			return NETDEV_RX_DROP;
		}
		size_t k = n->rx[nb].in_len < need - done ? (size_t)n->rx[nb].in_len : need - done;
		used[nb++] = (uint32_t)k;
		done += k;
	}
	if (negotiated(n, VIRTIO_NET_F_GUEST_CSUM) && n->nd->checksums_valid)
		hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	hdr[10] = (uint8_t)nb;   /* num_buffers */
	done = 0;
	for (unsigned i = 0; i < nb; i++) {
		rx_fill(&n->rx[i], hdr, frame, done, used[i]);
		done += used[i];
	}
	/* The frame's buffers in order, the first with the header that
	 * counts them (section 5.1.6.4). */
	for (unsigned i = 0; i < nb; i++) {
		if (virtq_push(q, &n->rx[i], used[i]) < 0) {
			virtio_pci_broken(n->t, NET_RXQ);
			return NETDEV_RX_DROP;
		}
	}
	virtio_pci_queue_done(n->t, NET_RXQ);
	return NETDEV_RX_DONE;
}

static const struct virtio_device_ops net_ops = {
	.device_id = VIRTIO_ID_NET, .class_code = 0x020000, .n_queues = 2, .queue_max = NET_QUEUE_SIZE,
	.features = 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_MAC |
		    1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS,
	.config_len = NET_CONFIG_LEN, .config = net_config, .notify = net_notify,
};

static void *net_create(const struct dev_ctx *ctx)
{
	const struct virtio_board *board = ctx->arg;
	const struct virtio_net_conf *conf = board ? board->conf : NULL;
	if (!conf || !conf->backend) {
		err_set(-EINVAL, "%s: no network backend", ctx->name);
		return NULL;
	}
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	n->nd = conf->backend;
	if (conf->batch && conf->backend->tx_wait_pays && ctx->clock) {
		n->tx_defer = true;
		n->clock = ctx->clock;
		timer_init(&n->tx_timer, ctx->clock, net_tx_timer, n);
	}
	if (!(n->t = virtio_pci_new(ctx, &net_ops, n))) {
		free(n);
		return NULL;
	}
	if (netdev_attach(n->nd, net_receive, n, ctx->lock) < 0) {
		virtio_pci_free(n->t);
		free(n);
		return NULL;
	}
	n->attached = true;
	return n;
}

void virtio_net_quiesce(void *dev)
{
	struct virtio_net *n = dev;
	if (n && n->tx_defer && timer_pending(&n->tx_timer)) {
		timer_del(&n->tx_timer);
		net_tx_timer(n);
	}
}

void virtio_net_detach(void *dev)
{
	struct virtio_net *n = dev;
	if (n && n->attached) {
		netdev_detach(n->nd);
		n->attached = false;
	}
}

static void net_reset(void *dev)
{
	struct virtio_net *n = dev;
	if (n->tx_defer)
		timer_del(&n->tx_timer);
	virtio_pci_reset(n->t);
}

static int64_t net_save(void *dev, void *buf, size_t cap) { return virtio_pci_save(((struct virtio_net *)dev)->t, buf, cap); }

static int net_load(void *dev, const void *buf, size_t len)
{
	struct virtio_net *n = dev;
	int rc = virtio_pci_load(n->t, buf, len);
	/* A transmit deferred at the save (the timer is not in the
	 * snapshot) left the driver's notifications off in guest memory:
	 * the restored device takes the ring up itself. */
	if (rc == 0 && n->tx_defer)
		timer_mod(&n->tx_timer, vm_clock_ns(n->clock) + NET_TX_DELAY_NS);
	return rc;
}

static void net_destroy(void *dev)
{
	struct virtio_net *n = dev;
	if (!n)
		return;
	virtio_net_detach(n);   /* done already by whoever holds the device lock now */
	if (n->tx_defer)
		timer_del(&n->tx_timer);
	virtio_pci_free(n->t);
	free(n);
}

const struct dev_desc virtio_net_device = {
	.name = "virtio-net", .create = net_create, .reset = net_reset,
	.save = net_save, .load = net_load, .destroy = net_destroy,
};
