/* VHD (Microsoft "Virtual Hard Disk Image Format Specification", v1.0,
 * 2006): on-disk structures, their parsing and checking, and the tools
 * `vessel disk` uses on VHD images.  All fields are big-endian on disk.
 *
 * Layouts vessel writes:
 *   fixed:         [data: current size][footer 512]
 *   dynamic/diff:  [footer copy 512][header 1024][BAT][locators][blocks...][footer 512]
 * A block is its sector bitmap (padded to a sector) followed by block-size
 * bytes of data. */
#ifndef VESSEL_BLOCK_VHD_H
#define VESSEL_BLOCK_VHD_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHD_FOOTER_SIZE   512
#define VHD_HEADER_SIZE   1024
#define VHD_TYPE_FIXED    2
#define VHD_TYPE_DYNAMIC  3
#define VHD_TYPE_DIFF     4
#define VHD_BAT_UNUSED    0xffffffffu
#define VHD_NO_OFFSET     0xffffffffffffffffull
#define VHD_DEFAULT_BLOCK (2u << 20)          /* spec: "default block size 2 MB" */
/* 65535 cylinders * 16 heads * 255 sectors (~127 GiB): the largest CHS
 * geometry; larger disks all carry it (spec appendix "CHS Calculation"). */
#define VHD_MAX_GEOMETRY  (65535ull * 16 * 255)
/* Largest virtual size accepted: 2040 GiB, where 32-bit BAT sector offsets
 * still address the whole file (and qemu's limit, for interchange). */
#define VHD_MAX_SECTORS   0xff000000ull
#define VHD_MAX_ENTRIES   (1u << 24)           /* BAT entries accepted */
#define VHD_EPOCH         946684800ll          /* 2000-01-01 00:00:00 UTC */
#define VHD_PLAT_NONE     0
#define VHD_PLAT_W2RU     0x57327275u          /* "W2ru": relative path, UTF-16LE */
#define VHD_PLAT_W2KU     0x57326b75u          /* "W2ku": absolute path, UTF-16LE */
#define VHD_PLAT_MACX     0x4d616358u          /* "MacX": file URL, UTF-8 */
#define VHD_LOCATORS      8
/* Space vessel reserves per parent locator, in bytes (room for a 4096
 * character path in UTF-16, so rebase never has to move metadata). */
#define VHD_LOCATOR_SPACE 8192u

/* Hard Disk Footer Format (spec "Hard Disk Footer Format"). */
struct vhd_footer {
	uint32_t features;         /* 0x2 "reserved, must be set" */
	uint32_t version;          /* 0x00010000 */
	uint64_t data_offset;      /* header offset; VHD_NO_OFFSET for fixed */
	uint32_t timestamp;        /* seconds since VHD_EPOCH */
	char creator_app[4];
	uint32_t creator_ver;
	uint32_t creator_os;
	uint64_t orig_size;
	uint64_t cur_size;         /* virtual size in bytes */
	uint16_t cyls;
	uint8_t heads, spt;
	uint32_t type;
	uint32_t checksum;         /* as stored */
	uint8_t uuid[16];
	uint8_t saved_state;
};

struct vhd_locator {
	uint32_t code;             /* VHD_PLAT_* */
	uint32_t space;            /* Platform Data Space */
	uint32_t len;              /* Platform Data Length (bytes) */
	uint64_t offset;           /* Platform Data Offset (bytes in file) */
};

/* Dynamic Disk Header Format. */
struct vhd_header {
	uint64_t data_offset;      /* VHD_NO_OFFSET */
	uint64_t table_offset;     /* BAT, bytes */
	uint32_t version;          /* 0x00010000 */
	uint32_t max_entries;      /* BAT entries */
	uint32_t block_size;       /* bytes, power of two */
	uint32_t checksum;
	uint8_t parent_uuid[16];
	uint32_t parent_ts;
	uint16_t parent_name[256]; /* UTF-16 (big-endian on disk), host order here */
	struct vhd_locator loc[VHD_LOCATORS];
};

/* The one's complement of the byte sum, skipping the 4-byte checksum field
 * at csum_off (spec "Checksum" of the footer and of the header). */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off);
/* Decode: -EINVAL for a wrong cookie or impossible fields, -EBADMSG for a
 * checksum mismatch (the struct is still filled). Messages are set. */
