/* The AC adapter and battery backed by the host (hw/power_supply.h,
 * docs/power.md) through the board: the registers as the DSDT's _PSR,
 * _STA, _BIF and _BST read them, the check of the source on the VM
 * clock, the GPE and EVT bits a change raises, reset and snapshots. */
#include "harness.h"

#include "hw/power_supply.h"
#include "machine/device_registry.h"

#include <errno.h>

#define PS   PC_PORT_POWER
#define GPE0 (PC_PORT_ACPI_PM + 0x20)
#define CHECK_NS (POWER_SUPPLY_CHECK_MS * 1000000ull)

/* A host whose state the test sets; get counts its calls. */
struct fake_host {
	struct power_supply_status st;
	unsigned gets;
};

static void fake_get(void *opaque, struct power_supply_status *out)
{
	struct fake_host *h = opaque;
	h->gets++;
	*out = h->st;
}

static struct fake_host host;
static struct power_supply_source source = { fake_get, &host };

static void host_on_battery_at(unsigned remaining)
{
	host.st = (struct power_supply_status){
		.ac_online = false, .battery = true, .state = POWER_SUPPLY_DISCHARGING, .unit = 0,
		.design_capacity = 60000, .full_capacity = 50000, .design_voltage = 11100, .rate = 7000,
		.remaining = remaining, .voltage = 11500, .technology = 1,
	};
}

static struct tvm *new_vm(void)
{
	host = (struct fake_host){ 0 };
	host.st.ac_online = true;
	host.st.battery = true;
	host.st.state = POWER_SUPPLY_CHARGING;
	host.st.full_capacity = host.st.design_capacity = 50000;
	host.st.remaining = 40000;
	host.st.technology = 1;
	return tvm_new_full(1, NULL, &source);
}

static uint32_t gpe_sts(struct tvm *t) { return inb(t, GPE0) & (1u << PC_GPE_POWER); }

Test(power_supply, registers_show_the_host_at_power_up_without_an_event)
{
	struct tvm *t = new_vm();
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_STA),
		     POWER_SUPPLY_STA_AC | POWER_SUPPLY_STA_BATTERY | POWER_SUPPLY_CHARGING << 8);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_FCAP), 50000);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_RCAP), 40000);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_TECH), 1);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT), 0, "nothing changed");
	cr_assert_eq(gpe_sts(t), 0);
	/* Writes are ignored: the registers are the host's. */
	outl(t, PS + POWER_SUPPLY_STA, 0);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_STA) & POWER_SUPPLY_STA_AC, POWER_SUPPLY_STA_AC);
	tvm_free(t);
}

Test(power_supply, a_change_is_seen_at_the_next_check_and_raises_the_gpe_once)
{
	struct tvm *t = new_vm();
	outb(t, GPE0 + 8, 1u << PC_GPE_POWER);   /* GPE0_EN */
	host_on_battery_at(21000);
	unsigned gets = host.gets;
	tvm_advance(t, CHECK_NS / 2);
	cr_assert_eq(host.gets, gets, "not checked before its period");
	cr_assert_eq(gpe_sts(t), 0);
	tvm_advance(t, CHECK_NS / 2);
	cr_assert_gt(host.gets, gets, "checked after its period");
	cr_assert_eq(gpe_sts(t), 1u << PC_GPE_POWER, "GPE status latched");
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_STA), POWER_SUPPLY_STA_BATTERY | POWER_SUPPLY_DISCHARGING << 8);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_RCAP), 21000);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_RATE), 7000);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_DCAP), 60000);
	/* AC, and the battery's information (design capacity) and status. */
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT),
		     POWER_SUPPLY_EVT_AC | POWER_SUPPLY_EVT_INFO | POWER_SUPPLY_EVT_STATUS);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT), 0, "the dword read consumed them");
	outb(t, GPE0, 1u << PC_GPE_POWER);       /* the OS clears the status */
	cr_assert_eq(gpe_sts(t), 0);
	/* No change, no event; the check goes on every period. */
	tvm_advance(t, CHECK_NS);
	cr_assert_eq(gpe_sts(t), 0);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT), 0);
	/* The charge alone: a status change only. */
	host.st.remaining = 20000;
	tvm_advance(t, CHECK_NS);
	cr_assert_eq(gpe_sts(t), 1u << PC_GPE_POWER);
	cr_assert_eq(inb(t, PS + POWER_SUPPLY_EVT), POWER_SUPPLY_EVT_STATUS, "a byte read shows ...");
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT), POWER_SUPPLY_EVT_STATUS, "... and does not consume");
	/* The battery taken out: its information changes (_STA). */
	host.st.battery = false;
	tvm_advance(t, CHECK_NS);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT) & POWER_SUPPLY_EVT_INFO, POWER_SUPPLY_EVT_INFO);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_STA) & POWER_SUPPLY_STA_BATTERY, 0);
	tvm_free(t);
}

