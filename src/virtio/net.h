/* virtio-net (virtio 1.2, section 5.1) on a network backend (hw/netdev.h). */
#ifndef VESSEL_VIRTIO_NET_H
#define VESSEL_VIRTIO_NET_H

#include "hw/device.h"

struct netdev;

/* virtio_board.conf of a virtio-net device: the backend stays the
 * caller's (it outlives the machine); the device attaches to it when
 * created. */
struct virtio_net_conf {
	struct netdev *backend;
	/* --compound net (docs/compounding.md "Network"): a transmit
	 * notification is taken up a moment later, so that the frames the
	 * guest queues meanwhile go to the backend in the same batch; on a
	 * backend where that pays (netdev.tx_wait_pays), else at once. */
	bool batch;
};

extern const struct dev_desc virtio_net_device;
/* Pause and save (device lock held, the vCPUs parked): a transmit waiting
 * for its delay (conf->batch) is done now, so that the device does no
 * more work and a snapshot's ring and device state agree. */
void virtio_net_quiesce(void *dev);
/* Detaches the device from its backend, waiting for a delivery under way:
 * call it without the device lock, before destroy. */
void virtio_net_detach(void *dev);

#endif
