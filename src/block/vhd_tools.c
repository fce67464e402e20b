/* Offline VHD tools behind `vessel disk`: check and repair, resize, commit
 * of a differencing disk into its parent, and rebase onto a new parent.
 * Each keeps the image valid at every step, in the same spirit as block
 * allocation (vhd.c): new structures are written where nothing points yet,
 * synced, and only then made reachable by one small write. */
#include "block/vhd.h"
#include "util/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int vhd_set_parent(struct block_file *f, struct vhd_header *h, const char *child, const char *parent,
		   const struct vhd_footer *pf, uint64_t loc_off);

#define CHUNK_SECTORS 2048u   /* 1 MiB per copy step */

static int write_footers(struct block_file *f, const struct vhd_footer *ft, uint64_t end_off, bool copy)
{
	uint8_t fb[VHD_FOOTER_SIZE];
	vhd_footer_encode(ft, fb);
	int ret = 0;
	/* The copy first: qemu reads the copy of a dynamic disk before the
	 * end footer, so both readers agree as soon as either is written. */
	if (copy)
		ret = block_file_pwrite(f, fb, sizeof(fb), 0);
	if (ret == 0)
		ret = block_file_pwrite(f, fb, sizeof(fb), end_off);
	if (ret == 0)
		ret = block_file_sync(f);
	return ret;
}

int vhd_check(const char *path, unsigned flags, struct vhd_report *rep, struct vhd_meta *meta_out)
{
	bool repair = flags & VHD_CHECK_REPAIR;
	struct block_file f;
	int ret = block_file_open(&f, path, repair ? 0 : BLOCK_OPEN_RDONLY | (flags & VHD_CHECK_PEEK ? BLOCK_OPEN_PEEK : 0));
	if (ret < 0)
		return ret;
	struct vhd_meta m;
	ret = vhd_meta_load(&f, &m, rep);
	if (ret < 0) {
		block_file_close(&f);
		return err_wrap(ret, "%s", path);
	}
	/* A differencing disk is only usable with its parent chain. */
	if (m.footer.type == VHD_TYPE_DIFF && rep->errors == 0 && !(flags & VHD_CHECK_NO_PARENT)) {
		struct block_dev *bd;
		if (block_open(path, "vhd", BLOCK_OPEN_RDONLY | BLOCK_OPEN_PEEK, &bd) == 0) {
			block_close(bd);
		} else if (rep->n_msgs < sizeof(rep->msgs) / sizeof(rep->msgs[0])) {
			rep->errors++;
			rep->repairable = false;
			snprintf(rep->msgs[rep->n_msgs++], sizeof(rep->msgs[0]), "error: %s", err_msg());
		}
	}
	bool fix_end = !m.end_footer_ok;
	bool fix_leak = m.leaked_bytes > 0;
	bool fix_copy = m.footer.type != VHD_TYPE_FIXED && (!m.copy_ok || !m.copy_matches);
	if (repair && (fix_end || fix_leak || fix_copy)) {
		if (rep->errors && !rep->repairable) {
			ret = err_set(-EINVAL, "%s: the image has errors that cannot be repaired safely", path);
		} else {
			/* A missing end footer or leaked space: the footer goes
			 * right after the last extent, then the file is cut. */
			uint64_t end = fix_end || fix_leak ? m.data_end : m.footer_off;
			ret = write_footers(&f, &m.footer, end, fix_copy || fix_end);
			if (ret == 0 && (fix_end || fix_leak))
				ret = block_file_truncate(&f, end + VHD_FOOTER_SIZE);
			if (ret == 0)
				ret = block_file_sync(&f);
			if (ret == 0) {
				vhd_meta_free(&m);
				ret = vhd_meta_load(&f, &m, rep);
			}
		}
	}
	block_file_close(&f);
	if (ret == 0 && meta_out)
		*meta_out = m;
	else
		vhd_meta_free(&m);
	return ret;
}

static int load_strict(struct block_file *f, const char *path, struct vhd_meta *m)
{
	int ret = block_file_open(f, path, 0);
	if (ret < 0)
		return ret;
	ret = vhd_meta_load(f, m, NULL);
	if (ret == 0 && !m->end_footer_ok) {
		vhd_meta_free(m);
		ret = err_set(-EINVAL, "the footer is damaged; run `vessel disk check --repair` first");
	}
	if (ret < 0) {
		block_file_close(f);
		return err_wrap(ret, "%s", path);
	}
	return 0;
}

