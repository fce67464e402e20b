/* The vCPUs' CPUID topology (machine/cpu_topology.h), which both engines
 * report: a package per virtual NUMA node where the nodes are equal
 * power-of-two blocks, one package otherwise; leaf 0BH/1FH's levels. */
#include "machine/cpu_topology.h"

#include <criterion/criterion.h>

static unsigned per_package(unsigned shorthand, unsigned cpus, const char *const *nodes)
{
	struct numa_config c = { 0 };
	for (unsigned i = 0; nodes && nodes[i]; i++)
		cr_assert_eq(vnuma_parse_node(&c, nodes[i]), 0);
	cr_assert_eq(vnuma_config_finish(&c, shorthand, cpus, 256ull << 20), 0);
	return cpu_topology_per_package(&c, cpus);
}

Test(cpu_topology, packages_follow_equal_power_of_two_nodes)
{
	cr_assert_eq(cpu_topology_per_package(NULL, 6), 6, "no nodes: one package");
	cr_assert_eq(cpu_topology_per_package(NULL, 0), 1);
	cr_assert_eq(per_package(0, 8, NULL), 8);
	cr_assert_eq(per_package(1, 8, NULL), 8, "one node: one package");
	cr_assert_eq(per_package(2, 8, NULL), 4);
	cr_assert_eq(per_package(4, 8, NULL), 2);
	cr_assert_eq(per_package(2, 6, NULL), 6, "nodes of 3: not a power of two");
	static const char *const uneven[] = { "node,mem=128M,cpus=0", "node,mem=128M,cpus=1-3", NULL };
	cr_assert_eq(per_package(0, 4, uneven), 4, "nodes of 1 and 3");
	/* Possible CPUs count: 2 of 4 plugged in, nodes of two. */
	static const char *const hot[] = { "node,mem=128M,cpus=0-1", "node,mem=128M,cpus=2-3", NULL };
	cr_assert_eq(per_package(0, 4, hot), 2);
}

Test(cpu_topology, leaf_levels)
{
	uint32_t out[4];
	cpu_topology_leaf(4, 0, 5, out);
	cr_assert_eq(out[0], 0, "SMT: no bits");
	cr_assert_eq(out[1], 1, "one thread per core");
	cr_assert_eq(out[2], 0x100, "level 0, type SMT");
	cr_assert_eq(out[3], 5, "x2APIC id");
	cpu_topology_leaf(4, 1, 5, out);
	cr_assert_eq(out[0], 2, "4 cores: 2 bits, then the package id");
	cr_assert_eq(out[1], 4);
	cr_assert_eq(out[2], 0x201, "level 1, type core");
	cr_assert_eq(out[3], 5);
	cpu_topology_leaf(3, 1, 0, out);
	cr_assert_eq(out[0], 2, "3 cores round up to 2 bits");
	cpu_topology_leaf(1, 1, 0, out);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], 1);
	cpu_topology_leaf(4, 2, 5, out);
	cr_assert_eq(out[0] | out[1], 0, "level 2: invalid");
	cr_assert_eq(out[2], 2, "type 0, the level number echoed");
	cr_assert_eq(out[3], 5);
}
