/* Exceptions and interrupts: emu_raise, delivery through the IVT (real
 * mode), the protected-mode IDT (interrupt, trap and task gates, 16/32-bit)
 * and the IA-32e IDT (IST and stack switching through the 64-bit TSS), and
 * the double/triple fault rules (SDM vol. 3A chapter 6). */
#include "cpu/emu/system/sys.h"

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void emu_raise(struct emu_cpu *cpu, unsigned vector, uint32_t error_code)
{
	cpu->exc_vector = (int)vector;
	cpu->exc_error = error_code;
	cpu->exc_has_error = true;
	if (!cpu->fault_env)
		abort();   /* an engine bug: every caller runs under the run loop's setjmp */
	longjmp(*cpu->fault_env, 1);
}

_Noreturn void emu_raise_noerr(struct emu_cpu *cpu, unsigned vector)
{
	cpu->exc_vector = (int)vector;
	cpu->exc_error = 0;
	cpu->exc_has_error = false;
	if (!cpu->fault_env)
		abort();
	longjmp(*cpu->fault_env, 1);
}

void exc_shutdown(struct emu_cpu *cpu, const char *why)
{
	log_debug("emu", "shutdown: %s", why);
	if (cpu->exit)
		snprintf(cpu->exit->error.message, sizeof(cpu->exit->error.message), "triple fault: %s", why);
	cpu->halted = true;
	emu_exit_run(cpu, VCPU_EXIT_SHUTDOWN);
}

/* ---- stacks ---- */

static uint64_t stack_mask_m(unsigned mode, const struct emu_seg *ss)
{
	if (mode == EMU_MODE_LONG64)
		return ~0ull;
	return (ss->attr & 0x400) ? 0xffffffffull : 0xffffull;
}

static uint64_t stack_mask(const struct emu_cpu *cpu, const struct emu_seg *ss)
{
	return stack_mask_m(cpu->mode, ss);
}

uint64_t sys_get_sp(const struct emu_cpu *cpu, const struct emu_seg *ss)
{
	return cpu->gpr[RSP] & stack_mask(cpu, ss);
}

void sys_set_sp(struct emu_cpu *cpu, const struct emu_seg *ss, uint64_t sp)
{
	uint64_t m = stack_mask(cpu, ss);
	cpu->gpr[RSP] = (cpu->gpr[RSP] & ~m) | (sp & m);
}

/* Pushes with the stack-size rules of ss in execution mode `mode` (which
 * may be the mode being entered); *sp is the full RSP value, updated only
 * in the caller's copy so that a fault leaves the registers untouched. */
void stack_push(struct emu_cpu *cpu, unsigned mode, const struct emu_seg *ss, uint64_t *sp, unsigned size,
		uint64_t val, unsigned idx)
{
	uint64_t m = stack_mask_m(mode, ss);
	uint64_t nsp = (*sp & ~m) | ((*sp - size) & m);
	uint64_t lin = seg_linear_m(cpu, mode, ss, SEG_SS, nsp & m, size, EMU_ACC_WRITE);
	mmu_write_lin(cpu, lin, size, val & emu_size_mask(size), idx);
	*sp = nsp;
}

uint64_t stack_pop(struct emu_cpu *cpu, unsigned mode, const struct emu_seg *ss, uint64_t *sp, unsigned size,
		   unsigned idx)
{
	uint64_t m = stack_mask_m(mode, ss);
	uint64_t lin = seg_linear_m(cpu, mode, ss, SEG_SS, *sp & m, size, EMU_ACC_READ);
	uint64_t v = mmu_read_lin(cpu, lin, size, idx);
	*sp = (*sp & ~m) | ((*sp + size) & m);
	return v;
}

static unsigned idx_for_cpl(unsigned cpl)
{
	return cpl == 3 ? EMU_MMU_USER : EMU_MMU_SUP;
}

/* ---- real mode (SDM vol. 3A 20.1.4) ---- */

