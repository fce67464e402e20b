/* Device plug-ins: loader, registry, and device instances on the buses. */
#include "vmm/plugin.h"

#include "hw/pci_func.h"
#include "machine/bus.h"
#include "machine/device_registry.h"
#include "util/error.h"
#include "util/log.h"
#include "machine/memory.h"
#include "vmm/plugin_loader.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- registry ---- */

void plugin_registry_init(struct plugin_registry *reg)
{
	memset(reg, 0, sizeof(*reg));
}

void plugin_registry_free(struct plugin_registry *reg)
{
	for (unsigned i = 0; i < reg->n_libs; i++) {
		plugin_lib_close(reg->libs[i].handle);
		free(reg->libs[i].path);
	}
	for (unsigned i = 0; i < reg->n_files; i++) {
		free(reg->files[i].path);
		json_decref(reg->files[i].desc);
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

/* The PCI function a VESSEL_RES_PCI resource describes, as the hw layer
 * takes it (callbacks left to the caller).  -EINVAL, naming the field,
 * for what pci_func_check() cannot see: the BAR count and flags. */
static int pci_desc_from_spec(const struct vessel_pci_function *p, struct pci_func_desc *out, const char *what)
{
	memset(out, 0, sizeof(*out));
	if (p->n_bars > VESSEL_PCI_MAX_BARS)
		return err_set(-EINVAL, "%s.n_bars %u is more than the %d BARs of a PCI function", what, p->n_bars,
			       VESSEL_PCI_MAX_BARS);
	if (p->n_bars && !p->bars)
		return err_set(-EINVAL, "%s.bars is NULL for %u BARs", what, p->n_bars);
	for (unsigned i = 0; i < p->n_bars; i++) {
		uint32_t f = p->bars[i].flags;
		if (f & ~(VESSEL_PCI_BAR_IO | VESSEL_PCI_BAR_PREFETCH))
			return err_set(-EINVAL, "%s.bars[%u].flags %#x has unknown bits", what, i, f);
		out->bars[i] = (struct pci_func_bar){ .size = p->bars[i].size, .io = f & VESSEL_PCI_BAR_IO,
						      .prefetch = f & VESSEL_PCI_BAR_PREFETCH };
	}
	out->vendor = p->vendor_id;
	out->device = p->device_id;
	out->subsys_vendor = p->subsystem_vendor_id;
	out->subsys = p->subsystem_id;
	out->class_code = p->class_code;
	out->revision = p->revision;
	out->irq_pin = p->interrupt_pin;
	out->msi_vectors = p->msi_vectors;
	return pci_func_check(out, what);
}

static int validate_pci(const struct vessel_device_type *t, const struct vessel_resource_spec *r, const char *path,
			unsigned *n_pci)
{
	if (++*n_pci > 1)
		return err_set(-ENOEXEC, "plug-in %s: device %s: resource %s: a device has at most one PCI function", path,
			       t->name, r->name);
	if (!r->pci)
		return err_set(-ENOEXEC, "plug-in %s: device %s: resource %s: pci is NULL (a PCI resource needs its "
			       "function's description)", path, t->name, r->name);
	if (r->base >= PCI_MAX_DEVICES)
		return err_set(-ENOEXEC, "plug-in %s: device %s: resource %s: base %" PRIu64 " is not a PCI slot (0 for "
			       "the first free one, or 1 to %d)", path, t->name, r->name, r->base, PCI_MAX_DEVICES - 1);
	char what[160];
	snprintf(what, sizeof(what), "plug-in %s: device %s: resource %s: pci", path, t->name, r->name);
	struct pci_func_desc desc;
	if (pci_desc_from_spec(r->pci, &desc, what) < 0)
		return -ENOEXEC;
	return 0;
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
	unsigned n_pci = 0;
	for (unsigned i = 0; i < t->n_resources; i++) {
		const struct vessel_resource_spec *r = &t->resources[i];
		if (r->kind < VESSEL_RES_PIO || r->kind > VESSEL_RES_PCI || !r->name)
			return err_set(-ENOEXEC, "plug-in %s: device %s: resource %u is malformed", path, t->name, i);
		if ((r->kind == VESSEL_RES_PIO || r->kind == VESSEL_RES_MMIO) && (r->len == 0 || r->len > (1ULL << 32)))
			return err_set(-ENOEXEC, "plug-in %s: device %s: resource %s has length %" PRIu64, path, t->name,
				       r->name, r->len);
		if (r->kind == VESSEL_RES_PCI) {
			int rc = validate_pci(t, r, path, &n_pci);
			if (rc < 0)
				return rc;
		}
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
	int rc = plugin_check_abi("plug-in", path, "plug-in ABI", "vessel/plugin.h", -ENOEXEC, d->abi_version,
				  VESSEL_PLUGIN_ABI_VERSION, d->size, sizeof(struct vessel_plugin));
	if (rc < 0)
		return rc;
	if (!d->name || !d->name[0] || (d->n_devices && !d->devices) || d->n_devices > 64)
		return err_set(-ENOEXEC, "plug-in %s: descriptor has no name or a bad device list", path);
	for (unsigned i = 0; i < d->n_devices; i++) {
		if ((rc = validate_type(d->devices[i], path, i)) < 0)
			return rc;
	}
	return 0;
}

static const struct vessel_device_type *find_loaded(const struct plugin_registry *reg, const char *type,
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

/* The probed (not loaded) file whose descriptor lists `type`. */
static const struct plugin_file *find_probed(const struct plugin_registry *reg, const char *type)
{
	for (unsigned i = 0; i < reg->n_files; i++) {
		size_t k;
		json_t *t;
		json_array_foreach(json_object_get(reg->files[i].desc, "devices"), k, t) {
			if (!strcmp(json_string_value(json_object_get(t, "name")) ?: "", type))
				return &reg->files[i];
		}
	}
	return NULL;
}

static bool lib_loaded(const struct plugin_registry *reg, const char *path)
{
	for (unsigned i = 0; i < reg->n_libs; i++)
		if (reg->libs[i].handle && !strcmp(reg->libs[i].path, path))
			return true;
	return false;
}

int plugin_registry_get(struct plugin_registry *reg, const char *type, const struct vessel_device_type **t,
			const struct plugin_lib **lib)
{
	if ((*t = find_loaded(reg, type, lib)))
		return 0;
	const struct plugin_file *f = find_probed(reg, type);
	if (!f || lib_loaded(reg, f->path))
		return err_set(-ENOENT, "no device type '%s' (see `vessel plugin list`)", type);
	/* Loaded only now that a device of it is asked for. */
	int rc = plugin_registry_load(reg, f->path);
	if (rc < 0)
		return rc;
	if (!(*t = find_loaded(reg, type, lib)))
		return err_set(-ENOENT, "no device type '%s': %s no longer provides it", type, f->path);
	return 0;
}

const struct vessel_device_type *plugin_registry_find(struct plugin_registry *reg, const char *type,
						      const struct plugin_lib **lib)
{
	const struct vessel_device_type *t;
	return plugin_registry_get(reg, type, &t, lib) == 0 ? t : NULL;
}

int plugin_registry_load(struct plugin_registry *reg, const char *path)
{
	if (reg->n_libs == PLUGIN_MAX_LIBS)
		return err_set(-ENOSPC, "plug-in %s: more than %d plug-ins", path, PLUGIN_MAX_LIBS);
	void *h;
	const void *sym;
	int rc = plugin_lib_open(path, "plug-in", VESSEL_PLUGIN_SYMBOL, &h, &sym);
	if (rc < 0)
		return rc;
	const struct vessel_plugin *d = sym;
	if ((rc = plugin_validate_descriptor(d, path)) < 0)
		goto fail;
	for (unsigned j = 0; j < d->n_devices; j++) {
		const struct plugin_lib *other;
		if (find_loaded(reg, d->devices[j]->name, &other)) {
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
	plugin_lib_close(h);
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
		if (find_loaded(reg, d->devices[j]->name, &other))
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

static const char *const param_type_names[] = { [VESSEL_PARAM_BOOL] = "bool", [VESSEL_PARAM_INT] = "int",
						[VESSEL_PARAM_STRING] = "string" };
static const char *const res_kind_names[] = { [VESSEL_RES_PIO] = "pio", [VESSEL_RES_MMIO] = "mmio",
					      [VESSEL_RES_IRQ] = "irq", [VESSEL_RES_PCI] = "pci" };

/* A checked PCI function description: IDs, class, revision, pin, MSI
 * vectors and the BARs ({size, kind: "mem", "mem-prefetch" or "io"}). */
static json_t *pci_function_to_json(const struct vessel_pci_function *p)
{
	json_t *bars = json_array();
	for (unsigned i = 0; i < p->n_bars; i++) {
		uint32_t f = p->bars[i].flags;
		json_array_append_new(bars, json_pack("{s:I, s:s}", "size", (json_int_t)p->bars[i].size, "kind",
						      f & VESSEL_PCI_BAR_IO ? "io"
						      : f & VESSEL_PCI_BAR_PREFETCH ? "mem-prefetch" : "mem"));
	}
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o}", "vendor_id", p->vendor_id, "device_id",
			 p->device_id, "subsystem_vendor_id", p->subsystem_vendor_id, "subsystem_id", p->subsystem_id,
			 "class_code", (int)p->class_code, "revision", p->revision, "interrupt_pin", p->interrupt_pin,
			 "msi_vectors", p->msi_vectors, "bars", bars);
}

json_t *plugin_descriptor_to_json(const struct vessel_plugin *d)
{
	json_t *devs = json_array();
	for (unsigned i = 0; i < d->n_devices; i++) {
		const struct vessel_device_type *t = d->devices[i];
		json_t *params = json_array(), *res = json_array();
		for (unsigned k = 0; k < t->n_params; k++) {
			const struct vessel_param_spec *p = &t->params[k];
			json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I}", "name", p->name, "type",
								param_type_names[p->type], "description",
								p->description ? p->description : "", "default",
								p->default_value, "min", (json_int_t)p->min, "max",
								(json_int_t)p->max));
		}
		for (unsigned k = 0; k < t->n_resources; k++) {
			const struct vessel_resource_spec *r = &t->resources[k];
			json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s?}", "kind", res_kind_names[r->kind], "name", r->name,
					      "base", (json_int_t)r->base, "len", (json_int_t)r->len, "base_param",
					      r->base_param);
			if (r->kind == VESSEL_RES_PCI && r->pci)
				json_object_set_new(o, "pci", pci_function_to_json(r->pci));
			json_array_append_new(res, o);
		}
		json_array_append_new(devs, json_pack("{s:s, s:s, s:b, s:o, s:o}", "name", t->name, "description",
						      t->description ? t->description : "", "snapshot", t->save != NULL,
						      "params", params, "resources", res));
	}
	return json_pack("{s:s, s:s, s:s, s:o}", "name", d->name, "version", d->version ? d->version : "",
			 "description", d->description ? d->description : "", "devices", devs);
}

