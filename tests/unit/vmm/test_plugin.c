/* Plug-in loader and device instances: the example mailbox plug-in driven
 * through real buses, guest memory and a fake interrupt controller. */
#include "machine/bus.h"
#include "machine/device_registry.h"
#include "util/error.h"
#include "machine/memory.h"
#include "vmm/plugin.h"
#include "vmm/plugin_loader.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct plugin_registry reg;
static struct bus pio, mmio;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guest_memory mem;
static struct plugin_devices set;
static int irq_line = -1, irq_level = -1, irq_calls;

static void fake_irq_set(void *opaque, unsigned line, bool level)
{
	cr_assert_eq(opaque, &irq_calls);
	irq_line = (int)line;
	irq_level = level;
	irq_calls++;
}

static void setup(void)
{
	plugin_registry_init(&reg);
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	cr_assert_eq(gmem_init(&mem, 16ULL << 20), 0);
	struct plugin_env env = { .pio = &pio, .mmio = &mmio, .dev_lock = &dev_lock, .mem = &mem,
				  .irq = { .set = fake_irq_set, .opaque = &irq_calls } };
	plugin_devices_init(&set, &reg, &env);
	irq_line = irq_level = -1;
	irq_calls = 0;
	snapshot_unregister_all();
}

static void teardown(void)
{
	plugin_devices_destroy(&set);
	plugin_registry_free(&reg);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	gmem_destroy(&mem);
}

TestSuite(plugin, .init = setup, .fini = teardown);

static void load_example(void)
{
	cr_assert_eq(plugin_registry_load(&reg, EXAMPLE_PLUGIN), 0, "%s", err_msg());
}

static int add(const char *type, const char *id, const char *params)
{
	struct vm_device_config c = { .type = (char *)type, .id = (char *)id, .params = (char *)params };
	return plugin_devices_add(&set, &c);
}

static uint64_t in32(uint16_t port)
{
	uint64_t v = 0;
	cr_assert(bus_read(&pio, NULL, port, 4, &v), "port %#x unclaimed", port);
	return v;
}

Test(plugin, descriptor_is_readable_without_creating_a_device)
{
	load_example();
	cr_assert_eq(reg.n_libs, 1);
	const struct vessel_plugin *d = reg.libs[0].desc;
	cr_assert_str_eq(d->name, "device-example");
	cr_assert_eq(d->n_devices, 1);
	const struct plugin_lib *lib;
	const struct vessel_device_type *t = plugin_registry_find(&reg, "mailbox", &lib);
	cr_assert_not_null(t);
	cr_assert_eq(lib, &reg.libs[0]);
	cr_assert_eq(t->n_params, 4);
	cr_assert_str_eq(t->params[0].name, "port");
	cr_assert_str_eq(t->params[0].default_value, "0x530");
	cr_assert_eq(t->resources[0].kind, VESSEL_RES_PIO);
	cr_assert_eq(t->resources[0].len, 12);
	cr_assert_eq(t->resources[1].kind, VESSEL_RES_IRQ);
	cr_assert_null(plugin_registry_find(&reg, "nothing", NULL));
	cr_assert_eq(pio.n, 0, "loading claimed ports");
}

Test(plugin, other_abi_version_is_refused_with_a_clear_message)
{
	cr_assert_eq(plugin_registry_load(&reg, BAD_ABI_PLUGIN), -ENOEXEC);
	cr_assert(strstr(err_msg(), "built for plug-in ABI version 99, but this vessel has version 2"), "%s", err_msg());
	cr_assert_eq(reg.n_libs, 0);
}

