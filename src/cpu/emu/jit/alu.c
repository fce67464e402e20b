/* More inline templates (jit/templates.h): the integer forms that still
 * went through handler calls in compute-bound guest code -- MOV, ALU,
 * CMP and TEST of bytes and words, MOV r/m, imm, the accumulator forms,
 * INC/DEC, NEG/NOT, ADC/SBB, ALU and TEST with a memory operand, shifts
 * by CL and by one, rotates by an immediate, MOVSX/MOVSXD and register
 * MOVZX, IMUL and MUL, CBW/CWD, CMOVcc, SETcc and the hint NOPs (as a
 * run-time count of those calls ranked them, docs/architecture.md
 * "Code generation").  As in templates.c, an instruction
 * gets one only when its handler is the form the opcode table gives its
 * opcode, operand kind and size (is_plain_form), and the template does
 * what that handler does (core/int_arith.c, int_shift.c, int_move.c,
 * int_muldiv.c), its lazy-flags record (core/flags.c) field for field.
 * Also BSWAP and XCHG with the accumulator (SHA-2's big-endian loads,
 * compilers' register swaps), of 32 and 64 bits.
 * Memory operands take the soft TLB's hit path inline and the handler
 * out of line otherwise, in 64-bit code only. */
#include "cpu/emu/jit/templates.h"

#include "cpu/emu/core/core.h"

#include <stddef.h>

