/* Internal declarations shared by the core module's files: lazy flags
 * and the registration functions of each instruction
 * group.  Other modules use emu.h. */
#ifndef VESSEL_CPU_EMU_CORE_CORE_H
#define VESSEL_CPU_EMU_CORE_CORE_H

#include "cpu/emu/emu.h"
#include "cpu/emu/operand.h"

/* ---- flags.c: lazy flags (docs/architecture.md "Lazy flags") ----
 * lf.op = kind | size (bytes).  LF_NONE: the arithmetic flags are in
 * cpu->rflags already. */
enum {
	LF_NONE = 0 << 4,
	LF_ADD = 1 << 4,     /* ADD, ADC: res = src1 + src2 (+ carry) */
	LF_SUB = 2 << 4,     /* SUB, SBB, CMP, NEG: res = src1 - src2 (- borrow) */
	LF_LOGIC = 3 << 4,   /* AND, OR, XOR, TEST: CF = OF = 0 */
	LF_INC = 4 << 4,     /* src2 holds the preserved CF */
	LF_DEC = 5 << 4,
	LF_SHL = 6 << 4,     /* src1 = operand, src2 = masked count (nonzero) */
	LF_SHR = 7 << 4,
	LF_SAR = 8 << 4,
};
#define LF_SIZE(op) ((op) & 0xf)
#define LF_KIND(op) ((op) & ~0xfu)

static inline void lf_set(struct emu_cpu *cpu, uint32_t op, unsigned size, uint64_t res, uint64_t s1, uint64_t s2)
{
	cpu->lf.op = op | size;
	cpu->lf.res = res;
	cpu->lf.src1 = s1;
	cpu->lf.src2 = s2;
}

uint32_t emu_flags_arith(const struct emu_cpu *cpu);   /* CF..OF of the lazy state */
bool emu_flag_cf(const struct emu_cpu *cpu);
/* Condition cc (SDM vol. 1, appendix B) from the materialized flags;
 * emu_cond() below is the entry point. */
bool emu_cond_flags(const struct emu_cpu *cpu, unsigned cc);
/* Condition cc, with the commonest cases inline: after a logic operation
 * (CF = OF = 0) and after CMP/SUB (the comparison itself), every
 * condition but parity follows from the recorded operands; after any
 * other operation, ZF and SF follow from its result. */
static inline bool emu_cond(const struct emu_cpu *cpu, unsigned cc)
{
	const struct emu_lazy_flags *lf = &cpu->lf;
	unsigned size = LF_SIZE(lf->op);
	uint64_t m = emu_size_mask(size);
	if (LF_KIND(lf->op) == LF_NONE)
		return emu_cond_flags(cpu, cc);
	uint64_t r = lf->res & m;
	bool zf = r == 0, sf = (r >> (size * 8 - 1)) & 1;
	/* ZF and SF come straight from the result for every kind. */
	if ((cc >> 1) == 2)
		return zf ^ (cc & 1);                            /* E / NE */
	if ((cc >> 1) == 4)
		return sf ^ (cc & 1);                            /* S / NS */
	if (LF_KIND(lf->op) == LF_SUB) {
		uint64_t a = lf->src1 & m, b = lf->src2 & m;
		/* CMP/SUB without borrow-in: r == a - b exactly (SBB may differ). */
		if (r == ((a - b) & m)) {
			unsigned sh = 64 - size * 8;
			int64_t sa = (int64_t)(a << sh), sb = (int64_t)(b << sh);
			switch (cc >> 1) {
			case 1: return (a < b) ^ (cc & 1);            /* B / AE */
			case 3: return (a <= b) ^ (cc & 1);           /* BE / A */
			case 6: return (sa < sb) ^ (cc & 1);          /* L / GE */
			case 7: return (sa <= sb) ^ (cc & 1);         /* LE / G */
			default: break;
			}
		}
	} else if (LF_KIND(lf->op) == LF_LOGIC) {
		switch (cc >> 1) {
		case 0: case 1: return cc & 1;                   /* O / NO, B / AE: OF = CF = 0 */
		case 3: return zf ^ (cc & 1);                    /* BE / A */
		case 6: return sf ^ (cc & 1);                    /* L / GE */
		case 7: return (zf || sf) ^ (cc & 1);            /* LE / G */
		default: break;
		}
	}
	return emu_cond_flags(cpu, cc);
}
/* Replaces the arithmetic flags selected by mask with val's bits (eager). */
void emu_flags_store(struct emu_cpu *cpu, uint32_t mask, uint32_t val);

/* ---- instruction groups ---- */
void emu_int_arith_register(void);
void emu_int_stack_register(void);
void emu_int_shift_register(void);
void emu_int_muldiv_register(void);
void emu_int_move_register(void);
void emu_int_control_register(void);
void emu_int_bit_register(void);
void emu_int_string_register(void);
void emu_int_misc_register(void);

#endif
