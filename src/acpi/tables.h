/* ACPI table builder (ACPI 6.4 chapter 5.2): RSDP v2, XSDT and RSDT,
 * FADT (revision 6, full hardware model), FACS, MADT, DSDT, HPET and MCFG,
 * laid out in one guest-physical area (the BIOS area, where the OS scans
 * for the RSDP).  Tables are added through acpi_builder_add() so more (an
 * SRAT for virtual NUMA, SSDTs) can join before acpi_builder_finish()
 * writes the XSDT, RSDT and RSDP. */
#ifndef VESSEL_ACPI_TABLES_H
#define VESSEL_ACPI_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define ACPI_MAX_TABLES 16
#define ACPI_MAX_CPUS 256

/* What the tables describe; filled by the platform (src/board/pc.c). */
struct acpi_platform_info {
	unsigned n_cpus;                  /* APIC ID = ACPI processor UID = index */
	uint64_t lapic_addr, ioapic_addr, hpet_addr;
	uint32_t hpet_block_id;           /* HPET general capabilities, low 32 bits */
	uint16_t pm_base;                 /* PM1a_EVT; PM1a_CNT +4, PM_TMR +8, GPE0 +0x20 */
	uint8_t gpe0_len;
	uint8_t sci_irq;
	uint8_t slp_typ_s5;
	/* SLP_TYP for \_S3 (suspend to RAM); 0 leaves \_S3 out. */
	uint8_t slp_typ_s3;
	/* SLP_TYP for \_S4 (hibernate); 0 leaves \_S4 out. */
	uint8_t slp_typ_s4;
	uint16_t reset_port;
	uint8_t reset_value;
	uint64_t ecam_base;
	uint8_t ecam_end_bus;
	uint64_t pci_mmio_base, pci_mmio_end;   /* 32-bit window, inclusive end */
	uint16_t com1_port;
	uint8_t com1_irq;
	uint16_t fw_cfg_port;
	/* ACPI PCI hot-plug of bus 0 (docs/hotplug.md): the controller's
	 * register block (CHK +0, EJR +4, EJ +8) and the GPE it raises;
	 * port 0 describes no hot-plug slots. */
	uint16_t pcihp_port;
	uint8_t pcihp_gpe;
	/* The AC adapter and battery backed by the host (docs/power.md):
	 * their register block (hw/power_supply.h) and GPE; port 0 leaves
	 * them out of the DSDT. */
	uint16_t power_port;
	uint8_t power_gpe;
	/* A VMBus device (\_SB.VMBS, _HID "VMBus"), for the Hyper-V
	 * interface's channel bus (docs/hyperv.md "VMBus"). */
	bool vmbus;
	/* ACPI processor hot-plug (docs/hotplug.md "CPUs"): the controller's
	 * register block (hw/cpu_hotplug.h) and its GPE; port 0: the CPUs
	 * are fixed.  cpu_present: bit i, CPU i is plugged in at power-on
	 * (the others are possible CPUs the MADT marks online-capable). */
	uint16_t cpuhp_port;
	uint8_t cpuhp_gpe;
	uint64_t cpu_present;
	/* Virtual NUMA (docs/numa.md): cpu_node[i] is the node of CPU i (of
	 * every possible CPU), its processor object's _PXM, the same as the
	 * SRAT's; NULL: no nodes, no _PXM. */
	const uint8_t *cpu_node;
	/* PCI INTx routing for _PRT: GSI of (slot, pin 1-4). */
	unsigned (*intx_gsi)(unsigned slot, unsigned pin);
};

struct acpi_builder {
	uint8_t *area;          /* host view of the guest area */
	uint64_t area_gpa;
	size_t size, used;
	uint64_t tables[ACPI_MAX_TABLES];   /* listed in the XSDT */
	unsigned n_tables;
	uint64_t rsdp_gpa;
	uint64_t facs_gpa;      /* set by acpi_build_pc_tables: the waking vector's table */
	int err;
};

void acpi_builder_init(struct acpi_builder *b, uint8_t *area, uint64_t area_gpa, size_t size);
/* Copies a finished table (checksum already set) into the area, aligned;
 * returns its guest address, 0 on error (sticky in b->err). */
uint64_t acpi_builder_place(struct acpi_builder *b, const void *table, size_t len, size_t align);
/* Places a table and lists it in the XSDT. */
uint64_t acpi_builder_add(struct acpi_builder *b, const void *table, size_t len);
/* Writes XSDT, RSDT and the RSDP; returns 0 or -errno with err_set(). */
int acpi_builder_finish(struct acpi_builder *b);

/* Standard header (5.2.6) with our OEM fields; len is the full table length. */
void acpi_header_fill(void *table, const char sig[4], uint32_t len, uint8_t revision);
/* Sets the header checksum so that the table's bytes sum to 0. */
void acpi_table_checksum(void *table, size_t len);
uint8_t acpi_checksum(const void *p, size_t len);

/* Virtual NUMA (ACPI 6.4 sections 5.2.16 SRAT and 5.2.17 SLIT): the node
 * of each CPU (by APIC id), the node of each range of RAM, and the
 * distances between nodes. */
#define ACPI_MAX_NUMA_NODES 64
#define ACPI_MAX_NUMA_RANGES 80
struct acpi_numa_info {
	unsigned n_nodes;
	uint8_t cpu_node[ACPI_MAX_CPUS];   /* node of the CPU with APIC id i */
	unsigned n_ranges;
	/* hotplug: address space kept for memory added later (SRAT flag
	 * Hot Pluggable), not RAM at boot. */
	struct { uint64_t base, size; unsigned node; bool hotplug; } ranges[ACPI_MAX_NUMA_RANGES];
	/* SLIT entries; all 0: 10 local, 20 remote. */
	uint8_t distance[ACPI_MAX_NUMA_NODES][ACPI_MAX_NUMA_NODES];
};

/* Adds the SRAT to b; 0 or -errno with err_set(). */
int acpi_build_srat(struct acpi_builder *b, unsigned n_cpus, const struct acpi_numa_info *numa);
/* Adds the SLIT to b; 0 or -errno with err_set(). */
int acpi_build_slit(struct acpi_builder *b, const struct acpi_numa_info *numa);

/* Every table of the PC; 0 or -errno with err_set(). */
int acpi_build_pc_tables(struct acpi_builder *b, const struct acpi_platform_info *info);
/* The DSDT alone (malloc'd into *out), for tests and SSDT-style reuse. */
int acpi_build_dsdt(const struct acpi_platform_info *info, uint8_t **out, size_t *len);

#endif
