/* LAPIC, I/O APIC and 8259 through their guest interfaces. */
#include "harness.h"

#include "machine/x86.h"
#include "hw/intc/ioapic.h"

#include <errno.h>

#define APIC_ID 0x20
#define APIC_VER 0x30
#define APIC_TPR 0x80
#define APIC_PPR 0xa0
#define APIC_EOI 0xb0
#define APIC_LDR 0xd0
#define APIC_DFR 0xe0
#define APIC_SVR 0xf0
#define APIC_ESR 0x280
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVTT 0x320
#define APIC_LINT0 0x350
#define APIC_LVTERR 0x370
#define APIC_TMICT 0x380
#define APIC_TMCCT 0x390
#define APIC_TDCR 0x3e0

static void apic_enable(struct tvm *t) { apic_w(t, APIC_SVR, 0x1ff); }

Test(lapic, id_version_and_reset_state)
{
	struct tvm *t = tvm_new(2);
	cr_assert_eq(apic_r(t, APIC_ID), 0);
	uint32_t ver = apic_r(t, APIC_VER);
	cr_assert_eq(ver & 0xff, 0x14);
	cr_assert_eq((ver >> 16) & 0xff, 6, "max LVT entry");
	t->cur = &t->cpu[1];
	cr_assert_eq(apic_r(t, APIC_ID), 1u << 24, "vCPU 1's APIC answers at the same address");
	cr_assert_eq(apic_r(t, APIC_SVR), 0xff);
	cr_assert_eq(apic_r(t, APIC_LINT0), 0x10000, "AP: LINT0 masked");
	t->cur = &t->cpu[0];
	cr_assert_eq(apic_r(t, APIC_LINT0), 0x700, "BSP: LINT0 ExtINT (virtual wire)");
	uint64_t base;
	cr_assert_eq(tvm_msr_read(&t->cpu[0], MSR_IA32_APIC_BASE, &base), 0);
	cr_assert_eq(base, 0xfee00000ull | (1 << 11) | (1 << 8));
	cr_assert_eq(tvm_msr_read(&t->cpu[1], MSR_IA32_APIC_BASE, &base), 0);
	cr_assert_eq(base, 0xfee00000ull | (1 << 11));
	tvm_free(t);
}

Test(lapic, fixed_ipi_priority_and_eoi)
{
	struct tvm *t = tvm_new(2);
	t->cur = &t->cpu[1];
	apic_enable(t);
	t->cur = &t->cpu[0];
	apic_enable(t);
	take_events(t, 1);
	/* Two fixed IPIs from CPU 0 to CPU 1 (physical destination 1). */
	apic_w(t, APIC_ICR_HI, 1u << 24);
	apic_w(t, APIC_ICR_LO, 0x40);
	apic_w(t, APIC_ICR_LO, 0x61);
	cr_assert(take_events(t, 1) & VCPU_EVT_INTR);
	cr_assert_eq(take_events(t, 0) & VCPU_EVT_INTR, 0, "the sender got nothing");
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), 0x61, "highest vector first");
	/* 0x40 is in a lower class than the in-service 0x61: held. */
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), -1);
	t->cur = &t->cpu[1];
	cr_assert_eq(apic_r(t, APIC_PPR), 0x60);
	cr_assert(lapic_test_isr(t->cpu[1].lapic, 0x61));
	apic_w(t, APIC_EOI, 0);
	cr_assert(!lapic_test_isr(t->cpu[1].lapic, 0x61));
	cr_assert(take_events(t, 1) & VCPU_EVT_INTR, "EOI uncovers the pending 0x40");
	/* TPR blocks its class and below. */
	apic_w(t, APIC_TPR, 0x40);
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), -1);
	apic_w(t, APIC_TPR, 0x30);
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), 0x40);
	tvm_free(t);
}

