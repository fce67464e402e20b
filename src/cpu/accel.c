#include "cpu/accel.h"

#include <string.h>

const char *vcpu_exit_reason_name(enum vcpu_exit_reason r)
{
	static const char *const names[VCPU_EXIT_REASON_COUNT] = {
		[VCPU_EXIT_NONE] = "none",
		[VCPU_EXIT_IO] = "io",
		[VCPU_EXIT_MMIO] = "mmio",
		[VCPU_EXIT_MSR] = "msr",
		[VCPU_EXIT_HYPERCALL] = "hypercall",
		[VCPU_EXIT_HLT] = "hlt",
		[VCPU_EXIT_KICK] = "kick",
		[VCPU_EXIT_SHUTDOWN] = "shutdown",
		[VCPU_EXIT_INTERNAL_ERROR] = "internal_error",
	};
	return (unsigned)r < VCPU_EXIT_REASON_COUNT ? names[r] : "?";
}

const struct accel_ops *accel_find(const char *name)
{
	if (strcmp(name, "emu") == 0)
		return &accel_emu;
	if (strcmp(name, "kvm") == 0)
		return &accel_kvm;
	return NULL;
}
