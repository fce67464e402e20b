/* HPET (IA-PC HPET specification 1.0a, section 2.3 register set). */
#include "hw/hpet.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/timer.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CFG_ENABLE  (1ull << 0)
#define CFG_LEGACY  (1ull << 1)

#define TN_LEVEL     (1ull << 1)
#define TN_INT_ENB   (1ull << 2)
#define TN_PERIODIC  (1ull << 3)
#define TN_PER_CAP   (1ull << 4)
#define TN_SIZE_CAP  (1ull << 5)
#define TN_VAL_SET   (1ull << 6)
#define TN_32BIT     (1ull << 8)
#define TN_ROUTE_SHIFT 9
#define TN_ROUTE_MASK  (0x1full << TN_ROUTE_SHIFT)
#define TN_WRITABLE  (TN_LEVEL | TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_32BIT | TN_ROUTE_MASK)
/* Routes to I/O APIC pins 16-23 (Tn_INT_ROUTE_CAP, bits 32-63). */
#define TN_ROUTE_CAP 0x00ff0000ull

struct hpet_timer {
	struct hpet *h;
	unsigned idx;
	uint64_t config, cmp, period;
	struct vm_timer timer;
	bool level;          /* interrupt line as driven now */
	unsigned line;       /* GSI currently driven */
};

/* Inputs of the interrupt controller a timer may drive: the routes of
 * TN_ROUTE_CAP and the legacy IRQs all lie below it. */
#define HPET_LINES 24
/* ISA IRQs the legacy replacement route drives (spec 2.3.9.2.1). */
#define LEGACY_IRQ_TIMER0 0
#define LEGACY_IRQ_TIMER1 8

struct hpet {
	/* irq[0]: the interrupt controller's inputs as a bank (line n + GSI);
	 * irq[1]: the legacy replacement output (LegacyReplacement Route on). */
	struct dev_ctx ctx;
	struct timer_service *ts;
	uint64_t config, isr;
	uint64_t counter;        /* value when halted, or at enable_time */
	uint64_t enable_time;    /* VM-clock ns when the counter last started */
	struct hpet_timer t[HPET_NUM_TIMERS];
};

static uint64_t now_ns(struct hpet *h) { return vm_clock_ns(h->ts); }

static uint64_t hpet_counter(struct hpet *h)
{
	if (!(h->config & CFG_ENABLE))
		return h->counter;
	return h->counter + muldiv64(now_ns(h) - h->enable_time, 1000000, HPET_PERIOD_FS);
}

static uint64_t ticks_to_ns(uint64_t ticks) { return muldiv64(ticks, HPET_PERIOD_FS, 1000000); }

/* The GSI a timer drives (spec 2.3.9.2.1 legacy replacement). */
static unsigned timer_line(struct hpet_timer *t)
{
	if ((t->h->config & CFG_LEGACY) && t->idx < 2)
		return t->idx == 0 ? LEGACY_IRQ_TIMER0 : LEGACY_IRQ_TIMER1;
	return (unsigned)((t->config & TN_ROUTE_MASK) >> TN_ROUTE_SHIFT);
}

static void timer_drive(struct hpet_timer *t, bool level)
{
	struct hpet *h = t->h;
	unsigned line = timer_line(t);
	if (t->level && t->line != line) {
		irq_line_set_at(&h->ctx.irq[0], t->line, false);
		t->level = false;
	}
	t->line = line;
	if (level == t->level)
		return;
	t->level = level;
	irq_line_set_at(&h->ctx.irq[0], line, level);
}

static void timer_raise(struct hpet_timer *t)
{
	struct hpet *h = t->h;
	if (!(t->config & TN_INT_ENB))
		return;
	if (t->config & TN_LEVEL) {
		/* Level: status bit set, line held until software clears it. */
		h->isr |= 1ull << t->idx;
		timer_drive(t, true);
	} else {
		unsigned line = timer_line(t);
		irq_line_set_at(&h->ctx.irq[0], line, true);
		irq_line_set_at(&h->ctx.irq[0], line, false);
	}
}

