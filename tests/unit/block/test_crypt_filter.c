/* Encryption filters over real block stacks: LUKS2 over raw and over
 * dynamic VHD, the plain filter, wrong passphrase, concurrent requests.
 * What reaches the image is checked by decrypting it independently of
 * the filter (luks_unlock + the cipher on the image's own sectors). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "block/crypt_disk.h"
#include "block/crypt_filter.h"
#include "block/crypt_plugin.h"
#include "block/luks.h"
#include "util/error.h"

static char dir[] = "/tmp/vessel-test-cfilt-XXXXXX";
static char img[512], keyf[512], spec[1200];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(keyf, sizeof(keyf), "%s/pass", dir);
	FILE *f = fopen(keyf, "w");
	cr_assert_not_null(f);
	fputs("correct horse\n", f);
	fclose(f);
	snprintf(spec, sizeof(spec), "luks:key-file=%s", keyf);
	cr_assert_eq(crypt_filters_register(), 0, "%s", err_msg());
}

static void teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(crypt_filter, .init = setup, .fini = teardown);

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 31 + seed + (i >> 9));
}

/* Creates `format` image with `payload` data sectors and a LUKS2 header
 * with `sector_size`-byte encryption sectors. */
static void make_encrypted_ss(const char *format, uint64_t payload, uint32_t sector_size)
{
	struct block_create_opts co = {
		.format = format,
		.sub = strcmp(format, "vhd") == 0 ? BLOCK_SUB_DYNAMIC : BLOCK_SUB_DEFAULT,
		.size = (payload + crypt_filter_luks.overhead_sectors(NULL)) * 512,
		.exact_size = true,
	};
	struct block_dev *lower;
	char opts[700];

	cr_assert_eq(block_create(img, &co), 0, "%s", err_msg());
	cr_assert_eq(block_open(img, format, 0, &lower), 0, "%s", err_msg());
	snprintf(opts, sizeof(opts), "key-file=%s,pbkdf=pbkdf2,pbkdf-iterations=1000,sector-size=%u",
		 keyf, sector_size);
	cr_assert_eq(crypt_filter_luks.format(lower, opts, payload), 0, "%s", err_msg());
	block_close(lower);
}

static void make_encrypted(const char *format, uint64_t payload)
{
	make_encrypted_ss(format, payload, 512);
}

static struct block_dev *open_encrypted(const char *format)
{
	struct block_open_spec s = { .path = img, .format = format, .filter = spec };
	struct block_dev *bd;

	cr_assert_eq(block_open_stack(&s, &bd), 0, "%s", err_msg());
	return bd;
}

static int lower_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	return block_read(opaque, off / 512, buf, (uint32_t)(len / 512));
}

static int no_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	cr_assert_fail("unlocking must not write");
	return -EIO;
}

static uint64_t file_checksum(const char *path)
{
	uint8_t buf[4096];
	uint64_t h = 1469598103934665603ull;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ull;
	close(fd);
	return h;
}

/* Reads data sectors of the container from the bare format device and
 * decrypts them with the volume key taken from the header: an
 * independent path from the filter's. */
static void independent_decrypt(const char *format, uint64_t sector, uint8_t *out, uint32_t n)
{
	struct block_dev *lower;
	struct luks_volume v;
	struct crypt_cipher *c;
	uint8_t *pass;
	size_t len;

	cr_assert_eq(block_open(img, format, BLOCK_OPEN_RDONLY, &lower), 0, "%s", err_msg());
	cr_assert_eq(luks_read_key_file(keyf, &pass, &len), 0);
	struct luks_io io = { .read = lower_read, .write = no_write, .size = lower->sectors * 512,
			      .opaque = lower };
	cr_assert_eq(luks_unlock(&io, pass, len, &v), 0, "%s", err_msg());
	luks_passphrase_free(pass, len);
	cr_assert_str_eq(v.cipher, "aes-xts-plain64");
	cr_assert_eq(v.data_offset, LUKS_NEW_DATA_OFFSET);
	uint32_t u = v.sector_size / 512;
	cr_assert_eq(sector % u, 0);
	cr_assert_eq(n % u, 0);
	cr_assert_eq(crypt_cipher_new(v.cipher, v.key, v.key_len, v.sector_size, NULL, 0, &c), 0);
	luks_volume_wipe(&v);
	cr_assert_eq(block_read(lower, LUKS_NEW_DATA_OFFSET / 512 + sector, out, n), 0, "%s", err_msg());
	cr_assert_eq(crypt_cipher_decrypt(c, sector, out, n / u), 0);
	crypt_cipher_free(c);
	block_close(lower);
}

