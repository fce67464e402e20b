/* Whole-VM save and restore on top of the snapshot file format. */
#include "vmm/snapshot.h"

#include "util/error.h"
#include "util/log.h"
#include "machine/cpu_model.h"
#include "machine/machine.h"
#include "vmm/manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* MSRs a guest OS programs and expects back (SDM vol. 4 "Model-Specific
 * Registers"; the rest of the CPU is in regs/sregs/fpu). */
static const uint32_t saved_msrs[] = {
	MSR_IA32_TSC, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_MISC_ENABLE,
	MSR_IA32_PAT, MSR_IA32_TSC_DEADLINE, MSR_IA32_SPEC_CTRL, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK,
	MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
};
#define N_SAVED_MSRS (sizeof(saved_msrs) / sizeof(saved_msrs[0]))

struct cpu_blob {
	struct snap_cpu_prefix p;
	struct x86_regs regs;
	struct x86_sregs sregs;
	struct x86_fpu fpu;
	struct {
		uint32_t index, zero;
		uint64_t value;
	} msrs[N_SAVED_MSRS];
};

static size_t cpu_blob_size(uint32_t n_msrs)
{
	return offsetof(struct cpu_blob, msrs) + n_msrs * sizeof(((struct cpu_blob *)0)->msrs[0]);
}

static int cpu_save(struct vcpu *v, struct cpu_blob *b)
{
	const struct accel_ops *a = v->vm->accel;
	memset(b, 0, sizeof(*b));
	if (!a->get_regs || !a->get_sregs || !a->get_fpu)
		return err_set(-ENOTSUP, "snapshot: the %s engine cannot read CPU state", a->name);
	int rc;
	if ((rc = a->get_regs(v, &b->regs)) < 0 || (rc = a->get_sregs(v, &b->sregs)) < 0 ||
	    (rc = a->get_fpu(v, &b->fpu)) < 0)
		return err_wrap(rc, "snapshot: cpu%u", v->id);
	uint32_t n = 0;
	for (unsigned i = 0; a->get_msrs && i < N_SAVED_MSRS; i++) {
		/* One at a time: an MSR the engine does not model is skipped,
		 * not fatal. */
		struct x86_msr_entry e = { .index = saved_msrs[i] };
		if (a->get_msrs(v, &e, 1) == 1) {
			b->msrs[n].index = e.index;
			b->msrs[n].value = e.value;
			n++;
		}
	}
	pthread_mutex_lock(&v->lock);
	b->p = (struct snap_cpu_prefix){ .regs_size = sizeof(b->regs), .sregs_size = sizeof(b->sregs),
					 .fpu_size = sizeof(b->fpu), .n_msrs = n, .run_state = (uint32_t)v->run_state,
					 .sipi_vector = v->sipi_vector };
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* The virtual NUMA topology as the guest saw it (SRAT, SLIT), with the
 * host nodes behind each node at the save (after any numa move). */
static json_t *numa_json(const struct numa_config *n)
{
	json_t *nodes = json_array(), *dist = json_array();
	for (unsigned i = 0; i < n->n_nodes; i++) {
		json_t *hosts = json_array(), *row = json_array();
		for (unsigned h = 0; h < NUMA_MAX_HOST_NODES; h++)
			if (n->nodes[i].host_nodes & (1ull << h))
				json_array_append_new(hosts, json_integer(h));
		for (unsigned j = 0; j < n->n_nodes; j++)
			json_array_append_new(row, json_integer(n->distance[i][j]));
		json_array_append_new(nodes, json_pack("{s:I, s:i, s:i, s:o}", "memory", (json_int_t)n->nodes[i].mem_bytes,
						       "first_cpu", (int)n->nodes[i].first_cpu, "cpus",
						       (int)n->nodes[i].n_cpus, "host_nodes", hosts));
		json_array_append_new(dist, row);
	}
	return json_pack("{s:s, s:o, s:o}", "policy", vnuma_policy_name(n->policy), "nodes", nodes, "distances", dist);
}

/* The topology of numa_json() into cfg->numa; the host nodes become
 * hints (a host that lacks one gets another, with a warning). */
static int numa_from_json(const char *path, json_t *j, struct vm_config *cfg)
{
	struct numa_config *n = &cfg->numa;
	memset(n, 0, sizeof(*n));
	json_t *nodes = json_object_get(j, "nodes"), *dist = json_object_get(j, "distances");
	const char *policy = json_string_value(json_object_get(j, "policy"));
	size_t count = json_array_size(nodes);
	if (!json_is_array(nodes) || count == 0 || count > NUMA_MAX_NODES || json_array_size(dist) != count ||
	    !policy || vnuma_parse_policy(policy, &n->policy) < 0)
		return err_set(-EINVAL, "snapshot %s: config numa: not a topology", path);
	n->n_nodes = (unsigned)count;
	for (size_t i = 0; i < count; i++) {
		json_t *node = json_array_get(nodes, i), *row = json_array_get(dist, i), *h;
		json_int_t mem = json_integer_value(json_object_get(node, "memory"));
		json_int_t first = json_integer_value(json_object_get(node, "first_cpu"));
		json_int_t cpus = json_integer_value(json_object_get(node, "cpus"));
		if (mem <= 0 || first < 0 || cpus <= 0 || first + cpus > VM_MAX_CPUS || json_array_size(row) != count)
			return err_set(-EINVAL, "snapshot %s: config numa: node %zu is not a node", path, i);
		n->nodes[i].mem_bytes = (uint64_t)mem;
		n->nodes[i].first_cpu = (unsigned)first;
		n->nodes[i].n_cpus = (unsigned)cpus;
		size_t k;
		json_array_foreach(json_object_get(node, "host_nodes"), k, h) {
			json_int_t v = json_integer_value(h);
			if (v >= 0 && v < NUMA_MAX_HOST_NODES)
				n->nodes[i].host_nodes |= 1ull << v;
		}
		n->nodes[i].host_hint = n->nodes[i].host_nodes != 0;
		for (size_t m = 0; m < count; m++) {
			json_int_t d = json_integer_value(json_array_get(row, m));
			n->distance[i][m] = d > 0 && d < 256 ? (uint8_t)d : 0;
		}
	}
	cfg->numa_nodes = 0;
	return 0;
}

/* The hot-pluggable range and the memory added to it, in the order of
 * its regions (docs/hotplug.md "Memory"). */
static json_t *memhp_json(const struct guest_memory *mem)
{
	json_t *added = json_array();
	for (unsigned i = 0; i < mem->n_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];
		if (r->hotplug && r->size)
			json_array_append_new(added, json_pack("{s:I, s:I, s:i}", "gpa", (json_int_t)r->gpa, "size",
							       (json_int_t)r->size, "node", (int)r->node));
	}
	return json_pack("{s:I, s:o}", "size", (json_int_t)mem->hp_size, "added", added);
}

