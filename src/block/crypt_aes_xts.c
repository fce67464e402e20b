/* Built-in sector cipher "aes-xts-plain64": AES-XTS (IEEE Std 1619-2007).
 *
 * Tweak ("plain64" IV generator, as dm-crypt and LUKS2 define it): the
 * sector number as a 64-bit little-endian integer, zero-padded to the
 * 16-byte AES block (IEEE 1619 section 5.1 calls it the data unit
 * sequence number).  One XTS data unit per encryption sector, numbered
 * in 512-byte sectors even when the encryption sector is larger.
 *
 * Key: 32 bytes (XTS-AES-128) or 64 bytes (XTS-AES-256): the first half
 * is the data key, the second the tweak key (IEEE 1619 section 5.1).
 *
 * Three implementations, chosen per context when it is created
 * (crypt_aes_xts.h), all giving the same bytes:
 *   - VAES: one pass over the data on 512-bit registers (xts_vaes.c);
 *   - AES-NI: the same on 128-bit registers (xts_aesni.c);
 *   - OpenSSL, for CPUs without AES-NI, below.
 * The first two keep their key schedules in the context and need no
 * locking.  The tests compare every path the CPU has with OpenSSL's own
 * XTS and the IEEE 1619 vectors (tests/unit/block/test_crypt.c).
 *
 * The OpenSSL path: OpenSSL's XTS needs an EVP re-initialisation per
 * 512-byte data unit to change the tweak, which costs about as much as
 * encrypting it.  So XTS is built from its definition (IEEE 1619 section
 * 5.3.1): C_j = E_K1(P_j ^ T_j) ^ T_j with T_j = E_K2(i) * alpha^j in
 * GF(2^128).  The tweaks of a whole batch of sectors are computed first
 * (one ECB call with K2 for the E_K2(i), then doublings), so the data key
 * runs as one long AES-ECB call over the batch.  An EVP_CIPHER_CTX must
 * not be used by two threads at once: each context keeps a small pool of
 * keyed EVP contexts per direction; a call borrows one, which costs a
 * mutex round trip instead of a key schedule. */
#include "block/crypt_aes_xts.h"
#include "block/crypt_plugin.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "block/xts_aesni.h"

#define XTS_POOL_MAX 16
/* Bytes per ECB pass: big enough to keep AES-NI pipelined, small enough
 * that the batch stays in the L1/L2 cache between the three passes. */
#define XTS_BATCH 16384u

/* Keyed ECB contexts for one call: the data key in the call's direction
 * and the tweak key (always encrypting). */
struct xts_pair {
	EVP_CIPHER_CTX *data;
	EVP_CIPHER_CTX *tweak;
};

struct xts_pool {
	struct xts_pair pair[XTS_POOL_MAX];
	unsigned n;
};

struct xts_ctx {
	struct xts_aesni_key fast;  /* key schedules of the AES-NI and VAES paths */
	enum crypt_aes_xts_path path;
	/* The OpenSSL path only: */
	const EVP_CIPHER *ecb;
	uint8_t key[64];
	uint32_t key_len;
	uint32_t sector_size;
	pthread_mutex_t lock;
	struct xts_pool pool[2]; /* [0] decrypt, [1] encrypt */
};

static const uint32_t xts_key_sizes[] = { 32, 64, 0 };

/* ---- choosing the implementation -------------------------------------- */

static int xts_forced = CRYPT_AES_XTS_AUTO;

static bool xts_path_runs(enum crypt_aes_xts_path path)
{
	switch (path) {
	case CRYPT_AES_XTS_OPENSSL:
		return true;
	case CRYPT_AES_XTS_AESNI:
		return xts_cpu_paths() & XTS_CPU_AESNI;
	case CRYPT_AES_XTS_VAES:
		return xts_cpu_paths() & XTS_CPU_VAES;
	default:
		return false;
	}
}

