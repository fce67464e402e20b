/* ACPI tables: structure, checksums, and a clean disassembly by iasl
 * (acpica-tools) of every table. */
#include "acpi/aml.h"
#include "acpi/tables.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA_GPA 0xe0000ull
#define AREA_SIZE 0x20000

static uint8_t area[AREA_SIZE];

static unsigned test_gsi(unsigned slot, unsigned pin) { return 16 + ((slot + pin - 1) & 7); }

static struct acpi_platform_info pc_info(unsigned ncpus)
{
	struct acpi_platform_info i = {
		.n_cpus = ncpus, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .hpet_addr = 0xfed00000,
		.hpet_block_id = 0x8086a201, .pm_base = 0x600, .gpe0_len = 16, .sci_irq = 9, .slp_typ_s5 = 5, .slp_typ_s3 = 1, .slp_typ_s4 = 4,
		.reset_port = 0xcf9, .reset_value = 6, .ecam_base = 0xb0000000, .ecam_end_bus = 255,
		.pci_mmio_base = 0xc0000000, .pci_mmio_end = 0xfebfffff, .com1_port = 0x3f8, .com1_irq = 4,
		.fw_cfg_port = 0x510, .pcihp_port = 0xae00, .pcihp_gpe = 1, .power_port = 0xaf00, .power_gpe = 2,
		.intx_gsi = test_gsi,
	};
	return i;
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static const uint8_t *at(uint64_t gpa)
{
	cr_assert(gpa >= AREA_GPA && gpa < AREA_GPA + AREA_SIZE, "address %#llx outside the area",
		  (unsigned long long)gpa);
	return area + (gpa - AREA_GPA);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const struct acpi_numa_info *numa_slit;
static uint16_t cpuhp_port;    /* set: the tables describe processor hot-plug */
static uint64_t cpus_present;
static void build_slit_too(struct acpi_builder *b, const struct acpi_numa_info *numa);

/* Builds the tables (with an SRAT when numa, a SLIT when numa_slit) and
 * returns the RSDP. */
static const uint8_t *build_numa(unsigned ncpus, const struct acpi_numa_info *numa)
{
	struct acpi_builder b;
	struct acpi_platform_info info = pc_info(ncpus);
	info.cpuhp_port = cpuhp_port;
	info.cpuhp_gpe = 4;
	info.cpu_present = cpus_present;
	info.cpu_node = numa ? numa->cpu_node : NULL;
	acpi_builder_init(&b, area, AREA_GPA, AREA_SIZE);
	cr_assert_eq(acpi_build_pc_tables(&b, &info), 0);
	if (numa)
		cr_assert_eq(acpi_build_srat(&b, ncpus, numa), 0);
	if (numa_slit)
		build_slit_too(&b, numa_slit);
	cr_assert_eq(acpi_builder_finish(&b), 0);
	cr_assert_eq(b.rsdp_gpa & 15, 0, "RSDP 16-byte aligned");
	return at(b.rsdp_gpa);
}

static const uint8_t *build(unsigned ncpus) { return build_numa(ncpus, NULL); }

/* Every table reachable from the RSDP, with its signature. */
struct found { const uint8_t *p; char sig[5]; };

static unsigned collect(const uint8_t *rsdp, struct found *out)
{
	unsigned n = 0;
	const uint8_t *xsdt = at(le64(rsdp + 24));
	out[n].p = xsdt; memcpy(out[n++].sig, "XSDT", 5);
	const uint8_t *rsdt = at(le32(rsdp + 16));
	out[n].p = rsdt; memcpy(out[n++].sig, "RSDT", 5);
	unsigned entries = (le32(xsdt + 4) - 36) / 8;
	for (unsigned i = 0; i < entries; i++) {
		const uint8_t *t = at(le64(xsdt + 36 + 8 * i));
		out[n].p = t;
		memcpy(out[n].sig, t, 4);
		out[n++].sig[4] = 0;
		if (!memcmp(t, "FACP", 4)) {
			out[n].p = at(le64(t + 140)); memcpy(out[n++].sig, "DSDT", 5);
			out[n].p = at(le64(t + 132)); memcpy(out[n++].sig, "FACS", 5);
		}
	}
	return n;
}

Test(acpi, rsdp_and_checksums)
{
	const uint8_t *rsdp = build(4);
	cr_assert(!memcmp(rsdp, "RSD PTR ", 8));
	cr_assert_eq(rsdp[15], 2, "ACPI 2.0+ RSDP");
	cr_assert_eq(sum(rsdp, 20), 0, "RSDP checksum");
	cr_assert_eq(sum(rsdp, 36), 0, "RSDP extended checksum");
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	const char *want[] = { "XSDT", "RSDT", "FACP", "DSDT", "FACS", "APIC", "HPET", "MCFG" };
	for (unsigned w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		int seen = 0;
		for (unsigned i = 0; i < n; i++)
			seen |= !strcmp(t[i].sig, want[w]);
		cr_assert(seen, "%s present", want[w]);
	}
	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(t[i].sig, "FACS")) {
			cr_assert_eq(le32(t[i].p + 4), 64);
			continue;
		}
		cr_assert_eq(sum(t[i].p, le32(t[i].p + 4)), 0, "%s checksum", t[i].sig);
	}
}

