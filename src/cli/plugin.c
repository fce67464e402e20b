/* `vessel plugin`: list and describe device plug-ins (docs/plugins.md).
 * Everything shown comes from the plug-ins' static descriptors: no device
 * is created. */
#include "cli/cli.h"
#include "util/log.h"
#include "util/error.h"
#include "vmm/plugin.h"
#include "vmm/plugin_loader.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char plugin_usage[] =
	"usage: vessel plugin [options] <command> ...\n"
	"\n"
	"list and describe device plug-ins.\n"
	"\n"
	"commands:\n"
	"  list          device types provided by the plug-ins found\n"
	"  info NAME     parameters and resources of a device type (or of every\n"
	"                type of the plug-in called NAME)\n"
	"  path          the directories searched, in order\n"
	"\n"
	"options:\n"
	"  -d, --dir DIR   search DIR first (repeatable); then VESSEL_PLUGIN_PATH\n"
	"                  (colon-separated) if set, else $XDG_DATA_HOME/vessel/plugins,\n"
	"                  /usr/local/lib/vessel/plugins and /usr/lib/vessel/plugins\n"
	"  -h, --help      this help\n";

static const char *resource_kind_name(const char *k)
{
	static const char *const names[][2] = {
		{ "pio", "I/O ports" }, { "mmio", "MMIO" }, { "irq", "IRQ line" }, { "pci", "PCI function" },
	};
	for (unsigned i = 0; k && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(k, names[i][0]))
			return names[i][1];
	return "?";
}

