/* Decoded-block cache (docs/architecture.md "Decode once"): per vCPU, a
 * direct-mapped table of blocks keyed by the guest-physical address of a
 * block's first byte and the CPU mode, pointing into an append-only arena
 * of variable-length blocks.  No locking: each vCPU owns its cache; other
 * vCPUs only bump page generations (emu_vm.page_gen), which make stale
 * blocks miss.
 *
 * Blocks are chained: a block remembers the blocks that followed it, with
 * the fetch context they were found under, so that the run loop goes from
 * block to block without a lookup while that context holds. */
#ifndef VESSEL_CPU_EMU_CORE_BLOCK_H
#define VESSEL_CPU_EMU_CORE_BLOCK_H

#include "cpu/emu/emu.h"

#include <stddef.h>

#define EMU_BLOCK_MAX_INSNS 32
/* A Linux boot runs some 200k distinct blocks, most of them once (init
 * code): 64k slots and a 128 MiB arena keep re-decoding to ~280k blocks. */
#define EMU_BLOCK_SLOTS 65536              /* power of two */
#define EMU_BLOCK_ARENA (128u << 20)       /* bytes of decoded blocks per vCPU; reserved, touched as used */
#define EMU_BLOCK_CHAINS 4                 /* a branch's two ways, and more for returns and indirect jumps */

/* A successor found after a block: valid while the fetch context (linear
 * address and chain key, emu_chain_key()) is the same. */
struct emu_block_link {
	uint64_t lin;
	uint64_t key;
	struct emu_block *to;
};

struct emu_block {
	uint64_t gpa;          /* first byte */
	uint64_t page;         /* gpa >> 12 */
	uint32_t gen;          /* page_gen[page] when decoded */
	uint8_t mode;
	uint8_t n;
	bool cacheable;        /* false: straddles a page, decoded for one use */
	uint8_t next_link;     /* link slot to overwrite next */
	/* Code generation (jit/jit.h): runs counts the block's runs until it
	 * is translated; jit is its host code, valid while jit_epoch is the
	 * code cache's epoch. */
	uint32_t runs;
	uint32_t jit_epoch;
	void (*jit)(struct emu_cpu *cpu);
	struct emu_block_link link[EMU_BLOCK_CHAINS];
	struct emu_insn insn[];
};

/* A recently entered block by linear address, for block exits whose
 * links miss (returns to many callers, indirect jumps): cheaper than a
 * lookup, which translates the address and reads the slot table. */
struct emu_jump_entry {
	uint64_t lin;
	uint64_t key;
	struct emu_block *to;
};
#define EMU_JUMP_CACHE 4096                /* power of two */

/* The core's per-vCPU state: struct emu_cpu first, so that vcpu->accel
 * points at both. */
struct emu_core_vcpu {
	struct emu_cpu cpu;
	/* The block last decoded into each slot (NULL: none); its header is
	 * the key, read anyway to run it, so the table stays small. */
	struct emu_block **slots;       /* EMU_BLOCK_SLOTS */
	uint8_t *arena;                 /* EMU_BLOCK_ARENA bytes */
	size_t arena_used;
	uint64_t arena_flushes;
	struct emu_block *scratch;      /* a block that straddles two pages (one instruction) */
	struct emu_jump_entry *jumps;   /* EMU_JUMP_CACHE */
	/* Code generation (jit/jit.h), NULL with --jit off; a block is
	 * translated at its jit_hot-th run. */
	struct emu_jit *jit;
	unsigned jit_hot;
};

static inline struct emu_core_vcpu *emu_core_of(struct emu_cpu *cpu)
{
	return (struct emu_core_vcpu *)cpu;
}

/* The block starting at cpu->rip, decoded if absent or stale; NULL with
 * *err set when the code is not in RAM.  May raise a fetch fault. */
struct emu_block *emu_block_lookup(struct emu_cpu *cpu, const char **err);
/* emu_block_lookup(), remembered as a link of b for (lin, key). */
struct emu_block *emu_block_link_new(struct emu_cpu *cpu, struct emu_block *b, uint64_t lin, uint64_t key);

/* What, besides the linear address, decides which code a fetch reaches:
 * the address space and its TLB contents (asid, fetch_epoch), the
 * privilege its fetch translations were made for, and the decoding mode. */
static inline uint64_t emu_chain_key(const struct emu_cpu *cpu)
{
	return cpu->asid | (uint64_t)cpu->cpl << 11 | (uint64_t)cpu->mode << 13 | cpu->fetch_epoch << 16;
}

/* The block to run after b (cpu->rip is where b left off): a link of b
 * when its context still holds, else emu_block_link_new().  NULL: let
 * the run loop look up (and report) itself. */
static inline struct emu_block *emu_block_next(struct emu_cpu *cpu, struct emu_block *b)
{
	uint64_t lin = emu_fetch_linear(cpu, cpu->rip), key = emu_chain_key(cpu);
	for (unsigned i = 0; i < EMU_BLOCK_CHAINS; i++) {
		const struct emu_block_link *l = &b->link[i];
		if (l->lin == lin && l->key == key) {
			struct emu_block *to = l->to;
			if (__builtin_expect(to->gen == __atomic_load_n((uint32_t *)&cpu->evm->page_gen[to->page],
									  __ATOMIC_ACQUIRE), 1))
				return to;
			break;
		}
	}
	return emu_block_link_new(cpu, b, lin, key);
}
int emu_blocks_alloc(struct emu_core_vcpu *cv);
void emu_blocks_free(struct emu_core_vcpu *cv);
void emu_blocks_flush(struct emu_core_vcpu *cv);

#endif
