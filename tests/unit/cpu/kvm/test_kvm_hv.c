/* The KVM engine's side of the Hyper-V interface without /dev/kvm: the
 * MSR filter built from src/hv's MSR list, the CPUID leaves given to
 * KVM_SET_CPUID2, the hypercall page's bytes and the decode of its OUT
 * into the hypercall src/hv runs (docs/hyperv.md "The KVM engine"). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/kvm/kvm_hv.h"
#include "hv/hyperv.h"

Test(kvm_hv, msr_filter_denies_the_apic_route_and_the_hyperv_ranges)
{
	struct kvm_msr_filter f;
	uint8_t deny[KVM_HV_DENY_BITS / 8];
	memset(deny, 0xa5, sizeof(deny));
	int n = kvm_hv_msr_filter(&f, hv_msr_ranges, HV_MSR_RANGES, deny);
	cr_assert_eq(n, 3 + HV_MSR_RANGES);
	cr_assert_eq(f.flags, KVM_MSR_FILTER_DEFAULT_ALLOW);
	for (unsigned i = 0; i < sizeof(deny); i++)
		cr_assert_eq(deny[i], 0, "a clear bit denies: every MSR of a range exits");
	bool guest_os_id = false, stimer = false, crash = false, seoi = false, apic_base = false;
	for (int i = 0; i < n; i++) {
		const struct kvm_msr_filter_range *r = &f.ranges[i];
		cr_assert_eq(r->flags, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE);
		cr_assert_eq(r->bitmap, deny);
		cr_assert(r->nmsrs >= 1 && r->nmsrs <= KVM_HV_DENY_BITS);
		guest_os_id |= HV_MSR_GUEST_OS_ID - r->base < r->nmsrs;
		stimer |= 0x400000b7u - r->base < r->nmsrs;
		crash |= HV_MSR_CRASH_CTL - r->base < r->nmsrs;
		seoi |= VESSEL_MSR_SELECTIVE_EOI - r->base < r->nmsrs;
		apic_base |= 0x1bu - r->base < r->nmsrs;
	}
	cr_assert(guest_os_id && stimer && crash && seoi && apic_base);
	cr_assert_eq(f.ranges[n].nmsrs, 0, "the rest of the ranges are unused");
	/* Without the interface only the LAPIC's. */
	cr_assert_eq(kvm_hv_msr_filter(&f, NULL, 0, deny), 3);
	/* Too many or too long ranges are refused, not truncated. */
	struct msr_range many[KVM_MSR_FILTER_MAX_RANGES] = { { 0x40000000u, 1 } };
	for (unsigned i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++)
		many[i] = (struct msr_range){ 0x40000000u + i, 1 };
	cr_assert_eq(kvm_hv_msr_filter(&f, many, KVM_MSR_FILTER_MAX_RANGES, deny), -E2BIG);
	struct msr_range big = { 0x40000000u, KVM_HV_DENY_BITS + 1 };
	cr_assert_eq(kvm_hv_msr_filter(&f, &big, 1, deny), -E2BIG);
	/* The exit's MSR is src/hv's or not. */
	cr_assert(kvm_hv_msr_in(hv_msr_ranges, HV_MSR_RANGES, HV_MSR_HYPERCALL));
	cr_assert(kvm_hv_msr_in(hv_msr_ranges, HV_MSR_RANGES, VESSEL_MSR_SELECTIVE_EOI));
	cr_assert(!kvm_hv_msr_in(hv_msr_ranges, HV_MSR_RANGES, 0x800));
	cr_assert(!kvm_hv_msr_in(hv_msr_ranges, HV_MSR_RANGES, VESSEL_MSR_SELECTIVE_EOI + 1));
}

/* A stand-in for src/hv's CPUID: every leaf it answers carries its
 * number, so that the test sees which ones were asked. */
static bool fake_cpuid(const struct vm *vm, unsigned n_cpus, uint32_t leaf, uint32_t out[4])
{
	if (leaf > 0x40000006u && leaf != 0x40000101u)
		return false;
	out[0] = leaf;
	out[1] = n_cpus;
	out[2] = out[3] = 0;
	return true;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t leaf)
{
	const struct kvm_cpuid_entry2 *hit = NULL;
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == leaf) {
			cr_assert_null(hit, "leaf %#x twice", leaf);
			hit = &c->entries[i];
		}
	return hit;
}