static const char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static int64_t jint(json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

/* One device type, from the descriptor its plug-in's probe described. */
static void print_type(json_t *t, const struct plugin_file *f)
{
	printf("%s: %s\n", jstr(t, "name"), jstr(t, "description"));
	printf("  plug-in: %s %s (%s)\n", jstr(f->desc, "name"), jstr(f->desc, "version"), f->path);
	json_t *params = json_object_get(t, "params"), *res = json_object_get(t, "resources"), *e;
	size_t i;
	printf("  parameters:%s\n", json_array_size(params) ? "" : " none");
	json_array_foreach(params, i, e) {
		char range[64] = "";
		const char *def = json_string_value(json_object_get(e, "default"));
		if (!strcmp(jstr(e, "type"), "int"))
			snprintf(range, sizeof(range), " (%" PRId64 " to %" PRId64 ")", jint(e, "min"), jint(e, "max"));
		printf("    %-14s %-6s %s%s%s  %s\n", jstr(e, "name"), jstr(e, "type"), def ? "default " : "required",
		       def ? def : "", range, jstr(e, "description"));
	}
	printf("  resources:%s\n", json_array_size(res) ? "" : " none");
	json_array_foreach(res, i, e) {
		const char *kind = jstr(e, "kind");
		printf("    %-14s %-12s %#" PRIx64, jstr(e, "name"), resource_kind_name(kind), (uint64_t)jint(e, "base"));
		if (!strcmp(kind, "pio") || !strcmp(kind, "mmio"))
			printf(" + %#" PRIx64 " bytes", (uint64_t)jint(e, "len"));
		if (json_string_value(json_object_get(e, "base_param")))
			printf(" (set by parameter %s)", jstr(e, "base_param"));
		printf("\n");
		json_t *pci = json_object_get(e, "pci"), *b;
		if (!pci)
			continue;
		/* The function vessel builds (docs/plugins.md "PCI functions"). */
		printf("      %04" PRIx64 ":%04" PRIx64 " subsystem %04" PRIx64 ":%04" PRIx64 " class %06" PRIx64
		       " revision %" PRId64 ", INTx pin %" PRId64 ", %" PRId64 " MSI vectors\n",
		       jint(pci, "vendor_id"), jint(pci, "device_id"), jint(pci, "subsystem_vendor_id"),
		       jint(pci, "subsystem_id"), jint(pci, "class_code"), jint(pci, "revision"), jint(pci, "interrupt_pin"),
		       jint(pci, "msi_vectors"));
		size_t k;
		json_array_foreach(json_object_get(pci, "bars"), k, b) {
			if (jint(b, "size"))
				printf("      BAR %zu: %s, %" PRId64 " bytes\n", k, jstr(b, "kind"), jint(b, "size"));
		}
	}
	printf("  snapshot: %s\n", json_is_true(json_object_get(t, "snapshot")) ? "saves its state" : "no state");
}

int cli_plugin_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct vm_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int rc = EXIT_USAGE;
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (cfg.n_plugin_dirs == VM_MAX_PLUGIN_DIRS) {
				rc = cli_usage_error("plugin", "--dir: at most %d directories", VM_MAX_PLUGIN_DIRS);
				goto out;
			}
			cfg.plugin_dirs[cfg.n_plugin_dirs++] = strdup(optarg);
			break;
		case 'h':
			fputs(plugin_usage, stdout);
			rc = EXIT_OK;
			goto out;
		case ':':
			rc = cli_usage_error("plugin", "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			rc = cli_usage_error("plugin", "unknown option '%s' (try `vessel plugin --help`)", argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = cli_usage_error("plugin", "missing command (try `vessel plugin --help`)");
		goto out;
	}
	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	bool is_info = !strcmp(cmd, "info");
	if (strcmp(cmd, "list") && !is_info && strcmp(cmd, "path")) {
		rc = cli_usage_error("plugin", "unknown command '%s' (try `vessel plugin --help`)", cmd);
		goto out;
	}
	if (nargs != (is_info ? 1 : 0)) {
		rc = cli_usage_error("plugin", is_info ? "info needs one NAME" : "%s takes no argument", cmd);
		goto out;
	}

	struct plugin_path path;
	if (plugin_path_init(&path, cfg.plugin_dirs, cfg.n_plugin_dirs) < 0) {
		cli_error("plugin", "%s", err_msg());
		rc = EXIT_FAILURE_RUN;
		goto out;
	}
	if (!strcmp(cmd, "path")) {
		for (unsigned i = 0; i < path.n; i++)
			printf("%s\n", path.dirs[i]);
		rc = EXIT_OK;
		goto free_dirs;
	}
	/* Descriptors are read in probe children: a plug-in that crashes
	 * while loading is reported below and the others are listed.  The
	 * scan's own warnings are left out so that each problem is said
	 * once. */
	enum log_level saved = log_threshold;
	log_threshold = LOG_ERROR;
	struct plugin_registry reg;
	plugin_registry_init(&reg);
	plugin_registry_scan(&reg, path.dirs, path.n);
	log_threshold = saved;
	for (unsigned i = 0; i < reg.n_problems; i++)
		cli_error("plugin", "%s", reg.problems[i].message);

	if (!is_info) {
		printf("%-16s %-20s %-8s %s\n", "TYPE", "PLUGIN", "VERSION", "DESCRIPTION");
		for (unsigned i = 0; i < reg.n_files; i++) {
			json_t *d = reg.files[i].desc, *t;
			size_t j;
			json_array_foreach(json_object_get(d, "devices"), j, t)
				printf("%-16s %-20s %-8s %s\n", jstr(t, "name"), jstr(d, "name"), jstr(d, "version"),
				       jstr(t, "description"));
		}
		rc = EXIT_OK;
	} else {
		const char *name = argv[optind + 1];
		bool found = false;
		rc = EXIT_OK;
		for (unsigned i = 0; i < reg.n_files && !found; i++) {
			json_t *t;
			size_t j;
			json_array_foreach(json_object_get(reg.files[i].desc, "devices"), j, t) {
				if (!found && !strcmp(jstr(t, "name"), name)) {
					print_type(t, &reg.files[i]);
					found = true;
				}
			}
		}
		if (!found) {
			for (unsigned i = 0; i < reg.n_files; i++) {
				json_t *d = reg.files[i].desc, *t;
				size_t j;
				if (strcmp(jstr(d, "name"), name))
					continue;
				found = true;
				printf("plug-in %s %s: %s\n\n", jstr(d, "name"), jstr(d, "version"), jstr(d, "description"));
				json_array_foreach(json_object_get(d, "devices"), j, t)
					print_type(t, &reg.files[i]);
			}
			if (!found) {
				cli_error("plugin", "no device type or plug-in named '%s' (see `vessel plugin list`)", name);
				rc = EXIT_FAILURE_RUN;
			}
		}
	}
	plugin_registry_free(&reg);
free_dirs:
	plugin_path_free(&path);
out:
	for (unsigned i = 0; i < cfg.n_plugin_dirs; i++)
		free(cfg.plugin_dirs[i]);
	return rc;
}