#define CPU_OFF(field) ((int32_t)offsetof(struct emu_cpu, field))
#define GPR(r) (CPU_OFF(gpr) + 8 * (int32_t)(r))

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* 0F op reg, rm (register form) */
static void op0f_rr(struct x86_emit *e, uint8_t op, bool w, unsigned reg, unsigned rm)
{
	xe_rex(e, w, reg, rm, false);
	xe_u8(e, 0x0f);
	xe_u8(e, op);
	xe_u8(e, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* 0F op reg, [base + disp] */
static void op0f_mem(struct x86_emit *e, uint8_t op, bool w, unsigned reg, unsigned base, int32_t disp)
{
	xe_rex(e, w, reg, base, false);
	xe_u8(e, 0x0f);
	xe_u8(e, op);
	xe_mem(e, reg, base, disp);
}

/* 0F op reg, [RAX + RSI]: the guest operand after emit_tlb_hit() */
static void op0f_host(struct x86_emit *e, uint8_t op, bool w, unsigned reg)
{
	xe_rex(e, w, reg, 0, false);
	xe_u8(e, 0x0f);
	xe_u8(e, op);
	xe_u8(e, (uint8_t)(0x04 | (reg & 7) << 3));
	xe_u8(e, (uint8_t)(HR_RSI << 3 | HR_RAX));
}

/* A group 2 instruction (C1/D1/D3 /ext) on host register r */
static void shift_op(struct x86_emit *e, uint8_t op, unsigned ext, unsigned size, unsigned r)
{
	xe_rex(e, size == 8, 0, r, false);
	xe_u8(e, op);
	xe_u8(e, (uint8_t)(0xc0 | ext << 3 | (r & 7)));
}

/* A forward rel32 jump resolved by xe_patch_here(). */
static uint8_t *jcc(struct x86_emit *e, unsigned cc)
{
	return xe_jcc32(e, cc);
}

/* RCX = emu_flag_cf(cpu) as 0 or 1: inline after a logic operation
 * (0) and INC/DEC (the CF they kept), a call of the C function after
 * any other.  Clobbers the caller-saved registers. */
static void emit_cf(struct jit_ctx *t)
{
	struct x86_emit *e = t->e;
	rc_clobber(t);
	if (LF_KIND(t->lf_before) == LF_LOGIC) {
		xe_op_rr(e, 0x31, 4, HR_RCX, HR_RCX);                     /* xor ecx, ecx */
		return;
	}
	if (jit_flags_from_record(t)) {
		op0f_rr(e, 0x92, false, 0, HR_RCX);                       /* setc cl */
		op0f_rr(e, 0xb6, false, HR_RCX, HR_RCX);                  /* movzx ecx, cl */
		return;
	}
	xe_op_mem(e, 0x8b, 4, HR_RAX, HR_RBX, CPU_OFF(lf.op));   /* mov eax, [lf.op] */
	xe_grp1_reg_imm(e, 4, 4, HR_RAX, 0xf0);                   /* and eax, kind */
	xe_op_rr(e, 0x31, 4, HR_RCX, HR_RCX);                     /* xor ecx, ecx */
	xe_grp1_reg_imm(e, 7, 4, HR_RAX, LF_LOGIC);
	uint8_t *done1 = jcc(e, 0x4);
	xe_load64(e, HR_RCX, HR_RBX, CPU_OFF(lf.src2));
	xe_grp1_reg_imm(e, 4, 4, HR_RCX, 1);                      /* and ecx, 1 */
	xe_grp1_reg_imm(e, 7, 4, HR_RAX, LF_INC);
	uint8_t *done2 = jcc(e, 0x4);
	xe_grp1_reg_imm(e, 7, 4, HR_RAX, LF_DEC);
	uint8_t *done3 = jcc(e, 0x4);
	xe_op_rr(e, 0x89, 8, HR_RBX, HR_RDI);                     /* mov rdi, rbx */
	xe_call(e, (uintptr_t)emu_flag_cf);   /* rc_clobber() came before the branches */
	op0f_rr(e, 0xb6, false, HR_RCX, HR_RAX);                  /* movzx ecx, al */
	xe_patch_here(e, done1);
	xe_patch_here(e, done2);
	xe_patch_here(e, done3);
}

/* The record holds the operands as the guest operation saw them and
 * its result unmasked (core/flags.c lf_set), so the same host operation
 * at the same size sets CF, PF, ZF, SF and OF as the guest's; AF, which
 * no condition reads, may differ. */
bool jit_flags_from_record(struct jit_ctx *t)
{
	struct x86_emit *e = t->e;
	unsigned kind = LF_KIND(t->lf_before), size = LF_SIZE(t->lf_before);
	uint8_t byte = size == 1;   /* the byte forms' opcodes are one less */
	if (kind == LF_SUB || kind == LF_ADD) {
		xe_load64(e, HR_RAX, HR_RBX, CPU_OFF(lf.src1));
		xe_op_mem(e, (uint8_t)((kind == LF_SUB ? 0x3b : 0x03) - byte), size, HR_RAX, HR_RBX,
			  CPU_OFF(lf.src2));                                                       /* cmp/add */
		return true;
	}
	if (kind == LF_LOGIC) {
		xe_load64(e, HR_RAX, HR_RBX, CPU_OFF(lf.res));
		xe_op_rr(e, (uint8_t)(0x85 - byte), size, HR_RAX, HR_RAX);                       /* test */
		return true;
	}
	return false;
}

/* Host flags for guest condition cc (SDM vol. 1, appendix B); returns
 * the host condition to test: redone from a record of known kind
 * (jit_flags_from_record), else emu_cond_flags() is called and its
 * answer tested.  Clobbers the caller-saved registers. */
static unsigned emit_cond(struct jit_ctx *t, unsigned cc)
{
	struct x86_emit *e = t->e;
	if (jit_flags_from_record(t))
		return cc;
	rc_clobber(t);
	xe_op_rr(e, 0x89, 8, HR_RBX, HR_RDI);
	xe_mov_imm(e, HR_RSI, cc);
	xe_call(e, (uintptr_t)emu_cond_flags);
	xe_op_rr(e, 0x84, 1, HR_RAX, HR_RAX);                                                      /* test al, al */
	return 0x5;                                                                                /* ne */
}

/* INC/DEC's record: res = RDX, src1 = RAX, src2 = cf (the CF kept) */
static void record_incdec(struct jit_ctx *t, bool dec, unsigned size, unsigned cf)
{
	struct x86_emit *e = t->e;
	if (jit_flags_dead(t)) {
		t->n_flags_skipped++;
		return;
	}
	xe_store64(e, HR_RBX, CPU_OFF(lf.res), HR_RDX);
	xe_store64(e, HR_RBX, CPU_OFF(lf.src1), HR_RAX);
	xe_store64(e, HR_RBX, CPU_OFF(lf.src2), cf);
	xe_store32_imm(e, HR_RBX, CPU_OFF(lf.op), (dec ? LF_DEC : LF_INC) | size);
}

/* INC/DEC r (FF /0, /1; 40-4F outside 64-bit code): rmw_incdec() of
 * core/int_arith.c -- the result masked, the operand, the CF kept; with
 * the record dead, no CF either. */
static void emit_incdec(struct jit_ctx *t, unsigned r, unsigned size, bool dec)
{
	struct x86_emit *e = t->e;
	bool dead = jit_flags_dead(t);
	if (!dead)
		emit_cf(t);
	load_gpr(t, HR_RAX, r, size);
	xe_lea(e, HR_RDX, HR_RAX, dec ? -1 : 1);
	if (size == 4)
		xe_op_rr(e, 0x89, 4, HR_RDX, HR_RDX);                     /* mask to 32 bits */
	record_incdec(t, dec, size, HR_RCX);
	store_gpr(t, r, HR_RDX, 8);
	/* It reads the flags only for its own record: with that dead it
	 * reads none, so what is live after it is live before it. */
	t->fx[t->i] = JIT_FX_NONE;
	t->lf_touched = true;
}

/* ADC/SBB with RAX = a and RCX = b masked to size, R8 = the carry in:
 * alu() of core/int_arith.c -- the record holds a and b, the result
 * with the carry. */
static void adc_sbb_tail(struct jit_ctx *t, bool sbb, unsigned size, unsigned dst)
{
	struct x86_emit *e = t->e;
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);
	xe_op_rr(e, sbb ? 0x29 : 0x01, 8, HR_RCX, HR_RDX);               /* add/sub rdx, rcx */
	xe_op_rr(e, sbb ? 0x29 : 0x01, 8, HR_R8, HR_RDX);                /* add/sub rdx, r8 */
	record_flags(t, sbb ? LF_SUB : LF_ADD, size);
	store_gpr(t, dst, HR_RDX, size);
}

/* RCX = the immediate masked to size */
static void load_imm(struct x86_emit *e, const struct emu_insn *in, unsigned size)
{
	xe_mov_imm(e, HR_RCX, size == 8 ? in->imm : in->imm & emu_size_mask(size));
}

/* Where register r's operand of size bytes lies in cpu->gpr: byte
 * registers 4-7 without REX are AH..BH (reg_get, reg_set). */
static int32_t reg_at(const struct emu_insn *in, unsigned r, unsigned size)
{
	return size == 1 && !in->rex && r >= 4 && r < 8 ? GPR(r - 4) + 1 : GPR(r);
}

/* hr = reg_get(r, size): zero-extended */
static void load_reg(struct jit_ctx *t, const struct emu_insn *in, unsigned hr, unsigned r, unsigned size)
{
	if (size >= 4) {
		load_gpr(t, hr, r, size);
	} else {
		rc_evict(t, reg_at(in, r, size) == GPR(r) ? r : r - 4);
		op0f_mem(t->e, size == 1 ? 0xb6 : 0xb7, false, hr, HR_RBX, reg_at(in, r, size));   /* movzx */
	}
}

/* reg_set(r, size, hr): bytes and words replace only themselves */
static void store_reg(struct jit_ctx *t, const struct emu_insn *in, unsigned r, unsigned hr, unsigned size)
{
	if (size >= 4) {
		store_gpr(t, r, hr, size);
	} else {
		rc_evict(t, reg_at(in, r, size) == GPR(r) ? r : r - 4);
		xe_op_mem(t->e, size == 1 ? 0x88 : 0x89, size, hr, HR_RBX, reg_at(in, r, size));
	}
}

/* The register forms of ADC and SBB (11/13/19/1B, 81/83 /2, /3): the
 * carry first, since it reads the record the instruction replaces. */
static bool emit_adc_sbb(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	struct x86_emit *e = t->e;
	unsigned op = in->opcode, alu, d, s = EMU_REG_NONE;
	if (op == 0x81 || op == 0x83) {
		alu = (in->modrm >> 3) & 7;
		d = in->rm;
	} else {
		alu = op >> 3;
		d = (op & 2) ? in->reg : in->rm;
		s = (op & 2) ? in->rm : in->reg;
	}
	emit_cf(t);
	xe_op_rr(e, 0x89, 8, HR_RCX, HR_R8);                              /* mov r8, rcx */
	load_gpr(t, HR_RAX, d, size);
	if (s == EMU_REG_NONE)
		load_imm(e, in, size);
	else
		load_gpr(t, HR_RCX, s, size);
	adc_sbb_tail(t, alu == ALU_SBB, size, d);
	return true;
}

/* The memory operand's inline path: emu_insn_ea(), the TLB hit for a
 * size-byte access, then RDI = the host address.  NULL when the block
 * cannot have a slow path here. */
static struct jit_cold *mem_operand(struct jit_ctx *t, const struct emu_insn *in, unsigned size, bool write)
{
	struct jit_cold *k = cold_new(t, in);
	if (!k)
		return NULL;
	emit_ea(t, in);
	emit_tlb_hit(t, in->seg, size, write, k);
	xe_mem_bi(t->e, 0x8d, 8, HR_RDI, HR_RAX, HR_RSI);               /* lea rdi, [rax + rsi] */
	return k;
}

/* r = size bytes at [RDI], zero-extended (emu_host_load) */
static void load_host(struct x86_emit *e, unsigned r, unsigned size)
{
	if (size >= 4)
		xe_op_mem(e, 0x8b, size, r, HR_RDI, 0);
	else
		op0f_mem(e, size == 1 ? 0xb6 : 0xb7, false, r, HR_RDI, 0);
}

/* size bytes at [RDI] = r (emu_host_store) */
static void store_host(struct x86_emit *e, unsigned r, unsigned size)
{
	xe_op_mem(e, size == 1 ? 0x88 : 0x89, size, r, HR_RDI, 0);
}

/* ALU with a memory operand (alu_load_*, cmp_mr_*, cmp_mi_*,
 * h_test_rm_r, h_test_rm_imm, and alu_rm()'s read-modify-write through
 * rmw_load/rmw_store, a write-TLB hit serving both accesses): a = the
 * destination operand, b = the source, ADD, OR, AND, SUB, XOR, CMP and
 * TEST (alu ALU_AND with no destination).  dst_mem: the memory operand
 * is the destination; imm: b is the immediate. */
static bool emit_alu_mem(struct jit_ctx *t, const struct emu_insn *in, unsigned alu, unsigned size, bool dst_mem,
			 bool imm, bool test)
{
	struct x86_emit *e = t->e;
	bool rmw = dst_mem && alu != ALU_CMP && !test;
	struct jit_cold *k = mem_operand(t, in, size, rmw);
	if (!k)
		return false;
	if (dst_mem) {
		load_host(e, HR_RAX, size);
		if (imm)
			load_imm(e, in, size);
		else
			load_reg(t, in, HR_RCX, in->reg, size);
	} else {
		load_host(e, HR_RCX, size);
		load_reg(t, in, HR_RAX, in->reg, size);
	}
	bool to_reg = !dst_mem && !test && alu != ALU_CMP;
	alu_tail(t, test ? ALU_AND : alu, size, to_reg && size >= 4 ? in->reg : EMU_REG_NONE);
	if (to_reg && size < 4)
		store_reg(t, in, in->reg, HR_RDX, size);
	if (rmw)
		store_host(e, HR_RDX, size);
	cold_resume(t, k);
	return true;
}

/* Shifts SHL/SHR/SAR of a register by CL (D3 /4, /5, /7; h_grp2): the
 * count masked to 5 or 6 bits; zero writes the register back
 * (zero-extended) and changes no flags, any other records the kind,
 * the masked result, the operand and the count.  Writing the whole
 * record or none of it, reading none, it is JIT_FX_NONE for liveness:
 * what is live after it is live before it. */
static void emit_shift_cl(struct jit_ctx *t, const struct emu_insn *in, unsigned size, unsigned ext)
{
	struct x86_emit *e = t->e;
	load_gpr(t, HR_RAX, in->rm, size);
	load_gpr(t, HR_RCX, RCX, 4);
	xe_grp1_reg_imm(e, 4, 4, HR_RCX, size == 8 ? 0x3f : 0x1f);        /* and ecx, mask */
	uint8_t *zero = jcc(e, 0x4);
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);
	shift_op(e, 0xd3, ext, size, HR_RDX);                               /* shift edx/rdx, cl */
	if (jit_flags_dead(t)) {
		t->n_flags_skipped++;
	} else {
		xe_store64(e, HR_RBX, CPU_OFF(lf.res), HR_RDX);
		xe_store64(e, HR_RBX, CPU_OFF(lf.src1), HR_RAX);
		xe_store64(e, HR_RBX, CPU_OFF(lf.src2), HR_RCX);
		unsigned kind = ext == 4 ? LF_SHL : ext == 5 ? LF_SHR : LF_SAR;
		xe_store32_imm(e, HR_RBX, CPU_OFF(lf.op), kind | size);
	}
	xe_op_rr(e, 0x89, 8, HR_RDX, HR_RAX);
	xe_patch_here(e, zero);
	store_gpr(t, in->rm, HR_RAX, 8);
	t->fx[t->i] = JIT_FX_NONE;
	t->lf_touched = true;
}

