/* Dual 8259A PIC (Intel 8259A datasheet: ICW1-ICW4, OCW1-OCW3) with the
 * ELCR edge/level registers at 0x4d0/0x4d1 (PIIX4/ICH datasheets). */
#include "hw/intc/pic.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pic_chip {
	uint8_t irr, imr, isr;
	uint8_t line;              /* current input levels (edge detection) */
	uint8_t priority_add;      /* rotation: IRQ with the highest priority */
	uint8_t irq_base;
	uint8_t read_isr;          /* OCW3 RR/RIS: 1 = reads return ISR */
	uint8_t elcr, elcr_mask;
	uint8_t init_state;        /* 0 ready, 1 expect ICW2, 2 ICW3, 3 ICW4 */
	bool poll, special_mask, auto_eoi, rotate_auto_eoi, special_fully_nested;
	bool init4, single;
};

struct pic {
	struct dev_ctx ctx;        /* irq[0]: the master's INT output (to the BSP's LINT0) */
	struct pic_chip chip[2];   /* master, slave */
	bool output;
};

/* Priority (0 highest) of the best request in mask, 8 if none. */
static int chip_priority(const struct pic_chip *c, uint8_t mask)
{
	if (!mask)
		return 8;
	int p = 0;
	while (!(mask & (1u << ((p + c->priority_add) & 7))))
		p++;
	return p;
}

/* The IRQ this chip would signal now, or -1. */
static int chip_pending(const struct pic_chip *c, bool master)
{
	int p = chip_priority(c, c->irr & ~c->imr);
	if (p == 8)
		return -1;
	uint8_t in_service = c->isr;
	if (c->special_mask)
		in_service &= ~c->imr;
	/* Special fully nested mode: the slave's cascade input stays open
	 * while it is in service, so higher slave IRQs still get through. */
	if (master && c->special_fully_nested)
		in_service &= ~(1u << 2);
	int cur = chip_priority(c, in_service);
	return p < cur ? (p + c->priority_add) & 7 : -1;
}

static void chip_set_line(struct pic_chip *c, unsigned irq, bool level)
{
	uint8_t mask = 1u << irq;
	if (c->elcr & mask) {
		/* Level-sensitive: IRR follows the line. */
		if (level)
			c->irr |= mask;
		else
			c->irr &= ~mask;
	} else if (level && !(c->line & mask)) {
		c->irr |= mask;   /* rising edge */
	}
	if (level)
		c->line |= mask;
	else
		c->line &= ~mask;
}

static void pic_update(struct pic *p)
{
	/* The slave's INT is the master's IRQ2 input. */
	chip_set_line(&p->chip[0], 2, chip_pending(&p->chip[1], false) >= 0);
	bool out = chip_pending(&p->chip[0], true) >= 0;
	p->output = out;
	/* Driven on every update, not only on a change: the receiver looks
	 * whether its CPU can take the interrupt now. */
	irq_line_set(&p->ctx.irq[0], out);
}

void pic_set_irq(struct pic *p, unsigned irq, bool level)
{
	if (irq >= 16 || irq == 2)
		return;
	chip_set_line(&p->chip[irq >> 3], irq & 7, level);
	pic_update(p);
}

bool pic_has_output(struct pic *p) { return p->output; }

static void chip_ack(struct pic_chip *c, int irq)
{
	uint8_t mask = 1u << irq;
	if (c->auto_eoi) {
		if (c->rotate_auto_eoi)
			c->priority_add = (irq + 1) & 7;
	} else {
		c->isr |= mask;
	}
	/* Edge-triggered requests are consumed by the acknowledge. */
	if (!(c->elcr & mask))
		c->irr &= ~mask;
}

int pic_read_irq(struct pic *p)
{
	struct pic_chip *m = &p->chip[0], *s = &p->chip[1];
	int irq = chip_pending(m, true), vec;
	if (irq < 0) {
		vec = m->irq_base + 7;   /* spurious IRQ7 (datasheet "Interrupt sequence") */
	} else {
		chip_ack(m, irq);
		if (irq == 2) {
			int irq2 = chip_pending(s, false);
			if (irq2 >= 0) {
				chip_ack(s, irq2);
				vec = s->irq_base + irq2;
			} else {
				vec = s->irq_base + 7;
			}
		} else {
			vec = m->irq_base + irq;
		}
	}
	pic_update(p);
	return vec;
}