Test(power_supply, reset_keeps_the_host_state_and_snapshot_keeps_what_the_guest_saw)
{
	struct tvm *t = new_vm();
	host_on_battery_at(30000);
	power_supply_check(t->vm.platform->power);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT) & POWER_SUPPLY_EVT_AC, POWER_SUPPLY_EVT_AC, "checked at once");
	host.st.remaining = 29000;
	power_supply_check(t->vm.platform->power);   /* EVT pending: STATUS */
	uint8_t blob[256];
	pthread_mutex_lock(&t->vm.dev_lock);
	int64_t len = power_supply_device.save(t->vm.platform->power, blob, sizeof(blob));
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_gt(len, 0);
	platform_reset(&t->vm);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT), 0, "reset drops pending events");
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_RCAP), 29000, "and keeps the host's state");
	tvm_free(t);
	/* Restored into a VM whose host shows something else: the saved
	 * state until the next check, which reports the difference. */
	struct tvm *u = new_vm();
	pthread_mutex_lock(&u->vm.dev_lock);
	cr_assert_eq(power_supply_device.load(u->vm.platform->power, blob, 10), -EINVAL, "short blob refused");
	cr_assert_eq(power_supply_device.load(u->vm.platform->power, blob, (size_t)len), 0);
	pthread_mutex_unlock(&u->vm.dev_lock);
	cr_assert_eq(inl(u, PS + POWER_SUPPLY_RCAP), 29000);
	cr_assert_eq(inb(u, PS + POWER_SUPPLY_EVT), POWER_SUPPLY_EVT_STATUS, "the pending event came along");
	tvm_advance(u, CHECK_NS);
	cr_assert_eq(inl(u, PS + POWER_SUPPLY_STA) & POWER_SUPPLY_STA_AC, POWER_SUPPLY_STA_AC);
	cr_assert_eq(inl(u, PS + POWER_SUPPLY_EVT) & POWER_SUPPLY_EVT_AC, POWER_SUPPLY_EVT_AC);
	tvm_free(u);
}

Test(power_supply, without_a_source_everything_reads_zero)
{
	struct tvm *t = tvm_new(1);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_STA), 0);
	cr_assert_eq(inl(t, PS + POWER_SUPPLY_EVT), 0);
	tvm_advance(t, 10 * CHECK_NS);
	cr_assert_eq(inb(t, GPE0) & (1u << PC_GPE_POWER), 0);
	tvm_free(t);
}

static int find_name(void *arg, const char *name, snapshot_save_fn save, void *opaque)
{
	(void)save, (void)opaque;
	if (!strcmp(name, "power-supply"))
		*(bool *)arg = true;
	return 0;
}

/* Its state is in snapshots only when the guest has the devices, so that
 * snapshots of runs without them restore as before. */
Test(power_supply, snapshots_hold_it_only_with_a_source)
{
	bool found = false;
	struct tvm *t = tvm_new(1);
	snapshot_foreach_device(find_name, &found);
	cr_assert(!found, "no source: not saved");
	tvm_free(t);
	t = new_vm();
	snapshot_foreach_device(find_name, &found);
	cr_assert(found, "with a source: saved");
	tvm_free(t);
	found = false;
	snapshot_foreach_device(find_name, &found);
	cr_assert(!found, "unregistered with the platform");
}
