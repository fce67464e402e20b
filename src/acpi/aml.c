/* AML byte-code builder (ACPI 6.4 chapter 20). */
#include "acpi/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes (ACPI 6.4 section 20.3). */
#define ZERO_OP    0x00
#define ONE_OP     0x01
#define NAME_OP    0x08
#define BYTE_PREFIX 0x0a
#define WORD_PREFIX 0x0b
#define DWORD_PREFIX 0x0c
#define STRING_PREFIX 0x0d
#define QWORD_PREFIX 0x0e
#define SCOPE_OP   0x10
#define BUFFER_OP  0x11
#define PACKAGE_OP 0x12
#define METHOD_OP  0x14
#define DUAL_NAME_PREFIX 0x2e
#define MULTI_NAME_PREFIX 0x2f
#define EXT_OP_PREFIX 0x5b
#define DEVICE_OP  0x82     /* after EXT_OP_PREFIX */
#define RETURN_OP  0xa4
#define ONES_OP    0xff

/* What aml_end() must insert for the innermost open construct. */
enum open_kind { OPEN_PKG, OPEN_BUFFER };

void aml_init(struct aml *a) { memset(a, 0, sizeof(*a)); }

void aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

int aml_error(const struct aml *a)
{
	if (a->err)
		return a->err;
	return a->depth ? -EINVAL : 0;
}

static int reserve(struct aml *a, size_t n)
{
	if (a->err)
		return -1;
	if (a->len + n <= a->cap)
		return 0;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	uint8_t *b = realloc(a->buf, cap);
	if (!b) {
		a->err = -ENOMEM;
		return -1;
	}
	a->buf = b;
	a->cap = cap;
	return 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (reserve(a, n) < 0)
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b) { aml_bytes(a, &b, 1); }

static void put_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n);
}

static int name_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* NameString (20.2.2): prefixes, then NameSeg / DualNamePath / MultiNamePath. */
void aml_name_string(struct aml *a, const char *path)
{
	const char *p = path;
	while (*p == '\\' || *p == '^')
		aml_byte(a, (uint8_t)*p++);
	char segs[255][4];
	unsigned n = 0;
	while (*p) {
		if (n == 255) {
			a->err = -EINVAL;
			return;
		}
		unsigned k = 0;
		while (*p && *p != '.') {
			if (k == 4 || !name_char_ok(*p) || (k == 0 && *p >= '0' && *p <= '9')) {
				a->err = -EINVAL;
				return;
			}
			segs[n][k++] = *p++;
		}
		if (!k) {
			a->err = -EINVAL;
			return;
		}
		while (k < 4)
			segs[n][k++] = '_';
		n++;
		if (*p == '.')
			p++;
	}
	if (n == 0) {
		aml_byte(a, 0x00);   /* NullName */
	} else if (n == 2) {
		aml_byte(a, DUAL_NAME_PREFIX);
	} else if (n > 2) {
		aml_byte(a, MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)n);
	}
	for (unsigned i = 0; i < n; i++)
		aml_bytes(a, segs[i], 4);
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, ONE_OP);
	} else if (v <= 0xff) {
		aml_byte(a, BYTE_PREFIX);
		put_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, WORD_PREFIX);
		put_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, DWORD_PREFIX);
		put_le(a, v, 4);
	} else {
		aml_byte(a, QWORD_PREFIX);
		put_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, STRING_PREFIX);
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7f) {
			a->err = -EINVAL;   /* AsciiCharList: 0x01-0x7f */
			return;
		}
	}
	aml_bytes(a, s, strlen(s) + 1);
}

/* EISA ID: three letters in 5 bits each, then four hex digits (6.1.5). */
void aml_eisaid(struct aml *a, const char *id)
{
	if (strlen(id) != 7) {
		a->err = -EINVAL;
		return;
	}
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			a->err = -EINVAL;
			return;
		}
		v = (v << 5) | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16;
		if (d == 16) {
			a->err = -EINVAL;
			return;
		}
		v = (v << 4) | d;
	}
	/* Stored as a big-endian 32-bit value in a DWord integer. */
	uint32_t be = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24);
	aml_byte(a, DWORD_PREFIX);
	put_le(a, be, 4);
}

void aml_name_begin(struct aml *a, const char *path)
{
	aml_byte(a, NAME_OP);
	aml_name_string(a, path);
}

void aml_name_integer(struct aml *a, const char *path, uint64_t v)
{
	aml_name_begin(a, path);
	aml_integer(a, v);
}

