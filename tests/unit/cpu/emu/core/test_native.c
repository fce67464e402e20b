/* Differential test against the host CPU in 64-bit mode: the random
 * instruction sequences of diff_gen.c run natively at user level (inside
 * a stub that loads every register and the flags, jumps to the sequence
 * and gets control back through a jump patched in at the stop address)
 * and through the engine's handlers; registers, RIP, the defined flags,
 * the window and faults must agree (diff_run.c).  The host runs what
 * Unicorn cannot compare: POPCNT, MOVBE, LZCNT, CRC32, CMPXCHG8B/16B,
 * LAHF/SAHF with REX, CMPXCHG to a 32-bit register, MOV r/m, imm with
 * REX.R, LOCK NEG (where the host has the feature). */
#include "diff_run.h"

#include <cpuid.h>
#include <criterion/criterion.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

/* Below 2 GiB: sequences PUSH the addresses of their code as imm32. */
#define WIN_BASE   0x5e000000ull
#define STATE_ADDR 0x5d000000ull
#define STUB_ADDR  0x5c000000ull
#define CI_CASES   3000u

struct nstate {
	uint64_t gpr[16];      /* +0 */
	uint64_t rflags;       /* +128 */
	uint64_t host_rsp;     /* +136 */
	uint64_t entry;        /* +144: where the stub jumps to */
	uint64_t exit;         /* +152: where the patched jump returns to */
};

static uint8_t *win_native, *stub;
static struct nstate *nst;
static sigjmp_buf sig_env;
static volatile int sig_caught;

static void on_signal(int sig)
{
	sig_caught = sig;
	siglongjmp(sig_env, 1);
}