/* ROL/ROR of a register by an immediate (rol_ri_*, ror_ri_* of
 * core/int_shift.c): the rotated register, then CF and OF stored into
 * the materialised flags by emu_flags_store(), which reads the record
 * -- unless a later instruction of the block overwrites the flags
 * first, when the rotate is all there is. */
static bool emit_rotate_ri(struct jit_ctx *t, const struct emu_insn *in, unsigned size, bool left)
{
	struct x86_emit *e = t->e;
	unsigned c = (unsigned)in->imm & (size == 8 ? 0x3f : 0x1f);
	if (c && jit_flags_dead(t)) {
		/* As INC/DEC: the flags it reads are for its own update only. */
		t->fx[t->i] = JIT_FX_NONE;
		t->lf_touched = true;
		t->n_flags_skipped++;
		shift_op(e, 0xc1, left ? 0 : 1, size, rc_modify(t, in->rm));
		xe_u8(e, (uint8_t)c);                                        /* rol/ror on the cached register */
		return true;
	}
	load_gpr(t, HR_RAX, in->rm, size);
	if (!c) {
		store_gpr(t, in->rm, HR_RAX, 8);
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	}
	shift_op(e, 0xc1, left ? 0 : 1, size, HR_RAX);
	xe_u8(e, (uint8_t)c);                                                /* rol/ror eax/rax, c */
	store_gpr(t, in->rm, HR_RAX, 8);
	/* As INC/DEC: the flags it reads are for its own update only. */
	t->fx[t->i] = JIT_FX_NONE;
	t->lf_touched = true;
	if (jit_flags_dead(t)) {
		t->n_flags_skipped++;
		return true;
	}
	/* RDX = CF | OF: CF the bit rotated in (bit 0 / the MSB); OF
	 * MSB ^ CF (left), MSB ^ MSB-1 (right). */
	unsigned bits = size * 8;
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RCX);
	shift_op(e, 0xc1, 5, 8, HR_RCX);
	xe_u8(e, (uint8_t)(bits - 1));                                       /* rcx = msb */
	xe_grp1_reg_imm(e, 4, 4, HR_RCX, 1);
	if (left) {
		xe_op_rr(e, 0x89, 4, HR_RAX, HR_RDX);
		xe_grp1_reg_imm(e, 4, 4, HR_RDX, 1);                        /* edx = cf */
		xe_op_rr(e, 0x31, 4, HR_RDX, HR_RCX);                       /* ecx = of */
	} else {
		xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);
		shift_op(e, 0xc1, 5, 8, HR_RDX);
		xe_u8(e, (uint8_t)(bits - 2));
		xe_grp1_reg_imm(e, 4, 4, HR_RDX, 1);                        /* edx = msb-1 */
		xe_op_rr(e, 0x31, 4, HR_RCX, HR_RDX);                       /* edx = of */
		xe_op_rr(e, 0x87, 4, HR_RCX, HR_RDX);                       /* ecx = of, edx = cf (msb) */
	}
	shift_op(e, 0xc1, 4, 4, HR_RCX);
	xe_u8(e, 11);                                                        /* OF is bit 11 */
	xe_op_rr(e, 0x09, 4, HR_RCX, HR_RDX);
	rc_clobber(t);
	xe_op_rr(e, 0x89, 8, HR_RBX, HR_RDI);
	xe_mov_imm(e, HR_RSI, X86_FLAG_CF | X86_FLAG_OF);
	xe_call(e, (uintptr_t)emu_flags_store);
	return true;
}

