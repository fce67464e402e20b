/* bench-disk: times a request pattern through the block layer's request
 * queue, as `qemu-img bench` does (bench/disk/README.md).  It was
 * `vessel disk bench`; speed is measured here, not by the product. */
#include "block/block.h"
#include "block/crypt_filter.h"
#include "cli/cli.h"
#include "util/error.h"
#include "vmm/plugin_loader.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench-disk: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 2;
}

static int fail(int err)
{
	fprintf(stderr, "bench-disk: %s\n", err_msg());
	return err == -EINVAL || err == -ENOENT ? 2 : 1;
}

static int open_image(const char *path, const char *fmt, const char *filter, unsigned flags, struct block_dev **out)
{
	struct block_open_spec spec = { .path = path, .format = fmt, .flags = flags, .filter = filter };
	return block_open_stack(&spec, out);
}

static const char bench_usage[] =
	"usage: bench-disk [options] FILE\n"
	"\n"
	"Times COUNT requests through the block layer's request queue, with the\n"
	"request pattern of `qemu-img bench`: offsets start at 0 and advance by STEP\n"
	"modulo (size - request size).  Reads unless -w.  Prints the time taken.\n"
	"\n"
	"options:\n"
	"  -c, --count N        requests (default 75000)\n"
	"  -d, --depth N        requests in flight (default 64)\n"
	"  -s, --size BYTES     request size, a multiple of 512 (default 4K)\n"
	"  -S, --step BYTES     offset step (default: the request size)\n"
	"  -T, --threads N      queue worker threads (default 4)\n"
	"  -w, --write          write instead of read\n"
	"  -f, --format FMT     raw or vhd (default: probe)\n"
	"      --direct         O_DIRECT host I/O\n"
	"      --filter SPEC    filter NAME[:OPTS] over the image\n"
	"  -h, --help           this help\n";

struct bench {
	struct block_queue *q;
	uint64_t size, step, offset;
	size_t reqsize;
	unsigned long count, submitted, completed;
	unsigned errors;
	bool write;
	pthread_mutex_t lock;
	pthread_cond_t done;
};

struct bench_slot {
	struct block_req req;         /* first: the callback gets it back */
	struct iovec iov;
	struct bench *b;
};

/* Lock held. */
static bool bench_next(struct bench *b, struct bench_slot *s)
{
	if (b->submitted >= b->count)
		return false;
	b->submitted++;
	s->req.op = b->write ? BLOCK_OP_WRITE : BLOCK_OP_READ;
	s->req.sector = b->offset / BLOCK_SECTOR_SIZE;
	b->offset += b->step;
	b->offset = b->size <= b->reqsize ? 0 : b->offset % (b->size - b->reqsize);
	return true;
}

static void bench_complete(struct bench *b, int ret)
{
	if (ret < 0)
		b->errors++;
	if (++b->completed == b->count)
		pthread_cond_signal(&b->done);
}

