/* Host safety of the emu engine (docs/architecture.md "Host safety"): random bytes
 * run as code in real, 32-bit protected and 64-bit mode, with random
 * registers, must end in guest-visible exceptions, a shutdown or an
 * internal-error exit -- never a host crash, hang or out-of-bounds access
 * (this test runs under ASan+UBSan in `make unit-asan`).  Runs are bounded
 * by a watchdog thread that kicks the vCPU.  The emu_budget tests check the
 * engine's own bound, the run budget the fuzz target relies on. */
#include "../jit_env.h"
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/accel.h"
#include "cpu/engines.h"
#include "cpu/emu/emu.h"
#include "machine/machine.h"

#define RAM (4u << 20)
#define CODE 0x1000u
#define PML4 0x200000u
#define SEEDS 450

struct random_vm {
	struct vm vm;
	struct vcpu vcpu;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed printed on failure. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static struct x86_segment flat(uint8_t type, bool code64, bool db)
{
	return (struct x86_segment){ .base = 0, .limit = 0xffffffff, .type = type, .s = 1, .present = 1,
				     .l = code64, .db = db, .g = 1 };
}

static void set_mode(struct random_vm *r, unsigned mode)
{
	const struct accel_ops *a = &accel_emu;
	cr_assert_eq(vcpu_reset_state(&r->vcpu), 0);
	struct x86_sregs s;
	cr_assert_eq(a->get_sregs(&r->vcpu, &s), 0);
	if (mode == 0) {
		for (int i = 0; i < SEG_COUNT; i++) {
			s.seg[i].base = 0;
			s.seg[i].selector = 0;
		}
	} else {
		for (int i = 0; i < SEG_COUNT; i++)
			s.seg[i] = flat(3, false, true);
		s.seg[SEG_CS] = flat(11, mode == 2, mode != 2);
		s.seg[SEG_CS].selector = 8;
		s.tr = (struct x86_segment){ .limit = 0x67, .type = 11, .present = 1 };
		s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE;
		if (mode == 2) {
			s.cr0 |= X86_CR0_PG;
			s.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
			s.cr3 = PML4;
			s.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE | X86_EFER_SCE;
		}
	}
	cr_assert_eq(a->set_sregs(&r->vcpu, &s), 0);
	struct x86_regs regs = { .rip = CODE, .rflags = X86_FLAG_FIXED | (rnd() & (X86_FLAGS_ARITH | X86_FLAG_DF)) };
	for (int i = 0; i < 16; i++)
		regs.gpr[i] = (rnd() & 1) ? rnd() : (rnd() & (RAM - 1));
	cr_assert_eq(a->set_regs(&r->vcpu, &regs), 0);
}

/* Identity map of the first GiB in 2 MiB pages for 64-bit mode; most of
 * it is not RAM, so random accesses also reach unclaimed MMIO. */
static void build_page_tables(struct guest_memory *mem)
{
	uint64_t *pml4 = gmem_ptr(mem, PML4, 4096), *pdpt = gmem_ptr(mem, PML4 + 0x1000, 4096),
		 *pd = gmem_ptr(mem, PML4 + 0x2000, 4096);
	memset(pml4, 0, 3 * 4096);
	pml4[0] = (PML4 + 0x1000) | 3;
	pdpt[0] = (PML4 + 0x2000) | 3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83;
}

struct watchdog {
	struct vcpu *vcpu;
	_Atomic bool done;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	while (!atomic_load(&w->done)) {
		nanosleep(&ts, NULL);
		vcpu_signal(w->vcpu, VCPU_EVT_KICK);
	}
	return NULL;
}

static struct random_vm *random_vm_new(void)
{
	struct random_vm *r = calloc(1, sizeof(*r));
	cr_assert_eq(gmem_init(&r->vm.mem, RAM), 0);
	bus_init(&r->vm.pio, "pio");
	bus_init(&r->vm.mmio, "mmio");
	pthread_mutex_init(&r->vm.dev_lock, NULL);
	r->vm.accel = &accel_emu;
	r->vm.jit_hot = test_jit_hot();
	r->vcpu.vm = &r->vm;
	pthread_mutex_init(&r->vcpu.lock, NULL);
	pthread_cond_init(&r->vcpu.wake, NULL);
	r->vm.vcpus[0] = &r->vcpu;
	r->vm.n_vcpus = 1;
	cr_assert_eq(accel_emu.vm_init(&r->vm), 0);
	cr_assert_eq(accel_emu.vcpu_init(&r->vcpu), 0);
	return r;
}

static void random_vm_free(struct random_vm *r)
{
	accel_emu.vcpu_destroy(&r->vcpu);
	accel_emu.vm_destroy(&r->vm);
	bus_destroy(&r->vm.pio);
	bus_destroy(&r->vm.mmio);
	gmem_destroy(&r->vm.mem);
	free(r);
}

Test(emu_random, random_code_never_hurts_the_host, .timeout = 300)
{
	struct random_vm *r = random_vm_new();
	unsigned counts[VCPU_EXIT_REASON_COUNT] = { 0 };
	for (unsigned seed = 1; seed <= SEEDS; seed++) {
		unsigned mode = seed % 3;
		rng_state = 0x9e3779b97f4a7c15ull * seed;
		uint8_t *ram = gmem_ptr(&r->vm.mem, 0, RAM);
		for (unsigned i = 0; i < 0x20000; i += 8) {
			uint64_t v = rnd();
			memcpy(ram + i, &v, 8);
		}
		/* HLT is one byte in 256 of random code: make it rarer so that
		 * runs go on long enough to reach the interesting paths. */
		for (unsigned i = 0; i < 0x20000; i++)
			if (ram[i] == 0xf4 && (rnd() & 15))
				ram[i] = 0x90;
		build_page_tables(&r->vm.mem);
		set_mode(r, mode);
		atomic_store(&r->vcpu.events, 0);

		struct watchdog w = { .vcpu = &r->vcpu };
		pthread_t t;
		pthread_create(&t, NULL, watchdog_main, &w);
		for (int round = 0; round < 4; round++) {
			struct vcpu_exit exit = { 0 };
			int rc = accel_emu.vcpu_run(&r->vcpu, &exit);
			cr_assert_geq(rc, 0, "seed %u mode %u: vcpu_run failed", seed, mode);
			cr_assert_lt((unsigned)exit.reason, VCPU_EXIT_REASON_COUNT);
			counts[exit.reason]++;
			atomic_fetch_and(&r->vcpu.events, ~VCPU_EVT_KICK);
			if (exit.reason != VCPU_EXIT_KICK)
				break;
		}
		atomic_store(&w.done, true);
		pthread_join(t, NULL);
	}
	cr_log_info("random code: %u kicks, %u halts, %u shutdowns, %u internal errors over %u seeds",
		    counts[VCPU_EXIT_KICK], counts[VCPU_EXIT_HLT], counts[VCPU_EXIT_SHUTDOWN],
		    counts[VCPU_EXIT_INTERNAL_ERROR], SEEDS);
	/* The guests did something: not every run can have stopped at once. */
	cr_assert_gt(counts[VCPU_EXIT_KICK] + counts[VCPU_EXIT_HLT] + counts[VCPU_EXIT_SHUTDOWN], 0);
	random_vm_free(r);
}

/* ---- the run budget (emu.h icount_stop): loops end at it ---- */

static struct random_vm *budget_vm(unsigned mode, const uint8_t *code, size_t len, struct emu_cpu **cpu)
{
	struct random_vm *r = random_vm_new();
	build_page_tables(&r->vm.mem);
	set_mode(r, mode);
	cr_assert_eq(gmem_write(&r->vm.mem, CODE, code, len), 0);
	*cpu = r->vcpu.accel;
	(*cpu)->icount_stop = (*cpu)->icount + 1000;
	return r;
}

static void set_gpr(struct random_vm *r, unsigned reg, uint64_t v)
{
	struct x86_regs regs;
	cr_assert_eq(accel_emu.get_regs(&r->vcpu, &regs), 0);
	regs.gpr[reg] = v;
	regs.rflags &= ~(uint64_t)X86_FLAG_DF;
	cr_assert_eq(accel_emu.set_regs(&r->vcpu, &regs), 0);
}

Test(emu_budget, a_jump_to_itself_stops_at_the_budget, .timeout = 60)
{
	static const uint8_t jmp_self[] = { 0xeb, 0xfe };
	struct emu_cpu *cpu;
	struct random_vm *r = budget_vm(1, jmp_self, sizeof(jmp_self), &cpu);
	struct vcpu_exit exit = { 0 };
	cr_assert_eq(accel_emu.vcpu_run(&r->vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_KICK);
	cr_assert_geq(cpu->icount, cpu->icount_stop);
	cr_assert_eq(cpu->rip, CODE);
	random_vm_free(r);
}

Test(emu_budget, a_long_rep_counts_its_iterations, .timeout = 60)
{
	/* rep stosb over 4 GiB - 1 bytes from an address outside RAM: each
	 * element is an MMIO write, and one instruction. */
	static const uint8_t rep_stos[] = { 0xf3, 0xaa, 0xf4 };
	struct emu_cpu *cpu;
	struct random_vm *r = budget_vm(1, rep_stos, sizeof(rep_stos), &cpu);
	set_gpr(r, RCX, 0xffffffff);
	set_gpr(r, RDI, 0x40000000);
	struct vcpu_exit exit = { 0 };
	cr_assert_eq(accel_emu.vcpu_run(&r->vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_KICK);
	/* Stopped at the REP, part way (it resumes from RCX and RDI). */
	cr_assert_eq(cpu->rip, CODE);
	cr_assert_neq(cpu->gpr[RCX], 0);
	cr_assert_eq(0xffffffff - cpu->gpr[RCX], cpu->gpr[RDI] - 0x40000000);
	random_vm_free(r);
}

Test(emu_budget, a_fault_loop_stops_at_the_budget, .timeout = 60)
{
	/* Every IDT gate leads to a canonical address no page maps: each #PF
	 * delivery faults at the handler's first fetch, retiring nothing. */
	static const uint8_t ud2[] = { 0x0f, 0x0b };
	struct emu_cpu *cpu;
	struct random_vm *r = budget_vm(2, ud2, sizeof(ud2), &cpu);
	const uint64_t idt = 0x300000, handler = 0x7f0000000000ull;
	for (unsigned v = 0; v < 32; v++) {
		uint64_t lo = (handler & 0xffff) | 8ull << 16 | 0x8eull << 40 | ((handler >> 16) & 0xffff) << 48;
		uint64_t hi = handler >> 32;
		cr_assert_eq(gmem_write(&r->vm.mem, idt + v * 16, &lo, 8), 0);
		cr_assert_eq(gmem_write(&r->vm.mem, idt + v * 16 + 8, &hi, 8), 0);
	}
	/* GDT entry 1: the 64-bit code segment the gates name. */
	const uint64_t gdt = idt + 0x1000, code64 = 0x00af9b000000ffffull;
	cr_assert_eq(gmem_write(&r->vm.mem, gdt + 8, &code64, 8), 0);
	struct x86_sregs s;
	cr_assert_eq(accel_emu.get_sregs(&r->vcpu, &s), 0);
	s.gdt = (struct x86_dtable){ gdt, 15 };
	s.idt = (struct x86_dtable){ idt, 32 * 16 - 1 };
	cr_assert_eq(accel_emu.set_sregs(&r->vcpu, &s), 0);
	set_gpr(r, RSP, RAM);
	struct vcpu_exit exit = { 0 };
	cr_assert_eq(accel_emu.vcpu_run(&r->vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_KICK, "exit %d: %s", exit.reason, exit.error.message);
	cr_assert_eq(cpu->rip, handler);
	cr_assert_eq(cpu->cr2, handler);
	random_vm_free(r);
}
