/* Differential test of every MMX/SSE..SSE4.2 encoding the fpu module
 * registers: the same instruction bytes run natively on the host and
 * through the handler, with random operands (biased to FP special values),
 * random immediates and random MXCSR rounding/DAZ/FTZ; registers, memory,
 * MXCSR and (for the flag-setting ones) EFLAGS are compared. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "harness.h"
#include "native.h"

/* encoding tables below leave ModRM.reg at 0 unless a group needs it */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct scase {
	uint8_t d[16], s[16], mem[16];
	uint64_t rax, rcx, rdx;
	uint32_t mx, save;
	uint8_t zf, pf, cf, sf, of, pad[11];
} __attribute__((aligned(16)));

enum {
	F_MEM = 1,      /* memory form exists */
	F_REG = 2,      /* register form exists */
	F_IMM = 4,
	F_MMX = 8,      /* touches MMX registers */
	F_FLAGS = 16,
	F_W = 32,       /* also test with REX.W */
	F_BOTH = F_MEM | F_REG,
};

struct enc {
	uint8_t map, op, mp, flags;
	uint8_t reg;    /* ModRM.reg (group opcodes); else 0 */
};

#define NONE EMU_MP_NONE
#define P66 EMU_MP_66
#define PF3 EMU_MP_F3
#define PF2 EMU_MP_F2
#define M0F EMU_MAP_0F
#define M38 EMU_MAP_0F38
#define M3A EMU_MAP_0F3A

