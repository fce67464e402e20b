/* Instruction sequences through the core's decoder and the fpu module,
 * against Unicorn 2 (QEMU's x86 CPU as a library): random x87 and SSE
 * instructions over registers and a data area, ending in FXSAVE; the
 * data area (FXSAVE image included) and the arithmetic flags must match.
 *
 * Where Unicorn (QEMU 5 softfloat) is itself inexact the generator keeps
 * away or the compare masks, each marked below:
 *  - QEMU 5 picks between two NaN operands by the x87 rule for SSE too,
 *    and mixing packed-single and packed-double ops on the same data makes
 *    NaNs anyway: 8-byte lanes of the data area and XMM registers also
 *    match when both are NaN as a double, or each 4-byte half is equal or
 *    NaN as a float on both sides (NaN payloads are covered by the host
 *    differential); likewise x87 registers that are NaN on both sides, as
 *    QEMU 5 does not quiet signalling NaNs in FLD m32/m64 and FSCALE;
 *  - x87 transcendentals (FSIN/FCOS/FPTAN/FPATAN/F2XM1/FYL2X/FYL2XP1) and
 *    FPREM/FPREM1 are computed through host doubles in QEMU 5, and its FSCALE
 *    truncates the scale to int32 first: not generated;
 *  - x87 precision control is ignored by QEMU 5: FCW keeps PC = 64-bit;
 *  - QEMU 5 does not raise MXCSR exception flags: MXCSR bits 0-5 masked;
 *  - RCPPS/RSQRTPS are implementation-specific approximations: not generated;
 *  - FOP/FIP/FDP and MXCSR_MASK in the FXSAVE image: masked;
 *  - QEMU 5's PCMPxSTRx "equal ordered" aggregation disagrees with the
 *    hardware, and it takes unsupported 80-bit encodings (unnormals,
 *    pseudo-NaNs) as numbers: neither is generated (FLD m80 is not);
 *  - QEMU 5 loads FLDPI-style constants without the rounding control: only
 *    FLD1/FLDZ are generated;
 *  - QEMU 5 leaves the tag of FST/FSTP ST(i)'s destination alone, returns
 *    other results than the hardware for FISTTP and FXTRACT of specials,
 *    sums DPPS/DPPD products in another order, writes the destination of
 *    SSSE3 horizontal ops while still reading it when both operands are
 *    the same register, and ignores DAZ in MAXSD/MINSD: those forms are
 *    not generated (the host differential covers them, bit-exact);
 *  - x87 status flags: QEMU 5 sets C2 after FSQRT of a negative and its
 *    exception flags differ; only TOP is compared (FCOMI results are, as
 *    EFLAGS; FCOM's C0/C2/C3 are covered by the host differential).
 * Integer ops make NaN bit patterns, so they run in their own group. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <unicorn/unicorn.h>

#include "harness.h"

emu_handler h_lookup(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg)
{
	return NULL;   /* instructions come from the decoder here */
}

#define CODE 0x1000u
#define DATA 0x8000u     /* rbx; operands at [rbx + 16*k], FXSAVE image at DATA + 0x400 */
#define FXS (DATA + 0x400u)

struct gen {
	uint8_t buf[4096];
	unsigned n;
	unsigned starts[256], count;   /* body instruction offsets, for bisection */
};

static void emit(struct gen *g, const uint8_t *b, unsigned n)
{
	memcpy(g->buf + g->n, b, n);
	g->n += n;
}

#define E(...) do { const uint8_t t_[] = { __VA_ARGS__ }; emit(g, t_, sizeof(t_)); } while (0)

/* ModRM for a memory operand [rbx + disp8] with the given reg field. */
static void modrm_mem(struct gen *g, unsigned reg, uint8_t disp)
{
	E((uint8_t)(0x43 | ((reg & 7) << 3)), disp);
}

/* One SSE instruction: prefix, optional REX, 0F [38|3A] op, ModRM, imm. */
struct sse_t { uint8_t pfx, map, op; uint8_t flags; };
enum { T_MEMOK = 1, T_IMM = 2, T_MEMONLY = 4, T_A16 = 8 };
/* Floating-point SSE ops by domain: a sequence stays in single or double
 * precision so that lanes are never reinterpreted at the other width
 * (see the NaN note in the header).  Moves and shuffles go with both. */
