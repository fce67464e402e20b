/* libFuzzer target: the snapshot reader (docs/snapshot.md).  The input
 * is a snapshot file: its header and section table are checked as
 * `vessel run --restore` checks them, every section's payload is read
 * (CRC checked), and the CONFIG section is turned into a VM
 * configuration, as before a restore.  Each input runs twice: as it is,
 * and with every CRC recomputed (walking the sections as the reader
 * does), so that mutations get past the CRCs to the checks behind them.
 * Any crash, leak or sanitizer report is a bug: bad input must only
 * produce an error. */
#include "vmm/snapshot_format.h"
#include "vmm/snapshot.h"
#include "vmm/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t crc_of(const void *p, size_t len)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)len);
}

/* Recomputes the header's and each section's CRCs in place. */
static void fix_crcs(uint8_t *d, size_t size)
{
	struct snap_file_header h;
	if (size < sizeof(h))
		return;
	memcpy(&h, d, sizeof(h));
	h.crc = 0;
	h.crc = crc_of(&h, sizeof(h));
	memcpy(d, &h, sizeof(h));
	uint64_t off = sizeof(h);
	for (int i = 0; i < 64 && off <= size && size - off >= sizeof(struct snap_section_header); i++) {
		struct snap_section_header s;
		memcpy(&s, d + off, sizeof(s));
		if (s.data_offset <= size && s.length <= size - s.data_offset)
			s.data_crc = crc_of(d + s.data_offset, (size_t)s.length);
		s.crc = 0;
		s.crc = crc_of(&s, sizeof(s));
		memcpy(d + off, &s, sizeof(s));
		if (s.type == SNAP_SEC_END || s.data_offset > size || s.length > size - s.data_offset ||
		    s.data_offset + s.length <= off)
			break;
		off = s.data_offset + s.length;
	}
}

static void read_snapshot(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.snap", 0);
	if (fd < 0)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	struct snap_reader r;
	if (snap_reader_open(&r, path) == 0) {
		for (unsigned i = 0; i < r.n; i++) {
			const struct snap_section_header *s = &r.sections[i];
			/* The reader bounds every section by the file: a payload
			 * larger than the input would be a reader bug. */
			if (s->length > size)
				abort();
			void *buf = malloc(s->length ? s->length : 1);
			if (buf)
				snap_reader_read(&r, s, buf);
			free(buf);
		}
		snap_reader_close(&r);
	}

	struct vm_config cfg;
	vm_config_defaults(&cfg);
	snapshot_load_config(path, &cfg);
	vm_config_free(&cfg);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_snapshot(data, size);
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fix_crcs(copy, size);
	if (size && memcmp(copy, data, size))
		read_snapshot(copy, size);
	free(copy);
	return 0;
}