int crypt_aes_xts_select(enum crypt_aes_xts_path path)
{
	if (path != CRYPT_AES_XTS_AUTO && !xts_path_runs(path))
		return -ENOTSUP;
	__atomic_store_n(&xts_forced, path, __ATOMIC_RELAXED);
	return 0;
}

enum crypt_aes_xts_path crypt_aes_xts_path(void)
{
	enum crypt_aes_xts_path forced = __atomic_load_n(&xts_forced, __ATOMIC_RELAXED);
	unsigned paths;

	if (forced != CRYPT_AES_XTS_AUTO)
		return forced;
	paths = xts_cpu_paths();
	return paths & XTS_CPU_VAES ? CRYPT_AES_XTS_VAES
	       : paths & XTS_CPU_AESNI ? CRYPT_AES_XTS_AESNI : CRYPT_AES_XTS_OPENSSL;
}

const char *crypt_aes_xts_path_name(enum crypt_aes_xts_path path)
{
	switch (path) {
	case CRYPT_AES_XTS_OPENSSL:
		return "openssl";
	case CRYPT_AES_XTS_AESNI:
		return "aes-ni";
	case CRYPT_AES_XTS_VAES:
		return "vaes";
	default:
		return "auto";
	}
}

/* ---- contexts ----------------------------------------------------------- */

static int xts_create(const uint8_t *key, uint32_t key_len, uint32_t sector_size, void **out)
{
	const EVP_CIPHER *ecb;

	if (key_len == 64)
		ecb = EVP_aes_256_ecb();
	else if (key_len == 32)
		ecb = EVP_aes_128_ecb();
	else
		return -EINVAL;
	/* An XTS data unit is whole AES blocks here; sectors are 512..4096. */
	if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1)))
		return -EINVAL;
	/* Equal halves make XTS degenerate (and OpenSSL refuses them for its
	 * own XTS); refuse them here too. */
	if (CRYPTO_memcmp(key, key + key_len / 2, key_len / 2) == 0)
		return -EINVAL;

	/* Aligned for the 512-bit loads of the round keys. */
	struct xts_ctx *x = aligned_alloc(_Alignof(struct xts_ctx), sizeof(*x));
	if (!x)
		return -ENOMEM;
	memset(x, 0, sizeof(*x));
	x->path = crypt_aes_xts_path();
	x->key_len = key_len;
	x->sector_size = sector_size;
	if (x->path == CRYPT_AES_XTS_OPENSSL) {
		/* Keyed EVP contexts are made on first use (xts_borrow). */
		x->ecb = ecb;
		memcpy(x->key, key, key_len);
	} else {
		xts_aesni_set_key(&x->fast, key, key_len);
	}
	pthread_mutex_init(&x->lock, NULL);
	*out = x;
	return 0;
}

static void xts_pair_free(struct xts_pair *p)
{
	EVP_CIPHER_CTX_free(p->data);  /* frees and cleanses the key schedule */
	EVP_CIPHER_CTX_free(p->tweak);
}

static void xts_destroy(void *ctx)
{
	struct xts_ctx *x = ctx;

	if (!x)
		return;
	for (int d = 0; d < 2; d++)
		for (unsigned i = 0; i < x->pool[d].n; i++)
			xts_pair_free(&x->pool[d].pair[i]);
	pthread_mutex_destroy(&x->lock);
	OPENSSL_cleanse(x->key, sizeof(x->key));
	OPENSSL_cleanse(&x->fast, sizeof(x->fast));
	free(x);
}

static EVP_CIPHER_CTX *xts_ecb_new(const EVP_CIPHER *ecb, const uint8_t *key, int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	if (c && (EVP_CipherInit_ex(c, ecb, NULL, key, NULL, enc) != 1 ||
		  EVP_CIPHER_CTX_set_padding(c, 0) != 1)) {
		EVP_CIPHER_CTX_free(c);
		c = NULL;
	}
	return c;
}

