/* Port I/O after the protection checks: IOPL and the TSS I/O permission
 * bitmap (SDM vol. 1 19.5 "I/O permission bit map"), then a synchronous
 * VCPU_EXIT_IO trap to the port bus. */
#include "cpu/emu/system/sys.h"

/* 19.5.2: with CPL > IOPL (or in V86 mode) every bit for the accessed
 * ports must be clear in the bitmap of a 32-bit TSS; a bitmap outside the
 * TSS limit denies access. */
static bool io_allowed(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	if (cpu->mode == EMU_MODE_REAL)
		return true;
	unsigned iopl = (cpu->rflags & X86_FLAG_IOPL) >> 12;
	if (cpu->mode != EMU_MODE_V86 && cpu->cpl <= iopl)
		return true;
	unsigned type = cpu->tr.attr & 0xf;
	if (!(cpu->tr.attr & 0x80) || (type != 9 && type != 11) || cpu->tr.limit < 0x67)
		return false;
	uint64_t lin_base = cpu->tr.base;
	if (!(cpu->efer & X86_EFER_LMA))
		lin_base = (uint32_t)lin_base;
	uint16_t map = (uint16_t)mmu_read_lin(cpu, lin_base + 0x66, 2, EMU_MMU_SUP);
	uint64_t off = map + port / 8;
	if (off + 1 > cpu->tr.limit)
		return false;
	uint16_t bits = (uint16_t)mmu_read_lin(cpu, lin_base + off, 2, EMU_MMU_SUP);
	uint16_t mask = (uint16_t)(((1u << size) - 1) << (port & 7));
	return (bits & mask) == 0;
}

uint32_t io_port_in(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	if (!io_allowed(cpu, port, size))
		emu_raise(cpu, X86_EXC_GP, 0);
	if (__builtin_expect(cpu->dr[7] & 0xff, 0))
		emu_debug_io(cpu, port, size);
	struct vcpu_exit ex = { .reason = VCPU_EXIT_IO };
	ex.io.port = port;
	ex.io.size = (uint8_t)size;
	ex.io.is_write = false;
	ex.io.data = 0xffffffffu;
	if (cpu->vcpu)
		vcpu_dispatch_exit(cpu->vcpu, &ex);
	return ex.io.data & (uint32_t)emu_size_mask(size);
}

void io_port_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint32_t val)
{
	if (!io_allowed(cpu, port, size))
		emu_raise(cpu, X86_EXC_GP, 0);
	if (__builtin_expect(cpu->dr[7] & 0xff, 0))
		emu_debug_io(cpu, port, size);
	struct vcpu_exit ex = { .reason = VCPU_EXIT_IO };
	ex.io.port = port;
	ex.io.size = (uint8_t)size;
	ex.io.is_write = true;
	ex.io.data = val & (uint32_t)emu_size_mask(size);
	if (cpu->vcpu)
		vcpu_dispatch_exit(cpu->vcpu, &ex);
}
