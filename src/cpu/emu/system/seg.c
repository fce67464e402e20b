/* Segmentation: descriptor tables, segment-register loads with the SDM's
 * checks, and the limit/type checks of every segmented access (SDM vol. 3A
 * chapter 3 "Protected-mode memory management" and chapter 5 "Protection"). */
#include "cpu/emu/system/sys.h"

/* Raises the fault a bad data access through segment segno gets: #SS for
 * the stack segment, #GP otherwise (SDM vol. 3A 6.15, interrupts 12/13). */
static _Noreturn void seg_fault(struct emu_cpu *cpu, int segno)
{
	emu_raise(cpu, segno == SEG_SS ? X86_EXC_SS : X86_EXC_GP, 0);
}

uint64_t seg_linear(struct emu_cpu *cpu, const struct emu_seg *s, int segno, uint64_t off, unsigned size,
		    enum emu_access acc)
{
	return seg_linear_m(cpu, cpu->mode, s, segno, off, size, acc);
}

uint64_t seg_linear_m(struct emu_cpu *cpu, unsigned mode, const struct emu_seg *s, int segno, uint64_t off,
		      unsigned size, enum emu_access acc)
{
	if (mode == EMU_MODE_LONG64) {
		/* 64-bit mode, 3.2.4: no limits; FS/GS keep their bases; the
		 * address must be canonical (3.3.7.1). */
		uint64_t lin = off + (segno >= SEG_FS ? s->base : 0);
		if (!mmu_canonical(cpu, lin) || !mmu_canonical(cpu, lin + size - 1))
			seg_fault(cpu, segno);
		return lin;
	}
	uint64_t last = off + size - 1;
	if (mode == EMU_MODE_REAL || mode == EMU_MODE_V86) {
		/* Real and V86 mode still check the (cached) limit, 20.1.1. */
		if (last > s->limit)
			seg_fault(cpu, segno);
		return (uint32_t)(s->base + off);
	}
	if (!(s->attr & 0x80))
		seg_fault(cpu, segno);   /* null or unusable segment (5.4.1) */
	unsigned type = s->attr & 0xf;
	if (s->attr & 0x10) {
		if (type & 8) {
			/* Code: never writable, readable only with R (5.5). */
			if (acc == EMU_ACC_WRITE || !(type & 2))
				seg_fault(cpu, segno);
		} else if (acc == EMU_ACC_WRITE && !(type & 2)) {
			seg_fault(cpu, segno);
		}
		if (!(type & 8) && (type & 4)) {
			/* Expand-down (5.3): offsets limit+1 .. 0xffff or 0xffffffff. */
			uint64_t upper = (s->attr & 0x400) ? 0xffffffffull : 0xffffull;
			if (off <= s->limit || last > upper)
				seg_fault(cpu, segno);
			return (uint32_t)(s->base + off);
		}
	} else {
		seg_fault(cpu, segno);   /* a system descriptor is no data segment */
	}
	if (last > s->limit)
		seg_fault(cpu, segno);
	return (uint32_t)(s->base + off);
}

bool seg_read_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc)
{
	uint64_t base, limit;
	if (sel & 4) {
		if (!(cpu->ldtr.attr & 0x80) || (cpu->ldtr.sel & ~3) == 0)
			return false;
		base = cpu->ldtr.base;
		limit = cpu->ldtr.limit;
	} else {
		base = cpu->gdtr.base;
		limit = cpu->gdtr.limit;
	}
	uint64_t off = sel & ~7u;
	if (off + 7 > limit)
		return false;
	uint64_t lin = base + off;
	if (!(cpu->efer & X86_EFER_LMA))
		lin = (uint32_t)lin;
	*desc = mmu_read_lin(cpu, lin, 8, EMU_MMU_SUP);
	return true;
}

void seg_write_desc_hi(struct emu_cpu *cpu, uint16_t sel, uint32_t hi)
{
	uint64_t base = (sel & 4) ? cpu->ldtr.base : cpu->gdtr.base;
	uint64_t lin = base + (sel & ~7u) + 4;
	if (!(cpu->efer & X86_EFER_LMA))
		lin = (uint32_t)lin;
	mmu_write_lin(cpu, lin, 4, hi, EMU_MMU_SUP);
}

void seg_from_desc(struct emu_seg *s, uint16_t sel, uint64_t desc)
{
	uint32_t limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000));
	s->sel = sel;
	s->base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24);
	s->attr = (uint16_t)(((desc >> 40) & 0xff) | (((desc >> 52) & 0xf) << 8));
	s->limit = (s->attr & 0x800) ? (limit << 12) | 0xfff : limit;
}

void seg_real(struct emu_seg *s, uint16_t sel)
{
	s->sel = sel;
	s->base = (uint64_t)sel << 4;
}

void seg_set_accessed(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc)
{
	/* 3.4.5.1: the processor sets the accessed bit when it loads the
	 * descriptor; a locked read-modify-write of the descriptor's high dword. */
	if (*desc & (1ull << 40))
		return;
	*desc |= 1ull << 40;
	seg_write_desc_hi(cpu, sel, (uint32_t)(*desc >> 32));
}

