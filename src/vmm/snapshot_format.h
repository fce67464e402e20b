/* The snapshot file format, version 1 (docs/snapshot.md): a header, then
 * sections, each with its own header and CRC32; the memory sections'
 * payloads start on 4 KiB boundaries so that a restore can map them.
 * All integers are little-endian. */
#ifndef VESSEL_VMM_SNAPSHOT_FORMAT_H
#define VESSEL_VMM_SNAPSHOT_FORMAT_H

#include <stdint.h>

#define SNAP_MAGIC "VESSNAP\0"
#define SNAP_VERSION 1u
#define SNAP_BYTE_ORDER 0x0a0b0c0du   /* reads 0x0d0c0b0a when byte-swapped */
#define SNAP_PAGE 4096u

struct snap_file_header {
	char magic[8];            /* SNAP_MAGIC */
	uint32_t version;         /* SNAP_VERSION */
	uint32_t byte_order;      /* SNAP_BYTE_ORDER as written by the host */
	uint32_t header_size;     /* sizeof(struct snap_file_header) */
	uint32_t section_header_size;
	uint64_t created;         /* Unix time */
	uint32_t flags;           /* 0 */
	uint32_t crc;             /* CRC32 of this header with crc = 0 */
};

enum snap_section_type {
	SNAP_SEC_CONFIG = 1,      /* JSON: the VM's shape (engine, cpus, memory, devices) */
	SNAP_SEC_CPU = 2,         /* one per vCPU; name "cpuN" */
	SNAP_SEC_DEVICE = 3,      /* one per registered device; name = its id */
	SNAP_SEC_MEMORY = 4,      /* one per RAM region; arg = guest-physical base */
	SNAP_SEC_END = 5,         /* last; a file without it is incomplete */
};

#define SNAP_NAME_MAX 64

struct snap_section_header {
	uint32_t type;            /* enum snap_section_type */
	uint32_t version;         /* layout version of this section's payload */
	uint64_t data_offset;     /* absolute file offset of the payload */
	uint64_t length;          /* payload bytes */
	uint64_t arg;             /* per type (MEMORY: gpa) */
	uint32_t data_crc;        /* CRC32 of the payload */
	uint32_t crc;             /* CRC32 of this header with crc = 0 */
	char name[SNAP_NAME_MAX]; /* NUL-terminated */
};

/* CPU section payload, version 1: this prefix, then regs, sregs, fpu and
 * n_msrs x {u32 index, u32 zero, u64 value}. */
struct snap_cpu_prefix {
	uint32_t regs_size, sregs_size, fpu_size, n_msrs;
	uint32_t run_state, sipi_vector;
	uint32_t reserved[2];
};

/* The layout is the file format: keep it fixed (docs/snapshot.md). */
_Static_assert(sizeof(struct snap_file_header) == 40, "snapshot file header is 40 bytes");
_Static_assert(sizeof(struct snap_section_header) == 104, "snapshot section header is 104 bytes");
_Static_assert(sizeof(struct snap_cpu_prefix) == 32, "CPU section prefix is 32 bytes");

#endif
