/* `vessel plugin`: list and describe device plug-ins (docs/plugins.md).
 * Everything shown comes from the plug-ins' static descriptors: no device
 * is created. */
#include "cli/cli.h"
#include "util/log.h"
#include "vmm/plugin.h"

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
	"                  (colon-separated) if set, else $XDG_DATA_HOME/vessel/plugins\n"
	"                  and /usr/local/lib/vessel/plugins\n"
	"  -h, --help      this help\n";

static const char *param_type_name(enum vessel_param_type t)
{
	switch (t) {
	case VESSEL_PARAM_BOOL: return "bool";
	case VESSEL_PARAM_INT: return "int";
	case VESSEL_PARAM_STRING: return "string";
	}
	return "?";
}

static const char *resource_kind_name(enum vessel_resource_kind k)
{
	switch (k) {
	case VESSEL_RES_PIO: return "I/O ports";
	case VESSEL_RES_MMIO: return "MMIO";
	case VESSEL_RES_IRQ: return "IRQ line";
	case VESSEL_RES_PCI: return "PCI function";
	}
	return "?";
}

static void print_type(const struct vessel_device_type *t, const struct plugin_lib *lib)
{
	printf("%s: %s\n", t->name, t->description ? t->description : "");
	printf("  plug-in: %s %s (%s)\n", lib->desc->name, lib->desc->version ? lib->desc->version : "", lib->path);
	printf("  parameters:%s\n", t->n_params ? "" : " none");
	for (unsigned i = 0; i < t->n_params; i++) {
		const struct vessel_param_spec *p = &t->params[i];
		char range[64] = "";
		if (p->type == VESSEL_PARAM_INT)
			snprintf(range, sizeof(range), " (%" PRId64 " to %" PRId64 ")", p->min, p->max);
		printf("    %-14s %-6s %s%s%s  %s\n", p->name, param_type_name(p->type),
		       p->default_value ? "default " : "required", p->default_value ? p->default_value : "", range,
		       p->description ? p->description : "");
	}
	printf("  resources:%s\n", t->n_resources ? "" : " none");
	for (unsigned i = 0; i < t->n_resources; i++) {
		const struct vessel_resource_spec *r = &t->resources[i];
		printf("    %-14s %-12s %#" PRIx64, r->name, resource_kind_name(r->kind), r->base);
		if (r->kind == VESSEL_RES_PIO || r->kind == VESSEL_RES_MMIO)
			printf(" + %#" PRIx64 " bytes", r->len);
		if (r->base_param)
			printf(" (set by parameter %s)", r->base_param);
		printf("\n");
	}
	printf("  snapshot: %s\n", t->save ? "saves its state" : "no state");
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

	char *dirs[PLUGIN_MAX_DIRS];
	unsigned n_dirs = plugin_search_dirs(&cfg, dirs, PLUGIN_MAX_DIRS);
	if (!strcmp(cmd, "path")) {
		for (unsigned i = 0; i < n_dirs; i++)
			printf("%s\n", dirs[i]);
		rc = EXIT_OK;
		goto free_dirs;
	}
	/* The scan reports broken plug-ins itself, once, below. */
	enum log_level saved = log_threshold;
	log_threshold = LOG_ERROR;
	struct plugin_registry reg;
	plugin_registry_init(&reg);
	plugin_registry_scan(&reg, dirs, n_dirs);
	log_threshold = saved;
	for (unsigned i = 0; i < reg.n_problems; i++)
		cli_error("plugin", "%s", reg.problems[i].message);

	if (!is_info) {
		printf("%-16s %-20s %-8s %s\n", "TYPE", "PLUGIN", "VERSION", "DESCRIPTION");
		for (unsigned i = 0; i < reg.n_libs; i++) {
			const struct vessel_plugin *d = reg.libs[i].desc;
			for (unsigned j = 0; j < d->n_devices; j++)
				printf("%-16s %-20s %-8s %s\n", d->devices[j]->name, d->name, d->version ? d->version : "",
				       d->devices[j]->description ? d->devices[j]->description : "");
		}
		rc = EXIT_OK;
	} else {
		const char *name = argv[optind + 1];
		const struct plugin_lib *lib;
		const struct vessel_device_type *t = plugin_registry_find(&reg, name, &lib);
		rc = EXIT_OK;
		if (t) {
			print_type(t, lib);
		} else {
			bool found = false;
			for (unsigned i = 0; i < reg.n_libs; i++) {
				const struct vessel_plugin *d = reg.libs[i].desc;
				if (strcmp(d->name, name))
					continue;
				found = true;
				printf("plug-in %s %s: %s\n\n", d->name, d->version ? d->version : "",
				       d->description ? d->description : "");
				for (unsigned j = 0; j < d->n_devices; j++)
					print_type(d->devices[j], &reg.libs[i]);
			}
			if (!found) {
				cli_error("plugin", "no device type or plug-in named '%s' (see `vessel plugin list`)", name);
				rc = EXIT_FAILURE_RUN;
			}
		}
	}
	plugin_registry_free(&reg);
free_dirs:
	for (unsigned i = 0; i < n_dirs; i++)
		free(dirs[i]);
out:
	for (unsigned i = 0; i < cfg.n_plugin_dirs; i++)
		free(cfg.plugin_dirs[i]);
	return rc;
}