static void timer_schedule(struct hpet_timer *t)
{
	struct hpet *h = t->h;
	timer_del(&t->timer);
	if (!(h->config & CFG_ENABLE))
		return;
	uint64_t cnt = hpet_counter(h);
	uint64_t diff;
	if (t->config & TN_32BIT) {
		uint32_t d = (uint32_t)t->cmp - (uint32_t)cnt;
		diff = d ? d : 0x100000000ull;
	} else {
		diff = t->cmp - cnt;
		if ((int64_t)diff <= 0) {
			/* Comparator already passed: a 64-bit counter only matches
			 * again after wrapping, which never happens in practice. */
			return;
		}
	}
	timer_mod(&t->timer, now_ns(h) + ticks_to_ns(diff));
}

static void timer_fire(void *opaque)
{
	struct hpet_timer *t = opaque;
	struct hpet *h = t->h;
	timer_raise(t);
	if ((t->config & TN_PERIODIC) && t->period) {
		/* Periodic: the comparator advances by the period (2.3.9.2.2);
		 * catch up if the host fell behind by several periods. */
		uint64_t cnt = hpet_counter(h);
		t->cmp += t->period;
		if ((int64_t)(cnt - t->cmp) >= 0)
			t->cmp += ((cnt - t->cmp) / t->period + 1) * t->period;
		if (t->config & TN_32BIT)
			t->cmp = (uint32_t)t->cmp;
		timer_schedule(t);
	} else if (t->config & TN_32BIT) {
		timer_schedule(t);   /* a 32-bit comparator matches again after the wrap */
	}
}

static void hpet_set_config(struct hpet *h, uint64_t val)
{
	uint64_t old = h->config;
	h->config = val & (CFG_ENABLE | CFG_LEGACY);
	if ((old ^ h->config) & CFG_ENABLE) {
		if (h->config & CFG_ENABLE) {
			h->enable_time = now_ns(h);
		} else {
			/* Halt: keep the value reached. */
			h->config |= CFG_ENABLE;
			uint64_t c = hpet_counter(h);
			h->config &= ~CFG_ENABLE;
			h->counter = c;
		}
	}
	irq_line_set(&h->ctx.irq[1], h->config & CFG_LEGACY);
	for (unsigned i = 0; i < HPET_NUM_TIMERS; i++) {
		struct hpet_timer *t = &h->t[i];
		if (t->level)
			timer_drive(t, (h->isr >> i) & 1);   /* re-route a held level */
		timer_schedule(t);
	}
}

static uint64_t timer_reg_read(struct hpet_timer *t, unsigned reg)
{
	switch (reg) {
	case 0x00: return t->config | (TN_ROUTE_CAP << 32);
	case 0x08: return (t->config & TN_32BIT) ? (uint32_t)t->cmp : t->cmp;
	default: return 0;   /* FSB route: not supported (Tn_FSB_INT_DEL_CAP = 0) */
	}
}

static void timer_reg_write(struct hpet_timer *t, unsigned reg, uint64_t val, uint64_t mask)
{
	switch (reg) {
	case 0x00: {
		uint64_t cfg = (t->config & ~mask) | (val & mask);
		uint64_t writable = TN_WRITABLE;
		if (!(t->config & TN_PER_CAP))
			writable &= ~TN_PERIODIC;
		unsigned route = (unsigned)((cfg & TN_ROUTE_MASK) >> TN_ROUTE_SHIFT);
		if (!((TN_ROUTE_CAP >> route) & 1))
			writable &= ~TN_ROUTE_MASK;   /* unsupported route: keep the old one */
		t->config = (t->config & ~writable) | (cfg & writable);
		if (t->config & TN_32BIT)
			t->cmp = (uint32_t)t->cmp;
		if (!(t->config & TN_LEVEL) && t->level) {
			t->h->isr &= ~(1ull << t->idx);
			timer_drive(t, false);
		}
		timer_schedule(t);
		break;
	}
	case 0x08: {
		uint64_t v = (t->cmp & ~mask) | (val & mask);
		if (t->config & TN_32BIT)
			v = (uint32_t)v;
		/* Periodic: a write sets the period; with VAL_SET it also sets the
		 * comparator itself (2.3.9.2.2, Tn_VAL_SET_CNF). */
		if (!(t->config & TN_PERIODIC) || (t->config & TN_VAL_SET))
			t->cmp = v;
		if (t->config & TN_PERIODIC) {
			t->period = (t->period & ~mask) | (val & mask);
			if (t->config & TN_32BIT)
				t->period = (uint32_t)t->period;
		}
		t->config &= ~TN_VAL_SET;
		timer_schedule(t);
		break;
	}
	default:
		break;
	}
}

