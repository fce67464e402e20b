/* CPUID: one table of what the engine implements (SDM vol. 2A CPUID).
 *
 * To advertise a feature, add its bit to the table below: each row is a
 * leaf (and subleaf, or CPUID_ANY) with its four registers.  Bits that
 * depend on the vCPU (APIC id, OSXSAVE, the APIC enable) are filled in by
 * cpuid_query() after the lookup. */
#include "cpu/emu/system/sys.h"

#include "cpu/emu/core/opcodes.h"
#include "machine/cpu_model.h"
#include "machine/cpu_topology.h"
#include "machine/machine.h"

#include <string.h>

#define CPUID_ANY 0xffffffffu
#define BIT(n) (1u << (n))

/* Leaf 1 ECX / EDX (table 3-10, 3-11). */
#define F1C_SSE3 BIT(0)
#define F1C_SSSE3 BIT(9)
#define F1C_CX16 BIT(13)
#define F1C_PCID BIT(17)
#define F1C_SSE41 BIT(19)
#define F1C_SSE42 BIT(20)
#define F1C_X2APIC BIT(21)
#define F1C_MOVBE BIT(22)
#define F1C_POPCNT BIT(23)
#define F1C_TSC_DEADLINE BIT(24)
#define F1C_XSAVE BIT(26)
#define F1C_OSXSAVE BIT(27)
#define F1C_RDRAND BIT(30)
#define F1C_HYPERVISOR BIT(31)
#define F1D_FPU BIT(0)
#define F1D_VME BIT(1)
#define F1D_DE BIT(2)
#define F1D_PSE BIT(3)
#define F1D_TSC BIT(4)
#define F1D_MSR BIT(5)
#define F1D_PAE BIT(6)
#define F1D_MCE BIT(7)
#define F1D_CX8 BIT(8)
#define F1D_APIC BIT(9)
#define F1D_SEP BIT(11)
#define F1D_MTRR BIT(12)
#define F1D_PGE BIT(13)
#define F1D_CMOV BIT(15)
#define F1D_PAT BIT(16)
#define F1D_PSE36 BIT(17)
#define F1D_CLFSH BIT(19)
#define F1D_MMX BIT(23)
#define F1D_FXSR BIT(24)
#define F1D_SSE BIT(25)
#define F1D_SSE2 BIT(26)
/* Leaf 7.0 */
#define F7B_FSGSBASE BIT(0)
#define F7B_SMEP BIT(7)
/* ERMS and FSRM only say REP MOVSB/STOSB are the fast way to copy and
 * fill: so they are here (page runs, int_string.c), and Linux then uses
 * them for memcpy, memset and clear_page. */
#define F7B_ERMS BIT(9)
#define F7B_INVPCID BIT(10)
#define F7B_RDSEED BIT(18)
#define F7B_SMAP BIT(20)
#define F7C_RDPID BIT(22)
#define F7D_FSRM BIT(4)
#define F7D_ARCH_CAPABILITIES BIT(29)
/* Leaf 0x80000001 */
#define F81C_LAHF BIT(0)
#define F81C_ABM BIT(5)
#define F81D_SYSCALL BIT(11)
#define F81D_NX BIT(20)
#define F81D_PAGE1GB BIT(26)
#define F81D_RDTSCP BIT(27)
#define F81D_LM BIT(29)

/* Family 6, model 0x8f, stepping 8 (a Sapphire Rapids part): a model on
 * none of the kernel's speculation-bug lists, so that a guest does not
 * warn about RETBleed-style problems the emulated CPU does not have (Linux
 * arch/x86/kernel/cpu/common.c, cpu_vuln_blacklist). */
#define CPU_SIGNATURE 0x000806f8u

#define STR4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

struct cpuid_entry {
	uint32_t leaf, subleaf;
	uint32_t eax, ebx, ecx, edx;
};

