/* Loading and checking sector encryption plug-ins; keyed cipher
 * instances.  The ABI is include/vessel/crypt.h; its compatibility rules
 * (frozen head, appended members, refused major versions) are enforced
 * in crypt_plugin_check(). */
#include "block/crypt_plugin.h"

#include <dlfcn.h>
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
	if (p->abi_version != VESSEL_CRYPT_ABI_VERSION)
		return err_set(-EPROTO,
			       "crypt plug-in %s: built for VM Encryption API version %u, "
			       "this vessel supports version %u; rebuild it against this "
			       "vessel's <vessel/crypt.h>",
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

int crypt_plugin_load_file(const char *path, struct crypt_plugin **out)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!dl)
		return err_set(-ENOEXEC, "crypt plug-in %s: cannot load: %s", path, dlerror());
	const struct vessel_crypt_plugin *ops = dlsym(dl, VESSEL_CRYPT_PLUGIN_SYMBOL);
	if (!ops) {
		dlclose(dl);
		return err_set(-ENOEXEC, "crypt plug-in %s: no '%s' symbol (not a VM Encryption "
			       "API plug-in)", path, VESSEL_CRYPT_PLUGIN_SYMBOL);
	}
	int rc = crypt_plugin_check(ops, path);
	if (rc < 0) {
		dlclose(dl);
		return rc;
	}
	struct crypt_plugin *p = calloc(1, sizeof(*p));
	if (!p || !(p->path = strdup(path))) {
		free(p);
		dlclose(dl);
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
	if (p->dl)
		dlclose(p->dl);
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

/* Tries DIR/SUB/NAME.so (SUB "" or "crypt/").  Returns 1 and sets *out
 * when loaded, 0 when the file does not exist, a negative errno when it
 * exists but cannot be used (a broken or foreign-ABI plug-in must not be
 * silently skipped: the user would end up with a different cipher than
 * intended, or none). */
static int crypt_try_dir(const char *dir, size_t dir_len, const char *sub, const char *name,
			 struct crypt_plugin **out)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%.*s/%s%s.so", (int)dir_len, dir, sub, name);

	if (dir_len == 0 || n < 0 || (size_t)n >= sizeof(path))
		return 0;
	if (access(path, F_OK) != 0)
		return 0;
	int rc = crypt_plugin_load_file(path, out);
	if (rc < 0)
		return rc;
	if (strcmp((*out)->ops->name, name) != 0) {
		rc = err_set(-EINVAL, "crypt plug-in %s: exports cipher '%s', not '%s'",
			     path, (*out)->ops->name, name);
		crypt_plugin_release(*out);
		*out = NULL;
		return rc;
	}
	return 1;
}

/* Each entry of a colon-separated list. */
static int crypt_try_list(const char *list, const char *sub, const char *name,
			  struct crypt_plugin **out)
{
	while (list && *list) {
		const char *end = strchr(list, ':');
		size_t len = end ? (size_t)(end - list) : strlen(list);
		int rc = crypt_try_dir(list, len, sub, name, out);
		if (rc != 0)
			return rc;
		list = end ? end + 1 : NULL;
	}
	return 0;
}

int crypt_plugin_find(const char *name, const char *const *dirs, unsigned n_dirs,
		      struct crypt_plugin **out)
{
	int rc;

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

	rc = crypt_try_list(getenv(CRYPT_PLUGIN_ENV), "", name, out);
	if (rc != 0)
		return rc < 0 ? rc : 0;

	if (dirs) {
		for (unsigned i = 0; i < n_dirs; i++)
			if ((rc = crypt_try_dir(dirs[i], strlen(dirs[i]), CRYPT_PLUGIN_SUBDIR, name, out)) != 0)
				return rc < 0 ? rc : 0;
	} else {
		pthread_mutex_lock(&crypt_dirs_lock);
		rc = 0;
		for (unsigned i = 0; i < crypt_n_dirs && rc == 0; i++)
			rc = crypt_try_dir(crypt_dirs[i], strlen(crypt_dirs[i]), CRYPT_PLUGIN_SUBDIR, name, out);
		pthread_mutex_unlock(&crypt_dirs_lock);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}

	/* XDG Base Directory Specification: $XDG_DATA_HOME, else ~/.local/share. */
	char xdg[4096];
	const char *data_home = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n = -1;
	if (data_home && data_home[0] == '/')
		n = snprintf(xdg, sizeof(xdg), "%s/vessel/plugins", data_home);
	else if (home && home[0] == '/')
		n = snprintf(xdg, sizeof(xdg), "%s/.local/share/vessel/plugins", home);
	if (n > 0 && (size_t)n < sizeof(xdg) &&
	    (rc = crypt_try_dir(xdg, (size_t)n, CRYPT_PLUGIN_SUBDIR, name, out)) != 0)
		return rc < 0 ? rc : 0;

	rc = crypt_try_list("/usr/local/lib/vessel/plugins:/usr/lib/vessel/plugins", CRYPT_PLUGIN_SUBDIR,
			    name, out);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	return err_set(-ENOENT, "no cipher '%s': not built in and no %s%s.so in the plug-in "
		       "directories", name, CRYPT_PLUGIN_SUBDIR, name);
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
