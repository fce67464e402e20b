/* Shifts and rotates: group 2 (C0, C1, D0-D3: ROL ROR RCL RCR SHL SHR SAL
 * SAR) and SHLD/SHRD (SDM vol. 2B, "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR",
 * "SHLD", "SHRD").  The count is masked to 5 bits (6 with REX.W); a zero
 * count changes no flags.  Where the SDM leaves OF undefined (count > 1)
 * the count-1 formula is applied, as current Intel cores do. */
#include "cpu/emu/core/core.h"

static uint64_t shift_count(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t c = in->opcode == 0xd0 || in->opcode == 0xd1 ? 1
		   : in->opcode == 0xd2 || in->opcode == 0xd3 ? cpu->gpr[RCX] & 0xff : in->imm & 0xff;
	return c & (in->opsize == 8 ? 0x3f : 0x1f);
}

static uint64_t do_shift(struct emu_cpu *cpu, unsigned op, unsigned size, uint64_t v, unsigned c)
{
	unsigned bits = size * 8;
	uint64_t m = emu_size_mask(size), r;
	v &= m;
	switch (op) {
	case 0: {  /* ROL */
		unsigned k = c & (bits - 1);
		r = k ? ((v << k) | (v >> (bits - k))) & m : v;
		uint32_t cf = r & 1;
		emu_flags_store(cpu, X86_FLAG_CF | X86_FLAG_OF, cf | ((msb(r, size) ^ cf) ? X86_FLAG_OF : 0));
		return r;
	}
	case 1: {  /* ROR */
		unsigned k = c & (bits - 1);
		r = k ? ((v >> k) | (v << (bits - k))) & m : v;
		uint32_t cf = (uint32_t)msb(r, size);
		uint32_t of = (uint32_t)(msb(r, size) ^ ((r >> (bits - 2)) & 1));
		emu_flags_store(cpu, X86_FLAG_CF | X86_FLAG_OF, cf | (of ? X86_FLAG_OF : 0));
		return r;
	}
	case 2:    /* RCL: rotate the (bits+1)-bit value CF:v left */
	case 3: {  /* RCR */
		unsigned k = c % (bits + 1);
		uint64_t cf = emu_flag_cf(cpu);
		uint32_t of_rcr = (uint32_t)(msb(v, size) ^ cf);
		r = v;
		for (unsigned i = 0; i < k; i++) {
			if (op == 2) {
				uint64_t out = msb(r, size);
				r = ((r << 1) | cf) & m;
				cf = out;
			} else {
				uint64_t out = r & 1;
				r = (r >> 1) | (cf << (bits - 1));
				cf = out;
			}
		}
		uint32_t of = op == 2 ? (uint32_t)(msb(r, size) ^ cf) : of_rcr;
		emu_flags_store(cpu, X86_FLAG_CF | X86_FLAG_OF, (uint32_t)cf | (of ? X86_FLAG_OF : 0));
		return r;
	}
	case 4:
	case 6:    /* SHL/SAL */
		r = c >= 64 ? 0 : (v << c) & m;
		lf_set(cpu, LF_SHL, size, r, v, c);
		return r;
	case 5:    /* SHR */
		r = c >= 64 ? 0 : v >> c;
		lf_set(cpu, LF_SHR, size, r, v, c);
		return r;
	default: { /* SAR */
		int64_t s = (int64_t)sext(v, size);
		r = (uint64_t)(s >> (c > 63 ? 63 : c)) & m;
		lf_set(cpu, LF_SAR, size, r, v, c);
		return r;
	}
	}
}

void h_grp2(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, op = (in->modrm >> 3) & 7;
	unsigned c = (unsigned)shift_count(cpu, in);
	if (in->mod == 3) {
		uint64_t v = reg_get(cpu, in->rm, size, in->rex);
		if (c)
			reg_set(cpu, in->rm, size, in->rex, do_shift(cpu, op, size, v, c));
		else if (size == 4)
			reg_set(cpu, in->rm, size, in->rex, v);  /* a 32-bit destination is still zero-extended */
		return;
	}
	if (!c) {
		/* No flags, no write; the operand is still read. */
		emu_read(cpu, in->seg, emu_insn_ea(cpu, in), size);
		return;
	}
	struct rmw_operand m;
	uint64_t v = rmw_load(cpu, &m, in, size);
	rmw_store(cpu, &m, do_shift(cpu, op, size, v, c));
}

/* SHLD/SHRD: dst shifted with bits from src; for 16-bit operands and
 * counts above 16 the result is undefined: computed on src:dst:src. */
