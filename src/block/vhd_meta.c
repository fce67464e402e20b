/* VHD metadata: encoding and decoding of the footer and the dynamic disk
 * header, checksums, CHS geometry, and the validation of a whole image's
 * metadata (footer, header, BAT, locators) shared by open and check. */
#include "block/vhd.h"
#include "util/error.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += buf[i];
	return ~sum;
}

/* Footer field offsets (spec "Hard Disk Footer Format", in order). */
enum {
	F_COOKIE = 0, F_FEATURES = 8, F_VERSION = 12, F_DATA_OFFSET = 16, F_TIMESTAMP = 24,
	F_CREATOR_APP = 28, F_CREATOR_VER = 32, F_CREATOR_OS = 36, F_ORIG_SIZE = 40,
	F_CUR_SIZE = 48, F_GEOMETRY = 56, F_TYPE = 60, F_CHECKSUM = 64, F_UUID = 68,
	F_SAVED_STATE = 84,
};
/* Dynamic Disk Header field offsets. */
enum {
	H_COOKIE = 0, H_DATA_OFFSET = 8, H_TABLE_OFFSET = 16, H_VERSION = 24, H_MAX_ENTRIES = 28,
	H_BLOCK_SIZE = 32, H_CHECKSUM = 36, H_PARENT_UUID = 40, H_PARENT_TS = 56,
	H_PARENT_NAME = 64, H_LOCATORS = 576,
};

int vhd_footer_decode(const uint8_t buf[VHD_FOOTER_SIZE], struct vhd_footer *f)
{
	memset(f, 0, sizeof(*f));
	if (memcmp(buf + F_COOKIE, "conectix", 8) != 0)
		return err_set(-EINVAL, "not a VHD footer (no \"conectix\" cookie)");
	f->features = get32(buf + F_FEATURES);
	f->version = get32(buf + F_VERSION);
	f->data_offset = get64(buf + F_DATA_OFFSET);
	f->timestamp = get32(buf + F_TIMESTAMP);
	memcpy(f->creator_app, buf + F_CREATOR_APP, 4);
	f->creator_ver = get32(buf + F_CREATOR_VER);
	f->creator_os = get32(buf + F_CREATOR_OS);
	f->orig_size = get64(buf + F_ORIG_SIZE);
	f->cur_size = get64(buf + F_CUR_SIZE);
	f->cyls = get16(buf + F_GEOMETRY);
	f->heads = buf[F_GEOMETRY + 2];
	f->spt = buf[F_GEOMETRY + 3];
	f->type = get32(buf + F_TYPE);
	f->checksum = get32(buf + F_CHECKSUM);
	memcpy(f->uuid, buf + F_UUID, 16);
	f->saved_state = buf[F_SAVED_STATE];
	uint32_t sum = vhd_checksum(buf, VHD_FOOTER_SIZE, F_CHECKSUM);
	if (sum != f->checksum)
		return err_set(-EBADMSG, "footer checksum mismatch (stored 0x%08x, computed 0x%08x)",
			       f->checksum, sum);
	/* File Format Version: the major version must be 1. */
	if (f->version >> 16 != 1)
		return err_set(-EINVAL, "unsupported VHD version 0x%08x", f->version);
	if (f->type != VHD_TYPE_FIXED && f->type != VHD_TYPE_DYNAMIC && f->type != VHD_TYPE_DIFF)
		return err_set(-EINVAL, "unsupported VHD disk type %u", f->type);
	if (f->cur_size % BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "virtual size %llu is not a whole number of sectors",
			       (unsigned long long)f->cur_size);
	if (f->cur_size > VHD_MAX_SECTORS * BLOCK_SECTOR_SIZE)
		return err_set(-EINVAL, "virtual size %llu is larger than the VHD maximum (2040 GiB)",
			       (unsigned long long)f->cur_size);
	return 0;
}

