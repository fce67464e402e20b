/* Host execution of SSE floating-point and string instructions (see
 * sse_host.c). */
#ifndef VESSEL_CPU_EMU_FPU_SSE_HOST_H
#define VESSEL_CPU_EMU_FPU_SSE_HOST_H

#include "cpu/emu/fpu/fpu.h"

struct sse_host {
	union fpu_vec d, s;   /* destination/first and source/second operands */
	uint64_t gin;         /* general-purpose input (CVTSI2SS source, PCMPESTR EAX) */
	uint64_t gin2;        /* PCMPESTR EDX */
	uint64_t gout;        /* general-purpose result (CVTSS2SI, PCMPxSTRI ECX) */
	uint32_t mx;          /* MXCSR in (masks forced on) and out */
	uint8_t imm;
	uint8_t zf, pf, cf, sf, of;   /* EFLAGS results of COMIS/PCMPxSTR */
} __attribute__((aligned(16)));

typedef void (*sse_host_fn)(struct sse_host *h);

struct sse_host_op {
	sse_host_fn fn;
	uint8_t msize;    /* memory operand size: 4, 8 or 16 (16 = aligned m128) */
};
/* [map][opcode][mandatory prefix] of sse_fp_rm's opcodes; fn NULL elsewhere. */
extern const struct sse_host_op sse_host_ops[EMU_MAP_COUNT][256][EMU_MP_COUNT];

/* Named routines used by the handlers for special forms. */
void sse_host_cvtdq2ps(struct sse_host *h);
void sse_host_cvtdq2pd(struct sse_host *h);
void sse_host_cvtps2dq(struct sse_host *h);
void sse_host_cvttps2dq(struct sse_host *h);
void sse_host_cvtpd2dq(struct sse_host *h);
void sse_host_cvttpd2dq(struct sse_host *h);
void sse_host_cvtsi2ss32(struct sse_host *h);
void sse_host_cvtsi2ss64(struct sse_host *h);
void sse_host_cvtsi2sd32(struct sse_host *h);
void sse_host_cvtsi2sd64(struct sse_host *h);
void sse_host_cvtss2si32(struct sse_host *h);
void sse_host_cvtss2si64(struct sse_host *h);
void sse_host_cvttss2si32(struct sse_host *h);
void sse_host_cvttss2si64(struct sse_host *h);
void sse_host_cvtsd2si32(struct sse_host *h);
void sse_host_cvtsd2si64(struct sse_host *h);
void sse_host_cvttsd2si32(struct sse_host *h);
void sse_host_cvttsd2si64(struct sse_host *h);
void sse_host_comiss(struct sse_host *h);
void sse_host_ucomiss(struct sse_host *h);
void sse_host_comisd(struct sse_host *h);
void sse_host_ucomisd(struct sse_host *h);
void sse_host_cmpps(struct sse_host *h);
void sse_host_cmppd(struct sse_host *h);
void sse_host_cmpss(struct sse_host *h);
void sse_host_cmpsd(struct sse_host *h);
void sse_host_roundps(struct sse_host *h);
void sse_host_roundpd(struct sse_host *h);
void sse_host_roundss(struct sse_host *h);
void sse_host_roundsd(struct sse_host *h);
void sse_host_dpps(struct sse_host *h);
void sse_host_dppd(struct sse_host *h);
/* PCMPxSTRx: kind 0 = ESTRM, 1 = ESTRI, 2 = ISTRM, 3 = ISTRI. */
void sse_host_pcmpstr(struct sse_host *h, unsigned kind);

#endif
