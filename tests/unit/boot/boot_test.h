/* Helpers shared by the boot loader tests. */
#ifndef VESSEL_TEST_BOOT_H
#define VESSEL_TEST_BOOT_H

#include "boot/boot.h"

#include <stddef.h>
#include <stdint.h>

/* Writes data to a fresh file in a per-test temporary directory; returns
 * its path (static storage, one per slot 0-7). */
const char *bt_write_file(int slot, const void *data, size_t len);
/* Guest memory of ram bytes, every RAM byte set to 0xaa so that tests see
 * what the loader zeroed. */
void bt_mem_init(struct guest_memory *mem, uint64_t ram);
uint32_t bt_rd32(const struct guest_memory *mem, uint64_t gpa);
uint64_t bt_rd64(const struct guest_memory *mem, uint64_t gpa);
void bt_config(struct boot_config *cfg, const char *kernel, const char *initrd, const char *cmdline);
void bt_config_free(struct boot_config *cfg);

#endif
