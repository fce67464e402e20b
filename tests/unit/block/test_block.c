/* Block layer core: raw format, range checks, statistics, the request
 * queue, filters stacked over formats, probing. */
#include "block/block.h"
#include "util/error.h"
#include "util/hostcall.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(block, .init = tmp_setup, .fini = tmp_teardown);

Test(block, raw_create_write_read_reopen)
{
	const char *p = tmp_path("a.img");
	struct block_create_opts o = { .format = "raw", .size = 1 << 20 };
	cr_assert_eq(block_create(p, &o), 0, "%s", err_msg());
	cr_assert_eq(file_size(p), 1 << 20);
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0, "%s", err_msg());
	cr_assert_str_eq(bd->drv->name, "raw");
	cr_assert_eq(bd->sectors, 2048);
	uint8_t buf[4096];
	pattern_fill(buf, 10, 8, 3);
	cr_assert_eq(block_write(bd, 10, buf, 8), 0);
	cr_assert_eq(block_flush(bd), 0);
	block_close(bd);
	cr_assert_eq(block_open(p, "raw", BLOCK_OPEN_RDONLY, &bd), 0);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(block_read(bd, 10, buf, 8), 0);
	cr_assert_eq(pattern_check(buf, 10, 8, 3), 0);
	cr_assert_eq(block_write(bd, 0, buf, 1), -EROFS);
	block_close(bd);
	cr_assert_eq(block_create(p, &o), -EEXIST);
}

Test(block, out_of_range_requests_fail_cleanly)
{
	const char *p = tmp_path("a.img");
	struct block_create_opts o = { .format = "raw", .size = 8192 };
	cr_assert_eq(block_create(p, &o), 0);
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0);
	uint8_t buf[1024];
	cr_assert_eq(block_read(bd, 15, buf, 2), -EINVAL);
	cr_assert_eq(block_write(bd, UINT64_MAX, buf, 1), -EINVAL);
	cr_assert_eq(block_discard(bd, 16, 1), -EINVAL);
	cr_assert(strstr(err_msg(), "beyond the end"));
	struct block_stats st;
	block_stats_get(bd, &st);
	cr_assert_eq(st.ops[BLOCK_OP_READ], 0);
	block_close(bd);
}

Test(block, statistics_count_ops_and_bytes)
{
	const char *p = tmp_path("a.img");
	struct block_create_opts o = { .format = "raw", .size = 65536 };
	cr_assert_eq(block_create(p, &o), 0);
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0);
	uint8_t buf[4096] = { 0 };
	cr_assert_eq(block_write(bd, 0, buf, 8), 0);
	cr_assert_eq(block_write(bd, 8, buf, 2), 0);
	cr_assert_eq(block_read(bd, 0, buf, 4), 0);
	cr_assert_eq(block_flush(bd), 0);
	cr_assert_eq(block_discard(bd, 0, 8), 0);
	struct block_stats st;
	block_stats_get(bd, &st);
	cr_assert_eq(st.ops[BLOCK_OP_WRITE], 2);
	cr_assert_eq(st.bytes[BLOCK_OP_WRITE], 5120);
	cr_assert_eq(st.ops[BLOCK_OP_READ], 1);
	cr_assert_eq(st.bytes[BLOCK_OP_READ], 2048);
	cr_assert_eq(st.ops[BLOCK_OP_FLUSH], 1);
	cr_assert_eq(st.ops[BLOCK_OP_DISCARD], 1);
	cr_assert_eq(st.errors, 0);
	/* A discarded raw range reads as zeros. */
	memset(buf, 0xaa, sizeof(buf));
	cr_assert_eq(block_write(bd, 16, buf, 8), 0);
	cr_assert_eq(block_discard(bd, 16, 8), 0);
	cr_assert_eq(block_read(bd, 16, buf, 8), 0);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(buf[i], 0);
	block_close(bd);
}

