/* PCI hot-plug of the VMM's devices (docs/hotplug.md): a device-add of a
 * virtio type puts a function in a free slot of PCI bus 0 and tells the
 * guest through the ACPI hot-plug controller; a device-remove asks the
 * guest to release it, waits for its eject and frees it. */
#ifndef VESSEL_VMM_HOTPLUG_H
#define VESSEL_VMM_HOTPLUG_H

#include "vmm/config.h"

#include <stdbool.h>

struct pc_virtio_backends;
struct plugin_devices;
struct vm;

/* Whether a device of this type is a hot-pluggable PCI function (rather
 * than a plug-in's device). */
bool hotplug_type_known(const char *type);

/* Creates dev (type, id, params) in the machine: in params' "slot", or
 * the first free slot.  notify: tell a running guest (a device-add);
 * without it the device is simply there when the guest looks (a machine
 * being built).  On success *params_out is dev's params with the slot
 * taken (malloc'd), so that a rebuilt or restored machine puts the
 * function where the guest saw it.  Takes the device lock. */
int hotplug_add(struct vm *vm, const struct vm_device_config *dev, const struct pc_virtio_backends *be, bool notify,
		char **params_out);

/* A plug-in's PCI function just put in slot (plugin_devices_add with
 * plugins->hotplug set): the guest is told, as for a virtio function. */
void hotplug_announce(struct vm *vm, unsigned slot);

/* Removes the function named id: a virtio one, or the PCI function of a
 * plug-in device of plugins (which may be NULL), then that device.
 * force: surprise removal, the guest is
 * told afterwards; otherwise an eject request and a wait of timeout_ms
 * for the guest's eject (-ETIMEDOUT, the device stays), cut short when
 * the machine stops (the device then goes without the guest's eject). */
int hotplug_remove(struct vm *vm, struct plugin_devices *plugins, const char *id, bool force, unsigned timeout_ms);

/* Frees the functions the guest ejected on its own (`echo 0 >
 * /sys/bus/pci/slots/N/power`), calling removed(opaque, id) for each;
 * returns how many.  Without the device lock (the VMM's main loop). */
int hotplug_reap_guest_ejects(struct vm *vm, struct plugin_devices *plugins,
			      void (*removed)(void *opaque, const char *id), void *opaque);

/* ACPI processor hot-plug (docs/hotplug.md "CPUs"): plugs in the first
 * absent possible CPU (of virtual NUMA node node; -1: of any node) and
 * tells the guest; its number in *cpu.  -ENOSPC when every possible CPU
 * (of the node) is there, -EINVAL for a node the guest does not have,
 * -ENOTSUP without --max-cpus. */
int hotplug_cpu_add(struct vm *vm, int node, unsigned *cpu);
/* Asks the guest to release CPU cpu (eject request); the guest offlines
 * it and runs its _EJ0, which hotplug_reap_cpu_ejects() then finds. */
int hotplug_cpu_remove(struct vm *vm, unsigned cpu);
/* The CPUs the guest ejected (asked to, or on its own): absent again,
 * removed(opaque, cpu) called for each.  Without the device lock (the
 * VMM's main loop). */
int hotplug_reap_cpu_ejects(struct vm *vm, void (*removed)(void *opaque, unsigned cpu), void *opaque);
/* After a snapshot's devices were loaded: the vCPUs present as the
 * processor hot-plug controller says.  Returns the CPUs present beyond
 * those of power-on. */
uint64_t hotplug_cpus_sync(struct vm *vm);

/* The PCI slot of the hot-plugged function named id (virtio, or a
 * plug-in device's of plugins, which may be NULL), or -ENOENT. */
int hotplug_slot(struct vm *vm, struct plugin_devices *plugins, const char *id);

#endif
