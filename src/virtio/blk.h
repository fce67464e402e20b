/* virtio-blk (virtio 1.2, section 5.2) over the block layer. */
#ifndef VESSEL_VIRTIO_BLK_H
#define VESSEL_VIRTIO_BLK_H

#include "hw/device.h"

#include <stdbool.h>

struct block_dev;

/* What FLUSH does (the --disk cache= option, docs/virtio.md). */
enum virtio_blk_cache {
	VIRTIO_BLK_CACHE_WRITEBACK,   /* host page cache; FLUSH: fdatasync */
	VIRTIO_BLK_CACHE_NONE,        /* O_DIRECT (the opener's business); FLUSH: fdatasync */
	VIRTIO_BLK_CACHE_UNSAFE,      /* host page cache; FLUSH ignored */
};

/* virtio_board.conf of a virtio-blk device.  The device takes ownership
 * of disk (closed by destroy, or by create when it fails). */
struct virtio_blk_conf {
	struct block_dev *disk;
	bool readonly;            /* VIRTIO_BLK_F_RO; writes fail with IOERR */
	const char *serial;       /* GET_ID answer (20 bytes at most), or NULL */
	enum virtio_blk_cache cache;
	unsigned queues;          /* request queues, 1..VIRTIO_BLK_MAX_QUEUES (0: 1) */
	bool split_only;          /* VIRTIO_F_RING_PACKED not offered */
	/* --compound block (docs/compounding.md "Disk"): the
	 * requests of one notification go to the host in one submission,
	 * through io_uring where the disk allows; off: one at a time, each to
	 * a worker thread. */
	bool batch;
};

#define VIRTIO_BLK_MAX_QUEUES 8   /* VIRTIO_MAX_QUEUES of the transport */

extern const struct dev_desc virtio_blk_device;

/* Waits until every request the device took from its rings is complete
 * and on its used ring (interrupts raised).  Call with the device lock
 * held (dev_ctx.lock): pause and the fuzz target use it. */
void virtio_blk_drain(void *dev);

#endif
