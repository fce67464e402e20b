/* Processor modes and control registers: reset state, mode computation and
 * the side effects of CR0/CR3/CR4/EFER writes, including entering and
 * leaving IA-32e mode (SDM vol. 3A 2.5, 9.1, 9.8.5 and 10.8.5). */
#include "cpu/emu/system/sys.h"

#include "machine/cpu_model.h"
#include "machine/machine.h"

#include <string.h>
#include <time.h>

void emu_update_mode(struct emu_cpu *cpu)
{
	uint8_t mode;
	if (!(cpu->cr0 & X86_CR0_PE)) {
		mode = EMU_MODE_REAL;
		cpu->cpl = 0;
	} else if ((cpu->rflags & X86_FLAG_VM) && !(cpu->efer & X86_EFER_LMA)) {
		mode = EMU_MODE_V86;
		cpu->cpl = 3;
	} else if ((cpu->efer & X86_EFER_LMA) && (cpu->seg[SEG_CS].attr & 0x200)) {
		mode = EMU_MODE_LONG64;
	} else {
		mode = (cpu->seg[SEG_CS].attr & 0x400) ? EMU_MODE_PROT32 : EMU_MODE_PROT16;
	}
	cpu->mode = mode;
	cpu->mode_changed = true;
}

void emu_sys_sync(struct emu_cpu *cpu)
{
	if ((cpu->cr0 & X86_CR0_PE) && !(cpu->rflags & X86_FLAG_VM))
		cpu->cpl = (cpu->seg[SEG_SS].attr >> 5) & 3;   /* SS.DPL = CPL (5.5) */
	emu_update_mode(cpu);
	mmu_reset(cpu);
}

static uint64_t host_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t emu_rdtsc(struct emu_cpu *cpu)
{
	/* A fixed advertised frequency from the host monotonic clock (docs/architecture.md
	 * "Time"); 128-bit product so that long uptimes do not overflow. */
	uint64_t apic_tsc;
	if (cpu->vcpu && vcpu_apic_read_tsc(cpu->vcpu, &apic_tsc) == 0)
		return apic_tsc + cpu->tsc_offset;   /* the clock TSC-deadline mode uses */
	uint64_t ns = host_ns() - cpu->tsc_base_ns;
	return (uint64_t)((unsigned __int128)ns * EMU_TSC_HZ / 1000000000ull) + cpu->tsc_offset;
}

static void seg_reset(struct emu_seg *s, uint16_t sel, uint64_t base, uint16_t attr)
{
	s->sel = sel;
	s->base = base;
	s->limit = 0xffff;
	s->attr = attr;
}

void emu_cpu_reset(struct emu_cpu *cpu, bool bsp)
{
	if (!cpu->ops)
		cpu->ops = &emu_sys_ops;
	/* SDM vol. 3A 9.1.1, table 9-1. */
	memset(cpu->gpr, 0, sizeof(cpu->gpr));
	uint32_t sig[4];
	cpuid_query(cpu, 1, 0, sig);
	cpu->gpr[RDX] = sig[0];
	cpu->rip = cpu->next_rip = 0xfff0;
	cpu->rflags = X86_FLAG_FIXED;
	emu_set_rflags(cpu, X86_FLAG_FIXED);
	seg_reset(&cpu->seg[SEG_CS], 0xf000, 0xffff0000, 0x9b);
	for (int s = 0; s < SEG_COUNT; s++)
		if (s != SEG_CS)
			seg_reset(&cpu->seg[s], 0, 0, 0x93);
	seg_reset(&cpu->ldtr, 0, 0, 0x82);
	seg_reset(&cpu->tr, 0, 0, 0x8b);
	cpu->gdtr = (struct x86_dtable){ .base = 0, .limit = 0xffff };
	cpu->idtr = (struct x86_dtable){ .base = 0, .limit = 0xffff };
	cpu->cr0 = X86_CR0_ET | X86_CR0_CD | X86_CR0_NW;
	cpu->cr2 = cpu->cr3 = cpu->cr4 = 0;
	cpu->xcr0 = 1;
	memset(cpu->dr, 0, sizeof(cpu->dr));
	cpu->dr[6] = 0xffff0ff0;
	cpu->dr[7] = 0x400;
	cpu->efer = 0;
	cpu->star = cpu->lstar = cpu->cstar = cpu->sfmask = cpu->kernel_gs_base = 0;
	cpu->sysenter_cs = cpu->sysenter_esp = cpu->sysenter_eip = 0;
	cpu->pat = 0x0007040600070406ull;
	cpu->tsc_aux = 0;
	cpu->misc_enable = 1;   /* fast-string enable */
	cpu->spec_ctrl = 0;
	cpu->mtrr_def_type = 0;
	memset(cpu->mtrr_fixed, 0, sizeof(cpu->mtrr_fixed));
	memset(cpu->mtrr_var, 0, sizeof(cpu->mtrr_var));
	cpu->apic_base = 0xfee00000ull | 0x800 | (bsp ? 0x100 : 0);
	cpu->tsc_deadline = 0;
	cpu->feature_control = 0;
	cpu->tsc_offset = 0;
	cpu->tsc_base_ns = host_ns();
	emu_fpu_reset(cpu);
	cpu->cpl = 0;
	cpu->intr_shadow = false;
	cpu->ss_shadow = false;
	cpu->halted = false;
	cpu->exc_vector = -1;
	cpu->exc_error = 0;
	cpu->exc_has_error = false;
	cpu->delivering = -1;
	cpu->nmi_blocked = false;
	cpu->nmi_pending = false;
	cpu->dbg_pending = 0;
	cpu->dbg_data = false;
	mmu_reset(cpu);
	emu_update_mode(cpu);
}