static const struct enc encs[] = {
	{ M0F, 0x10, NONE, F_BOTH }, { M0F, 0x10, P66, F_BOTH }, { M0F, 0x10, PF3, F_BOTH }, { M0F, 0x10, PF2, F_BOTH },
	{ M0F, 0x11, NONE, F_BOTH }, { M0F, 0x11, P66, F_BOTH }, { M0F, 0x11, PF3, F_BOTH }, { M0F, 0x11, PF2, F_BOTH },
	{ M0F, 0x12, NONE, F_BOTH }, { M0F, 0x12, P66, F_MEM }, { M0F, 0x12, PF2, F_BOTH }, { M0F, 0x12, PF3, F_BOTH },
	{ M0F, 0x13, NONE, F_MEM }, { M0F, 0x13, P66, F_MEM },
	{ M0F, 0x14, NONE, F_BOTH }, { M0F, 0x14, P66, F_BOTH }, { M0F, 0x15, NONE, F_BOTH }, { M0F, 0x15, P66, F_BOTH },
	{ M0F, 0x16, NONE, F_BOTH }, { M0F, 0x16, P66, F_MEM }, { M0F, 0x16, PF3, F_BOTH },
	{ M0F, 0x17, NONE, F_MEM }, { M0F, 0x17, P66, F_MEM },
	{ M0F, 0x28, NONE, F_BOTH }, { M0F, 0x28, P66, F_BOTH }, { M0F, 0x29, NONE, F_BOTH }, { M0F, 0x29, P66, F_BOTH },
	{ M0F, 0x2b, NONE, F_MEM }, { M0F, 0x2b, P66, F_MEM },
	{ M0F, 0x2a, NONE, F_BOTH | F_MMX }, { M0F, 0x2a, P66, F_BOTH | F_MMX },
	{ M0F, 0x2a, PF3, F_BOTH | F_W }, { M0F, 0x2a, PF2, F_BOTH | F_W },
	{ M0F, 0x2c, NONE, F_BOTH | F_MMX }, { M0F, 0x2c, P66, F_BOTH | F_MMX },
	{ M0F, 0x2d, NONE, F_BOTH | F_MMX }, { M0F, 0x2d, P66, F_BOTH | F_MMX },
	{ M0F, 0x2c, PF3, F_BOTH | F_W }, { M0F, 0x2c, PF2, F_BOTH | F_W },
	{ M0F, 0x2d, PF3, F_BOTH | F_W }, { M0F, 0x2d, PF2, F_BOTH | F_W },
	{ M0F, 0x2e, NONE, F_BOTH | F_FLAGS }, { M0F, 0x2e, P66, F_BOTH | F_FLAGS },
	{ M0F, 0x2f, NONE, F_BOTH | F_FLAGS }, { M0F, 0x2f, P66, F_BOTH | F_FLAGS },
	{ M0F, 0x50, NONE, F_REG }, { M0F, 0x50, P66, F_REG },
	{ M0F, 0x51, NONE, F_BOTH }, { M0F, 0x51, P66, F_BOTH }, { M0F, 0x51, PF3, F_BOTH }, { M0F, 0x51, PF2, F_BOTH },
	{ M0F, 0x54, NONE, F_BOTH }, { M0F, 0x55, P66, F_BOTH }, { M0F, 0x56, NONE, F_BOTH }, { M0F, 0x57, P66, F_BOTH },
	{ M0F, 0x58, NONE, F_BOTH }, { M0F, 0x58, P66, F_BOTH }, { M0F, 0x58, PF3, F_BOTH }, { M0F, 0x58, PF2, F_BOTH },
	{ M0F, 0x59, NONE, F_BOTH }, { M0F, 0x59, P66, F_BOTH }, { M0F, 0x59, PF3, F_BOTH }, { M0F, 0x59, PF2, F_BOTH },
	{ M0F, 0x5a, NONE, F_BOTH }, { M0F, 0x5a, P66, F_BOTH }, { M0F, 0x5a, PF3, F_BOTH }, { M0F, 0x5a, PF2, F_BOTH },
	{ M0F, 0x5b, NONE, F_BOTH }, { M0F, 0x5b, P66, F_BOTH }, { M0F, 0x5b, PF3, F_BOTH },
	{ M0F, 0x5c, NONE, F_BOTH }, { M0F, 0x5c, P66, F_BOTH }, { M0F, 0x5c, PF3, F_BOTH }, { M0F, 0x5c, PF2, F_BOTH },
	{ M0F, 0x5d, NONE, F_BOTH }, { M0F, 0x5d, P66, F_BOTH }, { M0F, 0x5d, PF3, F_BOTH }, { M0F, 0x5d, PF2, F_BOTH },
	{ M0F, 0x5e, NONE, F_BOTH }, { M0F, 0x5e, P66, F_BOTH }, { M0F, 0x5e, PF3, F_BOTH }, { M0F, 0x5e, PF2, F_BOTH },
	{ M0F, 0x5f, NONE, F_BOTH }, { M0F, 0x5f, P66, F_BOTH }, { M0F, 0x5f, PF3, F_BOTH }, { M0F, 0x5f, PF2, F_BOTH },
	{ M0F, 0x6c, P66, F_BOTH }, { M0F, 0x6d, P66, F_BOTH },
	{ M0F, 0x6e, NONE, F_BOTH | F_MMX | F_W }, { M0F, 0x6e, P66, F_BOTH | F_W },
	{ M0F, 0x6f, NONE, F_BOTH | F_MMX }, { M0F, 0x6f, P66, F_BOTH }, { M0F, 0x6f, PF3, F_BOTH },
	{ M0F, 0x70, NONE, F_BOTH | F_MMX | F_IMM }, { M0F, 0x70, P66, F_BOTH | F_IMM },
	{ M0F, 0x70, PF3, F_BOTH | F_IMM }, { M0F, 0x70, PF2, F_BOTH | F_IMM },
	{ M0F, 0x71, NONE, F_REG | F_MMX | F_IMM, 2 }, { M0F, 0x71, NONE, F_REG | F_MMX | F_IMM, 4 },
	{ M0F, 0x71, NONE, F_REG | F_MMX | F_IMM, 6 }, { M0F, 0x72, P66, F_REG | F_IMM, 2 },
	{ M0F, 0x72, P66, F_REG | F_IMM, 4 }, { M0F, 0x72, P66, F_REG | F_IMM, 6 },
	{ M0F, 0x73, P66, F_REG | F_IMM, 2 }, { M0F, 0x73, P66, F_REG | F_IMM, 3 },
	{ M0F, 0x73, P66, F_REG | F_IMM, 6 }, { M0F, 0x73, P66, F_REG | F_IMM, 7 },
	{ M0F, 0x73, NONE, F_REG | F_MMX | F_IMM, 2 }, { M0F, 0x72, NONE, F_REG | F_MMX | F_IMM, 4 },
	{ M0F, 0x71, P66, F_REG | F_IMM, 4 },
	{ M0F, 0x7c, P66, F_BOTH }, { M0F, 0x7c, PF2, F_BOTH }, { M0F, 0x7d, P66, F_BOTH }, { M0F, 0x7d, PF2, F_BOTH },
	{ M0F, 0x7e, NONE, F_BOTH | F_MMX | F_W }, { M0F, 0x7e, P66, F_BOTH | F_W }, { M0F, 0x7e, PF3, F_BOTH },
	{ M0F, 0x7f, NONE, F_BOTH | F_MMX }, { M0F, 0x7f, P66, F_BOTH }, { M0F, 0x7f, PF3, F_BOTH },
	{ M0F, 0xc2, NONE, F_BOTH | F_IMM }, { M0F, 0xc2, P66, F_BOTH | F_IMM },
	{ M0F, 0xc2, PF3, F_BOTH | F_IMM }, { M0F, 0xc2, PF2, F_BOTH | F_IMM },
	{ M0F, 0xc4, NONE, F_BOTH | F_MMX | F_IMM }, { M0F, 0xc4, P66, F_BOTH | F_IMM },
	{ M0F, 0xc5, NONE, F_REG | F_MMX | F_IMM }, { M0F, 0xc5, P66, F_REG | F_IMM },
	{ M0F, 0xc6, NONE, F_BOTH | F_IMM }, { M0F, 0xc6, P66, F_BOTH | F_IMM },
	{ M0F, 0xd0, P66, F_BOTH }, { M0F, 0xd0, PF2, F_BOTH },
	{ M0F, 0xd6, P66, F_BOTH }, { M0F, 0xd6, PF3, F_REG | F_MMX }, { M0F, 0xd6, PF2, F_REG | F_MMX },
	{ M0F, 0xd7, NONE, F_REG | F_MMX }, { M0F, 0xd7, P66, F_REG },
	{ M0F, 0xe6, P66, F_BOTH }, { M0F, 0xe6, PF2, F_BOTH }, { M0F, 0xe6, PF3, F_BOTH },
	{ M0F, 0xe7, NONE, F_MEM | F_MMX }, { M0F, 0xe7, P66, F_MEM }, { M0F, 0xf0, PF2, F_MEM },
	{ M38, 0x10, P66, F_BOTH }, { M38, 0x14, P66, F_BOTH }, { M38, 0x15, P66, F_BOTH },
	{ M38, 0x17, P66, F_BOTH | F_FLAGS }, { M38, 0x2a, P66, F_MEM },
	{ M3A, 0x08, P66, F_BOTH | F_IMM }, { M3A, 0x09, P66, F_BOTH | F_IMM }, { M3A, 0x0a, P66, F_BOTH | F_IMM },
	{ M3A, 0x0b, P66, F_BOTH | F_IMM }, { M3A, 0x0c, P66, F_BOTH | F_IMM }, { M3A, 0x0d, P66, F_BOTH | F_IMM },
	{ M3A, 0x0e, P66, F_BOTH | F_IMM }, { M3A, 0x0f, NONE, F_BOTH | F_IMM | F_MMX }, { M3A, 0x0f, P66, F_BOTH | F_IMM },
	{ M3A, 0x14, P66, F_BOTH | F_IMM }, { M3A, 0x15, P66, F_BOTH | F_IMM }, { M3A, 0x16, P66, F_BOTH | F_IMM | F_W },
	{ M3A, 0x17, P66, F_BOTH | F_IMM }, { M3A, 0x20, P66, F_BOTH | F_IMM }, { M3A, 0x21, P66, F_BOTH | F_IMM },
	{ M3A, 0x22, P66, F_BOTH | F_IMM | F_W }, { M3A, 0x40, P66, F_BOTH | F_IMM }, { M3A, 0x41, P66, F_BOTH | F_IMM },
	{ M3A, 0x42, P66, F_BOTH | F_IMM },
	{ M3A, 0x60, P66, F_BOTH | F_IMM | F_FLAGS | F_W }, { M3A, 0x61, P66, F_BOTH | F_IMM | F_FLAGS | F_W },
	{ M3A, 0x62, P66, F_BOTH | F_IMM | F_FLAGS }, { M3A, 0x63, P66, F_BOTH | F_IMM | F_FLAGS },
};