Test(lapic, software_disabled_masks_and_holds)
{
	struct tvm *t = tvm_new(1);
	apic_w(t, APIC_LVTT, 0x30);
	cr_assert_eq(apic_r(t, APIC_LVTT), 0x10030, "LVT stays masked while software-disabled");
	apic_w(t, APIC_ICR_LO, 0x44000 | 0x50);   /* self IPI via shorthand */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "nothing delivered while disabled");
	apic_enable(t);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50, "held interrupt delivered once enabled");
	tvm_free(t);
}

Test(lapic, illegal_vector_sets_esr)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	apic_w(t, APIC_LVTERR, 0xfe);
	apic_w(t, APIC_ICR_LO, 0x44000 | 0x05);   /* vector 5 to self */
	apic_w(t, APIC_ESR, 0);                   /* latch */
	cr_assert_eq(apic_r(t, APIC_ESR), 0x20, "send illegal vector");
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0xfe, "error LVT fired");
	apic_w(t, APIC_ESR, 0);
	cr_assert_eq(apic_r(t, APIC_ESR), 0);
	tvm_free(t);
}

Test(lapic, timer_oneshot_and_periodic)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	/* The timer counts at LAPIC_TIMER_HZ (25 MHz, 40 ns a tick). */
	apic_w(t, APIC_TDCR, 0xb);                /* divide by 1 */
	apic_w(t, APIC_LVTT, 0x31);               /* one-shot, vector 0x31 */
	apic_w(t, APIC_TMICT, 25000);             /* 1 ms */
	tvm_advance(t, 400000);
	cr_assert_eq(apic_r(t, APIC_TMCCT), 15000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	tvm_advance(t, 600000);
	cr_assert_eq(apic_r(t, APIC_TMCCT), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x31);
	apic_w(t, APIC_EOI, 0);
	tvm_advance(t, 5000000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "one-shot fires once");

	apic_w(t, APIC_TDCR, 0x3);                /* divide by 16 */
	apic_w(t, APIC_LVTT, 0x20032);            /* periodic */
	apic_w(t, APIC_TMICT, 1000);              /* 16000 ticks: 640 us */
	for (int i = 0; i < 3; i++) {
		tvm_advance(t, 640000);
		cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x32, "period %d", i);
		apic_w(t, APIC_EOI, 0);
	}
	tvm_advance(t, 320000);
	cr_assert_eq(apic_r(t, APIC_TMCCT), 500);
	apic_w(t, APIC_TMICT, 0);                 /* stop */
	tvm_advance(t, 10000000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	tvm_free(t);
}

Test(lapic, tsc_deadline)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	lapic_set_tsc_hz(t->cpu[0].lapic, 1000000000ull);  /* 1 TSC tick per ns */
	uint64_t v;
	cr_assert_eq(tvm_msr_write(&t->cpu[0], MSR_IA32_TSC_DEADLINE, t->now + 100), 0);
	cr_assert_eq(tvm_msr_read(&t->cpu[0], MSR_IA32_TSC_DEADLINE, &v), 0);
	cr_assert_eq(v, 0, "ignored outside TSC-deadline mode");
	apic_w(t, APIC_LVTT, 0x40033);
	uint64_t deadline = lapic_read_tsc(t->cpu[0].lapic) + 5000;
	tvm_msr_write(&t->cpu[0], MSR_IA32_TSC_DEADLINE, deadline);
	tvm_msr_read(&t->cpu[0], MSR_IA32_TSC_DEADLINE, &v);
	cr_assert_eq(v, deadline);
	tvm_advance(t, 4000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	tvm_advance(t, 1000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x33);
	tvm_msr_read(&t->cpu[0], MSR_IA32_TSC_DEADLINE, &v);
	cr_assert_eq(v, 0, "deadline clears when it fires");
	apic_w(t, APIC_EOI, 0);
	/* A deadline in the past fires at once; 0 disarms. */
	tvm_msr_write(&t->cpu[0], MSR_IA32_TSC_DEADLINE, 1);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x33);
	apic_w(t, APIC_EOI, 0);
	tvm_msr_write(&t->cpu[0], MSR_IA32_TSC_DEADLINE, lapic_read_tsc(t->cpu[0].lapic) + 10);
	tvm_msr_write(&t->cpu[0], MSR_IA32_TSC_DEADLINE, 0);
	tvm_advance(t, 100);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	/* An engine with its own TSC (offset from ours): relative to its now. */
	vcpu_apic_set_tsc_deadline(&t->cpu[0], 1000000 + 3000, 1000000);
	tvm_advance(t, 2999);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	tvm_advance(t, 1);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x33);
	tvm_free(t);
}

