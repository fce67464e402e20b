/* Sector encryption plug-ins (VM Encryption API, include/vessel/crypt.h):
 * finding and loading them, checking their ABI, and keyed cipher
 * instances that the encryption filter calls.
 *
 * Search order for a cipher name (docs/plugins.md "Where plug-ins are
 * found"): built-in ciphers first (a file cannot replace them), then
 * crypt/NAME.so in each directory of the plug-in search path, the
 * directories given by the caller (manifest `plugin_dirs`) or set with
 * crypt_plugin_set_dirs() first.  The files are found and opened by the
 * VMM's plug-in loader (vm/plugin_loader.h), which installs itself with
 * crypt_plugin_set_loader(): the block layer does not reach up to it.
 * The crypt/ subdirectory keeps encryption plug-ins apart from device
 * plug-ins, which are the *.so files at the top of those directories. */
#ifndef VESSEL_BLOCK_CRYPT_PLUGIN_H
#define VESSEL_BLOCK_CRYPT_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vessel/crypt.h"

#define CRYPT_PLUGIN_SUBDIR "crypt/"

/* Encrypts n_sectors from src into dst, which do not overlap; src is
 * left as it is.  Built-in ciphers only: the plug-in ABI encrypts in
 * place, which costs a copy where the plaintext must stay. */
typedef int crypt_encrypt_copy_fn(void *ctx, uint64_t sector, uint8_t *dst, const uint8_t *src,
				  uint32_t n_sectors);

/* The built-in AES-XTS cipher (src/block/crypt_aes_xts.c). */
extern const struct vessel_crypt_plugin crypt_builtin_aes_xts_plain64;
crypt_encrypt_copy_fn crypt_builtin_aes_xts_encrypt_copy;

struct crypt_plugin {
	const struct vessel_crypt_plugin *ops;
	crypt_encrypt_copy_fn *encrypt_copy;  /* NULL: copy, then ops->encrypt in place */
	void *dl;     /* dlopen() handle; NULL for a built-in */
	char *path;   /* file it came from; NULL for a built-in */
};

/* A keyed instance of a cipher for one disk. */
struct crypt_cipher {
	struct crypt_plugin *plugin;
	void *ctx;
	uint32_t sector_size;
	uint32_t key_len;
};

/* Checks a plug-in descriptor (ABI version, size, name, members).
 * `origin` names it in messages.  Returns 0, -EPROTO for another ABI
 * version, -EINVAL for a malformed descriptor. */
int crypt_plugin_check(const struct vessel_crypt_plugin *p, const char *origin);
/* True for names made of [a-z0-9-], 1..VESSEL_CRYPT_NAME_MAX long. */
bool crypt_plugin_name_valid(const char *name);

/* dlopen()s one plug-in file and checks it. */
int crypt_plugin_load_file(const char *path, struct crypt_plugin **out);
/* Finds the cipher `name` (search order above).  `dirs` may be NULL to
 * use the list from crypt_plugin_set_dirs().  -ENOENT when not found. */
int crypt_plugin_find(const char *name, const char *const *dirs, unsigned n_dirs,
		      struct crypt_plugin **out);
void crypt_plugin_release(struct crypt_plugin *p);

/* How plug-in files are found and opened (vm/plugin_loader.c).  Without
 * a loader only the built-in ciphers exist. */
struct crypt_plugin_loader {
	/* Path of cipher NAME's file, `dirs` searched first: 1 (path
	 * filled), 0 (none), or a negative errno with a message. */
	int (*find)(const char *name, const char *const *dirs, unsigned n_dirs, char *path, size_t cap);
	/* Trust checks, dlopen and the descriptor symbol. */
	int (*open)(const char *path, const void **ops, void **handle);
	void (*close)(void *handle);
};
void crypt_plugin_set_loader(const struct crypt_plugin_loader *loader);

/* Sets the process-wide manifest directories used when a caller passes
 * none (copied).  Returns 0 or -ENOMEM. */
int crypt_plugin_set_dirs(const char *const *dirs, unsigned n_dirs);

/* Keyed cipher: finds the plug-in, checks the key length and creates a
 * context.  The caller may wipe `key` afterwards. */
int crypt_cipher_new(const char *name, const uint8_t *key, uint32_t key_len,
		     uint32_t sector_size, const char *const *dirs, unsigned n_dirs,
		     struct crypt_cipher **out);
/* In place; `sector` counts 512-byte sectors (include/vessel/crypt.h). */
int crypt_cipher_encrypt(struct crypt_cipher *c, uint64_t sector, void *buf, uint32_t n_sectors);
int crypt_cipher_decrypt(struct crypt_cipher *c, uint64_t sector, void *buf, uint32_t n_sectors);
/* Encrypts src into dst (not overlapping), leaving src as it is: in one
 * pass where the cipher can (crypt_encrypt_copy_fn), else a copy and an
 * in-place encryption. */
int crypt_cipher_encrypt_copy(struct crypt_cipher *c, uint64_t sector, void *dst, const void *src,
			      uint32_t n_sectors);
void crypt_cipher_free(struct crypt_cipher *c);

#endif
