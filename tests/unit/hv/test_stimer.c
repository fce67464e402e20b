/* Synthetic timers (TLFS 12.6) on the PC platform's LAPICs and manual
 * clock: one-shot and periodic, direct mode with its vector, message
 * mode through a SINT with HvMessageTypeTimerExpired, AutoEnable, and a
 * busy slot that holds an expiry back until the guest frees it. */
#include "hv_harness.h"

#include "hv/stimer.h"
#include "hv/synic.h"

#include <errno.h>

#define APIC_EOI 0xb0
#define TSC_HZ HVT_TSC_HZ
#define CFG_ENABLE 1ull
#define CFG_PERIODIC 2ull
#define CFG_AUTO_ENABLE 8ull
#define CFG_DIRECT (1ull << 12)
#define CFG_VECTOR(v) ((uint64_t)(v) << 4)
#define CFG_SINT(n) ((uint64_t)(n) << 16)
#define STIMER_CONFIG(n) (HV_MSR_STIMER0_CONFIG + 2 * (n))
#define STIMER_COUNT(n) (HV_MSR_STIMER0_CONFIG + 2 * (n) + 1)

static struct tvm *new_vm(unsigned ncpus, uint32_t features) { return hvt_vm_new(ncpus, features); }
static void free_vm(struct tvm *t) { hvt_vm_free(t); }

/* The guest TSC follows the VM clock at TSC_HZ, as the emu engine's does. */
static uint64_t tsc(struct tvm *t) { return t->now * (TSC_HZ / 1000000000ull); }
/* Reference time (100 ns units) now, as the guest reads it. */
static uint64_t ref(struct tvm *t)
{
	uint64_t v;
	cr_assert_eq(hv_msr(&t->cpu[0], HV_MSR_TIME_REF_COUNT, false, &v, tsc(t)), 0);
	return v;
}

static int wr(struct tvm *t, unsigned cpu, uint32_t msr, uint64_t v)
{
	return hv_msr(&t->cpu[cpu], msr, true, &v, tsc(t));
}

static uint64_t rd(struct tvm *t, unsigned cpu, uint32_t msr)
{
	uint64_t v = 0xdead;
	cr_assert_eq(hv_msr(&t->cpu[cpu], msr, false, &v, tsc(t)), 0, "read %#x", msr);
	return v;
}

static uint32_t slot_u32(struct tvm *t, unsigned sint, unsigned off) { return (uint32_t)hvt_slot(t, sint, off, 4); }
static uint64_t slot_u64(struct tvm *t, unsigned sint, unsigned off) { return hvt_slot(t, sint, off, 8); }
static void free_slot(struct tvm *t, unsigned sint) { hvt_free_slot(t, sint); }

/* Acks and EOIs every pending interrupt; returns how many were vector v. */
static unsigned drain(struct tvm *t, unsigned cpu, int v)
{
	unsigned n = 0;
	int got;
	t->cur = &t->cpu[cpu];
	while ((got = tvm_intr_ack(&t->cpu[cpu])) >= 0) {
		n += got == v;
		apic_w(t, APIC_EOI, 0);
	}
	t->cur = &t->cpu[0];
	return n;
}

Test(stimer, advertised_with_direct_mode_only_with_reference_time)
{
	struct tvm *t = new_vm(1, HV_FEATURES_ALL);
	uint32_t out[4];
	cr_assert(hv_cpuid(&t->vm, 1, 0x40000003, out));
	cr_assert(out[0] & (1u << 3), "HV_MSR_SYNTIMER_AVAILABLE");
	cr_assert(out[3] & (1u << 19), "HV_STIMER_DIRECT_MODE_AVAILABLE");
	free_vm(t);
	t = new_vm(1, HV_FEATURES_ALL & ~(1u << HV_FEAT_TIME));
	cr_assert(hv_cpuid(&t->vm, 1, 0x40000003, out));
	cr_assert_eq(out[0] & (1u << 3), 0);
	cr_assert_eq(out[3] & (1u << 19), 0);
	uint64_t v;
	cr_assert_eq(hv_msr(&t->cpu[0], STIMER_CONFIG(0), false, &v, 0), -EINVAL, "#GP without the feature");
	free_vm(t);
}