Test(kvm_hv, cpuid_replaces_kvms_leaves_with_the_hyperv_ones)
{
	unsigned cap = 32;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(struct kvm_cpuid_entry2));
	/* What KVM_GET_SUPPORTED_CPUID gives: basic leaves and KVM's own. */
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0xd };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 1, .ecx = 1u << 31 };
	c->entries[2] = (struct kvm_cpuid_entry2){ .function = 0x40000000u, .eax = 0x40000001u, .ebx = 0x4b4d564b };
	c->entries[3] = (struct kvm_cpuid_entry2){ .function = 0x40000001u, .eax = 0x1ff };   /* kvmclock... */
	c->entries[4] = (struct kvm_cpuid_entry2){ .function = 0x80000000u, .eax = 0x80000008u };
	c->nent = 5;
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.hv_cpuid = fake_cpuid;
	cr_assert_eq(kvm_hv_cpuid(c, cap, &vm, 2, 2500000000ull), 0);
	cr_assert_not_null(find(c, 0));
	cr_assert_not_null(find(c, 1));
	cr_assert_not_null(find(c, 0x80000000u));
	const struct kvm_cpuid_entry2 *e = find(c, 0x40000000u);
	cr_assert_eq(e->eax, 0x40000000u, "src/hv's, not KVM's");
	cr_assert_eq(find(c, 0x40000001u)->eax, 0x40000001u);
	cr_assert_eq(find(c, 0x40000005u)->ebx, 2, "the vCPU count reaches src/hv");
	cr_assert_eq(find(c, 0x40000008u)->eax, 0, "leaves src/hv leaves out read 0");
	e = find(c, 0x40000010u);
	cr_assert_eq(e->eax, 2500000, "TSC kHz");
	cr_assert_eq(e->ebx, LAPIC_TIMER_HZ / 1000);
	e = find(c, 0x40000100u);
	cr_assert_eq(e->eax, 0x40000101u);
	cr_assert_eq(e->ebx, 0x73736556u, "Vess");
	cr_assert_eq(find(c, 0x40000101u)->eax, 0x40000101u, "vessel's features from src/hv");
	cr_assert_eq(c->nent, 3 + 16 + 3, "KVM's two leaves gone");
	/* No room: refused. */
	c->nent = 5;
	cr_assert_eq(kvm_hv_cpuid(c, 10, &vm, 2, 0), -E2BIG);
	free(c);
}

Test(kvm_hv, hypercall_page_outs_the_magic_and_returns)
{
	const uint8_t *b = kvm_hv_hypercall_stub;
	cr_assert_eq(b[0], 0xb8, "mov eax, imm32");
	uint32_t magic;
	memcpy(&magic, b + 1, 4);
	cr_assert_eq(magic, KVM_HV_HYPERCALL_MAGIC);
	cr_assert_eq(b[5], 0xe7, "out imm8, eax");
	cr_assert_eq(b[6], KVM_HV_HYPERCALL_PORT);
	cr_assert_eq(b[7], 0xc3, "ret");
}

/* A kvm_run as KVM leaves it at an OUT, its data in the page after. */
static struct kvm_run *out_exit(uint16_t port, uint8_t size, uint32_t data)
{
	struct kvm_run *run = calloc(1, 8192);
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.port = port;
	run->io.size = size;
	run->io.count = 1;
	run->io.data_offset = 4096;
	memcpy((uint8_t *)run + 4096, &data, size);
	return run;
}

Test(kvm_hv, the_pages_out_is_a_hypercall_and_a_probe_is_not)
{
	struct kvm_run *run = out_exit(KVM_HV_HYPERCALL_PORT, 4, KVM_HV_HYPERCALL_MAGIC);
	cr_assert(kvm_hv_is_hypercall(run));
	run->io.direction = KVM_EXIT_IO_IN;
	cr_assert(!kvm_hv_is_hypercall(run), "an IN");
	free(run);
	run = out_exit(KVM_HV_HYPERCALL_PORT, 1, KVM_HV_HYPERCALL_MAGIC & 0xff);
	cr_assert(!kvm_hv_is_hypercall(run), "a byte OUT of a driver's probe");
	free(run);
	run = out_exit(KVM_HV_HYPERCALL_PORT, 4, 0);
	cr_assert(!kvm_hv_is_hypercall(run), "another value");
	free(run);
	run = out_exit(KVM_HV_HYPERCALL_PORT + 1, 4, KVM_HV_HYPERCALL_MAGIC);
	cr_assert(!kvm_hv_is_hypercall(run), "another port");
	run->exit_reason = KVM_EXIT_MMIO;
	cr_assert(!kvm_hv_is_hypercall(run));
	free(run);
}

Test(kvm_hv, hypercall_registers_follow_the_tlfs_convention)
{
	/* TLFS 3.7: RCX the input value, RDX and R8 the GPAs or the fast
	 * inputs. */
	struct kvm_regs r = { .rcx = 0x1000b, .rdx = 0x41, .r8 = 0x6, .rax = KVM_HV_HYPERCALL_MAGIC };
	struct vcpu_exit ex;
	cr_assert(kvm_hv_hypercall_decode(&r, 0, &ex));
	cr_assert_eq(ex.reason, VCPU_EXIT_HYPERCALL);
	cr_assert_eq(ex.hypercall.code, 0x1000b);
	cr_assert_eq(ex.hypercall.in_gpa, 0x41);
	cr_assert_eq(ex.hypercall.out_gpa, 0x6);
	cr_assert_eq(ex.hypercall.result, 2, "invalid code unless someone answers");
	/* From user mode: refused, nothing to run. */
	cr_assert(!kvm_hv_hypercall_decode(&r, 3, &ex));
	cr_assert_eq(ex.hypercall.result, 6, "HV_STATUS_ACCESS_DENIED");
}
