/* End to end on the KVM engine: a bare-metal guest (guests/timer_irq.asm)
 * takes PIT interrupts through I/O APIC pin 2, a local APIC timer
 * interrupt and HPET legacy-replacement ticks on the same pin, with the platform's timer thread on the real clock, the
 * engine's interrupt injection through vm->intr_ack, and HLT wake-ups by
 * vcpu_signal(); ACPI S5, NMIs through the ICR and serial input
 * interrupts.  Each guest runs with the trap lookahead off and on and must
 * end the same (issue 15's differential tests).  Skipped where the host
 * has no usable /dev/kvm. */
#include "machine/accel.h"
#include "cpu/engines.h"
#include "hw/chardev.h"
#include "board/pc.h"
#include "util/error.h"
#include "machine/machine.h"

#include "acpi_off.h"
#include "lookahead_guest.h"
#include "machine/compound.h"
#include "self_nmi.h"
#include "timer_irq.h"
#include "uart_echo.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fixture {
	struct vm vm;
	struct vcpu cpu;
	int out[2], in[2];
	struct chardev *console;
};

static bool fixture_init_compound(struct fixture *f, const unsigned char *image, unsigned len, unsigned compound)
{
	memset(f, 0, sizeof(*f));
	f->vm.compound = compound;
	cr_assert_eq(gmem_init(&f->vm.mem, 2ull << 20), 0);
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	pthread_mutex_init(&f->vm.dev_lock, NULL);
	f->vm.accel = &accel_kvm;
	f->cpu.vm = &f->vm;
	pthread_mutex_init(&f->cpu.lock, NULL);
	pthread_cond_init(&f->cpu.wake, NULL);
	f->cpu.thread = pthread_self();
	f->vm.vcpus[0] = &f->cpu;
	f->vm.n_vcpus = 1;
	if (accel_kvm.vm_init(&f->vm) < 0 || accel_kvm.vcpu_init(&f->cpu) < 0)
		return false;
	cr_assert_eq(pipe(f->out), 0);
	cr_assert_eq(pipe(f->in), 0);
	f->console = chardev_fd_new(f->in[0], f->out[1]);
	struct platform_options opts = { .console = f->console };
	cr_assert_eq(platform_create_opts(&f->vm, &opts), 0, "%s", err_msg());
	memcpy(gmem_ptr(&f->vm.mem, 0x1000, len), image, len);
	struct x86_sregs s;
	cr_assert_eq(accel_kvm.get_sregs(&f->cpu, &s), 0);
	for (int i = 0; i < SEG_COUNT; i++) {
		s.seg[i].selector = 0;
		s.seg[i].base = 0;
	}
	cr_assert_eq(accel_kvm.set_sregs(&f->cpu, &s), 0);
	struct x86_regs r = { .rip = 0x1000, .rflags = X86_FLAG_FIXED };
	r.gpr[RSP] = 0x8000;
	cr_assert_eq(accel_kvm.set_regs(&f->cpu, &r), 0);
	return true;
}

static void fixture_fini(struct fixture *f)
{
	platform_destroy(&f->vm);
	chardev_free(f->console);
	close(f->out[0]);
	close(f->out[1]);
	close(f->in[0]);
	close(f->in[1]);
	accel_kvm.vcpu_destroy(&f->cpu);
	accel_kvm.vm_destroy(&f->vm);
	bus_destroy(&f->vm.pio);
	bus_destroy(&f->vm.mmio);
	gmem_destroy(&f->vm.mem);
}

/* What the VM object's vCPU loop does, bounded by a deadline: run, sleep
 * in HLT until an interrupt is signalled, stop when the VM stops. */
