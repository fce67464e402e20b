/* The VHD format driver: fixed, dynamic and differencing disks (Microsoft
 * "Virtual Hard Disk Image Format Specification").
 *
 * Crash safety.  A block is allocated at the end of the file, where the
 * footer is, in this order:
 *   1. the footer is written again one block further (the file grows and
 *      its last 512 bytes are a valid footer at every moment);
 *   2. the guest's data, then the block's sector bitmap (over the old
 *      footer);
 *   3. fdatasync, so the block is on disk before anything points at it;
 *   4. the BAT entry (made durable by the next flush).
 * A process killed between any two steps leaves a valid image: at worst
 * one block of unreferenced space before the footer ("leaked", reported by
 * `vessel disk check` and removed by --repair).  In a differencing disk a
 * sector bitmap bit is set only after the data it covers is synced. */
#include "block/vhd.h"
#include "util/error.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct vhd {
	struct block_file file;
	struct vhd_meta m;
	uint8_t footer_raw[VHD_FOOTER_SIZE];
	uint32_t spb;                 /* sectors per block */
	uint32_t bitmap_bytes;
	uint64_t footer_off;          /* current footer position (end of file - 512) */
	uint8_t **bitmaps;            /* cache, per block, loaded on first use */
	uint8_t *full;                /* per block: every bitmap bit set */
	struct block_dev *parent;     /* differencing */
	char *parent_path;
	pthread_mutex_t lock;         /* BAT, bitmaps, footer_off */
};

static const struct block_driver vhd_driver;

static struct vhd *vhd_of(struct block_dev *bd)
{
	return bd->priv;
}

bool vhd_is_vhd(struct block_dev *bd)
{
	return bd && bd->drv == &vhd_driver;
}

static bool bit_get(const uint8_t *bm, uint32_t i)
{
	return bm[i / 8] & (0x80 >> (i % 8));   /* sector 0 is the MSB of byte 0 */
}

