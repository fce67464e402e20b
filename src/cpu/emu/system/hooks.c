/* The engine's adapters to the vCPU's LAPIC (CR8, IA32_APIC_BASE,
 * IA32_TSC_DEADLINE), declared in emu.h. */
#include "cpu/emu/system/sys.h"

#include "hw/intc/lapic.h"
#include "vm/machine.h"

static struct vcpu *lapic_vcpu(struct emu_cpu *cpu)
{
	return cpu->vcpu && cpu->vcpu->lapic ? cpu->vcpu : NULL;
}

uint8_t emu_hook_get_tpr(struct emu_cpu *cpu)
{
	struct vcpu *v = lapic_vcpu(cpu);
	return v ? (uint8_t)(lapic_get_cr8(v) << 4) : cpu->tpr;
}

void emu_hook_set_tpr(struct emu_cpu *cpu, uint8_t tpr)
{
	struct vcpu *v = lapic_vcpu(cpu);
	/* CR8 is TPR[7:4] (SDM vol. 3A 10.8.6.1). */
	if (v)
		lapic_set_cr8(v, tpr >> 4);
	else
		cpu->tpr = tpr & 0xf0;
}

int emu_hook_apic_base(struct emu_cpu *cpu, uint64_t value)
{
	struct vcpu *v = lapic_vcpu(cpu);
	if (v && lapic_msr_write(v, MSR_IA32_APIC_BASE, value) < 0)
		return -1;
	cpu->apic_base = value;
	return 0;
}

void emu_hook_tsc_deadline(struct emu_cpu *cpu, uint64_t deadline)
{
	struct vcpu *v = lapic_vcpu(cpu);
	if (v)
		lapic_msr_write(v, MSR_IA32_TSC_DEADLINE, deadline);
	cpu->tsc_deadline = deadline;
}
