/* Device buses: port I/O (16-bit space) and MMIO (guest-physical space
 * outside RAM).  A device claims a range with a pair of callbacks; an
 * access nobody claims reads as all ones and drops writes, as on a PC.
 *
 * Callbacks run with the VM's device lock held (vm->dev_lock), so a device
 * needs no lock of its own unless it has threads of its own.  They are
 * given the vCPU making the access (NULL when the access does not come
 * from a vCPU: tests, the control API), which is how the local APIC's
 * shared MMIO page finds the APIC of the CPU that touches it. */
#ifndef VESSEL_MACHINE_BUS_H
#define VESSEL_MACHINE_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;

struct bus_ops {
	/* off is relative to the range's base; size is 1, 2, 4 or 8. */
	uint64_t (*read)(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size);
	void (*write)(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val);
};

struct bus_range {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
	uint64_t reads, writes;    /* per-device counters for `vessel ctl stats` */
};

struct bus {
	const char *name;          /* "pio" or "mmio" */
	struct bus_range *ranges;  /* sorted by base, non-overlapping */
	unsigned n, cap;
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);
/* -EBUSY (with err_set) if the range overlaps one already claimed. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name);
/* Removes the range claimed by opaque at base; -ENOENT if none. */
int bus_unregister(struct bus *bus, uint64_t base, void *opaque);
/* Removes every range claimed by opaque (a device's destroy calls it). */
void bus_release(struct bus *bus, void *opaque);
struct bus_range *bus_find(struct bus *bus, uint64_t addr);
/* false when no device claims addr (value then reads as all ones).
 * vcpu: the accessing vCPU, or NULL (see struct bus_ops). */
bool bus_read(struct bus *bus, struct vcpu *vcpu, uint64_t addr, unsigned size, uint64_t *val);
bool bus_write(struct bus *bus, struct vcpu *vcpu, uint64_t addr, unsigned size, uint64_t val);

#endif
