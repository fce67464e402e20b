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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

struct emu_jit *emu_jit_create(size_t size)
{
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

void emu_jit_flush(struct emu_jit *j)
{
	j->used = 0;
	j->epoch++;
	if (!j->epoch)
		j->epoch = 1;
	__atomic_store_n(&j->flushes, j->flushes + 1, __ATOMIC_RELAXED);
}
