/* `vessel disk commit`: merge a differencing disk into its parent. */
#include "cli/disk.h"

static const char commit_usage[] =
	"usage: vessel disk commit [options] FILE\n"
	"\n"
	"Writes the sectors a differencing disk holds into its parent.  The child\n"
	"stays valid (it reads the same as before).\n"
	"\n"
	"options:\n"
	"  -p, --progress   progress bar even when stderr is not a terminal\n"
	"  -h, --help       this help\n";

int disk_cmd_commit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "progress", no_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	bool prog = false;
	int c;
	while ((c = getopt_long(argc, argv, "ph", opts, NULL)) != -1) {
		switch (c) {
		case 'p': prog = true; break;
		case 'h': fputs(commit_usage, stdout); return EXIT_OK;
		default: return disk_bad_option(SUB " commit", argv);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error(SUB " commit", "expected one FILE (try `vessel disk commit --help`)");
	struct disk_progress pr;
	disk_progress_init(&pr, prog);
	int ret = vhd_commit(argv[optind], disk_progress_cb, &pr);
	return ret < 0 ? disk_fail(ret) : EXIT_OK;
}
