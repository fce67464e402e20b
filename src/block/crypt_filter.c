/* Encryption filter drivers "luks" and "plain" (crypt_filter.h).
 *
 * Sector mapping, as dm-crypt does it: filter sector n is sector
 * data_offset + n of the device below and is encrypted with sector
 * number n (plain64 IV counts from the start of the data segment, LUKS2
 * On-Disk Format "segments": iv_tweak 0).  Writes are encrypted into a
 * per-thread bounce buffer, because the caller's data is const and must
 * stay plaintext (the built-in cipher reads the plaintext and writes the
 * ciphertext in one pass, no copy first); reads are decrypted in place in
 * the caller's buffer.
 *
 * Encryption sectors (LUKS2 "sector_size") may be 512..4096 bytes; the
 * block layer's sectors are 512.  A request that covers part of an
 * encryption sector reads, decrypts, merges and re-encrypts the whole one
 * (read-modify-write).  IVs count 512-byte sectors in either case (LUKS2
 * leaves dm-crypt's iv_large_sectors off). */
#include "block/crypt_filter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "block/crypt_plugin.h"
#include "block/luks.h"
#include "util/error.h"
#include "util/log.h"

/* Bounce buffer per thread: 1 MiB of sectors per encrypt-and-write step. */
#define CRYPT_BOUNCE_SECTORS 2048u

struct crypt_filter {
	struct crypt_cipher *cipher;
	uint64_t data_sector;       /* start of the data segment in the lower device */
	uint32_t unit;              /* encryption sector in 512-byte sectors (1..8) */
	/* Encryption sectors larger than 512 bytes make a write of part of
	 * one a read-modify-write; those take the lock exclusively, whole
	 * unit writes share it, so two partial writes of one unit cannot
	 * lose each other's data.  Unused when unit == 1. */
	pthread_rwlock_t rmw;
};

/* ---- options ---------------------------------------------------------- */

struct crypt_opts {
	char key_file[4096];
	char cipher[VESSEL_CRYPT_NAME_MAX + 1];
	char pbkdf[16];
	uint32_t key_bits;
	struct luks_params luks;
};

static int crypt_parse_u32(const char *key, const char *val, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(val, &end, 10);

	if (!*val || *end || v == 0 || v > UINT32_MAX)
		return err_set(-EINVAL, "encryption option %s: '%s' is not a positive number", key, val);
	*out = (uint32_t)v;
	return 0;
}

/* Creation options are accepted when opening too (and have no effect
 * there), so one spec serves `create` and every later open. */
static int crypt_parse_opts(const char *opts, struct crypt_opts *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->cipher, sizeof(o->cipher), "%s", LUKS_DEFAULT_CIPHER);
	while (opts && *opts) {
		const char *end = strchr(opts, ',');
		size_t len = end ? (size_t)(end - opts) : strlen(opts);
		char item[4200];
		if (len >= sizeof(item))
			return err_set(-EINVAL, "encryption option too long");
		memcpy(item, opts, len);
		item[len] = 0;
		opts = end ? end + 1 : NULL;
		if (!len)
			continue;
		char *eq = strchr(item, '=');
		if (!eq)
			return err_set(-EINVAL, "encryption option '%s': want key=value", item);
		*eq = 0;
		const char *k = item, *v = eq + 1;
		int rc = 0;
		if (strcmp(k, "key-file") == 0) {
			if (!*v || strlen(v) >= sizeof(o->key_file))
				return err_set(-EINVAL, "encryption option key-file: bad path");
			if (o->key_file[0])
				return err_set(-EINVAL, "encryption option key-file given twice: one key source only");
			snprintf(o->key_file, sizeof(o->key_file), "%s", v);
		} else if (strcmp(k, "cipher") == 0) {
			if (!crypt_plugin_name_valid(v))
				return err_set(-EINVAL, "encryption option cipher: '%s' is not a cipher name", v);
			snprintf(o->cipher, sizeof(o->cipher), "%s", v);
		} else if (strcmp(k, "key-size") == 0) {
			rc = crypt_parse_u32(k, v, &o->key_bits);
			if (rc == 0 && (o->key_bits % 8 || o->key_bits / 8 > LUKS_KEY_MAX))
				rc = err_set(-EINVAL, "encryption option key-size: %u bits", o->key_bits);
		} else if (strcmp(k, "pbkdf") == 0) {
			if (strlen(v) >= sizeof(o->pbkdf))
				return err_set(-EINVAL, "encryption option pbkdf: unknown '%s'", v);
			snprintf(o->pbkdf, sizeof(o->pbkdf), "%s", v);
		} else if (strcmp(k, "iter-time") == 0) {
			rc = crypt_parse_u32(k, v, &o->luks.iter_time_ms);
		} else if (strcmp(k, "pbkdf-memory") == 0) {
			rc = crypt_parse_u32(k, v, &o->luks.memory_kib);
		} else if (strcmp(k, "pbkdf-iterations") == 0) {
			rc = crypt_parse_u32(k, v, &o->luks.iterations);
		} else if (strcmp(k, "sector-size") == 0) {
			rc = crypt_parse_u32(k, v, &o->luks.sector_size);
			if (rc == 0 && (o->luks.sector_size < 512 || o->luks.sector_size > 4096 ||
					(o->luks.sector_size & (o->luks.sector_size - 1))))
				rc = err_set(-EINVAL, "encryption option sector-size: %u (512, 1024, "
					     "2048 or 4096)", o->luks.sector_size);
		} else {
			return err_set(-EINVAL, "unknown encryption option '%s'", k);
		}
		if (rc < 0)
			return rc;
	}
	o->luks.cipher = o->cipher;
	o->luks.key_bytes = o->key_bits / 8;
	o->luks.pbkdf = o->pbkdf[0] ? o->pbkdf : NULL;
	return 0;
}