/* Generic two-operand integer ops in both MMX and XMM forms, and the
 * SSE4.1 integer ones (66 only). */
static const uint8_t int_both_0f[] = {
	0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x74, 0x75, 0x76,
	0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
	0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
	0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe,
};
static const uint8_t int_both_38[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x1c, 0x1d, 0x1e };
static const uint8_t int_66_38[] = {
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x28, 0x29, 0x2b, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35,
	0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41,
};

#define OFF(f) ((uint8_t)offsetof(struct scase, f))

static size_t build(uint8_t *c, const struct enc *e, bool mem, bool w, uint8_t imm)
{
	size_t n = 0;
#define B(...) do { const uint8_t t_[] = { __VA_ARGS__ }; memcpy(c + n, t_, sizeof(t_)); n += sizeof(t_); } while (0)
	B(0x0f, 0xae, 0x5f, OFF(save));           /* stmxcsr [rdi+save] */
	B(0x0f, 0xae, 0x57, OFF(mx));             /* ldmxcsr [rdi+mx] */
	if (e->flags & F_MMX) {
		B(0x0f, 0x6f, 0x47, OFF(d));          /* movq mm0, [rdi+d] */
		B(0x0f, 0x6f, 0x4f, OFF(s));
	}
	B(0xf3, 0x0f, 0x6f, 0x47, OFF(d));        /* movdqu xmm0, [rdi+d] */
	B(0xf3, 0x0f, 0x6f, 0x4f, OFF(s));
	B(0x48, 0x8b, 0x47, OFF(rax));
	B(0x48, 0x8b, 0x4f, OFF(rcx));
	B(0x48, 0x8b, 0x57, OFF(rdx));
	B(0x48, 0x8d, 0x77, OFF(mem));            /* lea rsi, [rdi+mem] */
	B(0x48, 0x39, 0xf6);                      /* cmp rsi, rsi: known flags */
	static const uint8_t pfx[] = { 0, 0x66, 0xf3, 0xf2 };
	if (e->mp != NONE)
		B(pfx[e->mp]);
	if (w)
		B(0x48);
	B(0x0f);
	if (e->map == M38)
		B(0x38);
	else if (e->map == M3A)
		B(0x3a);
	B(e->op);
	B(mem ? (uint8_t)((e->reg << 3) | 6) : (uint8_t)(0xc0 | (e->reg << 3) | 1));
	if (e->flags & F_IMM)
		B(imm);
	B(0x0f, 0x94, 0x47, OFF(zf));
	B(0x0f, 0x9a, 0x47, OFF(pf));
	B(0x0f, 0x92, 0x47, OFF(cf));
	B(0x0f, 0x98, 0x47, OFF(sf));
	B(0x0f, 0x90, 0x47, OFF(of));
	B(0xf3, 0x0f, 0x7f, 0x47, OFF(d));
	B(0xf3, 0x0f, 0x7f, 0x4f, OFF(s));
	if (e->flags & F_MMX) {
		B(0x0f, 0x7f, 0x47, OFF(d));          /* movq [rdi+d], mm0 (low 8 bytes) */
		B(0x0f, 0x7f, 0x4f, OFF(s));
		B(0x0f, 0x77);                        /* emms */
	}
	B(0x48, 0x89, 0x47, OFF(rax));
	B(0x48, 0x89, 0x4f, OFF(rcx));
	B(0x48, 0x89, 0x57, OFF(rdx));
	B(0x0f, 0xae, 0x5f, OFF(mx));             /* stmxcsr [rdi+mx] */
	B(0x0f, 0xae, 0x57, OFF(save));           /* ldmxcsr [rdi+save] */
	B(0xc3);
#undef B
	return n;
}

