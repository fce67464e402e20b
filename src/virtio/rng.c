/* virtio-rng (virtio 1.2, section 5.4): one queue of device-writable
 * buffers, filled from getrandom() (the host kernel's CSPRNG, which does
 * not block once seeded).
 *
 * With a rate (--rng rate=BYTES), a token bucket of one second's worth
 * bounds what the guest takes: a request that finds it empty stays in the
 * ring, and a timer on the VM clock takes it up once a byte's worth has
 * come back. */
#include "virtio/rng.h"

#include "machine/timer.h"
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
	struct timer_service *clock;
	uint64_t rate;            /* bytes a second; 0: no limit */
	uint64_t tokens;          /* bytes that may go now */
	uint64_t refilled;        /* VM-clock ns of the last refill */
	struct vm_timer retry;
};

static void rng_refill(struct virtio_rng *r)
{
	uint64_t now = vm_clock_ns(r->clock);
	uint64_t add = muldiv64(now - r->refilled, r->rate, 1000000000ull);
	if (add) {
		r->tokens = r->tokens + add > r->rate ? r->rate : r->tokens + add;
		r->refilled = now;
	}
}

static void rng_notify(void *dev, unsigned qi)
{
	struct virtio_rng *r = dev;
	struct virtq *q = virtio_pci_queue(r->t, qi);
	bool pushed = false;
	for (;;) {
		uint32_t limit = RNG_MAX_REQUEST;
		if (r->rate) {
			rng_refill(r);
			if (!r->tokens) {
				/* Empty: the request waits in the ring for a byte's worth. */
				if (!timer_pending(&r->retry))
					timer_mod(&r->retry, vm_clock_ns(r->clock) + muldiv64(1, 1000000000ull, r->rate) + 1);
				break;
			}
			if (r->tokens < limit)
				limit = (uint32_t)r->tokens;
		}
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
		for (unsigned i = r->elem.n_out; i < r->elem.n_out + r->elem.n_in && done < limit; i++) {
			size_t want = r->elem.iov[i].iov_len;
			if (want > limit - done)
				want = limit - done;
			ssize_t n = getrandom(r->elem.iov[i].iov_base, want, 0);
			if (n <= 0)
				break;
			done += (uint32_t)n;
			if ((size_t)n < want)
				break;
		}
		if (!r->elem.n_in)
			virtio_pci_guest_error(r->t, "entropy request without a writable buffer");
		if (r->rate)
			r->tokens -= done < r->tokens ? done : r->tokens;
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

static void rng_retry(void *opaque)
{
	struct virtio_rng *r = opaque;
	if (virtio_pci_driver_ok(r->t) && virtio_pci_queue(r->t, 0)->ready)
		rng_notify(r, 0);
}

static void *rng_create(const struct dev_ctx *ctx)
{
	const struct virtio_board *board = ctx->arg;
	const struct virtio_rng_conf *conf = board ? board->conf : NULL;
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	if (conf && conf->rate) {
		if (!ctx->clock) {
			free(r);
			err_set(-EINVAL, "%s: a rate limit needs the VM clock", ctx->name);
			return NULL;
		}
		r->rate = conf->rate;
		r->tokens = conf->rate;
		r->clock = ctx->clock;
		r->refilled = vm_clock_ns(ctx->clock);
		timer_init(&r->retry, ctx->clock, rng_retry, r);
	}
	if (!(r->t = virtio_pci_new(ctx, &rng_ops, r))) {
		free(r);
		return NULL;
	}
	return r;
}

static void rng_reset(void *dev) { virtio_pci_reset(((struct virtio_rng *)dev)->t); }
static int64_t rng_save(void *dev, void *buf, size_t cap) { return virtio_pci_save(((struct virtio_rng *)dev)->t, buf, cap); }
static int rng_load(void *dev, const void *buf, size_t len)
{
	struct virtio_rng *r = dev;
	int rc = virtio_pci_load(r->t, buf, len);
	/* A request that waited for the bucket at the save waits no more
	 * than a moment here (the timer is not in the snapshot). */
	if (rc == 0 && r->rate)
		timer_mod(&r->retry, vm_clock_ns(r->clock) + 1000000);
	return rc;
}

static void rng_destroy(void *dev)
{
	struct virtio_rng *r = dev;
	if (!r)
		return;
	if (r->rate)
		timer_del(&r->retry);
	virtio_pci_free(r->t);
	free(r);
}

const struct dev_desc virtio_rng_device = {
	.name = "virtio-rng", .create = rng_create, .reset = rng_reset,
	.save = rng_save, .load = rng_load, .destroy = rng_destroy,
};
