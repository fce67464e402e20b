/* The engine's TPR (CR8) adapter to the vCPU's LAPIC, declared in emu.h;
 * the APIC MSRs take the same route from msr.c. */
#include "cpu/emu/system/sys.h"

uint8_t emu_hook_get_tpr(struct emu_cpu *cpu)
{
	uint64_t cr8;
	if (cpu->vcpu && vcpu_apic_get_cr8(cpu->vcpu, &cr8) == 0)
		return (uint8_t)(cr8 << 4);
	return cpu->tpr;
}

void emu_hook_set_tpr(struct emu_cpu *cpu, uint8_t tpr)
{
	/* CR8 is TPR[7:4] (SDM vol. 3A 10.8.6.1). */
	if (!cpu->vcpu || vcpu_apic_set_cr8(cpu->vcpu, tpr >> 4) < 0)
		cpu->tpr = tpr & 0xf0;
}
