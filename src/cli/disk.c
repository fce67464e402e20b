/* `vessel disk`: create, inspect, check, convert, resize, commit and rebase
 * virtual disks (raw and VHD), and `io`, a scriptable I/O driver for tests.
 * This file dispatches; each subcommand has its file (disk_NAME.c), the
 * shared helpers are in disk_common.c.
 *
 * Exit codes (cli.h): 0 success, 1 runtime error, 2 bad usage or a bad
 * input file.  Long operations draw a progress bar on stderr when it is a
 * terminal (or with -p), and print nothing otherwise.
 *
 * Hooks for filters (sector encryption): every subcommand that opens an
 * image takes `--filter NAME[:OPTS]`, resolved through the block layer's
 * filter registry (block_filter_register); create and convert go through
 * crypt_disk_create()/crypt_disk_convert(), which write the filter's
 * container into the new image. */
#include "cli/disk.h"

static const char disk_usage[] =
	"usage: vessel disk <command> [options] ...\n"
	"\n"
	"create, inspect, check and convert virtual disks (raw, VHD).\n"
	"\n"
	"commands:\n"
	"  create    make a new image (raw; VHD fixed, dynamic or differencing)\n"
	"  info      describe an image (format, sizes, geometry, parent chain)\n"
	"  check     verify an image's metadata; --repair fixes what is safe to fix\n"
	"  convert   copy an image into another format, keeping it sparse\n"
	"  resize    change the virtual size\n"
	"  commit    merge a differencing disk into its parent\n"
	"  rebase    point a differencing disk at another parent\n"
	"  io        run read/write/flush commands from stdin on an image (testing)\n"
	"\n"
	"The I/O benchmark that was `vessel disk bench` is bench/disk/bench-disk.\n"
	"\n"
	"options:\n"
	"  -h, --help   this help; `vessel disk COMMAND --help` for a command's options\n";

int cli_disk_main(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
		{ "create", disk_cmd_create }, { "info", disk_cmd_info }, { "check", disk_cmd_check },
		{ "convert", disk_cmd_convert }, { "resize", disk_cmd_resize }, { "commit", disk_cmd_commit },
		{ "rebase", disk_cmd_rebase }, { "io", disk_cmd_io },
	};
	/* The encryption filters live in the static library: registering
	 * them here is also what links them in. */
	crypt_filters_register();
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(disk_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1 && argv[1][0] == '-')
		return cli_usage_error("disk", "unknown option '%s' (try `vessel disk --help`)", argv[1]);
	if (argc < 2)
		return cli_usage_error("disk", "missing command (try `vessel disk --help`)");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			optind = 1;
			opterr = 0;
			return cmds[i].fn(argc - 1, argv + 1);
		}
	}
	/* Speed is measured in bench/, not by the product. */
	if (strcmp(argv[1], "bench") == 0)
		return cli_usage_error("disk", "`vessel disk bench` moved to the benchmark program bench/disk/bench-disk "
				       "(bench/disk/README.md)");
	return cli_usage_error("disk", "unknown command '%s' (try `vessel disk --help`)", argv[1]);
}
