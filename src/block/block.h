/* Block layer: virtual disks as a stack of drivers.
 *
 *     device model (virtio-blk) / CLI
 *              |  block_read/write/flush/discard, block_queue_submit
 *        [ filter ]  e.g. sector encryption (include/vessel/crypt.h)
 *              |  block_read/write on bd->lower
 *        [ format ]  raw, VHD fixed/dynamic/differencing
 *              |  block_file_pread/pwrite
 *           host file (optionally O_DIRECT)
 *
 * A *format* driver owns a host file and maps virtual sectors to file
 * offsets.  A *filter* driver sits over another block device (its `lower`)
 * and transforms sectors on the way through; it never sees the file.  Both
 * implement the same `struct block_driver` so the stack is uniform and a
 * device model holds only the top `struct block_dev`.
 *
 * Units are 512-byte sectors.  Every entry point returns 0 or a negative
 * errno with a message set through err_set() (util/error.h).
 *
 * Thread safety: block_read/write/flush/discard on one device may be called
 * from several threads at once (the request queue's workers do).  Drivers
 * that cannot run calls concurrently set BLOCK_DRV_SERIAL and the layer
 * serialises them. */
#ifndef VESSEL_BLOCK_H
#define VESSEL_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BLOCK_SECTOR_SHIFT 9
#define BLOCK_SECTOR_SIZE  (1u << BLOCK_SECTOR_SHIFT)
/* Memory alignment used for O_DIRECT bounce buffers. */
#define BLOCK_BUF_ALIGN    4096u

/* ---- host files (used by format drivers) ------------------------------ */

struct block_file {
	int fd;
	bool rdonly;
	bool direct;      /* opened O_DIRECT: I/O is bounced when misaligned */
	char *path;       /* as given to block_file_open */
};

/* flags for block_file_open / block_open */
#define BLOCK_OPEN_RDONLY    (1u << 0)
#define BLOCK_OPEN_DIRECT    (1u << 1)  /* O_DIRECT on the host file(s) */
#define BLOCK_OPEN_NO_PARENT (1u << 2)  /* differencing: do not open the parent chain */
#define BLOCK_OPEN_UNSAFE    (1u << 3)  /* differencing: skip the parent unique-id check */
/* Look without the image lock (probing, describing).  Every other open
 * locks the file (flock): exclusively when writable, shared when
 * read-only, so that a second writer - another process, or a second disk
 * of the same VM - is refused with -EBUSY instead of corrupting it. */
#define BLOCK_OPEN_PEEK      (1u << 4)

int block_file_open(struct block_file *f, const char *path, unsigned flags);
/* Creates (O_EXCL) a new file; removes nothing on failure. */
int block_file_create(struct block_file *f, const char *path);
void block_file_close(struct block_file *f);
/* Full-length positional I/O: a short read (end of file) is an error
 * (-EIO, "truncated"), EINTR is retried. */
int block_file_pread(struct block_file *f, void *buf, size_t len, uint64_t off);
int block_file_pwrite(struct block_file *f, const void *buf, size_t len, uint64_t off);
int block_file_sync(struct block_file *f);      /* fdatasync */
int block_file_size(struct block_file *f, uint64_t *size);
int block_file_truncate(struct block_file *f, uint64_t size);
/* Deallocates a byte range (hole punch, size kept); -EOPNOTSUPP if the host
 * file system cannot. */
int block_file_punch(struct block_file *f, uint64_t off, uint64_t len);
/* Bytes the host actually allocates for the file (st_blocks * 512). */
int block_file_allocated(struct block_file *f, uint64_t *bytes);
/* Crash tests: the process SIGKILLs itself right after its n-th file
 * write from now (0: never).  VESSEL_TEST_KILL_AFTER_WRITES=n in the
 * environment does the same for a whole process. */
void block_file_test_kill_after(long writes);
/* The queue's io_uring path: counts a write done by the kernel for the
 * crash tests above (the process may die here). */
void block_file_note_write(void);

/* ---- drivers ---------------------------------------------------------- */

struct block_dev;

#define BLOCK_DRV_SERIAL  (1u << 0)  /* calls must not overlap on one device */
#define BLOCK_DRV_FILTER  (1u << 1)  /* sits over bd->lower, not a file */

