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
	void *p = emu_mem_ptr(cpu, in->seg, insn_ea(cpu, in), size, true);
	if (!p)
		return false;
	switch (size) {
	case 1: {
		uint8_t old = __atomic_load_n((uint8_t *)p, __ATOMIC_RELAXED), nv;
		do nv = (uint8_t)fn(cpu, old, arg, op, cin);
		while (!__atomic_compare_exchange_n((uint8_t *)p, &old, nv, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		break;
	}
	case 2: {
		uint16_t old = __atomic_load_n((uint16_t *)p, __ATOMIC_RELAXED), nv;
		do nv = (uint16_t)fn(cpu, old, arg, op, cin);
		while (!__atomic_compare_exchange_n((uint16_t *)p, &old, nv, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		break;
	}
	case 4: {
		uint32_t old = __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED), nv;
		do nv = (uint32_t)fn(cpu, old, arg, op, cin);
		while (!__atomic_compare_exchange_n((uint32_t *)p, &old, nv, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		break;
	}
	default: {
		uint64_t old = __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED), nv;
		do nv = fn(cpu, old, arg, op, cin);
		while (!__atomic_compare_exchange_n((uint64_t *)p, &old, nv, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
		break;
	}
	}
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
		alu(cpu, op, size, emu_read(cpu, in->seg, insn_ea(cpu, in), size), src, false);
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
		void *p = emu_mem_ptr(cpu, in->seg, insn_ea(cpu, in), size, true);
		if (p) {
			/* Atomic add, then flags from the value it replaced. */
			uint64_t add = dec ? emu_size_mask(size) : 1, old;
			switch (size) {
			case 1: old = __atomic_fetch_add((uint8_t *)p, (uint8_t)add, __ATOMIC_SEQ_CST); break;
			case 2: old = __atomic_fetch_add((uint16_t *)p, (uint16_t)add, __ATOMIC_SEQ_CST); break;
			case 4: old = __atomic_fetch_add((uint32_t *)p, (uint32_t)add, __ATOMIC_SEQ_CST); break;
			default: old = __atomic_fetch_add((uint64_t *)p, add, __ATOMIC_SEQ_CST); break;
			}
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

void emu_int_arith_register(void)
{
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
