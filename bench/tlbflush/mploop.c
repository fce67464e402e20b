/* TLB-shootdown-heavy guest program for bench/tlbflush/run: THREADS
 * threads of one process, each in a loop that maps 16 pages, writes them,
 * makes them read-only, writable again, and unmaps them.  With the
 * threads on different vCPUs every mprotect and munmap must drop the
 * translations on the other vCPU too: an IPI to it (native), or one
 * HvCallFlushVirtualAddressSpace/List hypercall (Hyper-V's remote flush).
 * Built static on the host and added to the default guest's initramfs.
 * Usage: mploop THREADS ITERATIONS
 * Prints "MPLOOP-PAUSE" and sleeps 2 s before and after the loops (the
 * host reads its counters then), and
 *   MPLOOP threads=T n=<iterations per thread> s=<seconds> */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGES 16
#define PAGE 4096

static long iterations;
static pthread_barrier_t start;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start);
	for (long i = 0; i < iterations; i++) {
		volatile char *p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			exit(1);
		}
		for (int k = 0; k < PAGES; k++)
			p[k * PAGE] = (char)i;
		if (mprotect((void *)p, PAGES * PAGE, PROT_READ) || mprotect((void *)p, PAGES * PAGE, PROT_READ | PROT_WRITE)) {
			perror("mprotect");
			exit(1);
		}
		p[0] = 1;
		munmap((void *)p, PAGES * PAGE);
	}
	return NULL;
}

static void pause_point(void)
{
	printf("MPLOOP-PAUSE\n");
	fflush(stdout);
	sleep(2);
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	iterations = argc > 2 ? atol(argv[2]) : 2000;
	if (threads < 1 || threads > 64 || iterations < 1) {
		fprintf(stderr, "usage: mploop THREADS ITERATIONS\n");
		return 2;
	}
	pthread_t tid[64];
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int t = 0; t < threads; t++)
		pthread_create(&tid[t], NULL, worker, NULL);
	pause_point();
	double t0 = now();
	pthread_barrier_wait(&start);
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	double s = now() - t0;
	pause_point();
	printf("MPLOOP threads=%d n=%ld s=%.3f\n", threads, iterations, s);
	return 0;
}
