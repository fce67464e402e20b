/* The engine registry: which engine a name selects. */
#include "cpu/engines.h"

#include <string.h>

const struct accel_ops *accel_find(const char *name)
{
	if (strcmp(name, "emu") == 0)
		return &accel_emu;
	if (strcmp(name, "kvm") == 0)
		return &accel_kvm;
	return NULL;
}