static int xts_borrow(struct xts_ctx *x, int enc, struct xts_pair *out)
{
	bool have = false;

	pthread_mutex_lock(&x->lock);
	if (x->pool[enc].n) {
		*out = x->pool[enc].pair[--x->pool[enc].n];
		have = true;
	}
	pthread_mutex_unlock(&x->lock);
	if (have)
		return 0;
	uint32_t half = x->key_len / 2;
	out->data = xts_ecb_new(x->ecb, x->key, enc);
	out->tweak = xts_ecb_new(x->ecb, x->key + half, 1);
	if (!out->data || !out->tweak) {
		xts_pair_free(out);
		return -ENOMEM;
	}
	return 0;
}

static void xts_return(struct xts_ctx *x, int enc, struct xts_pair *p)
{
	bool kept = false;

	pthread_mutex_lock(&x->lock);
	if (x->pool[enc].n < XTS_POOL_MAX) {
		x->pool[enc].pair[x->pool[enc].n++] = *p;
		kept = true;
	}
	pthread_mutex_unlock(&x->lock);
	if (!kept)
		xts_pair_free(p);
}

/* XORs the tweaks T_0 .. T_{blocks-1} of one data unit into its blocks,
 * T_0 = E_K2(i) given, T_{j+1} = T_j * alpha (xts_mul_alpha).  The
 * tweaks stay in a register, so the two passes (before and after the AES
 * pass) make them again instead of storing key-dependent values in
 * memory. */
static inline void xts_tweak_xor(uint8_t *d, const uint8_t *t0, uint32_t blocks)
{
	__m128i t = _mm_loadu_si128((const __m128i *)t0);

	for (uint32_t j = 0; j < blocks; j++, d += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)d);
		_mm_storeu_si128((__m128i *)d, _mm_xor_si128(v, t));
		t = xts_mul_alpha(t);
	}
}

/* The same for four consecutive data units of `ss` bytes at once: each
 * doubling waits for the previous one (about four cycles), so four
 * independent chains keep the vector units busy. */
static inline void xts_tweak_xor4(uint8_t *d, const uint8_t *t0, uint32_t blocks, size_t ss)
{
	__m128i a = _mm_loadu_si128((const __m128i *)t0);
	__m128i b = _mm_loadu_si128((const __m128i *)(t0 + 16));
	__m128i c = _mm_loadu_si128((const __m128i *)(t0 + 32));
	__m128i e = _mm_loadu_si128((const __m128i *)(t0 + 48));

	for (uint32_t j = 0; j < blocks; j++, d += 16) {
		__m128i *p0 = (__m128i *)d, *p1 = (__m128i *)(d + ss);
		__m128i *p2 = (__m128i *)(d + 2 * ss), *p3 = (__m128i *)(d + 3 * ss);
		_mm_storeu_si128(p0, _mm_xor_si128(_mm_loadu_si128(p0), a));
		_mm_storeu_si128(p1, _mm_xor_si128(_mm_loadu_si128(p1), b));
		_mm_storeu_si128(p2, _mm_xor_si128(_mm_loadu_si128(p2), c));
		_mm_storeu_si128(p3, _mm_xor_si128(_mm_loadu_si128(p3), e));
		a = xts_mul_alpha(a);
		b = xts_mul_alpha(b);
		c = xts_mul_alpha(c);
		e = xts_mul_alpha(e);
	}
}

/* XORs the tweaks of `n` consecutive data units into them. */
static void xts_tweak_xor_units(uint8_t *buf, const uint8_t *ivs, uint32_t n, uint32_t ss)
{
	uint32_t s = 0;

	for (; s + 4 <= n; s += 4)
		xts_tweak_xor4(buf + (size_t)s * ss, ivs + s * 16, ss / 16, ss);
	for (; s < n; s++)
		xts_tweak_xor(buf + (size_t)s * ss, ivs + s * 16, ss / 16);
}

