/* Host file access for format drivers: full-length positional I/O with
 * EINTR retries, and O_DIRECT support through aligned bounce buffers. */
#include "block/block.h"
#include "util/error.h"
#include "util/hostcall.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int block_file_open(struct block_file *f, const char *path, unsigned flags)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	int oflags = O_CLOEXEC | ((flags & BLOCK_OPEN_RDONLY) ? O_RDONLY : O_RDWR);
	if (flags & BLOCK_OPEN_DIRECT)
		oflags |= O_DIRECT;
	/* O_NONBLOCK until the type is known: a path taken from an image
	 * (a parent locator) must not hang the open on a FIFO. */
	int fd = open(path, oflags | O_NONBLOCK);
	if (fd < 0 && errno == EINVAL && (flags & BLOCK_OPEN_DIRECT))
		return err_set(-EINVAL, "%s: the host file system does not support O_DIRECT", path);
	if (fd < 0)
		return err_set(-errno, "%s: %s", path, strerror(errno));
	struct stat st;
	bool known = fstat(fd, &st) == 0;
	if (known && S_ISDIR(st.st_mode)) {
		close(fd);
		return err_set(-EISDIR, "%s: is a directory", path);
	}
	if (known && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return err_set(-EINVAL, "%s: not a regular file or block device", path);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	bool rdonly = flags & BLOCK_OPEN_RDONLY;
	if (!(flags & BLOCK_OPEN_PEEK) && flock(fd, (rdonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return err_set(-EBUSY, "%s: in use: %s", path,
				       rdonly ? "another disk or process has it open for writing"
					      : "another disk or process has it open");
		return err_set(-e, "%s: cannot lock: %s", path, strerror(e));
	}
	f->fd = fd;
	f->rdonly = flags & BLOCK_OPEN_RDONLY;
	f->direct = flags & BLOCK_OPEN_DIRECT;
	f->path = strdup(path);
	return 0;
}

int block_file_create(struct block_file *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;   /* as block_file_open leaves it on failure: closing it is harmless */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(-errno, "%s: %s", path, strerror(errno));
	f->fd = fd;
	f->path = strdup(path);
	return 0;
}

void block_file_close(struct block_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->path);
	f->path = NULL;
}

static bool aligned(const void *buf, size_t len, uint64_t off)
{
	return ((uintptr_t)buf % BLOCK_BUF_ALIGN) == 0 && len % BLOCK_SECTOR_SIZE == 0 &&
	       off % BLOCK_SECTOR_SIZE == 0;
}

static int raw_pread(struct block_file *f, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);
		host_call_note(HOST_CALL_DISK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(-errno, "%s: read at %llu: %s", f->path, (unsigned long long)off,
				       strerror(errno));
		if (n == 0)
			return err_set(-EIO, "%s: truncated (read at %llu past the end of the file)",
				       f->path, (unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int raw_pwrite(struct block_file *f, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);
		host_call_note(HOST_CALL_DISK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(n < 0 ? -errno : -EIO, "%s: write at %llu: %s", f->path,
				       (unsigned long long)off, n < 0 ? strerror(errno) : "no progress");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* O_DIRECT needs sector-aligned offsets and lengths and aligned memory.
 * Every format keeps its I/O sector-granular, so only memory alignment is
 * bounced; a misaligned offset is a driver bug reported as -EINVAL. */
int block_file_pread(struct block_file *f, void *buf, size_t len, uint64_t off)
{
	if (!f->direct || aligned(buf, len, off))
		return raw_pread(f, buf, len, off);
	if (len % BLOCK_SECTOR_SIZE || off % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "%s: unaligned direct read", f->path);
	void *b;
	if (posix_memalign(&b, BLOCK_BUF_ALIGN, len))
		return err_set(-ENOMEM, "out of memory");
	int ret = raw_pread(f, b, len, off);
	if (ret == 0)
		memcpy(buf, b, len);
	free(b);
	return ret;
}

/* Crash testing: with VESSEL_TEST_KILL_AFTER_WRITES=N in the environment
 * the process kills itself (SIGKILL) right after its N-th file write, so
 * tests can stop a writer between any two metadata updates, a window
 * too narrow to hit from outside. */
static long kill_after = -1;
static long writes_done;

static void crash_point(void)
{
	if (kill_after < 0) {
		const char *e = getenv("VESSEL_TEST_KILL_AFTER_WRITES");
		kill_after = e && *e ? strtol(e, NULL, 10) : 0;
	}
	if (kill_after > 0 && __atomic_add_fetch(&writes_done, 1, __ATOMIC_SEQ_CST) >= kill_after)
		raise(SIGKILL);
}

void block_file_note_write(void)
{
	crash_point();
}

void block_file_test_kill_after(long writes)
{
	kill_after = writes;
	__atomic_store_n(&writes_done, 0, __ATOMIC_SEQ_CST);
}

static int pwrite_counted(struct block_file *f, const void *buf, size_t len, uint64_t off)
{
	int ret = raw_pwrite(f, buf, len, off);
	crash_point();
	return ret;
}

int block_file_pwrite(struct block_file *f, const void *buf, size_t len, uint64_t off)
{
	if (f->rdonly)
		return err_set(-EROFS, "%s: opened read-only", f->path);
	if (!f->direct || aligned(buf, len, off))
		return pwrite_counted(f, buf, len, off);
	if (len % BLOCK_SECTOR_SIZE || off % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "%s: unaligned direct write", f->path);
	void *b;
	if (posix_memalign(&b, BLOCK_BUF_ALIGN, len))
		return err_set(-ENOMEM, "out of memory");
	memcpy(b, buf, len);
	int ret = pwrite_counted(f, b, len, off);
	free(b);
	return ret;
}

int block_file_sync(struct block_file *f)
{
	if (f->rdonly)
		return 0;
	host_call_note(HOST_CALL_DISK);
	if (fdatasync(f->fd) < 0)
		return err_set(-errno, "%s: fdatasync: %s", f->path, strerror(errno));
	return 0;
}

int block_file_size(struct block_file *f, uint64_t *size)
{
	struct stat st;
	if (fstat(f->fd, &st) < 0)
		return err_set(-errno, "%s: %s", f->path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(f->fd, 0, SEEK_END);
		if (end < 0)
			return err_set(-errno, "%s: %s", f->path, strerror(errno));
		*size = (uint64_t)end;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

int block_file_truncate(struct block_file *f, uint64_t size)
{
	if (ftruncate(f->fd, (off_t)size) < 0)
		return err_set(-errno, "%s: truncate: %s", f->path, strerror(errno));
	return 0;
}

int block_file_punch(struct block_file *f, uint64_t off, uint64_t len)
{
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return err_set(-errno, "%s: punch hole: %s", f->path, strerror(errno));
	return 0;
}

int block_file_allocated(struct block_file *f, uint64_t *bytes)
{
	struct stat st;
	if (fstat(f->fd, &st) < 0)
		return err_set(-errno, "%s: %s", f->path, strerror(errno));
	*bytes = (uint64_t)st.st_blocks * 512u;
	return 0;
}