Test(lapic, init_sipi_nmi)
{
	struct tvm *t = tvm_new(3);
	apic_enable(t);
	take_events(t, 1);
	take_events(t, 2);
	/* INIT assert to all excluding self, then SIPI vector 0x9a. */
	apic_w(t, APIC_ICR_LO, 0xc4500);
	cr_assert(take_events(t, 1) & VCPU_EVT_INIT);
	cr_assert(take_events(t, 2) & VCPU_EVT_INIT);
	cr_assert_eq(take_events(t, 0) & VCPU_EVT_INIT, 0);
	apic_w(t, APIC_ICR_LO, 0x8500);           /* INIT level de-assert: no effect */
	cr_assert_eq(take_events(t, 1), 0);
	apic_w(t, APIC_ICR_HI, 2u << 24);
	apic_w(t, APIC_ICR_LO, 0x0469a);
	cr_assert(take_events(t, 2) & VCPU_EVT_SIPI);
	cr_assert_eq(t->cpu[2].sipi_vector, 0x9a);
	cr_assert_eq(take_events(t, 1), 0);
	/* The second SIPI of the INIT-SIPI-SIPI sequence finds CPU 2 started. */
	apic_w(t, APIC_ICR_LO, 0x0469b);
	cr_assert_eq(take_events(t, 2) & VCPU_EVT_SIPI, 0);
	cr_assert_eq(t->cpu[2].sipi_vector, 0x9a);
	/* A new INIT puts it back in wait-for-SIPI. */
	apic_w(t, APIC_ICR_LO, 0x04500);
	apic_w(t, APIC_ICR_LO, 0x0469c);
	/* vcpu_signal() adds a kick so that a running vCPU sees INIT. */
	cr_assert_eq(take_events(t, 2) & ~VCPU_EVT_KICK, VCPU_EVT_INIT | VCPU_EVT_SIPI);
	cr_assert_eq(t->cpu[2].sipi_vector, 0x9c);
	apic_w(t, APIC_ICR_HI, 1u << 24);
	apic_w(t, APIC_ICR_LO, 0x0400);           /* NMI */
	cr_assert(take_events(t, 1) & VCPU_EVT_NMI);
	tvm_free(t);
}

Test(lapic, logical_flat_and_cluster)
{
	struct tvm *t = tvm_new(3);
	for (unsigned i = 0; i < 3; i++) {
		t->cur = &t->cpu[i];
		apic_enable(t);
		apic_w(t, APIC_LDR, (1u << i) << 24);
	}
	t->cur = &t->cpu[0];
	for (unsigned i = 0; i < 3; i++)
		take_events(t, i);
	apic_w(t, APIC_ICR_HI, 0x06u << 24);      /* CPUs 1 and 2 */
	apic_w(t, APIC_ICR_LO, 0x0800 | 0x70);
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), 0x70);
	cr_assert_eq(tvm_intr_ack(&t->cpu[2]), 0x70);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	/* Cluster model: cluster 1, member bit 2 -> only a CPU with LDR 0x12. */
	t->cur = &t->cpu[2];
	apic_w(t, APIC_DFR, 0x0fffffff);
	apic_w(t, APIC_LDR, 0x12u << 24);
	apic_w(t, APIC_EOI, 0);
	t->cur = &t->cpu[0];
	apic_w(t, APIC_ICR_HI, 0x12u << 24);
	apic_w(t, APIC_ICR_LO, 0x0800 | 0x71);
	cr_assert_eq(tvm_intr_ack(&t->cpu[2]), 0x71);
	tvm_free(t);
}

