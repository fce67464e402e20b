/* Runs SSE floating-point and string instructions on the host CPU with
 * the guest's MXCSR (rounding, DAZ, FTZ), all exceptions masked, and
 * hands back the result and the MXCSR flags; the caller applies the
 * guest's exception masks (SDM vol. 1, 11.5).  The host's MXCSR is saved
 * and restored around each instruction.  Immediate forms are expanded
 * into one instruction per immediate value by the R256 macros. */
#include "cpu/emu/fpu/sse_host.h"

#define HB "stmxcsr %[save]\n\tldmxcsr %[mx]\n\tmovdqa %[d], %%xmm0\n\tmovdqa %[s], %%xmm1\n\t"
#define HE "\n\tmovdqa %%xmm0, %[d]\n\tstmxcsr %[mx]\n\tldmxcsr %[save]"
#define HOUT [d] "+m"(h->d), [mx] "+m"(h->mx), [save] "=m"(save)
#define HIN [s] "m"(h->s)

#define FP2(name, mnem)                                                                   \
	static void name(struct sse_host *h)                                                 \
	{                                                                                     \
		uint32_t save;                                                                    \
		__asm__ volatile(HB mnem " %%xmm1, %%xmm0" HE : HOUT : HIN : "xmm0", "xmm1");     \
	}
#define FP2X(name, mnem)                                                                  \
	void name(struct sse_host *h)                                                        \
	{                                                                                     \
		uint32_t save;                                                                    \
		__asm__ volatile(HB mnem " %%xmm1, %%xmm0" HE : HOUT : HIN : "xmm0", "xmm1");     \
	}

FP2(h_addps, "addps") FP2(h_addpd, "addpd") FP2(h_addss, "addss") FP2(h_addsd, "addsd")
FP2(h_subps, "subps") FP2(h_subpd, "subpd") FP2(h_subss, "subss") FP2(h_subsd, "subsd")
FP2(h_mulps, "mulps") FP2(h_mulpd, "mulpd") FP2(h_mulss, "mulss") FP2(h_mulsd, "mulsd")
FP2(h_divps, "divps") FP2(h_divpd, "divpd") FP2(h_divss, "divss") FP2(h_divsd, "divsd")
FP2(h_minps, "minps") FP2(h_minpd, "minpd") FP2(h_minss, "minss") FP2(h_minsd, "minsd")
FP2(h_maxps, "maxps") FP2(h_maxpd, "maxpd") FP2(h_maxss, "maxss") FP2(h_maxsd, "maxsd")
FP2(h_sqrtps, "sqrtps") FP2(h_sqrtpd, "sqrtpd") FP2(h_sqrtss, "sqrtss") FP2(h_sqrtsd, "sqrtsd")
FP2(h_rsqrtps, "rsqrtps") FP2(h_rsqrtss, "rsqrtss") FP2(h_rcpps, "rcpps") FP2(h_rcpss, "rcpss")
FP2(h_cvtps2pd, "cvtps2pd") FP2(h_cvtpd2ps, "cvtpd2ps") FP2(h_cvtss2sd, "cvtss2sd") FP2(h_cvtsd2ss, "cvtsd2ss")
FP2(h_haddps, "haddps") FP2(h_haddpd, "haddpd") FP2(h_hsubps, "hsubps") FP2(h_hsubpd, "hsubpd")
FP2(h_addsubps, "addsubps") FP2(h_addsubpd, "addsubpd")
FP2X(sse_host_cvtdq2ps, "cvtdq2ps") FP2X(sse_host_cvtps2dq, "cvtps2dq") FP2X(sse_host_cvttps2dq, "cvttps2dq")
FP2X(sse_host_cvtdq2pd, "cvtdq2pd") FP2X(sse_host_cvtpd2dq, "cvtpd2dq") FP2X(sse_host_cvttpd2dq, "cvttpd2dq")

/* GPR -> scalar */
#define FROMG(name, mnem, mod)                                                            \
	void name(struct sse_host *h)                                                        \
	{                                                                                     \
		uint32_t save;                                                                    \
		__asm__ volatile(HB mnem " %" mod "[g], %%xmm0" HE : HOUT : HIN, [g] "r"(h->gin)  \
				 : "xmm0", "xmm1");                                               \
	}
FROMG(sse_host_cvtsi2ss32, "cvtsi2ssl", "k")
FROMG(sse_host_cvtsi2ss64, "cvtsi2ssq", "q")
FROMG(sse_host_cvtsi2sd32, "cvtsi2sdl", "k")
FROMG(sse_host_cvtsi2sd64, "cvtsi2sdq", "q")

/* scalar (in s) -> GPR */
#define TOG(name, mnem, mod)                                                              \
	void name(struct sse_host *h)                                                        \
	{                                                                                     \
		uint32_t save;                                                                    \
		uint64_t out = 0;                                                                 \
		__asm__ volatile(HB mnem " %%xmm1, %" mod "[o]" HE : HOUT, [o] "+r"(out) : HIN    \
				 : "xmm0", "xmm1");                                               \
		h->gout = out;                                                                    \
	}
