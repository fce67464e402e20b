/* LUKS2 containers for encrypted virtual disks (docs/disk-encryption.md).
 *
 * The container is the content of a virtual disk (a raw file, or the
 * virtual disk of a VHD): a LUKS2 header (two metadata copies and the
 * keyslot area, LUKS2 On-Disk Format Specification sections 2-3) in the
 * first bytes, then the encrypted data segment.  libcryptsetup does the
 * header work (keyslots, PBKDF, anti-forensic split, digests) on a
 * private in-memory copy of the header area, so this module only moves
 * header bytes through the caller's luks_io and never needs a host path,
 * a loop device or root. */
#ifndef VESSEL_BLOCK_LUKS_H
#define VESSEL_BLOCK_LUKS_H

#include <stddef.h>
#include <stdint.h>

#include "vessel/crypt.h"

#define LUKS_KEY_MAX 128               /* bytes of volume key we handle */
#define LUKS_DEFAULT_CIPHER "aes-xts-plain64"
#define LUKS_DEFAULT_KEY_BYTES 64      /* AES-XTS-256 */
/* Data offset of containers we create: 16 KiB x 2 metadata + keyslots up
 * to 2 MiB.  2 MiB keeps the data segment aligned to VHD blocks and to
 * large host pages and leaves room for 7 keyslots of a 512-bit key. */
#define LUKS_NEW_DATA_OFFSET (2u << 20)

/* Creating a container: cipher and keyslot (PBKDF) parameters.  Zero /
 * NULL members take defaults. */
struct luks_params {
	const char *cipher;        /* crypt plug-in name, NULL: aes-xts-plain64 */
	uint32_t key_bytes;        /* volume key length, 0: 64 */
	const char *pbkdf;         /* "argon2id", "argon2i", "pbkdf2"; NULL: libcryptsetup default */
	uint32_t iter_time_ms;     /* benchmark target, 0: default (2 s) */
	uint32_t iterations;       /* fixed cost (pbkdf2 iterations, argon2 passes); no benchmark */
	uint32_t memory_kib;       /* argon2 memory cost, 0: default */
	uint32_t sector_size;      /* encryption sector 512..4096, 0: 512 */
};

/* An unlocked container: what the encryption filter needs. */
struct luks_volume {
	char cipher[VESSEL_CRYPT_NAME_MAX + 1];  /* plug-in name = LUKS2 "encryption" */
	uint8_t key[LUKS_KEY_MAX];
	uint32_t key_len;
	uint32_t sector_size;      /* encryption sector, bytes */
	uint64_t data_offset;      /* bytes from the container start */
};

/* Byte-addressed access to the container (the device under the filter). */
struct luks_io {
	int (*read)(void *opaque, uint64_t off, void *buf, size_t len);
	int (*write)(void *opaque, uint64_t off, const void *buf, size_t len);
	uint64_t size;             /* container size in bytes */
	void *opaque;
};

/* Writes a new LUKS2 header with one keyslot for `pass` and a fresh
 * random volume key (OpenSSL's private DRBG) into bytes
 * [0, LUKS_NEW_DATA_OFFSET) of the container.  Returns the volume in *out. */
int luks_format(const struct luks_params *p, const void *pass, size_t pass_len,
		const struct luks_io *io, struct luks_volume *out);

/* Reads and checks the header, opens a keyslot with `pass`.  Writes
 * nothing.  Errors: -EINVAL damaged / not LUKS2 (message says which),
 * -EKEYREJECTED wrong passphrase, -ENOTSUP a LUKS2 feature we do not
 * implement (integrity, reencryption, a data offset that is not a whole
 * number of encryption sectors). */
int luks_unlock(const struct luks_io *io, const void *pass, size_t pass_len,
		struct luks_volume *out);

/* What a header says, readable without the passphrase. */
struct luks_info {
	char cipher[VESSEL_CRYPT_NAME_MAX + 1];
	uint32_t key_bits;
	uint32_t sector_size;
	uint64_t data_offset;      /* bytes */
	unsigned keyslots;         /* active keyslots */
	char pbkdf[16];            /* of the first active keyslot */
	char uuid[40];
};

/* Reads and checks the header; same errors as luks_unlock() but for the
 * passphrase.  Writes nothing. */
int luks_inspect(const struct luks_io *io, struct luks_info *out);

/* Wipes the key material in *v. */
void luks_volume_wipe(struct luks_volume *v);

/* Reads a key file whose whole content is the passphrase, exactly as
 * `cryptsetup --key-file` uses it (no newline stripping); at most 8 MiB.
 * The caller frees *pass with luks_passphrase_free(). */
int luks_read_key_file(const char *path, uint8_t **pass, size_t *len);
void luks_passphrase_free(uint8_t *pass, size_t len);

#endif
