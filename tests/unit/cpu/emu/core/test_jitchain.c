/* Block exits and direct jumps between translations (src/cpu/emu/jit/
 * branch.c, docs/architecture.md "Code generation"), in 64-bit code
 * where translated blocks jump to each other without the run loop: the
 * result of hot loops of calls, returns and branches; a successor whose
 * code is written while linked, and one whose page is remapped under it
 * (INVLPG); the run budget, which must stop a chain at the same
 * instruction as the interpreter; a kick, which must end a chained
 * endless loop; self-modifying code (a store into the next instruction
 * of its own block, into a linked block of its page) and cross-modifying
 * code from another vCPU; CR3 and PCID switches under a linked call; a
 * fault in the middle of a hot block, single-step and an instruction
 * breakpoint in hot code, each compared with the interpreter in all the
 * state a handler and the host see.  Each program runs interpreted and, when the test runs
 * as emu_jitchain-jit (VESSEL_TEST_JIT=1), translated at every block's
 * first run as well, with the same expectations.
 *
 * Memory: identity-mapped 4 KiB pages over the first 2 MiB (page tables
 * at 0x10000, a second address space's at 0x14000), code at 0x1000, an
 * exception handler at 0x2000, its data at 0x7000, stack below 0x8000,
 * the page at 0x40000 mapped to physical 0x50000 (0x60000 in the second
 * space). */
#include "../jit_env.h"
#include <criterion/criterion.h>

#include "cpu/engines.h"
#include "cpu/emu/emu.h"
#include "machine/accel.h"
#include "machine/machine.h"
#include "machine/x86.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
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

/* On the translating engine, the program ran translated code: a test
 * that passed on the interpreter alone would prove nothing. */
static void expect_translated(unsigned hot)
{
	if (!hot)
		return;
	struct accel_code_stats st;
	memset(&st, 0, sizeof(st));
	accel_emu.code_stats(&vm, &st);
	cr_expect_gt(st.jit_blocks, 0, "no block was translated");
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
		expect_translated(hot);
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

/* CALL and JMP through a register, 1000 times each: RAX += 1 by the
 * callee, += 2 on the way back through the jump. */
Test(emu_jitchain, calls_and_jumps_through_registers)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0xe8, 0x03, 0x00, 0x00,       /* mov ecx, 1000 */
		0x48, 0x8d, 0x15, 0x10, 0x00, 0x00, 0x00, /* l: lea rdx, [rip + f] */
		0xff, 0xd2,                         /* call rdx */
		0x48, 0x8d, 0x15, 0x0c, 0x00, 0x00, 0x00, /* lea rdx, [rip + g] */
		0xff, 0xe2,                         /* jmp rdx */
		0xff, 0xc9,                         /* back: dec ecx */
		0x75, 0xea,                         /* jnz l */
		0xf4,                               /* hlt */
		0x48, 0x83, 0xc0, 0x01,             /* f: add rax, 1 */
		0xc3,                               /* ret */
		0x48, 0x83, 0xc0, 0x02,             /* g: add rax, 2 */
		0xeb, 0xf0,                         /* jmp back */
	};
	expect_rax(code, sizeof(code), NULL, 0, 3000);
}

/* CALL and JMP through memory: a table of two pointers in another page,
 * which nothing has read before the first CALL, so that its read takes
 * the slow path once and the inline path after; 1000 times each, RAX += 1
 * by the callee, += 2 on the way back. */
Test(emu_jitchain, calls_and_jumps_through_memory)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0xe8, 0x03, 0x00, 0x00,       /* mov ecx, 1000 */
		0xbb, 0x00, 0x30, 0x00, 0x00,       /* mov ebx, 0x3000 */
		0xff, 0x14, 0x25, 0x00, 0x30, 0x00, 0x00, /* l: call [0x3000] */
		0xff, 0x63, 0x08,                   /* jmp [rbx + 8] */
		0xff, 0xc9,                         /* back: dec ecx */
		0x75, 0xf2,                         /* jnz l */
		0xf4,                               /* hlt */
		0x48, 0x83, 0xc0, 0x01,             /* f (+27): add rax, 1 */
		0xc3,                               /* ret */
		0x48, 0x83, 0xc0, 0x02,             /* g (+32): add rax, 2 */
		0xeb, 0xf0,                         /* jmp back */
	};
	static const uint64_t table[] = { CODE + 27, CODE + 32 };
	const struct extra x[] = { { 0x3000, (const uint8_t *)table, sizeof(table) } };
	expect_rax(code, sizeof(code), x, 1, 3000);
}

