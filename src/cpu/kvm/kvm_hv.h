/* The KVM engine's side of the Hyper-V interface (docs/hyperv.md "The
 * KVM engine"): what it asks of KVM so that the guest's synthetic MSRs,
 * CPUID leaves and hypercalls reach src/hv, which it reaches only through
 * the VM's hooks (vm->hv_msr, vm->hv_cpuid, vm->handle_hypercall).  Pure
 * functions on KVM's structures, tested without /dev/kvm. */
#ifndef VESSEL_CPU_KVM_KVM_HV_H
#define VESSEL_CPU_KVM_KVM_HV_H

#include "machine/machine.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/* The hypercall page's code: MOV EAX, KVM_HV_HYPERCALL_MAGIC; OUT
 * KVM_HV_HYPERCALL_PORT, EAX; RET.  The inputs stay where TLFS 3.7 puts
 * them (RCX the input value, RDX and R8 the input and output GPAs or
 * fast inputs); the result comes back in RAX, which the MOV already
 * gave up.  The magic value tells the page's OUT from a driver probing
 * the port. */
#define KVM_HV_HYPERCALL_PORT  0x5e
#define KVM_HV_HYPERCALL_MAGIC 0x6c436856u   /* "VhCl" */
#define KVM_HV_HYPERCALL_STUB_LEN 8
extern const uint8_t kvm_hv_hypercall_stub[KVM_HV_HYPERCALL_STUB_LEN];

/* Whether an exit of KVM_RUN is the hypercall page's OUT. */
bool kvm_hv_is_hypercall(const struct kvm_run *run);

/* The hypercall of the registers at that OUT, as a VCPU_EXIT_HYPERCALL
 * for vm->handle_hypercall; cpl is the caller's privilege level: above
 * 0 the call is refused (TLFS 3.7), *exit then holds its result. */
bool kvm_hv_hypercall_decode(const struct kvm_regs *regs, unsigned cpl, struct vcpu_exit *exit);

/* The MSRs whose RDMSR and WRMSR must exit to vessel: the route to the
 * LAPIC (IA32_APIC_BASE, IA32_TSC_DEADLINE, the x2APIC range) and the
 * n_extra ranges extra (vm->hv_msr_ranges).  Fills f with deny ranges
 * (every bitmap bit clear, pointing at deny, which must hold
 * KVM_HV_DENY_BITS bits); -E2BIG when they do not fit KVM's ranges or a
 * range is longer than the bitmap. */
#define KVM_HV_DENY_BITS 0x200
int kvm_hv_msr_filter(struct kvm_msr_filter *f, const struct msr_range *extra, unsigned n_extra,
		      uint8_t *deny);

/* Whether MSR index is one of the n ranges r. */
bool kvm_hv_msr_in(const struct msr_range *r, unsigned n, uint32_t index);

/* Makes c (room for cap entries) present the Hyper-V interface: KVM's
 * own hypervisor leaves (0x40000000-0x400000ff) go, and the leaves
 * 0x40000000-0x4000000f that hv_cpuid answers come in, then the timing
 * leaf 0x40000010 (TSC and LAPIC timer rates in kHz) and vessel's
 * identity 0x40000100 with its feature leaf 0x40000101 (from hv_cpuid).
 * -E2BIG when cap is too small. */
int kvm_hv_cpuid(struct kvm_cpuid2 *c, unsigned cap, const struct vm *vm, unsigned n_cpus, uint64_t tsc_hz);

#endif