void aml_name_string_value(struct aml *a, const char *path, const char *s)
{
	aml_name_begin(a, path);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name_begin(a, path);
	aml_eisaid(a, id);
}

static void open_pkg(struct aml *a, enum open_kind kind)
{
	if (a->depth == AML_MAX_DEPTH) {
		a->err = -E2BIG;
		return;
	}
	a->kind[a->depth] = (uint8_t)kind;
	a->open[a->depth++] = a->len;
}

void aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, SCOPE_OP);
	open_pkg(a, OPEN_PKG);
	aml_name_string(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	aml_byte(a, EXT_OP_PREFIX);
	aml_byte(a, DEVICE_OP);
	open_pkg(a, OPEN_PKG);
	aml_name_string(a, path);
}

void aml_method_begin(struct aml *a, const char *path, unsigned nargs, int serialized)
{
	aml_byte(a, METHOD_OP);
	open_pkg(a, OPEN_PKG);
	aml_name_string(a, path);
	aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 8 : 0)));
}

void aml_package_begin(struct aml *a, unsigned n_elements)
{
	aml_byte(a, PACKAGE_OP);
	open_pkg(a, OPEN_PKG);
	aml_byte(a, (uint8_t)n_elements);
}

/* The BufferSize operand is inserted by aml_end(), once the size is known. */
void aml_buffer_begin(struct aml *a)
{
	aml_byte(a, BUFFER_OP);
	open_pkg(a, OPEN_BUFFER);
}

/* PkgLength encoding (20.2.4): the length counts its own bytes. */
static unsigned pkglen_encode(size_t body, uint8_t out[4])
{
	size_t total;
	if (body + 1 < 0x40) {
		out[0] = (uint8_t)(body + 1);
		return 1;
	}
	unsigned n;
	for (n = 2; n <= 4; n++) {
		total = body + n;
		if (total < (1ull << (4 + 8 * (n - 1))))
			break;
	}
	if (n > 4)
		return 0;
	total = body + n;
	out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
	for (unsigned i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

static void insert(struct aml *a, size_t at, const uint8_t *p, size_t n)
{
	if (reserve(a, n) < 0)
		return;
	memmove(a->buf + at + n, a->buf + at, a->len - at);
	memcpy(a->buf + at, p, n);
	a->len += n;
}

void aml_end(struct aml *a)
{
	if (a->err)
		return;
	if (!a->depth) {
		a->err = -EINVAL;
		return;
	}
	a->depth--;
	size_t start = a->open[a->depth];
	if (a->kind[a->depth] == OPEN_BUFFER) {
		struct aml tmp;
		aml_init(&tmp);
		aml_integer(&tmp, a->len - start);
		if (tmp.err) {
			a->err = tmp.err;
			aml_free(&tmp);
			return;
		}
		insert(a, start, tmp.buf, tmp.len);
		aml_free(&tmp);
	}
	uint8_t enc[4];
	unsigned n = pkglen_encode(a->len - start, enc);
	if (!n) {
		a->err = -E2BIG;
		return;
	}
	insert(a, start, enc, n);
}

void aml_return_integer(struct aml *a, uint64_t v)
{
	aml_byte(a, RETURN_OP);
	aml_integer(a, v);
}

void aml_op(struct aml *a, uint8_t opcode) { aml_byte(a, opcode); }

void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6) {
		a->err = -EINVAL;
		return;
	}
	aml_byte(a, (uint8_t)(0x68 + n));   /* Arg0Op..Arg6Op */
}

void aml_local(struct aml *a, unsigned n)
{
	if (n > 7) {
		a->err = -EINVAL;
		return;
	}
	aml_byte(a, (uint8_t)(0x60 + n));   /* Local0Op..Local7Op */
}

void aml_region_io(struct aml *a, const char *name, uint16_t base, unsigned len)
{
	aml_byte(a, EXT_OP_PREFIX);
	aml_byte(a, 0x80);                   /* OpRegionOp */
	aml_name_string(a, name);
	aml_byte(a, 0x01);                   /* RegionSpace: SystemIO */
	aml_integer(a, base);
	aml_integer(a, len);
}

void aml_field_begin(struct aml *a, const char *region, uint8_t flags)
{
	aml_byte(a, EXT_OP_PREFIX);
	aml_byte(a, 0x81);                   /* FieldOp */
	open_pkg(a, OPEN_PKG);
	aml_name_string(a, region);
	aml_byte(a, flags);
}