static void run_until_stop(struct fixture *f, int seconds)
{
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += seconds;
	while (atomic_load(&f->vm.stop_reason) == VM_STOP_NONE) {
		struct vcpu_exit exit = { 0 };
		cr_assert_eq(accel_kvm.vcpu_run(&f->cpu, &exit), 0, "%s", err_msg());
		if (exit.reason == VCPU_EXIT_KICK) {
			atomic_fetch_and(&f->cpu.events, ~VCPU_EVT_KICK);
		} else if (exit.reason == VCPU_EXIT_HLT) {
			pthread_mutex_lock(&f->cpu.lock);
			int rc = 0;
			while (!(atomic_load(&f->cpu.events) & VCPU_EVT_INTR) &&
			       atomic_load(&f->vm.stop_reason) == VM_STOP_NONE && rc != ETIMEDOUT)
				rc = pthread_cond_timedwait(&f->cpu.wake, &f->cpu.lock, &end);
			pthread_mutex_unlock(&f->cpu.lock);
			cr_assert_neq(rc, ETIMEDOUT, "no interrupt woke the halted vCPU within %d s", seconds);
		} else {
			struct x86_regs r = { 0 };
			accel_kvm.get_regs(&f->cpu, &r);
			cr_assert_fail("unexpected exit %s at rip %#llx: %s", vcpu_exit_reason_name(exit.reason),
				       (unsigned long long)r.rip,
				       exit.reason >= VCPU_EXIT_SHUTDOWN ? exit.error.message : "");
		}
	}
}

#define NO_KVM "no usable /dev/kvm on this host: the KVM engine cannot run the guest here"

/* Each guest runs with the trap lookahead off and on (issue 15's
 * differential: compounding must not change how a guest ends). */
static const unsigned lookahead_modes[2] = { 0, COMPOUND_LOOKAHEAD };

static void timer_guest(unsigned compound)
{
	struct fixture *f = calloc(1, sizeof(*f));
	cr_assert(f);
	if (!fixture_init_compound(f, timer_irq, timer_irq_len, compound))
		cr_skip_test(NO_KVM);
	run_until_stop(f, 20);
	cr_assert_eq(atomic_load(&f->vm.stop_reason), VM_STOP_DEBUG_EXIT, "lookahead %s", compound ? "on" : "off");
	cr_assert_eq(f->vm.debug_exit_value, 0x42, "the guest saw every interrupt (lookahead %s)",
		     compound ? "on" : "off");
	char buf[8] = { 0 };
	cr_assert_eq(read(f->out[0], buf, 2), 2);
	cr_assert_str_eq(buf, "OK", "COM1 output");
	if (!compound)
		cr_assert_geq(f->cpu.exit_counts[VCPU_EXIT_MMIO], 5, "xAPIC and I/O APIC programmed by MMIO");
	fixture_fini(f);
	free(f);
}

Test(kvm_guest, pit_lapic_timer_and_hpet_interrupts)
{
	for (unsigned i = 0; i < 2; i++)
		timer_guest(lookahead_modes[i]);
}

/* ends: the stop reason and debug-exit value the guest ends with. */
static void guest_ends(const unsigned char *image, unsigned len, unsigned compound, int stop, int value)
{
	struct fixture *f = calloc(1, sizeof(*f));
	cr_assert(f);
	if (!fixture_init_compound(f, image, len, compound))
		cr_skip_test(NO_KVM);
	run_until_stop(f, 20);
	cr_assert_eq(atomic_load(&f->vm.stop_reason), stop, "stop reason %d (debug exit %d), lookahead %s",
		     atomic_load(&f->vm.stop_reason), f->vm.debug_exit_value, compound ? "on" : "off");
	if (stop == VM_STOP_DEBUG_EXIT)
		cr_assert_eq(f->vm.debug_exit_value, value, "lookahead %s", compound ? "on" : "off");
	fixture_fini(f);
	free(f);
}

Test(kvm_guest, acpi_s5_powers_off)
{
	for (unsigned i = 0; i < 2; i++)
		guest_ends(acpi_off, acpi_off_len, lookahead_modes[i], VM_STOP_POWEROFF, 0);
}

/* NMIs sent to itself through the local APIC's ICR (the emu engine's run
 * of it: tests/unit/hw/test_lookahead.c). */
Test(kvm_guest, self_nmi_through_the_icr)
{
	for (unsigned i = 0; i < 2; i++)
		guest_ends(self_nmi, sizeof(self_nmi), lookahead_modes[i], VM_STOP_DEBUG_EXIT, 0x42);
}

