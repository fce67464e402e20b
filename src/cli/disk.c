/* `vessel disk`: create, inspect, check and convert virtual disks. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char disk_usage[] =
	"usage: vessel disk [options] <command> ...\n"
	"\n"
	"create, inspect, check and convert virtual disks.\n"
	"\n"
	"options:\n"
	"  -h, --help   this help\n";

int cli_disk_main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(disk_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1 && argv[1][0] == '-')
		return cli_usage_error("disk", "unknown option '%s' (try `vessel disk --help`)", argv[1]);
	if (argc < 2)
		return cli_usage_error("disk", "missing command (try `vessel disk --help`)");
	return cli_usage_error("disk", "unknown command '%s' (try `vessel disk --help`)", argv[1]);
}