void vhd_footer_encode(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE])
{
	memset(buf, 0, VHD_FOOTER_SIZE);
	memcpy(buf + F_COOKIE, "conectix", 8);
	put32(buf + F_FEATURES, f->features);
	put32(buf + F_VERSION, f->version);
	put64(buf + F_DATA_OFFSET, f->data_offset);
	put32(buf + F_TIMESTAMP, f->timestamp);
	memcpy(buf + F_CREATOR_APP, f->creator_app, 4);
	put32(buf + F_CREATOR_VER, f->creator_ver);
	put32(buf + F_CREATOR_OS, f->creator_os);
	put64(buf + F_ORIG_SIZE, f->orig_size);
	put64(buf + F_CUR_SIZE, f->cur_size);
	put16(buf + F_GEOMETRY, f->cyls);
	buf[F_GEOMETRY + 2] = f->heads;
	buf[F_GEOMETRY + 3] = f->spt;
	put32(buf + F_TYPE, f->type);
	memcpy(buf + F_UUID, f->uuid, 16);
	buf[F_SAVED_STATE] = f->saved_state;
	put32(buf + F_CHECKSUM, vhd_checksum(buf, VHD_FOOTER_SIZE, F_CHECKSUM));
}

int vhd_header_decode(const uint8_t buf[VHD_HEADER_SIZE], struct vhd_header *h)
{
	memset(h, 0, sizeof(*h));
	if (memcmp(buf + H_COOKIE, "cxsparse", 8) != 0)
		return err_set(-EINVAL, "no dynamic disk header (no \"cxsparse\" cookie)");
	h->data_offset = get64(buf + H_DATA_OFFSET);
	h->table_offset = get64(buf + H_TABLE_OFFSET);
	h->version = get32(buf + H_VERSION);
	h->max_entries = get32(buf + H_MAX_ENTRIES);
	h->block_size = get32(buf + H_BLOCK_SIZE);
	h->checksum = get32(buf + H_CHECKSUM);
	memcpy(h->parent_uuid, buf + H_PARENT_UUID, 16);
	h->parent_ts = get32(buf + H_PARENT_TS);
	for (int i = 0; i < 256; i++)
		h->parent_name[i] = get16(buf + H_PARENT_NAME + 2 * i);
	for (int i = 0; i < VHD_LOCATORS; i++) {
		const uint8_t *l = buf + H_LOCATORS + 24 * i;
		h->loc[i].code = get32(l);
		h->loc[i].space = get32(l + 4);
		h->loc[i].len = get32(l + 8);
		h->loc[i].offset = get64(l + 16);
	}
	uint32_t sum = vhd_checksum(buf, VHD_HEADER_SIZE, H_CHECKSUM);
	if (sum != h->checksum)
		return err_set(-EBADMSG, "dynamic disk header checksum mismatch (stored 0x%08x, computed 0x%08x)",
			       h->checksum, sum);
	if (h->version >> 16 != 1)
		return err_set(-EINVAL, "unsupported dynamic disk header version 0x%08x", h->version);
	/* Block Size: the spec's default is 2 MiB; any power of two from one
	 * sector to 256 MiB is accepted (bitmaps stay small). */
	if (h->block_size < BLOCK_SECTOR_SIZE || h->block_size > (256u << 20) ||
	    (h->block_size & (h->block_size - 1)))
		return err_set(-EINVAL, "invalid block size %u", h->block_size);
	return 0;
}

