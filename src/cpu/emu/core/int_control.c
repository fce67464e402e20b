/* Near control transfers: Jcc, JMP, CALL, RET (with imm16), LOOP,
 * LOOPE, LOOPNE, JCXZ/JECXZ/JRCXZ (SDM vol. 2A/2B).  The target is
 * truncated to the operand size; in 64-bit mode the operand size of these
 * is 64 bits whatever the 66 prefix says (Intel behaviour). */
#include "cpu/emu/core/core.h"

void h_jcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (emu_cond(cpu, in->opcode & 15))
		branch_to(cpu, in, cpu->next_rip + in->imm);
}

void h_jmp_rel(struct emu_cpu *cpu, const struct emu_insn *in)
{
	branch_to(cpu, in, cpu->next_rip + in->imm);
}

void h_call_rel(struct emu_cpu *cpu, const struct emu_insn *in)
{
	stack_push_val(cpu, in->opsize, cpu->next_rip);
	branch_to(cpu, in, cpu->next_rip + in->imm);
}

void h_call_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t = rm_read(cpu, in, in->opsize);
	stack_push_val(cpu, in->opsize, cpu->next_rip);
	branch_to(cpu, in, t);
}

void h_jmp_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	branch_to(cpu, in, rm_read(cpu, in, in->opsize));
}

void h_ret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t sp = sp_get(cpu);
	uint64_t t = emu_read(cpu, SEG_SS, sp, in->opsize);
	uint64_t pop = in->opcode == 0xc2 ? (in->imm & 0xffff) : 0;
	sp_set(cpu, sp + in->opsize + pop);
	branch_to(cpu, in, t);
}

/* LOOPcc and JrCXZ: the count register is CX, ECX or RCX by address size. */
void h_loop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned as = in->adsize;
	uint64_t c = reg_get(cpu, RCX, as, true);
	bool take;
	if (in->opcode == 0xe3) {
		take = c == 0;
	} else {
		c = (c - 1) & emu_size_mask(as);
		reg_set(cpu, RCX, as, true, c);
		take = c != 0;
		if (in->opcode == 0xe0)
			take = take && !emu_cond(cpu, 4);   /* LOOPNE: ZF = 0 */
		else if (in->opcode == 0xe1)
			take = take && emu_cond(cpu, 4);    /* LOOPE: ZF = 1 */
	}
	if (take)
		branch_to(cpu, in, cpu->next_rip + in->imm);
}


/* ---- forms specialised at decode (opcode table: handlers.c) ----
 * One Jcc handler per condition, so that the condition folds into the
 * flags fast path (emu_cond). */
#define JCC(cc)                                                                  \
	static void jcc_##cc(struct emu_cpu *cpu, const struct emu_insn *in)     \
	{                                                                        \
		if (emu_cond(cpu, cc))                                    \
			branch_to(cpu, in, cpu->next_rip + in->imm);             \
	}
JCC(0) JCC(1) JCC(2) JCC(3) JCC(4) JCC(5) JCC(6) JCC(7)
JCC(8) JCC(9) JCC(10) JCC(11) JCC(12) JCC(13) JCC(14) JCC(15)

/* Near CALL rel32 and RET in 64-bit mode (the only mode with a 64-bit
 * operand size, and a 64-bit stack): h_call_rel's and h_ret's semantics. */
static void call_rel64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	stack_push64(cpu, cpu->next_rip);
	cpu->next_rip += in->imm;
}

static void ret64(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->next_rip = stack_pop64(cpu);
}

/* Jcc: every operand size (no ModRM, so register forms only). */
#define JCC_FORMS(cc) [cc] = { .r16 = jcc_##cc, .r32 = jcc_##cc, .r64 = jcc_##cc }
const struct emu_forms int_jcc_forms[16] = {
	JCC_FORMS(0), JCC_FORMS(1), JCC_FORMS(2), JCC_FORMS(3), JCC_FORMS(4), JCC_FORMS(5), JCC_FORMS(6), JCC_FORMS(7),
	JCC_FORMS(8), JCC_FORMS(9), JCC_FORMS(10), JCC_FORMS(11), JCC_FORMS(12), JCC_FORMS(13), JCC_FORMS(14), JCC_FORMS(15),
};
const struct emu_forms int_call_rel64_forms = { .r64 = call_rel64 };
const struct emu_forms int_ret64_forms = { .r64 = ret64 };