static int memhp_from_json(const char *path, json_t *j, struct vm_config *cfg)
{
	json_t *added = json_object_get(j, "added"), *e;
	json_int_t size = json_integer_value(json_object_get(j, "size"));
	if (!json_is_array(added) || size <= 0 || json_array_size(added) > GMEM_MAX_REGIONS)
		return err_set(-EINVAL, "snapshot %s: config memory_hotplug: not a hot-pluggable range", path);
	cfg->mem_hotplug = (uint64_t)size;
	cfg->n_mem_added = 0;
	size_t i;
	json_array_foreach(added, i, e) {
		json_int_t gpa = json_integer_value(json_object_get(e, "gpa")),
			   len = json_integer_value(json_object_get(e, "size")),
			   node = json_integer_value(json_object_get(e, "node"));
		if (gpa <= 0 || len <= 0 || node < 0 || node >= NUMA_MAX_NODES)
			return err_set(-EINVAL, "snapshot %s: config memory_hotplug: piece %zu is not memory", path, i);
		cfg->mem_added[cfg->n_mem_added++] =
			(struct memhp_piece){ .gpa = (uint64_t)gpa, .size = (uint64_t)len, .node = (unsigned)node };
	}
	return 0;
}

static json_t *config_json(struct vm *vm, json_t *devices)
{
	json_t *regions = json_array();
	/* Hot-added memory the guest ejected keeps an empty region: not saved. */
	for (unsigned i = 0; i < vm->mem.n_regions; i++)
		if (vm->mem.regions[i].size)
			json_array_append_new(regions, json_pack("{s:I, s:I}", "gpa", (json_int_t)vm->mem.regions[i].gpa,
								 "size", (json_int_t)vm->mem.regions[i].size));
	json_t *c = json_pack("{s:s, s:i, s:I, s:i, s:o}", "engine", vm->accel ? vm->accel->name : "?", "cpus",
			      (int)vm->n_vcpus, "memory", (json_int_t)vm->mem.ram_size, "numa_nodes",
			      vm->cfg ? (int)vm->cfg->numa_nodes : 0, "regions", regions);
	json_object_set_new(c, "devices", devices ? json_incref(devices) : json_array());
	/* CPU hot-plug: "cpus" are the possible ones, these the ones plugged
	 * in at power-on (a reboot of the restored VM starts with them). */
	if (vm->cpu_hotplug && vm->cfg)
		json_object_set_new(c, "boot_cpus", json_integer(vm->cfg->cpus));
	if (vm->numa.n_nodes)
		json_object_set_new(c, "numa", numa_json(&vm->numa));
	if (vm->mem.hp_size)
		json_object_set_new(c, "memory_hotplug", memhp_json(&vm->mem));
	/* The CPU model, as given and as resolved: flag names, so that a
	 * restore on another host or version compares what the guest saw. */
	json_t *removed = json_array();
	for (unsigned i = 0; i < cpu_n_features; i++)
		if ((vm->cpu_model.removed >> i) & 1)
			json_array_append_new(removed, json_string(cpu_features[i].name));
	json_object_set_new(c, "cpu", json_string(vm->cpu_model.spec[0] ? vm->cpu_model.spec : "max"));
	json_object_set_new(c, "cpu_removed", removed);
	/* No plug-in directories: a snapshot is data and never names code to
	 * load (docs/security.md "Plug-ins").  A restore finds the device
	 * types on the search path of the restoring command. */
	return c;
}