Test(plugin, not_a_plugin)
{
	/* In a directory of its own: /tmp itself is world-writable, and a
	 * plug-in there would be refused for that. */
	char dir[] = "/tmp/vessel-notplugin-XXXXXX", path[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.so", dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "hello", 5), 5);
	close(fd);
	cr_assert_eq(plugin_registry_load(&reg, path), -ENOEXEC);
	cr_assert(strstr(err_msg(), "cannot load"), "%s", err_msg());
	unlink(path);
	rmdir(dir);
}

Test(plugin, same_type_twice_is_refused)
{
	load_example();
	cr_assert_eq(plugin_registry_load(&reg, EXAMPLE_PLUGIN), -EEXIST);
	cr_assert(strstr(err_msg(), "device type mailbox is already provided by"), "%s", err_msg());
}

static const struct vessel_param_spec bad_default[] = { { "n", VESSEL_PARAM_INT, "", "many", 0, 10 } };
static int dummy_create(const struct vessel_host *h, const union vessel_param_value *p, void **d) { return 0; }
static void dummy_destroy(void *d) { }

Test(plugin, malformed_descriptors_are_refused)
{
	struct vessel_device_type t = { .size = sizeof(t), .name = "ok", .create = dummy_create, .destroy = dummy_destroy };
	const struct vessel_device_type *list[] = { &t };
	struct vessel_plugin p = { VESSEL_PLUGIN_MAGIC, VESSEL_PLUGIN_ABI_VERSION, sizeof(p), "p", "1", "", list, 1 };
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), 0, "%s", err_msg());
	p.magic = 1;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	cr_assert(strstr(err_msg(), "not a vessel plug-in"));
	p.magic = VESSEL_PLUGIN_MAGIC;
	p.size = 8;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	p.size = sizeof(p);
	t.name = "Bad Name";
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	cr_assert(strstr(err_msg(), "name 'Bad Name'"), "%s", err_msg());
	t.name = "ok";
	t.params = bad_default;
	t.n_params = 1;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	cr_assert(strstr(err_msg(), "default 'many' does not fit its type"), "%s", err_msg());
	t.n_params = 0;
	t.create = NULL;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	t.create = dummy_create;
	struct vessel_resource_spec r = { VESSEL_RES_PIO, "regs", 0x100, "nope", 4, NULL };
	t.resources = &r;
	t.n_resources = 1;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	cr_assert(strstr(err_msg(), "base parameter nope"), "%s", err_msg());
}

Test(plugin, mailbox_counts_raises_irq_and_reports_to_guest_memory)
{
	load_example();
	cr_assert_eq(add("mailbox", "mb0", "{\"port\": 1792, \"irq\": 7}"), 0, "%s", err_msg());
	cr_assert_eq(pio.n, 1);
	cr_assert_str_eq(pio.ranges[0].name, "mb0");
	cr_assert_eq(pio.ranges[0].base, 1792);
	cr_assert_eq(in32(1792 + 4), 0);
	cr_assert(bus_write(&pio, NULL, 1792, 4, 0xcafe));
	cr_assert(bus_write(&pio, NULL, 1792, 4, 0xbeef));
	cr_assert_eq(in32(1792), 0xbeef);
	cr_assert_eq(in32(1792 + 4), 2);
	cr_assert_eq(irq_line, 7);
	cr_assert_eq(irq_level, 1);
	cr_assert(bus_write(&pio, NULL, 1792 + 4, 4, 1));
	cr_assert_eq(irq_level, 0);
	/* Report into RAM through the bounds-checked service. */
	cr_assert(bus_write(&pio, NULL, 1792 + 8, 4, 0x1000));
	cr_assert_eq(in32(1792 + 8), 0);
	uint32_t rec[2];
	cr_assert_eq(gmem_read(&mem, 0x1000, rec, sizeof(rec)), 0);
	cr_assert_eq(rec[0], 0xbeef);
	cr_assert_eq(rec[1], 2);
	/* An address past the end of RAM is refused by the host, not written. */
	cr_assert(bus_write(&pio, NULL, 1792 + 8, 4, (16u << 20) - 4));
	cr_assert_eq(in32(1792 + 8), 1);
	/* The bus counts accesses per device for `stats`. */
	cr_assert_eq(pio.ranges[0].writes, 5);
}