/* In the probe child: load, check, describe.  A plug-in that the checks
 * refuse is described by {"error": message}. */
static int probe_child(const char *path, int fd)
{
	void *h;
	const void *sym;
	json_t *out;
	if (plugin_lib_open(path, "plug-in", VESSEL_PLUGIN_SYMBOL, &h, &sym) < 0 ||
	    plugin_validate_descriptor(sym, path) < 0)
		out = json_pack("{s:s}", "error", err_msg());
	else
		out = plugin_descriptor_to_json(sym);
	return out && json_dumpfd(out, fd, JSON_COMPACT) == 0 ? 0 : -EIO;
}

int plugin_registry_probe(struct plugin_registry *reg, const char *path)
{
	if (reg->n_files == PLUGIN_MAX_LIBS)
		return err_set(-ENOSPC, "plug-in %s: more than %d plug-ins", path, PLUGIN_MAX_LIBS);
	/* Refused before any of its code runs, even in a child. */
	int rc = plugin_file_trusted(path, "plug-in");
	if (rc < 0)
		return rc;
	char *text;
	if ((rc = plugin_probe_run(path, "plug-in", probe_child, &text)) < 0)
		return rc;
	json_t *desc = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(desc)) {
		json_decref(desc);
		return err_set(-ENOEXEC, "plug-in %s: its probe gave no description", path);
	}
	const char *error = json_string_value(json_object_get(desc, "error"));
	if (error) {
		rc = err_set(-ENOEXEC, "%s", error);
		json_decref(desc);
		return rc;
	}
	size_t k;
	json_t *t;
	json_array_foreach(json_object_get(desc, "devices"), k, t) {
		const char *name = json_string_value(json_object_get(t, "name"));
		const struct plugin_lib *lib;
		const struct plugin_file *f = NULL;
		if (name && (find_loaded(reg, name, &lib) || (f = find_probed(reg, name)))) {
			rc = err_set(-EEXIST, "plug-in %s: device type %s is already provided by %s", path, name,
				     f ? f->path : lib->path);
			json_decref(desc);
			return rc;
		}
	}
	struct plugin_file *f = &reg->files[reg->n_files];
	if (!(f->path = strdup(path))) {
		json_decref(desc);
		return err_set(-ENOMEM, "plug-in %s: out of memory", path);
	}
	f->desc = desc;
	reg->n_files++;
	return 0;
}