Test(stimer, registers_reserved_bits_and_auto_enable)
{
	struct tvm *t = new_vm(2, HV_FEATURES_ALL);
	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(rd(t, 0, STIMER_CONFIG(i)), 0);
		cr_assert_eq(rd(t, 0, STIMER_COUNT(i)), 0);
	}
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(1), 1ull << 13), -EINVAL, "reserved bit 13");
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(1), 1ull << 20), -EINVAL, "reserved bit 20");
	/* Message mode with SINT 0 does not enable. */
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(1), CFG_ENABLE), 0);
	cr_assert_eq(rd(t, 0, STIMER_CONFIG(1)), 0);
	/* AutoEnable: a non-zero count enables, a zero count disables. */
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(2), CFG_AUTO_ENABLE | CFG_DIRECT | CFG_VECTOR(0xed)), 0);
	cr_assert_eq(wr(t, 0, STIMER_COUNT(2), ref(t) + 1000000), 0);
	cr_assert_eq(rd(t, 0, STIMER_CONFIG(2)), CFG_ENABLE | CFG_AUTO_ENABLE | CFG_DIRECT | CFG_VECTOR(0xed));
	cr_assert_eq(rd(t, 1, STIMER_CONFIG(2)), 0, "per vCPU");
	cr_assert_eq(wr(t, 0, STIMER_COUNT(2), 0), 0);
	cr_assert_eq(rd(t, 0, STIMER_CONFIG(2)) & CFG_ENABLE, 0);
	free_vm(t);
}

Test(stimer, one_shot_direct_mode_fires_once_at_its_time)
{
	struct tvm *t = new_vm(2, HV_FEATURES_ALL);
	/* Linux's way (hv_ce_set_oneshot, hv_ce_set_next_event): enable,
	 * AutoEnable, direct mode with its vector, then absolute counts. */
	cr_assert_eq(wr(t, 1, STIMER_CONFIG(0), CFG_ENABLE | CFG_AUTO_ENABLE | CFG_DIRECT | CFG_VECTOR(0xed)), 0);
	cr_assert_eq(wr(t, 1, STIMER_COUNT(0), ref(t) + 10000), 0);   /* 1 ms */
	take_events(t, 1);
	tvm_advance(t, 999000);
	cr_assert_eq(drain(t, 1, 0xed), 0, "not before its time");
	tvm_advance(t, 1000);
	cr_assert(take_events(t, 1) & VCPU_EVT_INTR, "the vCPU is woken");
	cr_assert_eq(drain(t, 1, 0xed), 1);
	cr_assert_eq(drain(t, 0, 0xed), 0, "only on its own vCPU");
	cr_assert_eq(rd(t, 1, STIMER_CONFIG(0)) & CFG_ENABLE, 0, "a one-shot timer disables itself");
	tvm_advance(t, 10000000);
	cr_assert_eq(drain(t, 1, 0xed), 0, "once");
	/* AutoEnable re-arms it with the next count; a time already past
	 * fires at once. */
	cr_assert_eq(wr(t, 1, STIMER_COUNT(0), ref(t) - 5), 0);
	cr_assert_eq(drain(t, 1, 0xed), 1);
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.stimer_expirations, 2);
	cr_assert_eq(info.stimer_direct, 2);
	free_vm(t);
}

