/* The platform side of fuzz_emu: a machine without devices.  The engine
 * dispatches port I/O, MMIO, MSRs and hypercalls here; reads of nothing
 * float high (all ones), writes are dropped, MSRs no one models make the
 * engine raise #GP, hypercalls fail.  The fuzzed vCPU has no LAPIC: the
 * route to it answers -ENOENT and the engine models the registers itself
 * (the TSC aside: below). */
#include "cpu/emu/state.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

void vcpu_dispatch_exit(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	(void)vcpu;
	switch (exit->reason) {
	case VCPU_EXIT_IO:
		if (!exit->io.is_write)
			exit->io.data = 0xffffffffu;
		break;
	case VCPU_EXIT_MMIO:
		if (!exit->mmio.is_write)
			exit->mmio.data = ~0ull;
		break;
	case VCPU_EXIT_MSR:
		exit->msr.handled = false;
		break;
	case VCPU_EXIT_HYPERCALL:
		exit->hypercall.result = 2;   /* HV_STATUS_INVALID_HYPERCALL_CODE (TLFS 3.8) */
		break;
	default:
		break;
	}
}

/* The route to the LAPIC (machine/accel.h), which src/machine/vcpu.c
 * implements beside the vcpu_dispatch_exit() this file replaces: this
 * machine has no LAPIC. */
int vcpu_apic_msr(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val)
{
	(void)vcpu, (void)index, (void)is_write, (void)val;
	return -ENOENT;
}

int vcpu_apic_get_cr8(struct vcpu *vcpu, uint64_t *cr8)
{
	(void)vcpu, (void)cr8;
	return -ENOENT;
}

int vcpu_apic_set_cr8(struct vcpu *vcpu, uint64_t cr8)
{
	(void)vcpu, (void)cr8;
	return -ENOENT;
}

int vcpu_apic_set_tsc_deadline(struct vcpu *vcpu, uint64_t deadline, uint64_t tsc_now)
{
	(void)vcpu, (void)deadline, (void)tsc_now;
	return -ENOENT;
}

/* RDTSC counts retired instructions here, not host time: an input then
 * reads the same TSC on every run, so that fuzz_emu_jit.c can compare
 * the interpreter with translated code on it (both count a block's
 * instructions when it starts). */
int vcpu_apic_read_tsc(struct vcpu *vcpu, uint64_t *tsc)
{
	*tsc = ((struct emu_cpu *)vcpu->accel)->icount;
	return 0;
}

/* A remote TLB flush request (src/machine/vcpu.c): the one fuzzed vCPU
 * has no peers to ask it, but serves one as the machine would. */
void vcpu_tlb_flush_service(struct vcpu *vcpu)
{
	atomic_fetch_and(&vcpu->events, ~VCPU_EVT_TLB_FLUSH);
	if (vcpu->vm && vcpu->vm->accel && vcpu->vm->accel->tlb_flush)
		vcpu->vm->accel->tlb_flush(vcpu, NULL, 0);
}
