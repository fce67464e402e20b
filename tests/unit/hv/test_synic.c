/* The SynIC (TLFS chapter 11) on the PC platform's LAPICs: SINT
 * registers, message slots with MessagePending and EOM, event flags,
 * AutoEOI, masking and polling. */
#include "hv_harness.h"

#include "hv/synic.h"

#include <errno.h>

#define APIC_EOI 0xb0
#define SIEFP_GPA 0x101000ull
#define SINT_MASKED (1ull << 16)
#define SINT_AUTO_EOI (1ull << 17)
#define SINT_POLLING (1ull << 18)

static struct tvm *new_vm(unsigned ncpus) { return hvt_vm_new(ncpus, HV_FEATURES_ALL); }
static void free_vm(struct tvm *t) { hvt_vm_free(t); }

static int wr(struct tvm *t, unsigned cpu, uint32_t msr, uint64_t v) { return hv_msr(&t->cpu[cpu], msr, true, &v, 0); }
static uint64_t rd(struct tvm *t, unsigned cpu, uint32_t msr)
{
	uint64_t v = 0xdead;
	cr_assert_eq(hv_msr(&t->cpu[cpu], msr, false, &v, 0), 0, "read %#x", msr);
	return v;
}

/* SynIC on, both pages, SINT 2 on vector 0x50 with the given bits. */
static struct hv_synic *setup(struct tvm *t, unsigned cpu, uint64_t sint_bits)
{
	cr_assert_eq(wr(t, cpu, HV_MSR_SIMP, SIMP_GPA | 1), 0);
	cr_assert_eq(wr(t, cpu, HV_MSR_SIEFP, SIEFP_GPA | 1), 0);
	cr_assert_eq(wr(t, cpu, HV_MSR_SINT0 + 2, 0x50 | sint_bits), 0);
	cr_assert_eq(wr(t, cpu, HV_MSR_SCONTROL, 1), 0);
	pthread_mutex_lock(&t->vm.dev_lock);
	struct hv_synic *s = hv_vcpu_synic(&t->cpu[cpu]);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert(s);
	return s;
}

static int post(struct tvm *t, struct hv_synic *s, unsigned sint, uint32_t type, uint8_t fill)
{
	uint8_t payload[16];
	memset(payload, fill, sizeof(payload));
	pthread_mutex_lock(&t->vm.dev_lock);
	int rc = hv_synic_post(s, sint, type, 0x77, payload, sizeof(payload));
	pthread_mutex_unlock(&t->vm.dev_lock);
	return rc;
}

static uint32_t slot_type(struct tvm *t, unsigned sint) { return (uint32_t)hvt_slot(t, sint, 0, 4); }
static uint8_t slot_byte(struct tvm *t, unsigned sint, unsigned off) { return (uint8_t)hvt_slot(t, sint, off, 1); }
static void guest_free_slot(struct tvm *t, unsigned sint) { hvt_free_slot(t, sint); }

Test(synic, registers_and_reset_values)
{
	struct tvm *t = new_vm(2);
	cr_assert_eq(rd(t, 0, HV_MSR_SVERSION), 1);
	cr_assert_eq(wr(t, 0, HV_MSR_SVERSION, 2), -EINVAL, "read-only");
	cr_assert_eq(rd(t, 1, HV_MSR_SCONTROL), 0);
	for (unsigned i = 0; i < 16; i++)
		cr_assert_eq(rd(t, 1, HV_MSR_SINT0 + i), SINT_MASKED, "SINT%u starts masked", i);
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0, 0x0f), -EINVAL, "vector below 16, unmasked");
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0, 0x0f | SINT_MASKED), 0, "allowed while masked");
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0, 0x30 | (1ull << 20)), -EINVAL, "reserved bit");
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0 + 15, 0x31 | SINT_AUTO_EOI), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_SINT0 + 15), 0x31 | SINT_AUTO_EOI);
	cr_assert_eq(rd(t, 1, HV_MSR_SINT0 + 15), SINT_MASKED, "per vCPU");
	cr_assert_eq(wr(t, 0, HV_MSR_SCONTROL, 2), -EINVAL);
	cr_assert_eq(wr(t, 0, HV_MSR_SIMP, SIMP_GPA | 0x10), -EINVAL);
	/* Enabling the message page clears it. */
	uint8_t junk[256];
	memset(junk, 0xaa, sizeof(junk));
	cr_assert_eq(gmem_write(&t->vm.mem, SIMP_GPA, junk, sizeof(junk)), 0);
	cr_assert_eq(wr(t, 0, HV_MSR_SIMP, SIMP_GPA | 1), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_SIMP), SIMP_GPA | 1);
	cr_assert_eq(slot_type(t, 0), 0);
	cr_assert_eq(rd(t, 0, HV_MSR_EOM), 0);
	free_vm(t);
}

