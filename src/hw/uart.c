/* 16550A UART (PC16550D datasheet, tables 2-4 for the registers). */
#include "hw/uart.h"

#include "machine/bus.h"
#include "hw/chardev.h"
#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { RBR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI  0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI  0x08

#define IIR_NONE 0x01
#define IIR_MSI  0x00
#define IIR_THRI 0x02
#define IIR_RDI  0x04
#define IIR_RLSI 0x06
#define IIR_CTI  0x0c
#define IIR_FIFO 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLR_RX 0x02
#define FCR_CLR_TX 0x04

#define LCR_DLAB 0x80
#define LCR_BREAK 0x40

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_BI   0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80

struct uart {
	struct dev_ctx ctx;    /* irq[0]: the interrupt line; arg: the console (struct chardev) */
	struct chardev *cd;
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
	uint16_t divisor;
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	bool thr_ipending;     /* THR-empty interrupt not yet acknowledged */
	bool irq_level;
};

static unsigned rx_trigger(const struct uart *u)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };
	return (u->fcr & FCR_ENABLE) ? levels[u->fcr >> 6] : 1;
}

static size_t rx_capacity(const struct uart *u)
{
	return (u->fcr & FCR_ENABLE) ? UART_FIFO_SIZE : 1;
}

/* Highest-priority pending interrupt (datasheet table 4). */
static uint8_t uart_iir(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & (LSR_OE | LSR_BI)))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count) {
		/* The character timeout (4 character times without input below
		 * the trigger level) is reported at once: input never trickles in
		 * slower than the guest can see it. */
		return u->rx_count >= rx_trigger(u) ? IIR_RDI : IIR_CTI;
	}
	if ((u->ier & IER_THRI) && u->thr_ipending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & 0x0f))
		return IIR_MSI;
	return IIR_NONE;
}

static void uart_update_irq(struct uart *u)
{
	/* On a PC the IRQ line is gated by OUT2 (the card's tri-state buffer). */
	bool level = uart_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2);
	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->ctx.irq[0], level);
	}
}

static void rx_push(struct uart *u, uint8_t c)
{
	if (u->rx_count >= rx_capacity(u)) {
		u->lsr |= LSR_OE;
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = c;
	u->rx_count++;
	u->lsr |= LSR_DR;
}

size_t uart_rx_room(struct uart *u)
{
	/* In loopback the modem lines are disconnected from the outside. */
	if (u->mcr & MCR_LOOP)
		return 0;
	return rx_capacity(u) - u->rx_count;
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	size_t room = uart_rx_room(u);
	while (n < len && n < room)
		rx_push(u, buf[n++]);
	if (n)
		uart_update_irq(u);
	return n;
}

static size_t cd_can_receive(void *opaque) { return uart_rx_room(opaque); }
static void cd_receive(void *opaque, const uint8_t *buf, size_t len) { uart_receive(opaque, buf, len); }

/* MSR inputs: in loopback they mirror the MCR outputs (datasheet 8.6);
 * otherwise a connected terminal with DSR, CTS and DCD up. */
static void uart_update_msr(struct uart *u)
{
	uint8_t lines;
	if (u->mcr & MCR_LOOP) {
		lines = ((u->mcr & MCR_DTR) ? MSR_DSR : 0) | ((u->mcr & MCR_RTS) ? MSR_CTS : 0) |
			((u->mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->mcr & MCR_OUT2) ? MSR_DCD : 0);
	} else {
		lines = MSR_DCD | MSR_DSR | MSR_CTS;
	}
	uint8_t old = u->msr, delta = 0;
	if ((old ^ lines) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ lines) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old ^ lines) & MSR_DCD)
		delta |= MSR_DDCD;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		delta |= MSR_TERI;   /* trailing edge of ring indicator */
	u->msr = lines | (old & 0x0f) | delta;
}

void uart_reset(struct uart *u)
{
	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	u->scr = 0;
	u->fcr = 0;
	u->divisor = 12;   /* 9600 baud */
	u->rx_head = u->rx_count = 0;
	u->thr_ipending = false;
	if (u->irq_level) {
		u->irq_level = false;
		irq_line_set(&u->ctx.irq[0], false);
	}
}

static uint64_t uart_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct uart *u = opaque;
	uint8_t v = 0;
	switch (off & 7) {
	case RBR:
		if (u->lcr & LCR_DLAB) {
			v = (uint8_t)u->divisor;
			break;
		}
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
			if (!u->rx_count)
				u->lsr &= ~LSR_DR;
			uart_update_irq(u);
			if (u->cd && !(u->mcr & MCR_LOOP))
				chardev_accept_input(u->cd);
		}
		break;
	case IER:
		v = (u->lcr & LCR_DLAB) ? (uint8_t)(u->divisor >> 8) : u->ier;
		break;
	case IIR:
		v = uart_iir(u) | ((u->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
		/* Reading IIR acknowledges a THR-empty interrupt (table 4). */
		if ((v & 0x0f) == IIR_THRI) {
			u->thr_ipending = false;
			uart_update_irq(u);
		}
		break;
	case LCR: v = u->lcr; break;
	case MCR: v = u->mcr; break;
	case LSR:
		v = u->lsr;
		u->lsr &= ~(LSR_OE | LSR_BI);   /* error bits clear on read */
		uart_update_irq(u);
		break;
	case MSR:
		v = u->msr;
		u->msr &= 0xf0;                 /* delta bits clear on read */
		uart_update_irq(u);
		break;
	case SCR: v = u->scr; break;
	}
	return v;
}

