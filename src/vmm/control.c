/* Control-plane wiring (docs/api.md "For the VM side"): what the control
 * API's requests do to the machine, and the lifecycle around it. */
#include "vmm/control.h"

#include "hw/netdev.h"
#include "vmm/console.h"

#include "board/pc.h"
#include "hv/hv_vmbus.h"
#include "hv/hyperv.h"
#include "hw/mem_hotplug.h"
#include "vmm/hotplug.h"
#include "vmm/snapshot.h"
#include "vmm/manifest.h"
#include "vmm/pc_virtio.h"
#include "vmm/plugin_loader.h"
#include "vmm/registry.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GATE_TIMEOUT_MS 5000

static void kick_all_vcpus(void *opaque)
{
	struct vm *vm = opaque;
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		vcpu_signal(vm->vcpus[i], VCPU_EVT_KICK);
}

/* Runs with the session lock held and a machine present, or fails. */
#define WITH_VM(s, vm)                                                        \
	struct vm *vm;                                                        \
	pthread_mutex_lock(&(s)->lock);                                       \
	vm = (s)->vm;                                                         \
	if (!vm) {                                                            \
		pthread_mutex_unlock(&(s)->lock);                             \
		return err_set(-EAGAIN, "the machine is restarting; try again"); \
	}

/* A long operation's hold on the machine, without the lock. */
static struct vm *session_use(struct vm_session *s)
{
	pthread_mutex_lock(&s->lock);
	struct vm *vm = s->vm;
	if (vm)
		s->users++;
	pthread_mutex_unlock(&s->lock);
	if (!vm)
		err_set(-EAGAIN, "the machine is restarting; try again");
	return vm;
}

static void session_unuse(struct vm_session *s)
{
	pthread_mutex_lock(&s->lock);
	if (--s->users == 0)
		pthread_cond_broadcast(&s->unused);
	pthread_mutex_unlock(&s->lock);
}

/* Pause and save stop the network backends' deliveries into guest memory
 * too (hw/netdev.h), after the vCPUs: what the guest sees and what a
 * snapshot holds do not change under them. */
static void hold_backends(struct vm_session *s, bool hold)
{
	for (unsigned i = 0; i < s->backends.n_nets; i++) {
		if (hold)
			netdev_hold(s->backends.nets[i]);
		else
			netdev_release(s->backends.nets[i]);
	}
}

/* The pause's hold on the gate goes with the pause (resume, poweroff,
 * reset); the state is no guide as a save may be under way. */
static void release_pause(struct vm_session *s, struct vm *vm)
{
	if (s->pause_held) {
		s->pause_held = false;
		hold_backends(s, false);
		vcpu_gate_release(&s->gate);
	}
}

/* The devices' side of a pause, once the vCPUs are parked: network
 * deliveries held, the disks' requests in flight completed. */
static void pause_devices(struct vm_session *s, struct vm *vm)
{
	s->pause_held = true;
	hold_backends(s, true);
	pthread_mutex_lock(&vm->dev_lock);
	pc_virtio_quiesce(vm->platform);
	pthread_mutex_unlock(&vm->dev_lock);
}