static void deliver_real(struct emu_cpu *cpu, unsigned vector, uint64_t ret_rip)
{
	uint64_t off = vector * 4ull;
	if (off + 3 > cpu->idtr.limit)
		emu_raise(cpu, X86_EXC_GP, 0);
	uint32_t ent = (uint32_t)mmu_read_lin(cpu, (uint32_t)(cpu->idtr.base + off), 4, EMU_MMU_SUP);
	struct emu_seg ss = cpu->seg[SEG_SS];
	uint64_t sp = cpu->gpr[RSP];
	uint64_t fl = emu_get_rflags(cpu);
	stack_push(cpu, EMU_MODE_REAL, &ss, &sp, 2, fl, EMU_MMU_SUP);
	stack_push(cpu, EMU_MODE_REAL, &ss, &sp, 2, cpu->seg[SEG_CS].sel, EMU_MMU_SUP);
	stack_push(cpu, EMU_MODE_REAL, &ss, &sp, 2, ret_rip, EMU_MMU_SUP);
	cpu->gpr[RSP] = sp;
	emu_set_rflags(cpu, fl & ~(uint64_t)(X86_FLAG_IF | X86_FLAG_TF | X86_FLAG_AC | X86_FLAG_RF));
	seg_real(&cpu->seg[SEG_CS], (uint16_t)(ent >> 16));
	cpu->rip = cpu->next_rip = ent & 0xffff;
}

/* ---- protected mode, legacy IDT (6.12) ---- */

struct gate_target {
	uint16_t sel;
	uint64_t desc;
	struct emu_seg cs;
};

/* Checks the code segment a gate points to (6.12.1.1). */
static void check_gate_cs(struct emu_cpu *cpu, uint16_t sel, uint32_t ext, bool need64, struct gate_target *t)
{
	if ((sel & ~3) == 0)
		emu_raise(cpu, X86_EXC_GP, ext);
	if (!seg_read_desc(cpu, sel, &t->desc))
		emu_raise(cpu, X86_EXC_GP, (sel & 0xfffc) | ext);
	seg_from_desc(&t->cs, sel, t->desc);
	if ((t->cs.attr & 0x18) != 0x18 || seg_dpl(&t->cs) > cpu->cpl)
		emu_raise(cpu, X86_EXC_GP, (sel & 0xfffc) | ext);
	if (need64 && (!(t->cs.attr & 0x200) || (t->cs.attr & 0x400)))
		emu_raise(cpu, X86_EXC_GP, (sel & 0xfffc) | ext);
	if (!(t->cs.attr & 0x80))
		emu_raise(cpu, X86_EXC_NP, (sel & 0xfffc) | ext);
	t->sel = sel;
}

/* Stack pointer for privilege level dpl from the current TSS (7.2.1, 7.7). */
static void tss_stack(struct emu_cpu *cpu, unsigned dpl, uint32_t ext, uint16_t *ss, uint64_t *sp)
{
	unsigned type = cpu->tr.attr & 0xf;
	bool tss32 = type == 9 || type == 11;
	uint64_t off = tss32 ? 4 + dpl * 8ull : 2 + dpl * 4ull;
	unsigned sz = tss32 ? 4 : 2;
	if (off + (tss32 ? 5 : 3) > cpu->tr.limit)
		emu_raise(cpu, X86_EXC_TS, (cpu->tr.sel & 0xfffc) | ext);
	*sp = mmu_read_lin(cpu, (uint32_t)(cpu->tr.base + off), sz, EMU_MMU_SUP);
	*ss = (uint16_t)mmu_read_lin(cpu, (uint32_t)(cpu->tr.base + off + sz), 2, EMU_MMU_SUP);
}

/* Loads SS for an inter-privilege interrupt: every failure is #TS (6.12.1.1). */
static void check_new_ss(struct emu_cpu *cpu, uint16_t sel, unsigned dpl, uint32_t ext, struct emu_seg *out)
{
	if ((sel & ~3) == 0)
		emu_raise(cpu, X86_EXC_TS, ext);
	uint64_t desc;
	if (!seg_read_desc(cpu, sel, &desc))
		emu_raise(cpu, X86_EXC_TS, (sel & 0xfffc) | ext);
	seg_from_desc(out, sel, desc);
	if ((sel & 3) != dpl || seg_dpl(out) != dpl || (out->attr & 0x1a) != 0x12)
		emu_raise(cpu, X86_EXC_TS, (sel & 0xfffc) | ext);
	if (!(out->attr & 0x80))
		emu_raise(cpu, X86_EXC_SS, (sel & 0xfffc) | ext);
	seg_set_accessed(cpu, sel, &desc);
	seg_from_desc(out, sel, desc);
}

