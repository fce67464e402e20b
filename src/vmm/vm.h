/* The VM object: builds the machine from a vm_config, runs it, and tears
 * it down.  Returns a process exit code (enum vessel_exit in cli/cli.h). */
#ifndef VESSEL_VM_VM_H
#define VESSEL_VM_VM_H

#include "vm/config.h"

int vm_run(const struct vm_config *cfg);

/* Fills cfg from a JSON manifest (docs/manifest.md); returns 0 or -errno
 * with a message naming the field, the value and what was expected. */
int vm_manifest_load(const char *path, struct vm_config *cfg);

#endif
