/* System instructions, handlers of the opcode table (core/handlers.c):
 * segment loads, descriptor-table and control/debug-register
 * instructions, far transfers, software interrupts, HLT/CLI/STI, port
 * I/O, MSRs, CPUID, TSC, fast system calls and the FSGSBASE/RDRAND/RDPID
 * family (SDM vol. 2). */
#include "cpu/emu/system/sys.h"

#include "machine/machine.h"


/* ---- small helpers ---- */

static _Noreturn void ud(struct emu_cpu *cpu)
{
	emu_raise_noerr(cpu, X86_EXC_UD);
}

static _Noreturn void gp0(struct emu_cpu *cpu)
{
	emu_raise(cpu, X86_EXC_GP, 0);
}

static void need_cpl0(struct emu_cpu *cpu)
{
	if (cpu->cpl != 0)
		gp0(cpu);
}

static bool prot_mode(const struct emu_cpu *cpu)
{
	return cpu->mode != EMU_MODE_REAL && cpu->mode != EMU_MODE_V86;
}

static void set_reg(struct emu_cpu *cpu, unsigned r, unsigned size, uint64_t v)
{
	if (size == 4)
		cpu->gpr[r] = (uint32_t)v;   /* 32-bit writes zero-extend (vol. 1 3.4.1.1) */
	else if (size == 8)
		cpu->gpr[r] = v;
	else
		cpu->gpr[r] = (cpu->gpr[r] & ~emu_size_mask(size)) | (v & emu_size_mask(size));
}

static uint64_t rm_read16(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod == 3)
		return cpu->gpr[in->rm] & 0xffff;
	return emu_read(cpu, in->seg, emu_insn_ea(cpu, in), 2);
}

/* Stores a selector or MSW: to a register with the operand size, to memory as 16 bits. */
static void rm_store_sel(struct emu_cpu *cpu, const struct emu_insn *in, uint16_t v)
{
	if (in->mod == 3)
		set_reg(cpu, in->rm, in->opsize, v);
	else
		emu_write(cpu, in->seg, emu_insn_ea(cpu, in), 2, v);
}

static void set_flag_bits(struct emu_cpu *cpu, uint64_t clear, uint64_t set)
{
	emu_set_rflags(cpu, (emu_get_rflags(cpu) & ~clear) | set);
}

static unsigned iopl(const struct emu_cpu *cpu)
{
	return (cpu->rflags & X86_FLAG_IOPL) >> 12;
}

/* ---- segment registers ---- */

void h_mov_sreg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = in->reg & 7;
	if (s == SEG_CS || s >= SEG_COUNT)
		ud(cpu);
	emu_load_seg(cpu, (int)s, (uint16_t)rm_read16(cpu, in));
}

static void pop_sreg(struct emu_cpu *cpu, const struct emu_insn *in, int s)
{
	unsigned size = in->opsize == 1 ? 2 : in->opsize;
	struct emu_seg ss = cpu->seg[SEG_SS];
	uint64_t sp = cpu->gpr[RSP];
	uint16_t sel = (uint16_t)stack_pop(cpu, cpu->mode, &ss, &sp, size, emu_mmu_index(cpu));
	emu_load_seg(cpu, s, sel);
	/* RSP moves with the old SS's stack size (the load may change SS). */
	uint64_t m = cpu->mode == EMU_MODE_LONG64 ? ~0ull : (ss.attr & 0x400) ? 0xffffffffull : 0xffffull;
	cpu->gpr[RSP] = (cpu->gpr[RSP] & ~m) | (sp & m);
}

void h_pop_es(struct emu_cpu *cpu, const struct emu_insn *in) { pop_sreg(cpu, in, SEG_ES); }
void h_pop_ss(struct emu_cpu *cpu, const struct emu_insn *in) { pop_sreg(cpu, in, SEG_SS); }
void h_pop_ds(struct emu_cpu *cpu, const struct emu_insn *in) { pop_sreg(cpu, in, SEG_DS); }
void h_pop_fs(struct emu_cpu *cpu, const struct emu_insn *in) { pop_sreg(cpu, in, SEG_FS); }
void h_pop_gs(struct emu_cpu *cpu, const struct emu_insn *in) { pop_sreg(cpu, in, SEG_GS); }