/* ---- the driver ------------------------------------------------------- */

static pthread_key_t crypt_bounce_key;
static pthread_once_t crypt_bounce_once = PTHREAD_ONCE_INIT;

static void crypt_bounce_free(void *p)
{
	free(p);
}

static void crypt_bounce_init(void)
{
	pthread_key_create(&crypt_bounce_key, crypt_bounce_free);
}

static uint8_t *crypt_bounce(void)
{
	pthread_once(&crypt_bounce_once, crypt_bounce_init);
	uint8_t *b = pthread_getspecific(crypt_bounce_key);
	if (!b) {
		b = aligned_alloc(BLOCK_BUF_ALIGN, (size_t)CRYPT_BOUNCE_SECTORS * BLOCK_SECTOR_SIZE);
		if (b && pthread_setspecific(crypt_bounce_key, b) != 0) {
			free(b);
			b = NULL;
		}
	}
	return b;
}

/* Stops at the first non-zero word: real ciphertext almost always has
 * one in its first eight bytes, so only never-written units (which are
 * all zero) are scanned to the end. */
static bool crypt_unit_is_zero(const uint8_t *p, uint32_t sectors)
{
	for (size_t i = 0; i < (size_t)sectors * BLOCK_SECTOR_SIZE; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w)
			return false;
	}
	return true;
}

/* Reads `n` whole encryption sectors starting at filter sector `sector`
 * (a multiple of the unit) into buf and decrypts them.
 *
 * An encryption sector that was never written (a hole in a sparse raw
 * file, an unallocated VHD block) holds all-zero "ciphertext"; it reads as
 * zeros instead of the noise its decryption would be, so a fresh encrypted
 * disk looks like a fresh plain one.  Real ciphertext is all zero with
 * probability 2^-4096.  Runs of non-zero units are decrypted in one call
 * to keep the cipher's batching. */
static int crypt_read_units(struct crypt_filter *f, struct block_dev *lower, uint64_t sector,
			    uint8_t *buf, uint32_t n)
{
	const uint32_t u = f->unit;
	const size_t ub = (size_t)u * BLOCK_SECTOR_SIZE;
	int rc = block_read(lower, f->data_sector + sector, buf, n * u);

	for (uint32_t i = 0; rc == 0 && i < n;) {
		if (crypt_unit_is_zero(buf + i * ub, u)) {
			i++;
			continue;
		}
		uint32_t j = i + 1;
		while (j < n && !crypt_unit_is_zero(buf + j * ub, u))
			j++;
		rc = crypt_cipher_decrypt(f->cipher, sector + (uint64_t)i * u, buf + i * ub, j - i);
		i = j;
	}
	return rc;
}

/* Encrypts `n` whole units from src into the thread's bounce buffer and
 * writes them, CRYPT_BOUNCE_SECTORS at a time. */