static const struct cpuid_entry cpuid_table[] = {
	{ 0x0, CPUID_ANY, 0x1f, STR4('G', 'e', 'n', 'u'), STR4('n', 't', 'e', 'l'), STR4('i', 'n', 'e', 'I') },
	{ 0x1, CPUID_ANY, CPU_SIGNATURE, 0x00010800u,
	  F1C_SSE3 | F1C_SSSE3 | F1C_CX16 | F1C_PCID | F1C_SSE41 | F1C_SSE42 | F1C_X2APIC | F1C_MOVBE |
	  F1C_POPCNT | F1C_TSC_DEADLINE | F1C_XSAVE | F1C_RDRAND | F1C_HYPERVISOR,
	  F1D_FPU | F1D_VME | F1D_DE | F1D_PSE | F1D_TSC | F1D_MSR | F1D_PAE | F1D_MCE | F1D_CX8 | F1D_APIC |
	  F1D_SEP | F1D_MTRR | F1D_PGE | F1D_CMOV | F1D_PAT | F1D_PSE36 | F1D_CLFSH | F1D_MMX | F1D_FXSR |
	  F1D_SSE | F1D_SSE2 },
	{ 0x7, 0, 0, F7B_FSGSBASE | F7B_SMEP | F7B_ERMS | F7B_INVPCID | F7B_RDSEED | F7B_SMAP, F7C_RDPID,
	  F7D_FSRM | F7D_ARCH_CAPABILITIES },
	/* Leaf 0xD (XSAVE components) comes from the fpu module. */
	/* TSC = crystal * EBX / EAX: the LAPIC timer's 1 GHz clock * 2 = EMU_TSC_HZ. */
	{ 0x15, CPUID_ANY, 1, (uint32_t)(EMU_TSC_HZ / LAPIC_TIMER_HZ), (uint32_t)LAPIC_TIMER_HZ, 0 },
	{ 0x16, CPUID_ANY, 2000, 2000, 100, 0 },
	/* Hypervisor leaves (0x40000000 range, VMware/KVM convention).  With
	 * the Hyper-V interface on, src/hv answers 0x40000000-0x4000000f
	 * ("Microsoft Hv"); vessel's own identity is also at 0x40000100. */
	{ 0x40000000, CPUID_ANY, 0x40000010, STR4('V', 'e', 's', 's'), STR4('e', 'l', 'V', 'e'),
	  STR4('s', 's', 'e', 'l') },
	{ 0x40000010, CPUID_ANY, (uint32_t)(EMU_TSC_HZ / 1000), (uint32_t)(LAPIC_TIMER_HZ / 1000), 0, 0 },
	{ 0x40000100, CPUID_ANY, 0x40000101, STR4('V', 'e', 's', 's'), STR4('e', 'l', 'V', 'e'),
	  STR4('s', 's', 'e', 'l') },
	/* vessel's own features (docs/hyperv.md): none unless src/hv answers. */
	{ 0x40000101, CPUID_ANY, 0, 0, 0, 0 },
	{ 0x80000000, CPUID_ANY, 0x80000008, 0, 0, 0 },
	{ 0x80000001, CPUID_ANY, 0, 0, F81C_LAHF | F81C_ABM,
	  F81D_SYSCALL | F81D_NX | F81D_PAGE1GB | F81D_RDTSCP | F81D_LM },
	{ 0x80000002, CPUID_ANY, STR4('V', 'e', 's', 's'), STR4('e', 'l', ' ', 'V'), STR4('i', 'r', 't', 'u'),
	  STR4('a', 'l', ' ', 'C') },
	{ 0x80000003, CPUID_ANY, STR4('P', 'U', ' ', '@'), STR4(' ', '2', '.', '0'), STR4('0', 'G', 'H', 'z'), 0 },
	{ 0x80000004, CPUID_ANY, 0, 0, 0, 0 },
	{ 0x80000006, CPUID_ANY, 0, 0, (256u << 16) | (6u << 12) | 64u, 0 },
	{ 0x80000007, CPUID_ANY, 0, 0, 0, BIT(8) },   /* invariant TSC */
	{ 0x80000008, CPUID_ANY, EMU_MAXPHYADDR | (48u << 8), 0, 0, 0 },
};

