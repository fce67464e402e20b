/* The PC's virtio devices, from the VM's configuration (pc_virtio.c). */
#ifndef VESSEL_VMM_PC_VIRTIO_H
#define VESSEL_VMM_PC_VIRTIO_H

struct platform;
struct vm;

#define PC_MAX_VIRTIO 17   /* VM_MAX_DISKS disks and one entropy device */

/* Called by the VMM (vm.c) with the device lock held, after the board
 * built its table (platform_create_opts) and before platform_destroy. */
int pc_virtio_create(struct vm *vm, struct platform *p);
void pc_virtio_destroy(struct platform *p);
int pc_virtio_snapshot_register(struct platform *p);
void pc_virtio_snapshot_unregister(struct platform *p);
/* Pause: every request the disks took from their rings completes
 * (device lock held), so a paused machine's devices do no more work. */
void pc_virtio_quiesce(struct platform *p);

#endif
