/* ACPI tables of the PC (ACPI 6.4 chapter 5.2). */
#include "acpi/tables.h"

#include "acpi/aml.h"
#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OEM_ID       "VESSEL"
#define OEM_TABLE_ID "VESSELPC"
#define CREATOR_ID   "VSSL"

static void put8(uint8_t *p, size_t off, uint8_t v) { p[off] = v; }
static void put16(uint8_t *p, size_t off, uint16_t v) { p[off] = (uint8_t)v; p[off + 1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, size_t off, uint32_t v) { for (int i = 0; i < 4; i++) p[off + i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, size_t off, uint64_t v) { for (int i = 0; i < 8; i++) p[off + i] = (uint8_t)(v >> (8 * i)); }

uint8_t acpi_checksum(const void *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + ((const uint8_t *)p)[i]);
	return sum;
}

void acpi_table_checksum(void *table, size_t len)
{
	uint8_t *t = table;
	t[9] = 0;
	t[9] = (uint8_t)(0x100 - acpi_checksum(t, len));
}

void acpi_header_fill(void *table, const char sig[4], uint32_t len, uint8_t revision)
{
	uint8_t *t = table;
	memcpy(t, sig, 4);
	put32(t, 4, len);
	put8(t, 8, revision);
	t[9] = 0;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put32(t, 24, 1);                 /* OEM revision */
	memcpy(t + 28, CREATOR_ID, 4);
	put32(t, 32, 1);                 /* creator revision */
}

/* Generic Address Structure (5.2.3.2). */
static void put_gas(uint8_t *p, size_t off, uint8_t space, uint8_t bit_width, uint8_t access, uint64_t addr)
{
	put8(p, off, space);
	put8(p, off + 1, bit_width);
	put8(p, off + 2, 0);
	put8(p, off + 3, access);
	put64(p, off + 4, addr);
}
#define GAS_MEMORY 0
#define GAS_IO     1

void acpi_builder_init(struct acpi_builder *b, uint8_t *area, uint64_t area_gpa, size_t size)
{
	memset(b, 0, sizeof(*b));
	b->area = area;
	b->area_gpa = area_gpa;
	b->size = size;
	memset(area, 0, size);
	/* The RSDP goes first, 16-byte aligned (5.2.5.1); tables follow. */
	b->used = 64;
}

uint64_t acpi_builder_place(struct acpi_builder *b, const void *table, size_t len, size_t align)
{
	if (b->err)
		return 0;
	size_t at = (b->used + align - 1) & ~(align - 1);
	if (at > b->size || len > b->size - at) {
		b->err = err_set(-ENOSPC, "ACPI tables do not fit in %zu bytes", b->size);
		return 0;
	}
	memcpy(b->area + at, table, len);
	b->used = at + len;
	return b->area_gpa + at;
}

uint64_t acpi_builder_add(struct acpi_builder *b, const void *table, size_t len)
{
	if (b->n_tables == ACPI_MAX_TABLES) {
		b->err = err_set(-ENOSPC, "too many ACPI tables");
		return 0;
	}
	uint64_t gpa = acpi_builder_place(b, table, len, 16);
	if (gpa)
		b->tables[b->n_tables++] = gpa;
	return gpa;
}

int acpi_builder_finish(struct acpi_builder *b)
{
	if (b->err)
		return b->err;
	uint8_t xsdt[36 + 8 * ACPI_MAX_TABLES], rsdt[36 + 4 * ACPI_MAX_TABLES];
	size_t xlen = 36 + 8 * b->n_tables, rlen = 36 + 4 * b->n_tables;
	acpi_header_fill(xsdt, "XSDT", (uint32_t)xlen, 1);
	acpi_header_fill(rsdt, "RSDT", (uint32_t)rlen, 1);
	for (unsigned i = 0; i < b->n_tables; i++) {
		put64(xsdt, 36 + 8 * i, b->tables[i]);
		if (b->tables[i] >> 32)
			return b->err = err_set(-ERANGE, "ACPI table above 4 GiB cannot be listed in the RSDT");
		put32(rsdt, 36 + 4 * i, (uint32_t)b->tables[i]);
	}
	acpi_table_checksum(xsdt, xlen);
	acpi_table_checksum(rsdt, rlen);
	uint64_t xsdt_gpa = acpi_builder_place(b, xsdt, xlen, 16);
	uint64_t rsdt_gpa = acpi_builder_place(b, rsdt, rlen, 16);
	if (b->err)
		return b->err;
	/* RSDP (5.2.5.3), revision 2. */
	uint8_t *r = b->area;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	put8(r, 15, 2);
	put32(r, 16, (uint32_t)rsdt_gpa);
	put32(r, 20, 36);
	put64(r, 24, xsdt_gpa);
	r[8] = (uint8_t)(0x100 - acpi_checksum(r, 20));
	r[32] = (uint8_t)(0x100 - acpi_checksum(r, 36));
	b->rsdp_gpa = b->area_gpa;
	return 0;
}

/* ---- DSDT ---- */

static void dsdt_crs_begin(struct aml *a)
{
	aml_name_begin(a, "_CRS");
	aml_buffer_begin(a);
}

static void dsdt_crs_end(struct aml *a)
{
	aml_res_end_tag(a);
	aml_end(a);
}

static void dsdt_pci_hotplug(struct aml *a, const struct acpi_platform_info *info);

static void dsdt_pci_root(struct aml *a, const struct acpi_platform_info *info)
{
	aml_device_begin(a, "PCI0");
	/* PCI Express root bridge with a PCI-compatible fallback (6.1.2, 6.1.5). */
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_integer(a, "_UID", 0);
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_BBN", 0);
	/* With virtual NUMA nodes, the bus and its functions are node 0's
	 * (6.2.14): Linux gives its devices that node (dev->numa_node)
	 * instead of "Unknown NUMA node" and allocates their rings there. */
	if (info->cpu_node)
		aml_name_integer(a, "_PXM", 0);
	dsdt_crs_begin(a);
	aml_res_word_bus(a, 0, info->ecam_end_bus);
	aml_res_io(a, 0xcf8, 0xcf8, 1, 8);
	aml_res_word_io(a, 0x0000, 0x0cf7);
	aml_res_word_io(a, 0x0d00, 0xffff);
	aml_res_dword_memory(a, 0x000a0000, 0x000bffff);
	aml_res_dword_memory(a, (uint32_t)info->pci_mmio_base, (uint32_t)info->pci_mmio_end);
	dsdt_crs_end(a);
	/* _OSC (6.2.11, PCI Firmware 3.2 section 4.5): the OS gets every PCIe
	 * feature it asks for, there being no firmware to keep any; any other
	 * UUID is answered "unrecognized UUID" (CDW1 bit 2).
	 *   Method (_OSC, 4) {
	 *     CreateDWordField (Arg3, 0, CDW1)
	 *     If (Arg0 == ToUUID ("33db4d5b-...")) { Return (Arg3) }
	 *     CDW1 |= 4
	 *     Return (Arg3)
	 *   } */
	aml_method_begin(a, "_OSC", 4, 0);
	aml_op(a, AML_CREATE_DWORD_FIELD);
	aml_arg(a, 3);
	aml_integer(a, 0);
	aml_name_string(a, "CDW1");
	aml_if_begin(a);
	aml_op(a, AML_LEQUAL);
	aml_arg(a, 0);
	aml_uuid(a, "33DB4D5B-1FF7-401C-9657-7441C03DD766");
	aml_op(a, AML_RETURN);
	aml_arg(a, 3);
	aml_end(a);
	aml_op(a, AML_OR);
	aml_name_string(a, "CDW1");
	aml_integer(a, 4);
	aml_name_string(a, "CDW1");
	aml_op(a, AML_RETURN);
	aml_arg(a, 3);
	aml_end(a);
	/* _PRT (6.2.13): INTx of slots 1-31 straight to I/O APIC GSIs. */
	aml_name_begin(a, "_PRT");
	aml_package_begin(a, 31 * 4);
	for (unsigned slot = 1; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package_begin(a, 4);
			aml_integer(a, ((uint64_t)slot << 16) | 0xffff);
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, info->intx_gsi ? info->intx_gsi(slot, pin + 1) : 16 + ((slot + pin) & 7));
			aml_end(a);
		}
	}
	aml_end(a);
	if (info->pcihp_port)
		dsdt_pci_hotplug(a, info);
	aml_end(a);
}