Test(plugin, defaults_apply_and_effective_params_are_listed)
{
	load_example();
	cr_assert_eq(add("mailbox", "mb0", "{}"), 0, "%s", err_msg());
	struct plugin_device_info info;
	cr_assert_eq(plugin_devices_info(&set, 0, &info), 0);
	cr_assert_str_eq(info.id, "mb0");
	cr_assert_str_eq(info.type, "mailbox");
	cr_assert_str_eq(info.plugin, "device-example");
	cr_assert_str_eq(info.params, "{\"irq\":5,\"irq_enabled\":true,\"label\":\"mailbox\",\"port\":1328}");
	cr_assert_eq(info.bases[0], 0x530);
	cr_assert_eq(info.bases[1], 5);
	cr_assert_eq(plugin_devices_info(&set, 1, &info), -ENOENT);
}

Test(plugin, bad_parameters_name_the_parameter)
{
	load_example();
	cr_assert_eq(add("mailbox", "m", "{\"prot\": 1}"), -EINVAL);
	cr_assert_str_eq(err_msg(), "device m: params.prot: unknown parameter of mailbox "
				    "(expected one of port, irq, irq_enabled, label)");
	cr_assert_eq(add("mailbox", "m", "{\"irq\": 24}"), -EINVAL);
	cr_assert_str_eq(err_msg(), "device m: params.irq: 24 is not an integer from 0 to 23");
	cr_assert_eq(add("mailbox", "m", "{\"irq_enabled\": 1}"), -EINVAL);
	cr_assert_str_eq(err_msg(), "device m: params.irq_enabled: 1 is not a boolean (expected true or false)");
	cr_assert_eq(add("mailbox", "m", "{\"label\": 5}"), -EINVAL);
	cr_assert_eq(add("nosuch", "m", "{}"), -ENOENT);
	cr_assert_str_eq(err_msg(), "device m: no device type 'nosuch' (see `vessel plugin list`)");
	cr_assert_eq(set.n, 0);
	cr_assert_eq(pio.n, 0);
}

Test(plugin, ids_are_unique_and_ranges_do_not_overlap)
{
	load_example();
	cr_assert_eq(add("mailbox", "a", "{\"port\": 1280}"), 0);
	cr_assert_eq(add("mailbox", "a", "{\"port\": 1536}"), -EEXIST);
	cr_assert_eq(add("mailbox", "b", "{\"port\": 1284}"), -EBUSY);
	cr_assert(strstr(err_msg(), "device b: pio: b at 0x504 overlaps a at 0x500"), "%s", err_msg());
	cr_assert_eq(set.n, 1);
	cr_assert_eq(add("mailbox", "b", "{\"port\": 1292}"), 0, "%s", err_msg());
	cr_assert_eq(set.n, 2);
}

Test(plugin, remove_releases_the_ports)
{
	load_example();
	cr_assert_eq(add("mailbox", "mb0", "{}"), 0);
	uint64_t v;
	cr_assert(bus_read(&pio, NULL, 0x530, 4, &v));
	cr_assert_eq(plugin_devices_remove(&set, "mb0"), 0);
	cr_assert_not(bus_read(&pio, NULL, 0x530, 4, &v));
	cr_assert_eq(plugin_devices_remove(&set, "mb0"), -ENOENT);
	/* The id and the ports are free again. */
	cr_assert_eq(add("mailbox", "mb0", "{}"), 0, "%s", err_msg());
}

struct saved {
	void **blob;
	size_t *len;
};

static int save_one(void *arg, const char *name, snapshot_save_fn save, void *opaque)
{
	struct saved *s = arg;
	return snapshot_device_save(name, save, opaque, s->blob, s->len);
}

