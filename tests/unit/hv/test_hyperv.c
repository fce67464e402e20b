/* The Hyper-V interface through its entry points, as an engine calls
 * them: CPUID leaves, synthetic MSRs (TLFS appendix) and hypercalls. */
#include "hv/hyperv.h"

#include "util/error.h"
#include "machine/machine.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TSC_HZ 2000000000ull
#define APIC_HZ 25000000ull

struct hvt {
	struct vm vm;
	struct vcpu cpu[2];
};

static struct hvt *hvt_new(const char *spec)
{
	struct hvt *t = calloc(1, sizeof(*t));
	cr_assert(t);
	cr_assert_eq(gmem_init(&t->vm.mem, 32ull << 20), 0);
	t->vm.n_vcpus = 2;
	for (unsigned i = 0; i < 2; i++) {
		t->cpu[i].vm = &t->vm;
		t->cpu[i].id = i;
		pthread_mutex_init(&t->cpu[i].lock, NULL);
		pthread_cond_init(&t->cpu[i].wake, NULL);
		t->vm.vcpus[i] = &t->cpu[i];
	}
	bool on;
	uint32_t features;
	cr_assert_eq(hv_parse(spec, &on, &features), 0, "%s", err_msg());
	if (on)
		cr_assert_eq(hv_vm_create(&t->vm, features, TSC_HZ, APIC_HZ), 0);
	return t;
}

static void hvt_free(struct hvt *t)
{
	hv_vm_destroy(&t->vm);
	gmem_destroy(&t->vm.mem);
	free(t);
}

static int rd(struct hvt *t, unsigned cpu, uint32_t msr, uint64_t *val)
{
	return hv_msr(&t->cpu[cpu], msr, false, val, 0);
}

static int wr(struct hvt *t, unsigned cpu, uint32_t msr, uint64_t val)
{
	return hv_msr(&t->cpu[cpu], msr, true, &val, 0);
}

static uint32_t cpuid_reg(struct hvt *t, uint32_t leaf, int reg)
{
	uint32_t out[4];
	cr_assert(hv_cpuid(&t->vm, 2, leaf, out), "leaf %#x", leaf);
	return out[reg];
}

Test(hv, parse_feature_lists)
{
	bool on;
	uint32_t f;
	cr_assert_eq(hv_parse(NULL, &on, &f), 0);
	cr_assert(on);
	cr_assert_eq(f, HV_FEATURES_ALL);
	cr_assert_eq(hv_parse("off", &on, &f), 0);
	cr_assert(!on);
	cr_assert_eq(hv_parse("-crash,-hv-time", &on, &f), 0);
	cr_assert(on);
	cr_assert_eq(f, HV_FEATURES_ALL & ~(1u << HV_FEAT_CRASH) & ~(1u << HV_FEAT_TIME));
	cr_assert_eq(hv_parse("-time,+time", &on, &f), 0);
	cr_assert_eq(f, HV_FEATURES_ALL);
	cr_assert_eq(hv_parse("-vapic", &on, &f), -EINVAL);
	cr_assert(strstr(err_msg(), "'vapic' is not a Hyper-V feature"), "%s", err_msg());
	cr_assert_eq(hv_parse("", &on, &f), 0, "an empty list changes nothing");
	cr_assert_eq(f, HV_FEATURES_ALL);
}

