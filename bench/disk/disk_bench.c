/* disk-bench: fixed-size requests through the block layer, the same
 * access pattern as `qemu-img bench` so the two can be run side by side on
 * the same file (bench/disk/run).  Offsets start at 0 and advance by STEP
 * modulo (size - request size), as qemu-img bench does; a large odd step
 * makes a scattered ("random") pattern. */
#include "block/block.h"
#include "util/error.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
	struct block_queue *q;
	uint64_t size, step, offset;
	size_t bufsize;
	unsigned long count, submitted, completed;
	int errors;
	bool write;
	pthread_mutex_t lock;
	pthread_cond_t done;
};

struct slot {
	struct block_req req;
	struct iovec iov;
	struct bench *b;
};

static bool next_request(struct bench *b, struct slot *s)
{
	if (b->submitted >= b->count)
		return false;
	b->submitted++;
	s->req.op = b->write ? BLOCK_OP_WRITE : BLOCK_OP_READ;
	s->req.sector = b->offset / BLOCK_SECTOR_SIZE;
	b->offset += b->step;
	if (b->size <= b->bufsize)
		b->offset = 0;
	else
		b->offset %= b->size - b->bufsize;
	return true;
}

static void on_done(struct block_req *r, int ret)
{
	struct slot *s = (struct slot *)r;
	struct bench *b = s->b;
	pthread_mutex_lock(&b->lock);
	if (ret < 0)
		b->errors++;
	b->completed++;
	bool more = next_request(b, s);
	if (b->completed == b->count)
		pthread_cond_signal(&b->done);
	pthread_mutex_unlock(&b->lock);
	if (more && block_queue_submit(b->q, &s->req) < 0) {
		pthread_mutex_lock(&b->lock);
		b->errors++;
		b->completed++;
		if (b->completed == b->count)
			pthread_cond_signal(&b->done);
		pthread_mutex_unlock(&b->lock);
	}
}

static const char usage[] =
	"usage: disk-bench [-f FMT] [-w] [-c COUNT] [-d DEPTH] [-T THREADS] [-s SIZE] [-S STEP] [--direct] FILE\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "direct", no_argument, NULL, 'D' }, { 0 } };
	const char *fmt = NULL;
	unsigned depth = 64, threads = 4, flags = 0;
	struct bench b = { .count = 75000, .bufsize = 4096, .step = 0 };
	int c;
	while ((c = getopt_long(argc, argv, "f:wc:d:T:s:S:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'w': b.write = true; break;
		case 'c': b.count = strtoul(optarg, NULL, 0); break;
		case 'd': depth = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'T': threads = (unsigned)strtoul(optarg, NULL, 0); break;
		case 's': b.bufsize = strtoul(optarg, NULL, 0); break;
		case 'S': b.step = strtoull(optarg, NULL, 0); break;
		case 'D': flags |= BLOCK_OPEN_DIRECT; break;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind + 1 != argc || !depth || !b.count || !b.bufsize || b.bufsize % 512) {
		fputs(usage, stderr);
		return 2;
	}
	if (!b.step)
		b.step = b.bufsize;
	struct block_dev *bd;
	if (block_open(argv[optind], fmt, b.write ? flags : flags | BLOCK_OPEN_RDONLY, &bd) < 0) {
		fprintf(stderr, "disk-bench: %s\n", err_msg());
		return 1;
	}
	b.size = bd->sectors * BLOCK_SECTOR_SIZE;
	if (block_queue_new(bd, threads, depth, &b.q) < 0) {
		fprintf(stderr, "disk-bench: %s\n", err_msg());
		return 1;
	}
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.done, NULL);
	struct slot *slots = calloc(depth, sizeof(*slots));
	uint8_t *bufs;
	if (!slots || posix_memalign((void **)&bufs, 4096, (size_t)depth * b.bufsize)) {
		fputs("disk-bench: out of memory\n", stderr);
		return 1;
	}
	memset(bufs, 0xa5, (size_t)depth * b.bufsize);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&b.lock);
	unsigned started = 0;
	for (unsigned i = 0; i < depth; i++) {
		slots[i].b = &b;
		slots[i].iov = (struct iovec){ bufs + (size_t)i * b.bufsize, b.bufsize };
		slots[i].req.iov = &slots[i].iov;
		slots[i].req.iovcnt = 1;
		slots[i].req.done = on_done;
		if (!next_request(&b, &slots[i]))
			break;
		started++;
	}
	pthread_mutex_unlock(&b.lock);
	for (unsigned i = 0; i < started; i++)
		block_queue_submit(b.q, &slots[i].req);
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
	printf("%lu requests, %.0f IOPS, %.1f MiB/s, mean latency %.1f us, %d errors\n", b.count,
	       (double)b.count / secs, (double)b.count * (double)b.bufsize / secs / 1048576.0,
	       st.ops[op] ? (double)st.ns[op] / (double)st.ops[op] / 1000.0 : 0.0, b.errors);
	block_close(bd);
	free(slots);
	free(bufs);
	return b.errors ? 1 : 0;
}