int plugin_registry_scan(struct plugin_registry *reg, char *const *dirs, unsigned n_dirs)
{
	int found = 0;
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
			if (plugin_registry_probe(reg, path) == 0) {
				found++;
			} else if (reg->n_problems < PLUGIN_MAX_LIBS) {
				log_warn("plugin", "%s", err_msg());
				reg->problems[reg->n_problems].path = strdup(path);
				reg->problems[reg->n_problems].message = strdup(err_msg());
				reg->n_problems++;
			}
		}
	}
	return found;
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
	struct dev_ctx ctx;             /* as a built-in device's: buses, bases, lines, lock */
	struct vessel_host host;
	union vessel_param_value *values;
	char **strings;                 /* owned copies of string values */
	uint64_t bases[16];
	struct range_ctx ranges[16];
	bool registered[16];
	bool snapshot_registered;
	/* The PCI function (docs/plugins.md "PCI functions"): its resource,
	 * -1 if none, and the function once on the bus. */
	int pci_res;
	unsigned want_slot;             /* params.slot, 0: none */
	struct pci_func *func;
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
	if (!d->ctx.irq[0].set)
		return -ENODEV;
	if (in_callback) {
		irq_line_set_at(&d->ctx.irq[0], (unsigned)d->bases[res], level != 0);
		return 0;
	}
	pthread_mutex_lock(d->ctx.lock);
	irq_line_set_at(&d->ctx.irq[0], (unsigned)d->bases[res], level != 0);
	pthread_mutex_unlock(d->ctx.lock);
	return 0;
}

