/* virtio-rng (virtio 1.2, section 5.4): entropy from the host's getrandom(). */
#ifndef VESSEL_VIRTIO_RNG_H
#define VESSEL_VIRTIO_RNG_H

#include "hw/device.h"

#include <stdint.h>

/* virtio_board.conf of a virtio-rng (may be absent: no limit). */
struct virtio_rng_conf {
	uint64_t rate;   /* bytes a second the guest may take; 0: no limit */
};

extern const struct dev_desc virtio_rng_device;

#endif
