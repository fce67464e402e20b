/* SSE/SSE2/SSE3/SSE4.1 floating-point arithmetic, compares and
 * conversions, and the SSE4.2 string compares (SDM vol. 1, chapters 10-12;
 * vol. 2 instruction pages).  The arithmetic itself runs on the host
 * (sse_host.c); this file fetches operands, enforces alignment, and
 * applies MXCSR's exception masks: an unmasked exception raises #XM (or
 * #UD without CR4.OSXMMEXCPT) and leaves the destination unchanged
 * (vol. 1, 11.5.1, 11.5.2). */
#include "cpu/emu/fpu/sse_host.h"

/* Merges the host's MXCSR flags into the guest's; raises on an unmasked
 * one.  Pre-computation exceptions (#I, #D, #Z) take precedence and then
 * suppress the post-computation flags (vol. 1, 11.5.2). */
static void sse_apply_flags(struct emu_cpu *cpu, uint32_t hmx)
{
	uint32_t f = hmx & MXCSR_FLAGS;
	uint32_t unmasked = f & ~(cpu->mxcsr >> 7) & MXCSR_FLAGS;
	if (__builtin_expect(unmasked != 0, 0)) {
		if (unmasked & 7)
			f &= 7;
		cpu->mxcsr |= f;
		fpu_raise_simd(cpu);
	}
	cpu->mxcsr |= f;
}

/* The host's LDMXCSR faults on reserved bits; cpu->mxcsr can be written
 * from outside the module (snapshots), so they are dropped here. */
static inline uint32_t sse_host_mxcsr(struct emu_cpu *cpu)
{
	return (cpu->mxcsr & MXCSR_MASK_SUPPORTED & ~(uint32_t)MXCSR_FLAGS) | MXCSR_MASKS;
}

/* Source operand of an SSE instruction: XMM register or memory of size n
 * (16 = aligned m128; smaller loads zero the rest). */
static void sse_src(struct emu_cpu *cpu, const struct emu_insn *insn, union fpu_vec *s, unsigned n)
{
	if (insn->mod == 3) {
		memcpy(s, &cpu->xmm[insn->rm], 16);
	} else if (n == 16) {
		fpu_read_m128(cpu, insn, s, true);
	} else {
		s->q[0] = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), n);
		s->q[1] = 0;
	}
}

void sse_fp_rm(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	const struct sse_host_op *e = &sse_host_ops[insn->opmap][insn->opcode][insn->mprefix];
	struct sse_host h;
	fpu_check_sse(cpu);
	sse_src(cpu, insn, &h.s, e->msize);
	memcpy(&h.d, &cpu->xmm[insn->reg], 16);
	h.imm = (uint8_t)insn->imm;
	h.mx = sse_host_mxcsr(cpu);
	e->fn(&h);
	sse_apply_flags(cpu, h.mx);
	memcpy(&cpu->xmm[insn->reg], &h.d, 16);
}

/* CVTSI2SS/CVTSI2SD xmm, r/m32|64 */
void sse_cvtsi2s(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	bool w = insn->rex & 8;
	struct sse_host h;
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		h.gin = cpu->gpr[insn->rm];
	else
		h.gin = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), w ? 8 : 4);
	memcpy(&h.d, &cpu->xmm[insn->reg], 16);
	memset(&h.s, 0, 16);
	h.mx = sse_host_mxcsr(cpu);
	if (insn->mprefix == EMU_MP_F3)
		(w ? sse_host_cvtsi2ss64 : sse_host_cvtsi2ss32)(&h);
	else
		(w ? sse_host_cvtsi2sd64 : sse_host_cvtsi2sd32)(&h);
	sse_apply_flags(cpu, h.mx);
	memcpy(&cpu->xmm[insn->reg], &h.d, 16);
}

/* CVT(T)SS2SI/CVT(T)SD2SI r32|64, xmm/m32|64 */
void sse_cvts2si(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	bool w = insn->rex & 8, sd = insn->mprefix == EMU_MP_F2, trunc = insn->opcode == 0x2c;
	static const sse_host_fn fns[2][2][2] = {
		{ { sse_host_cvtss2si32, sse_host_cvtss2si64 }, { sse_host_cvttss2si32, sse_host_cvttss2si64 } },
		{ { sse_host_cvtsd2si32, sse_host_cvtsd2si64 }, { sse_host_cvttsd2si32, sse_host_cvttsd2si64 } },
	};
	struct sse_host h;
	fpu_check_sse(cpu);
	sse_src(cpu, insn, &h.s, sd ? 8 : 4);
	memset(&h.d, 0, 16);
	h.mx = sse_host_mxcsr(cpu);
	fns[sd][trunc][w](&h);
	sse_apply_flags(cpu, h.mx);
	cpu->gpr[insn->reg] = w ? h.gout : (uint32_t)h.gout;
}

