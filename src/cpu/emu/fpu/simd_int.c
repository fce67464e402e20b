/* MMX and SSE2..SSE4.2 packed-integer instructions (SDM vol. 1, chapters
 * 9, 11, 12; vol. 2 instruction pages).
 *
 * Every operation is written once over n = 8 (MMX, no prefix) or n = 16
 * (XMM, 66 prefix) bytes; the two register files differ only in how the
 * operands are fetched (simd_int_mmx/simd_int_xmm below).  MMX forms
 * perform the x87 aliasing transition (TOP = 0, all tags valid, exponent
 * bits of the written register all ones, vol. 1, 9.5.1).
 */
#include "cpu/emu/fpu/fpu.h"

#include <emmintrin.h>

typedef void (*vec_op)(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm);


/* ---- saturation ---- */
static inline int8_t sat_sb(int v) { return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v); }
static inline uint8_t sat_ub(int v) { return (uint8_t)(v > 255 ? 255 : v < 0 ? 0 : v); }
static inline int16_t sat_sw(int v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }
static inline uint16_t sat_uw(int v) { return (uint16_t)(v > 65535 ? 65535 : v < 0 ? 0 : v); }

/* ---- element-wise arithmetic ---- */
#define EW(name, T, field, expr)                                                     \
	static void name(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) \
	{                                                                                \
		for (unsigned i = 0; i < n / sizeof(T); i++) {                               \
			T a = d->field[i], b = s->field[i];                                      \
			(void)a; (void)b;                                                        \
			d->field[i] = (T)(expr);                                                 \
		}                                                                            \
	}

EW(op_paddb, uint8_t, b, a + b)
EW(op_paddw, uint16_t, w, a + b)
EW(op_paddd, uint32_t, d, a + b)
EW(op_paddq, uint64_t, q, a + b)
EW(op_psubb, uint8_t, b, a - b)
EW(op_psubw, uint16_t, w, a - b)
EW(op_psubd, uint32_t, d, a - b)
EW(op_psubq, uint64_t, q, a - b)
EW(op_paddsb, int8_t, sb, sat_sb(a + b))
EW(op_paddsw, int16_t, sw, sat_sw(a + b))
EW(op_paddusb, uint8_t, b, sat_ub(a + b))
EW(op_paddusw, uint16_t, w, sat_uw(a + b))
EW(op_psubsb, int8_t, sb, sat_sb(a - b))
EW(op_psubsw, int16_t, sw, sat_sw(a - b))
EW(op_psubusb, uint8_t, b, sat_ub(a - b))
EW(op_psubusw, uint16_t, w, sat_uw(a - b))
EW(op_pmullw, uint16_t, w, (uint32_t)a * b)
EW(op_pmulhw, int16_t, sw, ((int32_t)a * b) >> 16)
EW(op_pmulhuw, uint16_t, w, ((uint32_t)a * b) >> 16)
EW(op_pmulld, uint32_t, d, (uint64_t)a * b)
EW(op_pmulhrsw, int16_t, sw, ((((int32_t)a * b) >> 14) + 1) >> 1)
EW(op_pcmpeqb, uint8_t, b, a == b ? 0xff : 0)
EW(op_pcmpeqw, uint16_t, w, a == b ? 0xffff : 0)
EW(op_pcmpeqd, uint32_t, d, a == b ? ~0u : 0)
EW(op_pcmpeqq, uint64_t, q, a == b ? ~0ull : 0)
EW(op_pcmpgtb, int8_t, sb, a > b ? -1 : 0)
EW(op_pcmpgtw, int16_t, sw, a > b ? -1 : 0)
EW(op_pcmpgtd, int32_t, sd, a > b ? -1 : 0)
EW(op_pcmpgtq, int64_t, sq, a > b ? -1 : 0)
EW(op_pand, uint64_t, q, a & b)
EW(op_pandn, uint64_t, q, ~a & b)
EW(op_por, uint64_t, q, a | b)
EW(op_pxor, uint64_t, q, a ^ b)
EW(op_pavgb, uint8_t, b, ((unsigned)a + b + 1) >> 1)
EW(op_pavgw, uint16_t, w, ((unsigned)a + b + 1) >> 1)
EW(op_pminub, uint8_t, b, a < b ? a : b)
EW(op_pmaxub, uint8_t, b, a > b ? a : b)
EW(op_pminsw, int16_t, sw, a < b ? a : b)
EW(op_pmaxsw, int16_t, sw, a > b ? a : b)
EW(op_pminsb, int8_t, sb, a < b ? a : b)
EW(op_pmaxsb, int8_t, sb, a > b ? a : b)
EW(op_pminuw, uint16_t, w, a < b ? a : b)
EW(op_pmaxuw, uint16_t, w, a > b ? a : b)
EW(op_pminsd, int32_t, sd, a < b ? a : b)
EW(op_pmaxsd, int32_t, sd, a > b ? a : b)
EW(op_pminud, uint32_t, d, a < b ? a : b)
EW(op_pmaxud, uint32_t, d, a > b ? a : b)
EW(op_psignb, int8_t, sb, b < 0 ? -a : b == 0 ? 0 : a)
EW(op_psignw, int16_t, sw, b < 0 ? -a : b == 0 ? 0 : a)
EW(op_psignd, int32_t, sd, b < 0 ? -(uint32_t)a : b == 0 ? 0u : (uint32_t)a)
EW(op_pabsb, int8_t, sb, b < 0 ? -b : b)
EW(op_pabsw, int16_t, sw, b < 0 ? -b : b)
EW(op_pabsd, int32_t, sd, b < 0 ? -(uint32_t)b : (uint32_t)b)

