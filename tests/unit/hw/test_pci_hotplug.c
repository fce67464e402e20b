/* The ACPI PCI hot-plug controller (hw/pci_hotplug.h, docs/hotplug.md)
 * through the board: its registers as the DSDT's PCNT and _EJ0 use them,
 * and the GPE it raises. */
#include "harness.h"

#include "hw/pci_hotplug.h"

#include <errno.h>

#define HP   PC_PORT_PCIHP
#define GPE0 (PC_PORT_ACPI_PM + 0x20)

static int ack(struct tvm *t) { return tvm_intr_ack(&t->cpu[0]); }

static void sci_level_vector(struct tvm *t)
{
	apic_w(t, 0xf0, 0x1ff);
	apic_w(t, 0x350, 0x10700);                   /* LINT0 masked: the I/O APIC only */
	ioapic_w(t, PC_IRQ_SCI, 0x49 | (1 << 15));   /* level */
}

Test(pci_hotplug, device_check_raises_the_gpe_and_chk_reads_once)
{
	struct tvm *t = tvm_new(1);
	sci_level_vector(t);
	outb(t, GPE0 + 8, 1u << PC_GPE_PCIHP);        /* GPE0_EN */
	cr_assert_eq(ack(t), -1, "nothing pending");
	pthread_mutex_lock(&t->vm.dev_lock);
	pci_hotplug_device_check(t->vm.platform->pcihp, 3);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_PCIHP), 1u << PC_GPE_PCIHP, "GPE status latched");
	cr_assert_eq(ack(t), 0x49, "SCI");
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJR), 0, "no eject request");
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 1u << 3);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 0, "the read consumed it");
	/* The OS clears the status: the SCI drops. */
	outb(t, GPE0, 1u << PC_GPE_PCIHP);
	apic_w(t, 0xb0, 0);
	cr_assert_eq(ack(t), -1);
	tvm_free(t);
}

Test(pci_hotplug, eject_request_and_the_guests_eject)
{
	struct tvm *t = tvm_new(1);
	struct pci_hotplug *hp = t->vm.platform->pcihp;
	pthread_mutex_lock(&t->vm.dev_lock);
	pci_hotplug_request_eject(hp, 5);
	cr_assert(!pci_hotplug_take_eject(hp, 5), "not ejected yet");
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_PCIHP), 1u << PC_GPE_PCIHP);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJR), 1u << 5);
	/* Byte reads do not consume: only the dword read of the Field does. */
	pthread_mutex_lock(&t->vm.dev_lock);
	pci_hotplug_request_eject(hp, 9);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inb(t, HP + PCI_HOTPLUG_EJR + 1), 1u << 1);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJR), 1u << 9);
	/* _EJ0 of slot 5; slot 0 (the host bridge) cannot be ejected. */
	outl(t, HP + PCI_HOTPLUG_EJ, (1u << 5) | 1u);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJ), 0, "EJ reads as 0");
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert(pci_hotplug_take_eject(hp, 5));
	cr_assert(!pci_hotplug_take_eject(hp, 5), "taken once");
	cr_assert(!pci_hotplug_take_eject(hp, 0));
	/* forget drops what is pending for a slot that is empty again. */
	pci_hotplug_device_check(hp, 7);
	pci_hotplug_forget(hp, 7);
	pci_hotplug_device_check(hp, 40);              /* no such slot: ignored */
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 0);
	tvm_free(t);
}

Test(pci_hotplug, reset_clears_and_snapshot_keeps_pending_bits)
{
	struct tvm *t = tvm_new(1);
	struct pci_hotplug *hp = t->vm.platform->pcihp;
	pthread_mutex_lock(&t->vm.dev_lock);
	pci_hotplug_device_check(hp, 2);
	pci_hotplug_request_eject(hp, 4);
	pci_hotplug_device_gone(hp, 8);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inb(t, PC_PORT_ACPI_PM + 0x20) & (1u << PC_GPE_PCIHP), 1u << PC_GPE_PCIHP, "GONE raises the GPE");
	outl(t, HP + PCI_HOTPLUG_EJ, 1u << 6);
	uint8_t buf[256];
	int64_t n = pci_hotplug_device.save(hp, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	platform_reset(&t->vm);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 0, "reset");
	cr_assert_eq(pci_hotplug_device.load(hp, buf, (size_t)n - 1), -EINVAL, "a short blob is refused");
	cr_assert_eq(pci_hotplug_device.load(hp, buf, (size_t)n), 0);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 1u << 2);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJR), 1u << 4);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_GONE), 1u << 8);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_GONE), 0, "the read consumed it");
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert(pci_hotplug_take_eject(hp, 6));
	pthread_mutex_unlock(&t->vm.dev_lock);
	tvm_free(t);
}

/* An eject the OS makes on its own (no request of the host's waits for
 * it) is handed to the host apart, so that it frees the device; an eject
 * that answers a request is not, and survives a snapshot as such. */
Test(pci_hotplug, the_guests_own_ejects_apart_from_answers)
{
	struct tvm *t = tvm_new(1);
	struct pci_hotplug *hp = t->vm.platform->pcihp;
	pthread_mutex_lock(&t->vm.dev_lock);
	pci_hotplug_request_eject(hp, 4);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJR), 1u << 4, "the OS reads the request");
	outl(t, HP + PCI_HOTPLUG_EJ, (1u << 4) | (1u << 11));
	uint8_t buf[256];
	int64_t n = pci_hotplug_device.save(hp, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	platform_reset(&t->vm);
	cr_assert_eq(pci_hotplug_device.load(hp, buf, (size_t)n), 0);
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(pci_hotplug_take_guest_ejects(hp), 1u << 11, "slot 11 on its own; slot 4 was asked for");
	cr_assert_eq(pci_hotplug_take_guest_ejects(hp), 0, "taken once");
	cr_assert(pci_hotplug_take_eject(hp, 4));
	pthread_mutex_unlock(&t->vm.dev_lock);
	/* Slot 4 again, now on the OS's own: no request is left to answer. */
	outl(t, HP + PCI_HOTPLUG_EJ, 1u << 4);
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(pci_hotplug_take_guest_ejects(hp), 1u << 4);
	pthread_mutex_unlock(&t->vm.dev_lock);
	tvm_free(t);
}
