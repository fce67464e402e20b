/* Integer arithmetic and logic: ADD, OR, ADC, SBB, AND, SUB, XOR, CMP
 * (opcodes 00-3D, group 1 80-83), TEST, INC, DEC, NEG, NOT (SDM vol. 2A/2B,
 * the instruction pages; flags per vol. 1, appendix A). */
#include "cpu/emu/core/core.h"

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* Computes a op b and records the flags; carry-in is read before the
 * lazy state is replaced. */
static inline uint64_t alu(struct emu_cpu *cpu, unsigned op, unsigned size, uint64_t a, uint64_t b, bool cin)
{
	uint64_t r, m = emu_size_mask(size);
	a &= m;
	b &= m;
	switch (op) {
	case ALU_ADD: r = a + b; lf_set(cpu, LF_ADD, size, r, a, b); break;
	case ALU_ADC: r = a + b + cin; lf_set(cpu, LF_ADD, size, r, a, b); break;
	case ALU_SBB: r = a - b - cin; lf_set(cpu, LF_SUB, size, r, a, b); break;
	case ALU_SUB:
	case ALU_CMP: r = a - b; lf_set(cpu, LF_SUB, size, r, a, b); break;
	case ALU_OR: r = a | b; lf_set(cpu, LF_LOGIC, size, r, 0, 0); break;
	case ALU_AND: r = a & b; lf_set(cpu, LF_LOGIC, size, r, 0, 0); break;
	default: r = a ^ b; lf_set(cpu, LF_LOGIC, size, r, 0, 0); break;
	}
	return r & m;
}

static inline bool alu_cin(const struct emu_cpu *cpu, unsigned op)
{
	return (op == ALU_ADC || op == ALU_SBB) ? emu_flag_cf(cpu) : false;
}

/* LOCKed read-modify-write on host memory (vCPUs are threads): a CAS loop
 * so that the update is atomic as the SDM's LOCK semantics require. */
static bool locked_rmw(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size,
		       uint64_t (*fn)(struct emu_cpu *, uint64_t, uint64_t, unsigned, bool), uint64_t arg, unsigned op,
		       bool cin)
{
	void *p = emu_mem_ptr(cpu, in->seg, emu_insn_ea(cpu, in), size, true);
	if (!p)
		return false;
	uint64_t old = emu_host_load(p, size), nv;
	do nv = fn(cpu, old, arg, op, cin);
	while (!emu_host_cmpxchg(p, size, &old, nv));
	return true;
}

static uint64_t rmw_alu(struct emu_cpu *cpu, uint64_t old, uint64_t arg, unsigned size_op, bool cin)
{
	return alu(cpu, size_op >> 8, size_op & 0xff, old, arg, cin);
}

/* op r/m, src */
static inline void alu_rm(struct emu_cpu *cpu, const struct emu_insn *in, unsigned op, uint64_t src)
{
	unsigned size = in->opsize;
	if (in->mod == 3) {
		uint64_t r = alu(cpu, op, size, reg_get(cpu, in->rm, size, in->rex), src, alu_cin(cpu, op));
		if (op != ALU_CMP)
			reg_set(cpu, in->rm, size, in->rex, r);
		return;
	}
	if (op == ALU_CMP) {
		alu(cpu, op, size, emu_read(cpu, in->seg, emu_insn_ea(cpu, in), size), src, false);
		return;
	}
	if (in->lock && locked_rmw(cpu, in, size, rmw_alu, src, op << 8 | size, alu_cin(cpu, op)))
		return;
	struct rmw_operand m;
	uint64_t old = rmw_load(cpu, &m, in, size);
	rmw_store(cpu, &m, alu(cpu, op, size, old, src, alu_cin(cpu, op)));
}

static void h_alu_rm_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu_rm(cpu, in, in->opcode >> 3, reg_get(cpu, in->reg, in->opsize, in->rex));
}

static void h_alu_r_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned op = in->opcode >> 3, size = in->opsize;
	uint64_t b = rm_read(cpu, in, size);
	uint64_t r = alu(cpu, op, size, reg_get(cpu, in->reg, size, in->rex), b, alu_cin(cpu, op));
	if (op != ALU_CMP)
		reg_set(cpu, in->reg, size, in->rex, r);
}