Test(hv, identity_and_features)
{
	struct hvt *t = hvt_new(NULL);
	uint32_t out[4];
	cr_assert(hv_cpuid(&t->vm, 2, 0x40000000, out));
	char vendor[13] = { 0 };
	memcpy(vendor, &out[1], 4);
	memcpy(vendor + 4, &out[2], 4);
	memcpy(vendor + 8, &out[3], 4);
	cr_assert_str_eq(vendor, "Microsoft Hv");
	/* Linux wants 0x40000005..0x4000ffff as the maximum leaf. */
	cr_assert_geq(out[0], 0x40000005u);
	cr_assert_eq(cpuid_reg(t, 0x40000001, 0), 0x31237648u, "Hv#1");
	uint32_t priv = cpuid_reg(t, 0x40000003, 0);
	cr_assert_eq(priv & ((1u << 5) | (1u << 6)), (1u << 5) | (1u << 6), "hypercall and VP index MSRs");
	cr_assert(priv & (1u << 1) && priv & (1u << 9), "reference counter and TSC page");
	cr_assert(priv & (1u << 11), "frequency MSRs");
	cr_assert(priv & (1u << 2), "SynIC");
	cr_assert(priv & (1u << 3), "synthetic timers");
	/* Nothing vessel lacks: no APIC MSRs, idle, partition id, post
	 * messages, isolation. */
	cr_assert_eq(priv & ((1u << 4) | (1u << 10)), 0);
	/* The high half: HvCallPostMessage (4) and HvCallSignalEvent (5),
	 * for VMBus; no partition id, isolation or the rest. */
	cr_assert_eq(cpuid_reg(t, 0x40000003, 1), (1u << 4) | (1u << 5), "post messages and signal events only");
	cr_assert_eq(cpuid_reg(t, 0x40000003, 3), (1u << 8) | (1u << 10) | (1u << 19),
		     "frequency and crash MSRs, direct-mode timers");
	/* Recommendations: remote TLB flush (2), relaxed timing (5),
	 * cluster IPI (10) and the Ex forms' VP sets (11); never notify spin
	 * waits. */
	cr_assert_eq(cpuid_reg(t, 0x40000004, 0), (1u << 2) | (1u << 5) | (1u << 10) | (1u << 11));
	cr_assert_eq(cpuid_reg(t, 0x40000004, 1), 0xffffffffu);
	cr_assert_eq(cpuid_reg(t, 0x40000005, 1), 2, "logical processors");
	cr_assert_eq(cpuid_reg(t, 0x40000006, 0), 0);
	/* The engine's own leaves stay the engine's. */
	cr_assert(!hv_cpuid(&t->vm, 2, 0x40000010, out));
	cr_assert(!hv_cpuid(&t->vm, 2, 0x40000100, out));
	cr_assert(!hv_cpuid(&t->vm, 2, 1, out));
	hvt_free(t);
}

Test(hv, features_turned_off_leave_cpuid_and_msrs)
{
	struct hvt *t = hvt_new("-time,-crash,-relaxed,-frequencies,-reset,-synic,-stimer,-tlbflush,-ipi");
	uint32_t priv = cpuid_reg(t, 0x40000003, 0);
	cr_assert_eq(priv, (1u << 5) | (1u << 6), "only the base: %#x", priv);
	cr_assert_eq(cpuid_reg(t, 0x40000003, 1), 0, "no VMBus without the SynIC");
	cr_assert_eq(cpuid_reg(t, 0x40000003, 3), 0);
	cr_assert_eq(cpuid_reg(t, 0x40000004, 0), 0);
	uint64_t v;
	cr_assert_eq(rd(t, 0, HV_MSR_TIME_REF_COUNT, &v), -EINVAL);
	cr_assert_eq(wr(t, 0, HV_MSR_REFERENCE_TSC, 0x1001), -EINVAL);
	cr_assert_eq(rd(t, 0, HV_MSR_TSC_FREQUENCY, &v), -EINVAL);
	cr_assert_eq(rd(t, 0, HV_MSR_CRASH_CTL, &v), -EINVAL);
	cr_assert_eq(wr(t, 0, HV_MSR_RESET, 1), -EINVAL);
	cr_assert_eq(rd(t, 0, HV_MSR_VP_INDEX, &v), 0);
	hvt_free(t);
}

