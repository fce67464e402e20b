/* Far transfers: JMP/CALL far (direct, through call gates, to tasks), RET
 * far and IRET in every mode (SDM vol. 2A CALL/JMP, vol. 2B RET/IRET
 * "Operation"; vol. 3A 5.8 "Privilege level checking when transferring
 * program control between code segments"). */
#include "cpu/emu/system/sys.h"

static uint64_t opmask(unsigned opsize)
{
	return emu_size_mask(opsize);
}

static _Noreturn void gp_sel(struct emu_cpu *cpu, uint16_t sel)
{
	emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
}

/* Commits a new CS and instruction pointer after all checks passed. */
static void set_cs(struct emu_cpu *cpu, uint16_t sel, uint64_t desc, unsigned cpl, uint64_t rip)
{
	seg_set_accessed(cpu, sel, &desc);
	seg_from_desc(&cpu->seg[SEG_CS], (uint16_t)((sel & ~3) | cpl), desc);
	cpu->cpl = (uint8_t)cpl;
	cpu->next_rip = rip;
	emu_update_mode(cpu);
}

/* Checks the target instruction pointer against the new CS (limit, or
 * canonical form for a 64-bit CS). */
static void check_rip(struct emu_cpu *cpu, const struct emu_seg *cs, uint64_t rip)
{
	if ((cpu->efer & X86_EFER_LMA) && (cs->attr & 0x200)) {
		if (!mmu_canonical(cpu, rip))
			emu_raise(cpu, X86_EXC_GP, 0);
	} else if (rip > cs->limit) {
		emu_raise(cpu, X86_EXC_GP, 0);
	}
}

static void read_code_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc, struct emu_seg *s)
{
	if ((sel & ~3) == 0)
		emu_raise(cpu, X86_EXC_GP, 0);
	if (!seg_read_desc(cpu, sel, desc))
		gp_sel(cpu, sel);
	seg_from_desc(s, sel, *desc);
}