static void h_alu_acc_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned op = in->opcode >> 3, size = in->opsize;
	uint64_t r = alu(cpu, op, size, cpu->gpr[RAX], in->imm, alu_cin(cpu, op));
	if (op != ALU_CMP)
		reg_set(cpu, RAX, size, false, r);
}

static void h_grp1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu_rm(cpu, in, (in->modrm >> 3) & 7, in->imm);
}

static void h_test_rm_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	alu(cpu, ALU_AND, size, rm_read(cpu, in, size), reg_get(cpu, in->reg, size, in->rex), false);
}

static void h_test_acc_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu(cpu, ALU_AND, in->opsize, cpu->gpr[RAX], in->imm, false);
}

static void h_test_rm_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu(cpu, ALU_AND, in->opsize, rm_read(cpu, in, in->opsize), in->imm, false);
}

/* INC/DEC leave CF alone (SDM vol. 2A, INC "Flags Affected"). */
static uint64_t rmw_incdec(struct emu_cpu *cpu, uint64_t old, uint64_t dec, unsigned size, bool cin)
{
	uint64_t cf = emu_flag_cf(cpu);
	uint64_t r = (dec ? old - 1 : old + 1) & emu_size_mask(size);
	lf_set(cpu, dec ? LF_DEC : LF_INC, size, r, old & emu_size_mask(size), cf);
	return r;
}

static void incdec_rm(struct emu_cpu *cpu, const struct emu_insn *in, bool dec)
{
	unsigned size = in->opsize;
	if (in->mod == 3) {
		reg_set(cpu, in->rm, size, in->rex, rmw_incdec(cpu, reg_get(cpu, in->rm, size, in->rex), dec, size, 0));
		return;
	}
	if (in->lock) {
		void *p = emu_mem_ptr(cpu, in->seg, emu_insn_ea(cpu, in), size, true);
		if (p) {
			/* Atomic add, then flags from the value it replaced. */
			uint64_t add = dec ? emu_size_mask(size) : 1;
			uint64_t old = emu_host_atomic(p, size, EMU_ATOMIC_ADD, add);
			rmw_incdec(cpu, old, dec, size, 0);
			return;
		}
	}
	struct rmw_operand m;
	uint64_t old = rmw_load(cpu, &m, in, size);
	rmw_store(cpu, &m, rmw_incdec(cpu, old, dec, size, 0));
}

static void h_inc_rm(struct emu_cpu *cpu, const struct emu_insn *in) { incdec_rm(cpu, in, false); }
static void h_dec_rm(struct emu_cpu *cpu, const struct emu_insn *in) { incdec_rm(cpu, in, true); }

static void h_incdec_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned r = in->opcode & 7, size = in->opsize;
	bool dec = in->opcode & 8;
	reg_set(cpu, r, size, false, rmw_incdec(cpu, reg_get(cpu, r, size, false), dec, size, 0));
}

static uint64_t rmw_not(struct emu_cpu *cpu, uint64_t old, uint64_t arg, unsigned size, bool cin)
{
	return ~old & emu_size_mask(size);
}

static uint64_t rmw_neg(struct emu_cpu *cpu, uint64_t old, uint64_t arg, unsigned size, bool cin)
{
	return alu(cpu, ALU_SUB, size, 0, old, false);
}

static void unary_rm(struct emu_cpu *cpu, const struct emu_insn *in,
		     uint64_t (*fn)(struct emu_cpu *, uint64_t, uint64_t, unsigned, bool))
{
	unsigned size = in->opsize;
	if (in->mod == 3) {
		reg_set(cpu, in->rm, size, in->rex, fn(cpu, reg_get(cpu, in->rm, size, in->rex), 0, size, 0));
		return;
	}
	if (in->lock && locked_rmw(cpu, in, size, fn, 0, size, false))
		return;
	struct rmw_operand m;
	uint64_t old = rmw_load(cpu, &m, in, size);
	rmw_store(cpu, &m, fn(cpu, old, 0, size, 0));
}

static void h_not(struct emu_cpu *cpu, const struct emu_insn *in) { unary_rm(cpu, in, rmw_not); }
static void h_neg(struct emu_cpu *cpu, const struct emu_insn *in) { unary_rm(cpu, in, rmw_neg); }

static void arith_register_forms(void);