/* Device state captured in memory, written to the file afterwards. */
struct save_ctx {
	struct dev_blob {
		char name[SNAPSHOT_DEVICE_NAME_MAX];
		void *data;
		size_t len;
	} *blobs;
	unsigned n, cap;
};

static int save_device(void *arg, const char *name, snapshot_save_fn save, void *opaque)
{
	struct save_ctx *sc = arg;
	if (sc->n == sc->cap) {
		unsigned cap = sc->cap ? 2 * sc->cap : 32;
		struct dev_blob *b = realloc(sc->blobs, cap * sizeof(*b));
		if (!b)
			return err_set(-ENOMEM, "snapshot: out of memory");
		sc->blobs = b;
		sc->cap = cap;
	}
	struct dev_blob *b = &sc->blobs[sc->n];
	snprintf(b->name, sizeof(b->name), "%s", name);
	int rc = snapshot_device_save(name, save, opaque, &b->data, &b->len);
	if (rc == 0)
		sc->n++;
	return rc;
}

static void save_ctx_free(struct save_ctx *sc)
{
	for (unsigned i = 0; i < sc->n; i++)
		free(sc->blobs[i].data);
	free(sc->blobs);
}

int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *stats)
{
	return snapshot_save_with_devices(vm, path, NULL, stats);
}

