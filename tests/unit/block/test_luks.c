/* LUKS2 containers: create, unlock, wrong passphrase, damaged headers,
 * over a plain file through luks_io. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/crypt_plugin.h"
#include "vmm/plugin_loader.h"
#include "block/luks.h"
#include "util/error.h"

static int file_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	return pread(*(int *)opaque, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

static int file_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	return pwrite(*(int *)opaque, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

static int fd = -1;
static char path[] = "/tmp/vessel-test-luks-XXXXXX";
static struct luks_io io;

/* Cheap keyslots: these tests check the container, not the PBKDF cost. */
static const struct luks_params fast = { .pbkdf = "pbkdf2", .iterations = 1000 };

static void setup(void)
{
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4 << 20), 0);
	io = (struct luks_io){ .read = file_read, .write = file_write, .size = 4 << 20, .opaque = &fd };
}

static void teardown(void)
{
	close(fd);
	unlink(path);
}

static uint64_t file_checksum(void)
{
	static uint8_t buf[1 << 16];
	uint64_t h = 1469598103934665603ull;
	for (off_t off = 0; off < (off_t)io.size; off += sizeof(buf)) {
		cr_assert_eq(pread(fd, buf, sizeof(buf), off), (ssize_t)sizeof(buf));
		for (size_t i = 0; i < sizeof(buf); i++)
			h = (h ^ buf[i]) * 1099511628211ull;
	}
	return h;
}

TestSuite(luks, .init = setup, .fini = teardown);

Test(luks, format_then_unlock)
{
	struct luks_volume made, opened;
	uint8_t magic[6];

	cr_assert_eq(luks_format(&fast, "secret", 6, &io, &made), 0, "%s", err_msg());
	cr_assert_str_eq(made.cipher, "aes-xts-plain64");
	cr_assert_eq(made.key_len, 64);
	cr_assert_eq(made.data_offset, LUKS_NEW_DATA_OFFSET);
	/* LUKS2 binary header: magic, version 2 (On-Disk Format section 2.1). */
	cr_assert_eq(pread(fd, magic, 6, 0), 6);
	cr_assert_arr_eq(magic, ((uint8_t[]){ 'L', 'U', 'K', 'S', 0xba, 0xbe }), 6);

	cr_assert_eq(luks_unlock(&io, "secret", 6, &opened), 0, "%s", err_msg());
	cr_assert_str_eq(opened.cipher, made.cipher);
	cr_assert_eq(opened.key_len, 64);
	cr_assert_arr_eq(opened.key, made.key, 64);
	cr_assert_eq(opened.data_offset, made.data_offset);
	cr_assert_eq(opened.sector_size, 512);
	luks_volume_wipe(&opened);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(opened.key[i], 0);
}

Test(luks, fresh_keys_each_format)
{
	struct luks_volume a, b;

	cr_assert_eq(luks_format(&fast, "pw", 2, &io, &a), 0, "%s", err_msg());
	cr_assert_eq(luks_format(&fast, "pw", 2, &io, &b), 0, "%s", err_msg());
	cr_assert_arr_neq(a.key, b.key, 64);
}

Test(luks, wrong_passphrase_rejected_and_nothing_written)
{
	struct luks_volume v;

	cr_assert_eq(luks_format(&fast, "right", 5, &io, &v), 0, "%s", err_msg());
	uint64_t before = file_checksum();
	cr_assert_eq(luks_unlock(&io, "wrong", 5, &v), -EKEYREJECTED);
	cr_assert(strstr(err_msg(), "wrong passphrase"), "%s", err_msg());
	cr_assert_eq(v.key_len, 0);
	cr_assert_eq(file_checksum(), before);
	/* A prefix of the passphrase is a different passphrase. */
	cr_assert_eq(luks_unlock(&io, "righ", 4, &v), -EKEYREJECTED);
}

