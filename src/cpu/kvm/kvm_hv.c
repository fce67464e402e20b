/* The KVM engine's side of the Hyper-V interface (kvm_hv.h).
 *
 * vessel runs KVM without an in-kernel irqchip, so KVM's own Hyper-V
 * emulation (which needs it for the SynIC) is not used: the guest's
 * synthetic MSRs are denied in the kernel by the MSR filter (api.rst
 * 4.126 KVM_X86_SET_MSR_FILTER, with KVM_CAP_X86_USER_SPACE_MSR and
 * KVM_MSR_EXIT_REASON_FILTER) and exit as KVM_EXIT_X86_RDMSR/WRMSR to
 * src/hv; the CPUID leaves are set with KVM_SET_CPUID2; the hypercall
 * page traps by port I/O, since a VMCALL would be KVM's to handle. */
#include "cpu/kvm/kvm_hv.h"

#include <errno.h>
#include <string.h>

#define STR4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* Hypercall status HV_STATUS_ACCESS_DENIED (TLFS appendix B). */
#define HV_STATUS_ACCESS_DENIED 6

const uint8_t kvm_hv_hypercall_stub[KVM_HV_HYPERCALL_STUB_LEN] = {
	0xb8, KVM_HV_HYPERCALL_MAGIC & 0xff, (KVM_HV_HYPERCALL_MAGIC >> 8) & 0xff,
	(KVM_HV_HYPERCALL_MAGIC >> 16) & 0xff, KVM_HV_HYPERCALL_MAGIC >> 24,   /* mov eax, magic */
	0xe7, KVM_HV_HYPERCALL_PORT,                                              /* out port, eax */
	0xc3,                                                                     /* ret */
};

bool kvm_hv_is_hypercall(const struct kvm_run *run)
{
	if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT ||
	    run->io.port != KVM_HV_HYPERCALL_PORT || run->io.size != 4 || run->io.count != 1)
		return false;
	uint32_t v;
	memcpy(&v, (const uint8_t *)run + run->io.data_offset, 4);
	return v == KVM_HV_HYPERCALL_MAGIC;
}

bool kvm_hv_hypercall_decode(const struct kvm_regs *regs, unsigned cpl, struct vcpu_exit *exit)
{
	*exit = (struct vcpu_exit){ .reason = VCPU_EXIT_HYPERCALL };
	if (cpl != 0) {
		/* TLFS 3.7: only CPL 0 may call; the emu engine's VMCALL
		 * raises #UD, here the OUT already ran, so it fails. */
		exit->hypercall.result = HV_STATUS_ACCESS_DENIED;
		return false;
	}
	exit->hypercall.code = regs->rcx;
	exit->hypercall.in_gpa = regs->rdx;
	exit->hypercall.out_gpa = regs->r8;
	exit->hypercall.result = 2;   /* HV_STATUS_INVALID_HYPERCALL_CODE unless handled */
	return true;
}

int kvm_hv_msr_filter(struct kvm_msr_filter *f, const struct msr_range *extra, unsigned n_extra, uint8_t *deny)
{
	static const struct msr_range apic[] = {
		{ MSR_IA32_APIC_BASE, 1 },
		{ MSR_IA32_TSC_DEADLINE, 1 },
		{ 0x800, 0x100 },   /* x2APIC */
	};
	const unsigned n_apic = sizeof(apic) / sizeof(apic[0]);
	if (n_apic + n_extra > KVM_MSR_FILTER_MAX_RANGES)
		return -E2BIG;
	memset(f, 0, sizeof(*f));
	memset(deny, 0, KVM_HV_DENY_BITS / 8);
	f->flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	for (unsigned i = 0; i < n_apic + n_extra; i++) {
		const struct msr_range *r = i < n_apic ? &apic[i] : &extra[i - n_apic];
		if (r->count == 0 || r->count > KVM_HV_DENY_BITS)
			return -E2BIG;
		f->ranges[i] = (struct kvm_msr_filter_range){
			.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			.base = r->base,
			.nmsrs = r->count,
			.bitmap = deny,
		};
	}
	return (int)(n_apic + n_extra);
}

bool kvm_hv_msr_in(const struct msr_range *r, unsigned n, uint32_t index)
{
	for (unsigned i = 0; i < n; i++)
		if (index - r[i].base < r[i].count)
			return true;
	return false;
}

static int add(struct kvm_cpuid2 *c, unsigned cap, uint32_t leaf, const uint32_t v[4])
{
	if (c->nent >= cap)
		return -E2BIG;
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = leaf, .eax = v[0], .ebx = v[1], .ecx = v[2], .edx = v[3],
	};
	return 0;
}

int kvm_hv_cpuid(struct kvm_cpuid2 *c, unsigned cap, const struct vm *vm, unsigned n_cpus, uint64_t tsc_hz)
{
	/* KVM's signature and features ("KVMKVMKVM", kvmclock...) would be
	 * a second hypervisor at the base leaf Linux reads. */
	unsigned kept = 0;
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function < 0x40000000u || c->entries[i].function > 0x400000ffu)
			c->entries[kept++] = c->entries[i];
	c->nent = kept;
	uint32_t v[4];
	for (uint32_t leaf = 0x40000000u; leaf <= 0x4000000fu; leaf++) {
		if (!vm->hv_cpuid || !vm->hv_cpuid(vm, n_cpus, leaf, v))
			memset(v, 0, sizeof(v));
		if (add(c, cap, leaf, v) < 0)
			return -E2BIG;
	}
	const uint32_t timing[4] = { (uint32_t)(tsc_hz / 1000), (uint32_t)(LAPIC_TIMER_HZ / 1000), 0, 0 };
	const uint32_t ident[4] = { 0x40000101u, STR4('V', 'e', 's', 's'), STR4('e', 'l', 'V', 'e'),
				    STR4('s', 's', 'e', 'l') };
	if (!vm->hv_cpuid || !vm->hv_cpuid(vm, n_cpus, 0x40000101u, v))
		memset(v, 0, sizeof(v));
	if (add(c, cap, 0x40000010u, timing) < 0 || add(c, cap, 0x40000100u, ident) < 0 ||
	    add(c, cap, 0x40000101u, v) < 0)
		return -E2BIG;
	return 0;
}
