/* Data movement: MOV (88-8C, A0-A3, B0-BF, C6, C7), MOVZX, MOVSX, MOVSXD,
 * LEA, XCHG, XADD, CMPXCHG, CMPXCHG8B/16B, BSWAP, MOVBE, CMOVcc, SETcc,
 * CBW/CWDE/CDQE, CWD/CDQ/CQO, LAHF/SAHF, XLAT (SDM vol. 2A/2B). */
#include "cpu/emu/core/core.h"

void h_mov_rm_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	rm_write(cpu, in, in->opsize, reg_get(cpu, in->reg, in->opsize, in->rex));
}

void h_mov_r_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	reg_set(cpu, in->reg, in->opsize, in->rex, rm_read(cpu, in, in->opsize));
}

void h_mov_rm_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	rm_write(cpu, in, in->opsize, in->imm);
}

void h_mov_r_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	reg_set(cpu, in->rm, in->opsize, in->rex, in->imm);
}

/* MOV AL/rAX <-> moffs: the offset is an absolute address in the segment. */
void h_mov_moffs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->opcode & 2)
		emu_write(cpu, in->seg, in->imm, in->opsize, reg_get(cpu, RAX, in->opsize, false));
	else
		reg_set(cpu, RAX, in->opsize, false, emu_read(cpu, in->seg, in->imm, in->opsize));
}

/* MOV r/m, Sreg: a 16-bit store to memory; into a register zero-extended. */
void h_mov_rm_sreg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = (in->modrm >> 3) & 7;
	if (s >= SEG_COUNT)
		emu_raise_noerr(cpu, X86_EXC_UD);
	uint16_t sel = cpu->seg[s].sel;
	if (in->mod == 3)
		reg_set(cpu, in->rm, in->opsize == 2 ? 2 : in->opsize, in->rex, sel);
	else
		emu_write(cpu, in->seg, emu_insn_ea(cpu, in), 2, sel);
}

void h_lea(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod == 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	reg_set(cpu, in->reg, in->opsize, in->rex, emu_insn_ea(cpu, in));
}

void h_movzx(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned ss = (in->opcode & 1) ? 2 : 1;
	uint64_t v = rm_read(cpu, in, ss);
	if (in->opcode & 8)
		v = sext(v, ss);
	reg_set(cpu, in->reg, in->opsize, in->rex, v);
}

/* 63: MOVSXD in 64-bit mode; ARPL elsewhere (SDM vol. 2A, ARPL: #UD in
 * real and virtual-8086 mode). */
void h_movsxd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode != EMU_MODE_LONG64) {
		if (cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_V86)
			emu_raise_noerr(cpu, X86_EXC_UD);
		uint64_t d = rm_read(cpu, in, 2), s = reg_get(cpu, in->reg, 2, false);
		if ((d & 3) < (s & 3)) {
			rm_write(cpu, in, 2, (d & ~3ull) | (s & 3));
			emu_flags_store(cpu, X86_FLAG_ZF, X86_FLAG_ZF);
		} else {
			emu_flags_store(cpu, X86_FLAG_ZF, 0);
		}
		return;
	}
	unsigned ss = in->opsize == 8 ? 4 : in->opsize;
	reg_set(cpu, in->reg, in->opsize, in->rex, sext(rm_read(cpu, in, ss), ss));
}

/* XCHG with memory is always locked (SDM vol. 2B, XCHG). */
void h_xchg_rm_r(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t r = reg_get(cpu, in->reg, size, in->rex);
	if (in->mod == 3) {
		uint64_t o = reg_get(cpu, in->rm, size, in->rex);
		reg_set(cpu, in->rm, size, in->rex, r);
		reg_set(cpu, in->reg, size, in->rex, o);
		return;
	}
	uint64_t ea = emu_insn_ea(cpu, in), o;
	void *p = emu_mem_ptr(cpu, in->seg, ea, size, true);
	if (p) {
		o = emu_host_atomic(p, size, EMU_ATOMIC_XCHG, r);
	} else {
		o = emu_read(cpu, in->seg, ea, size);
		emu_write(cpu, in->seg, ea, size, r);
	}
	reg_set(cpu, in->reg, size, in->rex, o);
}

/* 90-97: XCHG rAX, r; 90 without REX.B is NOP (F3 90 is PAUSE). */
void h_xchg_ax(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, r = in->rm;
	if (r == RAX)
		return;
	uint64_t a = reg_get(cpu, RAX, size, false), b = reg_get(cpu, r, size, false);
	reg_set(cpu, RAX, size, false, b);
	reg_set(cpu, r, size, false, a);
}

void h_nop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)cpu;
	(void)in;
}

static void sub_flags(struct emu_cpu *cpu, unsigned size, uint64_t a, uint64_t b)
{
	uint64_t m = emu_size_mask(size);
	lf_set(cpu, LF_SUB, size, (a - b) & m, a & m, b & m);
}

