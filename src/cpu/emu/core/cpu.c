/* accel_emu: the software x86-64 engine's run loop (core module). */
#include "cpu/emu/emu.h"
#include "util/error.h"

#include <errno.h>

static int emu_vm_init(struct vm *vm)
{
	return err_set(-ENOSYS, "the emu engine cannot run guests yet");
}

const struct accel_ops accel_emu = {
	.name = "emu",
	.vm_init = emu_vm_init,
};