/* docs/plugins.md: a range that is not entirely RAM fails with -EFAULT
 * and nothing is copied, so the whole range is checked before a byte
 * moves (gmem_read/gmem_write stop at the first hole, having copied what
 * came before it). */
static bool range_is_ram(const struct guest_memory *mem, uint64_t gpa, size_t len)
{
	if (!mem || len > UINT64_MAX - gpa)
		return false;
	while (len) {
		const struct gmem_region *g = NULL;
		for (unsigned k = 0; k < mem->n_regions && !g; k++)
			if (gpa >= mem->regions[k].gpa && gpa - mem->regions[k].gpa < mem->regions[k].size)
				g = &mem->regions[k];
		if (!g)
			return false;
		uint64_t n = g->gpa + g->size - gpa;
		if (n > len)
			n = len;
		gpa += n;
		len -= n;
	}
	return true;
}

/* A PCI function masters the bus only while the guest lets it (PCI 3.0,
 * 6.2.2, Bus Master Enable): a driver that has not enabled it, or a
 * function the guest took away, gets no DMA. */
static bool may_master(const struct plugin_device *d)
{
	return d->pci_res < 0 || (d->func && pci_func_bus_master(d->func));
}

static int host_mem_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct plugin_device *d = ctx;
	if (!range_is_ram(d->set->env.mem, gpa, len))
		return -EFAULT;
	if (!may_master(d))
		return -EPERM;
	return gmem_read(d->set->env.mem, gpa, buf, len);
}