static int crypt_write_units(struct crypt_filter *f, struct block_dev *lower, uint64_t sector,
			     const uint8_t *src, uint32_t n)
{
	const uint32_t u = f->unit, per = CRYPT_BOUNCE_SECTORS / u;
	uint8_t *b = crypt_bounce();

	if (!b)
		return err_set(-ENOMEM, "out of memory");
	while (n) {
		uint32_t k = n < per ? n : per;
		size_t bytes = (size_t)k * u * BLOCK_SECTOR_SIZE;
		int rc = crypt_cipher_encrypt_copy(f->cipher, sector, b, src, k);
		if (rc == 0)
			rc = block_write(lower, f->data_sector + sector, b, k * u);
		if (rc < 0) {
			OPENSSL_cleanse(b, bytes);
			return rc;
		}
		sector += (uint64_t)k * u;
		src += bytes;
		n -= k;
	}
	return 0;
}

static int crypt_read(struct block_dev *bd, uint64_t sector, void *buf, uint32_t count)
{
	struct crypt_filter *f = bd->priv;
	const uint32_t u = f->unit;
	uint8_t *dst = buf;
	uint8_t part[4096];
	bool used_part = false;
	int rc = 0;

	if (u == 1)
		return crypt_read_units(f, bd->lower, sector, buf, count);
	while (count && rc == 0) {
		uint32_t in = (uint32_t)(sector % u);
		if (in || count < u) {
			/* Part of one encryption sector: through a unit buffer. */
			uint32_t n = u - in < count ? u - in : count;
			used_part = true;
			rc = crypt_read_units(f, bd->lower, sector - in, part, 1);
			if (rc == 0)
				memcpy(dst, part + (size_t)in * BLOCK_SECTOR_SIZE, (size_t)n * BLOCK_SECTOR_SIZE);
			sector += n;
			dst += (size_t)n * BLOCK_SECTOR_SIZE;
			count -= n;
		} else {
			uint32_t n = count / u;
			rc = crypt_read_units(f, bd->lower, sector, dst, n);
			sector += (uint64_t)n * u;
			dst += (size_t)n * u * BLOCK_SECTOR_SIZE;
			count -= n * u;
		}
	}
	/* Wipe the plaintext only where a partial unit went through it:
	 * whole-unit requests never touch `part`, and cleansing 4 KiB per
	 * request was a tenth of the time of a 4 KiB read. */
	if (used_part)
		OPENSSL_cleanse(part, sizeof(part));
	return rc;
}

static int crypt_write(struct block_dev *bd, uint64_t sector, const void *buf, uint32_t count)
{
	struct crypt_filter *f = bd->priv;
	const uint32_t u = f->unit;
	const uint8_t *src = buf;
	uint8_t part[4096];
	bool used_part = false;
	int rc = 0;

	if (u == 1)
		return crypt_write_units(f, bd->lower, sector, buf, count);
	bool partial = sector % u || count % u;
	if (partial)
		pthread_rwlock_wrlock(&f->rmw);
	else
		pthread_rwlock_rdlock(&f->rmw);
	while (count && rc == 0) {
		uint32_t in = (uint32_t)(sector % u);
		if (in || count < u) {
			uint32_t n = u - in < count ? u - in : count;
			used_part = true;
			rc = crypt_read_units(f, bd->lower, sector - in, part, 1);
			if (rc == 0) {
				memcpy(part + (size_t)in * BLOCK_SECTOR_SIZE, src, (size_t)n * BLOCK_SECTOR_SIZE);
				rc = crypt_write_units(f, bd->lower, sector - in, part, 1);
			}
			sector += n;
			src += (size_t)n * BLOCK_SECTOR_SIZE;
			count -= n;
		} else {
			uint32_t n = count / u;
			rc = crypt_write_units(f, bd->lower, sector, src, n);
			sector += (uint64_t)n * u;
			src += (size_t)n * u * BLOCK_SECTOR_SIZE;
			count -= n * u;
		}
	}
	pthread_rwlock_unlock(&f->rmw);
	/* Wipe the plaintext only where a partial unit went through it:
	 * whole-unit requests never touch `part`, and cleansing 4 KiB per
	 * request was a tenth of the time of a 4 KiB read. */
	if (used_part)
		OPENSSL_cleanse(part, sizeof(part));
	return rc;
}

static int crypt_flush(struct block_dev *bd)
{
	return block_flush(bd->lower);
}

