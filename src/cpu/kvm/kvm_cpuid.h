/* The CPUID table the KVM engine gives one vCPU (KVM_SET_CPUID2): the
 * leaves the host's KVM supports, made to say what vessel's machine is
 * (docs/isa.md "CPU models", docs/numa.md "What the guest sees"). */
#ifndef VESSEL_CPU_KVM_CPUID_H
#define VESSEL_CPU_KVM_CPUID_H

#include "machine/machine.h"

#include <linux/kvm.h>

/* A new table (free() it) for the vCPU with id (= APIC id) of vm, from
 * host (KVM_GET_SUPPORTED_CPUID): leaf 1 with the hypervisor bit, the
 * vCPU's APIC id and its package's logical processor count, without
 * x2APIC and TSC deadline; the model's removed flags cleared; leaves 0BH
 * and 1FH replaced by vessel's topology (machine/cpu_topology.h, the
 * emu engine's answer), the highest basic leaf raised to 1FH so that
 * the guest reads it.  NULL when out of memory. */
struct kvm_cpuid2 *kvm_cpuid_for_vcpu(const struct kvm_cpuid2 *host, const struct vm *vm, unsigned id);

#endif