static void emit_mul_flags(struct jit_ctx *t, unsigned size);

/* IMUL r, r/m (0F AF) and IMUL r, r/m, imm (69, 6B), register source:
 * imul_to_reg() of core/int_muldiv.c -- the low half to the register,
 * then mul_flags(): a logic record of it, materialised with CF = OF =
 * overflow and AF = 0, leaving lf.op LF_NONE and res = the result. */
static void emit_imul(struct jit_ctx *t, const struct emu_insn *in, unsigned size, bool with_imm)
{
	struct x86_emit *e = t->e;
	if (with_imm) {
		load_gpr(t, HR_RDX, in->rm, size);
		xe_rex(e, size == 8, HR_RDX, HR_RDX, false);
		xe_u8(e, 0x69);
		xe_u8(e, (uint8_t)(0xc0 | HR_RDX << 3 | HR_RDX));
		xe_u32(e, (uint32_t)in->imm);                                /* imul edx/rdx, edx/rdx, imm32 */
	} else {
		load_gpr(t, HR_RDX, in->reg, size);
		load_gpr(t, HR_RCX, in->rm, size);
		op0f_rr(e, 0xaf, size == 8, HR_RDX, HR_RCX);                 /* imul edx/rdx, ecx/rcx */
	}
	store_gpr(t, in->reg, HR_RDX, size);
	emit_mul_flags(t, size);
}

