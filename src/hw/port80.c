/* POST code port 0x80 (a sink; Linux uses it for I/O delays). */
#include "hw/port80.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct port80 {
	struct dev_ctx ctx;
	uint8_t last;
};

static uint64_t port80_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct port80 *p = opaque;
	return p->last;
}

static void port80_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct port80 *p = opaque;
	p->last = (uint8_t)val;
}

static const struct bus_ops port80_ops = { port80_read, port80_write };

struct port80 *port80_new(const struct dev_ctx *ctx)
{
	struct port80 *p = calloc(1, sizeof(*p));
	if (!p) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	p->ctx = *ctx;
	if (bus_register(ctx->pio, ctx->base[0], 1, &port80_ops, p, "post") < 0) {
		free(p);
		return NULL;
	}
	return p;
}

void port80_free(struct port80 *p)
{
	if (!p)
		return;
	bus_release(p->ctx.pio, p);
	free(p);
}

static void *port80_create(const struct dev_ctx *ctx) { return port80_new(ctx); }
static void port80_destroy(void *dev) { port80_free(dev); }

const struct dev_desc port80_device = {
	.name = "port80", .create = port80_create, .save = port80_snapshot_save,
	.load = port80_snapshot_load, .destroy = port80_destroy,
};

/* Version 1: the last POST code. */
int64_t port80_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u8(&w, ((struct port80 *)opaque)->last);
	return hw_snap_end(&w);
}

int port80_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "port80", 1, 1);
	if (rc == 0)
		((struct port80 *)opaque)->last = hw_snap_get_u8(&r);
	return rc;
}
