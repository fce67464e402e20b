/* Subcommands of the `vessel` binary and the exit codes they share.
 * Exit codes are documented in docs/cli.md; keep the two in step. */
#ifndef VESSEL_CLI_H
#define VESSEL_CLI_H

#include "machine/machine.h"

#include <stdbool.h>

enum vessel_exit {
	EXIT_OK = 0,           /* success; guest powered off */
	EXIT_FAILURE_RUN = 1,  /* runtime error (I/O, device, engine) */
	EXIT_USAGE = 2,        /* bad flag, bad argument, bad input file */
	EXIT_TRIPLE_FAULT = 3, /* guest CPU shut down (triple fault) */
	EXIT_SIGNAL = 4,       /* ended by a signal or the console escape */
	EXIT_SANDBOX = 6,      /* run: a forbidden system call (SANDBOX_EXIT_CODE, src/vmm/sandbox.h) */
	EXIT_DEBUG_EXIT_HIGH = 8, /* guest wrote 0x80..0xff to the debug-exit port */
	EXIT_HIBERNATED = 10,  /* run: the guest hibernated (ACPI S4); its disks hold its image */
	EXIT_GUEST_PANIC = 12, /* run: the guest panicked and --on-panic poweroff ended the run */
	/* Odd codes: guest wrote v (0..0x7f) to the debug-exit port,
	 * code = (v << 1) | 1, as QEMU's isa-debug-exit. */
};

/* The exit code for a value the guest wrote to the debug-exit port (the
 * value as wide as the guest's access).  The port is a byte port, as
 * QEMU's isa-debug-exit with its default iosize=1: only the low byte
 * counts.  QEMU exits with (v << 1) | 1, which the kernel cuts to 8 bits,
 * so v >= 0x80 would wrap onto the codes of smaller values and onto 1 and
 * 3 (runtime error, triple fault): those values get their own code,
 * EXIT_DEBUG_EXIT_HIGH, and vessel prints the value (docs/cli.md). */
static inline int cli_debug_exit_code(unsigned long long value)
{
	unsigned v = (unsigned)(value & 0xff);
	return v < 0x80 ? (int)((v << 1) | 1) : EXIT_DEBUG_EXIT_HIGH;
}

int cli_run_main(int argc, char **argv);
/* The one place where the way a run ended (vm_run's stop reason) becomes
 * a message on stderr and an exit code.  no_reboot: --no-reboot was
 * given; debug_exit_value: what the guest wrote to the debug-exit port. */
int cli_run_exit_code(enum vm_stop_reason why, bool no_reboot, int debug_exit_value);
int cli_disk_main(int argc, char **argv);
int cli_ctl_main(int argc, char **argv);
int cli_plugin_main(int argc, char **argv);
int cli_power_agent_main(int argc, char **argv);

/* Prints "vessel SUBCMD: message" on stderr and returns EXIT_USAGE. */
int cli_usage_error(const char *subcmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "vessel SUBCMD: message" on stderr (runtime error). */
void cli_error(const char *subcmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "512M", "2G", "4096", "1.5G"... into bytes. Returns 0 or -EINVAL. */
int cli_parse_size(const char *s, unsigned long long *out);

#endif
