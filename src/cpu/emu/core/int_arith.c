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

void h_alu_rm_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu_rm(cpu, in, in->opcode >> 3, reg_get(cpu, in->reg, in->opsize, in->rex));
}

void h_alu_r_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned op = in->opcode >> 3, size = in->opsize;
	uint64_t b = rm_read(cpu, in, size);
	uint64_t r = alu(cpu, op, size, reg_get(cpu, in->reg, size, in->rex), b, alu_cin(cpu, op));
	if (op != ALU_CMP)
		reg_set(cpu, in->reg, size, in->rex, r);
}

void h_alu_acc_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned op = in->opcode >> 3, size = in->opsize;
	uint64_t r = alu(cpu, op, size, cpu->gpr[RAX], in->imm, alu_cin(cpu, op));
	if (op != ALU_CMP)
		reg_set(cpu, RAX, size, false, r);
}

void h_grp1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu_rm(cpu, in, (in->modrm >> 3) & 7, in->imm);
}

void h_test_rm_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	alu(cpu, ALU_AND, size, rm_read(cpu, in, size), reg_get(cpu, in->reg, size, in->rex), false);
}

void h_test_acc_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	alu(cpu, ALU_AND, in->opsize, cpu->gpr[RAX], in->imm, false);
}

void h_test_rm_imm(struct emu_cpu *cpu, const struct emu_insn *in)
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

void h_inc_rm(struct emu_cpu *cpu, const struct emu_insn *in) { incdec_rm(cpu, in, false); }
void h_dec_rm(struct emu_cpu *cpu, const struct emu_insn *in) { incdec_rm(cpu, in, true); }

void h_incdec_r(struct emu_cpu *cpu, const struct emu_insn *in)
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

void h_not(struct emu_cpu *cpu, const struct emu_insn *in) { unary_rm(cpu, in, rmw_not); }
void h_neg(struct emu_cpu *cpu, const struct emu_insn *in) { unary_rm(cpu, in, rmw_neg); }


/* ---- forms specialised at decode (opcode table: handlers.c) ----
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

/* 0x+1 op r/m, r; 0x+3 op r, r/m; 81/83 /op r/m, imm (table order). */
#define ALU_FORMS_RM_R(op) [op] = { .r32 = alu_rr_##op##_4_1, .r64 = alu_rr_##op##_8_1 }
#define ALU_FORMS_R_RM(op) [op] = { .r32 = alu_rr_##op##_4_0, .r64 = alu_rr_##op##_8_0, \
				    .m32 = alu_load_##op##_4, .m64 = alu_load_##op##_8 }
#define ALU_FORMS_RI(op) [op] = { .r32 = alu_ri_##op##_4, .r64 = alu_ri_##op##_8 }
const struct emu_forms int_alu_rm_r_forms[8] = {
	ALU_FORMS_RM_R(ALU_ADD), ALU_FORMS_RM_R(ALU_OR), ALU_FORMS_RM_R(ALU_ADC), ALU_FORMS_RM_R(ALU_SBB),
	ALU_FORMS_RM_R(ALU_AND), ALU_FORMS_RM_R(ALU_SUB), ALU_FORMS_RM_R(ALU_XOR),
	[ALU_CMP] = { .r32 = alu_rr_ALU_CMP_4_1, .r64 = alu_rr_ALU_CMP_8_1, .m32 = cmp_mr_4, .m64 = cmp_mr_8 },
};
const struct emu_forms int_alu_r_rm_forms[8] = {
	ALU_FORMS_R_RM(ALU_ADD), ALU_FORMS_R_RM(ALU_OR), ALU_FORMS_R_RM(ALU_ADC), ALU_FORMS_R_RM(ALU_SBB),
	ALU_FORMS_R_RM(ALU_AND), ALU_FORMS_R_RM(ALU_SUB), ALU_FORMS_R_RM(ALU_XOR), ALU_FORMS_R_RM(ALU_CMP),
};
const struct emu_forms int_alu_ri_forms[8] = {
	ALU_FORMS_RI(ALU_ADD), ALU_FORMS_RI(ALU_OR), ALU_FORMS_RI(ALU_ADC), ALU_FORMS_RI(ALU_SBB),
	ALU_FORMS_RI(ALU_AND), ALU_FORMS_RI(ALU_SUB), ALU_FORMS_RI(ALU_XOR),
	[ALU_CMP] = { .r32 = alu_ri_ALU_CMP_4, .r64 = alu_ri_ALU_CMP_8, .m32 = cmp_mi_4, .m64 = cmp_mi_8 },
};
const struct emu_forms int_test_rr_forms = { .r32 = test_rr_4, .r64 = test_rr_8 };
