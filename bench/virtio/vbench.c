/* Disk requests per second at a queue depth, in the guest: the fio-like
 * loop of bench/virtio/run.  Random 4 KiB reads with O_DIRECT through
 * Linux AIO (io_submit), so that a batch of requests reaches the block
 * layer, and so virtio-blk, in one plug and one notification.
 *
 *   vbench DEVICE QUEUE_DEPTH JOBS REQUESTS
 *
 * JOBS processes (one per vCPU, pinned), each keeping QUEUE_DEPTH/JOBS
 * reads in flight and resubmitting what completes in one io_submit, until
 * REQUESTS reads are done in all.  Prints "VBENCH requests=N s=T iops=R"
 * (guest clock).  Static, no libaio: the system calls are made directly. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define BLOCK 4096
#define MAX_QD 256

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int job(const char *dev, int qd, long requests, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	int fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		perror(dev);
		return 1;
	}
	uint64_t bytes;
	if (ioctl(fd, BLKGETSIZE64, &bytes) < 0 || bytes < BLOCK) {
		perror("BLKGETSIZE64");
		return 1;
	}
	uint64_t blocks = bytes / BLOCK, seed = 0x9e3779b97f4a7c15ull * (uint64_t)(cpu + 1);
	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, qd, &ctx) < 0) {
		perror("io_setup");
		return 1;
	}
	static struct iocb cbs[MAX_QD];
	struct iocb *list[MAX_QD];
	struct io_event ev[MAX_QD];
	uint8_t *buf = aligned_alloc(BLOCK, (size_t)qd * BLOCK);
	long submitted = 0, done = 0;
	int n = 0;
	for (int i = 0; i < qd && submitted < requests; i++, submitted++) {
		memset(&cbs[i], 0, sizeof(cbs[i]));
		cbs[i].aio_fildes = (uint32_t)fd;
		cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
		cbs[i].aio_buf = (uint64_t)(uintptr_t)(buf + (size_t)i * BLOCK);
		cbs[i].aio_nbytes = BLOCK;
		cbs[i].aio_offset = (int64_t)(rnd(&seed) % blocks) * BLOCK;
		list[n++] = &cbs[i];
	}
	while (done < requests) {
		if (n && syscall(SYS_io_submit, ctx, n, list) != n) {
			perror("io_submit");
			return 1;
		}
		long got = syscall(SYS_io_getevents, ctx, 1, qd, ev, NULL);
		if (got < 0) {
			perror("io_getevents");
			return 1;
		}
		n = 0;
		for (long i = 0; i < got; i++) {
			struct iocb *cb = (struct iocb *)(uintptr_t)ev[i].obj;
			if (ev[i].res != BLOCK) {
				fprintf(stderr, "read: %lld\n", (long long)ev[i].res);
				return 1;
			}
			done++;
			if (submitted < requests) {
				cb->aio_offset = (int64_t)(rnd(&seed) % blocks) * BLOCK;
				list[n++] = cb;
				submitted++;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: vbench DEVICE QUEUE_DEPTH JOBS REQUESTS\n");
		return 2;
	}
	int qd = atoi(argv[2]), jobs = atoi(argv[3]);
	long requests = atol(argv[4]);
	if (jobs < 1 || qd < jobs || qd / jobs > MAX_QD || requests < jobs) {
		fprintf(stderr, "vbench: bad numbers\n");
		return 2;
	}
	double t0 = now();
	for (int j = 0; j < jobs; j++) {
		pid_t p = fork();
		if (p == 0)
			_exit(job(argv[1], qd / jobs, requests / jobs, j));
	}
	int bad = 0, st;
	while (wait(&st) > 0)
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	double s = now() - t0;
	long total = requests / jobs * jobs;
	printf("VBENCH requests=%ld s=%.3f iops=%.0f\n", total, s, total / s);
	return bad;
}
