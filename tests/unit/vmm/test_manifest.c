/* Manifest parsing: every field, every error message, and the schema kept
 * in step with the parser. */
#include "util/error.h"
#include "vmm/config.h"
#include "vmm/manifest.h"
#include "vmm/vm.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct vm_config cfg;

static void setup(void) { vm_config_defaults(&cfg); err_clear(); }
static void teardown(void) { vm_config_free(&cfg); }

TestSuite(manifest, .init = setup, .fini = teardown);

static int parse(const char *text) { return vm_manifest_parse(text, "vm.json", NULL, &cfg); }

static void expect_error(const char *text, const char *message)
{
	cr_assert_lt(parse(text), 0, "accepted: %s", text);
	cr_assert_str_eq(err_msg(), message);
}

Test(manifest, every_field_fills_the_config)
{
	cr_assert_eq(parse("{\"engine\": \"kvm\", \"cpus\": 4, \"memory\": \"1.5G\", \"numa_nodes\": 2,"
			   " \"kernel\": \"bz\", \"initrd\": \"rd\", \"cmdline\": \"console=ttyS0 quiet\","
			   " \"decompress\": false, \"no_reboot\": true, \"deterministic\": true,"
			   " \"serial\": \"file:out.log\", \"api_socket\": \"/run/vm.sock\", \"restore\": \"s.snap\","
			   " \"disks\": [{\"path\": \"a.img\"}, {\"path\": \"b.vhd\", \"format\": \"vhd\", \"readonly\": true,"
			   " \"key_file\": \"k\"}],"
			   " \"devices\": [{\"type\": \"mailbox\", \"id\": \"mb0\", \"params\": {\"port\": 1280, \"irq\": 5}},"
			   " {\"type\": \"mailbox\", \"id\": \"mb1\"}],"
			   " \"consoles\": [{\"type\": \"virtio\", \"backend\": \"unix:/tmp/c\"}, {\"type\": \"serial\"}],"
			   " \"plugin_dirs\": [\"/opt/p\", \"/usr/p\"]}"), 0, "%s", err_msg());
	cr_assert_str_eq(cfg.engine, "kvm");
	cr_assert_eq(cfg.cpus, 4);
	cr_assert_eq(cfg.mem_bytes, 1536ULL << 20);
	cr_assert_eq(cfg.numa_nodes, 2);
	cr_assert_str_eq(cfg.kernel, "bz");
	cr_assert_str_eq(cfg.initrd, "rd");
	cr_assert_str_eq(cfg.cmdline, "console=ttyS0 quiet");
	cr_assert_not(cfg.decompress_kernel);
	cr_assert(cfg.no_reboot);
	cr_assert(cfg.deterministic);
	cr_assert_str_eq(cfg.serial, "file:out.log");
	cr_assert_str_eq(cfg.api_socket, "/run/vm.sock");
	cr_assert_str_eq(cfg.restore, "s.snap");
	cr_assert_eq(cfg.n_disks, 2);
	cr_assert_str_eq(cfg.disks[0].path, "a.img");
	cr_assert_null(cfg.disks[0].format);
	cr_assert_not(cfg.disks[0].readonly);
	cr_assert_str_eq(cfg.disks[1].format, "vhd");
	cr_assert(cfg.disks[1].readonly);
	cr_assert_str_eq(cfg.disks[1].key_file, "k");
	cr_assert_eq(cfg.n_devices, 2);
	cr_assert_str_eq(cfg.devices[0].type, "mailbox");
	cr_assert_str_eq(cfg.devices[0].id, "mb0");
	cr_assert_str_eq(cfg.devices[0].params, "{\"irq\":5,\"port\":1280}");
	cr_assert_str_eq(cfg.devices[1].params, "{}");
	cr_assert_eq(cfg.n_consoles, 2);
	cr_assert_str_eq(cfg.consoles[0].backend, "unix:/tmp/c");
	cr_assert_str_eq(cfg.consoles[1].type, "serial");
	cr_assert_str_eq(cfg.consoles[1].backend, "none");
	cr_assert_eq(cfg.n_plugin_dirs, 2);
	cr_assert_str_eq(cfg.plugin_dirs[1], "/usr/p");
	cr_assert_eq(vm_config_validate(&cfg), 0, "%s", err_msg());
}

