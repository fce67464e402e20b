/* Subcommands of the `vessel` binary and the exit codes they share.
 * Exit codes are documented in docs/cli.md; keep the two in step. */
#ifndef VESSEL_CLI_H
#define VESSEL_CLI_H

enum vessel_exit {
	EXIT_OK = 0,           /* success; guest powered off */
	EXIT_FAILURE_RUN = 1,  /* runtime error (I/O, device, engine) */
	EXIT_USAGE = 2,        /* bad flag, bad argument, bad input file */
	EXIT_TRIPLE_FAULT = 3, /* guest CPU shut down (triple fault) */
	EXIT_SIGNAL = 4,       /* ended by a signal or the console escape */
	EXIT_SANDBOX = 6,      /* run: a forbidden system call (SANDBOX_EXIT_CODE, src/vm/sandbox.h) */
	/* 5..255 with bit 0 set: guest wrote to the debug-exit port,
	 * code = (value << 1) | 1, as QEMU's isa-debug-exit. */
};

int cli_run_main(int argc, char **argv);
int cli_disk_main(int argc, char **argv);
int cli_ctl_main(int argc, char **argv);
int cli_plugin_main(int argc, char **argv);

/* Prints "vessel SUBCMD: message" on stderr and returns EXIT_USAGE. */
int cli_usage_error(const char *subcmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "vessel SUBCMD: message" on stderr (runtime error). */
void cli_error(const char *subcmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "512M", "2G", "4096", "1.5G"... into bytes. Returns 0 or -EINVAL. */
int cli_parse_size(const char *s, unsigned long long *out);

#endif
