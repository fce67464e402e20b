/* NMIs through the local APIC, end to end on each engine: the bare-metal
 * guest guests/self_nmi.asm sends itself NMIs through the ICR (by its own
 * APIC ID and by the self shorthand), inside and outside its NMI handler,
 * and checks that each is delivered, that one arriving while NMIs are
 * blocked waits for the handler's IRET, and that two arriving then
 * collapse into one (SDM vol. 3A 6.7.1, 10.6.1).  The KVM run is skipped
 * where the host has no usable /dev/kvm. */
#include "../cpu/emu/jit_env.h"
#include "cpu/engines.h"
#include "machine/accel.h"
#include "hw/chardev.h"
#include "board/pc.h"
#include "util/error.h"
#include "machine/machine.h"

#include "self_nmi.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fixture {
	struct vm vm;
	struct vcpu cpu;
	struct chardev *console;
	const struct accel_ops *accel;
};

static bool fixture_init(struct fixture *f, const struct accel_ops *accel)
{
	memset(f, 0, sizeof(*f));
	f->accel = accel;
	cr_assert_eq(gmem_init(&f->vm.mem, 2ull << 20), 0);
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	pthread_mutex_init(&f->vm.dev_lock, NULL);
	f->vm.accel = accel;
	f->vm.jit_hot = test_jit_hot();
	f->cpu.vm = &f->vm;
	pthread_mutex_init(&f->cpu.lock, NULL);
	pthread_cond_init(&f->cpu.wake, NULL);
	f->cpu.thread = pthread_self();
	f->cpu.run_state = VCPU_RUNNABLE;
	f->vm.vcpus[0] = &f->cpu;
	f->vm.n_vcpus = 1;
	if (accel->vm_init(&f->vm) < 0)
		return false;
	if (accel->vcpu_init(&f->cpu) < 0) {
		accel->vm_destroy(&f->vm);
		return false;
	}
	f->console = chardev_null_new();
	struct platform_options opts = { .console = f->console };
	cr_assert_eq(platform_create_opts(&f->vm, &opts), 0, "%s", err_msg());
	memcpy(gmem_ptr(&f->vm.mem, 0x1000, self_nmi_len), self_nmi, self_nmi_len);
	struct x86_sregs s;
	cr_assert_eq(accel->get_sregs(&f->cpu, &s), 0);
	for (int i = 0; i < SEG_COUNT; i++) {
		s.seg[i].selector = 0;
		s.seg[i].base = 0;
	}
	cr_assert_eq(accel->set_sregs(&f->cpu, &s), 0);
	struct x86_regs r = { .rip = 0x1000, .rflags = X86_FLAG_FIXED };
	r.gpr[RSP] = 0x8000;
	cr_assert_eq(accel->set_regs(&f->cpu, &r), 0);
	return true;
}

static void fixture_fini(struct fixture *f)
{
	platform_destroy(&f->vm);
	chardev_free(f->console);
	f->accel->vcpu_destroy(&f->cpu);
	f->accel->vm_destroy(&f->vm);
	bus_destroy(&f->vm.pio);
	bus_destroy(&f->vm.mmio);
	gmem_destroy(&f->vm.mem);
}

/* Runs until the guest stops the VM; a guest waiting for an NMI that never
 * comes spins in its loops, ends them and reports the failing step. */
static void run_until_stop(struct fixture *f, int seconds)
{
	time_t end = time(NULL) + seconds;
	while (atomic_load(&f->vm.stop_reason) == VM_STOP_NONE) {
		cr_assert(time(NULL) < end, "the guest did not finish within %d s", seconds);
		struct vcpu_exit exit = { 0 };
		cr_assert_eq(f->accel->vcpu_run(&f->cpu, &exit), 0, "%s", err_msg());
		if (exit.reason == VCPU_EXIT_KICK)
			atomic_fetch_and(&f->cpu.events, ~VCPU_EVT_KICK);
		else if (exit.reason != VCPU_EXIT_NONE && exit.reason != VCPU_EXIT_HLT)
			cr_assert_fail("unexpected exit %s: %s", vcpu_exit_reason_name(exit.reason),
				       exit.reason >= VCPU_EXIT_SHUTDOWN ? exit.error.message : "");
		else if (exit.reason == VCPU_EXIT_HLT)
			cr_assert_fail("the guest halted without reporting");
	}
}

static void run_self_nmi(const struct accel_ops *accel, const char *skip_why)
{
	struct fixture *f = calloc(1, sizeof(*f));
	cr_assert(f);
	if (!fixture_init(f, accel)) {
		free(f);
		cr_skip_test("%s", skip_why);
	}
	run_until_stop(f, 30);
	cr_assert_eq(atomic_load(&f->vm.stop_reason), VM_STOP_DEBUG_EXIT);
	int v = f->vm.debug_exit_value;
	fixture_fini(f);
	free(f);
	cr_assert_neq(v, 1, "the NMI sent to the vCPU's own APIC ID was not delivered");
	cr_assert_neq(v, 2, "an NMI was delivered while the NMI handler ran (NMIs blocked until IRET)");
	cr_assert_neq(v, 3, "two NMIs sent while blocked did not become exactly one after IRET");
	cr_assert_eq(v, 0x42, "debug exit value %#x", v);
}

Test(nmi_guest, self_nmi_blocking_and_collapse_emu)
{
	run_self_nmi(&accel_emu, "the emu engine could not start");
}

Test(nmi_guest, self_nmi_blocking_and_collapse_kvm)
{
	run_self_nmi(&accel_kvm, "no usable /dev/kvm on this host: the KVM engine cannot run the guest here");
}
