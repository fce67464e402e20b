/* Internal declarations shared by the core module's files: lazy flags
 * and the handlers each instruction family gives the opcode table.
 * Other modules use emu.h. */
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

/* ---- int_*.c: the general-purpose instructions' handlers and their
 * specialised forms, for the opcode table (handlers.c) ---- */
#include "cpu/emu/core/opcodes.h"

/* int_arith.c: ADD..CMP, TEST, INC/DEC, NOT/NEG */
EMU_HANDLER(h_alu_rm_r); EMU_HANDLER(h_alu_r_rm); EMU_HANDLER(h_alu_acc_imm); EMU_HANDLER(h_grp1);
EMU_HANDLER(h_test_rm_r); EMU_HANDLER(h_test_acc_imm); EMU_HANDLER(h_test_rm_imm); EMU_HANDLER(h_incdec_r);
EMU_HANDLER(h_inc_rm); EMU_HANDLER(h_dec_rm); EMU_HANDLER(h_not); EMU_HANDLER(h_neg);
/* [operation (ModRM.reg of group 1: ADD, OR, ADC, SBB, AND, SUB, XOR, CMP)] */
extern const struct emu_forms int_alu_rm_r_forms[8], int_alu_r_rm_forms[8], int_alu_ri_forms[8];
extern const struct emu_forms int_test_rr_forms;
/* int_bit.c: BT/BTS/BTR/BTC, BSF/BSR, TZCNT/LZCNT, POPCNT */
EMU_HANDLER(h_bt_r); EMU_HANDLER(h_bt_imm); EMU_HANDLER(h_bsf_bsr); EMU_HANDLER(h_tzcnt_lzcnt); EMU_HANDLER(h_popcnt);
/* int_control.c: near jumps, calls, returns, LOOP */
EMU_HANDLER(h_jcc); EMU_HANDLER(h_jmp_rel); EMU_HANDLER(h_call_rel); EMU_HANDLER(h_call_rm); EMU_HANDLER(h_jmp_rm);
EMU_HANDLER(h_ret); EMU_HANDLER(h_loop);
extern const struct emu_forms int_jcc_forms[16];   /* [condition] */
extern const struct emu_forms int_call_rel64_forms, int_ret64_forms;
/* int_misc.c: BCD, flag operations, BOUND, RDRAND, CRC32 */
EMU_HANDLER(h_daa_das); EMU_HANDLER(h_aaa_aas); EMU_HANDLER(h_aam); EMU_HANDLER(h_aad); EMU_HANDLER(h_salc);
EMU_HANDLER(h_flagop); EMU_HANDLER(h_bound); EMU_HANDLER(h_rdrand); EMU_HANDLER(h_crc32);
/* int_move.c: moves, exchanges, conversions, CMPXCHG, XADD, CMOVcc, SETcc, NOP */
EMU_HANDLER(h_mov_rm_r); EMU_HANDLER(h_mov_r_rm); EMU_HANDLER(h_mov_rm_sreg); EMU_HANDLER(h_lea);
EMU_HANDLER(h_mov_moffs); EMU_HANDLER(h_mov_r_imm); EMU_HANDLER(h_mov_rm_imm); EMU_HANDLER(h_movzx);
EMU_HANDLER(h_movsxd); EMU_HANDLER(h_xchg_rm_r); EMU_HANDLER(h_xchg_ax); EMU_HANDLER(h_nop); EMU_HANDLER(h_xadd);
EMU_HANDLER(h_cmpxchg); EMU_HANDLER(h_cmpxchg8b); EMU_HANDLER(h_bswap); EMU_HANDLER(h_movbe); EMU_HANDLER(h_cmov);
EMU_HANDLER(h_setcc); EMU_HANDLER(h_cbw); EMU_HANDLER(h_cwd); EMU_HANDLER(h_sahf); EMU_HANDLER(h_lahf);
EMU_HANDLER(h_xlat);
extern const struct emu_forms int_mov_store_forms, int_mov_load_forms, int_lea_forms;
extern const struct emu_forms int_movzx_b_forms, int_movzx_w_forms;
/* int_muldiv.c */
EMU_HANDLER(h_mul); EMU_HANDLER(h_div); EMU_HANDLER(h_imul_r_rm); EMU_HANDLER(h_imul_r_rm_imm);
/* int_shift.c: group 2, SHLD/SHRD */
EMU_HANDLER(h_grp2); EMU_HANDLER(h_shxd);
extern const struct emu_forms int_shl_ri_forms, int_shr_ri_forms, int_sar_ri_forms, int_rol_ri_forms,
	int_ror_ri_forms;
/* int_stack.c */
EMU_HANDLER(h_push_r); EMU_HANDLER(h_pop_r); EMU_HANDLER(h_push_imm); EMU_HANDLER(h_push_rm); EMU_HANDLER(h_pop_rm);
EMU_HANDLER(h_push_sreg); EMU_HANDLER(h_pusha); EMU_HANDLER(h_popa); EMU_HANDLER(h_pushf); EMU_HANDLER(h_popf);
EMU_HANDLER(h_enter); EMU_HANDLER(h_leave);
extern const struct emu_forms int_push_r64_forms, int_pop_r64_forms;
/* int_string.c */
EMU_HANDLER(h_movs); EMU_HANDLER(h_cmps); EMU_HANDLER(h_stos); EMU_HANDLER(h_lods); EMU_HANDLER(h_scas);
EMU_HANDLER(h_ins); EMU_HANDLER(h_outs);

#endif