void h_shxd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->opsize, bits = size * 8;
	bool left = in->opcode < 0xa8;
	unsigned c = (unsigned)((in->opcode & 1) ? cpu->gpr[RCX] : in->imm) & (size == 8 ? 0x3f : 0x1f);
	uint64_t m = emu_size_mask(size), d;
	if (!c) {
		/* No flags, no write; a 32-bit register is still zero-extended. */
		d = rm_read(cpu, in, size);
		if (in->mod == 3 && size == 4)
			reg_set(cpu, in->rm, size, in->rex, d);
		return;
	}
	struct rmw_operand mem = { 0 };
	d = in->mod == 3 ? reg_get(cpu, in->rm, size, in->rex) : rmw_load(cpu, &mem, in, size);
	uint64_t s = reg_get(cpu, in->reg, size, in->rex), r;
	uint32_t cf;
	if (size == 2) {
		/* Work on 48 bits: d:s:d (left) or s:d (right, then s again). */
		uint64_t w = left ? (d << 32) | (s << 16) | d : (d) | (s << 16) | (d << 32);
		if (left) {
			r = (w << c) >> 32 & m;
			cf = (uint32_t)((w << (c - 1)) >> 47) & 1;
		} else {
			r = (w >> c) & m;
			cf = (uint32_t)(w >> (c - 1)) & 1;
		}
	} else if (left) {
		r = ((d << c) | (s >> (bits - c))) & m;
		cf = (uint32_t)(d >> (bits - c)) & 1;
	} else {
		r = ((d >> c) | (s << (bits - c))) & m;
		cf = (uint32_t)(d >> (c - 1)) & 1;
	}
	/* SF, ZF, PF from the result; OF set if the sign changed. */
	lf_set(cpu, LF_LOGIC, size, r, 0, 0);
	uint32_t of = (uint32_t)(msb(r, size) ^ msb(d, size));
	emu_flags_store(cpu, X86_FLAG_CF | X86_FLAG_OF | X86_FLAG_AF, cf | (of ? X86_FLAG_OF : 0));
	if (in->mod == 3)
		reg_set(cpu, in->rm, size, in->rex, r);
	else
		rmw_store(cpu, &mem, r);
}

/* ---- forms specialised at decode (opcode table: handlers.c) ----
 * SHL/SHR/SAR of a 32- or 64-bit register by an immediate (C1), the
 * shifts compiled code uses; semantics are h_grp2's. */
#define SHIFT_RI(name, size, expr, kind)                                                \
	static void name(struct emu_cpu *cpu, const struct emu_insn *in)                \
	{                                                                               \
		uint64_t v = cpu->gpr[in->rm] & emu_size_mask(size);                     \
		unsigned c = (unsigned)in->imm & (size == 8 ? 0x3f : 0x1f);              \
		if (c) {                                                                 \
			uint64_t r = (expr) & emu_size_mask(size);                       \
			lf_set(cpu, kind, size, r, v, c);                                \
			v = r;                                                           \
		}                                                                        \
		reg_set(cpu, in->rm, size, true, v);                                     \
	}
SHIFT_RI(shl_ri_4, 4, v << c, LF_SHL)
SHIFT_RI(shl_ri_8, 8, v << c, LF_SHL)
SHIFT_RI(shr_ri_4, 4, v >> c, LF_SHR)
SHIFT_RI(shr_ri_8, 8, v >> c, LF_SHR)
SHIFT_RI(sar_ri_4, 4, (uint64_t)((int64_t)(int32_t)v >> c), LF_SAR)
SHIFT_RI(sar_ri_8, 8, (uint64_t)((int64_t)v >> c), LF_SAR)

/* ROL/ROR of a 32- or 64-bit register by an immediate (C1 /0, /1): what
 * hash and checksum code (SHA-2, CRC, siphash) is made of.  CF and OF
 * only, as do_shift() sets them; the other flags stay. */
#define ROTATE_RI(name, size, left)                                                       \
	static void name(struct emu_cpu *cpu, const struct emu_insn *in)                  \
	{                                                                                 \
		const unsigned bits = size * 8;                                            \
		uint64_t v = cpu->gpr[in->rm] & emu_size_mask(size);                       \
		unsigned k = (unsigned)in->imm & (size == 8 ? 0x3f : 0x1f) & (bits - 1);   \
		if ((unsigned)in->imm & (size == 8 ? 0x3f : 0x1f)) {                       \
			uint64_t r = k ? ((left) ? (v << k) | (v >> (bits - k))            \
						 : (v >> k) | (v << (bits - k)))           \
					   & emu_size_mask(size)                             \
				       : v;                                                  \
			uint32_t msb_r = (uint32_t)(r >> (bits - 1)) & 1;                  \
			uint32_t cf = (left) ? (uint32_t)r & 1 : msb_r;                     \
			uint32_t of = (left) ? msb_r ^ cf : msb_r ^ ((uint32_t)(r >> (bits - 2)) & 1); \
			emu_flags_store(cpu, X86_FLAG_CF | X86_FLAG_OF, cf | (of ? X86_FLAG_OF : 0)); \
			v = r;                                                                 \
		}                                                                          \
		reg_set(cpu, in->rm, size, true, v);                                       \
	}
ROTATE_RI(rol_ri_4, 4, true)
ROTATE_RI(rol_ri_8, 8, true)
ROTATE_RI(ror_ri_4, 4, false)
ROTATE_RI(ror_ri_8, 8, false)

const struct emu_forms int_rol_ri_forms = { .r32 = rol_ri_4, .r64 = rol_ri_8 };
const struct emu_forms int_ror_ri_forms = { .r32 = ror_ri_4, .r64 = ror_ri_8 };
const struct emu_forms int_shl_ri_forms = { .r32 = shl_ri_4, .r64 = shl_ri_8 };
const struct emu_forms int_shr_ri_forms = { .r32 = shr_ri_4, .r64 = shr_ri_8 };
const struct emu_forms int_sar_ri_forms = { .r32 = sar_ri_4, .r64 = sar_ri_8 };
