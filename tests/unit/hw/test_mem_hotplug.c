/* The ACPI memory hot-plug controller (hw/mem_hotplug.h, docs/hotplug.md
 * "Memory") through the board: its banks as the memory SSDT's _STA, MSCN
 * and _EJ0 use them, and the GPE it raises. */
#include "harness.h"

#include "hw/mem_hotplug.h"

#define MHP  PC_PORT_MEMHP
#define GPE0 (PC_PORT_ACPI_PM + 0x20)

static void with_lock(struct tvm *t, void (*fn)(struct mem_hotplug *, unsigned), unsigned slot)
{
	pthread_mutex_lock(&t->vm.dev_lock);
	fn(t->vm.platform->memhp, slot);
	pthread_mutex_unlock(&t->vm.dev_lock);
}

static void plug_notify(struct mem_hotplug *hp, unsigned slot) { mem_hotplug_plug(hp, slot, true); }
static void plug_quiet(struct mem_hotplug *hp, unsigned slot) { mem_hotplug_plug(hp, slot, false); }

Test(mem_hotplug, plug_sets_present_and_a_device_check_read_once)
{
	struct tvm *t = tvm_new(1);
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_MEMHP), 0);
	with_lock(t, plug_notify, 40);          /* group 1, bit 8 */
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_MEMHP), 1u << PC_GPE_MEMHP, "GPE status latched");
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_PRS + 4), 1u << 8);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_PRS + 4), 1u << 8, "present stays");
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_PRS), 0, "group 0 empty");
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_INS + 4), 1u << 8);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_INS + 4), 0, "the read consumed it");
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_EJR + 4), 0, "no eject request");
	tvm_free(t);
}

Test(mem_hotplug, memory_present_from_power_on_raises_nothing)
{
	struct tvm *t = tvm_new(1);
	with_lock(t, plug_quiet, 3);
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_MEMHP), 0);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_PRS), 1u << 3);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_INS), 0);
	tvm_free(t);
}

Test(mem_hotplug, eject_request_and_the_guests_eject)
{
	struct tvm *t = tvm_new(1);
	struct mem_hotplug *hp = t->vm.platform->memhp;
	with_lock(t, plug_quiet, 5);
	with_lock(t, mem_hotplug_request_eject, 5);
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_MEMHP), 1u << PC_GPE_MEMHP);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_EJR), 1u << 5);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_EJR), 0);
	/* _EJ0 of slot 5, and a write for slot 6, which holds nothing. */
	outl(t, MHP + MEM_HOTPLUG_EJ, (1u << 5) | (1u << 6));
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert(mem_hotplug_take_eject(hp, 5));
	cr_assert(!mem_hotplug_take_eject(hp, 5), "taken once");
	cr_assert(!mem_hotplug_take_eject(hp, 6), "an empty slot is not ejected");
	mem_hotplug_unplug(hp, 5);
	cr_assert(!mem_hotplug_present(hp, 5));
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_PRS), 0);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_EJ), 0, "EJ reads as 0");
	tvm_free(t);
}

Test(mem_hotplug, a_reset_keeps_the_memory_and_drops_what_was_pending)
{
	struct tvm *t = tvm_new(1);
	with_lock(t, plug_notify, 255);
	platform_reset(&t->vm);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_PRS + 28), 1u << 31);
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_INS + 28), 0);
	with_lock(t, plug_notify, 256);          /* out of range: ignored */
	cr_assert_eq(inl(t, MHP + MEM_HOTPLUG_INS), 0);
	tvm_free(t);
}