static int host_mem_write(void *ctx, uint64_t gpa, const void *buf, size_t len)
{
	struct plugin_device *d = ctx;
	if (!range_is_ram(d->set->env.mem, gpa, len))
		return -EFAULT;
	if (!may_master(d))
		return -EPERM;
	int rc = gmem_write(d->set->env.mem, gpa, buf, len);
	if (rc == 0 && len && d->set->env.mem_written)
		d->set->env.mem_written(d->set->env.mem_written_opaque, gpa, len);
	return rc;
}



static uint64_t host_resource_base(void *ctx, unsigned res)
{
	struct plugin_device *d = ctx;
	return res < d->type->n_resources ? d->bases[res] : UINT64_MAX;
}

static int host_pci_irq(void *ctx, unsigned res, unsigned vector, int level)
{
	struct plugin_device *d = ctx;
	if (res >= d->type->n_resources || (int)res != d->pci_res)
		return -EINVAL;
	if (in_callback)
		return d->func ? pci_func_irq(d->func, vector, level != 0) : -ENODEV;
	pthread_mutex_lock(d->ctx.lock);
	int rc = d->func ? pci_func_irq(d->func, vector, level != 0) : -ENODEV;
	pthread_mutex_unlock(d->ctx.lock);
	return rc;
}

static uint64_t func_read(void *opaque, unsigned bar, uint64_t off, unsigned size)
{
	struct plugin_device *d = opaque;
	in_callback++;
	uint64_t v = d->type->bar_read ? d->type->bar_read(d->dev, (uint32_t)d->pci_res, bar, off, size) : ~0ULL;
	in_callback--;
	return v;
}

static void func_write(void *opaque, unsigned bar, uint64_t off, unsigned size, uint64_t val)
{
	struct plugin_device *d = opaque;
	in_callback++;
	if (d->type->bar_write)
		d->type->bar_write(d->dev, (uint32_t)d->pci_res, bar, off, size, val);
	in_callback--;
}

static uint64_t range_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct range_ctx *r = opaque;
	const struct vessel_device_type *t = r->dev->type;
	in_callback++;
	uint64_t v = t->read ? t->read(r->dev->dev, r->res, off, size) : ~0ULL;
	in_callback--;
	return v;
}

static void range_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct range_ctx *r = opaque;
	const struct vessel_device_type *t = r->dev->type;
	in_callback++;
	if (t->write)
		t->write(r->dev->dev, r->res, off, size, val);
	in_callback--;
}

static const struct bus_ops plugin_bus_ops = { .read = range_read, .write = range_write };

/* A device with a PCI function saves the function's state (its
 * configuration space: where the guest put the BARs, MSI) before its own:
 * a 32-bit length, pci_func_save()'s blob, then the plug-in's, if any. */
static int64_t save_with_func(struct plugin_device *d, uint8_t *buf, size_t cap)
{
	if (cap < 4)
		return -ENOSPC;
	int64_t f = pci_func_save(d->func, buf + 4, cap - 4);
	if (f < 0)
		return f;
	for (unsigned i = 0; i < 4; i++)
		buf[i] = (uint8_t)((uint64_t)f >> (8 * i));
	int64_t n = d->type->save ? d->type->save(d->dev, buf + 4 + f, cap - 4 - (size_t)f) : 0;
	return n < 0 ? n : 4 + f + n;
}

static int64_t snap_save(void *opaque, void *buf, size_t cap)
{
	struct plugin_device *d = opaque;
	/* The snapshot code calls save and load under the device lock. */
	in_callback++;
	int64_t n = d->func ? save_with_func(d, buf, cap) : d->type->save(d->dev, buf, cap);
	in_callback--;
	return n;
}

