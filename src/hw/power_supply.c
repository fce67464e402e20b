/* ACPI AC adapter and battery backed by the host (see power_supply.h and
 * docs/power.md "The host's power state").
 *
 * The device holds the state the guest last could read and compares the
 * source's with it every POWER_SUPPLY_CHECK_MS.  A change is a GPE whose
 * handler (the DSDT's \_GPE._E02) reads EVT and notifies the objects
 * named there: the OS then evaluates _PSR, _BST or _BIF again (ACPI 6.4
 * 10.2.1, 10.3).  Reading EVT clears what it returns, so a change that
 * lands while the handler runs raises the GPE again and is never lost. */
#include "hw/power_supply.h"

#include "hw/device.h"
#include "machine/bus.h"
#include "machine/snap_state.h"
#include "machine/timer.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct power_supply {
	struct dev_ctx ctx;
	const struct power_supply_source *src;   /* NULL: no host state */
	struct power_supply_status st;           /* what the guest reads */
	uint32_t evt;                            /* pending for the OS */
	struct vm_timer check;
};

static bool info_differs(const struct power_supply_status *a, const struct power_supply_status *b)
{
	return a->battery != b->battery || a->unit != b->unit || a->design_capacity != b->design_capacity ||
	       a->full_capacity != b->full_capacity || a->design_voltage != b->design_voltage ||
	       a->technology != b->technology;
}

static bool status_differs(const struct power_supply_status *a, const struct power_supply_status *b)
{
	return a->state != b->state || a->rate != b->rate || a->remaining != b->remaining ||
	       a->voltage != b->voltage;
}

/* Takes a new state: what differs becomes EVT bits and one GPE. */
static void ps_update(struct power_supply *ps, const struct power_supply_status *now)
{
	uint32_t evt = 0;
	if (now->ac_online != ps->st.ac_online)
		evt |= POWER_SUPPLY_EVT_AC;
	if (info_differs(now, &ps->st))
		evt |= POWER_SUPPLY_EVT_INFO | POWER_SUPPLY_EVT_STATUS;
	if (status_differs(now, &ps->st))
		evt |= POWER_SUPPLY_EVT_STATUS;
	ps->st = *now;
	if (!evt)
		return;
	ps->evt |= evt;
	irq_line_pulse(&ps->ctx.irq[0]);
}

void power_supply_check(struct power_supply *ps)
{
	if (!ps->src)
		return;
	struct power_supply_status now;
	memset(&now, 0, sizeof(now));
	ps->src->get(ps->src->opaque, &now);
	ps_update(ps, &now);
}

static void ps_arm(struct power_supply *ps)
{
	timer_mod(&ps->check, vm_clock_ns(ps->ctx.clock) + POWER_SUPPLY_CHECK_MS * 1000000ull);
}

static void ps_timer(void *opaque)
{
	struct power_supply *ps = opaque;
	power_supply_check(ps);
	ps_arm(ps);
}

static uint64_t ps_reg(const struct power_supply *ps, uint64_t off)
{
	const struct power_supply_status *s = &ps->st;
	switch (off) {
	case POWER_SUPPLY_STA:
		return (s->ac_online ? POWER_SUPPLY_STA_AC : 0) | (s->battery ? POWER_SUPPLY_STA_BATTERY : 0) |
		       (s->state & 7u) << POWER_SUPPLY_STA_STATE_SHIFT;
	case POWER_SUPPLY_EVT: return ps->evt;
	case POWER_SUPPLY_UNIT: return s->unit;
	case POWER_SUPPLY_DCAP: return s->design_capacity;
	case POWER_SUPPLY_FCAP: return s->full_capacity;
	case POWER_SUPPLY_DVOL: return s->design_voltage;
	case POWER_SUPPLY_RATE: return s->rate;
	case POWER_SUPPLY_RCAP: return s->remaining;
	case POWER_SUPPLY_PVOL: return s->voltage;
	case POWER_SUPPLY_TECH: return s->technology;
	}
	return 0;
}

