/* ACPI PM timer (ACPI 6.4 section 4.8.3.3). */
#include "hw/pm_timer.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/timer.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>

struct pm_timer {
	struct dev_ctx ctx;
};

uint32_t pm_timer_read(struct timer_service *ts)
{
	return (uint32_t)muldiv64(vm_clock_ns(ts), PM_TIMER_HZ, 1000000000ull);
}

static uint64_t pm_timer_bus_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pm_timer *t = opaque;
	uint64_t v = pm_timer_read(t->ctx.clock) >> (8 * (off & 3));
	return size >= 4 ? (uint32_t)v : v & ((1ull << (8 * size)) - 1);
}

static void pm_timer_bus_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	/* Read-only. */
}

static const struct bus_ops pm_timer_ops = { pm_timer_bus_read, pm_timer_bus_write };

static void *pm_timer_create(const struct dev_ctx *ctx)
{
	struct pm_timer *t = calloc(1, sizeof(*t));
	if (!t) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	t->ctx = *ctx;
	if (bus_register(ctx->pio, ctx->base[0], 4, &pm_timer_ops, t, "acpi-pmtmr") < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static void pm_timer_destroy(void *dev)
{
	struct pm_timer *t = dev;
	bus_release(t->ctx.pio, t);
	free(t);
}

/* No state of its own: the counter is the VM clock, saved as "vm-clock". */
const struct dev_desc pm_timer_device = {
	.name = "acpi-pmtmr", .create = pm_timer_create, .destroy = pm_timer_destroy,
};