/* LDS/LES/LSS/LFS/LGS: far pointer m16:16/32/64 into Sreg:reg. */
static void load_far_ptr(struct emu_cpu *cpu, const struct emu_insn *in, int s)
{
	if (in->mod == 3)
		ud(cpu);
	unsigned size = in->opsize == 1 ? 2 : in->opsize;
	uint64_t ea = emu_insn_ea(cpu, in);
	uint64_t off = emu_read(cpu, in->seg, ea, size);
	uint16_t sel = (uint16_t)emu_read(cpu, in->seg, (ea + size) & emu_size_mask(in->adsize), 2);
	emu_load_seg(cpu, s, sel);
	set_reg(cpu, in->reg, size, off);
}

void h_les(struct emu_cpu *cpu, const struct emu_insn *in) { load_far_ptr(cpu, in, SEG_ES); }
void h_lds(struct emu_cpu *cpu, const struct emu_insn *in) { load_far_ptr(cpu, in, SEG_DS); }
void h_lss(struct emu_cpu *cpu, const struct emu_insn *in) { load_far_ptr(cpu, in, SEG_SS); }
void h_lfs(struct emu_cpu *cpu, const struct emu_insn *in) { load_far_ptr(cpu, in, SEG_FS); }
void h_lgs(struct emu_cpu *cpu, const struct emu_insn *in) { load_far_ptr(cpu, in, SEG_GS); }

/* ---- far transfers and interrupts ---- */

void h_jmp_far_ptr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode == EMU_MODE_LONG64)
		ud(cpu);
	emu_far_jmp(cpu, in->imm2, in->imm, in->opsize);
}

void h_call_far_ptr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode == EMU_MODE_LONG64)
		ud(cpu);
	emu_far_call(cpu, in->imm2, in->imm, in->opsize);
}

static void far_mem(struct emu_cpu *cpu, const struct emu_insn *in, bool call)
{
	if (in->mod == 3)
		ud(cpu);
	unsigned size = in->opsize == 1 ? 2 : in->opsize;
	uint64_t ea = emu_insn_ea(cpu, in);
	uint64_t off = emu_read(cpu, in->seg, ea, size);
	uint16_t sel = (uint16_t)emu_read(cpu, in->seg, (ea + size) & emu_size_mask(in->adsize), 2);
	if (call)
		emu_far_call(cpu, sel, off, size);
	else
		emu_far_jmp(cpu, sel, off, size);
}

void h_call_far_mem(struct emu_cpu *cpu, const struct emu_insn *in) { far_mem(cpu, in, true); }
void h_jmp_far_mem(struct emu_cpu *cpu, const struct emu_insn *in) { far_mem(cpu, in, false); }

void h_retf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_far_ret(cpu, in->opsize == 1 ? 2 : in->opsize, in->opcode == 0xca ? (uint16_t)in->imm : 0);
}

void h_iret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_iret(cpu, in->opsize == 1 ? 2 : in->opsize);
}

void h_int3(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_soft_interrupt(cpu, X86_EXC_BP, false);
}

void h_int_n(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_soft_interrupt(cpu, (uint8_t)in->imm, true);
}

void h_into(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode == EMU_MODE_LONG64)
		ud(cpu);
	if (emu_get_rflags(cpu) & X86_FLAG_OF)
		emu_soft_interrupt(cpu, X86_EXC_OF, false);
}

void h_int1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	/* ICEBP: a #DB trap delivered like a hardware event, no DPL check.
	 * A data breakpoint hit by a MOV SS just before it, held by the
	 * shadow, is dropped: hardware delivers the one #DB of the ICEBP
	 * (observed behaviour, Linux tools/testing/selftests/x86/mov_ss_trap.c);
	 * delivered at the handler's first instruction instead it would
	 * re-enter the #DB handler on its own IST stack. */
	cpu->dbg_pending = 0;
	exc_deliver(cpu, X86_EXC_DB, false, 0, false, cpu->next_rip);
}

void h_hlt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	cpu->halted = true;
	emu_exit_run(cpu, VCPU_EXIT_HLT);
}

/* CLI/STI: IOPL rules, with VME (V86) and PVI (CPL 3) acting on VIF
 * (vol. 2A CLI/STI "Operation", table 3-7). */