/* ACPI PCI hot-plug of bus 0 (docs/hotplug.md), inside \_SB.PCI0:
 *   OperationRegion (PCST, SystemIO, port, 16)
 *   Field (PCST, DWordAcc, NoLock, Preserve) { PCIU, 32, PCID, 32, B0EJ, 32, PCIG, 32 }
 *   Device (Sss) { Name (_ADR, ss << 16); Name (_SUN, ss)
 *                  Method (_EJ0, 1) { B0EJ = 1 << ss } }     for slots 1-31
 *   Method (PCNT) { Local0 = PCIU; Local1 = PCID
 *                   If (Local0 & (1 << ss)) { Notify (Sss, 1) }   device check
 *                   If (Local1 & (1 << ss)) { Notify (Sss, 3) }   eject request
 *                   If (PCIG) { Notify (\_SB.PCI0, 0) } }      bus check
 * A device check on a slot makes Linux look for new functions there only;
 * a function gone without an eject needs the bus check, on which the OS
 * checks every slot and removes what no longer answers.
 * A slot object with _ADR and _EJ0 under the root bridge is what Linux's
 * acpiphp and Windows take for a hot-plug slot (6.3.3, 6.1.1); without
 * _STA the OS reads the slot's vendor ID to see whether it holds a device. */
static void slot_name(char out[5], unsigned slot)
{
	static const char hex[] = "0123456789ABCDEF";
	out[0] = 'S';
	out[1] = hex[(slot >> 4) & 15];
	out[2] = hex[slot & 15];
	out[3] = 0;
}

/* If (LocalN & (1 << bit)) { Notify (name, value) } */
static void dsdt_notify_if_bit(struct aml *a, unsigned local, unsigned bit, const char *name, unsigned value)
{
	aml_if_begin(a);
	aml_op(a, AML_AND);
	aml_local(a, local);
	aml_integer(a, 1ull << bit);
	aml_byte(a, 0);          /* no target */
	aml_op(a, AML_NOTIFY);
	aml_name_string(a, name);
	aml_integer(a, value);
	aml_end(a);
}