Test(manifest, virtio_disk_fields_and_rng)
{
	cr_assert_eq(parse("{\"rng\": true, \"disks\": [{\"path\": \"a.raw\", \"serial\": \"SN-1\", \"id\": \"data\"},"
			   " {\"path\": \"b.raw\", \"id\": \"logs\"}]}"), 0, "%s", err_msg());
	cr_assert(cfg.rng);
	cr_assert_eq(cfg.n_disks, 2);
	cr_assert_str_eq(cfg.disks[0].serial, "SN-1");
	cr_assert_str_eq(cfg.disks[0].id, "data");
	cr_assert_null(cfg.disks[1].serial);
	cr_assert_str_eq(cfg.disks[1].id, "logs");
	expect_error("{\"disks\": [{\"path\": \"a\", \"id\": \"x\"}, {\"path\": \"b\", \"id\": \"x\"}]}",
		     "manifest vm.json: disks[1].id: \"x\" is used twice (expected a name unique among the disks)");
}

Test(manifest, virtio_disk_cache_queues_and_packed)
{
	cr_assert_eq(parse("{\"disks\": [{\"path\": \"a.raw\", \"cache\": \"none\", \"queues\": 3, \"packed\": false},"
			   " {\"path\": \"b.raw\", \"cache\": \"unsafe\"}, {\"path\": \"c.raw\"}]}"), 0, "%s", err_msg());
	cr_assert_eq(cfg.disks[0].cache, VM_DISK_CACHE_NONE);
	cr_assert_eq(cfg.disks[0].queues, 3);
	cr_assert(cfg.disks[0].split_only);
	cr_assert_eq(cfg.disks[1].cache, VM_DISK_CACHE_UNSAFE);
	cr_assert_eq(cfg.disks[2].cache, VM_DISK_CACHE_WRITEBACK, "writeback by default");
	cr_assert_eq(cfg.disks[2].queues, 0, "one per vCPU: decided when the VM is built");
	cr_assert_not(cfg.disks[2].split_only);
	expect_error("{\"disks\": [{\"path\": \"a\", \"cache\": \"directsync\"}]}",
		     "manifest vm.json: disks[0].cache: \"directsync\" is not a cache mode (expected \"writeback\", \"none\" "
		     "or \"unsafe\")");
	cr_assert_lt(parse("{\"disks\": [{\"path\": \"a\", \"queues\": 0}]}"), 0);
	cr_assert_lt(parse("{\"disks\": [{\"path\": \"a\", \"packed\": \"no\"}]}"), 0);
}

/* The power object (docs/power.md "Policies"): both policies and the
 * snapshot file; a policy that is not one, an unknown key, and a save
 * policy without its file are refused by name. */
