/* virtio-rng (virtio 1.2, section 5.4): entropy from the host's getrandom(). */
#ifndef VESSEL_VIRTIO_RNG_H
#define VESSEL_VIRTIO_RNG_H

#include "hw/device.h"

extern const struct dev_desc virtio_rng_device;

#endif
