#include "vmm/config.h"
#include "vmm/net.h"

#include "hv/hyperv.h"
#include "machine/compound.h"
#include "machine/cpu_model.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vm_config_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->engine = strdup("emu");
	cfg->cpus = 1;
	cfg->mem_bytes = 512ULL << 20;
	cfg->decompress_kernel = true;
	cfg->sandbox = true;
	/* The interpreter stays as --jit off, the reference the tests
	 * compare against (docs/architecture.md "Code generation"). */
	cfg->jit = true;
	cfg->serial = strdup("stdio");
	cfg->on_host_sleep = VM_POWER_PAUSE;
	cfg->on_host_shutdown = VM_POWER_SHUTDOWN;
}

static const char *const panic_action_names[VM_PANIC_ACTION_COUNT] = {
	[VM_PANIC_KEEP] = "keep", [VM_PANIC_PAUSE] = "pause", [VM_PANIC_POWEROFF] = "poweroff",
};

const char *vm_panic_action_name(enum vm_panic_action a)
{
	return (unsigned)a < VM_PANIC_ACTION_COUNT ? panic_action_names[a] : "?";
}

int vm_panic_action_parse(const char *name, enum vm_panic_action *out)
{
	for (unsigned i = 0; i < VM_PANIC_ACTION_COUNT; i++) {
		if (!strcmp(name, panic_action_names[i])) {
			*out = (enum vm_panic_action)i;
			return 0;
		}
	}
	return err_set(-EINVAL, "'%s' is not a panic action (expected poweroff, pause or keep)", name);
}

static const char *const power_policy_names[VM_POWER_POLICY_COUNT] = {
	[VM_POWER_NONE] = "none", [VM_POWER_SUSPEND] = "suspend", [VM_POWER_SAVE] = "save",
	[VM_POWER_PAUSE] = "pause", [VM_POWER_SHUTDOWN] = "shutdown",
};

const char *vm_power_policy_name(enum vm_power_policy p)
{
	return (unsigned)p < VM_POWER_POLICY_COUNT ? power_policy_names[p] : "?";
}

int vm_power_policy_parse(const char *name, enum vm_power_policy *out)
{
	for (unsigned i = 0; i < VM_POWER_POLICY_COUNT; i++) {
		if (!strcmp(name, power_policy_names[i])) {
			*out = (enum vm_power_policy)i;
			return 0;
		}
	}
	return err_set(-EINVAL, "'%s' is not a power policy (expected suspend, save, pause, shutdown or none)", name);
}