#define SC_ADDR 0x2000u

static int emulate(struct emu_cpu *cpu, const struct enc *e, bool mem, bool w, uint8_t imm, struct scase *x)
{
	memcpy(cpu->xmm[0].b, x->d, 16);
	memcpy(cpu->xmm[1].b, x->s, 16);
	if (e->flags & F_MMX) {
		uint64_t a, b;
		memcpy(&a, x->d, 8);
		memcpy(&b, x->s, 8);
		fpu_mmx_set(cpu, 0, a);
		fpu_mmx_set(cpu, 1, b);
	}
	cpu->gpr[RAX] = x->rax;
	cpu->gpr[RCX] = x->rcx;
	cpu->gpr[RDX] = x->rdx;
	cpu->rflags = X86_FLAG_FIXED | X86_FLAG_ZF | X86_FLAG_PF;   /* as after cmp rsi, rsi */
	cpu->mxcsr = x->mx;
	memcpy(h_mem + SC_ADDR, x->mem, 16);
	struct emu_insn in = mem ? h_insn_mem(e->map, e->op, e->mp, e->reg, SC_ADDR)
				 : h_insn_reg(e->map, e->op, e->mp, e->reg, 1);
	in.imm = imm;
	if (w) {
		in.rex = 0x48;
		in.opsize = 8;
	}
	int v = h_exec(cpu, &in);
	memcpy(x->d, cpu->xmm[0].b, 16);
	memcpy(x->s, cpu->xmm[1].b, 16);
	if (e->flags & F_MMX) {
		uint64_t a = fpu_mmx_get(cpu, 0), b = fpu_mmx_get(cpu, 1);
		memcpy(x->d, &a, 8);
		memcpy(x->s, &b, 8);
	}
	x->rax = cpu->gpr[RAX];
	x->rcx = cpu->gpr[RCX];
	x->rdx = cpu->gpr[RDX];
	x->mx = cpu->mxcsr;
	memcpy(x->mem, h_mem + SC_ADDR, 16);
	x->zf = !!(cpu->rflags & X86_FLAG_ZF);
	x->pf = !!(cpu->rflags & X86_FLAG_PF);
	x->cf = !!(cpu->rflags & X86_FLAG_CF);
	x->sf = !!(cpu->rflags & X86_FLAG_SF);
	x->of = !!(cpu->rflags & X86_FLAG_OF);
	return v;
}

