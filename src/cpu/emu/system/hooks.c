/* Weak defaults for the core module's flag and run-loop helpers, so that
 * the system module links (and its unit tests run) without the core.  The
 * core's strong definitions replace these. */
#include "cpu/emu/system/sys.h"

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