Test(stimer, periodic_direct_mode_keeps_its_period)
{
	struct tvm *t = new_vm(1, HV_FEATURES_ALL);
	cr_assert_eq(wr(t, 0, STIMER_COUNT(3), 5000), 0);   /* 500 us */
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(3), CFG_ENABLE | CFG_PERIODIC | CFG_DIRECT | CFG_VECTOR(0x60)), 0);
	unsigned fired = 0;
	for (unsigned i = 0; i < 20; i++) {
		tvm_advance(t, 250000);
		fired += drain(t, 0, 0x60);
	}
	cr_assert_eq(fired, 10, "5 ms at 500 us: %u", fired);
	cr_assert(rd(t, 0, STIMER_CONFIG(3)) & CFG_ENABLE, "periodic stays enabled");
	/* A host stall of many periods: one expiry, not a burst. */
	tvm_advance(t, 100000000);
	cr_assert_eq(drain(t, 0, 0x60), 1);
	/* Disabled: silent. */
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(3), 0), 0);
	tvm_advance(t, 10000000);
	cr_assert_eq(drain(t, 0, 0x60), 0);
	free_vm(t);
}

Test(stimer, message_mode_posts_timer_expired_and_waits_for_a_free_slot)
{
	struct tvm *t = new_vm(1, HV_FEATURES_ALL);
	cr_assert_eq(wr(t, 0, HV_MSR_SIMP, SIMP_GPA | 1), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0 + 2, 0x52), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_SCONTROL, 1), 0);
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(1), CFG_ENABLE | CFG_PERIODIC | CFG_SINT(2)), 0);
	uint64_t start = ref(t);
	cr_assert_eq(wr(t, 0, STIMER_COUNT(1), 10000), 0);   /* 1 ms, enables (Enable set) */
	tvm_advance(t, 1000000);
	cr_assert_eq(slot_u32(t, 2, 0), HV_MESSAGE_TIMER_EXPIRED);
	cr_assert_eq(slot_u32(t, 2, 4) & 0xff, 24, "payload size");
	cr_assert_eq(slot_u32(t, 2, 16), 1, "timer index");
	cr_assert_eq(slot_u64(t, 2, 24), start + 10000, "expiration time");
	cr_assert_eq(slot_u64(t, 2, 32), ref(t), "delivery time");
	cr_assert_eq(drain(t, 0, 0x52), 1);
	/* The guest does not free the slot: the next expiry waits in the
	 * SynIC's one place with MessagePending, the one after that in the
	 * timer. */
	tvm_advance(t, 1000000);
	cr_assert_eq(slot_u32(t, 2, 5) & 1, 1, "MessagePending");
	tvm_advance(t, 1000000);
	cr_assert_eq(drain(t, 0, 0x52), 0, "no interrupt while the slot is busy");
	/* Free and EOM: the queued message comes in, and the held expiry
	 * takes the waiting place again. */
	free_slot(t, 2);
	cr_assert_eq(wr(t, 0, HV_MSR_EOM, 0), 0);
	cr_assert_eq(slot_u32(t, 2, 0), HV_MESSAGE_TIMER_EXPIRED);
	cr_assert_eq(slot_u64(t, 2, 24), start + 20000);
	cr_assert_eq(slot_u32(t, 2, 5) & 1, 1, "the held one waits behind it");
	cr_assert_eq(drain(t, 0, 0x52), 1);
	free_slot(t, 2);
	cr_assert_eq(wr(t, 0, HV_MSR_EOM, 0), 0);
	cr_assert_eq(slot_u64(t, 2, 24), start + 30000);
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.stimer_messages, 3);
	free_vm(t);
}

Test(stimer, message_mode_on_a_masked_sint_is_dropped)
{
	struct tvm *t = new_vm(1, HV_FEATURES_ALL);
	cr_assert_eq(wr(t, 0, HV_MSR_SIMP, SIMP_GPA | 1), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_SCONTROL, 1), 0);
	cr_assert_eq(wr(t, 0, STIMER_CONFIG(0), CFG_ENABLE | CFG_SINT(3)), 0);
	cr_assert_eq(wr(t, 0, STIMER_COUNT(0), ref(t) + 100), 0);
	tvm_advance(t, 20000);
	cr_assert_eq(slot_u32(t, 3, 0), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "no interrupt");
	cr_assert_eq(rd(t, 0, STIMER_CONFIG(0)) & CFG_ENABLE, 0);
	free_vm(t);
}

