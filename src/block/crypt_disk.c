/* Image creation and conversion under filter containers (crypt_disk.h). */
#include "block/crypt_disk.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "block/crypt_filter.h"
#include "block/crypt_plugin.h"
#include "block/luks.h"
#include "util/error.h"
#include "util/log.h"

#define CRYPT_COPY_SECTORS 2048u   /* 1 MiB per read */
#define CRYPT_COPY_PIECE 128u      /* 64 KiB: the unit of sparseness when copying */

int crypt_disk_create(const char *path, const struct block_create_opts *co, const char *filter)
{
	const struct block_filter_type *t;
	const char *opts;
	struct block_dev *lower;
	int rc;

	if (!filter)
		return block_create(path, co);
	crypt_filters_register();
	if ((rc = block_filter_parse(filter, &t, &opts)) < 0)
		return rc;
	if (!t->format)
		return err_set(-EINVAL, "block filter '%s' cannot create containers", t->name);
	if (co->size % BLOCK_SECTOR_SIZE || co->size == 0)
		return err_set(-EINVAL, "size %llu is not a positive multiple of %u bytes",
			       (unsigned long long)co->size, BLOCK_SECTOR_SIZE);
	struct block_create_opts c = *co;
	if (t->overhead_sectors)
		c.size += t->overhead_sectors(opts) * BLOCK_SECTOR_SIZE;
	if ((rc = block_create(path, &c)) < 0)
		return rc;
	if ((rc = block_open(path, c.format, 0, &lower)) == 0) {
		rc = t->format(lower, opts, co->size / BLOCK_SECTOR_SIZE);
		if (rc == 0)
			rc = block_flush(lower);
		block_close(lower);
	}
	if (rc < 0)
		unlink(path);
	return rc;
}

static bool crypt_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		if (v)
			return false;
	}
	return true;
}

int crypt_disk_convert(const struct block_open_spec *src, const char *dst_path,
		       const struct block_create_opts *dst_co, const char *dst_filter,
		       void (*progress)(uint64_t done, uint64_t total, void *), void *ctx)
{
	struct block_dev *in, *out = NULL;
	uint8_t *buf = NULL;
	int rc;

	if ((rc = block_open_stack(src, &in)) < 0)
		return rc;
	struct block_create_opts co = *dst_co;
	co.size = in->sectors * BLOCK_SECTOR_SIZE;
	rc = crypt_disk_create(dst_path, &co, dst_filter);
	if (rc < 0) {
		block_close(in);
		return rc;
	}
	struct block_open_spec ds = { .path = dst_path, .format = co.format, .filter = dst_filter };
	if ((rc = block_open_stack(&ds, &out)) < 0)
		goto fail;
	if (out->sectors < in->sectors) {
		rc = err_set(-EIO, "%s: created with %llu sectors, need %llu", dst_path,
			     (unsigned long long)out->sectors, (unsigned long long)in->sectors);
		goto fail;
	}
	if (!(buf = malloc((size_t)CRYPT_COPY_SECTORS * BLOCK_SECTOR_SIZE))) {
		rc = err_set(-ENOMEM, "out of memory");
		goto fail;
	}
	for (uint64_t s = 0; s < in->sectors;) {
		uint32_t n = in->sectors - s < CRYPT_COPY_SECTORS ? (uint32_t)(in->sectors - s)
								  : CRYPT_COPY_SECTORS;
		if ((rc = block_read(in, s, buf, n)) < 0)
			goto fail;
		/* A fresh plain image reads as zeros already, so zero pieces
		 * are skipped and stay sparse.  An encrypted one gets them as
		 * real ciphertext, so that dm-crypt (`cryptsetup open`) sees
		 * zeros there too, not only vessel (crypt_filter.c reads holes
		 * as zeros). */
		for (uint32_t i = 0; i < n; i += CRYPT_COPY_PIECE) {
			uint32_t m = n - i < CRYPT_COPY_PIECE ? n - i : CRYPT_COPY_PIECE;
			const uint8_t *p = buf + (size_t)i * BLOCK_SECTOR_SIZE;
			if ((dst_filter || !crypt_all_zero(p, (size_t)m * BLOCK_SECTOR_SIZE)) &&
			    (rc = block_write(out, s + i, p, m)) < 0)
				goto fail;
		}
		s += n;
		if (progress)
			progress(s, in->sectors, ctx);
	}
	if ((rc = block_flush(out)) < 0)
		goto fail;
	log_info("disk", "converted %s to %s (%llu sectors)", src->path, dst_path,
		 (unsigned long long)in->sectors);
	OPENSSL_cleanse(buf, (size_t)CRYPT_COPY_SECTORS * BLOCK_SECTOR_SIZE);
	free(buf);
	block_close(out);
	block_close(in);
	return 0;
fail:
	if (buf)
		OPENSSL_cleanse(buf, (size_t)CRYPT_COPY_SECTORS * BLOCK_SECTOR_SIZE);
	free(buf);
	block_close(out);
	block_close(in);
	unlink(dst_path);
	return rc;
}

