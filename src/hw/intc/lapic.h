/* Local APIC (SDM vol. 3A, chapter 10 "Advanced Programmable Interrupt
 * Controller"): xAPIC MMIO at 0xfee00000 and x2APIC MSRs 0x800-0x8ff.
 *
 * One per vCPU (vcpu->lapic).  State is guarded by the APIC bus's lock
 * (vm->dev_lock).  The MMIO page is shared by all vCPUs; an access goes to
 * the LAPIC of the vCPU the bus callback is given.
 *
 * Engines reach it only through the CPU-to-APIC route declared in
 * machine/accel.h (vcpu_apic_msr() for IA32_APIC_BASE, IA32_TSC_DEADLINE and
 * the x2APIC range, vcpu_apic_get/set_cr8(), vcpu_apic_set_tsc_deadline(),
 * vcpu_apic_read_tsc()), whose table lapic_apic_ops this file implements
 * and the board installs as vm->apic_ops.  The LAPIC reaches other devices
 * only through its struct apic_bus. */
#ifndef VESSEL_HW_INTC_LAPIC_H
#define VESSEL_HW_INTC_LAPIC_H

#include "machine/accel.h"   /* LAPIC_TIMER_HZ, struct vcpu_apic_ops */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

struct vcpu;
struct bus;
struct timer_service;
struct lapic;

/* IA32_APIC_BASE's address at power-on (SDM vol. 3A 10.4.4). */
#define LAPIC_DEFAULT_BASE 0xfee00000ull

/* Guest TSC frequency used by TSC-deadline mode unless lapic_set_tsc_hz();
 * the emu engine's EMU_TSC_HZ. */
#define LAPIC_DEFAULT_TSC_HZ 2000000000ull

/* Delivery modes (SDM vol. 3A, 10.6.1, ICR bits 8-10). */
enum apic_delivery {
	APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_NMI = 4,
	APIC_DM_INIT = 5, APIC_DM_SIPI = 6, APIC_DM_EXTINT = 7,
};

/* One interrupt message on the APIC bus (from an ICR, the I/O APIC or MSI). */
struct apic_msg {
	uint32_t dest;          /* APIC ID, logical mask, or 0xff/0xffffffff broadcast */
	uint8_t vector;
	uint8_t delivery;       /* enum apic_delivery */
	bool dest_logical;
	bool level_trig;
	bool assert;            /* ICR level bit (INIT de-assert when false) */
	uint8_t shorthand;      /* 0 none, 1 self, 2 all incl. self, 3 all excl. self */
};

/* The APIC bus as the board wires it: where a LAPIC sends its IPIs and
 * its EOI broadcasts, and whom it tells that the BSP's acceptance of the
 * 8259 changed.  The I/O APIC sends its messages on the same bus. */
struct apic_bus {
	void (*deliver)(void *opaque, const struct apic_msg *m, struct lapic *src);
	void (*eoi)(void *opaque, uint8_t vector);   /* level-triggered EOI broadcast */
	void (*pic_changed)(void *opaque);
	void *opaque;
	pthread_mutex_t *lock;   /* the device lock, taken by the machine/accel.h route */
};

struct lapic *lapic_new(struct vcpu *vcpu, struct timer_service *ts, const struct apic_bus *bus);
/* The CPU-to-APIC route (machine/accel.h) to vcpu->lapic: vm->apic_ops. */
extern const struct vcpu_apic_ops lapic_apic_ops;
void lapic_free(struct lapic *l);
/* Power-on state (SDM vol. 3A, 10.4.7.1); with init, INIT state (10.4.7.3). */
void lapic_reset(struct lapic *l, bool init);
/* Claims the xAPIC page at base on mmio; accesses that come from no vCPU
 * see bsp's registers. */
int lapic_mmio_register(struct bus *mmio, uint64_t base, struct lapic *bsp);
void lapic_set_tsc_hz(struct lapic *l, uint64_t hz);
/* Guest TSC as TSC-deadline mode sees it: VM clock scaled to the TSC rate. */
uint64_t lapic_read_tsc(const struct lapic *l);

/* With the device lock held: the message to every LAPIC of lapics[0..n)
 * it addresses (src: the sender, for the ICR shorthands). */
void apic_deliver(struct lapic *const *lapics, unsigned n, const struct apic_msg *m, struct lapic *src);
/* PCI MSI (address 0xfeexxxxx, Intel SDM vol. 3A 10.11.1/10.11.2). */
void apic_deliver_msi(const struct apic_bus *bus, uint64_t addr, uint32_t data);
/* A level change on LINT0 (0) or LINT1 (1), the APIC's local interrupt
 * pins; on a PC LINT1 carries the NMI line (MP spec 3.6.2). */
void lapic_set_lint(struct lapic *l, unsigned lint, bool level);
/* Synthetic interrupt sources of this CPU (the Hyper-V SynIC, src/hv):
 * auto_eoi says whether an accepted vector skips the ISR (AutoEOI);
 * eoi is told of every EOI the guest writes.  Both run with the device
 * lock held; ops NULL removes them. */
struct lapic_sint_ops {
	bool (*auto_eoi)(void *opaque, uint8_t vector);
	void (*eoi)(void *opaque, uint8_t vector);
};
void lapic_set_sint_ops(struct lapic *l, const struct lapic_sint_ops *ops, void *opaque);
/* With the device lock held: an edge-triggered fixed interrupt of this CPU
 * from one of its synthetic sources. */
void lapic_sint_raise(struct lapic *l, uint8_t vector);
/* The VM clock this LAPIC's timer runs on, for the synthetic timers of
 * the same CPU (src/hv/stimer.c). */
struct timer_service *lapic_timer_service(const struct lapic *l);
/* Selective EOI (docs/hyperv.md, vessel's own interface): ends the
 * service of vector even when a higher one is in service, with the side
 * effects of an EOI of it (I/O APIC broadcast if level-triggered, the
 * synthetic sources told), PPR then follows the ISR left.  0, or -ENOENT
 * when the vector is not in service (nothing happens).  Device lock held. */
int lapic_eoi_vector(struct lapic *l, uint8_t vector);
/* Highest deliverable vector moved to in-service, or -1. */
int lapic_ack(struct lapic *l);
bool lapic_has_interrupt(struct lapic *l);
/* The 8259's INTR reaches this CPU: LINT0 unmasked in ExtINT mode, or the
 * APIC hardware-disabled (virtual wire). */
bool lapic_accepts_pic(struct lapic *l);
/* Register access as software sees it, for tests and the debugger: xAPIC
 * offset (0x20 = ID ...).  write returns -EINVAL where x2APIC would #GP. */
uint32_t lapic_reg_read(struct lapic *l, unsigned off);
int lapic_reg_write(struct lapic *l, unsigned off, uint32_t val);
bool lapic_x2apic_mode(const struct lapic *l);
/* Bit of IRR/ISR/TMR, for tests. */
bool lapic_test_irr(const struct lapic *l, uint8_t v);
bool lapic_test_isr(const struct lapic *l, uint8_t v);
bool lapic_test_tmr(const struct lapic *l, uint8_t v);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t lapic_snapshot_save(void *opaque, void *buf, size_t cap);
int lapic_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