Test(hv, off_hides_everything)
{
	struct hvt *t = hvt_new("off");
	uint32_t out[4];
	cr_assert(!hv_cpuid(&t->vm, 2, 0x40000000, out));
	cr_assert(!hv_cpuid(NULL, 1, 0x40000003, out));
	uint64_t v;
	cr_assert_eq(rd(t, 0, HV_MSR_GUEST_OS_ID, &v), -ENOENT, "the engine's own #GP path");
	cr_assert_eq(rd(t, 0, HV_MSR_VP_INDEX, &v), -ENOENT);
	struct hv_info info;
	cr_assert(!hv_get_info(&t->vm, &info));
	hvt_free(t);
}

Test(hv, msr_range_and_unknown_registers)
{
	struct hvt *t = hvt_new(NULL);
	uint64_t v;
	cr_assert_eq(rd(t, 0, 0x1b, &v), -ENOENT, "not a Hyper-V MSR");
	cr_assert_eq(rd(t, 0, 0x40000201, &v), -ENOENT, "beyond the synthetic range and vessel's own");
	cr_assert_eq(rd(t, 0, 0x40000050, &v), -EINVAL, "not a register");
	cr_assert_eq(rd(t, 0, 0x400000b8, &v), -EINVAL, "past the synthetic timers");
	hvt_free(t);
}

Test(hv, guest_os_id_and_hypercall_page)
{
	struct hvt *t = hvt_new(NULL);
	uint64_t v = 1;
	const uint64_t page = 0x123000;
	/* TLFS 3.13: no hypercall page before a guest OS id. */
	cr_assert_eq(wr(t, 0, HV_MSR_HYPERCALL, page | 1), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_HYPERCALL, &v), 0);
	cr_assert_eq(v, page, "enable stays clear: %#lx", (unsigned long)v);
	uint8_t code[4] = { 0 };
	cr_assert_eq(gmem_read(&t->vm.mem, page, code, 4), 0);
	cr_assert_eq(code[0], 0, "page not filled while disabled");
	const uint64_t linux_id = 0x8100ull << 48 | (uint64_t)((6 << 16) | (1 << 8) | 0) << 16;
	cr_assert_eq(wr(t, 1, HV_MSR_GUEST_OS_ID, linux_id), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_GUEST_OS_ID, &v), 0);
	cr_assert_eq(v, linux_id, "partition-wide");
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.guest_os_id, linux_id);
	cr_assert_eq(wr(t, 0, HV_MSR_HYPERCALL, page | 1 | 0xff0), 0);
	cr_assert_eq(rd(t, 1, HV_MSR_HYPERCALL, &v), 0);
	cr_assert_eq(v, page | 1, "reserved bits read as zero");
	cr_assert_eq(gmem_read(&t->vm.mem, page, code, 4), 0);
	static const uint8_t stub[4] = { 0x0f, 0x01, 0xc1, 0xc3 };   /* VMCALL; RET */
	cr_assert_eq(memcmp(code, stub, 4), 0);
	/* Relocate and lock: a locked MSR ignores writes. */
	cr_assert_eq(wr(t, 0, HV_MSR_HYPERCALL, 0x200000 | 3), 0);
	cr_assert_eq(gmem_read(&t->vm.mem, 0x200000, code, 4), 0);
	cr_assert_eq(memcmp(code, stub, 4), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_HYPERCALL, 0), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_HYPERCALL, &v), 0);
	cr_assert_eq(v, 0x200000 | 3);
	/* A page outside RAM is held but not filled; no crash. */
	struct hvt *u = hvt_new(NULL);
	cr_assert_eq(wr(u, 0, HV_MSR_GUEST_OS_ID, 1), 0);
	cr_assert_eq(wr(u, 0, HV_MSR_HYPERCALL, 0xfffff000000ull | 1), 0);
	hvt_free(u);
	hvt_free(t);
}

/* An engine that traps hypercalls another way gives its own page code
 * (accel_ops.hypercall_stub: the KVM engine's port I/O trap). */