static const struct cpuid_entry *cpuid_find(uint32_t leaf, uint32_t subleaf)
{
	for (size_t i = 0; i < sizeof(cpuid_table) / sizeof(cpuid_table[0]); i++) {
		const struct cpuid_entry *e = &cpuid_table[i];
		if (e->leaf == leaf && (e->subleaf == CPUID_ANY || e->subleaf == subleaf))
			return e;
	}
	return NULL;
}

static unsigned n_cpus(const struct emu_cpu *cpu)
{
	if (cpu->vcpu && cpu->vcpu->vm && cpu->vcpu->vm->n_vcpus)
		return cpu->vcpu->vm->n_vcpus;
	return 1;
}

/* Logical processors per package (machine/cpu_topology.h): a package
 * per virtual NUMA node where the nodes allow it, the KVM engine's
 * answer too. */
static unsigned cpus_per_package(const struct emu_cpu *cpu)
{
	const struct numa_config *c = cpu->vcpu && cpu->vcpu->vm ? &cpu->vcpu->vm->numa : NULL;
	return cpu_topology_per_package(c, n_cpus(cpu));
}

static unsigned cpu_id(const struct emu_cpu *cpu)
{
	return cpu->vcpu ? cpu->vcpu->id : 0;
}

void cpuid_query(struct emu_cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	/* Intel: a basic or extended leaf above the maximum returns the data of
	 * the highest basic leaf. */
	if ((leaf > 0x1f && leaf < 0x40000000) || leaf > 0x80000008)
		leaf = 0x1f;
	memset(out, 0, 4 * sizeof(uint32_t));
	if (leaf == 0xb || leaf == 0x1f) {
		/* x2APIC topology (SDM vol. 2A, CPUID leaves 0BH and 1FH):
		 * leaf 1FH, which Linux prefers when present, names the same
		 * two levels as 0BH, so both agree with each other and with
		 * the MADT's APIC ids; leaves 17H-1EH are all zero. */
		cpu_topology_leaf(cpus_per_package(cpu), subleaf, cpu_id(cpu), out);
		return;
	}
	if (leaf == 0xd) {
		/* Without XSAVE the leaf is reserved (SDM vol. 2A, CPUID leaf 0DH). */
		if (cpu_model_has(cpu->model, 1, 0, CPU_ECX, 26))
			emu_fpu_cpuid_xsave(cpu, subleaf, out);
		return;
	}
	const struct vm *vm = cpu->vcpu ? cpu->vcpu->vm : NULL;
	if (vm && vm->hv_cpuid && vm->hv_cpuid(vm, n_cpus(cpu), leaf, out))
		return;
	const struct cpuid_entry *e = cpuid_find(leaf, subleaf);
	if (!e)
		return;
	out[0] = e->eax; out[1] = e->ebx; out[2] = e->ecx; out[3] = e->edx;
	if (leaf == 1) {
		/* The table's count (1) is replaced, not ORed with the real one. */
		out[1] = (out[1] & 0xffff) | (cpu_id(cpu) & 0xff) << 24 | (cpus_per_package(cpu) & 0xff) << 16;
		if (cpu->cr4 & X86_CR4_OSXSAVE)
			out[2] |= F1C_OSXSAVE;
		if (!(cpu->apic_base & 0x800))
			out[3] &= ~F1D_APIC;
	}
	cpu_model_filter(cpu->model, leaf, subleaf, out);
}

void emu_cpu_set_model(struct emu_cpu *cpu, const struct cpu_model *model)
{
	cpu->model = model;
	cpu->feat_off = 0;
	for (unsigned f = 1; f < EMU_FEAT_COUNT; f++) {
		const struct emu_feature_flag *fl = &emu_feature_flags[f];
		if (!cpu_model_has(model, fl->leaf, 0, fl->reg, fl->bit))
			cpu->feat_off |= 1u << f;
	}
}