void vhd_header_encode(const struct vhd_header *h, uint8_t buf[VHD_HEADER_SIZE])
{
	memset(buf, 0, VHD_HEADER_SIZE);
	memcpy(buf + H_COOKIE, "cxsparse", 8);
	put64(buf + H_DATA_OFFSET, h->data_offset);
	put64(buf + H_TABLE_OFFSET, h->table_offset);
	put32(buf + H_VERSION, h->version);
	put32(buf + H_MAX_ENTRIES, h->max_entries);
	put32(buf + H_BLOCK_SIZE, h->block_size);
	memcpy(buf + H_PARENT_UUID, h->parent_uuid, 16);
	put32(buf + H_PARENT_TS, h->parent_ts);
	for (int i = 0; i < 256; i++)
		put16(buf + H_PARENT_NAME + 2 * i, h->parent_name[i]);
	for (int i = 0; i < VHD_LOCATORS; i++) {
		uint8_t *l = buf + H_LOCATORS + 24 * i;
		put32(l, h->loc[i].code);
		put32(l + 4, h->loc[i].space);
		put32(l + 8, h->loc[i].len);
		put64(l + 16, h->loc[i].offset);
	}
	put32(buf + H_CHECKSUM, vhd_checksum(buf, VHD_HEADER_SIZE, H_CHECKSUM));
}

/* Spec appendix "CHS Calculation", verbatim in structure. */
void vhd_geometry(uint64_t total, uint16_t *cyls, uint8_t *heads, uint8_t *spt)
{
	uint64_t cth, h, s;
	if (total > VHD_MAX_GEOMETRY)
		total = VHD_MAX_GEOMETRY;
	if (total >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = total / s;
	} else {
		s = 17;
		cth = total / s;
		h = (cth + 1023) / 1024;
		if (h < 4)
			h = 4;
		if (cth >= h * 1024 || h > 16) {
			s = 31;
			h = 16;
			cth = total / s;
		}
		if (cth >= h * 1024) {
			s = 63;
			h = 16;
			cth = total / s;
		}
	}
	*cyls = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}

uint32_t vhd_bitmap_bytes(uint32_t block_size)
{
	uint32_t bits = block_size / BLOCK_SECTOR_SIZE;
	uint32_t bytes = (bits + 7) / 8;
	return (bytes + BLOCK_SECTOR_SIZE - 1) & ~(BLOCK_SECTOR_SIZE - 1);
}

/* ---- UTF-16 ------------------------------------------------------------ */

size_t vhd_utf8_to_utf16(const char *s, uint16_t *out, size_t max)
{
	size_t n = 0;
	const uint8_t *p = (const uint8_t *)s;
	while (*p && n < max) {
		uint32_t c;
		int extra;
		if (*p < 0x80) { c = *p; extra = 0; }
		else if ((*p & 0xe0) == 0xc0) { c = *p & 0x1f; extra = 1; }
		else if ((*p & 0xf0) == 0xe0) { c = *p & 0x0f; extra = 2; }
		else { c = *p & 0x07; extra = 3; }
		p++;
		for (int i = 0; i < extra && (*p & 0xc0) == 0x80; i++)
			c = c << 6 | (*p++ & 0x3f);
		if (c >= 0x10000) {
			if (n + 2 > max)
				break;
			c -= 0x10000;
			out[n++] = (uint16_t)(0xd800 | (c >> 10));
			out[n++] = (uint16_t)(0xdc00 | (c & 0x3ff));
		} else {
			out[n++] = (uint16_t)c;
		}
	}
	return n;
}

int vhd_utf16_to_utf8(const uint16_t *in, size_t units, char *out, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < units && in[i]; i++) {
		uint32_t c = in[i];
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < units && in[i + 1] >= 0xdc00 && in[i + 1] < 0xe000) {
			c = 0x10000 + ((c - 0xd800) << 10) + (in[i + 1] - 0xdc00);
			i++;
		}
		uint8_t b[4];
		int n;
		if (c < 0x80) { b[0] = (uint8_t)c; n = 1; }
		else if (c < 0x800) { b[0] = (uint8_t)(0xc0 | c >> 6); b[1] = (uint8_t)(0x80 | (c & 0x3f)); n = 2; }
		else if (c < 0x10000) { b[0] = (uint8_t)(0xe0 | c >> 12); b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f)); b[2] = (uint8_t)(0x80 | (c & 0x3f)); n = 3; }
		else { b[0] = (uint8_t)(0xf0 | c >> 18); b[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f)); b[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f)); b[3] = (uint8_t)(0x80 | (c & 0x3f)); n = 4; }
		if (o + (size_t)n >= len)
			return err_set(-ENAMETOOLONG, "path too long");
		memcpy(out + o, b, (size_t)n);
		o += (size_t)n;
	}
	if (!len)
		return err_set(-ENAMETOOLONG, "path too long");
	out[o] = 0;
	return 0;
}

