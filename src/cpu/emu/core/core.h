/* Internal declarations shared by the core module's files: lazy flags,
 * operand access, and the registration functions of each instruction
 * group.  Other modules use emu.h. */
#ifndef VESSEL_CPU_EMU_CORE_CORE_H
#define VESSEL_CPU_EMU_CORE_CORE_H

#include "cpu/emu/emu.h"

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

/* ---- operands ---- */
static inline uint64_t reg_get(const struct emu_cpu *cpu, unsigned r, unsigned size, bool rex)
{
	/* Without REX, byte registers 4-7 are AH, CH, DH, BH (SDM vol. 2A, 2.2.1.2). */
	if (size == 1) {
		if (!rex && r >= 4 && r < 8)
			return (cpu->gpr[r - 4] >> 8) & 0xff;
		return cpu->gpr[r] & 0xff;
	}
	return cpu->gpr[r] & emu_size_mask(size);
}

static inline void reg_set(struct emu_cpu *cpu, unsigned r, unsigned size, bool rex, uint64_t v)
{
	switch (size) {
	case 1:
		if (!rex && r >= 4 && r < 8)
			cpu->gpr[r - 4] = (cpu->gpr[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
		else
			cpu->gpr[r] = (cpu->gpr[r] & ~0xffull) | (v & 0xff);
		break;
	case 2:
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		/* 32-bit results zero-extend into the full register (SDM vol. 1, 3.4.1.1). */
		cpu->gpr[r] = (uint32_t)v;
		break;
	default:
		cpu->gpr[r] = v;
		break;
	}
}

/* Effective address of the ModRM memory operand (SDM vol. 1, 3.7.5). */
static inline uint64_t insn_ea(const struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a = (uint64_t)(int64_t)in->disp;
	if (in->base != EMU_REG_NONE)
		a += cpu->gpr[in->base];
	if (in->index != EMU_REG_NONE)
		a += cpu->gpr[in->index] << in->scale;
	if (in->rip_rel)
		a += cpu->next_rip;
	return a & emu_size_mask(in->adsize);
}

static inline uint64_t rm_read(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	if (in->mod == 3)
		return reg_get(cpu, in->rm, size, in->rex);
	return emu_read(cpu, in->seg, insn_ea(cpu, in), size);
}

static inline void rm_write(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size, uint64_t v)
{
	if (in->mod == 3)
		reg_set(cpu, in->rm, size, in->rex, v);
	else
		emu_write(cpu, in->seg, insn_ea(cpu, in), size, v);
}

/* A read-modify-write memory operand.  Faults are precise (SDM vol. 3A
 * 6.5): an instruction whose write faults leaves the flags as they were,
 * so the write is checked before the read and any flag update.  On the
 * inline path a write-TLB hit proves the write cannot fault and serves
 * both accesses; otherwise emu_write_check() raises what the write would
 * (#PF with W set, as for any write). */
struct rmw_operand {
	void *host;           /* NULL: through emu_read/emu_write */
	int seg;
	uint64_t ea;
	unsigned size;
};

static inline uint64_t rmw_load(struct emu_cpu *cpu, struct rmw_operand *m, const struct emu_insn *in,
				unsigned size)
{
	m->seg = in->seg;
	m->ea = insn_ea(cpu, in);
	m->size = size;
	m->host = emu_write_ptr_fast(cpu, m->seg, m->ea, size);
	if (__builtin_expect(m->host != NULL, 1))
		return emu_host_load(m->host, size);
	emu_write_check(cpu, m->seg, m->ea, size);
	return emu_read(cpu, m->seg, m->ea, size);
}

/* Cannot fault after rmw_load. */
static inline void rmw_store(struct emu_cpu *cpu, const struct rmw_operand *m, uint64_t v)
{
	if (__builtin_expect(m->host != NULL, 1))
		emu_host_store(m->host, m->size, v);
	else
		emu_write(cpu, m->seg, m->ea, m->size, v);
}

static inline uint64_t sext(uint64_t v, unsigned size)
{
	switch (size) {
	case 1: return (uint64_t)(int64_t)(int8_t)v;
	case 2: return (uint64_t)(int64_t)(int16_t)v;
	case 4: return (uint64_t)(int64_t)(int32_t)v;
	default: return v;
	}
}

static inline uint64_t msb(uint64_t v, unsigned size)
{
	return (v >> (size * 8 - 1)) & 1;
}

/* Stack (SDM vol. 1, 6.2): the stack address size is SS.B (64 in long mode). */
static inline unsigned stack_asize(const struct emu_cpu *cpu)
{
	if (cpu->mode == EMU_MODE_LONG64)
		return 8;
	return (cpu->seg[SEG_SS].attr & (1u << 10)) ? 4 : 2;
}

static inline uint64_t sp_get(const struct emu_cpu *cpu)
{
	return cpu->gpr[RSP] & emu_size_mask(stack_asize(cpu));
}

static inline void sp_set(struct emu_cpu *cpu, uint64_t v)
{
	unsigned s = stack_asize(cpu);
	if (s == 8)
		cpu->gpr[RSP] = v;
	else if (s == 4)
		cpu->gpr[RSP] = (uint32_t)v;
	else
		cpu->gpr[RSP] = (cpu->gpr[RSP] & ~0xffffull) | (v & 0xffff);
}

/* Push: write first, then commit RSP, so a fault leaves RSP untouched. */
static inline void stack_push_val(struct emu_cpu *cpu, unsigned size, uint64_t v)
{
	uint64_t sp = (sp_get(cpu) - size) & emu_size_mask(stack_asize(cpu));
	emu_write(cpu, SEG_SS, sp, size, v);
	sp_set(cpu, sp);
}

/* The same for 64-bit operands, which exist only in 64-bit mode, where
 * the stack address size is 64 bits: for the specialized handlers. */
static inline void stack_push64(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t sp = cpu->gpr[RSP] - 8;
	emu_write(cpu, SEG_SS, sp, 8, v);
	cpu->gpr[RSP] = sp;
}

static inline uint64_t stack_pop64(struct emu_cpu *cpu)
{
	uint64_t sp = cpu->gpr[RSP];
	uint64_t v = emu_read(cpu, SEG_SS, sp, 8);
	cpu->gpr[RSP] = sp + 8;
	return v;
}

static inline uint64_t stack_pop_val(struct emu_cpu *cpu, unsigned size)
{
	uint64_t sp = sp_get(cpu);
	uint64_t v = emu_read(cpu, SEG_SS, sp, size);
	sp_set(cpu, sp + size);
	return v;
}

/* Near branch target: truncated to the operand size (SDM vol. 2A, JMP). */
static inline void branch_to(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t target)
{
	cpu->next_rip = target & emu_size_mask(in->opsize);
}

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
