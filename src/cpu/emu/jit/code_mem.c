/* The code cache's memory (jit/jit.h): one memfd mapped twice, writable
 * for the translator and executable for the run loop, so that no page is
 * writable and executable at once (W^X).  The executable view is placed
 * near the engine's own code when the kernel lets it, so that calls to
 * the handlers are direct rel32 calls. */
#include "cpu/emu/jit/jit.h"

#include "util/error.h"

#include <errno.h>
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

struct emu_jit *emu_jit_create(size_t size)
{
	struct emu_jit *j = calloc(1, sizeof(*j));
	if (!j) {
		err_set(-ENOMEM, "emu: out of memory for the code cache");
		return NULL;
	}
	size = (size + 4095) & ~(size_t)4095;
	int fd = memfd_create("vessel-jit", MFD_CLOEXEC);
	if (fd < 0) {
		err_set(-errno, "emu: code cache: memfd_create: %s", strerror(errno));
		free(j);
		return NULL;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		err_set(-errno, "emu: code cache of %zu bytes: %s", size, strerror(errno));
		close(fd);
		free(j);
		return NULL;
	}
	void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	void *rx = mmap(near_text_hint(size), size, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_NORESERVE, fd, 0);
	int e = errno;
	close(fd);
	if (rw == MAP_FAILED || rx == MAP_FAILED) {
		if (rw != MAP_FAILED)
			munmap(rw, size);
		if (rx != MAP_FAILED)
			munmap(rx, size);
		err_set(-e, "emu: code cache of %zu bytes: mmap: %s", size, strerror(e));
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
