#include "cpu/kvm/kvm_cpuid.h"

#include "machine/cpu_model.h"
#include "machine/cpu_topology.h"

#include <stdlib.h>

/* The topology leaves vessel answers (SDM vol. 2A, CPUID leaves 0BH and
 * 1FH); the host's are dropped, as they describe the host's packages. */
static bool topology_leaf(uint32_t function)
{
	return function == 0xb || function == 0x1f;
}

struct kvm_cpuid2 *kvm_cpuid_for_vcpu(const struct kvm_cpuid2 *host, const struct vm *vm, unsigned id)
{
	unsigned cap = host->nent + 2 * CPU_TOPOLOGY_SUBLEAVES;
	struct kvm_cpuid2 *t = calloc(1, sizeof(*t) + cap * sizeof(struct kvm_cpuid_entry2));
	if (!t)
		return NULL;
	unsigned per_package = cpu_topology_per_package(&vm->numa, vm->planned_vcpus ? vm->planned_vcpus : vm->n_vcpus);
	unsigned n = 0;
	for (unsigned i = 0; i < host->nent; i++) {
		struct kvm_cpuid_entry2 e = host->entries[i];
		if (topology_leaf(e.function))
			continue;
		if (e.function == 0 && e.eax < 0x1f)
			e.eax = 0x1f;   /* as the emu engine: 1FH is the highest basic leaf */
		if (e.function == 1) {
			e.ecx |= 1u << 31;  /* hypervisor present (SDM vol. 2A, CPUID leaf 1 ECX) */
			/* vessel's own LAPIC serves this engine through MMIO
			 * and, with the MSR filter, its MSRs; x2APIC and TSC
			 * deadline stay unadvertised here: KVM's guest TSC runs
			 * at the host's rate, not the LAPIC's, and neither has
			 * run on a KVM host yet. */
			e.ecx &= ~((1u << 21) | (1u << 24));
			/* The initial APIC id, and the logical processors of its
			 * package (EBX[23:16]), as leaf 0BH says. */
			e.ebx = (e.ebx & 0xffff) | (id & 0xff) << 24 | (per_package & 0xff) << 16;
		}
		/* --cpu: the flags the model removes (machine/cpu_model.h);
		 * KVM then faults their MSRs and, where the hardware can trap
		 * them, their instructions. */
		uint32_t r[4] = { e.eax, e.ebx, e.ecx, e.edx };
		cpu_model_filter(&vm->cpu_model, e.function, e.index, r);
		e.eax = r[0]; e.ebx = r[1]; e.ecx = r[2]; e.edx = r[3];
		t->entries[n++] = e;
	}
	static const uint32_t leaves[] = { 0xb, 0x1f };
	for (unsigned l = 0; l < 2; l++) {
		for (uint32_t sub = 0; sub < CPU_TOPOLOGY_SUBLEAVES; sub++) {
			uint32_t r[4];
			cpu_topology_leaf(per_package, sub, id, r);
			t->entries[n++] = (struct kvm_cpuid_entry2){ .function = leaves[l], .index = sub,
								     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
								     .eax = r[0], .ebx = r[1], .ecx = r[2], .edx = r[3] };
		}
	}
	t->nent = n;
	return t;
}