void emu_int_arith_register(void)
{
	arith_register_forms();
	for (unsigned row = 0; row < 8; row++) {
		uint8_t b = (uint8_t)(row << 3);
		emu_register(EMU_MAP_1B, b + 0, -1, -1, h_alu_rm_r);
		emu_register(EMU_MAP_1B, b + 1, -1, -1, h_alu_rm_r);
		emu_register(EMU_MAP_1B, b + 2, -1, -1, h_alu_r_rm);
		emu_register(EMU_MAP_1B, b + 3, -1, -1, h_alu_r_rm);
		emu_register(EMU_MAP_1B, b + 4, -1, -1, h_alu_acc_imm);
		emu_register(EMU_MAP_1B, b + 5, -1, -1, h_alu_acc_imm);
	}
	for (unsigned op = 0x80; op <= 0x83; op++)
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, -1, h_grp1);
	emu_register(EMU_MAP_1B, 0x84, -1, -1, h_test_rm_r);
	emu_register(EMU_MAP_1B, 0x85, -1, -1, h_test_rm_r);
	emu_register(EMU_MAP_1B, 0xa8, -1, -1, h_test_acc_imm);
	emu_register(EMU_MAP_1B, 0xa9, -1, -1, h_test_acc_imm);
	for (unsigned op = 0x40; op <= 0x4f; op++)
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, -1, h_incdec_r);
	for (unsigned op = 0xf6; op <= 0xf7; op++) {
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, 0, h_test_rm_imm);
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, 1, h_test_rm_imm);
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, 2, h_not);
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, 3, h_neg);
	}
	for (unsigned op = 0xfe; op <= 0xff; op++) {
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, 0, h_inc_rm);
		emu_register(EMU_MAP_1B, (uint8_t)op, -1, 1, h_dec_rm);
	}
}

/* ---- forms specialized at decode (arith_register_forms) ----
 * Register operands of 32 and 64 bits are most of the ALU work of a
 * 64-bit kernel; with the operation and size constant the generic
 * handler's switches fold away.  Semantics are the generic handlers'. */
#define ALU_RR(op, size, dst_rm)                                                                  \
	static void alu_rr_##op##_##size##_##dst_rm(struct emu_cpu *cpu, const struct emu_insn *in) \
	{                                                                                         \
		unsigned d = dst_rm ? in->rm : in->reg, s = dst_rm ? in->reg : in->rm;            \
		uint64_t r = alu(cpu, op, size, cpu->gpr[d], cpu->gpr[s], alu_cin(cpu, op));      \
		if (op != ALU_CMP)                                                                \
			reg_set(cpu, d, size, true, r);                                           \
	}
#define ALU_RI(op, size)                                                                      \
	static void alu_ri_##op##_##size(struct emu_cpu *cpu, const struct emu_insn *in)      \
	{                                                                                     \
		uint64_t r = alu(cpu, op, size, cpu->gpr[in->rm], in->imm, alu_cin(cpu, op)); \
		if (op != ALU_CMP)                                                            \
			reg_set(cpu, in->rm, size, true, r);                                  \
	}
/* op r, [m]: a load, no write to memory */
#define ALU_RM(op, size)                                                                          \
	static void alu_load_##op##_##size(struct emu_cpu *cpu, const struct emu_insn *in)        \
	{                                                                                         \
		uint64_t b = emu_read(cpu, in->seg, emu_insn_ea(cpu, in), size);                      \
		uint64_t r = alu(cpu, op, size, cpu->gpr[in->reg], b, alu_cin(cpu, op));          \
		if (op != ALU_CMP)                                                                \
			reg_set(cpu, in->reg, size, true, r);                                     \
	}
#define ALU_FORMS(op) ALU_RR(op, 4, 0) ALU_RR(op, 8, 0) ALU_RR(op, 4, 1) ALU_RR(op, 8, 1) ALU_RI(op, 4) \
	ALU_RI(op, 8) ALU_RM(op, 4) ALU_RM(op, 8)
