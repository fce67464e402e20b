/* A VM of two emu vCPUs for the tests of what they share (the block
 * cache, translated code): built and torn down around the caller's
 * settings of vm (jit_hot, code_cache_bytes) and guest memory. */
#ifndef VESSEL_TESTS_EMU_TWO_VCPUS_H
#define VESSEL_TESTS_EMU_TWO_VCPUS_H

#include <criterion/criterion.h>

#include "cpu/engines.h"
#include "machine/accel.h"
#include "machine/machine.h"

#include <pthread.h>
#include <string.h>

/* vm's memory and buses, with code_cache_bytes, jit_hot. */
static inline void two_vcpus_vm(struct vm *vm, struct vcpu vcpus[2], uint64_t ram, uint64_t cache_bytes,
				unsigned jit_hot)
{
	memset(vm, 0, sizeof(*vm));
	memset(vcpus, 0, 2 * sizeof(*vcpus));
	vm->accel = &accel_emu;
	vm->code_cache_bytes = cache_bytes;
	vm->jit_hot = jit_hot;
	cr_assert_eq(gmem_init(&vm->mem, ram), 0);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->dev_lock, NULL);
}

/* The engine's VM and its two vCPUs, once guest memory is in place. */
static inline void two_vcpus_init(struct vm *vm, struct vcpu vcpus[2])
{
	cr_assert_eq(accel_emu.vm_init(vm), 0);
	for (unsigned i = 0; i < 2; i++) {
		struct vcpu *v = &vcpus[i];
		v->vm = vm;
		v->id = i;
		v->run_state = VCPU_RUNNABLE;
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, NULL);
		vm->vcpus[i] = v;
		cr_assert_eq(accel_emu.vcpu_init(v), 0);
	}
	vm->n_vcpus = 2;
}

static inline void two_vcpus_destroy(struct vm *vm, struct vcpu vcpus[2])
{
	for (unsigned i = 0; i < 2; i++)
		accel_emu.vcpu_destroy(&vcpus[i]);
	accel_emu.vm_destroy(vm);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	gmem_destroy(&vm->mem);
}

#endif
