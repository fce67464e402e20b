/* Device plug-ins (docs/plugins.md): finding and loading shared objects
 * that export the include/vessel/plugin.h descriptor, and creating,
 * listing and removing their devices on a VM's buses. */
#ifndef VESSEL_VMM_PLUGIN_H
#define VESSEL_VMM_PLUGIN_H

#include "hw/device.h"
#include "vmm/config.h"

#include <jansson.h>
#include <vessel/plugin.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct apic_bus;
struct bus;
struct guest_memory;
struct pci_host;

#define PLUGIN_MAX_LIBS 64

struct plugin_lib {
	char *path;
	void *handle;                   /* dlopen handle */
	const struct vessel_plugin *desc;
	bool crashed;                   /* a create() of it crashed: not used again */
};

/* Problems met while scanning (a plug-in with another ABI, a broken
 * shared object): reported, never fatal for the others. */
struct plugin_problem {
	char *path;
	char *message;
};

/* A plug-in file found on the search path whose descriptor was read in
 * a probe child (plugin_descriptor_to_json() form), not loaded here. */
struct plugin_file {
	char *path;
	json_t *desc;
};

struct plugin_registry {
	unsigned n_libs;                /* loaded into this process */
	struct plugin_lib libs[PLUGIN_MAX_LIBS];
	unsigned n_files;               /* probed */
	struct plugin_file files[PLUGIN_MAX_LIBS];
	unsigned n_problems;
	struct plugin_problem problems[PLUGIN_MAX_LIBS];
};

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
/* Reads the descriptor of every *.so of each directory (missing
 * directories are skipped) in a probe child process, nothing of them
 * running in this one; failures (untrusted file, crash, another ABI, a
 * type already provided) go to reg->problems.  Returns the number of
 * plug-ins found.  They are loaded only when a device of theirs is
 * created (plugin_registry_get). */
int plugin_registry_scan(struct plugin_registry *reg, char *const *dirs, unsigned n_dirs);
/* Probes one file as the scan does; 0 or a negative errno with a message. */
int plugin_registry_probe(struct plugin_registry *reg, const char *path);
/* Device type by name and the plug-in that provides it, loading the
 * probed file that lists it if no loaded one does: 0, -ENOENT, or the
 * load's error. */
int plugin_registry_get(struct plugin_registry *reg, const char *type, const struct vessel_device_type **t,
			const struct plugin_lib **lib);
/* plugin_registry_get() without the error; NULL if none. */
const struct vessel_device_type *plugin_registry_find(struct plugin_registry *reg, const char *type,
						      const struct plugin_lib **lib);
/* A checked descriptor as JSON: {name, version, description, devices:
 * [{name, description, snapshot, params: [{name, type, description,
 * default, min, max}], resources: [{kind, name, base, len, base_param}]}]}. */
json_t *plugin_descriptor_to_json(const struct vessel_plugin *desc);

/* Checks a descriptor without running anything of it; 0 or -ENOEXEC. */
int plugin_validate_descriptor(const struct vessel_plugin *desc, const char *path);

/* ---- device instances ---- */

/* What devices reach of the VM.  The integrator fills it from struct vm;
 * unit tests pass fakes.  Each device gets from it the same struct dev_ctx
 * a built-in device gets from the board table (hw/device.h): the buses,
 * its resource bases, the lock, and its IRQ lines. */
struct plugin_env {
	struct bus *pio, *mmio;
	pthread_mutex_t *dev_lock;      /* held around bus changes and callbacks */
	struct guest_memory *mem;
	/* The interrupt controller's inputs as a bank: an IRQ resource with
	 * line g drives irq.n + g; irq.set NULL: no IRQ lines. */
	struct irq_line irq;
	/* PCI bus 0 for PCI function resources and where their MSI messages
	 * go; pci NULL: PCI functions are refused. */
	struct pci_host *pci;
	const struct apic_bus *apic;
	/* Told of every range a device wrote to guest RAM (DMA), so that the
	 * engine forgets code it decoded there; may be NULL. */
	void (*mem_written)(void *opaque, uint64_t gpa, uint64_t len);
	void *mem_written_opaque;
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
	/* Devices added from now on join a running guest: their PCI
	 * functions' BARs are left for the guest to place, where at power-on
	 * vessel places them as firmware would. */
	bool hotplug;
	unsigned n;                     /* list changes under env.dev_lock */
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
/* The PCI slot of device id's PCI function, or -ENOENT (no such device,
 * or one without a PCI function).  Device lock held. */
int plugin_devices_slot(const struct plugin_devices *set, const char *id);
/* The id of the device whose PCI function is in slot, into id (cap
 * bytes), or -ENOENT.  Device lock held. */
int plugin_devices_slot_owner(const struct plugin_devices *set, unsigned slot, char *id, size_t cap);
/* Device id's effective parameters as JSON text (with "slot" for a PCI
 * function: the slot it took), or NULL.  Valid until the device goes. */
const char *plugin_devices_params(const struct plugin_devices *set, const char *id);
/* Calls every device's reset callback (machine reset). */
void plugin_devices_reset(struct plugin_devices *set);

#endif