static int write_header(struct block_file *f, const struct vhd_meta *m)
{
	uint8_t hb[VHD_HEADER_SIZE];
	vhd_header_encode(&m->header, hb);
	int ret = block_file_pwrite(f, hb, sizeof(hb), m->footer.data_offset);
	if (ret == 0)
		ret = block_file_sync(f);
	return ret;
}

static int write_bat(struct block_file *f, const uint32_t *bat, uint32_t entries, uint64_t bytes, uint64_t off)
{
	uint8_t *buf = malloc(bytes ? bytes : 1);
	if (!buf)
		return err_set(-ENOMEM, "out of memory");
	memset(buf, 0xff, bytes);
	for (uint32_t i = 0; i < entries; i++) {
		buf[4 * i] = (uint8_t)(bat[i] >> 24);
		buf[4 * i + 1] = (uint8_t)(bat[i] >> 16);
		buf[4 * i + 2] = (uint8_t)(bat[i] >> 8);
		buf[4 * i + 3] = (uint8_t)bat[i];
	}
	int ret = block_file_pwrite(f, buf, bytes, off);
	free(buf);
	return ret;
}

int vhd_resize(const char *path, uint64_t size, bool allow_shrink)
{
	if (size % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "size %llu is not a multiple of 512 bytes", (unsigned long long)size);
	if (size / BLOCK_SECTOR_SIZE > VHD_MAX_SECTORS)
		return err_set(-EINVAL, "size %llu is larger than the VHD maximum of 2040 GiB", (unsigned long long)size);
	struct block_file f;
	struct vhd_meta m;
	int ret = load_strict(&f, path, &m);
	if (ret < 0)
		return ret;
	uint64_t old = m.footer.cur_size;
	if (size < old && !allow_shrink) {
		ret = err_set(-EINVAL, "shrinking discards data: pass --shrink to do it");
		goto out;
	}
	struct vhd_footer nf = m.footer;
	/* Same size rule as creation; an image made with an exact size (the
	 * maximum geometry) keeps that convention. */
	bool exact = (uint64_t)m.footer.cyls * m.footer.heads * m.footer.spt == VHD_MAX_GEOMETRY;
	size = vhd_round_size(size, exact, &nf.cyls, &nf.heads, &nf.spt);
	nf.cur_size = size;
	if (size == old)
		goto out;
	if (m.footer.type == VHD_TYPE_FIXED) {
		/* Grow: the new footer lands past the old end first, then the old
		 * footer (now disk data) is zeroed.  Shrink: the new footer
		 * overwrites data, then the file is cut. */
		ret = write_footers(&f, &nf, size, false);
		if (ret == 0 && size > old) {
			uint8_t zero[VHD_FOOTER_SIZE] = { 0 };
			ret = block_file_pwrite(&f, zero, sizeof(zero), old);
		}
		if (ret == 0 && size < old)
			ret = block_file_truncate(&f, size + VHD_FOOTER_SIZE);
		if (ret == 0)
			ret = block_file_sync(&f);
		goto out;
	}
	struct vhd_header *h = &m.header;
	uint64_t need = (size + h->block_size - 1) / h->block_size;
	if (need > VHD_MAX_ENTRIES) {
		ret = err_set(-EINVAL, "%llu blocks of %u bytes are more than the %u supported: the image's block size is too small for that size",
			      (unsigned long long)need, h->block_size, VHD_MAX_ENTRIES);
		goto out;
	}
	if (need > h->max_entries) {
		if (need * 4 <= m.bat_bytes) {
			/* The BAT's padding already has room. */
			uint32_t *nb = realloc(m.bat, m.bat_bytes);
			if (!nb) {
				ret = err_set(-ENOMEM, "out of memory");
				goto out;
			}
			m.bat = nb;
			for (uint64_t i = h->max_entries; i < need; i++)
				m.bat[i] = VHD_BAT_UNUSED;
			/* Writers may pad the BAT with zeros (sector 0, not
			 * "unused"): the new entries are written before the
			 * header counts them. */
			ret = write_bat(&f, m.bat, (uint32_t)need, m.bat_bytes, h->table_offset);
			if (ret == 0)
				ret = block_file_sync(&f);
			h->max_entries = (uint32_t)need;
		} else {
			/* A larger BAT is written at the end of the file (the footer
			 * moves past it first) and the header switched to it. */
			uint64_t bytes = (need * 4 + BLOCK_SECTOR_SIZE - 1) & ~(uint64_t)(BLOCK_SECTOR_SIZE - 1);
			uint32_t *nb = malloc(bytes);
			if (!nb) {
				ret = err_set(-ENOMEM, "out of memory");
				goto out;
			}
			memcpy(nb, m.bat, (size_t)h->max_entries * 4);
			for (uint64_t i = h->max_entries; i < need; i++)
				nb[i] = VHD_BAT_UNUSED;
			uint64_t at = m.footer_off;
			ret = write_footers(&f, &m.footer, at + bytes, false);
			if (ret == 0)
				ret = write_bat(&f, nb, (uint32_t)need, bytes, at);
			if (ret == 0)
				ret = block_file_sync(&f);
			free(m.bat);
			m.bat = nb;
			m.footer_off = at + bytes;
			h->table_offset = at;
			h->max_entries = (uint32_t)need;
		}
		if (ret == 0)
			ret = write_header(&f, &m);
	} else if (size < old) {
		/* Shrink: blocks past the new end are dropped from the BAT
		 * (their space stays in the file, unreferenced). */
		for (uint64_t i = need; i < h->max_entries; i++)
			m.bat[i] = VHD_BAT_UNUSED;
		ret = write_bat(&f, m.bat, h->max_entries, m.bat_bytes, h->table_offset);
		if (ret == 0)
			ret = block_file_sync(&f);
		h->max_entries = (uint32_t)need;
		if (ret == 0)
			ret = write_header(&f, &m);
	}
	if (ret == 0)
		ret = write_footers(&f, &nf, m.footer_off, true);
out:
	vhd_meta_free(&m);
	block_file_close(&f);
	return ret;
}