void h_cli(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode == EMU_MODE_REAL || (cpu->mode != EMU_MODE_V86 && cpu->cpl <= iopl(cpu)) ||
	    (cpu->mode == EMU_MODE_V86 && iopl(cpu) == 3)) {
		set_flag_bits(cpu, X86_FLAG_IF, 0);
	} else if ((cpu->mode == EMU_MODE_V86 && (cpu->cr4 & X86_CR4_VME)) ||
		   (cpu->mode != EMU_MODE_V86 && cpu->cpl == 3 && (cpu->cr4 & X86_CR4_PVI))) {
		set_flag_bits(cpu, X86_FLAG_VIF, 0);
	} else {
		gp0(cpu);
	}
}

void h_sti(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t fl = emu_get_rflags(cpu);
	if (cpu->mode == EMU_MODE_REAL || (cpu->mode != EMU_MODE_V86 && cpu->cpl <= iopl(cpu)) ||
	    (cpu->mode == EMU_MODE_V86 && iopl(cpu) == 3)) {
		if (!(fl & X86_FLAG_IF))
			cpu->intr_shadow = true;   /* 6.8.3: no interrupt before the next instruction */
		set_flag_bits(cpu, 0, X86_FLAG_IF);
	} else if (((cpu->mode == EMU_MODE_V86 && (cpu->cr4 & X86_CR4_VME)) ||
		    (cpu->mode != EMU_MODE_V86 && cpu->cpl == 3 && (cpu->cr4 & X86_CR4_PVI))) &&
		   !(fl & X86_FLAG_VIP)) {
		set_flag_bits(cpu, 0, X86_FLAG_VIF);
	} else {
		gp0(cpu);
	}
}

/* ---- port I/O ---- */

static unsigned io_size(const struct emu_insn *in)
{
	if (!(in->opcode & 1))
		return 1;
	return in->opsize == 2 ? 2 : 4;
}

void h_in(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = io_size(in);
	uint16_t port = (in->opcode & 8) ? (uint16_t)cpu->gpr[RDX] : (uint8_t)in->imm;
	uint32_t v = emu_io_in(cpu, port, size);
	set_reg(cpu, RAX, size, v);
}

void h_out(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = io_size(in);
	uint16_t port = (in->opcode & 8) ? (uint16_t)cpu->gpr[RDX] : (uint8_t)in->imm;
	emu_io_out(cpu, port, size, (uint32_t)(cpu->gpr[RAX] & emu_size_mask(size)));
}

/* ---- 0F 00: LDT, TR, VERR/VERW ---- */

static void h_sldt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!prot_mode(cpu))
		ud(cpu);
	rm_store_sel(cpu, in, cpu->ldtr.sel);
}

static void h_str(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!prot_mode(cpu))
		ud(cpu);
	rm_store_sel(cpu, in, cpu->tr.sel);
}

/* Reads a system descriptor (16 bytes in IA-32e mode, 3.5.2). */
static void read_sys_desc(struct emu_cpu *cpu, uint16_t sel, struct emu_seg *s, uint64_t *desc)
{
	if (sel & 4)
		emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
	if (!seg_read_desc(cpu, sel, desc))
		emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
	seg_from_desc(s, sel, *desc);
	if (cpu->efer & X86_EFER_LMA) {
		uint64_t hi;
		if (!seg_read_desc(cpu, (uint16_t)(sel + 8), &hi))
			emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
		if ((hi >> 40) & 0x1f)
			emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
		s->base |= (hi & 0xffffffffull) << 32;
	}
}

/* In IA-32e mode the 16-byte LDT and TSS descriptors hold a 64-bit base,
 * which LLDT and LTR require canonical: #GP(selector) otherwise (SDM vol.
 * 2A LLDT, vol. 2B LTR, "64-Bit Mode Exceptions"). */
static void check_sys_base(struct emu_cpu *cpu, uint16_t sel, const struct emu_seg *s)
{
	if ((cpu->efer & X86_EFER_LMA) && !mmu_canonical(cpu, s->base))
		emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
}