static const struct sse_t sse_single[] = {
	{ 0, 0, 0x58, 1 }, { 0xf3, 0, 0x58, 1 }, { 0, 0, 0x59, 1 }, { 0xf3, 0, 0x59, 1 },
	{ 0, 0, 0x5c, 1 }, { 0xf3, 0, 0x5c, 1 }, { 0, 0, 0x5e, 1 }, { 0xf3, 0, 0x5e, 1 },
	{ 0, 0, 0x5d, 1 }, { 0xf3, 0, 0x5f, 1 }, { 0, 0, 0x51, 1 }, { 0xf3, 0, 0x51, 1 },
	{ 0, 0, 0x14, 1 }, { 0, 0, 0x15, 1 }, { 0, 0, 0xc6, 3 }, { 0, 0, 0xc2, 3 },
	{ 0xf3, 0, 0xc2, 3 }, { 0, 0, 0x28, 1 }, { 0, 0, 0x29, 1 }, { 0xf3, 0, 0x10, 1 },
	{ 0xf3, 0, 0x11, 1 }, { 0, 0, 0x12, 1 }, { 0, 0, 0x16, 1 }, { 0xf3, 0, 0x16, 1 },
	{ 0xf3, 0, 0x12, 1 }, { 0xf2, 0, 0x7c, 1 }, { 0xf2, 0, 0x7d, 1 }, { 0xf2, 0, 0xd0, 1 },
	{ 0x66, 2, 0x08, 3 }, { 0x66, 2, 0x0a, 3 }, { 0x66, 2, 0x0c, 3 }, { 0x66, 2, 0x21, 3 },
	{ 0, 0, 0x2f, 1 }, { 0, 0, 0x2e, 1 }, { 0xf3, 0, 0x7f, 1 }, { 0x66, 1, 0x14, 1 },
};
static const struct sse_t sse_double[] = {
	{ 0x66, 0, 0x58, 1 }, { 0xf2, 0, 0x58, 1 }, { 0x66, 0, 0x59, 1 }, { 0xf2, 0, 0x59, 1 },
	{ 0x66, 0, 0x5c, 1 }, { 0xf2, 0, 0x5c, 1 }, { 0x66, 0, 0x5e, 1 }, { 0xf2, 0, 0x5e, 1 },
	{ 0x66, 0, 0x5d, 1 }, { 0xf2, 0, 0x5f, 1 }, { 0x66, 0, 0x51, 1 }, { 0xf2, 0, 0x51, 1 },
	{ 0x66, 0, 0x14, 1 }, { 0x66, 0, 0x15, 1 }, { 0x66, 0, 0xc6, 3 }, { 0x66, 0, 0xc2, 3 },
	{ 0xf2, 0, 0xc2, 3 }, { 0x66, 0, 0x28, 1 }, { 0x66, 0, 0x29, 1 }, { 0xf2, 0, 0x10, 1 },
	{ 0xf2, 0, 0x11, 1 }, { 0x66, 0, 0x12, 5 }, { 0x66, 0, 0x16, 5 }, { 0x66, 0, 0x17, 5 },
	{ 0xf2, 0, 0x12, 1 }, { 0x66, 0, 0x7c, 1 }, { 0x66, 0, 0x7d, 1 }, { 0x66, 0, 0xd0, 1 },
	{ 0x66, 2, 0x09, 3 }, { 0x66, 2, 0x0b, 3 }, { 0x66, 2, 0x0d, 3 }, { 0x66, 0, 0x2f, 1 },
	{ 0x66, 0, 0x2e, 1 }, { 0xf3, 0, 0x7e, 1 }, { 0x66, 0, 0xd6, 1 }, { 0x66, 1, 0x15, 1 },
};
static bool domain_double;


