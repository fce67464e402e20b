/* isa-debug-exit at port 0xf4. */
#include "hw/debug_exit.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>

struct debug_exit {
	struct dev_ctx ctx;
};

static uint64_t debug_exit_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static void debug_exit_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct debug_exit *d = opaque;
	if (off)
		return;   /* only the base port; 0xf5-0xf7 are claimed for wide accesses */
	uint32_t v = size >= 4 ? (uint32_t)val : (uint32_t)(val & ((1u << (8 * size)) - 1));
	log_debug("debug-exit", "guest wrote %#x", v);
	dev_request(&d->ctx, DEV_REQ_STOP, (int)v);
}

static const struct bus_ops debug_exit_ops = { debug_exit_read, debug_exit_write };

struct debug_exit *debug_exit_new(const struct dev_ctx *ctx)
{
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	d->ctx = *ctx;
	if (bus_register(ctx->pio, ctx->base[0], 4, &debug_exit_ops, d, "debug-exit") < 0) {
		free(d);
		return NULL;
	}
	return d;
}

void debug_exit_free(struct debug_exit *d)
{
	if (!d)
		return;
	bus_release(d->ctx.pio, d);
	free(d);
}

static void *debug_exit_create(const struct dev_ctx *ctx) { return debug_exit_new(ctx); }
static void debug_exit_destroy(void *dev) { debug_exit_free(dev); }

const struct dev_desc debug_exit_device = {
	.name = "debug-exit", .create = debug_exit_create, .destroy = debug_exit_destroy,
};
