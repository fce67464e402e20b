/* Data movement for MMX/SSE: register/memory moves (incl. non-temporal
 * hints), MOVD/MOVQ, bitwise logic on packed floats, FP shuffles and
 * unpacks, inserts/extracts, mask extraction, MASKMOV, EMMS, and the
 * SSE hint/fence encodings (SDM vol. 2 instruction pages).  These are the
 * instructions glibc's memcpy/strlen live on, so the common forms avoid
 * any work beyond the availability check and the copy. */
#include "cpu/emu/fpu/fpu.h"

#include <emmintrin.h>

static inline uint8_t *xreg(struct emu_cpu *cpu, unsigned i)
{
	return cpu->xmm[i & 15].b;
}

/* ---- 128-bit moves ---- */

/* MOVUPS/MOVUPD/MOVDQU/LDDQU (unaligned) and MOVAPS/MOVAPD/MOVDQA/MOVNTDQA
 * (aligned) loads. */
void sse_mov_load_u(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(xreg(cpu, insn->reg), xreg(cpu, insn->rm), 16);
	else
		fpu_read_m128(cpu, insn, (union fpu_vec *)xreg(cpu, insn->reg), false);
}

void sse_mov_load_a(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(xreg(cpu, insn->reg), xreg(cpu, insn->rm), 16);
	else
		fpu_read_m128(cpu, insn, (union fpu_vec *)xreg(cpu, insn->reg), true);
}

void sse_mov_store_u(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(xreg(cpu, insn->rm), xreg(cpu, insn->reg), 16);
	else
		fpu_write_m128(cpu, insn, (const union fpu_vec *)xreg(cpu, insn->reg), false);
}

void sse_mov_store_a(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(xreg(cpu, insn->rm), xreg(cpu, insn->reg), 16);
	else
		fpu_write_m128(cpu, insn, (const union fpu_vec *)xreg(cpu, insn->reg), true);
}

/* MOVNTDQA and LDDQU: memory source only (vol. 2B "MOVNTDQA", vol. 2A "LDDQU"). */
void sse_mov_load_mem_only(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	if (insn->mod == 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	fpu_check_sse(cpu);
	/* MOVNTDQA is an aligned form, LDDQU explicitly unaligned */
	fpu_read_m128(cpu, insn, (union fpu_vec *)xreg(cpu, insn->reg), insn->opmap == EMU_MAP_0F38);
}

/* Non-temporal stores (MOVNTPS/PD/DQ): memory destination only. */
void sse_mov_store_nt(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	if (insn->mod == 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	sse_mov_store_a(cpu, insn);
}

/* MOVSS/MOVSD (F3/F2 0F 10/11): register form moves the low element only;
 * the load from memory zeroes the rest. */
void sse_mov_scalar(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	unsigned n = insn->mprefix == EMU_MP_F3 ? 4 : 8;
	fpu_check_sse(cpu);
	if (insn->opcode == 0x10) {
		if (insn->mod == 3) {
			memcpy(xreg(cpu, insn->reg), xreg(cpu, insn->rm), n);
		} else {
			uint64_t v = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), n);
			memset(xreg(cpu, insn->reg), 0, 16);
			memcpy(xreg(cpu, insn->reg), &v, n);
		}
	} else {
		if (insn->mod == 3) {
			memcpy(xreg(cpu, insn->rm), xreg(cpu, insn->reg), n);
		} else {
			uint64_t v = 0;
			memcpy(&v, xreg(cpu, insn->reg), n);
			emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), n, v);
		}
	}
}

/* 0F 12/13/16/17: MOVLPS/MOVLPD/MOVHLPS and MOVHPS/MOVHPD/MOVLHPS, plus
 * F2 0F 12 MOVDDUP, F3 0F 12 MOVSLDUP, F3 0F 16 MOVSHDUP. */
