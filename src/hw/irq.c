/* Interrupt line routing from devices to the 8259 pair and the I/O APIC
 * (see pc.h for the GSI convention). */
#include "hw/pc.h"

#include "hw/intc/ioapic.h"
#include "hw/intc/pic.h"

void irq_set_level(struct vm *vm, unsigned gsi, bool level)
{
	struct platform *p = vm->platform;
	if (!p || gsi >= PC_NUM_GSI)
		return;
	p->gsi_level[gsi] = level;
	if (gsi < 16 && p->pic)
		pic_set_irq(p->pic, gsi, level);
	/* ISA IRQ0 is wired to I/O APIC pin 2 (MADT interrupt source override). */
	unsigned pin = gsi == 0 ? 2 : gsi;
	if (gsi == 2)
		return;   /* the cascade: no ISA device drives IRQ2 */
	if (p->ioapic)
		ioapic_set_irq(p->ioapic, pin, level);
}

void irq_pulse(struct vm *vm, unsigned gsi)
{
	irq_set_level(vm, gsi, true);
	irq_set_level(vm, gsi, false);
}