Test(synic, off_when_the_feature_is_off)
{
	struct tvm *t = tvm_new(1);
	cr_assert_eq(hv_vm_create(&t->vm, HV_FEATURES_ALL & ~(1u << HV_FEAT_SYNIC), 2000000000ull, 25000000ull), 0);
	uint64_t v;
	cr_assert_eq(hv_msr(&t->cpu[0], HV_MSR_SVERSION, false, &v, 0), -EINVAL);
	cr_assert_eq(wr(t, 0, HV_MSR_SCONTROL, 1), -EINVAL);
	uint32_t out[4];
	cr_assert(hv_cpuid(&t->vm, 1, 0x40000003, out));
	cr_assert_eq(out[0] & (1u << 2), 0);
	free_vm(t);
}

Test(synic, message_delivered_with_its_interrupt)
{
	struct tvm *t = new_vm(1);
	struct hv_synic *s = setup(t, 0, 0);
	take_events(t, 0);
	cr_assert_eq(post(t, s, 2, 0x80000001u, 0x5a), 0);
	cr_assert_eq(slot_type(t, 2), 0x80000001u);
	cr_assert_eq(slot_byte(t, 2, 4), 16, "payload size");
	cr_assert_eq(slot_byte(t, 2, 5), 0, "nothing pending");
	cr_assert_eq(slot_byte(t, 2, 8), 0x77, "origin");
	cr_assert_eq(slot_byte(t, 2, 16), 0x5a);
	cr_assert_eq(slot_type(t, 1), 0, "other slots untouched");
	cr_assert(take_events(t, 0) & VCPU_EVT_INTR);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	cr_assert(lapic_test_isr(t->cpu[0].lapic, 0x50), "no AutoEOI: in service until EOI");
	apic_w(t, APIC_EOI, 0);
	cr_assert(!lapic_test_isr(t->cpu[0].lapic, 0x50));
	free_vm(t);
}

Test(synic, busy_slot_sets_message_pending_and_eom_delivers_the_next)
{
	struct tvm *t = new_vm(1);
	struct hv_synic *s = setup(t, 0, SINT_AUTO_EOI);
	cr_assert_eq(post(t, s, 2, 1, 0x11), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	/* The guest has not consumed the first: the second waits. */
	cr_assert_eq(post(t, s, 2, 2, 0x22), 1);
	cr_assert_eq(slot_type(t, 2), 1, "the first is still there");
	cr_assert_eq(slot_byte(t, 2, 5) & 1, 1, "MessagePending");
	cr_assert_eq(post(t, s, 2, 3, 0x33), -EAGAIN, "one waits already");
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "no interrupt for a queued message");
	/* EOM with the slot still busy: nothing moves. */
	cr_assert_eq(wr(t, 0, HV_MSR_EOM, 0), 0);
	cr_assert_eq(slot_type(t, 2), 1);
	/* The guest frees the slot and writes EOM: the next comes in. */
	guest_free_slot(t, 2);
	cr_assert_eq(wr(t, 0, HV_MSR_EOM, 0), 0);
	cr_assert_eq(slot_type(t, 2), 2);
	cr_assert_eq(slot_byte(t, 2, 16), 0x22);
	cr_assert_eq(slot_byte(t, 2, 5) & 1, 0, "nothing more pending");
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	/* A free slot and EOM with nothing queued: no interrupt. */
	guest_free_slot(t, 2);
	cr_assert_eq(wr(t, 0, HV_MSR_EOM, 0), 0);
	cr_assert_eq(slot_type(t, 2), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.messages, 2);
	cr_assert_eq(info.queued, 1);
	cr_assert_eq(info.eoms, 3);
	cr_assert_eq(info.auto_eoi, 2);
	free_vm(t);
}

Test(synic, apic_eoi_of_the_sint_vector_also_delivers)
{
	struct tvm *t = new_vm(1);
	struct hv_synic *s = setup(t, 0, 0);
	cr_assert_eq(post(t, s, 2, 1, 0x11), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	cr_assert_eq(post(t, s, 2, 2, 0x22), 1);
	guest_free_slot(t, 2);
	apic_w(t, APIC_EOI, 0);
	cr_assert_eq(slot_type(t, 2), 2);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	free_vm(t);
}

Test(synic, auto_eoi_leaves_the_isr_alone_under_nesting)
{
	struct tvm *t = new_vm(1);
	struct hv_synic *s = setup(t, 0, SINT_AUTO_EOI);
	/* A lower-priority ordinary interrupt in service... */
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0 + 3, 0x40), 0);
	cr_assert_eq(post(t, s, 3, 1, 0), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x40);
	cr_assert(lapic_test_isr(t->cpu[0].lapic, 0x40));
	/* ...and an AutoEOI SINT at a higher one nests without an ISR bit. */
	cr_assert_eq(post(t, s, 2, 1, 0), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	cr_assert(!lapic_test_isr(t->cpu[0].lapic, 0x50));
	cr_assert(lapic_test_isr(t->cpu[0].lapic, 0x40));
	/* The guest's one EOI ends the ordinary one. */
	apic_w(t, APIC_EOI, 0);
	cr_assert(!lapic_test_isr(t->cpu[0].lapic, 0x40));
	free_vm(t);
}

