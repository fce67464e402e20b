/* The platform side of fuzz_emu: a machine without devices.  The engine
 * dispatches port I/O, MMIO, MSRs and hypercalls here; reads of nothing
 * float high (all ones), writes are dropped, MSRs no one models make the
 * engine raise #GP, hypercalls fail.  The fuzzed vCPU has no LAPIC, so the
 * engine never calls the LAPIC hooks; they exist for the link only. */
#include "hw/intc/lapic.h"
#include "machine/machine.h"

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

uint64_t lapic_read_tsc(struct vm *vm)
{
	(void)vm;
	abort();
}

int lapic_msr_read(struct vcpu *vcpu, uint32_t msr, uint64_t *val)
{
	(void)vcpu, (void)msr, (void)val;
	abort();
}

int lapic_msr_write(struct vcpu *vcpu, uint32_t msr, uint64_t val)
{
	(void)vcpu, (void)msr, (void)val;
	abort();
}

uint64_t lapic_get_cr8(struct vcpu *vcpu)
{
	(void)vcpu;
	abort();
}

void lapic_set_cr8(struct vcpu *vcpu, uint64_t cr8)
{
	(void)vcpu, (void)cr8;
	abort();
}
