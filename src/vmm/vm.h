/* The VM object: builds the machine from a vm_config, runs it, and tears
 * it down.  It returns why the run ended; the CLI alone turns that into a
 * message and an exit code (docs/cli.md). */
#ifndef VESSEL_VMM_VM_H
#define VESSEL_VMM_VM_H

#include "machine/machine.h"
#include "vmm/config.h"

#include <stdatomic.h>

struct vm_run_opts {
	/* Becomes non-zero when the run should end with VM_STOP_QUIT (the
	 * CLI sets it from its signal handlers); polled every 100 ms. */
	const atomic_int *quit;
};

/* Runs the VM described by cfg until it stops for good (a reboot builds a
 * fresh machine unless cfg->no_reboot) and returns why:
 * VM_STOP_BAD_INPUT or VM_STOP_START_FAILED when it never ran, with
 * err_msg() saying why; VM_STOP_DEBUG_EXIT with the value the guest wrote
 * in *debug_exit_value (may be NULL); otherwise the machine's stop reason.
 * opts may be NULL. */
enum vm_stop_reason vm_run(const struct vm_config *cfg, const struct vm_run_opts *opts, int *debug_exit_value);

/* Fills cfg from a JSON manifest (docs/manifest.md); returns 0 or -errno
 * with a message naming the field, the value and what was expected. */
int vm_manifest_load(const char *path, struct vm_config *cfg);

#endif