/* A register changed in host registers, then stored to a page the TLB
 * does not hold yet, 64 times (a new page each time): each store takes
 * the template's slow path, which must write the changed register back
 * before its handler reads it.  Page i holds i + 1. */
Test(emu_jitchain, stores_that_miss_the_tlb_see_registers_changed_before_them)
{
	static const uint8_t code[] = {
		0x31, 0xc9,                         /* xor ecx, ecx */
		0xbe, 0x40, 0x00, 0x00, 0x00,       /* mov esi, 64 */
		0xba, 0x00, 0x00, 0x10, 0x00,       /* mov edx, 0x100000 */
		0x48, 0x83, 0xc1, 0x01,             /* l: add rcx, 1 */
		0x48, 0x89, 0x0a,                   /* mov [rdx], rcx */
		0x48, 0x81, 0xc2, 0x00, 0x10, 0x00, 0x00, /* add rdx, 0x1000 */
		0x48, 0x83, 0xee, 0x01,             /* sub rsi, 1 */
		0x75, 0xec,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, sizeof(code), hot);
		run_to_hlt();
		for (uint64_t i = 0; i < 64; i++) {
			uint64_t v;
			memcpy(&v, gmem_ptr(&vm.mem, 0x100000 + (i << 12), 8), 8);
			cr_expect_eq(v, i + 1, "engine %u: page %llu holds %llu", hot, (unsigned long long)i,
				     (unsigned long long)v);
		}
		expect_translated(hot);
		teardown();
	}
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

/* A call into another page and its return, 1000 times: on the
 * translating engine both get far links (through the jump cache), and
 * the loop's branches near ones. */
Test(emu_jitchain, calls_to_another_page_link_far)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0xe8, 0x03, 0x00, 0x00,       /* mov ecx, 1000 */
		0xe8, 0xf4, 0x1f, 0x00, 0x00,       /* l: call 0x3000 */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0xf7,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t f[] = { 0x48, 0x83, 0xc0, 0x03, 0xc3 };    /* add rax, 3; ret */
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, sizeof(code), hot);
		put(0x3000, f, sizeof(f));
		uint64_t rax = run_to_hlt();
		cr_expect_eq(rax, 3000, "engine %u: RAX = %llu", hot, (unsigned long long)rax);
		cr_expect_eq(cpu()->gpr[RSP], 0x8000);
		if (hot) {
			struct accel_code_stats st;
			memset(&st, 0, sizeof(st));
			accel_emu.code_stats(&vm, &st);
			cr_expect_geq(st.jit_links_far, 2, "far links: %llu", (unsigned long long)st.jit_links_far);
			cr_expect_geq(st.jit_links_near, 1, "near links: %llu", (unsigned long long)st.jit_links_near);
		}
		teardown();
	}
}

/* A function in another page returns to two callers in turn, so its
 * RET's exit gets the jump cache probe (jit/branch.c), and half way the
 * code after the second call is rewritten: the probe must not enter
 * the old translation.  100 passes: 6 from the calls, 1 after the
 * first, 1 after the second for 51 passes and 2 for the 49 after the
 * store. */
Test(emu_jitchain, return_to_two_callers_then_one_rewritten)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0x64, 0x00, 0x00, 0x00,       /* mov ecx, 100 */
		0xe8, 0xf4, 0x1f, 0x00, 0x00,       /* l: call 0x3000 */
		0x83, 0xc0, 0x01,                   /* add eax, 1 */
		0xe8, 0xec, 0x1f, 0x00, 0x00,       /* call 0x3000 */
		0x83, 0xc0, 0x01,                   /* add eax, 1: the immediate at 0x1016 */
		0x83, 0xf9, 0x32,                   /* cmp ecx, 50 */
		0x75, 0x08,                         /* jne skip */
		0xc6, 0x04, 0x25, 0x16, 0x10, 0x00, 0x00, 0x02, /* mov byte [0x1016], 2 */
		0xff, 0xc9,                         /* skip: dec ecx */
		0x75, 0xdf,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t f[] = { 0x48, 0x83, 0xc0, 0x03, 0xc3 };    /* add rax, 3; ret */
	const struct extra x[] = { { 0x3000, f, sizeof(f) } };
	expect_rax(code, sizeof(code), x, 1, 600 + 100 + 51 + 2 * 49);
}

