/* Weak defaults for the core module's flag and run-loop helpers, so that
 * the system module links (and its unit tests run) without the core.  The
 * core's strong definitions replace these. */
#include "cpu/emu/system/sys.h"

/* ---- the TPR through the route to the LAPIC (cpu/accel.h) ---- */

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

/* ---- weak stand-ins for the core module ---- */

__attribute__((weak)) uint64_t emu_get_rflags(struct emu_cpu *cpu)
{
	return cpu->rflags | X86_FLAG_FIXED;
}

__attribute__((weak)) void emu_set_rflags(struct emu_cpu *cpu, uint64_t value)
{
	cpu->rflags = value | X86_FLAG_FIXED;
}

__attribute__((weak)) void emu_blocks_invalidate_page(struct emu_vm *evm, uint64_t gpa)
{
	(void)evm;
	(void)gpa;
}

__attribute__((weak)) void emu_exit_run(struct emu_cpu *cpu, enum vcpu_exit_reason reason)
{
	cpu->stop_block = true;
	if (cpu->exit)
		cpu->exit->reason = reason;
}