int vm_config_validate(const struct vm_config *cfg)
{
	if (strcmp(cfg->engine, "emu") && strcmp(cfg->engine, "kvm"))
		return err_set(-EINVAL, "engine: '%s' is not an engine (expected emu or kvm)", cfg->engine);
	if (cfg->cpus < 1 || cfg->cpus > VM_MAX_CPUS)
		return err_set(-EINVAL, "cpus: %u is out of range (expected 1 to %d)", cfg->cpus, VM_MAX_CPUS);
	struct cpu_model model;
	if (cfg->cpu && cpu_model_parse(cfg->cpu, !strcmp(cfg->engine, "emu"), &model) < 0)
		return -EINVAL;
	if (cfg->mem_bytes < (16ULL << 20) || cfg->mem_bytes > (1ULL << 40))
		return err_set(-EINVAL, "memory: %llu bytes is out of range (expected 16 MiB to 1 TiB)",
			       (unsigned long long)cfg->mem_bytes);
	if (cfg->max_cpus && (cfg->max_cpus < cfg->cpus || cfg->max_cpus > VM_MAX_CPUS))
		return err_set(-EINVAL, "max_cpus: %u is out of range (expected %u, the CPUs at power-on, to %d)",
			       cfg->max_cpus, cfg->cpus, VM_MAX_CPUS);
	if (cfg->code_cache_bytes && (cfg->code_cache_bytes < (1ULL << 20) || cfg->code_cache_bytes > (16ULL << 30)))
		return err_set(-EINVAL, "code_cache: %llu bytes is out of range (expected 1 MiB to 16 GiB)",
			       (unsigned long long)cfg->code_cache_bytes);
	if (cfg->numa_nodes > vm_config_possible_cpus(cfg))
		return err_set(-EINVAL, "numa_nodes: %u is more than the %u CPUs", cfg->numa_nodes,
			       vm_config_possible_cpus(cfg));
	struct numa_config numa;
	int rc = vm_config_numa(cfg, &numa);
	if (rc < 0)
		return rc;
	uint64_t page = cfg->memory_page ? cfg->memory_page : GMEM_HUGE_PAGE;
	if (page != GMEM_HUGE_PAGE && page != GMEM_HUGE_PAGE_1G)
		return err_set(-EINVAL, "memory_page_size: %llu KiB is not a huge page size (expected 2M or 1G)",
			       (unsigned long long)(page >> 10));
	if (page != GMEM_HUGE_PAGE && cfg->memory_backend != GMEM_BACKEND_HUGETLB)
		return err_set(-EINVAL, "memory_page_size: 1 GiB pages are hugetlb pages (add --memory-backend hugetlb)");
	if (cfg->memory_backend == GMEM_BACKEND_HUGETLB) {
		if (cfg->mem_bytes % page)
			return err_set(-EINVAL, "memory_backend: hugetlb needs memory in whole %s pages, not %llu KiB",
				       gmem_page_name(page), (unsigned long long)(cfg->mem_bytes >> 10));
		/* A host whose CPU or kernel has no 1 GiB pages has no pool
		 * for them (Documentation/admin-guide/mm/hugetlbpage.rst). */
		if (page == GMEM_HUGE_PAGE_1G && !cfg->restore && access(GMEM_HUGE_SYSFS "/hugepages-1048576kB", F_OK))
			return err_set(-EINVAL, "memory_page_size: this host has no 1 GiB huge pages (no %s/hugepages-"
						"1048576kB: its CPU lacks pdpe1gb or its kernel hugetlb support)",
				       GMEM_HUGE_SYSFS);
		struct host_numa host;
		if (cfg->restore || host_numa_read(&host, NULL) < 0)
			memset(&host, 0, sizeof(host));   /* the nodes' pages only: the mapping says the rest */
		if ((rc = vnuma_check_hugepages(&numa, &host, cfg->mem_bytes, page)) < 0)
			return err_set(-EINVAL, "%s", err_msg());
	}
	unsigned nodes = numa.n_nodes ? numa.n_nodes : 1;
	if (cfg->mem_hotplug % GMEM_HOTPLUG_BLOCK || cfg->mem_hotplug > GMEM_HOTPLUG_MAX ||
	    (cfg->mem_hotplug && cfg->mem_hotplug < nodes * GMEM_HOTPLUG_BLOCK))
		return err_set(-EINVAL, "memory_hotplug: %llu MiB is not a multiple of %llu MiB from %llu MiB (one "
					"block per NUMA node) to %llu GiB",
			       (unsigned long long)(cfg->mem_hotplug >> 20), GMEM_HOTPLUG_BLOCK >> 20,
			       nodes * (GMEM_HOTPLUG_BLOCK >> 20), GMEM_HOTPLUG_MAX >> 30);
	if (!cfg->kernel && !cfg->restore)
		return err_set(-EINVAL, "kernel: no kernel given (use --kernel FILE, or --restore FILE)");
	if (cfg->initrd && !cfg->kernel)
		return err_set(-EINVAL, "initrd: an initrd needs a kernel");
	bool hv_on;
	uint32_t hv_features;
	if (hv_parse(cfg->hyperv, &hv_on, &hv_features) < 0)
		return -EINVAL;
	unsigned compound;
	if (compound_parse(cfg->compound, &compound) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < cfg->n_nets; i++) {
		char where[16];
		snprintf(where, sizeof(where), "nets[%u]", i);
		if (net_config_check(&cfg->nets[i], where) < 0)
			return -EINVAL;
	}
	const char *s = cfg->serial;
	if (strcmp(s, "stdio") && strcmp(s, "none") && strncmp(s, "file:", 5) && strncmp(s, "unix:", 5))
		return err_set(-EINVAL, "serial: '%s' is not a console (expected stdio, none, file:PATH or unix:PATH)", s);
	if ((cfg->on_host_sleep == VM_POWER_SAVE || cfg->on_host_shutdown == VM_POWER_SAVE) && !cfg->power_save_file)
		return err_set(-EINVAL, "power: the save policy needs a snapshot file (--power-save-file FILE or the "
				       "manifest's power.save_file)");
	return 0;
}

unsigned vm_config_possible_cpus(const struct vm_config *cfg)
{
	return cfg->max_cpus > cfg->cpus ? cfg->max_cpus : cfg->cpus;
}

int vm_config_numa(const struct vm_config *cfg, struct numa_config *out)
{
	*out = cfg->numa;
	/* Every possible CPU is in a node, those `cpu add` plugs in later
	 * too: the SRAT gives their nodes from boot (docs/numa.md). */
	int rc = vnuma_config_finish(out, cfg->numa_nodes, vm_config_possible_cpus(cfg), cfg->mem_bytes);
	if (rc == 0 && out->n_nodes) {
		struct host_numa host;
		rc = host_numa_read(&host, NULL);
		if (rc == 0)
			rc = vnuma_host_resolve(out, &host);
	}
	return rc;
}

void vm_config_free(struct vm_config *cfg)
{
	free(cfg->engine);
	free(cfg->cpu);
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->cmdline);
	free(cfg->serial);
	free(cfg->api_socket);
	free(cfg->restore);
	free(cfg->manifest);
	free(cfg->hyperv);
	free(cfg->compound);
	for (unsigned i = 0; i < cfg->n_nets; i++) {
		free(cfg->nets[i].type);
		free(cfg->nets[i].ifname);
	}
	free(cfg->power_save_file);
	free(cfg->host_power_status);
	for (unsigned i = 0; i < cfg->n_disks; i++) {
		free(cfg->disks[i].path);
		free(cfg->disks[i].format);
		free(cfg->disks[i].key_file);
		free(cfg->disks[i].serial);
		free(cfg->disks[i].id);
	}
	for (unsigned i = 0; i < cfg->n_plugin_dirs; i++)
		free(cfg->plugin_dirs[i]);
	for (unsigned i = 0; i < cfg->n_devices; i++) {
		free(cfg->devices[i].type);
		free(cfg->devices[i].id);
		free(cfg->devices[i].params);
	}
	for (unsigned i = 0; i < cfg->n_consoles; i++) {
		free(cfg->consoles[i].type);
		free(cfg->consoles[i].backend);
	}
	memset(cfg, 0, sizeof(*cfg));
}