/* A hot loop loads 8 bytes and stores 4 across the boundary of two
 * linear pages whose physical pages lie apart (0x50000 and 0x70000):
 * each access must reach both, as the interpreter's does, not the
 * bytes that follow the first page in host memory. */
Test(emu_jitchain, accesses_across_a_page_boundary_reach_both_pages)
{
	static const uint8_t code[] = {
		0xb9, 0xe8, 0x03, 0x00, 0x00,       /* mov ecx, 1000 */
		0x31, 0xc0,                         /* xor eax, eax */
		0x48, 0x8b, 0x14, 0x25, 0xfc, 0x0f, 0x04, 0x00, /* l: mov rdx, [0x40ffc] */
		0x48, 0x01, 0xd0,                   /* add rax, rdx */
		0x89, 0x0c, 0x25, 0xfe, 0x0f, 0x04, 0x00, /* mov [0x40ffe], ecx */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0xea,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t low[] = { 1, 2, 3, 4 }, high[] = { 5, 6, 7, 8 };
	uint64_t rax[2] = { 0, 0 };
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, sizeof(code), hot);
		put64(PT + 8 * 0x40, 0x50000 | 3);
		put64(PT + 8 * 0x41, 0x70000 | 3);
		put(0x50ffc, low, sizeof(low));
		put(0x70000, high, sizeof(high));
		rax[hot] = run_to_hlt();
		/* The last store, ECX = 1: two bytes in each page. */
		uint8_t got[4], next[4];
		cr_assert_eq(gmem_read(&vm.mem, 0x50ffe, got, 2), 0);
		cr_assert_eq(gmem_read(&vm.mem, 0x70000, got + 2, 2), 0);
		cr_assert_eq(gmem_read(&vm.mem, 0x51000, next, 4), 0);
		cr_expect(got[0] == 1 && got[1] == 0 && got[2] == 0 && got[3] == 0, "engine %u: stored %02x %02x | %02x %02x",
			  hot, got[0], got[1], got[2], got[3]);
		cr_expect(!next[0] && !next[1] && !next[2] && !next[3], "engine %u: wrote past the first page", hot);
		expect_translated(hot);
		teardown();
	}
	if (engines() == 2)
		cr_expect_eq(rax[1], rax[0], "RAX %#llx translated, %#llx interpreted", (unsigned long long)rax[1],
			     (unsigned long long)rax[0]);
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
	/* As the machine layer posts it (vcpu_signal): the event, then the
	 * engine's kick, which closes the chain gate. */
	atomic_fetch_or(&vcpu.events, VCPU_EVT_KICK);
	accel_emu.vcpu_kick(&vcpu);
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

/* A store that rewrites the next instruction of its own block, every
 * pass of a hot loop: the immediate of the ADD after it becomes CL, so
 * the sum is 100 + 99 + ... + 1.  A translation that ran on past the
 * store would add the old immediate. */
Test(emu_jitchain, store_rewrites_the_next_instruction_of_its_block)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0x64, 0x00, 0x00, 0x00,       /* mov ecx, 100 */
		0x88, 0x0d, 0x01, 0x00, 0x00, 0x00, /* l: mov [rip + 1], cl: the ADD's immediate */
		0x05, 0x00, 0x00, 0x00, 0x00,       /* add eax, imm32 */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0xf1,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	expect_rax(code, sizeof(code), NULL, 0, 5050);
}

/* A REP STOSB in the middle of a hot block, long enough to yield to the
 * loop twice a pass (REP_CHUNK elements per handler call): each yield
 * stops the block with RIP on the REP, which resumes there, and the
 * instructions after it run once a pass, with RCX 0.  A stop that left
 * RIP anywhere else would run the block's start again or skip the rest
 * of the string. */
Test(emu_jitchain, rep_yield_in_the_middle_of_a_hot_block)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0x31, 0xdb,                         /* xor ebx, ebx */
		0x31, 0xf6,                         /* xor esi, esi */
		0xba, 0x03, 0x00, 0x00, 0x00,       /* mov edx, 3 */
		0xff, 0xc6,                         /* l: inc esi */
		0xbf, 0x00, 0x00, 0x10, 0x00,       /* mov edi, 0x100000 */
		0xb9, 0x00, 0x00, 0x03, 0x00,       /* mov ecx, 0x30000 */
		0xf3, 0xaa,                         /* rep stosb */
		0x01, 0xcb,                         /* add ebx, ecx */
		0xff, 0xca,                         /* dec edx */
		0x75, 0xec,                         /* jnz l */
		0x89, 0xf0,                         /* mov eax, esi */
		0x01, 0xd8,                         /* add eax, ebx */
		0xf4,                               /* hlt */
	};
	expect_rax(code, sizeof(code), NULL, 0, 3);
}

