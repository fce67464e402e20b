/* The device contract (docs/architecture.md "How to add a device").
 *
 * A device sees only what its struct dev_ctx hands it: the buses it
 * claims ranges on, its base addresses, its interrupt lines as objects,
 * the clock (the timer service) and a request callback for what reaches
 * beyond the machine (reset, power off, stop with a value).  It never
 * sees the VM, the board or another device: effects between devices are
 * lines the board wires (the HPET's legacy-replacement output gates the
 * PIT's and RTC's lines; the RTC's NMI mask is a line too).
 *
 * Every device, built in or from a plug-in, is described by a struct
 * dev_desc and instantiated by dev_create(); a unit test builds a
 * dev_ctx with fakes and creates one device alone. */
#ifndef VESSEL_HW_DEVICE_H
#define VESSEL_HW_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct timer_service;

/* One interrupt line: driving it calls set(opaque, n, level).  A line
 * with no set function is not connected (its levels go nowhere).  n lets
 * one sink serve many lines (the board's GSIs); a device with a bank of
 * outputs (the HPET's routing field, PCI INTx) drives n + i. */
struct irq_line {
	void (*set)(void *opaque, unsigned n, bool level);
	void *opaque;
	unsigned n;
};

static inline void irq_line_set(const struct irq_line *l, bool level)
{
	if (l->set)
		l->set(l->opaque, l->n, level);
}

static inline void irq_line_pulse(const struct irq_line *l)
{
	irq_line_set(l, true);
	irq_line_set(l, false);
}

/* Line i of a bank that starts at l (see struct irq_line). */
static inline void irq_line_set_at(const struct irq_line *l, unsigned i, bool level)
{
	if (l->set)
		l->set(l->opaque, l->n + i, level);
}

/* What a device may ask of whoever runs the machine. */
enum dev_request {
	DEV_REQ_RESET = 1,   /* reboot the machine (port 0xcf9, i8042 0xfe) */
	DEV_REQ_POWEROFF,    /* ACPI S5 */
	DEV_REQ_STOP,        /* stop with a value (isa-debug-exit) */
	DEV_REQ_SUSPEND,     /* ACPI S3: stop the processors, keep memory */
	DEV_REQ_HIBERNATE,   /* ACPI S4: off, the guest's image on its disk */
};

#define DEV_MAX_BASES 4
#define DEV_MAX_IRQS 4

struct dev_ctx {
	const char *name;
	struct bus *pio, *mmio;
	uint64_t base[DEV_MAX_BASES];     /* from the board table; meaning per device */
	struct irq_line irq[DEV_MAX_IRQS];
	struct timer_service *clock;
	/* The lock device callbacks run under, for a device with threads of
	 * its own (the UART's console backend); NULL in tests without one. */
	pthread_mutex_t *lock;
	void (*request)(void *opaque, enum dev_request req, int value);
	void *request_opaque;
	/* Device-specific wiring the board passes (the UART's console, the
	 * I/O APIC's APIC bus); documented by each device. */
	void *arg;
};

static inline void dev_request(const struct dev_ctx *ctx, enum dev_request req, int value)
{
	if (ctx->request)
		ctx->request(ctx->request_opaque, req, value);
}

/* A device type: one row of a board table, or a plug-in's device.
 * create claims the device's ranges on ctx's buses and returns the device
 * (NULL with err_set on failure); destroy releases them and frees it.
 * save/load are the snapshot callbacks of src/machine/device_registry.h
 * (NULL: no state saved), registered under name. */
struct dev_desc {
	const char *name;
	void *(*create)(const struct dev_ctx *ctx);
	void (*reset)(void *dev);
	int64_t (*save)(void *dev, void *buf, size_t cap);
	int (*load)(void *dev, const void *buf, size_t len);
	void (*destroy)(void *dev);
};

#endif
