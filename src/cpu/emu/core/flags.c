/* Lazy arithmetic flags (docs/architecture.md "Lazy flags"): instructions record
 * their result and operands; CF, PF, AF, ZF, SF and OF are computed only
 * when something reads them (SDM vol. 1, 3.4.3.1 and appendix A). */
#include "cpu/emu/core/core.h"

static inline uint32_t parity(uint64_t res)
{
	/* PF: set if the low byte has an even number of 1 bits. */
	return (__builtin_popcount((unsigned)(res & 0xff)) & 1) ? 0 : X86_FLAG_PF;
}

static inline uint32_t zf_sf_pf(uint64_t res, unsigned size)
{
	uint64_t m = emu_size_mask(size);
	uint32_t f = parity(res);
	if ((res & m) == 0)
		f |= X86_FLAG_ZF;
	if (msb(res, size))
		f |= X86_FLAG_SF;
	return f;
}

uint32_t emu_flags_arith(const struct emu_cpu *cpu)
{
	const struct emu_lazy_flags *lf = &cpu->lf;
	unsigned size = LF_SIZE(lf->op);
	uint64_t r = lf->res, a = lf->src1, b = lf->src2;
	uint32_t f;
	switch (LF_KIND(lf->op)) {
	case LF_ADD:
		/* Carry out of the top bit, for ADD and ADC alike. */
		f = zf_sf_pf(r, size) | ((a ^ b ^ r) & X86_FLAG_AF);
		if (msb((a & b) | ((a | b) & ~r), size))
			f |= X86_FLAG_CF;
		if (msb((a ^ r) & (b ^ r), size))
			f |= X86_FLAG_OF;
		return f;
	case LF_SUB:
		/* Borrow into the top bit, for SUB, SBB, CMP and NEG. */
		f = zf_sf_pf(r, size) | ((a ^ b ^ r) & X86_FLAG_AF);
		if (msb((~a & b) | (~(a ^ b) & r), size))
			f |= X86_FLAG_CF;
		if (msb((a ^ b) & (a ^ r), size))
			f |= X86_FLAG_OF;
		return f;
	case LF_LOGIC:
		return zf_sf_pf(r, size);
	case LF_INC:
		f = zf_sf_pf(r, size) | ((a ^ 1 ^ r) & X86_FLAG_AF) | (uint32_t)(b & X86_FLAG_CF);
		if ((r & emu_size_mask(size)) == (1ull << (size * 8 - 1)))
			f |= X86_FLAG_OF;
		return f;
	case LF_DEC:
		f = zf_sf_pf(r, size) | ((a ^ 1 ^ r) & X86_FLAG_AF) | (uint32_t)(b & X86_FLAG_CF);
		if ((r & emu_size_mask(size)) == (1ull << (size * 8 - 1)) - 1)
			f |= X86_FLAG_OF;
		return f;
	case LF_SHL:
		/* CF: the last bit shifted out; OF (count 1): MSB(result) xor CF.
		 * AF is undefined: 0, like current Intel cores. */
		f = zf_sf_pf(r, size);
		if (b <= size * 8 && ((a >> (size * 8 - b)) & 1))
			f |= X86_FLAG_CF;
		if (msb(r, size) ^ !!(f & X86_FLAG_CF))
			f |= X86_FLAG_OF;
		return f;
	case LF_SHR:
		f = zf_sf_pf(r, size);
		if (b <= 64 && ((a >> (b - 1)) & 1))
			f |= X86_FLAG_CF;
		if (msb(a, size))
			f |= X86_FLAG_OF;  /* count 1: MSB of the original operand */
		return f;
	case LF_SAR: {
		f = zf_sf_pf(r, size);
		int64_t s = (int64_t)sext(a, size);
		unsigned c = b - 1 > 63 ? 63 : (unsigned)(b - 1);
		if ((s >> c) & 1)
			f |= X86_FLAG_CF;
		return f;  /* OF = 0 for count 1 */
	}
	default:
		return (uint32_t)cpu->rflags & X86_FLAGS_ARITH;
	}
}

bool emu_flag_cf(const struct emu_cpu *cpu)
{
	const struct emu_lazy_flags *lf = &cpu->lf;
	unsigned size = LF_SIZE(lf->op);
	uint64_t r = lf->res, a = lf->src1, b = lf->src2;
	switch (LF_KIND(lf->op)) {
	case LF_ADD:
		return msb((a & b) | ((a | b) & ~r), size);
	case LF_SUB:
		return msb((~a & b) | (~(a ^ b) & r), size);
	case LF_LOGIC:
		return false;
	case LF_INC:
	case LF_DEC:
		return b & 1;
	case LF_NONE:
		return cpu->rflags & X86_FLAG_CF;
	default:
		return emu_flags_arith(cpu) & X86_FLAG_CF;
	}
}

bool emu_cond_flags(const struct emu_cpu *cpu, unsigned cc)
{
	uint32_t f = emu_flags_arith(cpu);
	bool v;
	switch (cc >> 1) {
	case 0: v = f & X86_FLAG_OF; break;
	case 1: v = f & X86_FLAG_CF; break;
	case 2: v = f & X86_FLAG_ZF; break;
	case 3: v = f & (X86_FLAG_CF | X86_FLAG_ZF); break;
	case 4: v = f & X86_FLAG_SF; break;
	case 5: v = f & X86_FLAG_PF; break;
	case 6: v = !!(f & X86_FLAG_SF) != !!(f & X86_FLAG_OF); break;
	default: v = (f & X86_FLAG_ZF) || (!!(f & X86_FLAG_SF) != !!(f & X86_FLAG_OF)); break;
	}
	return v ^ (cc & 1);
}

void emu_flags_store(struct emu_cpu *cpu, uint32_t mask, uint32_t val)
{
	uint32_t cur = emu_flags_arith(cpu);
	cpu->rflags = (cpu->rflags & ~(uint64_t)X86_FLAGS_ARITH) | ((cur & ~mask) | (val & mask));
	cpu->lf.op = LF_NONE;
}

uint64_t emu_get_rflags(struct emu_cpu *cpu)
{
	return (cpu->rflags & ~(uint64_t)X86_FLAGS_ARITH) | emu_flags_arith(cpu) | X86_FLAG_FIXED;
}

void emu_set_rflags(struct emu_cpu *cpu, uint64_t value)
{
	/* Bits 3, 5, 15 and 22-63 are reserved 0, bit 1 reserved 1 (SDM vol. 1, 3.4.3). */
	cpu->rflags = (value & 0x3f7fd5ull) | X86_FLAG_FIXED;
	cpu->lf.op = LF_NONE;
}
