/* Block exits and direct jumps between translations (src/cpu/emu/jit/
 * branch.c, docs/architecture.md "Code generation"), in 64-bit code
 * where translated blocks jump to each other without the run loop: the
 * result of hot loops of calls, returns and branches; a successor whose
 * code is written while linked, and one whose page is remapped under it
 * (INVLPG); the run budget, which must stop a chain at the same
 * instruction as the interpreter; and a kick, which must end a chained
 * endless loop.  Each program runs interpreted and, when the test runs
 * as emu_jitchain-jit (VESSEL_TEST_JIT=1), translated at every block's
 * first run as well, with the same expectations.
 *
 * Memory: identity-mapped 4 KiB pages over the first 2 MiB (page tables
 * at 0x10000), code at 0x1000, stack below 0x8000, the page at 0x40000
 * mapped to physical 0x50000. */
#include "../jit_env.h"
#include <criterion/criterion.h>

#include "cpu/engines.h"
#include "cpu/emu/emu.h"
#include "machine/accel.h"
#include "machine/machine.h"
#include "machine/x86.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define RAM_SIZE (2ull << 20)
#define CODE 0x1000u
#define PML4 0x10000u
#define PT 0x13000u
#define REMAPPED 0x40000u

static struct vm vm;
static struct vcpu vcpu;

static void put(uint64_t gpa, const void *p, size_t n)
{
	cr_assert_eq(gmem_write(&vm.mem, gpa, p, n), 0);
}

static void put64(uint64_t gpa, uint64_t v)
{
	put(gpa, &v, 8);
}

/* A VM with one vCPU in 64-bit mode at CODE, translating blocks at
 * their first run when hot. */
static void setup(const uint8_t *code, size_t len, bool hot)
{
	memset(&vm, 0, sizeof(vm));
	memset(&vcpu, 0, sizeof(vcpu));
	vm.accel = &accel_emu;
	vm.jit_hot = hot ? 1 : 0;
	cr_assert_eq(gmem_init(&vm.mem, RAM_SIZE), 0);
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	pthread_mutex_init(&vm.dev_lock, NULL);
	put64(PML4, (PML4 + 0x1000) | 3);
	put64(PML4 + 0x1000, (PML4 + 0x2000) | 3);
	put64(PML4 + 0x2000, PT | 3);
	for (uint64_t i = 0; i < 512; i++)
		put64(PT + 8 * i, (i << 12) | 3);
	put64(PT + 8 * (REMAPPED >> 12), 0x50000 | 3);
	put(CODE, code, len);
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
	sregs.cr0 = X86_CR0_PE | X86_CR0_PG | 0x10;
	sregs.cr3 = PML4;
	sregs.cr4 = X86_CR4_PAE;
	sregs.efer = X86_EFER_LME | X86_EFER_LMA;
	for (unsigned s = 0; s < SEG_COUNT; s++) {
		struct x86_segment *g = &sregs.seg[s];
		*g = (struct x86_segment){ .selector = 0x10, .limit = 0xffffffff, .type = 3, .s = 1, .present = 1,
					   .db = 1, .g = 1 };
	}
	sregs.seg[SEG_CS] = (struct x86_segment){ .selector = 0x08, .limit = 0xffffffff, .type = 0xb, .s = 1,
						  .present = 1, .l = 1, .g = 1 };
	cr_assert_eq(accel_emu.set_sregs(&vcpu, &sregs), 0);
	struct x86_regs regs;
	cr_assert_eq(accel_emu.get_regs(&vcpu, &regs), 0);
	memset(regs.gpr, 0, sizeof(regs.gpr));
	regs.rip = CODE;
	regs.gpr[RSP] = 0x8000;
	regs.rflags = 2;
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

static struct emu_cpu *cpu(void)
{
	return vcpu.accel;
}

/* Runs to HLT within a generous budget; returns RAX. */
static uint64_t run_to_hlt(void)
{
	struct vcpu_exit exit;
	memset(&exit, 0, sizeof(exit));
	cpu()->icount_stop = cpu()->icount + 100000000;
	cr_assert_eq(accel_emu.vcpu_run(&vcpu, &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_HLT, "run ended with exit reason %d at %#llx", exit.reason,
		     (unsigned long long)cpu()->rip);
	return cpu()->gpr[RAX];
}

/* The engines to run each program on: the interpreter, and code
 * generation when the test runs as its -jit variant. */
static unsigned engines(void)
{
	return test_jit_hot() ? 2 : 1;
}

/* Bytes to place besides the code. */
struct extra {
	uint64_t gpa;
	const uint8_t *p;
	size_t n;
};

/* Runs code, with the extra bytes placed, on each engine to its HLT:
 * RAX must be want and the stack balanced. */
static void expect_rax(const uint8_t *code, size_t len, const struct extra *x, unsigned n_x, uint64_t want)
{
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, len, hot);
		for (unsigned i = 0; i < n_x; i++)
			put(x[i].gpa, x[i].p, x[i].n);
		uint64_t rax = run_to_hlt();
		cr_expect_eq(rax, want, "engine %u: RAX = %llu, not %llu", hot, (unsigned long long)rax,
			     (unsigned long long)want);
		cr_expect_eq(cpu()->gpr[RSP], 0x8000);
		teardown();
	}
}

