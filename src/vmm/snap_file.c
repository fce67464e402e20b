/* Snapshot file writer and reader (docs/snapshot.md "File format").
 *
 * The reader trusts nothing: every header is CRC-checked and every offset
 * and length is checked against the file size before anything is read or
 * mapped, so a truncated or corrupted file is refused with a message
 * instead of restoring garbage. */
#include "vmm/snapshot.h"

#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_SECTIONS 4096
#define CHUNK (8u << 20)

static uint32_t crc_of(const void *p, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	const uint8_t *b = p;
	/* zlib takes uInt lengths: feed it in chunks. */
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;
		crc = crc32(crc, b, (uInt)n);
		b += n;
		len -= n;
	}
	return (uint32_t)crc;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len > CHUNK ? CHUNK : len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len > CHUNK ? CHUNK : len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- writer ---- */

int snap_writer_open(struct snap_writer *w, const char *path)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	size_t n = strlen(path) + 16;
	w->path = strdup(path);
	w->tmp_path = malloc(n);
	if (!w->path || !w->tmp_path) {
		snap_writer_abort(w);
		return err_set(-ENOMEM, "snapshot %s: out of memory", path);
	}
	/* Same directory as the final name, so rename() is atomic. */
	snprintf(w->tmp_path, n, "%s.tmpXXXXXX", path);
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		int e = errno;
		free(w->tmp_path);
		w->tmp_path = NULL;
		snap_writer_abort(w);
		return err_set(-e, "snapshot %s: cannot create: %s", path, strerror(e));
	}
	struct snap_file_header h = { .version = SNAP_VERSION, .byte_order = SNAP_BYTE_ORDER,
				      .header_size = sizeof(h), .section_header_size = sizeof(struct snap_section_header),
				      .created = (uint64_t)time(NULL) };
	memcpy(h.magic, SNAP_MAGIC, 8);
	h.crc = crc_of(&h, sizeof(h));
	int rc = pwrite_all(w->fd, &h, sizeof(h), 0);
	if (rc < 0) {
		snap_writer_abort(w);
		return err_set(rc, "snapshot %s: write: %s", path, strerror(-rc));
	}
	w->off = sizeof(h);
	return 0;
}

static int write_section_header(struct snap_writer *w, uint64_t at, uint32_t type, uint32_t version, uint64_t arg,
				const char *name, uint64_t data_offset, uint64_t len, uint32_t data_crc)
{
	struct snap_section_header s = { .type = type, .version = version, .data_offset = data_offset, .length = len,
					 .arg = arg, .data_crc = data_crc };
	if (name)
		snprintf(s.name, sizeof(s.name), "%s", name);
	s.crc = crc_of(&s, sizeof(s));
	int rc = pwrite_all(w->fd, &s, sizeof(s), at);
	if (rc < 0)
		return err_set(rc, "snapshot %s: write: %s", w->path, strerror(-rc));
	return 0;
}

int snap_writer_section(struct snap_writer *w, uint32_t type, uint32_t version, uint64_t arg, const char *name,
			const void *data, size_t len)
{
	if (name && strlen(name) >= SNAP_NAME_MAX)
		return err_set(-EINVAL, "snapshot %s: section name '%s' too long", w->path, name);
	uint64_t hdr = w->off, data_off = hdr + sizeof(struct snap_section_header);
	int rc = len ? pwrite_all(w->fd, data, len, data_off) : 0;
	if (rc < 0)
		return err_set(rc, "snapshot %s: write: %s", w->path, strerror(-rc));
	if ((rc = write_section_header(w, hdr, type, version, arg, name, data_off, len, crc_of(data, len))) < 0)
		return rc;
	w->off = data_off + len;
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	uint64_t acc = 0;
	for (unsigned i = 0; i < SNAP_PAGE / 8; i += 8)
		acc |= q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7];
	return acc == 0;
}