Test(manifest, power_policies)
{
	cr_assert_eq(cfg.on_host_sleep, VM_POWER_PAUSE);
	cr_assert_eq(cfg.on_host_shutdown, VM_POWER_SHUTDOWN);
	cr_assert_eq(parse("{\"power\": {\"on_host_sleep\": \"suspend\", \"on_host_shutdown\": \"save\","
			   " \"save_file\": \"/srv/vm.snap\"}}"), 0, "%s", err_msg());
	cr_assert_eq(cfg.on_host_sleep, VM_POWER_SUSPEND);
	cr_assert_eq(cfg.on_host_shutdown, VM_POWER_SAVE);
	cr_assert_str_eq(cfg.power_save_file, "/srv/vm.snap");
	cfg.kernel = strdup("bz");
	cr_assert_eq(vm_config_validate(&cfg), 0, "%s", err_msg());
	expect_error("{\"power\": {\"on_host_sleep\": \"hibernate\"}}",
		     "manifest vm.json: power.on_host_sleep: \"hibernate\" is not a power policy (expected \"suspend\", "
		     "\"save\", \"pause\", \"shutdown\" or \"none\")");
	expect_error("{\"power\": {\"on_sleep\": \"pause\"}}",
		     "manifest vm.json: power.on_sleep: unknown field (expected one of on_host_sleep, on_host_shutdown, "
		     "save_file, register, host_status)");
	cr_assert_not(cfg.no_register);
	cr_assert_eq(parse("{\"power\": {\"register\": false}}"), 0, "%s", err_msg());
	cr_assert(cfg.no_register);
	/* host_status: true is the host's own tree, a string another one. */
	cr_assert_null(cfg.host_power_status);
	cr_assert_eq(parse("{\"power\": {\"host_status\": true}}"), 0, "%s", err_msg());
	cr_assert_str_eq(cfg.host_power_status, "/sys/class/power_supply");
	cr_assert_eq(parse("{\"power\": {\"host_status\": \"/tmp/fake\"}}"), 0, "%s", err_msg());
	cr_assert_str_eq(cfg.host_power_status, "/tmp/fake");
	cr_assert_eq(parse("{\"power\": {\"host_status\": false}}"), 0, "%s", err_msg());
	cr_assert_null(cfg.host_power_status);
	expect_error("{\"power\": {\"host_status\": 1}}",
		     "manifest vm.json: power.host_status: 1 is not a string (expected true, false or a power-supply "
		     "directory)");
	vm_config_free(&cfg);
	vm_config_defaults(&cfg);
	cr_assert_eq(parse("{\"kernel\": \"bz\", \"power\": {\"on_host_shutdown\": \"save\"}}"), 0);
	cr_assert_lt(vm_config_validate(&cfg), 0);
	cr_assert(strstr(err_msg(), "save policy needs a snapshot file"), "%s", err_msg());
}

Test(manifest, absent_fields_keep_defaults)
{
	cr_assert_eq(parse("{}"), 0);
	cr_assert_str_eq(cfg.engine, "emu");
	cr_assert_eq(cfg.cpus, 1);
	cr_assert_eq(cfg.mem_bytes, 512ULL << 20);
	cr_assert(cfg.decompress_kernel);
	cr_assert_str_eq(cfg.serial, "stdio");
	/* Code generation is the emu engine's default; the interpreter is
	 * asked for (docs/cli.md "Code generation"). */
	cr_assert(cfg.jit);
	vm_config_free(&cfg);
	vm_config_defaults(&cfg);
	cr_assert_eq(parse("{\"jit\": false}"), 0);
	cr_assert(!cfg.jit);
}

Test(manifest, memory_sizes)
{
	cr_assert_eq(parse("{\"memory\": 33554432}"), 0);
	cr_assert_eq(cfg.mem_bytes, 32ULL << 20);
	cr_assert_eq(parse("{\"memory\": \"2GiB\"}"), 0);
	cr_assert_eq(cfg.mem_bytes, 2ULL << 30);
	cr_assert_eq(parse("{\"memory\": \"64M\"}"), 0);
	cr_assert_eq(cfg.mem_bytes, 64ULL << 20);
	expect_error("{\"memory\": \"lots\"}", "manifest vm.json: memory: \"lots\" is not a size (expected bytes as an "
		     "integer or a size such as \"512M\" or \"2G\", 16M to 1T)");
	expect_error("{\"memory\": \"1M\"}", "manifest vm.json: memory: \"1M\" is out of range (expected bytes as an "
		     "integer or a size such as \"512M\" or \"2G\", 16M to 1T)");
	cr_assert_lt(parse("{\"memory\": -5}"), 0);
	cr_assert_lt(parse("{\"memory\": \"2X\"}"), 0);
	cr_assert_lt(parse("{\"memory\": true}"), 0);
}

Test(manifest, memory_hotplug_size)
{
	cr_assert_eq(parse("{\"memory_hotplug\": \"1G\"}"), 0);
	cr_assert_eq(cfg.mem_hotplug, 1ULL << 30);
	cr_assert_eq(parse("{\"memory_hotplug\": 0}"), 0);
	cr_assert_eq(cfg.mem_hotplug, 0);
	expect_error("{\"memory_hotplug\": \"64G\"}", "manifest vm.json: memory_hotplug: \"64G\" is out of range "
		     "(expected bytes as an integer or a size such as \"1G\", a multiple of 128M up to 32G)");
	cr_assert_lt(parse("{\"memory_hotplug\": \"lots\"}"), 0);
}