static void h_lldt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!prot_mode(cpu))
		ud(cpu);
	need_cpl0(cpu);
	uint16_t sel = (uint16_t)rm_read16(cpu, in);
	if ((sel & ~3) == 0) {
		cpu->ldtr = (struct emu_seg){ .sel = sel };
		return;
	}
	struct emu_seg s;
	uint64_t desc;
	read_sys_desc(cpu, sel, &s, &desc);
	if ((s.attr & 0x1f) != 0x02)
		emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
	if (!(s.attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
	check_sys_base(cpu, sel, &s);
	cpu->ldtr = s;
}

static void h_ltr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!prot_mode(cpu))
		ud(cpu);
	need_cpl0(cpu);
	uint16_t sel = (uint16_t)rm_read16(cpu, in);
	if ((sel & ~3) == 0)
		gp0(cpu);
	struct emu_seg s;
	uint64_t desc;
	read_sys_desc(cpu, sel, &s, &desc);
	unsigned type = s.attr & 0x1f;
	bool lma = cpu->efer & X86_EFER_LMA;
	/* An available TSS: 16-bit (1) or 32/64-bit (9); only 9 in IA-32e mode. */
	if (!(type == 0x09 || (!lma && type == 0x01)))
		emu_raise(cpu, X86_EXC_GP, sel & 0xfffc);
	if (!(s.attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, sel & 0xfffc);
	check_sys_base(cpu, sel, &s);
	desc |= 2ull << 40;   /* busy */
	seg_write_desc_hi(cpu, sel, (uint32_t)(desc >> 32));
	s.attr |= 2;
	cpu->tr = s;
}

/* VERR/VERW/LAR/LSL: visibility at CPL and RPL (vol. 2A LAR "Operation"). */
static bool desc_visible(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc, struct emu_seg *s)
{
	if ((sel & ~3) == 0 || !seg_read_desc(cpu, sel, desc))
		return false;
	seg_from_desc(s, sel, *desc);
	bool conforming_code = (s->attr & 0x1c) == 0x1c;
	if (!conforming_code && (seg_dpl(s) < cpu->cpl || seg_dpl(s) < (sel & 3u)))
		return false;
	return true;
}

static void set_zf(struct emu_cpu *cpu, bool z)
{
	set_flag_bits(cpu, X86_FLAG_ZF, z ? X86_FLAG_ZF : 0);
}

static void h_verr_verw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!prot_mode(cpu))
		ud(cpu);
	uint16_t sel = (uint16_t)rm_read16(cpu, in);
	uint64_t desc;
	struct emu_seg s;
	bool ok = desc_visible(cpu, sel, &desc, &s) && (s.attr & 0x10);
	if (ok) {
		bool code = s.attr & 8;
		if ((in->reg & 7) == 4)
			ok = !code || (s.attr & 2);
		else
			ok = !code && (s.attr & 2);
	}
	set_zf(cpu, ok);
}

static void lar_lsl(struct emu_cpu *cpu, const struct emu_insn *in, bool lsl)
{
	if (!prot_mode(cpu))
		ud(cpu);
	uint16_t sel = (uint16_t)rm_read16(cpu, in);
	uint64_t desc;
	struct emu_seg s;
	bool ok = desc_visible(cpu, sel, &desc, &s);
	if (ok && !(s.attr & 0x10)) {
		/* System types valid for LAR (LSL: only those with a limit). */
		unsigned t = s.attr & 0xf;
		bool lma = cpu->efer & X86_EFER_LMA;
		if (lma)
			ok = t == 2 || t == 9 || t == 11 || (!lsl && t == 12);
		else
			ok = t == 1 || t == 2 || t == 3 || t == 9 || t == 11 ||
			     (!lsl && (t == 4 || t == 5 || t == 12));
	}
	set_zf(cpu, ok);
	if (!ok)
		return;
	unsigned size = in->opsize == 1 ? 2 : in->opsize;
	if (lsl)
		set_reg(cpu, in->reg, size, s.limit);
	else
		set_reg(cpu, in->reg, size, (desc >> 32) & 0x00f0ff00ull);
}

void h_lar(struct emu_cpu *cpu, const struct emu_insn *in) { lar_lsl(cpu, in, false); }
void h_lsl(struct emu_cpu *cpu, const struct emu_insn *in) { lar_lsl(cpu, in, true); }

void h_grp6(struct emu_cpu *cpu, const struct emu_insn *in)
{
	switch (in->reg & 7) {
	case 0: h_sldt(cpu, in); break;
	case 1: h_str(cpu, in); break;
	case 2: h_lldt(cpu, in); break;
	case 3: h_ltr(cpu, in); break;
	case 4: case 5: h_verr_verw(cpu, in); break;
	default: ud(cpu);
	}
}

/* ---- 0F 01 ---- */

