/* Inline templates (jit/templates.h): the register forms of the simple
 * instructions that dominate kernel code, as host code.  An instruction
 * gets a template only when its decoded handler is exactly the
 * specialised form the opcode table gives its opcode, operand kind and
 * size (emu_handler_find): so a LOCK prefix, a #UD encoding or a CPU
 * model without the instruction keeps the handler call, and each
 * template does what that one form's C code does (core/int_arith.c,
 * core/int_move.c), including the lazy-flags record (core/flags.c),
 * field for field. */
#include "cpu/emu/jit/templates.h"

#include "cpu/emu/core/core.h"

#include <stddef.h>

#define CPU_OFF(field) ((int32_t)offsetof(struct emu_cpu, field))
#define GPR(r) (CPU_OFF(gpr) + 8 * (int32_t)(r))

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* mov r, gpr[g] (size 4: zero-extended, as reg_get then the mask) */
static void load_gpr(struct x86_emit *e, unsigned hr, unsigned g, unsigned size)
{
	xe_op_mem(e, 0x8b, size == 8 ? 8 : 4, hr, HR_RBX, GPR(g));
}

/* gpr[g] = hr, zero-extended from 32 bits first for size 4 (reg_set). */
static void store_gpr(struct x86_emit *e, unsigned g, unsigned hr, unsigned size)
{
	if (size == 4)
		xe_op_rr(e, 0x89, 4, hr, hr);                     /* mov r32, r32 */
	xe_store64(e, HR_RBX, GPR(g), hr);
}

/* lf_set(cpu, kind, size, res = RDX, src1, src2): RAX/RCX for ADD and
 * SUB, 0 for the logic kinds. */
static void record_flags(struct x86_emit *e, unsigned kind, unsigned size)
{
	xe_store64(e, HR_RBX, CPU_OFF(lf.res), HR_RDX);
	if (kind == LF_LOGIC) {
		xe_store64_imm(e, HR_RBX, CPU_OFF(lf.src1), 0);
		xe_store64_imm(e, HR_RBX, CPU_OFF(lf.src2), 0);
	} else {
		xe_store64(e, HR_RBX, CPU_OFF(lf.src1), HR_RAX);
		xe_store64(e, HR_RBX, CPU_OFF(lf.src2), HR_RCX);
	}
	xe_store32_imm(e, HR_RBX, CPU_OFF(lf.op), kind | size);
}

/* alu() of core/int_arith.c with RAX = a, RCX = b (both masked to
 * size): RDX = the unmasked 64-bit result, flags recorded; then the
 * destination register unless CMP or TEST (dst EMU_REG_NONE). */
static void alu_tail(struct x86_emit *e, unsigned op, unsigned size, unsigned dst)
{
	static const uint8_t host_op[8] = {
		[ALU_ADD] = 0x01, [ALU_OR] = 0x09, [ALU_AND] = 0x21, [ALU_SUB] = 0x29, [ALU_XOR] = 0x31, [ALU_CMP] = 0x29,
	};
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);                     /* mov rdx, rax */
	xe_op_rr(e, host_op[op], 8, HR_RCX, HR_RDX);              /* op rdx, rcx */
	unsigned kind = op == ALU_ADD ? LF_ADD : (op == ALU_SUB || op == ALU_CMP) ? LF_SUB : LF_LOGIC;
	record_flags(e, kind, size);
	if (op != ALU_CMP && dst != EMU_REG_NONE)
		store_gpr(e, dst, HR_RDX, size);
}

/* reg_set(reg, size, emu_insn_ea()) for LEA: disp + base + index <<
 * scale (+ next_rip), masked to the address size. */