static void round_trip(const char *format)
{
	enum { N = 8 };
	uint8_t w[N * 512], r[N * 512], raw[N * 512];

	make_encrypted(format, 4096);
	struct block_dev *bd = open_encrypted(format);
	cr_assert_eq(bd->sectors, 4096, "data sectors %llu", (unsigned long long)bd->sectors);
	fill(w, sizeof(w), 1);
	cr_assert_eq(block_write(bd, 0, w, N), 0, "%s", err_msg());
	cr_assert_eq(block_write(bd, 4096 - N, w, N), 0, "%s", err_msg());
	/* The caller's buffer stays plaintext after a write. */
	fill(r, sizeof(r), 1);
	cr_assert_arr_eq(r, w, sizeof(w));
	memset(r, 0, sizeof(r));
	cr_assert_eq(block_read(bd, 4096 - N, r, N), 0, "%s", err_msg());
	cr_assert_arr_eq(r, w, sizeof(w));
	cr_assert_eq(block_read(bd, 4096, r, 1), -EINVAL, "past the end of the data segment");
	cr_assert_eq(block_flush(bd), 0);
	block_close(bd);

	/* The image holds ciphertext, which the header's key decrypts. */
	struct block_dev *lower;
	cr_assert_eq(block_open(img, format, BLOCK_OPEN_RDONLY, &lower), 0);
	cr_assert_eq(block_read(lower, LUKS_NEW_DATA_OFFSET / 512, raw, N), 0);
	block_close(lower);
	cr_assert_arr_neq(raw, w, sizeof(w));
	independent_decrypt(format, 4096 - N, r, N);
	cr_assert_arr_eq(r, w, sizeof(w));

	/* And the data survives close and reopen. */
	bd = open_encrypted(format);
	memset(r, 0, sizeof(r));
	cr_assert_eq(block_read(bd, 0, r, N), 0, "%s", err_msg());
	cr_assert_arr_eq(r, w, sizeof(w));
	block_close(bd);
}

Test(crypt_filter, luks_over_raw)
{
	round_trip("raw");
}

Test(crypt_filter, luks_over_dynamic_vhd)
{
	round_trip("vhd");
}

Test(crypt_filter, wrong_passphrase_opens_nothing_and_writes_nothing)
{
	char bad[600], badspec[700];

	make_encrypted("raw", 64);
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	FILE *f = fopen(bad, "w");
	fputs("correct horse", f); /* no newline: another passphrase */
	fclose(f);
	snprintf(badspec, sizeof(badspec), "luks:key-file=%s", bad);
	uint64_t before = file_checksum(img);
	struct block_open_spec s = { .path = img, .format = "raw", .filter = badspec };
	struct block_dev *bd = NULL;
	cr_assert_eq(block_open_stack(&s, &bd), -EKEYREJECTED);
	cr_assert(strstr(err_msg(), "wrong passphrase"), "%s", err_msg());
	cr_assert_eq(file_checksum(img), before);
	s.filter = "luks";
	cr_assert_eq(block_open_stack(&s, &bd), -EINVAL);
	cr_assert(strstr(err_msg(), "key file"), "%s", err_msg());
	s.filter = "luks:key-file=/nonexistent/key";
	cr_assert_eq(block_open_stack(&s, &bd), -ENOENT);
	s.filter = "luks:color=blue";
	cr_assert_eq(block_open_stack(&s, &bd), -EINVAL);
	cr_assert(strstr(err_msg(), "unknown encryption option 'color'"), "%s", err_msg());
	cr_assert_eq(file_checksum(img), before);
}