static const struct sse_t int_ops[] = {
	{ 0, 0, 0x54, 1 }, { 0x66, 0, 0x55, 1 }, { 0, 0, 0x56, 1 }, { 0x66, 0, 0x57, 1 },
	{ 0x66, 0, 0x6f, 1 }, { 0x66, 0, 0xfe, 1 }, { 0x66, 0, 0xfa, 1 }, { 0x66, 0, 0xd4, 1 },
	{ 0x66, 0, 0xec, 1 }, { 0x66, 0, 0xd8, 1 }, { 0x66, 0, 0xe5, 1 }, { 0x66, 0, 0xf5, 1 },
	{ 0x66, 0, 0xf4, 1 }, { 0x66, 0, 0x74, 1 }, { 0x66, 0, 0x66, 1 }, { 0x66, 0, 0xef, 1 },
	{ 0x66, 0, 0xdb, 1 }, { 0x66, 0, 0x63, 1 }, { 0x66, 0, 0x67, 1 }, { 0x66, 0, 0x6b, 1 },
	{ 0x66, 0, 0x60, 1 }, { 0x66, 0, 0x6d, 1 }, { 0x66, 0, 0x70, 3 }, { 0xf3, 0, 0x70, 3 },
	{ 0xf2, 0, 0x70, 3 }, { 0x66, 0, 0xd1, 1 }, { 0x66, 0, 0xe2, 1 }, { 0x66, 0, 0xf3, 1 },
	{ 0x66, 0, 0xe0, 1 }, { 0x66, 0, 0xf6, 1 }, { 0x66, 0, 0xda, 1 }, { 0x66, 0, 0xee, 1 },
	{ 0x66, 1, 0x00, 1 }, { 0x66, 1, 0x04, 1 }, { 0x66, 1, 0x0b, 1 }, { 0x66, 1, 0x01, 1 },
	{ 0x66, 1, 0x1e, 1 }, { 0x66, 1, 0x08, 1 }, { 0x66, 2, 0x0f, 3 }, { 0x66, 1, 0x28, 1 },
	{ 0x66, 1, 0x29, 1 }, { 0x66, 1, 0x2b, 1 }, { 0x66, 1, 0x37, 1 }, { 0x66, 1, 0x38, 1 },
	{ 0x66, 1, 0x3f, 1 }, { 0x66, 1, 0x40, 1 }, { 0x66, 1, 0x41, 1 }, { 0x66, 1, 0x17, 1 },
	{ 0x66, 2, 0x0e, 3 }, { 0x66, 2, 0x42, 3 }, { 0x66, 2, 0x63, 3 }, { 0x66, 2, 0x62, 3 },
};

static void gen_sse_from(struct gen *g, const struct sse_t *t);

static void gen_sse(struct gen *g)
{
	if (domain_double)
		gen_sse_from(g, &sse_double[h_rand() % (sizeof(sse_double) / sizeof(sse_double[0]))]);
	else
		gen_sse_from(g, &sse_single[h_rand() % (sizeof(sse_single) / sizeof(sse_single[0]))]);
}

static void gen_int(struct gen *g)
{
	gen_sse_from(g, &int_ops[h_rand() % (sizeof(int_ops) / sizeof(int_ops[0]))]);
}

static void gen_sse_from(struct gen *g, const struct sse_t *t)
{
	unsigned r = (unsigned)(h_rand() % 16), rm = (r + 1 + (unsigned)(h_rand() % 15)) % 16;
	bool mem = (t->flags & T_MEMONLY) || ((t->flags & T_MEMOK) && (h_rand() % 3 == 0));
	if (t->pfx)
		E(t->pfx);
	uint8_t rex = (uint8_t)(0x40 | ((r >> 3) << 2) | (mem ? 0 : (rm >> 3)));
	if (rex != 0x40)
		E(rex);
	E(0x0f);
	if (t->map == 1)
		E(0x38);
	else if (t->map == 2)
		E(0x3a);
	E(t->op);
	if (mem)
		modrm_mem(g, r, (uint8_t)(16 * (h_rand() % 8)));
	else
		E((uint8_t)(0xc0 | ((r & 7) << 3) | (rm & 7)));
	if (t->flags & T_IMM) {
		uint8_t imm = (uint8_t)h_rand();
		if (t->op == 0xc2)
			imm &= 7;
		if (t->map == 2 && t->op >= 0x08 && t->op <= 0x0b)
			imm &= 0x0f;
		if (t->map == 2 && t->op >= 0x60 && t->op <= 0x63 && ((imm >> 2) & 3) == 3)
			imm &= ~0x08;   /* no "equal ordered" aggregation, see the header */
		E(imm);
	}
}