static void dsdt_pci_hotplug(struct aml *a, const struct acpi_platform_info *info)
{
	aml_region_io(a, "PCST", info->pcihp_port, 16);
	aml_field_begin(a, "PCST", AML_FIELD_DWORD);
	aml_field_unit(a, "PCIU", 32);
	aml_field_unit(a, "PCID", 32);
	aml_field_unit(a, "B0EJ", 32);
	aml_field_unit(a, "PCIG", 32);
	aml_end(a);
	char name[5];
	for (unsigned slot = 1; slot < 32; slot++) {
		slot_name(name, slot);
		aml_device_begin(a, name);
		aml_name_integer(a, "_ADR", (uint64_t)slot << 16);
		aml_name_integer(a, "_SUN", slot);
		aml_method_begin(a, "_EJ0", 1, 0);
		aml_op(a, AML_STORE);
		aml_integer(a, 1ull << slot);
		aml_name_string(a, "\\_SB.PCI0.B0EJ");
		aml_end(a);
		aml_end(a);
	}
	aml_method_begin(a, "PCNT", 0, 1);
	aml_op(a, AML_STORE);
	aml_name_string(a, "PCIU");
	aml_local(a, 0);
	aml_op(a, AML_STORE);
	aml_name_string(a, "PCID");
	aml_local(a, 1);
	for (unsigned slot = 1; slot < 32; slot++) {
		slot_name(name, slot);
		for (unsigned kind = 0; kind < 2; kind++) {
			dsdt_notify_if_bit(a, kind, slot, name, kind ? 3 : 1);
		}
	}
	aml_if_begin(a);
	aml_name_string(a, "PCIG");
	aml_op(a, AML_NOTIFY);
	aml_name_string(a, "\\_SB.PCI0");
	aml_integer(a, 0);
	aml_end(a);
	aml_end(a);
}

/* Store (field, Index (pkg, i)): one element of a named Package set from
 * a register, so that a method can return the package (19.6.63, 19.6.132). */
static void store_field_to_element(struct aml *a, const char *field, const char *pkg, unsigned i)
{
	aml_op(a, AML_STORE);
	aml_name_string(a, field);
	aml_op(a, AML_INDEX);
	aml_name_string(a, pkg);
	aml_integer(a, i);
	aml_byte(a, 0);          /* no target */
}

/* The power GPE's work (method PWEV): reads (and so clears) PEVT and notifies
 *   If (Local0 & 1) { Notify (\_SB.AC, 0x80) }     status change: _PSR
 *   If (Local0 & 4) { Notify (\_SB.BAT0, 0x81) }   information change: _STA, _BIF
 *   If (Local0 & 2) { Notify (\_SB.BAT0, 0x80) }   status change: _BST
 * (ACPI 6.4 5.6.6, 10.2.1, 10.3). */
static void gpe_power_supply(struct aml *a)
{
	aml_op(a, AML_STORE);
	aml_name_string(a, "\\_SB.PEVT");
	aml_local(a, 0);
	static const struct { unsigned bit; const char *dev; unsigned code; } n[] = {
		{ 1, "\\_SB.AC", 0x80 }, { 4, "\\_SB.BAT0", 0x81 }, { 2, "\\_SB.BAT0", 0x80 },
	};
	for (unsigned i = 0; i < 3; i++) {
		aml_if_begin(a);
		aml_op(a, AML_AND);
		aml_local(a, 0);
		aml_integer(a, n[i].bit);
		aml_byte(a, 0);
		aml_op(a, AML_NOTIFY);
		aml_name_string(a, n[i].dev);
		aml_integer(a, n[i].code);
		aml_end(a);
	}
}

/* The host's AC adapter and battery (docs/power.md "The host's power
 * state"; registers in hw/power_supply.h), in \_SB:
 *   OperationRegion (PWRR, SystemIO, port, 0x28)
 *   Field (PWRR, DWordAcc, NoLock, Preserve) { PSTA, 32, PEVT, 32, PUNT, 32,
 *         PDCP, 32, PFCP, 32, PDVL, 32, PRAT, 32, PRCP, 32, PVOL, 32, PTEC, 32 }
 *   Device (AC) { Name (_HID, "ACPI0003")                             (10.3)
 *                 Method (_PSR) { Return (PSTA & 1) } }
 *   Device (BAT0) { Name (_HID, EisaId ("PNP0C0A")); Name (_UID, 1)   (10.2)
 *     Method (_STA) { If (PSTA & 2) { Return (0x1f) } Return (0x0f) }
 *     Name (BIFP, Package (13) { 0, 0, 0, 0, 0, 0, 0, 1, 1, "Virtual Battery", "0", "LION", "vessel" })
 *     Method (_BIF, 0, Serialized) { BIFP[0] = PUNT; BIFP[1] = PDCP; BIFP[2] = PFCP
 *                                    BIFP[3] = PTEC; BIFP[4] = PDVL; Return (BIFP) }
 *     Name (BSTP, Package (4) { 0, 0, 0, 0 })
 *     Method (_BST, 0, Serialized) { BSTP[0] = PSTA >> 8; BSTP[1] = PRAT
 *                                    BSTP[2] = PRCP; BSTP[3] = PVOL; Return (BSTP) } }
 * _STA's bit 4 is "battery present" (6.3.7): an empty bay keeps the
 * device, whose driver then shows no battery.  _BIF rather than _BIX:
 * every OS reads it, and _BIX's extra fields (cycle count, accuracy)
 * have nothing on the host to come from. */
