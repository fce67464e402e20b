/* 8042 keyboard controller and a minimal AT keyboard / PS/2 mouse. */
#include "hw/i8042.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define STS_OBF   0x01
#define STS_IBF   0x02
#define STS_SYS   0x04
#define STS_CMD   0x08   /* last write was to the command port */
#define STS_UNLOCKED 0x10
#define STS_AUXOBF 0x20

#define CTR_KBDINT  0x01
#define CTR_AUXINT  0x02
#define CTR_SYS     0x04
#define CTR_KBDDIS  0x10
#define CTR_AUXDIS  0x20
#define CTR_XLATE   0x40

#define QUEUE_SIZE 32

struct i8042 {
	struct dev_ctx ctx;        /* irq[0]: IRQ1 (keyboard), irq[1]: IRQ12 (aux) */
	uint8_t status, ctr;
	uint8_t pending_cmd;       /* controller command waiting for its data byte */
	uint8_t kbd_pending;       /* keyboard command waiting for its argument */
	uint8_t aux_pending;
	uint8_t outport;
	/* Output queue: data byte and whether it came from the aux port. */
	uint8_t q[QUEUE_SIZE];
	bool q_aux[QUEUE_SIZE];
	unsigned q_head, q_count;
	uint8_t out_data;          /* byte in the output buffer */
	bool scanning;
	bool irq1, irq12;
};

static void i8042_update(struct i8042 *k)
{
	/* Move the next queued byte into the empty output buffer. */
	if (!(k->status & STS_OBF) && k->q_count) {
		bool aux = k->q_aux[k->q_head];
		k->out_data = k->q[k->q_head];
		k->q_head = (k->q_head + 1) % QUEUE_SIZE;
		k->q_count--;
		k->status |= STS_OBF;
		if (aux)
			k->status |= STS_AUXOBF;
		else
			k->status &= ~STS_AUXOBF;
	}
	bool full = k->status & STS_OBF, aux = k->status & STS_AUXOBF;
	bool irq1 = full && !aux && (k->ctr & CTR_KBDINT);
	bool irq12 = full && aux && (k->ctr & CTR_AUXINT);
	if (irq1 != k->irq1) {
		k->irq1 = irq1;
		irq_line_set(&k->ctx.irq[0], irq1);
	}
	if (irq12 != k->irq12) {
		k->irq12 = irq12;
		irq_line_set(&k->ctx.irq[1], irq12);
	}
}

static void queue_byte(struct i8042 *k, uint8_t v, bool aux)
{
	if (k->q_count == QUEUE_SIZE)
		return;   /* overrun: the byte is lost, as on hardware */
	unsigned i = (k->q_head + k->q_count) % QUEUE_SIZE;
	k->q[i] = v;
	k->q_aux[i] = aux;
	k->q_count++;
}

/* Keyboard commands (IBM PS/2 keyboard technical reference). */
static void kbd_command(struct i8042 *k, uint8_t v)
{
	if (k->kbd_pending) {
		uint8_t cmd = k->kbd_pending;
		k->kbd_pending = 0;
		queue_byte(k, 0xfa, false);
		if (cmd == 0xf0 && v == 0)
			queue_byte(k, 0x02, false);   /* current scan set: 2 */
		return;
	}
	switch (v) {
	case 0xed: case 0xf3: case 0xf0:      /* LEDs, typematic, scan set: argument follows */
		k->kbd_pending = v;
		queue_byte(k, 0xfa, false);
		break;
	case 0xee:                            /* echo */
		queue_byte(k, 0xee, false);
		break;
	case 0xf2:                            /* identify: MF2 keyboard */
		queue_byte(k, 0xfa, false);
		queue_byte(k, 0xab, false);
		queue_byte(k, k->ctr & CTR_XLATE ? 0x41 : 0x83, false);
		break;
	case 0xf4:
		k->scanning = true;
		queue_byte(k, 0xfa, false);
		break;
	case 0xf5:
		k->scanning = false;
		queue_byte(k, 0xfa, false);
		break;
	case 0xf6:
		k->scanning = true;
		queue_byte(k, 0xfa, false);
		break;
	case 0xff:                            /* reset: ack, then self-test passed */
		k->scanning = true;
		queue_byte(k, 0xfa, false);
		queue_byte(k, 0xaa, false);
		break;
	default:
		queue_byte(k, 0xfa, false);
		break;
	}
}