static int xts_openssl_crypt(struct xts_ctx *x, uint64_t sector, uint8_t *buf, uint32_t n_sectors, int enc)
{
	struct xts_pair p;
	const uint32_t ss = x->sector_size;
	const uint32_t per_batch = ss >= XTS_BATCH ? 1 : XTS_BATCH / ss;
	uint8_t ivs[XTS_BATCH / 512 * 16] __attribute__((aligned(16)));
	int rc = xts_borrow(x, enc, &p);

	if (rc < 0)
		return rc;
	while (n_sectors && rc == 0) {
		uint32_t n = n_sectors < per_batch ? n_sectors : per_batch;
		size_t bytes = (size_t)n * ss;
		int outl;

		/* E_K2(i) for each sector: plain64, i as a 128-bit little-endian
		 * number (upper 64 bits zero), counted in 512-byte sectors
		 * whatever the sector size (include/vessel/crypt.h). */
		memset(ivs, 0, (size_t)n * 16);
		for (uint32_t s = 0; s < n; s++) {
			uint64_t i = sector + (uint64_t)s * (ss / 512);
			for (int b = 0; b < 8; b++)
				ivs[s * 16 + b] = (uint8_t)(i >> (8 * b));
		}
		if (EVP_CipherUpdate(p.tweak, ivs, &outl, ivs, (int)n * 16) != 1) {
			rc = -EIO;
			break;
		}
		/* C_j = E_K1(P_j ^ T_j) ^ T_j (IEEE 1619 section 5.3.1), with
		 * the AES pass over the whole batch at once. */
		xts_tweak_xor_units(buf, ivs, n, ss);
		if (EVP_CipherUpdate(p.data, buf, &outl, buf, (int)bytes) != 1 || outl != (int)bytes)
			rc = -EIO;
		xts_tweak_xor_units(buf, ivs, n, ss);
		buf += bytes;
		sector += (uint64_t)n * (ss / 512);
		n_sectors -= n;
	}
	/* E_K2(i) are key-dependent secrets; explicit_bzero is a plain
	 * memset the compiler may not drop (OPENSSL_cleanse stores byte by
	 * byte and, over the old 8 KiB tweak buffer, cost as much as the AES
	 * pass). */
	explicit_bzero(ivs, sizeof(ivs));
	xts_return(x, enc, &p);
	return rc;
}

/* src to dst: the same buffer, or two that do not overlap. */
static int xts_crypt(void *ctx, uint64_t sector, uint8_t *dst, const uint8_t *src, uint32_t n_sectors, int enc)
{
	struct xts_ctx *x = ctx;

	switch (x->path) {
	case CRYPT_AES_XTS_VAES:
		xts_vaes_crypt(&x->fast, sector, x->sector_size, dst, src, n_sectors, enc);
		return 0;
	case CRYPT_AES_XTS_AESNI:
		xts_aesni_crypt(&x->fast, sector, x->sector_size, dst, src, n_sectors, enc);
		return 0;
	default:
		if (dst != src)
			memcpy(dst, src, (size_t)n_sectors * x->sector_size);
		return xts_openssl_crypt(x, sector, dst, n_sectors, enc);
	}
}

static int xts_encrypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	return xts_crypt(ctx, sector, buf, buf, n_sectors, 1);
}

static int xts_decrypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	return xts_crypt(ctx, sector, buf, buf, n_sectors, 0);
}

int crypt_builtin_aes_xts_encrypt_copy(void *ctx, uint64_t sector, uint8_t *dst, const uint8_t *src,
				       uint32_t n_sectors)
{
	return xts_crypt(ctx, sector, dst, src, n_sectors, 1);
}

const struct vessel_crypt_plugin crypt_builtin_aes_xts_plain64 = {
	.abi_version = VESSEL_CRYPT_ABI_VERSION,
	.struct_size = sizeof(struct vessel_crypt_plugin),
	.name = "aes-xts-plain64",
	.description = "AES-XTS (IEEE 1619), 64-bit little-endian sector number tweak; "
		       "AES-NI or VAES where the CPU has them, else OpenSSL",
	.key_sizes = xts_key_sizes,
	.create = xts_create,
	.encrypt = xts_encrypt,
	.decrypt = xts_decrypt,
	.destroy = xts_destroy,
};