Test(manifest, messages_name_field_value_and_expectation)
{
	expect_error("{\"cpus\": \"two\"}", "manifest vm.json: cpus: \"two\" is not an integer (expected 1 to 64)");
	expect_error("{\"cpus\": 0}", "manifest vm.json: cpus: 0 is out of range (expected 1 to 64)");
	expect_error("{\"cpus\": 65}", "manifest vm.json: cpus: 65 is out of range (expected 1 to 64)");
	expect_error("{\"engine\": \"qemu\"}", "manifest vm.json: engine: \"qemu\" is not an engine (expected \"emu\" or \"kvm\")");
	expect_error("{\"no_reboot\": \"yes\"}", "manifest vm.json: no_reboot: \"yes\" is not a boolean (expected true or false)");
	expect_error("{\"kernel\": 7}", "manifest vm.json: kernel: 7 is not a string (expected a file path)");
	expect_error("{\"kernel\": \"\"}", "manifest vm.json: kernel: \"\" is empty (expected a file path)");
	expect_error("{\"serial\": \"tcp:1\"}", "manifest vm.json: serial: \"tcp:1\" is not a console backend "
		     "(expected \"stdio\", \"none\", \"file:PATH\" or \"unix:PATH\")");
	expect_error("{\"cpus\": 2, \"numa_nodes\": 3}", "manifest vm.json: numa_nodes: 3 is more than cpus (expected 0 to 2)");
	expect_error("{\"cpu\": 2}", "manifest vm.json: cpu: 2 is not a string (expected host, max, x86-64, x86-64-v2 "
		     "or x86-64-v3, then +FEATURE or -FEATURE (`vessel run --cpu help` lists them))");
	expect_error("{\"cpu\": \"max,-nope\"}", "manifest vm.json: cpu: \"max,-nope\" is not a CPU model (expected "
		     "host, max, x86-64, x86-64-v2 or x86-64-v3, then +FEATURE or -FEATURE (`vessel run --cpu help` lists "
		     "them))");
	expect_error("[1]", "manifest vm.json: (top level): [1] is not an object (expected {\"cpus\": ..., \"memory\": ...})");
}

Test(manifest, unknown_fields_are_errors)
{
	expect_error("{\"vcpus\": 2}", "manifest vm.json: vcpus: unknown field (see docs/manifest.md for the fields)");
	expect_error("{\"disks\": [{\"path\": \"a\", \"ro\": true}]}",
		     "manifest vm.json: disks[0].ro: unknown field (expected one of path, format, readonly, key_file, serial, id, "
		     "cache, queues, packed)");
	expect_error("{\"devices\": [{\"type\": \"a\", \"id\": \"b\", \"param\": {}}]}",
		     "manifest vm.json: devices[0].param: unknown field (expected one of type, id, params)");
	expect_error("{\"consoles\": [{\"type\": \"virtio\", \"kind\": 1}]}",
		     "manifest vm.json: consoles[0].kind: unknown field (expected one of type, backend)");
}

