/* Table-driven x86 decoder: bytes -> struct emu_insn, decoded once and
 * cached in blocks (docs/architecture.md "Decode once").
 *
 * The instruction format (SDM vol. 2A, chapter 2, figure 2-1) is: legacy
 * prefixes, REX (64-bit mode), opcode (1-3 bytes), ModRM, SIB,
 * displacement, immediate.  The per-opcode format (ModRM present,
 * immediate kind, 64-bit mode rules) comes from the opcode maps of SDM
 * vol. 2D, appendix A, encoded in opcodes.c; the handler from the same
 * row's entry in handlers.c (emu_handler_find below). */
#include "cpu/emu/core/opcodes.h"

#include "cpu/emu/emu.h"

#include <errno.h>
#include <string.h>

/* ---- handlers ------------------------------------------------------- */

void emu_handler_ud(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	(void)insn;
	emu_raise_noerr(cpu, X86_EXC_UD);
}

void emu_handler_gp0(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	(void)insn;
	emu_raise(cpu, X86_EXC_GP, 0);
}

/* The most specific entry of the row (opcodes.h, struct emu_impl): by
 * prefix and ModRM.reg, by prefix, by ModRM.reg, then the row's; forms
 * of a member first, then the row's, replace the member or row handler. */
emu_handler emu_handler_find(unsigned map, unsigned opcode, unsigned mp, unsigned reg, bool mem, unsigned opsize)
{
	const struct emu_impl *im = &emu_impls[map & 3][opcode & 0xff];
	mp &= 3;
	reg &= 7;
	emu_handler fn;
	if (im->mp_grp && (fn = im->mp_grp->reg[mp][reg]))
		return fn;
	if ((fn = im->mp[mp]))
		return fn;
	const struct emu_forms *gforms = im->grp ? im->grp->forms[reg] : NULL, *forms = NULL;
	if (im->grp && (fn = im->grp->reg[reg])) {
		forms = gforms;
		gforms = NULL;
	} else if ((fn = im->fn)) {
		forms = im->forms;
	} else {
		return NULL;
	}
	if (opsize) {
		unsigned lg = opsize == 8 ? 3 : opsize == 4 ? 2 : opsize == 2 ? 1 : 0;
		emu_handler f = gforms ? gforms->by[mem][lg] : NULL;
		if (!f && forms)
			f = forms->by[mem][lg];
		if (f)
			return f;
	}
	return fn;
}

/* ---- decoding ------------------------------------------------------- */

static inline int64_t read_le(const uint8_t *p, unsigned n)
{
	switch (n) {
	case 1: return (int8_t)p[0];
	case 2: return (int16_t)(p[0] | p[1] << 8);
	case 4: return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
	default: {
		uint64_t v = 0;
		for (unsigned i = 0; i < 8; i++)
			v |= (uint64_t)p[i] << (8 * i);
		return (int64_t)v;
	}
	}
}

/* 16-bit addressing forms (SDM vol. 2A, table 2-1). */
static const uint8_t rm16_base[8] = { RBX, RBX, RBP, RBP, RSI, RDI, RBP, RBX };
static const uint8_t rm16_index[8] = { RSI, RDI, RSI, RDI, EMU_REG_NONE, EMU_REG_NONE, EMU_REG_NONE, EMU_REG_NONE };

static int finish_invalid(struct emu_insn *out, unsigned len, emu_handler fn)
{
	out->len = (uint8_t)(len > 15 ? 15 : len);
	out->fn = fn;
	return -EINVAL;
}

int emu_decode(struct emu_cpu *cpu, const uint8_t *bytes, unsigned avail, struct emu_insn *out)
{
	int rc = emu_decode_mode(cpu->mode, bytes, avail, out);
	/* An opcode whose CPUID flag the model removes raises #UD (SDM vol.
	 * 2A, "CPUID Feature Flag" of each instruction).  Decoded blocks are
	 * cached, so this runs once per instruction decoded, not executed. */
	if (rc == 0 && cpu->feat_off) {
		unsigned f = emu_opcodes[out->opmap & 3][out->opcode].feat[out->mprefix & 3];
		for (unsigned i = 0; !f && out->mod == 3 && i < emu_n_group_features; i++) {
			const struct emu_group_feature *g = &emu_group_features[i];
			if (g->map == out->opmap && g->opcode == out->opcode && ((g->mprefixes >> out->mprefix) & 1) &&
			    g->reg == ((out->modrm >> 3) & 7) && (g->rm < 0 || g->rm == (out->modrm & 7)))
				f = g->feat;
		}
		if (f && ((cpu->feat_off >> f) & 1))
			out->fn = emu_handler_ud;
	}
	return rc;
}