/* MUL/IMUL r64 (F7 /4, /5 with a 64-bit register; h_mul): RDX:RAX =
 * RAX times the operand, then mul_flags() of the low half as IMUL's. */
static void emit_mul64(struct jit_ctx *t, const struct emu_insn *in, bool sgn)
{
	struct x86_emit *e = t->e;
	load_gpr(t, HR_RCX, in->rm, 8);
	load_gpr(t, HR_RAX, RAX, 8);
	xe_op_rr(e, 0xf7, 8, sgn ? 5 : 4, HR_RCX);                       /* mul/imul rcx */
	store_gpr(t, RAX, HR_RAX, 8);
	store_gpr(t, RDX, HR_RDX, 8);
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);                            /* mov rdx, rax: flags kept */
	emit_mul_flags(t, 8);
}

/* mul_flags() of core/int_muldiv.c right after a host multiply whose OF
 * and CF are the guest's, the result (masked to size) in RDX: a logic
 * record of it materialised with CF = OF = overflow and AF = 0, which
 * leaves lf.op LF_NONE and res = the result. */
static void emit_mul_flags(struct jit_ctx *t, unsigned size)
{
	struct x86_emit *e = t->e;
	if (jit_flags_dead(t)) {
		t->n_flags_skipped++;
	} else {
		op0f_rr(e, 0x90, false, 0, HR_RCX);                          /* seto cl */
		op0f_rr(e, 0xb6, false, HR_RCX, HR_RCX);                     /* movzx ecx, cl */
		xe_rex(e, false, HR_RCX, HR_RCX, false);
		xe_u8(e, 0x69);
		xe_u8(e, (uint8_t)(0xc0 | HR_RCX << 3 | HR_RCX));
		xe_u32(e, X86_FLAG_CF | X86_FLAG_OF);                        /* imul ecx, ecx, CF|OF */
		xe_op_rr(e, 0x85, size, HR_RDX, HR_RDX);                     /* ZF, SF, PF of the result */
		xe_u8(e, 0x9c);                                              /* pushfq */
		xe_pop(e, HR_RAX);
		xe_grp1_reg_imm(e, 4, 4, HR_RAX, X86_FLAG_PF | X86_FLAG_ZF | X86_FLAG_SF);
		xe_op_rr(e, 0x09, 4, HR_RCX, HR_RAX);
		xe_load64(e, HR_RCX, HR_RBX, CPU_OFF(rflags));
		xe_grp1_reg_imm(e, 4, 8, HR_RCX, (int32_t)~X86_FLAGS_ARITH);
		xe_op_rr(e, 0x09, 8, HR_RAX, HR_RCX);
		xe_store64(e, HR_RBX, CPU_OFF(rflags), HR_RCX);
		xe_store64(e, HR_RBX, CPU_OFF(lf.res), HR_RDX);
		xe_store64_imm(e, HR_RBX, CPU_OFF(lf.src1), 0);
		xe_store64_imm(e, HR_RBX, CPU_OFF(lf.src2), 0);
		xe_store32_imm(e, HR_RBX, CPU_OFF(lf.op), LF_NONE);
	}
	t->fx[t->i] = JIT_FX_WRITE;
}

/* MOVZX/MOVSX r, r8/r16 (0F B6/B7/BE/BF, register source; h_movzx): the
 * byte registers 4-7 without REX are AH..BH (reg_get). */
static void emit_movx_reg(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	struct x86_emit *e = t->e;
	unsigned src = in->rm;
	int32_t disp = GPR(src);
	if (!(in->opcode & 1) && !in->rex && src >= 4 && src < 8) {
		disp = GPR(src - 4) + 1;
		src -= 4;
	}
	rc_evict(t, src);
	op0f_mem(e, in->opcode, size == 8, HR_RAX, HR_RBX, disp);
	store_gpr(t, in->reg, HR_RAX, 8);
	t->fx[t->i] = JIT_FX_NONE;
}

/* MOVSX r, [m] (0F BE/BF) and MOVSXD r64, [m] (63): the sign-extended
 * load, as MOVZX's template does its zero-extended one. */
static bool emit_movsx_mem(struct jit_ctx *t, const struct emu_insn *in, unsigned size, unsigned from)
{
	struct x86_emit *e = t->e;
	struct jit_cold *k = cold_new(t, in);
	if (!k)
		return false;
	emit_ea(t, in);
	emit_tlb_hit(t, in->seg, from, false, k);
	if (from == 4) {
		xe_mem_bi(e, 0x63, 8, HR_RAX, HR_RAX, HR_RSI);              /* movsxd rax, [rax + rsi] */
	} else {
		op0f_host(e, from == 1 ? 0xbe : 0xbf, size == 8, HR_RAX);
	}
	store_gpr(t, in->reg, HR_RAX, 8);
	cold_resume(t, k);
	return true;
}

