/* The VM object: memory, devices, vCPU threads, and the stop logic. */
#include "vm/vm.h"

#include "cli/cli.h"
#include "cpu/accel.h"
#include "util/error.h"
#include "vm/machine.h"

#include <errno.h>
#include <string.h>

int vm_run(const struct vm_config *cfg)
{
	const struct accel_ops *accel = accel_find(cfg->engine);
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.cfg = cfg;
	vm.accel = accel;
	if (accel->vm_init(&vm) < 0) {
		cli_error("run", "%s", err_msg());
		return EXIT_FAILURE_RUN;
	}
	return EXIT_OK;
}
