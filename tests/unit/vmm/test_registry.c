/* The registry of running VMs (src/vmm/registry.c): an entry names this
 * process, its socket, policies and command line; the list marks entries
 * whose process is gone, or whose PID another process took, as stale, and
 * skips files that are not entries. */
#include "util/error.h"
#include "vmm/config.h"
#include "vmm/registry.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/vessel-registry-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(registry, .init = setup, .fini = teardown);

static void write_file(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(registry, own_entry_is_live_and_complete)
{
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	cfg.on_host_sleep = VM_POWER_SAVE;
	cfg.on_host_shutdown = VM_POWER_NONE;
	cfg.power_save_file = strdup("vm.snap");
	char *file;
	cr_assert_eq(registry_add(dir, "/run/x.sock", &cfg, &file), 0, "%s", err_msg());
	vm_config_free(&cfg);
	struct registry_entry *e;
	unsigned n;
	cr_assert_eq(registry_list(dir, &e, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(e[0].file, file);
	cr_assert_eq(e[0].pid, getpid());
	cr_assert_not(e[0].stale);
	cr_assert_str_eq(e[0].socket, "/run/x.sock");
	cr_assert_eq(e[0].on_host_sleep, VM_POWER_SAVE);
	cr_assert_eq(e[0].on_host_shutdown, VM_POWER_NONE);
	/* Made absolute against the directory of the run. */
	cr_assert_eq(e[0].save_file[0], '/');
	cr_assert(strstr(e[0].save_file, "/vm.snap"));
	cr_assert_geq(json_array_size(e[0].argv), 1);
	/* A deep copy outlives the list. */
	struct registry_entry c;
	cr_assert_eq(registry_entry_copy(&c, &e[0]), 0);
	registry_entries_free(e, n);
	cr_assert_str_eq(c.socket, "/run/x.sock");
	registry_entry_free(&c);
	free(file);
}

Test(registry, dead_and_reused_pids_are_stale_and_junk_is_skipped)
{
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	char text[256];
	snprintf(text, sizeof(text), "{\"pid\": %d, \"socket\": \"/run/gone.sock\"}", (int)child);
	write_file("vm-gone.json", text);
	/* This process, but another start time: a PID taken over. */
	snprintf(text, sizeof(text), "{\"pid\": %d, \"start\": 1, \"socket\": \"/run/reused.sock\"}", (int)getpid());
	write_file("vm-reused.json", text);
	write_file("vm-junk.json", "{\"pid\": \"twelve\"}");
	write_file("notes.txt", "not an entry");
	struct registry_entry *e;
	unsigned n;
	cr_assert_eq(registry_list(dir, &e, &n), 0);
	cr_assert_eq(n, 2);
	for (unsigned i = 0; i < n; i++)
		cr_assert(e[i].stale, "%s is not stale", e[i].name);
	/* Defaults for what an entry leaves out. */
	cr_assert_eq(e[0].on_host_sleep, VM_POWER_PAUSE);
	cr_assert_eq(e[0].on_host_shutdown, VM_POWER_SHUTDOWN);
	registry_entries_free(e, n);
}

Test(registry, a_missing_directory_is_an_empty_registry)
{
	struct registry_entry *e;
	unsigned n = 7;
	cr_assert_eq(registry_list("/nonexistent/vessel/vms", &e, &n), 0);
	cr_assert_eq(n, 0);
}

Test(registry, directory_from_the_environment)
{
	char buf[256];
	setenv("VESSEL_REGISTRY_DIR", "/somewhere/vms", 1);
	cr_assert_eq(registry_dir(buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/somewhere/vms");
	unsetenv("VESSEL_REGISTRY_DIR");
	cr_assert_eq(registry_dir(buf, sizeof(buf)), 0);
	if (geteuid() == 0)
		cr_assert_str_eq(buf, "/run/vessel/vms");
}