/* RAX += 3 by a call 1000 times, the loop closing with a Jcc each way:
 * every block exit a template makes (CALL, RET, JMP, Jcc). */
static const uint8_t calls[] = {
	0x31, 0xc0,                         /* xor eax, eax */
	0xb9, 0xe8, 0x03, 0x00, 0x00,       /* mov ecx, 1000 */
	0xe8, 0x0a, 0x00, 0x00, 0x00,       /* l: call f */
	0xf6, 0xc1, 0x01,                   /* test cl, 1 */
	0x74, 0x00,                         /* jz $+2: both ways, one target */
	0xff, 0xc9,                         /* dec ecx */
	0x75, 0xf2,                         /* jnz l */
	0xf4,                               /* hlt */
	0x48, 0x83, 0xc0, 0x03,             /* f: add rax, 3 */
	0xeb, 0x00,                         /* jmp $+2 */
	0xc3,                               /* ret */
};

Test(emu_jitchain, hot_calls_returns_and_branches)
{
	expect_rax(calls, sizeof(calls), NULL, 0, 3000);
}

/* The callee's immediate is rewritten half way, while the call's exit
 * is linked to it; the callee has a page of its own, so that the caller's
 * blocks stay valid.  51 calls add 1, the 49 after the store add 2. */
Test(emu_jitchain, successor_written_while_linked)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0x64, 0x00, 0x00, 0x00,       /* mov ecx, 100 */
		0xe8, 0xf4, 0x1f, 0x00, 0x00,       /* l: call 0x3000 */
		0x83, 0xf9, 0x32,                   /* cmp ecx, 50 */
		0x75, 0x08,                         /* jne skip */
		0xc6, 0x04, 0x25, 0x03, 0x30, 0x00, 0x00, 0x02, /* mov byte [0x3003], 2 */
		0xff, 0xc9,                         /* skip: dec ecx */
		0x75, 0xea,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t f[] = { 0x48, 0x83, 0xc0, 0x01, 0xc3 };    /* add rax, 1; ret */
	const struct extra x[] = { { 0x3000, f, sizeof(f) } };
	expect_rax(code, sizeof(code), x, 1, 51 + 2 * 49);
}

/* The callee's page is remapped half way (PTE, then INVLPG): the call's
 * linked successor must not outlive the translation it was found by.
 * 51 calls reach physical 0x50000 (add 1), 49 reach 0x60000 (add 100). */
