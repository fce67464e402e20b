/* The host's NUMA topology as Linux shows it under /sys/devices/system/node
 * (Documentation/ABI/stable/sysfs-devices-node): which nodes exist, their
 * CPUs, free memory and distances.  Read through one function that takes
 * the folder, so that tests describe multi-node hosts with a fake tree. */
#ifndef VESSEL_MACHINE_HOST_NUMA_H
#define VESSEL_MACHINE_HOST_NUMA_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#define HOST_NUMA_MAX_NODES 64
#define HOST_NUMA_SYSFS "/sys/devices/system/node"

struct host_numa {
	uint64_t nodes;       /* bit n: node n exists (and this process may use it) */
	uint64_t with_free;   /* the nodes with free memory */
	uint64_t free_bytes[HOST_NUMA_MAX_NODES];
	/* Free 2 MiB huge pages (nodeN/hugepages/hugepages-2048kB/free_hugepages)
	 * and 1 GiB ones (hugepages-1048576kB). */
	uint64_t free_huge[HOST_NUMA_MAX_NODES];
	uint64_t free_huge_1g[HOST_NUMA_MAX_NODES];
	cpu_set_t cpus[HOST_NUMA_MAX_NODES];
	uint8_t distance[HOST_NUMA_MAX_NODES][HOST_NUMA_MAX_NODES];   /* 0: unknown */
};

/* Reads the tree under root (NULL: HOST_NUMA_SYSFS, then also limited to
 * the nodes of this process's Mems_allowed_list, as a cpuset may narrow
 * them).  A host without the folder has no nodes: 0 with h->nodes == 0. */
int host_numa_read(struct host_numa *h, const char *root);

/* "0,2-3" (sysfs cpulist/nodelist format) -> bits; -EINVAL if malformed. */
int host_numa_parse_list(const char *s, uint64_t *bits, cpu_set_t *cpus);

/* The CPUs of the nodes in mask. */
void host_numa_cpus_of(const struct host_numa *h, uint64_t mask, cpu_set_t *out);

/* "0,2" for the nodes in mask. */
void host_numa_list(uint64_t mask, char *buf, size_t len);

#endif
