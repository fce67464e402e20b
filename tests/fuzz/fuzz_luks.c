/* libFuzzer target: the LUKS2 header parser (docs/disk-encryption.md).
 * The input is the start of a container, the rest reads as zeros up to
 * just past vessel's data offset (2 MiB): luks_inspect() reads and checks
 * the header as `vessel disk info` and every open do.  Unlocking is left
 * out: its cost is the keyslot's PBKDF, which the input chooses.  Any
 * crash, leak or sanitizer report is a bug: bad input must only produce
 * an error. */
#include "block/luks.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *data;
	size_t size;
};

static int mem_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	const struct mem *m = opaque;
	memset(buf, 0, len);
	if (off < m->size)
		memcpy(buf, m->data + off, m->size - off < len ? m->size - off : len);
	return 0;
}

static int mem_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	(void)opaque, (void)off, (void)buf, (void)len;
	return -EROFS;   /* inspecting writes nothing */
}

/* LUKS2 On-Disk Format 2.1: the binary header's checksum (offset 448,
 * sha256 here) covers hdr_size bytes (big-endian at offset 8: binary
 * header and JSON area) with the checksum field zeroed.  Recomputed for
 * both copies so that mutations reach the JSON checks behind it. */
static void fix_checksum(uint8_t *d, size_t size, size_t at)
{
	if (at + 512 > size || memcmp(d + at, "LUKS\xba\xbe", 6) || memcmp(d + at + 72, "sha256", 7))
		return;
	uint64_t hdr_size = 0;
	for (int i = 0; i < 8; i++)
		hdr_size = hdr_size << 8 | d[at + 8 + i];
	if (hdr_size < 4096 || hdr_size > size - at)
		return;
	memset(d + at + 448, 0, 64);
	SHA256(d + at, (size_t)hdr_size, d + at + 448);
}

static void inspect(const uint8_t *data, size_t size)
{
	struct mem m = { data, size };
	struct luks_io io = { mem_read, mem_write, LUKS_NEW_DATA_OFFSET + (64u << 10), &m };
	struct luks_info info;
	luks_inspect(&io, &info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	inspect(data, size);
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fix_checksum(copy, size, 0);
	if (size >= 16) {
		uint64_t hdr_size = 0;
		for (int i = 0; i < 8; i++)
			hdr_size = hdr_size << 8 | copy[8 + i];
		if (hdr_size < size)
			fix_checksum(copy, size, (size_t)hdr_size);
	}
	if (memcmp(copy, data, size))
		inspect(copy, size);
	free(copy);
	return 0;
}
