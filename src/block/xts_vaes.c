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

/* Four 128-bit values into the lanes of one register, a first. */
XTS_VAES_INLINE __m512i xts_pack4(__m128i a, __m128i b, __m128i c, __m128i d)
{
	__m512i v = _mm512_castsi128_si512(a);

	v = _mm512_inserti32x4(v, b, 1);
	v = _mm512_inserti32x4(v, c, 2);
	return _mm512_inserti32x4(v, d, 3);
}

/* One data unit of `blocks` (a multiple of 32) blocks with encrypted
 * tweak t.  Register i holds blocks 4i..4i+3 of each 32, so its lanes'
 * tweaks start at t * alpha^(4i..4i+3) and step by alpha^32. */
XTS_VAES_INLINE void xts_unit(const struct xts_aesni_key *k, __m128i t, uint8_t *p, uint32_t blocks, bool enc)
{
	const enum xts_schedule s = enc ? XTS_KEY1_ENC : XTS_KEY1_DEC;
	__m128i t8[8];
	__m512i tw[8], x[8];

	t8[0] = t;
	for (int i = 1; i < 8; i++)
		t8[i] = xts_mul_alpha(t8[i - 1]);
	tw[0] = xts_pack4(t8[0], t8[1], t8[2], t8[3]);
	tw[1] = xts_pack4(t8[4], t8[5], t8[6], t8[7]);
	for (int i = 2; i < 8; i++)
		tw[i] = XTS_MUL_ALPHA_BYTES(tw[i - 2], 1);
	for (uint32_t b = 0; b < blocks; b += 32, p += 512) {
		for (int i = 0; i < 8; i++)
			x[i] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(p + 64 * i)), tw[i]);
		xts_aes32(k, s, x, enc);
		for (int i = 0; i < 8; i++) {
			_mm512_storeu_si512((void *)(p + 64 * i), _mm512_xor_si512(x[i], tw[i]));
			tw[i] = XTS_MUL_ALPHA_BYTES(tw[i], 4);
		}
	}
}

static XTS_VAES_TARGET void xts_vaes_unit_enc(const struct xts_aesni_key *k, __m128i t, uint8_t *p,
					       uint32_t blocks)
{
	xts_unit(k, t, p, blocks, true);
}

static XTS_VAES_TARGET void xts_vaes_unit_dec(const struct xts_aesni_key *k, __m128i t, uint8_t *p,
					       uint32_t blocks)
{
	xts_unit(k, t, p, blocks, false);
}

void xts_vaes_crypt(const struct xts_aesni_key *k, uint64_t first, uint32_t unit_bytes,
		    uint8_t *buf, uint32_t n, bool enc)
{
	xts_units(k, first, unit_bytes, buf, n, enc ? xts_vaes_unit_enc : xts_vaes_unit_dec);
}
