#include "machine/vnuma.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_u(const char *s, const char *end, unsigned long long *out)
{
	if (s == end || !(*s >= '0' && *s <= '9'))
		return -1;
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno || e != end)
		return -1;
	*out = v;
	return 0;
}

int vnuma_parse_range(const char *s, unsigned *lo, unsigned *hi)
{
	const char *dash = strchr(s, '-'), *end = s + strlen(s);
	unsigned long long a, b;
	if (parse_u(s, dash ? dash : end, &a) < 0 || (dash && parse_u(dash + 1, end, &b) < 0))
		return -1;
	if (!dash)
		b = a;
	if (b < a || b > 1023)
		return -1;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return 0;
}

/* "1G", "512M", "1GiB", plain bytes. */
static int parse_size(const char *s, uint64_t *out)
{
	char *e;
	if (!(*s >= '0' && *s <= '9'))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	switch (*e) {
	case 'K': case 'k': shift = 10; e++; break;
	case 'M': case 'm': shift = 20; e++; break;
	case 'G': case 'g': shift = 30; e++; break;
	case 'T': case 't': shift = 40; e++; break;
	default: break;
	}
	if (shift && (!strcmp(e, "iB") || !strcmp(e, "B")))
		e += strlen(e);
	if (*e || v > (~0ull >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

int vnuma_parse_policy(const char *s, enum numa_policy *out)
{
	static const char *const names[] = { "preferred", "bind", "interleave" };
	for (unsigned i = 0; i < 3; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum numa_policy)i;
			return 0;
		}
	}
	return err_set(-EINVAL, "numa policy: '%s' is not a policy (expected bind, preferred or interleave)", s);
}

const char *vnuma_policy_name(enum numa_policy p)
{
	return p == NUMA_POLICY_BIND ? "bind" : p == NUMA_POLICY_INTERLEAVE ? "interleave" : "preferred";
}

int vnuma_parse_node(struct numa_config *c, const char *spec)
{
	if (c->n_nodes >= NUMA_MAX_NODES)
		return err_set(-EINVAL, "numa: more than %d nodes", NUMA_MAX_NODES);
	unsigned id = c->n_nodes;
	struct numa_node n = { 0 };
	bool have_mem = false, have_cpus = false;
	char *copy = strdup(spec);
	if (!copy)
		return err_set(-ENOMEM, "out of memory");
	int rc = 0;
	char *save = NULL;
	char *tok = strtok_r(copy, ",", &save);
	if (!tok || strcmp(tok, "node")) {
		rc = err_set(-EINVAL, "numa node %u: '%s' does not start with 'node' "
			     "(expected node,mem=SIZE,cpus=A-B[,host-node=N])", id, spec);
		goto out;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			rc = err_set(-EINVAL, "numa node %u: '%s' is not KEY=VALUE (expected mem, cpus or host-node)", id, tok);
			goto out;
		}
		*eq = 0;
		const char *v = eq + 1;
		unsigned lo, hi;
		if (!strcmp(tok, "mem")) {
			if (parse_size(v, &n.mem_bytes) < 0 || !n.mem_bytes) {
				rc = err_set(-EINVAL, "numa node %u: mem: '%s' is not a size (expected e.g. 512M or 1G)", id, v);
				goto out;
			}
			have_mem = true;
		} else if (!strcmp(tok, "cpus")) {
			if (vnuma_parse_range(v, &lo, &hi) < 0) {
				rc = err_set(-EINVAL, "numa node %u: cpus: '%s' is not a range of vCPUs (expected A or A-B)",
					     id, v);
				goto out;
			}
			n.first_cpu = lo;
			n.n_cpus = hi - lo + 1;
			have_cpus = true;
		} else if (!strcmp(tok, "host-node")) {
			if (vnuma_parse_range(v, &lo, &hi) < 0 || hi >= NUMA_MAX_HOST_NODES) {
				rc = err_set(-EINVAL, "numa node %u: host-node: '%s' is not a host node or range "
					     "(expected N or N-M, below %d)", id, v, NUMA_MAX_HOST_NODES);
				goto out;
			}
			for (unsigned h = lo; h <= hi; h++)
				n.host_nodes |= 1ull << h;
		} else {
			rc = err_set(-EINVAL, "numa node %u: unknown key '%s' (expected mem, cpus or host-node)", id, tok);
			goto out;
		}
	}
	if (!have_mem || !have_cpus) {
		rc = err_set(-EINVAL, "numa node %u: %s missing (expected node,mem=SIZE,cpus=A-B[,host-node=N])", id,
			     have_mem ? "cpus=" : "mem=");
		goto out;
	}
	c->nodes[c->n_nodes++] = n;
out:
	free(copy);
	return rc;
}

