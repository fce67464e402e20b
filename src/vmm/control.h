/* The VM side of the control plane: the lifecycle, the control API's
 * operations on a running machine, plug-in devices and snapshots
 * (docs/api.md "For the VM side").  One session spans the whole
 * `vessel run`, across guest reboots; the machine inside it is rebuilt on
 * each reboot. */
#ifndef VESSEL_VMM_CONTROL_H
#define VESSEL_VMM_CONTROL_H

#include "vmm/memhp.h"
#include "vmm/api.h"
#include "vmm/lifecycle.h"
#include "machine/machine.h"
#include "vmm/pc_virtio.h"
#include "vmm/plugin.h"

struct console;
struct power_supply_source;

struct vm_session {
	const struct vm_config *cfg;
	struct lifecycle lc;
	struct plugin_registry plugins;
	/* Devices to create on each (re)built machine: the manifest's and
	 * the API's additions, less its removals. */
	unsigned n_live;
	struct vm_device_config live[VM_MAX_DEVICES];
	struct api_server *api;
	pthread_mutex_t lock;           /* guards vm, users, pause_held */
	struct vm *vm;                  /* NULL while the machine is rebuilt */
	/* Per machine: set up by attach, undone by detach. */
	struct vcpu_gate gate;          /* parks the vCPUs for pause and save */
	struct plugin_devices devices;  /* the manifest's and the API's plug-in devices */
	/* Long operations (save, device-add/remove) run on the API's worker
	 * without the lock, so that pause or poweroff is not stuck behind
	 * them: each counts as a user of vm, and detach waits for none. */
	unsigned users;
	pthread_cond_t unused;
	bool pause_held;                /* pause holds vm's vCPU gate */
	struct console *console;        /* COM1's backend, for its counters; may be NULL */
	/* The run's network backends (vm.c owns them): held while the VM is
	 * paused or saved, so that no frame reaches guest memory then. */
	struct pc_virtio_backends backends;
	/* The host's AC and battery state (--host-power-status; vm.c owns
	 * it), for every machine of the run; NULL: none. */
	const struct power_supply_source *power_source;
	/* cfg's NUMA topology with host nodes resolved once at start, then
	 * changed by numa-move (under lock). */
	struct numa_config numa;
	/* Hot-added memory (docs/hotplug.md "Memory"), present again in
	 * every machine built later (under lock). */
	unsigned n_mem_added;
	struct memhp_piece mem_added[GMEM_MAX_REGIONS];
	/* The registry of running VMs (vmm/registry.h): this run's entry,
	 * and the socket made for the API when none was asked for. */
	char *registry_file;
	char *auto_socket;
	/* Why the machine stops or sleeps, for the lifecycle's reasons
	 * (docs/api.md "Reasons"): the host's requests (control API,
	 * console, signal) name themselves before they stop it, the first
	 * one wins; NULL means the guest did it.  The buttons' last presses
	 * (CLOCK_MONOTONIC ms) tell a guest that acted on one. */
	_Atomic(const char *) stop_cause;
	_Atomic long long power_button_ms, sleep_button_ms;
	_Atomic long long shutdown_request_ms;   /* VMBus shutdown service asked */
	/* --on-panic pause: a vCPU reported a panic and held the gate; the
	 * run loop's thread completes the pause (vm_session_poll). */
	_Atomic bool panic_pause;
	/* CPUs `cpu add` plugged in (bit i: CPU i): a rebuilt machine has
	 * them from power-on (docs/hotplug.md "CPUs"). */
	_Atomic uint64_t cpus_added;
};

/* Lifecycle initializing, plug-in scan, control API (if asked). */
int vm_session_start(struct vm_session *s, const struct vm_config *cfg);
/* Lifecycle tearing-down and off, API stopped. */
void vm_session_finish(struct vm_session *s);
/* The host asks the machine to stop (vm_request_stop) and says why
 * ("control API: poweroff"); the first cause given sticks until the
 * machine is rebuilt. */
void vm_session_stop(struct vm_session *s, struct vm *vm, enum vm_stop_reason why, const char *cause);
/* The ACPI power or sleep button, pressed on the host's behalf. */
void vm_session_press_button(struct vm_session *s, struct vm *vm, bool sleep_button);
/* The reason of the transition a stop (POWEROFF, RESET, SUSPEND) leads
 * to: the host's cause, else the guest's act, naming a button it
 * answered (pressed within the last minute).  Consumes both. */
const char *vm_session_stop_reason(struct vm_session *s, enum vm_stop_reason why);

/* On the run loop's thread while the machine runs: completes a pause that
 * a guest panic asked for (--on-panic pause). */
void vm_session_poll(struct vm_session *s);

/* A machine was built: the memory hot-added to the machines before it
 * goes in again, where the guest had it (before a snapshot's shape is
 * checked: it holds that memory too). */
int vm_session_add_memory(struct vm_session *s, struct vm *vm);
/* A machine was built: gate, the manifest's devices; the API now drives it. */
int vm_session_attach(struct vm_session *s, struct vm *vm);
/* The machine is about to be destroyed. */
void vm_session_detach(struct vm_session *s);
/* The main loop's turn (vm.c, every 100 ms at most): frees the PCI
 * functions the guest ejected on its own (docs/hotplug.md). */
void vm_session_poll_devices(struct vm_session *s, struct vm *vm);

#endif
