/* vessel VM Encryption API: the stable C ABI between vessel and sector
 * encryption plug-ins (docs/disk-encryption.md).
 *
 * A plug-in is a shared object in one of vessel's plug-in directories
 * that exports one object named VESSEL_CRYPT_PLUGIN_SYMBOL of type
 * `const struct vessel_crypt_plugin`.  vessel hands it whole sectors on
 * their way between the VM and its virtual disk: every write is encrypted
 * in place before it reaches the image, every read is decrypted in place
 * after it leaves the image.  The plug-in never sees file offsets or the
 * image format, only (key, sector number, sector data).
 *
 * Compatibility rules (why the struct looks the way it does):
 *   - `abi_version`, `struct_size` and `name` are the frozen head of the
 *     struct: they keep their type and place in every version, so vessel
 *     can name and refuse a plug-in built for another ABI version.
 *   - later minor revisions only append members; `struct_size` tells
 *     vessel which members the plug-in knows.  A different
 *     VESSEL_CRYPT_ABI_VERSION means an incompatible change and vessel
 *     refuses to load the plug-in.
 *   - plain C types only (fixed-width integers, pointers, function
 *     pointers) so any C compiler, or a foreign-function interface,
 *     produces the same layout on the x86-64 System V ABI.
 *
 * This header needs nothing but the C standard library headers. */
#ifndef VESSEL_CRYPT_H
#define VESSEL_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VESSEL_CRYPT_ABI_VERSION 1u

/* Name of the exported data symbol vessel looks up with dlsym(). */
#define VESSEL_CRYPT_PLUGIN_SYMBOL "vessel_crypt_plugin"

/* Longest plug-in name, without the terminating NUL. */
#define VESSEL_CRYPT_NAME_MAX 63u

struct vessel_crypt_plugin {
	/* --- frozen head, identical in every ABI version --- */
	uint32_t abi_version;   /* VESSEL_CRYPT_ABI_VERSION the plug-in was built with */
	uint32_t struct_size;   /* sizeof(struct vessel_crypt_plugin) at build time */
	const char *name;       /* cipher spec, e.g. "aes-xts-plain64" ([a-z0-9-], <= 63) */

	/* --- version 1 --- */
	const char *description; /* one line for `vessel` listings; may be NULL */
	/* Accepted key lengths in bytes, ending with 0, e.g. {32, 64, 0}. */
	const uint32_t *key_sizes;

	/* Creates a context for one disk.  `key` holds `key_len` bytes (one of
	 * key_sizes); the plug-in copies what it needs, vessel wipes its copy
	 * afterwards.  `sector_size` is the encryption sector (a power of two,
	 * 512..4096).  Returns 0 and sets *ctx, or a negative errno. */
	int (*create)(const uint8_t *key, uint32_t key_len, uint32_t sector_size, void **ctx);

	/* Encrypt / decrypt `n_sectors` consecutive encryption sectors in
	 * place: `buf` holds n_sectors * sector_size bytes.  Sector numbers
	 * always count 512-byte sectors from 0 at the start of the encrypted
	 * data, and an encryption sector carries the number of its first
	 * 512-byte sector (dm-crypt's IV numbering without iv_large_sectors,
	 * which LUKS2 uses): `sector` is that of the first one in buf, the
	 * next is sector + sector_size / 512, and so on (with 4096-byte
	 * sectors: 0, 8, 16, ...).  `sector` is a multiple of
	 * sector_size / 512.  Must be safe to call from several threads at
	 * once on the same context.  Return 0 or a negative errno. */
	int (*encrypt)(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors);
	int (*decrypt)(void *ctx, uint64_t sector, uint8_t *buf, uint32_t n_sectors);

	/* Frees the context and wipes its key material. */
	void (*destroy)(void *ctx);
};

/* Convenience for plug-in authors:
 *   VESSEL_CRYPT_PLUGIN_DEFINE = { ... };  */
#define VESSEL_CRYPT_PLUGIN_DEFINE \
	__attribute__((visibility("default"))) \
	const struct vessel_crypt_plugin vessel_crypt_plugin

#ifdef __cplusplus
}
#endif

#endif