/* ---- validation of a whole image ---------------------------------------- */

enum sev { SEV_WARN, SEV_ERROR, SEV_FIXABLE };

/* Records one problem.  Without a report (the open path) errors end the
 * load: the return value is the error to return, 0 means go on. */
static int problem(struct vhd_report *rep, enum sev sev, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int problem(struct vhd_report *rep, enum sev sev, int err, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!rep) {
		/* The whole message: a path in it is never cut. */
		int rc = sev == SEV_ERROR ? err_set(err, "%s", msg ? msg : "out of memory") : 0;
		free(msg);
		return rc;
	}
	if (sev == SEV_WARN) {
		rep->warnings++;
	} else {
		rep->errors++;
		if (sev == SEV_ERROR) {
			rep->repairable = false;
			rep->damaged++;
		}
	}
	if (rep->n_msgs < sizeof(rep->msgs) / sizeof(rep->msgs[0]))
		snprintf(rep->msgs[rep->n_msgs++], sizeof(rep->msgs[0]), "%s%s",
			 sev == SEV_WARN ? "warning: " : sev == SEV_FIXABLE ? "repairable: " : "error: ",
			 msg ? msg : "out of memory");
	free(msg);
	return 0;
}

struct span { uint64_t off, len; uint32_t idx; };
#define SPAN_META 0xffffffffu

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

void vhd_meta_free(struct vhd_meta *m)
{
	free(m->bat);
	m->bat = NULL;
}

static int load_dynamic(struct block_file *f, struct vhd_meta *m, struct vhd_report *rep);

int vhd_meta_load(struct block_file *f, struct vhd_meta *m, struct vhd_report *rep)
{
	memset(m, 0, sizeof(*m));
	if (rep) {
		memset(rep, 0, sizeof(*rep));
		rep->repairable = true;
	}
	int ret = block_file_size(f, &m->file_size);
	if (ret < 0)
		return ret;
	if (m->file_size < VHD_FOOTER_SIZE)
		return err_set(-EINVAL, "not a VHD image: only %llu bytes", (unsigned long long)m->file_size);
	uint8_t end[VHD_FOOTER_SIZE], copy[VHD_FOOTER_SIZE];
	ret = block_file_pread(f, end, sizeof(end), m->file_size - VHD_FOOTER_SIZE);
	if (ret < 0)
		return ret;
	int end_ret = vhd_footer_decode(end, &m->footer);
	char end_msg[200];
	snprintf(end_msg, sizeof(end_msg), "%s", err_msg());
	m->end_footer_ok = end_ret == 0;
	int copy_ret = -EINVAL;
	struct vhd_footer cf;
	if (m->file_size >= 2 * VHD_FOOTER_SIZE) {
		ret = block_file_pread(f, copy, sizeof(copy), 0);
		if (ret < 0)
			return ret;
		copy_ret = vhd_footer_decode(copy, &cf);
	}
	if (!m->end_footer_ok) {
		/* The end of a dynamic disk is rewritten on every allocation; when
		 * it is unusable the copy at offset 0 (spec: "a copy of the hard
		 * disk footer") still describes the disk. */
		if (copy_ret < 0 || cf.type == VHD_TYPE_FIXED) {
			if (end_ret == -EINVAL && copy_ret == -EINVAL && memcmp(end, "conectix", 8) && memcmp(copy, "conectix", 8))
				return err_set(-EINVAL, "not a VHD image (no footer)");
			return err_set(end_ret == -EINVAL ? copy_ret : end_ret, "%s", end_msg);
		}
		m->footer = cf;
		m->copy_ok = true;
		ret = problem(rep, SEV_FIXABLE, -EINVAL, "footer at the end of the file is missing or damaged (%s); the copy at offset 0 is good", end_msg);
		if (ret < 0)
			return ret;
	} else if (m->footer.type != VHD_TYPE_FIXED) {
		m->copy_ok = copy_ret == 0;
		m->copy_matches = m->copy_ok && memcmp(copy, end, VHD_FOOTER_SIZE) == 0;
	}
	if (m->footer.type == VHD_TYPE_FIXED) {
		m->footer_off = m->file_size - VHD_FOOTER_SIZE;
		if (m->footer.cur_size > m->footer_off)
			return err_set(-EINVAL, "truncated: the fixed disk needs %llu data bytes, the file has %llu", (unsigned long long)m->footer.cur_size,
				       (unsigned long long)m->footer_off);
		if (m->footer.cur_size < m->footer_off)
			return problem(rep, SEV_WARN, 0, "%llu bytes between the data and the footer",
				       (unsigned long long)(m->footer_off - m->footer.cur_size));
		return 0;
	}
	ret = load_dynamic(f, m, rep);
	if (ret < 0)
		return ret;
	if (m->end_footer_ok && !m->copy_ok)
		ret = problem(rep, SEV_FIXABLE, -EINVAL, "the footer copy at offset 0 is missing or damaged");
	else if (m->end_footer_ok && !m->copy_matches)
		ret = problem(rep, SEV_FIXABLE, -EINVAL, "the footer copy at offset 0 differs from the footer");
	return ret;
}

