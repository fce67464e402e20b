#include "machine/cpu_topology.h"

unsigned cpu_topology_per_package(const struct numa_config *c, unsigned n_cpus)
{
	unsigned n = n_cpus ? n_cpus : 1;
	if (!c || c->n_nodes < 2)
		return n;
	unsigned k = c->nodes[0].n_cpus;
	for (unsigned i = 0; i < c->n_nodes; i++) {
		if (c->nodes[i].n_cpus != k || c->nodes[i].first_cpu != i * k)
			return n;
	}
	return k && !(k & (k - 1)) ? k : n;
}

void cpu_topology_leaf(unsigned per_package, uint32_t subleaf, uint32_t apic_id, uint32_t out[4])
{
	unsigned shift = 0;
	while ((1u << shift) < per_package)
		shift++;
	out[0] = out[1] = out[2] = 0;
	if (subleaf == 0) {
		/* SMT level (type 1): one thread per core, no bits. */
		out[1] = 1;
		out[2] = 1u << 8;
	} else if (subleaf == 1) {
		/* Core level (type 2): the package's cores; the shift makes
		 * the rest of the APIC id the package id. */
		out[0] = shift;
		out[1] = per_package;
		out[2] = 2u << 8 | 1;
	} else {
		/* An invalid level: ECX[7:0] echoes the subleaf. */
		out[2] = subleaf & 0xff;
	}
	out[3] = apic_id;
}
