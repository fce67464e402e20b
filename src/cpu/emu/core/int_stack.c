/* Stack instructions: PUSH/POP (registers, immediates, r/m, FS/GS and
 * the legacy segment registers' pushes), PUSHA/POPA, PUSHF/POPF, ENTER,
 * LEAVE (SDM vol. 2B).  Every push writes the stack before RSP changes so
 * that a fault leaves the registers as they were. */
#include "cpu/emu/core/core.h"

void h_push_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	stack_push_val(cpu, in->opsize, cpu->gpr[in->rm]);
}

void h_pop_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = stack_pop_val(cpu, in->opsize);
	reg_set(cpu, in->rm, in->opsize, false, v);
}

void h_push_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	stack_push_val(cpu, in->opsize, in->imm);
}

void h_push_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	stack_push_val(cpu, in->opsize, rm_read(cpu, in, in->opsize));
}

/* POP r/m: RSP is incremented before the destination address is
 * computed (SDM vol. 2B, POP: "If the destination operand uses ESP as a
 * base register, the value of ESP after the pop is used"). */
void h_pop_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t sp = sp_get(cpu);
	uint64_t v = emu_read(cpu, SEG_SS, sp, size);
	if (in->mod == 3) {
		sp_set(cpu, sp + size);
		reg_set(cpu, in->rm, size, in->rex, v);
		return;
	}
	uint64_t old = cpu->gpr[RSP];
	sp_set(cpu, sp + size);
	uint64_t ea = emu_insn_ea(cpu, in);
	cpu->gpr[RSP] = old;        /* restored while the write can fault */
	emu_write(cpu, in->seg, ea, size, v);
	sp_set(cpu, sp + size);
}

/* PUSH Sreg: with a 32-bit operand size, recent cores write only the low
 * 16 bits of the slot; a full zero-extended write is also allowed and is
 * what the emulator does. */
void h_push_sreg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = in->opmap == EMU_MAP_0F ? (in->opcode == 0xa0 ? SEG_FS : SEG_GS) : (in->opcode >> 3) & 3;
	stack_push_val(cpu, in->opsize, cpu->seg[s].sel);
}

void h_pusha(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t sp = sp_get(cpu), m = emu_size_mask(stack_asize(cpu));
	for (unsigned r = 0; r < 8; r++) {
		uint64_t v = r == RSP ? cpu->gpr[RSP] : cpu->gpr[r];
		emu_write(cpu, SEG_SS, (sp - (r + 1) * size) & m, size, v);
	}
	sp_set(cpu, sp - 8 * size);
}

void h_popa(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t sp = sp_get(cpu), m = emu_size_mask(stack_asize(cpu)), v[8];
	for (unsigned r = 0; r < 8; r++)
		v[7 - r] = emu_read(cpu, SEG_SS, (sp + r * size) & m, size);
	for (unsigned r = 0; r < 8; r++)
		if (r != RSP)
			reg_set(cpu, r, size, false, v[r]);
	sp_set(cpu, sp + 8 * size);
}

/* PUSHF: VM and RF are cleared in the image (SDM vol. 2B, PUSHF).  In
 * virtual-8086 mode with IOPL < 3 it faults (CR4.VME is not offered). */
void h_pushf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t f = emu_get_rflags(cpu);
	if (cpu->mode == EMU_MODE_V86 && ((f >> 12) & 3) < 3)
		emu_raise(cpu, X86_EXC_GP, 0);
	stack_push_val(cpu, in->opsize, f & ~(uint64_t)(X86_FLAG_VM | X86_FLAG_RF));
}

/* POPF (SDM vol. 2B, POPF "Operation"): IOPL changes only at CPL 0, IF
 * only when CPL <= IOPL; VM, VIP, VIF never change; RF is cleared.  A
 * 16-bit POPF leaves the upper half alone. */
void h_popf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t cur = emu_get_rflags(cpu);
	unsigned iopl = (cur >> 12) & 3;
	if (cpu->mode == EMU_MODE_V86 && iopl < 3)
		emu_raise(cpu, X86_EXC_GP, 0);
	uint64_t v = stack_pop_val(cpu, size);
	uint64_t mask = X86_FLAGS_ARITH | X86_FLAG_TF | X86_FLAG_DF | X86_FLAG_NT | X86_FLAG_AC | X86_FLAG_ID |
			X86_FLAG_IF | X86_FLAG_IOPL;
	if (cpu->mode == EMU_MODE_V86) {
		mask &= ~(uint64_t)X86_FLAG_IOPL;
	} else if (cpu->mode != EMU_MODE_REAL) {
		if (cpu->cpl > 0)
			mask &= ~(uint64_t)X86_FLAG_IOPL;
		if (cpu->cpl > iopl)
			mask &= ~(uint64_t)X86_FLAG_IF;
	}
	if (size == 2)
		mask &= 0xffff;
	uint64_t nf = (cur & ~mask) | (v & mask);
	nf &= ~(uint64_t)X86_FLAG_RF;
	emu_set_rflags(cpu, nf);
	/* A change of IF or TF matters to the run loop at once. */
	cpu->stop_block = cpu->stop_block || ((cur ^ nf) & (X86_FLAG_IF | X86_FLAG_TF | X86_FLAG_AC));
}

/* ENTER imm16, imm8 (SDM vol. 2A, ENTER "Operation"). */
void h_enter(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, level = in->imm2 & 31;
	uint64_t alloc = in->imm & 0xffff;
	uint64_t m = emu_size_mask(stack_asize(cpu));
	uint64_t sp = sp_get(cpu), bp = cpu->gpr[RBP];
	sp = (sp - size) & m;
	emu_write(cpu, SEG_SS, sp, size, bp);
	uint64_t frame = sp;
	if (level > 0) {
		uint64_t b = bp;
		for (unsigned i = 1; i < level; i++) {
			b = (b - size) & m;
			uint64_t v = emu_read(cpu, SEG_SS, b, size);
			sp = (sp - size) & m;
			emu_write(cpu, SEG_SS, sp, size, v);
		}
		sp = (sp - size) & m;
		emu_write(cpu, SEG_SS, sp, size, frame);
	}
	sp = (sp - alloc) & m;
	/* The new stack top must be writable (SDM: #SS/#PF if not). */
	emu_read(cpu, SEG_SS, sp, 1);
	reg_set(cpu, RBP, size, false, frame);
	sp_set(cpu, sp);
}

void h_leave(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, sa = stack_asize(cpu);
	uint64_t bp = cpu->gpr[RBP] & emu_size_mask(sa);
	uint64_t v = emu_read(cpu, SEG_SS, bp, size);
	sp_set(cpu, bp + size);
	reg_set(cpu, RBP, size, false, v);
}

/* ---- forms specialised at decode (opcode table: handlers.c) ----
 * PUSH/POP of a 64-bit register; semantics are h_push_r's and h_pop_r's
 * (POP RSP leaves the popped value). */
static void push_r64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	stack_push64(cpu, cpu->gpr[in->rm]);
}

static void pop_r64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->gpr[in->rm] = stack_pop64(cpu);
}

const struct emu_forms int_push_r64_forms = { .r64 = push_r64 };
const struct emu_forms int_pop_r64_forms = { .r64 = pop_r64 };
