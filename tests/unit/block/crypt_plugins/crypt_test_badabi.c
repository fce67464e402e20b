/* Test plug-in "test-badabi": declares a future VM Encryption API version
 * so the loader must refuse it with a clear message. */
#include <errno.h>

#include <vessel/crypt.h>

static const uint32_t bad_key_sizes[] = { 16, 0 };

static int bad_create(const uint8_t *key, uint32_t key_len, uint32_t sector_size, void **ctx)
{
	return -ENOTSUP;
}

static int bad_apply(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors)
{
	return -ENOTSUP;
}

static void bad_destroy(void *ctx)
{
}

VESSEL_CRYPT_PLUGIN_DEFINE = {
	.abi_version = VESSEL_CRYPT_ABI_VERSION + 1,
	.struct_size = sizeof(struct vessel_crypt_plugin),
	.name = "test-badabi",
	.key_sizes = bad_key_sizes,
	.create = bad_create,
	.encrypt = bad_apply,
	.decrypt = bad_apply,
	.destroy = bad_destroy,
};