static void op_pmuludq(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	for (unsigned i = 0; i < n / 8; i++)
		d->q[i] = (uint64_t)d->d[2 * i] * s->d[2 * i];
}

static void op_pmuldq(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	for (unsigned i = 0; i < n / 8; i++)
		d->sq[i] = (int64_t)d->sd[2 * i] * s->sd[2 * i];
}

static void op_pmaddwd(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	for (unsigned i = 0; i < n / 4; i++)
		d->d[i] = (uint32_t)((int64_t)d->sw[2 * i] * s->sw[2 * i] + (int64_t)d->sw[2 * i + 1] * s->sw[2 * i + 1]);
}

static void op_pmaddubsw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	for (unsigned i = 0; i < n / 2; i++)
		r.sw[i] = sat_sw(d->b[2 * i] * s->sb[2 * i] + d->b[2 * i + 1] * s->sb[2 * i + 1]);
	memcpy(d, &r, n);
}

static void op_psadbw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	for (unsigned q = 0; q < n / 8; q++) {
		unsigned sum = 0;
		for (unsigned i = 0; i < 8; i++) {
			int x = d->b[8 * q + i] - s->b[8 * q + i];
			sum += (unsigned)(x < 0 ? -x : x);
		}
		d->q[q] = sum;
	}
}

/* ---- shifts by a register/memory count (the whole 64-bit count) ---- */
#define SHIFT(name, T, field, bits, expr_in, expr_over)                                   \
	static void name(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) \
	{                                                                                 \
		uint64_t c = s->q[0];                                                         \
		for (unsigned i = 0; i < n / sizeof(T); i++) {                                \
			T a = d->field[i];                                                        \
			d->field[i] = c < (bits) ? (T)(expr_in) : (T)(expr_over);                 \
		}                                                                             \
	}
SHIFT(op_psrlw, uint16_t, w, 16, a >> c, 0)
SHIFT(op_psrld, uint32_t, d, 32, a >> c, 0)
SHIFT(op_psrlq, uint64_t, q, 64, a >> c, 0)
SHIFT(op_psllw, uint16_t, w, 16, (uint32_t)a << c, 0)
SHIFT(op_pslld, uint32_t, d, 32, a << c, 0)
SHIFT(op_psllq, uint64_t, q, 64, a << c, 0)
SHIFT(op_psraw, int16_t, sw, 16, a >> c, a >> 15)
SHIFT(op_psrad, int32_t, sd, 32, a >> c, a >> 31)

