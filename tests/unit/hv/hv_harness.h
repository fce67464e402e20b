/* The hv unit tests' machine: the PC platform of tests/unit/hw/harness.h
 * with the Hyper-V interface and every LAPIC software-enabled, and the
 * SynIC message page where the tests put it. */
#ifndef VESSEL_TESTS_HV_HARNESS_H
#define VESSEL_TESTS_HV_HARNESS_H

#include "../hw/harness.h"

#include "hv/hyperv.h"

#define HVT_TSC_HZ 2000000000ull
#define HVT_APIC_SVR 0xf0
#define SIMP_GPA 0x100000ull

static inline struct tvm *hvt_vm_new(unsigned ncpus, uint32_t features)
{
	struct tvm *t = tvm_new(ncpus);
	cr_assert_eq(hv_vm_create(&t->vm, features, HVT_TSC_HZ, 25000000ull), 0);
	for (unsigned i = 0; i < ncpus; i++) {
		t->cur = &t->cpu[i];
		apic_w(t, HVT_APIC_SVR, 0x1ff);
	}
	t->cur = &t->cpu[0];
	return t;
}

static inline void hvt_vm_free(struct tvm *t)
{
	hv_vm_destroy(&t->vm);
	tvm_free(t);
}

/* n bytes (at most 8) at off in SINT sint's message slot. */
static inline uint64_t hvt_slot(struct tvm *t, unsigned sint, unsigned off, unsigned n)
{
	uint64_t v = 0;
	cr_assert_eq(gmem_read(&t->vm.mem, SIMP_GPA + sint * 256 + off, &v, n), 0);
	return v;
}

/* The guest frees the slot, as Linux's vmbus_signal_eom() does. */
static inline void hvt_free_slot(struct tvm *t, unsigned sint)
{
	uint32_t none = 0;
	cr_assert_eq(gmem_write(&t->vm.mem, SIMP_GPA + sint * 256, &none, 4), 0);
}

#endif
