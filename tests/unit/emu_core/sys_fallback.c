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