/* CMOVcc r, r (h_cmov): the move when cc holds; a 32-bit destination
 * is zero-extended either way. */
static void emit_cmov(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	struct x86_emit *e = t->e;
	unsigned cc = emit_cond(t, in->opcode & 15);
	load_gpr(t, HR_RCX, in->rm, size);
	load_gpr(t, HR_RDX, in->reg, size);
	op0f_rr(e, (uint8_t)(0x40 | cc), true, HR_RDX, HR_RCX);              /* cmovcc rdx, rcx */
	store_gpr(t, in->reg, HR_RDX, 8);
	t->lf_keep = true;
}

/* SETcc r8 (h_setcc, register operand): AH..BH without REX. */
static void emit_setcc(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	unsigned r = in->rm;
	int32_t disp = GPR(r);
	if (!in->rex && r >= 4 && r < 8) {
		disp = GPR(r - 4) + 1;
		r -= 4;
	}
	rc_evict(t, r);
	unsigned cc = emit_cond(t, in->opcode & 15);
	op0f_rr(e, (uint8_t)(0x90 | cc), false, 0, HR_RAX);                 /* setcc al */
	xe_op_mem(e, 0x88, 1, HR_RAX, HR_RBX, disp);                        /* mov [reg], al */
	t->lf_keep = true;
}

/* ALU of byte and word registers and immediates (00-3D, 80/81/83, 84,
 * 85, A8/A9 with operands of 1 or 2 bytes; the 32- and 64-bit ones are
 * templates.c's), and the accumulator forms of every size (h_alu_acc_imm,
 * h_test_acc_imm): alu() on the operands masked to size, the
 * destination's size bytes replaced. */
static void emit_alu_small(struct jit_ctx *t, const struct emu_insn *in, unsigned alu, unsigned size, unsigned d,
			   unsigned s, bool test)
{
	struct x86_emit *e = t->e;
	load_reg(t, in, HR_RAX, d, size);
	if (s == EMU_REG_NONE)
		load_imm(e, in, size);
	else
		load_reg(t, in, HR_RCX, s, size);
	alu_tail(t, test ? ALU_AND : alu, size, EMU_REG_NONE);
	if (!test && alu != ALU_CMP)
		store_reg(t, in, d, HR_RDX, size);
	t->fx[t->i] = JIT_FX_WRITE;
}

/* MOV of bytes and words (88-8B; h_mov_rm_r, h_mov_r_rm) and MOV r/m,
 * imm (C6/C7 /0, h_mov_rm_imm) of any size: register forms inline, a
 * memory operand through the TLB path. */
static bool emit_mov(struct jit_ctx *t, const struct emu_insn *in, unsigned size, bool to_rm, bool imm)
{
	struct x86_emit *e = t->e;
	if (in->mod == 3) {
		if (imm) {
			load_imm(e, in, size);
			store_reg(t, in, in->rm, HR_RCX, size);
		} else {
			load_reg(t, in, HR_RCX, to_rm ? in->reg : in->rm, size);
			store_reg(t, in, to_rm ? in->rm : in->reg, HR_RCX, size);
		}
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	}
	struct jit_cold *k = mem_operand(t, in, size, to_rm);
	if (!k)
		return false;
	if (!to_rm) {
		load_host(e, HR_RCX, size);
		store_reg(t, in, in->reg, HR_RCX, size);
	} else {
		if (imm)
			load_imm(e, in, size);
		else
			load_reg(t, in, HR_RCX, in->reg, size);
		store_host(e, HR_RCX, size);
	}
	cold_resume(t, k);
	t->lf_keep = true;
	return true;
}

/* INC/DEC [m] (FF /0, /1; incdec_rm() through rmw_load/rmw_store): the
 * carry kept first, then the access, a write-TLB hit serving both. */
static bool emit_incdec_mem(struct jit_ctx *t, const struct emu_insn *in, unsigned size, bool dec)
{
	struct x86_emit *e = t->e;
	if (t->mode != EMU_MODE_LONG64 || t->n_cold >= JIT_MAX_COLD)
		return false;
	bool dead = jit_flags_dead(t);
	if (!dead) {
		emit_cf(t);
		xe_op_rr(e, 0x89, 8, HR_RCX, HR_R8);                     /* mov r8, rcx */
	}
	struct jit_cold *k = mem_operand(t, in, size, true);
	load_host(e, HR_RAX, size);
	xe_lea(e, HR_RDX, HR_RAX, dec ? -1 : 1);
	if (size == 4)
		xe_op_rr(e, 0x89, 4, HR_RDX, HR_RDX);
	record_incdec(t, dec, size, HR_R8);
	store_host(e, HR_RDX, size);
	cold_resume(t, k);
	return true;
}

/* CBW/CWDE/CDQE (98, h_cbw) and CWD/CDQ/CQO (99, h_cwd) */
static void emit_cbw_cwd(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	struct x86_emit *e = t->e;
	if (in->opcode == 0x98) {
		if (size == 8) {
			load_gpr(t, HR_RAX, RAX, 4);
			xe_rex(e, true, HR_RAX, HR_RAX, false);
			xe_u8(e, 0x63);
			xe_u8(e, 0xc0);                                          /* movsxd rax, eax */
		} else {
			load_gpr(t, HR_RAX, RAX, 4);
			op0f_rr(e, size == 4 ? 0xbf : 0xbe, false, HR_RAX, HR_RAX);   /* movsx eax, ax/al */
		}
		store_reg(t, in, RAX, HR_RAX, size);
	} else {
		load_gpr(t, HR_RAX, RAX, 8);
		shift_op(e, 0xc1, 4, 8, HR_RAX);
		xe_u8(e, (uint8_t)(64 - size * 8));                          /* shl rax, 64 - bits */
		shift_op(e, 0xc1, 7, 8, HR_RAX);
		xe_u8(e, 63);                                                /* sar rax, 63 */
		store_reg(t, in, RDX, HR_RAX, size);
	}
	t->fx[t->i] = JIT_FX_NONE;
}

