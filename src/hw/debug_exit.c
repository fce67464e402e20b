/* isa-debug-exit at port 0xf4. */
#include "hw/debug_exit.h"

#include "machine/bus.h"
#include "hw/pc.h"
#include "util/error.h"
#include "util/log.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdlib.h>

struct debug_exit {
	struct vm *vm;
};

static uint64_t debug_exit_read(void *opaque, uint64_t off, unsigned size)
{
	return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static void debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct debug_exit *d = opaque;
	if (off)
		return;   /* only the base port; 0xf5-0xf7 are claimed for wide accesses */
	uint32_t v = size >= 4 ? (uint32_t)val : (uint32_t)(val & ((1u << (8 * size)) - 1));
	log_debug("debug-exit", "guest wrote %#x", v);
	/* First writer wins, like the stop reason. */
	if (atomic_load(&d->vm->stop_reason) == VM_STOP_NONE)
		d->vm->debug_exit_value = (int)v;
	vm_request_stop(d->vm, VM_STOP_DEBUG_EXIT);
}

static const struct bus_ops debug_exit_ops = { debug_exit_read, debug_exit_write };

struct debug_exit *debug_exit_new(struct vm *vm)
{
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	d->vm = vm;
	return d;
}

void debug_exit_free(struct debug_exit *d) { free(d); }

int debug_exit_register(struct debug_exit *d, struct bus *pio)
{
	return bus_register(pio, PC_PORT_DEBUG_EXIT, 4, &debug_exit_ops, d, "debug-exit");
}