void h_xadd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t m = emu_size_mask(size), s = reg_get(cpu, in->reg, size, in->rex), d;
	if (in->mod == 3) {
		d = reg_get(cpu, in->rm, size, in->rex);
		reg_set(cpu, in->reg, size, in->rex, d);
		reg_set(cpu, in->rm, size, in->rex, d + s);
	} else {
		uint64_t ea = emu_insn_ea(cpu, in);
		void *p = emu_mem_ptr(cpu, in->seg, ea, size, true);
		if (p) {
			d = emu_host_atomic(p, size, EMU_ATOMIC_ADD, s);
		} else {
			d = emu_read(cpu, in->seg, ea, size);
			emu_write(cpu, in->seg, ea, size, d + s);
		}
		reg_set(cpu, in->reg, size, in->rex, d);
	}
	lf_set(cpu, LF_ADD, size, (d + s) & m, d & m, s & m);
}

void h_cmpxchg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t acc = reg_get(cpu, RAX, size, false), src = reg_get(cpu, in->reg, size, in->rex), d;
	if (in->mod == 3) {
		d = reg_get(cpu, in->rm, size, in->rex);
		sub_flags(cpu, size, acc, d);
		if (d == acc)
			reg_set(cpu, in->rm, size, in->rex, src);
		else
			reg_set(cpu, RAX, size, false, d);
		return;
	}
	uint64_t ea = emu_insn_ea(cpu, in);
	void *p = emu_mem_ptr(cpu, in->seg, ea, size, true);
	if (p) {
		d = acc;
		emu_host_cmpxchg(p, size, &d, src);
	} else {
		/* The destination is always written (SDM vol. 2A, CMPXCHG). */
		d = emu_read(cpu, in->seg, ea, size);
		emu_write(cpu, in->seg, ea, size, d == acc ? src : d);
	}
	sub_flags(cpu, size, acc, d);
	if (d != acc)
		reg_set(cpu, RAX, size, false, d);
}

/* CMPXCHG8B / CMPXCHG16B (0F C7 /1, memory only). */
void h_cmpxchg8b(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod == 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	uint64_t ea = emu_insn_ea(cpu, in);
	bool ok;
	if (in->opsize == 8) {
		if (ea & 15)
			emu_raise(cpu, X86_EXC_GP, 0);
		unsigned __int128 exp = ((unsigned __int128)cpu->gpr[RDX] << 64) | cpu->gpr[RAX];
		unsigned __int128 nv = ((unsigned __int128)cpu->gpr[RCX] << 64) | cpu->gpr[RBX], cur;
		void *p = emu_mem_ptr(cpu, in->seg, ea, 16, true);
		if (p) {
			cur = exp;
			ok = emu_host_cmpxchg16(p, &cur, nv);
		} else {
			uint64_t lo = emu_read(cpu, in->seg, ea, 8), hi = emu_read(cpu, in->seg, ea + 8, 8);
			cur = ((unsigned __int128)hi << 64) | lo;
			ok = cur == exp;
			unsigned __int128 w = ok ? nv : cur;
			emu_write(cpu, in->seg, ea, 8, (uint64_t)w);
			emu_write(cpu, in->seg, ea + 8, 8, (uint64_t)(w >> 64));
		}
		if (!ok) {
			cpu->gpr[RAX] = (uint64_t)cur;
			cpu->gpr[RDX] = (uint64_t)(cur >> 64);
		}
	} else {
		uint64_t exp = (cpu->gpr[RDX] << 32) | (uint32_t)cpu->gpr[RAX];
		uint64_t nv = (cpu->gpr[RCX] << 32) | (uint32_t)cpu->gpr[RBX], cur;
		void *p = emu_mem_ptr(cpu, in->seg, ea, 8, true);
		if (p) {
			cur = exp;
			ok = emu_host_cmpxchg(p, 8, &cur, nv);
		} else {
			cur = emu_read(cpu, in->seg, ea, 8);
			ok = cur == exp;
			emu_write(cpu, in->seg, ea, 8, ok ? nv : cur);
		}
		if (!ok) {
			cpu->gpr[RAX] = (uint32_t)cur;
			cpu->gpr[RDX] = (uint32_t)(cur >> 32);
		}
	}
	emu_flags_store(cpu, X86_FLAG_ZF, ok ? X86_FLAG_ZF : 0);
}

void h_bswap(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned r = in->rm;
	if (in->opsize == 8)
		cpu->gpr[r] = __builtin_bswap64(cpu->gpr[r]);
	else if (in->opsize == 4)
		cpu->gpr[r] = __builtin_bswap32((uint32_t)cpu->gpr[r]);
	else
		cpu->gpr[r] &= ~0xffffull;  /* 16-bit BSWAP is undefined; it clears the word on Intel cores */
}