/* ---- pack/unpack: lower half from d, upper half from s ---- */
static void op_packsswb(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	n = n > 8 ? 16 : 8;
	for (unsigned i = 0; i < n / 2; i++) {
		r.sb[i] = sat_sb(d->sw[i]);
		r.sb[n / 2 + i] = sat_sb(s->sw[i]);
	}
	memcpy(d, &r, n);
}

static void op_packuswb(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	n = n > 8 ? 16 : 8;
	for (unsigned i = 0; i < n / 2; i++) {
		r.b[i] = sat_ub(d->sw[i]);
		r.b[n / 2 + i] = sat_ub(s->sw[i]);
	}
	memcpy(d, &r, n);
}

static void op_packssdw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	n = n > 8 ? 16 : 8;
	for (unsigned i = 0; i < n / 4; i++) {
		int32_t a = d->sd[i], b = s->sd[i];
		r.sw[i] = (int16_t)(a > 32767 ? 32767 : a < -32768 ? -32768 : a);
		r.sw[n / 4 + i] = (int16_t)(b > 32767 ? 32767 : b < -32768 ? -32768 : b);
	}
	memcpy(d, &r, n);
}

static void op_packusdw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	n = n > 8 ? 16 : 8;
	for (unsigned i = 0; i < n / 4; i++) {
		int32_t a = d->sd[i], b = s->sd[i];
		r.w[i] = (uint16_t)(a > 65535 ? 65535 : a < 0 ? 0 : a);
		r.w[n / 4 + i] = (uint16_t)(b > 65535 ? 65535 : b < 0 ? 0 : b);
	}
	memcpy(d, &r, n);
}

/* Interleave elements of size es starting at element index `from`. */
static inline void unpack(union fpu_vec *d, const union fpu_vec *s, unsigned n, unsigned es, bool high)
{
	union fpu_vec r;
	unsigned half = n / 2, from = high ? half : 0;
	for (unsigned i = 0; i < half / es; i++) {
		memcpy(r.b + 2 * i * es, d->b + from + i * es, es);
		memcpy(r.b + (2 * i + 1) * es, s->b + from + i * es, es);
	}
	memcpy(d, &r, n);
}
static void op_punpcklbw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 1, false); }
static void op_punpcklwd(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 2, false); }
static void op_punpckldq(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 4, false); }
static void op_punpcklqdq(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 8, false); }
static void op_punpckhbw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 1, true); }
static void op_punpckhwd(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 2, true); }
static void op_punpckhdq(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 4, true); }
static void op_punpckhqdq(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) { unpack(d, s, n, 8, true); }

/* ---- SSSE3 horizontal ops: pairs of d then pairs of s ---- */
#define HOP(name, T, field, expr)                                                        \
	static void name(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm) \
	{                                                                                 \
		union fpu_vec r;                                                              \
		unsigned k = n / sizeof(T) / 2;                                               \
		for (unsigned i = 0; i < k; i++) {                                            \
			T a = d->field[2 * i], b = d->field[2 * i + 1];                           \
			r.field[i] = (T)(expr);                                                   \
			a = s->field[2 * i];                                                      \
			b = s->field[2 * i + 1];                                                  \
			r.field[k + i] = (T)(expr);                                               \
		}                                                                             \
		memcpy(d, &r, n);                                                             \
	}
HOP(op_phaddw, uint16_t, w, a + b)
HOP(op_phaddd, uint32_t, d, a + b)
HOP(op_phaddsw, int16_t, sw, sat_sw(a + b))
HOP(op_phsubw, uint16_t, w, a - b)
HOP(op_phsubd, uint32_t, d, a - b)
HOP(op_phsubsw, int16_t, sw, sat_sw(a - b))

static void op_pshufb(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	for (unsigned i = 0; i < n; i++)
		r.b[i] = (s->b[i] & 0x80) ? 0 : d->b[s->b[i] & (n - 1)];
	memcpy(d, &r, n);
}