static void chip_reset(struct pic_chip *c)
{
	uint8_t elcr = c->elcr, mask = c->elcr_mask;
	memset(c, 0, sizeof(*c));
	c->elcr = elcr;
	c->elcr_mask = mask;
}

void pic_reset(struct pic *p)
{
	for (unsigned i = 0; i < 2; i++) {
		p->chip[i].elcr = 0;
		chip_reset(&p->chip[i]);
	}
	/* IRQ0, 1, 2 (master) and 8, 13 (slave) are always edge (ICH ELCR). */
	p->chip[0].elcr_mask = 0xf8;
	p->chip[1].elcr_mask = 0xde;
	p->output = false;
}

static const struct bus_ops master_ops, slave_ops, elcr_ops;

struct pic *pic_new(const struct dev_ctx *ctx)
{
	struct pic *p = calloc(1, sizeof(*p));
	if (!p) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	p->ctx = *ctx;
	pic_reset(p);
	if (bus_register(ctx->pio, ctx->base[0], 2, &master_ops, p, "pic-master") < 0 ||
	    bus_register(ctx->pio, ctx->base[1], 2, &slave_ops, p, "pic-slave") < 0 ||
	    bus_register(ctx->pio, ctx->base[2], 2, &elcr_ops, p, "elcr") < 0) {
		pic_free(p);
		return NULL;
	}
	return p;
}

void pic_free(struct pic *p)
{
	if (!p)
		return;
	bus_release(p->ctx.pio, p);
	free(p);
}

static void chip_write(struct pic *p, struct pic_chip *c, unsigned port, uint8_t val)
{
	if (port == 0) {
		if (val & 0x10) {
			/* ICW1: start of initialisation; the line levels stay. */
			uint8_t line = c->line;
			chip_reset(c);
			c->line = line;
			c->init_state = 1;
			c->init4 = val & 1;
			c->single = val & 2;
			/* Bit 3 (level-triggered mode) is not supported by the PIIX: the ELCR decides. */
		} else if (val & 0x08) {
			/* OCW3 */
			if (val & 0x04)
				c->poll = true;
			if (val & 0x02)
				c->read_isr = val & 1;
			if (val & 0x40)
				c->special_mask = (val >> 5) & 1;
		} else {
			/* OCW2 */
			unsigned cmd = val >> 5;
			switch (cmd) {
			case 0: case 4:   /* rotate in automatic EOI mode: clear / set */
				c->rotate_auto_eoi = cmd >> 2;
				break;
			case 1: case 5: { /* non-specific EOI (with rotation) */
				int pr = chip_priority(c, c->isr);
				if (pr != 8) {
					int irq = (pr + c->priority_add) & 7;
					c->isr &= ~(1u << irq);
					if (cmd == 5)
						c->priority_add = (irq + 1) & 7;
				}
				break;
			}
			case 3:           /* specific EOI */
				c->isr &= ~(1u << (val & 7));
				break;
			case 6:           /* set priority */
				c->priority_add = (val + 1) & 7;
				break;
			case 7:           /* rotate on specific EOI */
				c->isr &= ~(1u << (val & 7));
				c->priority_add = ((val & 7) + 1) & 7;
				break;
			default:          /* 2: no operation */
				break;
			}
		}
	} else {
		switch (c->init_state) {
		case 0:
			c->imr = val;   /* OCW1 */
			break;
		case 1:
			c->irq_base = val & 0xf8;
			c->init_state = c->single ? (c->init4 ? 3 : 0) : 2;
			break;
		case 2:
			c->init_state = c->init4 ? 3 : 0;   /* ICW3: cascade wiring is fixed */
			break;
		case 3:
			c->special_fully_nested = (val >> 4) & 1;
			c->auto_eoi = (val >> 1) & 1;
			c->init_state = 0;
			break;
		}
	}
	pic_update(p);
}

static uint8_t chip_read(struct pic *p, struct pic_chip *c, unsigned port)
{
	if (c->poll) {
		/* Poll command: acknowledge the highest request as an INTA would. */
		c->poll = false;
		int irq = chip_pending(c, c == &p->chip[0]);
		if (irq < 0)
			return 0;
		chip_ack(c, irq);
		pic_update(p);
		return 0x80 | irq;
	}
	if (port == 0)
		return c->read_isr ? c->isr : c->irr;
	return c->imr;
}

