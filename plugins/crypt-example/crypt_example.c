/* Example VM Encryption API plug-in: "aes-cbc-plain64".
 *
 * Built out of tree against the installed <vessel/crypt.h> only (see
 * Makefile).  It shows everything a plug-in does: one exported
 * descriptor, a context per disk holding the key, whole-sector in-place
 * encryption with the sector number as IV, thread safety, key wiping.
 *
 * Cipher: AES-CBC per sector, IV = sector number, 64-bit little endian,
 * zero-padded to 16 bytes (dm-crypt's "plain64").  The kernel's dm-crypt
 * knows the same cipher, so a LUKS2 container that vessel creates with it
 * also opens with `cryptsetup open`.  CBC with a predictable IV is weaker
 * than XTS (a watermark can be planted across sectors); it is here because
 * it is short and interoperable, not as a recommendation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <vessel/crypt.h>

struct cbc_ctx {
	const EVP_CIPHER *cipher;
	uint8_t key[32];
	uint32_t sector_size;
};

static const uint32_t cbc_key_sizes[] = { 16, 24, 32, 0 };

static int cbc_create(const uint8_t *key, uint32_t key_len, uint32_t sector_size, void **out)
{
	struct cbc_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->cipher = key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc()
									: EVP_aes_256_cbc();
	memcpy(c->key, key, key_len);
	c->sector_size = sector_size;
	*out = c;
	return 0;
}

/* Thread safety the simple way: the shared context is read-only, every
 * call has its own EVP context on the stack of its thread. */
static int cbc_crypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors, int enc)
{
	struct cbc_ctx *c = ctx;
	EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
	int rc = 0;

	if (!e)
		return -ENOMEM;
	/* Sector numbers count 512-byte sectors (vessel/crypt.h). */
	for (uint32_t i = 0; i < n_sectors && rc == 0;
	     i++, sector += c->sector_size / 512, buf += c->sector_size) {
		uint8_t iv[16] = { 0 };
		int len;

		for (int b = 0; b < 8; b++)
			iv[b] = (uint8_t)(sector >> (8 * b));
		if (EVP_CipherInit_ex(e, c->cipher, NULL, c->key, iv, enc) != 1 ||
		    EVP_CIPHER_CTX_set_padding(e, 0) != 1 ||
		    EVP_CipherUpdate(e, buf, &len, buf, (int)c->sector_size) != 1)
			rc = -EIO;
	}
	EVP_CIPHER_CTX_free(e);
	return rc;
}

static int cbc_encrypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	return cbc_crypt(ctx, sector, buf, n_sectors, 1);
}

static int cbc_decrypt(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	return cbc_crypt(ctx, sector, buf, n_sectors, 0);
}

static void cbc_destroy(void *ctx)
{
	struct cbc_ctx *c = ctx;

	OPENSSL_cleanse(c->key, sizeof(c->key));
	free(c);
}

VESSEL_CRYPT_PLUGIN_DEFINE = {
	.abi_version = VESSEL_CRYPT_ABI_VERSION,
	.struct_size = sizeof(struct vessel_crypt_plugin),
	.name = "aes-cbc-plain64",
	.description = "example plug-in: AES-CBC, 64-bit sector number IV (OpenSSL)",
	.key_sizes = cbc_key_sizes,
	.create = cbc_create,
	.encrypt = cbc_encrypt,
	.decrypt = cbc_decrypt,
	.destroy = cbc_destroy,
};