static void store_dtable(struct emu_cpu *cpu, const struct emu_insn *in, const struct x86_dtable *t)
{
	uint64_t ea = emu_insn_ea(cpu, in);
	uint64_t base = t->base;
	unsigned bsize = cpu->mode == EMU_MODE_LONG64 ? 8 : 4;
	if (bsize == 4 && in->opsize == 2)
		base &= 0xffffff;   /* 16-bit operand size stores 24 bits of base (vol. 2B SGDT) */
	emu_write(cpu, in->seg, ea, 2, t->limit);
	emu_write(cpu, in->seg, (ea + 2) & emu_size_mask(in->adsize), bsize, base);
}

static void load_dtable(struct emu_cpu *cpu, const struct emu_insn *in, struct x86_dtable *t)
{
	need_cpl0(cpu);
	uint64_t ea = emu_insn_ea(cpu, in);
	uint16_t limit = (uint16_t)emu_read(cpu, in->seg, ea, 2);
	uint64_t base;
	if (cpu->mode == EMU_MODE_LONG64) {
		base = emu_read(cpu, in->seg, ea + 2, 8);
		if (!mmu_canonical(cpu, base))
			gp0(cpu);
	} else {
		base = emu_read(cpu, in->seg, (ea + 2) & emu_size_mask(in->adsize), 4);
		if (in->opsize == 2)
			base &= 0xffffff;
	}
	t->base = base;
	t->limit = limit;
}

static void h_hypercall(struct emu_cpu *cpu)
{
	if (cpu->cpl != 0) {
		/* TLFS 3.7: hypercalls from user mode fail with #UD. */
		ud(cpu);
	}
	struct vcpu_exit ex = { .reason = VCPU_EXIT_HYPERCALL };
	ex.hypercall.code = cpu->gpr[RCX];
	ex.hypercall.in_gpa = cpu->gpr[RDX];
	ex.hypercall.out_gpa = cpu->gpr[R8];
	ex.hypercall.result = 2;
	if (cpu->vcpu)
		vcpu_dispatch_exit(cpu->vcpu, &ex);
	cpu->gpr[RAX] = ex.hypercall.result;
}

void h_grp7_0(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod != 3) {
		store_dtable(cpu, in, &cpu->gdtr);
		return;
	}
	if ((in->rm & 7) == 1) {   /* 0F 01 C1: VMCALL */
		h_hypercall(cpu);
		return;
	}
	ud(cpu);
}

void h_grp7_1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod != 3) {
		store_dtable(cpu, in, &cpu->idtr);
		return;
	}
	switch (in->rm & 7) {
	case 2:   /* CLAC (0F 01 CA) */
	case 3:   /* STAC (0F 01 CB) */
		/* #UD at CPL > 0 only: CPUID advertises SMAP, CR4.SMAP does not matter. */
		if (cpu->cpl != 0)
			ud(cpu);
		set_flag_bits(cpu, X86_FLAG_AC, (in->rm & 7) == 3 ? X86_FLAG_AC : 0);
		return;
	default:
		ud(cpu);   /* MONITOR/MWAIT are not advertised */
	}
}

void h_grp7_2(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod != 3) {
		load_dtable(cpu, in, &cpu->gdtr);
		return;
	}
	/* XGETBV / XSETBV (0F 01 D0 / D1) belong to the fpu module. */
	if ((in->rm & 7) == 0)
		emu_fpu_xgetbv(cpu, in);
	else if ((in->rm & 7) == 1)
		emu_fpu_xsetbv(cpu, in);
	else
		ud(cpu);
}

void h_grp7_3(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod == 3)
		ud(cpu);
	load_dtable(cpu, in, &cpu->idtr);
}

void h_smsw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	rm_store_sel(cpu, in, (uint16_t)cpu->cr0);
	if (in->mod == 3 && in->opsize > 2)
		set_reg(cpu, in->rm, in->opsize, cpu->cr0 & emu_size_mask(in->opsize));
}

void h_lmsw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	uint64_t v = rm_read16(cpu, in);
	/* Loads PE, MP, EM, TS; cannot clear PE (vol. 2A LMSW). */
	uint64_t ncr0 = (cpu->cr0 & ~0xeull) | (v & 0xf) | (cpu->cr0 & X86_CR0_PE);
	mode_write_cr0(cpu, ncr0);
}

