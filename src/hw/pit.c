/* 8254 PIT (82C54 datasheet: control word format, modes 0-5, read-back). */
#include "hw/pit.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/timer.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { RW_LATCH = 0, RW_LSB = 1, RW_MSB = 2, RW_WORD = 3 };

struct pit_channel {
	struct pit *pit;
	unsigned idx;
	uint32_t count;          /* reload value, 1..0x10000 */
	uint64_t load_time;      /* VM-clock ns when counting began */
	uint8_t mode, rw, bcd;
	bool gate;
	bool null_count;         /* count written but not yet loaded (status bit 6) */
	bool counting;           /* a count has been loaded */
	uint16_t latch;
	bool latched, status_latched;
	uint8_t status;
	bool read_msb_next, write_msb_next;  /* RW_WORD byte flip-flops */
	uint8_t write_lsb;
	struct vm_timer timer;   /* channel 0: next IRQ0 edge */
	uint64_t next_irq_tick;
};

struct pit {
	struct dev_ctx ctx;      /* irq[0]: IRQ0 (gated by the HPET's legacy replacement on a PC) */
	struct timer_service *ts;
	struct pit_channel ch[3];
	uint8_t port61;          /* bits 0 (ch2 gate) and 1 (speaker data) */
};

static uint64_t now_ns(struct pit *p) { return vm_clock_ns(p->ts); }

/* Input clock ticks since the count was loaded. */
static uint64_t ch_ticks(struct pit_channel *c)
{
	uint64_t now = now_ns(c->pit);
	if (now <= c->load_time)
		return 0;
	return muldiv64(now - c->load_time, PIT_HZ, 1000000000ull);
}

static uint64_t tick_to_ns(struct pit_channel *c, uint64_t tick)
{
	return c->load_time + muldiv64(tick, 1000000000ull, PIT_HZ) + 1;
}

/* Counting element value now (datasheet "Operation" for each mode). */
static uint16_t ch_count(struct pit_channel *c)
{
	if (!c->counting)
		return 0;
	uint64_t d = ch_ticks(c);
	switch (c->mode) {
	case 2: return (uint16_t)(c->count - d % c->count);
	case 3: return (uint16_t)(c->count - (2 * d) % c->count);   /* counts down by two */
	default: return (uint16_t)(c->count - d);                   /* 0, 1, 4, 5: wraps */
	}
}

static bool ch_out(struct pit_channel *c)
{
	if (!c->counting)
		return c->mode != 0;   /* mode 0 starts low; the others high */
	uint64_t d = ch_ticks(c);
	switch (c->mode) {
	case 0: case 1: return d >= c->count;
	case 2: return d % c->count != c->count - 1 || c->count == 1;
	case 3: return d % c->count < (c->count + 1) / 2;
	default: return d != c->count;   /* 4, 5: low for one clock at terminal count */
	}
}

bool pit_get_out(struct pit *p, unsigned ch) { return ch < 3 && ch_out(&p->ch[ch]); }

/* Channel 0: schedule the next edge of OUT that raises IRQ0. */
static void ch0_schedule(struct pit_channel *c)
{
	timer_del(&c->timer);
	if (c->idx != 0 || !c->counting || !c->gate)
		return;
	switch (c->mode) {
	case 0: case 1: case 4: case 5: {
		uint64_t tick = c->count;     /* terminal count */
		if (ch_ticks(c) >= tick)
			return;
		c->next_irq_tick = tick;
		break;
	}
	default: {                            /* 2, 3: periodic */
		uint64_t d = ch_ticks(c);
		c->next_irq_tick = (d / c->count + 1) * c->count;
		break;
	}
	}
	timer_mod(&c->timer, tick_to_ns(c, c->next_irq_tick));
}

static void ch0_fire(void *opaque)
{
	struct pit_channel *c = opaque;
	struct pit *p = c->pit;
	if (c->mode == 0 || c->mode == 1)
		irq_line_set(&p->ctx.irq[0], true);   /* OUT stays high */
	else
		irq_line_pulse(&p->ctx.irq[0]);
	if (c->mode == 2 || c->mode == 3) {
		/* Far behind (host stalled): skip lost periods. */
		uint64_t d = ch_ticks(c);
		uint64_t next = c->next_irq_tick + c->count;
		if (d >= next)
			next = (d / c->count + 1) * c->count;
		c->next_irq_tick = next;
		timer_mod(&c->timer, tick_to_ns(c, next));
	}
}

static void ch_load(struct pit_channel *c, uint32_t val)
{
	if (val == 0)
		val = 0x10000;   /* a count of 0 means 2^16 (binary) */
	c->count = val;
	c->load_time = now_ns(c->pit);
	c->counting = true;
	c->null_count = false;
	if (c->idx == 0 && (c->mode == 0 || c->mode == 1))
		irq_line_set(&c->pit->ctx.irq[0], false);   /* writing the count drops OUT */
	ch0_schedule(c);
}

