/* virtio-console (virtio 1.2, section 5.3): the guest's hvc0 on a
 * character backend. */
#ifndef VESSEL_VIRTIO_CONSOLE_H
#define VESSEL_VIRTIO_CONSOLE_H

#include "hw/device.h"

struct chardev;

/* virtio_board.conf of a virtio-console: the backend stays the caller's. */
struct virtio_console_conf {
	struct chardev *backend;
};

extern const struct dev_desc virtio_console_device;

#endif
