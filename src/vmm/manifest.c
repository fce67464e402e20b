/* JSON manifest -> struct vm_config (docs/manifest.md).
 *
 * Table-driven: each top-level field has one parser; list entries have
 * their own tables.  Every error names the field, the value (as JSON) and
 * what was expected, and unknown fields are errors, so that a typo never
 * silently falls back to a default. */
#include "vmm/manifest.h"

#include "machine/cpu_model.h"
#include "util/error.h"
#include "vmm/host_power.h"
#include "vmm/net.h"
#include "vmm/vm.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const vm_manifest_fields[] = {
	"engine", "cpu", "cpus", "max_cpus", "memory", "memory_hotplug", "memory_backend", "memory_page_size", "numa_nodes", "kernel", "initrd", "cmdline",
	"decompress", "no_reboot", "on_panic", "deterministic", "hyperv", "compound", "code_cache", "jit", "sandbox", "serial", "console", "api_socket",
	"restore", "disks", "disks[].path", "disks[].format", "disks[].readonly", "disks[].key_file",
	"disks[].serial", "disks[].id", "disks[].cache", "disks[].queues", "disks[].packed", "rng", "rng_rate",
	"nets", "nets[].type", "nets[].ifname", "nets[].mac", "nets[].hostfwd", "nets[].hotplug",
	"devices", "devices[].type", "devices[].id", "devices[].params",
	"consoles", "consoles[].type", "consoles[].backend",
	"plugin_dirs",
	"numa",   /* nodes[].memory, .cpus, .host_nodes, distances, policy: f_numa_topology() */
	"power",  /* on_host_sleep, on_host_shutdown, save_file, register: f_power() */
	NULL,
};

struct mctx {
	const char *name;      /* for messages */
	const char *base_dir;  /* relative paths resolve here */
};

/* The value as compact JSON for a message, shortened if long. */
static void value_text(json_t *v, char *buf, size_t len)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!s) {
		snprintf(buf, len, "(value)");
		return;
	}
	if (strlen(s) >= len && len > 4)
		snprintf(buf, len, "%.*s...", (int)(len - 4), s);
	else
		snprintf(buf, len, "%s", s);
	free(s);
}

static int bad(const struct mctx *m, const char *field, json_t *v, const char *problem, const char *expected)
{
	char val[96];
	value_text(v, val, sizeof(val));
	return err_set(-EINVAL, "manifest %s: %s: %s %s (expected %s)", m->name, field, val, problem, expected);
}

static char *resolve(const struct mctx *m, const char *path)
{
	if (!m->base_dir || path[0] == '/' || !path[0])
		return strdup(path);
	size_t n = strlen(m->base_dir) + strlen(path) + 2;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", m->base_dir, path);
	return out;
}

static int get_string(const struct mctx *m, const char *field, json_t *v, const char *expected, char **out,
		      bool is_path)
{
	if (!json_is_string(v))
		return bad(m, field, v, "is not a string", expected);
	const char *s = json_string_value(v);
	if (is_path && !s[0])
		return bad(m, field, v, "is empty", expected);
	char *dup = is_path ? resolve(m, s) : strdup(s);
	if (!dup)
		return err_set(-ENOMEM, "manifest %s: %s: out of memory", m->name, field);
	free(*out);
	*out = dup;
	return 0;
}

static int get_uint(const struct mctx *m, const char *field, json_t *v, long long lo, long long hi, unsigned *out)
{
	char expected[64];
	snprintf(expected, sizeof(expected), "%lld to %lld", lo, hi);
	if (!json_is_integer(v))
		return bad(m, field, v, "is not an integer", expected);
	long long x = json_integer_value(v);
	if (x < lo || x > hi)
		return bad(m, field, v, "is out of range", expected);
	*out = (unsigned)x;
	return 0;
}

static int get_bool(const struct mctx *m, const char *field, json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return bad(m, field, v, "is not a boolean", "true or false");
	*out = json_is_true(v);
	return 0;
}

