/* The SSDT of ACPI memory hot-plug (docs/hotplug.md "Memory"): one memory
 * device (PNP0C80, ACPI 6.4 section 9.13) per block of the hot-pluggable
 * range, present or not as the controller says, and the GPE handler that
 * notifies the blocks that changed. */
#ifndef VESSEL_ACPI_MEMHP_H
#define VESSEL_ACPI_MEMHP_H

#include "acpi/tables.h"

#include <stdbool.h>
#include <stdint.h>

#define ACPI_MEMHP_MAX_SLOTS 256

struct acpi_memhp_info {
	uint16_t port;          /* the controller (hw/mem_hotplug.h): PRS, INS, EJR, EJ banks */
	uint8_t gpe;            /* its GPE0 bit: \_GPE._Exx */
	uint64_t base;          /* slot s is [base + s * block_size, + block_size) */
	uint64_t block_size;
	unsigned n_slots;
	bool numa;              /* _PXM from slot_node (else none: the OS puts it in node 0) */
	uint8_t slot_node[ACPI_MEMHP_MAX_SLOTS];
};

/* The SSDT alone (malloc'd into *out), for tests. */
int acpi_build_memhp_ssdt(const struct acpi_memhp_info *info, uint8_t **out, size_t *len);
/* Adds it to b; 0 or -errno with err_set(). */
int acpi_add_memhp_ssdt(struct acpi_builder *b, const struct acpi_memhp_info *info);

#endif