int vhd_footer_decode(const uint8_t buf[VHD_FOOTER_SIZE], struct vhd_footer *f);
void vhd_footer_encode(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE]);
int vhd_header_decode(const uint8_t buf[VHD_HEADER_SIZE], struct vhd_header *h);
void vhd_header_encode(const struct vhd_header *h, uint8_t buf[VHD_HEADER_SIZE]);
/* CHS geometry per the spec's appendix "CHS Calculation". */
void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads, uint8_t *spt);
/* The size a VHD of `size` bytes gets, and its geometry: rounded up to the
 * next CHS size unless `exact` (then the maximum geometry marks it). */
uint64_t vhd_round_size(uint64_t size, bool exact, uint16_t *cyls, uint8_t *heads, uint8_t *spt);
/* Bytes of the per-block sector bitmap, padded to a whole sector. */
uint32_t vhd_bitmap_bytes(uint32_t block_size);

/* Everything validated about one image file (vhd_meta.c). */
struct vhd_meta {
	struct vhd_footer footer;
	struct vhd_header header;     /* dynamic/diff */
	uint64_t file_size;
	uint64_t footer_off;          /* where the authoritative footer is */
	bool end_footer_ok;           /* the last 512 bytes are a valid footer */
	bool copy_ok;                 /* dynamic: footer copy at 0 valid */
	bool copy_matches;            /* and equal to the end footer */
	uint32_t *bat;                /* host-order entries, max_entries of them */
	uint64_t bat_bytes;           /* padded */
	uint64_t meta_end;            /* end of header, BAT and locators */
	uint64_t data_end;            /* end of the last allocated block */
	uint32_t blocks_allocated;
	uint64_t leaked_bytes;        /* between data_end and footer_off */
};

/* Problems found while loading, for `vessel disk check`. */
struct vhd_report {
	unsigned errors, warnings;
	unsigned damaged;             /* errors in the image's own metadata that
					 * --repair cannot fix (not counting an
					 * unusable parent chain) */
	bool repairable;              /* every error found is safely repairable */
	char msgs[16][200];
	unsigned n_msgs;
};

/* Reads and validates the footer, header and BAT of an open file.  With
 * rep == NULL the first error ends the load (open path); with a report
 * every problem is recorded and the load continues where it can (check).
 * Returns 0, or a negative errno when the image is unusable. */
int vhd_meta_load(struct block_file *f, struct vhd_meta *m, struct vhd_report *rep);
void vhd_meta_free(struct vhd_meta *m);

/* UTF-16 helpers for parent names and locators (UTF-8 on the host side). */
size_t vhd_utf8_to_utf16(const char *s, uint16_t *out, size_t max_units);
int vhd_utf16_to_utf8(const uint16_t *in, size_t units, char *out, size_t out_len);

/* ---- the driver's extra interface for tools (vhd.c) ------------------ */

struct vhd_info {
	const struct vhd_meta *meta;
	const char *parent_path;      /* resolved parent file, or NULL */
	struct block_dev *parent;     /* open parent device, or NULL */
};
/* bd must be a VHD device (block_bottom of a stack); -EINVAL otherwise. */
int vhd_get_info(struct block_dev *bd, struct vhd_info *out);
bool vhd_is_vhd(struct block_dev *bd);
/* Whether `sector` holds data in this image itself (not the parent);
 * *run = sectors from `sector` with the same answer (within one block). */
int vhd_sector_allocated(struct block_dev *bd, uint64_t sector, bool *allocated, uint64_t *run);

int vhd_create(const char *path, const struct block_create_opts *o);
/* Tools (vhd_tools.c); each works on a closed image path. */
#define VHD_CHECK_REPAIR    (1u << 0)  /* fix what is safely fixable */
#define VHD_CHECK_NO_PARENT (1u << 1)  /* do not try to open the parent chain */
#define VHD_CHECK_PEEK      (1u << 2)  /* read without the image lock (describing, not checking) */
int vhd_check(const char *path, unsigned flags, struct vhd_report *rep, struct vhd_meta *meta_out);
int vhd_resize(const char *path, uint64_t new_size, bool allow_shrink);
/* Points a differencing image at a new parent: header fields and
 * locators; `unsafe` skips copying the sectors whose content would change. */
int vhd_rebase(const char *path, const char *new_parent, bool unsafe,
	       void (*progress)(uint64_t done, uint64_t total, void *), void *ctx);
int vhd_commit(const char *path, void (*progress)(uint64_t done, uint64_t total, void *), void *ctx);

/* The locator paths vessel would write for a parent (vhd_meta.c):
 * rel is relative to the child's directory. */
int vhd_parent_paths(const char *child, const char *parent, char *abs_out, size_t abs_len,
		     char *rel_out, size_t rel_len);

#endif