static void deliver_prot(struct emu_cpu *cpu, unsigned vector, bool has_err, uint32_t err, bool soft,
			 uint64_t ret_rip)
{
	uint32_t ext = soft ? 0 : 1;
	uint32_t gate_err = vector * 8 + 2 + ext;
	if (vector * 8ull + 7 > cpu->idtr.limit)
		emu_raise(cpu, X86_EXC_GP, gate_err);
	uint64_t gate = mmu_read_lin(cpu, (uint32_t)(cpu->idtr.base + vector * 8), 8, EMU_MMU_SUP);
	unsigned type = (gate >> 40) & 0x1f;
	if (type != 0x05 && type != 0x06 && type != 0x07 && type != 0x0e && type != 0x0f)
		emu_raise(cpu, X86_EXC_GP, gate_err);
	unsigned gdpl = (gate >> 45) & 3;
	if (soft && gdpl < cpu->cpl)
		emu_raise(cpu, X86_EXC_GP, gate_err);
	if (!(gate & (1ull << 47)))
		emu_raise(cpu, X86_EXC_NP, gate_err);
	uint16_t sel = (uint16_t)(gate >> 16);
	if (type == 0x05) {
		uint64_t desc;
		if ((sel & 4) || !seg_read_desc(cpu, sel, &desc))
			emu_raise(cpu, X86_EXC_GP, (sel & 0xfffc) | ext);
		task_switch(cpu, sel, desc, TASK_INT, has_err, err, ret_rip);
		return;
	}
	bool g32 = type & 8;
	unsigned gsz = g32 ? 4 : 2;
	uint64_t target = g32 ? ((gate & 0xffff) | ((gate >> 32) & 0xffff0000ull)) : (gate & 0xffff);
	struct gate_target t;
	check_gate_cs(cpu, sel, ext, false, &t);
	unsigned dpl = seg_dpl(&t.cs);
	bool conforming = t.cs.attr & 4;
	bool v86 = cpu->rflags & X86_FLAG_VM;
	const unsigned pm = EMU_MODE_PROT32;   /* the handler's stack is a protected-mode one */
	uint64_t fl = emu_get_rflags(cpu);
	struct emu_seg old_ss = cpu->seg[SEG_SS];
	struct emu_seg ss;
	uint64_t sp;
	unsigned new_cpl;
	if (!conforming && dpl < cpu->cpl) {
		if (v86 && dpl != 0)
			emu_raise(cpu, X86_EXC_GP, (sel & 0xfffc) | ext);
		uint16_t ss_sel;
		tss_stack(cpu, dpl, ext, &ss_sel, &sp);
		check_new_ss(cpu, ss_sel, dpl, ext, &ss);
		new_cpl = dpl;
		/* The new stack is written under the new privilege. */
		uint64_t old_sp = cpu->gpr[RSP];
		if (v86) {
			stack_push(cpu, pm, &ss, &sp, gsz, cpu->seg[SEG_GS].sel, idx_for_cpl(new_cpl));
			stack_push(cpu, pm, &ss, &sp, gsz, cpu->seg[SEG_FS].sel, idx_for_cpl(new_cpl));
			stack_push(cpu, pm, &ss, &sp, gsz, cpu->seg[SEG_DS].sel, idx_for_cpl(new_cpl));
			stack_push(cpu, pm, &ss, &sp, gsz, cpu->seg[SEG_ES].sel, idx_for_cpl(new_cpl));
		}
		stack_push(cpu, pm, &ss, &sp, gsz, old_ss.sel, idx_for_cpl(new_cpl));
		stack_push(cpu, pm, &ss, &sp, gsz, old_sp, idx_for_cpl(new_cpl));
		stack_push(cpu, pm, &ss, &sp, gsz, fl, idx_for_cpl(new_cpl));
		stack_push(cpu, pm, &ss, &sp, gsz, cpu->seg[SEG_CS].sel, idx_for_cpl(new_cpl));
		stack_push(cpu, pm, &ss, &sp, gsz, ret_rip, idx_for_cpl(new_cpl));
		if (has_err)
			stack_push(cpu, pm, &ss, &sp, gsz, err, idx_for_cpl(new_cpl));
		if (target > t.cs.limit)
			emu_raise(cpu, X86_EXC_GP, 0);
		if (v86) {
			static const int segs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
			for (unsigned i = 0; i < 4; i++)
				cpu->seg[segs[i]] = (struct emu_seg){ 0 };
		}
		cpu->seg[SEG_SS] = ss;
		cpu->gpr[RSP] = (ss.attr & 0x400) ? (uint32_t)sp : (old_sp & ~0xffffull) | (sp & 0xffff);
	} else {
		if (v86)
			emu_raise(cpu, X86_EXC_GP, (sel & 0xfffc) | ext);
		new_cpl = cpu->cpl;
		ss = old_ss;
		sp = cpu->gpr[RSP];
		stack_push(cpu, pm, &ss, &sp, gsz, fl, idx_for_cpl(new_cpl));
		stack_push(cpu, pm, &ss, &sp, gsz, cpu->seg[SEG_CS].sel, idx_for_cpl(new_cpl));
		stack_push(cpu, pm, &ss, &sp, gsz, ret_rip, idx_for_cpl(new_cpl));
		if (has_err)
			stack_push(cpu, pm, &ss, &sp, gsz, err, idx_for_cpl(new_cpl));
		if (target > t.cs.limit)
			emu_raise(cpu, X86_EXC_GP, 0);
		cpu->gpr[RSP] = sp;
	}
	seg_set_accessed(cpu, sel, &t.desc);
	seg_from_desc(&cpu->seg[SEG_CS], (uint16_t)((sel & ~3) | new_cpl), t.desc);
	cpu->cpl = (uint8_t)new_cpl;
	uint64_t clear = X86_FLAG_TF | X86_FLAG_NT | X86_FLAG_VM | X86_FLAG_RF;
	if (!(type & 1))
		clear |= X86_FLAG_IF;   /* interrupt gate (6.12.1.3) */
	emu_set_rflags(cpu, fl & ~clear);
	cpu->rip = cpu->next_rip = target;
	emu_update_mode(cpu);
}

