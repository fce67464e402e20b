/* Virtual NUMA (docs/numa.md): which guest RAM and vCPUs form each
 * virtual node, the distances between nodes (SLIT), and the host nodes
 * that stand behind each one.  The board describes it to the guest
 * (SRAT, SLIT); this module binds guest RAM (mbind, libnuma's wrapper)
 * and vCPU threads (sched_setaffinity) on the host, to the host nodes
 * machine/host_numa.h reads from sysfs, and moves a node at run time. */
#ifndef VESSEL_MACHINE_VNUMA_H
#define VESSEL_MACHINE_VNUMA_H

#include "machine/host_numa.h"
#include "machine/memory.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#define NUMA_MAX_NODES 64
#define NUMA_MAX_HOST_NODES HOST_NUMA_MAX_NODES
/* Node sizes are whole 2 MiB pages: SRAT ranges and mbind() then fall
 * on (huge) page boundaries. */
#define NUMA_GRANULE (2ull << 20)
#define NUMA_LOCAL_DISTANCE 10
#define NUMA_REMOTE_DISTANCE 20

enum numa_policy { NUMA_POLICY_PREFERRED, NUMA_POLICY_BIND, NUMA_POLICY_INTERLEAVE };

struct numa_node {
	uint64_t mem_bytes;        /* 0 until given (or split by the shorthand) */
	unsigned first_cpu, n_cpus; /* a contiguous block of vCPU (= APIC) ids */
	uint64_t host_nodes;       /* bit n: host node n; 0: none given */
	bool host_picked;          /* host_nodes chosen by vessel */
	bool host_hint;            /* host_nodes from a snapshot: those the host lacks are replaced */
	cpu_set_t host_cpus;       /* CPUs of host_nodes (vnuma_host_resolve) */
};

struct numa_config {
	unsigned n_nodes;          /* 0: no virtual topology */
	struct numa_node nodes[NUMA_MAX_NODES];
	/* distance[i][j] as given, 0 where not given (vnuma_config_finish()
	 * mirrors one direction and fills 10 local, 20 remote). */
	uint8_t distance[NUMA_MAX_NODES][NUMA_MAX_NODES];
	enum numa_policy policy;
	bool host_bound;           /* vnuma_host_resolve() found host nodes */
	bool follow;               /* --numa-follow: re-pin when the host's CPU set changes */
};

/* `--numa node,mem=SIZE,cpus=A[-B][,host-node=N[-M]]`: appends a node. */
int vnuma_parse_node(struct numa_config *c, const char *spec);
/* `--numa-distance A,B,D`. */
int vnuma_parse_distance(struct numa_config *c, const char *spec);
/* Sets one distance; the checks happen in vnuma_config_finish(). */
int vnuma_set_distance(struct numa_config *c, unsigned a, unsigned b, unsigned d);
/* "bind", "preferred" or "interleave". */
int vnuma_parse_policy(const char *s, enum numa_policy *out);
const char *vnuma_policy_name(enum numa_policy p);
/* "A" or "A-B" -> [lo, hi]. */
int vnuma_parse_range(const char *s, unsigned *lo, unsigned *hi);

/* Completes and checks c for a machine of cpus vCPUs (its possible
 * ones: those `cpu add` plugs in later have their nodes from boot) and
 * mem_bytes of RAM: shorthand nodes > 0 with no node given splits both
 * evenly, vCPUs in contiguous blocks of the possible ones; every
 * vCPU in exactly one node, node memory summing to mem_bytes, distances
 * symmetric, 10 local and 11..254 remote.  0 or -EINVAL naming the field. */
int vnuma_config_finish(struct numa_config *c, unsigned shorthand, unsigned cpus, uint64_t mem_bytes);
/* Checks the host nodes given against the host h (host_numa_read()),
 * picks host nodes for the nodes without (spread over the host nodes that
 * have free memory) and fills host_cpus.  A host without NUMA support:
 * nothing is bound, unless host nodes were given (-ENODEV). */
int vnuma_host_resolve(struct numa_config *c, const struct host_numa *h);

/* Calls fn for each piece of guest RAM of each node, in address order. */
typedef int (*vnuma_range_fn)(void *opaque, unsigned node, const struct gmem_region *r, uint64_t offset,
			     uint64_t len);
int vnuma_for_each_range(const struct numa_config *c, const struct guest_memory *mem, vnuma_range_fn fn,
			void *opaque);