Test(luks, one_damaged_copy_is_survived_two_are_not)
{
	struct luks_volume v;
	uint8_t junk[512];

	cr_assert_eq(luks_format(&fast, "pw", 2, &io, &v), 0, "%s", err_msg());
	memset(junk, 0x41, sizeof(junk));
	/* Primary JSON area starts at 4096 (On-Disk Format section 2). */
	cr_assert_eq(pwrite(fd, junk, sizeof(junk), 4096), (ssize_t)sizeof(junk));
	cr_assert_eq(luks_unlock(&io, "pw", 2, &v), 0, "secondary copy should be used: %s", err_msg());
	/* Secondary copy at the metadata size (16 KiB for our containers). */
	cr_assert_eq(pwrite(fd, junk, sizeof(junk), 16384 + 4096), (ssize_t)sizeof(junk));
	cr_assert_eq(luks_unlock(&io, "pw", 2, &v), -EINVAL);
	cr_assert(strstr(err_msg(), "damaged"), "%s", err_msg());
}

Test(luks, not_a_container)
{
	struct luks_volume v;

	cr_assert_eq(luks_unlock(&io, "pw", 2, &v), -EINVAL);
	cr_assert(strstr(err_msg(), "not a LUKS2 container"), "%s", err_msg());
	io.size = 1024;
	cr_assert_eq(luks_unlock(&io, "pw", 2, &v), -EINVAL);
}

