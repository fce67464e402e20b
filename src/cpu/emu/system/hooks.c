/* Weak defaults for functions other modules provide: the platform's LAPIC
 * hooks (CR8/TPR, IA32_APIC_BASE, TSC deadline) and, until the core module
 * links in, the core's flag and run-loop helpers.  A strong definition
 * anywhere in the program replaces these. */
#include "cpu/emu/system/sys.h"

__attribute__((weak)) uint8_t emu_hook_get_tpr(struct emu_cpu *cpu)
{
	return cpu->tpr;
}

__attribute__((weak)) void emu_hook_set_tpr(struct emu_cpu *cpu, uint8_t tpr)
{
	cpu->tpr = tpr;   /* without a LAPIC, CR8 reads back what was written */
}

__attribute__((weak)) int emu_hook_apic_base(struct emu_cpu *cpu, uint64_t value)
{
	(void)cpu;
	(void)value;
	return 0;
}

__attribute__((weak)) void emu_hook_tsc_deadline(struct emu_cpu *cpu, uint64_t deadline)
{
	(void)cpu;
	(void)deadline;
}

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