Test(acpi, madt_describes_cpus_ioapic_and_overrides)
{
	const uint8_t *rsdp = build(3);
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	const uint8_t *madt = NULL;
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(t[i].sig, "APIC"))
			madt = t[i].p;
	cr_assert(madt);
	cr_assert_eq(le32(madt + 36), 0xfee00000);
	unsigned cpus = 0, ioapics = 0, nmis = 0;
	int irq0_gsi = -1, sci_flags = -1;
	for (uint32_t off = 44; off < le32(madt + 4); off += madt[off + 1]) {
		cr_assert_gt(madt[off + 1], 0);
		switch (madt[off]) {
		case 0: cr_assert_eq(madt[off + 3], cpus); cpus++; break;
		case 1: ioapics++; cr_assert_eq(le32(madt + off + 4), 0xfec00000); break;
		case 2:
			if (madt[off + 3] == 0) irq0_gsi = (int)le32(madt + off + 4);
			if (madt[off + 3] == 9) sci_flags = madt[off + 8] | madt[off + 9] << 8;
			break;
		case 4: nmis++; cr_assert_eq(madt[off + 5], 1, "LINT1"); break;
		}
	}
	cr_assert_eq(cpus, 3);
	cr_assert_eq(ioapics, 1);
	cr_assert_eq(nmis, 1);
	cr_assert_eq(irq0_gsi, 2, "IRQ0 -> GSI 2");
	cr_assert_eq(sci_flags, 0xd, "SCI level, active high");
}

Test(aml, encodings)
{
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0x12);
	aml_integer(&a, 0x1234);
	aml_eisaid(&a, "PNP0A03");
	const uint8_t want[] = { 0x00, 0x01, 0x0a, 0x12, 0x0b, 0x34, 0x12, 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	cr_assert_eq(a.len, sizeof(want));
	cr_assert_arr_eq(a.buf, want, sizeof(want));
	aml_free(&a);
	/* Long packages use a multi-byte PkgLength. */
	aml_init(&a);
	aml_package_begin(&a, 100);
	for (int i = 0; i < 100; i++)
		aml_integer(&a, 0x100 + i);
	aml_end(&a);
	cr_assert_eq(aml_error(&a), 0);
	cr_assert_eq(a.buf[0], 0x12);
	size_t body = 1 + 100 * 3;   /* NumElements + WordConst items */
	size_t total = body + 2;
	cr_assert_eq(a.buf[1], 0x40 | (total & 0xf));
	cr_assert_eq(a.buf[2], total >> 4);
	aml_free(&a);
	/* ToUUID: Buffer(16), first three fields little-endian (ACPI 19.6.142). */
	aml_init(&a);
	aml_uuid(&a, "33DB4D5B-1FF7-401C-9657-7441C03DD766");
	const uint8_t uuid[] = { 0x11, 0x13, 0x0a, 0x10, 0x5b, 0x4d, 0xdb, 0x33, 0xf7, 0x1f, 0x1c, 0x40,
				 0x96, 0x57, 0x74, 0x41, 0xc0, 0x3d, 0xd7, 0x66 };
	cr_assert_eq(aml_error(&a), 0);
	cr_assert_eq(a.len, sizeof(uuid));
	cr_assert_arr_eq(a.buf, uuid, sizeof(uuid));
	aml_free(&a);
	aml_init(&a);
	aml_uuid(&a, "not-a-uuid");
	cr_assert_neq(aml_error(&a), 0);
	aml_free(&a);
	aml_init(&a);
	aml_name_string(&a, "lowercase");
	cr_assert_neq(aml_error(&a), 0, "bad names are errors");
	aml_free(&a);
	aml_init(&a);
	aml_scope_begin(&a, "\\_SB");
	cr_assert_neq(aml_error(&a), 0, "unbalanced");
	aml_free(&a);
}

