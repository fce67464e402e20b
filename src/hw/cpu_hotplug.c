/* ACPI processor hot-plug controller (see cpu_hotplug.h and
 * docs/hotplug.md "CPUs").
 *
 * The OS learns of a change from a GPE whose handler (the DSDT's
 * \_GPE._Exx, which calls \_SB.CSCN) reads INS and RMV and notifies each
 * processor object named there: Notify 1 (device check) makes Linux's
 * ACPI processor driver evaluate the object's _STA, find it present, take
 * its APIC id from _MAT and register the CPU (acpi_processor_hotadd_init);
 * Notify 3 makes it offline the CPU and run the object's _EJ0.
 * Reads clear what they return, so a change raised while the handler runs
 * raises the GPE again and is never lost. */
#include "hw/cpu_hotplug.h"

#include "hw/device.h"
#include "machine/bus.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>

struct cpu_hotplug {
	struct dev_ctx ctx;
	uint64_t present;
	uint64_t ins, rmv;    /* pending for the OS */
	uint64_t ejected;     /* ejected by the OS, not yet taken by the host */
};

static uint64_t cpu_bit(unsigned cpu)
{
	return cpu < CPU_HOTPLUG_MAX ? 1ull << cpu : 0;
}

void cpu_hotplug_set_present(struct cpu_hotplug *hp, unsigned cpu) { hp->present |= cpu_bit(cpu); }
uint64_t cpu_hotplug_present(const struct cpu_hotplug *hp) { return hp->present; }

void cpu_hotplug_insert(struct cpu_hotplug *hp, unsigned cpu)
{
	if (!cpu_bit(cpu))
		return;
	hp->present |= cpu_bit(cpu);
	hp->ins |= cpu_bit(cpu);
	irq_line_pulse(&hp->ctx.irq[0]);
}

void cpu_hotplug_request_eject(struct cpu_hotplug *hp, unsigned cpu)
{
	if (!(hp->present & cpu_bit(cpu)))
		return;
	hp->rmv |= cpu_bit(cpu);
	irq_line_pulse(&hp->ctx.irq[0]);
}

bool cpu_hotplug_take_eject(struct cpu_hotplug *hp, unsigned cpu)
{
	bool was = (hp->ejected & cpu_bit(cpu)) != 0;
	hp->ejected &= ~cpu_bit(cpu);
	return was;
}

static uint64_t cpuhp_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct cpu_hotplug *hp = opaque;
	uint64_t *reg = off < CPU_HOTPLUG_INS ? &hp->present : off < CPU_HOTPLUG_RMV ? &hp->ins :
			off < CPU_HOTPLUG_EJ ? &hp->rmv : NULL;
	if (!reg)
		return 0;   /* EJ reads as 0 */
	unsigned shift = 8 * (off & 7);
	uint64_t v = *reg >> shift;
	if (size < 8)
		v &= (1ull << (8 * size)) - 1;
	/* Only the aligned dword read the DSDT's Field does consumes the
	 * bits it returns; PRS is a state, never consumed. */
	if (reg != &hp->present && size == 4 && (off & 3) == 0)
		*reg &= ~(v << shift);
	return v;
}

static void cpuhp_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct cpu_hotplug *hp = opaque;
	if (off < CPU_HOTPLUG_EJ)
		return;   /* PRS, INS and RMV are read-only */
	uint64_t bits = (size < 8 ? val & ((1ull << (8 * size)) - 1) : val) << (8 * (off & 7));
	/* CPU 0, the boot processor, cannot go (Linux never offlines it on
	 * x86 either); only a present CPU can be ejected. */
	bits &= hp->present & ~1ull;
	hp->ejected |= bits;
	hp->present &= ~bits;
	hp->rmv &= ~bits;
}

static const struct bus_ops cpuhp_ops = { cpuhp_read, cpuhp_write };

static void *cpuhp_create(const struct dev_ctx *ctx)
{
	struct cpu_hotplug *hp = calloc(1, sizeof(*hp));
	if (!hp) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	hp->ctx = *ctx;
	if (bus_register(ctx->pio, ctx->base[0], CPU_HOTPLUG_LEN, &cpuhp_ops, hp, "cpu-hotplug") < 0) {
		free(hp);
		return NULL;
	}
	return hp;
}

/* A reset keeps the CPUs plugged in; what the OS had not read goes. */
static void cpuhp_reset(void *dev)
{
	struct cpu_hotplug *hp = dev;
	hp->ins = hp->rmv = hp->ejected = 0;
}

static void cpuhp_destroy(void *dev)
{
	struct cpu_hotplug *hp = dev;
	if (!hp)
		return;
	bus_release(hp->ctx.pio, hp);
	free(hp);
}

/* Version 1: PRS, INS, RMV and the ejects not yet taken. */
static int64_t cpuhp_save(void *dev, void *buf, size_t cap)
{
	struct cpu_hotplug *hp = dev;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u64(&w, hp->present);
	hw_snap_u64(&w, hp->ins);
	hw_snap_u64(&w, hp->rmv);
	hw_snap_u64(&w, hp->ejected);
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
	hp->present = present;
	hp->ins = hw_snap_get_u64(&r);
	hp->rmv = hw_snap_get_u64(&r);
	hp->ejected = hw_snap_get_u64(&r);
	return 0;
}

const struct dev_desc cpu_hotplug_device = {
	.name = "cpu-hotplug", .create = cpuhp_create, .reset = cpuhp_reset,
	.save = cpuhp_save, .load = cpuhp_load, .destroy = cpuhp_destroy,
};
