/* `vessel disk check`: verify an image's metadata, and repair what is safe to repair. */
#include "cli/disk.h"

static const char check_usage[] =
	"usage: vessel disk check [options] FILE\n"
	"\n"
	"Checks an image's metadata: footer and header checksums, the block allocation\n"
	"table (entries inside the file, no overlaps), the footer copy, leaked space and\n"
	"the parent chain.  Exit status: 0 no errors (warnings such as leaked space\n"
	"allowed), 2 errors found, 1 the check itself failed.\n"
	"\n"
	"options:\n"
	"  -r, --repair   fix what is safe to fix: a missing or stale footer or footer\n"
	"                 copy, space leaked by an interrupted allocation\n"
	"  -f, --format FMT   raw or vhd (default: probe)\n"
	"      --json     machine-readable output\n"
	"  -h, --help     this help\n";

int disk_cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repair", no_argument, NULL, 'r' }, { "format", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	bool repair = false, js = false;
	const char *fmt = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "rf:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repair = true; break;
		case 'f': fmt = optarg; break;
		case 'j': js = true; break;
		case 'h': fputs(check_usage, stdout); return EXIT_OK;
		default: return disk_bad_option(SUB " check", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " check", "expected one FILE (try `vessel disk check --help`)");
	const char *path = argv[optind];
	const struct block_format *f = NULL;
	int ret = fmt ? 0 : block_probe(path, &f);
	if (ret < 0)
		return disk_fail(ret);
	if (fmt)
		f = block_format_find(fmt);
	if (!f)
		return cli_usage_error(SUB " check", "unknown format '%s' (raw, vhd)", fmt);
	struct vhd_report rep = { 0 };
	if (strcmp(f->name, "vhd") == 0) {
		ret = vhd_check(path, repair ? VHD_CHECK_REPAIR : 0, &rep, NULL);
		if (ret < 0)
			return disk_fail(ret);
	}
	if (js) {
		json_t *j = json_object();
		json_object_set_new(j, "filename", json_string(path));
		json_object_set_new(j, "format", json_string(f->name));
		json_object_set_new(j, "errors", json_integer(rep.errors));
		json_object_set_new(j, "warnings", json_integer(rep.warnings));
		json_object_set_new(j, "repairable", json_boolean(rep.errors && rep.repairable));
		json_t *a = json_array();
		for (unsigned i = 0; i < rep.n_msgs; i++)
			json_array_append_new(a, json_string(rep.msgs[i]));
		json_object_set_new(j, "messages", a);
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(j);
	} else {
		for (unsigned i = 0; i < rep.n_msgs; i++)
			printf("%s\n", rep.msgs[i]);
		if (strcmp(f->name, "vhd"))
			printf("%s: raw image: no metadata to check\n", path);
		else if (!rep.errors)
			printf("%s: no errors found%s\n", path, rep.warnings ? " (see warnings)" : "");
		else
			printf("%s: %u error(s)%s\n", path, rep.errors,
			       rep.repairable ? ", all repairable with --repair" : "");
	}
	return rep.errors ? EXIT_USAGE : EXIT_OK;
}