int crypt_disk_luks_spec(const char *key_file, const char *opts, char *buf, size_t len)
{
	if (!key_file || !*key_file)
		return err_set(-EINVAL, "encryption needs --key-file FILE (the file's bytes are the passphrase)");
	if (strchr(key_file, ','))
		return err_set(-EINVAL, "key file path '%s' contains ',' (not allowed in a filter spec)", key_file);
	/* Two key sources would leave one of them silently unused: a user who
	 * keeps only that file could never open the disk again. */
	for (const char *o = opts; o && *o;) {
		const char *end = strchr(o, ',');
		size_t n = end ? (size_t)(end - o) : strlen(o);
		if (n >= 9 && strncmp(o, "key-file=", 9) == 0)
			return err_set(-EINVAL, "two key files: --key-file %s and key-file=%.*s in the encryption "
				       "options; give the key once", key_file, (int)(n - 9), o + 9);
		o = end ? end + 1 : NULL;
	}
	int n = snprintf(buf, len, "luks:key-file=%s%s%s", key_file, opts && *opts ? "," : "",
			 opts ? opts : "");
	if (n < 0 || (size_t)n >= len)
		return err_set(-EINVAL, "encryption options too long");
	return 0;
}

int crypt_disk_open_vm(const char *const *plugin_dirs, unsigned n_plugin_dirs, const struct vm_disk_config *d,
		       struct block_dev **out)
{
	char spec[4200];
	int rc;

	crypt_filters_register();
	if (plugin_dirs && (rc = crypt_plugin_set_dirs(plugin_dirs, n_plugin_dirs)) < 0)
		return rc;
	struct block_open_spec s = {
		.path = d->path,
		.format = d->format,
		.flags = (d->readonly ? BLOCK_OPEN_RDONLY : 0) | (d->cache == VM_DISK_CACHE_NONE ? BLOCK_OPEN_DIRECT : 0),
	};
	if (d->key_file) {
		if ((rc = crypt_disk_luks_spec(d->key_file, NULL, spec, sizeof(spec))) < 0)
			return err_wrap(rc, "disk %s", d->path);
		s.filter = spec;
	}
	if ((rc = block_open_stack(&s, out)) < 0)
		return rc;
	if (!d->key_file && crypt_luks_detect(*out))
		log_info("disk", "%s holds a LUKS container and has no key_file: the guest sees it "
			 "encrypted", d->path);
	return 0;
}

static int crypt_disk_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	return block_read(opaque, off / BLOCK_SECTOR_SIZE, buf, (uint32_t)(len / BLOCK_SECTOR_SIZE));
}

static int crypt_disk_nowrite(void *opaque, uint64_t off, const void *buf, size_t len)
{
	return err_set(-EROFS, "read-only");
}

int crypt_disk_describe(const char *path, const char *format, json_t *desc)
{
	struct block_dev *bd;
	struct luks_info info;
	int rc = block_open(path, format, BLOCK_OPEN_RDONLY | BLOCK_OPEN_PEEK, &bd);

	if (rc < 0)
		return rc;
	if (!crypt_luks_detect(bd)) {
		block_close(bd);
		return 0;
	}
	struct luks_io io = { .read = crypt_disk_read, .write = crypt_disk_nowrite,
			      .size = bd->sectors * BLOCK_SECTOR_SIZE, .opaque = bd };
	json_t *e = json_object();
	json_object_set_new(e, "format", json_string("luks2"));
	if (luks_inspect(&io, &info) < 0) {
		json_object_set_new(e, "error", json_string(err_msg()));
	} else {
		json_object_set_new(e, "cipher", json_string(info.cipher));
		json_object_set_new(e, "key-bits", json_integer(info.key_bits));
		json_object_set_new(e, "sector-size", json_integer(info.sector_size));
		json_object_set_new(e, "data-offset", json_integer((json_int_t)info.data_offset));
		json_object_set_new(e, "data-size",
				    json_integer((json_int_t)(bd->sectors * BLOCK_SECTOR_SIZE - info.data_offset)));
		json_object_set_new(e, "keyslots", json_integer(info.keyslots));
		if (info.pbkdf[0])
			json_object_set_new(e, "pbkdf", json_string(info.pbkdf));
		json_object_set_new(e, "uuid", json_string(info.uuid));
	}
	json_object_set_new(desc, "encryption", e);
	block_close(bd);
	err_clear();
	return 0;
}

bool crypt_disk_is_input_error(int err)
{
	return err == -EKEYREJECTED || err == -EINVAL || err == -ENOENT || err == -ENOTSUP || err == -EPROTO;
}