Test(hv, hypercall_page_holds_the_engines_stub)
{
	struct hvt *t = hvt_new(NULL);
	static const uint8_t out_stub[] = { 0xb8, 1, 2, 3, 4, 0xe7, 0x5e, 0xc3 };
	struct accel_ops ops = { .name = "trap", .hypercall_stub = out_stub, .hypercall_stub_len = sizeof(out_stub) };
	t->vm.accel = &ops;
	cr_assert_eq(wr(t, 0, HV_MSR_GUEST_OS_ID, 1), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_HYPERCALL, 0x123000 | 1), 0);
	uint8_t code[sizeof(out_stub)];
	cr_assert_eq(gmem_read(&t->vm.mem, 0x123000, code, sizeof(code)), 0);
	cr_assert_eq(memcmp(code, out_stub, sizeof(code)), 0);
	t->vm.accel = NULL;
	hvt_free(t);
}

Test(hv, zero_guest_os_id_disables_hypercalls)
{
	struct hvt *t = hvt_new(NULL);
	uint64_t v;
	cr_assert_eq(wr(t, 0, HV_MSR_GUEST_OS_ID, 5), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_HYPERCALL, 0x1000 | 1), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_GUEST_OS_ID, 0), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_HYPERCALL, &v), 0);
	cr_assert_eq(v, 0x1000);
	hvt_free(t);
}