/* NamedField (20.2.5.2): a NameSeg and its width in bits, written in the
 * PkgLength encoding without counting its own bytes. */
void aml_field_unit(struct aml *a, const char *name, unsigned bits)
{
	size_t n = strlen(name);
	if (n == 0 || n > 4 || bits == 0 || bits >= 1u << 12) {
		a->err = -EINVAL;
		return;
	}
	char seg[4] = { '_', '_', '_', '_' };
	for (size_t i = 0; i < n; i++) {
		if (!name_char_ok(name[i]) || (i == 0 && name[i] >= '0' && name[i] <= '9')) {
			a->err = -EINVAL;
			return;
		}
		seg[i] = name[i];
	}
	aml_bytes(a, seg, 4);
	if (bits < 0x40) {
		aml_byte(a, (uint8_t)bits);
	} else {
		aml_byte(a, (uint8_t)(0x40 | (bits & 0x0f)));
		aml_byte(a, (uint8_t)(bits >> 4));
	}
}

void aml_if_begin(struct aml *a)
{
	aml_byte(a, 0xa0);                   /* IfOp */
	open_pkg(a, OPEN_PKG);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_uuid(struct aml *a, const char *uuid)
{
	/* Text order aabbccdd-eeff-gghh-iijj-kkllmmnnoopp; the first three
	 * fields are stored little-endian, the rest in text order. */
	static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t text[16], out[16];
	unsigned n = 0;
	for (const char *p = uuid; *p; p++) {
		if (*p == '-')
			continue;
		int hi = hexval(p[0]), lo = p[1] ? hexval(p[1]) : -1;
		if (hi < 0 || lo < 0 || n == 16) {
			a->err = -EINVAL;
			return;
		}
		text[n++] = (uint8_t)(hi << 4 | lo);
		p++;
	}
	if (n != 16 || strlen(uuid) != 36) {
		a->err = -EINVAL;
		return;
	}
	for (int i = 0; i < 16; i++)
		out[i] = text[order[i]];
	aml_buffer_begin(a);
	aml_bytes(a, out, sizeof(out));
	aml_end(a);
}

/* ---- resource descriptors (6.4) ---- */

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8] = { 0x47, 0x01, (uint8_t)min, (uint8_t)(min >> 8), (uint8_t)max, (uint8_t)(max >> 8), align, len };
	aml_bytes(a, d, sizeof(d));   /* I/O port descriptor, 16-bit decode (6.4.2.5) */
}

void aml_res_irq_noflags(struct aml *a, uint16_t irq_mask)
{
	uint8_t d[3] = { 0x22, (uint8_t)irq_mask, (uint8_t)(irq_mask >> 8) };
	aml_bytes(a, d, sizeof(d));   /* IRQ descriptor, 2-byte form: edge, active high (6.4.2.1) */
}

void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, int writable)
{
	aml_byte(a, 0x86);            /* 32-bit fixed memory range (6.4.3.4) */
	put_le(a, 9, 2);
	aml_byte(a, writable ? 1 : 0);
	put_le(a, base, 4);
	put_le(a, len, 4);
}

/* Address space descriptors (6.4.3.5): producer, min and max fixed. */
static void addr_space(struct aml *a, uint8_t tag, unsigned width, uint8_t type, uint8_t type_flags,
		       uint64_t min, uint64_t max)
{
	aml_byte(a, tag);
	put_le(a, 3 + 5 * width, 2);
	aml_byte(a, type);
	aml_byte(a, 0x0c);            /* _MAF | _MIF, positive decode, producer */
	aml_byte(a, type_flags);
	put_le(a, 0, width);          /* granularity */
	put_le(a, min, width);
	put_le(a, max, width);
	put_le(a, 0, width);          /* translation offset */
	put_le(a, max - min + 1, width);
}

void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max) { addr_space(a, 0x88, 2, 2, 0, min, max); }
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max) { addr_space(a, 0x88, 2, 1, 3, min, max); }
void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max) { addr_space(a, 0x87, 4, 0, 1, min, max); }
void aml_res_qword_memory(struct aml *a, uint64_t min, uint64_t max) { addr_space(a, 0x8a, 8, 0, 1, min, max); }

void aml_res_end_tag(struct aml *a)
{
	uint8_t d[2] = { 0x79, 0x00 };   /* checksum 0: "treat as correct" (6.4.2.9) */
	aml_bytes(a, d, sizeof(d));
}
