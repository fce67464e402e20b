/* Device plug-ins: loader, registry, and device instances on the buses. */
#include "vmm/plugin.h"

#include "machine/bus.h"
#include "machine/device_registry.h"
#include "util/error.h"
#include "util/log.h"
#include "machine/memory.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- search path ---- */

static unsigned add_dir(char **dirs, unsigned n, unsigned max, const char *dir)
{
	if (n < max && dir && dir[0])
		dirs[n++] = strdup(dir);
	return n;
}

unsigned plugin_search_dirs(const struct vm_config *cfg, char **dirs, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; cfg && i < cfg->n_plugin_dirs; i++)
		n = add_dir(dirs, n, max, cfg->plugin_dirs[i]);
	const char *env = getenv("VESSEL_PLUGIN_PATH");
	if (env) {
		char *copy = strdup(env), *save = NULL;
		for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok; tok = strtok_r(NULL, ":", &save))
			n = add_dir(dirs, n, max, tok);
		free(copy);
		return n;
	}
	/* XDG Base Directory Specification: $XDG_DATA_HOME, default
	 * $HOME/.local/share. */
	char buf[4096];
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	if (xdg && xdg[0] == '/') {
		snprintf(buf, sizeof(buf), "%s/vessel/plugins", xdg);
		n = add_dir(dirs, n, max, buf);
	} else if (home && home[0]) {
		snprintf(buf, sizeof(buf), "%s/.local/share/vessel/plugins", home);
		n = add_dir(dirs, n, max, buf);
	}
	return add_dir(dirs, n, max, "/usr/local/lib/vessel/plugins");
}

/* ---- registry ---- */

void plugin_registry_init(struct plugin_registry *reg)
{
	memset(reg, 0, sizeof(*reg));
}

void plugin_registry_free(struct plugin_registry *reg)
{
	for (unsigned i = 0; i < reg->n_libs; i++) {
		if (reg->libs[i].handle)
			dlclose(reg->libs[i].handle);
		free(reg->libs[i].path);
	}
	for (unsigned i = 0; i < reg->n_problems; i++) {
		free(reg->problems[i].path);
		free(reg->problems[i].message);
	}
	memset(reg, 0, sizeof(*reg));
}