void sse_mov_half(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	uint8_t *x = xreg(cpu, insn->reg);
	bool high = insn->opcode >= 0x16;
	fpu_check_sse(cpu);
	if (insn->mprefix == EMU_MP_F2 || insn->mprefix == EMU_MP_F3) {
		union fpu_vec s, r;
		if (insn->opcode & 1)
			emu_raise_noerr(cpu, X86_EXC_UD);
		if (insn->mprefix == EMU_MP_F2) {   /* MOVDDUP xmm, xmm/m64 */
			if (insn->mod == 3)
				memcpy(&s, xreg(cpu, insn->rm), 16);
			else
				s.q[0] = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 8);
			r.q[0] = r.q[1] = s.q[0];
		} else {                            /* MOVSLDUP / MOVSHDUP */
			if (insn->mod == 3)
				memcpy(&s, xreg(cpu, insn->rm), 16);
			else
				fpu_read_m128(cpu, insn, &s, true);
			unsigned o = high ? 1 : 0;
			r.d[0] = r.d[1] = s.d[o];
			r.d[2] = r.d[3] = s.d[2 + o];
		}
		memcpy(x, &r, 16);
		return;
	}
	if (insn->opcode & 1) {                 /* stores: m64 <- half */
		if (insn->mod == 3)
			emu_raise_noerr(cpu, X86_EXC_UD);
		uint64_t v;
		memcpy(&v, x + (high ? 8 : 0), 8);
		emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), 8, v);
		return;
	}
	if (insn->mod == 3) {
		if (insn->mprefix == EMU_MP_66)
			emu_raise_noerr(cpu, X86_EXC_UD);
		/* MOVHLPS: low <- src high; MOVLHPS: high <- src low */
		uint64_t v;
		memcpy(&v, xreg(cpu, insn->rm) + (high ? 0 : 8), 8);
		memcpy(x + (high ? 8 : 0), &v, 8);
		return;
	}
	uint64_t v = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 8);
	memcpy(x + (high ? 8 : 0), &v, 8);
}

/* ---- logic, shuffles and unpacks on packed floats ---- */

void sse_fp_logic(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec s, d;
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(&s, xreg(cpu, insn->rm), 16);
	else
		fpu_read_m128(cpu, insn, &s, true);
	memcpy(&d, xreg(cpu, insn->reg), 16);
	switch (insn->opcode) {
	case 0x54: d.q[0] &= s.q[0]; d.q[1] &= s.q[1]; break;
	case 0x55: d.q[0] = ~d.q[0] & s.q[0]; d.q[1] = ~d.q[1] & s.q[1]; break;
	case 0x56: d.q[0] |= s.q[0]; d.q[1] |= s.q[1]; break;
	default: d.q[0] ^= s.q[0]; d.q[1] ^= s.q[1]; break;
	}
	memcpy(xreg(cpu, insn->reg), &d, 16);
}

/* UNPCKLPS/UNPCKHPS/UNPCKLPD/UNPCKHPD and SHUFPS/SHUFPD */
void sse_fp_shuffle(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec s, d, r;
	bool pd = insn->mprefix == EMU_MP_66;
	uint8_t imm = (uint8_t)insn->imm;
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(&s, xreg(cpu, insn->rm), 16);
	else
		fpu_read_m128(cpu, insn, &s, true);
	memcpy(&d, xreg(cpu, insn->reg), 16);
	switch (insn->opcode) {
	case 0x14:
		if (pd) { r.q[0] = d.q[0]; r.q[1] = s.q[0]; }
		else { r.d[0] = d.d[0]; r.d[1] = s.d[0]; r.d[2] = d.d[1]; r.d[3] = s.d[1]; }
		break;
	case 0x15:
		if (pd) { r.q[0] = d.q[1]; r.q[1] = s.q[1]; }
		else { r.d[0] = d.d[2]; r.d[1] = s.d[2]; r.d[2] = d.d[3]; r.d[3] = s.d[3]; }
		break;
	default: /* 0xc6 */
		if (pd) {
			r.q[0] = d.q[imm & 1];
			r.q[1] = s.q[(imm >> 1) & 1];
		} else {
			r.d[0] = d.d[imm & 3];
			r.d[1] = d.d[(imm >> 2) & 3];
			r.d[2] = s.d[(imm >> 4) & 3];
			r.d[3] = s.d[(imm >> 6) & 3];
		}
		break;
	}
	memcpy(xreg(cpu, insn->reg), &r, 16);
}

/* MOVMSKPS/MOVMSKPD r32, xmm */
void sse_fp_movmsk(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec s;
	if (insn->mod != 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	fpu_check_sse(cpu);
	memcpy(&s, xreg(cpu, insn->rm), 16);
	uint32_t m = 0;
	if (insn->mprefix == EMU_MP_66)
		m = (uint32_t)((s.q[0] >> 63) | ((s.q[1] >> 63) << 1));
	else
		for (unsigned i = 0; i < 4; i++)
			m |= (s.d[i] >> 31) << i;
	cpu->gpr[insn->reg] = m;
}

/* ---- MMX/XMM integer moves ---- */

/* 0F 6E: MOVD/MOVQ mm|xmm, r/m32|64 */
void sse_mov_d_to_vec(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	unsigned n = (insn->rex & 8) ? 8 : 4;
	if (insn->mprefix == EMU_MP_66) {
		fpu_check_sse(cpu);
		uint64_t v = rm_read(cpu, insn, n);
		uint8_t *x = xreg(cpu, insn->reg);
		memset(x, 0, 16);
		memcpy(x, &v, 8);
	} else {
		fpu_check_mmx(cpu);
		uint64_t v = rm_read(cpu, insn, n);
		fpu_mmx_enter(cpu);
		fpu_mmx_set(cpu, insn->reg, v);
	}
}

/* 0F 7E: MOVD/MOVQ r/m32|64, mm|xmm; F3 0F 7E: MOVQ xmm, xmm/m64 */
void sse_mov_d_from_vec(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	unsigned n = (insn->rex & 8) ? 8 : 4;
	if (insn->mprefix == EMU_MP_F3) {
		fpu_check_sse(cpu);
		uint64_t v;
		if (insn->mod == 3)
			memcpy(&v, xreg(cpu, insn->rm), 8);
		else
			v = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 8);
		uint8_t *x = xreg(cpu, insn->reg);
		memset(x, 0, 16);
		memcpy(x, &v, 8);
	} else if (insn->mprefix == EMU_MP_66) {
		fpu_check_sse(cpu);
		uint64_t v;
		memcpy(&v, xreg(cpu, insn->reg), 8);
		rm_write(cpu, insn, n, v & emu_size_mask(n));
	} else {
		fpu_check_mmx(cpu);
		uint64_t v = fpu_mmx_get(cpu, insn->reg);
		rm_write(cpu, insn, n, v & emu_size_mask(n));
		fpu_mmx_enter(cpu);
	}
}

