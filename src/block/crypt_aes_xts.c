/* Built-in sector cipher "aes-xts-plain64": AES-XTS (IEEE Std 1619-2007)
 * through OpenSSL's EVP interface, which uses AES-NI/VAES where the host
 * has them.
 *
 * Tweak ("plain64" IV generator, as dm-crypt and LUKS2 define it): the
 * sector number as a 64-bit little-endian integer, zero-padded to the
 * 16-byte AES block (IEEE 1619 section 5.1 calls it the data unit
 * sequence number).  One XTS data unit per encryption sector.
 *
 * Key: 32 bytes (XTS-AES-128) or 64 bytes (XTS-AES-256): the first half
 * is the data key, the second the tweak key (IEEE 1619 section 5.1).
 *
 * Thread safety: an EVP_CIPHER_CTX holds per-call state (the tweak), so
 * two threads must never share one.  Each context keeps a small pool of
 * keyed EVP contexts per direction; a call borrows one, which costs a
 * mutex round trip instead of a key schedule. */
#include "block/crypt_plugin.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define XTS_POOL_MAX 16

struct xts_pool {
	EVP_CIPHER_CTX *ctx[XTS_POOL_MAX];
	unsigned n;
};

struct xts_ctx {
	const EVP_CIPHER *cipher;
	uint8_t key[64];
	uint32_t key_len;
	uint32_t sector_size;
	pthread_mutex_t lock;
	struct xts_pool pool[2]; /* [0] decrypt, [1] encrypt */
};

static const uint32_t xts_key_sizes[] = { 32, 64, 0 };

static int xts_create(const uint8_t *key, uint32_t key_len, uint32_t sector_size, void **out)
{
	const EVP_CIPHER *cipher;

	if (key_len == 64)
		cipher = EVP_aes_256_xts();
	else if (key_len == 32)
		cipher = EVP_aes_128_xts();
	else
		return -EINVAL;
	/* An XTS data unit is at least one AES block; sectors are 512..4096. */
	if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1)))
		return -EINVAL;
	/* Equal halves make XTS degenerate; OpenSSL refuses them when
	 * encrypting, refuse them here for both directions. */
	if (CRYPTO_memcmp(key, key + key_len / 2, key_len / 2) == 0)
		return -EINVAL;

	struct xts_ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->cipher = cipher;
	memcpy(x->key, key, key_len);
	x->key_len = key_len;
	x->sector_size = sector_size;
	pthread_mutex_init(&x->lock, NULL);
	*out = x;
	return 0;
}

static void xts_destroy(void *ctx)
{
	struct xts_ctx *x = ctx;

	if (!x)
		return;
	for (int d = 0; d < 2; d++)
		for (unsigned i = 0; i < x->pool[d].n; i++)
			EVP_CIPHER_CTX_free(x->pool[d].ctx[i]); /* cleanses key schedule */
	pthread_mutex_destroy(&x->lock);
	OPENSSL_cleanse(x->key, sizeof(x->key));
	free(x);
}

static EVP_CIPHER_CTX *xts_borrow(struct xts_ctx *x, int enc)
{
	EVP_CIPHER_CTX *c = NULL;

	pthread_mutex_lock(&x->lock);
	if (x->pool[enc].n)
		c = x->pool[enc].ctx[--x->pool[enc].n];
	pthread_mutex_unlock(&x->lock);
	if (c)
		return c;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return NULL;
	if (EVP_CipherInit_ex(c, x->cipher, NULL, x->key, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

static void xts_return(struct xts_ctx *x, int enc, EVP_CIPHER_CTX *c)
{
	pthread_mutex_lock(&x->lock);
	if (x->pool[enc].n < XTS_POOL_MAX) {
		x->pool[enc].ctx[x->pool[enc].n++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&x->lock);
	EVP_CIPHER_CTX_free(c);
}

static int xts_crypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors, int enc)
{
	struct xts_ctx *x = ctx;
	EVP_CIPHER_CTX *c = xts_borrow(x, enc);
	int rc = 0;

	if (!c)
		return -ENOMEM;
	for (uint32_t i = 0; i < n_sectors; i++, sector++, buf += x->sector_size) {
		uint8_t iv[16] = { 0 };
		int outl;

		for (int b = 0; b < 8; b++)
			iv[b] = (uint8_t)(sector >> (8 * b));
		/* Re-arm only the tweak: the key schedule stays in the context. */
		if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, enc) != 1 ||
		    EVP_CipherUpdate(c, buf, &outl, buf, (int)x->sector_size) != 1 ||
		    outl != (int)x->sector_size) {
			rc = -EIO;
			break;
		}
	}
	xts_return(x, enc, c);
	return rc;
}

static int xts_encrypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	return xts_crypt(ctx, sector, buf, n_sectors, 1);
}

static int xts_decrypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	return xts_crypt(ctx, sector, buf, n_sectors, 0);
}

const struct vessel_crypt_plugin crypt_builtin_aes_xts_plain64 = {
	.abi_version = VESSEL_CRYPT_ABI_VERSION,
	.struct_size = sizeof(struct vessel_crypt_plugin),
	.name = "aes-xts-plain64",
	.description = "AES-XTS (IEEE 1619), 64-bit little-endian sector number tweak; OpenSSL",
	.key_sizes = xts_key_sizes,
	.create = xts_create,
	.encrypt = xts_encrypt,
	.decrypt = xts_decrypt,
	.destroy = xts_destroy,
};
