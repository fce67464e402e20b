/* The ACPI hot-plug controllers' common core (see acpi_hotplug.h). */
#include "hw/acpi_hotplug.h"

#include "machine/bus.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>

#define WORD(i) ((i) / 32)
#define BIT(i) (1u << ((i) % 32))

void *acpi_hotplug_create(size_t size, const struct dev_ctx *ctx, unsigned n, uint64_t len,
			  const struct bus_ops *ops, const char *name)
{
	struct acpi_hotplug *hp = calloc(1, size);
	if (!hp) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	hp->ctx = *ctx;
	hp->n = n;
	if (bus_register(ctx->pio, ctx->base[0], len, ops, hp, name) < 0) {
		free(hp);
		return NULL;
	}
	return hp;
}

void acpi_hotplug_destroy(void *dev)
{
	struct acpi_hotplug *hp = dev;
	if (!hp)
		return;
	bus_release(hp->ctx.pio, hp);
	free(hp);
}

void acpi_hotplug_reset(void *dev)
{
	struct acpi_hotplug *hp = dev;
	for (unsigned w = 0; w < ACPI_HOTPLUG_WORDS; w++)
		hp->ins[w] = hp->ejr[w] = hp->ejected[w] = 0;
}

bool acpi_hotplug_test(const struct acpi_hotplug *hp, const uint32_t *map, unsigned i)
{
	return i < hp->n && (map[WORD(i)] & BIT(i));
}

void acpi_hotplug_raise(struct acpi_hotplug *hp, uint32_t *map, unsigned i)
{
	if (i >= hp->n)
		return;
	map[WORD(i)] |= BIT(i);
	irq_line_pulse(&hp->ctx.irq[0]);
}

void acpi_hotplug_plug(struct acpi_hotplug *hp, unsigned i, bool notify)
{
	if (i < hp->n)
		hp->prs[WORD(i)] |= BIT(i);
	if (notify)
		acpi_hotplug_raise(hp, hp->ins, i);
}

bool acpi_hotplug_take_eject(struct acpi_hotplug *hp, unsigned i)
{
	bool was = acpi_hotplug_test(hp, hp->ejected, i);
	if (was)
		hp->ejected[WORD(i)] &= ~BIT(i);
	return was;
}

void acpi_hotplug_forget(struct acpi_hotplug *hp, unsigned i)
{
	if (i >= hp->n)
		return;
	hp->prs[WORD(i)] &= ~BIT(i);
	hp->ins[WORD(i)] &= ~BIT(i);
	hp->ejr[WORD(i)] &= ~BIT(i);
	hp->ejected[WORD(i)] &= ~BIT(i);
}

uint64_t acpi_hotplug_read(uint32_t *map, unsigned words, uint64_t off, unsigned size, bool consume)
{
	uint64_t v = 0;
	for (unsigned b = 0; b < size && off + b < 4ull * words; b++)
		v |= (uint64_t)((map[(off + b) / 4] >> (8 * ((off + b) % 4))) & 0xff) << (8 * b);
	if (consume && size == 4 && off % 4 == 0)
		map[off / 4] = 0;
	return v;
}

void acpi_hotplug_eject(struct acpi_hotplug *hp, unsigned w, uint32_t bits)
{
	hp->ejected[w] |= bits;
	hp->ejr[w] &= ~bits;
}