static int have_iasl(void)
{
	return access("/usr/bin/iasl", X_OK) == 0;
}

/* Words iasl uses when it finds something wrong (errors, warnings, and
 * comments such as "Incorrect checksum" in the .dsl). */
static const char *complaint(const char *text)
{
	static const char *words[] = { "error", "warning", "invalid", "incorrect", "unknown", "reserved value" };
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(text, words[i]))
			return words[i];
	return NULL;
}

/* Runs iasl -d on each table reachable from rsdp in dir; no errors, no warnings. */
static void iasl_check_all(const uint8_t *rsdp, const char *dir)
{
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	for (unsigned i = 0; i < n; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s.dat", dir, t[i].sig);
		FILE *f = fopen(path, "wb");
		cr_assert(f);
		size_t len = strcmp(t[i].sig, "FACS") ? le32(t[i].p + 4) : 64;
		cr_assert_eq(fwrite(t[i].p, 1, len, f), len);
		fclose(f);
		char cmd[512], log[160];
		snprintf(log, sizeof(log), "%s/%s.log", dir, t[i].sig);
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat > %s 2>&1", dir, t[i].sig, log);
		int rc = system(cmd);
		char buf[8192] = { 0 };
		FILE *lf = fopen(log, "r");
		cr_assert(lf);
		size_t got = fread(buf, 1, sizeof(buf) - 1, lf);
		buf[got] = 0;
		fclose(lf);
		cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "iasl -d %s failed:\n%s", t[i].sig, buf);
		cr_assert(!complaint(buf), "iasl -d %s complained:\n%s", t[i].sig, buf);
		/* The disassembled .dsl must also carry no complaint comments. */
		snprintf(path, sizeof(path), "%s/%s.dsl", dir, t[i].sig);
		FILE *df = fopen(path, "r");
		cr_assert(df, "%s.dsl written", t[i].sig);
		char line[512];
		while (fgets(line, sizeof(line), df)) {
			cr_assert(!complaint(line), "%s.dsl: %s", t[i].sig, line);
		}
		fclose(df);
	}
}

static void build_slit_too(struct acpi_builder *b, const struct acpi_numa_info *numa)
{
	cr_assert_eq(acpi_build_slit(b, numa), 0);
}

/* Two nodes: node 0 has CPUs 0-1, the low RAM and the first 256 MiB
 * above 4 GiB; node 1 has CPUs 2-3 and the rest; distance 15 between them. */