static int load_dynamic(struct block_file *f, struct vhd_meta *m, struct vhd_report *rep)
{
	struct vhd_footer *ft = &m->footer;
	struct vhd_header *h = &m->header;
	uint64_t limit = m->end_footer_ok ? m->file_size - VHD_FOOTER_SIZE : m->file_size;
	if (ft->data_offset % BLOCK_SECTOR_SIZE || ft->data_offset < VHD_FOOTER_SIZE ||
	    ft->data_offset > limit || limit - ft->data_offset < VHD_HEADER_SIZE)
		return err_set(-EINVAL, "header offset %llu is outside the file", (unsigned long long)ft->data_offset);
	uint8_t hb[VHD_HEADER_SIZE];
	int ret = block_file_pread(f, hb, sizeof(hb), ft->data_offset);
	if (ret < 0)
		return ret;
	ret = vhd_header_decode(hb, h);
	if (ret < 0)
		return ret;
	uint64_t needed = (ft->cur_size + h->block_size - 1) / h->block_size;
	/* Max Table Entries "should equal the disk size divided by the block
	 * size"; a few more are harmless, but the count sizes allocations,
	 * so it is bounded (16 Mi entries: 32 TiB at the default block size). */
	if (h->max_entries > VHD_MAX_ENTRIES)
		return err_set(-EINVAL, "the block allocation table has %u entries (at most %u supported)", h->max_entries, VHD_MAX_ENTRIES);
	if (h->max_entries < needed)
		return err_set(-EINVAL, "the block allocation table has %u entries, the disk needs %llu", h->max_entries, (unsigned long long)needed);
	m->bat_bytes = ((uint64_t)h->max_entries * 4 + BLOCK_SECTOR_SIZE - 1) & ~(uint64_t)(BLOCK_SECTOR_SIZE - 1);
	if (h->table_offset % BLOCK_SECTOR_SIZE || h->table_offset < VHD_FOOTER_SIZE ||
	    h->table_offset > limit || limit - h->table_offset < m->bat_bytes)
		return err_set(-EINVAL, "the block allocation table (%llu bytes at %llu) is outside the file", (unsigned long long)m->bat_bytes, (unsigned long long)h->table_offset);
	if (h->table_offset < ft->data_offset + VHD_HEADER_SIZE && ft->data_offset < h->table_offset + m->bat_bytes)
		return err_set(-EINVAL, "the block allocation table overlaps the header");
	m->meta_end = ft->data_offset + VHD_HEADER_SIZE;
	if (h->table_offset + m->bat_bytes > m->meta_end)
		m->meta_end = h->table_offset + m->bat_bytes;
	if (ft->type == VHD_TYPE_DIFF) {
		for (int i = 0; i < VHD_LOCATORS; i++) {
			struct vhd_locator *l = &h->loc[i];
			if (l->code == VHD_PLAT_NONE)
				continue;
			uint64_t ext = ((uint64_t)l->len + BLOCK_SECTOR_SIZE - 1) & ~(uint64_t)(BLOCK_SECTOR_SIZE - 1);
			if (l->offset > limit || limit - l->offset < ext)
				return err_set(-EINVAL, "parent locator %d points outside the file", i);
			/* Platform Data Space is in sectors per the spec, in bytes
			 * in some writers: the reserved room counts as metadata
			 * (not leaked space) under whichever reading fits. */
			uint64_t room = (uint64_t)l->space * BLOCK_SECTOR_SIZE;
			if (room > limit - l->offset)
				room = ((uint64_t)l->space + BLOCK_SECTOR_SIZE - 1) & ~(uint64_t)(BLOCK_SECTOR_SIZE - 1);
			if (room > ext && room <= limit - l->offset)
				ext = room;
			if (l->offset + ext > m->meta_end)
				m->meta_end = l->offset + ext;
		}
	}
	m->bat = malloc(m->bat_bytes ? m->bat_bytes : 1);
	if (!m->bat)
		return err_set(-ENOMEM, "out of memory");
	ret = block_file_pread(f, m->bat, m->bat_bytes, h->table_offset);
	if (ret < 0)
		goto fail;
	for (uint32_t i = 0; i < h->max_entries; i++)
		m->bat[i] = get32((const uint8_t *)&m->bat[i]);

	/* Every extent of the file (header, BAT, locators, blocks) must lie
	 * inside it and overlap no other: a BAT entry pointing at metadata or
	 * at another block would make writes to one disk region corrupt
	 * another. */
	uint64_t blk = vhd_bitmap_bytes(h->block_size) + (uint64_t)h->block_size;
	struct span *spans = malloc(sizeof(*spans) * ((size_t)h->max_entries + 2 + VHD_LOCATORS));
	if (!spans) {
		ret = err_set(-ENOMEM, "out of memory");
		goto fail;
	}
	uint32_t n = 0;
	spans[n].off = ft->data_offset;
	spans[n].len = VHD_HEADER_SIZE;
	spans[n++].idx = SPAN_META;
	spans[n].off = h->table_offset;
	spans[n].len = m->bat_bytes;
	spans[n++].idx = SPAN_META;
	if (ft->type == VHD_TYPE_DIFF) {
		for (int i = 0; i < VHD_LOCATORS; i++) {
			struct vhd_locator *l = &h->loc[i];
			if (l->code == VHD_PLAT_NONE || !l->len)
				continue;
			spans[n].off = l->offset;
			spans[n].len = ((uint64_t)l->len + BLOCK_SECTOR_SIZE - 1) & ~(uint64_t)(BLOCK_SECTOR_SIZE - 1);
			spans[n++].idx = SPAN_META;
		}
	}
	m->data_end = m->meta_end;
	uint32_t blocks = 0;
	for (uint32_t i = 0; i < h->max_entries; i++) {
		if (m->bat[i] == VHD_BAT_UNUSED)
			continue;
		uint64_t off = (uint64_t)m->bat[i] * BLOCK_SECTOR_SIZE;
		if (off < VHD_FOOTER_SIZE || off > limit || limit - off < blk) {
			ret = problem(rep, SEV_ERROR, -EINVAL, "BAT entry %u (sector %u) points outside the file",
				      i, m->bat[i]);
			if (ret < 0)
				break;
			m->bat[i] = VHD_BAT_UNUSED;  /* the check goes on without it */
			continue;
		}
		spans[n].off = off;
		spans[n].len = blk;
		spans[n++].idx = i;
		blocks++;
		if (off + blk > m->data_end)
			m->data_end = off + blk;
	}
	if (ret == 0) {
		qsort(spans, n, sizeof(*spans), span_cmp);
		for (uint32_t i = 1; i < n; i++) {
			if (spans[i].off >= spans[i - 1].off + spans[i - 1].len)
				continue;
			uint32_t a = spans[i - 1].idx, b = spans[i].idx;
			if (a == SPAN_META && b == SPAN_META)
				ret = problem(rep, SEV_ERROR, -EINVAL, "metadata structures overlap");
			else if (a == SPAN_META || b == SPAN_META)
				ret = problem(rep, SEV_ERROR, -EINVAL, "BAT entry %u points into the metadata",
					      a == SPAN_META ? b : a);
			else
				ret = problem(rep, SEV_ERROR, -EINVAL, "BAT entries %u and %u overlap in the file", a, b);
			if (ret < 0)
				break;
		}
	}
	m->blocks_allocated = blocks;
	free(spans);
	if (ret < 0)
		goto fail;
	if (m->end_footer_ok) {
		m->footer_off = m->file_size - VHD_FOOTER_SIZE;
		/* With BAT entries already refused, their blocks would look
		 * leaked: the count means something only on a sound table. */
		if (m->footer_off > m->data_end && !(rep && rep->damaged)) {
			m->leaked_bytes = m->footer_off - m->data_end;
			ret = problem(rep, SEV_WARN, 0, "%llu bytes leaked after the last block (an interrupted allocation)",
				      (unsigned long long)m->leaked_bytes);
		}
	} else {
		m->footer_off = m->data_end;
	}
	if (m->footer_off % BLOCK_SECTOR_SIZE)
		ret = problem(rep, SEV_ERROR, -EINVAL, "the file size %llu is not a whole number of sectors",
			      (unsigned long long)m->file_size);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	vhd_meta_free(m);
	return ret;
}