/* Auxiliary device (PS/2 mouse) commands. */
static void aux_command(struct i8042 *k, uint8_t v)
{
	if (k->aux_pending) {
		k->aux_pending = 0;
		queue_byte(k, 0xfa, true);
		return;
	}
	switch (v) {
	case 0xe8: case 0xf3:                 /* resolution, sample rate: argument follows */
		k->aux_pending = v;
		queue_byte(k, 0xfa, true);
		break;
	case 0xe9:                            /* status request */
		queue_byte(k, 0xfa, true);
		queue_byte(k, 0x00, true);
		queue_byte(k, 0x02, true);
		queue_byte(k, 0x64, true);
		break;
	case 0xf2:                            /* get device ID: standard mouse */
		queue_byte(k, 0xfa, true);
		queue_byte(k, 0x00, true);
		break;
	case 0xff:
		queue_byte(k, 0xfa, true);
		queue_byte(k, 0xaa, true);
		queue_byte(k, 0x00, true);
		break;
	default:
		queue_byte(k, 0xfa, true);
		break;
	}
}

static void cpu_reset(struct i8042 *k)
{
	log_info("i8042", "guest pulsed the reset line");
	dev_request(&k->ctx, DEV_REQ_RESET, 0);
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	if (cmd >= 0x20 && cmd < 0x40) {       /* read internal RAM; 0x20 = command byte */
		queue_byte(k, cmd == 0x20 ? k->ctr : 0, false);
		return;
	}
	if (cmd >= 0x60 && cmd < 0x80) {       /* write internal RAM: data follows */
		k->pending_cmd = cmd;
		return;
	}
	if (cmd >= 0xf0) {
		/* Pulse output lines whose bit is 0; bit 0 is the CPU reset. */
		if (!(cmd & 1))
			cpu_reset(k);
		return;
	}
	switch (cmd) {
	case 0xa7: k->ctr |= CTR_AUXDIS; break;
	case 0xa8: k->ctr &= ~CTR_AUXDIS; break;
	case 0xa9: queue_byte(k, 0x00, false); break;   /* aux interface test: OK */
	case 0xaa:                                        /* controller self-test */
		k->ctr |= CTR_KBDDIS | CTR_AUXDIS;
		queue_byte(k, 0x55, false);
		break;
	case 0xab: queue_byte(k, 0x00, false); break;   /* keyboard interface test: OK */
	case 0xad: k->ctr |= CTR_KBDDIS; break;
	case 0xae: k->ctr &= ~CTR_KBDDIS; break;
	case 0xc0: queue_byte(k, 0x00, false); break;   /* input port */
	case 0xd0: queue_byte(k, k->outport, false); break;
	case 0xd1: case 0xd2: case 0xd3: case 0xd4:
		k->pending_cmd = cmd;
		break;
	default:
		break;
	}
}

static void i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	if (cmd >= 0x60 && cmd < 0x80) {
		if (cmd == 0x60) {
			k->ctr = v;
			k->status = (uint8_t)((k->status & ~STS_SYS) | (v & CTR_SYS));
		}
		return;
	}
	switch (cmd) {
	case 0xd1:
		k->outport = v;
		if (!(v & 1))
			cpu_reset(k);
		return;
	case 0xd2: queue_byte(k, v, false); return;     /* as if from the keyboard */
	case 0xd3: queue_byte(k, v, true); return;      /* as if from the aux device */
	case 0xd4: aux_command(k, v); return;
	default:
		k->ctr &= ~CTR_KBDDIS;   /* writing to the keyboard enables its interface */
		kbd_command(k, v);
		return;
	}
}

static uint64_t i8042_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct i8042 *k = opaque;
	uint8_t v;
	if (off == 0) {
		v = k->out_data;
		k->status &= ~(STS_OBF | STS_AUXOBF);
		/* The line drops with the buffer emptied, so a queued next byte
		 * raises a fresh edge: IRQ1 and IRQ12 are edge-triggered ISA
		 * lines and Linux takes one byte per interrupt. */
		if (k->irq1) {
			k->irq1 = false;
			irq_line_set(&k->ctx.irq[0], false);
		}
		if (k->irq12) {
			k->irq12 = false;
			irq_line_set(&k->ctx.irq[1], false);
		}
		i8042_update(k);
	} else {
		v = k->status;
	}
	return v;
}

static void i8042_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct i8042 *k = opaque;
	if (off == 0) {
		k->status &= ~STS_CMD;
		i8042_data(k, (uint8_t)val);
	} else {
		k->status |= STS_CMD;
		i8042_command(k, (uint8_t)val);
	}
	i8042_update(k);
}

static const struct bus_ops i8042_data_ops = { i8042_read, i8042_write };