static int open_vhd_chain(const char *path, unsigned flags, struct block_dev **out, struct vhd_info *info)
{
	int ret = block_open(path, "vhd", flags, out);
	if (ret < 0)
		return ret;
	ret = vhd_get_info(*out, info);
	if (ret == 0 && info->meta->footer.type != VHD_TYPE_DIFF)
		ret = err_set(-EINVAL, "%s is not a differencing disk", path);
	if (ret < 0)
		block_close(*out);
	return ret;
}

int vhd_commit(const char *path, void (*progress)(uint64_t, uint64_t, void *), void *ctx)
{
	struct block_dev *child, *parent;
	struct vhd_info info;
	/* The chain is only looked at (its locks would keep the parent from
	 * the writable open below); the parent's exclusive lock is the guard:
	 * anyone using the chain holds it shared. */
	int ret = open_vhd_chain(path, BLOCK_OPEN_RDONLY | BLOCK_OPEN_PEEK, &child, &info);
	if (ret < 0)
		return ret;
	ret = block_open(info.parent_path, NULL, 0, &parent);
	if (ret < 0) {
		block_close(child);
		return ret;
	}
	if (child->sectors > parent->sectors) {
		ret = err_set(-EINVAL, "%s is larger than its parent %s: resize the parent first",
			      path, info.parent_path);
		goto out;
	}
	uint8_t *buf = malloc((size_t)CHUNK_SECTORS << BLOCK_SECTOR_SHIFT);
	if (!buf) {
		ret = err_set(-ENOMEM, "out of memory");
		goto out;
	}
	/* Only the sectors the child holds itself move down; the merged view
	 * through the child is the same before and after. */
	for (uint64_t s = 0; s < child->sectors && ret == 0;) {
		bool alloc;
		uint64_t run;
		ret = vhd_sector_allocated(child, s, &alloc, &run);
		if (ret < 0)
			break;
		if (run > CHUNK_SECTORS)
			run = CHUNK_SECTORS;
		if (alloc) {
			ret = block_read(child, s, buf, (uint32_t)run);
			if (ret == 0)
				ret = block_write(parent, s, buf, (uint32_t)run);
		}
		s += run;
		if (progress)
			progress(s, child->sectors, ctx);
	}
	free(buf);
	if (ret == 0)
		ret = block_flush(parent);
out:
	block_close(parent);
	block_close(child);
	return ret;
}

