/* Test plug-in "test-xor": a toy cipher (each byte XORed with the key and
 * the low byte of its sector number).  It only proves that a plug-in
 * built as a separate shared object is found, loaded and called with the
 * right sector numbers; it is not encryption. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vessel/crypt.h>

struct xor_ctx {
	uint8_t key[16];
	uint32_t sector_size;
};

static const uint32_t xor_key_sizes[] = { 16, 0 };

static int xor_create(const uint8_t *key, uint32_t key_len, uint32_t sector_size, void **ctx)
{
	struct xor_ctx *x = malloc(sizeof(*x));
	if (!x)
		return -ENOMEM;
	memcpy(x->key, key, sizeof(x->key));
	x->sector_size = sector_size;
	*ctx = x;
	return 0;
}

static int xor_apply(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	struct xor_ctx *x = ctx;
	for (uint32_t s = 0; s < n_sectors; s++, sector++)
		for (uint32_t i = 0; i < x->sector_size; i++)
			*buf++ ^= x->key[i % 16] ^ (uint8_t)sector;
	return 0;
}

static void xor_destroy(void *ctx)
{
	free(ctx);
}

VESSEL_CRYPT_PLUGIN_DEFINE = {
	.abi_version = VESSEL_CRYPT_ABI_VERSION,
	.struct_size = sizeof(struct vessel_crypt_plugin),
	.name = "test-xor",
	.description = "toy cipher for the loader tests",
	.key_sizes = xor_key_sizes,
	.create = xor_create,
	.encrypt = xor_apply,
	.decrypt = xor_apply,
	.destroy = xor_destroy,
};