Test(crypt_filter, unencrypted_disk_is_refused_and_detected)
{
	struct block_create_opts co = { .format = "raw", .size = 4 << 20 };
	struct block_dev *lower;

	cr_assert_eq(block_create(img, &co), 0, "%s", err_msg());
	cr_assert_eq(block_open(img, "raw", 0, &lower), 0);
	cr_assert_not(crypt_luks_detect(lower));
	block_close(lower);
	struct block_open_spec s = { .path = img, .format = "raw", .filter = spec };
	struct block_dev *bd;
	cr_assert_eq(block_open_stack(&s, &bd), -EINVAL);
	cr_assert(strstr(err_msg(), "not a LUKS2 container"), "%s", err_msg());
	unlink(img);
	make_encrypted("vhd", 64);
	cr_assert_eq(block_open(img, "vhd", 0, &lower), 0);
	cr_assert(crypt_luks_detect(lower));
	block_close(lower);
}

Test(crypt_filter, format_needs_room)
{
	struct block_create_opts co = { .format = "raw", .size = 4 << 20 };
	struct block_dev *lower;
	char opts[700];

	cr_assert_eq(block_create(img, &co), 0, "%s", err_msg());
	cr_assert_eq(block_open(img, "raw", 0, &lower), 0);
	snprintf(opts, sizeof(opts), "key-file=%s,pbkdf=pbkdf2,pbkdf-iterations=1000", keyf);
	cr_assert_eq(crypt_filter_luks.format(lower, opts, 8192), -ENOSPC);
	cr_assert_eq(crypt_filter_luks.format(lower, "key-size=300", 8), -EINVAL);
	block_close(lower);
}

/* Writes larger than the bounce buffer are split but stay one request. */
Test(crypt_filter, large_requests)
{
	const uint32_t n = 5000;
	uint8_t *w = malloc(n * 512), *r = malloc(n * 512);

	make_encrypted("raw", n + 10);
	struct block_dev *bd = open_encrypted("raw");
	fill(w, (size_t)n * 512, 9);
	cr_assert_eq(block_write(bd, 3, w, n), 0, "%s", err_msg());
	cr_assert_eq(block_read(bd, 3, r, n), 0, "%s", err_msg());
	cr_assert_arr_eq(r, w, (size_t)n * 512);
	block_close(bd);
	independent_decrypt("raw", 3 + n - 100, r, 100);
	cr_assert_arr_eq(r, w + (size_t)(n - 100) * 512, 100 * 512);
	free(w);
	free(r);
}

/* The plain filter: no header, raw volume key from the key file. */
Test(crypt_filter, plain_filter_uses_raw_key)
{
	struct block_create_opts co = { .format = "raw", .size = 1 << 20 };
	uint8_t key[64], w[1024], r[1024];
	char pspec[700];

	for (int i = 0; i < 64; i++)
		key[i] = (uint8_t)(i * 3 + 1);
	FILE *f = fopen(keyf, "w");
	fwrite(key, 1, sizeof(key), f);
	fclose(f);
	cr_assert_eq(block_create(img, &co), 0, "%s", err_msg());
	snprintf(pspec, sizeof(pspec), "plain:cipher=aes-xts-plain64,key-file=%s", keyf);
	struct block_open_spec s = { .path = img, .format = "raw", .filter = pspec };
	struct block_dev *bd;
	cr_assert_eq(block_open_stack(&s, &bd), 0, "%s", err_msg());
	cr_assert_eq(bd->sectors, 2048);
	fill(w, sizeof(w), 4);
	cr_assert_eq(block_write(bd, 10, w, 2), 0, "%s", err_msg());
	block_close(bd);
	int fd = open(img, O_RDONLY);
	cr_assert_eq(pread(fd, r, sizeof(r), 10 * 512), (ssize_t)sizeof(r));
	close(fd);
	struct crypt_cipher *c;
	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, 512, NULL, 0, &c), 0);
	cr_assert_eq(crypt_cipher_decrypt(c, 10, r, 2), 0);
	crypt_cipher_free(c);
	cr_assert_arr_eq(r, w, sizeof(w));
}