static void crypt_close(struct block_dev *bd)
{
	struct crypt_filter *f = bd->priv;

	if (f) {
		crypt_cipher_free(f->cipher);
		pthread_rwlock_destroy(&f->rmw);
		free(f);
	}
	block_close(bd->lower);
}

/* No discard: passing it down would tell whoever reads the image which
 * sectors the guest does not use (dm-crypt also refuses discards unless
 * asked); NULL means the layer accepts and ignores it. */
static const struct block_driver crypt_driver_luks = {
	.name = "luks",
	.flags = BLOCK_DRV_FILTER,
	.read = crypt_read,
	.write = crypt_write,
	.flush = crypt_flush,
	.close = crypt_close,
};

static const struct block_driver crypt_driver_plain = {
	.name = "plain",
	.flags = BLOCK_DRV_FILTER,
	.read = crypt_read,
	.write = crypt_write,
	.flush = crypt_flush,
	.close = crypt_close,
};

/* Builds the filter device; on failure `lower` is left to the caller. */
static int crypt_dev_new(const struct block_driver *drv, struct block_dev *lower,
			 const char *cipher, const uint8_t *key, uint32_t key_len,
			 uint64_t data_offset, uint32_t sector_size, unsigned flags,
			 struct block_dev **out)
{
	struct crypt_filter *f = calloc(1, sizeof(*f));
	char name[512];
	int rc;

	if (!f)
		return err_set(-ENOMEM, "out of memory");
	if (data_offset % BLOCK_SECTOR_SIZE || data_offset / BLOCK_SECTOR_SIZE >= lower->sectors) {
		free(f);
		return err_set(-EINVAL, "%s: data segment at byte %llu is outside the disk",
			       lower->name, (unsigned long long)data_offset);
	}
	if ((rc = crypt_cipher_new(cipher, key, key_len, sector_size, NULL, 0, &f->cipher)) < 0) {
		free(f);
		return err_wrap(rc, "%s", lower->name);
	}
	f->data_sector = data_offset / BLOCK_SECTOR_SIZE;
	f->unit = sector_size / BLOCK_SECTOR_SIZE;
	if (data_offset % sector_size || (lower->sectors - f->data_sector) / f->unit == 0) {
		crypt_cipher_free(f->cipher);
		free(f);
		return err_set(-EINVAL, "%s: data segment at byte %llu does not hold a whole "
			       "%u-byte encryption sector", lower->name,
			       (unsigned long long)data_offset, sector_size);
	}
	pthread_rwlock_init(&f->rmw, NULL);
	snprintf(name, sizeof(name), "%s(%s)", drv->name, lower->name);
	struct block_dev *bd = block_dev_alloc(drv, name, lower,
					       lower->rdonly || (flags & BLOCK_OPEN_RDONLY));
	if (!bd) {
		crypt_cipher_free(f->cipher);
		pthread_rwlock_destroy(&f->rmw);
		free(f);
		return err_set(-ENOMEM, "out of memory");
	}
	bd->priv = f;
	/* A trailing part of an encryption sector is not addressable (dm-crypt
	 * also rounds the device down). */
	bd->sectors = (lower->sectors - f->data_sector) / f->unit * f->unit;
	*out = bd;
	return 0;
}

/* luks_io over a block device: header offsets and lengths are whole sectors. */
static int crypt_io_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	if (off % BLOCK_SECTOR_SIZE || len % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "unaligned header access");
	return block_read(opaque, off / BLOCK_SECTOR_SIZE, buf, (uint32_t)(len / BLOCK_SECTOR_SIZE));
}

static int crypt_io_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	if (off % BLOCK_SECTOR_SIZE || len % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "unaligned header access");
	return block_write(opaque, off / BLOCK_SECTOR_SIZE, buf, (uint32_t)(len / BLOCK_SECTOR_SIZE));
}

static struct luks_io crypt_io(struct block_dev *lower)
{
	return (struct luks_io){
		.read = crypt_io_read,
		.write = crypt_io_write,
		.size = lower->sectors * BLOCK_SECTOR_SIZE,
		.opaque = lower,
	};
}