/* 32-bit lane biased to FP specials. */
static uint32_t rand_f32(void)
{
	static const uint32_t special[] = { 0, 0x80000000u, 0x3f800000u, 0xbf800000u, 0x7f800000u, 0xff800000u,
					    0x7fc00000u, 0xffc00000u, 0x7fa00000u, 0x00000001u, 0x807fffffu,
					    0x7f7fffffu, 0x4f000000u, 0xcf000000u, 0x5f000000u, 0x00800000u };
	uint64_t r = h_rand();
	switch (r % 8) {
	case 0: return special[(r >> 8) % 16];
	case 1: { float f = (float)(int32_t)(r >> 32) / (float)(1 << ((r >> 8) % 24)); uint32_t u; memcpy(&u, &f, 4); return u; }
	case 2: return (uint32_t)(r >> 16) & 0x807fffffu;           /* denormal */
	case 3: return (uint32_t)(h_rand());
	default: return (((uint32_t)(r >> 20) % 60 + 97) << 23) | ((uint32_t)(r >> 32) & 0x807fffffu);
	}
}

static uint64_t rand_f64(void)
{
	static const uint64_t special[] = { 0, 1ull << 63, 0x3ff0000000000000ull, 0x7ff0000000000000ull,
					    0xfff8000000000000ull, 0x7ff4000000000000ull, 1, 0x800fffffffffffffull,
					    0x43e0000000000000ull, 0xc3e0000000000000ull, 0x41e0000000000000ull,
					    0x7fefffffffffffffull, 0x47f0000000000000ull, 0x3690000000000000ull,
					    0x0010000000000000ull, 0xc1e0000000000000ull };
	uint64_t r = h_rand();
	switch (r % 8) {
	case 0: return special[(r >> 8) % 16];
	case 1: { double f = (double)(int64_t)r / (double)(1ull << ((r >> 8) % 62)); uint64_t u; memcpy(&u, &f, 8); return u; }
	case 2: return h_rand() & 0x800fffffffffffffull;
	case 3: return h_rand();
	default: return (((r >> 20) % 400 + 823) << 52) | (h_rand() & 0x800fffffffffffffull);
	}
}

static void rand_vec(uint8_t *v)
{
	uint64_t r = h_rand();
	if (r % 3 == 0) {
		for (int i = 0; i < 4; i++) {
			uint32_t u = rand_f32();
			memcpy(v + 4 * i, &u, 4);
		}
	} else if (r % 3 == 1) {
		for (int i = 0; i < 2; i++) {
			uint64_t u = rand_f64();
			memcpy(v + 8 * i, &u, 8);
		}
	} else {
		for (int i = 0; i < 16; i++) {
			/* small bytes/words make string compares and saturation interesting */
			v[i] = (r & 0x10) ? (uint8_t)("abcAB\0\x80\xff"[h_rand() % 8]) : (uint8_t)h_rand();
		}
	}
}

static uint64_t rand_gpr(void)
{
	uint64_t r = h_rand();
	switch (r % 4) {
	case 0: return (uint64_t)(int64_t)(int8_t)(r >> 8);    /* small, for lengths and counts */
	case 1: return (uint32_t)h_rand();
	default: return h_rand();
	}
}

