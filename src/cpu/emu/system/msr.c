/* Model-specific registers the engine models (SDM vol. 4); everything else
 * is offered to the monitor as a VCPU_EXIT_MSR trap and faults with #GP(0)
 * when nobody handles it.  Each MSR here is one whose CPUID enumeration
 * (cpuid.c) the engine advertises, or an architectural one without a CPUID
 * gate; docs/isa.md ("MSRs and their CPUID gates") lists the audit.  An MSR
 * of a feature not advertised faults, as on hardware: IA32_SPEC_CTRL and
 * IA32_PRED_CMD (CPUID.7.0:EDX IBRS/STIBP/SSBD, IBPB), IA32_FEATURE_CONTROL
 * (VMX, SMX, SGX, LMCE). */
#include "cpu/emu/system/sys.h"

#include "machine/cpu_model.h"
#include "machine/machine.h"

#include <errno.h>

#define MSR_IA32_BIOS_SIGN_ID    0x8b
#define MSR_PLATFORM_INFO        0xce
#define MSR_MTRRCAP              0xfe
#define MSR_ARCH_CAPABILITIES    0x10a
#define MSR_MCG_CAP              0x179
#define MSR_MCG_STATUS           0x17a
#define MSR_MTRR_PHYS_BASE0      0x200
#define MSR_MTRR_DEF_TYPE        0x2ff

/* ARCH_CAPABILITIES (SDM vol. 4 table 2-2): the emulated CPU does not
 * speculate, so it reports itself unaffected by every speculation bug
 * the register can name: Meltdown (RDCL_NO), SSB, MDS, TAA, no machine
 * check on page-size changes, MMIO stale data (SBDR_SSDP_NO, FBSDP_NO,
 * PSDP_NO), branch history injection (BHI_NO), post-barrier RSB
 * predictions (PBRSB_NO), GDS, RFDS, and indirect target selection
 * (ITS_NO, bit 62, which a hypervisor synthesizes; without it Linux
 * assumes a vulnerable host and routes every return through a thunk). */
#define ARCH_CAP_VALUE ((1ull << 0) | (1ull << 4) | (1ull << 5) | (1ull << 6) | (1ull << 8) | \
			(1ull << 13) | (1ull << 14) | (1ull << 15) | (1ull << 20) | (1ull << 24) | \
			(1ull << 26) | (1ull << 27) | (1ull << 62))

/* Fixed-range MTRR indices in cpu->mtrr_fixed order (vol. 3A 11.11.2.2). */
static int mtrr_fixed_index(uint32_t msr)
{
	static const uint32_t fixed[11] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b,
					    0x26c, 0x26d, 0x26e, 0x26f };
	for (int i = 0; i < 11; i++)
		if (fixed[i] == msr)
			return i;
	return -1;
}

static bool valid_mem_types(uint64_t v, bool pat)
{
	/* Each byte: 0 UC, 1 WC, 4 WT, 5 WP, 6 WB (7 UC- only in the PAT). */
	for (int i = 0; i < 8; i++) {
		unsigned t = (v >> (8 * i)) & 0xff;
		if (!(t == 0 || t == 1 || t == 4 || t == 5 || t == 6 || (pat && t == 7)))
			return false;
	}
	return true;
}

static int msr_trap(struct emu_cpu *cpu, uint32_t index, bool write, uint64_t *val)
{
	if (!cpu->vcpu)
		return -1;
	struct vcpu_exit ex = { .reason = VCPU_EXIT_MSR };
	ex.msr.index = index;
	ex.msr.is_write = write;
	ex.msr.data = write ? *val : 0;
	ex.msr.handled = false;
	vcpu_dispatch_exit(cpu->vcpu, &ex);
	if (!ex.msr.handled)
		return -1;
	if (!write)
		*val = ex.msr.data;
	return 0;
}

/* Hyper-V synthetic MSRs (0x40000000-0x400001ff) and vessel's own selective
 * EOI (0x40000200) go to src/hv, given this
 * engine's TSC so that the reference counter follows the guest's TSC:
 * 0 done, -1 #GP, 1 not Hyper-V's (go on). */
static int hyperv_msr(struct emu_cpu *cpu, uint32_t index, bool write, uint64_t *val)
{
	if ((index >> 16) != 0x4000 || !cpu->vcpu || !cpu->vcpu->vm->hv_msr)
		return 1;
	int rc = cpu->vcpu->vm->hv_msr(cpu->vcpu, index, write, val, emu_rdtsc(cpu));
	if (rc == -ENOENT)
		return 1;
	return rc < 0 ? -1 : 0;
}

static bool is_apic_msr(uint32_t index)
{
	return index == MSR_IA32_APIC_BASE || index == MSR_IA32_TSC_DEADLINE || (index >= 0x800 && index <= 0x8ff);
}

/* The route to the LAPIC (machine/accel.h): 0 done, -1 #GP, 1 no LAPIC
 * (model it here).  A TSC deadline is given with this engine's TSC, which
 * carries the guest's IA32_TSC offset. */
