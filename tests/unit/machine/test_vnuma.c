/* Virtual NUMA topology: parsing, the checks that name the bad field, and
 * the host binding on this host's node 0 (docs/numa.md). */
#include "machine/vnuma.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <numa.h>
#include <numaif.h>
#include <string.h>
#include <sys/mman.h>

static void expect_error(struct numa_config *c, unsigned shorthand, unsigned cpus, uint64_t mem, const char *msg)
{
	cr_assert_lt(vnuma_config_finish(c, shorthand, cpus, mem), 0);
	cr_assert(strstr(err_msg(), msg), "message '%s' lacks '%s'", err_msg(), msg);
}

Test(vnuma, parses_nodes_and_distances)
{
	struct numa_config c = { 0 };
	cr_assert_eq(vnuma_parse_node(&c, "node,mem=1G,cpus=0-1,host-node=0"), 0);
	cr_assert_eq(vnuma_parse_node(&c, "node,mem=512M,cpus=2"), 0);
	cr_assert_eq(vnuma_parse_distance(&c, "0,1,30"), 0);
	cr_assert_eq(vnuma_config_finish(&c, 0, 3, (1ull << 30) + (512ull << 20)), 0, "%s", err_msg());
	cr_assert_eq(c.n_nodes, 2);
	cr_assert_eq(c.nodes[0].mem_bytes, 1ull << 30);
	cr_assert_eq(c.nodes[0].first_cpu, 0); cr_assert_eq(c.nodes[0].n_cpus, 2);
	cr_assert_eq(c.nodes[0].host_nodes, 1);
	cr_assert_eq(c.nodes[1].first_cpu, 2); cr_assert_eq(c.nodes[1].n_cpus, 1);
	cr_assert_eq(c.distance[0][0], 10); cr_assert_eq(c.distance[0][1], 30);
	cr_assert_eq(c.distance[1][0], 30, "one direction given: mirrored");
	cr_assert_eq(vnuma_node_of_cpu(&c, 1), 0);
	cr_assert_eq(vnuma_node_of_cpu(&c, 2), 1);
}

Test(vnuma, shorthand_splits_evenly_in_blocks)
{
	struct numa_config c = { 0 };
	cr_assert_eq(vnuma_config_finish(&c, 2, 4, 1ull << 30), 0);
	cr_assert_eq(c.n_nodes, 2);
	cr_assert_eq(c.nodes[0].first_cpu, 0); cr_assert_eq(c.nodes[0].n_cpus, 2);
	cr_assert_eq(c.nodes[1].first_cpu, 2); cr_assert_eq(c.nodes[1].n_cpus, 2);
	cr_assert_eq(c.nodes[0].mem_bytes, 512ull << 20);
	cr_assert_eq(c.nodes[1].mem_bytes, 512ull << 20);
	cr_assert_eq(c.distance[1][0], 20, "default remote distance");
}