/* BSWAP r32/r64 (0F C8+r, h_bswap) */
static void emit_bswap(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	struct x86_emit *e = t->e;
	load_gpr(t, HR_RAX, in->rm, size);
	xe_rex(e, size == 8, 0, HR_RAX, false);
	xe_u8(e, 0x0f);
	xe_u8(e, 0xc8 + HR_RAX);                                         /* bswap eax/rax */
	store_gpr(t, in->rm, HR_RAX, size);
	t->fx[t->i] = JIT_FX_NONE;
}

/* XCHG r, rAX (90+r, h_xchg_ax); with rAX itself a NOP (90), which
 * leaves the upper half of RAX as it is. */
static void emit_xchg_ax(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	if (in->rm != RAX) {
		load_gpr(t, HR_RAX, RAX, size);
		load_gpr(t, HR_RCX, in->rm, size);
		store_gpr(t, RAX, HR_RCX, size);
		store_gpr(t, in->rm, HR_RAX, size);
	}
	t->fx[t->i] = JIT_FX_NONE;
}

/* The byte and word forms, and the accumulator ALU forms of any size. */
static bool emit_small(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	unsigned op = in->opcode, ext = (in->modrm >> 3) & 7;
	bool reg_form = in->mod == 3;
	if (op < 0x40 && (op & 7) >= 4 && (op & 7) <= 5) {          /* ALU acc, imm */
		unsigned alu = op >> 3;
		if (alu == ALU_ADC || alu == ALU_SBB || in->fn != h_alu_acc_imm)
			return false;
		emit_alu_small(t, in, alu, size, RAX, EMU_REG_NONE, false);
		return true;
	}
	if (op == 0xa8 || op == 0xa9) {                              /* TEST acc, imm */
		if (in->fn != h_test_acc_imm)
			return false;
		emit_alu_small(t, in, ALU_AND, size, RAX, EMU_REG_NONE, true);
		return true;
	}
	if (size > 2 || !is_plain_form(in, true))
		return false;
	if (op < 0x40 && (op & 7) <= 3) {                             /* ALU r/m, r and r, r/m */
		unsigned alu = op >> 3;
		if (alu == ALU_ADC || alu == ALU_SBB)
			return false;
		if (!reg_form)
			return emit_alu_mem(t, in, alu, size, !(op & 2), false, false);
		unsigned d = (op & 2) ? in->reg : in->rm, s = (op & 2) ? in->rm : in->reg;
		emit_alu_small(t, in, alu, size, d, s, false);
		return true;
	}
	switch (op) {
	case 0x80:
	case 0x81:
	case 0x83:
		if (ext == ALU_ADC || ext == ALU_SBB)
			return false;
		if (!reg_form)
			return emit_alu_mem(t, in, ext, size, true, true, false);
		emit_alu_small(t, in, ext, size, in->rm, EMU_REG_NONE, false);
		return true;
	case 0x84:
	case 0x85:
		if (!reg_form)
			return emit_alu_mem(t, in, ALU_AND, size, true, false, true);
		emit_alu_small(t, in, ALU_AND, size, in->rm, in->reg, true);
		return true;
	case 0xf6:
	case 0xf7:
		if (ext > 1)
			return false;
		if (!reg_form)
			return emit_alu_mem(t, in, ALU_AND, size, true, true, true);
		emit_alu_small(t, in, ALU_AND, size, in->rm, EMU_REG_NONE, true);
		return true;
	case 0x88:
	case 0x89:
	case 0x8a:
	case 0x8b:
		return emit_mov(t, in, size, !(op & 2), false);
	case 0xc6:
	case 0xc7:
		return ext == 0 && emit_mov(t, in, size, true, true);
	default:
		return false;
	}
}