/* The same through a call: the callee, on the caller's page, is
 * translated and the call's exit linked to it before the store of each
 * pass rewrites it (and the caller's own blocks with the page). */
Test(emu_jitchain, store_rewrites_a_linked_block_on_its_own_page)
{
	static uint8_t code[0x46] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0x64, 0x00, 0x00, 0x00,       /* mov ecx, 100 */
		0x88, 0x0d, 0x34, 0x00, 0x00, 0x00, /* l: mov [rip + 0x34], cl: f's immediate */
		0xe8, 0x2e, 0x00, 0x00, 0x00,       /* call f */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0xf1,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t f[] = { 0x05, 0x00, 0x00, 0x00, 0x00, 0xc3 };   /* f: add eax, imm32; ret */
	memcpy(code + 0x40, f, sizeof(f));
	expect_rax(code, sizeof(code), NULL, 0, 5050);
}

/* A second address space at PML4_B: the same mappings as the first,
 * but the page at REMAPPED is physical 0x60000. */
#define PML4_B 0x14000u
#define PT_B 0x17000u

static void add_space_b(void)
{
	put64(PML4_B, (PML4_B + 0x1000) | 3);
	put64(PML4_B + 0x1000, (PML4_B + 0x2000) | 3);
	put64(PML4_B + 0x2000, PT_B | 3);
	for (uint64_t i = 0; i < 512; i++)
		put64(PT_B + 8 * i, (i << 12) | 3);
	put64(PT_B + 8 * (REMAPPED >> 12), 0x60000 | 3);
}

/* Each pass calls REMAPPED, then switches CR3 between the two spaces
 * (CR3 ^= RSI, with RDI's bit 63 when set: PCID's no-flush); the call's
 * exit, linked to the callee of one space, must not reach it from the
 * other.  50 calls add 1 (physical 0x50000), 50 add 100 (0x60000). */
static void cr3_switches_under_a_linked_call(bool pcid)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0x64, 0x00, 0x00, 0x00,       /* mov ecx, 100 */
		0xe8, 0xf4, 0xef, 0x03, 0x00,       /* l: call 0x40000 */
		0x0f, 0x20, 0xda,                   /* mov rdx, cr3 */
		0x48, 0x31, 0xf2,                   /* xor rdx, rsi */
		0x48, 0x09, 0xfa,                   /* or rdx, rdi */
		0x0f, 0x22, 0xda,                   /* mov cr3, rdx */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0xeb,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t f1[] = { 0x48, 0x83, 0xc0, 0x01, 0xc3 };   /* add rax, 1; ret */
	static const uint8_t f2[] = { 0x48, 0x83, 0xc0, 0x64, 0xc3 };   /* add rax, 100; ret */
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, sizeof(code), hot);
		add_space_b();
		put(0x50000, f1, sizeof(f1));
		put(0x60000, f2, sizeof(f2));
		uint64_t a = PML4, b = PML4_B;
		if (pcid) {
			a |= 1;
			b |= 2;
			struct x86_sregs sregs;
			cr_assert_eq(accel_emu.get_sregs(&vcpu, &sregs), 0);
			sregs.cr4 |= X86_CR4_PCIDE;
			sregs.cr3 = a;
			cr_assert_eq(accel_emu.set_sregs(&vcpu, &sregs), 0);
		}
		cpu()->gpr[RSI] = a ^ b;
		cpu()->gpr[RDI] = pcid ? 1ull << 63 : 0;
		uint64_t rax = run_to_hlt();
		cr_expect_eq(rax, 50 + 100 * 50, "engine %u: RAX = %llu", hot, (unsigned long long)rax);
		cr_expect_eq(cpu()->gpr[RSP], 0x8000);
		expect_translated(hot);
		teardown();
	}
}

Test(emu_jitchain, cr3_switch_under_a_linked_call)
{
	cr3_switches_under_a_linked_call(false);
}

Test(emu_jitchain, pcid_switch_without_flush_under_a_linked_call)
{
	cr3_switches_under_a_linked_call(true);
}

/* Exceptions: a GDT with a 64-bit code segment (0x08) and a data
 * segment (0x10), and an IDT whose gates for #DB and #PF lead to HANDLER
 * (interrupt gates, DPL 0).  Handlers keep their counts in DATA. */