Test(lapic, x2apic_msrs)
{
	struct tvm *t = tvm_new(2);
	struct vcpu *c0 = &t->cpu[0], *c1 = &t->cpu[1];
	uint64_t v;
	cr_assert_eq(tvm_msr_read(c0, 0x802, &v), -EINVAL, "x2APIC MSRs #GP in xAPIC mode");
	cr_assert_eq(tvm_msr_write(c0, MSR_IA32_APIC_BASE, 0xfee00000ull | (1 << 10)), -EINVAL,
		     "EXTD without EN is invalid");
	for (unsigned i = 0; i < 2; i++) {
		cr_assert_eq(tvm_msr_write(&t->cpu[i], MSR_IA32_APIC_BASE, 0xfee00000ull | (3 << 10)), 0);
		cr_assert_eq(tvm_msr_write(&t->cpu[i], 0x80f, 0x1ff), 0);
	}
	cr_assert_eq(tvm_msr_read(c1, 0x802, &v), 0);
	cr_assert_eq(v, 1, "x2APIC ID is the full 32-bit ID");
	cr_assert_eq(tvm_msr_read(c1, 0x80d, &v), 0);
	cr_assert_eq(v, 2, "LDR: cluster 0, bit 1");
	cr_assert_eq(tvm_msr_write(c1, 0x80d, 5), -EINVAL, "LDR is read-only");
	cr_assert_eq(tvm_msr_read(c1, 0x80b, &v), -EINVAL, "EOI is write-only");
	cr_assert_eq(tvm_msr_write(c1, 0x80b, 1), -EINVAL, "non-zero EOI write");
	cr_assert_eq(tvm_msr_write(c1, 0x808, 1ull << 32), -EINVAL, "reserved upper half");
	cr_assert_eq(tvm_msr_write(c0, MSR_IA32_APIC_BASE, 0xfee00000ull | (1 << 11)), -EINVAL,
		     "x2APIC -> xAPIC directly is invalid");
	/* One 64-bit ICR write: destination in the high half. */
	take_events(t, 1);
	cr_assert_eq(tvm_msr_write(c0, 0x830, (1ull << 32) | 0x55), 0);
	cr_assert(take_events(t, 1) & VCPU_EVT_INTR);
	cr_assert_eq(tvm_intr_ack(c1), 0x55);
	/* Self IPI MSR: bits 31:8 are reserved, a write setting one is #GP
	 * and sends nothing (SDM vol. 3A 10.12.11). */
	cr_assert_eq(tvm_msr_write(c1, 0x83f, 0x100), -EINVAL, "SELF_IPI with reserved bit 8");
	cr_assert_eq(tvm_msr_write(c1, 0x83f, 0x166), -EINVAL, "SELF_IPI with reserved bit 8");
	cr_assert_eq(tvm_intr_ack(c1), -1, "a SELF_IPI write that faults sends nothing");
	cr_assert_eq(tvm_msr_write(c1, 0x83f, 0x66), 0);
	cr_assert_eq(tvm_intr_ack(c1), 0x66, "a higher class preempts the in-service 0x55");
	tvm_free(t);
}

Test(lapic, cr8_is_tpr)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	tvm_set_cr8(&t->cpu[0], 0x7);
	cr_assert_eq(apic_r(t, APIC_TPR), 0x70);
	apic_w(t, APIC_TPR, 0xa5);
	cr_assert_eq(tvm_get_cr8(&t->cpu[0]), 0xa);
	tvm_free(t);
}

