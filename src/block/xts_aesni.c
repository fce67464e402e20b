/* AES-XTS with AES-NI on 128-bit registers (xts_aesni.h): the AES key
 * schedules, the encrypted tweaks, and the 8-way XTS kernel.
 *
 * XTS-AES encryption of one 16-byte block j of data unit i (IEEE Std
 * 1619-2007 section 5.3.1, decryption 5.4.1 likewise with AES
 * decryption):
 *     T = E_Key2(i) (x) alpha^j,  C = E_Key1(P ^ T) ^ T
 * in GF(2^128) with the polynomial x^128 + x^7 + x^2 + x + 1 (section
 * 5.2).  One pass over the data: the tweaks are made in registers as the
 * blocks go through, never stored, and eight blocks run through the AES
 * rounds interleaved, because one AESENC takes several cycles to give its
 * result while the unit can start a new one every cycle or two. */
#include "block/xts_aesni.h"

#include <string.h>

#include <immintrin.h>

#define XTS_AESNI_TARGET __attribute__((target("aes,pclmul")))
#define XTS_AESNI_INLINE static inline __attribute__((always_inline)) XTS_AESNI_TARGET

/* ---- key schedule (FIPS-197 section 5.2, KeyExpansion) --------------- */

/* w[i] = w[i-Nk] ^ temp for the four words of a round key at once: the
 * running XOR of the previous key's words (the three shifted XORs), then
 * `g`, the SubWord/RotWord/Rcon term broadcast to all four words. */
XTS_AESNI_INLINE __m128i xts_key_step(__m128i prev, __m128i g)
{
	prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
	prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
	prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
	return _mm_xor_si128(prev, g);
}

/* AESKEYGENASSIST gives SubWord(X3) in word 2 and RotWord(SubWord(X3)) ^
 * Rcon in word 3 for the last word X3 of its operand; Rcon must be an
 * immediate, hence macros.  AES-128 (Nk = 4): every round key uses
 * RotWord and the next Rcon. */
#define XTS_EXPAND128(rk, i, rcon)                                                        \
	((rk)[i] = xts_key_step((rk)[(i) - 1],                                            \
				_mm_shuffle_epi32(_mm_aeskeygenassist_si128((rk)[(i) - 1], (rcon)), 0xff)))
/* AES-256 (Nk = 8): even round keys as AES-128's from two keys back;
 * odd ones take SubWord alone (i mod Nk = 4 in FIPS-197's loop). */
#define XTS_EXPAND256_EVEN(rk, i, rcon)                                                   \
	((rk)[i] = xts_key_step((rk)[(i) - 2],                                            \
				_mm_shuffle_epi32(_mm_aeskeygenassist_si128((rk)[(i) - 1], (rcon)), 0xff)))
#define XTS_EXPAND256_ODD(rk, i)                                                          \
	((rk)[i] = xts_key_step((rk)[(i) - 2],                                            \
				_mm_shuffle_epi32(_mm_aeskeygenassist_si128((rk)[(i) - 1], 0), 0xaa)))

/* Expands a 16- or 32-byte AES key into rk[0..rounds]; returns rounds. */
static XTS_AESNI_TARGET unsigned xts_expand(const uint8_t *key, uint32_t len, __m128i rk[XTS_AES_MAX_ROUND_KEYS])
{
	rk[0] = _mm_loadu_si128((const __m128i *)key);
	if (len == 16) {
		XTS_EXPAND128(rk, 1, 0x01);
		XTS_EXPAND128(rk, 2, 0x02);
		XTS_EXPAND128(rk, 3, 0x04);
		XTS_EXPAND128(rk, 4, 0x08);
		XTS_EXPAND128(rk, 5, 0x10);
		XTS_EXPAND128(rk, 6, 0x20);
		XTS_EXPAND128(rk, 7, 0x40);
		XTS_EXPAND128(rk, 8, 0x80);
		XTS_EXPAND128(rk, 9, 0x1b);
		XTS_EXPAND128(rk, 10, 0x36);
		return 10;
	}
	rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
	XTS_EXPAND256_EVEN(rk, 2, 0x01);
	XTS_EXPAND256_ODD(rk, 3);
	XTS_EXPAND256_EVEN(rk, 4, 0x02);
	XTS_EXPAND256_ODD(rk, 5);
	XTS_EXPAND256_EVEN(rk, 6, 0x04);
	XTS_EXPAND256_ODD(rk, 7);
	XTS_EXPAND256_EVEN(rk, 8, 0x08);
	XTS_EXPAND256_ODD(rk, 9);
	XTS_EXPAND256_EVEN(rk, 10, 0x10);
	XTS_EXPAND256_ODD(rk, 11);
	XTS_EXPAND256_EVEN(rk, 12, 0x20);
	XTS_EXPAND256_ODD(rk, 13);
	XTS_EXPAND256_EVEN(rk, 14, 0x40);
	return 14;
}