Test(hv, vp_index_and_vp_assist)
{
	struct hvt *t = hvt_new(NULL);
	uint64_t v;
	cr_assert_eq(rd(t, 0, HV_MSR_VP_INDEX, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(rd(t, 1, HV_MSR_VP_INDEX, &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(wr(t, 1, HV_MSR_VP_INDEX, 7), -EINVAL, "read-only");
	cr_assert_eq(wr(t, 1, HV_MSR_VP_ASSIST_PAGE, 0x5000 | 1), 0);
	cr_assert_eq(rd(t, 1, HV_MSR_VP_ASSIST_PAGE, &v), 0);
	cr_assert_eq(v, 0x5001);
	cr_assert_eq(rd(t, 0, HV_MSR_VP_ASSIST_PAGE, &v), 0);
	cr_assert_eq(v, 0, "per vCPU");
	hvt_free(t);
}

Test(hv, reference_counter_and_tsc_page_agree)
{
	struct hvt *t = hvt_new(NULL);
	uint64_t v;
	/* 100 ns units of a 2 GHz TSC: one tick per 200. */
	cr_assert_eq(hv_msr(&t->cpu[0], HV_MSR_TIME_REF_COUNT, false, &v, 2000000000ull), 0);
	cr_assert_leq(10000000ull - v, 1, "one second (the scale is rounded down): %lu", (unsigned long)v);
	cr_assert_eq(wr(t, 0, HV_MSR_TIME_REF_COUNT, 1), -EINVAL, "read-only");
	const uint64_t page = 0x7000;
	cr_assert_eq(wr(t, 0, HV_MSR_REFERENCE_TSC, page | 1), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_REFERENCE_TSC, &v), 0);
	cr_assert_eq(v, page | 1);
	uint32_t seq;
	uint64_t scale;
	int64_t offset;
	cr_assert_eq(gmem_read(&t->vm.mem, page, &seq, 4), 0);
	cr_assert_eq(gmem_read(&t->vm.mem, page + 8, &scale, 8), 0);
	cr_assert_eq(gmem_read(&t->vm.mem, page + 16, &offset, 8), 0);
	cr_assert_neq(seq, 0, "a zero sequence would send Linux to the MSR");
	cr_assert_neq(seq, 0xffffffffu);
	/* What the guest computes from the page equals the MSR, and both are
	 * monotonic, over a spread of TSC values. */
	uint64_t prev = 0;
	for (uint64_t tsc = 0; tsc < (1ull << 62); tsc = tsc * 3 + 12345) {
		uint64_t msr;
		cr_assert_eq(hv_msr(&t->cpu[1], HV_MSR_TIME_REF_COUNT, false, &msr, tsc), 0);
		uint64_t from_page = (uint64_t)(((unsigned __int128)tsc * scale) >> 64) + (uint64_t)offset;
		cr_assert_eq(from_page, msr, "tsc %#lx", (unsigned long)tsc);
		cr_assert_geq(msr, prev);
		prev = msr;
		/* Within one unit of the exact tsc / 200. */
		cr_assert_leq(tsc / 200 - msr, 1, "tsc %#lx: %lu vs %lu", (unsigned long)tsc, (unsigned long)msr,
			      (unsigned long)(tsc / 200));
	}
	hvt_free(t);
}

Test(hv, frequency_msrs)
{
	struct hvt *t = hvt_new(NULL);
	uint64_t v;
	cr_assert_eq(rd(t, 0, HV_MSR_TSC_FREQUENCY, &v), 0);
	cr_assert_eq(v, TSC_HZ);
	cr_assert_eq(rd(t, 0, HV_MSR_APIC_FREQUENCY, &v), 0);
	cr_assert_eq(v, APIC_HZ);
	cr_assert_eq(wr(t, 0, HV_MSR_APIC_FREQUENCY, 1), -EINVAL);
	hvt_free(t);
}

Test(hv, crash_msrs_report_and_message)
{
	struct hvt *t = hvt_new(NULL);
	uint64_t v;
	cr_assert_eq(rd(t, 0, HV_MSR_CRASH_CTL, &v), 0);
	cr_assert_eq(v, (1ull << 63) | (1ull << 62), "notify and message offered");
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(wr(t, 0, HV_MSR_CRASH_P0 + i, 0x100 + i), 0);
	cr_assert_eq(rd(t, 1, HV_MSR_CRASH_P0 + 2, &v), 0);
	cr_assert_eq(v, 0x102);
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.crashes, 0);
	const char text[] = "Kernel panic - not syncing: sysrq triggered crash\n";
	cr_assert_eq(gmem_write(&t->vm.mem, 0x9000, text, sizeof(text)), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_CRASH_P0 + 3, 0x9000), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_CRASH_P0 + 4, sizeof(text)), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_CRASH_CTL, (1ull << 63) | (1ull << 62)), 0);
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.crashes, 1);
	/* A message outside RAM or too long is cut or refused, not followed. */
	cr_assert_eq(wr(t, 0, HV_MSR_CRASH_P0 + 3, ~0ull - 10), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_CRASH_P0 + 4, ~0ull), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_CRASH_CTL, (1ull << 63) | (1ull << 62)), 0);
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.crashes, 2);
	hvt_free(t);
}

Test(hv, reset_msr_requests_a_reset)
{
	struct hvt *t = hvt_new(NULL);
	cr_assert_eq(wr(t, 0, HV_MSR_RESET, 0), 0);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_NONE);
	cr_assert_eq(wr(t, 0, HV_MSR_RESET, 1), 0);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_RESET);
	hvt_free(t);
}

Test(hv, unknown_hypercalls_fail_and_are_counted)
{
	struct hvt *t = hvt_new(NULL);
	struct vcpu_exit ex = { .reason = VCPU_EXIT_HYPERCALL };
	ex.hypercall.code = 0x0001;   /* HvCallSwitchVirtualAddressSpace */
	hv_hypercall(&t->cpu[0], &ex);
	cr_assert_eq(ex.hypercall.result, HV_STATUS_INVALID_HYPERCALL_CODE);
	ex.hypercall.code = 0x12345678ffffull;
	hv_hypercall(&t->cpu[1], &ex);
	cr_assert_eq(ex.hypercall.result, HV_STATUS_INVALID_HYPERCALL_CODE);
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.hypercalls, 2);
	hvt_free(t);
}
