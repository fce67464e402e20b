/* A VM with the PC platform, a manual clock and a null console, driven
 * through its buses as a guest would. */
#ifndef VESSEL_TESTS_HW_HARNESS_H
#define VESSEL_TESTS_HW_HARNESS_H

#include "hw/chardev.h"
#include "hw/intc/lapic.h"
#include "board/pc.h"
#include "machine/timer.h"
#include "util/error.h"
#include "machine/machine.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define TVM_MAX_CPUS 4

struct tvm {
	struct vm vm;
	struct vcpu cpu[TVM_MAX_CPUS];
	uint64_t now;
	struct chardev *console;
	struct vcpu *cur;          /* the vCPU the accesses below come from */
};

static uint64_t tvm_clock(void *opaque)
{
	return ((struct tvm *)opaque)->now;
}

/* console may be NULL (null backend); power NULL: no AC adapter or battery. */
static inline struct tvm *tvm_new_full(unsigned ncpus, struct chardev *console,
				       const struct power_supply_source *power)
{
	struct tvm *t = calloc(1, sizeof(*t));
	cr_assert(t);
	t->now = 10000000000ull;   /* 10 s */
	cr_assert_eq(gmem_init(&t->vm.mem, 64ull << 20), 0);
	bus_init(&t->vm.pio, "pio");
	bus_init(&t->vm.mmio, "mmio");
	pthread_mutex_init(&t->vm.dev_lock, NULL);
	t->vm.n_vcpus = ncpus;
	for (unsigned i = 0; i < ncpus; i++) {
		struct vcpu *v = &t->cpu[i];
		v->vm = &t->vm;
		v->id = i;
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, NULL);
		t->vm.vcpus[i] = v;
	}
	t->console = console ? console : chardev_null_new();
	struct platform_options opts = { .manual_clock = true, .clock = tvm_clock, .clock_opaque = t,
					 .console = t->console, .power_source = power };
	cr_assert_eq(platform_create_opts(&t->vm, &opts), 0, "platform_create: %s", err_msg());
	t->cur = &t->cpu[0];
	return t;
}

static inline struct tvm *tvm_new_with_console(unsigned ncpus, struct chardev *console)
{
	return tvm_new_full(ncpus, console, NULL);
}

static inline struct tvm *tvm_new(unsigned ncpus) { return tvm_new_with_console(ncpus, NULL); }

static inline void tvm_free(struct tvm *t)
{
	platform_destroy(&t->vm);
	chardev_free(t->console);
	bus_destroy(&t->vm.pio);
	bus_destroy(&t->vm.mmio);
	gmem_destroy(&t->vm.mem);
	free(t);
}

/* Advances the VM clock and runs the timers that came due. */
static inline void tvm_advance(struct tvm *t, uint64_t ns)
{
	t->now += ns;
	pthread_mutex_lock(&t->vm.dev_lock);
	timer_service_poll(t->vm.platform->timers);
	pthread_mutex_unlock(&t->vm.dev_lock);
}

static inline void outb(struct tvm *t, uint16_t port, uint32_t v) { pthread_mutex_lock(&t->vm.dev_lock); bus_write(&t->vm.pio, t->cur, port, 1, v); pthread_mutex_unlock(&t->vm.dev_lock); }
static inline void outw(struct tvm *t, uint16_t port, uint32_t v) { pthread_mutex_lock(&t->vm.dev_lock); bus_write(&t->vm.pio, t->cur, port, 2, v); pthread_mutex_unlock(&t->vm.dev_lock); }
static inline void outl(struct tvm *t, uint16_t port, uint32_t v) { pthread_mutex_lock(&t->vm.dev_lock); bus_write(&t->vm.pio, t->cur, port, 4, v); pthread_mutex_unlock(&t->vm.dev_lock); }
static inline uint32_t in_n(struct tvm *t, uint16_t port, unsigned size)
{
	uint64_t v;
	pthread_mutex_lock(&t->vm.dev_lock);
	bus_read(&t->vm.pio, t->cur, port, size, &v);
	pthread_mutex_unlock(&t->vm.dev_lock);
	return (uint32_t)v;
}
static inline uint8_t inb(struct tvm *t, uint16_t port) { return (uint8_t)in_n(t, port, 1); }
static inline uint16_t inw(struct tvm *t, uint16_t port) { return (uint16_t)in_n(t, port, 2); }
static inline uint32_t inl(struct tvm *t, uint16_t port) { return in_n(t, port, 4); }

