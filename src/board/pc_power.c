/* ACPI S3 on the PC (ACPI 6.4, 7.4.2.4 and 16.1): the sleep button, the
 * FACS and what a wake from suspend-to-RAM resets (docs/power.md). */
#include "hw/acpi_pm.h"
#include "board/pc.h"
#include "hw/intc/lapic.h"

#include <string.h>

void platform_press_sleep_button(struct vm *vm)
{
	if (!vm->platform || !vm->platform->pm)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	acpi_pm_press_sleep_button(vm->platform->pm);
	pthread_mutex_unlock(&vm->dev_lock);
	vm_request_wake(vm, VM_WAKE_SLEEP_BUTTON);
}

uint64_t platform_facs_address(struct vm *vm)
{
	return vm->platform ? vm->platform->facs_addr : 0;
}

/* Devices powered off in S3, which the OS programs again on resume:
 * Linux's lapic_resume, ioapic_resume, i8259A_resume, the clock events'
 * and the HPET's resume (arch/x86/kernel/apic, i8259.c, hpet.c).  The RTC
 * keeps time and its alarm on its battery; the PM timer, the UART, the
 * 8042 and PCI configuration keep their state (the OS restores what it
 * needs). */
static bool lost_in_s3(const char *name)
{
	static const char *const lost[] = { "pic", "ioapic", "pit", "hpet" };
	for (unsigned i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
		if (!strcmp(name, lost[i]))
			return true;
	return false;
}

enum vm_wake_reason platform_suspend(struct vm *vm)
{
	struct platform *p = vm->platform;
	if (!p)
		return VM_WAKE_NONE;
	/* Powered off now, not at wake: their timers stop firing into a
	 * machine whose processors sleep. */
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		if (p->lapics[i])
			lapic_reset(p->lapics[i], false);
	for (unsigned i = 0; i < p->n_devs; i++)
		if (pc_devices[i].type->reset && lost_in_s3(pc_devices[i].name))
			pc_devices[i].type->reset(p->devs[i]);
	unsigned sts = p->pm ? acpi_pm_pending_wake(p->pm) : 0;
	pthread_mutex_unlock(&vm->dev_lock);
	return (sts & ACPI_PM1_PWRBTN_STS) ? VM_WAKE_POWER_BUTTON
	     : (sts & ACPI_PM1_SLPBTN_STS) ? VM_WAKE_SLEEP_BUTTON
	     : (sts & ACPI_PM1_RTC_STS)    ? VM_WAKE_ALARM
					   : VM_WAKE_NONE;
}

void platform_wake(struct vm *vm, enum vm_wake_reason reason)
{
	struct platform *p = vm->platform;
	if (!p)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	unsigned sts = reason == VM_WAKE_POWER_BUTTON ? ACPI_PM1_PWRBTN_STS
		     : reason == VM_WAKE_SLEEP_BUTTON ? ACPI_PM1_SLPBTN_STS
		     : reason == VM_WAKE_ALARM        ? ACPI_PM1_RTC_STS
						      : 0;
	if (p->pm)
		acpi_pm_wake(p->pm, sts);
	pthread_mutex_unlock(&vm->dev_lock);
}
