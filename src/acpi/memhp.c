/* SSDT of ACPI memory hot-plug (see memhp.h).  In AML:
 *
 *   Scope (\_SB) {
 *     OperationRegion (MHPR, SystemIO, port, 0x80)
 *     Field (MHPR, DWordAcc, NoLock, Preserve) {
 *       MPR0, 32, ... MPR7, 32,    present        (PRS bank)
 *       MIN0, 32, ... MIN7, 32,    device check   (INS bank, read clears)
 *       MER0, 32, ... MER7, 32,    eject request  (EJR bank, read clears)
 *       MEJ0, 32, ... MEJ7, 32 }   ejected        (EJ bank, written)
 *     Device (Mxxx) {              one per slot, xxx its number in hex
 *       Name (_HID, EisaId ("PNP0C80")); Name (_UID, xxx)
 *       Name (_PXM, node)          with virtual NUMA nodes (6.2.14)
 *       Name (_CRS, ResourceTemplate () { QWordMemory (the slot's block) })
 *       Method (_STA) { If (MPRg & bit) { Return (0x0F) } Return (0) }
 *       Method (_EJ0, 1) { MEJg = bit } }
 *     Method (MSCN, 0, Serialized) {
 *       Local0 = MINg; Local1 = MERg          for each group g in use
 *       If (Local0 & bit) { Notify (Mxxx, 1) }   device check
 *       If (Local1 & bit) { Notify (Mxxx, 3) } } eject request
 *   }
 *   Scope (\_GPE) { Method (_Exx) { \_SB.MSCN } }   edge-triggered (5.6.4.1)
 *
 * Linux's acpi_memhotplug adds the memory of a memory device whose _STA
 * says present (at boot, or on a device check) to the node of its _PXM,
 * and removes it on an eject request once it could offline it, then runs
 * _EJ0.  Its memory blocks come up offline unless the guest's policy
 * (memhp_default_state=, /sys/devices/system/memory/auto_online_blocks)
 * onlines them.  A table of its own keeps memory hot-plug apart from the
 * DSDT's devices. */
#include "acpi/memhp.h"

#include "acpi/aml.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "MPRg", "MINg", "MERg" or "MEJg": bank (one of those prefixes), group g. */
static void bank_name(char out[5], const char *bank, unsigned g)
{
	memcpy(out, bank, 3);
	out[3] = (char)('0' + g);
	out[4] = 0;
}

static void slot_name(char out[5], unsigned s)
{
	snprintf(out, 5, "M%03X", s & 0xfff);
}

static void memhp_slot(struct aml *a, const struct acpi_memhp_info *info, unsigned s)
{
	char name[5], prs[5], ej[5];
	slot_name(name, s);
	bank_name(prs, "MPR", s / 32);
	bank_name(ej, "MEJ", s / 32);
	uint64_t bit = 1ull << (s % 32), base = info->base + (uint64_t)s * info->block_size;
	aml_device_begin(a, name);
	aml_name_eisaid(a, "_HID", "PNP0C80");
	aml_name_integer(a, "_UID", s);
	if (info->numa)
		aml_name_integer(a, "_PXM", info->slot_node[s]);
	aml_name_begin(a, "_CRS");
	aml_buffer_begin(a);
	aml_res_qword_memory(a, base, base + info->block_size - 1);
	aml_res_end_tag(a);
	aml_end(a);
	aml_method_begin(a, "_STA", 0, 0);
	aml_if_begin(a);
	aml_op(a, AML_AND);
	aml_name_string(a, prs);
	aml_integer(a, bit);
	aml_byte(a, 0);
	aml_return_integer(a, 0x0f);
	aml_end(a);
	aml_return_integer(a, 0);
	aml_end(a);
	aml_method_begin(a, "_EJ0", 1, 0);
	aml_op(a, AML_STORE);
	aml_integer(a, bit);
	aml_name_string(a, ej);
	aml_end(a);
	aml_end(a);
}

int acpi_build_memhp_ssdt(const struct acpi_memhp_info *info, uint8_t **out, size_t *len)
{
	if (!info->n_slots || info->n_slots > ACPI_MEMHP_MAX_SLOTS || !info->block_size)
		return err_set(-EINVAL, "ACPI: %u memory hot-plug slots is out of range", info->n_slots);
	unsigned groups = (info->n_slots + 31) / 32;
	struct aml a;
	aml_init(&a);
	uint8_t header[36] = { 0 };
	aml_bytes(&a, header, sizeof(header));
	aml_scope_begin(&a, "\\_SB");
	aml_region_io(&a, "MHPR", info->port, 0x80);
	aml_field_begin(&a, "MHPR", AML_FIELD_DWORD);
	static const char *const banks[] = { "MPR", "MIN", "MER", "MEJ" };
	for (unsigned k = 0; k < 4; k++) {
		for (unsigned g = 0; g < 8; g++) {
			char n[5];
			bank_name(n, banks[k], g);
			aml_field_unit(&a, n, 32);
		}
	}
	aml_end(&a);
	for (unsigned s = 0; s < info->n_slots; s++)
		memhp_slot(&a, info, s);
	aml_method_begin(&a, "MSCN", 0, 1);
	for (unsigned g = 0; g < groups; g++) {
		char in[5], er[5];
		bank_name(in, "MIN", g);
		bank_name(er, "MER", g);
		aml_op(&a, AML_STORE);
		aml_name_string(&a, in);
		aml_local(&a, 0);
		aml_op(&a, AML_STORE);
		aml_name_string(&a, er);
		aml_local(&a, 1);
		for (unsigned s = g * 32; s < info->n_slots && s < (g + 1) * 32; s++) {
			char name[5];
			slot_name(name, s);
			for (unsigned kind = 0; kind < 2; kind++) {
				aml_if_begin(&a);
				aml_op(&a, AML_AND);
				aml_local(&a, kind);
				aml_integer(&a, 1ull << (s % 32));
				aml_byte(&a, 0);
				aml_op(&a, AML_NOTIFY);
				aml_name_string(&a, name);
				aml_integer(&a, kind ? 3 : 1);
				aml_end(&a);
			}
		}
	}
	aml_end(&a);
	aml_end(&a);   /* \_SB */
	static const char hex[] = "0123456789ABCDEF";
	char method[5] = { '_', 'E', hex[(info->gpe >> 4) & 15], hex[info->gpe & 15], 0 };
	aml_scope_begin(&a, "\\_GPE");
	aml_method_begin(&a, method, 0, 0);
	aml_name_string(&a, "\\_SB.MSCN");
	aml_end(&a);
	aml_end(&a);
	int rc = aml_error(&a);
	if (rc < 0) {
		aml_free(&a);
		return err_set(rc, "cannot build the memory hot-plug SSDT");
	}
	acpi_header_fill(a.buf, "SSDT", (uint32_t)a.len, 2);
	acpi_table_checksum(a.buf, a.len);
	*out = a.buf;
	*len = a.len;
	return 0;
}

int acpi_add_memhp_ssdt(struct acpi_builder *b, const struct acpi_memhp_info *info)
{
	uint8_t *t;
	size_t len;
	int rc = acpi_build_memhp_ssdt(info, &t, &len);
	if (rc < 0)
		return rc;
	acpi_builder_add(b, t, len);
	free(t);
	return b->err;
}
