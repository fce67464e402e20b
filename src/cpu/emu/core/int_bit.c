/* Bit instructions: BT, BTS, BTR, BTC (register and immediate offsets,
 * with the memory bit-string addressing of SDM vol. 1, 3.4.1 figure 3-17),
 * BSF, BSR, TZCNT, LZCNT, POPCNT (SDM vol. 2A/2B). */
#include "cpu/emu/core/core.h"

/* op: 0 BT, 1 BTS, 2 BTR, 3 BTC */
static void bit_op(struct emu_cpu *cpu, const struct emu_insn *in, unsigned op, uint64_t off, bool reg_off)
{
	unsigned size = in->opsize, bits = size * 8;
	unsigned bit;
	uint64_t v, nv;
	if (in->mod == 3) {
		bit = (unsigned)(off & (bits - 1));
		v = reg_get(cpu, in->rm, size, in->rex);
	} else {
		uint64_t ea = emu_insn_ea(cpu, in);
		if (reg_off) {
			/* A register offset is signed and may leave the operand. */
			int64_t so = (int64_t)sext(off, size);
			int64_t word = so >> (__builtin_ctz(bits));
			ea = (ea + (uint64_t)(word * (int64_t)size)) & emu_size_mask(in->adsize);
			bit = (unsigned)(so & (bits - 1));
		} else {
			bit = (unsigned)(off & (bits - 1));
		}
		uint64_t mask = 1ull << bit;
		void *p = NULL;
		if (op != 0 && in->lock)
			p = emu_mem_ptr(cpu, in->seg, ea, size, true);
		if (p) {
			static const enum emu_atomic_op atomic_op[4] = { 0, EMU_ATOMIC_OR, EMU_ATOMIC_AND, EMU_ATOMIC_XOR };
			uint64_t old = emu_host_atomic(p, size, atomic_op[op], op == 2 ? ~mask : mask);
			emu_flags_store(cpu, X86_FLAG_CF, (old >> bit) & 1);
			return;
		}
		v = emu_read(cpu, in->seg, ea, size);
		nv = op == 1 ? v | mask : op == 2 ? v & ~mask : v ^ mask;
		if (op != 0)
			emu_write(cpu, in->seg, ea, size, nv);
		emu_flags_store(cpu, X86_FLAG_CF, (v >> bit) & 1);
		return;
	}
	uint64_t mask = 1ull << bit;
	nv = op == 1 ? v | mask : op == 2 ? v & ~mask : v ^ mask;
	if (op != 0)
		reg_set(cpu, in->rm, size, in->rex, nv);
	emu_flags_store(cpu, X86_FLAG_CF, (v >> bit) & 1);
}

void h_bt_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	static const uint8_t ops[4] = { 0, 1, 2, 3 };   /* A3 BT, AB BTS, B3 BTR, BB BTC */
	unsigned op = ops[(in->opcode >> 3) & 3];
	bit_op(cpu, in, op, reg_get(cpu, in->reg, in->opsize, in->rex), true);
}

void h_bt_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bit_op(cpu, in, ((in->modrm >> 3) & 7) - 4, in->imm & 0xff, false);
}

/* BSF/BSR: a zero source sets ZF and leaves the destination unchanged. */
void h_bsf_bsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t v = rm_read(cpu, in, size);
	if (v == 0) {
		emu_flags_store(cpu, X86_FLAGS_ARITH, X86_FLAG_ZF);
		return;
	}
	uint64_t r = in->opcode == 0xbc ? (uint64_t)__builtin_ctzll(v) : (uint64_t)(63 - __builtin_clzll(v));
	reg_set(cpu, in->reg, size, in->rex, r);
	lf_set(cpu, LF_LOGIC, size, r, 0, 0);
	emu_flags_store(cpu, X86_FLAG_ZF, 0);
}

/* TZCNT/LZCNT (F3 0F BC/BD): CF = source was zero, ZF = result is zero. */
void h_tzcnt_lzcnt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, bits = size * 8;
	uint64_t v = rm_read(cpu, in, size), r;
	if (v == 0)
		r = bits;
	else if (in->opcode == 0xbc)
		r = (uint64_t)__builtin_ctzll(v);
	else
		r = (uint64_t)(__builtin_clzll(v) - (64 - bits));
	reg_set(cpu, in->reg, size, in->rex, r);
	lf_set(cpu, LF_LOGIC, size, r, 0, 0);
	emu_flags_store(cpu, X86_FLAG_CF | X86_FLAG_ZF, (v == 0 ? X86_FLAG_CF : 0) | (r == 0 ? X86_FLAG_ZF : 0));
}

void h_popcnt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t v = rm_read(cpu, in, size);
	uint64_t r = (uint64_t)__builtin_popcountll(v);
	reg_set(cpu, in->reg, size, in->rex, r);
	emu_flags_store(cpu, X86_FLAGS_ARITH, v == 0 ? X86_FLAG_ZF : 0);
}