Test(acpi, srat_and_slit_describe_the_nodes)
{
	if (!have_iasl())
		cr_skip_test("iasl (acpica-tools) is not installed");
	static struct acpi_numa_info numa = {
		.n_nodes = 2, .cpu_node = { 0, 0, 1, 1 }, .n_ranges = 3,
		.ranges = { { 0, 0xb0000000ull, 0 }, { 0x100000000ull, 0x10000000ull, 0 },
			    { 0x110000000ull, 0x40000000ull, 1 } },
		.distance = { { 10, 15 }, { 15, 10 } },
	};
	numa_slit = &numa;
	const uint8_t *rsdp = build_numa(4, &numa);
	numa_slit = NULL;
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	const uint8_t *srat = NULL, *slit = NULL;
	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(t[i].sig, "SRAT"))
			srat = t[i].p;
		if (!strcmp(t[i].sig, "SLIT"))
			slit = t[i].p;
	}
	cr_assert(srat, "SRAT listed in the XSDT");
	cr_assert(slit, "SLIT listed in the XSDT");
	cr_assert_eq(sum(srat, le32(srat + 4)), 0);
	cr_assert_eq(sum(slit, le32(slit + 4)), 0);
	uint64_t node_mem[2] = { 0, 0 };
	unsigned cpu_node[4] = { 9, 9, 9, 9 };
	uint64_t node1_base = 0;
	for (uint32_t off = 48; off < le32(srat + 4); off += srat[off + 1]) {
		if (srat[off] == 0) {
			cpu_node[srat[off + 3]] = srat[off + 2];
		} else if (srat[off] == 1) {
			node_mem[le32(srat + off + 2)] += le64(srat + off + 16);
			if (le32(srat + off + 2) == 1)
				node1_base = le64(srat + off + 8);
		}
	}
	cr_assert_eq(cpu_node[0], 0); cr_assert_eq(cpu_node[1], 0);
	cr_assert_eq(cpu_node[2], 1); cr_assert_eq(cpu_node[3], 1);
	cr_assert_eq(node_mem[0], 0xc0000000ull, "3 GiB in node 0");
	cr_assert_eq(node_mem[1], 0x40000000ull, "1 GiB in node 1");
	cr_assert_eq(node1_base, 0x110000000ull);
	/* SLIT (ACPI 6.4 5.2.17): 8-byte locality count, then the matrix. */
	cr_assert_eq(le32(slit + 4), 44 + 4);
	cr_assert_eq(le64(slit + 36), 2);
	cr_assert_eq(slit[44], 10); cr_assert_eq(slit[45], 15);
	cr_assert_eq(slit[46], 15); cr_assert_eq(slit[47], 10);
	char dir[] = "/tmp/vessel-srat-XXXXXX";
	cr_assert(mkdtemp(dir));
	iasl_check_all(rsdp, dir);
	/* iasl reads the SLIT the same way. */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "grep -q 'Locality   1 : 0F 0A' %s/SLIT.dsl", dir);
	cr_assert_eq(system(cmd), 0, "SLIT.dsl shows the distances");
	/* Each processor object's _PXM is its SRAT node (ACPI 6.4 6.2.14). */
	for (unsigned cpu = 0; cpu < 4; cpu++) {
		snprintf(cmd, sizeof(cmd), "grep -A4 'Device (C00%u)' %s/DSDT.dsl | grep -q 'Name (_PXM, %s)'", cpu, dir,
			 cpu < 2 ? "Zero" : "One");
		cr_assert_eq(system(cmd), 0, "C00%u's _PXM is node %u", cpu, cpu / 2);
	}
	snprintf(cmd, sizeof(cmd), "grep -A8 'Device (PCI0)' %s/DSDT.dsl | grep -q 'Name (_PXM, Zero)'", dir);
	cr_assert_eq(system(cmd), 0, "the PCI root bridge is node 0's");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* The SLIT with no distances given: 10 local, 20 remote. */
Test(acpi, slit_defaults_to_10_and_20)
{
	struct acpi_numa_info numa = { .n_nodes = 2, .cpu_node = { 0, 1 } };
	numa_slit = &numa;
	const uint8_t *rsdp = build_numa(2, &numa);
	numa_slit = NULL;
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	const uint8_t *slit = NULL;
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(t[i].sig, "SLIT"))
			slit = t[i].p;
	cr_assert(slit);
	cr_assert_eq(slit[44], 10); cr_assert_eq(slit[45], 20);
	cr_assert_eq(slit[46], 20); cr_assert_eq(slit[47], 10);
}

