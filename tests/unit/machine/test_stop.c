#include <criterion/criterion.h>

#include "machine/machine.h"

Test(stop, first_reason_wins)
{
	struct vm vm = { 0 };
	vm_request_stop(&vm, VM_STOP_TRIPLE_FAULT);
	vm_request_stop(&vm, VM_STOP_POWEROFF);
	cr_assert_eq(vm.stop_reason, VM_STOP_TRIPLE_FAULT);
}

Test(stop, pending_reset_yields_to_poweroff)
{
	struct vm vm = { 0 };
	vm_request_stop(&vm, VM_STOP_RESET);
	vm_request_stop(&vm, VM_STOP_RESET);
	cr_assert_eq(vm.stop_reason, VM_STOP_RESET);
	vm_request_stop(&vm, VM_STOP_POWEROFF);
	cr_assert_eq(vm.stop_reason, VM_STOP_POWEROFF);
	vm_request_stop(&vm, VM_STOP_RESET);
	cr_assert_eq(vm.stop_reason, VM_STOP_POWEROFF, "a reset never overrides a final stop");
}
