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
	/* While hold is set, save and device-add wait inside the op (as a
	 * long save or a slow plug-in create() would) until it is cleared;
	 * n_held counts the ops waiting. */
	pthread_mutex_t hold_lock;
	pthread_cond_t hold_cond;
	bool hold;
	int n_held;
};

extern const struct vm_control_ops fake_vm_ops;

/* Brings the fake to running; plugin_path may be NULL. */
int fake_vm_init(struct fake_vm *vm, const char *plugin_path);
void fake_vm_destroy(struct fake_vm *vm);
/* Sets or clears the hold; clearing lets every held op go on. */
void fake_vm_hold(struct fake_vm *vm, bool on);
/* Waits until n ops are held (false after 20 s: the op never started). */
bool fake_vm_wait_held(struct fake_vm *vm, int n);

#endif
