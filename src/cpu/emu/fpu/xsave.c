/* FXSAVE/FXRSTOR, LDMXCSR/STMXCSR, XSAVE/XRSTOR/XSAVEOPT, XGETBV/XSETBV
 * and CPUID leaf 0xD for the x87 and SSE state components (SDM vol. 1,
 * 10.5 and chapter 13; vol. 2 instruction pages). */
#include "cpu/emu/fpu/fpu.h"

#define XSAVE_AREA_SIZE 576          /* legacy region 512 + header 64 (13.4) */
#define XSAVE_OPT_FEATURES 0x5u      /* CPUID.(0DH,1):EAX: XSAVEOPT, XGETBV ECX=1 */


/* FXSAVE/XSAVE availability (vol. 2A "FXSAVE" protected-mode exceptions):
 * #NM on CR0.TS or CR0.EM. */
static void xs_check_nm(struct emu_cpu *cpu)
{
	if (cpu->cr0 & (X86_CR0_TS | X86_CR0_EM))
		emu_raise_noerr(cpu, X86_EXC_NM);
}

static void xs_check_xsave(struct emu_cpu *cpu)
{
	if (!(cpu->cr4 & X86_CR4_OSXSAVE))
		emu_raise_noerr(cpu, X86_EXC_UD);
	if (cpu->cr0 & X86_CR0_TS)
		emu_raise_noerr(cpu, X86_EXC_NM);
}

static uint64_t xs_aligned_ea(struct emu_cpu *cpu, const struct emu_insn *insn, unsigned align)
{
	uint64_t ea = emu_insn_ea(cpu, insn);
	if (emu_seg_linear(cpu, insn->seg, ea) & (align - 1))
		emu_raise(cpu, X86_EXC_GP, 0);
	return ea;
}

/* The legacy image in the format the instruction asks for: the REX.W
 * forms hold 64-bit FIP/FDP; the others hold 32-bit offsets with FCS/FDS
 * (zero in 64-bit mode, where the selectors are deprecated). */
static void xs_legacy_image(struct emu_cpu *cpu, const struct emu_insn *insn, uint8_t *img)
{
	fpu_image_store(cpu, img);
	if (!(insn->rex & 8)) {
		struct fpu_fx *o = (struct fpu_fx *)img;
		const struct fpu_fx *fx = fpu_fx(cpu);
		bool lm = cpu->mode == EMU_MODE_LONG64;
		o->fip = (uint32_t)fx->fip | (lm ? 0 : (fx->fip & 0xffff00000000ull));
		o->fdp = (uint32_t)fx->fdp | (lm ? 0 : (fx->fdp & 0xffff00000000ull));
	}
}

static bool xs_mxcsr_ok(uint32_t v)
{
	return !(v & ~(uint32_t)MXCSR_MASK_SUPPORTED);
}

static void fxsave(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	uint8_t img[512] __attribute__((aligned(16)));
	xs_check_nm(cpu);
	uint64_t ea = xs_aligned_ea(cpu, insn, 16);
	xs_legacy_image(cpu, insn, img);
	emu_write_bytes(cpu, insn->seg, ea, img, 512);
}

static void fxrstor(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	uint8_t img[512] __attribute__((aligned(16)));
	xs_check_nm(cpu);
	uint64_t ea = xs_aligned_ea(cpu, insn, 16);
	emu_read_bytes(cpu, insn->seg, ea, img, 512);
	const struct fpu_fx *in = (const struct fpu_fx *)img;
	if (!xs_mxcsr_ok(in->mxcsr))
		emu_raise(cpu, X86_EXC_GP, 0);
	fpu_image_load(cpu, img, true, true);
	cpu->mxcsr = in->mxcsr;
}

static void ldmxcsr(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_sse(cpu);
	uint32_t v = (uint32_t)emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 4);
	if (!xs_mxcsr_ok(v))
		emu_raise(cpu, X86_EXC_GP, 0);
	cpu->mxcsr = v;
}

