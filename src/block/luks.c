/* LUKS2 containers: header creation and unlocking through libcryptsetup
 * on a private memory file holding a copy of the header area.
 *
 * Why a copy: the container is usually the virtual disk of an image
 * format (raw or VHD), i.e. sectors behind a block driver, not a host path
 * that libcryptsetup could open.  The header area (LUKS2 On-Disk Format
 * Specification section 2: binary header + JSON area, twice, then the
 * keyslots area) is small, so it is copied into a memfd that
 * libcryptsetup opens through /proc/self/fd; a new header is written back
 * with the caller's luks_io.  Unlocking only reads. */
#include "block/luks.h"

#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "block/crypt_plugin.h"
#include "util/error.h"
#include "util/log.h"

#define LUKS_COPY_CHUNK (256u << 10)
/* Both metadata copies fit here whatever their size (at most 4 MiB each,
 * LUKS2 specification section 2.1). */
#define LUKS_PROBE_BYTES (8u << 20)
/* Refuse headers whose data segment starts beyond this: copying a
 * hostile header's claimed keyslot area must stay cheap. */
#define LUKS_MAX_DATA_OFFSET (256ull << 20)
#define LUKS_KEY_FILE_MAX (8u << 20)
#define LUKS_METADATA_SIZE (16u << 10)

static const uint8_t luks_magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

static __thread char luks_cs_msg[256];
static pthread_once_t luks_once = PTHREAD_ONCE_INIT;

/* libcryptsetup reports through a callback; keep its last error for our
 * message and forward everything to the debug log. */
static void luks_cs_log(int level, const char *msg, void *usrptr)
{
	size_t n = strlen(msg);

	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
		n--;
	if (level == CRYPT_LOG_ERROR)
		snprintf(luks_cs_msg, sizeof(luks_cs_msg), "%.*s", (int)n, msg);
	log_debug("luks", "libcryptsetup: %.*s", (int)n, msg);
}

static void luks_global_init(void)
{
	crypt_set_log_callback(NULL, luks_cs_log, NULL);
	/* The header copy is private to this process: no lock files in
	 * /run/cryptsetup (which a non-root user cannot create anyway). */
	crypt_metadata_locking(NULL, 0);
}

/* A memory file of `size` bytes and a path libcryptsetup can open. */
static int luks_memfd(uint64_t size, char *path, size_t path_len)
{
	int fd = memfd_create("vessel-luks-header", MFD_CLOEXEC);

	if (fd < 0)
		return err_set(-errno, "luks: memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		return err_set(-e, "luks: sizing header buffer: %s", strerror(e));
	}
	snprintf(path, path_len, "/proc/self/fd/%d", fd);
	return fd;
}

static int luks_copy_in(const struct luks_io *io, int fd, uint64_t from, uint64_t to)
{
	uint8_t *buf = malloc(LUKS_COPY_CHUNK);

	if (!buf)
		return err_set(-ENOMEM, "out of memory");
	for (uint64_t off = from; off < to;) {
		size_t n = to - off < LUKS_COPY_CHUNK ? (size_t)(to - off) : LUKS_COPY_CHUNK;
		int rc = io->read(io->opaque, off, buf, n);
		if (rc < 0) {
			free(buf);
			return err_wrap(rc, "luks: reading header area");
		}
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			free(buf);
			return err_set(-EIO, "luks: header buffer write failed");
		}
		off += n;
	}
	free(buf);
	return 0;
}

static int luks_copy_out(const struct luks_io *io, int fd, uint64_t len)
{
	uint8_t *buf = malloc(LUKS_COPY_CHUNK);

	if (!buf)
		return err_set(-ENOMEM, "out of memory");
	for (uint64_t off = 0; off < len;) {
		size_t n = len - off < LUKS_COPY_CHUNK ? (size_t)(len - off) : LUKS_COPY_CHUNK;
		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) {
			free(buf);
			return err_set(-EIO, "luks: header buffer read failed");
		}
		int rc = io->write(io->opaque, off, buf, n);
		if (rc < 0) {
			free(buf);
			return err_wrap(rc, "luks: writing header");
		}
		off += n;
	}
	free(buf);
	return 0;
}

