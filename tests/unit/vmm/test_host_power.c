/* The host's power supplies read from a power-supply class tree
 * (src/vmm/host_power.c): energy and charge batteries in the units of
 * _BIF/_BST, a battery that gives only a percentage, peripherals' and
 * absent batteries, a host without a mains supply, the poll thread. */
#include "util/error.h"
#include "vmm/host_power.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/vessel-power-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(host_power, .init = setup, .fini = teardown);

/* Writes dir/supply/attr. */
static void put(const char *supply, const char *attr, const char *fmt, ...)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, supply);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, supply, attr);
	FILE *f = fopen(path, "w");
	cr_assert(f, "%s", path);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static struct power_supply_status read_tree(void)
{
	struct power_supply_status st;
	cr_assert_eq(host_power_read(dir, &st), 0, "%s", err_msg());
	return st;
}

Test(host_power, energy_battery_in_mwh_and_the_mains_supply)
{
	put("AC", "type", "Mains");
	put("AC", "online", "1");
	put("BAT0", "type", "Battery");
	put("BAT0", "status", "Charging");
	put("BAT0", "energy_now", "40123456");
	put("BAT0", "energy_full", "50000000");
	put("BAT0", "energy_full_design", "60000000");
	put("BAT0", "power_now", "10000000");
	put("BAT0", "voltage_now", "12000000");
	put("BAT0", "voltage_min_design", "11100000");
	put("BAT0", "capacity", "80");
	struct power_supply_status st = read_tree();
	cr_assert(st.ac_online);
	cr_assert(st.battery, "no \"present\" file: present");
	cr_assert_eq(st.unit, 0, "mWh");
	cr_assert_eq(st.state, POWER_SUPPLY_CHARGING);
	cr_assert_eq(st.remaining, 40123);
	cr_assert_eq(st.full_capacity, 50000);
	cr_assert_eq(st.design_capacity, 60000);
	cr_assert_eq(st.rate, 10000);
	cr_assert_eq(st.voltage, 12000);
	cr_assert_eq(st.design_voltage, 11100);
	cr_assert_eq(st.technology, 1);
	/* Unplugged, critical. */
	put("AC", "online", "0");
	put("BAT0", "status", "Discharging");
	put("BAT0", "capacity_level", "Critical");
	st = read_tree();
	cr_assert(!st.ac_online);
	cr_assert_eq(st.state, POWER_SUPPLY_DISCHARGING | POWER_SUPPLY_CRITICAL);
}

Test(host_power, charge_battery_in_mah_first_system_battery_by_name)
{
	put("ADP1", "type", "Mains");
	put("ADP1", "online", "0");
	put("USBC", "type", "USB");
	put("USBC", "online", "1");
	/* A mouse's battery is not the host's. */
	put("AAA-mouse", "type", "Battery");
	put("AAA-mouse", "scope", "Device");
	put("AAA-mouse", "capacity", "5");
	put("BAT1", "type", "Battery");
	put("BAT1", "charge_full", "3000000");
	put("BAT1", "charge_now", "1500000");
	put("BAT1", "current_now", "500000");
	put("BAT1", "status", "Full");
	put("BAT2", "type", "Battery");
	put("BAT2", "charge_full", "9000000");
	struct power_supply_status st = read_tree();
	cr_assert(st.ac_online, "a USB charger online feeds the host");
	cr_assert_eq(st.unit, 1, "mAh");
	cr_assert_eq(st.full_capacity, 3000, "BAT1, the first by name");
	cr_assert_eq(st.design_capacity, 3000, "no design capacity: the full one");
	cr_assert_eq(st.remaining, 1500);
	cr_assert_eq(st.rate, 500);
	cr_assert_eq(st.state, 0, "full: neither charging nor discharging");
	cr_assert_eq(st.voltage, POWER_SUPPLY_UNKNOWN);
}

Test(host_power, a_percentage_alone_shows_exactly)
{
	put("BAT0", "type", "Battery");
	put("BAT0", "capacity", "42");
	put("BAT0", "status", "Discharging");
	struct power_supply_status st = read_tree();
	cr_assert_eq(st.unit, 0);
	cr_assert_eq(st.full_capacity, 10000);
	/* What Linux's battery driver shows: remaining * 100 / full. */
	cr_assert_eq(st.remaining * 100 / st.full_capacity, 42);
	cr_assert_eq(st.rate, POWER_SUPPLY_UNKNOWN);
	/* No mains supply listed: on battery, since it discharges. */
	cr_assert(!st.ac_online);
	put("BAT0", "status", "Charging");
	cr_assert(read_tree().ac_online);
}

Test(host_power, absent_battery_empty_tree_and_a_missing_directory)
{
	put("BAT0", "type", "Battery");
	put("BAT0", "present", "0");
	put("BAT0", "capacity", "42");
	struct power_supply_status st = read_tree();
	cr_assert(!st.battery);
	cr_assert(st.ac_online, "no mains listed, no battery discharging");
	cr_assert_eq(unlink(strcat(strcpy((char[256]){ 0 }, dir), "/BAT0/present")), 0);
	cr_assert(read_tree().battery);
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/nope", dir);
	cr_assert_eq(host_power_read(missing, &st), -ENOENT);
	cr_assert(strstr(err_msg(), "nope"), "%s", err_msg());
	struct host_power *hp;
	cr_assert_lt(host_power_start(missing, 10, &hp), 0, "a bad directory fails the start");
}

Test(host_power, the_thread_follows_the_tree)
{
	put("AC", "type", "Mains");
	put("AC", "online", "1");
	struct host_power *hp;
	cr_assert_eq(host_power_start(dir, 10, &hp), 0, "%s", err_msg());
	const struct power_supply_source *src = host_power_source(hp);
	struct power_supply_status st;
	src->get(src->opaque, &st);
	cr_assert(st.ac_online, "read at start");
	put("AC", "online", "0");
	for (int i = 0; i < 500; i++) {
		src->get(src->opaque, &st);
		if (!st.ac_online)
			break;
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	cr_assert(!st.ac_online, "the change was read again");
	host_power_stop(hp);
	host_power_stop(NULL);
}
