#include "diff_flags.h"

#include <string.h>

#define CF X86_FLAG_CF
#define PF X86_FLAG_PF
#define AF X86_FLAG_AF
#define ZF X86_FLAG_ZF
#define SF X86_FLAG_SF
#define OF X86_FLAG_OF
#define DF X86_FLAG_DF
#define ALLF X86_FLAGS_ARITH

/* Flags a condition code tests (SDM vol. 1, appendix B). */
static uint32_t cond_reads(unsigned cc)
{
	static const uint32_t m[8] = { OF, CF, ZF, CF | ZF, SF, PF, SF | OF, ZF | SF | OF };
	return m[(cc & 15) >> 1];
}

static uint64_t count_reg(const struct emu_insn *in, const struct emu_cpu *cpu)
{
	return cpu->gpr[RCX] & emu_size_mask(in->adsize);
}

/* Shifts and rotates (SDM vol. 2B "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR"). */
static void shift(const struct emu_insn *in, const struct emu_cpu *cpu, struct diff_effect *e)
{
	unsigned op = (in->modrm >> 3) & 7, bits = in->opsize * 8;
	uint64_t cnt = in->opcode <= 0xc1 ? in->imm : in->opcode <= 0xd1 ? 1 : cpu->gpr[RCX];
	cnt &= in->opsize == 8 ? 63 : 31;
	if (cnt == 0)
		return;   /* a zero masked count affects no flags */
	if (op < 4) {
		e->reads = op >= 2 ? CF : 0;
		e->writes = CF | OF;
	} else {
		e->writes = ALLF;
		e->undef = AF;
		/* CF is undefined for SHL and SHR when the count reaches the
		 * operand size; SAR's last bit shifted out is the sign. */
		if (op != 7 && cnt >= bits)
			e->undef |= CF;
	}
	if (cnt != 1)
		e->undef |= OF;
}

/* SHLD/SHRD (SDM vol. 2B): a count above the operand size leaves the
 * destination and the flags undefined. */
static void double_shift(const struct emu_insn *in, const struct emu_cpu *cpu, struct diff_effect *e)
{
	uint64_t cnt = (in->opcode & 1) ? cpu->gpr[RCX] : in->imm;
	cnt &= in->opsize == 8 ? 63 : 31;
	if (cnt == 0)
		return;
	if (cnt > in->opsize * 8u) {
		e->dest_undef = true;
		return;
	}
	e->writes = ALLF;
	e->undef = AF | (cnt != 1 ? OF : 0);
}

static void alu_op(unsigned op, struct diff_effect *e)
{
	e->writes = ALLF;
	if (op == 2 || op == 3)
		e->reads = CF;                    /* ADC, SBB */
	if (op == 1 || op == 4 || op == 6)
		e->undef = AF;                    /* OR, AND, XOR: AF undefined */
}

