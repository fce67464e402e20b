/* Device plug-ins (docs/plugins.md): finding and loading shared objects
 * that export the include/vessel/plugin.h descriptor, and creating,
 * listing and removing their devices on a VM's buses. */
#ifndef VESSEL_VMM_PLUGIN_H
#define VESSEL_VMM_PLUGIN_H

#include "vmm/config.h"

#include <vessel/plugin.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct bus;
struct guest_memory;

#define PLUGIN_MAX_LIBS 64
#define PLUGIN_MAX_DIRS (VM_MAX_PLUGIN_DIRS + 8)

struct plugin_lib {
	char *path;
	void *handle;                   /* dlopen handle */
	const struct vessel_plugin *desc;
};

/* Problems met while scanning (a plug-in with another ABI, a broken
 * shared object): reported, never fatal for the others. */
struct plugin_problem {
	char *path;
	char *message;
};

struct plugin_registry {
	unsigned n_libs;
	struct plugin_lib libs[PLUGIN_MAX_LIBS];
	unsigned n_problems;
	struct plugin_problem problems[PLUGIN_MAX_LIBS];
};

/* Search order (docs/plugins.md): the manifest's plugin_dirs, then
 * VESSEL_PLUGIN_PATH (colon-separated) if set, else
 * $XDG_DATA_HOME/vessel/plugins (default ~/.local/share/vessel/plugins)
 * and /usr/local/lib/vessel/plugins.  Fills dirs (malloc'd strings);
 * returns the count. */
unsigned plugin_search_dirs(const struct vm_config *cfg, char **dirs, unsigned max);

void plugin_registry_init(struct plugin_registry *reg);
void plugin_registry_free(struct plugin_registry *reg);
/* Loads one shared object.  -ENOEXEC with a message naming the file if it
 * is not a vessel plug-in, was built for another ABI version, or its
 * descriptor is malformed; -EEXIST if a device name is already taken. */
int plugin_registry_load(struct plugin_registry *reg, const char *path);
/* Registers device types compiled into vessel, written against the same
 * ABI (listed with plugin "(built-in)" as path).  Same checks and errors
 * as plugin_registry_load. */
int plugin_registry_add_builtin(struct plugin_registry *reg, const struct vessel_plugin *desc);
/* Loads every *.so of each directory (missing directories are skipped);
 * failures go to reg->problems.  Returns the number of plug-ins loaded. */
int plugin_registry_scan(struct plugin_registry *reg, char *const *dirs, unsigned n_dirs);
/* Device type by name, and the plug-in that provides it; NULL if none. */
const struct vessel_device_type *plugin_registry_find(const struct plugin_registry *reg, const char *type,
						      const struct plugin_lib **lib);

/* Checks a descriptor without running anything of it; 0 or -ENOEXEC. */
int plugin_validate_descriptor(const struct vessel_plugin *desc, const char *path);

/* ---- device instances ---- */

/* What devices reach of the VM.  The integrator fills it from struct vm;
 * unit tests pass fakes. */
struct plugin_env {
	struct bus *pio, *mmio;
	pthread_mutex_t *dev_lock;      /* held around bus changes and callbacks */
	struct guest_memory *mem;
	/* Drives interrupt line `line` (GSI) to level; NULL: no IRQ lines. */
	int (*irq_set)(void *opaque, unsigned line, int level);
	void *irq_opaque;
};

struct plugin_device;

struct plugin_device_info {
	const char *id, *type, *plugin;  /* plugin: NULL for built-in */
	const char *params;              /* JSON text of the effective parameters */
	unsigned n_resources;
	const struct vessel_resource_spec *specs;
	const uint64_t *bases;
};

struct plugin_devices {
	struct plugin_registry *reg;
	struct plugin_env env;
	unsigned n;
	struct plugin_device *list[VM_MAX_DEVICES];
};

void plugin_devices_init(struct plugin_devices *set, struct plugin_registry *reg, const struct plugin_env *env);
/* Removes every device. */
void plugin_devices_destroy(struct plugin_devices *set);
/* Creates a device from a manifest/API entry and claims its resources:
 * -EEXIST (id taken), -ENOENT (no such type), -EINVAL (bad parameter,
 * naming it), -EBUSY (a range is taken), or the device's own error.
 * Registers its state for snapshots under its id. */
int plugin_devices_add(struct plugin_devices *set, const struct vm_device_config *cfg);
/* -ENOENT if no device has this id. */
int plugin_devices_remove(struct plugin_devices *set, const char *id);
/* Device by index (0..n-1), for listing. */
int plugin_devices_info(const struct plugin_devices *set, unsigned i, struct plugin_device_info *info);
/* Calls every device's reset callback (machine reset). */
void plugin_devices_reset(struct plugin_devices *set);

#endif
