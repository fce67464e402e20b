/* Control API server (docs/api.md): JSON objects, one per line, over a
 * Unix socket.  A server thread polls the listening socket and every
 * client; requests run one at a time on that thread and reach the VM
 * only through struct vm_control_ops, which src/vm/vm.c implements (and
 * unit tests fake).  Lifecycle transitions are streamed to clients that
 * asked for events. */
#ifndef VESSEL_VM_API_H
#define VESSEL_VM_API_H

#include "vm/config.h"
#include "vm/lifecycle.h"

#include <jansson.h>
#include <stdbool.h>

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

/* ---- the VM side: vm_control ----
 *
 * Everything the control plane needs around the VM object, so that
 * src/vm/vm.c wires it with a few calls (docs/api.md "For the VM side"):
 *
 *   vm_control_open(&ctl, cfg)             once per `vessel run`: plug-ins, API server
 *   vm_control_attach(ctl, vm)             each machine, after vm_create and boot_load:
 *                                          manifest devices, restore, lifecycle -> running
 *   vcpu thread loop:                      if (vcpu_gate_checkpoint(vm_control_gate(ctl))
 *                                              && stopping) break;  ... vcpu_gate_leave() at exit
 *   vm_control_detach(ctl, vm, rebooting)  after the vCPUs are joined, before vm_destroy
 *   vm_control_close(ctl)                  at the end
 *
 * The API server lives across reboots (each a fresh machine); between
 * machines, requests that need one are refused as invalid-state. */
struct vm_control;

struct vm_control_hooks {
	/* ACPI power button; default platform_press_power_button(), called
	 * with vm->dev_lock held. */
	void (*power_button)(struct vm *vm);
	/* Drives interrupt line (GSI) `line`; default irq_set_level().  Called
	 * with vm->dev_lock held. */
	int (*irq_set)(struct vm *vm, unsigned line, int level);
	/* How long pause/save wait for the vCPUs to stop (default 10 s). */
	int stop_timeout_ms;
};

int vm_control_open(struct vm_control **out, const struct vm_config *cfg, const struct vm_control_hooks *hooks);
void vm_control_close(struct vm_control *ctl);
struct lifecycle *vm_control_lifecycle(struct vm_control *ctl);
struct vcpu_gate *vm_control_gate(struct vm_control *ctl);
/* Takes vm in: creates the manifest's devices, restores cfg->restore if
 * set (loading-state), and moves the lifecycle to running. */
int vm_control_attach(struct vm_control *ctl, struct vm *vm);
/* Lets vm go: removes its plug-in devices; the lifecycle goes
 * powering-up when rebooting, else tearing-down. */
void vm_control_detach(struct vm_control *ctl, struct vm *vm, bool rebooting);

#endif