static void stmxcsr(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_sse(cpu);
	emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), 4, cpu->mxcsr);
}

/* XINUSE (13.6): a component not in its initial configuration. */
static uint64_t xs_inuse(struct emu_cpu *cpu)
{
	const struct fpu_fx *fx = fpu_fx(cpu);
	uint64_t r = 0;
	bool x87_init = fx->fcw == FCW_DEFAULT && fx->fsw == 0 && fx->ftw == 0 && fx->fop == 0 &&
			fx->fip == 0 && fx->fdp == 0;
	for (unsigned i = 0; i < 8 && x87_init; i++)
		for (unsigned b = 0; b < 10; b++)
			if (fx->st[i].b[b])
				x87_init = false;
	if (!x87_init)
		r |= XCR0_X87;
	for (unsigned i = 0; i < 16; i++)
		if (cpu->xmm[i].q[0] | cpu->xmm[i].q[1]) {
			r |= XCR0_SSE;
			break;
		}
	if (cpu->mxcsr != MXCSR_DEFAULT)
		r |= XCR0_SSE;
	return r;
}

/* XSAVE and XSAVEOPT (standard form, 13.7): components in RFBM are
 * written; XSTATE_BV[i] for i in RFBM becomes XINUSE[i]. */
static void xsave(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	uint8_t area[XSAVE_AREA_SIZE] __attribute__((aligned(16)));
	xs_check_xsave(cpu);
	uint64_t ea = xs_aligned_ea(cpu, insn, 64);
	uint64_t rfbm = ((cpu->gpr[RDX] << 32) | (uint32_t)cpu->gpr[RAX]) & cpu->xcr0;
	emu_read_bytes(cpu, insn->seg, ea, area, XSAVE_AREA_SIZE);
	uint8_t img[512] __attribute__((aligned(16)));
	xs_legacy_image(cpu, insn, img);
	if (rfbm & XCR0_X87) {
		memcpy(area, img, 24);
		memcpy(area + 32, img + 32, 128);
	}
	if (rfbm & XCR0_SSE) {
		memcpy(area + 24, img + 24, 8);
		memcpy(area + 160, img + 160, 256);
	}
	uint64_t bv;
	memcpy(&bv, area + 512, 8);
	bv = (bv & ~rfbm) | (xs_inuse(cpu) & rfbm);
	memcpy(area + 512, &bv, 8);
	emu_write_bytes(cpu, insn->seg, ea, area, XSAVE_AREA_SIZE);
}

/* XRSTOR (standard form, 13.8): #GP on a compacted or malformed header or
 * reserved MXCSR bits; components in RFBM whose XSTATE_BV bit is clear
 * are initialized. */
static void xrstor(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	uint8_t area[XSAVE_AREA_SIZE] __attribute__((aligned(16)));
	xs_check_xsave(cpu);
	uint64_t ea = xs_aligned_ea(cpu, insn, 64);
	uint64_t rfbm = ((cpu->gpr[RDX] << 32) | (uint32_t)cpu->gpr[RAX]) & cpu->xcr0;
	emu_read_bytes(cpu, insn->seg, ea, area, XSAVE_AREA_SIZE);
	uint64_t hdr[8];
	memcpy(hdr, area + 512, 64);
	if (hdr[0] & ~cpu->xcr0)
		emu_raise(cpu, X86_EXC_GP, 0);
	for (unsigned i = 1; i < 8; i++)   /* XCOMP_BV (no XSAVEC) and reserved bytes */
		if (hdr[i])
			emu_raise(cpu, X86_EXC_GP, 0);
	uint32_t mx;
	memcpy(&mx, area + 24, 4);
	if ((rfbm & XCR0_SSE) && !xs_mxcsr_ok(mx))
		emu_raise(cpu, X86_EXC_GP, 0);
	if (rfbm & XCR0_X87) {
		if (hdr[0] & XCR0_X87) {
			fpu_image_load(cpu, area, true, false);
		} else {
			fpu_x87_init(cpu);
			memset(fpu_fx(cpu)->st, 0, sizeof(fpu_fx(cpu)->st));
		}
	}
	if (rfbm & XCR0_SSE) {
		if (hdr[0] & XCR0_SSE)
			fpu_image_load(cpu, area, false, true);
		else
			memset(cpu->xmm, 0, sizeof(cpu->xmm));
		cpu->mxcsr = mx;
	}
}

