/* The PC's virtio devices, from the VM's configuration (pc_virtio.c). */
#ifndef VESSEL_VMM_PC_VIRTIO_H
#define VESSEL_VMM_PC_VIRTIO_H

#include "vmm/config.h"

struct chardev;
struct netdev;
struct platform;
struct vm;

#include <stdbool.h>

struct vm_disk_config;

#define PC_MAX_VIRTIO 31   /* one per PCI slot of bus 0 (at start: VM_MAX_DISKS disks, VM_MAX_NETS NICs,
                              * a console, one entropy device) */

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
/* Pause: every request the disks took from their rings completes, and a
 * NIC's deferred transmit is done (device lock held), so a paused
 * machine's devices do no more work. */
void pc_virtio_quiesce(struct platform *p);

/* Hot-plug (docs/hotplug.md), with the device lock held.  Whether type
 * names a virtio device a device-add may create. */
bool pc_virtio_type_known(const char *type);
/* What a hot-plugged function stands on, by type. */
struct pc_virtio_hot {
	const struct vm_disk_config *disk;  /* virtio-blk: opened by pc_virtio_plug */
	int net;                            /* virtio-net: the interface (index of cfg->nets, one with
					       hotplug set), -1: the first free one; set to the one taken */
	const char *path;                   /* virtio-console: the file its output is appended to */
};

/* A function of type in PCI slot (1-31), its state saved under name, on
 * what hot gives (be: the run's backends, for virtio-net).  The caller
 * tells the guest (pci_hotplug_device_check). */
int pc_virtio_plug(struct vm *vm, struct platform *p, const char *type, const char *name, struct pc_virtio_hot *hot,
		   const struct pc_virtio_backends *be, unsigned slot);
/* Destroys the function named name (a disk's writes complete, are
 * flushed and the image closed) and returns the slot it held, or -ENOENT. */
int pc_virtio_unplug(struct platform *p, const char *name);
/* Without the device lock, before pc_virtio_unplug: a virtio-net leaves
 * its backend (as pc_virtio_detach). */
void pc_virtio_unplug_detach(struct platform *p, const char *name);
/* The PCI slot of the function named name, or -ENOENT. */
int pc_virtio_slot(struct platform *p, const char *name);
/* The name of the function in slot, into name (cap bytes), or -ENOENT. */
int pc_virtio_slot_owner(struct platform *p, unsigned slot, char *name, size_t cap);

#endif