static bool type_name_ok(const char *s)
{
	if (!s || !s[0] || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

static int parse_param_text(const struct vessel_param_spec *p, const char *text, int64_t *out)
{
	if (p->type == VESSEL_PARAM_BOOL) {
		if (!strcmp(text, "true") || !strcmp(text, "false")) {
			*out = !strcmp(text, "true");
			return 0;
		}
		return -1;
	}
	if (p->type == VESSEL_PARAM_INT) {
		char *end;
		errno = 0;
		long long v = strtoll(text, &end, 0);
		if (end == text || *end || errno || v < p->min || v > p->max)
			return -1;
		*out = v;
		return 0;
	}
	return 0;
}

static const struct vessel_param_spec *find_param(const struct vessel_device_type *t, const char *name, unsigned *idx)
{
	for (unsigned i = 0; i < t->n_params; i++) {
		if (t->params[i].name && !strcmp(t->params[i].name, name)) {
			if (idx)
				*idx = i;
			return &t->params[i];
		}
	}
	return NULL;
}

/* A descriptor is data from a file we do not trust to be well made: check
 * everything the host will later rely on, so that a bad plug-in fails at
 * load with a message rather than at run time. */
static int validate_type(const struct vessel_device_type *t, const char *path, unsigned idx)
{
	if (!t)
		return err_set(-ENOEXEC, "plug-in %s: device %u is NULL", path, idx);
	if (t->size < sizeof(struct vessel_device_type))
		return err_set(-ENOEXEC, "plug-in %s: device %u: descriptor of %u bytes is smaller than the %zu of ABI %d",
			       path, idx, t->size, sizeof(struct vessel_device_type), VESSEL_PLUGIN_ABI_VERSION);
	if (!type_name_ok(t->name))
		return err_set(-ENOEXEC, "plug-in %s: device %u: name '%s' is not 1 to 63 of a-z 0-9 -", path, idx,
			       t->name ? t->name : "(null)");
	if (!t->create || !t->destroy)
		return err_set(-ENOEXEC, "plug-in %s: device %s: create and destroy are required", path, t->name);
	if ((t->n_params && !t->params) || t->n_params > 64 || (t->n_resources && !t->resources) || t->n_resources > 16)
		return err_set(-ENOEXEC, "plug-in %s: device %s: bad parameter or resource list", path, t->name);
	if (!t->save != !t->load)
		return err_set(-ENOEXEC, "plug-in %s: device %s: save and load go together", path, t->name);
	for (unsigned i = 0; i < t->n_params; i++) {
		const struct vessel_param_spec *p = &t->params[i];
		if (!p->name || !p->name[0])
			return err_set(-ENOEXEC, "plug-in %s: device %s: parameter %u has no name", path, t->name, i);
		if (p->type != VESSEL_PARAM_BOOL && p->type != VESSEL_PARAM_INT && p->type != VESSEL_PARAM_STRING)
			return err_set(-ENOEXEC, "plug-in %s: device %s: parameter %s has unknown type %d", path, t->name,
				       p->name, (int)p->type);
		int64_t v;
		if (p->default_value && parse_param_text(p, p->default_value, &v) < 0)
			return err_set(-ENOEXEC, "plug-in %s: device %s: parameter %s: default '%s' does not fit its type",
				       path, t->name, p->name, p->default_value);
	}
	for (unsigned i = 0; i < t->n_resources; i++) {
		const struct vessel_resource_spec *r = &t->resources[i];
		if (r->kind < VESSEL_RES_PIO || r->kind > VESSEL_RES_PCI || !r->name)
			return err_set(-ENOEXEC, "plug-in %s: device %s: resource %u is malformed", path, t->name, i);
		if ((r->kind == VESSEL_RES_PIO || r->kind == VESSEL_RES_MMIO) && (r->len == 0 || r->len > (1ULL << 32)))
			return err_set(-ENOEXEC, "plug-in %s: device %s: resource %s has length %" PRIu64, path, t->name,
				       r->name, r->len);
		if (r->base_param) {
			const struct vessel_param_spec *p = find_param(t, r->base_param, NULL);
			if (!p || p->type != VESSEL_PARAM_INT)
				return err_set(-ENOEXEC, "plug-in %s: device %s: resource %s: base parameter %s is not an "
					       "integer parameter", path, t->name, r->name, r->base_param);
		}
	}
	return 0;
}

int plugin_validate_descriptor(const struct vessel_plugin *d, const char *path)
{
	if (d->magic != VESSEL_PLUGIN_MAGIC)
		return err_set(-ENOEXEC, "plug-in %s: bad descriptor magic %#x (not a vessel plug-in)", path, d->magic);
	if (d->abi_version != VESSEL_PLUGIN_ABI_VERSION)
		return err_set(-ENOEXEC, "plug-in %s: built for plug-in ABI version %u, but this vessel has version %d "
			       "(rebuild it against this vessel's <vessel/plugin.h>)", path, d->abi_version,
			       VESSEL_PLUGIN_ABI_VERSION);
	if (d->size < sizeof(struct vessel_plugin))
		return err_set(-ENOEXEC, "plug-in %s: descriptor of %u bytes is smaller than the %zu of ABI %d", path,
			       d->size, sizeof(struct vessel_plugin), VESSEL_PLUGIN_ABI_VERSION);
	if (!d->name || !d->name[0] || (d->n_devices && !d->devices) || d->n_devices > 64)
		return err_set(-ENOEXEC, "plug-in %s: descriptor has no name or a bad device list", path);
	for (unsigned i = 0; i < d->n_devices; i++) {
		int rc = validate_type(d->devices[i], path, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

const struct vessel_device_type *plugin_registry_find(const struct plugin_registry *reg, const char *type,
						      const struct plugin_lib **lib)
{
	for (unsigned i = 0; i < reg->n_libs; i++) {
		const struct vessel_plugin *d = reg->libs[i].desc;
		for (unsigned j = 0; j < d->n_devices; j++) {
			if (!strcmp(d->devices[j]->name, type)) {
				if (lib)
					*lib = &reg->libs[i];
				return d->devices[j];
			}
		}
	}
	return NULL;
}

int plugin_registry_load(struct plugin_registry *reg, const char *path)
{
	if (reg->n_libs == PLUGIN_MAX_LIBS)
		return err_set(-ENOSPC, "plug-in %s: more than %d plug-ins", path, PLUGIN_MAX_LIBS);
	/* RTLD_LOCAL: plug-ins cannot see each other's symbols, and
	 * RTLD_NOW: an unresolved symbol fails here, not in the middle of a
	 * guest access. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return err_set(-ENOEXEC, "plug-in %s: cannot load: %s", path, dlerror());
	const struct vessel_plugin *d = dlsym(h, VESSEL_PLUGIN_SYMBOL);
	int rc;
	if (!d) {
		rc = err_set(-ENOEXEC, "plug-in %s: no %s symbol (not a vessel plug-in)", path, VESSEL_PLUGIN_SYMBOL);
		goto fail;
	}
	if ((rc = plugin_validate_descriptor(d, path)) < 0)
		goto fail;
	for (unsigned j = 0; j < d->n_devices; j++) {
		const struct plugin_lib *other;
		if (plugin_registry_find(reg, d->devices[j]->name, &other)) {
			rc = err_set(-EEXIST, "plug-in %s: device type %s is already provided by %s", path,
				     d->devices[j]->name, other->path);
			goto fail;
		}
	}
	struct plugin_lib *lib = &reg->libs[reg->n_libs];
	lib->path = strdup(path);
	lib->handle = h;
	lib->desc = d;
	reg->n_libs++;
	log_debug("plugin", "loaded %s (%s %s, %u device types)", path, d->name, d->version ? d->version : "",
		  d->n_devices);
	return 0;
fail:
	dlclose(h);
	return rc;
}

int plugin_registry_add_builtin(struct plugin_registry *reg, const struct vessel_plugin *d)
{
	if (reg->n_libs == PLUGIN_MAX_LIBS)
		return err_set(-ENOSPC, "plug-in %s: more than %d plug-ins", d->name, PLUGIN_MAX_LIBS);
	int rc = plugin_validate_descriptor(d, "(built-in)");
	if (rc < 0)
		return rc;
	for (unsigned j = 0; j < d->n_devices; j++) {
		const struct plugin_lib *other;
		if (plugin_registry_find(reg, d->devices[j]->name, &other))
			return err_set(-EEXIST, "built-in device type %s is already provided by %s", d->devices[j]->name,
				       other->path);
	}
	struct plugin_lib *lib = &reg->libs[reg->n_libs];
	lib->path = strdup("(built-in)");
	lib->handle = NULL;
	lib->desc = d;
	reg->n_libs++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int plugin_registry_scan(struct plugin_registry *reg, char *const *dirs, unsigned n_dirs)
{
	int loaded = 0;
	for (unsigned i = 0; i < n_dirs; i++) {
		DIR *dir = opendir(dirs[i]);
		if (!dir)
			continue;
		char *names[256];
		unsigned n = 0;
		struct dirent *e;
		while ((e = readdir(dir)) && n < 256) {
			size_t l = strlen(e->d_name);
			if (l > 3 && !strcmp(e->d_name + l - 3, ".so"))
				names[n++] = strdup(e->d_name);
		}
		closedir(dir);
		/* Sorted, so that which of two plug-ins providing one type wins
		 * does not depend on directory order. */
		qsort(names, n, sizeof(names[0]), cmp_str);
		for (unsigned j = 0; j < n; j++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", dirs[i], names[j]);
			free(names[j]);
			struct stat st;
			if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			if (plugin_registry_load(reg, path) == 0) {
				loaded++;
			} else if (reg->n_problems < PLUGIN_MAX_LIBS) {
				log_warn("plugin", "%s", err_msg());
				reg->problems[reg->n_problems].path = strdup(path);
				reg->problems[reg->n_problems].message = strdup(err_msg());
				reg->n_problems++;
			}
		}
	}
	return loaded;
}

/* ---- device instances ---- */

struct range_ctx {
	struct plugin_device *dev;
	uint32_t res;
};

struct plugin_device {
	struct plugin_devices *set;
	char *id, *type_name, *params_json;
	const struct vessel_device_type *type;
	const struct plugin_lib *lib;
	void *dev;
	struct vessel_host host;
	union vessel_param_value *values;
	char **strings;                 /* owned copies of string values */
	uint64_t bases[16];
	struct range_ctx ranges[16];
	bool registered[16];
	bool snapshot_registered;
};

static void host_log(void *ctx, enum vessel_log_level level, const char *message)
{
	struct plugin_device *d = ctx;
	enum log_level l = level == VESSEL_LOG_ERROR ? LOG_ERROR : level == VESSEL_LOG_WARN ? LOG_WARN
			 : level == VESSEL_LOG_INFO ? LOG_INFO : LOG_DEBUG;
	LOG(l, d->id, "%s", message ? message : "");
}

/* Depth of device callbacks on this thread, all of which run with the
 * device lock held: a device may also raise its IRQ from create() or from
 * a thread of its own, and the interrupt controllers need the lock. */
static _Thread_local int in_callback;

static int host_irq_set(void *ctx, unsigned res, int level)
{
	struct plugin_device *d = ctx;
	if (res >= d->type->n_resources || d->type->resources[res].kind != VESSEL_RES_IRQ)
		return -EINVAL;
	if (!d->set->env.irq_set)
		return -ENODEV;
	if (in_callback)
		return d->set->env.irq_set(d->set->env.irq_opaque, (unsigned)d->bases[res], level ? 1 : 0);
	pthread_mutex_lock(d->set->env.dev_lock);
	int rc = d->set->env.irq_set(d->set->env.irq_opaque, (unsigned)d->bases[res], level ? 1 : 0);
	pthread_mutex_unlock(d->set->env.dev_lock);
	return rc;
}

static int host_mem_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct plugin_device *d = ctx;
	return d->set->env.mem ? gmem_read(d->set->env.mem, gpa, buf, len) : -EFAULT;
}

static int host_mem_write(void *ctx, uint64_t gpa, const void *buf, size_t len)
{
	struct plugin_device *d = ctx;
	return d->set->env.mem ? gmem_write(d->set->env.mem, gpa, buf, len) : -EFAULT;
}

static uint64_t host_resource_base(void *ctx, unsigned res)
{
	struct plugin_device *d = ctx;
	return res < d->type->n_resources ? d->bases[res] : UINT64_MAX;
}

static uint64_t range_read(void *opaque, uint64_t off, unsigned size)
{
	struct range_ctx *r = opaque;
	const struct vessel_device_type *t = r->dev->type;
	in_callback++;
	uint64_t v = t->read ? t->read(r->dev->dev, r->res, off, size) : ~0ULL;
	in_callback--;
	return v;
}

static void range_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct range_ctx *r = opaque;
	const struct vessel_device_type *t = r->dev->type;
	in_callback++;
	if (t->write)
		t->write(r->dev->dev, r->res, off, size, val);
	in_callback--;
}

static const struct bus_ops plugin_bus_ops = { .read = range_read, .write = range_write };

static int64_t snap_save(void *opaque, void *buf, size_t cap)
{
	struct plugin_device *d = opaque;
	/* The snapshot code calls save and load under the device lock. */
	in_callback++;
	int64_t n = d->type->save(d->dev, buf, cap);
	in_callback--;
	return n;
}

static int snap_load(void *opaque, const void *buf, size_t len)
{
	struct plugin_device *d = opaque;
	in_callback++;
	int rc = d->type->load(d->dev, buf, len);
	in_callback--;
	if (rc < 0)
		return err_set(rc, "device %s refused its saved state (%s)", d->id, strerror(-rc));
	return 0;
}

static void device_free(struct plugin_device *d)
{
	if (!d)
		return;
	if (d->strings)
		for (unsigned i = 0; i < d->type->n_params; i++)
			free(d->strings[i]);
	free(d->strings);
	free(d->values);
	free(d->id);
	free(d->type_name);
	free(d->params_json);
	free(d);
}

/* Params JSON against the type's specification: unknown names, wrong
 * types, out-of-range integers and missing required ones are refused
 * with the parameter named. */
static int device_parse_params(struct plugin_device *d, const char *json_text)
{
	const struct vessel_device_type *t = d->type;
	json_error_t jerr;
	json_t *obj = json_loads(json_text ? json_text : "{}", 0, &jerr);
	if (!obj || !json_is_object(obj)) {
		json_decref(obj);
		return err_set(-EINVAL, "device %s: params: not a JSON object", d->id);
	}
	int rc = 0;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (!find_param(t, key, NULL)) {
			char list[256] = "";
			for (unsigned i = 0; i < t->n_params; i++) {
				size_t l = strlen(list);
				snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", t->params[i].name);
			}
			rc = err_set(-EINVAL, "device %s: params.%s: unknown parameter of %s (expected %s%s)", d->id, key,
				     t->name, t->n_params ? "one of " : "none", list);
			goto out;
		}
	}
	json_t *eff = json_object();
	for (unsigned i = 0; i < t->n_params && !rc; i++) {
		const struct vessel_param_spec *p = &t->params[i];
		v = json_object_get(obj, p->name);
		if (!v && !p->default_value) {
			rc = err_set(-EINVAL, "device %s: params.%s: missing (required by %s)", d->id, p->name, t->name);
			break;
		}
		char *vtext = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
		switch (p->type) {
		case VESSEL_PARAM_BOOL:
			if (v && !json_is_boolean(v))
				rc = err_set(-EINVAL, "device %s: params.%s: %s is not a boolean (expected true or false)",
					     d->id, p->name, vtext);
			else
				d->values[i].i = v ? json_is_true(v) : !strcmp(p->default_value, "true");
			json_object_set_new(eff, p->name, json_boolean(d->values[i].i));
			break;
		case VESSEL_PARAM_INT:
			if (v && (!json_is_integer(v) || json_integer_value(v) < p->min || json_integer_value(v) > p->max))
				rc = err_set(-EINVAL, "device %s: params.%s: %s is not an integer from %" PRId64 " to %" PRId64,
					     d->id, p->name, vtext, p->min, p->max);
			else if (v)
				d->values[i].i = json_integer_value(v);
			else
				parse_param_text(p, p->default_value, &d->values[i].i);
			json_object_set_new(eff, p->name, json_integer(d->values[i].i));
			break;
		case VESSEL_PARAM_STRING:
			if (v && !json_is_string(v)) {
				rc = err_set(-EINVAL, "device %s: params.%s: %s is not a string", d->id, p->name, vtext);
			} else {
				d->strings[i] = strdup(v ? json_string_value(v) : p->default_value);
				d->values[i].s = d->strings[i];
				json_object_set_new(eff, p->name, json_string(d->strings[i] ? d->strings[i] : ""));
			}
			break;
		}
		free(vtext);
	}
	if (!rc)
		d->params_json = json_dumps(eff, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(eff);
out:
	json_decref(obj);
	return rc;
}

static int device_place_resources(struct plugin_device *d)
{
	const struct vessel_device_type *t = d->type;
	for (unsigned i = 0; i < t->n_resources; i++) {
		const struct vessel_resource_spec *r = &t->resources[i];
		uint64_t base = r->base;
		unsigned pi;
		if (r->base_param && find_param(t, r->base_param, &pi))
			base = (uint64_t)d->values[pi].i;
		d->bases[i] = base;
		switch (r->kind) {
		case VESSEL_RES_PIO:
			if (base > 0xffff || r->len > 0x10000 - base)
				return err_set(-EINVAL, "device %s: %s: ports %#" PRIx64 "+%#" PRIx64 " are outside 0 to 0xffff",
					       d->id, r->name, base, r->len);
			break;
		case VESSEL_RES_MMIO:
			if (base + r->len < base)
				return err_set(-EINVAL, "device %s: %s: %#" PRIx64 "+%#" PRIx64 " wraps around", d->id,
					       r->name, base, r->len);
			/* Any overlap with RAM: the guest would reach RAM there,
			 * never the device. */
			for (unsigned k = 0; d->set->env.mem && k < d->set->env.mem->n_regions; k++) {
				const struct gmem_region *g = &d->set->env.mem->regions[k];
				if (base < g->gpa + g->size && g->gpa < base + r->len)
					return err_set(-EINVAL, "device %s: %s: %#" PRIx64 " is guest RAM, not MMIO space",
						       d->id, r->name, base < g->gpa ? g->gpa : base);
			}
			break;
		case VESSEL_RES_IRQ:
			if (base > 23)
				return err_set(-EINVAL, "device %s: %s: IRQ line %" PRIu64 " is not 0 to 23 (I/O APIC inputs)",
					       d->id, r->name, base);
			break;
		case VESSEL_RES_PCI:
			return err_set(-ENOTSUP, "device %s: %s: PCI functions for plug-in devices are not supported yet",
				       d->id, r->name);
		}
	}
	return 0;
}

static void device_unregister(struct plugin_device *d)
{
	pthread_mutex_lock(d->set->env.dev_lock);
	for (unsigned i = 0; i < d->type->n_resources; i++) {
		if (!d->registered[i])
			continue;
		struct bus *bus = d->type->resources[i].kind == VESSEL_RES_PIO ? d->set->env.pio : d->set->env.mmio;
		bus_unregister(bus, d->bases[i], &d->ranges[i]);
		d->registered[i] = false;
	}
	pthread_mutex_unlock(d->set->env.dev_lock);
}

static int device_register(struct plugin_device *d)
{
	int rc = 0;
	pthread_mutex_lock(d->set->env.dev_lock);
	for (unsigned i = 0; i < d->type->n_resources && !rc; i++) {
		const struct vessel_resource_spec *r = &d->type->resources[i];
		if (r->kind != VESSEL_RES_PIO && r->kind != VESSEL_RES_MMIO)
			continue;
		struct bus *bus = r->kind == VESSEL_RES_PIO ? d->set->env.pio : d->set->env.mmio;
		if (!bus) {
			rc = err_set(-ENODEV, "device %s: this VM has no %s bus", d->id, r->kind == VESSEL_RES_PIO ? "pio" : "mmio");
			break;
		}
		d->ranges[i] = (struct range_ctx){ .dev = d, .res = i };
		rc = bus_register(bus, d->bases[i], r->len, &plugin_bus_ops, &d->ranges[i], d->id);
		if (rc < 0)
			err_wrap(rc, "device %s", d->id);
		else
			d->registered[i] = true;
	}
	pthread_mutex_unlock(d->set->env.dev_lock);
	if (rc)
		device_unregister(d);
	return rc;
}

void plugin_devices_init(struct plugin_devices *set, struct plugin_registry *reg, const struct plugin_env *env)
{
	memset(set, 0, sizeof(*set));
	set->reg = reg;
	set->env = *env;
}

static int find_index(const struct plugin_devices *set, const char *id)
{
	for (unsigned i = 0; i < set->n; i++)
		if (!strcmp(set->list[i]->id, id))
			return (int)i;
	return -1;
}

int plugin_devices_add(struct plugin_devices *set, const struct vm_device_config *cfg)
{
	if (find_index(set, cfg->id) >= 0)
		return err_set(-EEXIST, "device %s: a device with this id exists", cfg->id);
	if (set->n == VM_MAX_DEVICES)
		return err_set(-ENOSPC, "device %s: at most %d devices", cfg->id, VM_MAX_DEVICES);
	const struct plugin_lib *lib = NULL;
	const struct vessel_device_type *t = set->reg ? plugin_registry_find(set->reg, cfg->type, &lib) : NULL;
	if (!t)
		return err_set(-ENOENT, "device %s: no device type '%s' (see `vessel plugin list`)", cfg->id, cfg->type);
	struct plugin_device *d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(-ENOMEM, "device %s: out of memory", cfg->id);
	d->set = set;
	d->type = t;
	d->lib = lib;
	d->id = strdup(cfg->id);
	d->type_name = strdup(cfg->type);
	d->values = calloc(t->n_params + 1, sizeof(*d->values));
	d->strings = calloc(t->n_params + 1, sizeof(*d->strings));
	int rc;
	if (!d->id || !d->type_name || !d->values || !d->strings) {
		rc = err_set(-ENOMEM, "device %s: out of memory", cfg->id);
		goto fail;
	}
	if ((rc = device_parse_params(d, cfg->params)) < 0 || (rc = device_place_resources(d)) < 0)
		goto fail;
	d->host = (struct vessel_host){
		.size = sizeof(struct vessel_host), .abi_version = VESSEL_PLUGIN_ABI_VERSION, .ctx = d,
		.log = host_log, .irq_set = host_irq_set, .mem_read = host_mem_read, .mem_write = host_mem_write,
		.resource_base = host_resource_base,
	};
	rc = t->create(&d->host, d->values, &d->dev);
	if (rc < 0) {
		rc = err_set(rc, "device %s: %s refused to start (%s)", cfg->id, t->name, strerror(-rc));
		goto fail;
	}
	if ((rc = device_register(d)) < 0)
		goto fail_destroy;
	if (t->save) {
		if ((rc = snapshot_register_device(d->id, snap_save, snap_load, d)) < 0) {
			device_unregister(d);
			goto fail_destroy;
		}
		d->snapshot_registered = true;
	}
	set->list[set->n++] = d;
	log_info("plugin", "device %s (%s from %s) added: %s", d->id, t->name, lib->desc->name, d->params_json);
	return 0;
fail_destroy:
	t->destroy(d->dev);
fail:
	device_free(d);
	return rc;
}

int plugin_devices_remove(struct plugin_devices *set, const char *id)
{
	int i = find_index(set, id);
	if (i < 0)
		return err_set(-ENOENT, "device %s: no device with this id", id);
	struct plugin_device *d = set->list[i];
	memmove(&set->list[i], &set->list[i + 1], (set->n - (unsigned)i - 1) * sizeof(set->list[0]));
	set->n--;
	if (d->snapshot_registered)
		snapshot_unregister_device(d->id);
	/* Unregistering takes the device lock, so no vCPU is inside a
	 * callback of d once it returns and none will enter one. */
	device_unregister(d);
	d->type->destroy(d->dev);
	log_info("plugin", "device %s removed", id);
	device_free(d);
	return 0;
}

void plugin_devices_destroy(struct plugin_devices *set)
{
	while (set->n)
		plugin_devices_remove(set, set->list[set->n - 1]->id);
}

int plugin_devices_info(const struct plugin_devices *set, unsigned i, struct plugin_device_info *info)
{
	if (i >= set->n)
		return -ENOENT;
	const struct plugin_device *d = set->list[i];
	*info = (struct plugin_device_info){
		.id = d->id, .type = d->type_name, .plugin = d->lib ? d->lib->desc->name : NULL,
		.params = d->params_json, .n_resources = d->type->n_resources, .specs = d->type->resources,
		.bases = d->bases,
	};
	return 0;
}

void plugin_devices_reset(struct plugin_devices *set)
{
	pthread_mutex_lock(set->env.dev_lock);
	in_callback++;
	for (unsigned i = 0; i < set->n; i++)
		if (set->list[i]->type->reset)
			set->list[i]->type->reset(set->list[i]->dev);
	in_callback--;
	pthread_mutex_unlock(set->env.dev_lock);
}