/* ---- parent paths --------------------------------------------------------- */

int vhd_parent_paths(const char *child, const char *parent, char *abs_out, size_t abs_len,
		     char *rel_out, size_t rel_len)
{
	char pabs[PATH_MAX], cdir[PATH_MAX], tmp[PATH_MAX];
	if (!realpath(parent, pabs))
		return err_set(-errno, "%s: %s", parent, strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s", child);
	char *slash = strrchr(tmp, '/');
	if (slash == tmp)
		tmp[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(tmp, sizeof(tmp), ".");
	if (!realpath(tmp, cdir))
		return err_set(-errno, "%s: %s", tmp, strerror(errno));
	if ((size_t)snprintf(abs_out, abs_len, "%s", pabs) >= abs_len)
		return err_set(-ENAMETOOLONG, "%s: path too long", pabs);
	/* Skip the directories both paths share, then climb out of the rest
	 * of the child's directory: "./../dir/parent.vhd". */
	const char *c = cdir, *p = pabs;
	for (;;) {
		while (*c == '/')
			c++;
		while (*p == '/')
			p++;
		size_t cl = strcspn(c, "/"), pl = strcspn(p, "/");
		if (!cl || cl != pl || memcmp(c, p, cl) != 0 || !p[pl])
			break;
		c += cl;
		p += pl;
	}
	size_t o = (size_t)snprintf(rel_out, rel_len, ".");
	while (*c && o < rel_len) {
		while (*c == '/')
			c++;
		if (!*c)
			break;
		c += strcspn(c, "/");
		o += (size_t)snprintf(rel_out + o, rel_len - o, "/..");
	}
	if (o >= rel_len || o + 1 + strlen(p) >= rel_len)
		return err_set(-ENAMETOOLONG, "path too long");
	snprintf(rel_out + o, rel_len - o, "/%s", p);
	return 0;
}
