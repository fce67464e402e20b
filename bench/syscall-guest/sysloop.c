/* System-call-heavy guest program for bench/syscall-guest/run: loops of
 * cheap system calls, timed inside the guest with CLOCK_MONOTONIC.  Built
 * static on the host and added to the default guest's initramfs as a
 * second cpio archive.
 * Usage: sysloop [-p] [iterations [getppid|rw|pipe]]  (default: all three)
 * Prints one line per loop: SYSLOOP <name> n=<calls> s=<seconds> ns_per_call=<ns>
 * With -p, each loop is framed by "PHASE-PAUSE" lines, each followed by
 * a second of sleep: the guest idles while the host reads the monitor's
 * CPU time, so that the time the loop cost the host can be told apart
 * from the rest of the run (bench/syscall-guest/run). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int pause_between;

static void pause_point(void)
{
	if (!pause_between)
		return;
	printf("PHASE-PAUSE\n");
	fflush(stdout);
	sleep(1);
}

static void report(const char *name, long calls, double t0)
{
	double t = now() - t0;
	pause_point();
	printf("SYSLOOP %s n=%ld s=%.4f ns_per_call=%.1f\n", name, calls, t, t * 1e9 / calls);
	fflush(stdout);
}

static void fail(const char *what)
{
	perror(what);
	exit(1);
}

/* The raw system call, not a libc wrapper that might cache its result. */
static void loop_getppid(long n)
{
	pause_point();
	double t0 = now();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	report("getppid", n, t0);
}

/* dd if=/dev/zero of=/dev/null bs=1: a read and a write of one byte. */
static void loop_rw(long n)
{
	char buf[1];
	int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
	if (zero < 0 || null < 0)
		fail("sysloop: /dev/zero or /dev/null");
	pause_point();
	double t0 = now();
	for (long i = 0; i < n; i++)
		if (read(zero, buf, 1) != 1 || write(null, buf, 1) != 1)
			fail("sysloop: read/write");
	report("read+write", 2 * n, t0);
	close(zero);
	close(null);
}

/* 8 bytes through a pipe and back out, in one process. */
static void loop_pipe(long n)
{
	char buf[8] = { 0 };
	int p[2];
	if (pipe(p))
		fail("sysloop: pipe");
	pause_point();
	double t0 = now();
	for (long i = 0; i < n; i++)
		if (write(p[1], buf, 8) != 8 || read(p[0], buf, 8) != 8)
			fail("sysloop: pipe write/read");
	report("pipe", 2 * n, t0);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-p")) {
		pause_between = 1;
		argc--;
		argv++;
	}
	long n = argc > 1 ? atol(argv[1]) : 200000;
	const char *only = argc > 2 ? argv[2] : NULL;
	if (n <= 0) {
		fprintf(stderr, "sysloop: iterations must be positive\n");
		return 2;
	}
	double start = now();
	if (!only || !strcmp(only, "getppid"))
		loop_getppid(n);
	if (!only || !strcmp(only, "rw"))
		loop_rw(n);
	if (!only || !strcmp(only, "pipe"))
		loop_pipe(n);
	if (!only && !pause_between)
		report("total", 5 * n, start);
	return 0;
}
