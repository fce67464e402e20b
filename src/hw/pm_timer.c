/* ACPI PM timer (ACPI 6.4 section 4.8.3.3). */
#include "hw/pm_timer.h"

#include "machine/bus.h"
#include "machine/timer.h"

uint32_t pm_timer_read(struct timer_service *ts)
{
	return (uint32_t)muldiv64(vm_clock_ns(ts), PM_TIMER_HZ, 1000000000ull);
}

static uint64_t pm_timer_bus_read(void *opaque, uint64_t off, unsigned size)
{
	uint64_t v = pm_timer_read(opaque) >> (8 * (off & 3));
	return size >= 4 ? (uint32_t)v : v & ((1ull << (8 * size)) - 1);
}

static void pm_timer_bus_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	/* Read-only. */
}

static const struct bus_ops pm_timer_ops = { pm_timer_bus_read, pm_timer_bus_write };

int pm_timer_register(struct timer_service *ts, struct bus *pio, uint16_t port)
{
	return bus_register(pio, port, 4, &pm_timer_ops, ts, "acpi-pmtmr");
}