ALU_FORMS(ALU_ADD) ALU_FORMS(ALU_OR) ALU_FORMS(ALU_ADC) ALU_FORMS(ALU_SBB)
ALU_FORMS(ALU_AND) ALU_FORMS(ALU_SUB) ALU_FORMS(ALU_XOR) ALU_FORMS(ALU_CMP)
#define ALU_ROW(op) { { alu_rr_##op##_4_0, alu_rr_##op##_8_0 }, { alu_rr_##op##_4_1, alu_rr_##op##_8_1 }, \
		      { alu_ri_##op##_4, alu_ri_##op##_8 }, { alu_load_##op##_4, alu_load_##op##_8 } }
/* [op][0: r, r; 1: r/m, r (register); 2: r/m, imm (register); 3: r, [m]][size 4, 8] */
static const emu_handler alu_fast[8][4][2] = {
	ALU_ROW(ALU_ADD), ALU_ROW(ALU_OR), ALU_ROW(ALU_ADC), ALU_ROW(ALU_SBB),
	ALU_ROW(ALU_AND), ALU_ROW(ALU_SUB), ALU_ROW(ALU_XOR), ALU_ROW(ALU_CMP),
};

static void test_rr_4(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu(cpu, ALU_AND, 4, cpu->gpr[in->rm], cpu->gpr[in->reg], false);
}

static void test_rr_8(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu(cpu, ALU_AND, 8, cpu->gpr[in->rm], cpu->gpr[in->reg], false);
}

/* CMP [m], r and CMP [m], imm read memory and write nothing. */
#define CMP_MEM(size)                                                                             \
	static void cmp_mr_##size(struct emu_cpu *cpu, const struct emu_insn *in)                 \
	{                                                                                         \
		alu(cpu, ALU_CMP, size, emu_read(cpu, in->seg, emu_insn_ea(cpu, in), size), cpu->gpr[in->reg], false); \
	}                                                                                         \
	static void cmp_mi_##size(struct emu_cpu *cpu, const struct emu_insn *in)                 \
	{                                                                                         \
		alu(cpu, ALU_CMP, size, emu_read(cpu, in->seg, emu_insn_ea(cpu, in), size), in->imm, false); \
	}
CMP_MEM(4)
CMP_MEM(8)

static void arith_register_forms(void)
{
	for (unsigned op = 0; op < 8; op++) {
		uint8_t b = (uint8_t)(op << 3);
		for (unsigned q = 0; q < 2; q++) {
			unsigned sz = q ? EMU_FORM_64 : EMU_FORM_32;
			emu_register_form(EMU_MAP_1B, b + 1, -1, -1, EMU_FORM_REG, sz, alu_fast[op][1][q]);
			emu_register_form(EMU_MAP_1B, b + 3, -1, -1, EMU_FORM_REG, sz, alu_fast[op][0][q]);
			emu_register_form(EMU_MAP_1B, b + 3, -1, -1, EMU_FORM_MEM, sz, alu_fast[op][3][q]);
			emu_register_form(EMU_MAP_1B, 0x81, -1, (int)op, EMU_FORM_REG, sz, alu_fast[op][2][q]);
			emu_register_form(EMU_MAP_1B, 0x83, -1, (int)op, EMU_FORM_REG, sz, alu_fast[op][2][q]);
		}
	}
	emu_register_form(EMU_MAP_1B, 0x39, -1, -1, EMU_FORM_MEM, EMU_FORM_32, cmp_mr_4);
	emu_register_form(EMU_MAP_1B, 0x39, -1, -1, EMU_FORM_MEM, EMU_FORM_64, cmp_mr_8);
	emu_register_form(EMU_MAP_1B, 0x81, -1, ALU_CMP, EMU_FORM_MEM, EMU_FORM_32, cmp_mi_4);
	emu_register_form(EMU_MAP_1B, 0x81, -1, ALU_CMP, EMU_FORM_MEM, EMU_FORM_64, cmp_mi_8);
	emu_register_form(EMU_MAP_1B, 0x83, -1, ALU_CMP, EMU_FORM_MEM, EMU_FORM_32, cmp_mi_4);
	emu_register_form(EMU_MAP_1B, 0x83, -1, ALU_CMP, EMU_FORM_MEM, EMU_FORM_64, cmp_mi_8);
	emu_register_form(EMU_MAP_1B, 0x85, -1, -1, EMU_FORM_REG, EMU_FORM_32, test_rr_4);
	emu_register_form(EMU_MAP_1B, 0x85, -1, -1, EMU_FORM_REG, EMU_FORM_64, test_rr_8);
}