struct block_driver {
	const char *name;             /* "raw", "vhd", "luks"... */
	unsigned flags;               /* BLOCK_DRV_* */
	/* Sector I/O.  `count` sectors at `sector`; range already checked
	 * against bd->sectors by the layer. */
	int (*read)(struct block_dev *bd, uint64_t sector, void *buf, uint32_t count);
	int (*write)(struct block_dev *bd, uint64_t sector, const void *buf, uint32_t count);
	/* Makes every completed write durable (VHD: and its metadata). */
	int (*flush)(struct block_dev *bd);
	/* Optional: the range's content becomes unspecified (VHD and raw
	 * return zeros); NULL means discard is accepted and ignored. */
	int (*discard)(struct block_dev *bd, uint64_t sector, uint64_t count);
	/* Optional: frees bd->priv, closes files and, for filters, the lower
	 * device (filters own their lower device once opened). */
	void (*close)(struct block_dev *bd);
	/* Optional: the host file whose bytes from *off hold `count` sectors
	 * from `sector` unchanged (raw: always); 0, or -ENOENT when the range
	 * is not one run of one file.  Lets the request queue hand reads,
	 * writes and flushes to the kernel itself (io_uring) instead of
	 * through read/write/flush on a worker. */
	int (*map)(struct block_dev *bd, uint64_t sector, uint64_t count, struct block_file **file, uint64_t *off);
};

enum block_op { BLOCK_OP_READ, BLOCK_OP_WRITE, BLOCK_OP_FLUSH, BLOCK_OP_DISCARD, BLOCK_OP_COUNT };

/* Per-device statistics, updated atomically; latency in nanoseconds summed
 * over completed requests (mean = ns / ops). */
struct block_stats {
	uint64_t ops[BLOCK_OP_COUNT];
	uint64_t bytes[BLOCK_OP_COUNT];
	uint64_t ns[BLOCK_OP_COUNT];
	uint64_t errors;
};

struct block_dev {
	const struct block_driver *drv;
	void *priv;                  /* driver state */
	struct block_dev *lower;     /* filters: the device below; formats: NULL */
	uint64_t sectors;            /* virtual size in sectors */
	bool rdonly;
	char *name;                  /* for messages: file path or "filter(lower)" */
	struct block_stats stats;
	/* layer private */
	void *serial_lock;
};

/* Allocates a device for a driver's open function; the driver fills
 * sectors and priv.  `lower` is NULL for formats. */
struct block_dev *block_dev_alloc(const struct block_driver *drv, const char *name,
				  struct block_dev *lower, bool rdonly);
/* Closes a whole stack from the top (driver close, then free). */
void block_close(struct block_dev *bd);

/* The I/O entry points: range-checked, counted in bd->stats. */
int block_read(struct block_dev *bd, uint64_t sector, void *buf, uint32_t count);
int block_write(struct block_dev *bd, uint64_t sector, const void *buf, uint32_t count);
int block_flush(struct block_dev *bd);
int block_discard(struct block_dev *bd, uint64_t sector, uint64_t count);
/* Scatter-gather forms for device models: the iovec's total length must be
 * a whole number of sectors (segments themselves may be any size). */
int block_readv(struct block_dev *bd, uint64_t sector, const struct iovec *iov, int iovcnt);
int block_writev(struct block_dev *bd, uint64_t sector, const struct iovec *iov, int iovcnt);
void block_stats_get(struct block_dev *bd, struct block_stats *out);
/* Counts a completed request in bd->stats (ret < 0: an error), as the
 * block_* calls do; ns is its duration. */
void block_account(struct block_dev *bd, enum block_op op, uint64_t bytes, uint64_t ns, int ret);

/* ---- asynchronous requests ---------------------------------------------
 * A queue runs requests on its own worker threads (several in flight at
 * once) and calls req->done from a worker thread when each completes.
 * Completion order is not submission order: a caller that needs ordering
 * (e.g. flush after writes) waits for completions first, as virtio-blk
 * guests do. */
struct block_req {
	enum block_op op;
	uint64_t sector;
	uint64_t count;              /* sectors (read/write: from iov total) */
	const struct iovec *iov;     /* read/write data, kept valid until done */
	int iovcnt;
	void (*done)(struct block_req *req, int ret);
	void *opaque;                /* caller's */
	/* Optional: the worker calls it instead of op, for a request made of
	 * several block_* calls (virtio-blk's WRITE_ZEROES, a DISCARD of many
	 * ranges); its return value goes to done. */
	int (*run)(struct block_req *req);
	/* queue private */
	struct block_req *next;
	uint64_t q_bytes;            /* io_uring: what the kernel must transfer */
	uint64_t q_t0;               /* io_uring: when it was submitted (ns) */
};

struct block_queue;
/* nthreads 1..64 workers; depth = most requests queued before submit
 * returns -EAGAIN (0: 256). */
int block_queue_new(struct block_dev *bd, unsigned nthreads, unsigned depth, struct block_queue **out);
/* block_queue_new_flags(): */
#define BLOCK_QUEUE_URING (1u << 0)  /* io_uring for what the driver maps to its file (below) */
/* As block_queue_new, with BLOCK_QUEUE_* flags.  With BLOCK_QUEUE_URING,
 * reads, writes and flushes of a device whose driver maps them straight
 * onto its host file (raw) go to the kernel through an io_uring, and a
 * thread of the queue reaps their completions; everything else (other
 * formats, filters, requests with `run`, O_DIRECT with misaligned
 * buffers) goes to the workers.  Where the host has no io_uring
 * (ENOSYS, or kernel.io_uring_disabled) the queue quietly uses its
 * workers alone: block_queue_uses_uring() says which. */