#define GDT 0x18000u
#define IDT 0x19000u
#define HANDLER 0x2000u
#define DATA 0x7000u

static void add_idt(const uint8_t *handler, size_t len)
{
	put64(GDT + 8, 0x00af9b000000ffffull);
	put64(GDT + 16, 0x00cf93000000ffffull);
	static const unsigned vectors[] = { 1, 14 };
	for (unsigned i = 0; i < 2; i++) {
		uint64_t lo = (HANDLER & 0xffff) | (0x08ull << 16) | (0x8eull << 40) |
			      ((uint64_t)(HANDLER >> 16) << 48);
		put64(IDT + 16 * vectors[i], lo);
		put64(IDT + 16 * vectors[i] + 8, 0);
	}
	put(HANDLER, handler, len);
	struct x86_sregs sregs;
	cr_assert_eq(accel_emu.get_sregs(&vcpu, &sregs), 0);
	sregs.gdt = (struct x86_dtable){ GDT, 3 * 8 - 1 };
	sregs.idt = (struct x86_dtable){ IDT, 256 * 16 - 1 };
	cr_assert_eq(accel_emu.set_sregs(&vcpu, &sregs), 0);
}

static uint64_t get64(uint64_t gpa)
{
	uint64_t v;
	cr_assert_eq(gmem_read(&vm.mem, gpa, &v, 8), 0);
	return v;
}

/* What a program left: registers, the handler's data, the top of the
 * stack, the retired count. */
struct outcome {
	uint64_t gpr[16], rip, rflags, cr2, icount;
	uint64_t data[2], stack[6];
};

static void take_outcome(struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->gpr, cpu()->gpr, sizeof(o->gpr));
	o->rip = cpu()->rip;
	struct x86_regs regs;
	cr_assert_eq(accel_emu.get_regs(&vcpu, &regs), 0);
	o->rflags = regs.rflags;
	struct x86_sregs sregs;
	cr_assert_eq(accel_emu.get_sregs(&vcpu, &sregs), 0);
	o->cr2 = sregs.cr2;
	o->icount = cpu()->icount;
	for (unsigned i = 0; i < 2; i++)
		o->data[i] = get64(DATA + 8 * i);
	for (unsigned i = 0; i < 6; i++)
		if (o->gpr[RSP] + 8 * i < 0x8000)
			o->stack[i] = get64(o->gpr[RSP] + 8 * i);
}

/* Runs code with the handler on each engine to its HLT; out[1] (the
 * translating engine's) is left zero when the test runs without code
 * generation.  The two must agree in everything. */
static void run_with_handler(const uint8_t *code, size_t len, const uint8_t *handler, size_t hlen,
			     struct outcome out[2])
{
	memset(out, 0, 2 * sizeof(*out));
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, len, hot);
		add_idt(handler, hlen);
		put64(PT + 8 * 0x31, 0);    /* 0x31000: not present */
		run_to_hlt();
		take_outcome(&out[hot]);
		expect_translated(hot);
		teardown();
	}
	if (engines() < 2)
		return;
	for (unsigned i = 0; i < 16; i++)
		cr_expect_eq(out[1].gpr[i], out[0].gpr[i], "GPR %u: %#llx translated, %#llx interpreted", i,
			     (unsigned long long)out[1].gpr[i], (unsigned long long)out[0].gpr[i]);
	cr_expect_eq(out[1].rip, out[0].rip);
	cr_expect_eq(out[1].rflags, out[0].rflags, "RFLAGS %#llx translated, %#llx interpreted",
		     (unsigned long long)out[1].rflags, (unsigned long long)out[0].rflags);
	cr_expect_eq(out[1].cr2, out[0].cr2);
	cr_expect_eq(out[1].icount, out[0].icount, "icount %llu translated, %llu interpreted",
		     (unsigned long long)out[1].icount, (unsigned long long)out[0].icount);
	for (unsigned i = 0; i < 2; i++)
		cr_expect_eq(out[1].data[i], out[0].data[i], "handler data %u: %#llx translated, %#llx interpreted", i,
			     (unsigned long long)out[1].data[i], (unsigned long long)out[0].data[i]);
	for (unsigned i = 0; i < 6; i++)
		cr_expect_eq(out[1].stack[i], out[0].stack[i], "stack[%u]: %#llx translated, %#llx interpreted", i,
			     (unsigned long long)out[1].stack[i], (unsigned long long)out[0].stack[i]);
}