void h_grp7_7(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod != 3) {
		need_cpl0(cpu);
		mmu_invlpg(cpu, emu_seg_linear(cpu, in->seg, emu_insn_ea(cpu, in)));
		return;
	}
	switch (in->rm & 7) {
	case 0:   /* SWAPGS (0F 01 F8): 64-bit mode only */
		if (cpu->mode != EMU_MODE_LONG64)
			ud(cpu);
		need_cpl0(cpu);
		{
			uint64_t t = cpu->seg[SEG_GS].base;
			cpu->seg[SEG_GS].base = cpu->kernel_gs_base;
			cpu->kernel_gs_base = t;
		}
		return;
	case 1:   /* RDTSCP (0F 01 F9) */
		if ((cpu->cr4 & X86_CR4_TSD) && cpu->cpl != 0)
			gp0(cpu);
		{
			uint64_t t = emu_rdtsc(cpu);
			cpu->gpr[RAX] = (uint32_t)t;
			cpu->gpr[RDX] = t >> 32;
			cpu->gpr[RCX] = (uint32_t)cpu->tsc_aux;
		}
		return;
	default:
		ud(cpu);
	}
}

/* ---- control and debug registers ---- */

void h_mov_from_cr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	unsigned size = cpu->mode == EMU_MODE_LONG64 ? 8 : 4;
	uint64_t v;
	switch (in->reg) {
	case 0: v = cpu->cr0; break;
	case 2: v = cpu->cr2; break;
	case 3: v = cpu->cr3; break;
	case 4: v = cpu->cr4; break;
	case 8:
		if (cpu->mode != EMU_MODE_LONG64)
			ud(cpu);
		v = emu_hook_get_tpr(cpu) >> 4;
		break;
	default: ud(cpu);
	}
	set_reg(cpu, in->rm, size, v);
}

void h_mov_to_cr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	unsigned size = cpu->mode == EMU_MODE_LONG64 ? 8 : 4;
	uint64_t v = cpu->gpr[in->rm] & emu_size_mask(size);
	switch (in->reg) {
	case 0: mode_write_cr0(cpu, v); break;
	case 2: cpu->cr2 = v; break;
	case 3: mode_write_cr3(cpu, v); break;
	case 4: mode_write_cr4(cpu, v); break;
	case 8:
		if (cpu->mode != EMU_MODE_LONG64)
			ud(cpu);
		if (v & ~0xfull)
			gp0(cpu);
		emu_hook_set_tpr(cpu, (uint8_t)(v << 4));
		break;
	default: ud(cpu);
	}
	cpu->mode_changed = true;
}

static unsigned dr_index(struct emu_cpu *cpu, unsigned r)
{
	if (r > 7)
		ud(cpu);
	if (r == 4 || r == 5) {
		/* DR4/DR5 alias DR6/DR7 unless CR4.DE (vol. 3B 17.2.2). */
		if (cpu->cr4 & X86_CR4_DE)
			ud(cpu);
		r += 2;
	}
	return r;
}

/* DR7.GD: any MOV to or from a debug register raises #DB (a fault) with
 * DR6.BD, and GD is cleared so that the handler may use them (SDM vol. 3B
 * 17.2.4, 17.3.1.2). */
static void general_detect(struct emu_cpu *cpu)
{
	if (!(cpu->dr[7] & (1u << 13)))
		return;
	cpu->dr[7] &= ~(1ull << 13);
	cpu->dr[6] |= 1u << 13;
	emu_raise_noerr(cpu, X86_EXC_DB);
}

void h_mov_from_dr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	unsigned r = dr_index(cpu, in->reg);
	general_detect(cpu);
	set_reg(cpu, in->rm, cpu->mode == EMU_MODE_LONG64 ? 8 : 4, cpu->dr[r]);
}

void h_mov_to_dr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	unsigned r = dr_index(cpu, in->reg);
	general_detect(cpu);
	uint64_t v = cpu->gpr[in->rm] & emu_size_mask(cpu->mode == EMU_MODE_LONG64 ? 8 : 4);
	if (r >= 6 && (v >> 32))
		gp0(cpu);
	if (r == 6)
		v = (v & 0x1e00fu) | 0xffff0ff0u;
	else if (r == 7)
		v = (v & ~0xd800ull) | 0x400;
	cpu->dr[r] = v;
	if (r == 7)
		emu_debug_dr7_changed(cpu);
}

void h_clts(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	cpu->cr0 &= ~X86_CR0_TS;
}

void h_wbinvd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);   /* caches are coherent here: nothing to write back */
}

/* ---- MSRs, TSC, CPUID ---- */