/* Runs iasl on each table; no errors and no warnings allowed. */
Test(acpi, iasl_disassembles_every_table_cleanly)
{
	if (!have_iasl())
		cr_skip_test("iasl (acpica-tools) is not installed");
	const uint8_t *rsdp = build(2);
	char dir[] = "/tmp/vessel-acpi-XXXXXX";
	cr_assert(mkdtemp(dir));
	iasl_check_all(rsdp, dir);
	/* The DSDT recompiles without errors or warnings. */
	char cmd[512], log[160];
	snprintf(log, sizeof(log), "%s/recompile.log", dir);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -p recompiled DSDT.dsl > %s 2>&1", dir, log);
	int rc = system(cmd);
	char buf[8192] = { 0 };
	FILE *lf = fopen(log, "r");
	cr_assert(lf);
	size_t got = fread(buf, 1, sizeof(buf) - 1, lf);
	buf[got] = 0;
	fclose(lf);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "iasl DSDT.dsl failed:\n%s", buf);
	cr_assert(strstr(buf, "0 Errors, 0 Warnings"), "DSDT recompile:\n%s", buf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* The checker itself notices a broken table (so a clean run means something). */
Test(acpi, iasl_check_notices_a_bad_checksum)
{
	if (!have_iasl())
		cr_skip_test("iasl (acpica-tools) is not installed");
	const uint8_t *rsdp = build(1);
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	const uint8_t *hpet = NULL;
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(t[i].sig, "HPET"))
			hpet = t[i].p;
	cr_assert(hpet);
	char dir[] = "/tmp/vessel-acpibad-XXXXXX";
	cr_assert(mkdtemp(dir));
	char path[128], cmd[512];
	snprintf(path, sizeof(path), "%s/HPET.dat", dir);
	uint8_t copy[56];
	memcpy(copy, hpet, sizeof(copy));
	copy[9] ^= 0x5a;
	FILE *f = fopen(path, "wb");
	cr_assert(f);
	cr_assert_eq(fwrite(copy, 1, sizeof(copy), f), sizeof(copy));
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d HPET.dat > /dev/null 2>&1", dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/HPET.dsl", dir);
	FILE *df = fopen(path, "r");
	cr_assert(df);
	int flagged = 0;
	char line[512];
	while (fgets(line, sizeof(line), df))
		flagged |= complaint(line) != NULL;
	fclose(df);
	cr_assert(flagged, "a bad checksum is reported");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Reads a whole small file into buf (NUL-terminated). */
static void slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	cr_assert(f, "%s", path);
	size_t got = fread(buf, 1, cap - 1, f);
	buf[got] = 0;
	fclose(f);
}

/* The tables of a 1-CPU PC checked by iasl in a new directory dir (a
 * mkdtemp template); the DSDT's disassembly into buf.  Returns the RSDP. */
static const uint8_t *disassemble_pc(char *dir, char *buf, size_t cap)
{
	const uint8_t *rsdp = build(1);
	cr_assert(mkdtemp(dir));
	iasl_check_all(rsdp, dir);
	char path[160];
	snprintf(path, sizeof(path), "%s/DSDT.dsl", dir);
	slurp(path, buf, cap);
	return rsdp;
}

/* ACPI S3 (docs/power.md): \_S3 next to \_S5, the FADT's FACS with a
 * waking vector field the OS can write, the fixed sleep button and RTC
 * wake status announced, all as iasl reads them. */