int emu_decode_mode(unsigned mode, const uint8_t *b, unsigned avail, struct emu_insn *out)
{
	const bool m64 = mode == EMU_MODE_LONG64;
	const bool def16 = mode == EMU_MODE_REAL || mode == EMU_MODE_V86 || mode == EMU_MODE_PROT16;
	unsigned i = 0, max = avail < 15 ? avail : 15;
	bool p66 = false, p67 = false;
	uint8_t seg = 0xff, rep = 0, rex = 0;

	memset(out, 0, sizeof(*out));
	out->base = out->index = EMU_REG_NONE;

	/* Legacy prefixes in any order (SDM vol. 2A, 2.1.1); REX counts only
	 * when it immediately precedes the opcode (2.2.1). */
	for (;; i++) {
		if (i >= max)
			return avail < 15 ? -EAGAIN : finish_invalid(out, 15, emu_handler_gp0);
		uint8_t c = b[i];
		switch (c) {
		case 0x26: case 0x2e: case 0x36: case 0x3e:
			/* 26=ES(0) 2e=CS(1) 36=SS(2) 3e=DS(3); null prefixes in
			 * 64-bit mode, where they do not cancel FS or GS. */
			if (!m64)
				seg = (uint8_t)((c >> 3) & 3);
			rex = 0;
			continue;
		case 0x64: case 0x65:
			seg = (uint8_t)(c - 0x64 + SEG_FS);
			rex = 0;
			continue;
		case 0x66: p66 = true; rex = 0; continue;
		case 0x67: p67 = true; rex = 0; continue;
		case 0xf0: out->lock = 1; rex = 0; continue;
		case 0xf2: case 0xf3: rep = c; rex = 0; continue;
		default:
			break;
		}
		if (m64 && (c & 0xf0) == 0x40) {
			rex = c;
			continue;
		}
		break;
	}

	/* Opcode, possibly escaped (SDM vol. 2A, 2.1.2). */
	unsigned map = EMU_MAP_1B;
	uint8_t op = b[i++];
	if (op == 0x0f) {
		if (i >= max)
			goto short_input;
		op = b[i++];
		map = EMU_MAP_0F;
		if (op == 0x38 || op == 0x3a) {
			if (i >= max)
				goto short_input;
			map = op == 0x38 ? EMU_MAP_0F38 : EMU_MAP_0F3A;
			op = b[i++];
		}
	}
	const struct emu_opcode *row = &emu_opcodes[map][op];
	uint16_t fmt = row->fmt;
	out->opmap = (uint8_t)map;
	out->opcode = op;
	out->rex = rex;
	out->rep = rep;
	out->mprefix = rep == 0xf3 ? EMU_MP_F3 : rep == 0xf2 ? EMU_MP_F2 : p66 ? EMU_MP_66 : EMU_MP_NONE;

	/* VEX (C4/C5) and EVEX (62) are not advertised: outside 64-bit mode
	 * they are LES/LDS/BOUND when ModRM.mod != 3 (SDM vol. 2A, 2.3.1). */
	if (map == EMU_MAP_1B && (op == 0xc4 || op == 0xc5 || op == 0x62)) {
		if (m64)
			return finish_invalid(out, i, emu_handler_ud);
		if (i >= max)
			goto short_input;
		if ((b[i] >> 6) == 3)
			return finish_invalid(out, i, emu_handler_ud);
	}
	if (m64 && (fmt & F_INV64))
		fmt = (uint16_t)((fmt & F_MODRM) | F_INV64);

	/* Operand size (SDM vol. 2A, 2.2.1.2 and table 2-4; vol. 1, 3.6). */
	unsigned osz;
	if (m64) {
		if (fmt & F_FORCE64)
			osz = 8;
		else if (rex & 8)
			osz = 8;
		else if (p66)
			osz = 2;
		else
			osz = (fmt & F_DEF64) ? 8 : 4;
	} else {
		osz = (def16 ^ p66) ? 2 : 4;
	}
	unsigned asz = m64 ? (p67 ? 4 : 8) : ((def16 ^ p67) ? 2 : 4);
	out->adsize = (uint8_t)asz;

	/* ModRM, SIB, displacement (SDM vol. 2A, 2.1.3, 2.1.5, 2.2.1.3 and 2.2.1.6). */
	uint8_t grp_reg = 0;
	if (fmt & F_MODRM) {
		if (i >= max)
			goto short_input;
		uint8_t modrm = b[i++];
		unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
		grp_reg = (uint8_t)reg;
		out->modrm = modrm;
		out->reg = (uint8_t)(reg | ((rex & 4) << 1));
		/* MOV to/from control and debug registers ignores mod
		 * (SDM vol. 2A, MOV-Control Registers: "mod bits are ignored"). */
		if (fmt & F_MODREG)
			mod = 3;
		/* Group members with their own 64-bit mode size rule (FF). */
		if (m64 && ((row->f64 >> reg) & 1))
			osz = 8;
		else if (m64 && ((row->d64 >> reg) & 1) && !p66)
			osz = 8;
		out->mod = (uint8_t)mod;
		if (mod == 3) {
			out->rm = (uint8_t)(rm | ((rex & 1) << 3));
		} else if (asz == 2) {
			out->rm = (uint8_t)rm;
			unsigned dsz = mod == 1 ? 1 : mod == 2 ? 2 : (rm == 6 ? 2 : 0);
			if (!(mod == 0 && rm == 6))
				out->base = rm16_base[rm];
			out->index = rm16_index[rm];
			if (out->base == RBP)
				out->seg = SEG_SS;
			else
				out->seg = SEG_DS;
			if (dsz) {
				if (i + dsz > max)
					goto short_input;
				out->disp = (int32_t)read_le(b + i, dsz);
				i += dsz;
			}
		} else {
			out->rm = (uint8_t)rm;
			unsigned dsz = mod == 1 ? 1 : mod == 2 ? 4 : 0;
			if (rm == 4) {
				if (i >= max)
					goto short_input;
				uint8_t sib = b[i++];
				unsigned ss = sib >> 6, idx = ((sib >> 3) & 7) | ((rex & 2) << 2), base = sib & 7;
				out->scale = (uint8_t)ss;
				if (idx != 4)
					out->index = (uint8_t)idx;
				if (base == 5 && mod == 0)
					dsz = 4;
				else
					out->base = (uint8_t)(base | ((rex & 1) << 3));
			} else if (rm == 5 && mod == 0) {
				dsz = 4;
				out->rip_rel = m64;
			} else {
				out->base = (uint8_t)(rm | ((rex & 1) << 3));
			}
			out->seg = (out->base == RSP || out->base == RBP) ? SEG_SS : SEG_DS;
			if (dsz) {
				if (i + dsz > max)
					goto short_input;
				out->disp = (int32_t)read_le(b + i, dsz);
				i += dsz;
			}
		}
	} else {
		out->rm = (uint8_t)((op & 7) | ((rex & 1) << 3));  /* register in the opcode's low bits */
		out->seg = SEG_DS;
	}
	/* Segment override: the last one wins; in 64-bit mode only FS and GS
	 * have an effect (SDM vol. 1, 3.3.7.1). */
	if (seg != 0xff && (!m64 || seg >= SEG_FS))
		out->seg = seg;

	/* Immediates (SDM vol. 2A, 2.2.1.5: imm32 sign-extended to 64 bits;
	 * only MOV r64, imm64 carries a full 8-byte immediate). */
	unsigned imm = fmt & F_IMM_MASK;
	if (imm == I_GRP3)
		imm = grp_reg < 2 ? ((op & 1) ? I_Z : I_B) : I_NONE;
	if (imm == I_SSE4A)  /* 66/F2 0F 78: EXTRQ/INSERTQ ib, ib */
		imm = (p66 || rep == 0xf2) ? I_BB : I_NONE;
	unsigned isz = 0, isz2 = 0;
	switch (imm) {
	case I_B: isz = 1; break;
	case I_W: isz = 2; break;
	case I_Z: isz = osz == 2 ? 2 : 4; break;
	case I_V: isz = osz; break;
	case I_REL: isz = (osz == 2 && !m64) ? 2 : 4; break;
	case I_WB: isz = 2; isz2 = 1; break;
	case I_BB: isz = 1; isz2 = 1; break;
	case I_FAR: isz = osz == 2 ? 2 : 4; isz2 = 2; break;
	case I_MOFFS: isz = asz; break;
	default: break;
	}
	if (isz) {
		if (i + isz + isz2 > max)
			goto short_input;
		out->imm = (uint64_t)read_le(b + i, isz);
		if (imm == I_MOFFS || imm == I_FAR)
			out->imm &= emu_size_mask(isz);
		i += isz;
		if (isz2) {
			out->imm2 = (uint16_t)(isz2 == 1 ? b[i] : (b[i] | b[i + 1] << 8));
			i += isz2;
		}
	}

	out->len = (uint8_t)i;
	out->opsize = (uint8_t)((fmt & F_BYTE) ? 1 : osz);
	if (m64 && (fmt & F_INV64)) {
		out->fn = emu_handler_ud;
		return -EINVAL;
	}
	bool mem = (fmt & F_MODRM) && out->mod != 3;
	if (out->lock && (!mem || !((row->lock >> grp_reg) & 1))) {
		out->fn = emu_handler_ud;
		return 0;
	}
	/* A LOCKed instruction keeps its generic handler, which does the
	 * atomic read-modify-write. */
	out->fn = emu_handler_find(map, op, out->mprefix, grp_reg, mem, out->lock ? 0 : out->opsize);
	if (!out->fn)
		out->fn = emu_handler_ud;
	return 0;

short_input:
	if (avail >= 15)
		return finish_invalid(out, 15, emu_handler_gp0);
	return -EAGAIN;
}

bool emu_insn_ends_block(const struct emu_insn *insn)
{
	const struct emu_opcode *row = &emu_opcodes[insn->opmap][insn->opcode];
	if (row->fmt & F_END)
		return true;
	if ((row->fmt & F_MODRM) && ((row->end >> ((insn->modrm >> 3) & 7)) & 1))
		return true;
	return insn->fn == emu_handler_ud || insn->fn == emu_handler_gp0;
}