int vnuma_set_distance(struct numa_config *c, unsigned a, unsigned b, unsigned d)
{
	if (a >= NUMA_MAX_NODES || b >= NUMA_MAX_NODES)
		return err_set(-EINVAL, "numa distance %u,%u: no such node (at most %d nodes)", a, b, NUMA_MAX_NODES);
	if (d > 255)
		return err_set(-EINVAL, "numa distance %u,%u: %u is out of range (expected 10 to 254)", a, b, d);
	if (d == 0)
		return err_set(-EINVAL, "numa distance %u,%u: 0 is out of range (expected 10 to 254)", a, b);
	c->distance[a][b] = (uint8_t)d;
	return 0;
}

int vnuma_parse_distance(struct numa_config *c, const char *spec)
{
	unsigned a, b, d;
	char tail;
	if (sscanf(spec, "%u,%u,%u%c", &a, &b, &d, &tail) != 3)
		return err_set(-EINVAL, "numa distance: '%s' is not A,B,DISTANCE (e.g. 0,1,20)", spec);
	return vnuma_set_distance(c, a, b, d);
}

static int finish_distances(struct numa_config *c)
{
	unsigned n = c->n_nodes;
	for (unsigned i = 0; i < NUMA_MAX_NODES; i++) {
		for (unsigned j = 0; j < NUMA_MAX_NODES; j++) {
			if (c->distance[i][j] && (i >= n || j >= n))
				return err_set(-EINVAL, "numa distance %u,%u: there are only %u nodes", i, j, n);
		}
	}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < n; j++) {
			uint8_t d = c->distance[i][j], r = c->distance[j][i];
			if (i == j) {
				if (d && d != NUMA_LOCAL_DISTANCE)
					return err_set(-EINVAL, "numa distance %u,%u: %u is not the local distance "
						       "(a node's distance to itself is 10, ACPI 6.4 5.2.17)", i, j, d);
				c->distance[i][j] = NUMA_LOCAL_DISTANCE;
				continue;
			}
			if (d && r && d != r)
				return err_set(-EINVAL, "numa distance %u,%u: %u is not symmetric (%u,%u is %u)", i, j, d,
					       j, i, r);
			if (!d)
				d = r ? r : NUMA_REMOTE_DISTANCE;
			/* Linux refuses a SLIT whose remote entries are not above the
			 * local distance; 255 means unreachable. */
			if (d <= NUMA_LOCAL_DISTANCE || d == 255)
				return err_set(-EINVAL, "numa distance %u,%u: %u is out of range (expected 11 to 254 "
					       "between two nodes)", i, j, d);
			c->distance[i][j] = d;
		}
	}
	return 0;
}

