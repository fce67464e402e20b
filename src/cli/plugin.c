/* `vessel plugin`: list and describe device plug-ins. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char plugin_usage[] =
	"usage: vessel plugin [options] <command> ...\n"
	"\n"
	"list and describe device plug-ins.\n"
	"\n"
	"options:\n"
	"  -h, --help   this help\n";

int cli_plugin_main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(plugin_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1 && argv[1][0] == '-')
		return cli_usage_error("plugin", "unknown option '%s' (try `vessel plugin --help`)", argv[1]);
	if (argc < 2)
		return cli_usage_error("plugin", "missing command (try `vessel plugin --help`)");
	return cli_usage_error("plugin", "unknown command '%s' (try `vessel plugin --help`)", argv[1]);
}
