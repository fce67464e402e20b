/* Runs the bare-metal guests of tests/guests on the emu engine: a VM with
 * guest RAM, the port bus with a debug console (0xe9, captures the text)
 * and an exit port (0xf4), and one vCPU started at F000:FFF0 with the
 * image in the BIOS window at 0xF0000.  Each guest prints PASS/FAIL lines
 * and writes its failure count to the exit port. */
#include "../jit_env.h"
#include <criterion/criterion.h>

#include "machine/accel.h"
#include "cpu/engines.h"
#include "cpu/emu/emu.h"
#include "cpu/lookahead.h"
#include "machine/machine.h"

#include <errno.h>
#include <setjmp.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE (32ull << 20)
#define IMAGE_GPA 0xf0000ull
#define IMAGE_SIZE 0x10000u
#define WATCHDOG_SECONDS 60

struct guest_run {
	char out[16384];
	size_t out_len;
	int exit_value;      /* -1 until the exit port is written */
	_Atomic bool done;
	_Atomic bool watchdog_fired;
	struct vcpu *vcpu;
	const struct accel_ops *accel;
};

static uint64_t con_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	return 0xe9;   /* Bochs/QEMU debug console signature */
}

static void con_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct guest_run *r = opaque;
	if (r->out_len + 1 < sizeof(r->out))
		r->out[r->out_len++] = (char)val;
	r->out[r->out_len] = 0;
}

static const struct bus_ops con_ops = { .read = con_read, .write = con_write };

static uint64_t exit_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	return ~0ull;
}

static void exit_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct guest_run *r = opaque;
	r->exit_value = (int)(val & 0xff);
	atomic_store(&r->done, true);
}

static const struct bus_ops exit_ops = { .read = exit_read, .write = exit_write };