static void emit_lea(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	struct x86_emit *e = t->e;
	xe_mov_imm(e, HR_RAX, (uint64_t)(int64_t)in->disp);
	if (in->base != EMU_REG_NONE)
		xe_op_mem(e, 0x03, 8, HR_RAX, HR_RBX, GPR(in->base));          /* add rax, [base] */
	if (in->index != EMU_REG_NONE) {
		load_gpr(e, HR_RCX, in->index, 8);
		if (in->scale) {
			xe_rex(e, true, 0, HR_RCX, false);
			xe_u8(e, 0xc1);
			xe_u8(e, 0xe1);                                          /* shl rcx, imm8 */
			xe_u8(e, in->scale);
		}
		xe_op_rr(e, 0x01, 8, HR_RCX, HR_RAX);                           /* add rax, rcx */
	}
	if (in->rip_rel) {
		xe_lea(e, HR_RCX, HR_R12, (int32_t)(t->delta + in->len));       /* next_rip */
		xe_op_rr(e, 0x01, 8, HR_RCX, HR_RAX);
	}
	if (in->adsize == 2) {
		xe_u8(e, 0x0f);
		xe_u8(e, 0xb7);
		xe_u8(e, 0xc0);                                                  /* movzx eax, ax */
	}
	store_gpr(e, in->reg, HR_RAX, in->adsize == 4 ? 4 : size);
}

/* The specialised form for in's opcode, operand kind and size: what
 * the decoder gives an instruction with nothing unusual about it. */
static bool is_plain_form(const struct emu_insn *in)
{
	unsigned reg = in->modrm ? (in->modrm >> 3) & 7 : 0;
	return in->fn == emu_handler_find(in->opmap, in->opcode, in->mprefix, reg, in->mod != 3, in->opsize);
}

bool jit_template(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	unsigned size = in->opsize, op = in->opcode;
	if (in->opmap != EMU_MAP_1B || (size != 4 && size != 8) || in->lock)
		return false;
	if (op >= 0xb8 && op <= 0xbf) {
		/* MOV r, imm: the generic handler for every size */
		if (in->fn != h_mov_r_imm)
			return false;
		uint64_t v = size == 4 ? (uint32_t)in->imm : in->imm;
		if (v <= 0x7fffffffull || (size == 8 && (int64_t)v == (int32_t)v)) {
			xe_store64_imm(e, HR_RBX, GPR(in->rm), (int32_t)v);
		} else {
			xe_mov_imm(e, HR_RAX, v);
			xe_store64(e, HR_RBX, GPR(in->rm), HR_RAX);
		}
		return true;
	}
	if (!in->modrm || !is_plain_form(in))
		return false;
	bool reg_form = in->mod == 3;
	/* ALU r/m, r (00-3F, ModRM, Ev,Gv at +1) and ALU r, r/m (Gv,Ev at +3) */
	if (op < 0x40 && (op & 7) <= 3 && (op & 1) && reg_form) {
		unsigned alu = op >> 3;
		if (alu == ALU_ADC || alu == ALU_SBB)
			return false;
		unsigned d = (op & 2) ? in->reg : in->rm, s = (op & 2) ? in->rm : in->reg;
		load_gpr(e, HR_RAX, d, size);
		load_gpr(e, HR_RCX, s, size);
		alu_tail(e, alu, size, d);
		return true;
	}
	switch (op) {
	case 0x81:
	case 0x83: {
		unsigned alu = (in->modrm >> 3) & 7;
		if (!reg_form || alu == ALU_ADC || alu == ALU_SBB)
			return false;
		load_gpr(e, HR_RAX, in->rm, size);
		xe_mov_imm(e, HR_RCX, size == 4 ? (uint32_t)in->imm : in->imm);
		alu_tail(e, alu, size, in->rm);
		return true;
	}
	case 0x85:   /* TEST r/m, r */
		if (!reg_form)
			return false;
		load_gpr(e, HR_RAX, in->rm, size);
		load_gpr(e, HR_RCX, in->reg, size);
		alu_tail(e, ALU_AND, size, EMU_REG_NONE);
		return true;
	case 0x89:   /* MOV r/m, r */
		if (!reg_form)
			return false;
		load_gpr(e, HR_RAX, in->reg, size);
		xe_store64(e, HR_RBX, GPR(in->rm), HR_RAX);
		return true;
	case 0x8b:   /* MOV r, r/m */
		if (!reg_form)
			return false;
		load_gpr(e, HR_RAX, in->rm, size);
		xe_store64(e, HR_RBX, GPR(in->reg), HR_RAX);
		return true;
	case 0x8d:   /* LEA */
		if (reg_form)
			return false;
		emit_lea(t, in, size);
		return true;
	default:
		return false;
	}
}
