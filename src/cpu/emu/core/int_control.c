/* Near control transfers: Jcc, JMP, CALL, RET (with imm16), LOOP,
 * LOOPE, LOOPNE, JCXZ/JECXZ/JRCXZ (SDM vol. 2A/2B).  The target is
 * truncated to the operand size; in 64-bit mode the operand size of these
 * is 64 bits whatever the 66 prefix says (Intel behaviour). */
#include "cpu/emu/core/core.h"

static void h_jcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (emu_cond(cpu, in->opcode & 15))
		branch_to(cpu, in, cpu->next_rip + in->imm);
}

static void h_jmp_rel(struct emu_cpu *cpu, const struct emu_insn *in)
{
	branch_to(cpu, in, cpu->next_rip + in->imm);
}

static void h_call_rel(struct emu_cpu *cpu, const struct emu_insn *in)
{
	stack_push_val(cpu, in->opsize, cpu->next_rip);
	branch_to(cpu, in, cpu->next_rip + in->imm);
}

static void h_call_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t t = rm_read(cpu, in, in->opsize);
	stack_push_val(cpu, in->opsize, cpu->next_rip);
	branch_to(cpu, in, t);
}

static void h_jmp_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	branch_to(cpu, in, rm_read(cpu, in, in->opsize));
}

static void h_ret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t sp = sp_get(cpu);
	uint64_t t = emu_read(cpu, SEG_SS, sp, in->opsize);
	uint64_t pop = in->opcode == 0xc2 ? (in->imm & 0xffff) : 0;
	sp_set(cpu, sp + in->opsize + pop);
	branch_to(cpu, in, t);
}

/* LOOPcc and JrCXZ: the count register is CX, ECX or RCX by address size. */
static void h_loop(struct emu_cpu *cpu, const struct emu_insn *in)
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

static void control_register_forms(void);

void emu_int_control_register(void)
{
	control_register_forms();
	for (unsigned cc = 0; cc < 16; cc++) {
		emu_register(EMU_MAP_1B, (uint8_t)(0x70 + cc), -1, -1, h_jcc);
		emu_register(EMU_MAP_0F, (uint8_t)(0x80 + cc), -1, -1, h_jcc);
	}
	emu_register(EMU_MAP_1B, 0xe9, -1, -1, h_jmp_rel);
	emu_register(EMU_MAP_1B, 0xeb, -1, -1, h_jmp_rel);
	emu_register(EMU_MAP_1B, 0xe8, -1, -1, h_call_rel);
	emu_register(EMU_MAP_1B, 0xff, -1, 2, h_call_rm);
	emu_register(EMU_MAP_1B, 0xff, -1, 4, h_jmp_rm);
	emu_register(EMU_MAP_1B, 0xc2, -1, -1, h_ret);
	emu_register(EMU_MAP_1B, 0xc3, -1, -1, h_ret);
	for (unsigned op = 0xe0; op <= 0xe3; op++)
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, -1, h_loop);
}

/* ---- forms specialized at decode (control_register_forms) ----
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
static const emu_handler jcc_fast[16] = {
	jcc_0, jcc_1, jcc_2, jcc_3, jcc_4, jcc_5, jcc_6, jcc_7,
	jcc_8, jcc_9, jcc_10, jcc_11, jcc_12, jcc_13, jcc_14, jcc_15,
};

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

static void control_register_forms(void)
{
	for (unsigned cc = 0; cc < 16; cc++) {
		emu_register_form(EMU_MAP_1B, (uint8_t)(0x70 + cc), -1, -1, EMU_FORM_ANY, EMU_FORM_ANYSIZE, jcc_fast[cc]);
		emu_register_form(EMU_MAP_0F, (uint8_t)(0x80 + cc), -1, -1, EMU_FORM_ANY, EMU_FORM_ANYSIZE, jcc_fast[cc]);
	}
	emu_register_form(EMU_MAP_1B, 0xe8, -1, -1, EMU_FORM_ANY, EMU_FORM_64, call_rel64);
	emu_register_form(EMU_MAP_1B, 0xc3, -1, -1, EMU_FORM_ANY, EMU_FORM_64, ret64);
}
