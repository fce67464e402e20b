/* A VM stand-in for control-plane tests: a lifecycle, real buses with the
 * example plug-in's devices, and vm_control_ops that move the lifecycle
 * as the real VM would. */
#ifndef VESSEL_TEST_FAKE_VM_H
#define VESSEL_TEST_FAKE_VM_H

#include "machine/bus.h"
#include "vmm/api.h"
#include "vmm/lifecycle.h"
#include "machine/memory.h"
#include "vmm/plugin.h"

struct fake_vm {
	struct lifecycle lc;
	struct bus pio, mmio;
	pthread_mutex_t dev_lock;
	struct guest_memory mem;
	struct plugin_registry reg;
	struct plugin_devices devices;
	int calls_pause, calls_resume, calls_powerdown, calls_poweroff, calls_reset, calls_save;
	char last_save[512];
	int fail_save;          /* -errno to fail save with */
	bool guest_ignores_powerdown;
};

extern const struct vm_control_ops fake_vm_ops;

/* Brings the fake to running; plugin_path may be NULL. */
int fake_vm_init(struct fake_vm *vm, const char *plugin_path);
void fake_vm_destroy(struct fake_vm *vm);

#endif
