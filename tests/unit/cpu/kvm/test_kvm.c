/* The KVM engine against small real-mode guests: port I/O (plain and
 * string), MMIO, HLT, and the register accessors.  Skipped where the host
 * has no usable /dev/kvm. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/accel.h"
#include "cpu/engines.h"
#include "cpu/kvm/kvm_cpuid.h"
#include "machine/cpu_topology.h"
#include "machine/machine.h"

struct test_io {
	char out[64];
	size_t n_out;
	int exit_value;
	uint64_t mmio_off, mmio_val;
};

static uint64_t out_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size) { return 0; }
static void out_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct test_io *t = opaque;
	if (t->n_out < sizeof(t->out) - 1)
		t->out[t->n_out++] = (char)val;
}
static void exit_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	((struct test_io *)opaque)->exit_value = (int)val;
}
static uint64_t mmio_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size) { return '!'; }
static void mmio_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct test_io *t = opaque;
	t->mmio_off = off;
	t->mmio_val = val;
}
static const struct bus_ops out_ops = { out_read, out_write };
static const struct bus_ops exit_ops = { out_read, exit_write };
static const struct bus_ops mmio_ops = { mmio_read, mmio_write };

/* Real-mode program at 0x1000 (assembled by hand; nasm syntax in comments). */
static const uint8_t program[] = {
	0xba, 0xe9, 0x00,                   /* mov dx, 0xe9 */
	0xb0, 'O', 0xee,                    /* mov al, 'O' ; out dx, al */
	0xb0, 'K', 0xee,                    /* mov al, 'K' ; out dx, al */
	0xb8, 0x00, 0xa0,                   /* mov ax, 0xa000 */
	0x8e, 0xc0,                         /* mov es, ax */
	0x26, 0xc6, 0x06, 0x10, 0x00, 0x5a, /* mov byte [es:0x10], 0x5a */
	0x26, 0xa0, 0x20, 0x00,             /* mov al, [es:0x20] */
	0xee,                               /* out dx, al */
	0xbe, 0x00, 0x20,                   /* mov si, 0x2000 */
	0xb9, 0x03, 0x00,                   /* mov cx, 3 */
	0xf3, 0x6e,                         /* rep outsb */
	0xf4,                               /* hlt */
	0xb0, 0x07, 0xe6, 0xf4,             /* mov al, 7 ; out 0xf4, al */
	0xf4,                               /* hlt */
};

struct kvm_fixture {
	struct vm vm;
	struct vcpu vcpu;
	struct test_io io;
};

static bool kvm_fixture_init(struct kvm_fixture *f)
{
	memset(f, 0, sizeof(*f));
	cr_assert_eq(gmem_init(&f->vm.mem, 512 << 10), 0);
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	pthread_mutex_init(&f->vm.dev_lock, NULL);
	f->vm.accel = &accel_kvm;
	f->vcpu.vm = &f->vm;
	pthread_mutex_init(&f->vcpu.lock, NULL);
	pthread_cond_init(&f->vcpu.wake, NULL);
	f->vm.vcpus[0] = &f->vcpu;
	f->vm.n_vcpus = 1;
	bus_register(&f->vm.pio, 0xe9, 1, &out_ops, &f->io, "debugcon");
	bus_register(&f->vm.pio, 0xf4, 1, &exit_ops, &f->io, "exit");
	bus_register(&f->vm.mmio, 0xa0000, 0x1000, &mmio_ops, &f->io, "mmio");
	if (accel_kvm.vm_init(&f->vm) < 0)
		return false;
	if (accel_kvm.vcpu_init(&f->vcpu) < 0)
		return false;
	memcpy(gmem_ptr(&f->vm.mem, 0x1000, sizeof(program)), program, sizeof(program));
	memcpy(gmem_ptr(&f->vm.mem, 0x2000, 3), "xyz", 3);
	struct x86_sregs s;
	cr_assert_eq(accel_kvm.get_sregs(&f->vcpu, &s), 0);
	for (int i = 0; i < SEG_COUNT; i++) {
		s.seg[i].selector = 0;
		s.seg[i].base = 0;
	}
	cr_assert_eq(accel_kvm.set_sregs(&f->vcpu, &s), 0);
	struct x86_regs r = { .rip = 0x1000, .rflags = X86_FLAG_FIXED };
	r.gpr[RSP] = 0x8000;
	cr_assert_eq(accel_kvm.set_regs(&f->vcpu, &r), 0);
	return true;
}