struct qreq {
	struct block_req req;
	struct iovec iov;
	uint8_t buf[4 * 512];
	int ret;
};

static void qdone(struct block_req *req, int ret)
{
	((struct qreq *)req->opaque)->ret = ret;
}

static void qdone_int(struct block_req *req, int ret)
{
	*(int *)req->opaque = ret;
}

/* Concurrent requests through the queue's worker threads. */
Test(crypt_filter, concurrent_queue_requests)
{
	enum { NREQ = 64 };
	static struct qreq q[NREQ];
	struct block_queue *queue;

	make_encrypted("raw", NREQ * 4);
	struct block_dev *bd = open_encrypted("raw");
	cr_assert_eq(block_queue_new(bd, 4, 0, &queue), 0, "%s", err_msg());
	for (int i = 0; i < NREQ; i++) {
		fill(q[i].buf, sizeof(q[i].buf), (unsigned)i);
		q[i].iov = (struct iovec){ q[i].buf, sizeof(q[i].buf) };
		q[i].req = (struct block_req){ .op = BLOCK_OP_WRITE, .sector = (uint64_t)i * 4,
					       .iov = &q[i].iov, .iovcnt = 1, .done = qdone,
					       .opaque = &q[i] };
		q[i].ret = 1;
		cr_assert_eq(block_queue_submit(queue, &q[i].req), 0, "%s", err_msg());
	}
	block_queue_drain(queue);
	for (int i = 0; i < NREQ; i++) {
		cr_assert_eq(q[i].ret, 0);
		memset(q[i].buf, 0, sizeof(q[i].buf));
		q[i].req.op = BLOCK_OP_READ;
		q[i].ret = 1;
		cr_assert_eq(block_queue_submit(queue, &q[i].req), 0);
	}
	block_queue_drain(queue);
	block_queue_free(queue);
	block_close(bd);
	for (int i = 0; i < NREQ; i++) {
		uint8_t want[4 * 512];
		fill(want, sizeof(want), (unsigned)i);
		cr_assert_eq(q[i].ret, 0);
		cr_assert_arr_eq(q[i].buf, want, sizeof(want), "request %d", i);
	}
}

/* Never-written sectors read as zeros through the filter. */
Test(crypt_filter, fresh_disk_reads_zeros)
{
	uint8_t r[16 * 512], zero[16 * 512] = { 0 };

	make_encrypted("vhd", 4096);
	struct block_dev *bd = open_encrypted("vhd");
	memset(r, 0xee, sizeof(r));
	cr_assert_eq(block_read(bd, 100, r, 16), 0, "%s", err_msg());
	cr_assert_arr_eq(r, zero, sizeof(r));
	/* A mix of written and unwritten sectors in one request. */
	fill(r, 512, 3);
	cr_assert_eq(block_write(bd, 105, r, 1), 0);
	uint8_t want[512];
	fill(want, 512, 3);
	cr_assert_eq(block_read(bd, 100, r, 16), 0);
	cr_assert_arr_eq(r, zero, 5 * 512);
	cr_assert_arr_eq(r + 5 * 512, want, 512);
	cr_assert_arr_eq(r + 6 * 512, zero, 10 * 512);
	block_close(bd);
}

/* One read over runs of written sectors of several lengths (1, 4 and 9:
 * decrypted in place, four units at a time and one by one) between
 * never-written holes, each sector with its own data, from several
 * threads at once through the queue. */
