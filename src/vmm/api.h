/* Control API server (docs/api.md): JSON objects, one per line, over a
 * Unix socket.  A server thread polls the listening socket and every
 * client and runs the short requests; the long ones (save, device-add,
 * device-remove, numa-move) run one at a time on a worker thread so that the others
 * are served meanwhile.  Requests reach the VM only through struct
 * vm_control_ops, which src/vmm/control.c implements (and unit tests
 * fake).  Lifecycle transitions are streamed to clients that asked for
 * events. */
#ifndef VESSEL_VMM_API_H
#define VESSEL_VMM_API_H

#include "vmm/config.h"
#include "vmm/lifecycle.h"

#include <jansson.h>

#define VESSEL_API_VERSION 1
#define API_MAX_CLIENTS 16
/* Extra slots used only when the API_MAX_CLIENTS others are taken; a
 * client there may send control commands only (docs/api.md "Limits"). */
#define API_RESERVED_CLIENTS 2
#define API_MAX_LINE (64 * 1024)

/* Timeouts in milliseconds; 0 disables one. */
struct api_limits {
	int idle_ms;            /* no request from a client with nothing in flight */
	int stall_ms;           /* output waiting for a client that reads none of it */
	int reserved_idle_ms;   /* idle limit on a reserved slot */
};
#define API_IDLE_MS_DEFAULT 60000
#define API_STALL_MS_DEFAULT 10000
#define API_RESERVED_IDLE_MS_DEFAULT 5000

struct vm;
struct plugin_devices;

/* device-remove's options (docs/api.md): force is surprise removal, with
 * no wait for the guest; otherwise the guest has timeout_ms to release
 * the device (0: the default, API_EJECT_TIMEOUT_MS). */
#define API_EJECT_TIMEOUT_MS 20000
struct api_remove_opts {
	bool force;
	unsigned timeout_ms;
};

/* How far a long operation is, for its progress events: the worker's op
 * sets total once and advances done; the API thread reads both. */
struct api_progress {
	_Atomic uint64_t done, total;
};

/* Each returns 0, or a negative errno with err_set() (the message becomes
 * the error reply).  save, device_add and device_remove are called on the
 * server's worker thread, one at a time, and may take long; the others on
 * the API thread, possibly while one of those runs, and must be quick. */
struct vm_control_ops {
	int (*pause)(void *opaque);
	int (*resume)(void *opaque);
	/* The guest decides: through its VMBus shutdown service when it has
	 * opened it and runs, else the ACPI power button. */
	int (*powerdown)(void *opaque);
	/* Optional: only through the guest OS's VMBus shutdown service
	 * (-ENOTCONN when the guest has not opened it). */
	int (*powerdown_guest_os)(void *opaque);
	int (*poweroff)(void *opaque);     /* immediate */
	int (*reset)(void *opaque);
	/* Optional (docs/power.md): wake a guest in ACPI S3; press the ACPI
	 * sleep button. */
	int (*wakeup)(void *opaque);
	int (*sleep)(void *opaque);
	int (*save)(void *opaque, const char *path);
	/* Fills out (an object) with counters: api_stats_from_machine() does
	 * it for a struct vm. */
	int (*stats)(void *opaque, json_t *out);
	/* Appends one object per device to out (an array):
	 * api_devices_to_json() does it for plug-in devices. */
	int (*device_list)(void *opaque, json_t *out);
	int (*device_add)(void *opaque, const struct vm_device_config *dev);
	int (*device_remove)(void *opaque, const char *id, const struct api_remove_opts *opts);
	/* Optional: adds VM facts (engine, cpus, memory...) to status. */
	void (*status)(void *opaque, json_t *out);
	/* Optional (docs/numa.md "Moving a node"): moves virtual node to the
	 * host nodes in the mask while the guest runs, on the worker; fills
	 * out with what was moved. */
	int (*numa_move)(void *opaque, unsigned node, uint64_t host_nodes, struct api_progress *progress, json_t *out);
	/* Optional: per virtual node, where its memory and vCPU threads are. */
	int (*numa_status)(void *opaque, json_t *out);
	/* Optional (docs/hotplug.md "CPUs"): plugs in a possible CPU (of
	 * virtual node node; -1: any); fills out with its number and node. */
	int (*cpu_add)(void *opaque, int node, json_t *out);
	/* Optional: asks the guest to release CPU cpu; the event
	 * cpu-removed follows its eject. */
	int (*cpu_remove)(void *opaque, unsigned cpu, json_t *out);
	/* Optional (docs/hotplug.md "Memory"): adds size bytes of RAM to
	 * virtual node node (-1: the first); fills out with where. */
	int (*memory_add)(void *opaque, uint64_t size, int node, json_t *out);
	/* Optional: asks the guest to release the hot-added piece at gpa,
	 * waits up to timeout_ms (0: 20 s) for it, then frees it; on the
	 * worker.  Fills out with what went. */
	int (*memory_remove)(void *opaque, uint64_t gpa, unsigned timeout_ms, json_t *out);
};

struct api_server;

/* Binds path (a stale socket there is replaced, any other file is an
 * error), subscribes to lc and starts the thread.  0 or -errno. */
int api_server_start(struct api_server **out, const char *path, const struct vm_control_ops *ops, void *opaque,
		     struct lifecycle *lc);
/* As api_server_start with other limits (NULL: the defaults). */
int api_server_start_with(struct api_server **out, const char *path, const struct vm_control_ops *ops, void *opaque,
			  struct lifecycle *lc, const struct api_limits *limits);
/* Waits for a long operation in progress, closes every client, removes
 * the socket file and joins the threads. */
void api_server_stop(struct api_server *srv);
/* Queues an event for the clients that asked for events (any thread);
 * takes ev. */
void api_server_post_event(struct api_server *srv, json_t *ev);

/* Helpers for the integrator's ops. */
/* {"exits": {reason: total}, "vcpus": [{"id", "exits": {...}}],
 *  "devices": [{"bus", "name", "base", "len", "reads", "writes"}]};
 * takes vm->dev_lock to read the buses. */
int api_stats_from_machine(struct vm *vm, json_t *out);
/* One {"id", "type", "plugin", "params", "resources"} per device. */
int api_devices_to_json(const struct plugin_devices *set, json_t *out);

#endif
