/* Weak stand-ins for the system module's functions, so that core unit
 * tests link whether or not the system module is built in.  A strong
 * definition (the real module, or a test harness) replaces them. */
#include "cpu/emu/emu.h"

#include <stdlib.h>

__attribute__((weak)) _Noreturn void emu_raise(struct emu_cpu *cpu, unsigned vector, uint32_t error_code)
{
	cpu->exc_vector = (int)vector;
	cpu->exc_error = error_code;
	cpu->exc_has_error = true;
	longjmp(*cpu->fault_env, 1);
}

__attribute__((weak)) _Noreturn void emu_raise_noerr(struct emu_cpu *cpu, unsigned vector)
{
	cpu->exc_vector = (int)vector;
	cpu->exc_error = 0;
	cpu->exc_has_error = false;
	longjmp(*cpu->fault_env, 1);
}

/* Memory and I/O: no memory at all, every access faults. */
__attribute__((weak)) uint64_t emu_read_slow(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	emu_raise(cpu, X86_EXC_GP, 0);
}

__attribute__((weak)) void emu_write_slow(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val)
{
	emu_raise(cpu, X86_EXC_GP, 0);
}

__attribute__((weak)) void emu_write_check(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	emu_raise(cpu, X86_EXC_GP, 0);
}

__attribute__((weak)) void *emu_mem_ptr(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write)
{
	return NULL;
}

__attribute__((weak)) uint64_t emu_translate_fetch(struct emu_cpu *cpu, uint64_t linear)
{
	return linear;
}

__attribute__((weak)) uint32_t emu_io_in(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	return ~0u;
}

__attribute__((weak)) void emu_io_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint32_t val)
{
}

__attribute__((weak)) void emu_sys_register(void)
{
}

__attribute__((weak)) void emu_fpu_register(void)
{
}