Test(manifest, list_entries_are_checked)
{
	expect_error("{\"disks\": [{\"format\": \"raw\"}]}", "manifest vm.json: disks[0].path: missing (expected a disk image path)");
	expect_error("{\"disks\": [{\"path\": \"a\", \"format\": \"qcow2\"}]}",
		     "manifest vm.json: disks[0].format: \"qcow2\" is not a disk format (expected \"raw\" or \"vhd\")");
	expect_error("{\"disks\": {\"path\": \"a\"}}",
		     "manifest vm.json: disks: {\"path\":\"a\"} is not a list (expected a list of at most 16 disk objects)");
	expect_error("{\"devices\": [{\"type\": \"x\", \"id\": \"a b\"}]}",
		     "manifest vm.json: devices[0].id: \"a b\" is not a device id (expected 1 to 63 of A-Z a-z 0-9 - _ .)");
	expect_error("{\"devices\": [{\"id\": \"a\"}]}", "manifest vm.json: devices[0].type: missing (expected a device type name)");
	expect_error("{\"devices\": [{\"type\": \"x\", \"id\": \"a\", \"params\": [1]}]}",
		     "manifest vm.json: devices[0].params: [1] is not an object (expected {\"name\": value, ...})");
	expect_error("{\"devices\": [{\"type\": \"x\", \"id\": \"a\"}, {\"type\": \"y\", \"id\": \"a\"}]}",
		     "manifest vm.json: devices[1].id: \"a\" is already the id of devices[0] (expected a unique id)");
	expect_error("{\"consoles\": [{\"type\": \"tty\"}]}",
		     "manifest vm.json: consoles[0].type: \"tty\" is not a console type (expected \"serial\" or \"virtio\")");
	expect_error("{\"plugin_dirs\": [\"a\", 3]}", "manifest vm.json: plugin_dirs[1]: 3 is not a string (expected a directory path)");
}

Test(manifest, syntax_errors_and_duplicates_give_a_position)
{
	cr_assert_lt(parse("{\"cpus\": 2,}"), 0);
	cr_assert(strstr(err_msg(), "manifest vm.json: line 1 column"), "%s", err_msg());
	cr_assert_lt(parse("{\"cpus\": 2, \"cpus\": 3}"), 0);
	cr_assert(strstr(err_msg(), "duplicate"), "%s", err_msg());
}

Test(manifest, lists_replace_rather_than_append)
{
	cr_assert_eq(parse("{\"plugin_dirs\": [\"a\", \"b\"]}"), 0);
	cr_assert_eq(parse("{\"plugin_dirs\": [\"c\"]}"), 0);
	cr_assert_eq(cfg.n_plugin_dirs, 1);
	cr_assert_str_eq(cfg.plugin_dirs[0], "c");
}

Test(manifest, relative_paths_resolve_against_the_manifest_directory)
{
	char dir[] = "/tmp/vessel-manifest-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	FILE *f = fopen(path, "w");
	fputs("{\"kernel\": \"bzImage\", \"initrd\": \"/abs/rd\", \"disks\": [{\"path\": \"d/x.img\"}],"
	      " \"plugin_dirs\": [\"plugins\"]}", f);
	fclose(f);
	cr_assert_eq(vm_manifest_load(path, &cfg), 0, "%s", err_msg());
	char want[160];
	snprintf(want, sizeof(want), "%s/bzImage", dir);
	cr_assert_str_eq(cfg.kernel, want);
	cr_assert_str_eq(cfg.initrd, "/abs/rd");
	snprintf(want, sizeof(want), "%s/d/x.img", dir);
	cr_assert_str_eq(cfg.disks[0].path, want);
	snprintf(want, sizeof(want), "%s/plugins", dir);
	cr_assert_str_eq(cfg.plugin_dirs[0], want);
	unlink(path);
	rmdir(dir);
	cr_assert_lt(vm_manifest_load(path, &cfg), 0);
	cr_assert(strstr(err_msg(), "No such file"), "%s", err_msg());
}

Test(manifest, device_entry_parser_used_by_the_api)
{
	json_t *o = json_loads("{\"type\": \"mailbox\", \"id\": \"m\", \"params\": {\"b\": 1, \"a\": \"x\"}}", 0, NULL);
	struct vm_device_config d;
	cr_assert_eq(vm_manifest_parse_device(o, "device", &d), 0);
	cr_assert_str_eq(d.params, "{\"a\":\"x\",\"b\":1}");
	vm_device_config_free(&d);
	json_decref(o);
	o = json_loads("{\"type\": 3, \"id\": \"m\"}", 0, NULL);
	cr_assert_lt(vm_manifest_parse_device(o, "device", &d), 0);
	cr_assert_str_eq(err_msg(), "device.type: 3 is not a device type name (expected a non-empty string)");
	json_decref(o);
}

