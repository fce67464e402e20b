/* Block layer core: the device stack, range checks, statistics, format
 * probing, the filter registry and the opening of a stack (block.h). */
#include "block/block.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct block_dev *block_dev_alloc(const struct block_driver *drv, const char *name,
				  struct block_dev *lower, bool rdonly)
{
	struct block_dev *bd = calloc(1, sizeof(*bd));
	if (!bd)
		return NULL;
	bd->drv = drv;
	bd->lower = lower;
	bd->rdonly = rdonly;
	bd->name = strdup(name ? name : drv->name);
	if (drv->flags & BLOCK_DRV_SERIAL) {
		pthread_mutex_t *m = malloc(sizeof(*m));
		if (m)
			pthread_mutex_init(m, NULL);
		bd->serial_lock = m;
		if (!m) {
			free(bd->name);
			free(bd);
			return NULL;
		}
	}
	if (!bd->name) {
		free(bd->serial_lock);
		free(bd);
		return NULL;
	}
	return bd;
}

void block_close(struct block_dev *bd)
{
	if (!bd)
		return;
	if (bd->drv->close)
		bd->drv->close(bd);
	if (bd->serial_lock) {
		pthread_mutex_destroy(bd->serial_lock);
		free(bd->serial_lock);
	}
	free(bd->name);
	free(bd);
}

struct block_dev *block_bottom(struct block_dev *bd)
{
	while (bd && bd->lower)
		bd = bd->lower;
	return bd;
}

static int check_range(struct block_dev *bd, uint64_t sector, uint64_t count)
{
	if (sector > bd->sectors || count > bd->sectors - sector)
		return err_set(-EINVAL, "%s: sectors %llu+%llu beyond the end of the disk (%llu sectors)",
			       bd->name, (unsigned long long)sector, (unsigned long long)count,
			       (unsigned long long)bd->sectors);
	return 0;
}

