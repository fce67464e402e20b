/* control-fake-vm SOCKET [PLUGIN.so]: serves the control API for a fake VM
 * until it is powered off, so that integration tests can drive `vessel
 * ctl` before a real guest is wired in.  Prints "ready" once listening. */
#include "fake_vm.h"

#include "util/error.h"
#include "vmm/api.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: control-fake-vm SOCKET [PLUGIN.so]\n");
		return 2;
	}
	struct fake_vm vm;
	if (fake_vm_init(&vm, argc > 2 ? argv[2] : NULL) < 0) {
		fprintf(stderr, "control-fake-vm: %s\n", err_msg());
		return 1;
	}
	/* Powerdown leaves the guest running, as a guest without ACPI would:
	 * only poweroff ends it, which lets tests see powering-down. */
	vm.guest_ignores_powerdown = true;
	struct api_server *srv;
	if (api_server_start(&srv, argv[1], &fake_vm_ops, &vm, &vm.lc) < 0) {
		fprintf(stderr, "control-fake-vm: %s\n", err_msg());
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	lifecycle_wait(&vm.lc, 1u << VM_STATE_OFF, -1);
	api_server_stop(srv);
	fake_vm_destroy(&vm);
	return 0;
}
