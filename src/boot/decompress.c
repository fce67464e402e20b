/* Host-side decompression of a bzImage payload (boot.rst, "payload_offset"):
 * the compressed vmlinux, in whichever format the kernel was built with,
 * recognised by its magic number as the kernel's own decompressor does
 * (lib/decompress.c).  Output is bounded by max_out: a hostile image
 * cannot make the monitor allocate without limit. */
#include "boot/boot.h"

#include "util/error.h"

#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* Where an unpacker writes: a buffer it grows (malloc'd, up to max), or
 * a fixed one of max bytes the caller owns (boot_decompress_into). */
struct unpack_out {
	uint8_t *buf;
	size_t cap, len, max;
	bool fixed;
};

static int grow(struct unpack_out *o, size_t need)
{
	if (need <= o->cap)
		return 0;
	if (need > o->max || o->fixed)
		return err_set(-EFBIG, "decompressed kernel larger than %zu MiB", o->max >> 20);
	size_t n = o->cap ? o->cap : 1 << 20;
	while (n < need)
		n *= 2;
	if (n > o->max)
		n = o->max;
	uint8_t *p = realloc(o->buf, n);
	if (!p)
		return err_set(-ENOMEM, "out of memory decompressing the kernel");
	o->buf = p;
	o->cap = n;
	return 0;
}

/* RFC 1952 gzip through zlib's inflate with gzip header detection. */
static int unpack_gzip(const uint8_t *in, size_t in_len, struct unpack_out *o)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return err_set(-ENOMEM, "zlib: cannot initialise");
	int rc = 0, zr = Z_OK;
	zs.next_in = (Bytef *)in;
	while (zr != Z_STREAM_END) {
		if ((rc = grow(o, o->len + 1)) < 0)
			break;
		/* zlib counts in uInt: feed at most 1 GiB at a time. */
		size_t left = in_len - (size_t)(zs.next_in - in);
		zs.avail_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
		zs.next_out = o->buf + o->len;
		zs.avail_out = (uInt)(o->cap - o->len > (1u << 30) ? (1u << 30) : o->cap - o->len);
		uInt before = zs.avail_out;
		zr = inflate(&zs, Z_NO_FLUSH);
		o->len += before - zs.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			rc = err_set(-EINVAL, "gzip payload is corrupt: %s", zs.msg ? zs.msg : "inflate error");
			break;
		}
		if (zr == Z_BUF_ERROR && zs.avail_in == 0) {
			rc = err_set(-EINVAL, "gzip payload is truncated");
			break;
		}
		if (zs.avail_out == 0 && (rc = grow(o, o->cap + 1)) < 0)
			break;
	}
	inflateEnd(&zs);
	return rc;
}

/* .xz container through liblzma's stream decoder. */
static int unpack_xz(const uint8_t *in, size_t in_len, struct unpack_out *o)
{
	lzma_stream ls = LZMA_STREAM_INIT;
	/* The kernel's xz payload is followed by the 4-byte size
	 * (scripts/Makefile.lib, size_append): LZMA_CONCATENATED would
	 * read it as stream padding, so decode one stream only. */
	if (lzma_stream_decoder(&ls, 256u << 20, 0) != LZMA_OK)
		return err_set(-ENOMEM, "liblzma: cannot initialise");
	int rc = 0;
	ls.next_in = in;
	ls.avail_in = in_len;
	for (;;) {
		if ((rc = grow(o, o->len + 1)) < 0)
			break;
		ls.next_out = o->buf + o->len;
		ls.avail_out = o->cap - o->len;
		lzma_ret r = lzma_code(&ls, LZMA_FINISH);
		o->len = o->cap - ls.avail_out;
		if (r == LZMA_STREAM_END)
			break;
		if (r == LZMA_OK || (r == LZMA_BUF_ERROR && ls.avail_out == 0)) {
			if (ls.avail_out == 0 && (rc = grow(o, o->cap + 1)) < 0)
				break;
			continue;
		}
		rc = err_set(-EINVAL, "xz payload is %s (liblzma error %d)",
			     r == LZMA_BUF_ERROR ? "truncated" : "corrupt", (int)r);
		break;
	}
	lzma_end(&ls);
	return rc;
}

/* zstd frame(s) through libzstd's streaming decoder; stops at the first
 * frame end followed by the kernel's 4-byte size trailer. */
static int unpack_zstd(const uint8_t *in, size_t in_len, struct unpack_out *o)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	if (!ds)
		return err_set(-ENOMEM, "libzstd: cannot initialise");
	/* Kernel images are compressed with --ultra -22 (window up to 128 MiB). */
	ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax, 27);
	int rc = 0;
	ZSTD_inBuffer ib = { in, in_len, 0 };
	for (;;) {
		if ((rc = grow(o, o->len + 1)) < 0)
			break;
		ZSTD_outBuffer ob = { o->buf, o->cap, o->len };
		size_t r = ZSTD_decompressStream(ds, &ob, &ib);
		o->len = ob.pos;
		if (ZSTD_isError(r)) {
			rc = err_set(-EINVAL, "zstd payload is corrupt: %s", ZSTD_getErrorName(r));
			break;
		}
		if (r == 0 && (in_len - ib.pos < 8))
			break;              /* frame complete; what is left is the size trailer */
		if (ib.pos == in_len && ob.pos < ob.size) {
			if (r == 0)
				break;
			rc = err_set(-EINVAL, "zstd payload is truncated");
			break;
		}
		if (ob.pos == ob.size && (rc = grow(o, o->cap + 1)) < 0)
			break;
	}
	ZSTD_freeDStream(ds);
	return rc;
}