static int snap_load(void *opaque, const void *buf, size_t len)
{
	struct plugin_device *d = opaque;
	const uint8_t *p = buf;
	if (d->func) {
		uint32_t f = len >= 4 ? (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24) : 0;
		if (len < 4 || f > len - 4 || (!d->type->load && len != 4 + (size_t)f))
			return err_set(-EINVAL, "device %s: its saved state is malformed", d->id);
		int rc = pci_func_load(d->func, p + 4, f);
		if (rc < 0)
			return rc;
		p += 4 + f;
		len -= 4 + f;
		if (!d->type->load)
			return 0;
	}
	in_callback++;
	int rc = d->type->load(d->dev, p, len);
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
	bool host_slot = d->pci_res >= 0 && !find_param(t, "slot", NULL);
	json_object_foreach(obj, key, v) {
		if (!find_param(t, key, NULL) && !(host_slot && !strcmp(key, "slot"))) {
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
	/* The slot of a PCI function, as virtio functions take it
	 * (docs/hotplug.md), unless the type has a parameter of that name. */
	if (host_slot && (v = json_object_get(obj, "slot"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) >= PCI_MAX_DEVICES) {
			rc = err_set(-EINVAL, "device %s: params.slot: not a PCI slot (expected 1 to %d)", d->id,
				     PCI_MAX_DEVICES - 1);
			goto out;
		}
		d->want_slot = (unsigned)json_integer_value(v);
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

/* The slot of the device's PCI function: params.slot, else the base (its
 * parameter's or the descriptor's), 0 meaning the first free one.  The
 * effective parameters record it, so that a rebuilt or restored machine
 * puts the function where the guest saw it. */
static int pick_slot(struct plugin_device *d, const struct vessel_resource_spec *r, uint64_t base, uint64_t *out)
{
	struct pci_host *h = d->set->env.pci;
	if (!h)
		return err_set(-ENODEV, "device %s: %s: this machine has no PCI bus", d->id, r->name);
	uint64_t slot = d->want_slot ? d->want_slot : base;
	if (slot >= PCI_MAX_DEVICES)
		return err_set(-EINVAL, "device %s: %s: %" PRIu64 " is not a PCI slot (expected 1 to %d, or 0 for the "
			       "first free one)", d->id, r->name, slot, PCI_MAX_DEVICES - 1);
	int rc = 0;
	pthread_mutex_lock(d->set->env.dev_lock);
	struct pci_device *taken = slot ? pci_find_device(h, (unsigned)slot) : NULL;
	if (taken) {
		rc = err_set(-EBUSY, "device %s: PCI slot %" PRIu64 " is taken by %s", d->id, slot, taken->name);
	} else if (!slot) {
		for (slot = 1; slot < PCI_MAX_DEVICES && pci_find_device(h, (unsigned)slot); slot++)
			;
		if (slot == PCI_MAX_DEVICES)
			rc = err_set(-ENOSPC, "device %s: the PCI bus is full (every slot from 1 to %d holds a device)",
				     d->id, PCI_MAX_DEVICES - 1);
	}
	pthread_mutex_unlock(d->set->env.dev_lock);
	if (rc < 0)
		return rc;
	*out = slot;
	if (!d->type->params || !find_param(d->type, "slot", NULL)) {
		json_t *p = json_loads(d->params_json ? d->params_json : "{}", 0, NULL);
		if (p) {
			json_object_set_new(p, "slot", json_integer((json_int_t)slot));
			char *text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(p);
			if (text) {
				free(d->params_json);
				d->params_json = text;
			}
		}
	}
	return 0;
}

static int device_place_resources(struct plugin_device *d)
{
	const struct vessel_device_type *t = d->type;
	int rc;
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
			if ((rc = pick_slot(d, r, base, &d->bases[i])) < 0)
				return rc;
			break;
		}
	}
	return 0;
}

static void device_unregister(struct plugin_device *d)
{
	pthread_mutex_lock(d->ctx.lock);
	/* Unplugged: its BARs unmapped, its INTx lowered. */
	pci_func_free(d->func);
	d->func = NULL;
	for (unsigned i = 0; i < d->type->n_resources; i++) {
		if (!d->registered[i])
			continue;
		struct bus *bus = d->type->resources[i].kind == VESSEL_RES_PIO ? d->ctx.pio : d->ctx.mmio;
		bus_unregister(bus, d->bases[i], &d->ranges[i]);
		d->registered[i] = false;
	}
	pthread_mutex_unlock(d->ctx.lock);
}

/* Puts the device's PCI function in slot (device lock held). */
static int device_plug_func(struct plugin_device *d, const struct vessel_resource_spec *r, unsigned slot)
{
	struct pci_func_desc desc;
	char what[96];
	snprintf(what, sizeof(what), "device %s: %s: pci", d->id, r->name);
	int rc = pci_desc_from_spec(r->pci, &desc, what);   /* checked at load: cannot fail */
	if (rc < 0)
		return rc;
	desc.read = func_read;
	desc.write = func_write;
	desc.opaque = d;
	if (!(d->func = pci_func_new(d->set->env.pci, d->set->env.apic, d->id, &desc, slot, !d->set->hotplug)))
		return err_wrap(-EBUSY, "device %s", d->id);
	return 0;
}

static int device_register(struct plugin_device *d)
{
	int rc = 0;
	pthread_mutex_lock(d->ctx.lock);
	for (unsigned i = 0; i < d->type->n_resources && !rc; i++) {
		const struct vessel_resource_spec *r = &d->type->resources[i];
		if (r->kind == VESSEL_RES_PCI) {
			rc = device_plug_func(d, r, (unsigned)d->bases[i]);
			continue;
		}
		if (r->kind != VESSEL_RES_PIO && r->kind != VESSEL_RES_MMIO)
			continue;
		struct bus *bus = r->kind == VESSEL_RES_PIO ? d->ctx.pio : d->ctx.mmio;
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
	pthread_mutex_unlock(d->ctx.lock);
	if (rc)
		device_unregister(d);
	return rc;
}

/* A create() that crashes (docs/security.md "Plug-ins"): the fault is
 * caught on the thread that called it, the device is refused with the
 * signal named, and the plug-in is not used again in this run.  This is
 * containment, not isolation: the plug-in ran in vessel's address space
 * and may have damaged it (or held a lock) before it faulted. */
static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
static struct sigaction crash_prev[sizeof(crash_signals) / sizeof(crash_signals[0])];
static _Thread_local sigjmp_buf *crash_jmp;
static _Thread_local volatile sig_atomic_t crash_sig;
static pthread_once_t crash_once = PTHREAD_ONCE_INIT;

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
	if (crash_jmp) {
		crash_sig = sig;
		siglongjmp(*crash_jmp, 1);
	}
	/* Not inside a plug-in's create(): whatever handled it before. */
	for (unsigned i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++) {
		if (crash_signals[i] != sig)
			continue;
		const struct sigaction *prev = &crash_prev[i];
		if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
			prev->sa_sigaction(sig, si, uc);
			return;
		}
		if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
			prev->sa_handler(sig);
			return;
		}
	}
	/* The default action: the faulting instruction runs again, or
	 * abort() raises again, and the process dies as without us. */
	signal(sig, SIG_DFL);
}