/* ---- IA-32e mode (6.14) ---- */

static void deliver_long(struct emu_cpu *cpu, unsigned vector, bool has_err, uint32_t err, bool soft,
			 uint64_t ret_rip)
{
	uint32_t ext = soft ? 0 : 1;
	uint32_t gate_err = vector * 8 + 2 + ext;   /* index = vector in IA-32e mode too (6.13) */
	if (vector * 16ull + 15 > cpu->idtr.limit)
		emu_raise(cpu, X86_EXC_GP, gate_err);
	uint64_t lo = mmu_read_lin(cpu, cpu->idtr.base + vector * 16, 8, EMU_MMU_SUP);
	uint64_t hi = mmu_read_lin(cpu, cpu->idtr.base + vector * 16 + 8, 8, EMU_MMU_SUP);
	unsigned type = (lo >> 40) & 0x1f;
	if (type != 0x0e && type != 0x0f)
		emu_raise(cpu, X86_EXC_GP, gate_err);
	unsigned gdpl = (lo >> 45) & 3;
	if (soft && gdpl < cpu->cpl)
		emu_raise(cpu, X86_EXC_GP, gate_err);
	if (!(lo & (1ull << 47)))
		emu_raise(cpu, X86_EXC_NP, gate_err);
	uint16_t sel = (uint16_t)(lo >> 16);
	uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
	unsigned ist = (lo >> 32) & 7;
	struct gate_target t;
	check_gate_cs(cpu, sel, ext, true, &t);
	unsigned dpl = seg_dpl(&t.cs);
	unsigned new_cpl = (t.cs.attr & 4) ? cpu->cpl : dpl;
	uint64_t sp = cpu->gpr[RSP];
	if (new_cpl != cpu->cpl || ist) {
		/* 64-bit TSS: RSPn at 4 + 8n, ISTn at 0x24 + 8(n-1) (7.7, figure 7-11). */
		uint64_t off = ist ? 0x24 + 8ull * (ist - 1) : 4 + 8ull * new_cpl;
		if (off + 7 > cpu->tr.limit)
			emu_raise(cpu, X86_EXC_TS, (cpu->tr.sel & 0xfffc) | ext);
		sp = mmu_read_lin(cpu, cpu->tr.base + off, 8, EMU_MMU_SUP);
	}
	if (!mmu_canonical(cpu, target))
		emu_raise(cpu, X86_EXC_GP, ext);
	sp &= ~0xfull;   /* 6.14.2: the stack is aligned to 16 bytes */
	uint64_t fl = emu_get_rflags(cpu);
	uint64_t frame[6] = { cpu->seg[SEG_SS].sel, cpu->gpr[RSP], fl, cpu->seg[SEG_CS].sel, ret_rip, err };
	unsigned n = has_err ? 6 : 5;
	for (unsigned i = 0; i < n; i++) {
		sp -= 8;
		if (!mmu_canonical(cpu, sp))
			emu_raise(cpu, X86_EXC_SS, ext);
		mmu_write_lin(cpu, sp, 8, frame[i], idx_for_cpl(new_cpl));
	}
	if (new_cpl != cpu->cpl) {
		/* SS becomes a null selector with RPL = new CPL (6.14.4). */
		cpu->seg[SEG_SS] = (struct emu_seg){ .sel = (uint16_t)new_cpl, .attr = (uint16_t)(new_cpl << 5) };
	}
	cpu->gpr[RSP] = sp;
	seg_set_accessed(cpu, sel, &t.desc);
	seg_from_desc(&cpu->seg[SEG_CS], (uint16_t)((sel & ~3) | new_cpl), t.desc);
	cpu->cpl = (uint8_t)new_cpl;
	uint64_t clear = X86_FLAG_TF | X86_FLAG_NT | X86_FLAG_VM | X86_FLAG_RF;
	if (!(type & 1))
		clear |= X86_FLAG_IF;
	emu_set_rflags(cpu, fl & ~clear);
	cpu->rip = cpu->next_rip = target;
	emu_update_mode(cpu);
}