Test(ioapic, edge_and_level_with_remote_irr)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	apic_w(t, APIC_LINT0, 0x10700);           /* the PIC path off, as Linux does with the I/O APIC */
	/* Version register: 0x20, 24 pins. */
	mmio_write(t, GMEM_IOAPIC_BASE, 4, 1);
	cr_assert_eq(mmio_read(t, GMEM_IOAPIC_BASE + 0x10, 4), 0x170020);
	cr_assert(ioapic_get_redir(t->vm.platform->ioapic, 5) & (1 << 16), "pins start masked");
	/* Pin 5 edge, vector 0x45, physical dest 0. */
	ioapic_w(t, 5, 0x45);
	irq_line(t, 5, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x45);
	apic_w(t, APIC_EOI, 0);
	irq_line(t, 5, true);                     /* no new edge */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	irq_line(t, 5, false);
	/* Pin 16 level, vector 0x56. */
	ioapic_w(t, 16, 0x56 | (1 << 15));
	irq_line(t, 16, true);
	cr_assert(lapic_test_tmr(t->cpu[0].lapic, 0x56), "level interrupts set TMR");
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x56);
	cr_assert(ioapic_get_redir(t->vm.platform->ioapic, 16) & (1 << 14), "remote IRR set");
	apic_w(t, APIC_EOI, 0);                   /* broadcast EOI, line still high */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x56, "re-delivered while asserted");
	irq_line(t, 16, false);
	apic_w(t, APIC_EOI, 0);
	cr_assert_eq(ioapic_get_redir(t->vm.platform->ioapic, 16) & (1 << 14), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	tvm_free(t);
}

Test(ioapic, directed_eoi_and_masking)
{
	struct tvm *t = tvm_new(1);
	apic_w(t, APIC_SVR, 0x11ff);              /* enable + suppress EOI broadcast */
	apic_w(t, APIC_LINT0, 0x10700);
	cr_assert_eq(apic_r(t, APIC_SVR), 0x11ff);
	ioapic_w(t, 17, 0x57 | (1 << 15) | (1 << 16));   /* masked */
	irq_line(t, 17, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	ioapic_w(t, 17, 0x57 | (1 << 15));        /* unmask: asserted level delivers */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x57);
	irq_line(t, 17, false);
	apic_w(t, APIC_EOI, 0);
	cr_assert(ioapic_get_redir(t->vm.platform->ioapic, 17) & (1 << 14), "no broadcast: remote IRR stays");
	mmio_write(t, GMEM_IOAPIC_BASE + 0x40, 4, 0x57);  /* directed EOI */
	cr_assert_eq(ioapic_get_redir(t->vm.platform->ioapic, 17) & (1 << 14), 0);
	tvm_free(t);
}

Test(ioapic, isa_irq0_goes_to_pin2)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	apic_w(t, APIC_LINT0, 0x10700);           /* mask the PIC path */
	ioapic_w(t, 2, 0x30);
	irq_line(t, 0, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x30);
	irq_line(t, 0, false);
	tvm_free(t);
}

Test(pic, init_ack_eoi_and_cascade)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0x00, 0x00);
	take_events(t, 0);
	irq_line(t, 1, true);
	cr_assert(take_events(t, 0) & VCPU_EVT_INTR, "LINT0 ExtINT wakes the BSP");
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x21);
	outb(t, 0x20, 0x0b);                      /* OCW3: read ISR */
	cr_assert_eq(inb(t, 0x20), 0x02);
	/* Slave IRQ 12 while IRQ1 is in service: lower priority, waits. */
	irq_line(t, 12, true);
	irq_line(t, 0, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x20, "IRQ0 beats IRQ1 in service");
	outb(t, 0x20, 0x20);                      /* EOI IRQ0 */
	outb(t, 0x20, 0x20);                      /* EOI IRQ1 */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x2c, "slave IRQ12 through the cascade");
	outb(t, 0xa0, 0x0b);
	cr_assert_eq(inb(t, 0xa0), 0x10);
	outb(t, 0xa0, 0x20);
	outb(t, 0x20, 0x20);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	tvm_free(t);
}