int snapshot_save_with_devices(struct vm *vm, const char *path, json_t *devices, struct snapshot_stats *stats)
{
	struct snap_writer w;
	int rc = snap_writer_open(&w, path);
	if (rc < 0)
		return rc;
	json_t *cfg = config_json(vm, devices);
	char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(cfg);
	rc = text ? snap_writer_section(&w, SNAP_SEC_CONFIG, 1, 0, "config", text, strlen(text))
		  : err_set(-ENOMEM, "snapshot: out of memory");
	free(text);
	/* The CPUs and the devices are captured first, back to back, and
	 * written afterwards: the VM clock runs on while the vCPUs are held,
	 * and a TSC read long before the vm-clock blob (a file write stalled
	 * behind a busy disk between them) would come back behind the clock
	 * by that much -- enough, at seconds, for a guest's TSC-deadline
	 * timers to fire at once, forever. */
	struct cpu_blob *cpus = calloc(vm->n_vcpus ? vm->n_vcpus : 1, sizeof(*cpus));
	struct save_ctx sc = { 0 };
	if (rc == 0 && !cpus)
		rc = err_set(-ENOMEM, "snapshot: out of memory");
	for (unsigned i = 0; i < vm->n_vcpus && rc == 0; i++)
		rc = cpu_save(vm->vcpus[i], &cpus[i]);
	/* Devices and RAM are captured under the device lock, held until
	 * the last page is written: the timer thread runs device callbacks
	 * under it, and one firing between the two (a synthetic timer
	 * posting its message into the SynIC page) would leave a RAM that
	 * has the message and a LAPIC that never had its interrupt -- a
	 * guest halted for good after the restore.  The vCPUs are held and
	 * the back ends quiesced, so nothing else writes RAM meanwhile. */
	pthread_mutex_lock(&vm->dev_lock);
	if (rc == 0)
		rc = snapshot_foreach_device(save_device, &sc);
	for (unsigned i = 0; i < vm->n_vcpus && rc == 0; i++) {
		char name[16];
		snprintf(name, sizeof(name), "cpu%u", i);
		rc = snap_writer_section(&w, SNAP_SEC_CPU, 1, i, name, &cpus[i], cpu_blob_size(cpus[i].p.n_msrs));
	}
	for (unsigned i = 0; i < sc.n && rc == 0; i++)
		rc = snap_writer_section(&w, SNAP_SEC_DEVICE, 1, 0, sc.blobs[i].name, sc.blobs[i].data, sc.blobs[i].len);
	unsigned n_devices = sc.n;
	save_ctx_free(&sc);
	free(cpus);
	for (unsigned i = 0; i < vm->mem.n_regions && rc == 0; i++)
		if (vm->mem.regions[i].size)
			rc = snap_writer_memory(&w, vm->mem.regions[i].gpa, vm->mem.regions[i].host,
						vm->mem.regions[i].size);
	pthread_mutex_unlock(&vm->dev_lock);
	uint64_t zero_pages = w.zero_pages;
	if (rc < 0) {
		snap_writer_abort(&w);
		return rc;
	}
	if ((rc = snap_writer_commit(&w)) < 0)
		return rc;
	if (stats) {
		struct stat st;
		memset(stats, 0, sizeof(*stats));
		if (stat(path, &st) == 0) {
			stats->file_bytes = (uint64_t)st.st_size;
			stats->disk_bytes = (uint64_t)st.st_blocks * 512;
		}
		stats->ram_bytes = vm->mem.ram_size;
		stats->zero_pages = zero_pages;
		stats->n_devices = n_devices;
	}
	log_info("snapshot", "saved %s: %u vCPUs, %u devices, %" PRIu64 " MiB RAM (%" PRIu64 " zero pages not stored)",
		 path, vm->n_vcpus, n_devices, vm->mem.ram_size >> 20, zero_pages);
	return 0;
}

static json_t *read_config(struct snap_reader *r)
{
	const struct snap_section_header *s = snap_reader_find(r, SNAP_SEC_CONFIG, NULL);
	if (!s) {
		err_set(-EINVAL, "snapshot %s: no config section", r->path);
		return NULL;
	}
	if (s->length > (16u << 20)) {
		err_set(-EINVAL, "snapshot %s: config section of %" PRIu64 " bytes is implausible", r->path, s->length);
		return NULL;
	}
	char *text = malloc(s->length + 1);
	if (!text || snap_reader_read(r, s, text) < 0) {
		if (!text)
			err_set(-ENOMEM, "snapshot: out of memory");
		free(text);
		return NULL;
	}
	text[s->length] = 0;
	json_t *c = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(c) || !json_is_integer(json_object_get(c, "cpus")) ||
	    !json_is_integer(json_object_get(c, "memory")) || !json_is_array(json_object_get(c, "regions"))) {
		json_decref(c);
		err_set(-EINVAL, "snapshot %s: config section is malformed", r->path);
		return NULL;
	}
	return c;
}

/* A guest may use every CPUID flag it was shown, and Linux reads CPUID
 * once at boot: a restore runs with the model the snapshot was saved
 * with (its "cpu" unless --cpu is given), and is refused if that model
 * resolves to other flags here. */