/* "512M", "2G", "1.5GiB", "4096" -> bytes; -1 if not a size. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0 || !isfinite(v) || isspace((unsigned char)s[0]))
		return -1;
	double mult = 1;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': mult = 0x1p10; end++; break;
	case 'm': case 'M': mult = 0x1p20; end++; break;
	case 'g': case 'G': mult = 0x1p30; end++; break;
	case 't': case 'T': mult = 0x1p40; end++; break;
	default: return -1;
	}
	if (mult > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -1;
	double bytes = v * mult;
	if (bytes > 0x1p63 || bytes != floor(bytes))
		return -1;
	*out = (uint64_t)bytes;
	return 0;
}

typedef int (*field_fn)(const struct mctx *m, json_t *v, struct vm_config *cfg);

static int f_engine(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	const char *exp = "\"emu\" or \"kvm\"";
	if (!json_is_string(v))
		return bad(m, "engine", v, "is not a string", exp);
	if (strcmp(json_string_value(v), "emu") && strcmp(json_string_value(v), "kvm"))
		return bad(m, "engine", v, "is not an engine", exp);
	return get_string(m, "engine", v, exp, &cfg->engine, false);
}

static int f_cpu(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	const char *exp = "host, max, x86-64, x86-64-v2 or x86-64-v3, then +FEATURE or -FEATURE "
			  "(`vessel run --cpu help` lists them)";
	struct cpu_model model;
	if (!json_is_string(v))
		return bad(m, "cpu", v, "is not a string", exp);
	/* The engine may still change (--engine): vm_config_validate()
	 * checks what it implements. */
	if (cpu_model_parse(json_string_value(v), false, &model) < 0)
		return bad(m, "cpu", v, "is not a CPU model", exp);
	return get_string(m, "cpu", v, exp, &cfg->cpu, false);
}

static int f_cpus(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_uint(m, "cpus", v, 1, VM_MAX_CPUS, &cfg->cpus);
}

static int f_max_cpus(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_uint(m, "max_cpus", v, 1, VM_MAX_CPUS, &cfg->max_cpus);
}

/* A size in bytes: an integer or a string such as "512M"; [lo, hi]. */
static int get_size(const struct mctx *m, const char *name, json_t *v, uint64_t lo, uint64_t hi, const char *exp,
		    uint64_t *out)
{
	uint64_t bytes;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return bad(m, name, v, "is negative", exp);
		bytes = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v)) {
		if (parse_size(json_string_value(v), &bytes) < 0)
			return bad(m, name, v, "is not a size", exp);
	} else {
		return bad(m, name, v, "is not a size", exp);
	}
	if (bytes < lo || bytes > hi)
		return bad(m, name, v, "is out of range", exp);
	*out = bytes;
	return 0;
}

static int f_memory(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_size(m, "memory", v, 16ULL << 20, 1ULL << 40,
			"bytes as an integer or a size such as \"512M\" or \"2G\", 16M to 1T", &cfg->mem_bytes);
}

static int f_memory_backend(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	if (!json_is_string(v) || gmem_backend_parse(json_string_value(v), &cfg->memory_backend) < 0)
		return bad(m, "memory_backend", v, "is not a backend", "\"thp\", \"normal\" or \"hugetlb\"");
	return 0;
}

static int f_memory_page_size(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_size(m, "memory_page_size", v, GMEM_HUGE_PAGE, GMEM_HUGE_PAGE_1G,
			"a hugetlb page size, \"2M\" or \"1G\"", &cfg->memory_page);
}

static int f_memory_hotplug(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_size(m, "memory_hotplug", v, 0, GMEM_HOTPLUG_MAX,
			"bytes as an integer or a size such as \"1G\", a multiple of 128M up to 32G", &cfg->mem_hotplug);
}

static int f_code_cache(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_size(m, "code_cache", v, 1ULL << 20, 16ULL << 30,
			"bytes as an integer or a size such as \"64M\", 1M to 16G", &cfg->code_cache_bytes);
}

static int f_numa(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_uint(m, "numa_nodes", v, 0, VM_MAX_CPUS, &cfg->numa_nodes);
}

static int f_kernel(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_string(m, "kernel", v, "a file path", &cfg->kernel, true);
}

static int f_initrd(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_string(m, "initrd", v, "a file path", &cfg->initrd, true);
}

static int f_cmdline(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_string(m, "cmdline", v, "a kernel command line string", &cfg->cmdline, false);
}

static int f_decompress(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_bool(m, "decompress", v, &cfg->decompress_kernel);
}

static int f_no_reboot(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_bool(m, "no_reboot", v, &cfg->no_reboot);
}

static int f_on_panic(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	if (!json_is_string(v) || vm_panic_action_parse(json_string_value(v), &cfg->on_panic) < 0)
		return bad(m, "on_panic", v, "is not a panic action", "\"poweroff\", \"pause\" or \"keep\"");
	return 0;
}

static int f_deterministic(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_bool(m, "deterministic", v, &cfg->deterministic);
}

static int f_jit(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_bool(m, "jit", v, &cfg->jit);
}

static int f_rng_rate(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return bad(m, "rng_rate", v, "is not a positive integer", "bytes a second, e.g. 4096");
	cfg->rng_rate = (uint64_t)json_integer_value(v);
	cfg->rng = true;
	return 0;
}

static int f_rng(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_bool(m, "rng", v, &cfg->rng);
}

/* A switch with details: true ("on"), false ("off") or the string a flag
 * takes, which vm_config_validate() checks. */
