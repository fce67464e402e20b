#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "machine/memory.h"
#include "util/error.h"

Test(memory, layout_small)
{
	struct guest_memory m;
	cr_assert_eq(gmem_init(&m, 64 << 20), 0);
	cr_assert_eq(m.n_regions, 1);
	cr_assert_not_null(gmem_ptr(&m, 0, 64 << 20));
	cr_assert_null(gmem_ptr(&m, (64 << 20) - 1, 2));
	cr_assert_null(gmem_ptr(&m, ~0ull, 2));
	gmem_destroy(&m);
}

Test(memory, split_above_4g_and_copy_across)
{
	struct guest_memory m;
	uint64_t size = GMEM_LOW_RAM_END + (16 << 20);
	cr_assert_eq(gmem_init(&m, size), 0);
	cr_assert_eq(m.n_regions, 2);
	cr_assert_null(gmem_ptr(&m, GMEM_LOW_RAM_END, 1));
	cr_assert_not_null(gmem_ptr(&m, GMEM_HIGH_RAM_BASE + (16 << 20) - 8, 8));
	char buf[16] = "vessel-memory!!";
	cr_assert_eq(gmem_write(&m, 0x1000, buf, sizeof(buf)), 0);
	char out[16];
	cr_assert_eq(gmem_read(&m, 0x1000, out, sizeof(out)), 0);
	cr_assert_eq(memcmp(buf, out, 16), 0);
	cr_assert_eq(gmem_read(&m, GMEM_LOW_RAM_END - 8, out, 16), -EFAULT);
	gmem_destroy(&m);
}

/* The hot-pluggable range (docs/hotplug.md "Memory"): above all RAM at a
 * 1 GiB boundary; pieces added inside it only, without overlap; an
 * ejected piece stops being RAM but keeps its place in the table. */
Test(memory, hotplug_range_add_and_unplug)
{
	struct guest_memory m;
	cr_assert_lt(gmem_init_hotplug(&m, 64 << 20, 100 << 20), 0, "not whole blocks");
	cr_assert_lt(gmem_init_hotplug(&m, 64 << 20, GMEM_HOTPLUG_MAX + GMEM_HOTPLUG_BLOCK), 0, "too large");
	uint64_t ram = GMEM_LOW_RAM_END + (300ull << 20);   /* high RAM ends at 4 GiB + 300 MiB */
	cr_assert_eq(gmem_init_hotplug(&m, ram, 4 * GMEM_HOTPLUG_BLOCK), 0);
	cr_assert_eq(m.hp_base, 5ull << 30);
	cr_assert_eq(m.hp_size, 512ull << 20);
	cr_assert_eq(gmem_span_end(&m), (5ull << 30) + (512ull << 20), "engines size their tables to the range");
	unsigned idx, idx2;
	cr_assert_eq(gmem_add_hotplug(&m, m.hp_base - GMEM_HOTPLUG_BLOCK, GMEM_HOTPLUG_BLOCK, 0, &idx), -EINVAL);
	cr_assert_eq(gmem_add_hotplug(&m, m.hp_base + 3 * GMEM_HOTPLUG_BLOCK, 2 * GMEM_HOTPLUG_BLOCK, 0, &idx), -EINVAL,
		     "beyond the range");
	cr_assert_eq(gmem_add_hotplug(&m, m.hp_base + GMEM_HOTPLUG_BLOCK, 2 * GMEM_HOTPLUG_BLOCK, 1, &idx), 0);
	cr_assert_eq(gmem_add_hotplug(&m, m.hp_base + 2 * GMEM_HOTPLUG_BLOCK, GMEM_HOTPLUG_BLOCK, 0, &idx2), -EEXIST);
	cr_assert_eq(gmem_add_hotplug(&m, m.hp_base, GMEM_HOTPLUG_BLOCK, 0, &idx2), 0);
	cr_assert(m.regions[idx].hotplug && m.regions[idx].node == 1);
	uint64_t gpa = m.hp_base + GMEM_HOTPLUG_BLOCK;
	cr_assert_eq(gmem_write(&m, gpa + 4096, "abc", 4), 0);
	char out[4];
	cr_assert_eq(gmem_read(&m, gpa + 4096, out, 4), 0);
	cr_assert_str_eq(out, "abc");
	cr_assert_eq(m.ram_size, ram, "hot-added RAM is not boot RAM");
	gmem_unplug(&m, idx);
	cr_assert_null(gmem_ptr(&m, gpa + 4096, 4), "ejected: not RAM any more");
	cr_assert_not_null(gmem_ptr(&m, m.hp_base, 4), "the other piece stays");
	cr_assert_eq(gmem_add_hotplug(&m, gpa, GMEM_HOTPLUG_BLOCK, 0, &idx2), 0, "its addresses are free again");
	cr_assert_neq(idx2, idx, "the ejected piece keeps its index");
	gmem_destroy(&m);
}