TOG(sse_host_cvtss2si32, "cvtss2si", "k")
TOG(sse_host_cvtss2si64, "cvtss2si", "q")
TOG(sse_host_cvttss2si32, "cvttss2si", "k")
TOG(sse_host_cvttss2si64, "cvttss2si", "q")
TOG(sse_host_cvtsd2si32, "cvtsd2si", "k")
TOG(sse_host_cvtsd2si64, "cvtsd2si", "q")
TOG(sse_host_cvttsd2si32, "cvttsd2si", "k")
TOG(sse_host_cvttsd2si64, "cvttsd2si", "q")

/* COMIS/UCOMIS: ZF, PF, CF */
#define COMI(name, mnem)                                                                  \
	void name(struct sse_host *h)                                                        \
	{                                                                                     \
		uint32_t save;                                                                    \
		__asm__ volatile(HB mnem " %%xmm1, %%xmm0\n\tsetz %[zf]\n\tsetp %[pf]\n\tsetc %[cf]" HE \
				 : HOUT, [zf] "=m"(h->zf), [pf] "=m"(h->pf), [cf] "=m"(h->cf)     \
				 : HIN : "xmm0", "xmm1", "cc");                                   \
	}
COMI(sse_host_comiss, "comiss")
COMI(sse_host_ucomiss, "ucomiss")
COMI(sse_host_comisd, "comisd")
COMI(sse_host_ucomisd, "ucomisd")

/* Immediate forms. */
#define FPI(mnem, k) \
	__asm__ volatile(HB mnem " %[imm], %%xmm1, %%xmm0" HE : HOUT : HIN, [imm] "i"(k) : "xmm0", "xmm1")

#define R4(M, b) M((b) + 0) M((b) + 1) M((b) + 2) M((b) + 3)
#define R8(M, b) R4(M, b) R4(M, (b) + 4)
#define R16(M, b) R4(M, b) R4(M, (b) + 4) R4(M, (b) + 8) R4(M, (b) + 12)
#define R256(M) R16(M, 0x00) R16(M, 0x10) R16(M, 0x20) R16(M, 0x30) R16(M, 0x40) R16(M, 0x50) \
	R16(M, 0x60) R16(M, 0x70) R16(M, 0x80) R16(M, 0x90) R16(M, 0xa0) R16(M, 0xb0)              \
	R16(M, 0xc0) R16(M, 0xd0) R16(M, 0xe0) R16(M, 0xf0)

