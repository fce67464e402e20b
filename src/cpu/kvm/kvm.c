/* accel_kvm: Linux KVM engine. */
#include "cpu/accel.h"
#include "util/error.h"

#include <errno.h>

static int kvm_vm_init(struct vm *vm)
{
	return err_set(-ENOSYS, "the kvm engine is not available yet");
}

const struct accel_ops accel_kvm = {
	.name = "kvm",
	.vm_init = kvm_vm_init,
};