/* x87 instructions with their stack needs, generated with the stack depth
 * tracked so that no form under- or overflows: QEMU 5 does not implement
 * x87 stack faults (it ignores the tags), so only the defined behaviour
 * is compared.  need: registers that must be valid (ST(i) uses i + 1),
 * delta: pushes minus pops, sti: ModRM.rm is a random ST(i). */
struct x87_t { uint8_t op, modrm, need, sti; int8_t delta; uint8_t mem; };
static const struct x87_t x87_ops[] = {
	{ 0xd8, 0xc0, 1, 1, 0, 0 }, { 0xd8, 0xc8, 1, 1, 0, 0 }, { 0xd8, 0xe0, 1, 1, 0, 0 },
	{ 0xd8, 0xe8, 1, 1, 0, 0 }, { 0xd8, 0xf0, 1, 1, 0, 0 }, { 0xd8, 0xf8, 1, 1, 0, 0 },
	{ 0xdc, 0xc0, 1, 1, 0, 0 }, { 0xdc, 0xe0, 1, 1, 0, 0 }, { 0xdc, 0xe8, 1, 1, 0, 0 },
	{ 0xdc, 0xf8, 1, 1, 0, 0 }, { 0xde, 0xc0, 2, 1, -1, 0 }, { 0xde, 0xe8, 2, 1, -1, 0 },
	{ 0xde, 0xf0, 2, 1, -1, 0 }, { 0xd9, 0xc8, 1, 1, 0, 0 }, { 0xd9, 0xc0, 1, 1, 1, 0 },
	{ 0xdd, 0xd8, 2, 1, -1, 0 }, { 0xdd, 0xd0, 1, 1, 0, 0 }, { 0xd9, 0xe0, 1, 0, 0, 0 },
	{ 0xd9, 0xe1, 1, 0, 0, 0 }, { 0xd9, 0xfa, 1, 0, 0, 0 }, { 0xd9, 0xfc, 1, 0, 0, 0 },
	{ 0xd9, 0xe4, 1, 0, 0, 0 }, { 0xd9, 0xe5, 1, 0, 0, 0 }, { 0xd9, 0xe8, 0, 0, 1, 0 },
	{ 0xd9, 0xee, 0, 0, 1, 0 }, { 0xd8, 0xd0, 1, 1, 0, 0 },
	{ 0xdd, 0xe0, 1, 1, 0, 0 }, { 0xdb, 0xf0, 1, 1, 0, 0 }, { 0xdf, 0xe8, 2, 1, -1, 0 },
	{ 0xda, 0xc0, 1, 1, 0, 0 }, { 0xdb, 0xc8, 1, 1, 0, 0 },
	{ 0xde, 0xd9, 2, 0, -2, 0 },
	/* memory forms: ModRM.reg in modrm */
	{ 0xd9, 0, 0, 0, 1, 1 }, { 0xdd, 0, 0, 0, 1, 1 }, { 0xdb, 0, 0, 0, 1, 1 },
	{ 0xdf, 5, 0, 0, 1, 1 }, { 0xd8, 0, 1, 0, 0, 1 }, { 0xdc, 1, 1, 0, 0, 1 }, { 0xd8, 4, 1, 0, 0, 1 },
	{ 0xdc, 6, 1, 0, 0, 1 }, { 0xda, 1, 1, 0, 0, 1 }, { 0xde, 0, 1, 0, 0, 1 }, { 0xd8, 2, 1, 0, 0, 1 },
	{ 0xd9, 2, 1, 0, 0, 1 }, { 0xdd, 3, 1, 0, -1, 1 }, { 0xdb, 7, 1, 0, -1, 1 }, { 0xdb, 2, 1, 0, 0, 1 },
	{ 0xdf, 7, 1, 0, -1, 1 },
};