int snap_writer_memory(struct snap_writer *w, uint64_t gpa, const void *host, uint64_t size)
{
	uint64_t hdr = w->off;
	uint64_t data_off = (hdr + sizeof(struct snap_section_header) + SNAP_PAGE - 1) & ~(uint64_t)(SNAP_PAGE - 1);
	static uint8_t zero[SNAP_PAGE];
	uint32_t zero_crc = crc_of(zero, SNAP_PAGE);
	uLong crc = crc32(0L, Z_NULL, 0);
	const uint8_t *base = host;
	uint64_t run_start = 0, run_len = 0;
	int rc = 0;
	for (uint64_t off = 0; rc == 0; off += SNAP_PAGE) {
		bool end = off >= size;
		/* A partial last page (RAM not a whole number of pages) is
		 * always stored. */
		uint64_t plen = end ? 0 : (size - off < SNAP_PAGE ? size - off : SNAP_PAGE);
		bool zero_page = plen == SNAP_PAGE && page_is_zero(base + off);
		if ((end || zero_page || run_len >= CHUNK) && run_len) {
			/* Flush the run of data pages. */
			rc = pwrite_all(w->fd, base + run_start, run_len, data_off + run_start);
			crc = crc32(crc, base + run_start, (uInt)run_len);
			run_len = 0;
		}
		if (end)
			break;
		if (zero_page) {
			/* A hole: nothing written, CRC extended arithmetically. */
			crc = crc32_combine(crc, zero_crc, SNAP_PAGE);
			w->zero_pages++;
		} else {
			if (!run_len)
				run_start = off;
			run_len += plen;
		}
	}
	if (rc < 0)
		return err_set(rc, "snapshot %s: write: %s", w->path, strerror(-rc));
	if ((rc = write_section_header(w, hdr, SNAP_SEC_MEMORY, 1, gpa, "ram", data_off, size, (uint32_t)crc)) < 0)
		return rc;
	w->off = data_off + size;
	return 0;
}

int snap_writer_commit(struct snap_writer *w)
{
	int rc = snap_writer_section(w, SNAP_SEC_END, 1, 0, "end", NULL, 0);
	if (rc < 0)
		goto fail;
	/* Holes at the end of the last memory section are already covered:
	 * END follows them, so the file size is right. */
	if (fsync(w->fd) < 0) {
		rc = err_set(-errno, "snapshot %s: fsync: %s", w->path, strerror(errno));
		goto fail;
	}
	if (close(w->fd) < 0) {
		w->fd = -1;
		rc = err_set(-errno, "snapshot %s: close: %s", w->path, strerror(errno));
		goto fail;
	}
	w->fd = -1;
	if (rename(w->tmp_path, w->path) < 0) {
		rc = err_set(-errno, "snapshot %s: rename: %s", w->path, strerror(errno));
		goto fail;
	}
	/* The rename itself must reach the disk too. */
	char *dcopy = strdup(w->path);
	int dfd = dcopy ? open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(dcopy);
	free(w->tmp_path);
	w->tmp_path = NULL;
	snap_writer_abort(w);
	return 0;
fail:
	snap_writer_abort(w);
	return rc;
}

void snap_writer_abort(struct snap_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->tmp_path)
		unlink(w->tmp_path);
	free(w->tmp_path);
	free(w->path);
	w->tmp_path = w->path = NULL;
}

/* ---- reader ---- */

static const char *type_name(uint32_t t)
{
	switch (t) {
	case SNAP_SEC_CONFIG: return "config";
	case SNAP_SEC_CPU: return "cpu";
	case SNAP_SEC_DEVICE: return "device";
	case SNAP_SEC_MEMORY: return "memory";
	case SNAP_SEC_END: return "end";
	default: return "unknown";
	}
}