Test(vnuma, refuses_bad_topologies_naming_the_field)
{
	struct numa_config c = { 0 };
	cr_assert_lt(vnuma_parse_node(&c, "mem=1G,cpus=0"), 0);
	cr_assert_lt(vnuma_parse_node(&c, "node,mem=1G"), 0);
	cr_assert(strstr(err_msg(), "cpus= missing"), "%s", err_msg());
	cr_assert_lt(vnuma_parse_node(&c, "node,mem=lots,cpus=0"), 0);
	cr_assert(strstr(err_msg(), "mem: 'lots' is not a size"), "%s", err_msg());
	cr_assert_lt(vnuma_parse_node(&c, "node,mem=1G,cpus=0,color=red"), 0);
	cr_assert(strstr(err_msg(), "unknown key 'color'"), "%s", err_msg());
	cr_assert_lt(vnuma_parse_distance(&c, "0,1"), 0);
	cr_assert_lt(vnuma_parse_policy("strict", &c.policy), 0);

	memset(&c, 0, sizeof(c));
	vnuma_parse_node(&c, "node,mem=1G,cpus=0-1");
	vnuma_parse_node(&c, "node,mem=512M,cpus=1-2");
	expect_error(&c, 0, 3, (1ull << 30) + (512ull << 20), "numa node 1: cpus: vCPU 1 is already in node 0");

	memset(&c, 0, sizeof(c));
	vnuma_parse_node(&c, "node,mem=1G,cpus=0");
	vnuma_parse_node(&c, "node,mem=1G,cpus=2");
	expect_error(&c, 0, 3, 2ull << 30, "numa: cpus: vCPU 1 is in no node");
	expect_error(&c, 0, 2, 2ull << 30, "numa node 1: cpus: vCPU 2 does not exist");

	memset(&c, 0, sizeof(c));
	vnuma_parse_node(&c, "node,mem=1G,cpus=0");
	vnuma_parse_node(&c, "node,mem=1G,cpus=1");
	expect_error(&c, 0, 2, 3ull << 30, "the nodes' memory sums to 2048 MiB, not the machine's 3072 MiB");
	struct numa_config d = c;
	vnuma_set_distance(&d, 0, 1, 20);
	vnuma_set_distance(&d, 1, 0, 30);
	expect_error(&d, 0, 2, 2ull << 30, "numa distance 0,1: 20 is not symmetric (1,0 is 30)");
	d = c;
	vnuma_set_distance(&d, 0, 1, 9);
	expect_error(&d, 0, 2, 2ull << 30, "numa distance 0,1: 9 is out of range");
	d = c;
	vnuma_set_distance(&d, 1, 1, 12);
	expect_error(&d, 0, 2, 2ull << 30, "numa distance 1,1: 12 is not the local distance");
	d = c;
	vnuma_set_distance(&d, 0, 2, 20);
	expect_error(&d, 0, 2, 2ull << 30, "numa distance 0,2: there are only 2 nodes");
	expect_error(&c, 3, 2, 2ull << 30, "numa_nodes: 3 does not match the 2 nodes");
	memset(&c, 0, sizeof(c));
	vnuma_parse_node(&c, "node,mem=1025M,cpus=0");
	vnuma_parse_node(&c, "node,mem=1025M,cpus=1");
	expect_error(&c, 0, 2, 2050ull << 20, "numa node 0: mem: 1074790400 bytes is not a multiple of 2 MiB");
	/* The shorthand's last node takes an odd remainder. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(vnuma_config_finish(&c, 2, 2, 1025ull << 20), 0, "%s", err_msg());
	cr_assert_eq(c.nodes[1].mem_bytes, 513ull << 20);
}

static struct { unsigned node; uint64_t gpa, len; } got[4];
static unsigned n;

static int collect(void *o, unsigned node, const struct gmem_region *r, uint64_t off, uint64_t len)
{
	(void)o;
	cr_assert_lt(n, 4);
	got[n].node = node; got[n].gpa = r->gpa + off; got[n++].len = len;
	return 0;
}

Test(vnuma, ranges_follow_address_order_across_regions)
{
	/* 3 GiB + 1 GiB over the low (2.75 GiB) and high RAM regions. */
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=3G,cpus=0");
	vnuma_parse_node(&c, "node,mem=1G,cpus=1");
	cr_assert_eq(vnuma_config_finish(&c, 0, 2, 4ull << 30), 0);
	struct guest_memory mem = { .n_regions = 2,
				    .regions = { { .gpa = 0, .size = 0xb0000000ull },
						 { .gpa = 0x100000000ull, .size = 0x50000000ull } } };
	cr_assert_eq(vnuma_for_each_range(&c, &mem, collect, NULL), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(got[0].node, 0); cr_assert_eq(got[0].len, 0xb0000000ull);
	cr_assert_eq(got[1].node, 0); cr_assert_eq(got[1].gpa, 0x100000000ull); cr_assert_eq(got[1].len, 0x10000000ull);
	cr_assert_eq(got[2].node, 1); cr_assert_eq(got[2].gpa, 0x110000000ull); cr_assert_eq(got[2].len, 0x40000000ull);
}

Test(vnuma, host_node_that_does_not_exist_is_refused)
{
	if (numa_available() < 0)
		cr_skip_test("the host has no NUMA support");
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=16M,cpus=0,host-node=63");
	cr_assert_eq(vnuma_config_finish(&c, 0, 1, 16ull << 20), 0);
	cr_assert_lt(vnuma_host_resolve(&c), 0);
	cr_assert(strstr(err_msg(), "numa node 0: host-node: the host has no node 63 (it has 0"), "%s", err_msg());
}

/* Binds on the real host, node 0: the policy is on the mapping, and a
 * thread's affinity is node 0's CPUs. */
Test(vnuma, binds_memory_and_threads_to_host_node_0)
{
	if (numa_available() < 0)
		cr_skip_test("the host has no NUMA support");
	static const struct { const char *policy; int mode; } cases[] = {
		{ "bind", MPOL_BIND }, { "preferred", MPOL_PREFERRED }, { "interleave", MPOL_INTERLEAVE } };
	for (unsigned k = 0; k < 3; k++) {
		struct numa_config c = { 0 };
		vnuma_parse_node(&c, "node,mem=2M,cpus=0,host-node=0");
		vnuma_parse_node(&c, "node,mem=2M,cpus=1");
		cr_assert_eq(vnuma_parse_policy(cases[k].policy, &c.policy), 0);
		cr_assert_eq(vnuma_config_finish(&c, 0, 2, 4ull << 20), 0);
		cr_assert_eq(vnuma_host_resolve(&c), 0, "%s", err_msg());
		cr_assert(c.host_bound);
		cr_assert(c.nodes[1].host_picked, "vessel picks a host node for node 1");
		cr_assert_eq(c.nodes[1].host_nodes, 1, "the only host node");
		uint8_t *p = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		cr_assert_neq(p, MAP_FAILED);
		struct guest_memory mem = { .n_regions = 1, .regions = { { .gpa = 0, .size = 4 << 20, .host = p } } };
		cr_assert_eq(vnuma_bind_memory(&c, &mem), 0, "%s", err_msg());
		int mode = -1;
		unsigned long mask = 0;
		cr_assert_eq(get_mempolicy(&mode, &mask, 64, p + (3 << 20), MPOL_F_ADDR), 0);
		cr_assert_eq(mode, cases[k].mode, "%s: mode %d", cases[k].policy, mode);
		cr_assert_eq(mask, 1);
		munmap(p, 4 << 20);

		cr_assert_eq(vnuma_pin_thread(&c, 1, pthread_self()), 0, "%s", err_msg());
		cpu_set_t set;
		cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof(set), &set), 0);
		cr_assert(CPU_EQUAL(&set, &c.nodes[1].host_cpus));
		cr_assert_gt(CPU_COUNT(&set), 0);
	}
}
