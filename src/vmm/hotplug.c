/* PCI hot-plug of virtio functions (docs/hotplug.md). */
#include "vmm/hotplug.h"

#include "board/pc.h"
#include "hw/pci.h"
#include "hw/cpu_hotplug.h"
#include "hw/pci_hotplug.h"
#include "machine/device_registry.h"
#include "util/error.h"
#include "util/log.h"
#include "vmm/pc_virtio.h"
#include "vmm/plugin.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOTPLUG_POLL_MS 10

bool hotplug_type_known(const char *type) { return pc_virtio_type_known(type); }

struct hotplug_params {
	struct vm_disk_config disk;
	unsigned slot;          /* 0: the first free one */
	int net;                /* virtio-net: the --net interface, -1: the first free hot-plug one */
	char *path;             /* virtio-console: its output file */
};

static void hotplug_params_free(struct hotplug_params *hp)
{
	free(hp->disk.path);
	free(hp->disk.format);
	free(hp->disk.key_file);
	free(hp->disk.serial);
	free(hp->path);
	memset(hp, 0, sizeof(*hp));
}

/* Removals end one at a time: a device-remove on the API's worker and
 * the guest's own eject (hotplug_reap_guest_ejects) may meet on one
 * device. */
static pthread_mutex_t hotplug_remove_lock = PTHREAD_MUTEX_INITIALIZER;

static int param_string(const char *id, json_t *obj, const char *key, char **out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	if (!json_is_string(v) || !json_string_length(v))
		return err_set(-EINVAL, "device %s: params.%s: not a non-empty string", id, key);
	if (!(*out = strdup(json_string_value(v))))
		return err_set(-ENOMEM, "out of memory");
	return 0;
}

/* The params each type takes besides "slot", and how a message lists them. */
static const struct {
	const char *type;
	const char *const keys[6];
	const char *expected;
} hotplug_keys[] = {
	{ "virtio-blk", { "path", "format", "readonly", "key_file", "serial" },
	  "path, format, readonly, key_file, serial or slot" },
	{ "virtio-net", { "net" }, "net or slot" },
	{ "virtio-console", { "path" }, "path or slot" },
};

static bool hotplug_key_known(const char *type, const char *key, const char **expected)
{
	*expected = "slot";
	if (!strcmp(key, "slot"))
		return true;
	for (unsigned t = 0; t < sizeof(hotplug_keys) / sizeof(hotplug_keys[0]); t++) {
		if (strcmp(type, hotplug_keys[t].type))
			continue;
		*expected = hotplug_keys[t].expected;
		for (unsigned i = 0; i < 6 && hotplug_keys[t].keys[i]; i++)
			if (!strcmp(key, hotplug_keys[t].keys[i]))
				return true;
	}
	return false;
}

/* params of a virtio device: "slot" for all; "path", "format",
 * "readonly", "key_file" and "serial" for a disk, as a manifest's disks;
 * "net" for a NIC; "path" for a console. */