Test(emu_jitchain, successor_remapped_while_linked)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0x64, 0x00, 0x00, 0x00,       /* mov ecx, 100 */
		0xe8, 0xf4, 0xef, 0x03, 0x00,       /* l: call 0x40000 */
		0x83, 0xf9, 0x32,                   /* cmp ecx, 50 */
		0x75, 0x17,                         /* jne skip */
		0x48, 0xc7, 0xc2, 0x03, 0x00, 0x06, 0x00, /* mov rdx, 0x60003 */
		0x48, 0x89, 0x14, 0x25, 0x00, 0x32, 0x01, 0x00, /* mov [PT + 0x40 * 8], rdx */
		0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x04, 0x00, /* invlpg [0x40000] */
		0xff, 0xc9,                         /* skip: dec ecx */
		0x75, 0xdb,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t f1[] = { 0x48, 0x83, 0xc0, 0x01, 0xc3 };   /* add rax, 1; ret */
	static const uint8_t f2[] = { 0x48, 0x83, 0xc0, 0x64, 0xc3 };   /* add rax, 100; ret */
	const struct extra x[] = { { 0x50000, f1, sizeof(f1) }, { 0x60000, f2, sizeof(f2) } };
	expect_rax(code, sizeof(code), x, 2, 51 + 100 * 49);
}

/* The run budget ends a chain of translated blocks where it ends the
 * interpreter's: the same retired count, RIP and registers, for budgets
 * that fall at many places of the loop. */
Test(emu_jitchain, run_budget_stops_the_chain_where_the_interpreter_stops)
{
	if (!test_jit_hot())
		return;   /* a comparison of the two engines */
	for (uint64_t budget = 1; budget < 400; budget += 37) {
		uint64_t icount[2], rip[2], rax[2], rcx[2];
		for (unsigned hot = 0; hot < 2; hot++) {
			setup(calls, sizeof(calls), hot);
			struct vcpu_exit exit;
			memset(&exit, 0, sizeof(exit));
			cpu()->icount_stop = cpu()->icount + budget;
			cr_assert_eq(accel_emu.vcpu_run(&vcpu, &exit), 0);
			cr_assert_eq(exit.reason, VCPU_EXIT_KICK, "budget %llu: exit %d", (unsigned long long)budget,
				     exit.reason);
			icount[hot] = cpu()->icount;
			rip[hot] = cpu()->rip;
			rax[hot] = cpu()->gpr[RAX];
			rcx[hot] = cpu()->gpr[RCX];
			teardown();
		}
		cr_expect_eq(icount[1], icount[0], "budget %llu: icount %llu translated, %llu interpreted",
			     (unsigned long long)budget, (unsigned long long)icount[1], (unsigned long long)icount[0]);
		cr_expect_eq(rip[1], rip[0], "budget %llu: RIP %#llx translated, %#llx interpreted",
			     (unsigned long long)budget, (unsigned long long)rip[1], (unsigned long long)rip[0]);
		cr_expect_eq(rax[1], rax[0]);
		cr_expect_eq(rcx[1], rcx[0]);
	}
}

static void *kick_later(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	atomic_fetch_or(&vcpu.events, VCPU_EVT_KICK);
	return NULL;
}

/* A kick from another thread ends an endless loop, chained to itself,
 * long before the (large) budget does. */
Test(emu_jitchain, kick_ends_a_chained_endless_loop)
{
	static const uint8_t code[] = {
		0xff, 0xc0,         /* l: inc eax */
		0xeb, 0xfc,         /* jmp l */
	};
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, sizeof(code), hot);
		uint64_t budget = 20ull * 1000 * 1000 * 1000;
		cpu()->icount_stop = cpu()->icount + budget;
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, kick_later, NULL), 0);
		struct vcpu_exit exit;
		memset(&exit, 0, sizeof(exit));
		cr_assert_eq(accel_emu.vcpu_run(&vcpu, &exit), 0);
		pthread_join(t, NULL);
		cr_expect_eq(exit.reason, VCPU_EXIT_KICK);
		cr_expect_lt(cpu()->icount, cpu()->icount_stop, "engine %u: the budget ended the loop, not the kick", hot);
		cr_expect_gt(cpu()->gpr[RAX], 0);
		teardown();
	}
}