static void map_1b(const struct emu_insn *in, const struct emu_cpu *cpu, struct diff_effect *e)
{
	unsigned op = in->opcode, reg = (in->modrm >> 3) & 7;
	if (op < 0x40 && (op & 7) < 6) {
		alu_op(op >> 3, e);
		return;
	}
	switch (op) {
	case 0x27: case 0x2f:                 /* DAA DAS */
		e->reads = AF | CF;
		e->writes = ALLF;
		e->undef = OF;
		return;
	case 0x37: case 0x3f:                 /* AAA AAS */
		e->reads = AF;
		e->writes = ALLF;
		e->undef = OF | SF | ZF | PF;
		return;
	case 0xd4: case 0xd5:                 /* AAM AAD */
		e->writes = ALLF;
		e->undef = OF | AF | CF;
		return;
	case 0x80: case 0x81: case 0x82: case 0x83:
		alu_op(reg, e);
		return;
	case 0x84: case 0x85: case 0xa8: case 0xa9:   /* TEST */
		alu_op(4, e);
		return;
	case 0x69: case 0x6b:                 /* IMUL: SF ZF AF PF undefined */
		e->writes = ALLF;
		e->undef = SF | ZF | AF | PF;
		return;
	case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		shift(in, cpu, e);
		return;
	case 0xf6: case 0xf7:
		if (reg <= 1)
			alu_op(4, e);
		else if (reg == 3)
			e->writes = ALLF;         /* NEG */
		else if (reg == 4 || reg == 5) {
			e->writes = ALLF;         /* MUL IMUL */
			e->undef = SF | ZF | AF | PF;
		} else if (reg >= 6) {
			e->writes = ALLF;         /* DIV IDIV: all undefined */
			e->undef = ALLF;
		}
		return;
	case 0xfe: case 0xff:
		if (reg <= 1)
			e->writes = ALLF & ~CF;   /* INC DEC keep CF */
		return;
	case 0xa6: case 0xa7: case 0xae: case 0xaf:   /* CMPS SCAS */
		if (!in->rep || count_reg(in, cpu) != 0)
			e->writes = ALLF;
		return;
	case 0x9c: e->reads = ALLF; return;           /* PUSHF */
	case 0x9d: e->writes = ALLF | DF; return;     /* POPF */
	case 0x9e: e->writes = SF | ZF | AF | PF | CF; return;   /* SAHF */
	case 0x9f: e->reads = SF | ZF | AF | PF | CF; return;    /* LAHF */
	case 0xf5: e->reads = CF; e->writes = CF; return;        /* CMC */
	case 0xf8: case 0xf9: e->writes = CF; return;
	case 0xfc: case 0xfd: e->writes = DF; return;
	case 0xe0: case 0xe1: e->reads = ZF; return;             /* LOOPNE LOOPE */
	default:
		break;
	}
	if (op >= 0x40 && op <= 0x4f && cpu->mode != EMU_MODE_LONG64)
		e->writes = ALLF & ~CF;           /* one-byte INC DEC */
	else if (op >= 0x70 && op <= 0x7f)
		e->reads = cond_reads(op);        /* Jcc */
}

static void map_0f(const struct emu_insn *in, const struct emu_cpu *cpu, struct diff_effect *e)
{
	unsigned op = in->opcode;
	if ((op & 0xf0) == 0x40 || (op & 0xf0) == 0x80 || (op & 0xf0) == 0x90) {
		e->reads = cond_reads(op);        /* CMOVcc Jcc SETcc */
		return;
	}
	switch (op) {
	case 0xa3: case 0xab: case 0xb3: case 0xbb: case 0xba:
		/* BT*: CF is the bit; ZF unaffected; OF SF AF PF undefined. */
		e->writes = CF | OF | SF | AF | PF;
		e->undef = OF | SF | AF | PF;
		return;
	case 0xa4: case 0xa5: case 0xac: case 0xad:
		double_shift(in, cpu, e);
		return;
	case 0xaf:
		e->writes = ALLF;
		e->undef = SF | ZF | AF | PF;
		return;
	case 0xb0: case 0xb1: case 0xc0: case 0xc1:   /* CMPXCHG XADD */
		e->writes = ALLF;
		return;
	case 0xc7:                            /* CMPXCHG8B/16B */
		e->writes = ZF;
		return;
	case 0xb8:                            /* POPCNT: all defined */
		e->writes = ALLF;
		return;
	case 0xbc: case 0xbd:
		if (in->mprefix == EMU_MP_F3 && op == 0xbd) {
			/* LZCNT: ZF and CF defined, the rest undefined. */
			e->writes = ALLF;
			e->undef = OF | SF | AF | PF;
			return;
		}
		/* BSF/BSR (and F3 0F BC, BSF while BMI1 is not advertised): ZF
		 * defined; the destination is undefined for a zero source. */
		e->writes = ALLF;
		e->undef = ALLF & ~ZF;
		e->dest_undef_if_zf = true;
		e->dest_reg = in->reg;
		return;
	case 0xc8: case 0xc9: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf:
		/* BSWAP of a 16-bit register: "the result is undefined". */
		if (in->opsize == 2) {
			e->dest_undef = true;
			e->dest_reg = in->rm;
		}
		return;
	default:
		return;
	}
}

void diff_effect_of(const struct emu_insn *in, const struct emu_cpu *cpu, struct diff_effect *e)
{
	memset(e, 0, sizeof(*e));
	if (in->opmap == EMU_MAP_1B)
		map_1b(in, cpu, e);
	else if (in->opmap == EMU_MAP_0F)
		map_0f(in, cpu, e);
}