Test(plugin, state_round_trips_through_the_snapshot_registry)
{
	load_example();
	cr_assert_eq(add("mailbox", "mb0", "{}"), 0);
	bus_write(&pio, NULL, 0x530, 4, 42);
	bus_write(&pio, NULL, 0x530, 4, 43);
	snapshot_load_fn load;
	void *opaque;
	cr_assert_eq(snapshot_find_device("mb0", &load, &opaque), 0);
	void *blob;
	size_t len;
	/* Save through the same path the snapshot writer uses. */
	cr_assert_eq(snapshot_foreach_device(save_one, &(struct saved){ &blob, &len }), 0);
	bus_write(&pio, NULL, 0x530, 4, 99);
	cr_assert_eq(in32(0x534), 3);
	cr_assert_eq(load(opaque, blob, len), 0, "%s", err_msg());
	cr_assert_eq(in32(0x530), 43);
	cr_assert_eq(in32(0x534), 2);
	cr_assert_lt(load(opaque, blob, len - 1), 0, "truncated state accepted");
	free(blob);
	cr_assert_eq(plugin_devices_remove(&set, "mb0"), 0);
	cr_assert_eq(snapshot_find_device("mb0", &load, &opaque), -ENOENT);
}

Test(plugin, scan_skips_other_files_and_records_problems)
{
	char dir[] = "/tmp/vessel-plugins-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char a[128], b[128], c[128];
	snprintf(a, sizeof(a), "%s/a-example.so", dir);
	snprintf(b, sizeof(b), "%s/b-future.so", dir);
	snprintf(c, sizeof(c), "%s/README", dir);
	cr_assert_eq(symlink(EXAMPLE_PLUGIN, a), 0);
	cr_assert_eq(symlink(BAD_ABI_PLUGIN, b), 0);
	FILE *f = fopen(c, "w");
	fclose(f);
	char *dirs[] = { dir, (char *)"/nonexistent/dir" };
	cr_assert_eq(plugin_registry_scan(&reg, dirs, 2), 1);
	cr_assert_eq(reg.n_files, 1);
	cr_assert_eq(reg.n_problems, 1);
	cr_assert_str_eq(reg.problems[0].path, b);
	cr_assert(strstr(reg.problems[0].message, "ABI version 99"));
	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dir);
}

Test(plugin, search_dirs_follow_manifest_env_and_xdg)
{
	char *explicit_dirs[] = { (char *)"/m" };
	struct plugin_path p;
	unsetenv("VESSEL_PLUGIN_PATH");
	setenv("XDG_DATA_HOME", "/xdg", 1);
	cr_assert_eq(plugin_path_init(&p, explicit_dirs, 1), 0);
	cr_assert_eq(p.n, 4);
	cr_assert_str_eq(p.dirs[0], "/m");
	cr_assert_str_eq(p.dirs[1], "/xdg/vessel/plugins");
	cr_assert_str_eq(p.dirs[2], "/usr/local/lib/vessel/plugins");
	cr_assert_str_eq(p.dirs[3], "/usr/lib/vessel/plugins");
	plugin_path_free(&p);
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/u", 1);
	cr_assert_eq(plugin_path_init(&p, NULL, 0), 0);
	cr_assert_str_eq(p.dirs[0], "/home/u/.local/share/vessel/plugins");
	plugin_path_free(&p);
	/* VESSEL_PLUGIN_PATH replaces the default directories, for device and
	 * encryption plug-ins alike. */
	setenv("VESSEL_PLUGIN_PATH", "/p1:/p2", 1);
	cr_assert_eq(plugin_path_init(&p, explicit_dirs, 1), 0);
	cr_assert_eq(p.n, 3);
	cr_assert_str_eq(p.dirs[1], "/p1");
	cr_assert_str_eq(p.dirs[2], "/p2");
	plugin_path_free(&p);
	unsetenv("VESSEL_PLUGIN_PATH");
}

/* A directory of its own holding links to the given plug-ins. */
static void make_dir(char *dir, const char *const *plugins, unsigned n)
{
	cr_assert_not_null(mkdtemp(dir));
	for (unsigned i = 0; i < n; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%c.so", dir, 'a' + i);
		cr_assert_eq(symlink(plugins[i], path), 0);
	}
}

static void remove_dir(const char *dir, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%c.so", dir, 'a' + i);
		unlink(path);
	}
	rmdir(dir);
}

