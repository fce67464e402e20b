/* Single-pass AES-XTS (IEEE Std 1619-2007) on x86-64 AES instructions,
 * for the built-in "aes-xts-plain64" cipher (crypt_aes_xts.c).
 *
 * Two kernels share one key schedule:
 *   - xts_aesni.c: AES-NI and PCLMULQDQ on 128-bit registers, eight AES
 *     blocks in flight;
 *   - xts_vaes.c: VAES and VPCLMULQDQ on 512-bit registers, 32 blocks (a
 *     whole 512-byte data unit) in flight.
 * Each is compiled for its instruction set with target attributes, so
 * the rest of vessel keeps the x86-64 baseline; the caller checks CPUID
 * (xts_cpu_paths()) before calling one.
 *
 * Data units are the encryption sectors (512..4096 bytes, whole AES
 * blocks, so no ciphertext stealing); the tweak of a data unit is its
 * plain64 number: a 64-bit little-endian count of 512-byte sectors, zero
 * extended to 128 bits (IEEE 1619 section 5.1 "data unit sequence
 * number"). */
#ifndef VESSEL_BLOCK_XTS_AESNI_H
#define VESSEL_BLOCK_XTS_AESNI_H

#include <stdbool.h>
#include <stdint.h>

#include <emmintrin.h>

/* AES-256 has 14 rounds, so 15 round keys (FIPS-197 section 5.2). */
#define XTS_AES_MAX_ROUND_KEYS 15

enum xts_schedule {
	XTS_KEY1_ENC,  /* data key, encryption round keys */
	XTS_KEY1_DEC,  /* data key, equivalent inverse cipher (FIPS-197 section 5.3.5) */
	XTS_KEY2_ENC,  /* tweak key; XTS only ever encrypts with it */
	XTS_N_SCHEDULES
};

/* Key schedules of an XTS key (Key1 || Key2).  Each round key is stored
 * four times side by side, so that the 512-bit kernel loads it as one
 * aligned vector and the 128-bit kernel takes the first copy.  Key
 * material: wipe the whole struct when the key is dropped. */
struct xts_aesni_key {
	_Alignas(64) uint8_t rk[XTS_N_SCHEDULES][XTS_AES_MAX_ROUND_KEYS][64];
	uint32_t rounds;  /* 10 (XTS-AES-128) or 14 (XTS-AES-256) */
};

/* T * alpha in GF(2^128) (IEEE 1619 section 5.2): the 128-bit value is
 * little-endian, so this is a left shift by one with the carry out of
 * bit 127 folded back as 0x87.  SSE2 only (x86-64 baseline): each 32-bit
 * lane shifts left by one, and the sign bit of each lane, rotated one
 * lane up, brings in the carry; lane 3's carry lands in lane 0 as 0x87. */
static inline __m128i xts_mul_alpha(__m128i t)
{
	const __m128i poly = _mm_set_epi32(1, 1, 1, 0x87);
	__m128i c = _mm_and_si128(_mm_shuffle_epi32(_mm_srai_epi32(t, 31), 0x93), poly);

	return _mm_xor_si128(_mm_add_epi32(t, t), c);
}

/* What the CPU and OS offer (CPUID and XGETBV): */
#define XTS_CPU_AESNI 1u  /* AES-NI and PCLMULQDQ: xts_aesni_crypt() */
#define XTS_CPU_VAES  2u  /* also VAES, VPCLMULQDQ, AVX-512F/BW with ZMM state enabled: xts_vaes_crypt() */
unsigned xts_cpu_paths(void);

/* Expands a 32-byte (XTS-AES-128) or 64-byte (XTS-AES-256) XTS key:
 * the first half is Key1, the data key, the second Key2, the tweak key
 * (IEEE 1619 section 5.1).  Needs XTS_CPU_AESNI.  Returns false for
 * another key length. */
bool xts_aesni_set_key(struct xts_aesni_key *k, const uint8_t *key, uint32_t key_len);

/* One data unit of `blocks` blocks (a multiple of 32) from src to dst
 * (the same buffer, or buffers that do not overlap), given its encrypted
 * tweak E_Key2(i), in one direction. */
typedef void xts_unit_fn(const struct xts_aesni_key *k, __m128i tweak, uint8_t *dst, const uint8_t *src,
			 uint32_t blocks);

/* Runs `unit` over n data units of unit_bytes numbered first, first +
 * unit_bytes / 512, ..., computing their encrypted tweaks eight at a
 * time (AES-NI).  The common driver of both kernels. */
void xts_units(const struct xts_aesni_key *k, uint64_t first, uint32_t unit_bytes, uint8_t *dst,
	       const uint8_t *src, uint32_t n, xts_unit_fn *unit);

/* Encrypts (enc) or decrypts `n` consecutive data units of `unit_bytes`
 * (a multiple of 512) from src into dst, which is src itself (in place)
 * or does not overlap it; the first has sequence number `first`,
 * the next first + unit_bytes / 512, and so on (plain64 counts 512-byte
 * sectors).  xts_vaes_crypt() needs XTS_CPU_VAES as well. */
void xts_aesni_crypt(const struct xts_aesni_key *k, uint64_t first, uint32_t unit_bytes,
		     uint8_t *dst, const uint8_t *src, uint32_t n, bool enc);
void xts_vaes_crypt(const struct xts_aesni_key *k, uint64_t first, uint32_t unit_bytes,
		    uint8_t *dst, const uint8_t *src, uint32_t n, bool enc);

#endif
