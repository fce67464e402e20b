/* Internal definitions of the emu engine's fpu module: x87, MMX, SSE and
 * XSAVE.  Shared by x87.c, mmx_sse_int.c, sse_fp.c, sse_move.c, xsave.c.
 *
 * State layout.  cpu->fpu.fxsave is a standard FXSAVE image for the x87
 * part (SDM vol. 1, 10.5.1, table 10-2): the eight 80-bit registers in
 * stack order (slot i = ST(i)), the abridged tag word by physical register
 * (bit i set = physical register i in use), FCW/FSW/FOP/FIP/FDP.  Moving
 * TOP therefore rotates the slots; the full tag word that FSTENV/FSAVE
 * store is derived from the contents as the processor does (vol. 1,
 * 8.1.7).  cpu->xmm and cpu->mxcsr are the authoritative XMM registers
 * and MXCSR; the image's copies are filled in by FXSAVE/XSAVE and
 * emu_fpu_get().  MMX register i is the mantissa of physical register i,
 * i.e. slot (i - TOP) & 7 (vol. 1, 9.5); MMX instructions set TOP = 0.
 */
#ifndef VESSEL_CPU_EMU_FPU_FPU_H
#define VESSEL_CPU_EMU_FPU_FPU_H

#include "cpu/emu/emu.h"
#include "cpu/emu/operand.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fpu_fx {
	uint16_t fcw, fsw;
	uint8_t ftw, rsvd1;      /* abridged tag: bit i set = physical register i in use */
	uint16_t fop;
	uint64_t fip;            /* 64-bit form; 32-bit form keeps FCS in bits 32-47 */
	uint64_t fdp;            /* likewise with FDS */
	uint32_t mxcsr, mxcsr_mask;
	struct { uint8_t b[16]; } st[8];   /* stack order: slot i = ST(i) */
	uint8_t xmm[16][16];
	uint8_t rsvd2[96];
};
_Static_assert(sizeof(struct fpu_fx) == 512, "FXSAVE image is 512 bytes");

static inline struct fpu_fx *fpu_fx(struct emu_cpu *cpu)
{
	return (struct fpu_fx *)cpu->fpu.fxsave;
}

/* x87 status word bits (SDM vol. 1, 8.1.3) */
#define FSW_IE  0x0001
#define FSW_DE  0x0002
#define FSW_ZE  0x0004
#define FSW_OE  0x0008
#define FSW_UE  0x0010
#define FSW_PE  0x0020
#define FSW_SF  0x0040
#define FSW_ES  0x0080
#define FSW_C0  0x0100
#define FSW_C1  0x0200
#define FSW_C2  0x0400
#define FSW_TOP 0x3800
#define FSW_C3  0x4000
#define FSW_B   0x8000
#define FSW_CC  (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)
#define FSW_EXC 0x003f

/* MXCSR bits (SDM vol. 1, 10.2.3) */
#define MXCSR_FLAGS 0x003f
#define MXCSR_DAZ   0x0040
#define MXCSR_MASKS 0x1f80
#define MXCSR_FZ    0x8000
#define MXCSR_MASK_SUPPORTED 0xffff   /* value FXSAVE reports in MXCSR_MASK */
#define FCW_DEFAULT 0x037f
#define MXCSR_DEFAULT 0x1f80

/* XCR0 components this engine supports (SDM vol. 1, 13.1). */
#define XCR0_X87 0x1ull
#define XCR0_SSE 0x2ull
#define XCR0_SUPPORTED (XCR0_X87 | XCR0_SSE)

union fpu_vec {
	uint8_t b[16];
	int8_t sb[16];
	uint16_t w[8];
	int16_t sw[8];
	uint32_t d[4];
	int32_t sd[4];
	uint64_t q[2];
	int64_t sq[2];
	float f[4];
	double df[2];
};

/* ---- availability checks (raise on failure) ---- */
/* x87 waiting instruction: #NM if CR0.EM or CR0.TS, then a pending
 * unmasked x87 exception is delivered as #MF (SDM vol. 1, 8.6). */
void fpu_check_x87(struct emu_cpu *cpu);
/* x87 non-waiting control instruction (FNINIT, FNSTSW...): #NM only. */
void fpu_check_x87_nowait(struct emu_cpu *cpu);
/* MMX: #UD if CR0.EM, #NM if CR0.TS, #MF if an x87 exception is pending
 * (SDM vol. 2, table 23-... "Exceptions for MMX instructions"). */
void fpu_check_mmx(struct emu_cpu *cpu);
/* SSE: #UD if CR0.EM or !CR4.OSFXSR, #NM if CR0.TS (SDM vol. 2, 2.5.1). */
static inline void fpu_check_sse(struct emu_cpu *cpu)
{
	if (__builtin_expect((cpu->cr0 & (X86_CR0_EM | X86_CR0_TS)) || !(cpu->cr4 & X86_CR4_OSFXSR), 0)) {
		if ((cpu->cr0 & X86_CR0_EM) || !(cpu->cr4 & X86_CR4_OSFXSR))
			emu_raise_noerr(cpu, X86_EXC_UD);
		emu_raise_noerr(cpu, X86_EXC_NM);
	}
}

/* MMX state transition: TOP = 0, all registers valid (SDM vol. 1, 9.5.1).
 * With TOP != 0 the slots rotate so physical register i lands in slot i. */
void fpu_mmx_enter_slow(struct emu_cpu *cpu);
static inline void fpu_mmx_enter(struct emu_cpu *cpu)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	if (__builtin_expect(fx->fsw & FSW_TOP, 0))
		fpu_mmx_enter_slow(cpu);
	fx->ftw = 0xff;
}