Test(pic, mask_auto_eoi_and_elcr)
{
	struct tvm *t = tvm_new(1);
	/* Auto-EOI (ICW4 = 3). */
	outb(t, 0x20, 0x11); outb(t, 0x21, 0x08); outb(t, 0x21, 0x04); outb(t, 0x21, 0x03);
	outb(t, 0x21, 0xfb ^ 0x08);               /* only IRQ3 (and cascade) unmasked */
	cr_assert_eq(inb(t, 0x21), 0xf3);
	irq_line(t, 4, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "masked");
	irq_line(t, 3, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x0b);
	outb(t, 0x20, 0x0b);
	cr_assert_eq(inb(t, 0x20), 0, "auto-EOI leaves nothing in service");
	/* ELCR: IRQ 9 level-triggered stays requested while high. */
	outb(t, 0x4d1, 0x02);
	cr_assert_eq(inb(t, 0x4d1), 0x02);
	outb(t, 0x4d0, 0xff);
	cr_assert_eq(inb(t, 0x4d0), 0xf8, "IRQ0-2 cannot be level");
	outb(t, 0xa0, 0x11); outb(t, 0xa1, 0x70); outb(t, 0xa1, 0x02); outb(t, 0xa1, 0x01);
	outb(t, 0xa1, 0xfd);
	outb(t, 0x21, 0xfb);
	irq_line(t, 9, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x71);
	outb(t, 0xa0, 0x20);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x71, "level: still requested");
	irq_line(t, 9, false);
	outb(t, 0xa0, 0x20);
	int v = tvm_intr_ack(&t->cpu[0]);
	cr_assert_eq(v, -1, "got %#x", v);
	tvm_free(t);
}

Test(pic, poll_and_spurious)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0, 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	outb(t, 0x20, 0x0c);                      /* poll with nothing pending */
	cr_assert_eq(inb(t, 0x20), 0);
	irq_line(t, 6, true);
	outb(t, 0x20, 0x0c);
	cr_assert_eq(inb(t, 0x20), 0x86);
	outb(t, 0x20, 0x66);                      /* specific EOI 6 */
	outb(t, 0x20, 0x0b);
	cr_assert_eq(inb(t, 0x20), 0);
	tvm_free(t);
}

Test(pic, lint0_masked_blocks_pic)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	pic_init_linux(t, 0, 0);
	apic_w(t, APIC_LINT0, 0x10700);
	irq_line(t, 1, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	apic_w(t, APIC_LINT0, 0x700);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x21);
	tvm_free(t);
}

Test(msi, delivers_to_destination)
{
	struct tvm *t = tvm_new(2);
	t->cur = &t->cpu[1];
	apic_enable(t);
	pthread_mutex_lock(&t->vm.dev_lock);
	apic_deliver_msi(&t->vm.platform->apic_bus, 0xfee01000ull, 0x4091);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), 0x91);
	tvm_free(t);
}

Test(lapic, lint1_nmi_injection)
{
	struct tvm *t = tvm_new(2);
	take_events(t, 0);
	take_events(t, 1);
	platform_inject_nmi(&t->vm);
	cr_assert_eq(take_events(t, 0) & VCPU_EVT_NMI, 0, "software-disabled APIC: LINT1 masked");
	for (unsigned i = 0; i < 2; i++) {
		t->cur = &t->cpu[i];
		apic_enable(t);
		apic_w(t, 0x360, 0x400);              /* LINT1: NMI, unmasked */
	}
	platform_inject_nmi(&t->vm);
	cr_assert(take_events(t, 0) & VCPU_EVT_NMI);
	cr_assert(take_events(t, 1) & VCPU_EVT_NMI);
	apic_w(t, 0x360, 0x10400);                /* masked on CPU 1 */
	platform_inject_nmi(&t->vm);
	cr_assert(take_events(t, 0) & VCPU_EVT_NMI);
	cr_assert_eq(take_events(t, 1) & VCPU_EVT_NMI, 0);
	tvm_free(t);
}