/* LZ4 legacy frame (lz4 -l, as the kernel uses): magic 0x184C2102 then
 * blocks, each a 4-byte little-endian compressed size and the data, each
 * decompressing to at most 8 MiB (lib/decompress_unlz4.c). */
static int unpack_lz4(const uint8_t *in, size_t in_len, struct unpack_out *o)
{
	enum { LEGACY_BLOCK = 8 << 20 };
	size_t pos = 4;
	int rc = 0;
	while (pos < in_len) {
		if (in_len - pos < 4) {
			rc = err_set(-EINVAL, "lz4 payload is truncated");
			break;
		}
		uint32_t csize = (uint32_t)in[pos] | (uint32_t)in[pos + 1] << 8 | (uint32_t)in[pos + 2] << 16 |
				 (uint32_t)in[pos + 3] << 24;
		if (csize == 0x184C2102u) {          /* another legacy frame follows */
			pos += 4;
			continue;
		}
		if (in_len - pos == 4 && o->len > 0)
			break;                         /* the kernel's 4-byte size trailer */
		pos += 4;
		if (csize == 0 || csize > in_len - pos) {
			rc = err_set(-EINVAL, "lz4 payload is %s", csize == 0 ? "corrupt" : "truncated");
			break;
		}
		if (o->len >= o->max) {
			rc = err_set(-EFBIG, "decompressed kernel larger than %zu MiB", o->max >> 20);
			break;
		}
		size_t need = o->max - o->len < LEGACY_BLOCK ? o->max : o->len + LEGACY_BLOCK;
		if ((rc = grow(o, need)) < 0)
			break;
		size_t room = o->cap - o->len < LEGACY_BLOCK ? o->cap - o->len : LEGACY_BLOCK;
		int n = LZ4_decompress_safe((const char *)in + pos, (char *)o->buf + o->len, (int)csize, (int)room);
		if (n < 0) {
			rc = err_set(-EINVAL, "lz4 payload is corrupt (block at offset %zu)", pos - 4);
			break;
		}
		o->len += (size_t)n;
		pos += csize;
	}
	if (rc == 0 && o->len == 0)
		rc = err_set(-EINVAL, "lz4 payload holds no data");
	return rc;
}

/* The unpacker for in's magic number, or NULL with err_set(-ENOTSUP)
 * (format still named). */
typedef int (*unpack_fn)(const uint8_t *in, size_t in_len, struct unpack_out *o);

static unpack_fn find_unpacker(const uint8_t *in, size_t in_len, const char **format)
{
	static const struct {
		const char *name;
		uint8_t magic[6];
		unsigned magic_len;
		unpack_fn unpack;
	} formats[] = {
		{ "gzip", { 0x1f, 0x8b }, 2, unpack_gzip },
		{ "xz", { 0xfd, '7', 'z', 'X', 'Z', 0 }, 6, unpack_xz },
		{ "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4, unpack_zstd },
		{ "lz4", { 0x02, 0x21, 0x4c, 0x18 }, 4, unpack_lz4 },
		/* Recognised, not unpacked here: the kernel decompresses itself. */
		{ "bzip2", { 'B', 'Z', 'h' }, 3, NULL },
		{ "lzma", { 0x5d, 0, 0 }, 3, NULL },
		{ "lzo", { 0x89, 'L', 'Z', 'O' }, 4, NULL },
	};
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (in_len < formats[i].magic_len || memcmp(in, formats[i].magic, formats[i].magic_len))
			continue;
		*format = formats[i].name;
		if (!formats[i].unpack)
			err_set(-ENOTSUP, "%s-compressed payload: not unpacked on the host", formats[i].name);
		return formats[i].unpack;
	}
	*format = "unknown";
	err_set(-ENOTSUP, "payload compression not recognised (magic %02x %02x %02x %02x)",
		in_len > 0 ? in[0] : 0, in_len > 1 ? in[1] : 0, in_len > 2 ? in[2] : 0, in_len > 3 ? in[3] : 0);
	return NULL;
}

int boot_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out, size_t *out_len,
		    const char **format)
{
	*out = NULL;
	*out_len = 0;
	unpack_fn unpack = find_unpacker(in, in_len, format);
	if (!unpack)
		return -ENOTSUP;
	struct unpack_out o = { .max = max_out };
	int rc = unpack(in, in_len, &o);
	if (rc < 0) {
		free(o.buf);
		return rc;
	}
	*out = o.buf;
	*out_len = o.len;
	return 0;
}

int boot_decompress_into(const uint8_t *in, size_t in_len, uint8_t *dst, size_t cap, size_t *out_len,
			 const char **format)
{
	*out_len = 0;
	unpack_fn unpack = find_unpacker(in, in_len, format);
	if (!unpack)
		return -ENOTSUP;
	struct unpack_out o = { .buf = dst, .cap = cap, .max = cap, .fixed = true };
	int rc = unpack(in, in_len, &o);
	*out_len = o.len;
	return rc;
}