Test(block, vectored_io_spans_segments)
{
	const char *p = tmp_path("a.img");
	struct block_create_opts o = { .format = "raw", .size = 65536 };
	cr_assert_eq(block_create(p, &o), 0);
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0);
	uint8_t src[2048], a[100], b[1948];
	pattern_fill(src, 4, 4, 9);
	memcpy(a, src, 100);
	memcpy(b, src + 100, 1948);
	struct iovec iov[2] = { { a, 100 }, { b, 1948 } };
	cr_assert_eq(block_writev(bd, 4, iov, 2), 0);
	uint8_t back[2048];
	cr_assert_eq(block_read(bd, 4, back, 4), 0);
	cr_assert_eq(memcmp(back, src, 2048), 0);
	memset(a, 0, 100);
	memset(b, 0, 1948);
	cr_assert_eq(block_readv(bd, 4, iov, 2), 0);
	cr_assert_eq(memcmp(a, src, 100), 0);
	cr_assert_eq(memcmp(b, src + 100, 1948), 0);
	struct iovec odd = { a, 100 };
	cr_assert_eq(block_readv(bd, 0, &odd, 1), -EINVAL);
	block_close(bd);
}

struct done_count {
	int n, errors;
};

static void on_done(struct block_req *r, int ret)
{
	struct done_count *d = r->opaque;
	__atomic_fetch_add(&d->n, 1, __ATOMIC_SEQ_CST);
	if (ret < 0)
		__atomic_fetch_add(&d->errors, 1, __ATOMIC_SEQ_CST);
}

static void queue_roundtrip_flags(const char *fmt, const char *name, unsigned flags, bool want_uring)
{
	const char *p = tmp_path(name);
	struct block_create_opts o = { .format = fmt, .size = 16 << 20, .block_size = 1 << 20 };
	cr_assert_eq(block_create(p, &o), 0, "%s", err_msg());
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0, "%s", err_msg());
	struct block_queue *q;
	cr_assert_eq(block_queue_new_flags(bd, 4, 0, flags, &q), 0);
	cr_assert_eq(block_queue_uses_uring(q), want_uring);
	enum { N = 64 };
	static uint8_t bufs[N][8192];
	struct iovec iov[N];
	struct block_req reqs[N];
	struct done_count d = { 0 };
	/* Writes scattered over many blocks, in flight together. */
	for (int i = 0; i < N; i++) {
		uint64_t sector = (uint64_t)((i * 37) % N) * 512 + (uint64_t)i;
		pattern_fill(bufs[i], sector, 16, (uint64_t)i + 1);
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		reqs[i] = (struct block_req){ .op = BLOCK_OP_WRITE, .sector = sector, .iov = &iov[i],
					       .iovcnt = 1, .done = on_done, .opaque = &d };
		cr_assert_eq(block_queue_submit(q, &reqs[i]), 0);
	}
	block_queue_drain(q);
	cr_assert_eq(d.n, N);
	cr_assert_eq(d.errors, 0);
	struct block_req fl = { .op = BLOCK_OP_FLUSH, .done = on_done, .opaque = &d };
	cr_assert_eq(block_queue_submit(q, &fl), 0);
	block_queue_drain(q);
	cr_assert_eq(d.n, N + 1);
	for (int i = 0; i < N; i++) {
		memset(bufs[i], 0, sizeof(bufs[i]));
		reqs[i].op = BLOCK_OP_READ;
		cr_assert_eq(block_queue_submit(q, &reqs[i]), 0);
	}
	block_queue_free(q);
	cr_assert_eq(d.n, 2 * N + 1);
	cr_assert_eq(d.errors, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(pattern_check(bufs[i], reqs[i].sector, 16, (uint64_t)i + 1), 0, "request %d", i);
	struct block_stats st;
	block_stats_get(bd, &st);
	cr_assert_eq(st.ops[BLOCK_OP_WRITE], N);
	cr_assert_eq(st.ops[BLOCK_OP_READ], N);
	cr_assert_eq(st.ops[BLOCK_OP_FLUSH], 1);
	block_close(bd);
}

