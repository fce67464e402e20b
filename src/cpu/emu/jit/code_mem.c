/* The code cache's memory (jit/jit.h): one shared anonymous mapping
 * mapped twice, writable for the translator and executable for the run
 * loop, so that no page is writable and executable at once (W^X).  The
 * executable view is placed near the engine's own code when the kernel
 * lets it, so that calls to the handlers are direct rel32 calls.
 *
 * Not a memfd: its size would count against RLIMIT_FSIZE (`ulimit -f`,
 * a service's LimitFSIZE), which has nothing to do with memory, and a
 * limit below the cache's size would keep every vCPU from starting.  A
 * second view of a shared anonymous mapping comes from mremap() with an
 * old size of 0 (mremap(2)), which no file-size limit applies to. */
#include "cpu/emu/jit/jit.h"

#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* An address within rel32 reach of the handlers for the executable
 * view to ask for: 1 GiB below this function, a region that position-
 * independent executables and their heap leave free in practice.  Only
 * a hint: without it every call goes through a register. */
static void *near_text_hint(size_t size)
{
	uintptr_t text = (uintptr_t)&near_text_hint & ~(((uintptr_t)1 << 21) - 1);
	uintptr_t want = text - ((uintptr_t)1 << 30) - size;
	return text > ((uintptr_t)1 << 31) ? (void *)want : NULL;
}

static void perf_map_open(void);
static pthread_once_t perf_map_once = PTHREAD_ONCE_INIT;

struct emu_jit *emu_jit_create(size_t size)
{
	pthread_once(&perf_map_once, perf_map_open);
	struct emu_jit *j = calloc(1, sizeof(*j));
	if (!j) {
		err_set(-ENOMEM, "emu: out of memory for the code cache");
		return NULL;
	}
	size = (size + 4095) & ~(size_t)4095;
	void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (rw == MAP_FAILED) {
		err_set(-errno, "emu: code cache of %zu bytes: mmap: %s", size, strerror(errno));
		free(j);
		return NULL;
	}
	/* A reservation at the hint (the kernel takes it if free), which
	 * the second view then replaces: MREMAP_FIXED only ever over a
	 * mapping of our own. */
	void *at = mmap(near_text_hint(size), size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *rx = at == MAP_FAILED ? mremap(rw, 0, size, MREMAP_MAYMOVE) :
				      mremap(rw, 0, size, MREMAP_MAYMOVE | MREMAP_FIXED, at);
	if (rx == MAP_FAILED || mprotect(rx, size, PROT_READ | PROT_EXEC) < 0) {
		int e = errno;
		if (rx != MAP_FAILED)
			munmap(rx, size);
		else if (at != MAP_FAILED)
			munmap(at, size);
		munmap(rw, size);
		err_set(-e, "emu: code cache of %zu bytes: second view: %s", size, strerror(e));
		free(j);
		return NULL;
	}
	j->rw = rw;
	j->rx = rx;
	j->size = size;
	j->epoch = 1;
	return j;
}

void emu_jit_destroy(struct emu_jit *j)
{
	if (!j)
		return;
	munmap(j->rw, j->size);
	munmap(j->rx, j->size);
	free(j);
}

void emu_jit_reset(struct emu_jit *j)
{
	__atomic_store_n(&j->used, 0, __ATOMIC_RELAXED);   /* read by ctl stats */
	j->full = false;
	j->epoch++;
	if (!j->epoch)
		j->epoch = 1;
}

void emu_jit_flush(struct emu_jit *j)
{
	emu_jit_reset(j);
	__atomic_store_n(&j->flushes, j->flushes + 1, __ATOMIC_RELAXED);
}

/* The perf map (jit.h): opened once per process, when the first cache is
 * made (before the sandbox, which allows no open()), when
 * VESSEL_JIT_PERF_MAP is set to anything but "" or "0".  Lines are
 * written whole with O_APPEND, so the vCPUs' threads need no lock. */
static int perf_map_fd = -1;

static void perf_map_open(void)
{
	const char *v = getenv("VESSEL_JIT_PERF_MAP");
	if (!v || !*v || !strcmp(v, "0"))
		return;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	perf_map_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

void emu_jit_perf_map(const void *code, size_t size, uint64_t gpa, unsigned n)
{
	if (perf_map_fd < 0)
		return;
	char line[96];
	int len = snprintf(line, sizeof(line), "%" PRIxPTR " %zx vessel-jit:%" PRIx64 ":%u\n",
			   (uintptr_t)code, size, gpa, n);
	if (len > 0 && (size_t)len < sizeof(line)) {
		ssize_t r = write(perf_map_fd, line, (size_t)len);
		(void)r;   /* a name lost (a full /tmp) costs a profile line, nothing else */
	}
}
