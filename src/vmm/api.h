/* Control API server (docs/api.md): JSON objects, one per line, over a
 * Unix socket.  A server thread polls the listening socket and every
 * client; requests run one at a time on that thread and reach the VM
 * only through struct vm_control_ops, which src/vmm/vm.c implements (and
 * unit tests fake).  Lifecycle transitions are streamed to clients that
 * asked for events. */
#ifndef VESSEL_VMM_API_H
#define VESSEL_VMM_API_H

#include "vmm/config.h"
#include "vmm/lifecycle.h"

#include <jansson.h>

#define VESSEL_API_VERSION 1
#define API_MAX_CLIENTS 16
#define API_MAX_LINE (64 * 1024)

struct vm;
struct plugin_devices;

/* Each returns 0, or a negative errno with err_set() (the message becomes
 * the error reply).  Called on the API thread; may block (save). */
struct vm_control_ops {
	int (*pause)(void *opaque);
	int (*resume)(void *opaque);
	int (*powerdown)(void *opaque);    /* ACPI power button: the guest decides */
	int (*poweroff)(void *opaque);     /* immediate */
	int (*reset)(void *opaque);
	int (*save)(void *opaque, const char *path);
	/* Fills out (an object) with counters: api_stats_from_machine() does
	 * it for a struct vm. */
	int (*stats)(void *opaque, json_t *out);
	/* Appends one object per device to out (an array):
	 * api_devices_to_json() does it for plug-in devices. */
	int (*device_list)(void *opaque, json_t *out);
	int (*device_add)(void *opaque, const struct vm_device_config *dev);
	int (*device_remove)(void *opaque, const char *id);
	/* Optional: adds VM facts (engine, cpus, memory...) to status. */
	void (*status)(void *opaque, json_t *out);
};

struct api_server;

/* Binds path (a stale socket there is replaced, any other file is an
 * error), subscribes to lc and starts the thread.  0 or -errno. */
int api_server_start(struct api_server **out, const char *path, const struct vm_control_ops *ops, void *opaque,
		     struct lifecycle *lc);
/* Closes every client, removes the socket file and joins the thread. */
void api_server_stop(struct api_server *srv);

/* Helpers for the integrator's ops. */
/* {"exits": {reason: total}, "vcpus": [{"id", "exits": {...}}],
 *  "devices": [{"bus", "name", "base", "len", "reads", "writes"}]};
 * takes vm->dev_lock to read the buses. */
int api_stats_from_machine(struct vm *vm, json_t *out);
/* One {"id", "type", "plugin", "params", "resources"} per device. */
int api_devices_to_json(const struct plugin_devices *set, json_t *out);

#endif