Test(crypt_filter, mixed_runs_decrypt_in_place)
{
	enum { SPAN = 24, NREQ = 16 };
	static const struct { uint32_t at, n; } runs[] = { { 1, 1 }, { 3, 4 }, { 8, 9 }, { 18, 5 } };
	static uint8_t want[SPAN * 512], r[NREQ][SPAN * 512];
	static struct block_req req[NREQ];
	static struct iovec iov[NREQ];
	static int ret[NREQ];
	struct block_queue *queue;

	make_encrypted("vhd", 4096);
	struct block_dev *bd = open_encrypted("vhd");
	memset(want, 0, sizeof(want));
	for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); k++) {
		fill(want + runs[k].at * 512, runs[k].n * 512, (unsigned)k + 7);
		cr_assert_eq(block_write(bd, 200 + runs[k].at, want + runs[k].at * 512, runs[k].n), 0,
			     "%s", err_msg());
	}
	cr_assert_eq(block_queue_new(bd, 4, 0, &queue), 0, "%s", err_msg());
	for (int i = 0; i < NREQ; i++) {
		memset(r[i], 0xee, sizeof(r[i]));
		iov[i] = (struct iovec){ r[i], sizeof(r[i]) };
		ret[i] = 1;
		req[i] = (struct block_req){ .op = BLOCK_OP_READ, .sector = 200, .iov = &iov[i],
					     .iovcnt = 1, .done = qdone_int, .opaque = &ret[i] };
		cr_assert_eq(block_queue_submit(queue, &req[i]), 0, "%s", err_msg());
	}
	block_queue_drain(queue);
	block_queue_free(queue);
	block_close(bd);
	for (int i = 0; i < NREQ; i++) {
		cr_assert_eq(ret[i], 0, "request %d", i);
		for (int s = 0; s < SPAN; s++)
			cr_assert_arr_eq(r[i] + s * 512, want + s * 512, 512, "request %d sector %d", i, s);
	}
}

/* crypt_disk: create an encrypted image, convert plain -> encrypted ->
 * plain and compare, and a wrong passphrase leaves no output file. */
Test(crypt_filter, create_and_convert_both_ways)
{
	char plain[600], enc[600], back[600], encspec[800], opts[800];
	uint8_t w[64 * 512], r[64 * 512];
	struct block_dev *bd;

	snprintf(plain, sizeof(plain), "%s/plain.img", dir);
	snprintf(enc, sizeof(enc), "%s/enc.vhd", dir);
	snprintf(back, sizeof(back), "%s/back.img", dir);
	struct block_create_opts raw = { .format = "raw", .size = 1 << 20 };
	cr_assert_eq(block_create(plain, &raw), 0, "%s", err_msg());
	cr_assert_eq(block_open(plain, "raw", 0, &bd), 0);
	fill(w, sizeof(w), 7);
	cr_assert_eq(block_write(bd, 1000, w, 64), 0);
	block_close(bd);

	snprintf(opts, sizeof(opts), "luks:key-file=%s,pbkdf=pbkdf2,pbkdf-iterations=1000", keyf);
	struct block_open_spec src = { .path = plain, .format = "raw" };
	struct block_create_opts vhd = { .format = "vhd", .sub = BLOCK_SUB_DYNAMIC, .exact_size = true };
	cr_assert_eq(crypt_disk_convert(&src, enc, &vhd, opts, NULL, NULL), 0, "%s", err_msg());

	snprintf(encspec, sizeof(encspec), "luks:key-file=%s", keyf);
	struct block_open_spec es = { .path = enc, .format = "vhd", .filter = encspec };
	cr_assert_eq(block_open_stack(&es, &bd), 0, "%s", err_msg());
	cr_assert_eq(bd->sectors, 2048);
	cr_assert_eq(block_read(bd, 1000, r, 64), 0);
	cr_assert_arr_eq(r, w, sizeof(w));
	block_close(bd);

	cr_assert_eq(crypt_disk_convert(&es, back, &raw, NULL, NULL, NULL), 0, "%s", err_msg());
	cr_assert_eq(file_checksum(back), file_checksum(plain));

	/* Wrong passphrase: refused before the output is created. */
	unlink(back);
	FILE *f = fopen(keyf, "w");
	fputs("nope", f);
	fclose(f);
	int rc = crypt_disk_convert(&es, back, &raw, NULL, NULL, NULL);
	cr_assert_eq(rc, -EKEYREJECTED);
	cr_assert(crypt_disk_is_input_error(rc));
	cr_assert_neq(access(back, F_OK), 0, "no output file after a refused passphrase");

	/* crypt_disk_create: size is the data size; the header comes on top. */
	char made[600];
	snprintf(made, sizeof(made), "%s/made.img", dir);
	struct block_create_opts sz = { .format = "raw", .size = 3 << 20 };
	f = fopen(keyf, "w");
	fputs("pw", f);
	fclose(f);
	cr_assert_eq(crypt_disk_create(made, &sz, opts), 0, "%s", err_msg());
	struct block_open_spec ms = { .path = made, .format = "raw", .filter = encspec };
	cr_assert_eq(block_open_stack(&ms, &bd), 0, "%s", err_msg());
	cr_assert_eq(bd->sectors, (3 << 20) / 512);
	block_close(bd);
	unlink(made);
	cr_assert_eq(crypt_disk_create(made, &sz, "luks:pbkdf=md5"), -EINVAL);
	cr_assert_neq(access(made, F_OK), 0, "failed create leaves no file");
}