static void ch_write_control(struct pit_channel *c, uint8_t val)
{
	unsigned rw = (val >> 4) & 3;
	if (rw == RW_LATCH) {
		if (!c->latched) {
			c->latch = ch_count(c);
			c->latched = true;
			c->read_msb_next = false;
		}
		return;
	}
	c->rw = rw;
	c->mode = (val >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4;    /* modes 6 and 7 are aliases of 2 and 3 */
	c->bcd = val & 1;
	c->null_count = true;
	c->counting = false;
	c->latched = c->status_latched = false;
	c->read_msb_next = c->write_msb_next = false;
	timer_del(&c->timer);
	/* The line idles low: modes 0 and 1 raise it at terminal count, the
	 * periodic modes pulse it once per period (an edge for the 8259). */
	if (c->idx == 0)
		irq_line_set(&c->pit->ctx.irq[0], false);
}

static void pit_readback(struct pit *p, uint8_t val)
{
	for (unsigned i = 0; i < 3; i++) {
		if (!(val & (2u << i)))
			continue;
		struct pit_channel *c = &p->ch[i];
		if (!(val & 0x20) && !c->latched) {
			c->latch = ch_count(c);
			c->latched = true;
			c->read_msb_next = false;
		}
		if (!(val & 0x10) && !c->status_latched) {
			c->status = (uint8_t)((ch_out(c) << 7) | (c->null_count << 6) | (c->rw << 4) |
					      (c->mode << 1) | c->bcd);
			c->status_latched = true;
		}
	}
}

static uint8_t ch_read(struct pit_channel *c)
{
	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	uint16_t v = c->latched ? c->latch : ch_count(c);
	uint8_t out;
	switch (c->rw) {
	case RW_LSB: out = (uint8_t)v; c->latched = false; break;
	case RW_MSB: out = (uint8_t)(v >> 8); c->latched = false; break;
	default:
		out = c->read_msb_next ? (uint8_t)(v >> 8) : (uint8_t)v;
		if (c->read_msb_next)
			c->latched = false;
		c->read_msb_next = !c->read_msb_next;
		break;
	}
	return out;
}

static void ch_write(struct pit_channel *c, uint8_t val)
{
	switch (c->rw) {
	case RW_LSB: ch_load(c, val); break;
	case RW_MSB: ch_load(c, (uint32_t)val << 8); break;
	case RW_WORD:
		if (!c->write_msb_next) {
			c->write_lsb = val;
			c->write_msb_next = true;
			/* Mode 0: writing the first byte stops the count (datasheet). */
			if (c->mode == 0) {
				c->counting = false;
				timer_del(&c->timer);
			}
		} else {
			c->write_msb_next = false;
			ch_load(c, c->write_lsb | ((uint32_t)val << 8));
		}
		break;
	default:
		break;   /* no access mode programmed yet */
	}
}

static void ch_set_gate(struct pit_channel *c, bool gate)
{
	bool rising = gate && !c->gate;
	c->gate = gate;
	/* Modes 1, 2, 3 and 5 (re)start on a rising gate. */
	if (rising && c->counting && (c->mode == 1 || c->mode == 2 || c->mode == 3 || c->mode == 5)) {
		c->load_time = now_ns(c->pit);
		ch0_schedule(c);
	}
}

static uint64_t pit_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pit *p = opaque;
	if (off < 3)
		return ch_read(&p->ch[off]);
	return 0xff;   /* the control word register is write-only */
}

static void pit_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pit *p = opaque;
	if (off < 3) {
		ch_write(&p->ch[off], (uint8_t)val);
		return;
	}
	unsigned sel = (val >> 6) & 3;
	if (sel == 3)
		pit_readback(p, (uint8_t)val);
	else
		ch_write_control(&p->ch[sel], (uint8_t)val);
}

/* Port 0x61 (PC/AT "system control port B"). */
static uint64_t port61_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pit *p = opaque;
	/* Bit 4 toggles with the DRAM refresh request, every 15.085 us;
	 * old delay loops count its edges. */
	bool refresh = (now_ns(p) / 15085) & 1;
	return (p->port61 & 3) | (refresh << 4) | (ch_out(&p->ch[2]) << 5);
}

static void port61_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pit *p = opaque;
	p->port61 = val & 3;
	ch_set_gate(&p->ch[2], val & 1);
}

static const struct bus_ops pit_ops = { pit_read, pit_write };
static const struct bus_ops port61_ops = { port61_read, port61_write };

void pit_reset(struct pit *p)
{
	for (unsigned i = 0; i < 3; i++) {
		struct pit_channel *c = &p->ch[i];
		timer_del(&c->timer);
		c->count = 0x10000;
		c->mode = 0;
		c->rw = RW_WORD;
		c->bcd = 0;
		c->counting = false;
		c->null_count = true;
		c->latched = c->status_latched = false;
		c->read_msb_next = c->write_msb_next = false;
		c->gate = i != 2;   /* channels 0 and 1 are gated on; 2 by port 0x61 */
	}
	p->port61 = 0;
}

