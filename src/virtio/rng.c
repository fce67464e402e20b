/* virtio-rng (virtio 1.2, section 5.4): one queue of device-writable
 * buffers, filled from getrandom() (the host kernel's CSPRNG, which does
 * not block once seeded). */
#include "virtio/rng.h"

#include "util/error.h"
#include "virtio/virtio_pci.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

/* Bytes handed out per request at most: Linux asks for small buffers;
 * a larger one is filled in part (the used length says how much). */
#define RNG_MAX_REQUEST 4096u

struct virtio_rng {
	struct virtio_pci *t;
	struct virtq_elem elem;
};

static void rng_notify(void *dev, unsigned qi)
{
	struct virtio_rng *r = dev;
	struct virtq *q = virtio_pci_queue(r->t, qi);
	bool pushed = false;
	for (;;) {
		int rc = virtq_pop(q, &r->elem);
		if (rc == 0) {
			if (virtq_enable_notify(q))
				continue;
			break;
		}
		if (rc < 0) {
			virtio_pci_broken(r->t, qi);
			break;
		}
		/* Section 5.4.6.1: the device MUST place one or more random
		 * bytes into the buffer; readable buffers are ignored. */
		uint32_t done = 0;
		for (unsigned i = r->elem.n_out; i < r->elem.n_out + r->elem.n_in && done < RNG_MAX_REQUEST; i++) {
			size_t want = r->elem.iov[i].iov_len;
			if (want > RNG_MAX_REQUEST - done)
				want = RNG_MAX_REQUEST - done;
			ssize_t n = getrandom(r->elem.iov[i].iov_base, want, 0);
			if (n <= 0)
				break;
			done += (uint32_t)n;
			if ((size_t)n < want)
				break;
		}
		if (!r->elem.n_in)
			virtio_pci_guest_error(r->t, "entropy request without a writable buffer");
		if (virtq_push(q, &r->elem, done) < 0) {
			virtio_pci_broken(r->t, qi);
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_pci_queue_done(r->t, qi);
}

static const struct virtio_device_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG, .class_code = 0xff0000, .n_queues = 1, .queue_max = 64,
	.features = 1ull << VIRTIO_F_RING_PACKED, .config_len = 0, .notify = rng_notify,
};

static void *rng_create(const struct dev_ctx *ctx)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	if (!(r->t = virtio_pci_new(ctx, &rng_ops, r))) {
		free(r);
		return NULL;
	}
	return r;
}

static void rng_reset(void *dev) { virtio_pci_reset(((struct virtio_rng *)dev)->t); }
static int64_t rng_save(void *dev, void *buf, size_t cap) { return virtio_pci_save(((struct virtio_rng *)dev)->t, buf, cap); }
static int rng_load(void *dev, const void *buf, size_t len) { return virtio_pci_load(((struct virtio_rng *)dev)->t, buf, len); }

static void rng_destroy(void *dev)
{
	struct virtio_rng *r = dev;
	if (!r)
		return;
	virtio_pci_free(r->t);
	free(r);
}

const struct dev_desc virtio_rng_device = {
	.name = "virtio-rng", .create = rng_create, .reset = rng_reset,
	.save = rng_save, .load = rng_load, .destroy = rng_destroy,
};