static uint64_t i8042_cmd_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size) { return i8042_read(opaque, vcpu, 1, size); }
static void i8042_cmd_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val) { i8042_write(opaque, vcpu, 1, size, val); }
static const struct bus_ops i8042_cmd_ops = { i8042_cmd_read, i8042_cmd_write };

void i8042_reset(struct i8042 *k)
{
	/* As the BIOS leaves it after POST: system flag set. */
	k->status = STS_UNLOCKED | STS_SYS;
	k->ctr = CTR_KBDINT | CTR_AUXINT | CTR_SYS | CTR_XLATE;
	k->pending_cmd = k->kbd_pending = k->aux_pending = 0;
	k->outport = 0x01 | 0x02;   /* reset line high, A20 enabled */
	k->q_head = k->q_count = 0;
	k->out_data = 0;
	k->scanning = true;
	if (k->irq1)
		irq_line_set(&k->ctx.irq[0], false);
	if (k->irq12)
		irq_line_set(&k->ctx.irq[1], false);
	k->irq1 = k->irq12 = false;
}

struct i8042 *i8042_new(const struct dev_ctx *ctx)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	k->ctx = *ctx;
	i8042_reset(k);
	if (bus_register(ctx->pio, ctx->base[0], 1, &i8042_data_ops, k, "i8042-data") < 0 ||
	    bus_register(ctx->pio, ctx->base[1], 1, &i8042_cmd_ops, k, "i8042-cmd") < 0) {
		i8042_free(k);
		return NULL;
	}
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	bus_release(k->ctx.pio, k);
	free(k);
}

static void *i8042_create(const struct dev_ctx *ctx) { return i8042_new(ctx); }
static void i8042_reset_dev(void *dev) { i8042_reset(dev); }
static void i8042_destroy(void *dev) { i8042_free(dev); }

const struct dev_desc i8042_device = {
	.name = "i8042", .create = i8042_create, .reset = i8042_reset_dev,
	.save = i8042_snapshot_save, .load = i8042_snapshot_load, .destroy = i8042_destroy,
};

/* Snapshot state, version 1: status and command byte, the pending
 * controller/keyboard/mouse commands, output port, the output queue in
 * order (byte and source), the output buffer and both interrupt lines. */
#define I8042_SNAP_VERSION 1

static void i8042_write_state(struct i8042 *k, struct hw_snap_writer *w)
{
	hw_snap_u8(w, k->status);
	hw_snap_u8(w, k->ctr);
	hw_snap_u8(w, k->pending_cmd);
	hw_snap_u8(w, k->kbd_pending);
	hw_snap_u8(w, k->aux_pending);
	hw_snap_u8(w, k->outport);
	hw_snap_u8(w, (uint8_t)k->q_count);
	for (unsigned i = 0; i < QUEUE_SIZE; i++) {
		unsigned at = (k->q_head + i) % QUEUE_SIZE;
		hw_snap_u8(w, i < k->q_count ? k->q[at] : 0);
		hw_snap_u8(w, i < k->q_count ? k->q_aux[at] : 0);
	}
	hw_snap_u8(w, k->out_data);
	hw_snap_u8(w, k->scanning);
	hw_snap_u8(w, k->irq1);
	hw_snap_u8(w, k->irq12);
}

int64_t i8042_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, I8042_SNAP_VERSION);
	i8042_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int i8042_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct i8042 *k = opaque;
	struct hw_snap_writer size = { 0 };
	i8042_write_state(k, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "i8042", I8042_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	struct i8042 n = *k;
	n.status = hw_snap_get_u8(&r);
	n.ctr = hw_snap_get_u8(&r);
	n.pending_cmd = hw_snap_get_u8(&r);
	n.kbd_pending = hw_snap_get_u8(&r);
	n.aux_pending = hw_snap_get_u8(&r);
	n.outport = hw_snap_get_u8(&r);
	n.q_count = hw_snap_get_u8(&r);
	n.q_head = 0;
	for (unsigned i = 0; i < QUEUE_SIZE; i++) {
		n.q[i] = hw_snap_get_u8(&r);
		n.q_aux[i] = hw_snap_get_bool(&r);
	}
	n.out_data = hw_snap_get_u8(&r);
	n.scanning = hw_snap_get_bool(&r);
	n.irq1 = hw_snap_get_bool(&r);
	n.irq12 = hw_snap_get_bool(&r);
	if (n.q_count > QUEUE_SIZE)
		return err_set(-EINVAL, "i8042 state: %u bytes in a %u-byte queue", n.q_count, QUEUE_SIZE);
	*k = n;
	return 0;
}
