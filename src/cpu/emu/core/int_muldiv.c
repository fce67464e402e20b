/* MUL, IMUL (one-, two- and three-operand forms), DIV, IDIV (SDM vol. 2A
 * "MUL", "IMUL", "DIV", "IDIV").  MUL/IMUL set CF = OF when the high half
 * is significant; SF, ZF, AF, PF are undefined and follow the low half
 * here.  DIV/IDIV raise #DE on a zero divisor or a quotient too large for
 * its register, and leave the flags alone (all undefined). */
#include "cpu/emu/core/core.h"

static void mul_flags(struct emu_cpu *cpu, unsigned size, uint64_t lo, bool ovf)
{
	lf_set(cpu, LF_LOGIC, size, lo, 0, 0);
	emu_flags_store(cpu, X86_FLAG_CF | X86_FLAG_OF | X86_FLAG_AF, ovf ? X86_FLAG_CF | X86_FLAG_OF : 0);
}

void h_mul(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize;
	uint64_t b = rm_read(cpu, in, size);
	bool sgn = ((in->modrm >> 3) & 7) == 5;
	switch (size) {
	case 1: {
		uint16_t r = sgn ? (uint16_t)((int8_t)cpu->gpr[RAX] * (int8_t)b) : (uint16_t)((uint8_t)cpu->gpr[RAX] * (uint8_t)b);
		reg_set(cpu, RAX, 2, false, r);
		mul_flags(cpu, 1, r, sgn ? (int16_t)r != (int8_t)r : (r >> 8) != 0);
		break;
	}
	case 2: {
		uint32_t r = sgn ? (uint32_t)((int16_t)cpu->gpr[RAX] * (int16_t)b)
				 : (uint32_t)(uint16_t)cpu->gpr[RAX] * (uint16_t)b;
		reg_set(cpu, RAX, 2, false, r);
		reg_set(cpu, RDX, 2, false, r >> 16);
		mul_flags(cpu, 2, r, sgn ? (int32_t)r != (int16_t)r : (r >> 16) != 0);
		break;
	}
	case 4: {
		uint64_t r = sgn ? (uint64_t)((int64_t)(int32_t)cpu->gpr[RAX] * (int32_t)b)
				 : (uint64_t)(uint32_t)cpu->gpr[RAX] * (uint32_t)b;
		reg_set(cpu, RAX, 4, false, r);
		reg_set(cpu, RDX, 4, false, r >> 32);
		mul_flags(cpu, 4, r, sgn ? (int64_t)r != (int32_t)r : (r >> 32) != 0);
		break;
	}
	default: {
		unsigned __int128 r = sgn ? (unsigned __int128)((__int128)(int64_t)cpu->gpr[RAX] * (int64_t)b)
					  : (unsigned __int128)cpu->gpr[RAX] * b;
		cpu->gpr[RAX] = (uint64_t)r;
		cpu->gpr[RDX] = (uint64_t)(r >> 64);
		bool ovf = sgn ? (__int128)r != (int64_t)(uint64_t)r : (r >> 64) != 0;
		mul_flags(cpu, 8, (uint64_t)r, ovf);
		break;
	}
	}
}

/* Two- and three-operand IMUL: truncated product into a register. */
static void imul_to_reg(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t a, uint64_t b)
{
	unsigned size = in->opsize;
	__int128 p = (__int128)(int64_t)sext(a, size) * (int64_t)sext(b, size);
	uint64_t lo = (uint64_t)p & emu_size_mask(size);
	bool ovf = p != (__int128)(int64_t)sext(lo, size);
	reg_set(cpu, in->reg, size, in->rex, lo);
	mul_flags(cpu, size, lo, ovf);
}

void h_imul_r_rm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t b = rm_read(cpu, in, in->opsize);
	imul_to_reg(cpu, in, reg_get(cpu, in->reg, in->opsize, in->rex), b);
}

void h_imul_r_rm_imm(struct emu_cpu *cpu, const struct emu_insn *in)
{
	imul_to_reg(cpu, in, rm_read(cpu, in, in->opsize), in->imm);
}

void h_div(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, bits = size * 8;
	uint64_t m = emu_size_mask(size);
	uint64_t d = rm_read(cpu, in, size);
	bool sgn = ((in->modrm >> 3) & 7) == 7;
	if (d == 0)
		emu_raise_noerr(cpu, X86_EXC_DE);
	unsigned __int128 n;
	if (size == 1)
		n = cpu->gpr[RAX] & 0xffff;
	else
		n = ((unsigned __int128)(cpu->gpr[RDX] & m) << bits) | (cpu->gpr[RAX] & m);
	uint64_t q, r;
	if (!sgn) {
		unsigned __int128 qq = n / d;
		if (qq > m)
			emu_raise_noerr(cpu, X86_EXC_DE);
		q = (uint64_t)qq;
		r = (uint64_t)(n % d);
	} else {
		/* Sign-extend the 2*bits dividend to 128 bits. */
		__int128 sn = (__int128)(n << (128 - 2 * bits)) >> (128 - 2 * bits);
		int64_t sd = (int64_t)sext(d, size);
		__int128 qq, rr;
		if (sd == -1) {
			/* Avoid the host's overflow trap on INT128_MIN / -1. */
			qq = (__int128)((unsigned __int128)0 - (unsigned __int128)sn);
			rr = 0;
		} else {
			qq = sn / sd;
			rr = sn % sd;
		}
		__int128 lim = (__int128)1 << (bits - 1);
		if (qq >= lim || qq < -lim)
			emu_raise_noerr(cpu, X86_EXC_DE);
		q = (uint64_t)qq & m;
		r = (uint64_t)rr & m;
	}
	if (size == 1) {
		reg_set(cpu, RAX, 2, false, (r << 8) | q);
	} else {
		reg_set(cpu, RAX, size, false, q);
		reg_set(cpu, RDX, size, false, r);
	}
}