/* The VmFlags line of the mapping that holds p in /proc/self/smaps. */
static void vm_flags_of(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	cr_assert(f);
	char line[512];
	bool in = false;
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line);
			break;
		}
	}
	fclose(f);
}

/* --memory-backend: thp marks the RAM for transparent huge pages (VmFlags
 * hg), normal keeps them off (nh), hugetlb takes 2 MiB pages reserved at
 * the mapping (ht) or says the host has too few (docs/numa.md "Huge
 * pages"). */
Test(memory, backends)
{
	struct guest_memory m;
	char flags[256];
	cr_assert_eq(gmem_init_backend(&m, 64 << 20, 0, GMEM_BACKEND_THP), 0);
	vm_flags_of(m.regions[0].host, flags, sizeof(flags));
	cr_assert(strstr(flags, " hg"), "thp: %s", flags);
	gmem_destroy(&m);
	cr_assert_eq(gmem_init_backend(&m, 64 << 20, 0, GMEM_BACKEND_NORMAL), 0);
	vm_flags_of(m.regions[0].host, flags, sizeof(flags));
	cr_assert(strstr(flags, " nh") && !strstr(flags, " hg"), "normal: %s", flags);
	gmem_destroy(&m);
	cr_assert_lt(gmem_init_backend(&m, (64 << 20) + 4096, 0, GMEM_BACKEND_HUGETLB), 0, "not whole 2 MiB pages");
	cr_assert(strstr(err_msg(), "not a multiple of 2 MiB"), "%s", err_msg());
	cr_assert_lt(gmem_init_pages(&m, 512 << 20, 0, GMEM_BACKEND_HUGETLB, GMEM_HUGE_PAGE_1G), 0,
		     "not whole 1 GiB pages");
	cr_assert(strstr(err_msg(), "not a multiple of 1 GiB"), "%s", err_msg());
	/* 1 GiB pages: taken from their own pool; refused, naming it, on a
	 * host with none free (or no such pages at all). */
	unsigned long giant = 0;
	FILE *g = fopen(GMEM_HUGE_SYSFS "/hugepages-1048576kB/free_hugepages", "r");
	if (g) {
		cr_assert_eq(fscanf(g, "%lu", &giant), 1);
		fclose(g);
	}
	int rc1 = gmem_init_pages(&m, 1ull << 30, 0, GMEM_BACKEND_HUGETLB, GMEM_HUGE_PAGE_1G);
	if (giant < 1) {
		cr_assert_lt(rc1, 0);
		cr_assert(strstr(err_msg(), "1 GiB huge pages") && strstr(err_msg(), "hugepages-1048576kB"), "%s",
			  err_msg());
	} else {
		cr_assert_eq(rc1, 0, "%s", err_msg());
		cr_assert_eq(m.regions[0].map_size, 1ull << 30);
		gmem_destroy(&m);
	}
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
	unsigned long pages = 0;
	if (f) {
		cr_assert_eq(fscanf(f, "%lu", &pages), 1);
		fclose(f);
	}
	int rc = gmem_init_backend(&m, 4 << 20, 0, GMEM_BACKEND_HUGETLB);
	if (pages < 2) {
		cr_assert_lt(rc, 0, "no huge pages on this host: refused");
		cr_assert(strstr(err_msg(), "huge pages") && strstr(err_msg(), "nr_hugepages"), "%s", err_msg());
	} else {
		cr_assert_eq(rc, 0, "%s", err_msg());
		vm_flags_of(m.regions[0].host, flags, sizeof(flags));
		cr_assert(strstr(flags, " ht"), "hugetlb: %s", flags);
		gmem_destroy(&m);
	}
}