#define IMMFN(name, mnem, R, mask)                       \
	void name(struct sse_host *h)                        \
	{                                                    \
		uint32_t save;                                   \
		switch (h->imm & (mask)) {                       \
		R(C_##name)                                      \
		default: break;                                  \
		}                                                \
	}
/* legacy SSE CMPccPS: only imm[2:0] (vol. 2A "CMPPS") */
#define C_sse_host_cmpps(k) case k: FPI("cmpps", k); break;
#define C_sse_host_cmppd(k) case k: FPI("cmppd", k); break;
#define C_sse_host_cmpss(k) case k: FPI("cmpss", k); break;
#define C_sse_host_cmpsd(k) case k: FPI("cmpsd", k); break;
#define R8_0(M) R8(M, 0)
IMMFN(sse_host_cmpps, "cmpps", R8_0, 7)
IMMFN(sse_host_cmppd, "cmppd", R8_0, 7)
IMMFN(sse_host_cmpss, "cmpss", R8_0, 7)
IMMFN(sse_host_cmpsd, "cmpsd", R8_0, 7)
#define C_sse_host_roundps(k) case k: FPI("roundps", k); break;
#define C_sse_host_roundpd(k) case k: FPI("roundpd", k); break;
#define C_sse_host_roundss(k) case k: FPI("roundss", k); break;
#define C_sse_host_roundsd(k) case k: FPI("roundsd", k); break;
#define R16_0(M) R16(M, 0)
IMMFN(sse_host_roundps, "roundps", R16_0, 15)
IMMFN(sse_host_roundpd, "roundpd", R16_0, 15)
IMMFN(sse_host_roundss, "roundss", R16_0, 15)
IMMFN(sse_host_roundsd, "roundsd", R16_0, 15)
#define C_sse_host_dpps(k) case k: FPI("dpps", k); break;
#define C_sse_host_dppd(k) case k: FPI("dppd", k); break;
IMMFN(sse_host_dpps, "dpps", R256, 0xff)
/* DPPD uses imm[5:4] and imm[1:0]; other bits are ignored. */
IMMFN(sse_host_dppd, "dppd", R256, 0x33)

/* PCMPxSTRx (vol. 2B, 4.1): explicit lengths in EAX/EDX, results in ECX or
 * XMM0 and CF/ZF/SF/OF. */
#define PS(mnem, k)                                                                            \
	__asm__ volatile(HB mnem " %[imm], %%xmm1, %%xmm0\n\tsetc %[cf]\n\tsetz %[zf]\n\tsets %[sf]\n\tseto %[of]" HE \
			 : HOUT, [zf] "=m"(h->zf), [cf] "=m"(h->cf), [sf] "=m"(h->sf), [of] "=m"(h->of), "=c"(ecx) \
			 : HIN, [imm] "i"(k), "a"((uint32_t)h->gin), "d"((uint32_t)h->gin2)           \
			 : "xmm0", "xmm1", "cc")
#define C_ESTRM(k) case k: PS("pcmpestrm", k); break;
#define C_ESTRI(k) case k: PS("pcmpestri", k); break;
#define C_ISTRM(k) case k: PS("pcmpistrm", k); break;
#define C_ISTRI(k) case k: PS("pcmpistri", k); break;

void sse_host_pcmpstr(struct sse_host *h, unsigned kind)
{
	uint32_t save, ecx = 0;
	switch (kind) {
	case 0: switch (h->imm) { R256(C_ESTRM) } break;
	case 1: switch (h->imm) { R256(C_ESTRI) } break;
	case 2: switch (h->imm) { R256(C_ISTRM) } break;
	default: switch (h->imm) { R256(C_ISTRI) } break;
	}
	h->gout = ecx;
}

/* The host routine and the memory operand size of each opcode that
 * sse_fp.c's sse_fp_rm executes, [map][opcode][mandatory prefix]
 * (SDM vol. 2: ps/pd take an aligned m128, ss m32, sd m64; the opcode
 * table, core/handlers.c, sends these rows to sse_fp_rm). */
#define OP(f, size) { (f), (size) }
const struct sse_host_op sse_host_ops[EMU_MAP_COUNT][256][EMU_MP_COUNT] = {
	[EMU_MAP_0F] = {
		[0x51] = { OP(h_sqrtps, 16), OP(h_sqrtpd, 16), OP(h_sqrtss, 4), OP(h_sqrtsd, 8) },
		[0x52] = { [EMU_MP_NONE] = OP(h_rsqrtps, 16), [EMU_MP_F3] = OP(h_rsqrtss, 4) },
		[0x53] = { [EMU_MP_NONE] = OP(h_rcpps, 16), [EMU_MP_F3] = OP(h_rcpss, 4) },
		[0x58] = { OP(h_addps, 16), OP(h_addpd, 16), OP(h_addss, 4), OP(h_addsd, 8) },
		[0x59] = { OP(h_mulps, 16), OP(h_mulpd, 16), OP(h_mulss, 4), OP(h_mulsd, 8) },
		[0x5a] = { OP(h_cvtps2pd, 8), OP(h_cvtpd2ps, 16), OP(h_cvtss2sd, 4), OP(h_cvtsd2ss, 8) },
		[0x5b] = { OP(sse_host_cvtdq2ps, 16), OP(sse_host_cvtps2dq, 16), OP(sse_host_cvttps2dq, 16) },
		[0x5c] = { OP(h_subps, 16), OP(h_subpd, 16), OP(h_subss, 4), OP(h_subsd, 8) },
		[0x5d] = { OP(h_minps, 16), OP(h_minpd, 16), OP(h_minss, 4), OP(h_minsd, 8) },
		[0x5e] = { OP(h_divps, 16), OP(h_divpd, 16), OP(h_divss, 4), OP(h_divsd, 8) },
		[0x5f] = { OP(h_maxps, 16), OP(h_maxpd, 16), OP(h_maxss, 4), OP(h_maxsd, 8) },
		[0x7c] = { [EMU_MP_66] = OP(h_haddpd, 16), [EMU_MP_F2] = OP(h_haddps, 16) },
		[0x7d] = { [EMU_MP_66] = OP(h_hsubpd, 16), [EMU_MP_F2] = OP(h_hsubps, 16) },
		[0xc2] = { OP(sse_host_cmpps, 16), OP(sse_host_cmppd, 16), OP(sse_host_cmpss, 4), OP(sse_host_cmpsd, 8) },
		[0xd0] = { [EMU_MP_66] = OP(h_addsubpd, 16), [EMU_MP_F2] = OP(h_addsubps, 16) },
		[0xe6] = { [EMU_MP_66] = OP(sse_host_cvttpd2dq, 16), [EMU_MP_F3] = OP(sse_host_cvtdq2pd, 8),
			   [EMU_MP_F2] = OP(sse_host_cvtpd2dq, 16) },
	},
	[EMU_MAP_0F3A] = {
		[0x08] = { [EMU_MP_66] = OP(sse_host_roundps, 16) },
		[0x09] = { [EMU_MP_66] = OP(sse_host_roundpd, 16) },
		[0x0a] = { [EMU_MP_66] = OP(sse_host_roundss, 4) },
		[0x0b] = { [EMU_MP_66] = OP(sse_host_roundsd, 8) },
		[0x40] = { [EMU_MP_66] = OP(sse_host_dpps, 16) },
		[0x41] = { [EMU_MP_66] = OP(sse_host_dppd, 16) },
	},
};