static unsigned run_enc(struct emu_cpu *cpu, const struct enc *e, unsigned n, unsigned *cases)
{
	unsigned bad = 0;
	for (int form = 0; form < 2; form++) {
		bool mem = form == 1;
		if (!(e->flags & (mem ? F_MEM : F_REG)))
			continue;
		for (int ww = 0; ww < ((e->flags & F_W) ? 2 : 1); ww++) {
			uint8_t code[160];
			for (unsigned i = 0; i < n; i++) {
				uint8_t imm = (uint8_t)h_rand();
				if ((e->op == 0x71 || e->op == 0x72 || e->op == 0x73) && e->map == M0F && (h_rand() & 1))
					imm &= 0x1f;
				size_t len = build(code, e, mem, ww, imm);
				struct scase in, nat, emu;
				memset(&in, 0, sizeof(in));
				rand_vec(in.d);
				rand_vec(in.s);
				rand_vec(in.mem);
				in.rax = rand_gpr();
				in.rcx = rand_gpr();
				in.rdx = rand_gpr();
				/* masks on (the host would trap), random RC, DAZ, FTZ */
				in.mx = 0x1f80u | (uint32_t)(h_rand() & 0xe040);
				nat = in;
				emu = in;
				native_call(code, len, &nat);
				int v = emulate(cpu, e, mem, ww, imm, &emu);
				bool ok = v == -1 && !memcmp(nat.d, emu.d, 16) && !memcmp(nat.s, emu.s, 16) &&
					  !memcmp(nat.mem, emu.mem, 16) && nat.rax == emu.rax && nat.rcx == emu.rcx &&
					  nat.rdx == emu.rdx && nat.mx == emu.mx;
				if (e->flags & F_FLAGS)
					ok = ok && nat.zf == emu.zf && nat.pf == emu.pf && nat.cf == emu.cf &&
					     nat.sf == emu.sf && nat.of == emu.of;
				(*cases)++;
				if (!ok && bad++ < 2)
					cr_log_error("map %u op %02x mp %u /%u %s%s imm %02x: exc %d d %s s %s mem %s "
						     "gpr %s mx %x/%x flags %d%d%d%d%d/%d%d%d%d%d",
						     e->map, e->op, e->mp, e->reg, mem ? "mem" : "reg", ww ? " W" : "", imm, v,
						     memcmp(nat.d, emu.d, 16) ? "DIFF" : "ok", memcmp(nat.s, emu.s, 16) ? "DIFF" : "ok",
						     memcmp(nat.mem, emu.mem, 16) ? "DIFF" : "ok",
						     (nat.rax == emu.rax && nat.rcx == emu.rcx && nat.rdx == emu.rdx) ? "ok" : "DIFF",
						     nat.mx, emu.mx, nat.zf, nat.pf, nat.cf, nat.sf, nat.of, emu.zf, emu.pf,
						     emu.cf, emu.sf, emu.of);
			}
		}
	}
	return bad;
}

static void run_group(const char *name, const struct enc *list, size_t count, unsigned n)
{
	struct emu_cpu *cpu = h_cpu();
	unsigned bad = 0, cases = 0;
	for (size_t i = 0; i < count; i++)
		bad += run_enc(cpu, &list[i], n, &cases);
	printf("simd differential %-8s: %u encodings, %u cases, %u mismatches\n", name, (unsigned)count, cases, bad);
	cr_expect_eq(bad, 0, "%s: %u mismatches", name, bad);
	h_free(cpu);
}

Test(simd_diff, sse_fp_and_moves)
{
	if (!native_page())
		cr_skip_test("the host refuses executable mappings");
	h_srand(0x55e);
	run_group("sse", encs, sizeof(encs) / sizeof(encs[0]), h_cases(400));
}

Test(simd_diff, integer)
{
	if (!native_page())
		cr_skip_test("the host refuses executable mappings");
	struct enc list[2 * sizeof(int_both_0f) + 2 * sizeof(int_both_38) + sizeof(int_66_38)];
	size_t k = 0;
	for (size_t i = 0; i < sizeof(int_both_0f); i++) {
		list[k++] = (struct enc){ M0F, int_both_0f[i], NONE, F_BOTH | F_MMX, 0 };
		list[k++] = (struct enc){ M0F, int_both_0f[i], P66, F_BOTH, 0 };
	}
	for (size_t i = 0; i < sizeof(int_both_38); i++) {
		list[k++] = (struct enc){ M38, int_both_38[i], NONE, F_BOTH | F_MMX, 0 };
		list[k++] = (struct enc){ M38, int_both_38[i], P66, F_BOTH, 0 };
	}
	for (size_t i = 0; i < sizeof(int_66_38); i++)
		list[k++] = (struct enc){ M38, int_66_38[i], P66, F_BOTH, 0 };
	h_srand(0x1e7);
	run_group("integer", list, k, h_cases(300));
}