static void bit_set(uint8_t *bm, uint32_t i)
{
	bm[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}

static bool bits_all(const uint8_t *bm, uint32_t from, uint32_t n)
{
	for (uint32_t i = from; i < from + n; i++)
		if (!bit_get(bm, i))
			return false;
	return true;
}

/* Loads (once) the sector bitmap of an allocated block.  Lock held. */
static int bitmap_get(struct vhd *v, uint32_t b, uint8_t **out)
{
	if (!v->bitmaps[b]) {
		uint8_t *bm = malloc(v->bitmap_bytes);
		if (!bm)
			return err_set(-ENOMEM, "out of memory");
		int ret = block_file_pread(&v->file, bm, v->bitmap_bytes, (uint64_t)v->m.bat[b] * BLOCK_SECTOR_SIZE);
		if (ret < 0) {
			free(bm);
			return ret;
		}
		v->bitmaps[b] = bm;
		v->full[b] = bits_all(bm, 0, v->spb);
	}
	*out = v->bitmaps[b];
	return 0;
}

/* Sectors not in this image: the parent's content, or zeros (dynamic
 * disks, and beyond the end of a smaller parent). */
static int read_below(struct vhd *v, uint64_t sector, uint8_t *buf, uint32_t n)
{
	uint32_t from_parent = 0;
	if (v->parent && sector < v->parent->sectors) {
		uint64_t left = v->parent->sectors - sector;
		from_parent = left < n ? (uint32_t)left : n;
		int ret = block_read(v->parent, sector, buf, from_parent);
		if (ret < 0)
			return ret;
	}
	memset(buf + ((size_t)from_parent << BLOCK_SECTOR_SHIFT), 0,
	       (size_t)(n - from_parent) << BLOCK_SECTOR_SHIFT);
	return 0;
}

static uint64_t data_off(struct vhd *v, uint32_t b, uint32_t rel)
{
	return (uint64_t)v->m.bat[b] * BLOCK_SECTOR_SIZE + v->bitmap_bytes + (uint64_t)rel * BLOCK_SECTOR_SIZE;
}

static int read_chunk(struct vhd *v, uint64_t sector, uint8_t *buf, uint32_t b, uint32_t rel, uint32_t n)
{
	pthread_mutex_lock(&v->lock);
	if (v->m.bat[b] == VHD_BAT_UNUSED) {
		pthread_mutex_unlock(&v->lock);
		return read_below(v, sector, buf, n);
	}
	uint8_t *bm;
	int ret = bitmap_get(v, b, &bm);
	if (ret < 0 || v->full[b]) {
		uint64_t off = ret < 0 ? 0 : data_off(v, b, rel);
		pthread_mutex_unlock(&v->lock);
		return ret < 0 ? ret : block_file_pread(&v->file, buf, (size_t)n << BLOCK_SECTOR_SHIFT, off);
	}
	/* Partially present block: runs of set bits come from this file,
	 * the others from below.  A private copy of the bitmap lets the I/O
	 * run without the lock. */
	uint8_t bits[(n + 7) / 8];
	memset(bits, 0, sizeof(bits));
	for (uint32_t i = 0; i < n; i++)
		if (bit_get(bm, rel + i))
			bit_set(bits, i);
	uint64_t base = data_off(v, b, rel);
	pthread_mutex_unlock(&v->lock);
	for (uint32_t i = 0; i < n && ret == 0;) {
		bool set = bit_get(bits, i);
		uint32_t j = i + 1;
		while (j < n && bit_get(bits, j) == set)
			j++;
		uint8_t *p = buf + ((size_t)i << BLOCK_SECTOR_SHIFT);
		if (set)
			ret = block_file_pread(&v->file, p, (size_t)(j - i) << BLOCK_SECTOR_SHIFT,
					       base + (uint64_t)i * BLOCK_SECTOR_SIZE);
		else
			ret = read_below(v, sector + i, p, j - i);
		i = j;
	}
	return ret;
}

static int vhd_read(struct block_dev *bd, uint64_t sector, void *buf, uint32_t count)
{
	struct vhd *v = vhd_of(bd);
	uint8_t *p = buf;
	if (v->m.footer.type == VHD_TYPE_FIXED)
		return block_file_pread(&v->file, buf, (size_t)count << BLOCK_SECTOR_SHIFT, sector << BLOCK_SECTOR_SHIFT);
	while (count) {
		uint32_t b = (uint32_t)(sector / v->spb), rel = (uint32_t)(sector % v->spb);
		uint32_t n = v->spb - rel < count ? v->spb - rel : count;
		int ret = read_chunk(v, sector, p, b, rel, n);
		if (ret < 0)
			return ret;
		p += (size_t)n << BLOCK_SECTOR_SHIFT;
		sector += n;
		count -= n;
	}
	return 0;
}

/* Writes the 512-byte BAT sector that holds entry b (big-endian). */
static int bat_write_entry(struct vhd *v, uint32_t b)
{
	uint8_t sec[BLOCK_SECTOR_SIZE];
	uint32_t first = b / 128 * 128;
	for (uint32_t i = 0; i < 128; i++) {
		uint32_t e = first + i < v->m.header.max_entries ? v->m.bat[first + i] : VHD_BAT_UNUSED;
		sec[4 * i] = (uint8_t)(e >> 24);
		sec[4 * i + 1] = (uint8_t)(e >> 16);
		sec[4 * i + 2] = (uint8_t)(e >> 8);
		sec[4 * i + 3] = (uint8_t)e;
	}
	return block_file_pwrite(&v->file, sec, sizeof(sec), v->m.header.table_offset + (uint64_t)first * 4);
}

/* Allocates block b at the end of the file and writes n sectors into it
 * (order in the comment at the top of the file).  Lock held. */
static int alloc_block(struct vhd *v, uint32_t b, uint32_t rel, uint32_t n, const uint8_t *buf)
{
	uint64_t off = v->footer_off;
	uint64_t new_footer = off + v->bitmap_bytes + v->m.header.block_size;
	if (off / BLOCK_SECTOR_SIZE >= VHD_BAT_UNUSED || new_footer / BLOCK_SECTOR_SIZE >= VHD_BAT_UNUSED)
		return err_set(-EFBIG, "%s: the image file would exceed the VHD limit of 2 TiB", v->file.path);
	uint8_t *bm = calloc(1, v->bitmap_bytes);
	if (!bm)
		return err_set(-ENOMEM, "out of memory");
	/* Dynamic disks: the whole block is present (what the rest of the
	 * block reads, zeros, is what the unallocated block read); the file
	 * range past the old end is a hole, so it does read zeros. */
	bool whole = v->m.footer.type == VHD_TYPE_DYNAMIC;
	for (uint32_t i = whole ? 0 : rel; i < (whole ? v->spb : rel + n); i++)
		bit_set(bm, i);
	int ret = block_file_pwrite(&v->file, v->footer_raw, VHD_FOOTER_SIZE, new_footer);
	if (ret == 0)
		ret = block_file_pwrite(&v->file, buf, (size_t)n << BLOCK_SECTOR_SHIFT,
					off + v->bitmap_bytes + (uint64_t)rel * BLOCK_SECTOR_SIZE);
	if (ret == 0)
		ret = block_file_pwrite(&v->file, bm, v->bitmap_bytes, off);
	if (ret == 0)
		ret = block_file_sync(&v->file);
	if (ret == 0) {
		v->m.bat[b] = (uint32_t)(off / BLOCK_SECTOR_SIZE);
		ret = bat_write_entry(v, b);
		if (ret < 0)
			v->m.bat[b] = VHD_BAT_UNUSED;
	}
	if (ret < 0) {
		free(bm);
		return ret;
	}
	v->footer_off = new_footer;
	v->m.data_end = new_footer;
	free(v->bitmaps[b]);
	v->bitmaps[b] = bm;
	v->full[b] = bits_all(bm, 0, v->spb);
	return 0;
}

static int write_chunk(struct vhd *v, const uint8_t *buf, uint32_t b, uint32_t rel, uint32_t n)
{
	pthread_mutex_lock(&v->lock);
	if (v->m.bat[b] == VHD_BAT_UNUSED) {
		int ret = alloc_block(v, b, rel, n, buf);
		pthread_mutex_unlock(&v->lock);
		return ret;
	}
	uint8_t *bm;
	int ret = bitmap_get(v, b, &bm);
	if (ret < 0) {
		pthread_mutex_unlock(&v->lock);
		return ret;
	}
	uint64_t off = data_off(v, b, rel);
	if (v->full[b] || bits_all(bm, rel, n)) {
		pthread_mutex_unlock(&v->lock);
		return block_file_pwrite(&v->file, buf, (size_t)n << BLOCK_SECTOR_SHIFT, off);
	}
	/* New sectors in a present block: data, sync, then the bitmap bits
	 * that make it visible. */
	ret = block_file_pwrite(&v->file, buf, (size_t)n << BLOCK_SECTOR_SHIFT, off);
	if (ret == 0)
		ret = block_file_sync(&v->file);
	if (ret == 0) {
		uint8_t *nb = malloc(v->bitmap_bytes);
		if (!nb) {
			ret = err_set(-ENOMEM, "out of memory");
		} else {
			memcpy(nb, bm, v->bitmap_bytes);
			for (uint32_t i = rel; i < rel + n; i++)
				bit_set(nb, i);
			ret = block_file_pwrite(&v->file, nb, v->bitmap_bytes, (uint64_t)v->m.bat[b] * BLOCK_SECTOR_SIZE);
			if (ret == 0) {
				memcpy(bm, nb, v->bitmap_bytes);
				v->full[b] = bits_all(bm, 0, v->spb);
			}
			free(nb);
		}
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

static int vhd_write(struct block_dev *bd, uint64_t sector, const void *buf, uint32_t count)
{
	struct vhd *v = vhd_of(bd);
	const uint8_t *p = buf;
	if (v->m.footer.type == VHD_TYPE_FIXED)
		return block_file_pwrite(&v->file, buf, (size_t)count << BLOCK_SECTOR_SHIFT, sector << BLOCK_SECTOR_SHIFT);
	while (count) {
		uint32_t b = (uint32_t)(sector / v->spb), rel = (uint32_t)(sector % v->spb);
		uint32_t n = v->spb - rel < count ? v->spb - rel : count;
		int ret = write_chunk(v, p, b, rel, n);
		if (ret < 0)
			return ret;
		p += (size_t)n << BLOCK_SECTOR_SHIFT;
		sector += n;
		count -= n;
	}
	return 0;
}

static int vhd_flush(struct block_dev *bd)
{
	return block_file_sync(&vhd_of(bd)->file);
}

/* Discard punches holes in data this image holds so the range reads as
 * zeros.  Differencing disks ignore it: clearing bitmap bits would show the
 * parent's data instead, which is allowed but surprising. */
static int vhd_discard(struct block_dev *bd, uint64_t sector, uint64_t count)
{
	struct vhd *v = vhd_of(bd);
	int ret = 0;
	if (v->m.footer.type == VHD_TYPE_FIXED) {
		ret = block_file_punch(&v->file, sector << BLOCK_SECTOR_SHIFT, count << BLOCK_SECTOR_SHIFT);
		return ret == -EOPNOTSUPP ? 0 : ret;
	}
	if (v->m.footer.type == VHD_TYPE_DIFF)
		return 0;
	while (count && ret == 0) {
		uint32_t b = (uint32_t)(sector / v->spb), rel = (uint32_t)(sector % v->spb);
		uint32_t n = v->spb - rel < count ? v->spb - rel : (uint32_t)count;
		pthread_mutex_lock(&v->lock);
		uint8_t *bm;
		if (v->m.bat[b] != VHD_BAT_UNUSED && bitmap_get(v, b, &bm) == 0 && v->full[b])
			ret = block_file_punch(&v->file, data_off(v, b, rel), (uint64_t)n << BLOCK_SECTOR_SHIFT);
		pthread_mutex_unlock(&v->lock);
		if (ret == -EOPNOTSUPP)
			ret = 0;
		sector += n;
		count -= n;
	}
	return ret;
}

static void vhd_free(struct vhd *v)
{
	if (v->bitmaps)
		for (uint32_t i = 0; i < v->m.header.max_entries; i++)
			free(v->bitmaps[i]);
	free(v->bitmaps);
	free(v->full);
	block_close(v->parent);
	free(v->parent_path);
	vhd_meta_free(&v->m);
	if (v->file.fd >= 0)
		block_file_close(&v->file);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static void vhd_close(struct block_dev *bd)
{
	if (bd->priv)
		vhd_free(bd->priv);
}

static const struct block_driver vhd_driver = {
	.name = "vhd",
	.read = vhd_read,
	.write = vhd_write,
	.flush = vhd_flush,
	.discard = vhd_discard,
	.close = vhd_close,
};

/* ---- differencing: finding and opening the parent ------------------------ */

/* Images being opened by this thread, to refuse parent loops. */
static __thread struct { dev_t dev; ino_t ino; } open_chain[32];
static __thread int open_depth;

static int locator_path(struct vhd *v, const struct vhd_locator *l, const char *child_dir, char *out, size_t len)
{
	if (l->len == 0 || l->len > 65536)
		return -EINVAL;
	uint8_t *raw = malloc(l->len + 2);
	if (!raw)
		return -ENOMEM;
	int ret = block_file_pread(&v->file, raw, l->len, l->offset);
	char path[PATH_MAX];
	if (ret == 0 && l->code == VHD_PLAT_MACX) {
		/* MacX: an RFC 2396 file URL in UTF-8. */
		size_t n = l->len < sizeof(path) - 1 ? l->len : sizeof(path) - 1;
		memcpy(path, raw, n);
		path[n] = 0;
		if (strncmp(path, "file://", 7) == 0)
			memmove(path, path + 7, strlen(path + 7) + 1);
	} else if (ret == 0) {
		/* W2ku/W2ru: UTF-16 little-endian Windows paths. */
		size_t units = l->len / 2;
		uint16_t *u = malloc(units * 2 + 2);
		if (!u) {
			free(raw);
			return -ENOMEM;
		}
		for (size_t i = 0; i < units; i++)
			u[i] = (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
		ret = vhd_utf16_to_utf8(u, units, path, sizeof(path));
		free(u);
	}
	free(raw);
	if (ret < 0)
		return ret;
	for (char *c = path; *c; c++)
		if (*c == '\\')
			*c = '/';
	const char *p = path;
	/* An absolute Windows path "C:/dir/file" names "/dir/file" here. */
	if (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':')
		p += 2;
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (!*p)
		return -EINVAL;
	if (p[0] == '/' || !strcmp(child_dir, "."))
		ret = snprintf(out, len, "%s", p);
	else
		ret = snprintf(out, len, "%s/%s", child_dir, p);
	return ret < 0 || (size_t)ret >= len ? -ENAMETOOLONG : 0;
}

static int find_parent(struct vhd *v, const char *child_path, char *out, size_t len)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", child_path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	char first[PATH_MAX] = "";
	/* The relative locator first: it survives moving a child together
	 * with its parent; then the absolute ones; then Parent Unicode Name. */
	static const uint32_t order[] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU, VHD_PLAT_MACX };
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		for (int i = 0; i < VHD_LOCATORS; i++) {
			const struct vhd_locator *l = &v->m.header.loc[i];
			if (l->code != order[k] || locator_path(v, l, dir, out, len) < 0)
				continue;
			if (access(out, F_OK) == 0)
				return 0;
			if (!first[0])
				snprintf(first, sizeof(first), "%s", out);
		}
	}
	char name[PATH_MAX];
	if (vhd_utf16_to_utf8(v->m.header.parent_name, 256, name, sizeof(name)) == 0 && name[0]) {
		int n = name[0] == '/' ? snprintf(out, len, "%s", name) : snprintf(out, len, "%s/%s", dir, name);
		if (n > 0 && (size_t)n < len && access(out, F_OK) == 0)
			return 0;
		if (!first[0])
			snprintf(first, sizeof(first), "%s", out);
	}
	if (!first[0])
		return err_set(-EINVAL, "%s: differencing disk without a parent locator", child_path);
	return err_set(-ENOENT, "%s: parent image %s not found", child_path, first);
}

static int open_parent(struct vhd *v, const char *path, unsigned flags)
{
	char ppath[PATH_MAX];
	int ret = find_parent(v, path, ppath, sizeof(ppath));
	if (ret < 0)
		return ret;
	v->parent_path = strdup(ppath);
	struct block_dev *p;
	unsigned pflags = BLOCK_OPEN_RDONLY | (flags & (BLOCK_OPEN_DIRECT | BLOCK_OPEN_UNSAFE | BLOCK_OPEN_PEEK));
	ret = block_open(ppath, NULL, pflags, &p);
	if (ret < 0)
		return err_wrap(ret, "%s: parent", path);
	v->parent = p;
	struct block_dev *pb = block_bottom(p);
	if (!vhd_is_vhd(pb))
		return err_set(-EINVAL, "%s: parent %s is not a VHD image", path, ppath);
	/* Parent Unique ID: the parent's footer Unique Id at the time the
	 * child was made; a different one means the parent was replaced. */
	if (!(flags & BLOCK_OPEN_UNSAFE) &&
	    memcmp(vhd_of(pb)->m.footer.uuid, v->m.header.parent_uuid, 16) != 0)
		return err_set(-EINVAL, "%s: parent %s has a different unique id than the child records "
			       "(the parent was replaced or modified; `vessel disk rebase -u` relinks it)",
			       path, ppath);
	return 0;
}

static int vhd_open(const char *path, unsigned flags, struct block_dev **out)
{
	struct vhd *v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(-ENOMEM, "out of memory");
	pthread_mutex_init(&v->lock, NULL);
	int ret = block_file_open(&v->file, path, flags);
	if (ret < 0) {
		pthread_mutex_destroy(&v->lock);
		free(v);
		return ret;
	}
	struct stat st;
	bool pushed = false;
	if (fstat(v->file.fd, &st) == 0) {
		for (int i = 0; i < open_depth; i++)
			if (open_chain[i].dev == st.st_dev && open_chain[i].ino == st.st_ino) {
				ret = err_set(-ELOOP, "%s: the chain of differencing disks loops back to this image", path);
				goto fail;
			}
		if (open_depth >= (int)(sizeof(open_chain) / sizeof(open_chain[0]))) {
			ret = err_set(-ELOOP, "%s: chain of differencing disks deeper than %d", path, open_depth);
			goto fail;
		}
		open_chain[open_depth].dev = st.st_dev;
		open_chain[open_depth++].ino = st.st_ino;
		pushed = true;
	}
	ret = vhd_meta_load(&v->file, &v->m, NULL);
	if (ret < 0) {
		err_wrap(ret, "%s", path);
		goto fail;
	}
	if (!v->m.end_footer_ok && !(flags & BLOCK_OPEN_RDONLY)) {
		ret = err_set(-EINVAL, "%s: the footer at the end of the file is damaged; "
			      "`vessel disk check --repair` restores it from the copy", path);
		goto fail;
	}
	vhd_footer_encode(&v->m.footer, v->footer_raw);
	v->footer_off = v->m.footer_off;
	if (v->m.footer.type != VHD_TYPE_FIXED) {
		v->spb = v->m.header.block_size / BLOCK_SECTOR_SIZE;
		v->bitmap_bytes = vhd_bitmap_bytes(v->m.header.block_size);
		v->bitmaps = calloc(v->m.header.max_entries ? v->m.header.max_entries : 1, sizeof(*v->bitmaps));
		v->full = calloc(v->m.header.max_entries ? v->m.header.max_entries : 1, 1);
		if (!v->bitmaps || !v->full) {
			ret = err_set(-ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (v->m.footer.type == VHD_TYPE_DIFF && !(flags & BLOCK_OPEN_NO_PARENT)) {
		ret = open_parent(v, path, flags);
		if (ret < 0)
			goto fail;
	}
	struct block_dev *bd = block_dev_alloc(&vhd_driver, path, NULL, flags & BLOCK_OPEN_RDONLY);
	if (!bd) {
		ret = err_set(-ENOMEM, "out of memory");
		goto fail;
	}
	bd->priv = v;
	bd->sectors = v->m.footer.cur_size / BLOCK_SECTOR_SIZE;
	if (pushed)
		open_depth--;
	*out = bd;
	return 0;
fail:
	if (pushed)
		open_depth--;
	vhd_free(v);
	return ret;
}

static int vhd_probe(const uint8_t *head, size_t hl, const uint8_t *tail, size_t tl)
{
	if ((tl == VHD_FOOTER_SIZE && memcmp(tail, "conectix", 8) == 0) ||
	    (hl >= VHD_FOOTER_SIZE && memcmp(head, "conectix", 8) == 0))
		return 100;
	return 0;
}

const struct block_format block_format_vhd = {
	.name = "vhd",
	.probe = vhd_probe,
	.open = vhd_open,
};

/* ---- tools' view ------------------------------------------------------------ */

int vhd_get_info(struct block_dev *bd, struct vhd_info *out)
{
	if (!vhd_is_vhd(bd))
		return err_set(-EINVAL, "%s is not a VHD image", bd->name);
	struct vhd *v = vhd_of(bd);
	out->meta = &v->m;
	out->parent_path = v->parent_path;
	out->parent = v->parent;
	return 0;
}

int vhd_sector_allocated(struct block_dev *bd, uint64_t sector, bool *allocated, uint64_t *run)
{
	if (!vhd_is_vhd(bd))
		return err_set(-EINVAL, "%s is not a VHD image", bd->name);
	struct vhd *v = vhd_of(bd);
	if (sector >= bd->sectors)
		return err_set(-EINVAL, "sector beyond the end");
	if (v->m.footer.type == VHD_TYPE_FIXED) {
		*allocated = true;
		*run = bd->sectors - sector;
		return 0;
	}
	uint32_t b = (uint32_t)(sector / v->spb), rel = (uint32_t)(sector % v->spb);
	uint32_t n = v->spb - rel;
	if (n > bd->sectors - sector)
		n = (uint32_t)(bd->sectors - sector);
	pthread_mutex_lock(&v->lock);
	int ret = 0;
	if (v->m.bat[b] == VHD_BAT_UNUSED) {
		*allocated = false;
		*run = n;
	} else {
		uint8_t *bm;
		ret = bitmap_get(v, b, &bm);
		if (ret == 0) {
			bool set = bit_get(bm, rel);
			uint32_t j = 1;
			while (j < n && bit_get(bm, rel + j) == set)
				j++;
			*allocated = set;
			*run = j;
		}
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

/* ---- creation --------------------------------------------------------------- */

/* The virtual size a VHD gets for a requested size, and its geometry.
 * Readers disagree on where the size lives: the spec and Hyper-V use
 * Current Size, Virtual PC and qemu (for images whose Creator Application
 * it does not know, like ours) multiply out the CHS geometry unless it is
 * the maximum.  Making the two equal keeps every reader in step. */
uint64_t vhd_round_size(uint64_t size, bool exact, uint16_t *c, uint8_t *h, uint8_t *s)
{
	uint64_t total = size / BLOCK_SECTOR_SIZE;
	vhd_geometry(total, c, h, s);
	uint64_t chs = (uint64_t)*c * *h * *s;
	if (chs == total || total >= VHD_MAX_GEOMETRY)
		return size;
	if (exact) {
		*c = 65535;
		*h = 16;
		*s = 255;
		return size;
	}
	/* Smallest geometry of the spec's algorithm covering the request. */
	for (uint64_t i = 1; chs < total && total + i <= VHD_MAX_GEOMETRY; i++) {
		vhd_geometry(total + i, c, h, s);
		chs = (uint64_t)*c * *h * *s;
	}
	return chs * BLOCK_SECTOR_SIZE;
}

static void new_footer(struct vhd_footer *f, uint32_t type, uint64_t size)
{
	memset(f, 0, sizeof(*f));
	f->features = 2;
	f->version = 0x00010000;
	f->data_offset = type == VHD_TYPE_FIXED ? VHD_NO_OFFSET : VHD_FOOTER_SIZE;
	time_t now = time(NULL);
	f->timestamp = (uint32_t)(now > VHD_EPOCH ? now - VHD_EPOCH : 0);
	/* Creator Application "vsl ": qemu does not know it and so takes the
	 * size from the geometry (see vhd_round_size). */
	memcpy(f->creator_app, "vsl ", 4);
	f->creator_ver = 0x00000001;         /* vessel 0.1 */
	f->creator_os = 0x5769326b;          /* "Wi2k", as the spec's Windows hosts */
	f->orig_size = f->cur_size = size;
	f->type = type;
	if (getrandom(f->uuid, 16, 0) != 16) {
		uint64_t t = (uint64_t)now ^ (uint64_t)getpid() << 32;
		memcpy(f->uuid, &t, 8);
	}
	f->uuid[6] = (uint8_t)((f->uuid[6] & 0x0f) | 0x40);   /* RFC 4122 version 4 */
	f->uuid[8] = (uint8_t)((f->uuid[8] & 0x3f) | 0x80);
}

/* Writes one locator's data (UTF-16LE, '\' separators) and fills l. */
static int write_locator(struct block_file *f, struct vhd_locator *l, uint32_t code, const char *path, uint64_t off)
{
	uint16_t u[VHD_LOCATOR_SPACE / 2];
	size_t n = vhd_utf8_to_utf16(path, u, sizeof(u) / sizeof(u[0]));
	if (n == sizeof(u) / sizeof(u[0]))
		return err_set(-ENAMETOOLONG, "%s: path too long for a parent locator", path);
	uint8_t buf[VHD_LOCATOR_SPACE];
	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < n; i++) {
		uint16_t c = u[i] == '/' ? '\\' : u[i];
		buf[2 * i] = (uint8_t)c;
		buf[2 * i + 1] = (uint8_t)(c >> 8);
	}
	l->code = code;
	/* Platform Data Space: the spec counts it in sectors. */
	l->space = VHD_LOCATOR_SPACE / BLOCK_SECTOR_SIZE;
	l->len = (uint32_t)(n * 2);
	l->offset = off;
	return block_file_pwrite(f, buf, sizeof(buf), off);
}

/* Fills the parent fields of a differencing header (name, id, time stamp,
 * W2ku and W2ru locators at loc_off) and writes the locator data. */
int vhd_set_parent(struct block_file *f, struct vhd_header *h, const char *child, const char *parent,
		   const struct vhd_footer *pf, uint64_t loc_off);
int vhd_set_parent(struct block_file *f, struct vhd_header *h, const char *child, const char *parent,
		   const struct vhd_footer *pf, uint64_t loc_off)
{
	char abs[PATH_MAX], rel[PATH_MAX];
	int ret = vhd_parent_paths(child, parent, abs, sizeof(abs), rel, sizeof(rel));
	if (ret < 0)
		return ret;
	memcpy(h->parent_uuid, pf->uuid, 16);
	struct stat st;
	h->parent_ts = stat(parent, &st) == 0 && st.st_mtime > VHD_EPOCH ? (uint32_t)(st.st_mtime - VHD_EPOCH) : 0;
	memset(h->parent_name, 0, sizeof(h->parent_name));
	vhd_utf8_to_utf16(abs, h->parent_name, 255);
	memset(h->loc, 0, sizeof(h->loc));
	ret = write_locator(f, &h->loc[0], VHD_PLAT_W2KU, abs, loc_off);
	if (ret == 0)
		ret = write_locator(f, &h->loc[1], VHD_PLAT_W2RU, rel, loc_off + VHD_LOCATOR_SPACE);
	return ret;
}

int vhd_create(const char *path, const struct block_create_opts *o)
{
	uint32_t type = o->sub == BLOCK_SUB_FIXED ? VHD_TYPE_FIXED :
			o->sub == BLOCK_SUB_DIFFERENCING || (o->sub == BLOCK_SUB_DEFAULT && o->parent) ? VHD_TYPE_DIFF :
			VHD_TYPE_DYNAMIC;
	uint64_t size = o->size;
	uint32_t bs = o->block_size ? o->block_size : VHD_DEFAULT_BLOCK;
	struct vhd_footer pf;
	if (type == VHD_TYPE_DIFF) {
		if (!o->parent)
			return err_set(-EINVAL, "a differencing disk needs a parent (--parent)");
		struct block_dev *p;
		int ret = block_open(o->parent, NULL, BLOCK_OPEN_RDONLY, &p);
		if (ret < 0)
			return ret;
		if (!vhd_is_vhd(p)) {
			block_close(p);
			return err_set(-EINVAL, "%s: the parent of a VHD differencing disk must be a VHD image", o->parent);
		}
		struct vhd *pv = vhd_of(p);
		pf = pv->m.footer;
		size = pf.cur_size;
		if (!o->block_size && pf.type != VHD_TYPE_FIXED)
			bs = pv->m.header.block_size;
		block_close(p);
	} else if (o->parent) {
		return err_set(-EINVAL, "--parent is only for differencing disks");
	}
	if (size % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "size %llu is not a multiple of 512 bytes", (unsigned long long)size);
	if (size / BLOCK_SECTOR_SIZE > VHD_MAX_SECTORS)
		return err_set(-EINVAL, "size %llu is larger than the VHD maximum of 2040 GiB", (unsigned long long)size);
	if (bs < BLOCK_SECTOR_SIZE || bs > (256u << 20) || (bs & (bs - 1)))
		return err_set(-EINVAL, "block size %u is not a power of two between 512 and 256M", bs);
	if (type != VHD_TYPE_FIXED && (size + bs - 1) / bs > VHD_MAX_ENTRIES)
		return err_set(-EINVAL, "block size %u is too small for %llu bytes (at most %u blocks)", bs,
			       (unsigned long long)size, VHD_MAX_ENTRIES);

	struct vhd_footer f;
	uint16_t cyls;
	uint8_t heads, spt;
	if (type == VHD_TYPE_DIFF) {
		cyls = pf.cyls;      /* the parent's size and geometry, unchanged */
		heads = pf.heads;
		spt = pf.spt;
	} else {
		size = vhd_round_size(size, o->exact_size, &cyls, &heads, &spt);
	}
	new_footer(&f, type, size);
	f.cyls = cyls;
	f.heads = heads;
	f.spt = spt;
	uint8_t fb[VHD_FOOTER_SIZE];
	vhd_footer_encode(&f, fb);
	struct block_file file;
	int ret = block_file_create(&file, path);
	if (ret < 0)
		return ret;
	if (type == VHD_TYPE_FIXED) {
		ret = block_file_truncate(&file, size);
		if (ret == 0)
			ret = block_file_pwrite(&file, fb, sizeof(fb), size);
	} else {
		struct vhd_header h;
		memset(&h, 0, sizeof(h));
		h.data_offset = VHD_NO_OFFSET;
		h.table_offset = VHD_FOOTER_SIZE + VHD_HEADER_SIZE;
		h.version = 0x00010000;
		h.max_entries = (uint32_t)((size + bs - 1) / bs);
		h.block_size = bs;
		uint64_t bat_bytes = ((uint64_t)h.max_entries * 4 + BLOCK_SECTOR_SIZE - 1) & ~(uint64_t)(BLOCK_SECTOR_SIZE - 1);
		uint64_t end = h.table_offset + bat_bytes;
		uint8_t *bat = malloc(bat_bytes ? bat_bytes : 1);
		if (!bat) {
			ret = err_set(-ENOMEM, "out of memory");
		} else {
			memset(bat, 0xff, bat_bytes);
			ret = block_file_pwrite(&file, bat, bat_bytes, h.table_offset);
			free(bat);
		}
		if (ret == 0 && type == VHD_TYPE_DIFF) {
			ret = vhd_set_parent(&file, &h, path, o->parent, &pf, end);
			end += 2 * VHD_LOCATOR_SPACE;
		}
		uint8_t hb[VHD_HEADER_SIZE];
		vhd_header_encode(&h, hb);
		if (ret == 0)
			ret = block_file_pwrite(&file, hb, sizeof(hb), VHD_FOOTER_SIZE);
		if (ret == 0)
			ret = block_file_pwrite(&file, fb, sizeof(fb), 0);
		if (ret == 0)
			ret = block_file_pwrite(&file, fb, sizeof(fb), end);
	}
	if (ret == 0)
		ret = block_file_sync(&file);
	block_file_close(&file);
	if (ret < 0)
		unlink(path);
	return ret;
}