static void seg_null(struct emu_seg *s, uint16_t sel)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0;
	s->attr = 0;   /* P = 0: unusable, every access faults (5.4.1) */
}

void seg_load_ss_checked(struct emu_cpu *cpu, uint16_t sel, unsigned cpl, struct emu_seg *out, unsigned exc)
{
	/* SDM vol. 2A MOV "IF SS is loaded": RPL = CPL, writable data, DPL = CPL. */
	if ((sel & ~3) == 0) {
		if ((cpu->efer & X86_EFER_LMA) && cpu->mode == EMU_MODE_LONG64 && cpl < 3 && (sel & 3) == cpl) {
			seg_null(out, sel);
			out->attr = (uint16_t)(cpl << 5);   /* 64-bit mode: a null SS keeps its DPL */
			return;
		}
		emu_raise(cpu, exc, 0);
	}
	uint64_t desc;
	if (!seg_read_desc(cpu, sel, &desc))
		emu_raise(cpu, exc, sel & 0xfffc);
	struct emu_seg s;
	seg_from_desc(&s, sel, desc);
	if ((sel & 3) != cpl || (s.attr & 0x1a) != 0x12 || seg_dpl(&s) != cpl)
		emu_raise(cpu, exc, sel & 0xfffc);
	if (!(s.attr & 0x80))
		emu_raise(cpu, X86_EXC_SS, sel & 0xfffc);
	seg_set_accessed(cpu, sel, &desc);
	seg_from_desc(out, sel, desc);
}

void seg_load_data_checked(struct emu_cpu *cpu, int segno, uint16_t sel, struct emu_seg *out, unsigned exc)
{
	if ((sel & ~3) == 0) {
		seg_null(out, sel);
		return;
	}
	uint64_t desc;
	if (!seg_read_desc(cpu, sel, &desc))
		emu_raise(cpu, exc, sel & 0xfffc);
	struct emu_seg s;
	seg_from_desc(&s, sel, desc);
	/* Data or readable code; unless conforming code, RPL and CPL <= DPL. */
	if (!(s.attr & 0x10) || (s.attr & 0xa) == 0x8)
		emu_raise(cpu, exc, sel & 0xfffc);
	bool conforming = (s.attr & 0xc) == 0xc;
	if (!conforming && ((sel & 3) > seg_dpl(&s) || cpu->cpl > seg_dpl(&s)))
		emu_raise(cpu, exc, sel & 0xfffc);
	if (!(s.attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
	seg_set_accessed(cpu, sel, &desc);
	seg_from_desc(out, sel, desc);
	(void)segno;
}

void emu_load_seg(struct emu_cpu *cpu, int seg, uint16_t sel)
{
	if (cpu->mode == EMU_MODE_REAL) {
		/* Real mode keeps the cached limit and attributes ("unreal" mode). */
		seg_real(&cpu->seg[seg], sel);
	} else if (cpu->mode == EMU_MODE_V86) {
		seg_real(&cpu->seg[seg], sel);
		cpu->seg[seg].limit = 0xffff;
		cpu->seg[seg].attr = seg == SEG_CS ? 0xfb : 0xf3;   /* 20.1.1: DPL 3, present, accessed */
	} else if (seg == SEG_SS) {
		struct emu_seg s;
		seg_load_ss_checked(cpu, sel, cpu->cpl, &s, X86_EXC_GP);
		cpu->seg[SEG_SS] = s;
	} else {
		struct emu_seg s;
		seg_load_data_checked(cpu, seg, sel, &s, X86_EXC_GP);
		cpu->seg[seg] = s;
	}
	if (seg == SEG_SS) {
		/* MOV SS/POP SS hold off interrupts, debug exceptions and the
		 * single-step trap until the next instruction completes (SDM
		 * vol. 3A 6.8.3), so that a stack switch with MOV SS; MOV ESP is
		 * never split. */
		cpu->intr_shadow = true;
		cpu->ss_shadow = true;
	}
}

void seg_invalidate_for_cpl(struct emu_cpu *cpu)
{
	/* RET and IRET to an outer level (SDM vol. 2A IRET and RET pseudo-code,
	 * "RETURN-TO-OUTER-PRIVILEGE-LEVEL"): ES, DS, FS and GS holding a null
	 * selector, or a data or non-conforming code segment with DPL below
	 * the new CPL, get the null selector 0 (a null selector with RPL 3
	 * reads back 0, as on hardware).  The segment becomes unusable, but
	 * its base stays: in 64-bit mode FS and GS keep addressing through it
	 * (a kernel whose GS is a DPL 0 data segment with a per-CPU base in
	 * IA32_GS_BASE finds that base again at its next entry). */
	static const int segs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
	for (unsigned i = 0; i < 4; i++) {
		struct emu_seg *s = &cpu->seg[segs[i]];
		bool conforming_code = (s->attr & 0x1c) == 0x1c;
		if ((s->sel & ~3) == 0 || ((s->attr & 0x10) && !conforming_code && seg_dpl(s) < cpu->cpl)) {
			s->sel = 0;
			s->attr &= (uint16_t)~0x80;   /* P = 0: unusable (5.4.1) */
		}
	}
}
