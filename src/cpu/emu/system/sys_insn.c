/* System instructions (registered with the core's decoder). */
#include "cpu/emu/system/sys.h"

uint64_t sys_ea(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a = (uint64_t)(int64_t)in->disp;
	if (in->base != EMU_REG_NONE)
		a += cpu->gpr[in->base];
	if (in->index != EMU_REG_NONE)
		a += cpu->gpr[in->index] << in->scale;
	if (in->rip_rel)
		a += cpu->next_rip;
	return a & emu_size_mask(in->adsize);
}

void emu_sys_register(void)
{
}