static void dsdt_power_supply(struct aml *a, const struct acpi_platform_info *info)
{
	static const char *const fields[] = { "PSTA", "PEVT", "PUNT", "PDCP", "PFCP", "PDVL", "PRAT", "PRCP",
					      "PVOL", "PTEC" };
	aml_region_io(a, "PWRR", info->power_port, 4 * (sizeof(fields) / sizeof(fields[0])));
	aml_field_begin(a, "PWRR", AML_FIELD_DWORD);
	for (unsigned i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		aml_field_unit(a, fields[i], 32);
	aml_end(a);

	aml_device_begin(a, "AC");
	aml_name_string_value(a, "_HID", "ACPI0003");
	aml_method_begin(a, "_PSR", 0, 0);
	aml_op(a, AML_RETURN);
	aml_op(a, AML_AND);
	aml_name_string(a, "PSTA");
	aml_integer(a, 1);
	aml_byte(a, 0);
	aml_end(a);
	aml_end(a);

	aml_device_begin(a, "BAT0");
	aml_name_eisaid(a, "_HID", "PNP0C0A");
	aml_name_integer(a, "_UID", 1);
	aml_method_begin(a, "_STA", 0, 0);
	aml_if_begin(a);
	aml_op(a, AML_AND);
	aml_name_string(a, "PSTA");
	aml_integer(a, 2);
	aml_byte(a, 0);
	aml_return_integer(a, 0x1f);
	aml_end(a);
	aml_return_integer(a, 0x0f);
	aml_end(a);

	aml_name_begin(a, "BIFP");
	aml_package_begin(a, 13);
	for (unsigned i = 0; i < 7; i++)
		aml_integer(a, 0);
	aml_integer(a, 1);       /* capacity granularities */
	aml_integer(a, 1);
	aml_string(a, "Virtual Battery");
	aml_string(a, "0");
	aml_string(a, "LION");
	aml_string(a, "vessel");
	aml_end(a);
	aml_method_begin(a, "_BIF", 0, 1);
	static const char *const bif[] = { "PUNT", "PDCP", "PFCP", "PTEC", "PDVL" };
	for (unsigned i = 0; i < 5; i++)
		store_field_to_element(a, bif[i], "BIFP", i);
	aml_op(a, AML_RETURN);
	aml_name_string(a, "BIFP");
	aml_end(a);

	aml_name_begin(a, "BSTP");
	aml_package_begin(a, 4);
	for (unsigned i = 0; i < 4; i++)
		aml_integer(a, 0);
	aml_end(a);
	aml_method_begin(a, "_BST", 0, 1);
	aml_op(a, AML_STORE);
	aml_op(a, AML_SHIFT_RIGHT);
	aml_name_string(a, "PSTA");
	aml_integer(a, 8);
	aml_byte(a, 0);
	aml_op(a, AML_INDEX);
	aml_name_string(a, "BSTP");
	aml_integer(a, 0);
	aml_byte(a, 0);
	static const char *const bst[] = { "PRAT", "PRCP", "PVOL" };
	for (unsigned i = 0; i < 3; i++)
		store_field_to_element(a, bst[i], "BSTP", i + 1);
	aml_op(a, AML_RETURN);
	aml_name_string(a, "BSTP");
	aml_end(a);
	aml_end(a);

	/* What the power GPE's handler calls (\_GPE._Exx -> \_SB.PWEV). */
	aml_method_begin(a, "PWEV", 0, 0);
	gpe_power_supply(a);
	aml_end(a);
}


/* \_GPE._Exx calling method. */
static void dsdt_gpe_handler(struct aml *a, unsigned gpe, const char *method)
{
	static const char hex[] = "0123456789ABCDEF";
	char name[5] = { '_', 'E', hex[(gpe >> 4) & 15], hex[gpe & 15], 0 };
	aml_scope_begin(a, "\\_GPE");
	aml_method_begin(a, name, 0, 0);
	aml_name_string(a, method);
	aml_end(a);
	aml_end(a);
}

static void cpu_name(char name[5], unsigned i)
{
	static const char hex[] = "0123456789ABCDEF";
	name[0] = 'C';
	name[1] = hex[(i >> 8) & 15];
	name[2] = hex[(i >> 4) & 15];
	name[3] = hex[i & 15];
	name[4] = 0;
}

/* ACPI processor hot-plug (docs/hotplug.md "CPUs"), in \_SB:
 *   OperationRegion (CPST, SystemIO, port, 32)
 *   Field (CPST, DWordAcc, NoLock, Preserve)
 *       { CPR0, 32, CPR1, 32, CIN0, 32, CIN1, 32, CRM0, 32, CRM1, 32, CEJ0, 32, CEJ1, 32 }
 *   Method (CSCN) { Local0 = CIN0; Local1 = CIN1; Local2 = CRM0; Local3 = CRM1
 *                   If (Local(i / 32) & bit) { Notify (Cxxx, 1) }       device check
 *                   If (Local(2 + i / 32) & bit) { Notify (Cxxx, 3) } } eject request
 * and in each processor object but the boot processor's (8.4.3, 6.3.7,
 * 6.2.10, 6.3.3): _STA from CPRn, _MAT its MADT entry, enabled (Linux
 * takes a hot-added CPU's APIC id from _MAT), _EJ0 writing its CEJn bit. */
static void dsdt_cpu_hotplug_regs(struct aml *a, const struct acpi_platform_info *info)
{
	static const char *const units[] = { "CPR0", "CPR1", "CIN0", "CIN1", "CRM0", "CRM1", "CEJ0", "CEJ1" };
	aml_region_io(a, "CPST", info->cpuhp_port, 32);
	aml_field_begin(a, "CPST", AML_FIELD_DWORD);
	for (unsigned i = 0; i < 8; i++)
		aml_field_unit(a, units[i], 32);
	aml_end(a);
	aml_method_begin(a, "CSCN", 0, 1);
	for (unsigned i = 0; i < 4; i++) {
		if (i % 2 && info->n_cpus <= 32)
			continue;   /* no CPU 32-63: the high halves stay unread */
		aml_op(a, AML_STORE);
		aml_name_string(a, units[2 + i]);
		aml_local(a, i);
	}
	char name[5];
	for (unsigned i = 1; i < info->n_cpus && i < 64; i++) {
		cpu_name(name, i);
		for (unsigned kind = 0; kind < 2; kind++) {
			dsdt_notify_if_bit(a, 2 * kind + i / 32, i % 32, name, kind ? 3 : 1);
		}
	}
	aml_end(a);
}

static void dsdt_cpu_hotplug_methods(struct aml *a, unsigned i)
{
	char reg[12];
	uint8_t mat[8] = { 0, 8, (uint8_t)i, (uint8_t)i, 1, 0, 0, 0 };   /* Processor Local APIC, enabled */
	aml_name_begin(a, "_MAT");
	aml_buffer_begin(a);
	aml_bytes(a, mat, sizeof(mat));
	aml_end(a);
	aml_method_begin(a, "_STA", 0, 0);
	aml_if_begin(a);
	aml_op(a, AML_AND);
	snprintf(reg, sizeof(reg), "\\_SB.CPR%u", i / 32);
	aml_name_string(a, reg);
	aml_integer(a, 1ull << (i % 32));
	aml_byte(a, 0);
	aml_return_integer(a, 0x0f);    /* present, enabled, shown, functioning */
	aml_end(a);
	aml_return_integer(a, 0);
	aml_end(a);
	aml_method_begin(a, "_EJ0", 1, 0);
	aml_op(a, AML_STORE);
	aml_integer(a, 1ull << (i % 32));
	snprintf(reg, sizeof(reg), "\\_SB.CEJ%u", i / 32);
	aml_name_string(a, reg);
	aml_end(a);
}

static void dsdt_isa_device(struct aml *a, const char *name, const char *hid, unsigned uid)
{
	aml_device_begin(a, name);
	aml_name_eisaid(a, "_HID", hid);
	aml_name_integer(a, "_UID", uid);
}

/* \_Sx: the SLP_TYP values for PM1a_CNT and PM1b_CNT and two reserved
 * bytes (ACPI 6.4, 7.4.2); vessel has no PM1b block, so both are typ. */
static void sleep_package(struct aml *a, const char *name, uint8_t typ)
{
	aml_name_begin(a, name);
	aml_package_begin(a, 4);
	aml_integer(a, typ);
	aml_integer(a, typ);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);
}

