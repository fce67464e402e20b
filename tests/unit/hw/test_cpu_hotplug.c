/* The ACPI processor hot-plug controller (hw/cpu_hotplug.h,
 * docs/hotplug.md "CPUs") through the board: its registers as the DSDT's
 * CSCN, _STA and _EJ0 use them, and the GPE it raises. */
#include "harness.h"

#include "hw/cpu_hotplug.h"

#include <errno.h>

#define HP   PC_PORT_CPUHP
#define GPE0 (PC_PORT_ACPI_PM + 0x20)

static void lock(struct tvm *t) { pthread_mutex_lock(&t->vm.dev_lock); }
static void unlock(struct tvm *t) { pthread_mutex_unlock(&t->vm.dev_lock); }

Test(cpu_hotplug, present_insert_eject_and_the_gpe)
{
	struct tvm *t = tvm_new(2);
	struct cpu_hotplug *hp = t->vm.platform->cpuhp;
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_PRS), 0x3, "the board's CPUs are present");
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_CPUHP), 0, "no change yet");
	lock(t);
	cpu_hotplug_insert(hp, 33);
	cpu_hotplug_insert(hp, 64);                /* no such CPU: ignored */
	unlock(t);
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_CPUHP), 1u << PC_GPE_CPUHP, "GPE status latched");
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_PRS + 4), 1u << 1, "CPU 33 present");
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_INS), 0);
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_INS + 4), 1u << 1, "device check for CPU 33");
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_INS + 4), 0, "the read consumed it");
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_PRS + 4), 1u << 1, "PRS is a state: not consumed");
	/* An eject request, and the OS's _EJ0; CPU 0 cannot go, nor one
	 * that is absent. */
	lock(t);
	cpu_hotplug_request_eject(hp, 33);
	cpu_hotplug_request_eject(hp, 40);
	unlock(t);
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_RMV + 4), 1u << 1, "only a present CPU is asked");
	outl(t, HP + CPU_HOTPLUG_EJ + 4, (1u << 1) | (1u << 8));
	outl(t, HP + CPU_HOTPLUG_EJ, 1u);
	lock(t);
	cr_assert(cpu_hotplug_take_eject(hp, 33));
	cr_assert(!cpu_hotplug_take_eject(hp, 33), "taken once");
	cr_assert(!cpu_hotplug_take_eject(hp, 40));
	cr_assert(!cpu_hotplug_take_eject(hp, 0));
	cr_assert_eq(cpu_hotplug_present(hp), 0x3, "CPU 33 is gone, CPU 0 stays");
	unlock(t);
	tvm_free(t);
}

Test(cpu_hotplug, reset_keeps_the_cpus_and_snapshot_refuses_a_bad_blob)
{
	struct tvm *t = tvm_new(1);
	struct cpu_hotplug *hp = t->vm.platform->cpuhp;
	lock(t);
	cpu_hotplug_insert(hp, 5);
	unlock(t);
	uint8_t buf[256];
	int64_t n = cpu_hotplug_device.save(hp, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	platform_reset(&t->vm);
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_PRS), (1u << 5) | 1u, "plugged in across a reset");
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_INS), 0, "what the OS had not read goes");
	cr_assert_eq(cpu_hotplug_device.load(hp, buf, (size_t)n - 1), -EINVAL, "a short blob");
	uint8_t bad[256];
	memcpy(bad, buf, (size_t)n);
	bad[n - 32] &= (uint8_t)~1u;              /* CPU 0 absent */
	cr_assert_eq(cpu_hotplug_device.load(hp, bad, (size_t)n), -EINVAL);
	cr_assert_eq(cpu_hotplug_device.load(hp, buf, (size_t)n), 0);
	cr_assert_eq(inl(t, HP + CPU_HOTPLUG_INS), 1u << 5, "the pending device check came back");
	tvm_free(t);
}