/* "aes-xts-plain64" -> LUKS2 cipher "aes", mode "xts-plain64" (the JSON
 * "encryption" field is the two joined with '-'). */
static int luks_split_cipher(const char *name, char *cipher, size_t clen, const char **mode)
{
	const char *dash = name ? strchr(name, '-') : NULL;

	if (!crypt_plugin_name_valid(name) || !dash || dash == name || !dash[1])
		return err_set(-EINVAL, "luks: cipher '%s' is not of the form CIPHER-MODE "
			       "(e.g. aes-xts-plain64)", name ? name : "");
	if ((size_t)(dash - name) >= clen)
		return err_set(-EINVAL, "luks: cipher name '%s' too long", name);
	memcpy(cipher, name, (size_t)(dash - name));
	cipher[dash - name] = 0;
	*mode = dash + 1;
	return 0;
}

static int luks_pbkdf_from_params(const struct luks_params *p, struct crypt_pbkdf_type *pb)
{
	const struct crypt_pbkdf_type *def = crypt_get_pbkdf_default(CRYPT_LUKS2);

	if (!def)
		return err_set(-EINVAL, "luks: libcryptsetup has no LUKS2 PBKDF default");
	*pb = *def;
	if (p->pbkdf) {
		if (strcmp(p->pbkdf, CRYPT_KDF_PBKDF2) && strcmp(p->pbkdf, CRYPT_KDF_ARGON2I) &&
		    strcmp(p->pbkdf, CRYPT_KDF_ARGON2ID))
			return err_set(-EINVAL, "luks: unknown PBKDF '%s' (argon2id, argon2i, pbkdf2)",
				       p->pbkdf);
		pb->type = p->pbkdf;
	}
	bool pbkdf2 = strcmp(pb->type, CRYPT_KDF_PBKDF2) == 0;
	if (pbkdf2) {
		/* PBKDF2 has no memory or parallel cost. */
		pb->max_memory_kb = 0;
		pb->parallel_threads = 0;
		pb->hash = "sha256";
	}
	if (p->iter_time_ms)
		pb->time_ms = p->iter_time_ms;
	if (p->memory_kib && !pbkdf2)
		pb->max_memory_kb = p->memory_kib;
	if (p->iterations) {
		pb->iterations = p->iterations;
		pb->flags |= CRYPT_PBKDF_NO_BENCHMARK;
		if (!pbkdf2 && !p->memory_kib)
			pb->max_memory_kb = 65536;
	}
	return 0;
}