int acpi_build_dsdt(const struct acpi_platform_info *info, uint8_t **out, size_t *len)
{
	struct aml a;
	aml_init(&a);
	uint8_t header[36] = { 0 };
	aml_bytes(&a, header, sizeof(header));

	aml_scope_begin(&a, "\\_SB");
	dsdt_pci_root(&a, info);

	/* Motherboard resources (PNP0C02): the ECAM window, so the OS trusts
	 * the MCFG (PCI Firmware 3.2, 4.1.2). */
	dsdt_isa_device(&a, "MRES", "PNP0C02", 1);
	dsdt_crs_begin(&a);
	aml_res_memory32_fixed(&a, (uint32_t)info->ecam_base, (uint32_t)(info->ecam_end_bus + 1) << 20, 0);
	dsdt_crs_end(&a);
	aml_end(&a);

	dsdt_isa_device(&a, "COM1", "PNP0501", 1);
	dsdt_crs_begin(&a);
	aml_res_io(&a, info->com1_port, info->com1_port, 1, 8);
	aml_res_irq_noflags(&a, (uint16_t)(1u << info->com1_irq));
	dsdt_crs_end(&a);
	aml_end(&a);

	dsdt_isa_device(&a, "RTC", "PNP0B00", 0);
	dsdt_crs_begin(&a);
	aml_res_io(&a, 0x70, 0x70, 1, 2);
	aml_res_irq_noflags(&a, 1u << 8);
	dsdt_crs_end(&a);
	aml_end(&a);

	dsdt_isa_device(&a, "KBD", "PNP0303", 0);
	dsdt_crs_begin(&a);
	aml_res_io(&a, 0x60, 0x60, 1, 1);
	aml_res_io(&a, 0x64, 0x64, 1, 1);
	aml_res_irq_noflags(&a, 1u << 1);
	dsdt_crs_end(&a);
	aml_end(&a);

	dsdt_isa_device(&a, "MOU", "PNP0F13", 0);
	dsdt_crs_begin(&a);
	aml_res_irq_noflags(&a, 1u << 12);
	dsdt_crs_end(&a);
	aml_end(&a);

	dsdt_isa_device(&a, "HPET", "PNP0103", 0);
	dsdt_crs_begin(&a);
	aml_res_memory32_fixed(&a, (uint32_t)info->hpet_addr, 0x400, 0);
	dsdt_crs_end(&a);
	aml_end(&a);

	aml_device_begin(&a, "FWCF");
	aml_name_string_value(&a, "_HID", "QEMU0002");
	aml_name_integer(&a, "_STA", 0x0b);   /* present, enabled, not shown in UI */
	dsdt_crs_begin(&a);
	aml_res_io(&a, info->fw_cfg_port, info->fw_cfg_port, 1, 2);
	dsdt_crs_end(&a);
	aml_end(&a);

	/* VMBus: Linux's hv_vmbus binds to _HID "VMBus" and walks its _CRS
	 * for MMIO windows (none here: the integration services need
	 * none); the method must exist or the driver refuses the device.
	 * The bus itself is reached through hypercalls, not resources. */
	if (info->vmbus) {
		aml_device_begin(&a, "VMBS");
		aml_name_string_value(&a, "_HID", "VMBus");
		aml_name_integer(&a, "_UID", 0);
		aml_name_integer(&a, "_STA", 0x0f);
		dsdt_crs_begin(&a);
		dsdt_crs_end(&a);
		aml_end(&a);
	}

	/* Processor devices (8.4, ACPI0007) matching the MADT's UIDs. */
	if (info->cpuhp_port)
		dsdt_cpu_hotplug_regs(&a, info);
	for (unsigned i = 0; i < info->n_cpus; i++) {
		char name[5];
		cpu_name(name, i);
		aml_device_begin(&a, name);
		aml_name_string_value(&a, "_HID", "ACPI0007");
		aml_name_integer(&a, "_UID", i);
		/* Its proximity domain (6.2.14): Linux places a CPU hot-added
		 * at run time in the node of its _PXM (acpi_map_cpu2node), as
		 * it reads a boot CPU's from the SRAT; both agree. */
		if (info->cpu_node)
			aml_name_integer(&a, "_PXM", info->cpu_node[i]);
		if (info->cpuhp_port && i > 0 && i < 64)
			dsdt_cpu_hotplug_methods(&a, i);
		aml_end(&a);
	}
	if (info->power_port)
		dsdt_power_supply(&a, info);
	aml_end(&a);   /* \_SB */

	/* The hot-plug GPEs' handlers (5.6.4.1): edge-triggered, as the
	 * controllers set the status bit once per change. */
	if (info->pcihp_port)
		dsdt_gpe_handler(&a, info->pcihp_gpe, "\\_SB.PCI0.PCNT");
	if (info->cpuhp_port)
		dsdt_gpe_handler(&a, info->cpuhp_gpe, "\\_SB.CSCN");
	if (info->power_port)
		dsdt_gpe_handler(&a, info->power_gpe, "\\_SB.PWEV");

	/* \_S3: suspend to RAM, the sleep type the PM1 block acts on
	 * (7.4.2.4): the OS offers "mem" only if it exists. */
	if (info->slp_typ_s3)
		sleep_package(&a, "\\_S3", info->slp_typ_s3);

	/* \_S4: hibernate (7.4.2.5): the OS writes its image to disk, then
	 * enters S4, which is off for the platform; Linux picks its
	 * "platform" hibernation mode only when \_S4 exists. */
	if (info->slp_typ_s4)
		sleep_package(&a, "\\_S4", info->slp_typ_s4);

	/* \_S5: soft-off sleep type values for PM1a/PM1b_CNT.SLP_TYP (7.4.2). */
	sleep_package(&a, "\\_S5", info->slp_typ_s5);

	int rc = aml_error(&a);
	if (rc < 0) {
		aml_free(&a);
		return err_set(rc, "cannot build the DSDT");
	}
	/* Revision 2: 64-bit integers (5.2.11.1). */
	acpi_header_fill(a.buf, "DSDT", (uint32_t)a.len, 2);
	acpi_table_checksum(a.buf, a.len);
	*out = a.buf;
	*len = a.len;
	return 0;
}

