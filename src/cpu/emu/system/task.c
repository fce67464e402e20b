/* Hardware task switching for 32-bit and 16-bit TSSs (SDM vol. 3A 7.3,
 * "Task switching", and table 7-1 for the checks and their faults).
 * IA-32e mode has no task switching: the callers reject it. */
#include "cpu/emu/system/sys.h"

struct tss_image {
	uint32_t eip, eflags, cr3;
	uint32_t gpr[8];
	uint16_t sel[SEG_COUNT];
	uint16_t ldt;
	uint16_t link;
	bool trap;            /* T flag, 32-bit TSS only (7.2.1) */
};

static uint32_t tss_rd(struct emu_cpu *cpu, uint64_t base, unsigned off, unsigned size)
{
	return (uint32_t)mmu_read_lin(cpu, (uint32_t)(base + off), size, EMU_MMU_SUP);
}

static void tss_wr(struct emu_cpu *cpu, uint64_t base, unsigned off, unsigned size, uint32_t v)
{
	mmu_write_lin(cpu, (uint32_t)(base + off), size, v, EMU_MMU_SUP);
}

/* Segment register order in the TSS (ES, CS, SS, DS, FS, GS) is the
 * encoding order, so enum x86_sreg indexes it directly. */
static void tss_read(struct emu_cpu *cpu, uint64_t base, bool is32, struct tss_image *t)
{
	if (is32) {
		t->link = (uint16_t)tss_rd(cpu, base, 0, 2);
		t->cr3 = tss_rd(cpu, base, 0x1c, 4);
		t->eip = tss_rd(cpu, base, 0x20, 4);
		t->eflags = tss_rd(cpu, base, 0x24, 4);
		for (int i = 0; i < 8; i++)
			t->gpr[i] = tss_rd(cpu, base, 0x28 + 4 * i, 4);
		for (int s = 0; s < SEG_COUNT; s++)
			t->sel[s] = (uint16_t)tss_rd(cpu, base, 0x48 + 4 * s, 2);
		t->ldt = (uint16_t)tss_rd(cpu, base, 0x60, 2);
		t->trap = tss_rd(cpu, base, 0x64, 2) & 1;
	} else {
		t->link = (uint16_t)tss_rd(cpu, base, 0, 2);
		t->cr3 = 0;
		t->eip = tss_rd(cpu, base, 0x0e, 2);
		t->eflags = tss_rd(cpu, base, 0x10, 2);
		for (int i = 0; i < 8; i++)
			t->gpr[i] = tss_rd(cpu, base, 0x12 + 2 * i, 2);
		for (int s = 0; s < 4; s++)
			t->sel[s] = (uint16_t)tss_rd(cpu, base, 0x22 + 2 * s, 2);
		t->sel[SEG_FS] = t->sel[SEG_GS] = 0;
		t->ldt = (uint16_t)tss_rd(cpu, base, 0x2a, 2);
		t->trap = false;
	}
}

/* Saves the dynamic fields of the outgoing task (7.2.1). */
static void tss_save(struct emu_cpu *cpu, uint64_t base, bool is32, uint32_t eip, uint32_t eflags)
{
	if (is32) {
		tss_wr(cpu, base, 0x20, 4, eip);
		tss_wr(cpu, base, 0x24, 4, eflags);
		for (int i = 0; i < 8; i++)
			tss_wr(cpu, base, 0x28 + 4 * i, 4, (uint32_t)cpu->gpr[i]);
		for (int s = 0; s < SEG_COUNT; s++)
			tss_wr(cpu, base, 0x48 + 4 * s, 2, cpu->seg[s].sel);
	} else {
		tss_wr(cpu, base, 0x0e, 2, eip);
		tss_wr(cpu, base, 0x10, 2, eflags);
		for (int i = 0; i < 8; i++)
			tss_wr(cpu, base, 0x12 + 2 * i, 2, (uint16_t)cpu->gpr[i]);
		for (int s = 0; s < 4; s++)
			tss_wr(cpu, base, 0x22 + 2 * s, 2, cpu->seg[s].sel);
	}
}

static void set_busy(struct emu_cpu *cpu, uint16_t sel, bool busy)
{
	uint64_t desc;
	if (!seg_read_desc(cpu, sel, &desc))
		return;
	if (busy)
		desc |= 2ull << 40;
	else
		desc &= ~(2ull << 40);
	seg_write_desc_hi(cpu, sel, (uint32_t)(desc >> 32));
}

/* Loads the new task's segment registers; every failure is #TS(selector)
 * except a not-present segment (#NP, or #SS for the stack), 7.3 step 13. */