/* SMAP in translated code: a hot loop at CPL 0 reads a user page
 * between STAC and CLAC 1000 times (EFLAGS.AC = 1: SMAP's TLB, which
 * reaches user pages), then once without: #PF, CR2 the user page.  The
 * translations find their TLB as they are entered from the loop, and
 * STAC and CLAC end blocks that go back to it. */
Test(emu_jitchain, smap_lets_a_hot_loop_read_user_pages_only_with_ac)
{
	static const uint8_t code[] = {
		0xb9, 0xe8, 0x03, 0x00, 0x00,       /* mov ecx, 1000 */
		0x31, 0xc0,                         /* xor eax, eax */
		0x0f, 0x01, 0xcb,                   /* l: stac */
		0x48, 0x03, 0x04, 0x25, 0x00, 0x00, 0x04, 0x00, /* add rax, [0x40000] */
		0x0f, 0x01, 0xca,                   /* clac */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0xee,                         /* jnz l */
		0x48, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x04, 0x00, /* mov rdx, [0x40000]: #PF */
		0xf4,                               /* hlt */
	};
	static const uint8_t handler[] = { 0xf4 };   /* hlt */
	static const uint8_t five[] = { 5 };
	struct outcome out[2];
	memset(out, 0, sizeof(out));
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(code, sizeof(code), hot);
		add_idt(handler, sizeof(handler));
		struct x86_sregs sregs;
		cr_assert_eq(accel_emu.get_sregs(&vcpu, &sregs), 0);
		sregs.cr4 |= X86_CR4_SMAP;
		cr_assert_eq(accel_emu.set_sregs(&vcpu, &sregs), 0);
		/* User at every level (the walk ANDs U/S), the other pages
		 * supervisor. */
		put64(PML4, (PML4 + 0x1000) | 7);
		put64(PML4 + 0x1000, (PML4 + 0x2000) | 7);
		put64(PML4 + 0x2000, PT | 7);
		put64(PT + 8 * (REMAPPED >> 12), 0x50000 | 7);
		put(0x50000, five, sizeof(five));
		run_to_hlt();
		take_outcome(&out[hot]);
		cr_expect_eq(out[hot].gpr[RAX], 5000, "engine %u: RAX = %llu", hot, (unsigned long long)out[hot].gpr[RAX]);
		cr_expect_eq(out[hot].rip, HANDLER + 1, "engine %u: no #PF", hot);
		cr_expect_eq(out[hot].cr2, REMAPPED, "engine %u: CR2 %#llx", hot, (unsigned long long)out[hot].cr2);
		expect_translated(hot);
		teardown();
	}
	if (engines() == 2)
		cr_expect_eq(out[1].icount, out[0].icount);
}

/* A hot loop stores through RDI, 0x100 further each pass, until the
 * store reaches the page at 0x31000, which is not present: the #PF
 * comes from the middle of a translated block, after an ADD whose flags
 * a later instruction of the block overwrites.  The handler halts; the
 * frame (error code, RIP, CS, RFLAGS, RSP, SS), CR2, the registers and
 * the retired count must be the interpreter's. */
Test(emu_jitchain, fault_in_the_middle_of_a_hot_block_is_precise)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xbf, 0x00, 0x00, 0x03, 0x00,       /* mov edi, 0x30000 */
		0x83, 0xc0, 0x03,                   /* l: add eax, 3 */
		0x48, 0x89, 0x07,                   /* mov [rdi], rax */
		0x48, 0x81, 0xc7, 0x00, 0x01, 0x00, 0x00, /* add rdi, 0x100 */
		0xff, 0xc2,                         /* inc edx */
		0xeb, 0xef,                         /* jmp l */
	};
	static const uint8_t handler[] = { 0xf4 };   /* hlt */
	struct outcome out[2];
	run_with_handler(code, sizeof(code), handler, sizeof(handler), out);
	cr_expect_eq(out[0].gpr[RAX], 17 * 3);
	cr_expect_eq(out[0].gpr[RDI], 0x31000);
	cr_expect_eq(out[0].gpr[RDX], 16);
	cr_expect_eq(out[0].cr2, 0x31000);
	cr_expect_eq(out[0].stack[0], 2, "error code %#llx: a write to a page not present", (unsigned long long)out[0].stack[0]);
	cr_expect_eq(out[0].stack[1], CODE + 10, "the frame's RIP %#llx is not the store's", (unsigned long long)out[0].stack[1]);
}