int vnuma_config_finish(struct numa_config *c, unsigned shorthand, unsigned cpus, uint64_t mem_bytes)
{
	if (c->n_nodes == 0 && shorthand > 0) {
		/* --numa-nodes N: contiguous blocks of vCPUs, equal shares of RAM
		 * (the last node takes what the rounding leaves). */
		if (shorthand > cpus || shorthand > NUMA_MAX_NODES)
			return err_set(-EINVAL, "numa_nodes: %u is more than the %u CPUs", shorthand, cpus);
		uint64_t per = mem_bytes / shorthand / NUMA_GRANULE * NUMA_GRANULE;
		if (per == 0)
			return err_set(-EINVAL, "numa_nodes: %llu MiB of RAM cannot be split into %u nodes",
				       (unsigned long long)(mem_bytes >> 20), shorthand);
		for (unsigned i = 0; i < shorthand; i++) {
			struct numa_node *n = &c->nodes[i];
			n->first_cpu = cpus * i / shorthand;
			n->n_cpus = cpus * (i + 1) / shorthand - n->first_cpu;
			n->mem_bytes = i == shorthand - 1 ? mem_bytes - per * (shorthand - 1) : per;
		}
		c->n_nodes = shorthand;
	} else if (c->n_nodes && shorthand && shorthand != c->n_nodes) {
		return err_set(-EINVAL, "numa_nodes: %u does not match the %u nodes described", shorthand, c->n_nodes);
	}
	if (c->n_nodes == 0)
		return 0;
	uint64_t total = 0;
	int owner[1024];
	for (unsigned i = 0; i < cpus; i++)
		owner[i] = -1;
	for (unsigned i = 0; i < c->n_nodes; i++) {
		const struct numa_node *n = &c->nodes[i];
		/* The last node ends where RAM ends, whatever its size. */
		if (i + 1 < c->n_nodes && n->mem_bytes % NUMA_GRANULE)
			return err_set(-EINVAL, "numa node %u: mem: %llu bytes is not a multiple of 2 MiB", i,
				       (unsigned long long)n->mem_bytes);
		total += n->mem_bytes;
		if (n->n_cpus == 0)
			return err_set(-EINVAL, "numa node %u: cpus: a node needs at least one vCPU", i);
		for (unsigned k = n->first_cpu; k < n->first_cpu + n->n_cpus; k++) {
			if (k >= cpus)
				return err_set(-EINVAL, "numa node %u: cpus: vCPU %u does not exist (the machine has %u, "
					       "--max-cpus included: 0-%u)", i, k, cpus, cpus - 1);
			if (owner[k] >= 0)
				return err_set(-EINVAL, "numa node %u: cpus: vCPU %u is already in node %d", i, k, owner[k]);
			owner[k] = (int)i;
		}
	}
	for (unsigned k = 0; k < cpus; k++) {
		if (owner[k] < 0)
			return err_set(-EINVAL, "numa: cpus: vCPU %u is in no node (every vCPU 0-%u needs one)", k,
				       cpus - 1);
	}
	if (total != mem_bytes)
		return err_set(-EINVAL, "numa: mem: the nodes' memory sums to %llu MiB, not the machine's %llu MiB "
			       "(--memory)", (unsigned long long)(total >> 20), (unsigned long long)(mem_bytes >> 20));
	return finish_distances(c);
}

int vnuma_host_resolve(struct numa_config *c, const struct host_numa *h)
{
	c->host_bound = false;
	if (c->n_nodes == 0)
		return 0;
	bool given = false;
	for (unsigned i = 0; i < c->n_nodes; i++)
		given |= c->nodes[i].host_nodes && !c->nodes[i].host_picked;
	if (!h->nodes) {
		if (given)
			return err_set(-ENODEV, "numa: host-node: this host has no NUMA support (no %s)", HOST_NUMA_SYSFS);
		return 0;
	}
	uint64_t with_free = h->with_free ? h->with_free : h->nodes;
	char have[256];
	host_numa_list(h->nodes, have, sizeof(have));
	unsigned n_free = (unsigned)__builtin_popcountll(with_free), pick = 0;
	for (unsigned i = 0; i < c->n_nodes; i++) {
		struct numa_node *n = &c->nodes[i];
		if (n->host_picked)
			n->host_nodes = 0;
		uint64_t bad = n->host_nodes & ~h->nodes;
		if (bad && n->host_hint) {
			/* Restored on a host with fewer nodes: keep what exists. */
			char was[256];
			host_numa_list(n->host_nodes, was, sizeof(was));
			n->host_nodes &= h->nodes;
			n->host_hint = false;
			log_warn("numa", "numa node %u: the snapshot's host node(s) %s are not all on this host (it has %s): "
				 "%s", i, was, have, n->host_nodes ? "keeping those it has" : "vessel picks one");
			bad = 0;
		}
		if (bad)
			return err_set(-EINVAL, "numa node %u: host-node: the host has no node %u (it has %s)", i,
				       (unsigned)__builtin_ctzll(bad), have);
		if (!n->host_nodes) {
			/* Round robin over the host nodes with free memory. */
			unsigned k = pick++ % n_free;
			uint64_t m = with_free;
			while (k--)
				m &= m - 1;
			n->host_nodes = m & -m;
			n->host_picked = true;
		}
		host_numa_cpus_of(h, n->host_nodes, &n->host_cpus);
	}
	c->host_bound = true;
	return 0;
}