static int apic_msr(struct emu_cpu *cpu, uint32_t index, bool write, uint64_t *val)
{
	if (!cpu->vcpu)
		return 1;
	int rc = write && index == MSR_IA32_TSC_DEADLINE
			 ? vcpu_apic_set_tsc_deadline(cpu->vcpu, *val, emu_rdtsc(cpu))
			 : vcpu_apic_msr(cpu->vcpu, index, write, val);
	if (rc == -ENOENT)
		return 1;
	return rc < 0 ? -1 : 0;
}

/* The MSRs a CPU model (--cpu) can take away with their CPUID flag
 * (docs/isa.md, "MSRs and their CPUID gates"): with the flag removed
 * they fault like any MSR the CPU does not have. */
static const struct msr_gate {
	uint32_t first, last, leaf;
	uint8_t reg, bit;
} msr_gates[] = {
	{ 0x800, 0x8ff, 1, CPU_ECX, 21 },                                  /* x2APIC registers */
	{ MSR_IA32_TSC_DEADLINE, MSR_IA32_TSC_DEADLINE, 1, CPU_ECX, 24 },  /* TSC deadline */
	{ MSR_ARCH_CAPABILITIES, MSR_ARCH_CAPABILITIES, 7, CPU_EDX, 29 },
	{ MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP, 1, CPU_EDX, 11 },   /* SEP */
	{ MSR_IA32_PAT, MSR_IA32_PAT, 1, CPU_EDX, 16 },
	{ MSR_MTRRCAP, MSR_MTRRCAP, 1, CPU_EDX, 12 },
	{ MSR_MTRR_PHYS_BASE0, MSR_MTRR_PHYS_BASE0 + 15, 1, CPU_EDX, 12 },
	{ 0x250, 0x26f, 1, CPU_EDX, 12 },                                  /* fixed-range MTRRs */
	{ MSR_MTRR_DEF_TYPE, MSR_MTRR_DEF_TYPE, 1, CPU_EDX, 12 },
	{ MSR_MCG_CAP, MSR_MCG_STATUS, 1, CPU_EDX, 7 },                    /* MCE */
};

static bool msr_removed(const struct emu_cpu *cpu, uint32_t index)
{
	if (!cpu->model || !cpu->model->removed)
		return false;
	/* IA32_TSC_AUX: RDTSCP or RDPID (SDM vol. 4, table 2-2). */
	if (index == MSR_TSC_AUX)
		return !cpu_model_has(cpu->model, 0x80000001, 0, CPU_EDX, 27) &&
		       !cpu_model_has(cpu->model, 7, 0, CPU_ECX, 22);
	for (size_t i = 0; i < sizeof(msr_gates) / sizeof(msr_gates[0]); i++) {
		const struct msr_gate *g = &msr_gates[i];
		if (index >= g->first && index <= g->last)
			return !cpu_model_has(cpu->model, g->leaf, 0, g->reg, g->bit);
	}
	return false;
}

int msr_read(struct emu_cpu *cpu, uint32_t index, uint64_t *val)
{
	int fi;
	if (msr_removed(cpu, index))
		return -1;
	if (is_apic_msr(index)) {
		int rc = apic_msr(cpu, index, false, val);
		if (rc <= 0)
			return rc;
		if (index >= 0x800)
			return -1;   /* x2APIC registers without a LAPIC */
	}
	switch (index) {
	case MSR_IA32_TSC: *val = emu_rdtsc(cpu); return 0;
	case MSR_IA32_APIC_BASE: *val = cpu->apic_base; return 0;
	case MSR_IA32_BIOS_SIGN_ID: *val = 0; return 0;
	case MSR_PLATFORM_INFO: *val = (uint64_t)(EMU_TSC_HZ / 100000000ull) << 8; return 0;
	case MSR_MTRRCAP: *val = 8 | (1u << 8) | (1u << 10); return 0;   /* 8 variable, fixed, WC */
	case MSR_ARCH_CAPABILITIES: *val = ARCH_CAP_VALUE; return 0;
	case MSR_IA32_SYSENTER_CS: *val = cpu->sysenter_cs; return 0;
	case MSR_IA32_SYSENTER_ESP: *val = cpu->sysenter_esp; return 0;
	case MSR_IA32_SYSENTER_EIP: *val = cpu->sysenter_eip; return 0;
	case MSR_MCG_CAP: case MSR_MCG_STATUS: *val = 0; return 0;
	case MSR_IA32_MISC_ENABLE: *val = cpu->misc_enable; return 0;
	case MSR_IA32_PAT: *val = cpu->pat; return 0;
	case MSR_MTRR_DEF_TYPE: *val = cpu->mtrr_def_type; return 0;
	case MSR_IA32_TSC_DEADLINE: *val = cpu->tsc_deadline; return 0;
	case MSR_EFER: *val = cpu->efer; return 0;
	case MSR_STAR: *val = cpu->star; return 0;
	case MSR_LSTAR: *val = cpu->lstar; return 0;
	case MSR_CSTAR: *val = cpu->cstar; return 0;
	case MSR_SFMASK: *val = cpu->sfmask; return 0;
	case MSR_FS_BASE: *val = cpu->seg[SEG_FS].base; return 0;
	case MSR_GS_BASE: *val = cpu->seg[SEG_GS].base; return 0;
	case MSR_KERNEL_GS_BASE: *val = cpu->kernel_gs_base; return 0;
	case MSR_TSC_AUX: *val = cpu->tsc_aux; return 0;
	}
	if (index >= MSR_MTRR_PHYS_BASE0 && index < MSR_MTRR_PHYS_BASE0 + 16) {
		*val = cpu->mtrr_var[index - MSR_MTRR_PHYS_BASE0];
		return 0;
	}
	if ((fi = mtrr_fixed_index(index)) >= 0) {
		*val = cpu->mtrr_fixed[fi];
		return 0;
	}
	int hv = hyperv_msr(cpu, index, false, val);
	if (hv <= 0)
		return hv;
	return msr_trap(cpu, index, false, val);
}

