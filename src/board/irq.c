/* GSIs by number, for what is wired from outside the board table (the
 * control API's plug-in devices, tests): the same lines the table's
 * devices get (see pc.h for the GSI convention). */
#include "board/pc.h"

void irq_set_level(struct vm *vm, unsigned gsi, bool level)
{
	if (!vm->platform || gsi >= PC_NUM_GSI)
		return;
	struct irq_line l = platform_line(vm->platform, PC_LINE_GSI(gsi));
	irq_line_set(&l, level);
}

void irq_pulse(struct vm *vm, unsigned gsi)
{
	irq_set_level(vm, gsi, true);
	irq_set_level(vm, gsi, false);
}