/* ---- schema/manifest.schema.json in step with the parser ---- */

static json_t *load_schema(void)
{
	json_error_t e;
	json_t *s = json_load_file(VESSEL_SOURCE_ROOT "/schema/manifest.schema.json", 0, &e);
	cr_assert_not_null(s, "schema: %s", e.text);
	return s;
}

static bool parser_has(const char *name)
{
	for (unsigned i = 0; vm_manifest_fields[i]; i++)
		if (!strcmp(vm_manifest_fields[i], name))
			return true;
	return false;
}

static json_t *example_of(json_t *prop, const char *name)
{
	json_t *ex = json_array_get(json_object_get(prop, "examples"), 0);
	cr_assert_not_null(ex, "schema field %s has no example", name);
	return ex;
}

/* Every field of the schema is accepted by the parser (an unknown one
 * would be refused), with its example value. */
Test(manifest, every_schema_field_is_parsed)
{
	json_t *schema = load_schema(), *props = json_object_get(schema, "properties");
	const char *name;
	json_t *prop;
	unsigned n = 0;
	json_object_foreach(props, name, prop) {
		cr_assert(parser_has(name), "schema field %s is not in vm_manifest_fields", name);
		json_t *doc = json_pack("{sO}", name, example_of(prop, name));
		char *text = json_dumps(doc, 0);
		vm_config_free(&cfg);
		vm_config_defaults(&cfg);
		cr_assert_eq(parse(text), 0, "schema example %s refused: %s", text, err_msg());
		free(text);
		json_decref(doc);
		n++;
		json_t *items = json_object_get(prop, "items");
		json_t *iprops = json_object_get(items, "properties");
		const char *iname;
		json_t *iprop;
		json_object_foreach(iprops, iname, iprop) {
			char dotted[96];
			snprintf(dotted, sizeof(dotted), "%s[].%s", name, iname);
			cr_assert(parser_has(dotted), "schema field %s is not in vm_manifest_fields", dotted);
			/* An entry with the required fields plus this one. */
			json_t *entry = json_object();
			size_t i;
			json_t *req;
			json_array_foreach(json_object_get(items, "required"), i, req) {
				const char *r = json_string_value(req);
				json_object_set(entry, r, example_of(json_object_get(iprops, r), r));
			}
			json_object_set(entry, iname, example_of(iprop, dotted));
			doc = json_pack("{s[o]}", name, entry);
			text = json_dumps(doc, 0);
			vm_config_free(&cfg);
			vm_config_defaults(&cfg);
			cr_assert_eq(parse(text), 0, "schema example %s refused: %s", text, err_msg());
			free(text);
			json_decref(doc);
			n++;
		}
	}
	unsigned parser_n = 0;
	while (vm_manifest_fields[parser_n])
		parser_n++;
	/* Equal counts plus inclusion one way: the two sets are equal. */
	cr_assert_eq(n, parser_n, "schema has %u fields, the parser %u", n, parser_n);
	json_decref(schema);
}

/* Every field the parser knows is refused with a wrong-typed value (so
 * it is really parsed, not ignored) and appears in the schema. */
Test(manifest, every_parsed_field_is_in_the_schema)
{
	json_t *schema = load_schema(), *props = json_object_get(schema, "properties");
	for (unsigned i = 0; vm_manifest_fields[i]; i++) {
		const char *f = vm_manifest_fields[i];
		const char *br = strstr(f, "[].");
		char top[64];
		snprintf(top, sizeof(top), "%.*s", br ? (int)(br - f) : (int)strlen(f), f);
		json_t *p = json_object_get(props, top);
		cr_assert_not_null(p, "parsed field %s missing from the schema", f);
		if (br)
			cr_assert_not_null(json_object_get(json_object_get(json_object_get(p, "items"), "properties"), br + 3),
					   "parsed field %s missing from the schema", f);
		else {
			char text[128];
			/* An array of an object is no valid value for any field. */
			snprintf(text, sizeof(text), "{\"%s\": [{\"no\": null}]}", f);
			cr_assert_lt(parse(text), 0, "%s accepted a nonsense value", f);
			cr_assert(strstr(err_msg(), f), "message does not name %s: %s", f, err_msg());
		}
	}
	json_decref(schema);
}