static int check_cpu_model(const char *path, json_t *c, struct vm_config *cfg)
{
	const char *saved = json_string_value(json_object_get(c, "cpu"));
	if (!saved)
		saved = "max";   /* snapshots older than CPU models */
	if (!cfg->cpu && strcmp(saved, "max"))
		cfg->cpu = strdup(saved);
	struct cpu_model want;
	if (cpu_model_parse(cfg->cpu ? cfg->cpu : "max", cfg->engine && !strcmp(cfg->engine, "emu"), &want) < 0)
		return err_wrap(-EINVAL, "snapshot %s", path);
	uint64_t had = 0;
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(c, "cpu_removed"), i, n) {
		int f = json_is_string(n) ? cpu_model_feature_index(json_string_value(n)) : -1;
		if (f < 0)
			return err_set(-EINVAL, "snapshot %s: saved with CPU model '%s', which removes a feature "
						"this version does not know", path, saved);
		had |= 1ull << f;
	}
	if (had == want.removed)
		return 0;
	char diff[512];
	size_t len = 0;
	diff[0] = 0;
	for (unsigned f = 0; f < cpu_n_features && len < sizeof(diff); f++)
		if (((had ^ want.removed) >> f) & 1)
			len += (size_t)snprintf(diff + len, sizeof(diff) - len, "%s%c%s", len ? "," : "",
						(want.removed >> f) & 1 ? '-' : '+', cpu_features[f].name);
	return err_set(-EINVAL, "snapshot %s: saved with CPU model '%s', and this restore's CPU model '%s' differs from "
				"it by %s; a restored guest keeps using the CPU features it was shown, so restore "
				"with --cpu '%s' or without --cpu", path, saved, cfg->cpu ? cfg->cpu : "max", diff, saved);
}

int snapshot_load_config(const char *path, struct vm_config *cfg)
{
	struct snap_reader r;
	int rc = snap_reader_open(&r, path);
	if (rc < 0)
		return rc;
	json_t *c = read_config(&r);
	snap_reader_close(&r);
	if (!c)
		return -EINVAL;
	const char *engine = json_string_value(json_object_get(c, "engine"));
	if (engine && (!strcmp(engine, "emu") || !strcmp(engine, "kvm"))) {
		free(cfg->engine);
		cfg->engine = strdup(engine);
	}
	if (check_cpu_model(path, c, cfg) < 0) {
		json_decref(c);
		return -EINVAL;
	}
	json_int_t cpus = json_integer_value(json_object_get(c, "cpus"));
	json_int_t mem = json_integer_value(json_object_get(c, "memory"));
	if (cpus < 1 || cpus > VM_MAX_CPUS || mem <= 0) {
		json_decref(c);
		return err_set(-EINVAL, "snapshot %s: config section holds %lld CPUs and %lld bytes", path, (long long)cpus,
			       (long long)mem);
	}
	cfg->cpus = (unsigned)cpus;
	json_int_t boot = json_integer_value(json_object_get(c, "boot_cpus"));
	if (json_object_get(c, "boot_cpus")) {
		if (boot < 1 || boot > cpus) {
			json_decref(c);
			return err_set(-EINVAL, "snapshot %s: config section holds %lld boot CPUs of %lld", path,
				       (long long)boot, (long long)cpus);
		}
		cfg->max_cpus = (unsigned)cpus;
		cfg->cpus = (unsigned)boot;
	}
	cfg->mem_bytes = (uint64_t)mem;
	cfg->numa_nodes = (unsigned)json_integer_value(json_object_get(c, "numa_nodes"));
	if (json_object_get(c, "numa") && numa_from_json(path, json_object_get(c, "numa"), cfg) < 0) {
		json_decref(c);
		return -EINVAL;
	}
	cfg->mem_hotplug = 0;
	cfg->n_mem_added = 0;
	if (json_object_get(c, "memory_hotplug") && memhp_from_json(path, json_object_get(c, "memory_hotplug"), cfg) < 0) {
		json_decref(c);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->n_devices; i++)
		vm_device_config_free(&cfg->devices[i]);
	cfg->n_devices = 0;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(c, "devices"), i, d) {
		if (cfg->n_devices == VM_MAX_DEVICES)
			break;
		/* The device list of the API carries more than a manifest entry:
		 * keep type, id and params. */
		/* O*: a device without params has none, not params: null. */
		json_t *entry = json_pack("{s:O?, s:O?, s:O*}", "type", json_object_get(d, "type"), "id",
					  json_object_get(d, "id"), "params", json_object_get(d, "params"));
		char where[32];   /* the message is wrapped in "snapshot PATH" below */
		snprintf(where, sizeof(where), "devices[%zu]", i);
		if (!entry || vm_manifest_parse_device(entry, where, &cfg->devices[cfg->n_devices]) < 0) {
			json_decref(entry);
			json_decref(c);
			return err_wrap(-EINVAL, "snapshot %s", path);
		}
		json_decref(entry);
		cfg->n_devices++;
	}
	/* A "plugin_dirs" list (written by older versions) is ignored: a
	 * snapshot never chooses code to load. */
	json_decref(c);
	return 0;
}