static int get_switch_string(const struct mctx *m, const char *field, json_t *v, const char *expected, char **out)
{
	if (json_is_boolean(v)) {
		free(*out);
		*out = strdup(json_is_true(v) ? "on" : "off");
		return *out ? 0 : err_set(-ENOMEM, "manifest %s: %s: out of memory", m->name, field);
	}
	return get_string(m, field, v, expected, out, false);
}

/* true, false, or a --compound string ("console=off"). */
static int f_compound(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_switch_string(m, "compound", v, "true, false or a --compound list", &cfg->compound);
}

/* true, false, or a --hyperv string ("off", "-crash,-time"). */
static int f_hyperv(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_switch_string(m, "hyperv", v, "true, false or a --hyperv feature list", &cfg->hyperv);
}

static int f_sandbox(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_bool(m, "sandbox", v, &cfg->sandbox);
}

static bool console_backend_ok(const char *s)
{
	return !strcmp(s, "stdio") || !strcmp(s, "none") ||
	       (!strncmp(s, "file:", 5) && s[5]) || (!strncmp(s, "unix:", 5) && s[5]);
}

#define BACKENDS "\"stdio\", \"none\", \"file:PATH\" or \"unix:PATH\""

static int f_serial(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	if (json_is_string(v) && !console_backend_ok(json_string_value(v)))
		return bad(m, "serial", v, "is not a console backend", BACKENDS);
	return get_string(m, "serial", v, BACKENDS, &cfg->serial, false);
}

/* Where the console goes, as --console: COM1 or a virtio-console (hvc0). */
static int f_console(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	const char *exp = "\"serial\" or \"virtio\"";
	if (!json_is_string(v) || (strcmp(json_string_value(v), "serial") && strcmp(json_string_value(v), "virtio")))
		return bad(m, "console", v, "is not a console device", exp);
	cfg->virtio_console = !strcmp(json_string_value(v), "virtio");
	return 0;
}

static int f_api_socket(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_string(m, "api_socket", v, "a Unix socket path", &cfg->api_socket, true);
}

static int f_restore(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return get_string(m, "restore", v, "a snapshot file path", &cfg->restore, true);
}

/* Checks that obj has only the given keys; names the first stranger. */
static int check_keys(const struct mctx *m, const char *where, json_t *obj, const char *const *keys)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val) {
		bool known = false;
		for (unsigned i = 0; keys[i] && !known; i++)
			known = !strcmp(key, keys[i]);
		if (!known) {
			char list[256] = "";
			for (unsigned i = 0; keys[i]; i++) {
				size_t l = strlen(list);
				snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", keys[i]);
			}
			return err_set(-EINVAL, "manifest %s: %s.%s: unknown field (expected one of %s)", m->name,
				       where, key, list);
		}
	}
	return 0;
}

/* A list field, "name": [entry, ...] with at most max entries, each
 * parsed by one call of entry() with where = "name[i]" for messages. */
typedef int (*entry_fn)(const struct mctx *m, const char *where, json_t *e, struct vm_config *cfg);