Test(luks, luks1_named)
{
	struct luks_volume v;
	uint8_t hdr[8] = { 'L', 'U', 'K', 'S', 0xba, 0xbe, 0, 1 };

	cr_assert_eq(pwrite(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	cr_assert_eq(luks_unlock(&io, "pw", 2, &v), -ENOTSUP);
	cr_assert(strstr(err_msg(), "LUKS1"), "%s", err_msg());
}

Test(luks, format_refuses_bad_requests)
{
	struct luks_volume v;
	struct luks_params p = fast;

	cr_assert_eq(luks_format(&fast, "", 0, &io, &v), -EINVAL);
	p.cipher = "aes";
	cr_assert_eq(luks_format(&p, "pw", 2, &io, &v), -EINVAL);
	p.cipher = "nosuch-cipher";
	cr_assert_eq(luks_format(&p, "pw", 2, &io, &v), -ENOENT);
	p = fast;
	p.pbkdf = "md5";
	cr_assert_eq(luks_format(&p, "pw", 2, &io, &v), -EINVAL);
	io.size = LUKS_NEW_DATA_OFFSET;
	cr_assert_eq(luks_format(&fast, "pw", 2, &io, &v), -ENOSPC);
	/* Nothing was written by any refused request. */
	uint8_t head[16], zero[16] = { 0 };
	cr_assert_eq(pread(fd, head, sizeof(head), 0), (ssize_t)sizeof(head));
	cr_assert_arr_eq(head, zero, sizeof(head));
}

/* The block layer finds plug-in files through the VMM's loader, as
 * main() installs it. */
__attribute__((constructor)) static void install_loader(void)
{
	plugin_loader_install_crypt();
}

/* The data segment's cipher comes from a plug-in (the example
 * aes-cbc-plain64), the keyslot is still AES-XTS inside libcryptsetup. */
Test(luks, plugin_cipher_for_data_aes_for_keyslot)
{
	static const char *const dirs[] = { CRYPT_TEST_PLUGIN_DIR };
	struct luks_params p = fast;
	struct luks_volume made, opened;

	p.cipher = "aes-cbc-plain64";
	p.key_bytes = 32;
	cr_assert_eq(luks_format(&p, "pw", 2, &io, &made), -ENOENT, "plug-in not yet on the path");
	cr_assert_eq(crypt_plugin_set_dirs(dirs, 1), 0);
	cr_assert_eq(luks_format(&p, "pw", 2, &io, &made), 0, "%s", err_msg());
	cr_assert_eq(luks_unlock(&io, "pw", 2, &opened), 0, "%s", err_msg());
	cr_assert_str_eq(opened.cipher, "aes-cbc-plain64");
	cr_assert_eq(opened.key_len, 32);
	cr_assert_arr_eq(opened.key, made.key, 32);
	crypt_plugin_set_dirs(NULL, 0);
}

Test(luks, key_file_is_exact_bytes)
{
	char kpath[] = "/tmp/vessel-test-key-XXXXXX";
	int kfd = mkstemp(kpath);
	uint8_t *pass;
	size_t len;

	cr_assert_geq(kfd, 0);
	cr_assert_eq(write(kfd, "pass\n\0x", 7), 7);
	close(kfd);
	cr_assert_eq(luks_read_key_file(kpath, &pass, &len), 0, "%s", err_msg());
	cr_assert_eq(len, 7);
	cr_assert_arr_eq(pass, "pass\n\0x", 7);
	luks_passphrase_free(pass, len);
	truncate(kpath, 0);
	cr_assert_eq(luks_read_key_file(kpath, &pass, &len), -EINVAL);
	unlink(kpath);
	cr_assert_eq(luks_read_key_file(kpath, &pass, &len), -ENOENT);
}

/* The header's facts without the passphrase; damage is reported the same
 * way as when unlocking. */
Test(luks, inspect_without_passphrase)
{
	struct luks_volume v;
	struct luks_info info;
	struct luks_params p = fast;

	p.sector_size = 4096;
	cr_assert_eq(luks_format(&p, "pw", 2, &io, &v), 0, "%s", err_msg());
	cr_assert_eq(luks_inspect(&io, &info), 0, "%s", err_msg());
	cr_assert_str_eq(info.cipher, "aes-xts-plain64");
	cr_assert_eq(info.key_bits, 512);
	cr_assert_eq(info.sector_size, 4096);
	cr_assert_eq(info.data_offset, LUKS_NEW_DATA_OFFSET);
	cr_assert_eq(info.keyslots, 1);
	cr_assert_str_eq(info.pbkdf, "pbkdf2");
	cr_assert_eq(strlen(info.uuid), 36);
	uint8_t junk[4096];
	memset(junk, 0x41, sizeof(junk));
	cr_assert_eq(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	cr_assert_eq(pwrite(fd, junk, sizeof(junk), 16384), (ssize_t)sizeof(junk));
	cr_assert_eq(luks_inspect(&io, &info), -EINVAL);
}

/* Hostile headers: random damage anywhere in the header area never
 * crashes or writes, and gives one of the documented answers. */
Test(luks, random_header_damage)
{
	struct luks_volume v;
	uint64_t rng = 0x243f6a8885a308d3ull;
	static uint8_t pristine[64 << 10];

	cr_assert_eq(luks_format(&fast, "pw", 2, &io, &v), 0, "%s", err_msg());
	cr_assert_eq(pread(fd, pristine, sizeof(pristine), 0), (ssize_t)sizeof(pristine));
	int opened = 0, refused = 0;
	for (int iter = 0; iter < 40; iter++) {
		cr_assert_eq(pwrite(fd, pristine, sizeof(pristine), 0), (ssize_t)sizeof(pristine));
		int flips = 1 + (int)((rng >> 40) % 16);
		for (int k = 0; k < flips; k++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			/* Mostly the binary headers and JSON of both copies. */
			off_t off = (off_t)((rng >> 33) % (iter % 2 ? 32768 : 8192));
			if (iter % 3 == 2)
				off += 16384;
			uint8_t b = (uint8_t)(rng >> 24);
			cr_assert_eq(pwrite(fd, &b, 1, off), 1);
		}
		uint64_t before = file_checksum();
		int rc = luks_unlock(&io, "pw", 2, &v);
		cr_assert(rc == 0 || rc == -EINVAL || rc == -ENOTSUP || rc == -EKEYREJECTED,
			  "iteration %d: unexpected %d (%s)", iter, rc, err_msg());
		cr_assert_eq(file_checksum(), before, "iteration %d wrote to the container", iter);
		if (rc == 0) {
			cr_assert_str_eq(v.cipher, "aes-xts-plain64");
			opened++;
		} else {
			refused++;
		}
	}
	/* Both outcomes occur: one damaged copy is survived, two are not. */
	cr_assert_gt(opened, 0);
	cr_assert_gt(refused, 0);
}

/* A header that puts the data segment beyond the container is refused. */
Test(luks, data_offset_outside_container)
{
	struct luks_volume v;

	cr_assert_eq(luks_format(&fast, "pw", 2, &io, &v), 0, "%s", err_msg());
	io.size = LUKS_NEW_DATA_OFFSET - 4096;   /* the container looks truncated */
	int rc = luks_unlock(&io, "pw", 2, &v);
	cr_assert(rc == -EINVAL, "%d %s", rc, err_msg());
}