static unsigned x87_depth;

static void gen_x87(struct gen *g)
{
	for (;;) {
		const struct x87_t *t = &x87_ops[h_rand() % (sizeof(x87_ops) / sizeof(x87_ops[0]))];
		unsigned i = 0;
		if (t->sti) {
			if (x87_depth == 0)
				continue;
			i = (unsigned)(h_rand() % x87_depth);
			if (t->delta < 0 && i == 0)
				i = 1;   /* the popping forms write ST(i), i >= 1 */
		}
		unsigned need = t->need > i + 1 ? t->need : i + 1;
		if (!t->sti)
			need = t->need;
		if (need > x87_depth || (int)x87_depth + t->delta > 8 || (int)x87_depth + t->delta < 0)
			continue;
		if (t->mem) {
			E(t->op);
			modrm_mem(g, t->modrm, (uint8_t)(0x80 + 8 * (h_rand() % 15)));
		} else {
			E(t->op, (uint8_t)(t->modrm | i));
		}
		x87_depth = (unsigned)((int)x87_depth + t->delta);
		return;
	}
}

/* rounding control for both units, PC kept at 64-bit */
static void gen_control(struct gen *g)
{
	uint16_t cw = (uint16_t)(0x037f | ((h_rand() & 3) << 10));
	uint32_t mx = 0x1f80u | (uint32_t)(h_rand() & 0x6000);
	memcpy(h_mem + DATA + 0x300, &cw, 2);
	memcpy(h_mem + DATA + 0x304, &mx, 4);
	E(0xd9, 0xab, 0x00, 0x03, 0x00, 0x00);        /* fldcw [rbx+0x300] */
	E(0x0f, 0xae, 0x93, 0x04, 0x03, 0x00, 0x00);  /* ldmxcsr [rbx+0x304] */
}

/* The lower 0x80 bytes feed SSE (floats or doubles by domain), the upper
 * 0x80 the x87; the integer group takes any bits. */
static void fill_data(bool any)
{
	for (unsigned i = 0; i < 0x100; i += 8) {
		uint64_t r = h_rand(), v;
		if (i < 0x80 && !any) {
			if (domain_double) {
				double d = (r % 4 == 0) ? (double)(int32_t)(r >> 20) : ldexp((double)(r >> 11), (int)(r % 200) - 150);
				if ((r >> 7) % 16 == 0)
					d = (r & 0x100) ? -INFINITY : 0.0;
				memcpy(&v, &d, 8);
			} else {
				float f[2];
				for (unsigned k = 0; k < 2; k++) {
					uint64_t q = h_rand();
					f[k] = (q % 4 == 0) ? (float)(int16_t)(q >> 20) : ldexpf((float)(q >> 40), (int)(q % 120) - 80);
					if ((q >> 7) % 16 == 0)
						f[k] = (q & 0x100) ? INFINITY : -0.0f;
				}
				memcpy(&v, f, 8);
			}
			memcpy(h_mem + DATA + i, &v, 8);
			continue;
		}
		switch (r % 6) {
		case 0: v = r & ~0x4000000040000000ull; break;   /* no NaN: see the header */
		case 1: { double d = (double)(int32_t)(r >> 16) / 16.0; memcpy(&v, &d, 8); break; }
		case 2: { float f[2] = { (float)(int16_t)(r >> 8) / 4.0f, (float)(int8_t)(r >> 40) }; memcpy(&v, f, 8); break; }
		case 3: v = 0x3ff0000000000000ull | (r >> 12); break;
		case 4: v = (r & 0x8000000000000000ull) | 0x7ff0000000000000ull; break;
		default: v = (uint64_t)(int64_t)(int16_t)r; break;
		}
		memcpy(h_mem + DATA + i, &v, 8);
	}
}

struct outcome {
	uint8_t data[0x400 + 512];
	uint64_t flags;
};