static size_t save(struct tvm *t, uint8_t *buf, size_t cap)
{
	pthread_mutex_lock(&t->vm.dev_lock);
	int64_t n = hv_snapshot_save(&t->vm, buf, cap);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_gt(n, 0, "save: %lld", (long long)n);
	return (size_t)n;
}

static int load(struct tvm *t, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&t->vm.dev_lock);
	int rc = hv_snapshot_load(&t->vm, buf, len);
	pthread_mutex_unlock(&t->vm.dev_lock);
	return rc;
}

Test(stimer, snapshot_keeps_registers_messages_and_running_timers)
{
	static uint8_t blob[64 * 1024];
	struct tvm *a = new_vm(2, HV_FEATURES_ALL);
	cr_assert_eq(wr(a, 0, HV_MSR_GUEST_OS_ID, 0x8100000601000000ull), 0);
	cr_assert_eq(wr(a, 1, HV_MSR_SIMP, SIMP_GPA | 1), 0);
	cr_assert_eq(wr(a, 1, HV_MSR_SINT0 + 4, 0x64 | (1ull << 17)), 0);
	cr_assert_eq(wr(a, 1, HV_MSR_SCONTROL, 1), 0);
	cr_assert_eq(wr(a, 1, STIMER_COUNT(2), 20000), 0);   /* 2 ms */
	cr_assert_eq(wr(a, 1, STIMER_CONFIG(2), CFG_ENABLE | CFG_PERIODIC | CFG_DIRECT | CFG_VECTOR(0x61)), 0);
	tvm_advance(a, 500000);
	size_t n = save(a, blob, sizeof(blob));
	uint64_t saved_at = a->now;
	free_vm(a);
	/* A machine built anew, its clock where the first one's was (the
	 * "vm-clock" blob's work in a real restore). */
	struct tvm *b = new_vm(2, HV_FEATURES_ALL);
	b->now = saved_at;
	cr_assert_eq(load(b, blob, n), 0, "%s", err_msg());
	cr_assert_eq(rd(b, 0, HV_MSR_GUEST_OS_ID), 0x8100000601000000ull);
	cr_assert_eq(rd(b, 1, HV_MSR_SIMP), SIMP_GPA | 1);
	cr_assert_eq(rd(b, 1, HV_MSR_SINT0 + 4), 0x64 | (1ull << 17));
	cr_assert_eq(rd(b, 1, HV_MSR_SCONTROL), 1);
	cr_assert_eq(rd(b, 1, STIMER_CONFIG(2)), CFG_ENABLE | CFG_PERIODIC | CFG_DIRECT | CFG_VECTOR(0x61));
	cr_assert_eq(rd(b, 1, STIMER_COUNT(2)), 20000);
	/* The timer goes on where it was: due 1.5 ms after the save. */
	tvm_advance(b, 1400000);
	cr_assert_eq(drain(b, 1, 0x61), 0);
	tvm_advance(b, 100000);
	cr_assert_eq(drain(b, 1, 0x61), 1);
	tvm_advance(b, 2000000);
	cr_assert_eq(drain(b, 1, 0x61), 1, "periodic");
	free_vm(b);
	/* A bad SINT in the blob: refused, nothing changed. */
	struct tvm *c = new_vm(2, HV_FEATURES_ALL);
	size_t sint4 = 16 + 4 + 8 * 8 + 2 * 8 + (1 + HV_SYNIC_SNAP_BYTES + 1 + HV_STIMERS_SNAP_BYTES) + 1 +
		       3 * 8 + 4 * 8;
	uint64_t sint;
	memcpy(&sint, blob + sint4, 8);
	cr_assert_eq(sint, 0x64 | (1ull << 17), "the layout the test expects");
	sint |= 1ull << 30;
	memcpy(blob + sint4, &sint, 8);
	cr_assert_eq(load(c, blob, n), -EINVAL);
	cr_assert_eq(rd(c, 0, HV_MSR_GUEST_OS_ID), 0, "unchanged");
	cr_assert_eq(load(c, blob, n - 1), -EINVAL, "short");
	free_vm(c);
}