int block_queue_new_flags(struct block_dev *bd, unsigned nthreads, unsigned depth, unsigned flags,
			  struct block_queue **out);
bool block_queue_uses_uring(const struct block_queue *q);
int block_queue_submit(struct block_queue *q, struct block_req *req);
/* Batching: between plug and unplug, submitted requests wait in the
 * queue, and unplug hands them to the host at once: one io_uring_enter
 * for those on the io_uring, one wake-up of the workers for the others
 * (docs/compounding.md "Disk").  Plugs nest. */
void block_queue_plug(struct block_queue *q);
void block_queue_unplug(struct block_queue *q);
/* Waits until every submitted request has completed (done was called). */
void block_queue_drain(struct block_queue *q);
/* Drains, then stops the workers and frees the queue (not the device). */
void block_queue_free(struct block_queue *q);

/* ---- formats, filters and opening a stack ----------------------------- */

struct block_format {
	const char *name;            /* "raw", "vhd" */
	/* Scores how well the first bytes and the last 512 of a file match
	 * (0 = not this format); raw scores 1. */
	int (*probe)(const uint8_t *head, size_t head_len, const uint8_t *tail, size_t tail_len);
	int (*open)(const char *path, unsigned flags, struct block_dev **out);
};

/* Options for block_create.  Sizes in bytes. */
enum block_subformat { BLOCK_SUB_DEFAULT, BLOCK_SUB_FIXED, BLOCK_SUB_DYNAMIC, BLOCK_SUB_DIFFERENCING };
struct block_create_opts {
	const char *format;          /* "raw" or "vhd" */
	enum block_subformat sub;    /* vhd: fixed, dynamic (default), differencing */
	uint64_t size;               /* ignored for differencing (parent's size) */
	const char *parent;          /* differencing: the parent image */
	uint32_t block_size;         /* vhd dynamic: 0 = 2 MiB (spec default) */
	bool preallocate;            /* raw: allocate the file's blocks */
	/* vhd: keep `size` exactly even when no CHS geometry matches it (the
	 * geometry is then the maximum, qemu's "force_size" convention);
	 * otherwise the size is rounded up to the next CHS size, as Virtual
	 * PC and qemu-img do, so every VHD reader agrees on it. */
	bool exact_size;
};

/* A filter type (the crypt plug-ins register one).  `opts` is the text
 * after "name:" in a spec, e.g. "luks:key-file=k.bin"; it may be NULL. */
struct block_filter_type {
	const char *name;
	/* Opens a filter over `lower` and takes ownership of it on success. */
	int (*open)(struct block_dev *lower, const char *opts, unsigned flags, struct block_dev **out);
	/* Optional: writes a new container into a freshly created `lower`
	 * (e.g. a LUKS2 header), used by `vessel disk create/convert`.
	 * `payload_sectors` is the size the filtered device must expose. */
	int (*format)(struct block_dev *lower, const char *opts, uint64_t payload_sectors);
	/* Optional: sectors of `lower` the container needs beyond the payload. */
	uint64_t (*overhead_sectors)(const char *opts);
};

int block_filter_register(const struct block_filter_type *t);
const struct block_filter_type *block_filter_find(const char *name);
/* Splits a filter spec "NAME[:OPTS]" and finds the registered type NAME;
 * *opts points at OPTS inside spec, or is NULL without a ':'.  Returns 0
 * or -EINVAL (unknown or malformed name).  The one parser of filter
 * specs: opening, creating and converting all go through it. */
int block_filter_parse(const char *spec, const struct block_filter_type **type, const char **opts);

/* What to open: a file in some format, optionally under one filter. */
struct block_open_spec {
	const char *path;
	const char *format;          /* NULL: probe */
	unsigned flags;              /* BLOCK_OPEN_* */
	const char *filter;          /* NULL or "name[:opts]" */
};

const struct block_format *block_format_find(const char *name);
/* Guesses the format of a file: "vhd" or "raw". */
int block_probe(const char *path, const struct block_format **out);
int block_open(const char *path, const char *format, unsigned flags, struct block_dev **out);
int block_open_stack(const struct block_open_spec *spec, struct block_dev **out);
int block_create(const char *path, const struct block_create_opts *opts);
/* Walks down filters to the format device (for format-specific tools). */
struct block_dev *block_bottom(struct block_dev *bd);

/* ---- built-in formats (raw.c, vhd.c) --------------------------------- */
extern const struct block_format block_format_raw;
extern const struct block_format block_format_vhd;
int raw_create(const char *path, uint64_t size, bool preallocate);

#endif
