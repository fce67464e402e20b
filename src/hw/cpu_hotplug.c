/* ACPI processor hot-plug controller (see cpu_hotplug.h and
 * docs/hotplug.md "CPUs").
 *
 * The OS learns of a change from a GPE whose handler (the DSDT's
 * \_GPE._Exx, which calls \_SB.CSCN) reads INS and RMV and notifies each
 * processor object named there: Notify 1 (device check) makes Linux's
 * ACPI processor driver evaluate the object's _STA, find it present, take
 * its APIC id from _MAT and register the CPU (acpi_processor_hotadd_init);
 * Notify 3 makes it offline the CPU and run the object's _EJ0.  The
 * bitmaps, the GPE and the eject handshake are hw/acpi_hotplug.h's. */
#include "hw/cpu_hotplug.h"

#include "hw/acpi_hotplug.h"
#include "machine/bus.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>

_Static_assert(CPU_HOTPLUG_MAX == 64, "PRS, INS and RMV are two dwords");

/* PRS, INS, RMV are the core's prs, ins and ejr, two words each. */
struct cpu_hotplug {
	struct acpi_hotplug core;
};

static uint64_t get64(const uint32_t *map) { return map[0] | (uint64_t)map[1] << 32; }

static void put64(uint32_t *map, uint64_t v)
{
	map[0] = (uint32_t)v;
	map[1] = (uint32_t)(v >> 32);
}

void cpu_hotplug_set_present(struct cpu_hotplug *hp, unsigned cpu) { acpi_hotplug_plug(&hp->core, cpu, false); }
void cpu_hotplug_insert(struct cpu_hotplug *hp, unsigned cpu) { acpi_hotplug_plug(&hp->core, cpu, true); }
uint64_t cpu_hotplug_present(const struct cpu_hotplug *hp) { return get64(hp->core.prs); }

void cpu_hotplug_request_eject(struct cpu_hotplug *hp, unsigned cpu)
{
	if (acpi_hotplug_test(&hp->core, hp->core.prs, cpu))
		acpi_hotplug_raise(&hp->core, hp->core.ejr, cpu);
}

bool cpu_hotplug_take_eject(struct cpu_hotplug *hp, unsigned cpu) { return acpi_hotplug_take_eject(&hp->core, cpu); }

static uint64_t cpuhp_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct cpu_hotplug *hp = opaque;
	uint32_t *reg = off < CPU_HOTPLUG_INS ? hp->core.prs : off < CPU_HOTPLUG_RMV ? hp->core.ins :
			off < CPU_HOTPLUG_EJ ? hp->core.ejr : NULL;
	if (!reg)
		return 0;   /* EJ reads as 0 */
	/* PRS is a state, never consumed. */
	return acpi_hotplug_read(reg, 2, off & 7, size, reg != hp->core.prs);
}

static void cpuhp_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct cpu_hotplug *hp = opaque;
	if (off < CPU_HOTPLUG_EJ)
		return;   /* PRS, INS and RMV are read-only */
	/* CPU 0, the boot processor, cannot go (Linux never offlines it on
	 * x86 either); only a present CPU can be ejected. */
	uint64_t bits = (size < 8 ? val & ((1ull << (8 * size)) - 1) : val) << (8 * (off & 7));
	bits &= get64(hp->core.prs) & ~1ull;
	put64(hp->core.prs, get64(hp->core.prs) & ~bits);
	acpi_hotplug_eject(&hp->core, 0, (uint32_t)bits);
	acpi_hotplug_eject(&hp->core, 1, (uint32_t)(bits >> 32));
}

static const struct bus_ops cpuhp_ops = { cpuhp_read, cpuhp_write };

static void *cpuhp_create(const struct dev_ctx *ctx)
{
	return acpi_hotplug_create(sizeof(struct cpu_hotplug), ctx, CPU_HOTPLUG_MAX, CPU_HOTPLUG_LEN, &cpuhp_ops,
				   "cpu-hotplug");
}

/* Version 1: PRS, INS, RMV and the ejects not yet taken. */
static int64_t cpuhp_save(void *dev, void *buf, size_t cap)
{
	struct cpu_hotplug *hp = dev;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u64(&w, get64(hp->core.prs));
	hw_snap_u64(&w, get64(hp->core.ins));
	hw_snap_u64(&w, get64(hp->core.ejr));
	hw_snap_u64(&w, get64(hp->core.ejected));
	return hw_snap_end(&w);
}

static int cpuhp_load(void *dev, const void *buf, size_t len)
{
	struct cpu_hotplug *hp = dev;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "cpu-hotplug", 1, 32);
	if (rc < 0)
		return rc;
	uint64_t present = hw_snap_get_u64(&r);
	if (!(present & 1))
		return err_set(-EINVAL, "cpu-hotplug state: CPU 0 is not present");
	put64(hp->core.prs, present);
	put64(hp->core.ins, hw_snap_get_u64(&r));
	put64(hp->core.ejr, hw_snap_get_u64(&r));
	put64(hp->core.ejected, hw_snap_get_u64(&r));
	return 0;
}

/* A reset keeps the CPUs plugged in; what the OS had not read goes. */
const struct dev_desc cpu_hotplug_device = {
	.name = "cpu-hotplug", .create = cpuhp_create, .reset = acpi_hotplug_reset,
	.save = cpuhp_save, .load = cpuhp_load, .destroy = acpi_hotplug_destroy,
};