/* MMX-register conversions 0F 2A/2C/2D without prefix or with 66. */
void sse_cvt_mmx(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	bool pd = insn->mprefix == EMU_MP_66;
	struct sse_host h;
	fpu_check_sse(cpu);
	if (insn->opcode == 0x2a) {
		/* CVTPI2PS/CVTPI2PD xmm, mm/m64: an MMX source register makes the
		 * x87->MMX transition (vol. 2A "CVTPI2PS"). */
		memset(&h.s, 0, 16);
		if (insn->mod == 3) {
			fpu_check_mmx(cpu);
			h.s.q[0] = fpu_mmx_get(cpu, insn->rm);
			fpu_mmx_enter(cpu);
		} else {
			h.s.q[0] = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 8);
		}
		memcpy(&h.d, &cpu->xmm[insn->reg], 16);
		union fpu_vec keep = h.d;
		h.mx = sse_host_mxcsr(cpu);
		(pd ? sse_host_cvtdq2pd : sse_host_cvtdq2ps)(&h);
		sse_apply_flags(cpu, h.mx);
		if (!pd)
			h.d.q[1] = keep.q[1];
		memcpy(&cpu->xmm[insn->reg], &h.d, 16);
		return;
	}
	/* CVT(T)PS2PI mm, xmm/m64 and CVT(T)PD2PI mm, xmm/m128 */
	fpu_check_mmx(cpu);
	sse_src(cpu, insn, &h.s, pd ? 16 : 8);
	if (!pd)
		h.s.q[1] = 0;
	memset(&h.d, 0, 16);
	h.mx = sse_host_mxcsr(cpu);
	bool trunc = insn->opcode == 0x2c;
	if (pd)
		(trunc ? sse_host_cvttpd2dq : sse_host_cvtpd2dq)(&h);
	else
		(trunc ? sse_host_cvttps2dq : sse_host_cvtps2dq)(&h);
	sse_apply_flags(cpu, h.mx);
	fpu_mmx_enter(cpu);
	fpu_mmx_set(cpu, insn->reg, h.d.q[0]);
}

/* COMISS/UCOMISS/COMISD/UCOMISD: ZF, PF, CF; OF, SF, AF cleared. */
void sse_comis(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	bool pd = insn->mprefix == EMU_MP_66, ord = insn->opcode == 0x2f;
	struct sse_host h;
	fpu_check_sse(cpu);
	sse_src(cpu, insn, &h.s, pd ? 8 : 4);
	memcpy(&h.d, &cpu->xmm[insn->reg], 16);
	h.mx = sse_host_mxcsr(cpu);
	if (pd)
		(ord ? sse_host_comisd : sse_host_ucomisd)(&h);
	else
		(ord ? sse_host_comiss : sse_host_ucomiss)(&h);
	sse_apply_flags(cpu, h.mx);
	uint64_t fl = emu_get_rflags(cpu) & ~(uint64_t)X86_FLAGS_ARITH;
	fl |= (h.zf ? X86_FLAG_ZF : 0) | (h.pf ? X86_FLAG_PF : 0) | (h.cf ? X86_FLAG_CF : 0);
	emu_set_rflags(cpu, fl);
}

/* PCMPESTRM/PCMPESTRI/PCMPISTRM/PCMPISTRI (vol. 2B): unaligned source,
 * no MXCSR effects.  Explicit lengths come from EAX/EDX (RAX/RDX with
 * REX.W); their absolute values saturate at the element count, so the
 * 64-bit forms reduce to the 32-bit ones after clamping. */
void sse_pcmpstr(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	unsigned kind = insn->opcode - 0x60;
	struct sse_host h;
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(&h.s, &cpu->xmm[insn->rm], 16);
	else
		emu_read_bytes(cpu, insn->seg, emu_insn_ea(cpu, insn), h.s.b, 16);
	memcpy(&h.d, &cpu->xmm[insn->reg], 16);
	h.imm = (uint8_t)insn->imm;
	h.mx = sse_host_mxcsr(cpu);
	if (kind < 2) {
		int64_t a, d;
		if (insn->rex & 8) {
			a = (int64_t)cpu->gpr[RAX];
			d = (int64_t)cpu->gpr[RDX];
		} else {
			a = (int32_t)cpu->gpr[RAX];
			d = (int32_t)cpu->gpr[RDX];
		}
		a = a < 0 ? (a < -64 ? 64 : -a) : (a > 64 ? 64 : a);
		d = d < 0 ? (d < -64 ? 64 : -d) : (d > 64 ? 64 : d);
		h.gin = (uint64_t)a;
		h.gin2 = (uint64_t)d;
	} else {
		h.gin = h.gin2 = 0;
	}
	sse_host_pcmpstr(&h, kind);
	if (kind & 1)
		cpu->gpr[RCX] = (uint32_t)h.gout;
	else
		memcpy(&cpu->xmm[0], &h.d, 16);
	uint64_t fl = emu_get_rflags(cpu) & ~(uint64_t)X86_FLAGS_ARITH;
	fl |= (h.zf ? X86_FLAG_ZF : 0) | (h.cf ? X86_FLAG_CF : 0) | (h.sf ? X86_FLAG_SF : 0) |
	      (h.of ? X86_FLAG_OF : 0);
	emu_set_rflags(cpu, fl);
}