Test(acpi, s3_sleep_type_facs_and_fixed_sleep_button_as_iasl_reads_them)
{
	if (!have_iasl())
		cr_skip_test("iasl (acpica-tools) is not installed");
	char dir[] = "/tmp/vessel-acpi-XXXXXX";
	static char buf[256 * 1024];
	const uint8_t *rsdp = disassemble_pc(dir, buf, sizeof(buf));
	char path[160];
	const char *s3 = strstr(buf, "Name (\\_S3, Package (0x04)");
	cr_assert(s3, "DSDT has \\_S3");
	cr_assert(!strncmp(strchr(s3, '{'), "{\n        One, \n        One,", 28), "\\_S3's SLP_TYP is 1: %.80s", s3);
	cr_assert(strstr(buf, "Name (\\_S5, Package (0x04)"), "\\_S5 is still there");
	const char *s4 = strstr(buf, "Name (\\_S4, Package (0x04)");
	cr_assert(s4, "DSDT has \\_S4");
	cr_assert(!strncmp(strchr(s4, '{'), "{\n        0x04, \n        0x04,", 30), "\\_S4's SLP_TYP is 4: %.80s", s4);

	snprintf(path, sizeof(path), "%s/FACP.dsl", dir);
	slurp(path, buf, sizeof(buf));
	cr_assert(strstr(buf, "Control Method Sleep Button (V1) : 0"), "fixed sleep button:\n%s", buf);
	cr_assert(strstr(buf, "Control Method Power Button (V1) : 0"), "fixed power button");
	cr_assert(strstr(buf, "RTC wake not in fixed reg space (V1) : 0"), "RTC_STS wakes");
	cr_assert(strstr(buf, "32-bit PM Timer (V1) : 1"), "TMR_VAL_EXT");
	/* The FADT points at the FACS that the disassembler found. */
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	const uint8_t *fadt = NULL, *facs = NULL;
	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(t[i].sig, "FACP"))
			fadt = t[i].p;
		if (!strcmp(t[i].sig, "FACS"))
			facs = t[i].p;
	}
	cr_assert(fadt && facs);
	cr_assert_eq(at(le32(fadt + 36)), facs, "FIRMWARE_CTRL");
	cr_assert_eq(at(le64(fadt + 132)), facs, "X_FIRMWARE_CTRL");
	cr_assert_lt(le32(fadt + 36), 0x100000u, "the FACS is reachable in real mode");

	snprintf(path, sizeof(path), "%s/FACS.dsl", dir);
	slurp(path, buf, sizeof(buf));
	cr_assert(strstr(buf, "32 Firmware Waking Vector : 00000000"), "waking vector, 0 until the OS writes it:\n%s",
		  buf);
	cr_assert(strstr(buf, "Length : 00000040"), "64-byte FACS");
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ACPI PCI hot-plug (docs/hotplug.md) as iasl reads it: the register
 * block, a slot object with _ADR, _SUN and _EJ0 for each slot 1-31, the
 * GPE handler that calls PCNT, and PCNT's notifications (per slot, and
 * the root bridge's bus check). */