int vnuma_for_each_range(const struct numa_config *c, const struct guest_memory *mem, vnuma_range_fn fn,
			void *opaque)
{
	if (c->n_nodes == 0)
		return 0;
	unsigned node = 0;
	uint64_t left = c->nodes[0].mem_bytes;
	for (unsigned r = 0; r < mem->n_regions; r++) {
		const struct gmem_region *reg = &mem->regions[r];
		if (reg->rom || reg->hotplug)
			continue;
		uint64_t off = 0;
		while (off < reg->size && node < c->n_nodes) {
			uint64_t piece = reg->size - off < left ? reg->size - off : left;
			int rc = fn(opaque, node, reg, off, piece);
			if (rc < 0)
				return rc;
			off += piece;
			left -= piece;
			if (!left && ++node < c->n_nodes)
				left = c->nodes[node].mem_bytes;
		}
	}
	/* Hot-added RAM, whole pieces of the node they were added to. */
	for (unsigned r = 0; r < mem->n_regions; r++) {
		const struct gmem_region *reg = &mem->regions[r];
		int rc = reg->hotplug && reg->size && reg->node < c->n_nodes ? fn(opaque, reg->node, reg, 0, reg->size) : 0;
		if (rc < 0)
			return rc;
	}
	return 0;
}

int vnuma_hotplug_share(const struct numa_config *c, const struct guest_memory *mem, unsigned node, uint64_t *base,
			uint64_t *size)
{
	unsigned n = c->n_nodes ? c->n_nodes : 1;
	if (node >= n)
		return -EINVAL;
	/* Equal shares in whole blocks, node order; the last node takes the rest. */
	uint64_t share = mem->hp_size / n / GMEM_HOTPLUG_BLOCK * GMEM_HOTPLUG_BLOCK;
	*base = mem->hp_base + share * node;
	*size = node == n - 1 ? mem->hp_size - share * node : share;
	return 0;
}


int vnuma_node_of_cpu(const struct numa_config *c, unsigned cpu)
{
	for (unsigned i = 0; i < c->n_nodes; i++) {
		if (cpu >= c->nodes[i].first_cpu && cpu - c->nodes[i].first_cpu < c->nodes[i].n_cpus)
			return (int)i;
	}
	return -1;
}

/* mbind() of [host, host + len) to host_nodes with c's policy; flags 0 or
 * MPOL_MF_MOVE (migrate the pages already there that do not conform). */
static int bind_to(const struct numa_config *c, unsigned node, void *host, uint64_t len, uint64_t host_nodes,
		   unsigned flags)
{
	unsigned long mask = (unsigned long)host_nodes;
	int mode = c->policy == NUMA_POLICY_BIND ? MPOL_BIND
		 : c->policy == NUMA_POLICY_INTERLEAVE ? MPOL_INTERLEAVE : MPOL_PREFERRED;
	/* MPOL_PREFERRED takes one node: the lowest of the set. */
	if (mode == MPOL_PREFERRED)
		mask &= -mask;
	if (mbind(host, len, mode, &mask, NUMA_MAX_HOST_NODES + 1, flags) < 0)
		return err_set(-errno, "numa node %u: cannot bind its memory to host node(s) %#lx: %s", node,
			       (unsigned long)host_nodes, strerror(errno));
	return 0;
}

static int bind_range(void *opaque, unsigned node, const struct gmem_region *r, uint64_t offset, uint64_t len)
{
	const struct numa_config *c = opaque;
	return bind_to(c, node, r->host + offset, len, c->nodes[node].host_nodes, 0);
}

int vnuma_bind_hotplug(const struct numa_config *c, const struct gmem_region *r)
{
	if (!c->host_bound || r->node >= c->n_nodes)
		return 0;
	return bind_to(c, r->node, r->host, r->size, c->nodes[r->node].host_nodes, 0);
}