Test(plugin, scan_loads_nothing_until_a_device_needs_it)
{
	char dir[] = "/tmp/vessel-plugins-XXXXXX";
	const char *const plugins[] = { EXAMPLE_PLUGIN, CRASH_PLUGIN };
	make_dir(dir, plugins, 2);
	char *dirs[] = { dir };
	cr_assert_eq(plugin_registry_scan(&reg, dirs, 1), 2);
	/* Described by the probe, loaded by no one. */
	cr_assert_eq(reg.n_libs, 0);
	cr_assert_eq(add("mailbox", "mb0", "{}"), 0, "%s", err_msg());
	cr_assert_eq(reg.n_libs, 1);
	cr_assert(strstr(reg.libs[0].path, "/a.so"));
	remove_dir(dir, 2);
}

Test(plugin, a_constructor_that_crashes_kills_only_its_probe)
{
	char dir[] = "/tmp/vessel-plugins-XXXXXX";
	const char *const plugins[] = { EXAMPLE_PLUGIN, CRASH_PLUGIN };
	make_dir(dir, plugins, 2);
	char *dirs[] = { dir };
	setenv("VESSEL_TEST_CRASH_CTOR", "1", 1);
	cr_assert_eq(plugin_registry_scan(&reg, dirs, 1), 1);
	unsetenv("VESSEL_TEST_CRASH_CTOR");
	cr_assert_eq(reg.n_problems, 1);
	cr_assert(strstr(reg.problems[0].message, "/b.so: crashed while being loaded (signal 11"), "%s",
		  reg.problems[0].message);
	cr_assert_eq(reg.n_files, 1);
	cr_assert_eq(add("mailbox", "mb0", "{}"), 0, "%s", err_msg());
	remove_dir(dir, 2);
}

Test(plugin, a_create_that_crashes_is_reported_and_the_process_goes_on)
{
	cr_assert_eq(plugin_registry_load(&reg, CRASH_PLUGIN), 0, "%s", err_msg());
	cr_assert_eq(add("crashy", "c0", "{\"crash\": true}"), -EIO);
	cr_assert(strstr(err_msg(), "device c0: crashy crashed in create() (signal 11"), "%s", err_msg());
	cr_assert_eq(set.n, 0);
	/* Not used again: its state may be damaged. */
	cr_assert_eq(add("crashy", "c1", "{}"), -EIO);
	cr_assert(strstr(err_msg(), "crashed earlier"), "%s", err_msg());
	/* Other plug-ins still work. */
	load_example();
	cr_assert_eq(add("mailbox", "mb0", "{}"), 0, "%s", err_msg());
}

