/* Raw images: virtual sector n is file bytes [n*512, n*512+512).  The
 * virtual size is the file size rounded down to a sector. */
#include "block/block.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct block_file *raw_file(struct block_dev *bd)
{
	return bd->priv;
}

static int raw_read(struct block_dev *bd, uint64_t sector, void *buf, uint32_t count)
{
	return block_file_pread(raw_file(bd), buf, (size_t)count << BLOCK_SECTOR_SHIFT,
				sector << BLOCK_SECTOR_SHIFT);
}

static int raw_write(struct block_dev *bd, uint64_t sector, const void *buf, uint32_t count)
{
	return block_file_pwrite(raw_file(bd), buf, (size_t)count << BLOCK_SECTOR_SHIFT,
				 sector << BLOCK_SECTOR_SHIFT);
}

static int raw_flush(struct block_dev *bd)
{
	return block_file_sync(raw_file(bd));
}

/* Discarded sectors read back as zeros: a punched hole does that; where
 * the host file system cannot punch, discard is silently a no-op (it is
 * advisory: virtio 1.1 5.2.6.2 lets the device keep the data). */
static int raw_discard(struct block_dev *bd, uint64_t sector, uint64_t count)
{
	int ret = block_file_punch(raw_file(bd), sector << BLOCK_SECTOR_SHIFT, count << BLOCK_SECTOR_SHIFT);
	if (ret == -EOPNOTSUPP)
		return 0;
	return ret;
}

/* Every range is one run of the file, unchanged. */
static int raw_map(struct block_dev *bd, uint64_t sector, uint64_t count, struct block_file **file, uint64_t *off)
{
	*file = raw_file(bd);
	*off = sector << BLOCK_SECTOR_SHIFT;
	return 0;
}

static void raw_close(struct block_dev *bd)
{
	if (bd->priv) {
		block_file_close(raw_file(bd));
		free(bd->priv);
	}
}

static const struct block_driver raw_driver = {
	.name = "raw",
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.discard = raw_discard,
	.close = raw_close,
	.map = raw_map,
};

static int raw_probe(const uint8_t *head, size_t hl, const uint8_t *tail, size_t tl)
{
	return 1;
}

static int raw_open(const char *path, unsigned flags, struct block_dev **out)
{
	struct block_file *f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(-ENOMEM, "out of memory");
	int ret = block_file_open(f, path, flags);
	if (ret < 0) {
		free(f);
		return ret;
	}
	uint64_t size;
	ret = block_file_size(f, &size);
	struct block_dev *bd = ret < 0 ? NULL : block_dev_alloc(&raw_driver, path, NULL, flags & BLOCK_OPEN_RDONLY);
	if (!bd) {
		block_file_close(f);
		free(f);
		return ret < 0 ? ret : err_set(-ENOMEM, "out of memory");
	}
	bd->priv = f;
	bd->sectors = size >> BLOCK_SECTOR_SHIFT;
	*out = bd;
	return 0;
}

int raw_create(const char *path, uint64_t size, bool preallocate)
{
	if (size % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "size %llu is not a multiple of %u bytes",
			       (unsigned long long)size, BLOCK_SECTOR_SIZE);
	struct block_file f;
	int ret = block_file_create(&f, path);
	if (ret < 0)
		return ret;
	ret = block_file_truncate(&f, size);
	if (ret == 0 && preallocate && size) {
		int e = posix_fallocate(f.fd, 0, (off_t)size);   /* returns the error, errno untouched */
		if (e)
			ret = err_set(-e, "%s: cannot preallocate %llu bytes: %s", path, (unsigned long long)size,
				      strerror(e));
	}
	if (ret == 0)
		ret = block_file_sync(&f);
	block_file_close(&f);
	/* A half-made image must not block the next `vessel disk create` (O_EXCL). */
	if (ret < 0)
		unlink(path);
	return ret;
}

const struct block_format block_format_raw = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
};