/* #DB handler: counts (DATA), sums the return RIPs (DATA + 8), then
 * "tail" bytes before its IRETQ. */
#define DB_HANDLER_HEAD \
	0x48, 0xff, 0x04, 0x25, 0x00, 0x70, 0x00, 0x00,       /* inc qword [DATA] */ \
	0x48, 0x8b, 0x14, 0x24,                               /* mov rdx, [rsp] */ \
	0x48, 0x01, 0x14, 0x25, 0x08, 0x70, 0x00, 0x00        /* add [DATA + 8], rdx */

/* A hot loop of 200 passes sets TF (PUSHFQ/OR/POPFQ) in pass 100: from
 * then on every instruction traps, and the handler clears TF in the
 * frame at its 120th trap.  Each trap's RIP is summed. */
Test(emu_jitchain, single_step_in_a_hot_loop)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0xc8, 0x00, 0x00, 0x00,       /* mov ecx, 200 */
		0x83, 0xc0, 0x01,                   /* l: add eax, 1 */
		0x83, 0xf9, 0x64,                   /* cmp ecx, 100 */
		0x75, 0x0a,                         /* jne skip */
		0x9c,                               /* pushfq */
		0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, /* or qword [rsp], 0x100 */
		0x9d,                               /* popfq */
		0xff, 0xc9,                         /* skip: dec ecx */
		0x75, 0xea,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t handler[] = {
		DB_HANDLER_HEAD,
		0x48, 0x83, 0x3c, 0x25, 0x00, 0x70, 0x00, 0x00, 0x78, /* cmp qword [DATA], 120 */
		0x72, 0x09,                                           /* jb out */
		0x48, 0x81, 0x64, 0x24, 0x10, 0xff, 0xfe, 0xff, 0xff, /* and qword [rsp + 16], ~0x100 */
		0x48, 0xcf,                                           /* out: iretq */
	};
	struct outcome out[2];
	run_with_handler(code, sizeof(code), handler, sizeof(handler), out);
	cr_expect_eq(out[0].gpr[RAX], 200);
	cr_expect_eq(out[0].data[0], 120, "%llu traps", (unsigned long long)out[0].data[0]);
	/* The first trap: after the DEC that follows the POPFQ. */
	cr_expect_gt(out[0].data[1], 120ull * CODE);
}

/* A hot loop of 200 passes points DR0 at its CMP, in the middle of a
 * block, and enables it in DR7 in pass 100 (after the CMP): each of the
 * 99 later passes faults before the CMP; the handler resumes with RF. */
Test(emu_jitchain, instruction_breakpoint_in_a_hot_loop)
{
	static const uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0xc8, 0x00, 0x00, 0x00,       /* mov ecx, 200 */
		0x83, 0xc0, 0x01,                   /* l: add eax, 1 */
		0x83, 0xf9, 0x64,                   /* cmp ecx, 100 */
		0x75, 0x10,                         /* jne skip */
		0xba, 0x0a, 0x10, 0x00, 0x00,       /* mov edx, CODE + 10 */
		0x0f, 0x23, 0xc2,                   /* mov dr0, rdx */
		0xba, 0x01, 0x04, 0x00, 0x00,       /* mov edx, 0x401: L0, execute */
		0x0f, 0x23, 0xfa,                   /* mov dr7, rdx */
		0xff, 0xc9,                         /* skip: dec ecx */
		0x75, 0xe4,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	static const uint8_t handler[] = {
		DB_HANDLER_HEAD,
		0x48, 0x81, 0x4c, 0x24, 0x10, 0x00, 0x00, 0x01, 0x00, /* or qword [rsp + 16], RF */
		0x48, 0xcf,                                           /* iretq */
	};
	struct outcome out[2];
	run_with_handler(code, sizeof(code), handler, sizeof(handler), out);
	cr_expect_eq(out[0].gpr[RAX], 200);
	cr_expect_eq(out[0].data[0], 99, "%llu breakpoint faults", (unsigned long long)out[0].data[0]);
	cr_expect_eq(out[0].data[1], 99ull * (CODE + 10));
}

/* Cross-modifying code (SDM vol. 3A 8.1.3): vCPU 0 spins in a hot loop
 * of one block chained to itself, counting its passes in memory, until
 * the immediate it loads is 0x1234; vCPU 1, on another thread, waits for
 * 1000 passes and then stores that immediate.  vCPU 0 must see the store
 * and halt long before its budget ends the run. */
static struct vcpu vcpu1;