int luks_format(const struct luks_params *p, const void *pass, size_t pass_len,
		const struct luks_io *io, struct luks_volume *out)
{
	static const struct luks_params none;
	struct crypt_device *cd = NULL;
	struct crypt_pbkdf_type pb;
	char path[64], cipher[VESSEL_CRYPT_NAME_MAX + 1];
	const char *mode = NULL;
	int rc, fd;

	pthread_once(&luks_once, luks_global_init);
	if (!p)
		p = &none;
	memset(out, 0, sizeof(*out));
	const char *name = p->cipher ? p->cipher : LUKS_DEFAULT_CIPHER;
	uint32_t key_bytes = p->key_bytes ? p->key_bytes : LUKS_DEFAULT_KEY_BYTES;
	if ((rc = luks_split_cipher(name, cipher, sizeof(cipher), &mode)) < 0)
		return rc;
	if (key_bytes > LUKS_KEY_MAX)
		return err_set(-EINVAL, "luks: %u-byte key is too long (at most %u)", key_bytes, LUKS_KEY_MAX);
	if (!pass_len)
		return err_set(-EINVAL, "luks: empty passphrase");
	if (io->size < LUKS_NEW_DATA_OFFSET + 512)
		return err_set(-ENOSPC, "luks: container of %llu bytes cannot hold the %u-byte "
			       "header and data", (unsigned long long)io->size, LUKS_NEW_DATA_OFFSET);
	uint32_t ss = p->sector_size ? p->sector_size : 512;
	if (ss < 512 || ss > 4096 || (ss & (ss - 1)))
		return err_set(-EINVAL, "luks: sector size %u (want 512, 1024, 2048 or 4096)", ss);
	if ((rc = luks_pbkdf_from_params(p, &pb)) < 0)
		return rc;

	/* The cipher must exist before a header promises it. */
	if (RAND_priv_bytes(out->key, (int)key_bytes) != 1)
		return err_set(-EIO, "luks: no randomness for the volume key");
	out->key_len = key_bytes;
	struct crypt_cipher *probe;
	if ((rc = crypt_cipher_new(name, out->key, key_bytes, ss, NULL, 0, &probe)) < 0) {
		luks_volume_wipe(out);
		return err_wrap(rc, "luks");
	}
	crypt_cipher_free(probe);

	if ((fd = luks_memfd(LUKS_NEW_DATA_OFFSET + (1u << 20), path, sizeof(path))) < 0) {
		luks_volume_wipe(out);
		return fd;
	}
	luks_cs_msg[0] = 0;
	struct crypt_params_luks2 params = {
		.pbkdf = &pb,
		.data_alignment = LUKS_NEW_DATA_OFFSET / 512,
		.sector_size = ss,
	};
	if ((rc = crypt_init(&cd, path)) < 0 ||
	    (rc = crypt_set_metadata_size(cd, LUKS_METADATA_SIZE,
					  LUKS_NEW_DATA_OFFSET - 2 * LUKS_METADATA_SIZE)) < 0 ||
	    (rc = crypt_format(cd, CRYPT_LUKS2, cipher, mode, NULL, (const char *)out->key,
			       key_bytes, &params)) < 0) {
		rc = err_set(rc, "luks: creating the LUKS2 header failed: %s",
			     luks_cs_msg[0] ? luks_cs_msg : strerror(-rc));
		goto out;
	}
	/* Keyslots are decrypted by libcryptsetup itself, which knows only
	 * kernel/OpenSSL ciphers: a plug-in cipher protects the data
	 * segment, AES-XTS protects the keyslot (LUKS2 keyslot "area"
	 * encryption is independent of the segment's). */
	if (strcmp(name, LUKS_DEFAULT_CIPHER) != 0 &&
	    (rc = crypt_keyslot_set_encryption(cd, LUKS_DEFAULT_CIPHER, LUKS_DEFAULT_KEY_BYTES)) < 0) {
		rc = err_set(rc, "luks: keyslot encryption: %s", luks_cs_msg);
		goto out;
	}
	if ((rc = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)out->key,
						  key_bytes, pass, pass_len)) < 0) {
		rc = err_set(rc, "luks: adding the passphrase keyslot failed: %s",
			     luks_cs_msg[0] ? luks_cs_msg : strerror(-rc));
		goto out;
	}
	uint64_t data_offset = crypt_get_data_offset(cd) * 512;
	if (data_offset != LUKS_NEW_DATA_OFFSET) {
		rc = err_set(-EIO, "luks: libcryptsetup placed data at %llu, expected %u",
			     (unsigned long long)data_offset, LUKS_NEW_DATA_OFFSET);
		goto out;
	}
	crypt_free(cd);
	cd = NULL;
	if ((rc = luks_copy_out(io, fd, data_offset)) < 0)
		goto out;
	snprintf(out->cipher, sizeof(out->cipher), "%s", name);
	out->sector_size = ss;
	out->data_offset = data_offset;
	log_info("luks", "created LUKS2 container: %s, %u-bit key, %s keyslot", name,
		 key_bytes * 8, pb.type);
out:
	crypt_free(cd);
	close(fd);
	if (rc < 0)
		luks_volume_wipe(out);
	return rc;
}

/* Message for a header libcryptsetup refused. */
static int luks_load_error(int rc, const uint8_t *head, size_t head_len)
{
	if (head_len >= 8 && memcmp(head, luks_magic, 6) == 0 && head[6] == 0 && head[7] == 1)
		return err_set(-ENOTSUP, "luks: LUKS1 container: only LUKS2 is supported "
			       "(`cryptsetup convert --type luks2` converts it)");
	if (head_len >= 6 && memcmp(head, luks_magic, 6) != 0 && !luks_cs_msg[0])
		return err_set(-EINVAL, "luks: not a LUKS2 container (no LUKS header found)");
	return err_set(-EINVAL, "luks: LUKS2 header is damaged or invalid%s%s",
		       luks_cs_msg[0] ? ": " : "", luks_cs_msg);
}