int msr_write(struct emu_cpu *cpu, uint32_t index, uint64_t val)
{
	int fi;
	if (msr_removed(cpu, index))
		return -1;
	/* IA32_APIC_BASE.EXTD (bit 10) is reserved without x2APIC (SDM vol.
	 * 3A, 11.12.1). */
	if (index == MSR_IA32_APIC_BASE && (val & (1ull << 10)) && !cpu_model_has(cpu->model, 1, 0, CPU_ECX, 21))
		return -1;
	if (is_apic_msr(index)) {
		int rc = apic_msr(cpu, index, true, &val);
		if (rc == 0 && index == MSR_IA32_APIC_BASE)
			cpu->apic_base = val;   /* CPUID.1:EDX.APIC follows the enable bit */
		if (index == MSR_IA32_TSC_DEADLINE && rc == 0)
			cpu->tsc_deadline = val;
		if (rc <= 0)
			return rc;
		if (index >= 0x800)
			return -1;
	}
	switch (index) {
	case MSR_IA32_TSC:
		cpu->tsc_offset += val - emu_rdtsc(cpu);
		return 0;
	case MSR_IA32_APIC_BASE:
		/* Bits 7:0, 9 and above MAXPHYADDR are reserved (vol. 3A 11.4.4). */
		if (val & (0xffull | (1ull << 9) | ~EMU_PHYS_MASK))
			return -1;
		cpu->apic_base = val;
		return 0;
	case MSR_IA32_BIOS_SIGN_ID:
		return 0;
	case MSR_MCG_STATUS:
		return val ? -1 : 0;
	case MSR_IA32_SYSENTER_CS: cpu->sysenter_cs = val & 0xffff; return 0;
	case MSR_IA32_SYSENTER_ESP:
	case MSR_IA32_SYSENTER_EIP:
	case MSR_LSTAR:
	case MSR_CSTAR:
	case MSR_FS_BASE:
	case MSR_GS_BASE:
	case MSR_KERNEL_GS_BASE:
		if (!mmu_canonical(cpu, val))
			return -1;
		switch (index) {
		case MSR_IA32_SYSENTER_ESP: cpu->sysenter_esp = val; break;
		case MSR_IA32_SYSENTER_EIP: cpu->sysenter_eip = val; break;
		case MSR_LSTAR: cpu->lstar = val; break;
		case MSR_CSTAR: cpu->cstar = val; break;
		case MSR_FS_BASE: cpu->seg[SEG_FS].base = val; break;
		case MSR_GS_BASE: cpu->seg[SEG_GS].base = val; break;
		default: cpu->kernel_gs_base = val; break;
		}
		return 0;
	case MSR_IA32_MISC_ENABLE:
		cpu->misc_enable = val;
		return 0;
	case MSR_IA32_PAT:
		if (!valid_mem_types(val, true))
			return -1;
		cpu->pat = val;
		return 0;
	case MSR_MTRR_DEF_TYPE:
		if (val & ~0xcffull)
			return -1;
		cpu->mtrr_def_type = val;
		return 0;
	case MSR_IA32_TSC_DEADLINE:
		cpu->tsc_deadline = val;
		return 0;
	case MSR_EFER:
		return mode_write_efer(cpu, val);
	case MSR_STAR: cpu->star = val; return 0;
	case MSR_SFMASK: cpu->sfmask = val & 0xffffffffull; return 0;
	case MSR_TSC_AUX: cpu->tsc_aux = val & 0xffffffffull; return 0;
	case MSR_PLATFORM_INFO: case MSR_MTRRCAP: case MSR_ARCH_CAPABILITIES: case MSR_MCG_CAP:
		return -1;   /* read-only */
	}
	if (index >= MSR_MTRR_PHYS_BASE0 && index < MSR_MTRR_PHYS_BASE0 + 16) {
		cpu->mtrr_var[index - MSR_MTRR_PHYS_BASE0] = val;
		return 0;
	}
	if ((fi = mtrr_fixed_index(index)) >= 0) {
		if (!valid_mem_types(val, false))
			return -1;
		cpu->mtrr_fixed[fi] = val;
		return 0;
	}
	int hv = hyperv_msr(cpu, index, true, &val);
	if (hv <= 0)
		return hv;
	return msr_trap(cpu, index, true, &val);
}
