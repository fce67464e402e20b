/* virtio-console (virtio 1.2, section 5.3): one port, the guest's hvc0,
 * on a character backend (hw/chardev.h) -- the VMM's console, so the
 * terminal, its Ctrl-A escapes, a file or a socket serve it as they serve
 * COM1.  No feature is offered (no size, no multiport, no emergency
 * write): queue 0 carries input to the guest, queue 1 its output.
 *
 * Output runs on the vCPU thread that notified.  Input comes from the
 * backend's side under the device lock: can_receive() and receive() are
 * called back to back under it, so the first peeks at the next receive
 * buffer and the second fills it. */
#include "virtio/console.h"

#include "hw/chardev.h"
#include "util/error.h"
#include "virtio/virtio_pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CON_RXQ 0
#define CON_TXQ 1
#define CON_QUEUE_SIZE 64
#define CON_TX_CHUNK 4096u

struct virtio_console {
	struct virtio_pci *t;
	struct chardev *cd;
	struct virtq_elem elem;
	uint8_t buf[CON_TX_CHUNK];
};

static void con_tx(struct virtio_console *c)
{
	struct virtq *q = virtio_pci_queue(c->t, CON_TXQ);
	bool pushed = false;
	for (;;) {
		int rc = virtq_pop(q, &c->elem);
		if (rc == 0) {
			if (virtq_enable_notify(q))
				continue;
			break;
		}
		if (rc < 0) {
			virtio_pci_broken(c->t, CON_TXQ);
			break;
		}
		for (size_t off = 0; off < c->elem.out_len;) {
			size_t n = virtq_copy_from(&c->elem, off, c->buf, sizeof(c->buf));
			if (!n)
				break;
			chardev_write(c->cd, c->buf, n);
			off += n;
		}
		if (virtq_push(q, &c->elem, 0) < 0) {
			virtio_pci_broken(c->t, CON_TXQ);
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_pci_queue_done(c->t, CON_TXQ);
}

static void con_notify(void *dev, unsigned qi)
{
	struct virtio_console *c = dev;
	if (qi == CON_TXQ)
		con_tx(c);
	else
		chardev_accept_input(c->cd);   /* new receive buffers: input may go on */
}

/* Room for input: the next receive buffer's size, without taking it. */
static size_t con_can_receive(void *opaque)
{
	struct virtio_console *c = opaque;
	struct virtq *q = virtio_pci_queue(c->t, CON_RXQ);
	if (!virtio_pci_driver_ok(c->t) || !q->ready)
		return 0;
	for (int tries = 0; tries < 2; tries++) {
		int rc = virtq_pop(q, &c->elem);
		if (rc < 0) {
			virtio_pci_broken(c->t, CON_RXQ);
			return 0;
		}
		if (rc > 0) {
			q->last_avail--;   /* taken again by con_receive */
			return c->elem.n_out ? 0 : (size_t)c->elem.in_len;
		}
		/* Empty: ask the driver to notify when it adds one (2.7.10). */
		if (!virtq_enable_notify(q))
			break;
	}
	return 0;
}

static void con_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct virtio_console *c = opaque;
	struct virtq *q = virtio_pci_queue(c->t, CON_RXQ);
	if (virtq_pop(q, &c->elem) <= 0)
		return;
	size_t n = virtq_copy_to(&c->elem, 0, buf, len);
	if (virtq_push(q, &c->elem, (uint32_t)n) < 0) {
		virtio_pci_broken(c->t, CON_RXQ);
		return;
	}
	virtio_pci_queue_done(c->t, CON_RXQ);
}

static const struct virtio_device_ops con_ops = {
	.device_id = VIRTIO_ID_CONSOLE, .class_code = 0x078000, .n_queues = 2, .queue_max = CON_QUEUE_SIZE,
	.features = 0, .config_len = 0, .notify = con_notify,
};

static void *con_create(const struct dev_ctx *ctx)
{
	const struct virtio_board *board = ctx->arg;
	const struct virtio_console_conf *conf = board ? board->conf : NULL;
	if (!conf || !conf->backend) {
		err_set(-EINVAL, "%s: no console backend", ctx->name);
		return NULL;
	}
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	c->cd = conf->backend;
	if (!(c->t = virtio_pci_new(ctx, &con_ops, c))) {
		free(c);
		return NULL;
	}
	if (chardev_set_frontend(c->cd, con_can_receive, con_receive, c, ctx->lock) < 0) {
		chardev_detach(c->cd);
		virtio_pci_free(c->t);
		free(c);
		return NULL;
	}
	return c;
}

static void con_reset(void *dev) { virtio_pci_reset(((struct virtio_console *)dev)->t); }
static int64_t con_save(void *dev, void *buf, size_t cap) { return virtio_pci_save(((struct virtio_console *)dev)->t, buf, cap); }
static int con_load(void *dev, const void *buf, size_t len) { return virtio_pci_load(((struct virtio_console *)dev)->t, buf, len); }

static void con_destroy(void *dev)
{
	struct virtio_console *c = dev;
	if (!c)
		return;
	chardev_detach(c->cd);   /* under the device lock, like the UART */
	virtio_pci_free(c->t);
	free(c);
}

const struct dev_desc virtio_console_device = {
	.name = "virtio-console", .create = con_create, .reset = con_reset,
	.save = con_save, .load = con_load, .destroy = con_destroy,
};