static void crash_install(void)
{
	struct sigaction sa = { .sa_sigaction = crash_handler, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		sigaction(crash_signals[i], &sa, &crash_prev[i]);
}

/* Returns create()'s result, or INT_MIN with *sig set if it crashed. */
static int guarded_create(const struct vessel_device_type *t, const struct vessel_host *h,
			  const union vessel_param_value *v, void **dev, int *sig)
{
	sigjmp_buf jb;
	if (sigsetjmp(jb, 1) == 0) {
		crash_jmp = &jb;
		int rc = t->create(h, v, dev);
		crash_jmp = NULL;
		return rc;
	}
	crash_jmp = NULL;
	*sig = crash_sig;
	return INT_MIN;
}

void plugin_devices_init(struct plugin_devices *set, struct plugin_registry *reg, const struct plugin_env *env)
{
	/* Here, while the VM is being set up: later a sandbox may forbid it. */
	pthread_once(&crash_once, crash_install);
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
	const struct vessel_device_type *t = NULL;
	int rc = set->reg ? plugin_registry_get(set->reg, cfg->type, &t, &lib)
			  : err_set(-ENOENT, "no device type '%s' (see `vessel plugin list`)", cfg->type);
	if (rc < 0)
		return err_wrap(rc, "device %s", cfg->id);
	struct plugin_device *d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(-ENOMEM, "device %s: out of memory", cfg->id);
	d->set = set;
	d->type = t;
	d->pci_res = -1;
	for (unsigned i = 0; i < t->n_resources; i++)
		if (t->resources[i].kind == VESSEL_RES_PCI)
			d->pci_res = (int)i;
	d->lib = lib;
	d->id = strdup(cfg->id);
	d->type_name = strdup(cfg->type);
	d->values = calloc(t->n_params + 1, sizeof(*d->values));
	d->strings = calloc(t->n_params + 1, sizeof(*d->strings));
	if (!d->id || !d->type_name || !d->values || !d->strings) {
		rc = err_set(-ENOMEM, "device %s: out of memory", cfg->id);
		goto fail;
	}
	if ((rc = device_parse_params(d, cfg->params)) < 0 || (rc = device_place_resources(d)) < 0)
		goto fail;
	/* The context a built-in device gets from the board table. */
	d->ctx = (struct dev_ctx){ .name = d->id, .pio = set->env.pio, .mmio = set->env.mmio,
				   .lock = set->env.dev_lock };
	d->ctx.irq[0] = set->env.irq;
	for (unsigned i = 0; i < t->n_resources && i < DEV_MAX_BASES; i++)
		d->ctx.base[i] = d->bases[i];
	d->host = (struct vessel_host){
		.size = sizeof(struct vessel_host), .abi_version = VESSEL_PLUGIN_ABI_VERSION, .ctx = d,
		.log = host_log, .irq_set = host_irq_set, .mem_read = host_mem_read, .mem_write = host_mem_write,
		.resource_base = host_resource_base, .pci_irq = host_pci_irq,
	};
	if (lib->crashed) {
		rc = err_set(-EIO, "device %s: plug-in %s crashed earlier in this run and is not used again", cfg->id,
			     lib->path);
		goto fail;
	}
	int sig = 0;
	rc = guarded_create(t, &d->host, d->values, &d->dev, &sig);
	if (rc == INT_MIN) {
		((struct plugin_lib *)lib)->crashed = true;
		rc = err_set(-EIO, "device %s: %s crashed in create() (signal %d, %s) and was not added; plug-in %s is "
			     "not used again in this run", cfg->id, t->name, sig, strsignal(sig), lib->path);
		log_error("plugin", "%s", err_msg());
		goto fail;
	}
	if (rc < 0) {
		rc = err_set(rc, "device %s: %s refused to start (%s)", cfg->id, t->name, strerror(-rc));
		goto fail;
	}
	if ((rc = device_register(d)) < 0)
		goto fail_destroy;
	if (t->save || d->func) {
		if ((rc = snapshot_register_device(d->id, snap_save, snap_load, d)) < 0) {
			device_unregister(d);
			goto fail_destroy;
		}
		d->snapshot_registered = true;
	}
	pthread_mutex_lock(set->env.dev_lock);
	set->list[set->n++] = d;
	pthread_mutex_unlock(set->env.dev_lock);
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
	pthread_mutex_lock(set->env.dev_lock);
	memmove(&set->list[i], &set->list[i + 1], (set->n - (unsigned)i - 1) * sizeof(set->list[0]));
	set->n--;
	pthread_mutex_unlock(set->env.dev_lock);
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

int plugin_devices_slot(const struct plugin_devices *set, const char *id)
{
	int i = find_index(set, id);
	return i >= 0 && set->list[i]->func ? (int)pci_func_slot(set->list[i]->func) : -ENOENT;
}

int plugin_devices_slot_owner(const struct plugin_devices *set, unsigned slot, char *id, size_t cap)
{
	for (unsigned i = 0; i < set->n; i++) {
		if (set->list[i]->func && pci_func_slot(set->list[i]->func) == slot) {
			snprintf(id, cap, "%s", set->list[i]->id);
			return 0;
		}
	}
	return -ENOENT;
}

const char *plugin_devices_params(const struct plugin_devices *set, const char *id)
{
	int i = find_index(set, id);
	return i >= 0 ? set->list[i]->params_json : NULL;
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