struct missing_ctx {
	struct snap_reader *r;
	const char *path;
};

static int check_present(void *arg, const char *name, snapshot_save_fn save, void *opaque)
{
	struct missing_ctx *mc = arg;
	if (!snap_reader_find(mc->r, SNAP_SEC_DEVICE, name))
		return err_set(-EINVAL, "snapshot %s: this VM has device %s, which the snapshot does not hold", mc->path,
			       name);
	return 0;
}

/* Shape: the same vCPUs and RAM layout, and a state section per vCPU. */
static int check_shape(struct vm *vm, struct snap_reader *r, json_t *c)
{
	const char *path = r->path;
	if ((unsigned)json_integer_value(json_object_get(c, "cpus")) != vm->n_vcpus)
		return err_set(-EINVAL, "snapshot %s: made for %lld vCPUs, this VM has %u", path,
			       (long long)json_integer_value(json_object_get(c, "cpus")), vm->n_vcpus);
	uint64_t ram = (uint64_t)json_integer_value(json_object_get(c, "memory"));
	if (ram != vm->mem.ram_size)
		return err_set(-EINVAL, "snapshot %s: made for %" PRIu64 " MiB of RAM, this VM has %" PRIu64 " MiB", path,
			       ram >> 20, vm->mem.ram_size >> 20);
	json_t *regions = json_object_get(c, "regions");
	unsigned n_regions = 0;
	for (unsigned i = 0; i < vm->mem.n_regions; i++)
		n_regions += vm->mem.regions[i].size != 0;
	if (json_array_size(regions) != n_regions)
		return err_set(-EINVAL, "snapshot %s: made for RAM in %zu regions, this VM has %u", path,
			       json_array_size(regions), n_regions);
	for (unsigned i = 0, j = 0; i < vm->mem.n_regions; i++) {
		if (!vm->mem.regions[i].size)
			continue;
		json_t *reg = json_array_get(regions, j++);
		uint64_t gpa = (uint64_t)json_integer_value(json_object_get(reg, "gpa"));
		uint64_t size = (uint64_t)json_integer_value(json_object_get(reg, "size"));
		if (gpa != vm->mem.regions[i].gpa || size != vm->mem.regions[i].size)
			return err_set(-EINVAL, "snapshot %s: RAM region %u is %#" PRIx64 "+%#" PRIx64
				       " in the snapshot, %#" PRIx64 "+%#" PRIx64 " in this VM", path, i, gpa, size,
				       vm->mem.regions[i].gpa, vm->mem.regions[i].size);
	}
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		char name[16];
		snprintf(name, sizeof(name), "cpu%u", i);
		if (!snap_reader_find(r, SNAP_SEC_CPU, name))
			return err_set(-EINVAL, "snapshot %s: no state for %s", path, name);
	}
	return 0;
}

int snapshot_check(struct vm *vm, const char *path)
{
	struct snap_reader r;
	int rc = snap_reader_open(&r, path);
	if (rc < 0)
		return rc;
	json_t *c = read_config(&r);
	rc = !c ? -EINVAL : vm ? check_shape(vm, &r, c) : 0;
	json_decref(c);
	snap_reader_close(&r);
	return rc;
}