static uint64_t hpet_reg_read(struct hpet *h, unsigned reg)
{
	switch (reg) {
	case 0x000: return HPET_CAP_ID_LOW | ((uint64_t)HPET_PERIOD_FS << 32);
	case 0x010: return h->config;
	case 0x020: return h->isr;
	case 0x0f0: return hpet_counter(h);
	default:
		if (reg >= 0x100 && reg < 0x100 + 0x20 * HPET_NUM_TIMERS)
			return timer_reg_read(&h->t[(reg - 0x100) / 0x20], (reg - 0x100) % 0x20);
		return 0;
	}
}

static void hpet_reg_write(struct hpet *h, unsigned reg, uint64_t val, uint64_t mask)
{
	switch (reg) {
	case 0x010:
		hpet_set_config(h, (h->config & ~mask) | (val & mask));
		break;
	case 0x020:
		/* Level-triggered status bits clear by writing 1. */
		for (unsigned i = 0; i < HPET_NUM_TIMERS; i++) {
			if ((val & mask) >> i & 1 && (h->isr >> i & 1)) {
				h->isr &= ~(1ull << i);
				timer_drive(&h->t[i], false);
			}
		}
		break;
	case 0x0f0:
		/* The main counter is writable only while halted (2.3.5). */
		if (!(h->config & CFG_ENABLE))
			h->counter = (h->counter & ~mask) | (val & mask);
		break;
	default:
		if (reg >= 0x100 && reg < 0x100 + 0x20 * HPET_NUM_TIMERS)
			timer_reg_write(&h->t[(reg - 0x100) / 0x20], (reg - 0x100) % 0x20, val, mask);
		break;
	}
}

/* 32- and 64-bit accesses (spec 2.3: "naturally aligned"); a 32-bit access
 * reaches one half of a 64-bit register. */
static uint64_t hpet_mmio_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct hpet *h = opaque;
	unsigned reg = (unsigned)off & ~7u;
	unsigned shift = (unsigned)(off & 7) * 8;
	uint64_t v = hpet_reg_read(h, reg) >> shift;
	return size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
}

static void hpet_mmio_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct hpet *h = opaque;
	unsigned reg = (unsigned)off & ~7u;
	unsigned shift = (unsigned)(off & 7) * 8;
	if (shift + size * 8 > 64)
		return;
	uint64_t mask = (size >= 8 ? ~0ull : (1ull << (8 * size)) - 1) << shift;
	hpet_reg_write(h, reg, val << shift, mask);
}

static const struct bus_ops hpet_ops = { hpet_mmio_read, hpet_mmio_write };

void hpet_reset(struct hpet *h)
{
	for (unsigned i = 0; i < HPET_NUM_TIMERS; i++) {
		struct hpet_timer *t = &h->t[i];
		timer_del(&t->timer);
		if (t->level)
			irq_line_set_at(&h->ctx.irq[0], t->line, false);
		t->level = false;
		t->config = TN_SIZE_CAP | (i < 2 ? TN_PER_CAP : 0);
		t->cmp = ~0ull;
		t->period = 0;
		t->line = 0;
	}
	h->config = 0;
	h->isr = 0;
	h->counter = 0;
	irq_line_set(&h->ctx.irq[1], false);
}

