/* Creating and converting images under a filter container (encrypted
 * ones): what `vessel disk create` and `vessel disk convert` run, with or
 * without --encrypt/--decrypt/--filter.
 *
 * Filter specs are the block layer's "name[:opts]" (crypt_filter.h), e.g.
 * "luks:key-file=pass.txt,pbkdf=argon2id".
 *
 * Exit codes for the CLI (docs/cli.md): -EKEYREJECTED (wrong passphrase)
 * and -EINVAL (damaged or missing header, bad option) are bad input,
 * EXIT_USAGE (2); crypt_disk_is_input_error() says which. */
#ifndef VESSEL_BLOCK_CRYPT_DISK_H
#define VESSEL_BLOCK_CRYPT_DISK_H

#include <stdbool.h>
#include <string.h>
#include <stddef.h>

#include "block/block.h"

/* Creates `path` as `co` says; under `filter` (NULL: none) it holds
 * `co->size` bytes of data: the image is made larger by the container's
 * header (the filter type's overhead) and the header is written.
 * Removes the new file when writing the header fails. */
int crypt_disk_create(const char *path, const struct block_create_opts *co, const char *filter);

/* Copies the whole virtual disk `src` (opened with its own filter, if
 * any: decrypting) into a new image `dst_path` created with `dst_co`
 * (its size is the source's; CHS rounding as dst_co->exact_size says)
 * under `dst_filter` (NULL: plain).  Zero 64 KiB pieces stay holes in a
 * plain destination; an encrypted one gets them as ciphertext (see
 * docs/disk-encryption.md).  The source is opened, and any passphrase
 * checked, before anything is created; the new file is removed on
 * failure.  `progress` (may be NULL) gets sectors done and total. */
int crypt_disk_convert(const struct block_open_spec *src, const char *dst_path,
		       const struct block_create_opts *dst_co, const char *dst_filter,
		       void (*progress)(uint64_t done, uint64_t total, void *), void *ctx);

/* The filter spec of `--encrypt[=OPTS] --key-file FILE` (and --decrypt):
 * "luks:key-file=FILE[,OPTS]" into buf.  Returns 0 or -EINVAL (no key
 * file, a ',' in its path, too long). */
int crypt_disk_luks_spec(const char *key_file, const char *opts, char *buf, size_t len);

struct json_t;

/* For `vessel disk info`: when the virtual disk of `path` holds a LUKS
 * container, adds to `desc` an "encryption" object with what its header
 * says (format, cipher, key bits, sector size, data offset, keyslots,
 * PBKDF, UUID), read without the passphrase; a damaged header gives
 * {"format": "luks2", "error": message}.  Nothing is added for a plain
 * disk.  Returns 0 or a negative errno when the image cannot be opened. */
int crypt_disk_describe(const char *path, const char *format, struct json_t *desc);

#define VM_DISK_MAX_QUEUES 8   /* virtio-blk's VIRTIO_BLK_MAX_QUEUES */

/* One disk of a VM as its manifest describes it (docs/manifest.md). */
struct vm_disk_config {
	char *path;
	char *format;      /* "raw", "vhd" or NULL to probe */
	bool readonly;
	char *key_file;    /* encrypted disks */
	char *serial;      /* virtio-blk GET_ID answer (20 bytes at most) */
	char *id;          /* a name for the disk, unique in the VM */
	/* Host caching (docs/virtio.md): writeback (page cache, flush is
	 * fdatasync), none (O_DIRECT), unsafe (page cache, flush ignored). */
	enum { VM_DISK_CACHE_WRITEBACK, VM_DISK_CACHE_NONE, VM_DISK_CACHE_UNSAFE } cache;
	unsigned queues;   /* virtio-blk request queues; 0: one per vCPU */
	bool split_only;   /* packed=off: virtio-blk offers split virtqueues only */
};

/* "writeback", "none", "unsafe" as a VM_DISK_CACHE_*, or -1.  Inline:
 * the manifest's parser (and its fuzz target) needs no disk code. */
static inline int vm_disk_cache_parse(const char *s)
{
	static const char *const names[] = { [VM_DISK_CACHE_WRITEBACK] = "writeback", [VM_DISK_CACHE_NONE] = "none",
					     [VM_DISK_CACHE_UNSAFE] = "unsafe" };
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (s && !strcmp(s, names[i]))
			return i;
	return -1;
}

/* Opens disk `d` of a VM the way its manifest says: format (or probed),
 * read-only, and under the luks filter with d->key_file as passphrase
 * when it has one.  Encryption plug-ins are then also searched in the
 * VM's plugin_dirs (n_plugin_dirs of them; plugin_dirs NULL: the search
 * is left as it is).  A LUKS2 disk without key_file is opened as it is
 * (the guest may decrypt it itself); this is logged. */
int crypt_disk_open_vm(const char *const *plugin_dirs, unsigned n_plugin_dirs, const struct vm_disk_config *d,
		       struct block_dev **out);

/* True for errors caused by the user's input (passphrase, header,
 * options) rather than by the host. */
bool crypt_disk_is_input_error(int err);

#endif