static void queue_roundtrip(const char *fmt, const char *name)
{
	queue_roundtrip_flags(fmt, name, 0, false);
}

/* Whether this host lets a process set up an io_uring (the sysctl
 * kernel.io_uring_disabled, 0 by default): where it does not, the queue
 * must fall back to its workers, which the same tests then check. */
static bool host_has_uring(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v == 0;
}

Test(block, queue_runs_many_requests_raw)
{
	queue_roundtrip("raw", "q.img");
}

Test(block, queue_runs_many_requests_raw_on_io_uring)
{
	queue_roundtrip_flags("raw", "q.img", BLOCK_QUEUE_URING, host_has_uring());
}

/* A format the kernel cannot serve alone goes to the workers, flag or not. */
Test(block, queue_with_io_uring_flag_serves_vhd_on_workers)
{
	queue_roundtrip_flags("vhd", "q.vhd", BLOCK_QUEUE_URING, false);
}

/* Plugged, a batch of reads reaches the kernel in one io_uring_enter
 * (or one hand-off to the workers): the counters behind ctl stats. */
static void plugged_batch(unsigned flags, uint64_t *enters, uint64_t *batches, uint64_t *disk_io)
{
	const char *p = tmp_path(flags ? "uring.img" : "workers.img");
	struct block_create_opts o = { .format = "raw", .size = 1 << 20 };
	cr_assert_eq(block_create(p, &o), 0, "%s", err_msg());
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0, "%s", err_msg());
	static uint8_t buf[4096];
	pattern_fill(buf, 8, 8, 5);
	cr_assert_eq(block_write(bd, 8, buf, 8), 0);
	struct block_queue *q;
	cr_assert_eq(block_queue_new_flags(bd, 2, 0, flags, &q), 0);
	enum { N = 32 };
	static uint8_t bufs[N][4096];
	struct iovec iov[N];
	struct block_req reqs[N];
	struct done_count d = { 0 };
	uint64_t e0 = host_call_total(HOST_CALL_IO_SUBMIT), b0 = compound_total(COMPOUND_DISK_BATCHES);
	uint64_t r0 = compound_total(COMPOUND_DISK_REQUESTS), io0 = host_call_total(HOST_CALL_DISK);
	block_queue_plug(q);
	for (int i = 0; i < N; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		reqs[i] = (struct block_req){ .op = BLOCK_OP_READ, .sector = 8, .iov = &iov[i], .iovcnt = 1,
					       .done = on_done, .opaque = &d };
		cr_assert_eq(block_queue_submit(q, &reqs[i]), 0);
	}
	cr_assert_eq(host_call_total(HOST_CALL_IO_SUBMIT), e0, "nothing entered while plugged");
	block_queue_unplug(q);
	block_queue_drain(q);
	cr_assert_eq(d.n, N);
	cr_assert_eq(d.errors, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(pattern_check(bufs[i], 8, 8, 5), 0, "request %d", i);
	cr_assert_eq(compound_total(COMPOUND_DISK_REQUESTS) - r0, N);
	*enters = host_call_total(HOST_CALL_IO_SUBMIT) - e0;
	*batches = compound_total(COMPOUND_DISK_BATCHES) - b0;
	*disk_io = host_call_total(HOST_CALL_DISK) - io0;
	block_queue_free(q);
	block_close(bd);
}

Test(block, plugged_requests_reach_the_host_in_one_submission)
{
	uint64_t enters, batches, disk_io;
	plugged_batch(BLOCK_QUEUE_URING, &enters, &batches, &disk_io);
	if (host_has_uring()) {
		cr_assert_eq(enters, 1);
		cr_assert_eq(disk_io, 0, "no pread of our own");
	} else {
		cr_assert_eq(enters, 0);
		cr_assert_eq(disk_io, 32);
	}
	cr_assert_eq(batches, 1);
	/* The workers alone: one hand-off for the batch, one pread each. */
	plugged_batch(0, &enters, &batches, &disk_io);
	cr_assert_eq(enters, 0);
	cr_assert_eq(batches, 1);
	cr_assert_eq(disk_io, 32);
}

