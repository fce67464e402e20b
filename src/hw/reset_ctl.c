/* Reset control register (ICH9 RST_CNT, port 0xcf9). */
#include "hw/reset_ctl.h"

#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>

#define RST_CNT_SYS_RST 0x02
#define RST_CNT_RST_CPU 0x04

struct reset_ctl {
	struct dev_ctx ctx;
	uint8_t value;
};

static uint64_t reset_ctl_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct reset_ctl *r = opaque;
	return r->value;
}

static void reset_ctl_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct reset_ctl *r = opaque;
	r->value = val & RST_CNT_SYS_RST;
	/* The 0 -> 1 transition of RST_CPU starts the reset (hard or soft:
	 * both restart the VM from power-on here). */
	if (val & RST_CNT_RST_CPU) {
		log_info("reset", "guest wrote %#x to the reset control register", (unsigned)(val & 0xff));
		dev_request(&r->ctx, DEV_REQ_RESET, 0);
	}
}

const struct bus_ops reset_ctl_ops = { reset_ctl_read, reset_ctl_write };

void reset_ctl_reset(struct reset_ctl *r) { r->value = 0; }

struct reset_ctl *reset_ctl_new(const struct dev_ctx *ctx)
{
	struct reset_ctl *r = calloc(1, sizeof(*r));
	if (!r) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	r->ctx = *ctx;
	return r;
}

void reset_ctl_free(struct reset_ctl *r) { free(r); }

static void *reset_ctl_create(const struct dev_ctx *ctx) { return reset_ctl_new(ctx); }
static void reset_ctl_reset_dev(void *dev) { reset_ctl_reset(dev); }
static void reset_ctl_destroy(void *dev) { reset_ctl_free(dev); }

const struct dev_desc reset_ctl_device = {
	.name = "reset", .create = reset_ctl_create, .reset = reset_ctl_reset_dev,
	.save = reset_ctl_snapshot_save, .load = reset_ctl_snapshot_load, .destroy = reset_ctl_destroy,
};

/* Version 1: the RST_CNT value (its bits other than RST_CPU stick). */
int64_t reset_ctl_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u8(&w, ((struct reset_ctl *)opaque)->value);
	return hw_snap_end(&w);
}

int reset_ctl_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "reset", 1, 1);
	if (rc == 0)
		((struct reset_ctl *)opaque)->value = hw_snap_get_u8(&r);
	return rc;
}
