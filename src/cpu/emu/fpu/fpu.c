/* The fpu module's entry points: snapshot accessors, and
 * helpers shared by the x87/MMX/SSE/XSAVE files. */
#include "cpu/emu/fpu/fpu.h"
#include "util/error.h"

#include <errno.h>
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
	uint64_t ea = emu_insn_ea(cpu, insn);
	if (aligned && (emu_seg_linear(cpu, insn->seg, ea) & 15))
		emu_raise(cpu, X86_EXC_GP, 0);
	/* One TLB lookup for the whole operand when it sits in one page (the
	 * same hit test as emu_read's inline path). */
	uint64_t lin;
	if (__builtin_expect(emu_seg_fast_ok(cpu, insn->seg, ea, 16, 0x9c, 0x90, &lin), 1)) {
		const struct emu_tlb_entry *e = &cpu->tlb[emu_mmu_index(cpu)][emu_tlb_index(cpu, lin)];
		if (__builtin_expect(e->tag_read == ((lin & ~0xfffull) | cpu->asid) && (lin & 0xfff) <= 4096 - 16, 1)) {
			memcpy(v->b, (const void *)(uintptr_t)(lin + e->addend), 16);
			return;
		}
	}
	uint64_t lo = emu_read(cpu, insn->seg, ea, 8);
	uint64_t hi = emu_read(cpu, insn->seg, (ea + 8) & emu_size_mask(insn->adsize), 8);
	v->q[0] = lo;
	v->q[1] = hi;
}

/* A store crossing a page goes through emu_write_bytes, which checks
 * every page before writing any byte (no partial store on a fault). */
void fpu_write_m128(struct emu_cpu *cpu, const struct emu_insn *insn, const union fpu_vec *v, bool aligned)
{
	uint64_t ea = emu_insn_ea(cpu, insn);
	uint64_t lin = emu_seg_linear(cpu, insn->seg, ea);
	if (aligned && (lin & 15))
		emu_raise(cpu, X86_EXC_GP, 0);
	if ((lin & 0xfff) > 0xff0) {
		emu_write_bytes(cpu, insn->seg, ea, v->b, 16);
		return;
	}
	uint64_t flin;
	if (__builtin_expect(emu_seg_fast_ok(cpu, insn->seg, ea, 16, 0x9e, 0x92, &flin), 1)) {
		const struct emu_tlb_entry *e = &cpu->tlb[emu_mmu_index(cpu)][emu_tlb_index(cpu, flin)];
		if (__builtin_expect(e->tag_write == ((flin & ~0xfffull) | cpu->asid), 1)) {
			memcpy((void *)(uintptr_t)(flin + e->addend), v->b, 16);
			return;
		}
	}
	emu_write(cpu, insn->seg, ea, 8, v->q[0]);
	emu_write(cpu, insn->seg, (ea + 8) & emu_size_mask(insn->adsize), 8, v->q[1]);
}

/* Power-up state of the x87/SSE unit (SDM vol. 3A, 9.1.1, table 9-1):
 * FCW 0040H, FSW 0, tag word 5555H (every register tagged zero, all
 * registers +0.0), FIP/FDP/FOP 0, MXCSR 1F80H, XMM 0, XCR0 = x87 only.
 * Firmware and operating systems run FNINIT before using the x87. */
void emu_fpu_reset(struct emu_cpu *cpu)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	memset(cpu->fpu.fxsave, 0, sizeof(cpu->fpu.fxsave));
	fx->fcw = 0x0040;
	fx->ftw = 0xff;     /* abridged: all in use; the contents make them "zero" */
	memset(cpu->xmm, 0, sizeof(cpu->xmm));
	cpu->mxcsr = MXCSR_DEFAULT;
	cpu->xcr0 = XCR0_X87;
	cpu->fpu.xcr0 = XCR0_X87;
}

/* Standard FXSAVE image from the internal state (which already is one for
 * the x87 part); used by FXSAVE, XSAVE and the snapshot accessor. */
void fpu_image_store(struct emu_cpu *cpu, uint8_t *img)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	struct fpu_fx *out = (struct fpu_fx *)img;
	memcpy(out, fx, 160);
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
		for (unsigned i = 0; i < 8; i++) {
			memcpy(fx->st[i].b, in->st[i].b, 10);
			memset(fx->st[i].b + 10, 0, 6);
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