static uint64_t pic_master_read(void *o, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pic *p = o;
	return chip_read(p, &p->chip[0], off & 1);
}
static void pic_master_write(void *o, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pic *p = o;
	chip_write(p, &p->chip[0], off & 1, (uint8_t)val);
}
static uint64_t pic_slave_read(void *o, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pic *p = o;
	return chip_read(p, &p->chip[1], off & 1);
}
static void pic_slave_write(void *o, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pic *p = o;
	chip_write(p, &p->chip[1], off & 1, (uint8_t)val);
}
static uint64_t elcr_read(void *o, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pic *p = o;
	uint64_t v = 0;
	for (unsigned i = 0; i < size && off + i < 2; i++)
		v |= (uint64_t)p->chip[off + i].elcr << (8 * i);
	return v;
}
static void elcr_write(void *o, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pic *p = o;
	for (unsigned i = 0; i < size && off + i < 2; i++) {
		struct pic_chip *c = &p->chip[off + i];
		c->elcr = (uint8_t)(val >> (8 * i)) & c->elcr_mask;
	}
}

static const struct bus_ops master_ops = { pic_master_read, pic_master_write };
static const struct bus_ops slave_ops = { pic_slave_read, pic_slave_write };
static const struct bus_ops elcr_ops = { elcr_read, elcr_write };

static void *pic_create(const struct dev_ctx *ctx) { return pic_new(ctx); }
static void pic_reset_dev(void *dev) { pic_reset(dev); }
static void pic_destroy(void *dev) { pic_free(dev); }

const struct dev_desc pic_device = {
	.name = "pic", .create = pic_create, .reset = pic_reset_dev,
	.save = pic_snapshot_save, .load = pic_snapshot_load, .destroy = pic_destroy,
};

/* Snapshot state, version 1: for the master then the slave, the
 * registers of the 8259A datasheet (IRR, IMR, ISR, input levels, rotation,
 * vector base, OCW3 read select, ELCR) and the ICW/OCW mode bits. */
#define PIC_SNAP_VERSION 1

static void pic_write_state(struct pic *p, struct hw_snap_writer *w)
{
	for (unsigned i = 0; i < 2; i++) {
		const struct pic_chip *c = &p->chip[i];
		hw_snap_u8(w, c->irr);
		hw_snap_u8(w, c->imr);
		hw_snap_u8(w, c->isr);
		hw_snap_u8(w, c->line);
		hw_snap_u8(w, c->priority_add);
		hw_snap_u8(w, c->irq_base);
		hw_snap_u8(w, c->read_isr);
		hw_snap_u8(w, c->elcr);
		hw_snap_u8(w, c->elcr_mask);
		hw_snap_u8(w, c->init_state);
		hw_snap_u8(w, (uint8_t)(c->poll | c->special_mask << 1 | c->auto_eoi << 2 | c->rotate_auto_eoi << 3 |
					c->special_fully_nested << 4 | c->init4 << 5 | c->single << 6));
	}
}

int64_t pic_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, PIC_SNAP_VERSION);
	pic_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int pic_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct pic *p = opaque;
	struct hw_snap_writer size = { 0 };
	pic_write_state(p, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "pic", PIC_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	struct pic_chip chip[2];
	for (unsigned i = 0; i < 2; i++) {
		struct pic_chip *c = &chip[i];
		c->irr = hw_snap_get_u8(&r);
		c->imr = hw_snap_get_u8(&r);
		c->isr = hw_snap_get_u8(&r);
		c->line = hw_snap_get_u8(&r);
		c->priority_add = hw_snap_get_u8(&r);
		c->irq_base = hw_snap_get_u8(&r);
		c->read_isr = hw_snap_get_u8(&r);
		c->elcr = hw_snap_get_u8(&r);
		c->elcr_mask = hw_snap_get_u8(&r);
		c->init_state = hw_snap_get_u8(&r);
		uint8_t f = hw_snap_get_u8(&r);
		c->poll = f & 1;
		c->special_mask = f >> 1 & 1;
		c->auto_eoi = f >> 2 & 1;
		c->rotate_auto_eoi = f >> 3 & 1;
		c->special_fully_nested = f >> 4 & 1;
		c->init4 = f >> 5 & 1;
		c->single = f >> 6 & 1;
		if (c->priority_add > 7 || c->init_state > 3 || c->read_isr > 1 || (f & 0x80))
			return err_set(-EINVAL, "pic state: chip %u has priority %u, init step %u", i,
				       c->priority_add, c->init_state);
	}
	p->chip[0] = chip[0];
	p->chip[1] = chip[1];
	/* Recomputes INTR and tells vCPU 0 if an interrupt waits. */
	pic_update(p);
	return 0;
}
