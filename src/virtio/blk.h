/* virtio-blk (virtio 1.2, section 5.2) over the block layer. */
#ifndef VESSEL_VIRTIO_BLK_H
#define VESSEL_VIRTIO_BLK_H

#include "hw/device.h"

#include <stdbool.h>

struct block_dev;

/* virtio_board.conf of a virtio-blk device.  The device takes ownership
 * of disk (closed by destroy, or by create when it fails). */
struct virtio_blk_conf {
	struct block_dev *disk;
	bool readonly;            /* VIRTIO_BLK_F_RO; writes fail with IOERR */
	const char *serial;       /* GET_ID answer (20 bytes at most), or NULL */
};

extern const struct dev_desc virtio_blk_device;

#endif
