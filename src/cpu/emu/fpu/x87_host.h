/* Host x87 execution of single guest x87 operations (see x87_host.c). */
#ifndef VESSEL_CPU_EMU_FPU_X87_HOST_H
#define VESSEL_CPU_EMU_FPU_X87_HOST_H

#include <stdint.h>

enum x87_hop {
	/* st0 = a, st1 = b; result r0 (compares: status only) */
	XH_ADD, XH_MUL, XH_SUB, XH_DIV, XH_COM, XH_UCOM,
	/* st0 = a op m, m in float32/float64/int16/int32 */
	XH_ADD_F32, XH_ADD_F64, XH_ADD_I16, XH_ADD_I32,
	XH_MUL_F32, XH_MUL_F64, XH_MUL_I16, XH_MUL_I32,
	XH_SUB_F32, XH_SUB_F64, XH_SUB_I16, XH_SUB_I32,
	XH_SUBR_F32, XH_SUBR_F64, XH_SUBR_I16, XH_SUBR_I32,
	XH_DIV_F32, XH_DIV_F64, XH_DIV_I16, XH_DIV_I32,
	XH_DIVR_F32, XH_DIVR_F64, XH_DIVR_I16, XH_DIVR_I32,
	XH_COM_F32, XH_COM_F64, XH_COM_I16, XH_COM_I32,
	/* unary on a */
	XH_TST, XH_XAM, XH_SQRT, XH_SIN, XH_COS, XH_RNDINT, XH_F2XM1,
	/* a -> r0 = new st0, r1 = new st1 */
	XH_SINCOS, XH_PTAN, XH_XTRACT,
	/* st0 = a, st1 = b -> r0 */
	XH_PATAN, XH_YL2X, XH_YL2XP1, XH_SCALE, XH_PREM, XH_PREM1,
	/* m -> r0 */
	XH_LD_F32, XH_LD_F64, XH_LD_I16, XH_LD_I32, XH_LD_I64, XH_LD_BCD,
	/* a -> m */
	XH_ST_F32, XH_ST_F64, XH_ST_I16, XH_ST_I32, XH_ST_I64,
	XH_STT_I16, XH_STT_I32, XH_STT_I64, XH_ST_BCD,
	/* constants -> r0 */
	XH_LD1, XH_LDL2T, XH_LDL2E, XH_LDPI, XH_LDLG2, XH_LDLN2, XH_LDZ,
};

struct x87_host {
	uint8_t a[16], b[16];     /* 80-bit operands (st0, st1) */
	uint8_t r0[16], r1[16];   /* 80-bit results */
	uint8_t m[16];            /* memory operand, in its memory format */
	uint16_t cw;              /* guest control word (masks forced on) */
	uint16_t sw;              /* host status word after the operation */
} __attribute__((aligned(16)));

void x87_host_run(enum x87_hop op, struct x87_host *h);

#endif