/* Direct far JMP/CALL to a code segment: no privilege change (5.8.1.1/2). */
static void check_direct_code(struct emu_cpu *cpu, uint16_t sel, const struct emu_seg *s)
{
	if ((s->attr & 0x18) != 0x18)
		gp_sel(cpu, sel);
	if (s->attr & 4) {
		if (seg_dpl(s) > cpu->cpl)
			gp_sel(cpu, sel);
	} else if ((sel & 3) > cpu->cpl || seg_dpl(s) != cpu->cpl) {
		gp_sel(cpu, sel);
	}
	if ((cpu->efer & X86_EFER_LMA) && (s->attr & 0x600) == 0x600)
		gp_sel(cpu, sel);   /* L and D both set is reserved in IA-32e mode */
	if (!(s->attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
}

struct callgate {
	uint16_t cs_sel;
	uint64_t target;
	unsigned params;
	unsigned size;     /* 2, 4 or 8 */
	uint64_t cs_desc;
	struct emu_seg cs;
};

/* Reads and checks a call gate and its code segment (5.8.6). */
static void read_callgate(struct emu_cpu *cpu, uint16_t sel, uint64_t desc, struct callgate *g)
{
	unsigned type = (desc >> 40) & 0xf;
	unsigned dpl = (desc >> 45) & 3;
	if (dpl < cpu->cpl || dpl < (sel & 3u))
		gp_sel(cpu, sel);
	if (!(desc & (1ull << 47)))
		emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
	g->cs_sel = (uint16_t)(desc >> 16);
	g->params = (desc >> 32) & 0x1f;
	if (cpu->efer & X86_EFER_LMA) {
		/* 64-bit call gate: 16 bytes, the upper half holds offset 63:32. */
		uint64_t hi;
		if (!seg_read_desc(cpu, (uint16_t)(sel + 8), &hi))
			gp_sel(cpu, sel);
		if (((hi >> 40) & 0x1f) != 0)
			gp_sel(cpu, sel);
		g->target = (desc & 0xffff) | ((desc >> 32) & 0xffff0000ull) | (hi << 32);
		g->size = 8;
		g->params = 0;
	} else if (type == 0xc) {
		g->target = (desc & 0xffff) | ((desc >> 32) & 0xffff0000ull);
		g->size = 4;
	} else {
		g->target = desc & 0xffff;
		g->size = 2;
	}
	read_code_desc(cpu, g->cs_sel, &g->cs_desc, &g->cs);
	if ((g->cs.attr & 0x18) != 0x18 || seg_dpl(&g->cs) > cpu->cpl)
		gp_sel(cpu, g->cs_sel);
	if ((cpu->efer & X86_EFER_LMA) && (!(g->cs.attr & 0x200) || (g->cs.attr & 0x400)))
		gp_sel(cpu, g->cs_sel);
	if (!(g->cs.attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, g->cs_sel & 0xfffc);
}

static bool is_callgate(uint64_t desc, bool lma)
{
	unsigned type = (desc >> 40) & 0x1f;   /* with S = 0 */
	return lma ? type == 0x0c : (type == 0x04 || type == 0x0c);
}

static bool is_task_target(uint64_t desc, bool lma)
{
	unsigned type = (desc >> 40) & 0x1f;
	return !lma && (type == 0x05 || type == 0x01 || type == 0x09);
}

static void real_far(struct emu_cpu *cpu, uint16_t sel, uint64_t off)
{
	emu_load_seg(cpu, SEG_CS, sel);
	cpu->next_rip = off;
	emu_update_mode(cpu);
}

void emu_far_jmp(struct emu_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
	off &= opmask(opsize);
	if (cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_V86) {
		if (off > cpu->seg[SEG_CS].limit)
			emu_raise(cpu, X86_EXC_GP, 0);
		real_far(cpu, sel, off);
		return;
	}
	uint64_t desc;
	struct emu_seg s;
	read_code_desc(cpu, sel, &desc, &s);
	bool lma = cpu->efer & X86_EFER_LMA;
	if (s.attr & 0x10) {
		check_direct_code(cpu, sel, &s);
		check_rip(cpu, &s, off);
		set_cs(cpu, sel, desc, cpu->cpl, off);
		return;
	}
	if (is_callgate(desc, lma)) {
		struct callgate g;
		read_callgate(cpu, sel, desc, &g);
		/* JMP through a call gate never changes privilege (5.8.6). */
		if (!(g.cs.attr & 4) && seg_dpl(&g.cs) != cpu->cpl)
			gp_sel(cpu, g.cs_sel);
		uint64_t target = g.target & opmask(g.size);
		check_rip(cpu, &g.cs, target);
		set_cs(cpu, g.cs_sel, g.cs_desc, cpu->cpl, target);
		return;
	}
	if (is_task_target(desc, lma)) {
		unsigned dpl = (desc >> 45) & 3;
		if (dpl < cpu->cpl || dpl < (sel & 3u))
			gp_sel(cpu, sel);
		if (!(desc & (1ull << 47)))
			emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
		task_switch(cpu, sel, desc, TASK_JMP, false, 0, cpu->next_rip);
		return;
	}
	gp_sel(cpu, sel);
}

void emu_far_call(struct emu_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
	off &= opmask(opsize);
	struct emu_seg ss = cpu->seg[SEG_SS];
	uint64_t sp = cpu->gpr[RSP];
	unsigned idx = emu_mmu_index(cpu);
	if (cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_V86) {
		stack_push(cpu, cpu->mode, &ss, &sp, opsize, cpu->seg[SEG_CS].sel, idx);
		stack_push(cpu, cpu->mode, &ss, &sp, opsize, cpu->next_rip, idx);
		if (off > cpu->seg[SEG_CS].limit)
			emu_raise(cpu, X86_EXC_GP, 0);
		cpu->gpr[RSP] = sp;
		real_far(cpu, sel, off);
		return;
	}
	uint64_t desc;
	struct emu_seg s;
	read_code_desc(cpu, sel, &desc, &s);
	bool lma = cpu->efer & X86_EFER_LMA;
	if (s.attr & 0x10) {
		check_direct_code(cpu, sel, &s);
		check_rip(cpu, &s, off);
		stack_push(cpu, cpu->mode, &ss, &sp, opsize, cpu->seg[SEG_CS].sel, idx);
		stack_push(cpu, cpu->mode, &ss, &sp, opsize, cpu->next_rip, idx);
		cpu->gpr[RSP] = sp;
		set_cs(cpu, sel, desc, cpu->cpl, off);
		return;
	}
	if (is_task_target(desc, lma)) {
		unsigned dpl = (desc >> 45) & 3;
		if (dpl < cpu->cpl || dpl < (sel & 3u))
			gp_sel(cpu, sel);
		if (!(desc & (1ull << 47)))
			emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
		task_switch(cpu, sel, desc, TASK_CALL, false, 0, cpu->next_rip);
		return;
	}
	if (!is_callgate(desc, lma))
		gp_sel(cpu, sel);
	struct callgate g;
	read_callgate(cpu, sel, desc, &g);
	uint64_t target = g.target & opmask(g.size);
	unsigned dpl = seg_dpl(&g.cs);
	unsigned gsz = g.size;
	if (!(g.cs.attr & 4) && dpl < cpu->cpl) {
		/* More privilege (5.8.5, figure 5-13): new stack from the TSS,
		 * old SS:ESP and the parameters copied onto it. */
		struct emu_seg nss;
		uint64_t nsp;
		unsigned nmode = lma ? EMU_MODE_LONG64 : EMU_MODE_PROT32;
		unsigned nidx = EMU_MMU_SUP;
		if (lma) {
			uint64_t off_rsp = 4 + 8ull * dpl;
			if (off_rsp + 7 > cpu->tr.limit)
				emu_raise(cpu, X86_EXC_TS, cpu->tr.sel & 0xfffc);
			nsp = mmu_read_lin(cpu, cpu->tr.base + off_rsp, 8, EMU_MMU_SUP);
			nss = (struct emu_seg){ .sel = (uint16_t)dpl, .attr = (uint16_t)(dpl << 5) };
		} else {
			unsigned type = cpu->tr.attr & 0xf;
			bool tss32 = type == 9 || type == 11;
			uint64_t o = tss32 ? 4 + dpl * 8ull : 2 + dpl * 4ull;
			unsigned sz = tss32 ? 4 : 2;
			if (o + sz + 1 > cpu->tr.limit)
				emu_raise(cpu, X86_EXC_TS, cpu->tr.sel & 0xfffc);
			nsp = mmu_read_lin(cpu, (uint32_t)(cpu->tr.base + o), sz, EMU_MMU_SUP);
			uint16_t nss_sel = (uint16_t)mmu_read_lin(cpu, (uint32_t)(cpu->tr.base + o + sz), 2, EMU_MMU_SUP);
			uint64_t d;
			if ((nss_sel & ~3) == 0)
				emu_raise(cpu, X86_EXC_TS, 0);
			if (!seg_read_desc(cpu, nss_sel, &d))
				emu_raise(cpu, X86_EXC_TS, nss_sel & 0xfffc);
			seg_from_desc(&nss, nss_sel, d);
			if ((nss_sel & 3) != dpl || seg_dpl(&nss) != dpl || (nss.attr & 0x1a) != 0x12)
				emu_raise(cpu, X86_EXC_TS, nss_sel & 0xfffc);
			if (!(nss.attr & 0x80))
				emu_raise(cpu, X86_EXC_SS, nss_sel & 0xfffc);
			seg_set_accessed(cpu, nss_sel, &d);
			seg_from_desc(&nss, nss_sel, d);
		}
		uint64_t params[32];
		uint64_t osp = sp;
		for (unsigned i = 0; i < g.params; i++)
			params[i] = stack_pop(cpu, cpu->mode, &ss, &osp, gsz, idx);
		stack_push(cpu, nmode, &nss, &nsp, gsz, ss.sel, nidx);
		stack_push(cpu, nmode, &nss, &nsp, gsz, sp, nidx);
		for (unsigned i = g.params; i-- > 0;)
			stack_push(cpu, nmode, &nss, &nsp, gsz, params[i], nidx);
		stack_push(cpu, nmode, &nss, &nsp, gsz, cpu->seg[SEG_CS].sel, nidx);
		stack_push(cpu, nmode, &nss, &nsp, gsz, cpu->next_rip, nidx);
		check_rip(cpu, &g.cs, target);
		cpu->seg[SEG_SS] = nss;
		cpu->gpr[RSP] = lma ? nsp : (nss.attr & 0x400) ? (uint32_t)nsp : (cpu->gpr[RSP] & ~0xffffull) | (nsp & 0xffff);
		set_cs(cpu, g.cs_sel, g.cs_desc, dpl, target);
		return;
	}
	stack_push(cpu, cpu->mode, &ss, &sp, gsz, cpu->seg[SEG_CS].sel, idx);
	stack_push(cpu, cpu->mode, &ss, &sp, gsz, cpu->next_rip, idx);
	check_rip(cpu, &g.cs, target);
	cpu->gpr[RSP] = sp;
	set_cs(cpu, g.cs_sel, g.cs_desc, cpu->cpl, target);
}

/* Checks the code segment a RET/IRET returns to (vol. 2B RET "Operation"). */
static void check_return_cs(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc, struct emu_seg *s)
{
	read_code_desc(cpu, sel, desc, s);
	if ((s->attr & 0x18) != 0x18 || (sel & 3u) < cpu->cpl)
		gp_sel(cpu, sel);
	if (s->attr & 4) {
		if (seg_dpl(s) > (sel & 3u))
			gp_sel(cpu, sel);
	} else if (seg_dpl(s) != (sel & 3u)) {
		gp_sel(cpu, sel);
	}
	if ((cpu->efer & X86_EFER_LMA) && (s->attr & 0x600) == 0x600)
		gp_sel(cpu, sel);
	if (!(s->attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
}

/* Loads SS:RSP popped by a return to an outer level, or to 64-bit mode. */
static void return_stack(struct emu_cpu *cpu, uint16_t ss_sel, unsigned new_cpl, const struct emu_seg *new_cs,
			 struct emu_seg *nss)
{
	bool to64 = (cpu->efer & X86_EFER_LMA) && (new_cs->attr & 0x200);
	if ((ss_sel & ~3) == 0 && to64 && new_cpl < 3 && (ss_sel & 3) == new_cpl) {
		/* A null SS is allowed when returning to 64-bit code below CPL 3. */
		*nss = (struct emu_seg){ .sel = ss_sel, .attr = (uint16_t)(new_cpl << 5) };
		return;
	}
	seg_load_ss_checked(cpu, ss_sel, new_cpl, nss, X86_EXC_GP);
}

void emu_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes)
{
	struct emu_seg ss = cpu->seg[SEG_SS];
	uint64_t sp = cpu->gpr[RSP];
	unsigned idx = emu_mmu_index(cpu);
	uint64_t rip = stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
	uint16_t sel = (uint16_t)stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
	if (cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_V86) {
		if (rip > cpu->seg[SEG_CS].limit)
			emu_raise(cpu, X86_EXC_GP, 0);
		uint64_t m = (ss.attr & 0x400) ? 0xffffffffull : 0xffffull;
		cpu->gpr[RSP] = (sp & ~m) | ((sp + pop_bytes) & m);
		real_far(cpu, sel, rip);
		return;
	}
	uint64_t desc;
	struct emu_seg cs;
	check_return_cs(cpu, sel, &desc, &cs);
	unsigned rpl = sel & 3;
	if (rpl > cpu->cpl) {
		/* Return to an outer privilege level: pop SS:ESP after the parameters. */
		uint64_t sp2 = sp + pop_bytes;
		uint64_t nrsp = stack_pop(cpu, cpu->mode, &ss, &sp2, opsize, idx);
		uint16_t nss_sel = (uint16_t)stack_pop(cpu, cpu->mode, &ss, &sp2, opsize, idx);
		struct emu_seg nss;
		return_stack(cpu, nss_sel, rpl, &cs, &nss);
		check_rip(cpu, &cs, rip);
		cpu->seg[SEG_SS] = nss;
		nrsp += pop_bytes;
		bool to64 = (cpu->efer & X86_EFER_LMA) && (cs.attr & 0x200);
		cpu->gpr[RSP] = to64 ? nrsp : (nss.attr & 0x400) ? (uint32_t)nrsp : (cpu->gpr[RSP] & ~0xffffull) | (nrsp & 0xffff);
		set_cs(cpu, sel, desc, rpl, rip);
		seg_invalidate_for_cpl(cpu);
		return;
	}
	check_rip(cpu, &cs, rip);
	uint64_t m = cpu->mode == EMU_MODE_LONG64 ? ~0ull : (ss.attr & 0x400) ? 0xffffffffull : 0xffffull;
	cpu->gpr[RSP] = (sp & ~m) | ((sp + pop_bytes) & m);
	set_cs(cpu, sel, desc, cpu->cpl, rip);
}

/* Flags IRET may change at this privilege (vol. 2A IRET "Operation"). */
static void iret_set_flags(struct emu_cpu *cpu, uint64_t nf, unsigned opsize, unsigned cpl)
{
	uint64_t cur = emu_get_rflags(cpu);
	uint64_t mask = X86_FLAGS_ARITH | X86_FLAG_TF | X86_FLAG_DF | X86_FLAG_NT;
	if (opsize >= 4)
		mask |= X86_FLAG_RF | X86_FLAG_AC | X86_FLAG_ID;
	unsigned iopl = (cur & X86_FLAG_IOPL) >> 12;
	if (cpl <= iopl)
		mask |= X86_FLAG_IF;
	if (cpl == 0) {
		mask |= X86_FLAG_IOPL | X86_FLAG_IF;
		if (opsize >= 4)
			mask |= X86_FLAG_VIF | X86_FLAG_VIP;
	}
	if (opsize == 2)
		mask &= 0xffff;
	emu_set_rflags(cpu, (cur & ~mask) | (nf & mask) | X86_FLAG_FIXED);
}

static void iret_to_v86(struct emu_cpu *cpu, struct emu_seg *ss, uint64_t sp, uint64_t rip, uint16_t cs_sel,
			uint64_t nf)
{
	/* 20.3.1: the 32-bit frame also holds ESP, SS, ES, DS, FS, GS. */
	unsigned idx = EMU_MMU_SUP;
	uint64_t nesp = stack_pop(cpu, cpu->mode, ss, &sp, 4, idx);
	uint16_t nss = (uint16_t)stack_pop(cpu, cpu->mode, ss, &sp, 4, idx);
	uint16_t es = (uint16_t)stack_pop(cpu, cpu->mode, ss, &sp, 4, idx);
	uint16_t ds = (uint16_t)stack_pop(cpu, cpu->mode, ss, &sp, 4, idx);
	uint16_t fs = (uint16_t)stack_pop(cpu, cpu->mode, ss, &sp, 4, idx);
	uint16_t gs = (uint16_t)stack_pop(cpu, cpu->mode, ss, &sp, 4, idx);
	emu_set_rflags(cpu, (nf & 0x3f7fd7ull) | X86_FLAG_FIXED | X86_FLAG_VM);
	cpu->cpl = 3;
	emu_update_mode(cpu);
	uint16_t sels[SEG_COUNT] = { [SEG_ES] = es, [SEG_CS] = cs_sel, [SEG_SS] = nss, [SEG_DS] = ds,
				     [SEG_FS] = fs, [SEG_GS] = gs };
	for (int s = 0; s < SEG_COUNT; s++) {
		seg_real(&cpu->seg[s], sels[s]);
		cpu->seg[s].limit = 0xffff;
		cpu->seg[s].attr = s == SEG_CS ? 0xfb : 0xf3;
	}
	cpu->gpr[RSP] = (uint32_t)nesp;
	cpu->next_rip = rip & 0xffff;
	cpu->intr_shadow = false;
}

/* IRET in V86 mode at IOPL < 3: #GP(0) unless CR4.VME and a 16-bit
 * operand, which sets VIF from the popped IF and leaves IF and IOPL alone
 * (vol. 2A IRET "Operation", 20.3.2). */
static void iret_v86_vme(struct emu_cpu *cpu, unsigned opsize)
{
	if (!(cpu->cr4 & X86_CR4_VME) || opsize != 2)
		emu_raise(cpu, X86_EXC_GP, 0);
	struct emu_seg ss = cpu->seg[SEG_SS];
	uint64_t sp = cpu->gpr[RSP];
	uint64_t ip = stack_pop(cpu, EMU_MODE_V86, &ss, &sp, 2, EMU_MMU_USER);
	uint16_t sel = (uint16_t)stack_pop(cpu, EMU_MODE_V86, &ss, &sp, 2, EMU_MMU_USER);
	uint64_t nf = stack_pop(cpu, EMU_MODE_V86, &ss, &sp, 2, EMU_MMU_USER);
	uint64_t cur = emu_get_rflags(cpu);
	if (((nf & X86_FLAG_IF) && (cur & X86_FLAG_VIP)) || (nf & X86_FLAG_TF))
		emu_raise(cpu, X86_EXC_GP, 0);
	uint64_t keep = X86_FLAG_IF | X86_FLAG_IOPL | ~0xffffull;
	uint64_t f = (cur & keep) | (nf & ~keep & 0xffff);
	f = (f & ~(uint64_t)X86_FLAG_VIF) | ((nf & X86_FLAG_IF) ? X86_FLAG_VIF : 0);
	cpu->gpr[RSP] = sp;
	emu_set_rflags(cpu, f | X86_FLAG_FIXED);
	real_far(cpu, sel, ip);
}

void emu_iret(struct emu_cpu *cpu, unsigned opsize)
{
	/* Any IRET ends NMI blocking (6.7.1); an NMI held pending meanwhile
	 * is taken at the boundary after it, which the chain does not check. */
	if (cpu->nmi_blocked && cpu->nmi_pending)
		cpu->stop_block = true;
	cpu->nmi_blocked = false;
	struct emu_seg ss = cpu->seg[SEG_SS];
	uint64_t sp = cpu->gpr[RSP];
	unsigned idx = emu_mmu_index(cpu);
	if (cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_V86) {
		if (cpu->mode == EMU_MODE_V86 && ((cpu->rflags & X86_FLAG_IOPL) >> 12) < 3) {
			iret_v86_vme(cpu, opsize);
			return;
		}
		uint64_t rip = stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
		uint16_t sel = (uint16_t)stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
		uint64_t nf = stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
		if (rip > cpu->seg[SEG_CS].limit)
			emu_raise(cpu, X86_EXC_GP, 0);
		cpu->gpr[RSP] = sp;
		uint64_t cur = emu_get_rflags(cpu);
		uint64_t mask = opsize == 2 ? 0xffffull : 0x257fd5ull;
		if (cpu->mode == EMU_MODE_V86)
			mask &= ~(uint64_t)X86_FLAG_IOPL;   /* V86 cannot change IOPL */
		emu_set_rflags(cpu, (cur & ~mask) | (nf & mask) | X86_FLAG_FIXED);
		real_far(cpu, sel, rip);
		return;
	}
	if (cpu->rflags & X86_FLAG_NT) {
		/* Nested task return (7.3): back to the task in the TSS back link. */
		if (cpu->efer & X86_EFER_LMA)
			emu_raise(cpu, X86_EXC_GP, 0);
		uint16_t link = (uint16_t)mmu_read_lin(cpu, (uint32_t)cpu->tr.base, 2, EMU_MMU_SUP);
		uint64_t desc;
		if ((link & 4) || !seg_read_desc(cpu, link, &desc))
			emu_raise(cpu, X86_EXC_TS, link & 0xfffc);
		task_switch(cpu, link, desc, TASK_IRET, false, 0, cpu->next_rip);
		return;
	}
	uint64_t rip = stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
	uint16_t sel = (uint16_t)stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
	uint64_t nf = stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
	if (opsize == 4 && (nf & X86_FLAG_VM) && cpu->cpl == 0 && !(cpu->efer & X86_EFER_LMA)) {
		iret_to_v86(cpu, &ss, sp, rip, sel, nf);
		return;
	}
	uint64_t desc;
	struct emu_seg cs;
	check_return_cs(cpu, sel, &desc, &cs);
	unsigned rpl = sel & 3;
	bool from64 = cpu->mode == EMU_MODE_LONG64;
	if (rpl > cpu->cpl || from64) {
		/* IRET to an outer level, and every IRET in 64-bit mode, pops SS:RSP. */
		uint64_t nrsp = stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
		uint16_t nss_sel = (uint16_t)stack_pop(cpu, cpu->mode, &ss, &sp, opsize, idx);
		struct emu_seg nss;
		return_stack(cpu, nss_sel, rpl, &cs, &nss);
		check_rip(cpu, &cs, rip);
		unsigned old_cpl = cpu->cpl;
		iret_set_flags(cpu, nf, opsize, old_cpl);
		cpu->seg[SEG_SS] = nss;
		bool to64 = (cpu->efer & X86_EFER_LMA) && (cs.attr & 0x200);
		cpu->gpr[RSP] = to64 ? nrsp : (nss.attr & 0x400) ? (uint32_t)nrsp : (cpu->gpr[RSP] & ~0xffffull) | (nrsp & 0xffff);
		set_cs(cpu, sel, desc, rpl, rip);
		if (rpl > old_cpl)
			seg_invalidate_for_cpl(cpu);
		return;
	}
	check_rip(cpu, &cs, rip);
	iret_set_flags(cpu, nf, opsize, cpu->cpl);
	cpu->gpr[RSP] = sp;
	set_cs(cpu, sel, desc, cpu->cpl, rip);
}