static void xts_store_schedule(struct xts_aesni_key *k, enum xts_schedule s, const __m128i *rk)
{
	for (unsigned r = 0; r <= k->rounds; r++)
		for (int c = 0; c < 4; c++)
			_mm_store_si128((__m128i *)(k->rk[s][r] + 16 * c), rk[r]);
}

XTS_AESNI_TARGET bool xts_aesni_set_key(struct xts_aesni_key *k, const uint8_t *key, uint32_t key_len)
{
	const uint32_t half = key_len / 2;
	__m128i ek[XTS_AES_MAX_ROUND_KEYS], dk[XTS_AES_MAX_ROUND_KEYS];

	if (key_len != 32 && key_len != 64)
		return false;
	memset(k, 0, sizeof(*k));
	k->rounds = xts_expand(key + half, half, ek);
	xts_store_schedule(k, XTS_KEY2_ENC, ek);
	xts_expand(key, half, ek);
	xts_store_schedule(k, XTS_KEY1_ENC, ek);
	/* Equivalent inverse cipher (FIPS-197 section 5.3.5): the encryption
	 * round keys in reverse order, InvMixColumns applied to all but the
	 * first and last, which is what AESDEC expects. */
	dk[0] = ek[k->rounds];
	for (unsigned r = 1; r < k->rounds; r++)
		dk[r] = _mm_aesimc_si128(ek[k->rounds - r]);
	dk[k->rounds] = ek[0];
	xts_store_schedule(k, XTS_KEY1_DEC, dk);
	explicit_bzero(ek, sizeof(ek));
	explicit_bzero(dk, sizeof(dk));
	return true;
}

/* ---- the cipher, eight blocks at a time ------------------------------ */

/* T * alpha^8: the little-endian 128-bit value shifted up one byte, and
 * the byte shifted out (the coefficients of x^128..x^135) reduced with
 * x^128 = x^7 + x^2 + x + 1: a carry-less product with 0x87 of at most 15
 * bits, so no second reduction (IEEE 1619 section 5.2). */
XTS_AESNI_INLINE __m128i xts_mul_alpha8(__m128i t)
{
	const __m128i poly = _mm_set_epi64x(0, 0x87);

	return _mm_xor_si128(_mm_slli_si128(t, 1), _mm_clmulepi64_si128(_mm_srli_si128(t, 15), poly, 0x00));
}

XTS_AESNI_INLINE __m128i xts_rk(const struct xts_aesni_key *k, enum xts_schedule s, unsigned r)
{
	return _mm_load_si128((const __m128i *)k->rk[s][r]);
}

/* FIPS-197 section 5.1 (Cipher) or 5.3.5 (equivalent inverse cipher) on
 * eight independent blocks: AddRoundKey, Nr - 1 full rounds, the last
 * round without MixColumns.  Round by round across the blocks, so each
 * AESENC's latency is hidden behind the seven others. */