/* ---- fixed-layout tables ---- */

static void build_facs(uint8_t *t)
{
	/* FACS (5.2.10): no checksum, 64 bytes, version 2.  The OS writes
	 * the Firmware Waking Vector (offset 12) before it enters S3; the ROM
	 * jumps there on wake (src/boot/stub.asm).  The hardware signature
	 * (offset 8) is constant: the machine does not change across a sleep.
	 * Flags stay 0: no S4BIOS, no 64-bit wake (the vector is entered in
	 * real mode only). */
	memset(t, 0, 64);
	memcpy(t, "FACS", 4);
	put32(t, 4, 64);
	put32(t, 8, 0x4c535356);          /* "VSSL" */
	put8(t, 32, 2);
}

#define FADT_LEN 276

static void build_fadt(uint8_t *t, const struct acpi_platform_info *info, uint64_t facs, uint64_t dsdt)
{
	memset(t, 0, FADT_LEN);
	acpi_header_fill(t, "FACP", FADT_LEN, 6);
	uint32_t pm1_evt = info->pm_base, pm1_cnt = info->pm_base + 4u, pm_tmr = info->pm_base + 8u,
		 gpe0 = info->pm_base + 0x20u;
	put32(t, 36, (uint32_t)facs);
	put32(t, 40, (uint32_t)dsdt);
	put8(t, 45, 0);                   /* preferred PM profile: unspecified */
	put16(t, 46, info->sci_irq);
	/* SMI_CMD = 0: no SMM, the hardware is always in ACPI mode (5.2.9). */
	put32(t, 56, pm1_evt);
	put32(t, 64, pm1_cnt);
	put32(t, 76, pm_tmr);
	put32(t, 80, gpe0);
	put8(t, 88, 4);                   /* PM1_EVT_LEN */
	put8(t, 89, 2);                   /* PM1_CNT_LEN */
	put8(t, 91, 4);                   /* PM_TMR_LEN */
	put8(t, 92, info->gpe0_len);
	put16(t, 96, 101);                /* P_LVL2_LAT > 100: no C2 */
	put16(t, 98, 1001);               /* P_LVL3_LAT > 1000: no C3 */
	/* DAY_ALRM and MON_ALRM stay 0: the MC146818 has no date alarm
	 * (index 0x0d is register D, whose low bits are not an alarm here). */
	put8(t, 108, 0x32);               /* CENTURY: RTC century index */
	/* IAPC_BOOT_ARCH (5.2.9.3): legacy devices, 8042, no VGA, no ASPM control. */
	put16(t, 109, (1u << 0) | (1u << 1) | (1u << 2) | (1u << 4));
	/* Flags (table 5.10): WBINVD, PROC_C1, TMR_VAL_EXT (32-bit PM
	 * timer), RESET_REG_SUP.  PWR_BUTTON and SLP_BUTTON clear: both
	 * buttons are the fixed-feature ones; FIX_RTC clear: RTC_STS wakes
	 * from S3 (4.8.2.1.1). */
	put32(t, 112, (1u << 0) | (1u << 2) | (1u << 8) | (1u << 10));
	put_gas(t, 116, GAS_IO, 8, 1, info->reset_port);
	put8(t, 128, info->reset_value);
	put8(t, 131, 0);                  /* FADT minor version */
	put64(t, 132, facs);
	put64(t, 140, dsdt);
	put_gas(t, 148, GAS_IO, 32, 0, pm1_evt);
	put_gas(t, 172, GAS_IO, 16, 0, pm1_cnt);
	put_gas(t, 208, GAS_IO, 32, 0, pm_tmr);
	put_gas(t, 220, GAS_IO, (uint8_t)(info->gpe0_len * 8), 0, gpe0);
	memcpy(t + 268, "VESSEL\0\0", 8);  /* hypervisor vendor identity */
	acpi_table_checksum(t, FADT_LEN);
}