static void op_palignr(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	uint8_t cat[64] = { 0 };
	memcpy(cat, s->b, n);
	memcpy(cat + n, d->b, n);
	for (unsigned i = 0; i < n; i++)
		d->b[i] = imm + i < 2 * n ? cat[imm + i] : 0;
}

/* ---- shuffles with an immediate ---- */
static void op_pshufw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	for (unsigned i = 0; i < 4; i++)
		r.w[i] = s->w[(imm >> (2 * i)) & 3];
	d->q[0] = r.q[0];
}

static void op_pshufd(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	for (unsigned i = 0; i < 4; i++)
		r.d[i] = s->d[(imm >> (2 * i)) & 3];
	*d = r;
}

static void op_pshufhw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r = *s;
	for (unsigned i = 0; i < 4; i++)
		r.w[4 + i] = s->w[4 + ((imm >> (2 * i)) & 3)];
	*d = r;
}

static void op_pshuflw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r = *s;
	for (unsigned i = 0; i < 4; i++)
		r.w[i] = s->w[(imm >> (2 * i)) & 3];
	*d = r;
}

/* ---- SSE4.1 ---- */
static void op_pblendw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	for (unsigned i = 0; i < 8; i++)
		if (imm & (1u << i))
			d->w[i] = s->w[i];
}

static void op_blendps(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	for (unsigned i = 0; i < 4; i++)
		if (imm & (1u << i))
			d->d[i] = s->d[i];
}

static void op_blendpd(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	for (unsigned i = 0; i < 2; i++)
		if (imm & (1u << i))
			d->q[i] = s->q[i];
}

static void op_phminposuw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	unsigned idx = 0;
	for (unsigned i = 1; i < 8; i++)
		if (s->w[i] < s->w[idx])
			idx = i;
	uint16_t m = s->w[idx];
	memset(d, 0, 16);
	d->w[0] = m;
	d->w[1] = (uint16_t)idx;
}

/* MPSADBW (vol. 2B): eight sums of absolute differences of 4-byte groups;
 * imm[2] selects the d offset (0/4), imm[1:0] the s group. */
static void op_mpsadbw(union fpu_vec *d, const union fpu_vec *s, unsigned n, uint8_t imm)
{
	union fpu_vec r;
	unsigned doff = (imm & 4) ? 4 : 0, soff = (imm & 3) * 4;
	for (unsigned i = 0; i < 8; i++) {
		unsigned sum = 0;
		for (unsigned j = 0; j < 4; j++) {
			int x = d->b[doff + i + j] - s->b[soff + j];
			sum += (unsigned)(x < 0 ? -x : x);
		}
		r.w[i] = (uint16_t)sum;
	}
	*d = r;
}

/* The operation of each MMX/SSE integer opcode that simd_int_mmx and
 * simd_int_xmm execute, [map][opcode][mandatory prefix] (the opcode
 * table, core/handlers.c, sends these rows there). */
