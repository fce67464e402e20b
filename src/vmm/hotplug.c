/* PCI hot-plug of virtio functions (docs/hotplug.md). */
#include "vmm/hotplug.h"

#include "board/pc.h"
#include "hw/pci.h"
#include "hw/pci_hotplug.h"
#include "util/error.h"
#include "util/log.h"
#include "vmm/pc_virtio.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOTPLUG_POLL_MS 10

bool hotplug_type_known(const char *type) { return pc_virtio_type_known(type); }

struct hotplug_params {
	struct vm_disk_config disk;
	unsigned slot;          /* 0: the first free one */
};

static void hotplug_params_free(struct hotplug_params *hp)
{
	free(hp->disk.path);
	free(hp->disk.format);
	free(hp->disk.key_file);
	free(hp->disk.serial);
	memset(hp, 0, sizeof(*hp));
}

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

/* params of a virtio device: "slot" for all; "path", "format",
 * "readonly", "key_file" and "serial" for a disk, as a manifest's disks. */
static int hotplug_parse(const struct vm_device_config *dev, struct hotplug_params *out)
{
	memset(out, 0, sizeof(*out));
	json_error_t e;
	json_t *p = json_loads(dev->params ? dev->params : "{}", 0, &e);
	if (!json_is_object(p)) {
		json_decref(p);
		return err_set(-EINVAL, "device %s: params: not a JSON object", dev->id);
	}
	bool disk = !strcmp(dev->type, "virtio-blk");
	static const char *const disk_keys[] = { "slot", "path", "format", "readonly", "key_file", "serial", NULL };
	const char *key;
	json_t *v;
	int rc = 0;
	json_object_foreach(p, key, v) {
		bool ok = false;
		for (unsigned i = 0; disk_keys[i] && !ok; i++)
			ok = !strcmp(key, disk_keys[i]) && (disk || i == 0);
		if (!ok) {
			rc = err_set(-EINVAL, "device %s: params.%s: unknown for %s (expected %s)", dev->id, key, dev->type,
				     disk ? "path, format, readonly, key_file, serial or slot" : "slot");
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

/* dev's params with "slot" set. */
static char *params_with_slot(const char *params, unsigned slot)
{
	json_t *p = json_loads(params ? params : "{}", 0, NULL);
	if (!json_is_object(p)) {
		json_decref(p);
		return NULL;
	}
	json_object_set_new(p, "slot", json_integer(slot));
	char *s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(p);
	return s;
}

int hotplug_add(struct vm *vm, const struct vm_device_config *dev, bool notify, char **params_out)
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
	if (rc == 0 && (rc = pc_virtio_plug(vm, p, dev->type, dev->id, &hp.disk, slot)) < 0)
		err_wrap(rc, "device %s", dev->id);
	if (rc == 0 && !(*params_out = params_with_slot(dev->params, slot))) {
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

int hotplug_slot(struct vm *vm, const char *id)
{
	if (!vm->platform)
		return -ENOENT;
	pthread_mutex_lock(&vm->dev_lock);
	int slot = pc_virtio_slot(vm->platform, id);
	pthread_mutex_unlock(&vm->dev_lock);
	return slot;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hotplug_remove(struct vm *vm, const char *id, bool force, unsigned timeout_ms)
{
	struct platform *p = vm->platform;
	if (!p || !p->pcihp)
		return err_set(-ENOENT, "no device %s", id);
	pthread_mutex_lock(&vm->dev_lock);
	int slot = pc_virtio_slot(p, id);
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
		pthread_mutex_unlock(&vm->dev_lock);
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
	pthread_mutex_lock(&vm->dev_lock);
	/* Under the lock no request of the device is in flight; its destroy
	 * completes the disk's writes, flushes them and closes the image. */
	pc_virtio_unplug(p, id);
	pci_hotplug_forget(p->pcihp, (unsigned)slot);
	/* Surprise removal: the guest checks the bus and finds the slot empty. */
	if (force && !stopping)
		pci_hotplug_device_gone(p->pcihp, (unsigned)slot);
	pthread_mutex_unlock(&vm->dev_lock);
	log_info("hotplug", "%s left PCI slot %d%s", id, slot, force ? " (forced)" : "");
	return 0;
}