static void bench_done(struct block_req *r, int ret)
{
	struct bench_slot *s = (struct bench_slot *)r;
	struct bench *b = s->b;
	pthread_mutex_lock(&b->lock);
	bench_complete(b, ret);
	bool more = bench_next(b, s);
	pthread_mutex_unlock(&b->lock);
	if (more && (ret = block_queue_submit(b->q, &s->req)) < 0) {
		pthread_mutex_lock(&b->lock);
		bench_complete(b, ret);
		pthread_mutex_unlock(&b->lock);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' }, { "depth", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' }, { "step", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'T' }, { "write", no_argument, NULL, 'w' },
		{ "format", required_argument, NULL, 'f' }, { "direct", no_argument, NULL, 'D' },
		{ "filter", required_argument, NULL, 'F' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	struct bench b = { .count = 75000, .reqsize = 4096 };
	unsigned long depth = 64, threads = 4;
	unsigned long long v;
	const char *fmt = NULL, *filter = NULL;
	unsigned flags = 0;
	int c;
	/* --filter luks:... needs the encryption filters, and they their
	 * plug-in loader, as in `vessel disk`. */
	crypt_filters_register();
	plugin_loader_install_crypt();
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:d:s:S:T:wf:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': b.count = strtoul(optarg, NULL, 0); break;
		case 'd': depth = strtoul(optarg, NULL, 0); break;
		case 's':
		case 'S':
			if (cli_parse_size(optarg, &v) < 0 || v % 512 || v > (64u << 20))
				return usage_error("bad size '%s' (multiple of 512, at most 64M)", optarg);
			if (c == 's')
				b.reqsize = (size_t)v;
			else
				b.step = v;
			break;
		case 'T': threads = strtoul(optarg, NULL, 0); break;
		case 'w': b.write = true; break;
		case 'f': fmt = optarg; break;
		case 'D': flags |= BLOCK_OPEN_DIRECT; break;
		case 'F': filter = optarg; break;
		case 'h': fputs(bench_usage, stdout); return EXIT_OK;
		default: return usage_error("bad option or missing value near '%s' (try --help)", argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return usage_error("expected one FILE (try --help)");
	if (!b.count || !depth || depth > 4096 || !threads || threads > 64 || !b.reqsize)
		return usage_error("count, depth (1..4096), threads (1..64) and size must be positive");
	if (!b.step)
		b.step = b.reqsize;
	struct block_dev *bd;
	int ret = open_image(argv[optind], fmt, filter, b.write ? flags : flags | BLOCK_OPEN_RDONLY, &bd);
	if (ret < 0)
		return fail(ret);
	b.size = bd->sectors << BLOCK_SECTOR_SHIFT;
	if (b.size < b.reqsize) {
		block_close(bd);
		return usage_error("the disk is smaller than one request");
	}
	struct bench_slot *slots = calloc(depth, sizeof(*slots));
	void *bufs = NULL;
	if (!slots || posix_memalign(&bufs, BLOCK_BUF_ALIGN, depth * b.reqsize)) {
		free(slots);
		block_close(bd);
		return fail(err_set(-ENOMEM, "out of memory"));
	}
	memset(bufs, 0xa5, depth * b.reqsize);
	ret = block_queue_new(bd, (unsigned)threads, (unsigned)depth, &b.q);
	if (ret < 0) {
		free(slots);
		free(bufs);
		block_close(bd);
		return fail(ret);
	}
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.done, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned long started = 0;
	pthread_mutex_lock(&b.lock);
	for (unsigned long i = 0; i < depth; i++) {
		slots[i].b = &b;
		slots[i].iov = (struct iovec){ (uint8_t *)bufs + i * b.reqsize, b.reqsize };
		slots[i].req.iov = &slots[i].iov;
		slots[i].req.iovcnt = 1;
		slots[i].req.done = bench_done;
		if (!bench_next(&b, &slots[i]))
			break;
		started++;
	}
	pthread_mutex_unlock(&b.lock);
	for (unsigned long i = 0; i < started; i++) {
		if ((ret = block_queue_submit(b.q, &slots[i].req)) < 0) {
			pthread_mutex_lock(&b.lock);
			bench_complete(&b, ret);
			pthread_mutex_unlock(&b.lock);
		}
	}
	pthread_mutex_lock(&b.lock);
	while (b.completed < b.count)
		pthread_cond_wait(&b.done, &b.lock);
	pthread_mutex_unlock(&b.lock);
	block_queue_free(b.q);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct block_stats st;
	block_stats_get(bd, &st);
	int op = b.write ? BLOCK_OP_WRITE : BLOCK_OP_READ;
	printf("Run completed in %.3f seconds.\n", secs);
	printf("%lu requests of %zu bytes: %.0f IOPS, %.1f MiB/s, mean latency %.1f us, %u errors\n",
	       b.count, b.reqsize, (double)b.count / secs, (double)b.count * (double)b.reqsize / secs / 1048576.0,
	       st.ops[op] ? (double)st.ns[op] / (double)st.ops[op] / 1000.0 : 0.0, b.errors);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.done);
	free(slots);
	free(bufs);
	block_close(bd);
	if (b.errors) {
		fprintf(stderr, "bench-disk: %u requests failed: %s\n", b.errors, err_msg());
		return EXIT_FAILURE_RUN;
	}
	return EXIT_OK;
}