void exc_deliver(struct emu_cpu *cpu, unsigned vector, bool has_err, uint32_t err, bool soft, uint64_t ret_rip)
{
	cpu->halted = false;
	cpu->intr_shadow = false;
	cpu->event_delivered = true;
	if (!(cpu->cr0 & X86_CR0_PE))
		deliver_real(cpu, vector, ret_rip);
	else if (cpu->efer & X86_EFER_LMA)
		deliver_long(cpu, vector, has_err, err, soft, ret_rip);
	else
		deliver_prot(cpu, vector, has_err, err, soft, ret_rip);
	cpu->mode_changed = true;
}

/* Exception classes for the double-fault rule (6.15, table 6-4/6-5). */
static bool is_contributory(unsigned v)
{
	return v == X86_EXC_DE || v == X86_EXC_TS || v == X86_EXC_NP || v == X86_EXC_SS || v == X86_EXC_GP;
}

/* Delivers an exception or external interrupt; a fault raised while doing
 * so becomes #DF or a triple fault as table 6-5 says, or is delivered
 * serially when the pair is benign. */
static void deliver_hw_event(struct emu_cpu *cpu, unsigned vector, bool has_err, uint32_t err, uint64_t ret_rip,
			     bool is_exception)
{
	jmp_buf env;
	jmp_buf *saved = cpu->fault_env;
	volatile unsigned cur = vector;
	volatile bool cur_has = has_err;
	volatile uint32_t cur_err = err;
	volatile bool cur_exc = is_exception;
	volatile int rounds = 0;
	cpu->fault_env = &env;
	if (setjmp(env)) {
		unsigned second = (unsigned)cpu->exc_vector;
		cpu->exc_vector = -1;
		if (++rounds > 4 || (cur_exc && cur == X86_EXC_DF)) {
			char why[96];
			snprintf(why, sizeof(why), "exception %u while delivering exception %u", second, cur);
			cpu->fault_env = saved;
			exc_shutdown(cpu, why);
			return;
		}
		bool df = cur_exc && ((is_contributory(cur) && is_contributory(second)) ||
				      (cur == X86_EXC_PF && (is_contributory(second) || second == X86_EXC_PF)));
		if (df) {
			cur = X86_EXC_DF;
			cur_has = true;
			cur_err = 0;
		} else {
			cur = second;
			cur_has = cpu->exc_has_error;
			cur_err = cpu->exc_error;
		}
		cur_exc = true;
	}
	cpu->delivering = (int)cur;
	exc_deliver(cpu, cur, cur_has, cur_err, false, ret_rip);
	cpu->delivering = -1;
	cpu->fault_env = saved;
}