/* Everything is read and checked before the VM is touched. */
int snapshot_restore(struct vm *vm, const char *path, const struct snapshot_restore_opts *opts)
{
	struct snapshot_restore_opts def = { .map_memory = true, .verify_memory = true };
	if (!opts)
		opts = &def;
	struct snap_reader r;
	int rc = snap_reader_open(&r, path);
	if (rc < 0)
		return rc;
	struct cpu_blob *cpus = NULL;
	struct dev_state {
		const struct snap_section_header *sec;
		void *data;
		snapshot_load_fn load;
		void *opaque;
	} *devs = NULL;
	unsigned n_devs = 0;
	bool *loaded = NULL;   /* devs[i] already loaded */
	json_t *c = read_config(&r);
	if (!c) {
		rc = -EINVAL;
		goto out;
	}
	if ((rc = check_shape(vm, &r, c)) < 0)
		goto out;
	cpus = calloc(vm->n_vcpus ? vm->n_vcpus : 1, sizeof(*cpus));
	devs = calloc(r.n, sizeof(*devs));
	if (!cpus || !devs) {
		rc = err_set(-ENOMEM, "snapshot: out of memory");
		goto out;
	}
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		char name[16];
		snprintf(name, sizeof(name), "cpu%u", i);
		const struct snap_section_header *s = snap_reader_find(&r, SNAP_SEC_CPU, name);
		if (!s) {
			rc = err_set(-EINVAL, "snapshot %s: no state for %s", path, name);
			goto out;
		}
		if (s->version != 1 || s->length < sizeof(struct snap_cpu_prefix) || s->length > sizeof(struct cpu_blob)) {
			rc = err_set(-EINVAL, "snapshot %s: %s state has an unknown layout (version %u, %" PRIu64 " bytes)",
				     path, name, s->version, s->length);
			goto out;
		}
		if ((rc = snap_reader_read(&r, s, &cpus[i])) < 0)
			goto out;
		/* Each check says what differs: the reason is the one that failed. */
		struct snap_cpu_prefix *p = &cpus[i].p;
		if (p->regs_size != sizeof(struct x86_regs) || p->sregs_size != sizeof(struct x86_sregs) ||
		    p->fpu_size != sizeof(struct x86_fpu)) {
			rc = err_set(-EINVAL, "snapshot %s: %s state was written by an incompatible vessel "
				     "(register block sizes %u/%u/%u, expected %zu/%zu/%zu)", path, name, p->regs_size,
				     p->sregs_size, p->fpu_size, sizeof(struct x86_regs), sizeof(struct x86_sregs),
				     sizeof(struct x86_fpu));
			goto out;
		}
		if (p->n_msrs > N_SAVED_MSRS) {
			rc = err_set(-EINVAL, "snapshot %s: %s state holds %u MSRs, at most %u expected", path, name,
				     p->n_msrs, (unsigned)N_SAVED_MSRS);
			goto out;
		}
		if (s->length != cpu_blob_size(p->n_msrs)) {
			rc = err_set(-EINVAL, "snapshot %s: %s state is %" PRIu64 " bytes, but %zu for its %u MSRs",
				     path, name, s->length, (size_t)cpu_blob_size(p->n_msrs), p->n_msrs);
			goto out;
		}
		if (p->run_state > VCPU_STOPPED) {
			rc = err_set(-EINVAL, "snapshot %s: %s state has run state %u, not one of 0 to %u", path, name,
				     p->run_state, (unsigned)VCPU_STOPPED);
			goto out;
		}
	}
	for (unsigned i = 0; i < r.n; i++) {
		const struct snap_section_header *s = &r.sections[i];
		if (s->type != SNAP_SEC_DEVICE)
			continue;
		struct dev_state *d = &devs[n_devs];
		if ((rc = snapshot_find_device(s->name, &d->load, &d->opaque)) < 0) {
			err_wrap(rc, "snapshot %s", path);
			goto out;
		}
		if (s->length > (256u << 20)) {
			rc = err_set(-EINVAL, "snapshot %s: device %s state of %" PRIu64 " bytes is implausible", path, s->name,
				     s->length);
			goto out;
		}
		d->sec = s;
		d->data = malloc(s->length ? s->length : 1);
		n_devs++;
		if (!d->data) {
			rc = err_set(-ENOMEM, "snapshot: out of memory");
			goto out;
		}
		if ((rc = snap_reader_read(&r, s, d->data)) < 0)
			goto out;
	}
	/* A device of this VM the snapshot does not know would keep its
	 * fresh state beside a guest that remembers another: refuse. */
	struct missing_ctx mc = { &r, path };
	if ((rc = snapshot_foreach_device(check_present, &mc)) < 0)
		goto out;
	for (unsigned i = 0; i < vm->mem.n_regions; i++) {
		const struct snap_section_header *s = NULL;
		if (!vm->mem.regions[i].size)
			continue;
		for (unsigned k = 0; k < r.n && !s; k++)
			if (r.sections[k].type == SNAP_SEC_MEMORY && r.sections[k].arg == vm->mem.regions[i].gpa)
				s = &r.sections[k];
		if (!s || s->length != vm->mem.regions[i].size || s->data_offset % SNAP_PAGE) {
			rc = err_set(-EINVAL, "snapshot %s: no usable memory section for RAM at %#" PRIx64, path,
				     vm->mem.regions[i].gpa);
			goto out;
		}
	}

	/* From here on the VM changes; an error leaves it to be torn down. */
	for (unsigned i = 0; i < vm->mem.n_regions; i++) {
		const struct snap_section_header *s = NULL;
		if (!vm->mem.regions[i].size)
			continue;
		for (unsigned k = 0; k < r.n && !s; k++)
			if (r.sections[k].type == SNAP_SEC_MEMORY && r.sections[k].arg == vm->mem.regions[i].gpa)
				s = &r.sections[k];
		if ((rc = snap_reader_memory(&r, s, vm->mem.regions[i].host, opts->map_memory, opts->verify_memory)) < 0)
			goto out;
	}
	/* The VM clock first, before the CPUs: an engine whose TSC counts
	 * the VM clock (emu, docs/architecture.md "Time") turns the saved
	 * IA32_TSC into an offset from the clock as it reads at that moment,
	 * so the clock must already go on from its saved value; loaded after,
	 * its jump would carry the TSC ahead of the HPET, PM timer and LAPIC
	 * timer by the clock's whole saved value. */
	loaded = calloc(n_devs ? n_devs : 1, sizeof(*loaded));
	if (!loaded) {
		rc = err_set(-ENOMEM, "snapshot: out of memory");
		goto out;
	}
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned i = 0; i < n_devs && rc == 0; i++) {
		if (strcmp(devs[i].sec->name, SNAPSHOT_CLOCK_DEVICE))
			continue;
		rc = devs[i].load(devs[i].opaque, devs[i].data, devs[i].sec->length);
		if (rc < 0)
			err_wrap(rc, "snapshot %s: device %s", path, devs[i].sec->name);
		loaded[i] = true;
	}
	pthread_mutex_unlock(&vm->dev_lock);
	for (unsigned i = 0; i < vm->n_vcpus && rc == 0; i++) {
		struct vcpu *v = vm->vcpus[i];
		const struct accel_ops *a = vm->accel;
		struct cpu_blob *b = &cpus[i];
		if (!a->set_regs || !a->set_sregs || !a->set_fpu) {
			rc = err_set(-ENOTSUP, "snapshot: the %s engine cannot load CPU state", a->name);
			goto out;
		}
		if ((rc = a->set_sregs(v, &b->sregs)) < 0 || (rc = a->set_regs(v, &b->regs)) < 0 ||
		    (rc = a->set_fpu(v, &b->fpu)) < 0) {
			err_wrap(rc, "snapshot %s: cpu%u", path, i);
			goto out;
		}
		for (unsigned k = 0; a->set_msrs && k < b->p.n_msrs; k++) {
			struct x86_msr_entry e = { .index = b->msrs[k].index, .value = b->msrs[k].value };
			if (a->set_msrs(v, &e, 1) != 1)
				log_warn("snapshot", "cpu%u: MSR %#x not restored", i, e.index);
		}
		pthread_mutex_lock(&v->lock);
		v->run_state = (enum vcpu_run_state)b->p.run_state;
		v->sipi_vector = (uint8_t)b->p.sipi_vector;
		pthread_mutex_unlock(&v->lock);
	}
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned i = 0; i < n_devs && rc == 0; i++) {
		if (loaded[i])
			continue;
		rc = devs[i].load(devs[i].opaque, devs[i].data, devs[i].sec->length);
		if (rc < 0)
			err_wrap(rc, "snapshot %s: device %s", path, devs[i].sec->name);
	}
	pthread_mutex_unlock(&vm->dev_lock);
	if (rc == 0)
		log_info("snapshot", "restored %s: %u vCPUs, %u devices, %" PRIu64 " MiB RAM%s", path, vm->n_vcpus, n_devs,
			 vm->mem.ram_size >> 20, opts->map_memory ? " (mapped)" : "");
out:
	for (unsigned i = 0; i < n_devs; i++)
		free(devs[i].data);
	free(devs);
	free(loaded);
	free(cpus);
	json_decref(c);
	snap_reader_close(&r);
	return rc;
}