#define BOTH(f) { [EMU_MP_NONE] = (f), [EMU_MP_66] = (f) }
#define XMM(f) { [EMU_MP_66] = (f) }
static const vec_op int_ops[EMU_MAP_COUNT][256][EMU_MP_COUNT] = {
	[EMU_MAP_0F] = {
		[0x60] = BOTH(op_punpcklbw), [0x61] = BOTH(op_punpcklwd), [0x62] = BOTH(op_punpckldq),
		[0x63] = BOTH(op_packsswb), [0x64] = BOTH(op_pcmpgtb), [0x65] = BOTH(op_pcmpgtw),
		[0x66] = BOTH(op_pcmpgtd), [0x67] = BOTH(op_packuswb), [0x68] = BOTH(op_punpckhbw),
		[0x69] = BOTH(op_punpckhwd), [0x6a] = BOTH(op_punpckhdq), [0x6b] = BOTH(op_packssdw),
		[0x6c] = XMM(op_punpcklqdq), [0x6d] = XMM(op_punpckhqdq),
		[0x70] = { op_pshufw, op_pshufd, op_pshufhw, op_pshuflw },
		[0x74] = BOTH(op_pcmpeqb), [0x75] = BOTH(op_pcmpeqw), [0x76] = BOTH(op_pcmpeqd),
		[0xd1] = BOTH(op_psrlw), [0xd2] = BOTH(op_psrld), [0xd3] = BOTH(op_psrlq), [0xd4] = BOTH(op_paddq),
		[0xd5] = BOTH(op_pmullw), [0xd8] = BOTH(op_psubusb), [0xd9] = BOTH(op_psubusw), [0xda] = BOTH(op_pminub),
		[0xdb] = BOTH(op_pand), [0xdc] = BOTH(op_paddusb), [0xdd] = BOTH(op_paddusw), [0xde] = BOTH(op_pmaxub),
		[0xdf] = BOTH(op_pandn), [0xe0] = BOTH(op_pavgb), [0xe1] = BOTH(op_psraw), [0xe2] = BOTH(op_psrad),
		[0xe3] = BOTH(op_pavgw), [0xe4] = BOTH(op_pmulhuw), [0xe5] = BOTH(op_pmulhw), [0xe8] = BOTH(op_psubsb),
		[0xe9] = BOTH(op_psubsw), [0xea] = BOTH(op_pminsw), [0xeb] = BOTH(op_por), [0xec] = BOTH(op_paddsb),
		[0xed] = BOTH(op_paddsw), [0xee] = BOTH(op_pmaxsw), [0xef] = BOTH(op_pxor), [0xf1] = BOTH(op_psllw),
		[0xf2] = BOTH(op_pslld), [0xf3] = BOTH(op_psllq), [0xf4] = BOTH(op_pmuludq), [0xf5] = BOTH(op_pmaddwd),
		[0xf6] = BOTH(op_psadbw), [0xf8] = BOTH(op_psubb), [0xf9] = BOTH(op_psubw), [0xfa] = BOTH(op_psubd),
		[0xfb] = BOTH(op_psubq), [0xfc] = BOTH(op_paddb), [0xfd] = BOTH(op_paddw), [0xfe] = BOTH(op_paddd),
	},
	[EMU_MAP_0F38] = {
		/* SSSE3 */
		[0x00] = BOTH(op_pshufb), [0x01] = BOTH(op_phaddw), [0x02] = BOTH(op_phaddd), [0x03] = BOTH(op_phaddsw),
		[0x04] = BOTH(op_pmaddubsw), [0x05] = BOTH(op_phsubw), [0x06] = BOTH(op_phsubd), [0x07] = BOTH(op_phsubsw),
		[0x08] = BOTH(op_psignb), [0x09] = BOTH(op_psignw), [0x0a] = BOTH(op_psignd), [0x0b] = BOTH(op_pmulhrsw),
		[0x1c] = BOTH(op_pabsb), [0x1d] = BOTH(op_pabsw), [0x1e] = BOTH(op_pabsd),
		/* SSE4.1 */
		[0x28] = XMM(op_pmuldq), [0x29] = XMM(op_pcmpeqq), [0x2b] = XMM(op_packusdw), [0x37] = XMM(op_pcmpgtq),
		[0x38] = XMM(op_pminsb), [0x39] = XMM(op_pminsd), [0x3a] = XMM(op_pminuw), [0x3b] = XMM(op_pminud),
		[0x3c] = XMM(op_pmaxsb), [0x3d] = XMM(op_pmaxsd), [0x3e] = XMM(op_pmaxuw), [0x3f] = XMM(op_pmaxud),
		[0x40] = XMM(op_pmulld), [0x41] = XMM(op_phminposuw),
	},
	[EMU_MAP_0F3A] = {
		[0x0c] = XMM(op_blendps), [0x0d] = XMM(op_blendpd), [0x0e] = XMM(op_pblendw), [0x0f] = BOTH(op_palignr),
		[0x42] = XMM(op_mpsadbw),
	},
};

/* ---- operand plumbing ---- */