void emu_deliver_pending_exception(struct emu_cpu *cpu)
{
	if (cpu->exc_vector < 0)
		return;
	unsigned v = (unsigned)cpu->exc_vector;
	bool has = cpu->exc_has_error;
	uint32_t err = cpu->exc_error;
	cpu->exc_vector = -1;
	/* The EFLAGS image of a fault has RF set, so that the handler's IRET
	 * resumes the instruction without an instruction breakpoint on it
	 * firing again (SDM vol. 3B 17.3.1.1); aborts push RF as it is.  The
	 * delivery clears RF itself. */
	if (v != X86_EXC_DF && v != X86_EXC_MC)
		cpu->rflags |= X86_FLAG_RF;
	/* Faults report the faulting instruction (6.5): RIP is still its address. */
	deliver_hw_event(cpu, v, has, err, cpu->rip, true);
}

void emu_debug_trap(struct emu_cpu *cpu)
{
	uint32_t bits = cpu->dbg_pending;
	cpu->dbg_pending = 0;
	if (bits & 0xf)
		cpu->dr[6] &= ~0xfull;
	cpu->dr[6] |= bits;
	deliver_hw_event(cpu, X86_EXC_DB, false, 0, cpu->rip, true);
}

/* DR7 R/Wn values as a mask of 1 << R/Wn (SDM vol. 3B 17.2.4). */
#define BP_EXEC  (1u << 0)
#define BP_WRITE (1u << 1)
#define BP_IO    (1u << 2)
#define BP_RW    (1u << 3)

/* DR6.Bn of each DRn that is enabled (Ln or Gn), has its R/Wn in kinds,
 * and whose range meets [addr, addr + size).  LENn 00, 01, 10, 11 cover
 * 1, 2, 8, 4 bytes, with DRn aligned down to that size (17.2.5). */
static uint32_t bp_match(const struct emu_cpu *cpu, uint64_t addr, unsigned size, unsigned kinds)
{
	static const uint8_t len_bytes[4] = { 1, 2, 8, 4 };
	uint64_t dr7 = cpu->dr[7];
	uint32_t hit = 0;
	for (unsigned n = 0; n < 4; n++) {
		unsigned rw = (dr7 >> (16 + 4 * n)) & 3, len = len_bytes[(dr7 >> (18 + 4 * n)) & 3];
		if (!((dr7 >> (2 * n)) & 3) || !(kinds & (1u << rw)))
			continue;
		uint64_t lo = cpu->dr[n] & ~(uint64_t)(len - 1);
		if (addr <= lo + len - 1 && lo <= addr + size - 1)
			hit |= 1u << n;
	}
	return hit;
}

void emu_debug_dr7_changed(struct emu_cpu *cpu)
{
	bool data = false;
	for (unsigned n = 0; n < 4; n++)   /* R/Wn 01 and 11 have bit 0 set */
		data |= ((cpu->dr[7] >> (2 * n)) & 3) && ((cpu->dr[7] >> (16 + 4 * n)) & 1);
	if (data == cpu->dbg_data)
		return;
	cpu->dbg_data = data;
	emu_tlb_flush(cpu, true);
}

void emu_debug_data(struct emu_cpu *cpu, uint64_t lin, unsigned size, bool write)
{
	cpu->dbg_pending |= bp_match(cpu, lin, size, write ? BP_WRITE | BP_RW : BP_RW);
}

void emu_debug_io(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	/* Without CR4.DE, R/W = 10 is undefined (17.2.4): it never fires. */
	if (cpu->cr4 & X86_CR4_DE)
		cpu->dbg_pending |= bp_match(cpu, port, size, BP_IO);
}

bool emu_check_insn_breakpoints(struct emu_cpu *cpu)
{
	uint64_t lin = emu_fetch_linear(cpu, cpu->rip);
	/* R/Wn = 00: instruction execution (LENn 00). */
	uint32_t hit = bp_match(cpu, lin, 1, BP_EXEC);
	if (!hit)
		return false;
	cpu->dr[6] = (cpu->dr[6] & ~0xfull) | hit;
	/* Unlike other faults, this one pushes RF as it is (0): the handler
	 * sets it in the image to resume (17.3.1.1). */
	deliver_hw_event(cpu, X86_EXC_DB, false, 0, cpu->rip, true);
	return true;
}

