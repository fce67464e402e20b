/* The emu run loop's event boundaries (src/cpu/emu/core/cpu.c): an
 * external interrupt requested while EFLAGS.IF = 0 is taken only once
 * STI's shadow has passed (SDM vol. 3A 6.8.3), whether the blocks around
 * it were chained or looked up, and a shadow that ended inside a chain of
 * blocks does not hold off a later interrupt.  Real-mode code at
 * 0000:1000, the handler of vector 0x20 at 0000:2000. */
#include "../jit_env.h"
#include <criterion/criterion.h>

#include "cpu/engines.h"
#include "cpu/emu/emu.h"
#include "machine/accel.h"
#include "machine/machine.h"

#include <pthread.h>
#include <string.h>

#define RAM_SIZE (2ull << 20)
#define CODE 0x1000u
#define HANDLER 0x2000u
#define VECTOR 0x20u

static struct vm vm;
static struct vcpu vcpu;
static int acks;

/* One interrupt, vector 0x20, for the first acknowledgement. */
static int ack_once(struct vcpu *v)
{
	(void)v;
	return acks++ == 0 ? (int)VECTOR : -1;
}

static void setup(const uint8_t *code, size_t len)
{
	/* The handler stores AX, BX and CX at 0x500 and halts. */
	static const uint8_t handler[] = {
		0xa3, 0x00, 0x05,         /* mov [0x500], ax */
		0x89, 0x1e, 0x02, 0x05,   /* mov [0x502], bx */
		0x89, 0x0e, 0x04, 0x05,   /* mov [0x504], cx */
		0xf4,                     /* hlt */
	};
	memset(&vm, 0, sizeof(vm));
	memset(&vcpu, 0, sizeof(vcpu));
	acks = 0;
	vm.accel = &accel_emu;
	vm.jit_hot = test_jit_hot();
	cr_assert_eq(gmem_init(&vm.mem, RAM_SIZE), 0);
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	pthread_mutex_init(&vm.dev_lock, NULL);
	vm.intr_ack = ack_once;
	uint32_t ivt = HANDLER;   /* offset 0x2000, segment 0 */
	cr_assert_eq(gmem_write(&vm.mem, VECTOR * 4, &ivt, 4), 0);
	cr_assert_eq(gmem_write(&vm.mem, HANDLER, handler, sizeof(handler)), 0);
	cr_assert_eq(gmem_write(&vm.mem, CODE, code, len), 0);
	vcpu.vm = &vm;
	vcpu.run_state = VCPU_RUNNABLE;
	pthread_mutex_init(&vcpu.lock, NULL);
	pthread_cond_init(&vcpu.wake, NULL);
	vm.vcpus[0] = &vcpu;
	vm.n_vcpus = 1;
	cr_assert_eq(accel_emu.vm_init(&vm), 0);
	cr_assert_eq(accel_emu.vcpu_init(&vcpu), 0);
	struct x86_sregs sregs;
	cr_assert_eq(accel_emu.get_sregs(&vcpu, &sregs), 0);
	sregs.seg[SEG_CS].base = 0;
	sregs.seg[SEG_CS].selector = 0;
	cr_assert_eq(accel_emu.set_sregs(&vcpu, &sregs), 0);
	struct x86_regs regs;
	cr_assert_eq(accel_emu.get_regs(&vcpu, &regs), 0);
	regs.rip = CODE;
	regs.gpr[RSP] = 0x8000;
	cr_assert_eq(accel_emu.set_regs(&vcpu, &regs), 0);
}

static void teardown(void)
{
	accel_emu.vcpu_destroy(&vcpu);
	accel_emu.vm_destroy(&vm);
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	gmem_destroy(&vm.mem);
}

/* Runs to the next HLT; the run must not end for anything else. */
static void run_to_hlt(void)
{
	struct vcpu_exit exit;
	memset(&exit, 0, sizeof(exit));
	cr_assert_eq(accel_emu.vcpu_run(&vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_HLT, "run ended with exit reason %d", exit.reason);
}

static uint16_t word_at(uint64_t gpa)
{
	uint16_t v = 0;
	gmem_read(&vm.mem, gpa, &v, 2);
	return v;
}

/* The request is pending all along: 100 iterations of a loop (a block
 * each) with IF = 0 must not take it; after STI, exactly the one
 * shadowed instruction (INC AX) runs before the handler. */
Test(emu_runloop, interrupt_held_while_if_clear_then_after_sti_shadow)
{
	static const uint8_t code[] = {
		0xfa,               /* cli */
		0xb9, 0x64, 0x00,   /* mov cx, 100 */
		0x31, 0xc0,         /* xor ax, ax */
		0x31, 0xdb,         /* xor bx, bx */
		0x49,               /* 1: dec cx */
		0x75, 0xfd,         /* jnz 1b */
		0xfb,               /* sti */
		0x40,               /* inc ax: in STI's shadow */
		0x43,               /* inc bx: after the interrupt */
		0xf4,               /* hlt */
	};
	setup(code, sizeof(code));
	atomic_fetch_or(&vcpu.events, VCPU_EVT_INTR);
	run_to_hlt();
	cr_expect_eq(acks, 1, "interrupt acknowledged %d times", acks);
	cr_expect_eq(word_at(0x504), 0, "taken with IF = 0: CX = %u", word_at(0x504));
	cr_expect_eq(word_at(0x500), 1, "AX = %u: the shadowed instruction did not run first", word_at(0x500));
	cr_expect_eq(word_at(0x502), 0, "BX = %u: taken later than after the shadow", word_at(0x502));
	teardown();
}

/* No request at STI: the shadow ends inside the chain of blocks.  A
 * request made while the vCPU then sits in HLT wakes it. */
Test(emu_runloop, shadow_ended_in_a_chain_does_not_hold_off_a_later_interrupt)
{
	static const uint8_t code[] = {
		0xfa,               /* cli */
		0xb9, 0x07, 0x00,   /* mov cx, 7 */
		0x31, 0xc0,         /* xor ax, ax */
		0x31, 0xdb,         /* xor bx, bx */
		0xfb,               /* sti */
		0x40,               /* inc ax */
		0x43,               /* inc bx */
		0xf4,               /* hlt */
	};
	setup(code, sizeof(code));
	run_to_hlt();
	cr_expect_eq(acks, 0);
	atomic_fetch_or(&vcpu.events, VCPU_EVT_INTR);
	run_to_hlt();
	cr_expect_eq(acks, 1, "the request was not taken: interrupt acknowledged %d times", acks);
	cr_expect_eq(word_at(0x500), 1);
	cr_expect_eq(word_at(0x502), 1);
	cr_expect_eq(word_at(0x504), 7);
	teardown();
}