/* The part of the hot-pluggable range (mem->hp_base, hp_size) whose
 * RAM belongs to node: equal shares of whole GMEM_HOTPLUG_BLOCKs in node
 * order, the last node taking the rest; without nodes, node 0 has all.
 * The SRAT lists each as hot-pluggable memory of its node. */
int vnuma_hotplug_share(const struct numa_config *c, const struct guest_memory *mem, unsigned node, uint64_t *base,
			uint64_t *size);
/* mbind()s hot-added region r to its node's host nodes (before the
 * guest sees it). */
int vnuma_bind_hotplug(const struct numa_config *c, const struct gmem_region *r);
/* The node of a vCPU, or -1 with no topology. */
int vnuma_node_of_cpu(const struct numa_config *c, unsigned cpu);

/* mbind()s each node's RAM to its host nodes with c->policy; before the
 * guest touches it, so that every page is placed by the policy. */
int vnuma_bind_memory(const struct numa_config *c, const struct guest_memory *mem);
/* Sets the affinity of the thread of vCPU cpu to its node's host CPUs. */
int vnuma_pin_thread(const struct numa_config *c, unsigned cpu, pthread_t thread);

/* --memory-backend hugetlb (docs/numa.md "Huge pages"): whether the host
 * has the pages of page bytes (GMEM_HUGE_PAGE or GMEM_HUGE_PAGE_1G) each
 * node needs where its policy puts them (bind: on its host nodes; else
 * anywhere), or, without nodes, mem_bytes' worth anywhere.  -ENOMEM
 * naming the node and the host nodes; 0 on a host whose topology is
 * unknown (the mapping then says).  First, whatever the host: -EINVAL
 * when a node's RAM does not start on a page of its RAM region's host
 * mapping (mbind() cannot split a huge page between nodes). */
int vnuma_check_hugepages(const struct numa_config *c, const struct host_numa *h, uint64_t mem_bytes, uint64_t page);

/* --numa-follow (docs/numa.md "Following the host's CPU set"): the CPUs
 * each node's vCPU threads may use once the process may use only the
 * CPUs in allowed (a cgroup cpuset changed, a CPU went offline): its
 * host nodes' CPUs that are still allowed; where none is, the allowed
 * CPUs of the host node nearest to its first host node (the SLIT of h)
 * that has any; where none is known, all of allowed.  -EINVAL when
 * allowed is empty or c is not bound. */
int vnuma_follow(const struct numa_config *c, const struct host_numa *h, const cpu_set_t *allowed,
		 cpu_set_t out[NUMA_MAX_NODES]);

/* Moving a virtual node to other host nodes at run time: the node's RAM
 * in chunks (so that progress can be shown and the guest keeps running),
 * and the CPUs its vCPU threads move to.  The chunking is separate from
 * the moving so that tests check it against a fake host. */
#define NUMA_MOVE_CHUNK (64ull << 20)
#define NUMA_PAGE 4096ull
struct numa_move_chunk {
	uint8_t *host;
	uint64_t len;
};
struct numa_move_plan {
	unsigned node;
	uint64_t host_nodes;      /* the target */
	cpu_set_t host_cpus;      /* their CPUs, for the node's vCPU threads */
	unsigned n_chunks;
	struct numa_move_chunk *chunks;
	uint64_t pages;           /* in all chunks */
};
struct numa_move_count {
	uint64_t done;            /* pages looked at */
	uint64_t moved;           /* were on another host node, now on a target one */
	uint64_t failed;          /* populated and still elsewhere (e.g. pinned, or no room) */
};
/* Plans the move of node to host_nodes of h: -EINVAL naming what is
 * wrong (no such node here or on the host). */
int vnuma_plan_move(const struct numa_config *c, const struct host_numa *h, const struct guest_memory *mem,
		    unsigned node, uint64_t host_nodes, struct numa_move_plan *p);
void vnuma_plan_free(struct numa_move_plan *p);
/* Binds chunk i to the plan's host nodes with c's policy and migrates the
 * pages already there (mbind MPOL_MF_MOVE); adds to count. */
int vnuma_move_chunk(const struct numa_config *c, const struct numa_move_plan *p, unsigned i,
		     struct numa_move_count *count);
/* The pages of node's RAM resident on each host node, and those not yet
 * populated (move_pages(2) queries). */
int vnuma_resident(const struct numa_config *c, const struct guest_memory *mem, unsigned node,
		   uint64_t counts[NUMA_MAX_HOST_NODES], uint64_t *absent);

#endif
