/* The PC's virtio devices, from the VM's configuration (pc_virtio.c). */
#ifndef VESSEL_VMM_PC_VIRTIO_H
#define VESSEL_VMM_PC_VIRTIO_H

#include "vmm/config.h"

struct chardev;
struct netdev;
struct platform;
struct vm;

#define PC_MAX_VIRTIO 23   /* VM_MAX_DISKS disks, VM_MAX_NETS NICs, a console, one entropy device */

/* The host backends of a run (opened before the sandbox, vm.c), which
 * outlive its machines. */
struct pc_virtio_backends {
	unsigned n_nets;
	struct netdev *nets[VM_MAX_NETS];   /* one per cfg->nets[i] */
	struct chardev *console;            /* --console virtio: hvc0's backend, else NULL */
};

/* Called by the VMM (vm.c) with the device lock held, after the board
 * built its table (platform_create_opts) and before platform_destroy. */
int pc_virtio_create(struct vm *vm, struct platform *p, const struct pc_virtio_backends *be);
/* Without the device lock, before pc_virtio_destroy: the devices leave
 * their backends, whose threads take the lock to deliver. */
void pc_virtio_detach(struct platform *p);
void pc_virtio_destroy(struct platform *p);
int pc_virtio_snapshot_register(struct platform *p);
void pc_virtio_snapshot_unregister(struct platform *p);

#endif