int snap_reader_open(struct snap_reader *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return err_set(-errno, "snapshot %s: %s", path, strerror(errno));
	r->path = strdup(path);
	struct stat st;
	int rc;
	if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = err_set(-EINVAL, "snapshot %s: not a regular file", path);
		goto fail;
	}
	r->file_size = (uint64_t)st.st_size;
	struct snap_file_header h;
	if (r->file_size < sizeof(h) || pread_all(r->fd, &h, sizeof(h), 0) < 0) {
		rc = err_set(-EINVAL, "snapshot %s: truncated: %" PRIu64 " bytes is shorter than the header", path,
			     r->file_size);
		goto fail;
	}
	if (memcmp(h.magic, SNAP_MAGIC, 8)) {
		rc = err_set(-EINVAL, "snapshot %s: not a vessel snapshot (bad magic)", path);
		goto fail;
	}
	if (h.byte_order != SNAP_BYTE_ORDER) {
		rc = err_set(-EINVAL, "snapshot %s: written with another byte order (mark %#x)", path, h.byte_order);
		goto fail;
	}
	if (h.version != SNAP_VERSION) {
		rc = err_set(-EINVAL, "snapshot %s: format version %u, but this vessel reads version %u", path,
			     h.version, SNAP_VERSION);
		goto fail;
	}
	uint32_t crc = h.crc;
	h.crc = 0;
	if (crc_of(&h, sizeof(h)) != crc || h.header_size != sizeof(h) ||
	    h.section_header_size != sizeof(struct snap_section_header)) {
		rc = err_set(-EINVAL, "snapshot %s: corrupted file header (CRC mismatch)", path);
		goto fail;
	}
	r->sections = calloc(MAX_SECTIONS, sizeof(*r->sections));
	if (!r->sections) {
		rc = err_set(-ENOMEM, "snapshot %s: out of memory", path);
		goto fail;
	}
	uint64_t off = sizeof(h);
	for (;;) {
		struct snap_section_header s;
		if (off > r->file_size || r->file_size - off < sizeof(s)) {
			rc = err_set(-EINVAL, "snapshot %s: truncated: no section header at offset %" PRIu64
				     " (file is %" PRIu64 " bytes; the end marker is missing)", path, off, r->file_size);
			goto fail;
		}
		if ((rc = pread_all(r->fd, &s, sizeof(s), off)) < 0) {
			rc = err_set(rc, "snapshot %s: read: %s", path, strerror(-rc));
			goto fail;
		}
		crc = s.crc;
		s.crc = 0;
		if (crc_of(&s, sizeof(s)) != crc) {
			rc = err_set(-EINVAL, "snapshot %s: corrupted section header at offset %" PRIu64 " (CRC mismatch)",
				     path, off);
			goto fail;
		}
		s.crc = crc;
		s.name[SNAP_NAME_MAX - 1] = 0;
		if (s.data_offset < off + sizeof(s) || s.data_offset > r->file_size ||
		    s.length > r->file_size - s.data_offset) {
			rc = err_set(-EINVAL, "snapshot %s: truncated: %s section '%s' needs bytes up to %" PRIu64
				     " but the file has %" PRIu64, path, type_name(s.type), s.name,
				     s.data_offset + s.length, r->file_size);
			goto fail;
		}
		if (r->n == MAX_SECTIONS) {
			rc = err_set(-EINVAL, "snapshot %s: more than %d sections", path, MAX_SECTIONS);
			goto fail;
		}
		r->sections[r->n++] = s;
		if (s.type == SNAP_SEC_END)
			break;
		off = s.data_offset + s.length;
	}
	return 0;
fail:
	snap_reader_close(r);
	return rc;
}

void snap_reader_close(struct snap_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->sections);
	free(r->path);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

const struct snap_section_header *snap_reader_find(const struct snap_reader *r, uint32_t type, const char *name)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->sections[i].type == type && (!name || !strcmp(r->sections[i].name, name)))
			return &r->sections[i];
	return NULL;
}

int snap_reader_read(const struct snap_reader *r, const struct snap_section_header *sec, void *buf)
{
	int rc = pread_all(r->fd, buf, sec->length, sec->data_offset);
	if (rc < 0)
		return err_set(rc, "snapshot %s: read: %s", r->path, strerror(-rc));
	if (crc_of(buf, sec->length) != sec->data_crc)
		return err_set(-EINVAL, "snapshot %s: %s section '%s' is corrupted (CRC mismatch)", r->path,
			       type_name(sec->type), sec->name);
	return 0;
}

int snap_reader_memory(const struct snap_reader *r, const struct snap_section_header *sec, void *dest, bool map,
		       bool verify)
{
	if (map) {
		/* Copy-on-write view of the file: pages are read on first touch
		 * and the guest's writes never reach the snapshot. */
		void *p = mmap(dest, sec->length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, r->fd,
			       (off_t)sec->data_offset);
		if (p == MAP_FAILED)
			return err_set(-errno, "snapshot %s: cannot map RAM: %s", r->path, strerror(errno));
		if (verify && crc_of(dest, sec->length) != sec->data_crc)
			return err_set(-EINVAL, "snapshot %s: memory section at %#" PRIx64 " is corrupted (CRC mismatch)",
				       r->path, sec->arg);
		return 0;
	}
	int rc = pread_all(r->fd, dest, sec->length, sec->data_offset);
	if (rc < 0)
		return err_set(rc, "snapshot %s: read: %s", r->path, strerror(-rc));
	if (verify && crc_of(dest, sec->length) != sec->data_crc)
		return err_set(-EINVAL, "snapshot %s: memory section at %#" PRIx64 " is corrupted (CRC mismatch)",
			       r->path, sec->arg);
	return 0;
}