static void *map_fixed(uint64_t addr, size_t len, int prot)
{
	void *p = mmap((void *)addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	return p == MAP_FAILED || p != (void *)addr ? NULL : p;
}

static unsigned emit(uint8_t *p, const uint8_t *b, unsigned n)
{
	memcpy(p, b, n);
	return n;
}

/* The stub: save callee-saved registers and RSP, load the flags and all
 * sixteen registers from the state, jump to the entry; at the exit,
 * store them back, restore RSP and return. */
static void build_stub(void)
{
	uint8_t *p = stub;
	static const uint8_t prologue[] = { 0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57 };
	p += emit(p, prologue, sizeof(prologue));
	*p++ = 0x48; *p++ = 0xb8; memcpy(p, &(uint64_t){ STATE_ADDR }, 8); p += 8;     /* mov rax, STATE */
	p += emit(p, (const uint8_t[]){ 0x48, 0x89, 0xa0, 0x88, 0, 0, 0 }, 7);         /* mov [rax+136], rsp */
	p += emit(p, (const uint8_t[]){ 0xff, 0xb0, 0x80, 0, 0, 0 }, 6);               /* push [rax+128] */
	*p++ = 0x9d;                                                                    /* popfq */
	for (unsigned r = 15; r >= 1; r--) {                                            /* mov reg, [rax+8r] */
		*p++ = (uint8_t)(0x48 | ((r & 8) ? 4 : 0));
		*p++ = 0x8b;
		*p++ = (uint8_t)(0x40 | ((r & 7) << 3));
		*p++ = (uint8_t)(8 * r);
	}
	p += emit(p, (const uint8_t[]){ 0x48, 0x8b, 0x00 }, 3);                        /* mov rax, [rax] */
	uint32_t entry = (uint32_t)(STATE_ADDR + offsetof(struct nstate, entry));
	p += emit(p, (const uint8_t[]){ 0xff, 0x24, 0x25 }, 3);                        /* jmp [entry] */
	memcpy(p, &entry, 4);
	p += 4;
	nst->exit = (uint64_t)(uintptr_t)p;
	*p++ = 0x48; *p++ = 0xa3; memcpy(p, &(uint64_t){ STATE_ADDR }, 8); p += 8;     /* mov [STATE], rax */
	*p++ = 0x48; *p++ = 0xb8; memcpy(p, &(uint64_t){ STATE_ADDR }, 8); p += 8;     /* mov rax, STATE */
	for (unsigned r = 1; r <= 15; r++) {                                            /* mov [rax+8r], reg */
		*p++ = (uint8_t)(0x48 | ((r & 8) ? 4 : 0));
		*p++ = 0x89;
		*p++ = (uint8_t)(0x40 | ((r & 7) << 3));
		*p++ = (uint8_t)(8 * r);
	}
	p += emit(p, (const uint8_t[]){ 0x48, 0x8b, 0xa0, 0x88, 0, 0, 0 }, 7);         /* mov rsp, [rax+136] */
	*p++ = 0x9c;                                                                    /* pushfq */
	p += emit(p, (const uint8_t[]){ 0x8f, 0x80, 0x80, 0, 0, 0 }, 6);               /* pop [rax+128] */
	*p++ = 0xfc;                                                                    /* cld */
	static const uint8_t epilogue[] = { 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3 };
	p += emit(p, epilogue, sizeof(epilogue));
	__builtin___clear_cache((char *)stub, (char *)p);
}

static bool setup(void)
{
	static bool done, ok;
	if (done)
		return ok;
	done = true;
	win_native = map_fixed(WIN_BASE, DIFF_WIN_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
	nst = map_fixed(STATE_ADDR, 4096, PROT_READ | PROT_WRITE);
	stub = map_fixed(STUB_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
	if (!win_native || !nst || !stub)
		return false;
	build_stub();
	static uint8_t altstack[65536];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigaltstack(&ss, NULL);
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_ONSTACK | SA_NODEFER };
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	ok = true;
	return ok;
}

struct host_features { bool movbe, popcnt, sse42, abm, bmi1, lahf; };
static struct host_features host;

static void probe_host(void)
{
	unsigned a, b, c, d;
	__cpuid(1, a, b, c, d);
	host.movbe = c & (1u << 22);
	host.popcnt = c & (1u << 23);
	host.sse42 = c & (1u << 20);
	__cpuid(0x80000001, a, b, c, d);
	host.abm = c & (1u << 5);
	host.lahf = c & (1u << 0);
	__cpuid_count(7, 0, a, b, c, d);
	host.bmi1 = b & (1u << 3);
}

/* What the host cannot run as the engine's CPU model defines it. */
static bool host_reject(const struct emu_insn *in, unsigned mode)
{
	(void)mode;
	/* FS and GS bases belong to the C runtime here. */
	if (in->seg == SEG_FS || in->seg == SEG_GS)
		return true;
	unsigned op = in->opcode;
	if (in->opmap == EMU_MAP_1B)
		return (op == 0x9e || op == 0x9f) && !host.lahf;
	if (in->opmap == EMU_MAP_0F && in->mprefix == EMU_MP_F3) {
		if (op == 0xb8)
			return !host.popcnt;
		if (op == 0xbd)
			return !host.abm;     /* the host would run BSR */
		if (op == 0xbc)
			return host.bmi1;     /* the engine runs BSF: it does not advertise BMI1 */
	}
	if (in->opmap == EMU_MAP_0F38 && (op == 0xf0 || op == 0xf1))
		return in->mprefix == EMU_MP_F2 ? !host.sse42 : !host.movbe;
	return false;
}

static int exc_of_signal(int sig)
{
	switch (sig) {
	case 0: return -1;
	case SIGFPE: return X86_EXC_DE;
	case SIGILL: return X86_EXC_UD;
	default: return X86_EXC_GP;
	}
}

static bool native_run(void *ctx, const struct diff_case *c, uint8_t *win, uint64_t stop, struct diff_outcome *out)
{
	(void)ctx;
	uint64_t at = stop - WIN_BASE;
	if (at + 7 > DIFF_WIN_SIZE)
		return false;
	memcpy(win_native, win, DIFF_WIN_SIZE);
	/* jmp [exit] at the stop address: the sequence returns there. */
	uint32_t exit_at = (uint32_t)(STATE_ADDR + offsetof(struct nstate, exit));
	memcpy(win_native + at, (const uint8_t[]){ 0xff, 0x24, 0x25 }, 3);
	memcpy(win_native + at + 3, &exit_at, 4);
	__builtin___clear_cache((char *)win_native, (char *)win_native + DIFF_WIN_SIZE);
	memcpy(nst->gpr, c->gpr, sizeof(nst->gpr));
	nst->rflags = c->flags;
	nst->entry = c->base + DIFF_CODE_AT;
	sig_caught = 0;
	if (sigsetjmp(sig_env, 1) == 0)
		((void (*)(void))stub)();
	out->exc = exc_of_signal(sig_caught);
	/* After a signal only the fault is known. */
	out->exact = false;
	memcpy(out->gpr, nst->gpr, sizeof(out->gpr));
	out->flags = (uint32_t)nst->rflags;
	out->rip = stop;   /* the exit is reached from the patched jump only */
	/* The patched jump is not the case's: the window keeps its code. */
	memcpy(win_native + at, win + at, 7);
	memcpy(win, win_native, DIFF_WIN_SIZE);
	return true;
}

Test(native_diff, sequences_64)
{
	if (!setup())
		cr_skip_test("cannot map the fixed test windows on this host");
	probe_host();
	struct diff_oracle o = { .name = "native", .base = WIN_BASE, .reject = host_reject, .run = native_run };
	unsigned bad = diff_run_mode(EMU_MODE_LONG64, &o, diff_cases_per_group(CI_CASES));
	cr_assert_eq(bad, 0, "%u cases differ from the host CPU", bad);
}
