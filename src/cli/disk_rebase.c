/* `vessel disk rebase`: point a differencing disk at another parent. */
#include "cli/disk.h"

static const char rebase_usage[] =
	"usage: vessel disk rebase [options] -b PARENT FILE\n"
	"\n"
	"Makes PARENT the parent of the differencing disk FILE.  By default the\n"
	"sectors whose content would change are first copied into FILE, so FILE\n"
	"reads the same afterwards (the old parent must be readable).\n"
	"\n"
	"options:\n"
	"  -b, --parent FILE  the new parent (a VHD image)\n"
	"  -u, --unsafe       only rewrite the parent link (for a parent that was moved\n"
	"                     or renamed, or whose content is known to be the same)\n"
	"  -p, --progress     progress bar even when stderr is not a terminal\n"
	"  -h, --help         this help\n";

int disk_cmd_rebase(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "parent", required_argument, NULL, 'b' }, { "unsafe", no_argument, NULL, 'u' },
		{ "progress", no_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	const char *parent = NULL;
	bool unsafe = false, prog = false;
	int c;
	while ((c = getopt_long(argc, argv, "b:uph", opts, NULL)) != -1) {
		switch (c) {
		case 'b': parent = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': prog = true; break;
		case 'h': fputs(rebase_usage, stdout); return EXIT_OK;
		default: return disk_bad_option(SUB " rebase", argv);
		}
	}
	if (!parent)
		return cli_usage_error(SUB " rebase", "missing -b PARENT (try `vessel disk rebase --help`)");
	if (optind + 1 != argc)
		return cli_usage_error(SUB " rebase", "expected one FILE (try `vessel disk rebase --help`)");
	struct disk_progress pr;
	disk_progress_init(&pr, prog);
	int ret = vhd_rebase(argv[optind], parent, unsafe, disk_progress_cb, &pr);
	return ret < 0 ? disk_fail(ret) : EXIT_OK;
}