static size_t build_madt(uint8_t *t, const struct acpi_platform_info *info)
{
	size_t off = 44;
	acpi_header_fill(t, "APIC", 0, 5);
	put32(t, 36, (uint32_t)info->lapic_addr);
	put32(t, 40, 1);                  /* PCAT_COMPAT: 8259s present */
	for (unsigned i = 0; i < info->n_cpus; i++) {
		/* Processor Local APIC (5.2.12.2); x2APIC entries above ID 254. */
		if (i < 255) {
			put8(t, off, 0); put8(t, off + 1, 8);
			put8(t, off + 2, (uint8_t)i);   /* ACPI processor UID */
			put8(t, off + 3, (uint8_t)i);   /* APIC ID */
			/* Enabled; a possible CPU not plugged in yet is
			 * online-capable instead (flags bit 1, MADT revision 5). */
			put32(t, off + 4, !info->cpuhp_port || i >= 64 || (info->cpu_present >> i) & 1 ? 1 : 2);
			off += 8;
		} else {
			put8(t, off, 9); put8(t, off + 1, 16);
			put16(t, off + 2, 0);
			put32(t, off + 4, i);
			put32(t, off + 8, 1);
			put32(t, off + 12, i);
			off += 16;
		}
	}
	/* I/O APIC (5.2.12.3): ID 0, GSI base 0. */
	put8(t, off, 1); put8(t, off + 1, 12);
	put8(t, off + 2, 0); put8(t, off + 3, 0);
	put32(t, off + 4, (uint32_t)info->ioapic_addr);
	put32(t, off + 8, 0);
	off += 12;
	/* Interrupt source overrides (5.2.12.5): the PIT's IRQ0 is on GSI 2;
	 * the SCI is level-triggered, active high (flags: polarity 01, trigger 11). */
	put8(t, off, 2); put8(t, off + 1, 10);
	put8(t, off + 2, 0); put8(t, off + 3, 0);
	put32(t, off + 4, 2);
	put16(t, off + 8, 0);
	off += 10;
	put8(t, off, 2); put8(t, off + 1, 10);
	put8(t, off + 2, 0); put8(t, off + 3, info->sci_irq);
	put32(t, off + 4, info->sci_irq);
	put16(t, off + 8, 0x000d);
	off += 10;
	/* Local APIC NMI (5.2.12.7): LINT1 of every processor. */
	put8(t, off, 4); put8(t, off + 1, 6);
	put8(t, off + 2, 0xff);
	put16(t, off + 3, 0);
	put8(t, off + 5, 1);
	off += 6;
	put32(t, 4, (uint32_t)off);
	acpi_table_checksum(t, off);
	return off;
}

static void build_hpet(uint8_t *t, const struct acpi_platform_info *info)
{
	/* IA-PC HPET specification 1.0a, section 3.2.4. */
	memset(t, 0, 56);
	acpi_header_fill(t, "HPET", 56, 1);
	put32(t, 36, info->hpet_block_id);
	put_gas(t, 40, GAS_MEMORY, 64, 0, info->hpet_addr);
	put8(t, 52, 0);                   /* HPET number */
	put16(t, 53, 0x80);               /* minimum clock tick in periodic mode */
	put8(t, 55, 0);                   /* no page protection */
	acpi_table_checksum(t, 56);
}

static void build_mcfg(uint8_t *t, const struct acpi_platform_info *info)
{
	/* PCI Firmware Specification 3.2, 4.1.2. */
	memset(t, 0, 60);
	acpi_header_fill(t, "MCFG", 60, 1);
	put64(t, 44, info->ecam_base);
	put16(t, 52, 0);                  /* segment */
	put8(t, 54, 0);                   /* start bus */
	put8(t, 55, info->ecam_end_bus);
	acpi_table_checksum(t, 60);
}