static int each_entry(const struct mctx *m, const char *name, json_t *v, unsigned max, const char *what,
		      entry_fn entry, struct vm_config *cfg)
{
	char exp[64];
	snprintf(exp, sizeof(exp), "a list of at most %u %s", max, what);
	if (!json_is_array(v))
		return bad(m, name, v, "is not a list", exp);
	if (json_array_size(v) > max)
		return bad(m, name, v, "is too long", exp);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		char where[48];
		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		int rc = entry(m, where, e, cfg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A list entry that must be an object with only the given keys; shape
 * is what the message shows as expected. */
static int entry_object(const struct mctx *m, const char *where, json_t *e, const char *const *keys,
			const char *shape)
{
	if (!json_is_object(e))
		return bad(m, where, e, "is not an object", shape);
	return check_keys(m, where, e, keys);
}

/* e's member key, NULL when absent; field becomes "where.key" for messages. */
static json_t *member(json_t *e, const char *where, const char *key, char *field, size_t len)
{
	snprintf(field, len, "%s.%s", where, key);
	return json_object_get(e, key);
}

static int disk_entry(const struct mctx *m, const char *where, json_t *e, struct vm_config *cfg)
{
	static const char *const keys[] = { "path", "format", "readonly", "key_file", "serial", "id", "cache", "queues",
					    "packed", NULL };
	char field[64];
	int rc = entry_object(m, where, e, keys, "{\"path\": ..., \"format\": ..., \"readonly\": ...}");
	if (rc < 0)
		return rc;
	struct vm_disk_config *d = &cfg->disks[cfg->n_disks];
	memset(d, 0, sizeof(*d));
	json_t *x = member(e, where, "path", field, sizeof(field));
	if (!x)
		return err_set(-EINVAL, "manifest %s: %s: missing (expected a disk image path)", m->name, field);
	cfg->n_disks++; /* from here on vm_config_free() owns d */
	if ((rc = get_string(m, field, x, "a disk image path", &d->path, true)) < 0)
		return rc;
	if ((x = member(e, where, "format", field, sizeof(field)))) {
		const char *fexp = "\"raw\" or \"vhd\"";
		if (json_is_string(x) && strcmp(json_string_value(x), "raw") && strcmp(json_string_value(x), "vhd"))
			return bad(m, field, x, "is not a disk format", fexp);
		if ((rc = get_string(m, field, x, fexp, &d->format, false)) < 0)
			return rc;
	}
	if ((x = member(e, where, "readonly", field, sizeof(field))) && (rc = get_bool(m, field, x, &d->readonly)) < 0)
		return rc;
	if ((x = member(e, where, "key_file", field, sizeof(field))) &&
	    (rc = get_string(m, field, x, "a key file path", &d->key_file, true)) < 0)
		return rc;
	if ((x = member(e, where, "serial", field, sizeof(field)))) {
		if (json_is_string(x) && strlen(json_string_value(x)) > 20)
			return bad(m, field, x, "is too long", "a string of at most 20 characters");
		if ((rc = get_string(m, field, x, "a string of at most 20 characters", &d->serial, false)) < 0)
			return rc;
	}
	if ((x = member(e, where, "id", field, sizeof(field)))) {
		if ((rc = get_string(m, field, x, "a disk name", &d->id, true)) < 0)
			return rc;
		for (unsigned j = 0; j + 1 < cfg->n_disks; j++)
			if (cfg->disks[j].id && !strcmp(cfg->disks[j].id, d->id))
				return bad(m, field, x, "is used twice", "a name unique among the disks");
	}
	if ((x = member(e, where, "cache", field, sizeof(field)))) {
		int c = json_is_string(x) ? vm_disk_cache_parse(json_string_value(x)) : -1;
		if (c < 0)
			return bad(m, field, x, "is not a cache mode", "\"writeback\", \"none\" or \"unsafe\"");
		d->cache = c;
	}
	if ((x = member(e, where, "queues", field, sizeof(field))) &&
	    (rc = get_uint(m, field, x, 1, VM_DISK_MAX_QUEUES, &d->queues)) < 0)
		return rc;
	if ((x = member(e, where, "packed", field, sizeof(field)))) {
		bool packed = true;
		if ((rc = get_bool(m, field, x, &packed)) < 0)
			return rc;
		d->split_only = !packed;
	}
	return 0;
}

static int f_disks(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return each_entry(m, "disks", v, VM_MAX_DISKS, "disk objects", disk_entry, cfg);
}

/* A size, vCPU range or host node range as the command line writes it:
 * a JSON string as is, an integer in decimal. */
static int spec_value(const struct mctx *m, const char *field, json_t *v, const char *exp, char *buf, size_t len)
{
	/* Letters, digits and '-' only: the value becomes part of a
	 * comma-separated node spec. */
	if (json_is_string(v) && json_string_length(v) < len - 1 && json_string_length(v) &&
	    strspn(json_string_value(v), "0123456789-KMGTkmgtiB") == json_string_length(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v) && json_integer_value(v) >= 0)
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else
		return bad(m, field, v, "is not valid", exp);
	return 0;
}

/* "numa": {"nodes": [{"memory", "cpus", "host_nodes"}], "distances":
 * [[A, B, D]], "policy"} (docs/numa.md); the checks across fields are
 * vm_config_validate()'s. */
static int f_numa_topology(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	static const char *const keys[] = { "nodes", "distances", "policy", "follow", NULL };
	static const char *const node_keys[] = { "memory", "cpus", "host_nodes", NULL };
	const char *exp = "{\"nodes\": [...], \"distances\": [[A, B, D], ...], \"policy\": ...}";
	if (!json_is_object(v))
		return bad(m, "numa", v, "is not an object", exp);
	int rc = check_keys(m, "numa", v, keys);
	if (rc < 0)
		return rc;
	memset(&cfg->numa, 0, sizeof(cfg->numa));
	json_t *nodes = json_object_get(v, "nodes"), *e;
	size_t i;
	if (nodes && (!json_is_array(nodes) || json_array_size(nodes) > NUMA_MAX_NODES))
		return bad(m, "numa.nodes", nodes, "is not a list of at most 64 nodes", "[{\"memory\": ..., \"cpus\": ...}]");
	json_array_foreach(nodes, i, e) {
		char where[32], spec[160], mem[48], cpus[24], host[24] = "";
		snprintf(where, sizeof(where), "numa.nodes[%zu]", i);
		if (!json_is_object(e))
			return bad(m, where, e, "is not an object", "{\"memory\": \"1G\", \"cpus\": \"0-1\"}");
		if ((rc = check_keys(m, where, e, node_keys)) < 0)
			return rc;
		json_t *x;
		char field[64];
		snprintf(field, sizeof(field), "%s.memory", where);
		if (!(x = json_object_get(e, "memory")))
			return err_set(-EINVAL, "manifest %s: %s: missing (expected a size such as \"1G\")", m->name, field);
		if ((rc = spec_value(m, field, x, "a size such as \"1G\" or bytes", mem, sizeof(mem))) < 0)
			return rc;
		snprintf(field, sizeof(field), "%s.cpus", where);
		if (!(x = json_object_get(e, "cpus")))
			return err_set(-EINVAL, "manifest %s: %s: missing (expected vCPUs such as \"0-1\")", m->name, field);
		if ((rc = spec_value(m, field, x, "vCPUs such as \"0-1\" or 2", cpus, sizeof(cpus))) < 0)
			return rc;
		snprintf(field, sizeof(field), "%s.host_nodes", where);
		if ((x = json_object_get(e, "host_nodes")) &&
		    (rc = spec_value(m, field, x, "host nodes such as \"0\" or \"0-1\"", host, sizeof(host))) < 0)
			return rc;
		snprintf(spec, sizeof(spec), "node,mem=%s,cpus=%s%s%s", mem, cpus, host[0] ? ",host-node=" : "", host);
		if ((rc = vnuma_parse_node(&cfg->numa, spec)) < 0)
			return err_wrap(rc, "manifest %s: %s", m->name, where);
	}
	json_t *dist = json_object_get(v, "distances");
	if (dist && !json_is_array(dist))
		return bad(m, "numa.distances", dist, "is not a list", "[[A, B, DISTANCE], ...]");
	json_array_foreach(dist, i, e) {
		char where[32];
		snprintf(where, sizeof(where), "numa.distances[%zu]", i);
		if (!json_is_array(e) || json_array_size(e) != 3 || !json_is_integer(json_array_get(e, 0)) ||
		    !json_is_integer(json_array_get(e, 1)) || !json_is_integer(json_array_get(e, 2)) ||
		    json_integer_value(json_array_get(e, 0)) < 0 || json_integer_value(json_array_get(e, 1)) < 0 ||
		    json_integer_value(json_array_get(e, 2)) < 0)
			return bad(m, where, e, "is not [A, B, DISTANCE]", "[0, 1, 20]");
		rc = vnuma_set_distance(&cfg->numa, (unsigned)json_integer_value(json_array_get(e, 0)),
					(unsigned)json_integer_value(json_array_get(e, 1)),
					(unsigned)json_integer_value(json_array_get(e, 2)));
		if (rc < 0)
			return err_wrap(rc, "manifest %s: %s", m->name, where);
	}
	json_t *follow = json_object_get(v, "follow");
	if (follow && !json_is_boolean(follow))
		return bad(m, "numa.follow", follow, "is not a boolean", "true or false");
	if (follow)
		cfg->numa.follow = json_is_true(follow);
	json_t *pol = json_object_get(v, "policy");
	if (pol && (!json_is_string(pol) || vnuma_parse_policy(json_string_value(pol), &cfg->numa.policy) < 0))
		return bad(m, "numa.policy", pol, "is not a policy", "\"bind\", \"preferred\" or \"interleave\"");
	return 0;
}

/* Device ids name devices in the control API: keep them to a plain
 * alphabet so they never need quoting on a command line. */
static bool device_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

void vm_device_config_free(struct vm_device_config *dev)
{
	free(dev->type);
	free(dev->id);
	free(dev->params);
	memset(dev, 0, sizeof(*dev));
}

int vm_manifest_parse_device(json_t *e, const char *where, struct vm_device_config *out)
{
	if (!json_is_object(e))
		return err_set(-EINVAL, "%s: not an object (expected {\"type\": ..., \"id\": ..., \"params\": {...}})",
			       where);
	const char *key;
	json_t *val;
	json_object_foreach(e, key, val) {
		if (strcmp(key, "type") && strcmp(key, "id") && strcmp(key, "params"))
			return err_set(-EINVAL, "%s.%s: unknown field (expected one of type, id, params)", where, key);
	}
	json_t *type = json_object_get(e, "type"), *id = json_object_get(e, "id"), *params = json_object_get(e, "params");
	char val_buf[96];
	if (!type)
		return err_set(-EINVAL, "%s.type: missing (expected a device type name)", where);
	if (!json_is_string(type) || !json_string_length(type)) {
		value_text(type, val_buf, sizeof(val_buf));
		return err_set(-EINVAL, "%s.type: %s is not a device type name (expected a non-empty string)", where,
			       val_buf);
	}
	if (!id)
		return err_set(-EINVAL, "%s.id: missing (expected a unique device id)", where);
	if (!json_is_string(id) || !device_id_ok(json_string_value(id))) {
		value_text(id, val_buf, sizeof(val_buf));
		return err_set(-EINVAL, "%s.id: %s is not a device id (expected 1 to 63 of A-Z a-z 0-9 - _ .)", where,
			       val_buf);
	}
	if (params && !json_is_object(params)) {
		value_text(params, val_buf, sizeof(val_buf));
		return err_set(-EINVAL, "%s.params: %s is not an object (expected {\"name\": value, ...})", where,
			       val_buf);
	}
	struct vm_device_config d = { 0 };
	d.type = strdup(json_string_value(type));
	d.id = strdup(json_string_value(id));
	d.params = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
	if (!d.type || !d.id || !d.params) {
		vm_device_config_free(&d);
		return err_set(-ENOMEM, "%s: out of memory", where);
	}
	*out = d;
	return 0;
}

static int device_entry(const struct mctx *m, const char *where, json_t *e, struct vm_config *cfg)
{
	struct vm_device_config d;
	if (vm_manifest_parse_device(e, where, &d) < 0)
		return err_wrap(-EINVAL, "manifest %s", m->name);
	for (unsigned j = 0; j < cfg->n_devices; j++) {
		if (!strcmp(cfg->devices[j].id, d.id)) {
			err_set(-EINVAL, "manifest %s: %s.id: \"%s\" is already the id of devices[%u] (expected a unique id)",
				m->name, where, d.id, j);
			vm_device_config_free(&d);
			return -EINVAL;
		}
	}
	cfg->devices[cfg->n_devices++] = d;
	return 0;
}

static int f_devices(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return each_entry(m, "devices", v, VM_MAX_DEVICES, "device objects", device_entry, cfg);
}

static int net_entry(const struct mctx *m, const char *where, json_t *e, struct vm_config *cfg)
{
	static const char *const keys[] = { "type", "ifname", "mac", "hostfwd", "hotplug", NULL };
	char field[64];
	int rc = entry_object(m, where, e, keys, "{\"type\": \"user\" or \"tap\", ...}");
	if (rc < 0)
		return rc;
	struct vm_net_config *n = &cfg->nets[cfg->n_nets++];   /* vm_config_free() owns it */
	memset(n, 0, sizeof(*n));
	json_t *x = member(e, where, "type", field, sizeof(field));
	const char *texp = "\"user\" or \"tap\"";
	if (!x)
		return err_set(-EINVAL, "manifest %s: %s: missing (expected %s)", m->name, field, texp);
	if (!json_is_string(x) || (strcmp(json_string_value(x), "user") && strcmp(json_string_value(x), "tap")))
		return bad(m, field, x, "is not a network type", texp);
	if ((rc = get_string(m, field, x, texp, &n->type, false)) < 0)
		return rc;
	if ((x = member(e, where, "ifname", field, sizeof(field))) &&
	    (rc = get_string(m, field, x, "a host interface name", &n->ifname, false)) < 0)
		return rc;
	if ((x = member(e, where, "mac", field, sizeof(field)))) {
		const char *mexp = "a unicast MAC address like \"52:54:00:12:34:56\"";
		if (!json_is_string(x) || net_parse_mac(json_string_value(x), n->mac) < 0)
			return bad(m, field, x, "is not a MAC address", mexp);
		n->has_mac = true;
	}
	if ((x = member(e, where, "hostfwd", field, sizeof(field)))) {
		const char *fexp = "a list of \"tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT\" rules";
		if (!json_is_array(x) || json_array_size(x) > VM_MAX_HOSTFWD)
			return bad(m, field, x, json_is_array(x) ? "is too long" : "is not a list", fexp);
		size_t k;
		json_t *r;
		json_array_foreach(x, k, r) {
			snprintf(field, sizeof(field), "%s.hostfwd[%zu]", where, k);
			if (!json_is_string(r) || net_parse_hostfwd(json_string_value(r), &n->hostfwd[k]) < 0)
				return bad(m, field, r, "is not a forwarding rule", fexp);
			n->n_hostfwd++;
		}
	}
	if ((x = member(e, where, "hotplug", field, sizeof(field)))) {
		if (!json_is_boolean(x))
			return bad(m, field, x, "is not a boolean", "true or false");
		n->hotplug = json_is_true(x);
	}
	/* The combinations (tap needs ifname...) are vm_config_validate's. */
	return 0;
}

/* "nets": [{"type": "user", "hostfwd": ["tcp::2222-:22"], "mac": "52:54:..."},
 * {"type": "tap", "ifname": "tap0"}]: the same as --net (src/vmm/net.c). */
static int f_nets(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return each_entry(m, "nets", v, VM_MAX_NETS, "network objects", net_entry, cfg);
}

static int console_entry(const struct mctx *m, const char *where, json_t *e, struct vm_config *cfg)
{
	static const char *const keys[] = { "type", "backend", NULL };
	char field[64];
	int rc = entry_object(m, where, e, keys, "{\"type\": ..., \"backend\": ...}");
	if (rc < 0)
		return rc;
	json_t *t = member(e, where, "type", field, sizeof(field)), *b;
	const char *texp = "\"serial\" or \"virtio\"";
	if (!t)
		return err_set(-EINVAL, "manifest %s: %s: missing (expected %s)", m->name, field, texp);
	if (!json_is_string(t) || (strcmp(json_string_value(t), "serial") && strcmp(json_string_value(t), "virtio")))
		return bad(m, field, t, "is not a console type", texp);
	if ((b = member(e, where, "backend", field, sizeof(field))) &&
	    (!json_is_string(b) || !console_backend_ok(json_string_value(b))))
		return bad(m, field, b, "is not a console backend", BACKENDS);
	struct vm_console_config *c = &cfg->consoles[cfg->n_consoles++];
	c->type = strdup(json_string_value(t));
	c->backend = strdup(b ? json_string_value(b) : "none");
	if (!c->type || !c->backend)
		return err_set(-ENOMEM, "manifest %s: %s: out of memory", m->name, where);
	return 0;
}

static int f_consoles(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return each_entry(m, "consoles", v, VM_MAX_CONSOLES, "console objects", console_entry, cfg);
}

static int plugin_dir_entry(const struct mctx *m, const char *where, json_t *e, struct vm_config *cfg)
{
	char *dir = NULL;
	int rc = get_string(m, where, e, "a directory path", &dir, true);
	if (rc < 0)
		return rc;
	cfg->plugin_dirs[cfg->n_plugin_dirs++] = dir;
	return 0;
}

static int f_plugin_dirs(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	return each_entry(m, "plugin_dirs", v, VM_MAX_PLUGIN_DIRS, "directory paths", plugin_dir_entry, cfg);
}

static int f_power(const struct mctx *m, json_t *v, struct vm_config *cfg)
{
	static const char *const keys[] = { "on_host_sleep", "on_host_shutdown", "save_file", "register", "host_status",
					    NULL };
	if (!json_is_object(v))
		return bad(m, "power", v, "is not an object", "{\"on_host_sleep\": ..., \"on_host_shutdown\": ...}");
	int rc = check_keys(m, "power", v, keys);
	if (rc < 0)
		return rc;
	static const char *const pol[] = { "on_host_sleep", "on_host_shutdown" };
	enum vm_power_policy *dst[] = { &cfg->on_host_sleep, &cfg->on_host_shutdown };
	for (unsigned i = 0; i < 2; i++) {
		json_t *p = json_object_get(v, pol[i]);
		char field[32];
		snprintf(field, sizeof(field), "power.%s", pol[i]);
		if (p && (!json_is_string(p) || vm_power_policy_parse(json_string_value(p), dst[i]) < 0))
			return bad(m, field, p, "is not a power policy",
				   "\"suspend\", \"save\", \"pause\", \"shutdown\" or \"none\"");
	}
	json_t *r = json_object_get(v, "register");
	if (r) {
		bool reg = true;
		if ((rc = get_bool(m, "power.register", r, &reg)) < 0)
			return rc;
		cfg->no_register = !reg;
	}
	/* host_status: true (the host's own supplies), false, or a directory
	 * of the same shape (docs/power.md "The host's power state"). */
	json_t *h = json_object_get(v, "host_status");
	if (h && json_is_boolean(h)) {
		free(cfg->host_power_status);
		cfg->host_power_status = json_is_true(h) ? strdup(HOST_POWER_DEFAULT_DIR) : NULL;
		if (json_is_true(h) && !cfg->host_power_status)
			return err_set(-ENOMEM, "out of memory");
	} else if (h && (rc = get_string(m, "power.host_status", h, "true, false or a power-supply directory",
					   &cfg->host_power_status, true)) < 0) {
		return rc;
	}
	json_t *f = json_object_get(v, "save_file");
	if (f)
		return get_string(m, "power.save_file", f, "a snapshot file path", &cfg->power_save_file, true);
	return 0;
}

static const struct {
	const char *name;
	field_fn parse;
} top_fields[] = {
	{ "engine", f_engine }, { "cpu", f_cpu }, { "cpus", f_cpus }, { "max_cpus", f_max_cpus }, { "memory", f_memory },
	{ "memory_hotplug", f_memory_hotplug }, { "memory_backend", f_memory_backend },
	{ "memory_page_size", f_memory_page_size }, { "numa_nodes", f_numa },
	{ "kernel", f_kernel }, { "initrd", f_initrd }, { "cmdline", f_cmdline },
	{ "decompress", f_decompress }, { "no_reboot", f_no_reboot }, { "on_panic", f_on_panic }, { "deterministic", f_deterministic },
	{ "hyperv", f_hyperv }, { "compound", f_compound }, { "code_cache", f_code_cache },
	{ "jit", f_jit }, { "sandbox", f_sandbox },
	{ "serial", f_serial }, { "api_socket", f_api_socket }, { "restore", f_restore },
	{ "disks", f_disks }, { "devices", f_devices }, { "consoles", f_consoles },
	{ "plugin_dirs", f_plugin_dirs }, { "numa", f_numa_topology }, { "rng", f_rng }, { "console", f_console }, { "rng_rate", f_rng_rate }, { "nets", f_nets },
	{ "power", f_power },
};

/* Lists are replaced as a whole, never appended to. */
static void clear_lists(json_t *root, struct vm_config *cfg)
{
	if (json_object_get(root, "disks")) {
		for (unsigned i = 0; i < cfg->n_disks; i++) {
			free(cfg->disks[i].path);
			free(cfg->disks[i].format);
			free(cfg->disks[i].key_file);
			free(cfg->disks[i].serial);
			free(cfg->disks[i].id);
		}
		memset(cfg->disks, 0, sizeof(cfg->disks));
		cfg->n_disks = 0;
	}
	if (json_object_get(root, "devices")) {
		for (unsigned i = 0; i < cfg->n_devices; i++)
			vm_device_config_free(&cfg->devices[i]);
		cfg->n_devices = 0;
	}
	if (json_object_get(root, "consoles")) {
		for (unsigned i = 0; i < cfg->n_consoles; i++) {
			free(cfg->consoles[i].type);
			free(cfg->consoles[i].backend);
		}
		memset(cfg->consoles, 0, sizeof(cfg->consoles));
		cfg->n_consoles = 0;
	}
	if (json_object_get(root, "plugin_dirs")) {
		for (unsigned i = 0; i < cfg->n_plugin_dirs; i++)
			free(cfg->plugin_dirs[i]);
		memset(cfg->plugin_dirs, 0, sizeof(cfg->plugin_dirs));
		cfg->n_plugin_dirs = 0;
	}
}

int vm_manifest_parse(const char *text, const char *name, const char *base_dir, struct vm_config *cfg)
{
	struct mctx m = { .name = name, .base_dir = base_dir };
	json_error_t jerr;
	/* Duplicate keys are an error: the second would silently win. */
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(-EINVAL, "manifest %s: line %d column %d: %s", name, jerr.line, jerr.column, jerr.text);
	int rc = 0;
	if (!json_is_object(root)) {
		rc = bad(&m, "(top level)", root, "is not an object", "{\"cpus\": ..., \"memory\": ...}");
		goto out;
	}
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		bool known = false;
		for (size_t i = 0; i < sizeof(top_fields) / sizeof(top_fields[0]); i++)
			known |= !strcmp(key, top_fields[i].name);
		if (!known) {
			rc = err_set(-EINVAL, "manifest %s: %s: unknown field (see docs/manifest.md for the fields)", name, key);
			goto out;
		}
	}
	clear_lists(root, cfg);
	/* In table order, so that the first error reported is stable. */
	for (size_t i = 0; i < sizeof(top_fields) / sizeof(top_fields[0]); i++) {
		json_t *v = json_object_get(root, top_fields[i].name);
		if (v && (rc = top_fields[i].parse(&m, v, cfg)) < 0)
			goto out;
	}
	if (cfg->numa_nodes > cfg->cpus)
		rc = err_set(-EINVAL, "manifest %s: numa_nodes: %u is more than cpus (expected 0 to %u)", name,
			     cfg->numa_nodes, cfg->cpus);
out:
	json_decref(root);
	return rc;
}

int vm_manifest_load(const char *path, struct vm_config *cfg)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_set(-errno, "manifest %s: %s", path, strerror(errno));
	/* Manifests are small: refuse anything that is clearly not one. */
	char *text = malloc(1 << 20);
	size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
	bool too_big = text && n == (1 << 20) - 1 && fgetc(f) != EOF;
	int ioerr = ferror(f);
	fclose(f);
	if (!text)
		return err_set(-ENOMEM, "manifest %s: out of memory", path);
	if (ioerr || too_big) {
		free(text);
		return err_set(-EINVAL, "manifest %s: %s", path, too_big ? "larger than 1 MiB" : "read error");
	}
	text[n] = 0;
	if (strlen(text) != n) {
		free(text);
		return err_set(-EINVAL, "manifest %s: contains a NUL byte (expected JSON text)", path);
	}
	char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
	const char *base = NULL;
	if (slash) {
		*slash = 0;
		base = dir[0] ? dir : "/";
	}
	int rc = vm_manifest_parse(text, path, base, cfg);
	free(dir);
	free(text);
	if (rc == 0) {
		free(cfg->manifest);
		cfg->manifest = strdup(path);
	}
	return rc;
}