static void uart_transmit(struct uart *u, uint8_t c)
{
	if (u->mcr & MCR_LOOP)
		rx_push(u, c);
	else if (u->cd)
		chardev_write(u->cd, &c, 1);
	/* The byte left at once: THR and the shift register are empty again. */
	u->lsr |= LSR_THRE | LSR_TEMT;
	u->thr_ipending = true;
}

static void uart_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val64)
{
	struct uart *u = opaque;
	uint8_t val = (uint8_t)val64;
	switch (off & 7) {
	case RBR:
		if (u->lcr & LCR_DLAB) {
			u->divisor = (u->divisor & 0xff00) | val;
			return;
		}
		uart_transmit(u, val);
		break;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->divisor = (uint16_t)((u->divisor & 0xff) | (val << 8));
			return;
		}
		/* Enabling the THR interrupt with THR empty raises it (8.4). */
		if ((val & IER_THRI) && !(u->ier & IER_THRI) && (u->lsr & LSR_THRE))
			u->thr_ipending = true;
		u->ier = val & 0x0f;
		break;
	case IIR: /* FCR */
		if ((val ^ u->fcr) & FCR_ENABLE) {
			/* Changing the FIFO mode clears both FIFOs. */
			u->rx_head = u->rx_count = 0;
			u->lsr &= ~LSR_DR;
		}
		if (val & FCR_CLR_RX) {
			u->rx_head = u->rx_count = 0;
			u->lsr &= ~LSR_DR;
		}
		u->fcr = val & (FCR_ENABLE | 0xc0);
		if (u->cd)
			chardev_accept_input(u->cd);
		break;
	case LCR:
		u->lcr = val;
		return;
	case MCR: {
		bool was_loop = u->mcr & MCR_LOOP;
		u->mcr = val & 0x1f;
		uart_update_msr(u);
		if (was_loop && !(u->mcr & MCR_LOOP) && u->cd)
			chardev_accept_input(u->cd);
		break;
	}
	case LSR:
	case MSR:
		return;   /* read-only (writes are "factory test" on the 16550) */
	case SCR:
		u->scr = val;
		return;
	}
	uart_update_irq(u);
}

static const struct bus_ops uart_ops = { uart_read, uart_write };

struct uart *uart_new(const struct dev_ctx *ctx)
{
	struct uart *u = calloc(1, sizeof(*u));
	if (!u) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	u->ctx = *ctx;
	uart_reset(u);
	if (bus_register(ctx->pio, ctx->base[0], 8, &uart_ops, u, "com1") < 0) {
		free(u);
		return NULL;
	}
	struct chardev *cd = ctx->arg;
	if (cd) {
		int rc = chardev_set_frontend(cd, cd_can_receive, cd_receive, u, ctx->lock);
		if (rc < 0) {
			bus_release(ctx->pio, u);
			free(u);
			return NULL;
		}
		u->cd = cd;
	}
	return u;
}

void uart_free(struct uart *u)
{
	if (!u)
		return;
	if (u->cd)
		chardev_detach(u->cd);
	bus_release(u->ctx.pio, u);
	free(u);
}

static void *uart_create(const struct dev_ctx *ctx) { return uart_new(ctx); }
static void uart_reset_dev(void *dev) { uart_reset(dev); }
static void uart_destroy(void *dev) { uart_free(dev); }

const struct dev_desc uart_device = {
	.name = "uart", .create = uart_create, .reset = uart_reset_dev,
	.save = uart_snapshot_save, .load = uart_snapshot_load, .destroy = uart_destroy,
};

/* Snapshot state, version 1: the 16550A registers (PC16550D datasheet,
 * "Registers"), the divisor latch, the receive FIFO in order, the pending
 * THR-empty interrupt and the interrupt line.  The console backend is the
 * restoring process's own. */
#define UART_SNAP_VERSION 1

static void uart_write_state(struct uart *u, struct hw_snap_writer *w)
{
	hw_snap_u8(w, u->ier);
	hw_snap_u8(w, u->lcr);
	hw_snap_u8(w, u->mcr);
	hw_snap_u8(w, u->lsr);
	hw_snap_u8(w, u->msr);
	hw_snap_u8(w, u->scr);
	hw_snap_u8(w, u->fcr);
	hw_snap_u16(w, u->divisor);
	hw_snap_u8(w, (uint8_t)u->rx_count);
	for (unsigned i = 0; i < UART_FIFO_SIZE; i++)
		hw_snap_u8(w, i < u->rx_count ? u->rx[(u->rx_head + i) % UART_FIFO_SIZE] : 0);
	hw_snap_u8(w, u->thr_ipending);
	hw_snap_u8(w, u->irq_level);
}

int64_t uart_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, UART_SNAP_VERSION);
	uart_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int uart_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct uart *u = opaque;
	struct hw_snap_writer size = { 0 };
	uart_write_state(u, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "uart", UART_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	struct uart n = *u;
	n.ier = hw_snap_get_u8(&r);
	n.lcr = hw_snap_get_u8(&r);
	n.mcr = hw_snap_get_u8(&r);
	n.lsr = hw_snap_get_u8(&r);
	n.msr = hw_snap_get_u8(&r);
	n.scr = hw_snap_get_u8(&r);
	n.fcr = hw_snap_get_u8(&r);
	n.divisor = hw_snap_get_u16(&r);
	n.rx_count = hw_snap_get_u8(&r);
	n.rx_head = 0;
	hw_snap_get_bytes(&r, n.rx, UART_FIFO_SIZE);
	n.thr_ipending = hw_snap_get_bool(&r);
	n.irq_level = hw_snap_get_bool(&r);
	if (n.rx_count > UART_FIFO_SIZE)
		return err_set(-EINVAL, "uart state: %u bytes in a %u-byte FIFO", n.rx_count, UART_FIFO_SIZE);
	*u = n;
	return 0;
}