Test(acpi, pci_hotplug_slots_and_gpe_handler_as_iasl_reads_them)
{
	if (!have_iasl())
		cr_skip_test("iasl (acpica-tools) is not installed");
	char dir[] = "/tmp/vessel-acpi-XXXXXX";
	static char buf[256 * 1024];
	disassemble_pc(dir, buf, sizeof(buf));
	cr_assert(strstr(buf, "OperationRegion (PCST, SystemIO, 0xAE00, 0x10)"), "register block:\n%.2000s", buf);
	cr_assert(strstr(buf, "Field (PCST, DWordAcc, NoLock, Preserve)"));
	for (unsigned slot = 1; slot < 32; slot++) {
		char want[64];
		snprintf(want, sizeof(want), "Device (S%02X)", slot);
		const char *dev = strstr(buf, want);
		cr_assert(dev, "%s", want);
		snprintf(want, sizeof(want), "Name (_SUN, 0x%02X)", slot);
		if (slot == 1)
			snprintf(want, sizeof(want), "Name (_SUN, One)");
		cr_assert(strstr(dev, want), "slot %u: %s", slot, want);
		cr_assert(strstr(dev, "Method (_EJ0, 1, NotSerialized)"), "slot %u has _EJ0", slot);
		snprintf(want, sizeof(want), "Notify (S%02X, 0x03)", slot);
		cr_assert(strstr(buf, want), "PCNT: %s", want);
		snprintf(want, sizeof(want), "Notify (S%02X, One)", slot);
		cr_assert(strstr(buf, want), "PCNT: %s", want);
	}
	cr_assert(strstr(buf, "0x00050000"), "slot 5's _ADR");
	/* A surprise removal: a bus check of the root bridge. */
	const char *gone = strstr(buf, "If (PCIG)");
	cr_assert(gone, "PCNT reads PCIG");
	cr_assert(strstr(gone, "Notify (\\_SB.PCI0, Zero)"), "bus check:\n%.200s", gone);
	cr_assert(strstr(buf, "\\_SB.PCI0.B0EJ = 0x20"), "slot 5's _EJ0 writes bit 5:\n%.3000s", strstr(buf, "S05"));
	const char *gpe = strstr(buf, "Scope (\\_GPE)");
	cr_assert(gpe, "a \\_GPE scope");
	cr_assert(strstr(gpe, "Method (_E01, 0, NotSerialized)"), "GPE 1's handler:\n%.400s", gpe);
	cr_assert(strstr(gpe, "\\_SB.PCI0.PCNT ()"), "it calls PCNT:\n%.400s", gpe);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* The host's AC adapter and battery (docs/power.md) as iasl reads them:
 * the register block, ACPI0003 with _PSR, PNP0C0A with _STA, _BIF and
 * _BST filled from the registers, and the GPE handler's notifications. */
Test(acpi, ac_adapter_battery_and_gpe_handler_as_iasl_reads_them)
{
	if (!have_iasl())
		cr_skip_test("iasl (acpica-tools) is not installed");
	char dir[] = "/tmp/vessel-acpi-XXXXXX";
	static char buf[256 * 1024];
	disassemble_pc(dir, buf, sizeof(buf));
	cr_assert(strstr(buf, "OperationRegion (PWRR, SystemIO, 0xAF00, 0x28)"), "register block:\n%.2000s", buf);
	const char *ac = strstr(buf, "Device (AC)");
	cr_assert(ac, "an AC adapter:\n%s", buf);
	cr_assert(strstr(ac, "Name (_HID, \"ACPI0003\""), "%.300s", ac);
	cr_assert(strstr(ac, "Method (_PSR, 0, NotSerialized)"), "_PSR:\n%.300s", ac);
	cr_assert(strstr(ac, "Return ((PSTA & One))"), "_PSR reads STA bit 0:\n%.300s", ac);
	const char *bat = strstr(buf, "Device (BAT0)");
	cr_assert(bat, "a battery");
	cr_assert(strstr(bat, "Name (_HID, EisaId (\"PNP0C0A\")"), "%.300s", bat);
	cr_assert(strstr(bat, "Return (0x1F)") && strstr(bat, "Return (0x0F)"), "_STA:\n%.600s", bat);
	const char *bif = strstr(bat, "Method (_BIF, 0, Serialized)");
	cr_assert(bif, "_BIF:\n%.1500s", bat);
	cr_assert(strstr(bif, "BIFP [Zero] = PUNT") && strstr(bif, "BIFP [0x02] = PFCP") &&
		  strstr(bif, "BIFP [0x04] = PDVL") && strstr(bif, "Return (BIFP)"), "_BIF fills BIFP:\n%.600s", bif);
	const char *bst = strstr(bat, "Method (_BST, 0, Serialized)");
	cr_assert(bst, "_BST");
	cr_assert(strstr(bst, "BSTP [Zero] = (PSTA >> 0x08)") && strstr(bst, "BSTP [0x02] = PRCP") &&
		  strstr(bst, "Return (BSTP)"), "_BST fills BSTP:\n%.600s", bst);
	const char *gpe = strstr(buf, "Method (_E02, 0, NotSerialized)");
	cr_assert(gpe, "GPE 2's handler");
	cr_assert(strstr(gpe, "\\_SB.PWEV ()"), "it calls PWEV:\n%.300s", gpe);
	gpe = strstr(buf, "Method (PWEV, 0, NotSerialized)");
	cr_assert(gpe, "the power event method");
	cr_assert(strstr(gpe, "Local0 = PEVT") || strstr(gpe, "Local0 = \\_SB.PEVT"), "it reads PEVT:\n%.600s", gpe);
	cr_assert(strstr(gpe, "Notify (\\_SB.AC, 0x80)") && strstr(gpe, "Notify (\\_SB.BAT0, 0x81)") &&
		  strstr(gpe, "Notify (\\_SB.BAT0, 0x80)"), "notifications:\n%.600s", gpe);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Without a host power source the DSDT has neither device. */
Test(acpi, no_power_port_no_ac_adapter_or_battery)
{
	struct acpi_platform_info info = pc_info(1);
	info.power_port = 0;
	uint8_t *dsdt;
	size_t len;
	cr_assert_eq(acpi_build_dsdt(&info, &dsdt, &len), 0);
	cr_assert(!memmem(dsdt, len, "BAT0", 4) && !memmem(dsdt, len, "PWRR", 4) && !memmem(dsdt, len, "_E02", 4));
	free(dsdt);
	info.power_port = 0xaf00;
	cr_assert_eq(acpi_build_dsdt(&info, &dsdt, &len), 0);
	cr_assert(memmem(dsdt, len, "BAT0", 4) && memmem(dsdt, len, "_E02", 4));
	free(dsdt);
}

/* Processor hot-plug (docs/hotplug.md "CPUs"): the MADT marks the
 * possible CPUs not plugged in online-capable and not enabled (Linux
 * counts them possible), the DSDT gives the others _STA, _MAT and _EJ0
 * and a GPE handler, and iasl takes it all without a complaint. */
Test(acpi, processor_hot_plug_tables)
{
	cpuhp_port = 0xae20;
	cpus_present = 0x3;
	const uint8_t *rsdp = build(4);
	cpuhp_port = 0;
	struct found t[ACPI_MAX_TABLES + 4];
	unsigned n = collect(rsdp, t);
	const uint8_t *madt = NULL, *dsdt = NULL;
	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(t[i].sig, "APIC"))
			madt = t[i].p;
		if (!strcmp(t[i].sig, "DSDT"))
			dsdt = t[i].p;
	}
	cr_assert(madt && dsdt);
	cr_assert_geq(madt[8], 5, "online-capable needs MADT revision 5");
	for (unsigned cpu = 0; cpu < 4; cpu++) {
		const uint8_t *e = madt + 44 + 8 * cpu;
		cr_assert_eq(e[0], 0, "Processor Local APIC");
		cr_assert_eq(e[3], cpu);
		cr_assert_eq(le32(e + 4), cpu < 2 ? 1u : 2u, "cpu%u's flags", cpu);
	}
	uint32_t len = le32(dsdt + 4);
	cr_assert(memmem(dsdt, len, "CSCN", 4), "the scan method");
	cr_assert(memmem(dsdt, len, "_E04", 4), "its GPE handler");
	cr_assert(memmem(dsdt, len, "_MAT", 4) && memmem(dsdt, len, "CEJ0", 4));
	cr_assert(!memmem(dsdt, len, "_PXM", 4), "no nodes, no _PXM");
	if (!have_iasl())
		return;
	char dir[] = "/tmp/vessel-acpicpu-XXXXXX";
	cr_assert(mkdtemp(dir));
	iasl_check_all(rsdp, dir);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -p recompiled DSDT.dsl 2>&1 | grep -q '0 Errors, 0 Warnings'", dir);
	cr_assert_eq(system(cmd), 0, "the DSDT recompiles cleanly");
	snprintf(cmd, sizeof(cmd), "grep -q 'Notify (C003, 0x03)' %s/DSDT.dsl && grep -q 'Method (_STA' %s/DSDT.dsl",
		 dir, dir);
	cr_assert_eq(system(cmd), 0, "eject requests and _STA are there");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