/* Copies the header area into a memory file and has libcryptsetup load
 * and check it.  On success *cd and *fd are open (the caller frees and
 * closes them) and the header's facts are in *info. */
static int luks_load(const struct luks_io *io, struct crypt_device **cdp, int *fdp,
		     struct luks_info *info)
{
	struct crypt_device *cd = NULL;
	uint8_t head[4096];
	char path[64];
	int rc, fd;

	pthread_once(&luks_once, luks_global_init);
	memset(info, 0, sizeof(*info));
	if (io->size < sizeof(head))
		return err_set(-EINVAL, "luks: not a LUKS2 container (%llu bytes is too small)",
			       (unsigned long long)io->size);
	if ((rc = io->read(io->opaque, 0, head, sizeof(head))) < 0)
		return err_wrap(rc, "luks: reading header");

	/* libcryptsetup checks that the device holds the whole header area,
	 * so the memory file has the container's size (up to the largest
	 * header area accepted; it stays sparse), while only the metadata is
	 * copied at first. */
	uint64_t probe = io->size < LUKS_PROBE_BYTES ? io->size : LUKS_PROBE_BYTES;
	uint64_t span = io->size < LUKS_MAX_DATA_OFFSET ? io->size : LUKS_MAX_DATA_OFFSET;
	if ((fd = luks_memfd(span, path, sizeof(path))) < 0)
		return fd;
	luks_cs_msg[0] = 0;
	if ((rc = luks_copy_in(io, fd, 0, probe)) < 0)
		goto fail;
	if ((rc = crypt_init(&cd, path)) < 0) {
		rc = err_set(rc, "luks: cannot open header copy: %s", luks_cs_msg);
		goto fail;
	}
	if ((rc = crypt_load(cd, CRYPT_LUKS2, NULL)) < 0) {
		rc = luks_load_error(rc, head, sizeof(head));
		goto fail;
	}

	uint64_t data_offset = crypt_get_data_offset(cd) * 512;
	const char *c = crypt_get_cipher(cd), *m = crypt_get_cipher_mode(cd);
	struct crypt_params_integrity ip = { 0 };
	int vk_size = crypt_get_volume_key_size(cd);
	int ss = crypt_get_sector_size(cd);
	if (data_offset < 2 * 4096 || data_offset > io->size || data_offset > LUKS_MAX_DATA_OFFSET) {
		rc = err_set(-EINVAL, "luks: LUKS2 header is invalid: data segment offset %llu "
			     "outside the container (%llu bytes)", (unsigned long long)data_offset,
			     (unsigned long long)io->size);
		goto fail;
	}
	if (crypt_get_integrity_info(cd, &ip) == 0 && ip.integrity) {
		rc = err_set(-ENOTSUP, "luks: authenticated encryption (integrity %s) is not supported",
			     ip.integrity);
		goto fail;
	}
	if (ss < 512 || ss > 4096 || (ss & (ss - 1)) || data_offset % (uint64_t)ss) {
		rc = err_set(-ENOTSUP, "luks: encryption sector size %d at data offset %llu is not "
			     "supported", ss, (unsigned long long)data_offset);
		goto fail;
	}
	if (!c || !m || snprintf(info->cipher, sizeof(info->cipher), "%s-%s", c, m) >=
			(int)sizeof(info->cipher) || !crypt_plugin_name_valid(info->cipher)) {
		rc = err_set(-ENOTSUP, "luks: cipher '%s-%s' has no plug-in name", c ? c : "?", m ? m : "?");
		goto fail;
	}
	if (vk_size <= 0 || vk_size > LUKS_KEY_MAX) {
		rc = err_set(-ENOTSUP, "luks: %d-byte volume key not supported", vk_size);
		goto fail;
	}
	/* The keyslot area lies between the metadata and the data segment. */
	if (data_offset > probe && (rc = luks_copy_in(io, fd, probe, data_offset)) < 0)
		goto fail;
	info->key_bits = (uint32_t)vk_size * 8;
	info->sector_size = (uint32_t)ss;
	info->data_offset = data_offset;
	snprintf(info->uuid, sizeof(info->uuid), "%s", crypt_get_uuid(cd) ? crypt_get_uuid(cd) : "");
	for (int slot = 0; slot < crypt_keyslot_max(CRYPT_LUKS2); slot++) {
		crypt_keyslot_info st = crypt_keyslot_status(cd, slot);
		if (st != CRYPT_SLOT_ACTIVE && st != CRYPT_SLOT_ACTIVE_LAST)
			continue;
		struct crypt_pbkdf_type pb;
		if (!info->keyslots++ && crypt_keyslot_get_pbkdf(cd, slot, &pb) == 0 && pb.type)
			snprintf(info->pbkdf, sizeof(info->pbkdf), "%s", pb.type);
	}
	*cdp = cd;
	*fdp = fd;
	return 0;
fail:
	crypt_free(cd);
	close(fd);
	return rc;
}

