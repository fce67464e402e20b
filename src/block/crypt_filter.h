/* Encryption filters for the block layer (block.h "filters"): sectors are
 * encrypted on the way down and decrypted on the way up through a VM
 * Encryption API cipher (crypt_plugin.h).
 *
 *   luks   LUKS2 container inside the device below: header at its start,
 *          data segment after it (luks.h).  Options:
 *            key-file=PATH        passphrase = whole file (cryptsetup --key-file)
 *          and, used when creating (accepted and ignored when opening):
 *            cipher=NAME          plug-in / LUKS2 cipher, default aes-xts-plain64
 *            key-size=BITS        volume key size, default 512
 *            pbkdf=argon2id|argon2i|pbkdf2, iter-time=MS, pbkdf-memory=KiB,
 *            pbkdf-iterations=N   (fixed cost, no benchmark)
 *            sector-size=BYTES    encryption sector 512 (default)..4096
 *   plain  no header: the whole device below is the data segment and the
 *          key file holds the raw volume key (dm-crypt plain mode with a
 *          key file).  Options: cipher=NAME (default aes-xts-plain64),
 *          key-file=PATH, sector-size=BYTES.
 *
 * Options are comma-separated key=value pairs after "luks:" / "plain:". */
#ifndef VESSEL_BLOCK_CRYPT_FILTER_H
#define VESSEL_BLOCK_CRYPT_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"

extern const struct block_filter_type crypt_filter_luks;
extern const struct block_filter_type crypt_filter_plain;

/* Registers both filter types with the block layer; idempotent. */
int crypt_filters_register(void);

/* True when the device below starts with a LUKS header (either version),
 * for "this disk is encrypted: give a key file" messages. */
bool crypt_luks_detect(struct block_dev *bd);

/* Opens a LUKS2 filter with a passphrase held in memory instead of a key
 * file (control API, prompts).  Takes ownership of `lower` on success. */
int crypt_luks_open_passphrase(struct block_dev *lower, const void *pass, size_t pass_len,
			       unsigned flags, struct block_dev **out);

#endif