static void mask_image(struct outcome *o)
{
	uint8_t *img = o->data + 0x400;
	memset(img + 6, 0, 18);          /* FOP, FIP, FDP */
	img[24] &= 0xc0;                 /* MXCSR flags */
	memset(img + 28, 0, 4);          /* MXCSR_MASK */
	img[2] = 0;                      /* FSW: keep TOP only, see the header */
	img[3] &= 0x38;
	memset(img + 416, 0, 96);        /* reserved/available bytes */
	/* x87 register slots hold 10 bytes; the 6 padding bytes are reserved */
	for (unsigned i = 0; i < 8; i++)
		memset(img + 32 + 16 * i + 10, 0, 6);
}

static bool nan32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return (v & 0x7f800000u) == 0x7f800000u && (v & 0x7fffffu);
}

static bool nan64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return (v & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (v & 0xfffffffffffffull);
}

/* NaN-tolerant lane compare at the sequence's precision; the x87 half of
 * the data area holds mixed formats and is compared at both widths. */
static bool lane_match(const uint8_t *a, const uint8_t *b, int width)
{
	if (!memcmp(a, b, 8))
		return true;
	if (width != 4 && nan64(a) && nan64(b))
		return true;
	if (width == 8)
		return false;
	for (unsigned h = 0; h < 8; h += 4)
		if (memcmp(a + h, b + h, 4) && !(nan32(a + h) && nan32(b + h)))
			return false;
	return true;
}

static int lane_width(unsigned i)
{
	if (i < 0x80 || (i >= 0x400 + 160 && i < 0x400 + 416))
		return domain_double ? 8 : 4;
	return i < 0x100 ? 0 : -1;
}

static bool nan80(const uint8_t *p)
{
	uint64_t m;
	memcpy(&m, p, 8);
	return (p[8] | (p[9] & 0x7f) << 8) == 0x7fff && (m << 1);
}

/* ST register slots of the FXSAVE image: equal, or NaN on both sides
 * (QEMU 5 does not quiet signalling NaNs on loads and conversions). */
static bool st_match(const struct outcome *a, const struct outcome *b, unsigned i)
{
	unsigned st = i - (0x400 + 32);
	const uint8_t *x = a->data + i - st % 16, *y = b->data + i - st % 16;
	return nan80(x) && nan80(y);
}

static bool same_outcome(const struct outcome *a, const struct outcome *b, bool flags)
{
	for (unsigned i = 0; i < sizeof(a->data); i += 8) {
		if (i >= 0x400 + 32 && i < 0x400 + 160 && memcmp(a->data + i, b->data + i, 8) && st_match(a, b, i))
			continue;
		int w = lane_width(i);
		if (memcmp(a->data + i, b->data + i, 8) && !(w >= 0 && lane_match(a->data + i, b->data + i, w)))
			return false;
	}
	return !flags || a->flags == b->flags;
}

static unsigned first_difference(const struct outcome *a, const struct outcome *b)
{
	for (unsigned i = 0; i < sizeof(a->data); i += 8) {
		if (i >= 0x400 + 32 && i < 0x400 + 160 && memcmp(a->data + i, b->data + i, 8) && st_match(a, b, i))
			continue;
		int w = lane_width(i);
		if (memcmp(a->data + i, b->data + i, 8) && !(w >= 0 && lane_match(a->data + i, b->data + i, w))) {
			unsigned off = i;
			while (a->data[off] == b->data[off])
				off++;
			return off;
		}
	}
	return 0;
}

static int run_emu(struct emu_cpu *cpu, const struct gen *g, struct outcome *o)
{
	uint64_t rip = CODE, end = CODE + g->n;
	memcpy(h_mem + CODE, g->buf, g->n);
	cpu->gpr[RBX] = DATA;
	cpu->rflags = X86_FLAG_FIXED;
	while (rip < end) {
		struct emu_insn in;
		int r = emu_decode_mode(EMU_MODE_LONG64, h_mem + rip, (unsigned)(end - rip), &in);
		if (r)
			return -100;
		cpu->rip = rip;
		int v = h_exec(cpu, &in);
		if (v != -1)
			return v;
		rip += in.len;
	}
	memcpy(o->data, h_mem + DATA, sizeof(o->data));
	o->flags = cpu->rflags & X86_FLAGS_ARITH;
	return -1;
}