int crypt_luks_open_passphrase(struct block_dev *lower, const void *pass, size_t pass_len,
			       unsigned flags, struct block_dev **out)
{
	struct luks_io io = crypt_io(lower);
	struct luks_volume v;
	int rc = luks_unlock(&io, pass, pass_len, &v);

	if (rc < 0)
		return err_wrap(rc, "%s", lower->name);
	rc = crypt_dev_new(&crypt_driver_luks, lower, v.cipher, v.key, v.key_len, v.data_offset,
			   v.sector_size, flags, out);
	luks_volume_wipe(&v);
	return rc;
}

static int crypt_key_file(const struct crypt_opts *o, const char *filter, uint8_t **pass, size_t *len)
{
	if (!o->key_file[0])
		return err_set(-EINVAL, "%s encryption needs a key file (%s:key-file=PATH)", filter, filter);
	return luks_read_key_file(o->key_file, pass, len);
}

static int crypt_luks_open(struct block_dev *lower, const char *opts, unsigned flags,
			   struct block_dev **out)
{
	struct crypt_opts o;
	uint8_t *pass;
	size_t len;
	int rc;

	if ((rc = crypt_parse_opts(opts, &o)) < 0 ||
	    (rc = crypt_key_file(&o, "luks", &pass, &len)) < 0)
		return rc;
	rc = crypt_luks_open_passphrase(lower, pass, len, flags, out);
	luks_passphrase_free(pass, len);
	return rc;
}

static int crypt_luks_format(struct block_dev *lower, const char *opts, uint64_t payload_sectors)
{
	struct crypt_opts o;
	struct luks_volume v;
	uint8_t *pass;
	size_t len;
	int rc;

	if ((rc = crypt_parse_opts(opts, &o)) < 0 ||
	    (rc = crypt_key_file(&o, "luks", &pass, &len)) < 0)
		return rc;
	if (lower->sectors < LUKS_NEW_DATA_OFFSET / BLOCK_SECTOR_SIZE + payload_sectors) {
		luks_passphrase_free(pass, len);
		return err_set(-ENOSPC, "%s: %llu sectors cannot hold the LUKS2 header and %llu "
			       "data sectors", lower->name, (unsigned long long)lower->sectors,
			       (unsigned long long)payload_sectors);
	}
	struct luks_io io = crypt_io(lower);
	rc = luks_format(&o.luks, pass, len, &io, &v);
	luks_passphrase_free(pass, len);
	if (rc < 0)
		return err_wrap(rc, "%s", lower->name);
	luks_volume_wipe(&v);
	return block_flush(lower);
}

static uint64_t crypt_luks_overhead(const char *opts)
{
	return LUKS_NEW_DATA_OFFSET / BLOCK_SECTOR_SIZE;
}

static int crypt_plain_open(struct block_dev *lower, const char *opts, unsigned flags,
			    struct block_dev **out)
{
	struct crypt_opts o;
	uint8_t *key;
	size_t len;
	int rc;

	if ((rc = crypt_parse_opts(opts, &o)) < 0 ||
	    (rc = crypt_key_file(&o, "plain", &key, &len)) < 0)
		return rc;
	if (len > UINT32_MAX)
		rc = err_set(-EINVAL, "key file too long");
	else
		rc = crypt_dev_new(&crypt_driver_plain, lower, o.cipher, key, (uint32_t)len, 0,
				   o.luks.sector_size ? o.luks.sector_size : BLOCK_SECTOR_SIZE, flags, out);
	luks_passphrase_free(key, len);
	return rc;
}

const struct block_filter_type crypt_filter_luks = {
	.name = "luks",
	.open = crypt_luks_open,
	.format = crypt_luks_format,
	.overhead_sectors = crypt_luks_overhead,
};

const struct block_filter_type crypt_filter_plain = {
	.name = "plain",
	.open = crypt_plain_open,
};

int crypt_filters_register(void)
{
	static const struct block_filter_type *const types[] = { &crypt_filter_luks, &crypt_filter_plain };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (block_filter_find(types[i]->name) == types[i])
			continue;
		int rc = block_filter_register(types[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Linked in whenever anything uses this file; crypt_filters_register()
 * covers binaries that reach the filters only by name. */
__attribute__((constructor)) static void crypt_filters_autoregister(void)
{
	crypt_filters_register();
}

bool crypt_luks_detect(struct block_dev *bd)
{
	uint8_t head[BLOCK_SECTOR_SIZE];
	static const uint8_t magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

	return bd->sectors && block_read(bd, 0, head, 1) == 0 && memcmp(head, magic, 6) == 0;
}