Test(pic, rotation_and_special_mask)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0x00, 0xff);
	/* IRQ 3 and 5 pending; rotate-on-non-specific-EOI makes the serviced
	 * IRQ the lowest priority, so IRQ3 wins again only after IRQ5. */
	irq_line(t, 3, true);
	irq_line(t, 5, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x23);
	outb(t, 0x20, 0xa0);                      /* rotate on non-specific EOI */
	irq_line(t, 3, false);
	irq_line(t, 3, true);                     /* IRQ3 requests again */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x25, "IRQ5 now ranks above IRQ3");
	outb(t, 0x20, 0x20);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x23);
	outb(t, 0x20, 0x20);
	/* Special mask mode: with IRQ1 in service and masked, lower IRQ4 gets through. */
	outb(t, 0x20, 0xc7);                      /* priority back to IRQ0 first */
	irq_line(t, 1, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x21);
	irq_line(t, 4, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "IRQ4 blocked by IRQ1 in service");
	outb(t, 0x21, 0x02);                      /* mask IRQ1 */
	outb(t, 0x20, 0x68);                      /* OCW3: set special mask */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x24);
	tvm_free(t);
}

Test(lapic, msr_route)
{
	struct tvm *t = tvm_new(1);
	uint64_t v = 0;
	cr_assert_eq(vcpu_apic_msr(&t->cpu[0], MSR_IA32_APIC_BASE, false, &v), 0);
	cr_assert_eq(v, 0xfee00900ull);
	/* x2APIC ID while in xAPIC mode: #GP. */
	cr_assert_eq(vcpu_apic_msr(&t->cpu[0], 0x802, false, &v), -EINVAL);
	/* Not the APIC's: the engine models it. */
	cr_assert_eq(vcpu_apic_msr(&t->cpu[0], MSR_IA32_PAT, false, &v), -ENOENT);
	/* A vCPU without a LAPIC (an engine's own tests). */
	struct vcpu bare = { .vm = &t->vm };
	cr_assert_eq(vcpu_apic_msr(&bare, MSR_IA32_APIC_BASE, false, &v), -ENOENT);
	cr_assert_eq(vcpu_apic_get_cr8(&bare, &v), -ENOENT);
	tvm_free(t);
}

struct try_arg {
	struct vm *vm;
	int *result;
};

static void *try_dev_lock(void *opaque)
{
	struct try_arg *a = opaque;
	*a->result = pthread_mutex_trylock(&a->vm->dev_lock);
	if (*a->result == 0)
		pthread_mutex_unlock(&a->vm->dev_lock);
	return NULL;
}

Test(lapic, intr_ack_with_or_without_the_device_lock)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	apic_w(t, APIC_ICR_LO, 0x44000 | 0x50);
	apic_w(t, APIC_ICR_LO, 0x44000 | 0x60);
	/* The emu engine calls the hook without the lock... */
	cr_assert_eq(t->vm.intr_ack(&t->cpu[0]), 0x60);
	apic_w(t, APIC_EOI, 0);
	/* ...the KVM engine with it held: the lock is recursive. */
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(t->vm.intr_ack(&t->cpu[0]), 0x50);
	uint64_t base;
	cr_assert_eq(tvm_msr_read(&t->cpu[0], MSR_IA32_APIC_BASE, &base), 0);
	pthread_mutex_unlock(&t->vm.dev_lock);
	/* Released as often as taken: another thread can take it now. */
	pthread_t other;
	int got = -1;
	struct try_arg arg = { &t->vm, &got };
	cr_assert_eq(pthread_create(&other, NULL, try_dev_lock, &arg), 0);
	pthread_join(other, NULL);
	cr_assert_eq(got, 0);
	tvm_free(t);
}

/* A synthetic source (lapic_set_sint_ops) whose vector 0x50 is AutoEOI;
 * it records the EOIs it is told of. */
struct sint_probe {
	unsigned eois;
	uint8_t last_eoi;
};

static bool probe_auto_eoi(void *opaque, uint8_t vector)
{
	(void)opaque;
	return vector == 0x50;
}

static void probe_eoi(void *opaque, uint8_t vector)
{
	struct sint_probe *p = opaque;
	p->eois++;
	p->last_eoi = vector;
}

static const struct lapic_sint_ops probe_ops = { probe_auto_eoi, probe_eoi };

