/* Runs one x87 operation on the host FPU with the guest's control word.
 *
 * The host is x86-64, so its x87 unit computes exactly what the guest's
 * would: same 80-bit format, same precision and rounding control, same
 * transcendental microcode family.  Every operand enters and leaves as an
 * 80-bit image (FLD m80/FSTP m80 neither round nor raise, SDM vol. 2A
 * "FLD"), exceptions are all masked on the host, and the status word is
 * read back so the caller can apply the guest's own masks.  FNINIT at both
 * ends leaves the host FPU in its default state for the rest of vessel.
 */
#include "cpu/emu/fpu/x87_host.h"

#include <stddef.h>

#define HX(body)                                                                          \
	__asm__ volatile("fninit\n\tfldcw %c[cw](%[h])\n\t" body "\n\tfninit"                 \
			 :                                                                \
			 : [h] "r"(h), [cw] "i"(offsetof(struct x87_host, cw)),             \
			   [a] "i"(offsetof(struct x87_host, a)),                           \
			   [b] "i"(offsetof(struct x87_host, b)),                           \
			   [r0] "i"(offsetof(struct x87_host, r0)),                         \
			   [r1] "i"(offsetof(struct x87_host, r1)),                         \
			   [m] "i"(offsetof(struct x87_host, m)),                           \
			   [sw] "i"(offsetof(struct x87_host, sw))                          \
			 : "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)")

#define LA  "fldt %c[a](%[h])\n\t"
#define LB  "fldt %c[b](%[h])\n\t"
#define SR0 "fstpt %c[r0](%[h])\n\t"
#define SR1 "fstpt %c[r1](%[h])\n\t"
#define SW  "fnstsw %c[sw](%[h])\n\t"
#define M   " %c[m](%[h])\n\t"

/* st0 = a op memory operand, in the four memory types. */
#define MEMOPS(OP, mn)                                                      \
	case OP##_F32: HX(LA "f" mn "s" M SW SR0); break;                      \
	case OP##_F64: HX(LA "f" mn "l" M SW SR0); break;                      \
	case OP##_I16: HX(LA "fi" mn "s" M SW SR0); break;                     \
	case OP##_I32: HX(LA "fi" mn "l" M SW SR0); break;

void x87_host_run(enum x87_hop op, struct x87_host *h)
{
	h->cw |= 0x3f;   /* all exceptions masked on the host; the guest's masks apply later */
	h->cw |= 0x40;   /* reserved bit 6 reads as 1 on every x87 since the 387 */
	switch (op) {
	case XH_ADD: HX(LB LA "fadd %%st(1), %%st\n\t" SW SR0); break;
	case XH_MUL: HX(LB LA "fmul %%st(1), %%st\n\t" SW SR0); break;
	case XH_SUB: HX(LB LA "fsub %%st(1), %%st\n\t" SW SR0); break;
	case XH_DIV: HX(LB LA "fdiv %%st(1), %%st\n\t" SW SR0); break;
	case XH_COM: HX(LB LA "fcom %%st(1)\n\t" SW); break;
	case XH_UCOM: HX(LB LA "fucom %%st(1)\n\t" SW); break;
	MEMOPS(XH_ADD, "add")
	MEMOPS(XH_MUL, "mul")
	MEMOPS(XH_SUB, "sub")
	MEMOPS(XH_SUBR, "subr")
	MEMOPS(XH_DIV, "div")
	MEMOPS(XH_DIVR, "divr")
	MEMOPS(XH_COM, "com")
	case XH_TST: HX(LA "ftst\n\t" SW); break;
	case XH_XAM: HX(LA "fxam\n\t" SW); break;
	case XH_SQRT: HX(LA "fsqrt\n\t" SW SR0); break;
	case XH_SIN: HX(LA "fsin\n\t" SW SR0); break;
	case XH_COS: HX(LA "fcos\n\t" SW SR0); break;
	case XH_RNDINT: HX(LA "frndint\n\t" SW SR0); break;
	case XH_F2XM1: HX(LA "f2xm1\n\t" SW SR0); break;
	case XH_SINCOS: HX(LA "fsincos\n\t" SW SR0 SR1); break;
	case XH_PTAN: HX(LA "fptan\n\t" SW SR0 SR1); break;
	case XH_XTRACT: HX(LA "fxtract\n\t" SW SR0 SR1); break;
	case XH_PATAN: HX(LB LA "fpatan\n\t" SW SR0); break;
	case XH_YL2X: HX(LB LA "fyl2x\n\t" SW SR0); break;
	case XH_YL2XP1: HX(LB LA "fyl2xp1\n\t" SW SR0); break;
	case XH_SCALE: HX(LB LA "fscale\n\t" SW SR0); break;
	case XH_PREM: HX(LB LA "fprem\n\t" SW SR0); break;
	case XH_PREM1: HX(LB LA "fprem1\n\t" SW SR0); break;
	case XH_LD_F32: HX("flds" M SW SR0); break;
	case XH_LD_F64: HX("fldl" M SW SR0); break;
	case XH_LD_I16: HX("filds" M SW SR0); break;
	case XH_LD_I32: HX("fildl" M SW SR0); break;
	case XH_LD_I64: HX("fildll" M SW SR0); break;
	case XH_LD_BCD: HX("fbld" M SW SR0); break;
	case XH_ST_F32: HX(LA "fstps" M SW); break;
	case XH_ST_F64: HX(LA "fstpl" M SW); break;
	case XH_ST_I16: HX(LA "fistps" M SW); break;
	case XH_ST_I32: HX(LA "fistpl" M SW); break;
	case XH_ST_I64: HX(LA "fistpll" M SW); break;
	case XH_STT_I16: HX(LA "fisttps" M SW); break;
	case XH_STT_I32: HX(LA "fisttpl" M SW); break;
	case XH_STT_I64: HX(LA "fisttpll" M SW); break;
	case XH_ST_BCD: HX(LA "fbstp" M SW); break;
	case XH_LD1: HX("fld1\n\t" SW SR0); break;
	case XH_LDL2T: HX("fldl2t\n\t" SW SR0); break;
	case XH_LDL2E: HX("fldl2e\n\t" SW SR0); break;
	case XH_LDPI: HX("fldpi\n\t" SW SR0); break;
	case XH_LDLG2: HX("fldlg2\n\t" SW SR0); break;
	case XH_LDLN2: HX("fldln2\n\t" SW SR0); break;
	case XH_LDZ: HX("fldz\n\t" SW SR0); break;
	default: h->sw = 0; break;
	}
}
