/* Virtual NUMA (docs/numa.md): which guest RAM and vCPUs form each
 * virtual node, the distances between nodes (SLIT), and the host nodes
 * that stand behind each one.  The board describes it to the guest
 * (SRAT, SLIT); this module binds guest RAM (mbind) and vCPU threads
 * (sched_setaffinity) on the host through libnuma. */
#ifndef VESSEL_MACHINE_VNUMA_H
#define VESSEL_MACHINE_VNUMA_H

#include "machine/memory.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#define NUMA_MAX_NODES 64
#define NUMA_MAX_HOST_NODES 64
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

/* Completes and checks c for a machine of cpus vCPUs and mem_bytes of
 * RAM: shorthand nodes > 0 with no node given splits both evenly; every
 * vCPU in exactly one node, node memory summing to mem_bytes, distances
 * symmetric, 10 local and 11..254 remote.  0 or -EINVAL naming the field. */
int vnuma_config_finish(struct numa_config *c, unsigned shorthand, unsigned cpus, uint64_t mem_bytes);
/* Checks the host nodes given against the host, picks host nodes for
 * the nodes without (spread over the host nodes that have free memory)
 * and fills host_cpus.  A host without NUMA support: nothing is bound,
 * unless host nodes were given (-ENODEV). */
int vnuma_host_resolve(struct numa_config *c);

/* Calls fn for each piece of guest RAM of each node, in address order. */
typedef int (*vnuma_range_fn)(void *opaque, unsigned node, const struct gmem_region *r, uint64_t offset,
			     uint64_t len);
int vnuma_for_each_range(const struct numa_config *c, const struct guest_memory *mem, vnuma_range_fn fn,
			void *opaque);
/* The node of a vCPU, or -1 with no topology. */
int vnuma_node_of_cpu(const struct numa_config *c, unsigned cpu);

/* mbind()s each node's RAM to its host nodes with c->policy; before the
 * guest touches it, so that every page is placed by the policy. */
int vnuma_bind_memory(const struct numa_config *c, const struct guest_memory *mem);
/* Sets the affinity of the thread of vCPU cpu to its node's host CPUs. */
int vnuma_pin_thread(const struct numa_config *c, unsigned cpu, pthread_t thread);

#endif