void emu_deliver_interrupt(struct emu_cpu *cpu, unsigned vector, bool external)
{
	if (external && vector == X86_EXC_NMI)
		cpu->nmi_blocked = true;   /* until the next IRET (6.7.1) */
	deliver_hw_event(cpu, vector & 0xff, false, 0, cpu->rip, !external);
}

/* CR4.VME: is INT vector redirected to the V86 program's own IVT?  The
 * 32-byte redirection bitmap sits just below the TSS I/O map; a clear bit
 * redirects (SDM vol. 3A 20.3.3.5).  A bitmap outside the TSS is #GP(0). */
static bool vme_redirected(struct emu_cpu *cpu, unsigned vector)
{
	unsigned type = cpu->tr.attr & 0xf;
	if (!(cpu->tr.attr & 0x80) || (type != 9 && type != 11) || cpu->tr.limit < 0x67)
		emu_raise(cpu, X86_EXC_GP, 0);
	uint16_t map = (uint16_t)mmu_read_lin(cpu, (uint32_t)(cpu->tr.base + 0x66), 2, EMU_MMU_SUP);
	uint64_t off = (uint64_t)map - 32 + vector / 8;
	if (map < 32 || off > cpu->tr.limit)
		emu_raise(cpu, X86_EXC_GP, 0);
	uint8_t bits = (uint8_t)mmu_read_lin(cpu, (uint32_t)(cpu->tr.base + off), 1, EMU_MMU_SUP);
	return !(bits & (1u << (vector & 7)));
}

/* Table 20-2 methods 5 and 6: the interrupt goes through the V86 IVT at
 * linear 0 like a real-mode one; at IOPL < 3 the pushed FLAGS show VIF as
 * IF and IOPL 3, and VIF (not IF) is cleared. */
static void vme_deliver_v86(struct emu_cpu *cpu, unsigned vector)
{
	unsigned iopl = (cpu->rflags & X86_FLAG_IOPL) >> 12;
	uint32_t ent = (uint32_t)mmu_read_lin(cpu, vector * 4, 4, EMU_MMU_USER);
	uint64_t fl = emu_get_rflags(cpu);
	uint64_t pushed = fl & 0xffff;
	if (iopl < 3) {
		pushed = (pushed & ~(uint64_t)X86_FLAG_IF) | ((fl & X86_FLAG_VIF) ? X86_FLAG_IF : 0);
		pushed |= X86_FLAG_IOPL;
	}
	struct emu_seg ss = cpu->seg[SEG_SS];
	uint64_t sp = cpu->gpr[RSP];
	stack_push(cpu, EMU_MODE_V86, &ss, &sp, 2, pushed, EMU_MMU_USER);
	stack_push(cpu, EMU_MODE_V86, &ss, &sp, 2, cpu->seg[SEG_CS].sel, EMU_MMU_USER);
	stack_push(cpu, EMU_MODE_V86, &ss, &sp, 2, cpu->next_rip, EMU_MMU_USER);
	cpu->gpr[RSP] = sp;
	uint64_t clear = X86_FLAG_TF | X86_FLAG_RF | (iopl < 3 ? X86_FLAG_VIF : X86_FLAG_IF);
	emu_set_rflags(cpu, fl & ~clear);
	emu_load_seg(cpu, SEG_CS, (uint16_t)(ent >> 16));
	cpu->next_rip = ent & 0xffff;
}

void emu_soft_interrupt(struct emu_cpu *cpu, unsigned vector, bool is_int_n)
{
	/* INT n, INT3 and INTO check the gate's DPL; INT1 (ICEBP) does not and
	 * is delivered as a hardware #DB (SDM vol. 2A INT n "Operation"). */
	if (is_int_n && (cpu->rflags & X86_FLAG_VM)) {
		unsigned iopl = (cpu->rflags & X86_FLAG_IOPL) >> 12;
		if ((cpu->cr4 & X86_CR4_VME) && vme_redirected(cpu, vector)) {
			vme_deliver_v86(cpu, vector);
			return;
		}
		/* Without redirection, IOPL < 3 faults (20.3.3, methods 2 and 3). */
		if (iopl < 3)
			emu_raise(cpu, X86_EXC_GP, 0);
	}
	exc_deliver(cpu, vector, false, 0, is_int_n, cpu->next_rip);
}