/* A fresh Unicorn instance per sequence: its translation cache would
 * otherwise keep the previous sequence's code at the same address. */
static int run_uc(const struct gen *g, const uint8_t *data0, struct outcome *o)
{
	uc_engine *uc;
	uint64_t rbx = DATA, fl = X86_FLAG_FIXED;
	if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK)
		return 1000;
	uc_mem_map(uc, 0, H_MEM_SIZE, UC_PROT_ALL);
	/* keep Unicorn's own long-mode set-up; only enable SSE and #MF */
	uint64_t cr0 = 0, cr4 = 0;
	uc_reg_read(uc, UC_X86_REG_CR0, &cr0);
	uc_reg_read(uc, UC_X86_REG_CR4, &cr4);
	cr0 = (cr0 | X86_CR0_MP | X86_CR0_NE) & ~(X86_CR0_EM | X86_CR0_TS);
	cr4 |= X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
	uc_reg_write(uc, UC_X86_REG_CR0, &cr0);
	uc_reg_write(uc, UC_X86_REG_CR4, &cr4);
	uc_mem_write(uc, CODE, g->buf, g->n);
	uc_mem_write(uc, DATA, data0, sizeof(o->data));
	uc_reg_write(uc, UC_X86_REG_RBX, &rbx);
	uc_reg_write(uc, UC_X86_REG_RFLAGS, &fl);
	uc_err e = uc_emu_start(uc, CODE, CODE + g->n, 0, 100000);
	if (e != UC_ERR_OK) {
		uint64_t rip = 0;
		uc_reg_read(uc, UC_X86_REG_RIP, &rip);
		o->flags = rip;
		uc_close(uc);
		return (int)e;
	}
	uc_mem_read(uc, DATA, o->data, sizeof(o->data));
	uc_reg_read(uc, UC_X86_REG_RFLAGS, &fl);
	o->flags = fl & X86_FLAGS_ARITH;
	uc_close(uc);
	return -1;
}

/* Finds the first body instruction after which the two disagree. */
static void bisect(const char *name, const struct gen *full, const uint8_t *data0)
{
	static const uint8_t fxsave[] = { 0x0f, 0xae, 0x83, 0x00, 0x04, 0x00, 0x00 };
	static struct outcome prev;
	for (unsigned k = 1; k <= full->count; k++) {
		static struct gen g;
		memcpy(g.buf, full->buf, full->starts[k]);
		g.n = full->starts[k];
		memcpy(g.buf + g.n, fxsave, sizeof(fxsave));
		g.n += sizeof(fxsave);
		struct emu_cpu *cpu = h_cpu();
		memcpy(h_mem + DATA, data0, 0x600);
		struct outcome a, b;
		int ve = run_emu(cpu, &g, &a);
		int vu = run_uc(&g, data0, &b);
		h_free(cpu);
		if (ve != -1 || vu != -1)
			return;
		mask_image(&a);
		mask_image(&b);
		if (same_outcome(&a, &b, false)) {
			prev = a;
			continue;
		}
		char hex[64] = "";
		for (unsigned i = full->starts[k - 1]; i < full->starts[k] && i - full->starts[k - 1] < 15; i++)
			sprintf(hex + 3 * (i - full->starts[k - 1]), "%02x ", full->buf[i]);
		unsigned off = first_difference(&a, &b);
		cr_log_error("%s: diverges after instruction %u: %s(data+0x%x: emu %02x unicorn %02x)", name, k, hex, off,
			     a.data[off], b.data[off]);
		if (getenv("VESSEL_UC_VERBOSE")) {
			unsigned row = off & ~15u;
			char l1[80] = "", l2[80] = "", l0[80] = "";
			for (unsigned i = 0; i < 16; i++) {
				sprintf(l1 + 3 * i, "%02x ", a.data[row + i]);
				sprintf(l2 + 3 * i, "%02x ", b.data[row + i]);
				sprintf(l0 + 3 * i, "%02x ", prev.data[row + i]);
			}
			cr_log_error("  before %s\n  emu    %s\n  uc     %s", l0, l1, l2);
			for (unsigned r = 0; r < 16; r++) {
				char t[80] = "";
				for (unsigned i = 0; i < 16; i++)
					sprintf(t + 3 * i, "%02x ", prev.data[0x400 + 160 + 16 * r + i]);
				cr_log_error("  xmm%u before: %s", r, t);
			}
			char t[80] = "";
			for (unsigned i = 0; i < 32; i++)
				sprintf(t + 2 * i, "%02x", prev.data[0x400 + i]);
			cr_log_error("  fx header before: %s", t);
		}
		return;
	}
}

