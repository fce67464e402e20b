/* Control-plane wiring (docs/api.md "For the VM side"): what the control
 * API's requests do to the machine, and the lifecycle around it. */
#include "vm/control.h"

#include "hw/pc.h"
#include "snapshot/snapshot.h"
#include "util/error.h"
#include "util/log.h"
#include "vm/console.h"

#include <errno.h>
#include <string.h>

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

static int op_pause(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = vcpu_gate_hold(&vm->gate, kick_all_vcpus, vm, GATE_TIMEOUT_MS);
	if (rc < 0)
		rc = err_set(rc, "the vCPUs did not stop within %d ms", GATE_TIMEOUT_MS);
	else if ((rc = lifecycle_transition(&s->lc, VM_STATE_PAUSED, "control API: pause")) < 0)
		vcpu_gate_release(&vm->gate);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int op_resume(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = lifecycle_transition(&s->lc, VM_STATE_RUNNING, "control API: resume");
	if (rc == 0)
		vcpu_gate_release(&vm->gate);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int op_powerdown(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	platform_press_power_button(vm);   /* takes the device lock itself */
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int op_poweroff(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	vm_request_stop(vm, VM_STOP_POWEROFF);
	/* A paused machine must let its vCPUs see the stop. */
	if (lifecycle_state(&s->lc) == VM_STATE_PAUSED)
		vcpu_gate_release(&vm->gate);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int op_reset(void *opaque)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int was_paused = lifecycle_state(&s->lc) == VM_STATE_PAUSED;
	vm_request_stop(vm, VM_STOP_RESET);
	if (was_paused)
		vcpu_gate_release(&vm->gate);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int op_save(void *opaque, const char *path)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	enum vm_state before = lifecycle_state(&s->lc);
	int rc = 0;
	if (before == VM_STATE_RUNNING) {
		rc = vcpu_gate_hold(&vm->gate, kick_all_vcpus, vm, GATE_TIMEOUT_MS);
		if (rc < 0)
			rc = err_set(rc, "the vCPUs did not stop within %d ms", GATE_TIMEOUT_MS);
	}
	if (rc == 0)
		rc = lifecycle_transition(&s->lc, VM_STATE_SAVING_STATE, "control API: save");
	if (rc == 0) {
		json_t *devices = json_array();
		api_devices_to_json(&vm->devices, devices);
		rc = snapshot_save_with_devices(vm, path, devices, NULL);
		json_decref(devices);
		int back = lifecycle_transition(&s->lc, before, rc == 0 ? "saved" : "save failed");
		if (rc == 0)
			rc = back;
	}
	if (before == VM_STATE_RUNNING && lifecycle_state(&s->lc) != VM_STATE_SAVING_STATE)
		vcpu_gate_release(&vm->gate);
	pthread_mutex_unlock(&s->lock);
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

static int op_device_list(void *opaque, json_t *out)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = api_devices_to_json(&vm->devices, out);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int op_device_add(void *opaque, const struct vm_device_config *dev)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = plugin_devices_add(&vm->devices, dev);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int op_device_remove(void *opaque, const char *id)
{
	struct vm_session *s = opaque;
	WITH_VM(s, vm);
	int rc = plugin_devices_remove(&vm->devices, id);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void op_status(void *opaque, json_t *out)
{
	struct vm_session *s = opaque;
	json_object_set_new(out, "engine", json_string(s->cfg->engine));
	json_object_set_new(out, "cpus", json_integer(s->cfg->cpus));
	json_object_set_new(out, "memory", json_integer((json_int_t)s->cfg->mem_bytes));
}

static const struct vm_control_ops session_ops = {
	.pause = op_pause,
	.resume = op_resume,
	.powerdown = op_powerdown,
	.poweroff = op_poweroff,
	.reset = op_reset,
	.save = op_save,
	.stats = op_stats,
	.device_list = op_device_list,
	.device_add = op_device_add,
	.device_remove = op_device_remove,
	.status = op_status,
};

int vm_session_start(struct vm_session *s, const struct vm_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	pthread_mutex_init(&s->lock, NULL);
	lifecycle_init(&s->lc);
	plugin_registry_init(&s->plugins);
	char *dirs[PLUGIN_MAX_DIRS];
	unsigned n = plugin_search_dirs(cfg, dirs, PLUGIN_MAX_DIRS);
	/* A directory that does not exist is normal; a broken plug-in is
	 * reported when a device of its type is asked for. */
	plugin_registry_scan(&s->plugins, dirs, n);
	for (unsigned i = 0; i < n; i++)
		free(dirs[i]);
	if (cfg->api_socket) {
		int rc = api_server_start(&s->api, cfg->api_socket, &session_ops, s, &s->lc);
		if (rc < 0)
			return err_wrap(rc, "api-socket %s", cfg->api_socket);
	}
	return 0;
}

void vm_session_finish(struct vm_session *s)
{
	enum vm_state st = lifecycle_state(&s->lc);
	if (st != VM_STATE_OFF && st != VM_STATE_TEARING_DOWN)
		lifecycle_transition(&s->lc, VM_STATE_TEARING_DOWN, NULL);
	lifecycle_transition(&s->lc, VM_STATE_OFF, NULL);
	if (s->api)
		api_server_stop(s->api);
	plugin_registry_free(&s->plugins);
	lifecycle_destroy(&s->lc);
	pthread_mutex_destroy(&s->lock);
}

/* Plug-in devices drive interrupt lines from their callbacks, which run
 * under vm->dev_lock like every device's. */
static int session_irq_set(void *opaque, unsigned line, int level)
{
	struct vm *vm = opaque;
	if (line >= PC_NUM_GSI)
		return err_set(-EINVAL, "IRQ line %u does not exist (0 to %d)", line, PC_NUM_GSI - 1);
	irq_set_level(vm, line, level != 0);
	return 0;
}

int vm_session_attach(struct vm_session *s, struct vm *vm)
{
	vm->lc = &s->lc;
	vm->plugins = &s->plugins;
	vcpu_gate_init(&vm->gate, vm->n_vcpus);
	struct plugin_env env = {
		.pio = &vm->pio, .mmio = &vm->mmio, .dev_lock = &vm->dev_lock, .mem = &vm->mem,
		.irq_set = session_irq_set, .irq_opaque = vm,
	};
	plugin_devices_init(&vm->devices, &s->plugins, &env);
	for (unsigned i = 0; i < s->cfg->n_devices; i++) {
		int rc = plugin_devices_add(&vm->devices, &s->cfg->devices[i]);
		if (rc < 0)
			return err_wrap(rc, "device %s", s->cfg->devices[i].id ? s->cfg->devices[i].id : s->cfg->devices[i].type);
	}
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
	pthread_mutex_unlock(&s->lock);
	if (vm) {
		plugin_devices_destroy(&vm->devices);
		vcpu_gate_destroy(&vm->gate);
	}
}