/* 0F 6F/7F without prefix: MOVQ mm, mm/m64 and MOVQ mm/m64, mm; 0F E7
 * MOVNTQ m64, mm. */
void sse_mov_mmx_q(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_mmx(cpu);
	if (insn->opcode == 0x6f) {
		uint64_t v = insn->mod == 3 ? fpu_mmx_get(cpu, insn->rm)
					    : emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 8);
		fpu_mmx_enter(cpu);
		fpu_mmx_set(cpu, insn->reg, v);
		return;
	}
	uint64_t v = fpu_mmx_get(cpu, insn->reg);
	if (insn->mod == 3) {
		if (insn->opcode == 0xe7)
			emu_raise_noerr(cpu, X86_EXC_UD);
		fpu_mmx_enter(cpu);
		fpu_mmx_set(cpu, insn->rm, v);
		return;
	}
	emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), 8, v);
	fpu_mmx_enter(cpu);
}

/* 0F D6: 66 MOVQ xmm/m64, xmm; F3 MOVQ2DQ xmm, mm; F2 MOVDQ2Q mm, xmm */
void sse_mov_d6(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	if (insn->mprefix == EMU_MP_66) {
		fpu_check_sse(cpu);
		uint64_t v;
		memcpy(&v, xreg(cpu, insn->reg), 8);
		if (insn->mod == 3) {
			uint8_t *x = xreg(cpu, insn->rm);
			memset(x, 0, 16);
			memcpy(x, &v, 8);
		} else {
			emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), 8, v);
		}
		return;
	}
	if (insn->mod != 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	fpu_check_sse(cpu);
	fpu_check_mmx(cpu);
	if (insn->mprefix == EMU_MP_F3) {
		uint64_t v = fpu_mmx_get(cpu, insn->rm);
		uint8_t *x = xreg(cpu, insn->reg);
		memset(x, 0, 16);
		memcpy(x, &v, 8);
	} else {
		uint64_t v;
		memcpy(&v, xreg(cpu, insn->rm), 8);
		fpu_mmx_set(cpu, insn->reg, v);
	}
	fpu_mmx_enter(cpu);
}

/* PMOVMSKB r32, mm|xmm */
void sse_pmovmskb(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec s;
	unsigned n;
	if (insn->mod != 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	if (insn->mprefix == EMU_MP_66) {
		fpu_check_sse(cpu);
		memcpy(&s, xreg(cpu, insn->rm), 16);
		n = 16;
	} else {
		fpu_check_mmx(cpu);
		s.q[0] = fpu_mmx_get(cpu, insn->rm);
		fpu_mmx_enter(cpu);
		n = 8;
	}
	uint32_t m;
	if (n == 16) {
		m = (uint32_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)s.b));
	} else {
		m = 0;
		for (unsigned i = 0; i < n; i++)
			m |= (uint32_t)(s.b[i] >> 7) << i;
	}
	cpu->gpr[insn->reg] = m;
}

