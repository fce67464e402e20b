/* Loading and checking sector encryption plug-ins; keyed cipher
 * instances.  The ABI is include/vessel/crypt.h; its compatibility rules
 * (frozen head, appended members, refused major versions) are enforced
 * in crypt_plugin_check(). */
#include "block/crypt_plugin.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "util/log.h"

static const struct {
	const struct vessel_crypt_plugin *ops;
	crypt_encrypt_copy_fn *encrypt_copy;
} crypt_builtins[] = {
	{ &crypt_builtin_aes_xts_plain64, crypt_builtin_aes_xts_encrypt_copy },
};

static pthread_mutex_t crypt_dirs_lock = PTHREAD_MUTEX_INITIALIZER;
static char **crypt_dirs;
static unsigned crypt_n_dirs;

/* Size of the version-1 struct: the smallest a version-1 plug-in may
 * declare (later revisions only append). */
#define CRYPT_V1_SIZE (offsetof(struct vessel_crypt_plugin, destroy) + sizeof(void (*)(void *)))

bool crypt_plugin_name_valid(const char *name)
{
	size_t n = 0;

	if (!name)
		return false;
	for (; name[n]; n++) {
		char c = name[n];
		if (n >= VESSEL_CRYPT_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return n > 0;
}

int crypt_plugin_check(const struct vessel_crypt_plugin *p, const char *origin)
{
	if (!p)
		return err_set(-EINVAL, "crypt plug-in %s: no descriptor", origin);
	/* The same words as plugin_check_abi() (vm/plugin_loader.c) uses
	 * for device plug-ins. */
	if (p->abi_version != VESSEL_CRYPT_ABI_VERSION)
		return err_set(-EPROTO,
			       "crypt plug-in %s: built for VM Encryption API version %u, but "
			       "this vessel has version %u (rebuild it against this "
			       "vessel's <vessel/crypt.h>)",
			       origin, p->abi_version, VESSEL_CRYPT_ABI_VERSION);
	if (p->struct_size < CRYPT_V1_SIZE)
		return err_set(-EINVAL, "crypt plug-in %s: descriptor size %u is smaller "
			       "than version %u needs (%zu)", origin, p->struct_size,
			       VESSEL_CRYPT_ABI_VERSION, (size_t)CRYPT_V1_SIZE);
	if (!crypt_plugin_name_valid(p->name))
		return err_set(-EINVAL, "crypt plug-in %s: invalid cipher name "
			       "(want 1-%u characters of [a-z0-9-])", origin, VESSEL_CRYPT_NAME_MAX);
	if (!p->create || !p->encrypt || !p->decrypt || !p->destroy)
		return err_set(-EINVAL, "crypt plug-in %s (%s): missing create, encrypt, "
			       "decrypt or destroy", origin, p->name);
	if (!p->key_sizes || p->key_sizes[0] == 0)
		return err_set(-EINVAL, "crypt plug-in %s (%s): no key sizes", origin, p->name);
	return 0;
}

static const struct crypt_plugin_loader *crypt_loader;

void crypt_plugin_set_loader(const struct crypt_plugin_loader *l)
{
	crypt_loader = l;
}

int crypt_plugin_load_file(const char *path, struct crypt_plugin **out)
{
	if (!crypt_loader)
		return err_set(-ENOEXEC, "crypt plug-in %s: this program loads no plug-ins", path);
	void *dl;
	const void *sym;
	int rc = crypt_loader->open(path, &sym, &dl);
	if (rc < 0)
		return rc;
	const struct vessel_crypt_plugin *ops = sym;
	if ((rc = crypt_plugin_check(ops, path)) < 0) {
		crypt_loader->close(dl);
		return rc;
	}
	struct crypt_plugin *p = calloc(1, sizeof(*p));
	if (!p || !(p->path = strdup(path))) {
		free(p);
		crypt_loader->close(dl);
		return err_set(-ENOMEM, "out of memory");
	}
	p->ops = ops;
	p->dl = dl;
	log_debug("crypt", "loaded plug-in %s (%s)", ops->name, path);
	*out = p;
	return 0;
}

void crypt_plugin_release(struct crypt_plugin *p)
{
	if (!p)
		return;
	if (p->dl && crypt_loader)
		crypt_loader->close(p->dl);
	free(p->path);
	free(p);
}

int crypt_plugin_set_dirs(const char *const *dirs, unsigned n_dirs)
{
	char **copy = NULL;

	if (n_dirs) {
		copy = calloc(n_dirs, sizeof(*copy));
		if (!copy)
			return err_set(-ENOMEM, "out of memory");
		for (unsigned i = 0; i < n_dirs; i++) {
			if (!(copy[i] = strdup(dirs[i]))) {
				while (i--)
					free(copy[i]);
				free(copy);
				return err_set(-ENOMEM, "out of memory");
			}
		}
	}
	pthread_mutex_lock(&crypt_dirs_lock);
	for (unsigned i = 0; i < crypt_n_dirs; i++)
		free(crypt_dirs[i]);
	free(crypt_dirs);
	crypt_dirs = copy;
	crypt_n_dirs = n_dirs;
	pthread_mutex_unlock(&crypt_dirs_lock);
	return 0;
}

int crypt_plugin_find(const char *name, const char *const *dirs, unsigned n_dirs,
		      struct crypt_plugin **out)
{
	*out = NULL;
	if (!crypt_plugin_name_valid(name))
		return err_set(-EINVAL, "invalid cipher name '%s' (want [a-z0-9-])", name ? name : "");
	for (size_t i = 0; i < sizeof(crypt_builtins) / sizeof(crypt_builtins[0]); i++) {
		if (strcmp(crypt_builtins[i].ops->name, name) == 0) {
			struct crypt_plugin *p = calloc(1, sizeof(*p));
			if (!p)
				return err_set(-ENOMEM, "out of memory");
			p->ops = crypt_builtins[i].ops;
			p->encrypt_copy = crypt_builtins[i].encrypt_copy;
			*out = p;
			return 0;
		}
	}
	char path[4096];
	int rc = 0;
	if (crypt_loader && dirs) {
		rc = crypt_loader->find(name, dirs, n_dirs, path, sizeof(path));
	} else if (crypt_loader) {
		pthread_mutex_lock(&crypt_dirs_lock);
		rc = crypt_loader->find(name, (const char *const *)crypt_dirs, crypt_n_dirs, path, sizeof(path));
		pthread_mutex_unlock(&crypt_dirs_lock);
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return err_set(-ENOENT, "no cipher '%s': not built in and no %s%s.so in the plug-in "
			       "directories", name, CRYPT_PLUGIN_SUBDIR, name);
	/* A file that exists but cannot be used is an error, never skipped:
	 * the user would end up with another cipher than intended, or none. */
	if ((rc = crypt_plugin_load_file(path, out)) < 0)
		return rc;
	if (strcmp((*out)->ops->name, name) != 0) {
		rc = err_set(-EINVAL, "crypt plug-in %s: exports cipher '%s', not '%s'", path, (*out)->ops->name, name);
		crypt_plugin_release(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}

int crypt_cipher_new(const char *name, const uint8_t *key, uint32_t key_len,
		     uint32_t sector_size, const char *const *dirs, unsigned n_dirs,
		     struct crypt_cipher **out)
{
	struct crypt_plugin *p;
	int rc = crypt_plugin_find(name, dirs, n_dirs, &p);

	if (rc < 0)
		return rc;
	bool key_ok = false;
	for (const uint32_t *k = p->ops->key_sizes; *k; k++)
		key_ok |= *k == key_len;
	if (!key_ok) {
		rc = err_set(-EINVAL, "cipher %s: %u-byte key not supported", name, key_len);
		goto fail;
	}
	if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1))) {
		rc = err_set(-EINVAL, "cipher %s: sector size %u (want a power of two, 512-4096)",
			     name, sector_size);
		goto fail;
	}
	struct crypt_cipher *c = calloc(1, sizeof(*c));
	if (!c) {
		rc = err_set(-ENOMEM, "out of memory");
		goto fail;
	}
	rc = p->ops->create(key, key_len, sector_size, &c->ctx);
	if (rc < 0 || !c->ctx) {
		free(c);
		rc = err_set(rc < 0 ? rc : -EINVAL, "cipher %s: plug-in refused the key (%s)",
			     name, strerror(rc < 0 ? -rc : EINVAL));
		goto fail;
	}
	c->plugin = p;
	c->sector_size = sector_size;
	c->key_len = key_len;
	*out = c;
	return 0;
fail:
	crypt_plugin_release(p);
	return rc;
}

int crypt_cipher_encrypt(struct crypt_cipher *c, uint64_t sector, void *buf, uint32_t n_sectors)
{
	int rc = c->plugin->ops->encrypt(c->ctx, sector, buf, n_sectors);
	return rc < 0 ? err_set(rc, "cipher %s: encrypting sector %llu failed",
				c->plugin->ops->name, (unsigned long long)sector) : 0;
}

int crypt_cipher_encrypt_copy(struct crypt_cipher *c, uint64_t sector, void *dst, const void *src,
			      uint32_t n_sectors)
{
	if (!c->plugin->encrypt_copy) {
		memcpy(dst, src, (size_t)n_sectors * c->sector_size);
		return crypt_cipher_encrypt(c, sector, dst, n_sectors);
	}
	int rc = c->plugin->encrypt_copy(c->ctx, sector, dst, src, n_sectors);
	return rc < 0 ? err_set(rc, "cipher %s: encrypting sector %llu failed",
				c->plugin->ops->name, (unsigned long long)sector) : 0;
}

int crypt_cipher_decrypt(struct crypt_cipher *c, uint64_t sector, void *buf, uint32_t n_sectors)
{
	int rc = c->plugin->ops->decrypt(c->ctx, sector, buf, n_sectors);
	return rc < 0 ? err_set(rc, "cipher %s: decrypting sector %llu failed",
				c->plugin->ops->name, (unsigned long long)sector) : 0;
}

void crypt_cipher_free(struct crypt_cipher *c)
{
	if (!c)
		return;
	c->plugin->ops->destroy(c->ctx);
	crypt_plugin_release(c->plugin);
	free(c);
}