void mode_write_cr0(struct emu_cpu *cpu, uint64_t val)
{
	uint64_t old = cpu->cr0;
	/* MOV CR0 #GP(0) conditions (SDM vol. 2B MOV "Protected Mode Exceptions"). */
	if (val >> 32)
		emu_raise(cpu, X86_EXC_GP, 0);
	val |= X86_CR0_ET;
	if ((val & X86_CR0_PG) && !(val & X86_CR0_PE))
		emu_raise(cpu, X86_EXC_GP, 0);
	if ((val & X86_CR0_NW) && !(val & X86_CR0_CD))
		emu_raise(cpu, X86_EXC_GP, 0);
	bool pg_on = (val & X86_CR0_PG) && !(old & X86_CR0_PG);
	bool pg_off = !(val & X86_CR0_PG) && (old & X86_CR0_PG);
	if (pg_on && (cpu->efer & X86_EFER_LME)) {
		/* Activating IA-32e mode (10.8.5): PAE on, not from a 64-bit CS. */
		if (!(cpu->cr4 & X86_CR4_PAE) || (cpu->seg[SEG_CS].attr & 0x200))
			emu_raise(cpu, X86_EXC_GP, 0);
	}
	if (pg_off) {
		/* Leaving IA-32e mode (9.8.5.4) is allowed only from compatibility
		 * mode; with PCIDE set paging cannot be turned off. */
		if (cpu->mode == EMU_MODE_LONG64 || (cpu->cr4 & X86_CR4_PCIDE))
			emu_raise(cpu, X86_EXC_GP, 0);
	}
	/* PE cannot be cleared from 64-bit mode either (the CS would be invalid). */
	if (!(val & X86_CR0_PE) && cpu->mode == EMU_MODE_LONG64)
		emu_raise(cpu, X86_EXC_GP, 0);
	cpu->cr0 = val;
	if (pg_on && (cpu->efer & X86_EFER_LME))
		cpu->efer |= X86_EFER_LMA;
	if (pg_off)
		cpu->efer &= ~X86_EFER_LMA;
	if ((old ^ val) & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE)) {
		emu_tlb_flush(cpu, true);
		mmu_set_cr3(cpu, cpu->cr3, false);
	}
	emu_update_mode(cpu);
}

void mode_write_cr3(struct emu_cpu *cpu, uint64_t val)
{
	bool noflush = false;
	if (cpu->cr4 & X86_CR4_PCIDE) {
		noflush = val >> 63;   /* 4.10.4.1: bit 63 set keeps the PCID's translations */
		val &= ~(1ull << 63);
	}
	if (cpu->efer & X86_EFER_LMA) {
		if (val & ~EMU_PHYS_MASK)
			emu_raise(cpu, X86_EXC_GP, 0);
	} else {
		val = (uint32_t)val;
	}
	cpu->cr3 = val;
	mmu_set_cr3(cpu, val, noflush);
}

