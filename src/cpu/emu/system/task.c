/* Hardware task switching (SDM vol. 3A 7.3) for 32-bit guests. */
#include "cpu/emu/system/sys.h"

void task_switch(struct emu_cpu *cpu, uint16_t sel, uint64_t desc, enum task_reason why, bool has_err,
		 uint32_t err, uint64_t ret_rip)
{
	(void)desc; (void)why; (void)has_err; (void)err; (void)ret_rip;
	emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
}
