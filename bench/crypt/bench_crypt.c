/* Throughput of the encryption filter against the same I/O without it.
 *
 *   bench-crypt [MiB] [request-KiB] [direct]
 *
 * 1. the cipher alone (aes-xts-plain64, in place, one thread), on each
 *    implementation the CPU runs, in 4 KiB and 1 MiB calls;
 * 2. sequential writes then reads of MiB through a raw image, plain and
 *    under the luks filter, from one thread (host page cache: this
 *    measures the block layer's CPU cost, which is what encryption adds);
 * 3. the same through a block queue with 4 workers (several requests in
 *    flight, as virtio-blk issues them).
 * With "direct" the image is opened O_DIRECT (no host page cache), which
 * is what a disk of a running VM sees on real storage.
 * Prints MB/s and the encrypted/plain ratio.  Not a test: no assertions. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "block/crypt_aes_xts.h"
#include "block/crypt_disk.h"
#include "block/crypt_filter.h"
#include "block/crypt_plugin.h"
#include "util/error.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The cipher alone on one implementation (crypt_aes_xts.h), in place,
 * in calls of `call` bytes of 512-byte sectors, one thread; MB/s. */
static double bench_cipher(enum crypt_aes_xts_path path, size_t bytes, size_t call, bool enc)
{
	uint8_t key[64], *buf = malloc(1 << 20);
	struct crypt_cipher *c;
	const uint32_t n = (uint32_t)(call / 512);

	for (int i = 0; i < 64; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	memset(buf, 0x5a, 1 << 20);
	if (crypt_aes_xts_select(path) < 0 ||
	    crypt_cipher_new("aes-xts-plain64", key, 64, 512, NULL, 0, &c) < 0) {
		fprintf(stderr, "%s\n", err_msg());
		exit(1);
	}
	crypt_aes_xts_select(CRYPT_AES_XTS_AUTO);
	double t0 = now();
	for (size_t done = 0, s = 0; done < bytes; done += call, s += n) {
		uint8_t *p = buf + (done & ((1 << 20) - 1));
		if (enc)
			crypt_cipher_encrypt(c, s, p, n);
		else
			crypt_cipher_decrypt(c, s, p, n);
	}
	double t = now() - t0;
	crypt_cipher_free(c);
	free(buf);
	return (double)bytes / t / 1e6;
}

struct qctx {
	struct block_req req;
	struct iovec iov;
	int ret;
};

static void qdone(struct block_req *req, int ret)
{
	((struct qctx *)req->opaque)->ret = ret;
}

/* Sequential pass of `op` over the device; returns MB/s. */
static double pass(struct block_dev *bd, enum block_op op, uint64_t bytes, uint32_t req_sectors,
		   unsigned workers, uint8_t *buf)
{
	uint64_t total = bytes / 512;
	double t0 = now();

	if (!workers) {
		for (uint64_t s = 0; s < total; s += req_sectors) {
			int rc = op == BLOCK_OP_WRITE ? block_write(bd, s, buf, req_sectors)
						      : block_read(bd, s, buf, req_sectors);
			if (rc < 0) {
				fprintf(stderr, "%s\n", err_msg());
				exit(1);
			}
		}
	} else {
		enum { INFLIGHT = 16 };
		struct block_queue *q;
		struct qctx ctx[INFLIGHT];
		if (block_queue_new(bd, workers, 0, &q) < 0) {
			fprintf(stderr, "%s\n", err_msg());
			exit(1);
		}
		for (uint64_t s = 0; s < total; s += (uint64_t)req_sectors * INFLIGHT) {
			for (int i = 0; i < INFLIGHT && s + (uint64_t)i * req_sectors < total; i++) {
				ctx[i].iov = (struct iovec){ buf + (size_t)i * req_sectors * 512,
							     (size_t)req_sectors * 512 };
				ctx[i].req = (struct block_req){ .op = op, .sector = s + (uint64_t)i * req_sectors,
								 .iov = &ctx[i].iov, .iovcnt = 1,
								 .done = qdone, .opaque = &ctx[i] };
				block_queue_submit(q, &ctx[i].req);
			}
			block_queue_drain(q);
		}
		block_queue_free(q);
	}
	if (op == BLOCK_OP_WRITE)
		block_flush(bd);
	return (double)bytes / (now() - t0) / 1e6;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 256;
	uint32_t req_kib = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 128;
	uint64_t bytes = mib << 20;
	uint32_t req = req_kib * 2;
	unsigned flags = argc > 3 && strcmp(argv[3], "direct") == 0 ? BLOCK_OPEN_DIRECT : 0;
	char dir[] = "/tmp/vessel-bench-crypt-XXXXXX", plain[128], enc[128], key[128], spec[256];

	if (!mkdtemp(dir) || !mib || !req_kib || req_kib > 4096)
		return 2;
	snprintf(plain, sizeof(plain), "%s/plain.img", dir);
	snprintf(enc, sizeof(enc), "%s/enc.img", dir);
	snprintf(key, sizeof(key), "%s/key", dir);
	FILE *f = fopen(key, "w");
	fputs("bench passphrase", f);
	fclose(f);
	snprintf(spec, sizeof(spec), "luks:key-file=%s,pbkdf=pbkdf2,pbkdf-iterations=1000", key);

	struct block_create_opts co = { .format = "raw", .size = bytes };
	if (block_create(plain, &co) < 0 || crypt_disk_create(enc, &co, spec) < 0) {
		fprintf(stderr, "%s\n", err_msg());
		return 1;
	}
	uint8_t *buf = aligned_alloc(4096, (size_t)req * 512 * 16);
	for (size_t i = 0; i < (size_t)req * 512 * 16; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 12));

	printf("cipher aes-xts-plain64 alone, 512-byte sectors, default path %s:\n",
	       crypt_aes_xts_path_name(crypt_aes_xts_path()));
	for (int path = CRYPT_AES_XTS_OPENSSL; path <= CRYPT_AES_XTS_VAES; path++) {
		if (crypt_aes_xts_select((enum crypt_aes_xts_path)path) < 0)
			continue;
		crypt_aes_xts_select(CRYPT_AES_XTS_AUTO);
		for (int enc = 1; enc >= 0; enc--)
			for (size_t call = 4096; call <= 1 << 20; call <<= 8)
				printf("  %-8s %s, %4zu KiB calls: %.0f MB/s\n",
				       crypt_aes_xts_path_name((enum crypt_aes_xts_path)path),
				       enc ? "encrypt" : "decrypt", call >> 10,
				       bench_cipher((enum crypt_aes_xts_path)path, bytes, call, enc));
	}
	printf("%llu MiB, %u KiB requests, raw image %s\n", (unsigned long long)mib, req_kib,
	       flags ? "opened O_DIRECT" : "in the host page cache");
	printf("%-22s %10s %10s %10s %10s\n", "", "plain", "luks", "ratio", "");
	for (unsigned workers = 0; workers <= 4; workers += 4) {
		struct block_dev *p, *e;
		struct block_open_spec ps = { .path = plain, .format = "raw", .flags = flags };
		struct block_open_spec es = { .path = enc, .format = "raw", .flags = flags, .filter = spec };
		if (block_open_stack(&ps, &p) < 0 || block_open_stack(&es, &e) < 0) {
			fprintf(stderr, "%s\n", err_msg());
			return 1;
		}
		/* Warm-up pass so both files are allocated and cached. */
		pass(p, BLOCK_OP_WRITE, bytes, req, workers, buf);
		pass(e, BLOCK_OP_WRITE, bytes, req, workers, buf);
		for (int op = BLOCK_OP_WRITE; op >= BLOCK_OP_READ; op--) {
			double best_p = 0, best_e = 0;
			for (int rep = 0; rep < 3; rep++) {
				double a = pass(p, (enum block_op)op, bytes, req, workers, buf);
				double b = pass(e, (enum block_op)op, bytes, req, workers, buf);
				best_p = a > best_p ? a : best_p;
				best_e = b > best_e ? b : best_e;
			}
			printf("%-5s %-16s %7.0f MB/s %5.0f MB/s %9.2f\n", op == BLOCK_OP_WRITE ? "write" : "read",
			       workers ? "queue, 4 workers" : "one thread", best_p, best_e, best_e / best_p);
		}
		block_close(p);
		block_close(e);
	}
	unlink(plain);
	unlink(enc);
	unlink(key);
	rmdir(dir);
	free(buf);
	return 0;
}