struct pit *pit_new(const struct dev_ctx *ctx)
{
	struct pit *p = calloc(1, sizeof(*p));
	if (!p) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	p->ctx = *ctx;
	struct timer_service *ts = p->ts = ctx->clock;
	for (unsigned i = 0; i < 3; i++) {
		p->ch[i].pit = p;
		p->ch[i].idx = i;
		timer_init(&p->ch[i].timer, ts, ch0_fire, &p->ch[i]);
	}
	pit_reset(p);
	if (bus_register(ctx->pio, ctx->base[0], 4, &pit_ops, p, "pit") < 0 ||
	    bus_register(ctx->pio, ctx->base[1], 1, &port61_ops, p, "port61") < 0) {
		pit_free(p);
		return NULL;
	}
	return p;
}

void pit_free(struct pit *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < 3; i++)
		timer_del(&p->ch[i].timer);
	bus_release(p->ctx.pio, p);
	free(p);
}

static void *pit_create(const struct dev_ctx *ctx) { return pit_new(ctx); }
static void pit_reset_dev(void *dev) { pit_reset(dev); }
static void pit_destroy(void *dev) { pit_free(dev); }

const struct dev_desc pit_device = {
	.name = "pit", .create = pit_create, .reset = pit_reset_dev,
	.save = pit_snapshot_save, .load = pit_snapshot_load, .destroy = pit_destroy,
};

/* Snapshot state (docs/devices.md "Snapshots"), version 1: per channel the
 * counter registers and flip-flops, the VM-clock time its count was
 * loaded, and channel 0's next IRQ0 edge; then port 0x61. */
#define PIT_SNAP_VERSION 1

static void pit_write_state(struct pit *p, struct hw_snap_writer *w)
{
	for (unsigned i = 0; i < 3; i++) {
		struct pit_channel *c = &p->ch[i];
		hw_snap_u32(w, c->count);
		hw_snap_u64(w, c->load_time);
		hw_snap_u8(w, c->mode);
		hw_snap_u8(w, c->rw);
		hw_snap_u8(w, c->bcd);
		hw_snap_u8(w, c->gate);
		hw_snap_u8(w, c->null_count);
		hw_snap_u8(w, c->counting);
		hw_snap_u16(w, c->latch);
		hw_snap_u8(w, c->latched);
		hw_snap_u8(w, c->status_latched);
		hw_snap_u8(w, c->status);
		hw_snap_u8(w, c->read_msb_next);
		hw_snap_u8(w, c->write_msb_next);
		hw_snap_u8(w, c->write_lsb);
		hw_snap_u64(w, c->next_irq_tick);
		hw_snap_timer(w, &c->timer);
	}
	hw_snap_u8(w, p->port61);
}

int64_t pit_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, PIT_SNAP_VERSION);
	pit_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int pit_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct pit *p = opaque;
	struct hw_snap_writer size = { 0 };
	pit_write_state(p, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "pit", PIT_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	struct pit_channel ch[3];
	struct hw_snap_timer_state tm[3];
	for (unsigned i = 0; i < 3; i++) {
		struct pit_channel *c = &ch[i];
		*c = p->ch[i];
		c->count = hw_snap_get_u32(&r);
		c->load_time = hw_snap_get_u64(&r);
		c->mode = hw_snap_get_u8(&r);
		c->rw = hw_snap_get_u8(&r);
		c->bcd = hw_snap_get_u8(&r);
		c->gate = hw_snap_get_bool(&r);
		c->null_count = hw_snap_get_bool(&r);
		c->counting = hw_snap_get_bool(&r);
		c->latch = hw_snap_get_u16(&r);
		c->latched = hw_snap_get_bool(&r);
		c->status_latched = hw_snap_get_bool(&r);
		c->status = hw_snap_get_u8(&r);
		c->read_msb_next = hw_snap_get_bool(&r);
		c->write_msb_next = hw_snap_get_bool(&r);
		c->write_lsb = hw_snap_get_u8(&r);
		c->next_irq_tick = hw_snap_get_u64(&r);
		tm[i] = hw_snap_get_timer(&r);
		/* The count divides tick arithmetic: a hostile 0 must not reach it. */
		if (c->count < 1 || c->count > 0x10000 || c->mode > 5 || c->rw > 3 || c->bcd > 1)
			return err_set(-EINVAL, "pit state: channel %u has count %u, mode %u, access %u", i,
				       c->count, c->mode, c->rw);
	}
	uint8_t port61 = hw_snap_get_u8(&r);
	for (unsigned i = 0; i < 3; i++) {
		timer_del(&p->ch[i].timer);
		struct vm_timer t = p->ch[i].timer;
		p->ch[i] = ch[i];
		p->ch[i].timer = t;
		hw_snap_rearm(&p->ch[i].timer, tm[i]);
	}
	p->port61 = port61;
	return 0;
}
