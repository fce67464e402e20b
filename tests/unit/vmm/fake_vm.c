#include "fake_vm.h"

#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* The op runs on whichever thread the server calls it from: it waits
 * there while the test holds it. */
static void fake_wait_hold(struct fake_vm *vm)
{
	pthread_mutex_lock(&vm->hold_lock);
	if (vm->hold) {
		vm->n_held++;
		pthread_cond_broadcast(&vm->hold_cond);
		while (vm->hold)
			pthread_cond_wait(&vm->hold_cond, &vm->hold_lock);
		vm->n_held--;
	}
	pthread_mutex_unlock(&vm->hold_lock);
}

void fake_vm_hold(struct fake_vm *vm, bool on)
{
	pthread_mutex_lock(&vm->hold_lock);
	vm->hold = on;
	pthread_cond_broadcast(&vm->hold_cond);
	pthread_mutex_unlock(&vm->hold_lock);
}

bool fake_vm_wait_held(struct fake_vm *vm, int n)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	pthread_mutex_lock(&vm->hold_lock);
	int rc = 0;
	while (vm->n_held < n && rc == 0)
		rc = pthread_cond_timedwait(&vm->hold_cond, &vm->hold_lock, &deadline);
	bool ok = vm->n_held >= n;
	pthread_mutex_unlock(&vm->hold_lock);
	return ok;
}

static int fake_pause(void *opaque)
{
	struct fake_vm *vm = opaque;
	vm->calls_pause++;
	return lifecycle_transition(&vm->lc, VM_STATE_PAUSED, "control API: pause");
}

static int fake_resume(void *opaque)
{
	struct fake_vm *vm = opaque;
	vm->calls_resume++;
	return lifecycle_transition(&vm->lc, VM_STATE_RUNNING, "control API: resume");
}

static int fake_powerdown(void *opaque)
{
	struct fake_vm *vm = opaque;
	vm->calls_powerdown++;
	int rc = lifecycle_transition(&vm->lc, VM_STATE_POWERING_DOWN, "control API: ACPI power button");
	if (rc == 0 && !vm->guest_ignores_powerdown) {
		lifecycle_transition(&vm->lc, VM_STATE_TEARING_DOWN, "guest: ACPI S5");
		lifecycle_transition(&vm->lc, VM_STATE_OFF, NULL);
	}
	return rc;
}

static int fake_poweroff(void *opaque)
{
	struct fake_vm *vm = opaque;
	vm->calls_poweroff++;
	int rc = lifecycle_transition(&vm->lc, VM_STATE_TEARING_DOWN, "control API: poweroff");
	return rc ? rc : lifecycle_transition(&vm->lc, VM_STATE_OFF, NULL);
}

static int fake_reset(void *opaque)
{
	struct fake_vm *vm = opaque;
	vm->calls_reset++;
	plugin_devices_reset(&vm->devices);
	int rc = lifecycle_transition(&vm->lc, VM_STATE_POWERING_UP, "control API: reset");
	return rc ? rc : lifecycle_transition(&vm->lc, VM_STATE_RUNNING, NULL);
}

static int fake_save(void *opaque, const char *path)
{
	struct fake_vm *vm = opaque;
	vm->calls_save++;
	snprintf(vm->last_save, sizeof(vm->last_save), "%s", path);
	enum vm_state before = lifecycle_state(&vm->lc);
	int rc = lifecycle_transition(&vm->lc, VM_STATE_SAVING_STATE, "control API: save");
	if (rc)
		return rc;
	fake_wait_hold(vm);
	if (vm->fail_save)
		rc = err_set(vm->fail_save, "snapshot %s: %s", path, strerror(-vm->fail_save));
	lifecycle_transition(&vm->lc, before, NULL);
	return rc;
}

/* Half way, waits on the hold (so that a test sees progress), then done. */
static int fake_numa_move(void *opaque, unsigned node, uint64_t host_nodes, struct api_progress *progress, json_t *out)
{
	struct fake_vm *vm = opaque;
	atomic_store(&progress->total, 1000);
	atomic_store(&progress->done, 500);
	fake_wait_hold(vm);
	atomic_store(&progress->done, 1000);
	json_object_set_new(out, "node", json_integer(node));
	json_object_set_new(out, "host_mask", json_integer((json_int_t)host_nodes));
	return 0;
}