void block_account(struct block_dev *bd, enum block_op op, uint64_t bytes, uint64_t ns, int ret)
{
	if (ret < 0) {
		__atomic_fetch_add(&bd->stats.errors, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_fetch_add(&bd->stats.ops[op], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&bd->stats.bytes[op], bytes, __ATOMIC_RELAXED);
	__atomic_fetch_add(&bd->stats.ns[op], ns, __ATOMIC_RELAXED);
}

static void account(struct block_dev *bd, enum block_op op, uint64_t bytes, uint64_t t0, int ret)
{
	block_account(bd, op, bytes, ret < 0 ? 0 : now_ns() - t0, ret);
}

static void lock(struct block_dev *bd)
{
	if (bd->serial_lock)
		pthread_mutex_lock(bd->serial_lock);
}

static void unlock(struct block_dev *bd)
{
	if (bd->serial_lock)
		pthread_mutex_unlock(bd->serial_lock);
}

int block_read(struct block_dev *bd, uint64_t sector, void *buf, uint32_t count)
{
	int ret = check_range(bd, sector, count);
	if (ret < 0)
		return ret;
	if (!count)
		return 0;
	uint64_t t0 = now_ns();
	lock(bd);
	ret = bd->drv->read(bd, sector, buf, count);
	unlock(bd);
	account(bd, BLOCK_OP_READ, (uint64_t)count << BLOCK_SECTOR_SHIFT, t0, ret);
	return ret;
}

int block_write(struct block_dev *bd, uint64_t sector, const void *buf, uint32_t count)
{
	if (bd->rdonly)
		return err_set(-EROFS, "%s: disk is read-only", bd->name);
	int ret = check_range(bd, sector, count);
	if (ret < 0)
		return ret;
	if (!count)
		return 0;
	uint64_t t0 = now_ns();
	lock(bd);
	ret = bd->drv->write(bd, sector, buf, count);
	unlock(bd);
	account(bd, BLOCK_OP_WRITE, (uint64_t)count << BLOCK_SECTOR_SHIFT, t0, ret);
	return ret;
}

int block_flush(struct block_dev *bd)
{
	if (bd->rdonly || !bd->drv->flush)
		return 0;
	uint64_t t0 = now_ns();
	lock(bd);
	int ret = bd->drv->flush(bd);
	unlock(bd);
	account(bd, BLOCK_OP_FLUSH, 0, t0, ret);
	return ret;
}

int block_discard(struct block_dev *bd, uint64_t sector, uint64_t count)
{
	if (bd->rdonly)
		return err_set(-EROFS, "%s: disk is read-only", bd->name);
	int ret = check_range(bd, sector, count);
	if (ret < 0 || !count)
		return ret;
	uint64_t t0 = now_ns();
	ret = 0;
	if (bd->drv->discard) {
		lock(bd);
		ret = bd->drv->discard(bd, sector, count);
		unlock(bd);
	}
	account(bd, BLOCK_OP_DISCARD, count << BLOCK_SECTOR_SHIFT, t0, ret);
	return ret;
}

static int iov_total(const struct iovec *iov, int iovcnt, uint64_t *sectors)
{
	uint64_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total % BLOCK_SECTOR_SIZE || total >> BLOCK_SECTOR_SHIFT > UINT32_MAX)
		return err_set(-EINVAL, "request of %llu bytes is not a whole number of sectors",
			       (unsigned long long)total);
	*sectors = total >> BLOCK_SECTOR_SHIFT;
	return 0;
}

/* Vectors whose single segment is the whole request go straight through;
 * others are bounced through one buffer (device models mostly send one
 * data segment per request, so the copy is rare). */
int block_readv(struct block_dev *bd, uint64_t sector, const struct iovec *iov, int iovcnt)
{
	uint64_t n = 0;
	int ret = iov_total(iov, iovcnt, &n);
	if (ret < 0)
		return ret;
	if (iovcnt == 1)
		return block_read(bd, sector, iov[0].iov_base, (uint32_t)n);
	uint8_t *buf = malloc(n << BLOCK_SECTOR_SHIFT);
	if (!buf && n)
		return err_set(-ENOMEM, "out of memory");
	ret = block_read(bd, sector, buf, (uint32_t)n);
	if (ret == 0) {
		size_t off = 0;
		for (int i = 0; i < iovcnt; i++) {
			memcpy(iov[i].iov_base, buf + off, iov[i].iov_len);
			off += iov[i].iov_len;
		}
	}
	free(buf);
	return ret;
}

int block_writev(struct block_dev *bd, uint64_t sector, const struct iovec *iov, int iovcnt)
{
	uint64_t n = 0;
	int ret = iov_total(iov, iovcnt, &n);
	if (ret < 0)
		return ret;
	if (iovcnt == 1)
		return block_write(bd, sector, iov[0].iov_base, (uint32_t)n);
	uint8_t *buf = malloc(n << BLOCK_SECTOR_SHIFT);
	if (!buf && n)
		return err_set(-ENOMEM, "out of memory");
	size_t off = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	ret = block_write(bd, sector, buf, (uint32_t)n);
	free(buf);
	return ret;
}

void block_stats_get(struct block_dev *bd, struct block_stats *out)
{
	for (int i = 0; i < BLOCK_OP_COUNT; i++) {
		out->ops[i] = __atomic_load_n(&bd->stats.ops[i], __ATOMIC_RELAXED);
		out->bytes[i] = __atomic_load_n(&bd->stats.bytes[i], __ATOMIC_RELAXED);
		out->ns[i] = __atomic_load_n(&bd->stats.ns[i], __ATOMIC_RELAXED);
	}
	out->errors = __atomic_load_n(&bd->stats.errors, __ATOMIC_RELAXED);
}

/* ---- formats and filters ---------------------------------------------- */

static const struct block_format *const formats[] = { &block_format_vhd, &block_format_raw };

#define MAX_FILTERS 16
static const struct block_filter_type *filters[MAX_FILTERS];
static pthread_mutex_t filters_lock = PTHREAD_MUTEX_INITIALIZER;

int block_filter_register(const struct block_filter_type *t)
{
	int ret = -ENOSPC;
	pthread_mutex_lock(&filters_lock);
	for (int i = 0; i < MAX_FILTERS; i++) {
		if (filters[i] && strcmp(filters[i]->name, t->name) == 0) {
			ret = err_set(-EEXIST, "block filter '%s' already registered", t->name);
			break;
		}
		if (!filters[i]) {
			filters[i] = t;
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&filters_lock);
	if (ret == -ENOSPC)
		err_set(ret, "too many block filter types");
	return ret;
}

const struct block_filter_type *block_filter_find(const char *name)
{
	const struct block_filter_type *t = NULL;
	pthread_mutex_lock(&filters_lock);
	for (int i = 0; i < MAX_FILTERS && filters[i]; i++)
		if (strcmp(filters[i]->name, name) == 0)
			t = filters[i];
	pthread_mutex_unlock(&filters_lock);
	return t;
}

int block_filter_parse(const char *spec, const struct block_filter_type **type, const char **opts)
{
	char name[64];
	const char *colon = strchr(spec, ':');
	size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);

	if (nl == 0 || nl >= sizeof(name))
		return err_set(-EINVAL, "bad filter '%s' (want NAME[:OPTIONS])", spec);
	memcpy(name, spec, nl);
	name[nl] = 0;
	*type = block_filter_find(name);
	if (!*type)
		return err_set(-EINVAL, "unknown block filter '%s'", name);
	*opts = colon ? colon + 1 : NULL;
	return 0;
}

const struct block_format *block_format_find(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(formats[i]->name, name) == 0)
			return formats[i];
	return NULL;
}