/* What the kernel does not finish is done again by the workers' code,
 * which words the error: here a read past the end of a file truncated
 * under the disk. */
Test(block, io_uring_short_read_is_an_error_with_a_message)
{
	const char *p = tmp_path("t.img");
	struct block_create_opts o = { .format = "raw", .size = 1 << 20 };
	cr_assert_eq(block_create(p, &o), 0, "%s", err_msg());
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0, "%s", err_msg());
	cr_assert_eq(truncate(p, 4096), 0);
	struct block_queue *q;
	cr_assert_eq(block_queue_new_flags(bd, 1, 0, BLOCK_QUEUE_URING, &q), 0);
	static uint8_t buf[8192];
	struct iovec iov = { buf, sizeof(buf) };
	struct done_count d = { 0 };
	struct block_req r = { .op = BLOCK_OP_READ, .sector = 4, .iov = &iov, .iovcnt = 1, .done = on_done, .opaque = &d };
	cr_assert_eq(block_queue_submit(q, &r), 0);
	block_queue_free(q);
	cr_assert_eq(d.n, 1);
	cr_assert_eq(d.errors, 1);
	block_close(bd);
}

/* O_DIRECT: aligned buffers go to the kernel as they are, others to the
 * workers, which bounce them; both read back what was written. */
Test(block, io_uring_with_o_direct_takes_aligned_and_bounces_the_rest)
{
	const char *p = tmp_path("d.img");
	struct block_create_opts o = { .format = "raw", .size = 1 << 20 };
	cr_assert_eq(block_create(p, &o), 0, "%s", err_msg());
	struct block_dev *bd;
	int rc = block_open(p, NULL, BLOCK_OPEN_DIRECT, &bd);
	if (rc == -EINVAL) {
		/* tmpfs has no O_DIRECT: the refusal is the behaviour there. */
		cr_assert(strstr(err_msg(), "O_DIRECT"), "%s", err_msg());
		return;
	}
	cr_assert_eq(rc, 0, "%s", err_msg());
	struct block_queue *q;
	cr_assert_eq(block_queue_new_flags(bd, 1, 0, BLOCK_QUEUE_URING, &q), 0);
	uint8_t *mem = NULL;
	cr_assert_eq(posix_memalign((void **)&mem, 4096, 3 * 4096), 0);
	uint8_t *odd = mem + 4096 + 512;   /* 512-aligned, not 4096 */
	pattern_fill(mem, 16, 8, 7);
	pattern_fill(odd, 32, 8, 9);
	struct iovec a = { mem, 4096 }, b = { odd, 4096 };
	struct done_count d = { 0 };
	struct block_req w1 = { .op = BLOCK_OP_WRITE, .sector = 16, .iov = &a, .iovcnt = 1, .done = on_done, .opaque = &d };
	struct block_req w2 = { .op = BLOCK_OP_WRITE, .sector = 32, .iov = &b, .iovcnt = 1, .done = on_done, .opaque = &d };
	cr_assert_eq(block_queue_submit(q, &w1), 0);
	cr_assert_eq(block_queue_submit(q, &w2), 0);
	block_queue_drain(q);
	memset(mem, 0, 3 * 4096);
	w1.op = w2.op = BLOCK_OP_READ;
	cr_assert_eq(block_queue_submit(q, &w1), 0);
	cr_assert_eq(block_queue_submit(q, &w2), 0);
	block_queue_free(q);
	cr_assert_eq(d.n, 4);
	cr_assert_eq(d.errors, 0);
	cr_assert_eq(pattern_check(mem, 16, 8, 7), 0);
	cr_assert_eq(pattern_check(odd, 32, 8, 9), 0);
	free(mem);
	block_close(bd);
}

Test(block, queue_runs_many_requests_vhd_dynamic)
{
	queue_roundtrip("vhd", "q.vhd");
}