static void *spin_thread(void *arg)
{
	(void)arg;
	struct vcpu_exit exit;
	do {
		memset(&exit, 0, sizeof(exit));
		accel_emu.vcpu_run(&vcpu, &exit);
	} while (exit.reason == VCPU_EXIT_KICK && cpu()->icount < cpu()->icount_stop);
	return (void *)(uintptr_t)exit.reason;
}

Test(emu_jitchain, store_by_another_vcpu_into_a_chained_loop_is_seen)
{
	static const uint8_t spin[] = {
		0xff, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, /* l: inc dword [0x5000] */
		0xb8, 0x00, 0x00, 0x00, 0x00,       /* mov eax, imm32 */
		0x3d, 0x34, 0x12, 0x00, 0x00,       /* cmp eax, 0x1234 */
		0x75, 0xed,                         /* jne l */
		0xf4,                               /* hlt */
	};
	static const uint8_t writer[] = {
		0xc6, 0x04, 0x25, 0x00, 0x18, 0x00, 0x00, 0x01, /* mov byte [0x1800], 1: a write TLB entry for the page */
		0x81, 0x3c, 0x25, 0x00, 0x50, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, /* w: cmp dword [0x5000], 1000 */
		0x72, 0xf3,                         /* jb w */
		0xc7, 0x04, 0x25, 0x08, 0x10, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00, /* mov dword [CODE + 8], 0x1234 */
		0xf4,                               /* hlt */
	};
	for (unsigned hot = 0; hot < engines(); hot++) {
		setup(spin, sizeof(spin), hot);
		put(0x3000, writer, sizeof(writer));
		memset(&vcpu1, 0, sizeof(vcpu1));
		vcpu1.vm = &vm;
		vcpu1.id = 1;
		vcpu1.run_state = VCPU_RUNNABLE;
		pthread_mutex_init(&vcpu1.lock, NULL);
		pthread_cond_init(&vcpu1.wake, NULL);
		vm.vcpus[1] = &vcpu1;
		cr_assert_eq(accel_emu.vcpu_init(&vcpu1), 0);
		vm.n_vcpus = 2;
		struct x86_sregs sregs;
		struct x86_regs regs;
		cr_assert_eq(accel_emu.get_sregs(&vcpu, &sregs), 0);
		cr_assert_eq(accel_emu.set_sregs(&vcpu1, &sregs), 0);
		cr_assert_eq(accel_emu.get_regs(&vcpu, &regs), 0);
		regs.rip = 0x3000;
		regs.gpr[RSP] = 0x9000;
		cr_assert_eq(accel_emu.set_regs(&vcpu1, &regs), 0);
		struct emu_cpu *c1 = vcpu1.accel;

		cpu()->icount_stop = cpu()->icount + 400000000;
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, spin_thread, NULL), 0);
		c1->icount_stop = c1->icount + 400000000;
		struct vcpu_exit exit;
		do {
			memset(&exit, 0, sizeof(exit));
			accel_emu.vcpu_run(&vcpu1, &exit);
		} while (exit.reason == VCPU_EXIT_KICK && c1->icount < c1->icount_stop);
		cr_expect_eq(exit.reason, VCPU_EXIT_HLT, "engine %u: the writer ended with %d", hot, exit.reason);
		void *reason;
		pthread_join(t, &reason);
		cr_expect_eq((uintptr_t)reason, VCPU_EXIT_HLT,
			     "engine %u: the spinning vCPU ended with %d after %llu instructions", hot,
			     (int)(uintptr_t)reason, (unsigned long long)cpu()->icount);
		cr_expect_eq(cpu()->gpr[RAX], 0x1234);
		expect_translated(hot);
		accel_emu.vcpu_destroy(&vcpu1);
		vm.vcpus[1] = NULL;
		vm.n_vcpus = 1;
		teardown();
	}
}

/* A file-size limit (RLIMIT_FSIZE, `ulimit -f`) far below the code
 * cache's size, with SIGXFSZ ignored as a shell or service manager may
 * leave it: the code cache is memory, not a file, so the vCPU is made
 * and translates as without the limit. */
Test(emu_jitchain, code_cache_under_a_file_size_limit)
{
	struct rlimit lim = { 4 << 20, 4 << 20 };
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	signal(SIGXFSZ, SIG_IGN);
	setup(calls, sizeof(calls), true);
	cr_expect_eq(run_to_hlt(), 3000);
	expect_translated(1);
	teardown();
}