int block_probe(const char *path, const struct block_format **out)
{
	struct block_file f;
	int ret = block_file_open(&f, path, BLOCK_OPEN_RDONLY | BLOCK_OPEN_PEEK);
	if (ret < 0)
		return ret;
	uint64_t size;
	ret = block_file_size(&f, &size);
	uint8_t head[1024], tail[512];
	size_t hl = size < sizeof(head) ? (size_t)size : sizeof(head);
	size_t tl = size < sizeof(tail) ? (size_t)size : sizeof(tail);
	if (ret == 0 && hl)
		ret = block_file_pread(&f, head, hl, 0);
	if (ret == 0 && tl)
		ret = block_file_pread(&f, tail, tl, size - tl);
	block_file_close(&f);
	if (ret < 0)
		return err_wrap(ret, "%s", path);
	int best = 0;
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		int s = formats[i]->probe(head, hl, tail, tl);
		if (s > best) {
			best = s;
			*out = formats[i];
		}
	}
	if (!best)
		return err_set(-EINVAL, "%s: unknown disk format", path);
	return 0;
}

int block_open(const char *path, const char *format, unsigned flags, struct block_dev **out)
{
	const struct block_format *fmt;
	if (format) {
		fmt = block_format_find(format);
		if (!fmt)
			return err_set(-EINVAL, "unknown disk format '%s' (raw, vhd)", format);
	} else {
		int ret = block_probe(path, &fmt);
		if (ret < 0)
			return ret;
	}
	return fmt->open(path, flags, out);
}

int block_open_stack(const struct block_open_spec *spec, struct block_dev **out)
{
	struct block_dev *bd;
	int ret = block_open(spec->path, spec->format, spec->flags, &bd);
	if (ret < 0 || !spec->filter) {
		if (ret == 0)
			*out = bd;
		return ret;
	}
	const struct block_filter_type *t;
	const char *opts;
	if ((ret = block_filter_parse(spec->filter, &t, &opts)) < 0) {
		block_close(bd);
		return ret;
	}
	struct block_dev *top;
	ret = t->open(bd, opts, spec->flags, &top);
	if (ret < 0) {
		block_close(bd);
		return ret;
	}
	*out = top;
	return 0;
}

int vhd_create(const char *path, const struct block_create_opts *o);

int block_create(const char *path, const struct block_create_opts *o)
{
	if (!o->format || strcmp(o->format, "raw") == 0) {
		if (o->sub != BLOCK_SUB_DEFAULT)
			return err_set(-EINVAL, "raw images have no subformat");
		if (o->parent)
			return err_set(-EINVAL, "raw images cannot have a parent");
		return raw_create(path, o->size, o->preallocate);
	}
	if (strcmp(o->format, "vhd") == 0 || strcmp(o->format, "vpc") == 0)
		return vhd_create(path, o);
	return err_set(-EINVAL, "unknown disk format '%s' (raw, vhd)", o->format);
}
