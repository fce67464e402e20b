/* Local APIC (SDM vol. 3A, chapter 10 "Advanced Programmable Interrupt
 * Controller"): xAPIC MMIO at 0xfee00000 and x2APIC MSRs 0x800-0x8ff.
 *
 * One per vCPU (vcpu->lapic).  State is guarded by vm->dev_lock.  The MMIO
 * page is shared by all vCPUs; an access is routed to the LAPIC of the
 * vCPU making it, found through lapic_set_current_vcpu() (vCPU threads
 * call it once) or, failing that, by matching pthread_self() against
 * vcpu->thread.
 *
 * Engine hooks: lapic_msr_read/write() for IA32_APIC_BASE (0x1b),
 * IA32_TSC_DEADLINE (0x6e0) and the x2APIC range; lapic_get/set_cr8() for
 * MOV to/from CR8.  They take vm->dev_lock themselves (a recursive lock,
 * see platform_create()), so callers may or may not hold it. */
#ifndef VESSEL_HW_INTC_LAPIC_H
#define VESSEL_HW_INTC_LAPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct bus;
struct timer_service;
struct lapic;

/* Frequency of the LAPIC timer's input clock: the core crystal clock the
 * emu engine reports in CPUID 0x15 ECX (25 MHz).  Linux sets its APIC
 * timer period from that leaf without calibrating, so the two must agree
 * (arch/x86/kernel/tsc.c, native_calibrate_tsc()). */
#define LAPIC_TIMER_HZ 25000000ull
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

struct lapic *lapic_new(struct vcpu *vcpu, struct timer_service *ts);
void lapic_free(struct lapic *l);
/* Power-on state (SDM vol. 3A, 10.4.7.1); with init, INIT state (10.4.7.3). */
void lapic_reset(struct lapic *l, bool init);
/* Claims the xAPIC page on vm->mmio; opaque is the VM. */
int lapic_mmio_register(struct vm *vm);
void lapic_set_current_vcpu(struct vcpu *vcpu);
void lapic_set_tsc_hz(struct vm *vm, uint64_t hz);
/* Guest TSC as TSC-deadline mode sees it: VM clock scaled to the TSC rate. */
uint64_t lapic_read_tsc(struct vm *vm);

/* Engine hooks (take vm->dev_lock).  0, or -EINVAL: the engine raises #GP(0).
 * -ENOENT: not an MSR of the APIC. */
int lapic_msr_read(struct vcpu *vcpu, uint32_t msr, uint64_t *val);
int lapic_msr_write(struct vcpu *vcpu, uint32_t msr, uint64_t val);
uint64_t lapic_get_cr8(struct vcpu *vcpu);
void lapic_set_cr8(struct vcpu *vcpu, uint64_t cr8);
/* IA32_TSC_DEADLINE written, for an engine that keeps the TSC itself:
 * tsc_now is the guest TSC at the write, so the deadline fires after
 * (deadline - tsc_now) TSC ticks at the TSC rate whatever the engine's
 * TSC offset.  (lapic_msr_write() instead compares with lapic_read_tsc().) */
void lapic_set_tsc_deadline(struct vcpu *vcpu, uint64_t deadline, uint64_t tsc_now);

/* With vm->dev_lock held. */
void apic_deliver(struct vm *vm, const struct apic_msg *m, struct lapic *src);
/* PCI MSI (address 0xfeexxxxx, Intel SDM vol. 3A 10.11.1/10.11.2). */
void apic_deliver_msi(struct vm *vm, uint64_t addr, uint32_t data);
/* A level change on LINT0 (0) or LINT1 (1), the APIC's local interrupt
 * pins; on a PC LINT1 carries the NMI line (MP spec 3.6.2). */
void lapic_set_lint(struct lapic *l, unsigned lint, bool level);
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