static void kvm_fixture_fini(struct kvm_fixture *f)
{
	accel_kvm.vcpu_destroy(&f->vcpu);
	accel_kvm.vm_destroy(&f->vm);
	bus_destroy(&f->vm.pio);
	bus_destroy(&f->vm.mmio);
	gmem_destroy(&f->vm.mem);
}

Test(kvm, real_mode_io_mmio_hlt)
{
	struct kvm_fixture *f = calloc(1, sizeof(*f));
	if (!kvm_fixture_init(f))
		cr_skip_test("no usable /dev/kvm on this host: the KVM engine cannot be tested here");
	struct vcpu_exit exit = { 0 };
	cr_assert_eq(accel_kvm.vcpu_run(&f->vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_HLT, "exit %s", vcpu_exit_reason_name(exit.reason));
	cr_assert_str_eq(f->io.out, "OK!xyz");
	cr_assert_eq(f->io.mmio_off, 0x10);
	cr_assert_eq(f->io.mmio_val, 0x5a);
	cr_assert_eq(f->vcpu.exit_counts[VCPU_EXIT_IO], 6);
	cr_assert_eq(f->vcpu.exit_counts[VCPU_EXIT_MMIO], 2);

	struct x86_regs r;
	cr_assert_eq(accel_kvm.get_regs(&f->vcpu, &r), 0);
	cr_assert_eq(r.rip, 0x1000 + sizeof(program) - 5, "rip after the first hlt: %#llx", (unsigned long long)r.rip);
	cr_assert_eq(r.gpr[RSI] & 0xffff, 0x2003);
	cr_assert_eq(r.gpr[RCX] & 0xffff, 0);

	memset(&exit, 0, sizeof(exit));
	cr_assert_eq(accel_kvm.vcpu_run(&f->vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_HLT);
	cr_assert_eq(f->io.exit_value, 7);
	kvm_fixture_fini(f);
	free(f);
}

Test(kvm, kick_returns_before_running)
{
	struct kvm_fixture *f = calloc(1, sizeof(*f));
	if (!kvm_fixture_init(f))
		cr_skip_test("no usable /dev/kvm on this host: the KVM engine cannot be tested here");
	atomic_fetch_or(&f->vcpu.events, VCPU_EVT_KICK);
	struct vcpu_exit exit = { 0 };
	cr_assert_eq(accel_kvm.vcpu_run(&f->vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_KICK);
	cr_assert_eq(f->io.n_out, 0, "nothing ran");
	kvm_fixture_fini(f);
	free(f);
}

Test(kvm, fpu_and_msr_accessors_round_trip)
{
	struct kvm_fixture *f = calloc(1, sizeof(*f));
	if (!kvm_fixture_init(f))
		cr_skip_test("no usable /dev/kvm on this host: the KVM engine cannot be tested here");
	struct x86_fpu fpu;
	cr_assert_eq(accel_kvm.get_fpu(&f->vcpu, &fpu), 0);
	memset(fpu.fxsave + 160, 0xab, 16); /* xmm0 */
	cr_assert_eq(accel_kvm.set_fpu(&f->vcpu, &fpu), 0);
	struct x86_fpu back;
	cr_assert_eq(accel_kvm.get_fpu(&f->vcpu, &back), 0);
	cr_assert_eq(memcmp(back.fxsave + 160, fpu.fxsave + 160, 16), 0);
	struct x86_msr_entry m = { .index = MSR_IA32_SYSENTER_ESP, .value = 0x12345678 };
	cr_assert_eq(accel_kvm.set_msrs(&f->vcpu, &m, 1), 1);
	m.value = 0;
	cr_assert_eq(accel_kvm.get_msrs(&f->vcpu, &m, 1), 1);
	cr_assert_eq(m.value, 0x12345678);
	kvm_fixture_fini(f);
	free(f);
}

Test(kvm, reset_state_is_the_power_up_state)
{
	struct kvm_fixture *f = calloc(1, sizeof(*f));
	if (!kvm_fixture_init(f))
		cr_skip_test("no usable /dev/kvm on this host: the KVM engine cannot be tested here");
	cr_assert_eq(vcpu_reset_state(&f->vcpu), 0);
	struct x86_sregs s;
	struct x86_regs r;
	cr_assert_eq(accel_kvm.get_sregs(&f->vcpu, &s), 0);
	cr_assert_eq(accel_kvm.get_regs(&f->vcpu, &r), 0);
	cr_assert_eq(s.seg[SEG_CS].selector, 0xf000);
	cr_assert_eq(s.seg[SEG_CS].base, 0xffff0000);
	cr_assert_eq(r.rip, 0xfff0);
	cr_assert_eq(r.gpr[RDX], 0x600);
	cr_assert_eq(s.cr0 & (X86_CR0_PE | X86_CR0_PG), 0);
	kvm_fixture_fini(f);
	free(f);
}

/* The route to the LAPIC (machine/accel.h): the guest's RDMSR and WRMSR
 * of IA32_APIC_BASE reach vm->apic_ops, as they do on the emu engine. */
static struct {
	unsigned reads, writes;
	uint64_t written;
} fake_apic;

static int fake_apic_msr(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val)
{
	if (index != MSR_IA32_APIC_BASE)
		return -EINVAL;
	if (is_write) {
		fake_apic.writes++;
		fake_apic.written = *val;
	} else {
		fake_apic.reads++;
		*val = 0xfee00d00;   /* BSP, x2APIC and global enable */
	}
	return 0;
}

static int fake_no_cr8(struct vcpu *vcpu, uint64_t *cr8)
{
	return -ENOENT;
}

static const struct vcpu_apic_ops fake_apic_ops = { .msr = fake_apic_msr, .get_cr8 = fake_no_cr8 };

Test(kvm, apic_msrs_take_the_route_to_the_lapic)
{
	static const uint8_t apic_program[] = {
		0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00,   /* mov ecx, 0x1b (IA32_APIC_BASE) */
		0x0f, 0x32,                           /* rdmsr */
		0x88, 0xe0,                           /* mov al, ah */
		0xba, 0xe9, 0x00,                     /* mov dx, 0xe9 */
		0xee,                                 /* out dx, al */
		0x66, 0xb8, 0x00, 0x09, 0xe0, 0xfe,   /* mov eax, 0xfee00900 */
		0x66, 0x31, 0xd2,                     /* xor edx, edx */
		0x0f, 0x30,                           /* wrmsr */
		0xf4,                                 /* hlt */
	};
	struct kvm_fixture *f = calloc(1, sizeof(*f));
	if (!kvm_fixture_init(f))
		cr_skip_test("no usable /dev/kvm on this host: the KVM engine cannot be tested here");
	memcpy(gmem_ptr(&f->vm.mem, 0x1000, sizeof(apic_program)), apic_program, sizeof(apic_program));
	f->vm.apic_ops = &fake_apic_ops;
	/* The route needs a LAPIC; the fake table never looks at it. */
	static char lapic_stand_in;
	f->vcpu.lapic = (struct lapic *)(void *)&lapic_stand_in;
	memset(&fake_apic, 0, sizeof(fake_apic));
	struct vcpu_exit exit = { 0 };
	cr_assert_eq(accel_kvm.vcpu_run(&f->vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_HLT, "exit %s", vcpu_exit_reason_name(exit.reason));
	if (!fake_apic.reads) {
		kvm_fixture_fini(f);
		free(f);
		cr_skip_test("this host's /dev/kvm has no MSR filter (KVM_CAP_X86_MSR_FILTER)");
	}
	cr_assert_eq(fake_apic.reads, 1);
	cr_assert_eq(f->io.n_out, 1);
	cr_assert_eq((uint8_t)f->io.out[0], 0x0d, "the LAPIC's value reached the guest");
	cr_assert_eq(fake_apic.writes, 1);
	cr_assert_eq(fake_apic.written, 0xfee00900);
	kvm_fixture_fini(f);
	free(f);
}

/* The CPUID table a vCPU gets (cpu/kvm/kvm_cpuid.h), from a made-up
 * host table: no /dev/kvm needed.  The host's topology leaves (a 16-core
 * package here) give way to vessel's, the same the emu engine answers
 * (machine/cpu_topology.h): two virtual NUMA nodes of two vCPUs, a
 * package each, for vCPU 2 (x2APIC id 2, package 1). */
static const struct kvm_cpuid_entry2 *entry(const struct kvm_cpuid2 *t, uint32_t fn, uint32_t idx, unsigned *count)
{
	const struct kvm_cpuid_entry2 *found = NULL;
	*count = 0;
	for (unsigned i = 0; i < t->nent; i++) {
		if (t->entries[i].function == fn && t->entries[i].index == idx) {
			found = &t->entries[i];
			(*count)++;
		}
	}
	return found;
}

Test(kvm_cpuid, topology_leaves_are_vessels_not_the_hosts)
{
	struct kvm_cpuid2 *host = calloc(1, sizeof(*host) + 8 * sizeof(struct kvm_cpuid_entry2));
	struct vm *vm = calloc(1, sizeof(*vm));
	cr_assert(host && vm);
	const struct kvm_cpuid_entry2 h[] = {
		{ .function = 0, .eax = 0x16 },
		{ .function = 1, .eax = 0x906ea, .ebx = 0x05100800, .ecx = 1u << 21 | 1u << 0, .edx = 1u << 28 },
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 1, .ebx = 2, .ecx = 0x100 },
		{ .function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 5, .ebx = 16,
		  .ecx = 0x201 },
		{ .function = 0x1f, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 1, .ebx = 2,
		  .ecx = 0x100 },
	};
	host->nent = sizeof(h) / sizeof(h[0]);
	memcpy(host->entries, h, sizeof(h));
	vm->n_vcpus = 3;         /* vCPU 2 being created ... */
	vm->planned_vcpus = 4;   /* ... of four */
	cr_assert_eq(vnuma_config_finish(&vm->numa, 2, 4, 64ull << 20), 0);
	struct kvm_cpuid2 *t = kvm_cpuid_for_vcpu(host, vm, 2);
	cr_assert(t);
	unsigned count;
	for (uint32_t fn = 0xb; fn <= 0x1f; fn += 0x1f - 0xb) {
		for (uint32_t sub = 0; sub < CPU_TOPOLOGY_SUBLEAVES; sub++) {
			const struct kvm_cpuid_entry2 *e = entry(t, fn, sub, &count);
			cr_assert_eq(count, 1, "leaf %#x.%u once", fn, sub);
			cr_assert(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
			uint32_t want[4];
			cpu_topology_leaf(2, sub, 2, want);
			uint32_t got[4] = { e->eax, e->ebx, e->ecx, e->edx };
			cr_assert_arr_eq(got, want, sizeof(want), "leaf %#x.%u", fn, sub);
		}
	}
	const struct kvm_cpuid_entry2 *e = entry(t, 0xb, 1, &count);
	cr_assert_eq(e->eax, 1, "a package per node: 2 cores, 1 bit");
	cr_assert_eq(e->ebx, 2);
	cr_assert_eq(entry(t, 0xb, 1, &count)->edx, 2, "x2APIC id");
	cr_assert_eq(entry(t, 0, 0, &count)->eax, 0x1f, "the guest reads leaf 1FH");
	e = entry(t, 1, 0, &count);
	cr_assert_eq(e->ebx >> 24, 2, "initial APIC id");
	cr_assert_eq((e->ebx >> 16) & 0xff, 2, "logical processors per package");
	cr_assert_eq(e->ebx & 0xffff, 0x0800, "the host's CLFLUSH size and brand");
	cr_assert(e->ecx & 1u << 31, "hypervisor bit");
	cr_assert(!(e->ecx & 1u << 21), "no x2APIC");
	cr_assert(e->ecx & 1u << 0, "the host's other flags");
	cr_assert_eq(t->nent, 2 + 2 * CPU_TOPOLOGY_SUBLEAVES);
	cr_assert_eq(host->entries[3].ebx, 16, "the host's table is left alone");
	free(t);
	free(host);
	free(vm);
}