Test(synic, masked_polled_and_disabled)
{
	struct tvm *t = new_vm(1);
	struct hv_synic *s = setup(t, 0, SINT_POLLING);
	/* Polling: the message lands, no interrupt. */
	cr_assert_eq(post(t, s, 2, 1, 0), 0);
	cr_assert_eq(slot_type(t, 2), 1);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	/* Masked: refused; unmasking a SINT with a message in its slot
	 * interrupts. */
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0 + 2, 0x50 | SINT_MASKED), 0);
	cr_assert_eq(post(t, s, 2, 2, 0), -ENODEV);
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0 + 2, 0x50), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	apic_w(t, APIC_EOI, 0);
	/* SynIC off: nothing. */
	cr_assert_eq(wr(t, 0, HV_MSR_SCONTROL, 0), 0);
	guest_free_slot(t, 2);
	cr_assert_eq(post(t, s, 2, 3, 0), -ENODEV);
	cr_assert_eq(slot_type(t, 2), 0);
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(hv_synic_post(s, 16, 1, 0, NULL, 0), -EINVAL);
	cr_assert_eq(hv_synic_post(s, 1, 0, 0, NULL, 0), -EINVAL, "type None is no message");
	cr_assert_eq(hv_synic_post(s, 1, 1, 0, NULL, 241), -EINVAL);
	pthread_mutex_unlock(&t->vm.dev_lock);
	free_vm(t);
}

Test(synic, event_flags_interrupt_once_per_flag)
{
	struct tvm *t = new_vm(2);
	struct hv_synic *s = setup(t, 1, 0);
	take_events(t, 1);
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(hv_synic_signal_event(s, 2, 9), 0);
	cr_assert_eq(hv_synic_signal_event(s, 2, 9), 1, "already set: no second interrupt");
	cr_assert_eq(hv_synic_signal_event(s, 2, 2048), -EINVAL);
	pthread_mutex_unlock(&t->vm.dev_lock);
	uint8_t b;
	cr_assert_eq(gmem_read(&t->vm.mem, SIEFP_GPA + 2 * 256 + 1, &b, 1), 0);
	cr_assert_eq(b, 1u << 1, "flag 9 = byte 1 bit 1 of SINT 2's flags");
	cr_assert(take_events(t, 1) & VCPU_EVT_INTR, "the target vCPU is woken");
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), 0x50);
	cr_assert_eq(tvm_intr_ack(&t->cpu[1]), -1);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "not the other vCPU");
	free_vm(t);
}

Test(synic, selective_eoi_msr_ends_a_lower_sint_and_delivers_its_next_message)
{
	struct tvm *t = new_vm(1);
	uint32_t out[4];
	cr_assert(hv_cpuid(&t->vm, 1, VESSEL_CPUID_FEATURES, out));
	cr_assert_eq(out[0] & VESSEL_FEAT_SELECTIVE_EOI, VESSEL_FEAT_SELECTIVE_EOI, "announced");
	struct hv_synic *s = setup(t, 0, 0);
	/* SINT 2 (0x50) in service with a message waiting behind its busy
	 * slot; a higher vector (SINT 3, 0x90) nested above it. */
	cr_assert_eq(wr(t, 0, HV_MSR_SINT0 + 3, 0x90), 0);
	cr_assert_eq(post(t, s, 2, 1, 0x11), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	cr_assert_eq(post(t, s, 2, 2, 0x22), 1);
	cr_assert_eq(post(t, s, 3, 7, 0x77), 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x90);
	cr_assert_eq(apic_r(t, 0xa0), 0x90, "PPR");
	/* The guest consumes SINT 2's message and ends it selectively. */
	guest_free_slot(t, 2);
	cr_assert_eq(wr(t, 0, VESSEL_MSR_SELECTIVE_EOI, 0x1ff), -EINVAL, "reserved bits");
	cr_assert_eq(wr(t, 0, VESSEL_MSR_SELECTIVE_EOI, 0x50), 0);
	cr_assert(!lapic_test_isr(t->cpu[0].lapic, 0x50));
	cr_assert(lapic_test_isr(t->cpu[0].lapic, 0x90));
	cr_assert_eq(apic_r(t, 0xa0), 0x90, "PPR stays with the higher vector");
	cr_assert_eq(slot_type(t, 2), 2, "the waiting message came in");
	cr_assert(lapic_test_irr(t->cpu[0].lapic, 0x50), "with its interrupt, held below 0x90");
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	apic_w(t, APIC_EOI, 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x50);
	free_vm(t);
}