Test(lapic, auto_eoi_vector_skips_the_isr_under_nesting)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	struct lapic *l = t->cpu[0].lapic;
	struct sint_probe probe = { 0 };
	pthread_mutex_lock(&t->vm.dev_lock);
	lapic_set_sint_ops(l, &probe_ops, &probe);
	lapic_sint_raise(l, 0x50);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	cr_assert(!lapic_test_isr(l, 0x50), "AutoEOI: never in service");
	cr_assert_eq(apic_r(t, APIC_PPR), 0);
	/* A normal vector below it goes in service; the AutoEOI vector
	 * nests above it and leaves ISR and PPR as they were. */
	pthread_mutex_lock(&t->vm.dev_lock);
	lapic_sint_raise(l, 0x40);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x40);
	cr_assert_eq(apic_r(t, APIC_PPR), 0x40);
	pthread_mutex_lock(&t->vm.dev_lock);
	lapic_sint_raise(l, 0x50);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50, "higher class: nests");
	cr_assert(lapic_test_isr(l, 0x40) && !lapic_test_isr(l, 0x50));
	cr_assert_eq(apic_r(t, APIC_PPR), 0x40);
	/* The guest's one EOI is for 0x40, and the source hears of it. */
	apic_w(t, APIC_EOI, 0);
	cr_assert(!lapic_test_isr(l, 0x40));
	cr_assert_eq(apic_r(t, APIC_PPR), 0);
	cr_assert_eq(probe.eois, 1);
	cr_assert_eq(probe.last_eoi, 0x40);
	pthread_mutex_lock(&t->vm.dev_lock);
	lapic_set_sint_ops(l, NULL, NULL);
	pthread_mutex_unlock(&t->vm.dev_lock);
	tvm_free(t);
}

Test(lapic, selective_eoi_of_a_lower_nested_vector)
{
	struct tvm *t = tvm_new(1);
	apic_enable(t);
	apic_w(t, APIC_LINT0, 0x10700);
	struct lapic *l = t->cpu[0].lapic;
	struct sint_probe probe = { 0 };
	pthread_mutex_lock(&t->vm.dev_lock);
	lapic_set_sint_ops(l, &probe_ops, &probe);
	pthread_mutex_unlock(&t->vm.dev_lock);
	/* Level-triggered 0x56 from the I/O APIC, then 0x90 nested above it. */
	ioapic_w(t, 16, 0x56 | (1 << 15));
	irq_line(t, 16, true);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x56);
	pthread_mutex_lock(&t->vm.dev_lock);
	lapic_sint_raise(l, 0x90);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x90);
	cr_assert_eq(apic_r(t, APIC_PPR), 0x90);
	irq_line(t, 16, false);
	/* A vector not in service: nothing changes. */
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(lapic_eoi_vector(l, 0x70), -ENOENT);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert(lapic_test_isr(l, 0x56) && lapic_test_isr(l, 0x90));
	cr_assert_eq(probe.eois, 0);
	/* EOI of the lower one while the higher stays in service: its ISR
	 * bit goes, PPR stays at the higher, the I/O APIC's remote IRR is
	 * cleared, the synthetic source is told. */
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(lapic_eoi_vector(l, 0x56), 0);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert(!lapic_test_isr(l, 0x56));
	cr_assert(lapic_test_isr(l, 0x90));
	cr_assert_eq(apic_r(t, APIC_PPR), 0x90);
	cr_assert_eq(ioapic_get_redir(t->vm.platform->ioapic, 16) & (1 << 14), 0, "remote IRR cleared");
	cr_assert_eq(probe.eois, 1);
	cr_assert_eq(probe.last_eoi, 0x56);
	/* A plain EOI now ends 0x90, not anything else. */
	apic_w(t, APIC_EOI, 0);
	cr_assert(!lapic_test_isr(l, 0x90));
	cr_assert_eq(apic_r(t, APIC_PPR), 0);
	cr_assert_eq(probe.last_eoi, 0x90);
	pthread_mutex_lock(&t->vm.dev_lock);
	lapic_set_sint_ops(l, NULL, NULL);
	pthread_mutex_unlock(&t->vm.dev_lock);
	tvm_free(t);
}