static int fake_stats(void *opaque, json_t *out)
{
	struct fake_vm *vm = opaque;
	json_t *devices = json_array();
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned i = 0; i < vm->pio.n; i++)
		json_array_append_new(devices, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "bus", "pio", "name",
							 vm->pio.ranges[i].name, "base", (json_int_t)vm->pio.ranges[i].base,
							 "len", (json_int_t)vm->pio.ranges[i].len, "reads",
							 (json_int_t)vm->pio.ranges[i].reads, "writes",
							 (json_int_t)vm->pio.ranges[i].writes));
	pthread_mutex_unlock(&vm->dev_lock);
	json_object_set_new(out, "exits", json_pack("{s:i, s:i}", "io", 7, "hlt", 2));
	json_object_set_new(out, "vcpus", json_pack("[{s:i, s:{s:i, s:i}}]", "id", 0, "exits", "io", 7, "hlt", 2));
	json_object_set_new(out, "devices", devices);
	return 0;
}

static int fake_device_list(void *opaque, json_t *out)
{
	struct fake_vm *vm = opaque;
	return api_devices_to_json(&vm->devices, out);
}

static int fake_device_add(void *opaque, const struct vm_device_config *dev)
{
	struct fake_vm *vm = opaque;
	fake_wait_hold(vm);
	return plugin_devices_add(&vm->devices, dev);
}

static int fake_device_remove(void *opaque, const char *id, const struct api_remove_opts *opts)
{
	struct fake_vm *vm = opaque;
	return plugin_devices_remove(&vm->devices, id);
}

/* Hot-plug stand-ins: they answer with what reached them, so a test sees
 * the arguments as the API parsed them. */
static int fake_cpu_add(void *opaque, int node, json_t *out)
{
	json_object_set_new(out, "node", json_integer(node));
	return 0;
}

static int fake_cpu_remove(void *opaque, unsigned cpu, json_t *out)
{
	json_object_set_new(out, "cpu", json_integer(cpu));
	return 0;
}

static int fake_memory_add(void *opaque, uint64_t size, int node, json_t *out)
{
	json_object_set_new(out, "size", json_integer((json_int_t)size));
	json_object_set_new(out, "node", json_integer(node));
	return 0;
}

static int fake_memory_remove(void *opaque, uint64_t gpa, unsigned timeout_ms, json_t *out)
{
	json_object_set_new(out, "gpa", json_integer((json_int_t)gpa));
	json_object_set_new(out, "timeout_ms", json_integer(timeout_ms));
	return 0;
}

static void fake_status(void *opaque, json_t *out)
{
	json_object_set_new(out, "engine", json_string("fake"));
	json_object_set_new(out, "cpus", json_integer(1));
}

const struct vm_control_ops fake_vm_ops = {
	.pause = fake_pause, .resume = fake_resume, .powerdown = fake_powerdown, .poweroff = fake_poweroff,
	.reset = fake_reset, .save = fake_save, .stats = fake_stats, .device_list = fake_device_list,
	.device_add = fake_device_add, .device_remove = fake_device_remove, .status = fake_status,
	.numa_move = fake_numa_move, .cpu_add = fake_cpu_add, .cpu_remove = fake_cpu_remove,
	.memory_add = fake_memory_add, .memory_remove = fake_memory_remove,
};

int fake_vm_init(struct fake_vm *vm, const char *plugin_path)
{
	memset(vm, 0, sizeof(*vm));
	lifecycle_init(&vm->lc);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->dev_lock, NULL);
	pthread_mutex_init(&vm->hold_lock, NULL);
	pthread_cond_init(&vm->hold_cond, NULL);
	int rc = gmem_init(&vm->mem, 16ULL << 20);
	if (rc)
		return rc;
	plugin_registry_init(&vm->reg);
	if (plugin_path && (rc = plugin_registry_load(&vm->reg, plugin_path)) < 0)
		return rc;
	struct plugin_env env = { .pio = &vm->pio, .mmio = &vm->mmio, .dev_lock = &vm->dev_lock, .mem = &vm->mem };
	plugin_devices_init(&vm->devices, &vm->reg, &env);
	lifecycle_transition(&vm->lc, VM_STATE_POWERING_UP, "test");
	return lifecycle_transition(&vm->lc, VM_STATE_RUNNING, "test");
}

void fake_vm_destroy(struct fake_vm *vm)
{
	plugin_devices_destroy(&vm->devices);
	plugin_registry_free(&vm->reg);
	gmem_destroy(&vm->mem);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	lifecycle_destroy(&vm->lc);
	pthread_mutex_destroy(&vm->hold_lock);
	pthread_cond_destroy(&vm->hold_cond);
}
