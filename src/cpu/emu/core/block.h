/* Decoded-block cache (DESIGN.md "Decode once"): per vCPU, direct-mapped,
 * keyed by the guest-physical address of the block's first byte and the
 * CPU mode.  No locking: each vCPU owns its cache; other vCPUs only bump
 * page generations (emu_vm.page_gen), which make stale blocks miss. */
#ifndef VESSEL_CPU_EMU_CORE_BLOCK_H
#define VESSEL_CPU_EMU_CORE_BLOCK_H

#include "cpu/emu/emu.h"

#define EMU_BLOCK_MAX_INSNS 32
#define EMU_BLOCK_SLOTS 4096   /* power of two */

struct emu_block {
	uint64_t gpa;          /* first byte; ~0 when empty */
	uint64_t page;         /* gpa >> 12 */
	uint32_t gen;          /* page_gen[page] when decoded */
	uint8_t mode;
	uint8_t n;
	bool cacheable;        /* false: straddles a page, decoded for one use */
	struct emu_insn insn[EMU_BLOCK_MAX_INSNS];
};

/* The core's per-vCPU state: struct emu_cpu first, so that vcpu->accel
 * points at both. */
struct emu_core_vcpu {
	struct emu_cpu cpu;
	struct emu_block *blocks;       /* EMU_BLOCK_SLOTS */
	struct emu_block scratch;       /* a block that straddles two pages */
	uint64_t stat_lookups, stat_decodes;
};

static inline struct emu_core_vcpu *emu_core_of(struct emu_cpu *cpu)
{
	return (struct emu_core_vcpu *)cpu;
}

/* The block starting at cpu->rip, decoded if absent or stale; NULL with
 * *err set when the code is not in RAM.  May raise a fetch fault. */
struct emu_block *emu_block_lookup(struct emu_cpu *cpu, const char **err);
int emu_blocks_alloc(struct emu_core_vcpu *cv);
void emu_blocks_free(struct emu_core_vcpu *cv);
void emu_blocks_flush(struct emu_core_vcpu *cv);

#endif