/* 0F AE /0../7 without prefix.  Register forms of /5 /6 /7 are
 * LFENCE/MFENCE/SFENCE; memory /7 is CLFLUSH, a cache hint here since
 * guest memory is ordinary host memory. */
void xsave_grp15(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	unsigned r = (insn->modrm >> 3) & 7;
	if (insn->mod == 3) {
		if (r >= 5) {
			fpu_fence(cpu, insn);
			return;
		}
		emu_raise_noerr(cpu, X86_EXC_UD);
	}
	switch (r) {
	case 0: fxsave(cpu, insn); return;
	case 1: fxrstor(cpu, insn); return;
	case 2: ldmxcsr(cpu, insn); return;
	case 3: stmxcsr(cpu, insn); return;
	case 4: xsave(cpu, insn); return;
	case 5: xrstor(cpu, insn); return;
	case 6: xsave(cpu, insn); return;   /* XSAVEOPT: may skip unmodified state; writing it is allowed */
	default: return;                    /* CLFLUSH */
	}
}

/* 66 0F AE /6 (mem) CLWB and /7 (mem) CLFLUSHOPT: cache hints. */
void xsave_grp15_66(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	unsigned r = (insn->modrm >> 3) & 7;
	if (insn->mod == 3 || r < 6)
		emu_raise_noerr(cpu, X86_EXC_UD);
}

void emu_fpu_xgetbv(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	if (!(cpu->cr4 & X86_CR4_OSXSAVE))
		emu_raise_noerr(cpu, X86_EXC_UD);
	uint32_t ecx = (uint32_t)cpu->gpr[RCX];
	uint64_t v;
	if (ecx == 0)
		v = cpu->xcr0;
	else if (ecx == 1)
		v = cpu->xcr0 & xs_inuse(cpu);
	else
		emu_raise(cpu, X86_EXC_GP, 0);
	cpu->gpr[RAX] = (uint32_t)v;
	cpu->gpr[RDX] = (uint32_t)(v >> 32);
}

void emu_fpu_xsetbv(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	if (!(cpu->cr4 & X86_CR4_OSXSAVE))
		emu_raise_noerr(cpu, X86_EXC_UD);
	uint64_t v = (cpu->gpr[RDX] << 32) | (uint32_t)cpu->gpr[RAX];
	/* #GP(0): CPL > 0 (V86 counts as CPL 3), ECX != 0, bits the processor
	 * does not support, or x87 cleared (vol. 2B "XSETBV"). */
	if (cpu->cpl != 0 || cpu->mode == EMU_MODE_V86 || (uint32_t)cpu->gpr[RCX] != 0 ||
	    (v & ~XCR0_SUPPORTED) || !(v & XCR0_X87))
		emu_raise(cpu, X86_EXC_GP, 0);
	cpu->xcr0 = v;
	cpu->fpu.xcr0 = v;
}

void emu_fpu_cpuid_xsave(struct emu_cpu *cpu, uint32_t subleaf, uint32_t out[4])
{
	out[0] = out[1] = out[2] = out[3] = 0;
	if (subleaf == 0) {
		out[0] = (uint32_t)XCR0_SUPPORTED;
		out[1] = XSAVE_AREA_SIZE;     /* for the components enabled in XCR0 */
		out[2] = XSAVE_AREA_SIZE;     /* for every supported component */
		out[3] = (uint32_t)(XCR0_SUPPORTED >> 32);
	} else if (subleaf == 1) {
		out[0] = XSAVE_OPT_FEATURES;
	}
}
