/* Registry of device state for snapshots (docs/snapshot.md "Devices").
 *
 * Every device with state -- built-in or plug-in -- registers a save and a
 * load function under a unique name (its id in the VM, e.g. "serial0",
 * "mbox0").  The snapshot writer stores one DEVICE section per name; the
 * reader hands each section to the load function registered under the
 * same name, and refuses a snapshot holding a device nobody registered. */
#ifndef VESSEL_MACHINE_DEVICE_REGISTRY_H
#define VESSEL_MACHINE_DEVICE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_DEVICE_NAME_MAX 64
/* The VM clock's state (src/machine/timer.c): restored before the CPUs, since
 * an engine may count its TSC from that clock (docs/snapshot.md "Devices"). */
#define SNAPSHOT_CLOCK_DEVICE "vm-clock"

/* Writes the device state into buf (at most cap bytes) and returns the
 * byte count, or -ENOSPC when cap is too small (called again with more),
 * or another negative errno with err_set(). */
typedef int64_t (*snapshot_save_fn)(void *opaque, void *buf, size_t cap);
/* Restores what save wrote; 0 or a negative errno with err_set(). */
typedef int (*snapshot_load_fn)(void *opaque, const void *buf, size_t len);

/* -EEXIST if name is taken, -EINVAL if empty or too long, -ENOSPC if full. */
int snapshot_register_device(const char *name, snapshot_save_fn save, snapshot_load_fn load, void *opaque);
/* -ENOENT if not registered, with no message: teardown after a failed
 * start calls it for what may never have been registered, and must leave
 * the message of the failure it cleans up after. */
int snapshot_unregister_device(const char *name);
void snapshot_unregister_all(void);

/* Iteration for the writer: calls fn for every registered device in
 * registration order, stopping at the first non-zero return. */
typedef int (*snapshot_device_visit_fn)(void *arg, const char *name, snapshot_save_fn save, void *opaque);
int snapshot_foreach_device(snapshot_device_visit_fn fn, void *arg);
/* Lookup for the reader; -ENOENT with err_set() if nobody registered name. */
int snapshot_find_device(const char *name, snapshot_load_fn *load, void **opaque);

/* Runs save with a growing buffer; *out is malloc'd. */
int snapshot_device_save(const char *name, snapshot_save_fn save, void *opaque, void **out, size_t *len);

#endif
