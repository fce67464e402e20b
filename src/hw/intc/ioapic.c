/* I/O APIC (82093AA datasheet, section 3: IOREGSEL at +0x00, IOWIN at
 * +0x10; version 0x20 adds the EOI register at +0x40 used for directed
 * EOI, SDM vol. 3A 10.8.5). */
#include "hw/intc/ioapic.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "hw/intc/lapic.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IOAPIC_VERSION 0x20

#define RTE_MASKED     (1ull << 16)
#define RTE_LEVEL      (1ull << 15)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_DELIVS     (1ull << 12)
/* Writable: vector, delivery mode, destination mode, polarity, trigger,
 * mask, destination (datasheet 3.2.4). */
#define RTE_WRITABLE   (0xff00000000000000ull | 0x1afffull)

struct ioapic {
	struct dev_ctx ctx;
	const struct apic_bus *apic;   /* ctx.arg: where messages go */
	uint32_t id;
	uint8_t sel;
	uint64_t rte[IOAPIC_NUM_PINS];
	bool level[IOAPIC_NUM_PINS];
};

void ioapic_reset(struct ioapic *io)
{
	io->id = 0;
	io->sel = 0;
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++) {
		io->rte[i] = RTE_MASKED;
		io->level[i] = false;
	}
}

static const struct bus_ops ioapic_ops;

struct ioapic *ioapic_new(const struct dev_ctx *ctx)
{
	struct ioapic *io = calloc(1, sizeof(*io));
	if (!io) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	io->ctx = *ctx;
	io->apic = ctx->arg;
	ioapic_reset(io);
	if (bus_register(ctx->mmio, ctx->base[0], 0x1000, &ioapic_ops, io, "ioapic") < 0) {
		free(io);
		return NULL;
	}
	return io;
}

void ioapic_free(struct ioapic *io)
{
	if (!io)
		return;
	bus_release(io->ctx.mmio, io);
	free(io);
}

uint64_t ioapic_get_redir(const struct ioapic *io, unsigned pin)
{
	return pin < IOAPIC_NUM_PINS ? io->rte[pin] : 0;
}

static void ioapic_send(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];
	struct apic_msg m = {
		.vector = e & 0xff,
		.delivery = (e >> 8) & 7,
		.dest_logical = (e >> 11) & 1,
		.level_trig = (e & RTE_LEVEL) != 0,
		.assert = true,
		.dest = (uint32_t)(e >> 56),
	};
	if (m.level_trig)
		io->rte[pin] |= RTE_REMOTE_IRR;
	if (io->apic)
		io->apic->deliver(io->apic->opaque, &m, NULL);
}

/* Level-triggered pins: deliver while asserted, unmasked and not already
 * in service at a LAPIC (remote IRR clear). */
static void ioapic_service(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];
	if ((e & RTE_LEVEL) && io->level[pin] && !(e & (RTE_MASKED | RTE_REMOTE_IRR)))
		ioapic_send(io, pin);
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
	if (pin >= IOAPIC_NUM_PINS)
		return;
	bool old = io->level[pin];
	io->level[pin] = level;
	uint64_t e = io->rte[pin];
	if (e & RTE_LEVEL)
		ioapic_service(io, pin);
	else if (level && !old && !(e & RTE_MASKED))
		ioapic_send(io, pin);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++) {
		uint64_t e = io->rte[i];
		if ((e & 0xff) != vector || !(e & RTE_LEVEL) || !(e & RTE_REMOTE_IRR))
			continue;
		io->rte[i] &= ~RTE_REMOTE_IRR;
		ioapic_service(io, i);
	}
}

static uint32_t ioapic_reg_read(struct ioapic *io)
{
	switch (io->sel) {
	case 0x00: return io->id << 24;
	case 0x01: return IOAPIC_VERSION | ((IOAPIC_NUM_PINS - 1) << 16);
	case 0x02: return io->id << 24;   /* arbitration ID */
	default:
		if (io->sel >= 0x10 && io->sel < 0x10 + 2 * IOAPIC_NUM_PINS) {
			uint64_t e = io->rte[(io->sel - 0x10) / 2];
			return (io->sel & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
		}
		return 0xffffffff;
	}
}

static void ioapic_reg_write(struct ioapic *io, uint32_t val)
{
	if (io->sel == 0x00) {
		io->id = (val >> 24) & 0xf;
		return;
	}
	if (io->sel < 0x10 || io->sel >= 0x10 + 2 * IOAPIC_NUM_PINS)
		return;
	unsigned pin = (io->sel - 0x10) / 2;
	uint64_t e = io->rte[pin];
	uint64_t nv = (io->sel & 1) ? (e & 0xffffffffull) | ((uint64_t)val << 32)
				    : (e & 0xffffffff00000000ull) | val;
	/* Read-only bits keep their state; remote IRR only means something
	 * for level-triggered pins. */
	nv = (nv & RTE_WRITABLE) | (e & RTE_REMOTE_IRR);
	if (!(nv & RTE_LEVEL))
		nv &= ~RTE_REMOTE_IRR;
	io->rte[pin] = nv;
	ioapic_service(io, pin);
}

static uint64_t ioapic_mmio_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct ioapic *io = opaque;
	if (off == 0x00)
		return io->sel;
	if (off >= 0x10 && off < 0x14) {
		uint32_t v = ioapic_reg_read(io);
		unsigned shift = (unsigned)(off - 0x10) * 8;
		v >>= shift;
		return size >= 4 ? v : v & ((1u << (size * 8)) - 1);
	}
	return 0;
}

static void ioapic_mmio_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct ioapic *io = opaque;
	if (off == 0x00)
		io->sel = (uint8_t)val;
	else if (off == 0x10 && size >= 4)
		ioapic_reg_write(io, (uint32_t)val);
	else if (off == 0x40)
		ioapic_eoi(io, (uint8_t)val);
}

static const struct bus_ops ioapic_ops = { ioapic_mmio_read, ioapic_mmio_write };

static void *ioapic_create(const struct dev_ctx *ctx) { return ioapic_new(ctx); }
static void ioapic_reset_dev(void *dev) { ioapic_reset(dev); }
static void ioapic_destroy(void *dev) { ioapic_free(dev); }

const struct dev_desc ioapic_device = {
	.name = "ioapic", .create = ioapic_create, .reset = ioapic_reset_dev,
	.save = ioapic_snapshot_save, .load = ioapic_snapshot_load, .destroy = ioapic_destroy,
};

/* Snapshot state, version 1: ID, IOREGSEL, the redirection table (with
 * its Remote IRR and delivery status bits) and the input pin levels. */
#define IOAPIC_SNAP_VERSION 1

static void ioapic_write_state(struct ioapic *io, struct hw_snap_writer *w)
{
	hw_snap_u32(w, io->id);
	hw_snap_u8(w, io->sel);
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		hw_snap_u64(w, io->rte[i]);
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		hw_snap_u8(w, io->level[i]);
}

int64_t ioapic_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, IOAPIC_SNAP_VERSION);
	ioapic_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int ioapic_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct ioapic *io = opaque;
	struct hw_snap_writer size = { 0 };
	ioapic_write_state(io, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "ioapic", IOAPIC_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	io->id = hw_snap_get_u32(&r);
	io->sel = hw_snap_get_u8(&r);
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		io->rte[i] = hw_snap_get_u64(&r);
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		io->level[i] = hw_snap_get_bool(&r);
	return 0;
}
