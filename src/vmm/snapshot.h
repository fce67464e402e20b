/* Save and restore of a whole VM (docs/snapshot.md).
 *
 * snapshot_save() writes CPU state through the engine accessors, every
 * device registered with snapshot_register_device(), and guest RAM, to a
 * temporary file that is fsync'ed and renamed to its final name, so a
 * crash never leaves a partial snapshot there.  snapshot_restore() checks
 * every header, size and CRC before it changes anything in the VM, then
 * loads RAM (mapping it copy-on-write from the file) and the rest.
 *
 * Both expect the vCPUs stopped (lifecycle saving-state / loading-state);
 * the caller makes those transitions. */
#ifndef VESSEL_VMM_SNAPSHOT_H
#define VESSEL_VMM_SNAPSHOT_H

#include "machine/device_registry.h"
#include "vmm/snapshot_format.h"
#include "vmm/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

struct snapshot_stats {
	uint64_t file_bytes;        /* size of the file */
	uint64_t disk_bytes;        /* blocks it uses (zero pages are holes) */
	uint64_t ram_bytes;
	uint64_t zero_pages;        /* pages not written (holes) */
	unsigned n_devices;
};

int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *stats);
/* As snapshot_save, recording devices (an array of {"type", "id",
 * "params"}, as api_devices_to_json makes) in the CONFIG section so that
 * snapshot_load_config() can re-create them before the restore. */
int snapshot_save_with_devices(struct vm *vm, const char *path, json_t *devices, struct snapshot_stats *stats);

struct snapshot_restore_opts {
	/* Map RAM from the file (MAP_PRIVATE) instead of reading it. */
	bool map_memory;
	/* Check the CRC of RAM too (reads every page once). */
	bool verify_memory;
};

/* The file, its config and the VM's shape (vCPUs, RAM layout, a state
 * per vCPU), checked before anything is set up for the restore: no
 * plug-in is loaded for a snapshot that this refuses.  With vm NULL, the
 * file and its config only. */
int snapshot_check(struct vm *vm, const char *path);
int snapshot_restore(struct vm *vm, const char *path, const struct snapshot_restore_opts *opts);

/* Fills engine, cpus, mem_bytes, numa_nodes and devices of cfg from the
 * snapshot's CONFIG section, so that `vessel run --restore FILE` builds a
 * VM of the same shape before snapshot_restore(). */
int snapshot_load_config(const char *path, struct vm_config *cfg);

/* ---- low-level writer and reader (used above; exposed for tests and
 * tools) ---- */

struct snap_writer {
	int fd;
	char *path, *tmp_path;
	uint64_t off;
	uint64_t zero_pages;
};

int snap_writer_open(struct snap_writer *w, const char *path);
int snap_writer_section(struct snap_writer *w, uint32_t type, uint32_t version, uint64_t arg, const char *name,
			const void *data, size_t len);
/* Page-aligned payload; all-zero pages become holes. */
int snap_writer_memory(struct snap_writer *w, uint64_t gpa, const void *host, uint64_t size);
/* END section, fsync, rename to the final name, fsync the directory. */
int snap_writer_commit(struct snap_writer *w);
/* Removes the temporary file. */
void snap_writer_abort(struct snap_writer *w);

struct snap_reader {
	int fd;
	char *path;
	uint64_t file_size;
	unsigned n;
	struct snap_section_header *sections;
};

/* Checks the header and every section header (bounds, CRCs, the END
 * section); payload CRCs are checked when read. */
int snap_reader_open(struct snap_reader *r, const char *path);
void snap_reader_close(struct snap_reader *r);
const struct snap_section_header *snap_reader_find(const struct snap_reader *r, uint32_t type, const char *name);
/* Reads a payload into buf (sec->length bytes) and checks its CRC. */
int snap_reader_read(const struct snap_reader *r, const struct snap_section_header *sec, void *buf);
/* Places a MEMORY payload at dest (page-aligned, sec->length bytes):
 * mapped MAP_PRIVATE|MAP_FIXED over dest, or read into it. */
int snap_reader_memory(const struct snap_reader *r, const struct snap_section_header *sec, void *dest, bool map,
		       bool verify);

#endif