XTS_AESNI_INLINE void xts_aes8(const struct xts_aesni_key *k, enum xts_schedule s, __m128i x[8], bool enc)
{
	const unsigned nr = k->rounds;
	__m128i key = xts_rk(k, s, 0);

	for (int i = 0; i < 8; i++)
		x[i] = _mm_xor_si128(x[i], key);
	for (unsigned r = 1; r < nr; r++) {
		key = xts_rk(k, s, r);
		for (int i = 0; i < 8; i++)
			x[i] = enc ? _mm_aesenc_si128(x[i], key) : _mm_aesdec_si128(x[i], key);
	}
	key = xts_rk(k, s, nr);
	for (int i = 0; i < 8; i++)
		x[i] = enc ? _mm_aesenclast_si128(x[i], key) : _mm_aesdeclast_si128(x[i], key);
}

/* The encrypted tweaks E_Key2(i) of eight data units numbered first,
 * first + step, ...: plain64, the 64-bit number little-endian with the
 * upper half zero.  Eight AES encryptions interleaved cost about what
 * one does. */
XTS_AESNI_INLINE void xts_tweaks8(const struct xts_aesni_key *k, uint64_t first, uint64_t step, __m128i out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = _mm_set_epi64x(0, (long long)(first + (uint64_t)i * step));
	xts_aes8(k, XTS_KEY2_ENC, out, true);
}

/* One data unit of `blocks` (a multiple of 8) blocks with encrypted
 * tweak t, from src to dst: lane i handles blocks i, i + 8, i + 16, ..., so its tweak
 * starts at t * alpha^i and steps by alpha^8. */
XTS_AESNI_INLINE void xts_unit(const struct xts_aesni_key *k, __m128i t, uint8_t *dst, const uint8_t *src,
			       uint32_t blocks, bool enc)
{
	const enum xts_schedule s = enc ? XTS_KEY1_ENC : XTS_KEY1_DEC;
	__m128i tw[8], x[8];

	tw[0] = t;
	for (int i = 1; i < 8; i++)
		tw[i] = xts_mul_alpha(tw[i - 1]);
	for (uint32_t b = 0; b < blocks; b += 8, src += 128, dst += 128) {
		for (int i = 0; i < 8; i++)
			x[i] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + 16 * i)), tw[i]);
		xts_aes8(k, s, x, enc);
		for (int i = 0; i < 8; i++) {
			_mm_storeu_si128((__m128i *)(dst + 16 * i), _mm_xor_si128(x[i], tw[i]));
			tw[i] = xts_mul_alpha8(tw[i]);
		}
	}
}

static XTS_AESNI_TARGET void xts_aesni_unit_enc(const struct xts_aesni_key *k, __m128i t, uint8_t *dst,
						 const uint8_t *src, uint32_t blocks)
{
	xts_unit(k, t, dst, src, blocks, true);
}

static XTS_AESNI_TARGET void xts_aesni_unit_dec(const struct xts_aesni_key *k, __m128i t, uint8_t *dst,
						 const uint8_t *src, uint32_t blocks)
{
	xts_unit(k, t, dst, src, blocks, false);
}

XTS_AESNI_TARGET void xts_units(const struct xts_aesni_key *k, uint64_t first, uint32_t unit_bytes,
				uint8_t *dst, const uint8_t *src, uint32_t n, xts_unit_fn *unit)
{
	const uint64_t step = unit_bytes / 512;
	__m128i t[8];

	for (uint32_t u = 0; u < n; u += 8) {
		uint32_t m = n - u < 8 ? n - u : 8;
		xts_tweaks8(k, first + u * step, step, t);
		for (uint32_t j = 0; j < m; j++) {
			size_t off = (size_t)(u + j) * unit_bytes;
			unit(k, t[j], dst + off, src + off, unit_bytes / 16);
		}
	}
	/* The encrypted tweaks are key-dependent: wipe the copies this code
	 * itself keeps in memory. */
	explicit_bzero(t, sizeof(t));
}

void xts_aesni_crypt(const struct xts_aesni_key *k, uint64_t first, uint32_t unit_bytes,
		     uint8_t *dst, const uint8_t *src, uint32_t n, bool enc)
{
	xts_units(k, first, unit_bytes, dst, src, n, enc ? xts_aesni_unit_enc : xts_aesni_unit_dec);
}