void h_rdmsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	uint64_t v;
	if (msr_read(cpu, (uint32_t)cpu->gpr[RCX], &v) < 0)
		gp0(cpu);
	cpu->gpr[RAX] = (uint32_t)v;
	cpu->gpr[RDX] = v >> 32;
}

void h_wrmsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	uint64_t v = (uint32_t)cpu->gpr[RAX] | (cpu->gpr[RDX] << 32);
	if (msr_write(cpu, (uint32_t)cpu->gpr[RCX], v) < 0)
		gp0(cpu);
	cpu->mode_changed = true;
}

void h_rdtsc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if ((cpu->cr4 & X86_CR4_TSD) && cpu->cpl != 0)
		gp0(cpu);
	uint64_t t = emu_rdtsc(cpu);
	cpu->gpr[RAX] = (uint32_t)t;
	cpu->gpr[RDX] = t >> 32;
}

void h_rdpmc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	gp0(cpu);   /* no performance counters are advertised (CPUID leaf 0xa is empty) */
}

void h_cpuid(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint32_t r[4];
	cpuid_query(cpu, (uint32_t)cpu->gpr[RAX], (uint32_t)cpu->gpr[RCX], r);
	cpu->gpr[RAX] = r[0];
	cpu->gpr[RBX] = r[1];
	cpu->gpr[RCX] = r[2];
	cpu->gpr[RDX] = r[3];
}

/* RDPID (F3 0F C7 /7, register form): TSC_AUX into a 64-bit (32-bit
 * outside 64-bit mode) register.  RDRAND/RDSEED are h_rdrand (int_misc.c). */
void h_rdpid(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod != 3)
		ud(cpu);
	set_reg(cpu, in->rm, cpu->mode == EMU_MODE_LONG64 ? 8 : 4, cpu->tsc_aux);
}

void h_invpcid(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod == 3 || !prot_mode(cpu))
		ud(cpu);
	need_cpl0(cpu);
	uint64_t type = cpu->gpr[in->reg] & (cpu->mode == EMU_MODE_LONG64 ? ~0ull : 0xffffffffull);
	uint64_t ea = emu_insn_ea(cpu, in);
	uint64_t d0 = emu_read(cpu, in->seg, ea, 8);
	uint64_t d1 = emu_read(cpu, in->seg, ea + 8, 8);
	/* vol. 2A INVPCID: PCID above 12 bits, a non-canonical address for
	 * type 0, or PCID != 0 with CR4.PCIDE = 0 are #GP(0). */
	if (type > 3 || (d0 >> 12))
		gp0(cpu);
	if (type == 0 && !mmu_canonical(cpu, d1))
		gp0(cpu);
	if (type <= 1 && !(cpu->cr4 & X86_CR4_PCIDE) && d0 != 0)
		gp0(cpu);
	mmu_invpcid(cpu, (unsigned)type, d0 & 0xfff, d1);
}

void h_fsgsbase(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod != 3 || cpu->mode != EMU_MODE_LONG64 || !(cpu->cr4 & X86_CR4_FSGSBASE))
		ud(cpu);
	unsigned op = in->reg & 7;
	unsigned size = in->opsize == 8 ? 8 : 4;
	int s = (op & 1) ? SEG_GS : SEG_FS;
	if (op < 2) {
		set_reg(cpu, in->rm, size, cpu->seg[s].base);
	} else if (op < 4) {
		uint64_t v = cpu->gpr[in->rm] & emu_size_mask(size);
		if (!mmu_canonical(cpu, v))
			gp0(cpu);
		cpu->seg[s].base = v;
	} else {
		ud(cpu);
	}
}

/* ---- fast system calls ---- */

static void flat_code(struct emu_seg *s, uint16_t sel, unsigned dpl, bool l)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->attr = (uint16_t)(0x9b | dpl << 5 | 0x800 | (l ? 0x200 : 0x400));
}

static void flat_stack(struct emu_seg *s, uint16_t sel, unsigned dpl)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->attr = (uint16_t)(0x93 | dpl << 5 | 0xc00);
}