static inline void mmio_write(struct tvm *t, uint64_t gpa, unsigned size, uint64_t v)
{
	pthread_mutex_lock(&t->vm.dev_lock);
	bus_write(&t->vm.mmio, t->cur, gpa, size, v);
	pthread_mutex_unlock(&t->vm.dev_lock);
}
static inline uint64_t mmio_read(struct tvm *t, uint64_t gpa, unsigned size)
{
	uint64_t v;
	pthread_mutex_lock(&t->vm.dev_lock);
	bus_read(&t->vm.mmio, t->cur, gpa, size, &v);
	pthread_mutex_unlock(&t->vm.dev_lock);
	return v;
}

/* The CPU-to-APIC route (machine/accel.h) as an engine uses it. */
static inline int tvm_msr_read(struct vcpu *v, uint32_t msr, uint64_t *val) { return vcpu_apic_msr(v, msr, false, val); }
static inline int tvm_msr_write(struct vcpu *v, uint32_t msr, uint64_t val) { return vcpu_apic_msr(v, msr, true, &val); }
static inline uint64_t tvm_get_cr8(struct vcpu *v)
{
	uint64_t cr8 = ~0ull;
	cr_assert_eq(vcpu_apic_get_cr8(v, &cr8), 0);
	return cr8;
}
static inline void tvm_set_cr8(struct vcpu *v, uint64_t cr8) { cr_assert_eq(vcpu_apic_set_cr8(v, cr8), 0); }

/* xAPIC register of the current vCPU (t->cur). */
static inline void apic_w(struct tvm *t, unsigned off, uint32_t v) { mmio_write(t, GMEM_LAPIC_BASE + off, 4, v); }
static inline uint32_t apic_r(struct tvm *t, unsigned off) { return (uint32_t)mmio_read(t, GMEM_LAPIC_BASE + off, 4); }

/* vm->intr_ack as an engine calls it: with the device lock held. */
static inline int tvm_intr_ack(struct vcpu *v)
{
	pthread_mutex_lock(&v->vm->dev_lock);
	int r = v->vm->intr_ack(v);
	pthread_mutex_unlock(&v->vm->dev_lock);
	return r;
}

static inline uint32_t take_events(struct tvm *t, unsigned cpu)
{
	return atomic_exchange(&t->cpu[cpu].events, 0);
}

/* I/O APIC redirection entry. */
static inline void ioapic_w(struct tvm *t, unsigned pin, uint64_t e)
{
	mmio_write(t, GMEM_IOAPIC_BASE, 4, 0x10 + 2 * pin + 1);
	mmio_write(t, GMEM_IOAPIC_BASE + 0x10, 4, (uint32_t)(e >> 32));
	mmio_write(t, GMEM_IOAPIC_BASE, 4, 0x10 + 2 * pin);
	mmio_write(t, GMEM_IOAPIC_BASE + 0x10, 4, (uint32_t)e);
}

static inline void irq_line(struct tvm *t, unsigned gsi, bool level)
{
	pthread_mutex_lock(&t->vm.dev_lock);
	irq_set_level(&t->vm, gsi, level);
	pthread_mutex_unlock(&t->vm.dev_lock);
}

/* Standard Linux-like 8259 initialisation: vectors 0x20 and 0x28. */
static inline void pic_init_linux(struct tvm *t, uint8_t master_mask, uint8_t slave_mask)
{
	outb(t, 0x20, 0x11); outb(t, 0x21, 0x20); outb(t, 0x21, 0x04); outb(t, 0x21, 0x01);
	outb(t, 0xa0, 0x11); outb(t, 0xa1, 0x28); outb(t, 0xa1, 0x02); outb(t, 0xa1, 0x01);
	outb(t, 0x21, master_mask);
	outb(t, 0xa1, slave_mask);
}

#endif
