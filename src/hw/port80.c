/* POST code port 0x80 (a sink; Linux uses it for I/O delays). */
#include "hw/port80.h"

#include "hw/bus.h"
#include "hw/pc.h"
#include "util/error.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct port80 {
	uint8_t last;
};

static uint64_t port80_read(void *opaque, uint64_t off, unsigned size)
{
	struct port80 *p = opaque;
	return p->last;
}

static void port80_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct port80 *p = opaque;
	p->last = (uint8_t)val;
}

static const struct bus_ops port80_ops = { port80_read, port80_write };

struct port80 *port80_new(void)
{
	struct port80 *p = calloc(1, sizeof(*p));
	if (!p)
		err_set(-ENOMEM, "out of memory");
	return p;
}

void port80_free(struct port80 *p) { free(p); }

int port80_register(struct port80 *p, struct bus *pio)
{
	return bus_register(pio, PC_PORT_POST, 1, &port80_ops, p, "post");
}