/* Is the file `path` one of the images of the stack `bd`? */
static bool chain_contains(struct block_dev *bd, const struct stat *st)
{
	while (bd) {
		struct block_dev *b = block_bottom(bd);
		struct stat s2;
		if (stat(b->name, &s2) == 0 && s2.st_dev == st->st_dev && s2.st_ino == st->st_ino)
			return true;
		struct vhd_info i;
		if (vhd_get_info(b, &i) < 0)
			break;
		bd = i.parent;
	}
	return false;
}

int vhd_rebase(const char *path, const char *new_parent, bool unsafe,
	       void (*progress)(uint64_t, uint64_t, void *), void *ctx)
{
	struct block_dev *np;
	int ret = block_open(new_parent, NULL, BLOCK_OPEN_RDONLY, &np);
	if (ret < 0)
		return ret;
	struct stat cst;
	struct vhd_info ni;
	if (!vhd_is_vhd(block_bottom(np)) || vhd_get_info(block_bottom(np), &ni) < 0) {
		block_close(np);
		return err_set(-EINVAL, "%s: the parent of a VHD differencing disk must be a VHD image", new_parent);
	}
	struct vhd_footer pf = ni.meta->footer;
	if (stat(path, &cst) < 0) {
		block_close(np);
		return err_set(-errno, "%s: %s", path, strerror(errno));
	}
	if (chain_contains(np, &cst)) {
		block_close(np);
		return err_set(-ELOOP, "%s: the new parent's chain contains this image", path);
	}
	if (!unsafe) {
		/* Safe mode: every sector whose content the parent switch would
		 * change gets the old content written into the child first. */
		struct block_dev *child;
		struct vhd_info ci;
		ret = open_vhd_chain(path, 0, &child, &ci);
		if (ret < 0) {
			block_close(np);
			return err_wrap(ret, "the old parent must be readable for a safe rebase (-u skips it)");
		}
		size_t bytes = (size_t)CHUNK_SECTORS << BLOCK_SECTOR_SHIFT;
		uint8_t *a = malloc(bytes), *b = malloc(bytes);
		if (!a || !b)
			ret = err_set(-ENOMEM, "out of memory");
		for (uint64_t s = 0; s < child->sectors && ret == 0;) {
			uint32_t n = child->sectors - s < CHUNK_SECTORS ? (uint32_t)(child->sectors - s) : CHUNK_SECTORS;
			ret = block_read(child, s, a, n);
			uint32_t from_np = s >= np->sectors ? 0 : np->sectors - s < n ? (uint32_t)(np->sectors - s) : n;
			memset(b, 0, bytes);
			if (ret == 0 && from_np)
				ret = block_read(np, s, b, from_np);
			for (uint32_t i = 0; i < n && ret == 0;) {
				size_t o = (size_t)i << BLOCK_SECTOR_SHIFT;
				if (!memcmp(a + o, b + o, BLOCK_SECTOR_SIZE)) {
					i++;
					continue;
				}
				uint32_t j = i + 1;
				while (j < n && memcmp(a + ((size_t)j << BLOCK_SECTOR_SHIFT), b + ((size_t)j << BLOCK_SECTOR_SHIFT), BLOCK_SECTOR_SIZE))
					j++;
				ret = block_write(child, s + i, a + o, j - i);
				i = j;
			}
			s += n;
			if (progress)
				progress(s, child->sectors, ctx);
		}
		free(a);
		free(b);
		if (ret == 0)
			ret = block_flush(child);
		block_close(child);
	}
	block_close(np);
	if (ret < 0)
		return ret;
	/* The new parent fields: the locator data goes to fresh space at the
	 * end (the footer moves past it first), then one header write switches
	 * to it, so a crash leaves the old or the new parent, never a mix. */
	struct block_file f;
	struct vhd_meta m;
	ret = load_strict(&f, path, &m);
	if (ret < 0)
		return ret;
	if (m.footer.type != VHD_TYPE_DIFF) {
		ret = err_set(-EINVAL, "%s is not a differencing disk", path);
		goto out;
	}
	uint64_t at = m.footer_off;
	ret = write_footers(&f, &m.footer, at + 2 * VHD_LOCATOR_SPACE, false);
	if (ret == 0)
		ret = vhd_set_parent(&f, &m.header, path, new_parent, &pf, at);
	if (ret == 0)
		ret = block_file_sync(&f);
	if (ret == 0)
		ret = write_header(&f, &m);
out:
	vhd_meta_free(&m);
	block_file_close(&f);
	return ret;
}
