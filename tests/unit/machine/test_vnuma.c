/* Virtual NUMA topology: parsing, the checks that name the bad field, and
 * the host binding on this host's node 0 (docs/numa.md). */
#include "machine/vnuma.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <numaif.h>
#include <errno.h>
#include <ftw.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
	struct host_numa h;
	cr_assert_eq(host_numa_read(&h, NULL), 0);
	if (!h.nodes)
		cr_skip_test("the host has no NUMA support");
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=16M,cpus=0,host-node=63");
	cr_assert_eq(vnuma_config_finish(&c, 0, 1, 16ull << 20), 0);
	cr_assert_lt(vnuma_host_resolve(&c, &h), 0);
	cr_assert(strstr(err_msg(), "numa node 0: host-node: the host has no node 63 (it has 0"), "%s", err_msg());
}

/* Binds on the real host, node 0: the policy is on the mapping, and a
 * thread's affinity is node 0's CPUs. */
Test(vnuma, binds_memory_and_threads_to_host_node_0)
{
	struct host_numa h;
	cr_assert_eq(host_numa_read(&h, NULL), 0);
	if (!h.nodes)
		cr_skip_test("the host has no NUMA support");
	static const struct { const char *policy; int mode; } cases[] = {
		{ "bind", MPOL_BIND }, { "preferred", MPOL_PREFERRED }, { "interleave", MPOL_INTERLEAVE } };
	for (unsigned k = 0; k < 3; k++) {
		struct numa_config c = { 0 };
		vnuma_parse_node(&c, "node,mem=2M,cpus=0,host-node=0");
		vnuma_parse_node(&c, "node,mem=2M,cpus=1");
		cr_assert_eq(vnuma_parse_policy(cases[k].policy, &c.policy), 0);
		cr_assert_eq(vnuma_config_finish(&c, 0, 2, 4ull << 20), 0);
		cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
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

/* ---- the host topology from a fake sysfs tree ---- */

static void put(const char *root, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	char *slash = strrchr(path, '/');
	*slash = 0;
	mkdir(path, 0755);
	*slash = '/';
	FILE *f = fopen(path, "w");
	cr_assert(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void remove_tree(const char *root)
{
	nftw(root, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Two nodes with two CPUs each; node 1 has no free memory unless
 * node1_free. */
static void fake_two_node_host(char *root, bool node1_free, struct host_numa *h)
{
	strcpy(root, "/tmp/vessel-hostnuma-XXXXXX");
	cr_assert(mkdtemp(root));
	put(root, "node0/cpulist", "0-1\n");
	put(root, "node0/meminfo", "Node 0 MemTotal:  8000 kB\nNode 0 MemFree:   4096 kB\n");
	put(root, "node0/distance", "10 21\n");
	put(root, "node1/cpulist", "2,3\n");
	put(root, "node1/meminfo", node1_free ? "Node 1 MemFree:   2048 kB\n" : "Node 1 MemFree:   0 kB\n");
	put(root, "node1/distance", "21 10\n");
	put(root, "possible", "0-1\n");   /* not a node folder: ignored */
	cr_assert_eq(host_numa_read(h, root), 0, "%s", err_msg());
}

Test(host_numa, reads_nodes_cpus_free_memory_and_distances)
{
	char root[64];
	struct host_numa h;
	fake_two_node_host(root, true, &h);
	cr_assert_eq(h.nodes, 3);
	cr_assert_eq(h.with_free, 3);
	cr_assert_eq(h.free_bytes[0], 4096ull << 10);
	cr_assert_eq(h.free_bytes[1], 2048ull << 10);
	cr_assert(CPU_ISSET(0, &h.cpus[0]) && CPU_ISSET(1, &h.cpus[0]) && CPU_COUNT(&h.cpus[0]) == 2);
	cr_assert(CPU_ISSET(2, &h.cpus[1]) && CPU_ISSET(3, &h.cpus[1]) && CPU_COUNT(&h.cpus[1]) == 2);
	cr_assert_eq(h.distance[0][1], 21);
	cr_assert_eq(h.distance[1][1], 10);
	char list[32];
	host_numa_list(h.nodes, list, sizeof(list));
	cr_assert_str_eq(list, "0,1");
	remove_tree(root);
}

Test(host_numa, a_malformed_cpu_list_is_refused_naming_the_file)
{
	char root[64];
	struct host_numa h;
	fake_two_node_host(root, true, &h);
	put(root, "node1/cpulist", "2-x\n");
	cr_assert_lt(host_numa_read(&h, root), 0);
	cr_assert(strstr(err_msg(), "node1/cpulist: not a CPU list"), "%s", err_msg());
	remove_tree(root);
}

Test(host_numa, a_host_without_the_folder_has_no_nodes)
{
	struct host_numa h;
	cr_assert_eq(host_numa_read(&h, "/nonexistent/vessel-host-numa"), 0);
	cr_assert_eq(h.nodes, 0);
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=2M,cpus=0,host-node=0");
	cr_assert_eq(vnuma_config_finish(&c, 0, 1, 2ull << 20), 0);
	cr_assert_eq(vnuma_host_resolve(&c, &h), -ENODEV, "host nodes given on a host without NUMA");
	cr_assert(strstr(err_msg(), "no NUMA support"), "%s", err_msg());
}

Test(host_numa, picks_host_nodes_round_robin_over_those_with_free_memory)
{
	char root[64];
	struct host_numa h;
	fake_two_node_host(root, true, &h);
	struct numa_config c = { 0 };
	cr_assert_eq(vnuma_config_finish(&c, 4, 4, 8ull << 20), 0);
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
	cr_assert_eq(c.nodes[0].host_nodes, 1);
	cr_assert_eq(c.nodes[1].host_nodes, 2);
	cr_assert_eq(c.nodes[2].host_nodes, 1);
	cr_assert_eq(c.nodes[3].host_nodes, 2);
	cr_assert(CPU_ISSET(3, &c.nodes[1].host_cpus) && !CPU_ISSET(0, &c.nodes[1].host_cpus));

	remove_tree(root);
	fake_two_node_host(root, false, &h);   /* node 1 full: everything on node 0 */
	remove_tree(root);
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(c.nodes[i].host_nodes, 1, "node %u", i);
}

/* A 200 MiB node 1 that spans two RAM regions, moved to host node 1 of a
 * fake host: chunks of at most 64 MiB covering exactly its RAM, and the
 * target's CPUs. */
Test(numa_move, is_planned_in_chunks_over_the_nodes_ram)
{
	char root[64];
	struct host_numa h;
	fake_two_node_host(root, true, &h);
	remove_tree(root);
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=100M,cpus=0");
	vnuma_parse_node(&c, "node,mem=200M,cpus=1");
	cr_assert_eq(vnuma_config_finish(&c, 0, 2, 300ull << 20), 0);
	uint8_t *low = (uint8_t *)0x100000000ull, *high = (uint8_t *)0x200000000ull;   /* never touched */
	struct guest_memory mem = { .n_regions = 2, .regions = {
		{ .gpa = 0, .size = 150ull << 20, .host = low },
		{ .gpa = 0x100000000ull, .size = 150ull << 20, .host = high } } };
	struct numa_move_plan p;
	cr_assert_eq(vnuma_plan_move(&c, &h, &mem, 1, 2, &p), 0, "%s", err_msg());
	cr_assert_eq(p.node, 1);
	cr_assert_eq(p.host_nodes, 2);
	cr_assert_eq(p.pages, (200ull << 20) / 4096);
	/* 50 MiB in the first region (one chunk), 150 MiB in the second (64 + 64 + 22). */
	cr_assert_eq(p.n_chunks, 4);
	cr_assert_eq(p.chunks[0].host, low + (100ull << 20)); cr_assert_eq(p.chunks[0].len, 50ull << 20);
	cr_assert_eq(p.chunks[1].host, high); cr_assert_eq(p.chunks[1].len, 64ull << 20);
	cr_assert_eq(p.chunks[2].host, high + (64ull << 20));
	cr_assert_eq(p.chunks[3].len, 22ull << 20);
	cr_assert(CPU_ISSET(2, &p.host_cpus) && CPU_ISSET(3, &p.host_cpus) && CPU_COUNT(&p.host_cpus) == 2);
	vnuma_plan_free(&p);

	cr_assert_lt(vnuma_plan_move(&c, &h, &mem, 2, 1, &p), 0);
	cr_assert(strstr(err_msg(), "node 2: the guest has no such node (it has 2)"), "%s", err_msg());
	cr_assert_lt(vnuma_plan_move(&c, &h, &mem, 0, 1ull << 5, &p), 0);
	cr_assert(strstr(err_msg(), "host node 5: the host has no such node (it has 0,1)"), "%s", err_msg());
}

/* On the real host: node 0's RAM moved to host node 0 (where it already
 * is) keeps its data, every populated page counted, none failed, and the
 * residency query finds them all on node 0. */
Test(numa_move, moves_on_the_real_host_keeping_the_data)
{
	struct host_numa h;
	cr_assert_eq(host_numa_read(&h, NULL), 0);
	if (!(h.nodes & 1))
		cr_skip_test("the host has no NUMA node 0");
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=80M,cpus=0,host-node=0");
	cr_assert_eq(vnuma_config_finish(&c, 0, 1, 80ull << 20), 0);
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0);
	size_t len = 80ull << 20;
	uint8_t *ram = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(ram, MAP_FAILED);
	struct guest_memory mem = { .n_regions = 1, .regions = { { .gpa = 0, .size = len, .host = ram } } };
	cr_assert_eq(vnuma_bind_memory(&c, &mem), 0);
	for (size_t i = 0; i < len / 2; i += 4096)   /* half of it populated */
		ram[i] = (uint8_t)(i >> 12);
	uint64_t counts[NUMA_MAX_HOST_NODES], absent;
	cr_assert_eq(vnuma_resident(&c, &mem, 0, counts, &absent), 0, "%s", err_msg());
	cr_assert_eq(counts[0], len / 2 / 4096);
	cr_assert_eq(absent, len / 2 / 4096);

	struct numa_move_plan p;
	cr_assert_eq(vnuma_plan_move(&c, &h, &mem, 0, 1, &p), 0, "%s", err_msg());
	cr_assert_eq(p.n_chunks, 2);
	struct numa_move_count n = { 0 };
	for (unsigned i = 0; i < p.n_chunks; i++)
		cr_assert_eq(vnuma_move_chunk(&c, &p, i, &n), 0, "%s", err_msg());
	cr_assert_eq(n.done, p.pages);
	cr_assert_eq(n.moved, 0, "already on node 0");
	cr_assert_eq(n.failed, 0);
	for (size_t i = 0; i < len / 2; i += 4096)
		cr_assert_eq(ram[i], (uint8_t)(i >> 12));
	int mode = -1;
	unsigned long mask = 0;
	cr_assert_eq(get_mempolicy(&mode, &mask, 64, ram, MPOL_F_ADDR), 0);
	cr_assert_eq(mask, 1);
	vnuma_plan_free(&p);
	munmap(ram, len);
}

/* A snapshot's host nodes are hints: restored on a host without host
 * node 1, the node goes where the host has room, not to an error. */
Test(host_numa, snapshot_host_nodes_the_host_lacks_are_replaced)
{
	struct host_numa h = { .nodes = 1, .with_free = 1 };
	CPU_SET(0, &h.cpus[0]);
	struct numa_config c = { 0 };
	cr_assert_eq(vnuma_config_finish(&c, 2, 2, 4ull << 20), 0);
	c.nodes[0].host_nodes = 1;
	c.nodes[0].host_hint = true;
	c.nodes[1].host_nodes = 2 | 1;
	c.nodes[1].host_hint = true;
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
	cr_assert_eq(c.nodes[0].host_nodes, 1);
	cr_assert_eq(c.nodes[1].host_nodes, 1, "host node 1 dropped, 0 kept");
	c.nodes[1].host_nodes = 2;
	c.nodes[1].host_hint = true;
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
	cr_assert_eq(c.nodes[1].host_nodes, 1);
	cr_assert(c.nodes[1].host_picked, "none left: vessel picks");
	c.nodes[1].host_nodes = 2;   /* given by the user, not a hint: an error */
	c.nodes[1].host_picked = false;
	cr_assert_lt(vnuma_host_resolve(&c, &h), 0);
}

/* The hot-pluggable range in equal shares of whole blocks (the last node
 * takes the rest); hot-added RAM belongs to the node it was added to, in
 * the ranges binding and moving walk; and its mapping is bound to that
 * node's host nodes (docs/hotplug.md "Memory"). */
Test(vnuma, hotplug_shares_and_hot_added_ranges)
{
	struct numa_config c = { 0 };
	cr_assert_eq(vnuma_config_finish(&c, 3, 3, 384ull << 20), 0);
	struct guest_memory mem;
	cr_assert_eq(gmem_init_hotplug(&mem, 384ull << 20, 7 * GMEM_HOTPLUG_BLOCK), 0);
	uint64_t base, size, want = mem.hp_base;
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(vnuma_hotplug_share(&c, &mem, i, &base, &size), 0);
		cr_assert_eq(base, want, "node %u", i);
		cr_assert_eq(size, (i == 2 ? 3 : 2) * GMEM_HOTPLUG_BLOCK, "node %u", i);
		want += size;
	}
	cr_assert_lt(vnuma_hotplug_share(&c, &mem, 3, &base, &size), 0);
	unsigned idx;
	cr_assert_eq(gmem_add_hotplug(&mem, mem.hp_base + 2 * GMEM_HOTPLUG_BLOCK, GMEM_HOTPLUG_BLOCK, 1, &idx), 0);
	n = 0;
	cr_assert_eq(vnuma_for_each_range(&c, &mem, collect, NULL), 0);
	cr_assert_eq(n, 4, "three boot ranges, then the hot-added one");
	cr_assert_eq(got[3].node, 1);
	cr_assert_eq(got[3].gpa, mem.hp_base + 2 * GMEM_HOTPLUG_BLOCK);
	cr_assert_eq(got[3].len, GMEM_HOTPLUG_BLOCK);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_lt(got[i].gpa, mem.hp_base, "boot RAM ranges only below the range");

	struct host_numa h;
	cr_assert_eq(host_numa_read(&h, NULL), 0);
	if (h.nodes) {
		cr_assert_eq(vnuma_parse_policy("bind", &c.policy), 0);
		cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
		cr_assert_eq(vnuma_bind_hotplug(&c, &mem.regions[idx]), 0, "%s", err_msg());
		int mode = -1;
		unsigned long mask = 0;
		cr_assert_eq(get_mempolicy(&mode, &mask, 64, mem.regions[idx].host + 4096, MPOL_F_ADDR), 0);
		cr_assert_eq(mode, MPOL_BIND);
		cr_assert_eq(mask, c.nodes[1].host_nodes);
	}
	gmem_destroy(&mem);
}

static cpu_set_t cpus_of(const char *list)
{
	uint64_t bits;
	cpu_set_t set;
	cr_assert_eq(host_numa_parse_list(list, &bits, &set), 0);
	return set;
}

/* --numa-follow on a fake two-node host (CPUs 0-1 and 2-3, distance 21):
 * each node keeps its host nodes' CPUs that stay allowed; one left with
 * none goes to the allowed CPUs of the nearest host node. */
Test(numa_follow, narrows_to_the_allowed_cpus_and_falls_back_to_the_nearest_node)
{
	char root[64];
	struct host_numa h;
	fake_two_node_host(root, true, &h);
	remove_tree(root);
	struct numa_config c = { 0 };
	cr_assert_eq(vnuma_config_finish(&c, 2, 2, 4ull << 20), 0);
	cpu_set_t all = cpus_of("0-3"), out[NUMA_MAX_NODES];
	cr_assert_eq(vnuma_follow(&c, &h, &all, out), -EINVAL, "not bound yet");
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
	cr_assert_eq(c.nodes[0].host_nodes, 1);
	cr_assert_eq(c.nodes[1].host_nodes, 2);

	cr_assert_eq(vnuma_follow(&c, &h, &all, out), 0);
	cpu_set_t want0 = cpus_of("0-1"), want1 = cpus_of("2-3");
	cr_assert(CPU_EQUAL(&out[0], &want0) && CPU_EQUAL(&out[1], &want1), "nothing taken away");

	cpu_set_t some = cpus_of("1,3");
	cr_assert_eq(vnuma_follow(&c, &h, &some, out), 0);
	want0 = cpus_of("1");
	want1 = cpus_of("3");
	cr_assert(CPU_EQUAL(&out[0], &want0) && CPU_EQUAL(&out[1], &want1), "each keeps what is left of its own");

	cpu_set_t node0_only = cpus_of("0-1");
	cr_assert_eq(vnuma_follow(&c, &h, &node0_only, out), 0);
	cr_assert(CPU_EQUAL(&out[0], &node0_only));
	cr_assert(CPU_EQUAL(&out[1], &node0_only), "host node 1 lost every CPU: node 1 goes to the nearest, 0");

	cpu_set_t none;
	CPU_ZERO(&none);
	cr_assert_eq(vnuma_follow(&c, &h, &none, out), -EINVAL);
}

/* The fake two-node host with free pages of one size (pool, the folder
 * name under nodeN/hugepages) on each node, read back into h. */
static void fake_huge_host(const char *pool, unsigned free0, unsigned free1, struct host_numa *h)
{
	char root[64], dir[128], count[16];
	fake_two_node_host(root, true, h);
	for (unsigned n = 0; n < 2; n++) {
		snprintf(dir, sizeof(dir), "%s/node%u/hugepages", root, n);
		mkdir(dir, 0755);
		snprintf(dir, sizeof(dir), "node%u/hugepages/%s/free_hugepages", n, pool);
		snprintf(count, sizeof(count), "%u\n", n == 0 ? free0 : free1);
		put(root, dir, count);
	}
	cr_assert_eq(host_numa_read(h, root), 0, "%s", err_msg());
	remove_tree(root);
}

/* --memory-backend hugetlb: each node's 2 MiB pages where its policy
 * puts them (bind: its host nodes), on a fake host with 100 free huge
 * pages on node 0 and none on node 1 (docs/numa.md "Huge pages"). */
Test(hugepages, checked_per_node_on_its_host_nodes)
{
	struct host_numa h;
	fake_huge_host("hugepages-2048kB", 100, 0, &h);
	cr_assert_eq(h.free_huge[0], 100);
	cr_assert_eq(h.free_huge[1], 0);

	struct numa_config none = { 0 };
	cr_assert_eq(vnuma_check_hugepages(&none, &h, 200ull << 20, GMEM_HUGE_PAGE), 0, "100 pages: 200 MiB fit");
	cr_assert_eq(vnuma_check_hugepages(&none, &h, 202ull << 20, GMEM_HUGE_PAGE), -ENOMEM);
	cr_assert(strstr(err_msg(), "need 101 free 2 MiB huge pages, the host has 100"), "%s", err_msg());

	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=64M,cpus=0,host-node=0");
	vnuma_parse_node(&c, "node,mem=64M,cpus=1,host-node=1");
	cr_assert_eq(vnuma_parse_policy("bind", &c.policy), 0);
	cr_assert_eq(vnuma_config_finish(&c, 0, 2, 128ull << 20), 0);
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
	cr_assert_eq(vnuma_check_hugepages(&c, &h, 128ull << 20, GMEM_HUGE_PAGE), -ENOMEM, "node 1 is bound where there are none");
	cr_assert(strstr(err_msg(), "numa node 1 needs 32 free 2 MiB huge pages on host node(s) 1, which have 0"), "%s",
		  err_msg());
	cr_assert_eq(vnuma_parse_policy("preferred", &c.policy), 0);
	cr_assert_eq(vnuma_check_hugepages(&c, &h, 128ull << 20, GMEM_HUGE_PAGE), 0, "preferred: node 0's pages serve it");
}

/* --memory-page-size 1G: the host's 1 GiB pools (hugepages-1048576kB),
 * and node boundaries on whole pages of each RAM region's host mapping:
 * below 2816 MiB (GMEM_LOW_RAM_END) and the rest, which starts a mapping
 * of its own at 4 GiB. */
Test(hugepages, one_gib_pages_per_node_and_on_page_boundaries)
{
	struct host_numa h;
	fake_huge_host("hugepages-1048576kB", 4, 2, &h);
	cr_assert_eq(h.free_huge_1g[0], 4);
	cr_assert_eq(h.free_huge[0], 0, "no 2 MiB pages");

	/* 4 GiB without nodes: 2816 MiB below (3 pages, the last partly
	 * used) and 1280 MiB above (2 pages): 5 pages, the host has 6. */
	struct numa_config none = { 0 };
	cr_assert_eq(vnuma_check_hugepages(&none, &h, 4ull << 30, GMEM_HUGE_PAGE_1G), 0, "%s", err_msg());
	cr_assert_eq(vnuma_check_hugepages(&none, &h, 6ull << 30, GMEM_HUGE_PAGE_1G), -ENOMEM);
	cr_assert(strstr(err_msg(), "the guest's 6144 MiB need 7 free 1 GiB huge pages, the host has 6"), "%s",
		  err_msg());
	cr_assert_eq(vnuma_check_hugepages(&none, &h, 6ull << 30, GMEM_HUGE_PAGE), -ENOMEM, "no 2 MiB pages");

	/* Two nodes of 2 GiB: node 1 starts 2 GiB into the low region (a page
	 * boundary) and goes on above 4 GiB from its start: 1 + 2 pages. */
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=2G,cpus=0,host-node=0");
	vnuma_parse_node(&c, "node,mem=2G,cpus=1,host-node=1");
	cr_assert_eq(vnuma_parse_policy("bind", &c.policy), 0);
	cr_assert_eq(vnuma_config_finish(&c, 0, 2, 4ull << 30), 0);
	cr_assert_eq(vnuma_host_resolve(&c, &h), 0, "%s", err_msg());
	cr_assert_eq(vnuma_check_hugepages(&c, &h, 4ull << 30, GMEM_HUGE_PAGE_1G), -ENOMEM);
	cr_assert(strstr(err_msg(), "numa node 1 needs 3 free 1 GiB huge pages on host node(s) 1, which have 2"),
		  "%s", err_msg());
	/* A node that starts inside a page is refused whatever the host. */
	struct numa_config odd = { 0 };
	vnuma_parse_node(&odd, "node,mem=1536M,cpus=0");
	vnuma_parse_node(&odd, "node,mem=2560M,cpus=1");
	cr_assert_eq(vnuma_config_finish(&odd, 0, 2, 4ull << 30), 0);
	struct host_numa unknown = { 0 };
	cr_assert_eq(vnuma_check_hugepages(&odd, &unknown, 4ull << 30, GMEM_HUGE_PAGE_1G), -EINVAL);
	cr_assert(strstr(err_msg(), "numa node 1 starts 1536 MiB into RAM, not on a 1 GiB huge page"), "%s",
		  err_msg());
	cr_assert_eq(vnuma_check_hugepages(&odd, &unknown, 4ull << 30, GMEM_HUGE_PAGE), 0, "2 MiB pages: fine");
	/* Above 4 GiB the region's own offsets count: 3 GiB starts 256 MiB
	 * into the high region. */
	struct numa_config high = { 0 };
	vnuma_parse_node(&high, "node,mem=3G,cpus=0");
	vnuma_parse_node(&high, "node,mem=1G,cpus=1");
	cr_assert_eq(vnuma_config_finish(&high, 0, 2, 4ull << 30), 0);
	cr_assert_eq(vnuma_check_hugepages(&high, &unknown, 4ull << 30, GMEM_HUGE_PAGE_1G), -EINVAL);
	cr_assert(strstr(err_msg(), "in the region above 4 GiB"), "%s", err_msg());
}