Test(block, queue_rejects_when_full_and_bad_ops)
{
	const char *p = tmp_path("a.img");
	struct block_create_opts o = { .format = "raw", .size = 4096 };
	cr_assert_eq(block_create(p, &o), 0);
	struct block_dev *bd;
	cr_assert_eq(block_open(p, NULL, 0, &bd), 0);
	struct block_queue *q;
	cr_assert_eq(block_queue_new(bd, 0, 0, &q), -EINVAL);
	cr_assert_eq(block_queue_new(bd, 1, 1, &q), 0);
	struct block_req bad = { .op = BLOCK_OP_COUNT };
	cr_assert_eq(block_queue_submit(q, &bad), -EINVAL);
	block_queue_free(q);
	block_close(bd);
}

/* A filter that inverts every byte: shows a filter stacked over a format
 * through the registry, as the encryption filter is. */
static int inv_read(struct block_dev *bd, uint64_t s, void *buf, uint32_t n)
{
	int ret = block_read(bd->lower, s, buf, n);
	for (size_t i = 0; ret == 0 && i < (size_t)n * 512; i++)
		((uint8_t *)buf)[i] ^= 0xff;
	return ret;
}

static int inv_write(struct block_dev *bd, uint64_t s, const void *buf, uint32_t n)
{
	uint8_t *t = malloc((size_t)n * 512);
	for (size_t i = 0; i < (size_t)n * 512; i++)
		t[i] = ((const uint8_t *)buf)[i] ^ 0xff;
	int ret = block_write(bd->lower, s, t, n);
	free(t);
	return ret;
}

static int inv_flush(struct block_dev *bd) { return block_flush(bd->lower); }
static void inv_close(struct block_dev *bd) { block_close(bd->lower); }

static const struct block_driver inv_driver = {
	.name = "invert", .flags = BLOCK_DRV_FILTER | BLOCK_DRV_SERIAL,
	.read = inv_read, .write = inv_write, .flush = inv_flush, .close = inv_close,
};

static int inv_open(struct block_dev *lower, const char *opts, unsigned flags, struct block_dev **out)
{
	struct block_dev *bd = block_dev_alloc(&inv_driver, "invert", lower, flags & BLOCK_OPEN_RDONLY);
	if (!bd)
		return -ENOMEM;
	bd->sectors = lower->sectors;
	*out = bd;
	return 0;
}

static const struct block_filter_type inv_type = { .name = "invert", .open = inv_open };

Test(block, filter_stacks_over_a_format)
{
	block_filter_register(&inv_type);
	cr_assert_eq(block_filter_register(&inv_type), -EEXIST);
	const char *p = tmp_path("f.vhd");
	struct block_create_opts o = { .format = "vhd", .size = 4 << 20 };
	cr_assert_eq(block_create(p, &o), 0);
	struct block_dev *bd;
	struct block_open_spec spec = { .path = p, .filter = "invert:x=1" };
	cr_assert_eq(block_open_stack(&spec, &bd), 0, "%s", err_msg());
	cr_assert_str_eq(bd->drv->name, "invert");
	cr_assert_str_eq(block_bottom(bd)->drv->name, "vhd");
	uint8_t buf[512];
	cr_assert_eq(block_read(bd, 0, buf, 1), 0);
	cr_assert_eq(buf[0], 0xff);   /* zeros below, inverted */
	memset(buf, 0x0f, sizeof(buf));
	cr_assert_eq(block_write(bd, 1, buf, 1), 0);
	block_close(bd);
	cr_assert_eq(block_open(p, NULL, BLOCK_OPEN_RDONLY, &bd), 0);
	cr_assert_eq(block_read(bd, 1, buf, 1), 0);
	cr_assert_eq(buf[0], 0xf0);
	block_close(bd);
	spec.filter = "nosuch";
	cr_assert_eq(block_open_stack(&spec, &bd), -EINVAL);
}

