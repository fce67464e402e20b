/* The fpu module's entry points: registration, snapshot accessors, and
 * helpers shared by the x87/MMX/SSE/XSAVE files. */
#include "cpu/emu/fpu/fpu.h"
#include "util/error.h"

#include <errno.h>

void emu_fpu_register(void)
{
	fpu_x87_register();
	fpu_simd_int_register();
	fpu_sse_fp_register();
	fpu_sse_move_register();
	fpu_xsave_register();
}

_Noreturn void fpu_raise_simd(struct emu_cpu *cpu)
{
	if (cpu->cr4 & X86_CR4_OSXMMEXCPT)
		emu_raise_noerr(cpu, X86_EXC_XM);
	emu_raise_noerr(cpu, X86_EXC_UD);
}

/* 16-byte accesses go through the inline TLB path as two 8-byte halves:
 * glibc's memcpy/strlen live on these.  Loads land in *v only (the caller
 * commits), so a fault on the second half leaves nothing behind. */
void fpu_read_m128(struct emu_cpu *cpu, const struct emu_insn *insn, union fpu_vec *v, bool aligned)
{
	uint64_t ea = fpu_ea(cpu, insn);
	if (aligned && (fpu_linear(cpu, insn->seg, ea) & 15))
		emu_raise(cpu, X86_EXC_GP, 0);
	uint64_t lo = emu_read(cpu, insn->seg, ea, 8);
	uint64_t hi = emu_read(cpu, insn->seg, (ea + 8) & emu_size_mask(insn->adsize), 8);
	v->q[0] = lo;
	v->q[1] = hi;
}

/* A store crossing a page goes through emu_write_bytes, which checks
 * every page before writing any byte (no partial store on a fault). */
void fpu_write_m128(struct emu_cpu *cpu, const struct emu_insn *insn, const union fpu_vec *v, bool aligned)
{
	uint64_t ea = fpu_ea(cpu, insn);
	uint64_t lin = fpu_linear(cpu, insn->seg, ea);
	if (aligned && (lin & 15))
		emu_raise(cpu, X86_EXC_GP, 0);
	if ((lin & 0xfff) > 0xff0) {
		emu_write_bytes(cpu, insn->seg, ea, v->b, 16);
		return;
	}
	emu_write(cpu, insn->seg, ea, 8, v->q[0]);
	emu_write(cpu, insn->seg, (ea + 8) & emu_size_mask(insn->adsize), 8, v->q[1]);
}

/* Power-on/INIT state of the x87/SSE unit (SDM vol. 3A, 9.1.1, table 9-1):
 * FCW 0x0040 at power-up but 0x037F after FINIT; vessel starts guests as
 * firmware leaves them, with FINIT state and MXCSR 0x1F80. */
void emu_fpu_reset(struct emu_cpu *cpu)
{
	memset(cpu->fpu.fxsave, 0, sizeof(cpu->fpu.fxsave));
	fpu_x87_init(cpu);
	memset(cpu->xmm, 0, sizeof(cpu->xmm));
	cpu->mxcsr = MXCSR_DEFAULT;
	cpu->xcr0 = XCR0_X87;
	cpu->fpu.xcr0 = XCR0_X87;
}

/* Standard FXSAVE image (stack-ordered registers, XMM, MXCSR) from the
 * internal state; used by FXSAVE, XSAVE and the snapshot accessor. */
void fpu_image_store(struct emu_cpu *cpu, uint8_t *img)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	struct fpu_fx *out = (struct fpu_fx *)img;
	unsigned top = (fx->fsw >> 11) & 7;
	memcpy(out, fx, 32);
	for (unsigned i = 0; i < 8; i++)
		memcpy(out->st[i].b, fx->st[(top + i) & 7].b, 16);
	out->mxcsr = cpu->mxcsr;
	out->mxcsr_mask = MXCSR_MASK_SUPPORTED;
	memcpy(out->xmm, cpu->xmm, sizeof(out->xmm));
	memset(out->rsvd2, 0, sizeof(out->rsvd2));
}

/* The inverse; the caller has validated MXCSR. */
void fpu_image_load(struct emu_cpu *cpu, const uint8_t *img, bool x87, bool sse)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	const struct fpu_fx *in = (const struct fpu_fx *)img;
	if (x87) {
		memcpy(fx, in, 24);
		unsigned top = (in->fsw >> 11) & 7;
		for (unsigned i = 0; i < 8; i++) {
			memcpy(fx->st[(top + i) & 7].b, in->st[i].b, 10);
			memset(fx->st[(top + i) & 7].b + 10, 0, 6);
		}
		fx->rsvd1 = 0;
	}
	if (sse)
		memcpy(cpu->xmm, in->xmm, sizeof(cpu->xmm));
}

void emu_fpu_get(struct emu_cpu *cpu, struct x86_fpu *out)
{
	fpu_image_store(cpu, out->fxsave);
	out->xcr0 = cpu->xcr0;
}

int emu_fpu_set(struct emu_cpu *cpu, const struct x86_fpu *in)
{
	const struct fpu_fx *img = (const struct fpu_fx *)in->fxsave;
	uint64_t xcr0 = in->xcr0 ? in->xcr0 : XCR0_X87;
	if (img->mxcsr & ~(uint32_t)MXCSR_MASK_SUPPORTED)
		return err_set(-EINVAL, "FPU state: reserved MXCSR bits set (0x%x)", img->mxcsr);
	if (!(xcr0 & XCR0_X87) || (xcr0 & ~XCR0_SUPPORTED))
		return err_set(-EINVAL, "FPU state: unsupported XCR0 0x%llx", (unsigned long long)xcr0);
	fpu_image_load(cpu, in->fxsave, true, true);
	cpu->mxcsr = img->mxcsr;
	cpu->xcr0 = xcr0;
	cpu->fpu.xcr0 = xcr0;
	return 0;
}