/* CR4 bits the engine implements (advertised through CPUID, cpuid.c). */
#define CR4_SUPPORTED (X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE | \
		       X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | \
		       X86_CR4_FSGSBASE | X86_CR4_PCIDE | X86_CR4_OSXSAVE | X86_CR4_SMEP | X86_CR4_SMAP)

/* CR4 bits and the CPUID flag that enumerates each (SDM vol. 3A, 2.5
 * and table 2-2): reserved, so #GP when set, once a CPU model (--cpu)
 * removes the flag. */
static const struct {
	uint64_t bits;
	uint32_t leaf;
	uint8_t reg, bit;
} cr4_gates[] = {
	{ X86_CR4_VME | X86_CR4_PVI, 1, CPU_EDX, 1 }, { X86_CR4_DE, 1, CPU_EDX, 2 },
	{ X86_CR4_PSE, 1, CPU_EDX, 3 }, { X86_CR4_TSD, 1, CPU_EDX, 4 }, { X86_CR4_PAE, 1, CPU_EDX, 6 },
	{ X86_CR4_MCE, 1, CPU_EDX, 7 }, { X86_CR4_PGE, 1, CPU_EDX, 13 }, { X86_CR4_OSFXSR, 1, CPU_EDX, 24 },
	{ X86_CR4_OSXMMEXCPT, 1, CPU_EDX, 25 }, { X86_CR4_PCIDE, 1, CPU_ECX, 17 },
	{ X86_CR4_OSXSAVE, 1, CPU_ECX, 26 }, { X86_CR4_FSGSBASE, 7, CPU_EBX, 0 },
	{ X86_CR4_SMEP, 7, CPU_EBX, 7 }, { X86_CR4_SMAP, 7, CPU_EBX, 20 },
};

static uint64_t cr4_removed(const struct emu_cpu *cpu)
{
	uint64_t bits = 0;
	if (!cpu->model || !cpu->model->removed)
		return 0;
	for (size_t i = 0; i < sizeof(cr4_gates) / sizeof(cr4_gates[0]); i++)
		if (!cpu_model_has(cpu->model, cr4_gates[i].leaf, 0, cr4_gates[i].reg, cr4_gates[i].bit))
			bits |= cr4_gates[i].bits;
	return bits;
}

void mode_write_cr4(struct emu_cpu *cpu, uint64_t val)
{
	uint64_t old = cpu->cr4;
	if (val & (~CR4_SUPPORTED | cr4_removed(cpu)))
		emu_raise(cpu, X86_EXC_GP, 0);
	if ((cpu->efer & X86_EFER_LMA) && !(val & X86_CR4_PAE))
		emu_raise(cpu, X86_EXC_GP, 0);
	/* 4.10.1: PCIDE can be set only in IA-32e mode with CR3[11:0] = 0. */
	if ((val & X86_CR4_PCIDE) && !(old & X86_CR4_PCIDE) &&
	    (!(cpu->efer & X86_EFER_LMA) || (cpu->cr3 & 0xfff)))
		emu_raise(cpu, X86_EXC_GP, 0);
	cpu->cr4 = val;
	/* 4.10.4.1: changes of PGE, PAE, PSE, SMEP, SMAP and clearing PCIDE
	 * invalidate all translations. */
	uint64_t flush_bits = X86_CR4_PGE | X86_CR4_PAE | X86_CR4_PSE | X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PCIDE;
	if ((old ^ val) & flush_bits)
		mmu_reset(cpu);   /* the slot keys depend on PCIDE too */
	cpu->mode_changed = true;
}

int mode_write_efer(struct emu_cpu *cpu, uint64_t val)
{
	uint64_t allowed = X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
	if (val & ~allowed)
		return -1;
	/* LME cannot change while paging is on (10.8.5); LMA is read-only. */
	if ((cpu->cr0 & X86_CR0_PG) && ((val ^ cpu->efer) & X86_EFER_LME))
		return -1;
	val = (val & ~X86_EFER_LMA) | (cpu->efer & X86_EFER_LMA);
	bool nx_changed = (val ^ cpu->efer) & X86_EFER_NXE;
	cpu->efer = val;
	if (nx_changed)
		emu_tlb_flush(cpu, true);
	cpu->mode_changed = true;
	return 0;
}
