/* vessel: a virtual machine monitor for x86-64.  Entry point: dispatches
 * to the subcommands in src/cli/. */
#include "cli/cli.h"
#include "util/log.h"
#include "vmm/plugin_loader.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: vessel [-v] <command> [options]\n"
	"\n"
	"commands:\n"
	"  run       boot a virtual machine (kernel, initrd, manifest, snapshot)\n"
	"  disk      create, inspect, check and convert virtual disks (raw, VHD, encrypted)\n"
	"  ctl       drive a running VM through its control socket\n"
	"  plugin    list and describe device plug-ins\n"
	"  power-agent  coordinate the host's sleep and shutdown with the running VMs\n"
	"  version   print the version\n"
	"  help      print this help, or `help COMMAND` for a command's help\n"
	"\n"
	"global options:\n"
	"  -v, --verbose   more log output (repeat for more); VESSEL_LOG=LEVEL sets it too\n"
	"  -h, --help      this help\n"
	"  -V, --version   print the version\n"
	"\n"
	"Run `vessel COMMAND --help` for a command's options.\n";

static int dispatch(const char *cmd, int argc, char **argv)
{
	if (strcmp(cmd, "run") == 0)
		return cli_run_main(argc, argv);
	if (strcmp(cmd, "disk") == 0)
		return cli_disk_main(argc, argv);
	if (strcmp(cmd, "ctl") == 0)
		return cli_ctl_main(argc, argv);
	if (strcmp(cmd, "plugin") == 0)
		return cli_plugin_main(argc, argv);
	if (strcmp(cmd, "power-agent") == 0)
		return cli_power_agent_main(argc, argv);
	if (strcmp(cmd, "version") == 0) {
		printf("vessel %s\n", VESSEL_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "help") == 0) {
		if (argc > 1) {
			char *help_argv[] = { argv[1], "--help", NULL };
			if (strcmp(argv[1], "help") && strcmp(argv[1], "version"))
				return dispatch(argv[1], 2, help_argv);
		}
		fputs(usage, stdout);
		return EXIT_OK;
	}
	return cli_usage_error(NULL, "unknown command '%s' (try `vessel help`)", cmd);
}

int main(int argc, char **argv)
{
	log_init();
	plugin_loader_install_crypt();
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return EXIT_OK;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("vessel %s\n", VESSEL_VERSION);
			return EXIT_OK;
		} else if (strcmp(a, "--verbose") == 0) {
			log_raise_verbosity(1);
		} else if (a[1] == 'v' && strspn(a + 1, "v") == strlen(a + 1)) {
			log_raise_verbosity((int)strlen(a + 1));
		} else {
			return cli_usage_error(NULL, "unknown option '%s' (try `vessel --help`)", a);
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	/* The subcommand sees itself as argv[0], so getopt works as usual. */
	return dispatch(argv[i], argc - i, argv + i);
}
