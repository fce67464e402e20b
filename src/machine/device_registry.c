/* Registry of device save/load functions used by the snapshot writer and
 * reader.  One per process (a process runs one VM), under a mutex since
 * devices come and go from the control thread while vCPUs run. */
#include "machine/device_registry.h"

#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 128

static struct {
	char name[SNAPSHOT_DEVICE_NAME_MAX];
	snapshot_save_fn save;
	snapshot_load_fn load;
	void *opaque;
} devices[MAX_DEVICES];
static unsigned n_devices;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int snapshot_register_device(const char *name, snapshot_save_fn save, snapshot_load_fn load, void *opaque)
{
	if (!name || !name[0] || strlen(name) >= SNAPSHOT_DEVICE_NAME_MAX)
		return err_set(-EINVAL, "snapshot: device name '%s' is empty or longer than %d", name ? name : "",
			       SNAPSHOT_DEVICE_NAME_MAX - 1);
	if (!save || !load)
		return err_set(-EINVAL, "snapshot: device %s: save and load are both needed", name);
	int rc = 0;
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < n_devices; i++)
		if (!strcmp(devices[i].name, name))
			rc = err_set(-EEXIST, "snapshot: a device named %s is already registered", name);
	if (!rc && n_devices == MAX_DEVICES)
		rc = err_set(-ENOSPC, "snapshot: more than %d devices", MAX_DEVICES);
	if (!rc) {
		strcpy(devices[n_devices].name, name);
		devices[n_devices].save = save;
		devices[n_devices].load = load;
		devices[n_devices].opaque = opaque;
		n_devices++;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int snapshot_unregister_device(const char *name)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < n_devices; i++) {
		if (!strcmp(devices[i].name, name)) {
			/* Keep registration order: the file lists devices in it. */
			memmove(&devices[i], &devices[i + 1], (n_devices - i - 1) * sizeof(devices[0]));
			n_devices--;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void snapshot_unregister_all(void)
{
	pthread_mutex_lock(&lock);
	n_devices = 0;
	pthread_mutex_unlock(&lock);
}

int snapshot_foreach_device(snapshot_device_visit_fn fn, void *arg)
{
	int rc = 0;
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < n_devices && !rc; i++)
		rc = fn(arg, devices[i].name, devices[i].save, devices[i].opaque);
	pthread_mutex_unlock(&lock);
	return rc;
}

int snapshot_find_device(const char *name, snapshot_load_fn *load, void **opaque)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < n_devices; i++) {
		if (!strcmp(devices[i].name, name)) {
			*load = devices[i].load;
			*opaque = devices[i].opaque;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	if (rc)
		err_set(rc, "snapshot: the snapshot holds device %s, which this VM does not have", name);
	return rc;
}

int snapshot_device_save(const char *name, snapshot_save_fn save, void *opaque, void **out, size_t *len)
{
	size_t cap = 4096;
	for (;;) {
		void *buf = malloc(cap);
		if (!buf)
			return err_set(-ENOMEM, "snapshot: device %s: out of memory", name);
		int64_t n = save(opaque, buf, cap);
		if (n >= 0 && (uint64_t)n <= cap) {
			*out = buf;
			*len = (size_t)n;
			return 0;
		}
		free(buf);
		if (n != -ENOSPC)
			return n < 0 ? err_wrap((int)n, "snapshot: device %s", name)
				     : err_set(-EIO, "snapshot: device %s wrote more than it was given", name);
		if (cap >= (256u << 20))
			return err_set(-E2BIG, "snapshot: device %s: state larger than 256 MiB", name);
		cap *= 4;
	}
}