/* Mutated manifests: each is accepted or refused with a message naming
 * the manifest, never anything else (run under ASan/UBSan in CI). */
Test(manifest, random_mutations_are_accepted_or_refused_cleanly)
{
	static const char base[] =
		"{\"engine\": \"kvm\", \"cpus\": 4, \"memory\": \"1G\", \"numa_nodes\": 2, \"kernel\": \"bz\","
		" \"disks\": [{\"path\": \"a.img\", \"readonly\": true}], \"devices\": [{\"type\": \"m\", \"id\": \"m0\","
		" \"params\": {\"port\": 1280}}], \"consoles\": [{\"type\": \"virtio\"}], \"plugin_dirs\": [\"p\"]}";
	static const char alphabet[] = "{}[]\":,0123456789-.eE truefalsnul\\\x01\xff";
	uint64_t x = 99;
	unsigned accepted = 0;
	for (int iter = 0; iter < 3000; iter++) {
		char text[sizeof(base) + 8];
		memcpy(text, base, sizeof(base));
		size_t len = sizeof(base) - 1;
		for (int k = 0; k < 1 + iter % 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t pos = x % len;
			if ((x >> 40) % 3 == 0 && len > 1) {
				memmove(text + pos, text + pos + 1, len - pos); /* delete */
				len--;
			} else {
				text[pos] = alphabet[(x >> 20) % (sizeof(alphabet) - 1)];
			}
		}
		text[len] = 0;
		vm_config_free(&cfg);
		vm_config_defaults(&cfg);
		err_clear();
		if (parse(text) == 0)
			accepted++;
		else
			cr_assert(!strncmp(err_msg(), "manifest vm.json: ", 18), "%s -> %s", text, err_msg());
	}
	cr_assert_lt(accepted, 3000);
}

/* "numa": nodes, distances and policy as `--numa`, `--numa-distance` and
 * `--numa-policy` (docs/numa.md). */
Test(manifest, numa_topology)
{
	cr_assert_eq(parse("{\"cpus\": 4, \"memory\": \"2G\", \"numa\": {\"nodes\": [{\"memory\": \"1G\", \"cpus\": \"0-1\", "
			   "\"host_nodes\": 0}, {\"memory\": 1073741824, \"cpus\": \"2-3\"}], \"distances\": [[0, 1, 30]], "
			   "\"policy\": \"interleave\"}}"), 0, "%s", err_msg());
	cr_assert_eq(cfg.numa.n_nodes, 2);
	cr_assert_eq(cfg.numa.nodes[0].host_nodes, 1);
	cr_assert_eq(cfg.numa.nodes[1].mem_bytes, 1ull << 30);
	cr_assert_eq(cfg.numa.nodes[1].first_cpu, 2);
	cr_assert_eq(cfg.numa.distance[0][1], 30);
	cr_assert_eq(cfg.numa.policy, NUMA_POLICY_INTERLEAVE);
	expect_error("{\"numa\": {\"nodes\": [{\"cpus\": \"0\"}]}}",
		     "manifest vm.json: numa.nodes[0].memory: missing (expected a size such as \"1G\")");
	expect_error("{\"numa\": {\"nodes\": [{\"memory\": \"1G\", \"cpus\": \"0,2\"}]}}",
		     "manifest vm.json: numa.nodes[0].cpus: \"0,2\" is not valid (expected vCPUs such as \"0-1\" or 2)");
	expect_error("{\"numa\": {\"nodes\": [{\"memory\": \"1G\", \"cpus\": \"2-1\"}]}}",
		     "manifest vm.json: numa.nodes[0]: numa node 0: cpus: '2-1' is not a range of vCPUs (expected A or A-B)");
	expect_error("{\"numa\": {\"policy\": \"strict\"}}",
		     "manifest vm.json: numa.policy: \"strict\" is not a policy (expected \"bind\", \"preferred\" or \"interleave\")");
}