void h_syscall(struct emu_cpu *cpu, const struct emu_insn *in)
{
	/* Intel processors support SYSCALL only in 64-bit mode (vol. 2B SYSCALL). */
	if (cpu->mode != EMU_MODE_LONG64 || !(cpu->efer & X86_EFER_SCE))
		ud(cpu);
	uint16_t sel = (uint16_t)(cpu->star >> 32);
	uint64_t fl = emu_get_rflags(cpu);
	cpu->gpr[RCX] = cpu->next_rip;
	cpu->gpr[R11] = fl & ~(uint64_t)X86_FLAG_RF;
	flat_code(&cpu->seg[SEG_CS], sel & 0xfffc, 0, true);
	flat_stack(&cpu->seg[SEG_SS], (uint16_t)(sel + 8), 0);
	cpu->cpl = 0;
	emu_set_rflags(cpu, fl & ~(cpu->sfmask | X86_FLAG_RF));
	/* The single-step trap of SYSCALL follows RFLAGS after it: with TF
	 * masked by IA32_FMASK there is no #DB at the entry point (as on
	 * hardware; Linux warns in exc_debug_kernel() if one arrives).  The
	 * one-instruction path treats it like an event delivery: no trap now,
	 * and a data breakpoint still pending from a MOV SS before it is
	 * taken at the entry point, as after INT n. */
	if ((fl & X86_FLAG_TF) && (cpu->sfmask & X86_FLAG_TF))
		cpu->event_delivered = true;
	cpu->next_rip = cpu->lstar;
	emu_update_mode(cpu);
}

void h_sysret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->mode != EMU_MODE_LONG64 || !(cpu->efer & X86_EFER_SCE))
		ud(cpu);
	need_cpl0(cpu);
	uint16_t sel = (uint16_t)(cpu->star >> 48);
	bool to64 = in->opsize == 8;
	uint64_t rip = to64 ? cpu->gpr[RCX] : (uint32_t)cpu->gpr[RCX];
	if (to64 && !mmu_canonical(cpu, rip))
		gp0(cpu);
	if (to64)
		flat_code(&cpu->seg[SEG_CS], (uint16_t)((sel + 16) | 3), 3, true);
	else
		flat_code(&cpu->seg[SEG_CS], (uint16_t)(sel | 3), 3, false);
	/* SS keeps the selector's RPL 3 view; its cached attributes are fixed. */
	flat_stack(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) | 3), 3);
	cpu->cpl = 3;
	emu_set_rflags(cpu, (cpu->gpr[R11] & 0x3c7fd7ull) | X86_FLAG_FIXED);
	cpu->next_rip = rip;
	emu_update_mode(cpu);
}

void h_sysenter(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!(cpu->cr0 & X86_CR0_PE) || (cpu->sysenter_cs & 0xfffc) == 0)
		gp0(cpu);
	bool lma = cpu->efer & X86_EFER_LMA;
	uint16_t sel = (uint16_t)cpu->sysenter_cs;
	set_flag_bits(cpu, X86_FLAG_VM | X86_FLAG_IF | X86_FLAG_RF, 0);
	flat_code(&cpu->seg[SEG_CS], sel & 0xfffc, 0, lma);
	flat_stack(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) & 0xfffc), 0);
	cpu->cpl = 0;
	cpu->gpr[RSP] = lma ? cpu->sysenter_esp : (uint32_t)cpu->sysenter_esp;
	cpu->next_rip = lma ? cpu->sysenter_eip : (uint32_t)cpu->sysenter_eip;
	emu_update_mode(cpu);
}

void h_sysexit(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!prot_mode(cpu) || cpu->cpl != 0 || (cpu->sysenter_cs & 0xfffc) == 0)
		gp0(cpu);
	uint16_t sel = (uint16_t)cpu->sysenter_cs;
	bool to64 = in->opsize == 8;
	if (to64) {
		flat_code(&cpu->seg[SEG_CS], (uint16_t)((sel + 32) | 3), 3, true);
		flat_stack(&cpu->seg[SEG_SS], (uint16_t)((sel + 40) | 3), 3);
		cpu->gpr[RSP] = cpu->gpr[RCX];
		cpu->next_rip = cpu->gpr[RDX];
	} else {
		flat_code(&cpu->seg[SEG_CS], (uint16_t)((sel + 16) | 3), 3, false);
		flat_stack(&cpu->seg[SEG_SS], (uint16_t)((sel + 24) | 3), 3);
		cpu->gpr[RSP] = (uint32_t)cpu->gpr[RCX];
		cpu->next_rip = (uint32_t)cpu->gpr[RDX];
	}
	cpu->cpl = 3;
	emu_update_mode(cpu);
}