/* PINSRW mm|xmm, r32/m16, imm8 and PEXTRW r32, mm|xmm, imm8 (0F C4/C5) */
void sse_pinsrw_pextrw(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	bool x = insn->mprefix == EMU_MP_66;
	uint8_t imm = (uint8_t)insn->imm;
	if (x)
		fpu_check_sse(cpu);
	else
		fpu_check_mmx(cpu);
	if (insn->opcode == 0xc4) {
		uint16_t v = (uint16_t)rm_read(cpu, insn, 2);
		if (x) {
			memcpy(xreg(cpu, insn->reg) + 2 * (imm & 7), &v, 2);
		} else {
			uint64_t m = fpu_mmx_get(cpu, insn->reg);
			unsigned sh = 16 * (imm & 3);
			m = (m & ~(0xffffull << sh)) | ((uint64_t)v << sh);
			fpu_mmx_enter(cpu);
			fpu_mmx_set(cpu, insn->reg, m);
		}
		return;
	}
	if (insn->mod != 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	uint16_t v;
	if (x) {
		memcpy(&v, xreg(cpu, insn->rm) + 2 * (imm & 7), 2);
	} else {
		v = (uint16_t)(fpu_mmx_get(cpu, insn->rm) >> (16 * (imm & 3)));
		fpu_mmx_enter(cpu);
	}
	cpu->gpr[insn->reg] = v;
}

/* SSE4.1 PEXTRB/PEXTRW/PEXTRD/PEXTRQ/EXTRACTPS r/m, xmm, imm8 (0F 3A 14-17):
 * here ModRM.reg is the XMM source and r/m the destination. */
void sse_pextr(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	uint8_t imm = (uint8_t)insn->imm;
	unsigned n;
	switch (insn->opcode) {
	case 0x14: n = 1; break;
	case 0x15: n = 2; break;
	case 0x16: n = (insn->rex & 8) ? 8 : 4; break;
	default: n = 4; break;
	}
	fpu_check_sse(cpu);
	uint64_t v = 0;
	memcpy(&v, xreg(cpu, insn->reg) + n * (imm & (16 / n - 1)), n);
	if (insn->mod == 3)
		cpu->gpr[insn->rm] = (insn->opcode == 0x16 && n == 8) ? v : (uint32_t)v;
	else
		emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), n, v);
}

/* PINSRB/PINSRD/PINSRQ xmm, r/m, imm8 (0F 3A 20/22) and INSERTPS (21) */
void sse_pinsr(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	uint8_t imm = (uint8_t)insn->imm;
	uint8_t *x = xreg(cpu, insn->reg);
	fpu_check_sse(cpu);
	if (insn->opcode == 0x21) {
		/* INSERTPS: imm[7:6] source element (register form), imm[5:4]
		 * destination, imm[3:0] zero mask. */
		uint32_t v;
		if (insn->mod == 3)
			memcpy(&v, xreg(cpu, insn->rm) + 4 * (imm >> 6), 4);
		else
			v = (uint32_t)emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 4);
		union fpu_vec d;
		memcpy(&d, x, 16);
		d.d[(imm >> 4) & 3] = v;
		for (unsigned i = 0; i < 4; i++)
			if (imm & (1u << i))
				d.d[i] = 0;
		memcpy(x, &d, 16);
		return;
	}
	unsigned n = insn->opcode == 0x20 ? 1 : (insn->rex & 8) ? 8 : 4;
	uint64_t v = rm_read(cpu, insn, n);
	memcpy(x + n * (imm & (16 / n - 1)), &v, n);
}

/* MASKMOVQ/MASKMOVDQU: byte-masked store to DS:rDI (segment overridable),
 * address size from the instruction (vol. 2B "MASKMOVDQU"). */
void sse_maskmov(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec s, m;
	unsigned n;
	if (insn->mod != 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	if (insn->mprefix == EMU_MP_66) {
		fpu_check_sse(cpu);
		memcpy(&s, xreg(cpu, insn->reg), 16);
		memcpy(&m, xreg(cpu, insn->rm), 16);
		n = 16;
	} else {
		fpu_check_mmx(cpu);
		s.q[0] = fpu_mmx_get(cpu, insn->reg);
		m.q[0] = fpu_mmx_get(cpu, insn->rm);
		n = 8;
	}
	uint64_t base = cpu->gpr[RDI] & emu_size_mask(insn->adsize);
	for (unsigned i = 0; i < n; i++)
		if (m.b[i] & 0x80)
			emu_write(cpu, insn->seg, (base + i) & emu_size_mask(insn->adsize), 1, s.b[i]);
	if (n == 8)
		fpu_mmx_enter(cpu);
}

/* EMMS: all x87 tags empty (vol. 2A "EMMS"). */
void sse_emms(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_mmx(cpu);
	fpu_fx(cpu)->ftw = 0;
}

/* MOVNTI m32|64, r32|64 (SSE2, general-purpose source) */
void sse_movnti(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	if (insn->mod == 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	unsigned n = (insn->rex & 8) ? 8 : 4;
	emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), n, cpu->gpr[insn->reg] & emu_size_mask(n));
}

/* PREFETCHh (0F 18) and the fences (0F AE E8/F0/F8): vessel executes
 * memory accesses in program order on one vCPU thread and the host's
 * atomics order them between vCPUs, so these are architectural no-ops;
 * SFENCE/LFENCE/MFENCE still order the host stores for other vCPUs. */
void sse_hint_nop(struct emu_cpu *cpu, const struct emu_insn *insn)
{
}

void fpu_fence(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