int vnuma_bind_memory(const struct numa_config *c, const struct guest_memory *mem)
{
	if (!c->host_bound)
		return 0;
	return vnuma_for_each_range(c, mem, bind_range, (void *)c);
}

int vnuma_pin_thread(const struct numa_config *c, unsigned cpu, pthread_t thread)
{
	int node = vnuma_node_of_cpu(c, cpu);
	if (!c->host_bound || node < 0 || CPU_COUNT(&c->nodes[node].host_cpus) == 0)
		return 0;
	int rc = pthread_setaffinity_np(thread, sizeof(cpu_set_t), &c->nodes[node].host_cpus);
	if (rc)
		return err_set(-rc, "cpu%u: cannot pin its thread to the CPUs of numa node %d: %s", cpu, node,
			       strerror(rc));
	return 0;
}

/* ---- huge pages (docs/numa.md "Huge pages") ---- */

static uint64_t free_huge_on(const struct host_numa *h, uint64_t nodes, uint64_t page)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < HOST_NUMA_MAX_NODES; i++)
		if (nodes & h->nodes & (1ull << i))
			n += page == GMEM_HUGE_PAGE_1G ? h->free_huge_1g[i] : h->free_huge[i];
	return n;
}

/* The pages of [start, end) of RAM (offsets, not addresses), which the
 * PC map splits into the low region (below GMEM_LOW_RAM_END) and the
 * high one, each its own host mapping of whole pages: -EINVAL when the
 * range does not start on a page of its mapping (its first page would
 * be another's, and mbind() cannot split a huge page). */
static int pages_of(uint64_t mem_bytes, uint64_t start, uint64_t end, uint64_t page, uint64_t *pages)
{
	uint64_t low = mem_bytes < GMEM_LOW_RAM_END ? mem_bytes : GMEM_LOW_RAM_END;
	const uint64_t bounds[2][2] = { { 0, low }, { low, mem_bytes } };
	*pages = 0;
	for (unsigned r = 0; r < 2; r++) {
		uint64_t a = start > bounds[r][0] ? start : bounds[r][0], b = end < bounds[r][1] ? end : bounds[r][1];
		if (a >= b)
			continue;
		if ((a - bounds[r][0]) % page)
			return -EINVAL;
		*pages += (b - a + page - 1) / page;
	}
	return 0;
}

int vnuma_check_hugepages(const struct numa_config *c, const struct host_numa *h, uint64_t mem_bytes, uint64_t page)
{
	char list[256];
	const char *size = gmem_page_name(page);
	uint64_t start = 0, need;
	/* The nodes' RAM on whole pages first: it does not depend on the host. */
	for (unsigned i = 0; i < c->n_nodes; i++) {
		if (pages_of(mem_bytes, start, start + c->nodes[i].mem_bytes, page, &need) < 0)
			return err_set(-EINVAL, "memory backend hugetlb: numa node %u starts %llu MiB into RAM%s, not on a "
						"%s huge page (its node boundaries must be whole pages of each RAM region: "
						"below %llu MiB, and the rest)", i, (unsigned long long)(start >> 20),
				       start >= GMEM_LOW_RAM_END ? ", in the region above 4 GiB," : "", size,
				       (unsigned long long)(GMEM_LOW_RAM_END >> 20));
		start += c->nodes[i].mem_bytes;
	}
	if (!h->nodes)
		return 0;
	if (!c->n_nodes || !c->host_bound) {
		pages_of(mem_bytes, 0, mem_bytes, page, &need);
		uint64_t have = free_huge_on(h, h->nodes, page);
		if (need > have)
			return err_set(-ENOMEM, "memory backend hugetlb: the guest's %llu MiB need %llu free %s huge "
						"pages, the host has %llu (%s/hugepages-%llukB/nr_hugepages)",
				       (unsigned long long)(mem_bytes >> 20), (unsigned long long)need, size,
				       (unsigned long long)have, GMEM_HUGE_SYSFS, (unsigned long long)(page >> 10));
		return 0;
	}
	start = 0;
	for (unsigned i = 0; i < c->n_nodes; i++) {
		uint64_t where = c->policy == NUMA_POLICY_BIND ? c->nodes[i].host_nodes : h->nodes;
		pages_of(mem_bytes, start, start + c->nodes[i].mem_bytes, page, &need);
		start += c->nodes[i].mem_bytes;
		uint64_t have = free_huge_on(h, where, page);
		if (need > have) {
			host_numa_list(where & h->nodes, list, sizeof(list));
			return err_set(-ENOMEM, "memory backend hugetlb: numa node %u needs %llu free %s huge pages on "
						"host node(s) %s, which have %llu (/sys/devices/system/node/nodeN/hugepages, "
						"%s)", i, (unsigned long long)need, size, list, (unsigned long long)have,
				       GMEM_HUGE_SYSFS);
		}
	}
	return 0;
}