Test(block, probe_tells_vhd_from_raw)
{
	const char *r = tmp_path("r.img"), *v = tmp_path("v.bin"), *f = tmp_path("f.bin");
	struct block_create_opts o = { .format = "raw", .size = 1 << 20 };
	cr_assert_eq(block_create(r, &o), 0);
	o.format = "vhd";
	cr_assert_eq(block_create(v, &o), 0);
	o.sub = BLOCK_SUB_FIXED;
	cr_assert_eq(block_create(f, &o), 0);
	const struct block_format *fmt;
	cr_assert_eq(block_probe(r, &fmt), 0);
	cr_assert_str_eq(fmt->name, "raw");
	cr_assert_eq(block_probe(v, &fmt), 0);
	cr_assert_str_eq(fmt->name, "vhd");
	cr_assert_eq(block_probe(f, &fmt), 0);   /* fixed: footer only at the end */
	cr_assert_str_eq(fmt->name, "vhd");
	cr_assert_eq(block_probe(tmp_path("missing"), &fmt), -ENOENT);
}

Test(block, direct_io_bounces_unaligned_buffers)
{
	const char *p = tmp_path("d.vhd");
	struct block_create_opts o = { .format = "vhd", .size = 4 << 20, .exact_size = true };
	cr_assert_eq(block_create(p, &o), 0);
	struct block_dev *bd;
	int ret = block_open(p, NULL, BLOCK_OPEN_DIRECT, &bd);
	if (ret == -EINVAL)
		cr_skip_test("the file system under /tmp has no O_DIRECT: %s", err_msg());
	cr_assert_eq(ret, 0, "%s", err_msg());
	uint8_t *mem = malloc(8 * 512 + 1), *buf = mem + 1;   /* deliberately misaligned */
	pattern_fill(buf, 3, 8, 11);
	cr_assert_eq(block_write(bd, 3, buf, 8), 0, "%s", err_msg());
	cr_assert_eq(block_flush(bd), 0);
	memset(buf, 0, 8 * 512);
	cr_assert_eq(block_read(bd, 3, buf, 8), 0, "%s", err_msg());
	cr_assert_eq(pattern_check(buf, 3, 8, 11), 0);
	block_close(bd);
	free(mem);
	cr_assert_eq(block_open(p, NULL, BLOCK_OPEN_RDONLY, &bd), 0);
	uint8_t back[4096];
	cr_assert_eq(block_read(bd, 3, back, 8), 0);
	cr_assert_eq(pattern_check(back, 3, 8, 11), 0);
	block_close(bd);
}

/* Two writers of one image corrupt it (two VMs, or one VM given the same
 * image twice): a writable open locks the image for itself; read-only
 * opens share it; probing and describing peek without a lock. */
Test(block, an_image_open_for_writing_is_locked)
{
	const char *p = tmp_path("l.vhd");
	struct block_create_opts o = { .format = "vhd", .size = 1 << 20 };
	cr_assert_eq(block_create(p, &o), 0, "%s", err_msg());
	struct block_dev *w, *r1, *r2, *x;
	cr_assert_eq(block_open(p, NULL, 0, &w), 0, "%s", err_msg());
	cr_assert_eq(block_open(p, NULL, 0, &x), -EBUSY);
	cr_assert(strstr(err_msg(), "in use"), "%s", err_msg());
	cr_assert_eq(block_open(p, NULL, BLOCK_OPEN_RDONLY, &x), -EBUSY);
	const struct block_format *fmt;
	cr_assert_eq(block_probe(p, &fmt), 0, "%s", err_msg());
	block_close(w);
	cr_assert_eq(block_open(p, NULL, BLOCK_OPEN_RDONLY, &r1), 0, "%s", err_msg());
	cr_assert_eq(block_open(p, NULL, BLOCK_OPEN_RDONLY, &r2), 0, "%s", err_msg());
	cr_assert_eq(block_open(p, NULL, 0, &x), -EBUSY);
	block_close(r1);
	block_close(r2);
	cr_assert_eq(block_open(p, NULL, 0, &w), 0, "%s", err_msg());
	block_close(w);
}