static void load_task_segments(struct emu_cpu *cpu, const struct tss_image *t)
{
	if (t->eflags & X86_FLAG_VM) {
		for (int s = 0; s < SEG_COUNT; s++) {
			seg_real(&cpu->seg[s], t->sel[s]);
			cpu->seg[s].limit = 0xffff;
			cpu->seg[s].attr = s == SEG_CS ? 0xfb : 0xf3;
		}
		cpu->cpl = 3;
		return;
	}
	/* LDT first: the other selectors may refer to it. */
	if ((t->ldt & ~3) == 0) {
		cpu->ldtr = (struct emu_seg){ .sel = t->ldt };
	} else {
		uint64_t d;
		if ((t->ldt & 4) || !seg_read_desc(cpu, t->ldt, &d))
			emu_raise(cpu, X86_EXC_TS, t->ldt & 0xfffc);
		struct emu_seg l;
		seg_from_desc(&l, t->ldt, d);
		if ((l.attr & 0x1f) != 0x02)
			emu_raise(cpu, X86_EXC_TS, t->ldt & 0xfffc);
		if (!(l.attr & 0x80))
			emu_raise(cpu, X86_EXC_TS, t->ldt & 0xfffc);
		cpu->ldtr = l;
	}
	uint16_t cs = t->sel[SEG_CS];
	uint64_t d;
	struct emu_seg s;
	if ((cs & ~3) == 0 || !seg_read_desc(cpu, cs, &d))
		emu_raise(cpu, X86_EXC_TS, cs & 0xfffc);
	seg_from_desc(&s, cs, d);
	unsigned cpl = cs & 3;
	if ((s.attr & 0x18) != 0x18)
		emu_raise(cpu, X86_EXC_TS, cs & 0xfffc);
	if ((s.attr & 4) ? seg_dpl(&s) > cpl : seg_dpl(&s) != cpl)
		emu_raise(cpu, X86_EXC_TS, cs & 0xfffc);
	if (!(s.attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, cs & 0xfffc);
	seg_set_accessed(cpu, cs, &d);
	seg_from_desc(&cpu->seg[SEG_CS], cs, d);
	cpu->cpl = (uint8_t)cpl;
	struct emu_seg nss;
	seg_load_ss_checked(cpu, t->sel[SEG_SS], cpl, &nss, X86_EXC_TS);
	cpu->seg[SEG_SS] = nss;
	static const int data[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
	for (unsigned i = 0; i < 4; i++) {
		struct emu_seg ds;
		seg_load_data_checked(cpu, data[i], t->sel[data[i]], &ds, X86_EXC_TS);
		cpu->seg[data[i]] = ds;
	}
}

void task_switch(struct emu_cpu *cpu, uint16_t sel, uint64_t desc, enum task_reason why, bool has_err,
		 uint32_t err, uint64_t ret_rip)
{
	if (cpu->efer & X86_EFER_LMA)
		emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
	struct emu_seg nt;
	seg_from_desc(&nt, sel, desc);
	unsigned type = nt.attr & 0x1f;
	if (type == 0x05) {
		/* A task gate: its selector names the TSS (7.2.5). */
		sel = (uint16_t)(desc >> 16);
		if ((sel & 4) || !seg_read_desc(cpu, sel, &desc))
			emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
		seg_from_desc(&nt, sel, desc);
		type = nt.attr & 0x1f;
	}
	bool busy = type == 0x03 || type == 0x0b;
	if (type != 0x01 && type != 0x09 && type != 0x03 && type != 0x0b)
		emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
	if (why == TASK_IRET ? !busy : busy)
		emu_raise(cpu, why == TASK_IRET ? X86_EXC_TS : X86_EXC_GP, sel & 0xfffc);
	if (!(nt.attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
	bool new32 = (type & 8) != 0;
	if (nt.limit < (new32 ? 0x67u : 0x2bu))
		emu_raise(cpu, X86_EXC_TS, sel & 0xfffc);

	/* Read the whole new TSS before changing anything (7.3 step 5). */
	struct tss_image t;
	tss_read(cpu, nt.base, new32, &t);

	unsigned otype = cpu->tr.attr & 0xf;
	bool old32 = otype == 9 || otype == 11;
	uint64_t fl = emu_get_rflags(cpu);
	if (why == TASK_IRET)
		fl &= ~(uint64_t)X86_FLAG_NT;
	tss_save(cpu, cpu->tr.base, old32, (uint32_t)ret_rip, (uint32_t)fl);
	if (why == TASK_JMP || why == TASK_IRET)
		set_busy(cpu, cpu->tr.sel, false);
	if (why == TASK_CALL || why == TASK_INT) {
		tss_wr(cpu, nt.base, 0, 2, cpu->tr.sel);
		t.eflags |= X86_FLAG_NT;
	}
	if (why != TASK_IRET)
		set_busy(cpu, sel, true);

	/* Commit: TR, CR0.TS, CR3, registers, then the checked segment loads. */
	nt.attr |= 2;
	cpu->tr = nt;
	cpu->cr0 |= X86_CR0_TS;
	/* Every task switch clears the local breakpoint enables L0-L3 (SDM
	 * vol. 3B 17.2.4); a TSS with T = 1 raises a #DB trap with DR6.BT
	 * before the new task's first instruction (17.3.1.5). */
	cpu->dr[7] &= ~0x55ull;
	emu_debug_dr7_changed(cpu);
	if (t.trap)
		cpu->dbg_pending |= 1u << 15;
	if (new32 && (cpu->cr0 & X86_CR0_PG) && t.cr3 != (uint32_t)cpu->cr3) {
		cpu->cr3 = t.cr3;
		mmu_set_cr3(cpu, t.cr3, false);
	}
	for (int i = 0; i < 8; i++)
		cpu->gpr[i] = new32 ? t.gpr[i] : ((cpu->gpr[i] & ~0xffffull) | t.gpr[i]);
	emu_set_rflags(cpu, (new32 ? t.eflags : ((fl & ~0xffffull) | (t.eflags & 0xffff))) | X86_FLAG_FIXED);
	cpu->rip = cpu->next_rip = t.eip;
	load_task_segments(cpu, &t);
	emu_update_mode(cpu);
	if (t.eip > cpu->seg[SEG_CS].limit)
		emu_raise(cpu, X86_EXC_GP, 0);
	if (has_err) {
		struct emu_seg ss = cpu->seg[SEG_SS];
		uint64_t sp = cpu->gpr[RSP];
		stack_push(cpu, cpu->mode, &ss, &sp, new32 ? 4 : 2, err, cpu->cpl == 3 ? EMU_MMU_USER : EMU_MMU_SUP);
		cpu->gpr[RSP] = sp;
	}
	cpu->mode_changed = true;
}