/* Plays the user at the terminal: waits for the guest's prompt, types. */
static void *type_after_prompt(void *arg)
{
	struct fixture *f = arg;
	char c = 0;
	while (c != '>') {
		if (read(f->out[0], &c, 1) != 1)
			return NULL;
	}
	ssize_t n = write(f->in[1], "ping", 4);
	(void)n;
	return NULL;
}

static void echo_guest(unsigned compound)
{
	struct fixture *f = calloc(1, sizeof(*f));
	cr_assert(f);
	if (!fixture_init_compound(f, uart_echo, uart_echo_len, compound))
		cr_skip_test(NO_KVM);
	pthread_t typist;
	cr_assert_eq(pthread_create(&typist, NULL, type_after_prompt, f), 0);
	run_until_stop(f, 20);
	/* If the guest stopped without its prompt the typist is still reading. */
	pthread_cancel(typist);
	pthread_join(typist, NULL);
	cr_assert_eq(atomic_load(&f->vm.stop_reason), VM_STOP_DEBUG_EXIT);
	cr_assert_eq(f->vm.debug_exit_value, 0x42);
	char buf[8] = { 0 };
	cr_assert_eq(read(f->out[0], buf, 4), 4);
	cr_assert_str_eq(buf, "ping", "echoed by the guest");
	fixture_fini(f);
	free(f);
}

Test(kvm_guest, serial_input_interrupts_and_echo)
{
	for (unsigned i = 0; i < 2; i++)
		echo_guest(lookahead_modes[i]);
}

/* The trap lookahead (docs/compounding.md "Lookahead") on the engine it is
 * for: lookahead_guest.asm with it off and on gives the same COM1 output,
 * registers and interrupt boundary, and takes at least five times fewer
 * port-I/O exits.  (Without /dev/kvm, test_lookahead.c runs the same
 * comparison on the emu engine.) */
struct kvm_outcome {
	char out[4096];
	ssize_t n;
	struct x86_regs regs;
	uint32_t irq_eip, after_ier, io_exits;
};

static bool run_lookahead_guest(unsigned compound, struct kvm_outcome *o)
{
	struct fixture *f = calloc(1, sizeof(*f));
	cr_assert(f);
	if (!fixture_init_compound(f, lookahead_guest, lookahead_guest_len, compound)) {
		free(f);
		return false;
	}
	run_until_stop(f, 60);
	cr_assert_eq(atomic_load(&f->vm.stop_reason), VM_STOP_DEBUG_EXIT);
	cr_assert_eq(f->vm.debug_exit_value, 0x42);
	accel_kvm.get_regs(&f->cpu, &o->regs);
	memcpy(&o->irq_eip, gmem_ptr(&f->vm.mem, 0x7040, 4), 4);
	memcpy(&o->after_ier, gmem_ptr(&f->vm.mem, 0x704c, 4), 4);
	o->io_exits = (uint32_t)f->cpu.exit_counts[VCPU_EXIT_IO];
	o->n = read(f->out[0], o->out, sizeof(o->out));
	fixture_fini(f);
	free(f);
	return true;
}

Test(kvm_guest, lookahead_gives_the_same_results_with_fewer_exits)
{
	struct kvm_outcome off, on;
	if (!run_lookahead_guest(0, &off))
		cr_skip_test(NO_KVM);
	cr_assert(run_lookahead_guest(COMPOUND_LOOKAHEAD, &on));
	cr_assert_eq(off.n, 2000 + 1 + 300);
	cr_assert_eq(on.n, off.n);
	cr_assert(memcmp(on.out, off.out, (size_t)off.n) == 0, "the same bytes on COM1");
	cr_assert(memcmp(on.regs.gpr, off.regs.gpr, sizeof(on.regs.gpr)) == 0, "general registers");
	cr_assert_eq(on.regs.rip, off.regs.rip);
	cr_assert_eq(off.irq_eip, off.after_ier, "interrupt after the OUT to IER (lookahead off)");
	cr_assert_eq(on.irq_eip, on.after_ier, "interrupt after the OUT to IER (lookahead on)");
	cr_assert_leq(on.io_exits * 5, off.io_exits, "port-I/O exits: %u with the lookahead, %u without",
		      on.io_exits, off.io_exits);
}
