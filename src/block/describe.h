/* A JSON description of a disk image: format, sizes, geometry, VHD
 * metadata and checksums, parent chain, and the LUKS2 header's facts when
 * the content is encrypted (no passphrase needed).  The keys are those of
 * `vessel disk info --json` (docs/disks.md). */
#ifndef VESSEL_BLOCK_DESCRIBE_H
#define VESSEL_BLOCK_DESCRIBE_H

#include <jansson.h>
#include <stdint.h>

/* NULL with *err (a negative errno, message set) when the file cannot be
 * described: unknown format, or a VHD damaged beyond what check repairs. */
json_t *block_describe(const char *path, const char *fmt, int *err);
/* "fixed", "dynamic", "differencing" for a VHD footer's disk type. */
const char *block_vhd_type_name(uint32_t type);

#endif