bool jit_template_alu(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	unsigned size = in->opsize, op = in->opcode, ext = (in->modrm >> 3) & 7;
	bool reg_form = in->mod == 3;
	if (in->lock)
		return false;
	if (in->opmap == EMU_MAP_0F) {
		if (in->fn == h_nop && is_plain_form(in, true)) {      /* 0F 19-1F: hint NOPs */
			t->fx[t->i] = JIT_FX_NONE;
			return true;
		}
		if (op >= 0x90 && op <= 0x9f && reg_form && in->fn == h_setcc && is_plain_form(in, true)) {
			emit_setcc(t, in);
			return true;
		}
		if (size != 4 && size != 8)
			return false;
		if (op >= 0x40 && op <= 0x4f && reg_form && in->fn == h_cmov && is_plain_form(in, true)) {
			emit_cmov(t, in, size);
			return true;
		}
		if (op >= 0xc8 && op <= 0xcf && in->fn == h_bswap) {
			emit_bswap(t, in, size);
			return true;
		}
		if (op == 0xaf && reg_form && in->fn == h_imul_r_rm && is_plain_form(in, true)) {
			emit_imul(t, in, size, false);
			return true;
		}
		if ((op == 0xb6 || op == 0xb7 || op == 0xbe || op == 0xbf) && in->fn == h_movzx && is_plain_form(in, true)) {
			if (reg_form) {
				emit_movx_reg(t, in, size);
				return true;
			}
			if (op >= 0xbe)
				return emit_movsx_mem(t, in, size, op == 0xbe ? 1 : 2);
		}
		return false;
	}
	if (in->opmap != EMU_MAP_1B)
		return false;
	if (size == 1 || size == 2 || ((op & 0xc6) == 0x04 && op < 0x40) || op == 0xa8 || op == 0xa9) {
		if (size == 2 && t->mode != EMU_MODE_LONG64)
			return false;   /* keep to the forms 64-bit code uses */
		return emit_small(t, in, size);
	}
	if (size != 4 && size != 8)
		return false;
	if (op >= 0x90 && op <= 0x97 && in->fn == h_xchg_ax) {
		emit_xchg_ax(t, in, size);
		return true;
	}
	if (op >= 0x40 && op <= 0x4f && t->mode != EMU_MODE_LONG64 && in->fn == h_incdec_r && is_plain_form(in, false)) {
		emit_incdec(t, op & 7, size, op & 8);
		return true;
	}
	if (!is_plain_form(in, true))
		return false;
	/* ALU r/m, r and r, r/m (00-3F with ModRM) */
	if (op < 0x40 && (op & 7) <= 3 && (op & 1)) {
		unsigned alu = op >> 3;
		if (alu == ALU_ADC || alu == ALU_SBB)
			return reg_form && emit_adc_sbb(t, in, size);
		if (reg_form)
			return false;                                       /* templates.c */
		return emit_alu_mem(t, in, alu, size, !(op & 2), false, false);
	}
	switch (op) {
	case 0x63:   /* MOVSXD r64, r/m32 */
		if (t->mode != EMU_MODE_LONG64 || size != 8 || in->fn != h_movsxd)
			return false;
		if (!reg_form)
			return emit_movsx_mem(t, in, size, 4);
		load_gpr(t, HR_RAX, in->rm, 4);
		xe_rex(e, true, HR_RAX, HR_RAX, false);
		xe_u8(e, 0x63);
		xe_u8(e, 0xc0);                                             /* movsxd rax, eax */
		store_gpr(t, in->reg, HR_RAX, 8);
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	case 0x69:
	case 0x6b:
		if (!reg_form || in->fn != h_imul_r_rm_imm)
			return false;
		emit_imul(t, in, size, true);
		return true;
	case 0x81:
	case 0x83:
		if (ext == ALU_ADC || ext == ALU_SBB)
			return reg_form && emit_adc_sbb(t, in, size);
		if (reg_form)
			return false;                                       /* templates.c */
		return emit_alu_mem(t, in, ext, size, true, true, false);
	case 0x85:   /* TEST [m], r */
		if (reg_form)
			return false;
		return emit_alu_mem(t, in, ALU_AND, size, true, false, true);
	case 0xc1:   /* ROL/ROR r, imm8 */
		if (!reg_form || ext > 1)
			return false;
		return emit_rotate_ri(t, in, size, ext == 0);
	case 0xd1:   /* SHL/SHR/SAR r, 1 */
		if (!reg_form || (ext != 4 && ext != 5 && ext != 7))
			return false;
		return emit_shift_ri(t, in, size, 1);
	case 0xd3:   /* SHL/SHR/SAR r, CL */
		if (!reg_form || (ext != 4 && ext != 5 && ext != 7))
			return false;
		emit_shift_cl(t, in, size, ext);
		return true;
	case 0xf7:
		if (ext <= 1) {   /* TEST r/m, imm */
			if (!reg_form)
				return emit_alu_mem(t, in, ALU_AND, size, true, true, true);
			load_gpr(t, HR_RAX, in->rm, size);
			load_imm(e, in, size);
			alu_tail(t, ALU_AND, size, EMU_REG_NONE);
			t->fx[t->i] = JIT_FX_WRITE;
			return true;
		}
		if ((ext == 4 || ext == 5) && reg_form && size == 8) {
			emit_mul64(t, in, ext == 5);
			return true;
		}
		if (!reg_form || ext > 3)
			return false;
		if (ext == 2) {   /* NOT */
			load_gpr(t, HR_RAX, in->rm, size);
			xe_op_rr(e, 0xf7, size, 2, HR_RAX);                 /* not eax/rax */
			store_gpr(t, in->rm, HR_RAX, size);
			t->fx[t->i] = JIT_FX_NONE;
			return true;
		}
		/* NEG: alu(SUB, 0, r) */
		load_gpr(t, HR_RCX, in->rm, size);
		xe_op_rr(e, 0x31, 4, HR_RAX, HR_RAX);
		alu_tail(t, ALU_SUB, size, in->rm);
		t->fx[t->i] = JIT_FX_WRITE;
		return true;
	case 0xff:   /* INC/DEC r/m */
		if (ext > 1)
			return false;
		if (!reg_form)
			return emit_incdec_mem(t, in, size, ext == 1);
		emit_incdec(t, in->rm, size, ext == 1);
		return true;
	case 0xc7:   /* MOV r/m, imm32 */
		return ext == 0 && emit_mov(t, in, size, true, true);
	case 0x98:
	case 0x99:
		if (in->fn != (op == 0x98 ? h_cbw : h_cwd))
			return false;
		emit_cbw_cwd(t, in, size);
		return true;
	default:
		return false;
	}
}