/* MOVBE (0F 38 F0/F1 without F2): memory operand only. */
void h_movbe(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod == 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	unsigned size = in->opsize;
	uint64_t ea = emu_insn_ea(cpu, in), v;
	if (in->opcode == 0xf0) {
		v = emu_read(cpu, in->seg, ea, size);
	} else {
		v = reg_get(cpu, in->reg, size, in->rex);
	}
	v = size == 8 ? __builtin_bswap64(v) : size == 4 ? __builtin_bswap32((uint32_t)v) : __builtin_bswap16((uint16_t)v);
	if (in->opcode == 0xf0)
		reg_set(cpu, in->reg, size, in->rex, v);
	else
		emu_write(cpu, in->seg, ea, size, v);
}

/* CMOVcc: the source is read even when the condition is false, and a
 * 32-bit destination is zero-extended either way (SDM vol. 2A, CMOVcc). */
void h_cmov(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = rm_read(cpu, in, in->opsize);
	if (emu_cond(cpu, in->opcode & 15))
		reg_set(cpu, in->reg, in->opsize, in->rex, v);
	else if (in->opsize == 4)
		reg_set(cpu, in->reg, 4, in->rex, cpu->gpr[in->reg]);
}

void h_setcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	rm_write(cpu, in, 1, emu_cond(cpu, in->opcode & 15));
}

/* 98: CBW/CWDE/CDQE; 99: CWD/CDQ/CQO. */
void h_cbw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	reg_set(cpu, RAX, size, false, sext(cpu->gpr[RAX], size / 2));
}

void h_cwd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	reg_set(cpu, RDX, size, false, msb(cpu->gpr[RAX], size) ? ~0ull : 0);
}

/* LAHF/SAHF: SF ZF 0 AF 0 PF 1 CF <-> AH.  In 64-bit mode they need
 * CPUID.80000001H:ECX.LAHF-SAHF, which the engine advertises. */
void h_lahf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t f = emu_get_rflags(cpu) & 0xd7;
	reg_set(cpu, 4, 1, false, f | 2);
}

void h_sahf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint32_t ah = (uint32_t)(cpu->gpr[RAX] >> 8);
	emu_flags_store(cpu, X86_FLAG_SF | X86_FLAG_ZF | X86_FLAG_AF | X86_FLAG_PF | X86_FLAG_CF, ah);
}

void h_xlat(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a = (cpu->gpr[RBX] + (cpu->gpr[RAX] & 0xff)) & emu_size_mask(in->adsize);
	reg_set(cpu, RAX, 1, false, emu_read(cpu, in->seg, a, 1));
}

/* ---- forms specialised at decode (opcode table: handlers.c) ----
 * 32- and 64-bit register moves, loads and stores, and byte/word
 * zero-extending loads: the commonest instructions of compiled code.
 * Semantics are the generic handlers'. */
#define MOV_FORMS(size)                                                                          \
	static void mov_to_rm_##size(struct emu_cpu *cpu, const struct emu_insn *in)             \
	{                                                                                        \
		reg_set(cpu, in->rm, size, true, cpu->gpr[in->reg]);                             \
	}                                                                                        \
	static void mov_to_reg_##size(struct emu_cpu *cpu, const struct emu_insn *in)            \
	{                                                                                        \
		reg_set(cpu, in->reg, size, true, cpu->gpr[in->rm]);                             \
	}                                                                                        \
	static void mov_load_##size(struct emu_cpu *cpu, const struct emu_insn *in)              \
	{                                                                                        \
		reg_set(cpu, in->reg, size, true, emu_read(cpu, in->seg, emu_insn_ea(cpu, in), size)); \
	}                                                                                        \
	static void mov_store_##size(struct emu_cpu *cpu, const struct emu_insn *in)             \
	{                                                                                        \
		emu_write(cpu, in->seg, emu_insn_ea(cpu, in), size, cpu->gpr[in->reg]);              \
	}                                                                                        \
	static void lea_##size(struct emu_cpu *cpu, const struct emu_insn *in)                   \
	{                                                                                        \
		reg_set(cpu, in->reg, size, true, emu_insn_ea(cpu, in));                             \
	}
MOV_FORMS(4)
MOV_FORMS(8)

static void movzx_load_b(struct emu_cpu *cpu, const struct emu_insn *in)
{
	reg_set(cpu, in->reg, in->opsize, true, emu_read(cpu, in->seg, emu_insn_ea(cpu, in), 1));
}

static void movzx_load_w(struct emu_cpu *cpu, const struct emu_insn *in)
{
	reg_set(cpu, in->reg, in->opsize, true, emu_read(cpu, in->seg, emu_insn_ea(cpu, in), 2));
}

const struct emu_forms int_mov_store_forms = { .r32 = mov_to_rm_4, .r64 = mov_to_rm_8, .m32 = mov_store_4, .m64 = mov_store_8 };
const struct emu_forms int_mov_load_forms = { .r32 = mov_to_reg_4, .r64 = mov_to_reg_8, .m32 = mov_load_4, .m64 = mov_load_8 };
const struct emu_forms int_lea_forms = { .m32 = lea_4, .m64 = lea_8 };
const struct emu_forms int_movzx_b_forms = { .m32 = movzx_load_b, .m64 = movzx_load_b };
const struct emu_forms int_movzx_w_forms = { .m32 = movzx_load_w, .m64 = movzx_load_w };
