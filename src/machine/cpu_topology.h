/* The vCPUs' topology as CPUID reports it (SDM vol. 2A, CPUID leaves 0BH
 * and 1FH, "V2 Extended Topology"; leaf 1 EBX[23:16]), one answer for
 * every engine: the emu engine computes its leaves from it, the KVM
 * engine writes it into the CPUID table it gives KVM, so that a guest
 * sees the same packages on both (docs/numa.md "What the guest sees").
 * APIC id = vCPU id; one thread per core. */
#ifndef VESSEL_MACHINE_CPU_TOPOLOGY_H
#define VESSEL_MACHINE_CPU_TOPOLOGY_H

#include "machine/vnuma.h"

#include <stdint.h>

/* Logical processors per package for a machine of n_cpus (possible)
 * vCPUs: with virtual NUMA nodes of equal, power-of-two size (each a
 * contiguous block from vCPU 0 on), one package per node, so that the
 * guest's package and node scheduling domains agree; otherwise one
 * package holds every vCPU.  c may be NULL (no nodes). */
unsigned cpu_topology_per_package(const struct numa_config *c, unsigned n_cpus);

/* Leaf 0BH or 1FH (both name the same two levels: SMT, then core; no
 * module, tile or die level), subleaf, for the vCPU with x2APIC id
 * apic_id: EAX the APIC id shift to the next level, EBX the logical
 * processors at this level, ECX the level number and type, EDX the
 * x2APIC id.  Subleaves from 2 on are invalid levels (type 0). */
void cpu_topology_leaf(unsigned per_package, uint32_t subleaf, uint32_t apic_id, uint32_t out[4]);

/* The levels cpu_topology_leaf() describes, the invalid one included:
 * an engine that lists subleaves lists this many. */
#define CPU_TOPOLOGY_SUBLEAVES 3

#endif