/* A guest stuck in a loop never returns from vcpu_run: kick it out. */
static void *watchdog(void *arg)
{
	struct guest_run *r = arg;
	for (int i = 0; i < WATCHDOG_SECONDS * 10 && !atomic_load(&r->done); i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (!atomic_load(&r->done)) {
		atomic_store(&r->watchdog_fired, true);
		atomic_store(&r->done, true);
		/* The emu engine polls vcpu->events: the kick is the event. */
		atomic_fetch_or(&r->vcpu->events, VCPU_EVT_KICK);
		if (r->accel->vcpu_kick)
			r->accel->vcpu_kick(r->vcpu);
	}
	return NULL;
}

static bool load_image(const char *name, uint8_t *buf)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = 0;
	/* build/tests/unit/unit-emu_system -> build/tests/guests/NAME.bin */
	snprintf(path, sizeof(path), "%s/../guests/%s.bin", exe, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	size_t got = fread(buf, 1, IMAGE_SIZE, f);
	fclose(f);
	return got == IMAGE_SIZE;
}

/* Reference run loop for when accel_emu has none: fetch through the soft
 * MMU, decode, run the handler, deliver faults.  No blocks, no interrupts. */
static void reference_loop(struct emu_cpu *cpu, struct guest_run *r, struct vcpu_exit *exit)
{
	jmp_buf env;
	cpu->fault_env = &env;
	cpu->exit = exit;
	volatile uint64_t budget = 50u * 1000 * 1000;
	if (setjmp(env)) {
		emu_deliver_pending_exception(cpu);
		if (cpu->stop_block)
			return;
	}
	while (!atomic_load(&r->done) && budget-- > 0) {
		uint64_t lin = cpu->seg[SEG_CS].base + cpu->rip;
		if (cpu->mode != EMU_MODE_LONG64)
			lin = (uint32_t)lin;
		uint8_t bytes[16];
		unsigned avail = 0;
		while (avail < 15) {
			uint64_t gpa = emu_translate_fetch(cpu, lin + avail);
			unsigned chunk = 4096 - ((lin + avail) & 0xfff);
			if (chunk > 15 - avail)
				chunk = 15 - avail;
			if (gmem_read(cpu->mem, gpa, bytes + avail, chunk) < 0)
				break;
			avail += chunk;
		}
		struct emu_insn in;
		emu_decode(cpu, bytes, avail, &in);
		cpu->next_rip = cpu->rip + in.len;
		if (cpu->mode != EMU_MODE_LONG64)
			cpu->next_rip &= (cpu->seg[SEG_CS].attr & 0x400) ? 0xffffffffull : 0xffffull;
		cpu->intr_shadow = false;
		in.fn(cpu, &in);
		cpu->rip = cpu->next_rip;
		if (cpu->stop_block) {
			cpu->stop_block = false;
			if (cpu->halted || exit->reason == VCPU_EXIT_SHUTDOWN)
				return;
		}
	}
}

static void run_reference(const char *name, struct guest_run *r, struct vm *vm, struct vcpu *vcpu,
			  struct vcpu_exit *exit)
{
	struct emu_vm *evm = calloc(1, sizeof(*evm));
	evm->mem = &vm->mem;
	evm->n_pages = RAM_SIZE >> 12;
	evm->code_page = calloc(evm->n_pages, 1);
	evm->page_gen = calloc(evm->n_pages, sizeof(uint32_t));
	cr_assert_eq(emu_sys_vm_init(evm), 0);
	struct emu_cpu *cpu = aligned_alloc(64, (sizeof(*cpu) + 63) & ~(size_t)63);
	memset(cpu, 0, sizeof(*cpu));
	cpu->mem = &vm->mem;
	cpu->evm = evm;
	cpu->vcpu = vcpu;
	emu_cpu_reset(cpu, true);
	cpu->seg[SEG_CS].base = IMAGE_GPA;
	reference_loop(cpu, r, exit);
	free(cpu);
	emu_sys_vm_destroy(evm);
	free((void *)evm->code_page);
	free((void *)evm->page_gen);
	free(evm);
	(void)name;
}

/* With lookahead: the guest runs as the KVM engine runs it (one block
 * per vcpu_run, so that the monitor gets control after each trapping
 * instruction, tests/unit/hw/lookahead_sim.h), and after each trap the
 * trap lookahead (docs/compounding.md) runs what follows; the guest's
 * checks must pass as they do without it. */
static void run_slice_with_lookahead(struct vcpu *vcpu, struct lookahead *la, struct vcpu_exit *exit, int *rc,
				     uint64_t *saved)
{
	struct emu_cpu *cpu = vcpu->accel;
	uint64_t t0 = vcpu->exit_counts[VCPU_EXIT_IO] + vcpu->exit_counts[VCPU_EXIT_MMIO];
	cpu->icount_stop = cpu->icount + 1;
	*rc = accel_emu.vcpu_run(vcpu, exit);
	if (*rc < 0)
		return;
	if (exit->reason == VCPU_EXIT_KICK && !(atomic_load(&vcpu->events) & VCPU_EVT_KICK))
		exit->reason = VCPU_EXIT_NONE;   /* the budget, not the watchdog */
	if (exit->reason != VCPU_EXIT_NONE || vcpu->exit_counts[VCPU_EXIT_IO] + vcpu->exit_counts[VCPU_EXIT_MMIO] == t0)
		return;
	struct x86_regs r;
	struct x86_sregs s;
	struct lookahead_result res;
	accel_emu.get_regs(vcpu, &r);
	accel_emu.get_sregs(vcpu, &s);
	cr_assert_eq(lookahead_run(la, &r, &s, cpu->dr[7], NULL, &res), 0);
	*saved += res.traps;
	if (res.insns || res.stop == LOOKAHEAD_STOP_FAULT)
		accel_emu.set_regs(vcpu, &r);
}

static void run_guest_as(const char *name, bool lookahead)
{
	const struct accel_ops *accel = &accel_emu;
	bool engine = accel->vcpu_init && accel->vcpu_run && accel->get_sregs && accel->set_sregs;

	static uint8_t image[IMAGE_SIZE];
	cr_assert(load_image(name, image), "guest image %s.bin not found next to the test", name);

	static struct vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.accel = accel;
	vm.jit_hot = test_jit_hot();
	cr_assert_eq(gmem_init(&vm.mem, RAM_SIZE), 0);
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	pthread_mutex_init(&vm.dev_lock, NULL);
	cr_assert_eq(gmem_write(&vm.mem, IMAGE_GPA, image, IMAGE_SIZE), 0);

	static struct guest_run r;
	memset(&r, 0, sizeof(r));
	r.exit_value = -1;
	r.accel = accel;
	cr_assert_eq(bus_register(&vm.pio, 0xe9, 1, &con_ops, &r, "debugcon"), 0);
	cr_assert_eq(bus_register(&vm.pio, 0xf4, 4, &exit_ops, &r, "debug-exit"), 0);

	static struct vcpu vcpu;
	memset(&vcpu, 0, sizeof(vcpu));
	vcpu.vm = &vm;
	vcpu.id = 0;
	vcpu.run_state = VCPU_RUNNABLE;
	pthread_mutex_init(&vcpu.lock, NULL);
	pthread_cond_init(&vcpu.wake, NULL);
	vm.vcpus[0] = &vcpu;
	vm.n_vcpus = 1;
	r.vcpu = &vcpu;
	struct vcpu_exit exit;
	memset(&exit, 0, sizeof(exit));
	if (!engine) {
		run_reference(name, &r, &vm, &vcpu, &exit);
		goto check;
	}
	if (accel->vm_init)
		cr_assert_eq(accel->vm_init(&vm), 0, "vm_init failed");
	cr_assert_eq(accel->vcpu_init(&vcpu), 0, "vcpu_init failed");

	/* Power-on state, but with CS based at the BIOS window's low alias:
	 * the image lives in RAM at 0xF0000 rather than at 4 GiB - 64 KiB. */
	struct x86_sregs sregs;
	cr_assert_eq(accel->get_sregs(&vcpu, &sregs), 0);
	sregs.seg[SEG_CS].base = IMAGE_GPA;
	sregs.seg[SEG_CS].selector = 0xf000;
	cr_assert_eq(accel->set_sregs(&vcpu, &sregs), 0);
	struct x86_regs regs;
	cr_assert_eq(accel->get_regs(&vcpu, &regs), 0);
	regs.rip = 0xfff0;
	cr_assert_eq(accel->set_regs(&vcpu, &regs), 0);

	struct lookahead *la = lookahead ? lookahead_new(&vcpu) : NULL;
	uint64_t saved = 0;
	pthread_t wd;
	pthread_create(&wd, NULL, watchdog, &r);
	while (!atomic_load(&r.done)) {
		memset(&exit, 0, sizeof(exit));
		int rc;
		if (la)
			run_slice_with_lookahead(&vcpu, la, &exit, &rc, &saved);
		else
			rc = accel->vcpu_run(&vcpu, &exit);
		if (rc < 0 || exit.reason == VCPU_EXIT_SHUTDOWN || exit.reason == VCPU_EXIT_INTERNAL_ERROR)
			break;
		if (exit.reason == VCPU_EXIT_HLT && !atomic_load(&r.done))
			break;   /* halted without reporting: a failure below */
	}
	atomic_store(&r.done, true);
	pthread_join(wd, NULL);
	if (atomic_load(&r.watchdog_fired)) {
		/* Where it was stuck, for the failure message below. */
		struct x86_regs stuck;
		if (accel->get_regs(&vcpu, &stuck) == 0)
			cr_log_error("%s: stuck at RIP %#llx, RFLAGS %#llx", name, (unsigned long long)stuck.rip,
				     (unsigned long long)stuck.rflags);
	}
	if (la) {
		cr_log_info("%s: %llu device accesses run by the lookahead", name, (unsigned long long)saved);
		cr_expect_gt(saved, 0, "%s: the lookahead ran none of the guest's port output", name);
		lookahead_free(la);
	}
	if (accel->vcpu_destroy)
		accel->vcpu_destroy(&vcpu);
	if (accel->vm_destroy)
		accel->vm_destroy(&vm);

check:
	cr_log_info("%s output:\n%s", name, r.out);
	cr_expect(!atomic_load(&r.watchdog_fired), "%s: still running after %d s", name, WATCHDOG_SECONDS);
	cr_expect_neq(exit.reason, VCPU_EXIT_SHUTDOWN, "%s: triple fault: %s", name, exit.error.message);
	cr_expect_neq(exit.reason, VCPU_EXIT_INTERNAL_ERROR, "%s: internal error: %s", name, exit.error.message);
	cr_expect(strstr(r.out, "PASS ") != NULL, "%s reported no PASS line", name);
	cr_expect(strstr(r.out, "FAIL ") == NULL, "%s reported failures:\n%s", name, r.out);
	cr_expect_eq(r.exit_value, 0, "%s exit value %d", name, r.exit_value);
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	gmem_destroy(&vm.mem);
}

static void run_guest(const char *name)
{
	run_guest_as(name, false);
}

/* The same guests with the trap lookahead driving their device accesses
 * (docs/compounding.md "Lookahead"). */
static void run_guest_lookahead(const char *name)
{
	run_guest_as(name, true);
}

Test(emu_guests_lookahead, mode_transitions) { run_guest_lookahead("modes"); }
Test(emu_guests_lookahead, exceptions_and_error_codes) { run_guest_lookahead("except"); }
Test(emu_guests_lookahead, paging_permission_matrix) { run_guest_lookahead("paging"); }
Test(emu_guests_lookahead, task_switch) { run_guest_lookahead("task"); }
Test(emu_guests_lookahead, virtual_8086_mode) { run_guest_lookahead("v86"); }
Test(emu_guests_lookahead, call_gates_and_sysenter) { run_guest_lookahead("gates"); }
Test(emu_guests_lookahead, single_step) { run_guest_lookahead("debug"); }
Test(emu_guests_lookahead, long_mode_system) { run_guest_lookahead("sys64"); }

Test(emu_guests, mode_transitions) { run_guest("modes"); }
Test(emu_guests, exceptions_and_error_codes) { run_guest("except"); }
Test(emu_guests, paging_permission_matrix) { run_guest("paging"); }
Test(emu_guests, task_switch) { run_guest("task"); }
Test(emu_guests, virtual_8086_mode) { run_guest("v86"); }
Test(emu_guests, call_gates_and_sysenter) { run_guest("gates"); }
Test(emu_guests, single_step) { run_guest("debug"); }
Test(emu_guests, long_mode_system) { run_guest("sys64"); }