/* ---- following the host's CPU set (docs/numa.md) ---- */

int vnuma_follow(const struct numa_config *c, const struct host_numa *h, const cpu_set_t *allowed,
		 cpu_set_t out[NUMA_MAX_NODES])
{
	if (!c->host_bound || CPU_COUNT(allowed) == 0)
		return -EINVAL;
	for (unsigned i = 0; i < c->n_nodes; i++) {
		cpu_set_t mine;
		host_numa_cpus_of(h, c->nodes[i].host_nodes, &mine);
		CPU_AND(&out[i], &mine, allowed);
		if (CPU_COUNT(&out[i]))
			continue;
		/* The nearest host node with allowed CPUs, by the host's SLIT
		 * from the node's first host node (unknown distances last). */
		unsigned from = (unsigned)__builtin_ctzll(c->nodes[i].host_nodes ? c->nodes[i].host_nodes : 1);
		int best = -1;
		unsigned best_d = ~0u;
		for (unsigned n = 0; n < HOST_NUMA_MAX_NODES; n++) {
			if (!(h->nodes & (1ull << n)))
				continue;
			cpu_set_t there;
			CPU_AND(&there, &h->cpus[n], allowed);
			unsigned d = h->distance[from][n] ? h->distance[from][n] : 255u + n;
			if (CPU_COUNT(&there) && d < best_d) {
				best = (int)n;
				best_d = d;
			}
		}
		if (best >= 0)
			CPU_AND(&out[i], &h->cpus[best], allowed);
		else
			out[i] = *allowed;
	}
	return 0;
}

/* ---- moving a node at run time (docs/numa.md "Moving a node") ---- */

struct plan_build {
	struct numa_move_plan *p;
	unsigned node;
};

static int plan_range(void *opaque, unsigned node, const struct gmem_region *r, uint64_t offset, uint64_t len)
{
	struct plan_build *b = opaque;
	if (node != b->node)
		return 0;
	for (uint64_t off = 0; off < len; off += NUMA_MOVE_CHUNK) {
		struct numa_move_plan *p = b->p;
		if (p->n_chunks % 16 == 0) {
			struct numa_move_chunk *c = realloc(p->chunks, (p->n_chunks + 16) * sizeof(*c));
			if (!c)
				return err_set(-ENOMEM, "out of memory");
			p->chunks = c;
		}
		uint64_t piece = len - off < NUMA_MOVE_CHUNK ? len - off : NUMA_MOVE_CHUNK;
		p->chunks[p->n_chunks++] = (struct numa_move_chunk){ .host = r->host + offset + off, .len = piece };
		p->pages += piece / NUMA_PAGE;
	}
	return 0;
}

int vnuma_plan_move(const struct numa_config *c, const struct host_numa *h, const struct guest_memory *mem,
		    unsigned node, uint64_t host_nodes, struct numa_move_plan *p)
{
	memset(p, 0, sizeof(*p));
	if (node >= c->n_nodes)
		return err_set(-EINVAL, "numa move: node %u: the guest has no such node (it has %u)", node, c->n_nodes);
	if (!h->nodes)
		return err_set(-ENODEV, "numa move: this host has no NUMA support (no %s)", HOST_NUMA_SYSFS);
	char have[256];
	host_numa_list(h->nodes, have, sizeof(have));
	if (!host_nodes || (host_nodes & ~h->nodes))
		return err_set(-EINVAL, "numa move: host node %u: the host has no such node (it has %s)",
			       host_nodes ? (unsigned)__builtin_ctzll(host_nodes & ~h->nodes) : 0, have);
	p->node = node;
	p->host_nodes = host_nodes;
	host_numa_cpus_of(h, host_nodes, &p->host_cpus);
	struct plan_build b = { .p = p, .node = node };
	int rc = vnuma_for_each_range(c, mem, plan_range, &b);
	if (rc < 0)
		vnuma_plan_free(p);
	return rc;
}

