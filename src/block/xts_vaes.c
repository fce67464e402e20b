/* AES-XTS with VAES on 512-bit registers (xts_aesni.h): the same
 * single pass as xts_aesni.c (IEEE Std 1619-2007 section 5.3.1 / 5.4.1:
 * C = E_Key1(P ^ T) ^ T with T = E_Key2(i) (x) alpha^j), four AES
 * blocks per register and eight registers in flight: 32 blocks, a whole
 * 512-byte data unit, per step.  xts_units() (xts_aesni.c) walks the data
 * units and makes their encrypted tweaks E_Key2(i). */
#include "block/xts_aesni.h"

#include <immintrin.h>

#define XTS_VAES_TARGET __attribute__((target("aes,pclmul,vaes,vpclmulqdq,avx512f,avx512bw")))
#define XTS_VAES_INLINE static inline __attribute__((always_inline)) XTS_VAES_TARGET

/* Multiplies each 128-bit lane by alpha^(8 * nb) (nb = 1..8 bytes, an
 * immediate): the lane shifted up nb bytes, and the nb bytes shifted out
 * reduced with x^128 = x^7 + x^2 + x + 1 by one carry-less product with
 * 0x87 (at most 8 * nb + 7 bits, so no second reduction; IEEE 1619
 * section 5.2). */
#define XTS_MUL_ALPHA_BYTES(t, nb)                                                     \
	_mm512_xor_si512(_mm512_bslli_epi128((t), (nb)),                               \
			 _mm512_clmulepi64_epi128(_mm512_bsrli_epi128((t), 16 - (nb)),  \
						  _mm512_set1_epi64(0x87), 0x00))

/* Round key r, four copies (struct xts_aesni_key stores them so). */
XTS_VAES_INLINE __m512i xts_rk4(const struct xts_aesni_key *k, enum xts_schedule s, unsigned r)
{
	return _mm512_load_si512((const void *)k->rk[s][r]);
}

/* FIPS-197 section 5.1 or 5.3.5 on 8 x 4 blocks, round by round across
 * the registers to hide each VAESENC's latency. */
XTS_VAES_INLINE void xts_aes32(const struct xts_aesni_key *k, enum xts_schedule s, __m512i x[8], bool enc)
{
	const unsigned nr = k->rounds;
	__m512i key = xts_rk4(k, s, 0);

	for (int i = 0; i < 8; i++)
		x[i] = _mm512_xor_si512(x[i], key);
	for (unsigned r = 1; r < nr; r++) {
		key = xts_rk4(k, s, r);
		for (int i = 0; i < 8; i++)
			x[i] = enc ? _mm512_aesenc_epi128(x[i], key) : _mm512_aesdec_epi128(x[i], key);
	}
	key = xts_rk4(k, s, nr);
	for (int i = 0; i < 8; i++)
		x[i] = enc ? _mm512_aesenclast_epi128(x[i], key) : _mm512_aesdeclast_epi128(x[i], key);
}

/* T * alpha^c in each 128-bit lane of `t4` (T in every lane), c given
 * per 64-bit half in `c` (0..63, equal halves): both halves shifted up c
 * bits; the c bits out of the low half carry into the high half, those
 * out of the high half are x^128..x^(128+c-1) and fold back as their
 * carry-less product with 0x87 (IEEE 1619 section 5.2).  Only shifts: a
 * data unit's tweaks come straight from T instead of a chain of
 * doublings, so its first AES round can start sooner. */
XTS_VAES_INLINE __m512i xts_mul_alpha_bits(__m512i t4, __m512i c)
{
	const __m512i high_half = _mm512_set_epi64(-1, 0, -1, 0, -1, 0, -1, 0);
	__m512i out = _mm512_srlv_epi64(t4, _mm512_sub_epi64(_mm512_set1_epi64(64), c));

	/* Swap the halves: the low half's bits go up, the high half's down
	 * into the reduction. */
	out = _mm512_shuffle_epi32(out, _MM_PERM_BADC);
	return _mm512_ternarylogic_epi64(_mm512_sllv_epi64(t4, c), _mm512_and_si512(out, high_half),
					 _mm512_clmulepi64_epi128(out, _mm512_set1_epi64(0x87), 0x00), 0x96);
}

/* One data unit of `blocks` (a multiple of 32) blocks with encrypted
 * tweak t, from src to dst.  Register i holds blocks 4i..4i+3 of each 32, so its lanes'
 * tweaks start at t * alpha^(4i..4i+3) and step by alpha^32. */
XTS_VAES_INLINE void xts_unit(const struct xts_aesni_key *k, __m128i t, uint8_t *dst, const uint8_t *src,
			     uint32_t blocks, bool enc)
{
	const enum xts_schedule s = enc ? XTS_KEY1_ENC : XTS_KEY1_DEC;
	const __m512i lane = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
	const __m512i t4 = _mm512_broadcast_i32x4(t);
	__m512i tw[8], x[8];

	tw[0] = xts_mul_alpha_bits(t4, lane);
	tw[1] = xts_mul_alpha_bits(t4, _mm512_add_epi64(lane, _mm512_set1_epi64(4)));
	tw[2] = XTS_MUL_ALPHA_BYTES(tw[0], 1);
	tw[3] = XTS_MUL_ALPHA_BYTES(tw[1], 1);
	tw[4] = XTS_MUL_ALPHA_BYTES(tw[0], 2);
	tw[5] = XTS_MUL_ALPHA_BYTES(tw[1], 2);
	tw[6] = XTS_MUL_ALPHA_BYTES(tw[0], 3);
	tw[7] = XTS_MUL_ALPHA_BYTES(tw[1], 3);
	for (uint32_t b = 0; b < blocks; b += 32, src += 512, dst += 512) {
		for (int i = 0; i < 8; i++)
			x[i] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + 64 * i)), tw[i]);
		xts_aes32(k, s, x, enc);
		for (int i = 0; i < 8; i++) {
			_mm512_storeu_si512((void *)(dst + 64 * i), _mm512_xor_si512(x[i], tw[i]));
			tw[i] = XTS_MUL_ALPHA_BYTES(tw[i], 4);
		}
	}
}

static XTS_VAES_TARGET void xts_vaes_unit_enc(const struct xts_aesni_key *k, __m128i t, uint8_t *dst,
					       const uint8_t *src, uint32_t blocks)
{
	xts_unit(k, t, dst, src, blocks, true);
}

static XTS_VAES_TARGET void xts_vaes_unit_dec(const struct xts_aesni_key *k, __m128i t, uint8_t *dst,
					       const uint8_t *src, uint32_t blocks)
{
	xts_unit(k, t, dst, src, blocks, false);
}

void xts_vaes_crypt(const struct xts_aesni_key *k, uint64_t first, uint32_t unit_bytes,
		    uint8_t *dst, const uint8_t *src, uint32_t n, bool enc)
{
	xts_units(k, first, unit_bytes, dst, src, n, enc ? xts_vaes_unit_enc : xts_vaes_unit_dec);
}