static inline unsigned fpu_mmx_slot(struct emu_cpu *cpu, unsigned i)
{
	return (i - ((fpu_fx(cpu)->fsw >> 11) & 7)) & 7;
}

/* Writes MMX register i: mantissa = v, exponent/sign bits 79:64 = all ones. */
static inline void fpu_mmx_set(struct emu_cpu *cpu, unsigned i, uint64_t v)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	unsigned s = fpu_mmx_slot(cpu, i);
	memcpy(fx->st[s].b, &v, 8);
	fx->st[s].b[8] = 0xff;
	fx->st[s].b[9] = 0xff;
}

static inline uint64_t fpu_mmx_get(struct emu_cpu *cpu, unsigned i)
{
	uint64_t v;
	memcpy(&v, fpu_fx(cpu)->st[fpu_mmx_slot(cpu, i)].b, 8);
	return v;
}

/* Raises the SIMD floating-point exception: #XM with CR4.OSXMMEXCPT,
 * else #UD (SDM vol. 1, 11.5.2). */
_Noreturn void fpu_raise_simd(struct emu_cpu *cpu);

/* Guest 16-byte memory operand: #GP(0) when misaligned and aligned is set
 * (SDM vol. 1, 11.4.1 "legacy SSE instructions require 16-byte alignment"). */
void fpu_read_m128(struct emu_cpu *cpu, const struct emu_insn *insn, union fpu_vec *v, bool aligned);
void fpu_write_m128(struct emu_cpu *cpu, const struct emu_insn *insn, const union fpu_vec *v, bool aligned);

/* ---- the handlers each file gives the opcode table (core/handlers.c) ---- */
/* x87.c: the D8-DF escapes, FWAIT */
EMU_HANDLER(x87_d8); EMU_HANDLER(x87_d9); EMU_HANDLER(x87_da); EMU_HANDLER(x87_db);
EMU_HANDLER(x87_dc); EMU_HANDLER(x87_dd); EMU_HANDLER(x87_de); EMU_HANDLER(x87_df); EMU_HANDLER(x87_fwait);
/* simd_int.c: MMX/SSE integer operations; simd_int_mmx/xmm execute the
 * operation its table holds for the opcode and prefix */
EMU_HANDLER(simd_int_mmx); EMU_HANDLER(simd_int_xmm); EMU_HANDLER(simd_shift_imm); EMU_HANDLER(simd_blendv);
EMU_HANDLER(simd_ptest); EMU_HANDLER(simd_pmovx);
/* XMM forms of the commonest, inline on SSE2 */
EMU_HANDLER(simd_fx_pxor); EMU_HANDLER(simd_fx_por); EMU_HANDLER(simd_fx_pand); EMU_HANDLER(simd_fx_pandn);
EMU_HANDLER(simd_fx_pcmpeqb); EMU_HANDLER(simd_fx_pcmpeqw); EMU_HANDLER(simd_fx_pcmpeqd); EMU_HANDLER(simd_fx_pminub);
EMU_HANDLER(simd_fx_pmaxub); EMU_HANDLER(simd_fx_psubb); EMU_HANDLER(simd_fx_paddb); EMU_HANDLER(simd_fx_paddq);
EMU_HANDLER(simd_fx_punpcklbw);
/* sse_fp.c: floating point (sse_fp_rm: the host operation sse_host.c's
 * table holds for the opcode and prefix), conversions, compares, string
 * compares */
EMU_HANDLER(sse_fp_rm); EMU_HANDLER(sse_cvtsi2s); EMU_HANDLER(sse_cvts2si); EMU_HANDLER(sse_cvt_mmx);
EMU_HANDLER(sse_comis); EMU_HANDLER(sse_pcmpstr);
/* sse_move.c: moves, shuffles, logic, inserts and extracts, EMMS */
EMU_HANDLER(sse_mov_load_u); EMU_HANDLER(sse_mov_load_a); EMU_HANDLER(sse_mov_store_u); EMU_HANDLER(sse_mov_store_a);
EMU_HANDLER(sse_mov_load_mem_only); EMU_HANDLER(sse_mov_store_nt); EMU_HANDLER(sse_mov_scalar);
EMU_HANDLER(sse_mov_half); EMU_HANDLER(sse_fp_logic); EMU_HANDLER(sse_fp_shuffle); EMU_HANDLER(sse_fp_movmsk);
EMU_HANDLER(sse_mov_d_to_vec); EMU_HANDLER(sse_mov_d_from_vec); EMU_HANDLER(sse_mov_mmx_q); EMU_HANDLER(sse_mov_d6);
EMU_HANDLER(sse_pmovmskb); EMU_HANDLER(sse_pinsrw_pextrw); EMU_HANDLER(sse_pextr); EMU_HANDLER(sse_pinsr);
EMU_HANDLER(sse_maskmov); EMU_HANDLER(sse_emms); EMU_HANDLER(sse_movnti); EMU_HANDLER(sse_hint_nop);
/* xsave.c: group 15 (FXSAVE..CLFLUSH; 66: CLWB/CLFLUSHOPT) */
EMU_HANDLER(xsave_grp15); EMU_HANDLER(xsave_grp15_66);

/* Memory fence (LFENCE/MFENCE/SFENCE), sse_move.c */
void fpu_fence(struct emu_cpu *cpu, const struct emu_insn *insn);

/* x87 helpers shared with xsave.c */
uint16_t fpu_x87_full_tag(struct emu_cpu *cpu);
void fpu_x87_init(struct emu_cpu *cpu);
/* Standard FXSAVE image <-> internal state (fpu.c). */
void fpu_image_store(struct emu_cpu *cpu, uint8_t *img);
void fpu_image_load(struct emu_cpu *cpu, const uint8_t *img, bool x87, bool sse);

#endif