static int hotplug_parse(const struct vm_device_config *dev, struct hotplug_params *out)
{
	memset(out, 0, sizeof(*out));
	out->net = -1;
	json_error_t e;
	json_t *p = json_loads(dev->params ? dev->params : "{}", 0, &e);
	if (!json_is_object(p)) {
		json_decref(p);
		return err_set(-EINVAL, "device %s: params: not a JSON object", dev->id);
	}
	bool disk = !strcmp(dev->type, "virtio-blk");
	const char *key, *expected;
	json_t *v;
	int rc = 0;
	json_object_foreach(p, key, v) {
		if (!hotplug_key_known(dev->type, key, &expected)) {
			rc = err_set(-EINVAL, "device %s: params.%s: unknown for %s (expected %s)", dev->id, key, dev->type,
				     expected);
			goto out;
		}
	}
	if ((v = json_object_get(p, "slot"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 31) {
			rc = err_set(-EINVAL, "device %s: params.slot: not a PCI slot (expected 1 to 31)", dev->id);
			goto out;
		}
		out->slot = (unsigned)json_integer_value(v);
	}
	if ((v = json_object_get(p, "net"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= VM_MAX_NETS) {
			rc = err_set(-EINVAL, "device %s: params.net: not an interface number (expected 0 to %d, the "
					      "order of --net)", dev->id, VM_MAX_NETS - 1);
			goto out;
		}
		out->net = (int)json_integer_value(v);
	}
	if (!strcmp(dev->type, "virtio-console")) {
		if (!json_object_get(p, "path"))
			rc = err_set(-EINVAL, "device %s: params.path: missing (expected the file its output goes to)",
				     dev->id);
		else
			rc = param_string(dev->id, p, "path", &out->path);
		goto out;
	}
	if (!disk)
		goto out;
	if (!json_object_get(p, "path")) {
		rc = err_set(-EINVAL, "device %s: params.path: missing (expected a disk image path)", dev->id);
		goto out;
	}
	if ((rc = param_string(dev->id, p, "path", &out->disk.path)) < 0 ||
	    (rc = param_string(dev->id, p, "format", &out->disk.format)) < 0 ||
	    (rc = param_string(dev->id, p, "key_file", &out->disk.key_file)) < 0 ||
	    (rc = param_string(dev->id, p, "serial", &out->disk.serial)) < 0)
		goto out;
	if (out->disk.format && strcmp(out->disk.format, "raw") && strcmp(out->disk.format, "vhd")) {
		rc = err_set(-EINVAL, "device %s: params.format: %s is not a disk format (expected \"raw\" or \"vhd\")",
			     dev->id, out->disk.format);
		goto out;
	}
	if (out->disk.serial && strlen(out->disk.serial) > 20) {
		rc = err_set(-EINVAL, "device %s: params.serial: longer than 20 characters", dev->id);
		goto out;
	}
	if ((v = json_object_get(p, "readonly"))) {
		if (!json_is_boolean(v)) {
			rc = err_set(-EINVAL, "device %s: params.readonly: not a boolean", dev->id);
			goto out;
		}
		out->disk.readonly = json_is_true(v);
	}
out:
	json_decref(p);
	if (rc < 0)
		hotplug_params_free(out);
	return rc;
}

/* dev's params with "slot" (and a NIC's "net") set. */
static char *params_with_slot(const char *params, unsigned slot, int net)
{
	json_t *p = json_loads(params ? params : "{}", 0, NULL);
	if (!json_is_object(p)) {
		json_decref(p);
		return NULL;
	}
	json_object_set_new(p, "slot", json_integer(slot));
	if (net >= 0)
		json_object_set_new(p, "net", json_integer(net));
	char *s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(p);
	return s;
}

int hotplug_add(struct vm *vm, const struct vm_device_config *dev, const struct pc_virtio_backends *be, bool notify,
		char **params_out)
{
	struct platform *p = vm->platform;
	if (!p || !p->pci || !p->pcihp)
		return err_set(-ENOTSUP, "this machine has no PCI hot-plug");
	struct hotplug_params hp;
	int rc = hotplug_parse(dev, &hp);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&vm->dev_lock);
	unsigned slot = hp.slot;
	struct pci_device *taken = slot ? pci_find_device(p->pci, slot) : NULL;
	if (taken) {
		rc = err_set(-EBUSY, "device %s: PCI slot %u is taken by %s", dev->id, slot, taken->name);
	} else if (!slot) {
		for (slot = 1; slot < PCI_MAX_DEVICES && pci_find_device(p->pci, slot); slot++)
			;
		if (slot == PCI_MAX_DEVICES)
			rc = err_set(-ENOSPC, "device %s: the PCI bus is full (every slot from 1 to %d holds a device)",
				     dev->id, PCI_MAX_DEVICES - 1);
	}
	struct pc_virtio_hot hot = { .disk = &hp.disk, .net = hp.net, .path = hp.path };
	if (rc == 0 && (rc = pc_virtio_plug(vm, p, dev->type, dev->id, &hot, be, slot)) < 0)
		err_wrap(rc, "device %s", dev->id);
	if (rc == 0 && !(*params_out = params_with_slot(dev->params, slot, hot.net))) {
		pc_virtio_unplug(p, dev->id);
		rc = err_set(-ENOMEM, "out of memory");
	}
	if (rc == 0 && notify)
		pci_hotplug_device_check(p->pcihp, slot);
	pthread_mutex_unlock(&vm->dev_lock);
	hotplug_params_free(&hp);
	if (rc == 0)
		log_info("hotplug", "%s (%s) in PCI slot %u", dev->id, dev->type, slot);
	return rc;
}

/* The slot of function id: a virtio one, or a plug-in's (plugins may be
 * NULL).  Device lock held. */
static int slot_of(struct vm *vm, struct plugin_devices *plugins, const char *id)
{
	int slot = pc_virtio_slot(vm->platform, id);
	if (slot < 0 && plugins)
		slot = plugin_devices_slot(plugins, id);
	return slot;
}

int hotplug_slot(struct vm *vm, struct plugin_devices *plugins, const char *id)
{
	if (!vm->platform)
		return -ENOENT;
	pthread_mutex_lock(&vm->dev_lock);
	int slot = slot_of(vm, plugins, id);
	pthread_mutex_unlock(&vm->dev_lock);
	return slot;
}

void hotplug_announce(struct vm *vm, unsigned slot)
{
	struct platform *p = vm->platform;
	if (!p || !p->pcihp)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	pci_hotplug_device_check(p->pcihp, slot);
	pthread_mutex_unlock(&vm->dev_lock);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Frees the function id in slot, unless someone did already: whether
 * this call did.  gone: tell the guest it went (surprise removal). */
static bool hotplug_free(struct vm *vm, struct plugin_devices *plugins, const char *id, int slot, bool gone)
{
	struct platform *p = vm->platform;
	pthread_mutex_lock(&hotplug_remove_lock);
	pthread_mutex_lock(&vm->dev_lock);
	bool there = pc_virtio_slot(p, id) == slot;
	bool plugin = !there && plugins && plugin_devices_slot(plugins, id) == slot;
	pthread_mutex_unlock(&vm->dev_lock);
	if (plugin) {
		/* A plug-in's function: its removal takes the device lock, so no
		 * BAR access is in flight once it returns (docs/plugins.md). */
		plugin_devices_remove(plugins, id);
		pthread_mutex_lock(&vm->dev_lock);
		pci_hotplug_forget(p->pcihp, (unsigned)slot);
		if (gone)
			pci_hotplug_device_gone(p->pcihp, (unsigned)slot);
		pthread_mutex_unlock(&vm->dev_lock);
	}
	if (there) {
		/* A NIC leaves its backend first: the backend's thread takes
		 * the device lock to deliver. */
		pc_virtio_unplug_detach(p, id);
		pthread_mutex_lock(&vm->dev_lock);
		/* Under the lock no request of the device is in flight; its
		 * destroy completes the disk's writes, flushes them and closes
		 * the image. */
		pc_virtio_unplug(p, id);
		pci_hotplug_forget(p->pcihp, (unsigned)slot);
		/* Surprise removal: the guest checks the bus and finds the slot empty. */
		if (gone)
			pci_hotplug_device_gone(p->pcihp, (unsigned)slot);
		pthread_mutex_unlock(&vm->dev_lock);
	}
	pthread_mutex_unlock(&hotplug_remove_lock);
	return there || plugin;
}

int hotplug_remove(struct vm *vm, struct plugin_devices *plugins, const char *id, bool force, unsigned timeout_ms)
{
	struct platform *p = vm->platform;
	if (!p || !p->pcihp)
		return err_set(-ENOENT, "no device %s", id);
	pthread_mutex_lock(&vm->dev_lock);
	int slot = slot_of(vm, plugins, id);
	if (slot > 0 && !force)
		pci_hotplug_request_eject(p->pcihp, (unsigned)slot);
	pthread_mutex_unlock(&vm->dev_lock);
	if (slot < 0)
		return err_set(-ENOENT, "no device %s", id);
	/* The guest stops the driver, removes the function and runs the
	 * slot's _EJ0; an eject it made earlier on its own counts too. */
	bool ejected = force, stopping = false;
	for (int64_t end = mono_ms() + timeout_ms; !ejected;) {
		pthread_mutex_lock(&vm->dev_lock);
		ejected = pci_hotplug_take_eject(p->pcihp, (unsigned)slot);
		bool gone = slot_of(vm, plugins, id) != slot;
		pthread_mutex_unlock(&vm->dev_lock);
		/* Freed meanwhile on an eject the guest made on its own. */
		if (gone)
			return 0;
		/* A machine that stops (reset, power off) runs no guest to answer. */
		stopping = atomic_load(&vm->stop_reason) != VM_STOP_NONE;
		if (ejected || stopping)
			break;
		if (mono_ms() >= end)
			return err_set(-ETIMEDOUT, "the guest did not release %s within %.1f s (`device remove --force` "
						   "removes it anyway)", id, timeout_ms / 1000.0);
		struct timespec ts = { 0, HOTPLUG_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	hotplug_free(vm, plugins, id, slot, force && !stopping);
	log_info("hotplug", "%s left PCI slot %d%s", id, slot, force ? " (forced)" : "");
	return 0;
}

int hotplug_reap_guest_ejects(struct vm *vm, struct plugin_devices *plugins,
			      void (*removed)(void *opaque, const char *id), void *opaque)
{
	struct platform *p = vm->platform;
	if (!p || !p->pcihp)
		return 0;
	pthread_mutex_lock(&vm->dev_lock);
	uint32_t slots = pci_hotplug_take_guest_ejects(p->pcihp);
	pthread_mutex_unlock(&vm->dev_lock);
	int n = 0;
	for (unsigned slot = 1; slot < 32; slot++) {
		char id[SNAPSHOT_DEVICE_NAME_MAX];
		if (!(slots & (1u << slot)))
			continue;
		pthread_mutex_lock(&vm->dev_lock);
		int rc = pc_virtio_slot_owner(p, slot, id, sizeof(id));
		if (rc < 0 && plugins)
			rc = plugin_devices_slot_owner(plugins, slot, id, sizeof(id));
		pthread_mutex_unlock(&vm->dev_lock);
		/* An empty slot: nothing to free. */
		if (rc < 0 || !hotplug_free(vm, plugins, id, (int)slot, false))
			continue;
		log_info("hotplug", "%s left PCI slot %u (ejected by the guest)", id, slot);
		if (removed)
			removed(opaque, id);
		n++;
	}
	return n;
}

/* ---- CPUs ---- */

int hotplug_cpu_add(struct vm *vm, int node, unsigned *cpu)
{
	struct platform *p = vm->platform;
	if (!p || !p->cpuhp || !vm->cpu_hotplug)
		return err_set(-ENOTSUP, "this VM has no CPUs to add (start it with --max-cpus N, more than --cpus)");
	if (node >= 0 && (unsigned)node >= vm->numa.n_nodes) {
		if (!vm->numa.n_nodes)
			return err_set(-EINVAL, "cpu add: the guest has no NUMA nodes (--node needs --numa or --numa-nodes)");
		return err_set(-EINVAL, "cpu add: the guest has no NUMA node %d (it has 0-%u)", node,
			       vm->numa.n_nodes - 1);
	}
	pthread_mutex_lock(&vm->dev_lock);
	unsigned i = 0;
	while (i < vm->n_vcpus &&
	       (!atomic_load(&vm->vcpus[i]->absent) || (node >= 0 && vnuma_node_of_cpu(&vm->numa, i) != node)))
		i++;
	if (i < vm->n_vcpus) {
		/* Present before the guest hears of it: its INIT and SIPI
		 * then reach the vCPU. */
		atomic_store(&vm->vcpus[i]->absent, false);
		cpu_hotplug_insert(p->cpuhp, i);
	}
	pthread_mutex_unlock(&vm->dev_lock);
	if (i == vm->n_vcpus && node >= 0) {
		const struct numa_node *n = &vm->numa.nodes[node];
		return err_set(-ENOSPC, "every possible CPU of node %d is there already (%u-%u)", node, n->first_cpu,
			       n->first_cpu + n->n_cpus - 1);
	}
	if (i == vm->n_vcpus)
		return err_set(-ENOSPC, "every possible CPU is there already (%u; --max-cpus sets how many)", vm->n_vcpus);
	vcpu_signal(vm->vcpus[i], VCPU_EVT_KICK);
	*cpu = i;
	log_info("hotplug", "cpu%u plugged in", i);
	return 0;
}

int hotplug_cpu_remove(struct vm *vm, unsigned cpu)
{
	struct platform *p = vm->platform;
	if (!p || !p->cpuhp || !vm->cpu_hotplug)
		return err_set(-ENOTSUP, "this VM has no CPUs to remove (start it with --max-cpus N, more than --cpus)");
	if (cpu == 0)
		return err_set(-EINVAL, "cpu0 is the boot processor, which cannot go");
	if (cpu >= vm->n_vcpus)
		return err_set(-ENOENT, "no cpu%u (this VM has %u possible CPUs)", cpu, vm->n_vcpus);
	pthread_mutex_lock(&vm->dev_lock);
	bool here = !atomic_load(&vm->vcpus[cpu]->absent);
	if (here)
		cpu_hotplug_request_eject(p->cpuhp, cpu);
	pthread_mutex_unlock(&vm->dev_lock);
	if (!here)
		return err_set(-ENOENT, "cpu%u is not plugged in", cpu);
	return 0;
}

int hotplug_reap_cpu_ejects(struct vm *vm, void (*removed)(void *opaque, unsigned cpu), void *opaque)
{
	struct platform *p = vm->platform;
	if (!p || !p->cpuhp || !vm->cpu_hotplug)
		return 0;
	int n = 0;
	for (unsigned i = 1; i < vm->n_vcpus; i++) {
		pthread_mutex_lock(&vm->dev_lock);
		bool ejected = cpu_hotplug_take_eject(p->cpuhp, i);
		if (ejected)
			atomic_store(&vm->vcpus[i]->absent, true);
		pthread_mutex_unlock(&vm->dev_lock);
		if (!ejected)
			continue;
		/* The OS offlined it first: it waits in its dead loop, which it
		 * leaves for the absent wait. */
		vcpu_signal(vm->vcpus[i], VCPU_EVT_KICK);
		log_info("hotplug", "cpu%u unplugged", i);
		if (removed)
			removed(opaque, i);
		n++;
	}
	return n;
}

uint64_t hotplug_cpus_sync(struct vm *vm)
{
	struct platform *p = vm->platform;
	if (!p || !p->cpuhp)
		return 0;
	pthread_mutex_lock(&vm->dev_lock);
	uint64_t present = cpu_hotplug_present(p->cpuhp);
	pthread_mutex_unlock(&vm->dev_lock);
	uint64_t added = 0;
	unsigned boot = vm->cfg ? vm->cfg->cpus : vm->n_vcpus;
	for (unsigned i = 0; i < vm->n_vcpus && i < 64; i++) {
		bool here = (present >> i & 1) != 0;
		atomic_store(&vm->vcpus[i]->absent, !here);
		if (here && i >= boot)
			added |= 1ull << i;
	}
	return added;
}