int acpi_build_pc_tables(struct acpi_builder *b, const struct acpi_platform_info *info)
{
	if (info->n_cpus == 0 || info->n_cpus > ACPI_MAX_CPUS)
		return err_set(-EINVAL, "ACPI: %u CPUs is out of range", info->n_cpus);
	uint8_t facs[64];
	build_facs(facs);
	uint64_t facs_gpa = acpi_builder_place(b, facs, sizeof(facs), 64);
	b->facs_gpa = facs_gpa;

	uint8_t *dsdt;
	size_t dsdt_len;
	int rc = acpi_build_dsdt(info, &dsdt, &dsdt_len);
	if (rc < 0)
		return rc;
	uint64_t dsdt_gpa = acpi_builder_place(b, dsdt, dsdt_len, 16);
	free(dsdt);

	uint8_t fadt[FADT_LEN];
	build_fadt(fadt, info, facs_gpa, dsdt_gpa);
	acpi_builder_add(b, fadt, sizeof(fadt));

	uint8_t *madt = malloc(128 + 16 * (size_t)info->n_cpus);
	if (!madt)
		return err_set(-ENOMEM, "out of memory");
	size_t madt_len = build_madt(madt, info);
	acpi_builder_add(b, madt, madt_len);
	free(madt);

	uint8_t hpet[56];
	build_hpet(hpet, info);
	acpi_builder_add(b, hpet, sizeof(hpet));

	uint8_t mcfg[60];
	build_mcfg(mcfg, info);
	acpi_builder_add(b, mcfg, sizeof(mcfg));
	return b->err;
}

/* ---- SRAT (5.2.16) and SLIT (5.2.17) ---- */

int acpi_build_srat(struct acpi_builder *b, unsigned n_cpus, const struct acpi_numa_info *numa)
{
	unsigned nodes = numa->n_nodes;
	if (nodes == 0 || nodes > ACPI_MAX_NUMA_NODES || nodes > n_cpus || n_cpus > ACPI_MAX_CPUS)
		return err_set(-EINVAL, "NUMA: %u nodes for %u CPUs is not possible", nodes, n_cpus);
	if (numa->n_ranges > ACPI_MAX_NUMA_RANGES)
		return err_set(-E2BIG, "NUMA: too many memory ranges");
	size_t cap = 48 + 24 * (size_t)n_cpus + 40 * (size_t)numa->n_ranges;
	uint8_t *t = calloc(1, cap);
	if (!t)
		return err_set(-ENOMEM, "out of memory");
	acpi_header_fill(t, "SRAT", 0, 3);
	put32(t, 36, 1);                  /* reserved, 1 for compatibility */
	size_t off = 48;
	for (unsigned i = 0; i < n_cpus; i++) {
		uint32_t node = numa->cpu_node[i];
		if (node >= nodes) {
			free(t);
			return err_set(-EINVAL, "NUMA: CPU %u is in node %u of %u", i, node, nodes);
		}
		if (i < 255) {
			/* Processor Local APIC Affinity (5.2.16.1). */
			put8(t, off, 0); put8(t, off + 1, 16);
			put8(t, off + 2, (uint8_t)node);
			put8(t, off + 3, (uint8_t)i);
			put32(t, off + 4, 1);     /* enabled */
			put8(t, off + 8, 0);
			put8(t, off + 9, (uint8_t)(node >> 8));
			put8(t, off + 10, (uint8_t)(node >> 16));
			put8(t, off + 11, (uint8_t)(node >> 24));
			put32(t, off + 12, 0);
		} else {
			/* Processor Local x2APIC Affinity (5.2.16.3). */
			put8(t, off, 2); put8(t, off + 1, 24);
			put32(t, off + 4, node);
			put32(t, off + 8, i);
			put32(t, off + 12, 1);
			put32(t, off + 16, 0);
			off += 8;
		}
		off += 16;
	}
	for (unsigned r = 0; r < numa->n_ranges; r++) {
		if (numa->ranges[r].node >= nodes) {
			free(t);
			return err_set(-EINVAL, "NUMA: memory range %u is in node %u of %u", r, numa->ranges[r].node, nodes);
		}
		uint64_t base = numa->ranges[r].base, size = numa->ranges[r].size;
		/* Memory Affinity (5.2.16.2). */
		put8(t, off, 1); put8(t, off + 1, 40);
		put32(t, off + 2, numa->ranges[r].node);
		put32(t, off + 8, (uint32_t)base);
		put32(t, off + 12, (uint32_t)(base >> 32));
		put32(t, off + 16, (uint32_t)size);
		put32(t, off + 20, (uint32_t)(size >> 32));
		/* Flags: enabled; hot pluggable for the space kept for memory
		 * hot-add, which the OS then knows to be this node's. */
		put32(t, off + 28, numa->ranges[r].hotplug ? 3 : 1);
		off += 40;
	}
	put32(t, 4, (uint32_t)off);
	acpi_table_checksum(t, off);
	acpi_builder_add(b, t, off);
	free(t);
	return b->err;
}

int acpi_build_slit(struct acpi_builder *b, const struct acpi_numa_info *numa)
{
	unsigned n = numa->n_nodes;
	if (n == 0 || n > ACPI_MAX_NUMA_NODES)
		return err_set(-EINVAL, "NUMA: %u nodes is out of range", n);
	bool given = false;
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			given |= numa->distance[i][j] != 0;
	size_t len = 44 + (size_t)n * n;
	uint8_t *t = calloc(1, len);
	if (!t)
		return err_set(-ENOMEM, "out of memory");
	acpi_header_fill(t, "SLIT", (uint32_t)len, 1);
	put32(t, 36, n);                  /* number of system localities */
	put32(t, 40, 0);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < n; j++) {
			/* Entry [i][j] at 44 + i*n + j; 10 is a node's distance to
			 * itself, and remote distances must be larger. */
			uint8_t d = given ? numa->distance[i][j] : (i == j ? 10 : 20);
			put8(t, 44 + (size_t)i * n + j, d);
		}
	}
	acpi_table_checksum(t, len);
	acpi_builder_add(b, t, len);
	free(t);
	return b->err;
}