Test(plugin, unsafe_permissions_are_refused)
{
	char dir[] = "/tmp/vessel-plugins-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[256], cmd[600];
	snprintf(path, sizeof(path), "%s/copy.so", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", EXAMPLE_PLUGIN, path);
	cr_assert_eq(system(cmd), 0);
	chmod(path, 0757);
	cr_assert_eq(plugin_registry_load(&reg, path), -EPERM);
	cr_assert(strstr(err_msg(), "is world-writable"), "%s", err_msg());
	char *dirs[] = { dir };
	cr_assert_eq(plugin_registry_scan(&reg, dirs, 1), 0);
	cr_assert_eq(reg.n_problems, 1);
	chmod(path, 0755);
	chmod(dir, 0777);
	cr_assert_eq(plugin_registry_load(&reg, path), -EPERM);
	cr_assert(strstr(err_msg(), "directory"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "is world-writable"), "%s", err_msg());
	chmod(dir, 0700);
	cr_assert_eq(plugin_registry_load(&reg, path), 0, "%s", err_msg());
	unlink(path);
	rmdir(dir);
}

Test(plugin, mem_write_to_a_range_partly_outside_ram_copies_nothing)
{
	load_example();
	cr_assert_eq(add("mailbox", "mb0", "{\"port\": 1792}"), 0, "%s", err_msg());
	uint32_t last = 0x11223344, got = 0;
	cr_assert_eq(gmem_write(&mem, (16u << 20) - 4, &last, 4), 0);
	cr_assert(bus_write(&pio, NULL, 1792, 4, 0xbeef));
	/* The record {DATA, COUNT} is 8 bytes: its first half would be RAM. */
	cr_assert(bus_write(&pio, NULL, 1792 + 8, 4, (16u << 20) - 4));
	cr_assert_eq(in32(1792 + 8), 1);
	cr_assert_eq(gmem_read(&mem, (16u << 20) - 4, &got, 4), 0);
	cr_assert_eq(got, 0x11223344, "a partial copy wrote %#x", got);
}

/* A device type compiled into vessel, through the same ABI. */
static uint64_t builtin_val;
static int builtin_create(const struct vessel_host *h, const union vessel_param_value *p, void **d)
{
	*d = &builtin_val;
	builtin_val = (uint64_t)p[0].i;
	return 0;
}
static uint64_t builtin_read(void *d, uint32_t res, uint64_t off, uint32_t size) { return *(uint64_t *)d + off; }
static const struct vessel_param_spec builtin_params[] = { { "base", VESSEL_PARAM_INT, "", "100", 0, 1000 } };
static const struct vessel_resource_spec builtin_res[] = { { VESSEL_RES_MMIO, "regs", 0xd0000000, NULL, 0x1000, NULL } };
static const struct vessel_device_type builtin_type = {
	.size = sizeof(struct vessel_device_type), .name = "const-mmio", .description = "constant MMIO",
	.params = builtin_params, .n_params = 1, .resources = builtin_res, .n_resources = 1,
	.create = builtin_create, .destroy = dummy_destroy, .read = builtin_read,
};
static const struct vessel_device_type *const builtin_list[] = { &builtin_type };
static const struct vessel_plugin builtin_desc = { VESSEL_PLUGIN_MAGIC, VESSEL_PLUGIN_ABI_VERSION,
	sizeof(struct vessel_plugin), "builtin", "1", "built-in devices", builtin_list, 1 };

Test(plugin, builtin_types_use_the_same_path_and_mmio_works)
{
	cr_assert_eq(plugin_registry_add_builtin(&reg, &builtin_desc), 0, "%s", err_msg());
	cr_assert_eq(plugin_registry_add_builtin(&reg, &builtin_desc), -EEXIST);
	const struct plugin_lib *lib;
	cr_assert_not_null(plugin_registry_find(&reg, "const-mmio", &lib));
	cr_assert_str_eq(lib->path, "(built-in)");
	cr_assert_eq(add("const-mmio", "c0", "{\"base\": 500}"), 0, "%s", err_msg());
	uint64_t v = 0;
	cr_assert(bus_read(&mmio, NULL, 0xd0000010, 4, &v));
	cr_assert_eq(v, 516);
	cr_assert_eq(plugin_devices_remove(&set, "c0"), 0);
	cr_assert_not(bus_read(&mmio, NULL, 0xd0000010, 4, &v));
}

static const struct vessel_resource_spec in_ram_res[] = { { VESSEL_RES_MMIO, "regs", 0x1000, NULL, 0x1000, NULL } };
static const struct vessel_device_type in_ram_type = {
	.size = sizeof(struct vessel_device_type), .name = "in-ram", .resources = in_ram_res, .n_resources = 1,
	.create = dummy_create, .destroy = dummy_destroy,
};
static const struct vessel_device_type *const in_ram_list[] = { &in_ram_type };
static const struct vessel_plugin in_ram_desc = { VESSEL_PLUGIN_MAGIC, VESSEL_PLUGIN_ABI_VERSION,
	sizeof(struct vessel_plugin), "in-ram", "1", "", in_ram_list, 1 };

Test(plugin, mmio_over_guest_ram_is_refused)
{
	cr_assert_eq(plugin_registry_add_builtin(&reg, &in_ram_desc), 0, "%s", err_msg());
	cr_assert_eq(add("in-ram", "x", "{}"), -EINVAL);
	cr_assert_str_eq(err_msg(), "device x: regs: 0x1000 is guest RAM, not MMIO space");
	cr_assert_eq(mmio.n, 0);
}