struct hpet *hpet_new(const struct dev_ctx *ctx)
{
	struct hpet *h = calloc(1, sizeof(*h));
	if (!h) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	h->ctx = *ctx;
	struct timer_service *ts = h->ts = ctx->clock;
	for (unsigned i = 0; i < HPET_NUM_TIMERS; i++) {
		h->t[i].h = h;
		h->t[i].idx = i;
		timer_init(&h->t[i].timer, ts, timer_fire, &h->t[i]);
	}
	hpet_reset(h);
	if (bus_register(ctx->mmio, ctx->base[0], 0x400, &hpet_ops, h, "hpet") < 0) {
		hpet_free(h);
		return NULL;
	}
	return h;
}

void hpet_free(struct hpet *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < HPET_NUM_TIMERS; i++)
		timer_del(&h->t[i].timer);
	bus_release(h->ctx.mmio, h);
	free(h);
}

static void *hpet_create(const struct dev_ctx *ctx) { return hpet_new(ctx); }
static void hpet_reset_dev(void *dev) { hpet_reset(dev); }
static void hpet_destroy(void *dev) { hpet_free(dev); }

const struct dev_desc hpet_device = {
	.name = "hpet", .create = hpet_create, .reset = hpet_reset_dev,
	.save = hpet_snapshot_save, .load = hpet_snapshot_load, .destroy = hpet_destroy,
};

/* Snapshot state, version 1: general configuration and interrupt status,
 * the main counter with the VM-clock time it last started, and per
 * comparator its configuration, comparator, period, the armed deadline and
 * the line it drives (IA-PC HPET specification 1.0a, 2.3). */
#define HPET_SNAP_VERSION 1

static void hpet_write_state(struct hpet *h, struct hw_snap_writer *w)
{
	hw_snap_u64(w, h->config);
	hw_snap_u64(w, h->isr);
	hw_snap_u64(w, h->counter);
	hw_snap_u64(w, h->enable_time);
	for (unsigned i = 0; i < HPET_NUM_TIMERS; i++) {
		struct hpet_timer *t = &h->t[i];
		hw_snap_u64(w, t->config);
		hw_snap_u64(w, t->cmp);
		hw_snap_u64(w, t->period);
		hw_snap_timer(w, &t->timer);
		hw_snap_u8(w, t->level);
		hw_snap_u8(w, (uint8_t)t->line);
	}
}

int64_t hpet_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, HPET_SNAP_VERSION);
	hpet_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int hpet_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct hpet *h = opaque;
	struct hw_snap_writer size = { 0 };
	hpet_write_state(h, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "hpet", HPET_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	uint64_t g[4];
	for (unsigned i = 0; i < 4; i++)
		g[i] = hw_snap_get_u64(&r);
	uint64_t cfg[HPET_NUM_TIMERS], cmp[HPET_NUM_TIMERS], period[HPET_NUM_TIMERS];
	struct hw_snap_timer_state tm[HPET_NUM_TIMERS];
	bool level[HPET_NUM_TIMERS];
	uint8_t line[HPET_NUM_TIMERS];
	for (unsigned i = 0; i < HPET_NUM_TIMERS; i++) {
		cfg[i] = hw_snap_get_u64(&r);
		cmp[i] = hw_snap_get_u64(&r);
		period[i] = hw_snap_get_u64(&r);
		tm[i] = hw_snap_get_timer(&r);
		level[i] = hw_snap_get_bool(&r);
		line[i] = hw_snap_get_u8(&r);
		/* The line indexes the GSI array when it is lowered later. */
		if (line[i] >= HPET_LINES)
			return err_set(-EINVAL, "hpet state: timer %u drives GSI %u", i, line[i]);
	}
	h->config = g[0];
	h->isr = g[1];
	h->counter = g[2];
	h->enable_time = g[3];
	for (unsigned i = 0; i < HPET_NUM_TIMERS; i++) {
		struct hpet_timer *t = &h->t[i];
		t->config = cfg[i];
		t->cmp = cmp[i];
		t->period = period[i];
		t->level = level[i];
		t->line = line[i];
		hw_snap_rearm(&t->timer, tm[i]);
	}
	return 0;
}
