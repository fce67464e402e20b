/* Differential test against the host CPU: random user-level instructions
 * of each general-purpose group run natively (inside a generated stub
 * with the registers and flags loaded) and on the engine's handlers, in
 * 64-bit mode; registers, arithmetic flags (undefined ones masked per the
 * SDM, diff_flags.c) and the data window must agree, and so must faults. */
#include "diff_flags.h"
#include "harness.h"

#include <cpuid.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define DATA_BASE  0x5e000000ull
#define DATA_SIZE  0x10000ull
#define STATE_ADDR 0x5d000000ull
#define CODE_ADDR  0x5c000000ull

struct nstate {
	uint64_t gpr[16];
	uint64_t rflags;
	uint64_t host_rsp;
};

static uint8_t *native_data, *emu_data, *code;
static struct nstate *nst;
static sigjmp_buf sig_env;
static volatile int sig_caught;
static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

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

static bool setup(void)
{
	static bool done, ok;
	if (done)
		return ok;
	done = true;
	native_data = map_fixed(DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE);
	nst = map_fixed(STATE_ADDR, 4096, PROT_READ | PROT_WRITE);
	code = map_fixed(CODE_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
	emu_data = malloc(DATA_SIZE);
	if (!native_data || !nst || !code || !emu_data)
		return false;
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

static unsigned emit(uint8_t *p, const uint8_t *b, unsigned n)
{
	memcpy(p, b, n);
	return n;
}

/* Builds: save callee-saved, load state, <insn>, store state, return. */
static void build_stub(const uint8_t *insn, unsigned len)
{
	uint8_t *p = code;
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
	p += emit(p, insn, len);
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
	__builtin___clear_cache((char *)code, (char *)p);
}

/* One instruction template: bytes before ModRM, whether it has one. */
struct tmpl {
	const char *group;
	uint8_t op[4];
	uint8_t oplen;
	int8_t reg;        /* forced ModRM.reg, -1 random */
	bool mem_only, reg_only;
	uint8_t kind;      /* special handling, K_* */
};

enum { K_NONE, K_BT, K_STR, K_STACK, K_NEEDS_MOVBE, K_NEEDS_POPCNT,
       K_NEEDS_LZCNT, K_NEEDS_BMI1, K_NEEDS_CRC, K_CX8 };

static const struct tmpl tmpls[] = {
	/* arith and logic */
	{ "alu", { 0x01 }, 1, -1, 0, 0, 0 }, { "alu", { 0x03 }, 1, -1, 0, 0, 0 },
	{ "alu", { 0x00 }, 1, -1, 0, 0, 0 }, { "alu", { 0x02 }, 1, -1, 0, 0, 0 },
	{ "alu", { 0x11 }, 1, -1, 0, 0, 0 }, { "alu", { 0x13 }, 1, -1, 0, 0, 0 },
	{ "alu", { 0x19 }, 1, -1, 0, 0, 0 }, { "alu", { 0x1a }, 1, -1, 0, 0, 0 },
	{ "alu", { 0x29 }, 1, -1, 0, 0, 0 }, { "alu", { 0x2b }, 1, -1, 0, 0, 0 },
	{ "alu", { 0x39 }, 1, -1, 0, 0, 0 }, { "alu", { 0x3a }, 1, -1, 0, 0, 0 },
	{ "alu", { 0x05 }, 1, -2, 0, 0, 0 }, { "alu", { 0x1c }, 1, -2, 0, 0, 0 },
	{ "alu", { 0x80 }, 1, -1, 0, 0, 0 }, { "alu", { 0x81 }, 1, -1, 0, 0, 0 },
	{ "alu", { 0x83 }, 1, -1, 0, 0, 0 },
	{ "logic", { 0x21 }, 1, -1, 0, 0, 0 }, { "logic", { 0x08 }, 1, -1, 0, 0, 0 },
	{ "logic", { 0x33 }, 1, -1, 0, 0, 0 }, { "logic", { 0x85 }, 1, -1, 0, 0, 0 },
	{ "logic", { 0x84 }, 1, -1, 0, 0, 0 }, { "logic", { 0xa9 }, 1, -2, 0, 0, 0 },
	{ "logic", { 0xf7 }, 1, 0, 0, 0, 0 }, { "logic", { 0xf6 }, 1, 2, 0, 0, 0 },
	{ "alu", { 0xf7 }, 1, 3, 0, 0, 0 }, { "alu", { 0xfe }, 1, 0, 0, 0, 0 },
	{ "alu", { 0xff }, 1, 1, 0, 0, 0 },
	/* shifts and rotates */
	{ "shift", { 0xd3 }, 1, -1, 0, 0, 0 }, { "shift", { 0xd2 }, 1, -1, 0, 0, 0 },
	{ "shift", { 0xc1 }, 1, -1, 0, 0, 0 }, { "shift", { 0xd1 }, 1, -1, 0, 0, 0 },
	{ "shift", { 0xc0 }, 1, -1, 0, 0, 0 },
	{ "shift", { 0x0f, 0xa4 }, 2, -1, 0, 0, 0 }, { "shift", { 0x0f, 0xa5 }, 2, -1, 0, 0, 0 },
	{ "shift", { 0x0f, 0xac }, 2, -1, 0, 0, 0 }, { "shift", { 0x0f, 0xad }, 2, -1, 0, 0, 0 },
	/* multiply and divide */
	{ "muldiv", { 0xf7 }, 1, 4, 0, 0, 0 }, { "muldiv", { 0xf7 }, 1, 5, 0, 0, 0 },
	{ "muldiv", { 0xf6 }, 1, 4, 0, 0, 0 }, { "muldiv", { 0xf6 }, 1, 5, 0, 0, 0 },
	{ "muldiv", { 0xf7 }, 1, 6, 0, 0, 0 }, { "muldiv", { 0xf7 }, 1, 7, 0, 0, 0 },
	{ "muldiv", { 0xf6 }, 1, 6, 0, 0, 0 }, { "muldiv", { 0xf6 }, 1, 7, 0, 0, 0 },
	{ "muldiv", { 0x0f, 0xaf }, 2, -1, 0, 0, 0 }, { "muldiv", { 0x69 }, 1, -1, 0, 0, 0 },
	{ "muldiv", { 0x6b }, 1, -1, 0, 0, 0 },
	/* data movement */
	{ "move", { 0x89 }, 1, -1, 0, 0, 0 }, { "move", { 0x8a }, 1, -1, 0, 0, 0 },
	{ "move", { 0x8d }, 1, -1, 1, 0, 0 }, { "move", { 0xc7 }, 1, 0, 0, 0, 0 },
	{ "move", { 0xc6 }, 1, 0, 0, 0, 0 }, { "move", { 0xb8 }, 1, -2, 0, 0, 0 },
	{ "move", { 0x0f, 0xb6 }, 2, -1, 0, 0, 0 }, { "move", { 0x0f, 0xbf }, 2, -1, 0, 0, 0 },
	{ "move", { 0x63 }, 1, -1, 0, 0, 0 }, { "move", { 0x87 }, 1, -1, 0, 0, 0 },
	{ "move", { 0x86 }, 1, -1, 0, 0, 0 }, { "move", { 0x93 }, 1, -2, 0, 0, 0 },
	{ "move", { 0x0f, 0xc1 }, 2, -1, 0, 0, 0 }, { "move", { 0x0f, 0xb1 }, 2, -1, 0, 0, 0 },
	{ "move", { 0x0f, 0xb0 }, 2, -1, 0, 0, 0 }, { "move", { 0x0f, 0xc9 }, 2, -2, 0, 0, 0 },
	{ "move", { 0x0f, 0x44 }, 2, -1, 0, 0, 0 }, { "move", { 0x0f, 0x4f }, 2, -1, 0, 0, 0 },
	{ "move", { 0x0f, 0x42 }, 2, -1, 0, 0, 0 }, { "move", { 0x0f, 0x9c }, 2, 0, 0, 0, 0 },
	{ "move", { 0x0f, 0x96 }, 2, 0, 0, 0, 0 }, { "move", { 0x98 }, 1, -2, 0, 0, 0 },
	{ "move", { 0x99 }, 1, -2, 0, 0, 0 }, { "move", { 0x9f }, 1, -2, 0, 0, 0 },
	{ "move", { 0x9e }, 1, -2, 0, 0, 0 }, { "move", { 0x0f, 0xc7 }, 2, 1, 1, 0, K_CX8 },
	{ "move", { 0x0f, 0x38, 0xf0 }, 3, -1, 1, 0, K_NEEDS_MOVBE },
	{ "move", { 0x0f, 0x38, 0xf1 }, 3, -1, 1, 0, K_NEEDS_MOVBE },
	/* stack */
	{ "stack", { 0x50 }, 1, -2, 0, 0, K_STACK }, { "stack", { 0x5b }, 1, -2, 0, 0, K_STACK },
	{ "stack", { 0x6a }, 1, -2, 0, 0, K_STACK }, { "stack", { 0x68 }, 1, -2, 0, 0, K_STACK },
	{ "stack", { 0xff }, 1, 6, 0, 0, K_STACK }, { "stack", { 0x8f }, 1, 0, 0, 0, K_STACK },
	{ "stack", { 0x9c }, 1, -2, 0, 0, K_STACK }, { "stack", { 0xc9 }, 1, -2, 0, 0, K_STACK },
	{ "stack", { 0xc8 }, 1, -2, 0, 0, K_STACK },
	/* bit operations */
	{ "bit", { 0x0f, 0xa3 }, 2, -1, 0, 0, K_BT },
	{ "bit", { 0x0f, 0xab }, 2, -1, 0, 0, K_BT },
	{ "bit", { 0x0f, 0xb3 }, 2, -1, 0, 0, K_BT },
	{ "bit", { 0x0f, 0xbb }, 2, -1, 0, 0, K_BT },
	{ "bit", { 0x0f, 0xba }, 2, 4, 0, 0, 0 },
	{ "bit", { 0x0f, 0xba }, 2, 7, 0, 0, 0 },
	{ "bit", { 0x0f, 0xbc }, 2, -1, 0, 0, 0 },
	{ "bit", { 0x0f, 0xbd }, 2, -1, 0, 0, 0 },
	{ "bit", { 0xf3, 0x0f, 0xb8 }, 3, -1, 0, 0, K_NEEDS_POPCNT },
	{ "bit", { 0xf3, 0x0f, 0xbd }, 3, -1, 0, 0, K_NEEDS_LZCNT },
	/* string operations */
	{ "string", { 0xa4 }, 1, -2, 0, 0, K_STR }, { "string", { 0xa5 }, 1, -2, 0, 0, K_STR },
	{ "string", { 0xaa }, 1, -2, 0, 0, K_STR }, { "string", { 0xab }, 1, -2, 0, 0, K_STR },
	{ "string", { 0xac }, 1, -2, 0, 0, K_STR }, { "string", { 0xae }, 1, -2, 0, 0, K_STR },
	{ "string", { 0xa6 }, 1, -2, 0, 0, K_STR }, { "string", { 0xa7 }, 1, -2, 0, 0, K_STR },
	/* misc */
	{ "misc", { 0xf5 }, 1, -2, 0, 0, 0 }, { "misc", { 0xf8 }, 1, -2, 0, 0, 0 },
	{ "misc", { 0xf9 }, 1, -2, 0, 0, 0 }, { "misc", { 0xfd }, 1, -2, 0, 0, 0 },
	{ "misc", { 0xf2, 0x0f, 0x38, 0xf0 }, 4, -1, 0, 0, K_NEEDS_CRC },
	{ "misc", { 0xf2, 0x0f, 0x38, 0xf1 }, 4, -1, 0, 0, K_NEEDS_CRC },
	{ "misc", { 0x90 }, 1, -2, 0, 0, 0 }, { "misc", { 0x0f, 0x1f }, 2, 0, 0, 0, 0 },
};
#define N_TMPL (sizeof(tmpls) / sizeof(tmpls[0]))

static bool host_has(unsigned kind)
{
	unsigned a, b, c, d;
	switch (kind) {
	case K_NEEDS_MOVBE: __cpuid(1, a, b, c, d); return c & (1u << 22);
	case K_NEEDS_POPCNT: __cpuid(1, a, b, c, d); return c & (1u << 23);
	case K_NEEDS_CRC: __cpuid(1, a, b, c, d); return c & (1u << 20);
	case K_NEEDS_LZCNT: __cpuid(0x80000001, a, b, c, d); return c & (1u << 5);
	case K_NEEDS_BMI1: __cpuid_count(7, 0, a, b, c, d); return b & (1u << 3);
	default: return true;
	}
}

struct gen {
	uint8_t bytes[16];
	unsigned len;
	struct emu_insn in;
	uint64_t gpr[16];
	uint64_t flags;
};

/* Random legacy/REX prefixes compatible with the template. */
static unsigned gen_prefixes(uint8_t *b, const struct tmpl *t)
{
	unsigned n = 0;
	if (t->kind == K_STR && rng() % 2)
		b[n++] = (rng() & 1) ? 0xf3 : 0xf2;
	if (rng() % 4 == 0 && t->kind != K_CX8 && t->op[0] != 0x63)
		b[n++] = 0x66;
	if (rng() % 2 && t->kind != K_CX8)
		b[n++] = (uint8_t)(0x40 | (rng() & 15));
	else if (t->kind == K_CX8 && rng() % 2)
		b[n++] = 0x48;
	return n;
}

static bool generate(const struct tmpl *t, struct gen *g)
{
	uint8_t *b = g->bytes;
	unsigned n = 0;
	if (t->op[0] == 0xf2 || t->op[0] == 0xf3) {
		/* Mandatory prefix first, then optional 66/REX. */
		b[n++] = t->op[0];
		n += gen_prefixes(b + n, t);
		memcpy(b + n, t->op + 1, t->oplen - 1u);
		n += t->oplen - 1u;
	} else {
		n += gen_prefixes(b, t);
		memcpy(b + n, t->op, t->oplen);
		n += t->oplen;
	}
	if (t->reg == -2 && t->oplen == 1 && (t->op[0] & 0xf8) == 0x50)
		b[n - 1] = (uint8_t)(0x50 | (rng() & 7));
	if (t->reg == -2 && t->oplen == 1 && (t->op[0] & 0xf8) == 0x58)
		b[n - 1] = (uint8_t)(0x58 | (rng() & 7));
	if (t->reg == -2 && t->oplen == 1 && (t->op[0] & 0xf8) == 0xb8)
		b[n - 1] = (uint8_t)(0xb8 | (rng() & 7));
	if (t->reg == -2 && t->oplen == 1 && (t->op[0] & 0xf8) == 0x90)
		b[n - 1] = (uint8_t)(0x90 | (rng() & 7));
	if (t->reg == -2 && t->oplen == 2 && t->op[1] == 0xc9)
		b[n - 1] = (uint8_t)(0xc8 | (rng() & 7));
	unsigned modrm_at = n;
	for (unsigned i = n; i < 16; i++)
		b[i] = (uint8_t)rng();
	if (t->reg != -2) {
		uint8_t m = b[modrm_at];
		if (t->reg >= 0)
			m = (uint8_t)((m & 0xc7) | (t->reg << 3));
		if (t->mem_only && (m >> 6) == 3)
			m &= 0x3f;
		/* Avoid RIP-relative and absolute forms: the window is elsewhere. */
		if ((m >> 6) == 0 && (m & 7) == 5)
			m |= 0x40;
		b[modrm_at] = m;
		if ((m >> 6) != 3 && (m & 7) == 4 && (b[modrm_at + 1] & 7) == 5 && (m >> 6) == 0)
			b[modrm_at + 1] &= 0xf8;  /* SIB without base: use RAX as base */
	}
	if (t->op[0] == 0xc8 && t->oplen == 1)
		b[n + 2] &= 3;  /* ENTER nesting level 0-3 */
	if (emu_decode_mode(EMU_MODE_LONG64, b, 16, &g->in) != 0)
		return false;
	g->len = g->in.len;
	/* Registers: random, then pointers into the data window. */
	for (unsigned r = 0; r < 16; r++)
		g->gpr[r] = rng();
	if (rng() % 4 == 0)
		for (unsigned r = 0; r < 16; r++)
			g->gpr[r] &= 0xff;   /* small values reach the interesting edges */
	g->gpr[RSP] = DATA_BASE + 0xc000 + (rng() % 256) * 8;
	if (t->kind == K_STACK)
		g->gpr[RBP] = DATA_BASE + 0xd000 + (rng() % 256) * 8;
	if (t->kind == K_STR) {
		g->gpr[RSI] = DATA_BASE + 0x2000 + rng() % 0x1000;
		g->gpr[RDI] = DATA_BASE + 0x4000 + rng() % 0x1000;
		g->gpr[RCX] = rng() % 24;
	}
	if (t->kind == K_BT && t->reg != -2 && g->in.mod != 3)
		g->gpr[g->in.reg] = (uint64_t)((int64_t)(rng() % 2048) - 1024);
	if (g->in.opsize == 1 && g->in.mod != 3 && !g->in.rex) {
		/* fine: byte registers AH..BH are not address registers */
	}
	if (t->reg != -2 && g->in.mod != 3) {
		uint64_t target = DATA_BASE + 0x8000 + rng() % 0x800;
		uint8_t base = g->in.base, index = g->in.index;
		if (index != EMU_REG_NONE && index != base && index != RSP)
			g->gpr[index] = rng() % 64;
		uint64_t idx = index != EMU_REG_NONE ? g->gpr[index] << g->in.scale : 0;
		if (base == EMU_REG_NONE)
			return false;
		if (base == RSP) {
			if (index == RSP)
				return false;
			/* RSP stays where it is: the displacement decides. */
			if (idx + (uint64_t)(int64_t)g->in.disp + g->gpr[RSP] - DATA_BASE > DATA_SIZE - 64)
				return false;
		} else if (base == index) {
			if (g->in.scale != 0)
				return false;
			g->gpr[base] = (target - (uint64_t)(int64_t)g->in.disp) / 2;
			if (((g->gpr[base] * 2 + (uint64_t)(int64_t)g->in.disp) - DATA_BASE) > DATA_SIZE - 64)
				return false;
		} else {
			g->gpr[base] = target - idx - (uint64_t)(int64_t)g->in.disp;
		}
		if (t->kind == K_STR || t->kind == K_STACK) {
			/* the pointer registers above must survive */
		}
	}
	g->flags = (rng() & (X86_FLAGS_ARITH)) | X86_FLAG_FIXED | X86_FLAG_IF;
	if (t->kind == K_STR && rng() % 2)
		g->flags |= X86_FLAG_DF;
	return true;
}

static const char *gpr_names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
				     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };

struct group_count { const char *name; unsigned n, faults; };

static int exc_class(int sig)
{
	switch (sig) {
	case SIGFPE: return X86_EXC_DE;
	case SIGILL: return X86_EXC_UD;
	case 0: return -1;
	default: return X86_EXC_GP;
	}
}

static int emu_class(int v)
{
	if (v == X86_EXC_PF || v == X86_EXC_SS || v == X86_EXC_AC)
		return X86_EXC_GP;
	return v;
}

static unsigned run_case(struct gen *g, char *why, size_t whylen)
{
	/* Same initial memory on both sides. */
	for (unsigned i = 0; i < DATA_SIZE; i += 8) {
		uint64_t v = rng();
		memcpy(native_data + i, &v, 8);
	}
	memcpy(emu_data, native_data, DATA_SIZE);
	memcpy(nst->gpr, g->gpr, sizeof(g->gpr));
	nst->rflags = g->flags;
	build_stub(g->bytes, g->len);

	sig_caught = 0;
	if (sigsetjmp(sig_env, 1) == 0)
		((void (*)(void))code)();
	int nexc = exc_class(sig_caught);

	struct harness h;
	harness_init(&h, emu_data, DATA_BASE, DATA_SIZE, EMU_MODE_LONG64);
	h.cpu.cpl = 3;
	memcpy(h.cpu.gpr, g->gpr, sizeof(g->gpr));
	emu_set_rflags(&h.cpu, g->flags);
	/* The instruction itself is fetched from a copy in the window's last page. */
	uint64_t at = DATA_BASE + DATA_SIZE - 32;
	memcpy(emu_data + DATA_SIZE - 32, g->bytes, 16);
	memcpy(native_data + DATA_SIZE - 32, g->bytes, 16);
	h.cpu.rip = at;
	/* What the SDM leaves undefined for this execution (diff_flags.c). */
	struct diff_effect eff;
	diff_effect_of(&g->in, &h.cpu, &eff);
	int eexc = emu_class(harness_step(&h));
	if (nexc != eexc) {
		snprintf(why, whylen, "fault: host %d, engine %d", nexc, eexc);
		return 1;
	}
	if (nexc >= 0)
		return 2;
	if (eff.dest_undef)
		return 0;
	uint32_t undef = eff.undef;
	unsigned undef_reg = eff.dest_undef_if_zf && (emu_get_rflags(&h.cpu) & X86_FLAG_ZF) ? eff.dest_reg : 16;
	for (unsigned r = 0; r < 16; r++) {
		if (r != undef_reg && nst->gpr[r] != h.cpu.gpr[r]) {
			snprintf(why, whylen, "%s: host %#llx, engine %#llx", gpr_names[r],
				 (unsigned long long)nst->gpr[r], (unsigned long long)h.cpu.gpr[r]);
			return 1;
		}
	}
	uint64_t ef = emu_get_rflags(&h.cpu);
	uint32_t mask = (X86_FLAGS_ARITH | X86_FLAG_DF) & ~undef;
	if ((ef ^ nst->rflags) & mask) {
		snprintf(why, whylen, "flags: host %#llx, engine %#llx (compared %#x)", (unsigned long long)nst->rflags,
			 (unsigned long long)ef, mask);
		return 1;
	}
	if (h.cpu.rip != at + g->len) {
		snprintf(why, whylen, "rip advanced by %llu", (unsigned long long)(h.cpu.rip - at));
		return 1;
	}
	if (memcmp(native_data, emu_data, DATA_SIZE) != 0) {
		for (unsigned i = 0; i < DATA_SIZE; i++)
			if (native_data[i] != emu_data[i]) {
				snprintf(why, whylen, "memory at +%#x: host %02x, engine %02x", i, native_data[i], emu_data[i]);
				break;
			}
		return 1;
	}
	return 0;
}

Test(native_diff, gp_instructions_64)
{
	if (!setup())
		cr_skip_test("cannot map the fixed test windows on this host");
	unsigned per = getenv("VESSEL_DIFF_LONG") ? 200000 : 3000;
	struct group_count groups[16];
	unsigned ng = 0, bad = 0;
	for (unsigned k = 0; k < N_TMPL; k++) {
		const struct tmpl *t = &tmpls[k];
		if (!host_has(t->kind))
			continue;
		unsigned gi;
		for (gi = 0; gi < ng && strcmp(groups[gi].name, t->group); gi++)
			;
		if (gi == ng)
			groups[ng++] = (struct group_count){ t->group, 0, 0 };
		unsigned cases = per / 8 + 1;
		for (unsigned c = 0; c < cases; c++) {
			struct gen g;
			if (!generate(t, &g))
				continue;
			char why[160] = "";
			unsigned r = run_case(&g, why, sizeof(why));
			groups[gi].n++;
			if (r == 2)
				groups[gi].faults++;
			if (r == 1 && bad++ < 30) {
				char hex[64] = "";
				for (unsigned i = 0; i < g.len; i++)
					sprintf(hex + 3 * i, "%02x ", g.bytes[i]);
				cr_log_error("%s: %s-> %s", t->group, hex, why);
			}
		}
	}
	for (unsigned gi = 0; gi < ng; gi++)
		printf("native diff, group %-7s: %u cases (%u faulted on both)\n", groups[gi].name, groups[gi].n,
		       groups[gi].faults);
	cr_assert_eq(bad, 0, "%u cases differ from the host CPU", bad);
}
