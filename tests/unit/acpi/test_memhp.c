/* The memory hot-plug SSDT (acpi/memhp.h, docs/hotplug.md "Memory") and
 * the SRAT's hot-pluggable ranges, as iasl (acpica-tools) reads them. */
#include "acpi/memhp.h"
#include "acpi/tables.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCK (128ull << 20)

/* Disassembles table (len bytes) with iasl -d in a fresh folder; the
 * .dsl into buf.  iasl must neither fail nor complain. */
static void disassemble(const void *table, size_t len, const char *name, char *buf, size_t cap)
{
	char dir[] = "/tmp/vessel-memhp-XXXXXX";
	cr_assert(mkdtemp(dir));
	char path[128], cmd[400];
	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert(f);
	cr_assert_eq(fwrite(table, 1, len, f), len);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat > log 2>&1 && ! grep -iE 'error|warning' log", dir, name);
	int rc = system(cmd);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "iasl -d %s failed or complained (%s)", name, dir);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	f = fopen(path, "r");
	cr_assert(f);
	size_t got = fread(buf, 1, cap - 1, f);
	buf[got] = 0;
	fclose(f);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert(!strcasestr(buf, "invalid") && !strcasestr(buf, "incorrect"), "%s.dsl complains", name);
}

/* 40 blocks above 5 GiB: slots 0-19 in node 0, 20-39 in node 1. */
Test(memhp, ssdt_slots_as_iasl_reads_them)
{
	static struct acpi_memhp_info info = { .port = 0xa00, .gpe = 3, .base = 0x140000000ull, .block_size = BLOCK,
					       .n_slots = 40, .numa = true };
	for (unsigned s = 20; s < 40; s++)
		info.slot_node[s] = 1;
	uint8_t *t;
	size_t len;
	cr_assert_eq(acpi_build_memhp_ssdt(&info, &t, &len), 0);
	cr_assert_eq(memcmp(t, "SSDT", 4), 0);
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	cr_assert_eq(sum, 0, "checksum");
	static char buf[512 * 1024];
	disassemble(t, len, "SSDT", buf, sizeof(buf));
	free(t);
	cr_assert(strstr(buf, "OperationRegion (MHPR, SystemIO, 0x0A00, 0x80)"), "%.1500s", buf);
	const char *d = strstr(buf, "Device (M021)");
	cr_assert(d, "slot 33's device");
	const char *end = strstr(d + 1, "Device (");
	size_t n = end ? (size_t)(end - d) : strlen(d);
	char dev[2048];
	snprintf(dev, sizeof(dev), "%.*s", (int)(n < sizeof(dev) - 1 ? n : sizeof(dev) - 1), d);
	cr_assert(strstr(dev, "EisaId (\"PNP0C80\")"), "%s", dev);
	cr_assert(strstr(dev, "Name (_PXM, One)"), "slot 33 is in node 1:\n%s", dev);
	/* 0x140000000 + 33 * 128 MiB = 0x248000000. */
	cr_assert(strstr(dev, "0x0000000248000000"), "its block's start:\n%s", dev);
	cr_assert(strstr(dev, "0x000000024FFFFFFF"), "its block's end:\n%s", dev);
	cr_assert(strstr(dev, "If ((MPR1 & 0x02))"), "_STA reads its present bit:\n%s", dev);
	cr_assert(strstr(dev, "MEJ1 = 0x02"), "_EJ0 writes its bit:\n%s", dev);
	cr_assert(strstr(buf, "Name (_PXM, Zero)"), "node 0's slots");
	cr_assert(!strstr(buf, "Device (M028)"), "40 slots only");
	const char *scan = strstr(buf, "Method (MSCN, 0, Serialized)");
	cr_assert(scan);
	cr_assert(strstr(scan, "Local0 = MIN1"));
	cr_assert(strstr(scan, "Notify (M021, One)"), "device check of slot 33");
	cr_assert(strstr(scan, "Notify (M021, 0x03)"), "eject request of slot 33");
	const char *gpe = strstr(buf, "Scope (\\_GPE)");
	cr_assert(gpe && strstr(gpe, "Method (_E03, 0, NotSerialized)") && strstr(gpe, "\\_SB.MSCN ()"), "%s",
		  gpe ? gpe : buf);
}

Test(memhp, without_nodes_no_pxm_and_bad_sizes_refused)
{
	static struct acpi_memhp_info info = { .port = 0xa00, .gpe = 3, .base = 0x140000000ull, .block_size = BLOCK,
					       .n_slots = 1 };
	uint8_t *t;
	size_t len;
	cr_assert_eq(acpi_build_memhp_ssdt(&info, &t, &len), 0);
	static char buf[64 * 1024];
	disassemble(t, len, "SSDT", buf, sizeof(buf));
	free(t);
	cr_assert(strstr(buf, "Device (M000)") && !strstr(buf, "_PXM"), "%s", buf);
	info.n_slots = ACPI_MEMHP_MAX_SLOTS + 1;
	cr_assert_lt(acpi_build_memhp_ssdt(&info, &t, &len), 0);
	info.n_slots = 0;
	cr_assert_lt(acpi_build_memhp_ssdt(&info, &t, &len), 0);
}

/* The SRAT marks the space kept for hot-add as Hot Pluggable memory of
 * its node (ACPI 6.4, 5.2.16.2, flags bit 1). */
Test(memhp, srat_hot_pluggable_ranges)
{
	static uint8_t area[0x20000];
	static struct acpi_numa_info numa = {
		.n_nodes = 2, .cpu_node = { 0, 1 }, .n_ranges = 4,
		.ranges = { { 0, 0x10000000ull, 0, false }, { 0x10000000ull, 0x10000000ull, 1, false },
			    { 0x140000000ull, 0x20000000ull, 0, true }, { 0x160000000ull, 0x20000000ull, 1, true } },
	};
	struct acpi_builder b;
	acpi_builder_init(&b, area, 0xe0000, sizeof(area));
	cr_assert_eq(acpi_build_srat(&b, 2, &numa), 0);
	const uint8_t *srat = area + (b.tables[0] - 0xe0000);
	cr_assert_eq(memcmp(srat, "SRAT", 4), 0);
	uint32_t len = srat[4] | srat[5] << 8 | srat[6] << 16 | (uint32_t)srat[7] << 24;
	static char buf[64 * 1024];
	disassemble(srat, len, "SRAT", buf, sizeof(buf));
	/* Two boot ranges not hot-pluggable, two that are. */
	unsigned hot = 0, cold = 0;
	for (const char *p = buf; (p = strstr(p, "Hot Pluggable : ")); p++)
		*(p + 16) == '1' ? hot++ : cold++;
	cr_assert_eq(hot, 2, "%s", buf);
	cr_assert_eq(cold, 2, "%s", buf);
	cr_assert(strstr(buf, "Base Address : 0000000160000000"), "%s", buf);
}
