/* AML byte-code builder (ACPI 6.4 chapter 20 "ACPI Machine Language
 * Specification") for the DSDT and SSDTs.
 *
 * A growable byte buffer; constructs with a PkgLength (Scope, Device,
 * Method, Package, Buffer) are opened with aml_*_begin() and closed with
 * aml_end(), which inserts the encoded length.  Errors (out of memory,
 * unbalanced ends, bad names) are sticky: check aml_error() once at the end. */
#ifndef VESSEL_ACPI_AML_H
#define VESSEL_ACPI_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml {
	uint8_t *buf;
	size_t len, cap;
	size_t open[AML_MAX_DEPTH];   /* where each open construct's body starts */
	uint8_t kind[AML_MAX_DEPTH];  /* package-like or Buffer */
	unsigned depth;
	int err;                      /* first error (negative errno), 0 if none */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
int aml_error(const struct aml *a);

void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);
/* NameString: "\\_SB_.PCI0", "_HID", "^FOO"; segments of up to 4 chars
 * are padded with '_'. */
void aml_name_string(struct aml *a, const char *path);
/* Integer with the shortest encoding (ZeroOp, OneOp, BytePrefix...). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISA ID ("PNP0A08") as its compressed 32-bit integer. */
void aml_eisaid(struct aml *a, const char *id);
/* Name(path, <value appended by the caller>). */
void aml_name_begin(struct aml *a, const char *path);
void aml_name_integer(struct aml *a, const char *path, uint64_t v);
void aml_name_string_value(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_method_begin(struct aml *a, const char *path, unsigned nargs, int serialized);
void aml_package_begin(struct aml *a, unsigned n_elements);
/* Buffer with the byte count filled in by aml_end(). */
void aml_buffer_begin(struct aml *a);
void aml_end(struct aml *a);
/* Return (integer) inside a method. */
void aml_return_integer(struct aml *a, uint64_t v);

/* Method bodies: operators are written in prefix order, operands after
 * the opcode (20.2.5), e.g. aml_op(a, AML_LEQUAL); aml_arg(a, 0); ... */
#define AML_RETURN   0xa4
#define AML_LEQUAL   0x93
#define AML_OR       0x7d
#define AML_CREATE_DWORD_FIELD 0x8a
#define AML_STORE    0x70   /* Store (source, target) */
#define AML_AND      0x7b   /* And (a, b, target): target NullName (aml_byte 0) */
#define AML_NOTIFY   0x86   /* Notify (object, value) */
#define AML_SHIFT_RIGHT 0x7a   /* ShiftRight (a, count, target) */
#define AML_INDEX    0x88   /* Index (package, index, target): a reference to an element */
void aml_op(struct aml *a, uint8_t opcode);
void aml_arg(struct aml *a, unsigned n);         /* Arg0-Arg6 */
void aml_local(struct aml *a, unsigned n);       /* Local0-Local7 */
/* OperationRegion (name, SystemIO, base, len) (19.6.100). */
void aml_region_io(struct aml *a, const char *name, uint16_t base, unsigned len);
/* Field (region, flags) { units } (19.6.48): units by aml_field_unit(),
 * closed by aml_end().  AML_FIELD_DWORD: DWordAcc, NoLock, Preserve. */
#define AML_FIELD_DWORD 0x03
void aml_field_begin(struct aml *a, const char *region, uint8_t flags);
void aml_field_unit(struct aml *a, const char *name, unsigned bits);
/* If (predicate) { ... }: the predicate follows, then the body, then aml_end(). */
void aml_if_begin(struct aml *a);
/* ToUUID("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") as its 16-byte Buffer (19.6.142). */
void aml_uuid(struct aml *a, const char *uuid);

/* Resource descriptors (ACPI 6.4 section 6.4) inside aml_buffer_begin():
 * a ResourceTemplate is a Buffer of descriptors closed by aml_res_end_tag(). */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml *a, uint16_t irq_mask);
void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len, int writable);
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max);
void aml_res_qword_memory(struct aml *a, uint64_t min, uint64_t max);
void aml_res_end_tag(struct aml *a);

#endif
