/* `vessel ctl`: drive a running VM through its control socket. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char ctl_usage[] =
	"usage: vessel ctl [options] <command> ...\n"
	"\n"
	"drive a running VM through its control socket.\n"
	"\n"
	"options:\n"
	"  -h, --help   this help\n";

int cli_ctl_main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(ctl_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1 && argv[1][0] == '-')
		return cli_usage_error("ctl", "unknown option '%s' (try `vessel ctl --help`)", argv[1]);
	if (argc < 2)
		return cli_usage_error("ctl", "missing command (try `vessel ctl --help`)");
	return cli_usage_error("ctl", "unknown command '%s' (try `vessel ctl --help`)", argv[1]);
}