void simd_int_mmx(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec d, s;
	fpu_check_mmx(cpu);
	if (insn->mod == 3)
		s.q[0] = fpu_mmx_get(cpu, insn->rm);
	else
		s.q[0] = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), 8);
	d.q[0] = fpu_mmx_get(cpu, insn->reg);
	int_ops[insn->opmap][insn->opcode][EMU_MP_NONE](&d, &s, 8, (uint8_t)insn->imm);
	fpu_mmx_enter(cpu);
	fpu_mmx_set(cpu, insn->reg, d.q[0]);
}

void simd_int_xmm(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec d, s;
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(&s, &cpu->xmm[insn->rm], 16);
	else
		fpu_read_m128(cpu, insn, &s, true);
	memcpy(&d, &cpu->xmm[insn->reg], 16);
	int_ops[insn->opmap][insn->opcode][insn->mprefix](&d, &s, 16, (uint8_t)insn->imm);
	memcpy(&cpu->xmm[insn->reg], &d, 16);
}

/* Shift-by-immediate groups 0F 71/72/73 (vol. 2D, table A-6, groups 12-14):
 * the register operand is ModRM.rm. */
void simd_shift_imm(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	static vec_op const ops[3][8] = {
		{ NULL, NULL, op_psrlw, NULL, op_psraw, NULL, op_psllw, NULL },
		{ NULL, NULL, op_psrld, NULL, op_psrad, NULL, op_pslld, NULL },
		{ NULL, NULL, op_psrlq, NULL, NULL, NULL, op_psllq, NULL },
	};
	unsigned r = (insn->modrm >> 3) & 7;
	bool xmm = insn->mprefix == EMU_MP_66;
	if (insn->mod != 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	union fpu_vec d, c;
	memset(&c, 0, sizeof(c));
	c.q[0] = (uint8_t)insn->imm;
	if (insn->opcode == 0x73 && (r == 3 || r == 7)) {
		/* PSRLDQ/PSLLDQ: byte shifts of the whole XMM register */
		if (!xmm)
			emu_raise_noerr(cpu, X86_EXC_UD);
		fpu_check_sse(cpu);
		unsigned k = (uint8_t)insn->imm;
		if (k > 16)
			k = 16;
		uint8_t t[48] = { 0 };
		memcpy(t + 16, cpu->xmm[insn->rm].b, 16);
		if (r == 3)
			memcpy(d.b, t + 16 + k, 16);
		else
			memcpy(d.b, t + 16 - k, 16);
		memcpy(&cpu->xmm[insn->rm], &d, 16);
		return;
	}
	vec_op f = ops[insn->opcode - 0x71][r];
	if (!f)
		emu_raise_noerr(cpu, X86_EXC_UD);
	if (xmm) {
		fpu_check_sse(cpu);
		memcpy(&d, &cpu->xmm[insn->rm], 16);
		f(&d, &c, 16, 0);
		memcpy(&cpu->xmm[insn->rm], &d, 16);
	} else {
		fpu_check_mmx(cpu);
		d.q[0] = fpu_mmx_get(cpu, insn->rm);
		f(&d, &c, 8, 0);
		fpu_mmx_enter(cpu);
		fpu_mmx_set(cpu, insn->rm, d.q[0]);
	}
}

/* PBLENDVB/BLENDVPS/BLENDVPD: the mask is implicit XMM0 (vol. 2A). */
void simd_blendv(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec d, s, m;
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(&s, &cpu->xmm[insn->rm], 16);
	else
		fpu_read_m128(cpu, insn, &s, true);
	memcpy(&d, &cpu->xmm[insn->reg], 16);
	memcpy(&m, &cpu->xmm[0], 16);
	unsigned es = insn->opcode == 0x10 ? 1 : insn->opcode == 0x14 ? 4 : 8;
	for (unsigned i = 0; i < 16; i += es)
		if (m.b[i + es - 1] & 0x80)
			memcpy(d.b + i, s.b + i, es);
	memcpy(&cpu->xmm[insn->reg], &d, 16);
}

/* PTEST: ZF = (d & s) == 0, CF = (~d & s) == 0, others cleared. */
void simd_ptest(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	union fpu_vec d, s;
	fpu_check_sse(cpu);
	if (insn->mod == 3)
		memcpy(&s, &cpu->xmm[insn->rm], 16);
	else
		fpu_read_m128(cpu, insn, &s, true);
	memcpy(&d, &cpu->xmm[insn->reg], 16);
	uint64_t fl = emu_get_rflags(cpu) & ~(uint64_t)X86_FLAGS_ARITH;
	if (!((d.q[0] & s.q[0]) | (d.q[1] & s.q[1])))
		fl |= X86_FLAG_ZF;
	if (!((~d.q[0] & s.q[0]) | (~d.q[1] & s.q[1])))
		fl |= X86_FLAG_CF;
	emu_set_rflags(cpu, fl);
}

/* PMOVSX/PMOVZX: the source is 2, 4 or 8 bytes, never alignment-checked. */
void simd_pmovx(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	static const uint8_t from[6] = { 1, 1, 1, 2, 2, 4 }, to[6] = { 2, 4, 8, 4, 8, 8 };
	unsigned k = insn->opcode & 0xf;
	if (k > 5)
		emu_raise_noerr(cpu, X86_EXC_UD);
	bool sx = insn->opcode < 0x30;
	unsigned fs = from[k], ts = to[k], cnt = 16 / ts;
	fpu_check_sse(cpu);
	union fpu_vec s, d;
	if (insn->mod == 3)
		memcpy(&s, &cpu->xmm[insn->rm], 16);
	else
		s.q[0] = emu_read(cpu, insn->seg, emu_insn_ea(cpu, insn), fs * cnt);
	for (unsigned i = 0; i < cnt; i++) {
		uint64_t v = 0;
		memcpy(&v, s.b + i * fs, fs);
		if (sx && (v >> (fs * 8 - 1)) & 1)
			v |= ~0ull << (fs * 8);
		memcpy(d.b + i * ts, &v, ts);
	}
	memcpy(&cpu->xmm[insn->reg], &d, 16);
}

/* XMM forms of the logic/compare/min/max ops that string and memory
 * functions run in their inner loops, on the host's SSE2 (always present
 * on x86-64): one handler each, no table dispatch.  The generic C versions
 * above still serve the MMX forms and are the reference in the tests. */
#define FAST_XMM(name, expr)                                                       \
	void name(struct emu_cpu *cpu, const struct emu_insn *insn)                    \
	{                                                                              \
		union fpu_vec sv;                                                          \
		fpu_check_sse(cpu);                                                        \
		if (insn->mod == 3)                                                        \
			memcpy(&sv, &cpu->xmm[insn->rm], 16);                                  \
		else                                                                       \
			fpu_read_m128(cpu, insn, &sv, true);                                   \
		__m128i s = _mm_loadu_si128((const __m128i *)sv.b);                        \
		__m128i d = _mm_loadu_si128((const __m128i *)cpu->xmm[insn->reg].b);       \
		_mm_storeu_si128((__m128i *)cpu->xmm[insn->reg].b, (expr));                \
	}
FAST_XMM(simd_fx_pxor, _mm_xor_si128(d, s))
FAST_XMM(simd_fx_por, _mm_or_si128(d, s))
FAST_XMM(simd_fx_pand, _mm_and_si128(d, s))
FAST_XMM(simd_fx_pandn, _mm_andnot_si128(d, s))
FAST_XMM(simd_fx_pcmpeqb, _mm_cmpeq_epi8(d, s))
FAST_XMM(simd_fx_pcmpeqw, _mm_cmpeq_epi16(d, s))
FAST_XMM(simd_fx_pcmpeqd, _mm_cmpeq_epi32(d, s))
FAST_XMM(simd_fx_pminub, _mm_min_epu8(d, s))
FAST_XMM(simd_fx_pmaxub, _mm_max_epu8(d, s))
FAST_XMM(simd_fx_psubb, _mm_sub_epi8(d, s))
FAST_XMM(simd_fx_paddb, _mm_add_epi8(d, s))
FAST_XMM(simd_fx_paddq, _mm_add_epi64(d, s))
FAST_XMM(simd_fx_punpcklbw, _mm_unpacklo_epi8(d, s))