/* 4096-byte encryption sectors: any 512-byte request works (partial units
 * are read-modify-written), the image holds 4096-byte XTS units numbered
 * in 512-byte sectors, and concurrent writes of different 512-byte
 * sectors of one unit do not lose each other. */
Test(crypt_filter, large_encryption_sectors)
{
	enum { TOTAL = 256 };
	static uint8_t shadow[TOTAL * 512], r[TOTAL * 512], w[TOTAL * 512];
	const struct { uint32_t s, n; } ops[] = {
		{ 0, 8 }, { 3, 1 }, { 7, 2 }, { 13, 30 }, { 64, 64 }, { 130, 5 }, { 255, 1 }, { 100, 3 },
	};

	make_encrypted_ss("raw", TOTAL, 4096);
	struct block_dev *bd = open_encrypted("raw");
	cr_assert_eq(bd->sectors, TOTAL);
	memset(shadow, 0, sizeof(shadow));
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		fill(w, (size_t)ops[i].n * 512, 50 + (unsigned)i);
		cr_assert_eq(block_write(bd, ops[i].s, w, ops[i].n), 0, "%s", err_msg());
		memcpy(shadow + (size_t)ops[i].s * 512, w, (size_t)ops[i].n * 512);
	}
	for (uint32_t s = 0; s < TOTAL; s += 37) {
		uint32_t n = TOTAL - s < 19 ? TOTAL - s : 19;
		cr_assert_eq(block_read(bd, s, r, n), 0, "%s", err_msg());
		cr_assert_arr_eq(r, shadow + (size_t)s * 512, (size_t)n * 512, "read at %u", s);
	}
	block_close(bd);
	/* Units the writes touched (never-written ones hold zeros, not ciphertext). */
	independent_decrypt("raw", 0, r, 48);
	cr_assert_arr_eq(r, shadow, 48 * 512);
	independent_decrypt("raw", 64, r, 72);
	cr_assert_arr_eq(r, shadow + 64 * 512, 72 * 512);
	independent_decrypt("raw", 248, r, 8);
	cr_assert_arr_eq(r, shadow + 248 * 512, 8 * 512);

	/* One-sector writes into the same units from 4 worker threads. */
	struct block_queue *queue;
	static struct qreq q[64];
	bd = open_encrypted("raw");
	cr_assert_eq(block_queue_new(bd, 4, 0, &queue), 0);
	for (int i = 0; i < 64; i++) {
		fill(q[i].buf, 512, 900 + (unsigned)i);
		q[i].iov = (struct iovec){ q[i].buf, 512 };
		q[i].req = (struct block_req){ .op = BLOCK_OP_WRITE, .sector = 128 + (uint64_t)i,
					       .iov = &q[i].iov, .iovcnt = 1, .done = qdone, .opaque = &q[i] };
		cr_assert_eq(block_queue_submit(queue, &q[i].req), 0);
	}
	block_queue_drain(queue);
	block_queue_free(queue);
	cr_assert_eq(block_read(bd, 128, r, 64), 0);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(q[i].ret, 0);
		fill(w, 512, 900 + (unsigned)i);
		cr_assert_arr_eq(r + (size_t)i * 512, w, 512, "sector %d lost", 128 + i);
	}
	block_close(bd);
}