int luks_inspect(const struct luks_io *io, struct luks_info *out)
{
	struct crypt_device *cd;
	int fd, rc = luks_load(io, &cd, &fd, out);

	if (rc < 0)
		return rc;
	crypt_free(cd);
	close(fd);
	return 0;
}

int luks_unlock(const struct luks_io *io, const void *pass, size_t pass_len,
		struct luks_volume *out)
{
	struct crypt_device *cd;
	struct luks_info info;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if ((rc = luks_load(io, &cd, &fd, &info)) < 0)
		return rc;
	size_t vk_len = info.key_bits / 8;
	rc = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, (char *)out->key, &vk_len, pass, pass_len);
	if (rc == -EPERM) {
		rc = err_set(-EKEYREJECTED, "wrong passphrase: no LUKS2 keyslot opens with it");
		goto out;
	}
	if (rc < 0) {
		rc = err_set(rc, "luks: cannot unlock: %s", luks_cs_msg[0] ? luks_cs_msg : strerror(-rc));
		goto out;
	}
	memcpy(out->cipher, info.cipher, sizeof(out->cipher));
	out->key_len = (uint32_t)vk_len;
	out->sector_size = info.sector_size;
	out->data_offset = info.data_offset;
	log_debug("luks", "unlocked keyslot %d: %s, %u-bit key, data at %llu", rc, out->cipher,
		  out->key_len * 8, (unsigned long long)out->data_offset);
	rc = 0;
out:
	crypt_free(cd);
	close(fd);
	if (rc < 0)
		luks_volume_wipe(out);
	return rc;
}

void luks_volume_wipe(struct luks_volume *v)
{
	OPENSSL_cleanse(v->key, sizeof(v->key));
	v->key_len = 0;
}

int luks_read_key_file(const char *path, uint8_t **pass, size_t *len)
{
	/* O_NONBLOCK: opening a FIFO for reading blocks until a writer comes,
	 * before the type check below could refuse it; on a regular file the
	 * flag changes nothing. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return err_set(-errno, "key file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(-EINVAL, "key file %s: not a regular file (a %s)", path,
			       S_ISFIFO(st.st_mode) ? "FIFO" : S_ISDIR(st.st_mode) ? "directory" :
			       S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device" :
			       S_ISSOCK(st.st_mode) ? "socket" : "special file");
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > LUKS_KEY_FILE_MAX) {
		close(fd);
		return err_set(-EINVAL, "key file %s: not a regular file of at most %u bytes",
			       path, LUKS_KEY_FILE_MAX);
	}
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return err_set(-EIO, "key file %s: short read", path);
	}
	if (n == 0) {
		free(buf);
		return err_set(-EINVAL, "key file %s is empty", path);
	}
	*pass = buf;
	*len = (size_t)n;
	return 0;
}

void luks_passphrase_free(uint8_t *pass, size_t len)
{
	if (!pass)
		return;
	OPENSSL_cleanse(pass, len);
	free(pass);
}