void vnuma_plan_free(struct numa_move_plan *p)
{
	free(p->chunks);
	p->chunks = NULL;
	p->n_chunks = 0;
}

/* Where each page of [host, host + len) is: node, or a negative errno
 * (-ENOENT: not populated).  move_pages(2) with nodes NULL only asks. */
static int page_nodes(void *host, uint64_t len, void **pages, int *status)
{
	unsigned long n = len / NUMA_PAGE;
	for (unsigned long i = 0; i < n; i++)
		pages[i] = (uint8_t *)host + i * NUMA_PAGE;
	if (move_pages(0, n, pages, NULL, status, 0) < 0)
		return err_set(-errno, "numa: cannot query where guest pages are: %s", strerror(errno));
	return 0;
}

int vnuma_move_chunk(const struct numa_config *c, const struct numa_move_plan *p, unsigned i,
		     struct numa_move_count *count)
{
	const struct numa_move_chunk *ch = &p->chunks[i];
	unsigned long n = ch->len / NUMA_PAGE;
	void **pages = malloc(n * sizeof(*pages));
	int *before = malloc(n * sizeof(*before)), *after = malloc(n * sizeof(*after));
	int rc = -ENOMEM;
	if (!pages || !before || !after) {
		err_set(rc, "out of memory");
		goto out;
	}
	if ((rc = page_nodes(ch->host, ch->len, pages, before)) < 0)
		goto out;
	/* The new policy for pages yet to be touched, and a migration of
	 * those already there; the guest keeps running meanwhile (the
	 * kernel migrates page by page under its own locks). */
	if ((rc = bind_to(c, p->node, ch->host, ch->len, p->host_nodes, MPOL_MF_MOVE)) < 0)
		goto out;
	if ((rc = page_nodes(ch->host, ch->len, pages, after)) < 0)
		goto out;
	for (unsigned long k = 0; k < n; k++) {
		bool was_off = before[k] >= 0 && !(p->host_nodes & (1ull << before[k]));
		bool is_on = after[k] >= 0 && (p->host_nodes & (1ull << after[k]));
		if (was_off && is_on)
			count->moved++;
		else if (after[k] >= 0 && !is_on)
			count->failed++;
	}
	count->done += n;
out:
	free(pages);
	free(before);
	free(after);
	return rc;
}

int vnuma_resident(const struct numa_config *c, const struct guest_memory *mem, unsigned node,
		   uint64_t counts[NUMA_MAX_HOST_NODES], uint64_t *absent)
{
	struct numa_move_plan p = { 0 };
	struct plan_build b = { .p = &p, .node = node };
	memset(counts, 0, NUMA_MAX_HOST_NODES * sizeof(*counts));
	*absent = 0;
	int rc = vnuma_for_each_range(c, mem, plan_range, &b);
	void **pages = malloc(NUMA_MOVE_CHUNK / NUMA_PAGE * sizeof(*pages));
	int *status = malloc(NUMA_MOVE_CHUNK / NUMA_PAGE * sizeof(*status));
	if (rc == 0 && (!pages || !status))
		rc = err_set(-ENOMEM, "out of memory");
	for (unsigned i = 0; rc == 0 && i < p.n_chunks; i++) {
		rc = page_nodes(p.chunks[i].host, p.chunks[i].len, pages, status);
		for (unsigned long k = 0; rc == 0 && k < p.chunks[i].len / NUMA_PAGE; k++) {
			if (status[k] >= 0 && status[k] < NUMA_MAX_HOST_NODES)
				counts[status[k]]++;
			else
				(*absent)++;
		}
	}
	free(pages);
	free(status);
	vnuma_plan_free(&p);
	return rc;
}