static int op_pause(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = vcpu_gate_hold(&s->gate, kick_all_vcpus, vm, GATE_TIMEOUT_MS);
	if (rc < 0)
		rc = err_set(rc, "the vCPUs did not stop within %d ms", GATE_TIMEOUT_MS);
	else if ((rc = lifecycle_transition_from(&s->lc, VM_STATE_RUNNING, VM_STATE_PAUSED, "control API: pause")) < 0)
		vcpu_gate_release(&s->gate);
	else
		pause_devices(s, vm);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int op_resume(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = lifecycle_transition_from(&s->lc, VM_STATE_PAUSED, VM_STATE_RUNNING, "control API: resume");
	if (rc < 0 && lifecycle_transition_from(&s->lc, VM_STATE_POWERING_DOWN, VM_STATE_RUNNING,
						"control API: resume") == 0)
		rc = 0;
	else if (rc < 0)
		rc = err_set(-EAGAIN, "cannot resume: the VM is %s", vm_state_name(lifecycle_state(&s->lc)));
	if (rc == 0)
		release_pause(s, vm);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static long long monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vm_session_stop(struct vm_session *s, struct vm *vm, enum vm_stop_reason why, const char *cause)
{
	const char *none = NULL;
	atomic_compare_exchange_strong(&s->stop_cause, &none, cause);
	vm_request_stop(vm, why);
}

void vm_session_press_button(struct vm_session *s, struct vm *vm, bool sleep_button)
{
	atomic_store(sleep_button ? &s->sleep_button_ms : &s->power_button_ms, monotonic_ms());
	if (sleep_button)
		platform_press_sleep_button(vm);   /* takes the device lock itself */
	else
		platform_press_power_button(vm);
}

/* A guest acting within this long of a press answered the button. */
#define BUTTON_ANSWER_MS 60000

const char *vm_session_stop_reason(struct vm_session *s, enum vm_stop_reason why)
{
	const char *cause = atomic_exchange(&s->stop_cause, NULL);
	long long now = monotonic_ms();
	bool power = now - atomic_exchange(&s->power_button_ms, 0) < BUTTON_ANSWER_MS;
	bool sleep = now - atomic_exchange(&s->sleep_button_ms, 0) < BUTTON_ANSWER_MS;
	bool asked = now - atomic_exchange(&s->shutdown_request_ms, 0) < BUTTON_ANSWER_MS;
	if (cause)
		return cause;
	switch (why) {
	case VM_STOP_POWEROFF:
		return power ? "guest: ACPI S5 after the power button"
			     : asked ? "guest: ACPI S5 after the VMBus shutdown request" : "guest: ACPI S5";
	case VM_STOP_RESET: return "guest: reboot";
	case VM_STOP_SUSPEND: return sleep ? "guest: ACPI S3 after the sleep button" : "guest: ACPI S3";
	case VM_STOP_TRIPLE_FAULT: return "guest: triple fault";
	case VM_STOP_HIBERNATE: return sleep ? "guest: ACPI S4 after the sleep button" : "guest: ACPI S4";
	default: return NULL;
	}
}

/* The guest reported a panic (vm->guest_panicked, from src/hv): the API
 * event, then --on-panic.  On the reporting vCPU's thread: the stop and
 * the gate's hold take effect at the vCPUs' next instruction-block
 * boundary, before the guest's panic code goes on to reboot; the
 * lifecycle's pause is completed by vm_session_poll(). */
static void session_guest_panicked(struct vcpu *vcpu, const uint64_t params[5], const char *message)
{
	struct vm *vm = vcpu->vm;
	struct vm_session *s = vm->panic_opaque;
	enum vm_panic_action action = s->cfg->on_panic;
	json_t *p = json_array();
	for (unsigned i = 0; i < 5; i++)
		json_array_append_new(p, json_integer((json_int_t)params[i]));
	api_server_post_event(s->api, json_pack("{s:s, s:i, s:o, s:s, s:s}", "event", "guest-panicked", "cpu",
						(int)vcpu->id, "params", p, "message", message, "action",
						vm_panic_action_name(action)));
	log_warn("vm", "guest panic on cpu%u: --on-panic %s", vcpu->id, vm_panic_action_name(action));
	switch (action) {
	case VM_PANIC_POWEROFF:
		vm_session_stop(s, vm, VM_STOP_PANIC, "guest: panic");
		break;
	case VM_PANIC_PAUSE:
		if (!atomic_exchange(&s->panic_pause, true)) {
			vcpu_gate_hold_nowait(&s->gate);
			kick_all_vcpus(vm);
		}
		break;
	default:
		break;
	}
}

void vm_session_poll(struct vm_session *s)
{
	if (!atomic_load(&s->panic_pause))
		return;
	pthread_mutex_lock(&s->lock);
	struct vm *vm = s->vm;
	/* A hold that waits for every vCPU to park; then the panic's own
	 * hold goes, and this one is the pause's, as op_pause's. */
	int rc = vm ? vcpu_gate_hold(&s->gate, kick_all_vcpus, vm, GATE_TIMEOUT_MS) : -EAGAIN;
	if (vm)
		vcpu_gate_release(&s->gate);
	atomic_store(&s->panic_pause, false);
	if (rc < 0) {
		log_error("vm", "cannot pause after the guest panic: the vCPUs did not stop within %d ms",
			  GATE_TIMEOUT_MS);
	} else if (lifecycle_transition_from(&s->lc, VM_STATE_RUNNING, VM_STATE_PAUSED, "guest: panic") < 0) {
		vcpu_gate_release(&s->gate);   /* not running (a save under way): it goes on */
	} else {
		pause_devices(s, vm);
	}
	pthread_mutex_unlock(&s->lock);
}


/* Through the guest OS's VMBus shutdown service (docs/hyperv.md). */
static int request_guest_shutdown(struct vm_session *s, struct vm *vm)
{
	int rc = hv_vmbus_shutdown_guest(vm);
	if (rc == 0)
		atomic_store(&s->shutdown_request_ms, monotonic_ms());
	return rc;
}

/* The guest OS's shutdown service when it has opened it and runs (a
 * suspended guest has closed it, and the button wakes it), else the ACPI
 * power button. */
static int op_powerdown(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	if (lifecycle_state(&s->lc) != VM_STATE_RUNNING || !hv_vmbus_shutdown_ready(vm) ||
	    request_guest_shutdown(s, vm) < 0)
		vm_session_press_button(s, vm, false);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int op_powerdown_guest_os(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = request_guest_shutdown(s, vm);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ACPI S3 (docs/power.md): the run loop (vm.c) sees the wake request. */
static int op_wakeup(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = 0;
	if (lifecycle_state(&s->lc) != VM_STATE_SUSPENDED)
		rc = err_set(-EAGAIN, "cannot wake up: the VM is %s", vm_state_name(lifecycle_state(&s->lc)));
	else
		vm_request_wake(vm, VM_WAKE_HOST);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int op_sleep(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	vm_session_press_button(s, vm, true);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int op_poweroff(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	vm_session_stop(s, vm, VM_STOP_POWEROFF, "control API: poweroff");
	/* A paused machine must let its vCPUs see the stop. */
	release_pause(s, vm);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int op_reset(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	vm_session_stop(s, vm, VM_STOP_RESET, "control API: reset");
	release_pause(s, vm);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void hotplug_devices_to_json(struct vm_session *s, json_t *out, bool with_slot);

/* Runs on the API's worker while the API thread serves other requests:
 * the vCPUs stay parked on a hold of its own whatever pause or poweroff
 * do meanwhile, and the state moves only from the one it saw. */
static int op_save(void *opaque, const char *path)
{
	struct vm_session *s = opaque;
	struct vm *vm = session_use(s);
	if (!vm)
		return -EAGAIN;
	int rc = vcpu_gate_hold(&s->gate, kick_all_vcpus, vm, GATE_TIMEOUT_MS);
	if (rc < 0)
		rc = err_set(rc, "the vCPUs did not stop within %d ms", GATE_TIMEOUT_MS);
	else
		hold_backends(s, true);
	bool held = rc == 0;
	enum vm_state before = VM_STATE_RUNNING;
	for (int tries = 0; rc == 0; tries++) {
		before = lifecycle_state(&s->lc);
		if (before != VM_STATE_RUNNING && before != VM_STATE_PAUSED) {
			rc = err_set(-EAGAIN, "cannot save: the VM is %s", vm_state_name(before));
			break;
		}
		rc = lifecycle_transition_from(&s->lc, before, VM_STATE_SAVING_STATE, "control API: save");
		if (rc == 0 || tries == 3)
			break;
		rc = 0; /* paused or resumed just now: look again */
	}
	if (rc == 0) {
		json_t *devices = json_array();
		api_devices_to_json(&s->devices, devices);
		pthread_mutex_lock(&s->lock);
		hotplug_devices_to_json(s, devices, false);
		pthread_mutex_unlock(&s->lock);
		rc = snapshot_save_with_devices(vm, path, devices, NULL);
		json_decref(devices);
		int back = lifecycle_transition_from(&s->lc, VM_STATE_SAVING_STATE, before,
						     rc == 0 ? "saved" : "save failed");
		if (rc == 0)
			rc = back;
	}
	if (held)
		hold_backends(s, false);
	vcpu_gate_release(&s->gate);
	session_unuse(s);
	return rc;
}

static int op_stats(void *opaque, json_t *out)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = api_stats_from_machine(vm, out);
	if (rc == 0 && s->console)
		json_object_set_new(out, "console", json_pack("{s:I}", "dropped_bytes",
								   (json_int_t)console_dropped_bytes(s->console)));
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The hot-plugged PCI functions of the live list (docs/hotplug.md), as
 * the plug-in devices are listed; with_slot adds their slot as a
 * resource. */
static void hotplug_devices_to_json(struct vm_session *s, json_t *out, bool with_slot)
{
	for (unsigned i = 0; i < s->n_live; i++) {
		const struct vm_device_config *c = &s->live[i];
		if (!hotplug_type_known(c->type))
			continue;
		json_t *params = json_loads(c->params ? c->params : "{}", 0, NULL);
		json_t *d = json_pack("{s:s, s:s, s:o}", "id", c->id, "type", c->type, "params",
				      params ? params : json_object());
		if (with_slot) {
			json_int_t slot = json_integer_value(json_object_get(params, "slot"));
			json_object_set_new(d, "plugin", json_null());
			json_object_set_new(d, "resources", json_pack("[{s:s, s:s, s:I}]", "name", "slot", "kind",
									"pci-slot", "base", slot));
		}
		json_array_append_new(out, d);
	}
}

static int op_device_list(void *opaque, json_t *out)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = api_devices_to_json(&s->devices, out);
	if (rc == 0)
		hotplug_devices_to_json(s, out, true);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The devices present, as the session re-creates them when the machine
 * is rebuilt (a guest reset): the manifest's, then those added through
 * the API, less those removed (docs/plugins.md "A device's life"). */
static int live_add(struct vm_session *s, const struct vm_device_config *dev)
{
	if (s->n_live == VM_MAX_DEVICES)
		return err_set(-ENOSPC, "at most %d devices", VM_MAX_DEVICES);
	struct vm_device_config *c = &s->live[s->n_live];
	c->type = dev->type ? strdup(dev->type) : NULL;
	c->id = dev->id ? strdup(dev->id) : NULL;
	c->params = dev->params ? strdup(dev->params) : NULL;
	if ((dev->type && !c->type) || (dev->id && !c->id) || (dev->params && !c->params)) {
		vm_device_config_free(c);
		return err_set(-ENOMEM, "out of memory");
	}
	s->n_live++;
	return 0;
}

static void live_remove(struct vm_session *s, const char *id)
{
	for (unsigned i = 0; i < s->n_live; i++) {
		if (s->live[i].id && !strcmp(s->live[i].id, id)) {
			vm_device_config_free(&s->live[i]);
			memmove(&s->live[i], &s->live[i + 1], (s->n_live - i - 1) * sizeof(s->live[0]));
			s->n_live--;
			return;
		}
	}
}

static bool live_has(struct vm_session *s, const char *id)
{
	bool found = false;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->n_live && !found; i++)
		found = s->live[i].id && !strcmp(s->live[i].id, id);
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* The "path" of a device's params, or NULL. */
static char *params_path(const char *params)
{
	json_t *p = json_loads(params ? params : "{}", 0, NULL);
	const char *v = json_string_value(json_object_get(p, "path"));
	char *path = v ? strdup(v) : NULL;
	json_decref(p);
	return path;
}

static bool same_file(const struct stat *a, const char *path)
{
	struct stat b;
	return path && stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/* Two devices writing one image would corrupt it: a disk already given to
 * the VM (--disk, or an earlier device-add) is refused. */
static int check_disk_unused(struct vm_session *s, const struct vm_device_config *dev)
{
	char *path = params_path(dev->params);
	struct stat st;
	if (!path || stat(path, &st) < 0) {
		free(path);
		return 0;   /* the open reports it */
	}
	int rc = 0;
	for (unsigned i = 0; i < s->cfg->n_disks && !rc; i++)
		if (same_file(&st, s->cfg->disks[i].path))
			rc = err_set(-EBUSY, "device %s: disk %s is in use by the VM's disk %u", dev->id, path, i);
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->n_live && !rc; i++) {
		char *other = hotplug_type_known(s->live[i].type) ? params_path(s->live[i].params) : NULL;
		if (same_file(&st, other))
			rc = err_set(-EBUSY, "device %s: disk %s is in use by %s", dev->id, path, s->live[i].id);
		free(other);
	}
	pthread_mutex_unlock(&s->lock);
	free(path);
	return rc;
}

/* A virtio function on PCI bus 0, told to the guest (docs/hotplug.md);
 * the live list records the slot it took. */
static int hotplug_device_add(struct vm_session *s, struct vm *vm, const struct vm_device_config *dev)
{
	char *params = NULL;
	int rc = check_disk_unused(s, dev);
	if (rc == 0)
		rc = hotplug_add(vm, dev, &s->backends, true, &params);
	if (rc < 0)
		return rc;
	struct vm_device_config rec = { .type = dev->type, .id = dev->id, .params = params };
	pthread_mutex_lock(&s->lock);
	rc = live_add(s, &rec);
	pthread_mutex_unlock(&s->lock);
	free(params);
	if (rc < 0)
		hotplug_remove(vm, NULL, dev->id, true, 0);
	return rc;
}

/* On the API's worker: a plug-in's create() or destroy() may take its
 * time.  The API server runs no device-list meanwhile. */
static int op_device_add(void *opaque, const struct vm_device_config *dev)
{
	struct vm_session *s = opaque;
	struct vm *vm = session_use(s);
	if (!vm)
		return -EAGAIN;
	if (live_has(s, dev->id)) {
		session_unuse(s);
		return err_set(-EEXIST, "a device with id %s exists", dev->id);
	}
	if (hotplug_type_known(dev->type)) {
		int rc = hotplug_device_add(s, vm, dev);
		session_unuse(s);
		return rc;
	}
	int rc = plugin_devices_add(&s->devices, dev);
	if (rc == 0) {
		/* A PCI function: the live list records the slot it took, and
		 * the guest hears of it as of a virtio one (docs/hotplug.md). */
		pthread_mutex_lock(&vm->dev_lock);
		int slot = plugin_devices_slot(&s->devices, dev->id);
		pthread_mutex_unlock(&vm->dev_lock);
		struct vm_device_config rec = *dev;
		if (slot > 0)
			rec.params = (char *)plugin_devices_params(&s->devices, dev->id);
		pthread_mutex_lock(&s->lock);
		rc = live_add(s, &rec);
		pthread_mutex_unlock(&s->lock);
		if (rc < 0)
			plugin_devices_remove(&s->devices, dev->id);
		else if (slot > 0)
			hotplug_announce(vm, (unsigned)slot);
	}
	session_unuse(s);
	return rc;
}

static int op_device_remove(void *opaque, const char *id, const struct api_remove_opts *opts)
{
	struct vm_session *s = opaque;
	struct vm *vm = session_use(s);
	if (!vm)
		return -EAGAIN;
	int rc;
	if (hotplug_slot(vm, &s->devices, id) > 0) {
		unsigned timeout = opts && opts->timeout_ms ? opts->timeout_ms : API_EJECT_TIMEOUT_MS;
		rc = hotplug_remove(vm, &s->devices, id, opts && opts->force, timeout);
		if (rc == -ETIMEDOUT)
			api_server_post_event(s->api, json_pack("{s:s, s:s, s:f}", "event", "device-eject-timeout", "id", id,
								"timeout", timeout / 1000.0));
	} else {
		rc = plugin_devices_remove(&s->devices, id);
	}
	if (rc == 0) {
		pthread_mutex_lock(&s->lock);
		live_remove(s, id);
		pthread_mutex_unlock(&s->lock);
	}
	session_unuse(s);
	return rc;
}

/* A function the guest ejected on its own is gone: out of the live list,
 * and the clients hear of it. */
static void guest_removed(void *opaque, const char *id)
{
	struct vm_session *s = opaque;
	pthread_mutex_lock(&s->lock);
	live_remove(s, id);
	pthread_mutex_unlock(&s->lock);
	if (s->api)
		api_server_post_event(s->api, json_pack("{s:s, s:s, s:s}", "event", "device-removed", "id", id, "by",
							"guest"));
}

/* Not a long operation: the guest onlines the CPU in its own time. */
static int op_cpu_add(void *opaque, int node_wanted, json_t *out)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	unsigned cpu = 0;
	int rc = hotplug_cpu_add(vm, node_wanted, &cpu);
	if (rc == 0) {
		atomic_fetch_or(&s->cpus_added, 1ull << cpu);
		json_object_set_new(out, "cpu", json_integer(cpu));
		/* Its virtual node, as the SRAT and its _PXM give it. */
		int node = vnuma_node_of_cpu(&vm->numa, cpu);
		if (node >= 0)
			json_object_set_new(out, "node", json_integer(node));
		if (s->api)
			api_server_post_event(s->api, json_pack("{s:s, s:i, s:o}", "event", "cpu-added", "cpu", (int)cpu,
								"node", node >= 0 ? json_integer(node) : json_null()));
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int op_cpu_remove(void *opaque, unsigned cpu, json_t *out)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = hotplug_cpu_remove(vm, cpu);
	if (rc == 0)
		json_object_set_new(out, "cpu", json_integer(cpu));
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void cpu_removed(void *opaque, unsigned cpu)
{
	struct vm_session *s = opaque;
	atomic_fetch_and(&s->cpus_added, ~(1ull << cpu));
	if (s->api)
		api_server_post_event(s->api, json_pack("{s:s, s:i}", "event", "cpu-removed", "cpu", (int)cpu));
}

void vm_session_poll_devices(struct vm_session *s, struct vm *vm)
{
	hotplug_reap_guest_ejects(vm, &s->devices, guest_removed, s);
	hotplug_reap_cpu_ejects(vm, cpu_removed, s);
}

static json_t *memhp_piece_json(const struct memhp_piece *m)
{
	return json_pack("{s:I, s:I, s:i}", "gpa", (json_int_t)m->gpa, "size", (json_int_t)m->size, "node", (int)m->node);
}

static void op_status(void *opaque, json_t *out)
{
	struct vm_session *s = opaque;
	json_object_set_new(out, "engine", json_string(s->cfg->engine));
	/* Whether the emu engine translates hot code (--jit, default on)
	 * or interprets only: the other engines have no such choice. */
	if (!strcmp(s->cfg->engine, "emu"))
		json_object_set_new(out, "jit", json_boolean(s->cfg->jit));
	json_object_set_new(out, "cpus", json_integer(s->cfg->cpus));
	json_object_set_new(out, "memory", json_integer((json_int_t)s->cfg->mem_bytes));
	json_object_set_new(out, "pid", json_integer(getpid()));
	json_object_set_new(out, "power", json_pack("{s:s, s:s, s:s?, s:s?}", "on_host_sleep",
						      vm_power_policy_name(s->cfg->on_host_sleep), "on_host_shutdown",
						      vm_power_policy_name(s->cfg->on_host_shutdown), "save_file",
						      s->cfg->power_save_file, "host_status", s->cfg->host_power_status));
	if (s->numa.n_nodes) {
		/* Which host nodes stand behind each virtual node, and whether
		 * vessel picked them (docs/numa.md). */
		json_t *nodes = json_array();
		for (unsigned i = 0; i < s->numa.n_nodes; i++) {
			const struct numa_node *n = &s->numa.nodes[i];
			json_t *hosts = json_array();
			for (unsigned h = 0; h < NUMA_MAX_HOST_NODES; h++) {
				if (n->host_nodes & (1ull << h))
					json_array_append_new(hosts, json_integer(h));
			}
			json_array_append_new(nodes, json_pack("{s:i, s:I, s:i, s:i, s:o, s:b}", "node", (int)i, "memory",
							       (json_int_t)n->mem_bytes, "first_cpu", (int)n->first_cpu,
							       "cpus", (int)n->n_cpus, "host_nodes", hosts, "host_picked",
							       n->host_picked));
		}
		json_object_set_new(out, "numa", json_pack("{s:s, s:b, s:o}", "policy", vnuma_policy_name(s->numa.policy),
							  "bound", s->numa.host_bound, "nodes", nodes));
	}
	if (s->cfg->mem_hotplug) {
		json_t *added = json_array();
		pthread_mutex_lock(&s->lock);
		for (unsigned i = 0; i < s->n_mem_added; i++)
			json_array_append_new(added, memhp_piece_json(&s->mem_added[i]));
		pthread_mutex_unlock(&s->lock);
		json_object_set_new(out, "memory_hotplug", json_pack("{s:I, s:o}", "size",
								     (json_int_t)s->cfg->mem_hotplug, "added", added));
	}
	/* Hyper-V: whether the guest is offered it, and the guest OS id it
	 * wrote (hex: the id uses all 64 bits), null before it does. */
	struct hv_info hv;
	pthread_mutex_lock(&s->lock);
	bool hv_on = s->vm && hv_get_info(s->vm, &hv);
	pthread_mutex_unlock(&s->lock);
	json_object_set_new(out, "hyperv", json_boolean(hv_on));
	char id[24];
	snprintf(id, sizeof(id), "%#" PRIx64, hv_on ? hv.guest_os_id : 0);
	json_object_set_new(out, "guest_os_id", hv_on && hv.guest_os_id ? json_string(id) : json_null());
	/* VMBus: the protocol the guest connected with, and the heartbeat
	 * (the last sequence number the guest returned), null until then. */
	struct hv_vmbus_info vb;
	pthread_mutex_lock(&s->lock);
	bool vb_on = s->vm && hv_vmbus_get_info(s->vm, &vb);
	pthread_mutex_unlock(&s->lock);
	char ver[16];
	snprintf(ver, sizeof(ver), "%u.%u", vb.version >> 16, vb.version & 0xffff);
	json_object_set_new(out, "vmbus", vb_on && vb.connected ? json_string(ver) : json_null());
	json_object_set_new(out, "heartbeat",
			    vb_on && vb.heartbeats ? json_integer((json_int_t)vb.heartbeat) : json_null());
	json_object_set_new(out, "heartbeat_stopped", json_boolean(vb_on && vb.heartbeat_stopped));
}

/* ---- memory hot-add (docs/hotplug.md "Memory") ---- */

static int op_memory_add(void *opaque, uint64_t size, int node, json_t *out)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	struct memhp_piece m;
	int rc = s->n_mem_added >= GMEM_MAX_REGIONS
			 ? err_set(-ENOSPC, "memory add: at most %d pieces of hot-added memory", GMEM_MAX_REGIONS)
			 : memhp_add(vm, size, node, 0, true, &m);
	if (rc == 0) {
		s->mem_added[s->n_mem_added++] = m;
		json_t *j = memhp_piece_json(&m);
		json_object_update(out, j);
		/* The same fields as memory-removed's, so that a client can
		 * keep the guest's memory map from events alone. */
		if (s->api) {
			json_object_set_new(j, "event", json_string("memory-added"));
			api_server_post_event(s->api, j);
		} else {
			json_decref(j);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* On the API's worker: the guest ejects every block of the piece (Linux
 * offlines and removes the memory first, which it can do for memory it
 * onlined movable), then the piece leaves the machine with the vCPUs
 * held, and the session forgets it.  A machine that stops meanwhile
 * ends the wait: the machines built after it do not have the piece. */
static int op_memory_remove(void *opaque, uint64_t gpa, unsigned timeout_ms, json_t *out)
{
	struct vm_session *s = opaque;
	struct vm *vm = session_use(s);
	if (!vm)
		return -EAGAIN;
	unsigned index;
	int rc = memhp_request_remove(vm, gpa, &index);
	static uint8_t seen[MEM_HOTPLUG_SLOTS];
	memset(seen, 0, sizeof(seen));
	bool stopping = false;
	for (long long end = monotonic_ms() + (timeout_ms ? timeout_ms : 20000); rc == 0;) {
		if (memhp_ejected(vm, index, seen))
			break;
		if ((stopping = atomic_load(&vm->stop_reason) != VM_STOP_NONE))
			break;
		if (monotonic_ms() >= end) {
			rc = err_set(-ETIMEDOUT, "memory remove: the guest did not release the memory at %#llx within "
						 "%.1f s (Linux removes only memory it can take offline: online it with "
						 "online_movable)", (unsigned long long)gpa,
				     (timeout_ms ? timeout_ms : 20000) / 1000.0);
			break;
		}
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	struct memhp_piece m = { .gpa = gpa };
	if (rc == 0 && !stopping) {
		if ((rc = vcpu_gate_hold(&s->gate, kick_all_vcpus, vm, GATE_TIMEOUT_MS)) < 0)
			rc = err_set(rc, "the vCPUs did not stop within %d ms", GATE_TIMEOUT_MS);
		else
			memhp_unplug(vm, index, &m);
		vcpu_gate_release(&s->gate);
	}
	if (rc == 0) {
		pthread_mutex_lock(&s->lock);
		for (unsigned i = 0; i < s->n_mem_added; i++) {
			if (s->mem_added[i].gpa == gpa) {
				m = s->mem_added[i];
				s->mem_added[i] = s->mem_added[--s->n_mem_added];
				break;
			}
		}
		pthread_mutex_unlock(&s->lock);
		json_t *j = memhp_piece_json(&m);
		json_object_update(out, j);
		json_decref(j);
	}
	session_unuse(s);
	return rc;
}

/* ---- virtual NUMA at run time (docs/numa.md "Moving a node") ---- */

static json_t *host_node_array(uint64_t mask)
{
	json_t *a = json_array();
	for (unsigned h = 0; h < NUMA_MAX_HOST_NODES; h++) {
		if (mask & (1ull << h))
			json_array_append_new(a, json_integer(h));
	}
	return a;
}

/* Runs on the API's worker with the guest running: the node's memory
 * moves chunk by chunk, then its vCPU threads follow, and the session
 * keeps the new host nodes for the machines built at later reboots. */
static int op_numa_move(void *opaque, unsigned node, uint64_t host_nodes, struct api_progress *progress, json_t *out)
{
	struct vm_session *s = opaque;
	struct vm *vm = session_use(s);
	if (!vm)
		return -EAGAIN;
	struct host_numa host;
	struct numa_move_plan plan = { 0 };
	struct numa_move_count count = { 0 };
	int rc = host_numa_read(&host, NULL);
	if (rc == 0 && !vm->numa.n_nodes)
		rc = err_set(-EINVAL, "numa move: the guest has no virtual NUMA nodes (--numa)");
	if (rc == 0)
		rc = vnuma_plan_move(&vm->numa, &host, &vm->mem, node, host_nodes, &plan);
	if (rc == 0)
		atomic_store(&progress->total, plan.pages);
	for (unsigned i = 0; rc == 0 && i < plan.n_chunks; i++) {
		rc = vnuma_move_chunk(&vm->numa, &plan, i, &count);
		atomic_store(&progress->done, count.done);
	}
	if (rc == 0) {
		pthread_mutex_lock(&s->lock);
		struct numa_node *targets[] = { &vm->numa.nodes[node], &s->numa.nodes[node] };
		for (unsigned k = 0; k < 2; k++) {
			targets[k]->host_nodes = host_nodes;
			targets[k]->host_picked = false;
			targets[k]->host_cpus = plan.host_cpus;
		}
		pthread_mutex_unlock(&s->lock);
		const struct numa_node *n = &vm->numa.nodes[node];
		for (unsigned c = n->first_cpu; rc == 0 && c < n->first_cpu + n->n_cpus && c < vm->n_vcpus; c++)
			rc = vnuma_pin_thread(&vm->numa, c, vm->vcpus[c]->thread);
		log_info("numa", "node %u moved to host node(s) %#llx: %llu of %llu pages moved, %llu left elsewhere",
			 node, (unsigned long long)host_nodes, (unsigned long long)count.moved,
			 (unsigned long long)plan.pages, (unsigned long long)count.failed);
	}
	json_object_set_new(out, "node", json_integer(node));
	json_object_set_new(out, "host_nodes", host_node_array(host_nodes));
	json_object_set_new(out, "pages", json_integer((json_int_t)plan.pages));
	json_object_set_new(out, "moved", json_integer((json_int_t)count.moved));
	json_object_set_new(out, "failed", json_integer((json_int_t)count.failed));
	vnuma_plan_free(&plan);
	session_unuse(s);
	return rc;
}

/* The CPU a thread last ran on: field 39 of /proc/self/task/TID/stat
 * (proc(5)); -1 if unknown. */
static int thread_last_cpu(int tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');   /* the name may hold spaces */
	for (int field = 2; p && field < 39; field++)
		p = strchr(p + 1, ' ');
	return p ? atoi(p + 1) : -1;
}

static int op_numa_status(void *opaque, json_t *out)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = 0;
	json_t *nodes = json_array();
	for (unsigned i = 0; rc == 0 && i < vm->numa.n_nodes; i++) {
		const struct numa_node *n = &vm->numa.nodes[i];
		uint64_t counts[NUMA_MAX_HOST_NODES], absent;
		rc = vnuma_resident(&vm->numa, &vm->mem, i, counts, &absent);
		json_t *resident = json_object();
		for (unsigned h = 0; h < NUMA_MAX_HOST_NODES; h++) {
			if (counts[h]) {
				char key[8];
				snprintf(key, sizeof(key), "%u", h);
				json_object_set_new(resident, key, json_integer((json_int_t)counts[h]));
			}
		}
		json_t *vcpus = json_array();
		for (unsigned c = n->first_cpu; c < n->first_cpu + n->n_cpus && c < vm->n_vcpus; c++) {
			int tid = atomic_load(&vm->vcpus[c]->tid);
			json_array_append_new(vcpus, json_pack("{s:i, s:i, s:i}", "id", (int)c, "tid", tid, "last_cpu",
							       tid ? thread_last_cpu(tid) : -1));
		}
		json_array_append_new(nodes, json_pack("{s:i, s:I, s:o, s:b, s:o, s:I, s:o}", "node", (int)i, "memory",
						       (json_int_t)n->mem_bytes, "host_nodes",
						       host_node_array(n->host_nodes), "host_picked", n->host_picked,
						       "resident_pages", resident, "absent_pages", (json_int_t)absent,
						       "vcpus", vcpus));
	}
	pthread_mutex_unlock(&s->lock);
	json_object_set_new(out, "policy", json_string(vnuma_policy_name(vm->numa.policy)));
	json_object_set_new(out, "nodes", nodes);
	return rc;
}

static const struct vm_control_ops session_ops = {
	.pause = op_pause,
	.resume = op_resume,
	.powerdown = op_powerdown,
	.powerdown_guest_os = op_powerdown_guest_os,
	.wakeup = op_wakeup,
	.sleep = op_sleep,
	.poweroff = op_poweroff,
	.reset = op_reset,
	.save = op_save,
	.stats = op_stats,
	.device_list = op_device_list,
	.device_add = op_device_add,
	.device_remove = op_device_remove,
	.status = op_status,
	.numa_move = op_numa_move,
	.numa_status = op_numa_status,
	.cpu_add = op_cpu_add,
	.cpu_remove = op_cpu_remove,
	.memory_add = op_memory_add,
	.memory_remove = op_memory_remove,
};

int vm_session_start(struct vm_session *s, const struct vm_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->unused, NULL);
	lifecycle_init(&s->lc);
	plugin_registry_init(&s->plugins);
	int nrc = vm_config_numa(cfg, &s->numa);
	if (nrc < 0)
		return nrc;
	/* A restore's hot-added memory (the snapshot's config). */
	for (unsigned i = 0; i < cfg->n_mem_added; i++)
		s->mem_added[s->n_mem_added++] = cfg->mem_added[i];
	for (unsigned i = 0; i < cfg->n_devices; i++) {
		int rc = live_add(s, &cfg->devices[i]);
		if (rc < 0)
			return rc;
	}
	/* Only a VM that can have plug-in devices looks for plug-ins, and then
	 * reads their descriptors in a probe child: none is loaded into this
	 * process until a device of its type is created.  This runs before
	 * the API thread and the vCPUs start. */
	if (cfg->n_devices || cfg->api_socket) {
		struct plugin_path path;
		int rc = plugin_path_init(&path, cfg->plugin_dirs, cfg->n_plugin_dirs);
		if (rc < 0)
			return rc;
		/* A directory that does not exist is normal; a broken plug-in is
		 * reported now (a warning) and when a device of its type is
		 * asked for. */
		plugin_registry_scan(&s->plugins, path.dirs, path.n);
		plugin_path_free(&path);
	}
	/* Every run enters the registry of running VMs (docs/power.md), so
	 * that the power agent finds it, unless told not to; one without an
	 * API socket gets one there.  A registry that cannot be written
	 * costs the VM nothing but the agent's care: a warning. */
	const char *sock = cfg->api_socket;
	char dir[4096];
	bool reg = false;
	if (!cfg->no_register) {
		if (registry_dir(dir, sizeof(dir)) < 0 || registry_mkdir(dir) < 0)
			log_info("registry", "not registered: %s", err_msg());
		else
			reg = true;
	}
	if (reg && !sock) {
		if (asprintf(&s->auto_socket, "%s/vm-%d.sock", dir, (int)getpid()) < 0) {
			s->auto_socket = NULL;
			return err_set(-ENOMEM, "out of memory");
		}
		sock = s->auto_socket;
	}
	if (sock) {
		int rc = api_server_start(&s->api, sock, &session_ops, s, &s->lc);
		if (rc < 0)
			return rc;   /* the message names the api socket */
	}
	if (reg && registry_add(dir, sock, cfg, &s->registry_file) < 0)
		log_warn("registry", "not registered: %s", err_msg());
	return 0;
}

void vm_session_finish(struct vm_session *s)
{
	enum vm_state st = lifecycle_state(&s->lc);
	if (st != VM_STATE_OFF && st != VM_STATE_TEARING_DOWN)
		lifecycle_transition(&s->lc, VM_STATE_TEARING_DOWN, NULL);
	lifecycle_transition(&s->lc, VM_STATE_OFF, NULL);
	if (s->registry_file)
		unlink(s->registry_file);
	if (s->api)
		api_server_stop(s->api);
	free(s->registry_file);
	free(s->auto_socket);
	s->registry_file = s->auto_socket = NULL;
	plugin_registry_free(&s->plugins);
	for (unsigned i = 0; i < s->n_live; i++)
		vm_device_config_free(&s->live[i]);
	s->n_live = 0;
	lifecycle_destroy(&s->lc);
	pthread_cond_destroy(&s->unused);
	pthread_mutex_destroy(&s->lock);
}

/* Plug-in devices drive the board's GSIs (a bank from GSI 0) from their
 * callbacks, which run under vm->dev_lock like every device's.  The
 * plug-in layer keeps IRQ resources to lines 0 to 23. */
static void session_irq_set(void *opaque, unsigned gsi, bool level)
{
	irq_set_level(opaque, gsi, level);
}

/* A plug-in device's DMA wrote guest RAM: the engine forgets code it
 * decoded there, as for virtio devices' writes. */
static void session_mem_written(void *opaque, uint64_t gpa, uint64_t len)
{
	struct vm *vm = opaque;
	if (vm->accel && vm->accel->memory_written)
		vm->accel->memory_written(vm, gpa, len);
}

int vm_session_add_memory(struct vm_session *s, struct vm *vm)
{
	for (unsigned i = 0; i < s->n_mem_added; i++) {
		struct memhp_piece *m = &s->mem_added[i], got;
		int rc = memhp_add(vm, m->size, (int)m->node, m->gpa, false, &got);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int vm_session_attach(struct vm_session *s, struct vm *vm)
{
	vcpu_gate_init(&s->gate, vm->n_vcpus);
	struct plugin_env env = {
		.pio = &vm->pio, .mmio = &vm->mmio, .dev_lock = &vm->dev_lock, .mem = &vm->mem,
		.irq = { .set = session_irq_set, .opaque = vm, .n = 0 },
		.pci = vm->platform ? vm->platform->pci : NULL,
		.apic = vm->platform ? &vm->platform->apic_bus : NULL,
		.mem_written = session_mem_written, .mem_written_opaque = vm,
	};
	plugin_devices_init(&s->devices, &s->plugins, &env);
	for (unsigned i = 0; i < s->n_live; i++) {
		struct vm_device_config *c = &s->live[i];
		int rc;
		if (hotplug_type_known(c->type)) {
			/* Present from power-on in the slot it had (a reset, a
			 * restore); the machine's destroy frees it. */
			char *params = NULL;
			if ((rc = hotplug_add(vm, c, &s->backends, false, &params)) == 0) {
				free(c->params);
				c->params = params;
			}
		} else {
			rc = plugin_devices_add(&s->devices, c);
		}
		if (rc < 0) {
			/* Not attached: detach would leave these behind. */
			plugin_devices_destroy(&s->devices);
			vcpu_gate_destroy(&s->gate);
			return rc;
		}
	}
	/* From here on devices join a running guest. */
	s->devices.hotplug = true;
	atomic_store(&s->panic_pause, false);
	vm->guest_panicked = session_guest_panicked;
	vm->panic_opaque = s;
	pthread_mutex_lock(&s->lock);
	s->vm = vm;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void vm_session_detach(struct vm_session *s)
{
	pthread_mutex_lock(&s->lock);
	struct vm *vm = s->vm;
	s->vm = NULL;
	s->pause_held = false;  /* the gate goes with the machine */
	/* A save or device-add in progress finishes first. */
	while (s->users)
		pthread_cond_wait(&s->unused, &s->lock);
	pthread_mutex_unlock(&s->lock);
	if (vm) {
		plugin_devices_destroy(&s->devices);
		vcpu_gate_destroy(&s->gate);
	}
}