static uint64_t ps_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct power_supply *ps = opaque;
	(void)vcpu;
	uint64_t v = ps_reg(ps, off & ~3ull) >> (8 * (off & 3));
	if (size < 4)
		v &= (1ull << (8 * size)) - 1;
	/* Only the dword read of the DSDT's Field consumes the events. */
	if (off == POWER_SUPPLY_EVT && size == 4)
		ps->evt = 0;
	return v & 0xffffffffu;
}

static void ps_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	/* Every register is the host's: writes are ignored. */
	(void)opaque, (void)vcpu, (void)off, (void)size, (void)val;
}

static const struct bus_ops ps_ops = { ps_read, ps_write };

static void *ps_create(const struct dev_ctx *ctx)
{
	struct power_supply *ps = calloc(1, sizeof(*ps));
	if (!ps) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	ps->ctx = *ctx;
	ps->src = ctx->arg;
	if (bus_register(ctx->pio, ctx->base[0], POWER_SUPPLY_LEN, &ps_ops, ps, "power-supply") < 0) {
		free(ps);
		return NULL;
	}
	if (ps->src) {
		/* The state at power-up needs no event: the OS reads it when
		 * its drivers bind. */
		ps->src->get(ps->src->opaque, &ps->st);
		timer_init(&ps->check, ctx->clock, ps_timer, ps);
		ps_arm(ps);
	}
	return ps;
}

/* The host's supplies do not reset with the guest: only what was pending
 * for the OS goes. */
static void ps_reset(void *dev)
{
	struct power_supply *ps = dev;
	ps->evt = 0;
}

static void ps_destroy(void *dev)
{
	struct power_supply *ps = dev;
	if (!ps)
		return;
	if (ps->src)
		timer_del(&ps->check);
	bus_release(ps->ctx.pio, ps);
	free(ps);
}

/* Version 1: the state the guest saw and the events pending.  After a
 * restore the next check compares it with the host's of that moment, so
 * the guest learns what changed while the VM was saved. */
static int64_t ps_save(void *dev, void *buf, size_t cap)
{
	struct power_supply *ps = dev;
	const struct power_supply_status *s = &ps->st;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u8(&w, s->ac_online);
	hw_snap_u8(&w, s->battery);
	hw_snap_u32(&w, s->state);
	hw_snap_u32(&w, s->unit);
	hw_snap_u32(&w, s->design_capacity);
	hw_snap_u32(&w, s->full_capacity);
	hw_snap_u32(&w, s->design_voltage);
	hw_snap_u32(&w, s->rate);
	hw_snap_u32(&w, s->remaining);
	hw_snap_u32(&w, s->voltage);
	hw_snap_u32(&w, s->technology);
	hw_snap_u32(&w, ps->evt);
	return hw_snap_end(&w);
}

static int ps_load(void *dev, const void *buf, size_t len)
{
	struct power_supply *ps = dev;
	struct power_supply_status *s = &ps->st;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "power-supply", 1, 2 + 10 * 4);
	if (rc < 0)
		return rc;
	s->ac_online = hw_snap_get_bool(&r);
	s->battery = hw_snap_get_bool(&r);
	s->state = hw_snap_get_u32(&r) & 7u;
	s->unit = hw_snap_get_u32(&r) & 1u;
	s->design_capacity = hw_snap_get_u32(&r);
	s->full_capacity = hw_snap_get_u32(&r);
	s->design_voltage = hw_snap_get_u32(&r);
	s->rate = hw_snap_get_u32(&r);
	s->remaining = hw_snap_get_u32(&r);
	s->voltage = hw_snap_get_u32(&r);
	s->technology = hw_snap_get_u32(&r) & 1u;
	ps->evt = hw_snap_get_u32(&r) & (POWER_SUPPLY_EVT_AC | POWER_SUPPLY_EVT_STATUS | POWER_SUPPLY_EVT_INFO);
	return 0;
}

const struct dev_desc power_supply_device = {
	.name = "power-supply", .create = ps_create, .reset = ps_reset,
	.save = ps_save, .load = ps_load, .destroy = ps_destroy,
};