/* A manifest disk with key_file opens decrypted; without, as it is. */
Test(crypt_filter, vm_disk_with_key_file)
{
	uint8_t w[512], r[512];
	struct block_dev *bd;

	make_encrypted("vhd", 64);
	bd = open_encrypted("vhd");
	fill(w, sizeof(w), 77);
	cr_assert_eq(block_write(bd, 5, w, 1), 0);
	block_close(bd);

	struct vm_disk_config d = { .path = img, .key_file = keyf };
	const char *no_dirs[1] = { NULL };
	cr_assert_eq(crypt_disk_open_vm(no_dirs, 0, &d, &bd), 0, "%s", err_msg());
	cr_assert_eq(bd->sectors, 64);
	cr_assert_eq(block_read(bd, 5, r, 1), 0);
	cr_assert_arr_eq(r, w, sizeof(w));
	block_close(bd);

	d.key_file = NULL;
	d.readonly = true;
	cr_assert_eq(crypt_disk_open_vm(NULL, 0, &d, &bd), 0, "%s", err_msg());
	cr_assert_eq(bd->sectors, 64 + LUKS_NEW_DATA_OFFSET / 512);
	cr_assert(crypt_luks_detect(bd));
	cr_assert_eq(block_write(bd, 0, w, 1), -EROFS);
	block_close(bd);

	char bad[600];
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	FILE *f = fopen(bad, "w");
	fputs("nope", f);
	fclose(f);
	d.key_file = bad;
	cr_assert_eq(crypt_disk_open_vm(NULL, 0, &d, &bd), -EKEYREJECTED);
}

/* O_DIRECT under the filter: the bounce buffer is aligned, partial
 * encryption sectors go through a stack buffer that the file layer
 * bounces; data must round-trip either way. */
Test(crypt_filter, direct_io)
{
	uint8_t *w = aligned_alloc(4096, 64 * 512), *r = aligned_alloc(4096, 64 * 512);
	make_encrypted_ss("raw", 128, 4096);
	struct block_open_spec s = { .path = img, .format = "raw", .flags = BLOCK_OPEN_DIRECT, .filter = spec };
	struct block_dev *bd;
	int rc = block_open_stack(&s, &bd);
	if (rc == -EINVAL && strstr(err_msg(), "O_DIRECT"))
		cr_skip_test("the file system under /tmp has no O_DIRECT");
	cr_assert_eq(rc, 0, "%s", err_msg());
	fill(w, 64 * 512, 31);
	cr_assert_eq(block_write(bd, 0, w, 64), 0, "%s", err_msg());
	cr_assert_eq(block_write(bd, 67, w + 512, 3), 0, "%s", err_msg());   /* partial units */
	cr_assert_eq(block_flush(bd), 0);
	cr_assert_eq(block_read(bd, 0, r, 64), 0, "%s", err_msg());
	cr_assert_arr_eq(r, w, 64 * 512);
	cr_assert_eq(block_read(bd, 67, r + 1, 3), 0, "%s", err_msg());    /* unaligned memory */
	cr_assert_arr_eq(r + 1, w + 512, 3 * 512);
	block_close(bd);
	free(w);
	free(r);
}