static unsigned run_group(const char *name, void (*gen_one)(struct gen *), unsigned seqs, unsigned len, bool flags)
{
	unsigned bad = 0, skipped = 0;
	for (unsigned s = 0; s < seqs; s++) {
		struct emu_cpu *cpu = h_cpu();
		struct gen g = { .n = 0 };
		x87_depth = 3;
		struct gen *gp = &g;
		domain_double = h_rand() & 1;
		fill_data(gen_one == gen_int);
		/* start state: FNINIT, controls, 16 XMM registers and three x87
		 * values loaded from the data area */
		{ struct gen *g = gp; E(0xdb, 0xe3); gen_control(g);
		  for (unsigned i = 0; i < 16; i++) {
			  if (i >= 8) E(0x44);
			  E(0x0f, 0x10);
			  modrm_mem(g, i, (uint8_t)(16 * (h_rand() % 8)));
		  }
		  for (unsigned i = 0; i < 3; i++) { E(0xdd); modrm_mem(g, 0, (uint8_t)(0x80 + 8 * (h_rand() % 15))); } }
		for (unsigned i = 0; i < len; i++) {
			g.starts[g.count++] = g.n;
			gen_one(&g);
		}
		g.starts[g.count] = g.n;
		{ struct gen *g = gp; E(0x0f, 0xae, 0x83, 0x00, 0x04, 0x00, 0x00); }  /* fxsave [rbx+0x400] */
		static uint8_t data0[0x400 + 512];
		memcpy(data0, h_mem + DATA, sizeof(data0));
		struct outcome a, b;
		int ve = run_emu(cpu, &g, &a);
		int vu = run_uc(&g, data0, &b);
		h_free(cpu);
		if (vu != -1 || ve != -1) {
			/* an exception on either side: compare only that both faulted */
			if ((vu == -1) != (ve == -1) && bad++ < 3)
				cr_log_error("%s seq %u: emu exc %d, unicorn err %d at offset %llx", name, s, ve, vu,
					     (unsigned long long)(b.flags - CODE));
			skipped++;
			continue;
		}
		mask_image(&a);
		mask_image(&b);
		bool ok = same_outcome(&a, &b, flags);
		if (!ok && bad++ < 3) {
			unsigned i = first_difference(&a, &b);
			cr_log_error("%s seq %u: first difference at data+0x%x: emu %02x unicorn %02x (flags %llx/%llx)",
				     name, s, i, a.data[i], b.data[i], (unsigned long long)a.flags,
				     (unsigned long long)b.flags);
			bisect(name, &g, data0);
		}
	}
	printf("unicorn differential %-4s: %u sequences of %u instructions, %u ended in an exception, %u mismatches\n",
	       name, seqs, len, skipped, bad);
	return bad;
}

static void gen_mixed(struct gen *g)
{
	if (h_rand() % 3)
		gen_sse(g);
	else
		gen_x87(g);
}

Test(unicorn_diff, sse_sequences)
{
	h_srand(0x5eed);
	cr_expect_eq(run_group("sse", gen_sse, h_cases(300), 24, true), 0);
}

Test(unicorn_diff, integer_sequences)
{
	h_srand(0x1e7);
	cr_expect_eq(run_group("int", gen_int, h_cases(300), 24, true), 0);
}

Test(unicorn_diff, x87_sequences)
{
	h_srand(0x87);
	cr_expect_eq(run_group("x87", gen_x87, h_cases(300), 24, true), 0);
}

Test(unicorn_diff, mixed_sequences)
{
	h_srand(0x3);
	cr_expect_eq(run_group("mix", gen_mixed, h_cases(200), 32, false), 0);
}
