/* Decoded-block cache (docs/architecture.md "Decode once"): one per VM,
 * shared by its vCPUs, a direct-mapped table of blocks keyed by the
 * guest-physical address of a block's first byte and the CPU mode,
 * pointing into an append-only arena of variable-length blocks.
 *
 * Lookups take no lock: a slot is an atomic pointer, and a block is
 * immutable once published, apart from its links (below).  Insertion
 * takes the cache's lock.  Writes to code only bump page generations
 * (emu_vm.page_gen), which make stale blocks miss.  The arena is bounded
 * (vm->code_cache_bytes); when full it is flushed whole, and its memory is
 * reused only once every vCPU has passed a run-loop boundary since the
 * flush (the cache epoch), so that no vCPU still holds a pointer into it.
 *
 * With code generation (--jit on) the cache holds the VM's host code too
 * (jit/jit.h), one translation per block, kept in the block: it lives
 * and dies with the block, and a flush of either empties both.
 *
 * Blocks are chained: a block remembers the blocks that followed it, with
 * the fetch context they were found under, so that the run loop goes from
 * block to block without a lookup while that context holds.  Any vCPU may
 * add a link to a shared block: a link is checked against the reading
 * vCPU's own context, and a per-block sequence count lets readers see
 * whole links only. */
#ifndef VESSEL_CPU_EMU_CORE_BLOCK_H
#define VESSEL_CPU_EMU_CORE_BLOCK_H

#include "cpu/emu/emu.h"
#include "cpu/emu/jit/jit.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stddef.h>

#define EMU_BLOCK_MAX_INSNS 32
/* A Linux boot runs some 200k distinct blocks, most of them once (init
 * code): 64k slots and a 128 MiB arena keep re-decoding to ~280k blocks. */
#define EMU_BLOCK_SLOTS 65536              /* power of two */
#define EMU_BLOCK_ARENA (128ull << 20)     /* default bytes of decoded blocks per VM; reserved, touched as used */
#define EMU_BLOCK_ARENA_MIN (64ull << 10)  /* the least an arena may be: a few dozen blocks */
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
	bool cacheable;        /* false: decoded for one use (straddles a page, or the cache is draining) */
	uint8_t next_link;     /* link slot to overwrite next */
	uint8_t decoder;       /* the vCPU that decoded it (emu_core_vcpu.id) */
	/* Its translation (jit/jit.h, NULL: none yet), published under the
	 * cache's lock by the vCPU jit_maker; jit_runs counts the block's
	 * runs until then (racy increments: a hint); jit_shared: counted as
	 * run by another vCPU than its maker (emu_core_vcpu.jit_shared). */
	uint8_t jit_maker;
	_Atomic uint8_t jit_shared;
	uint32_t jit_runs;
	_Atomic emu_jit_code jit_fn;
	/* Odd while a vCPU rewrites a link: readers that see it change
	 * ignore what they read (a seqlock over link[] and next_link). */
	_Atomic uint32_t link_seq;
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
	/* For translated code's step to the next block (core/cpu.c
	 * jit_next), with nothing of the block to read: its translation's
	 * body (NULL: unknown yet), its page and that page's generation. */
	void *body;
	uint64_t page;
	uint32_t gen;
};
#define EMU_JUMP_CACHE 4096                /* power of two */

/* The VM's block cache (struct emu_vm.blocks). */
struct emu_block_cache {
	_Atomic(struct emu_block *) *slots;   /* EMU_BLOCK_SLOTS; the block last decoded into each, or NULL */
	uint8_t *arena;                       /* size bytes reserved, committed as used */
	size_t size;
	pthread_mutex_t lock;                 /* insertion, flush, the reader list */
	size_t used;                          /* under lock */
	size_t high_water;                    /* the most of the arena ever used */
	/* Bumped by each flush.  A flush empties the slots at once; the
	 * arena is reused once every reader has seen the new epoch
	 * (draining until then: new blocks are decoded for one use). */
	_Atomic uint64_t epoch;
	struct emu_vm *evm;                   /* whose vCPUs' chain gates a flush closes */
	bool draining;
	_Atomic uint64_t *readers[MACHINE_MAX_CPUS];   /* each vCPU's seen epoch (EMU_BLOCKS_IDLE: outside its run loop) */
	unsigned n_readers;
	/* Counters (`vessel ctl stats`), under lock except lookups. */
	uint64_t blocks;                      /* decoded and inserted */
	uint64_t uncached;                    /* decoded for one use while draining */
	uint64_t flushes;                     /* full flushes for want of room (evictions) */
	/* The VM's host code (jit/jit.h, owner_flushes), NULL with --jit
	 * off: translated under lock; its memory is reused with the arena's
	 * (try_reclaim), when no vCPU can run the old code any more.  A
	 * full code cache flushes the whole cache (counted in jit->flushes). */
	struct emu_jit *jit;
};
#define EMU_BLOCKS_IDLE (~0ull)

/* The core's per-vCPU state: struct emu_cpu first, so that vcpu->accel
 * points at both. */
struct emu_core_vcpu {
	struct emu_cpu cpu;
	struct emu_block_cache *cache;  /* the VM's */
	uint64_t epoch;                 /* the cache epoch this vCPU's pointers (jumps[]) belong to */
	_Atomic uint64_t seen;          /* published: epoch while in the run loop, else EMU_BLOCKS_IDLE */
	uint8_t id;                     /* written into the blocks this vCPU decodes */
	uint64_t decoded;               /* blocks this vCPU decoded and published */
	uint64_t shared_hits;           /* lookups that found a block another vCPU decoded */
	struct emu_block *staging;      /* a block being decoded, before it is published */
	struct emu_block *scratch;      /* a block that straddles two pages (one instruction) */
	struct emu_jump_entry *jumps;   /* EMU_JUMP_CACHE */
	/* Code generation (jit/jit.h): the VM's code cache (cache->jit),
	 * NULL with --jit off; a block is translated at its jit_hot-th run
	 * (on any vCPU).  jit_shared: translations this vCPU ran that
	 * another had made, each counted once. */
	struct emu_jit *jit;
	unsigned jit_hot;
	uint64_t jit_shared;
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

static inline struct emu_jump_entry *emu_jump_slot(struct emu_core_vcpu *cv, uint64_t lin)
{
	return &cv->jumps[(lin ^ lin >> 12) & (EMU_JUMP_CACHE - 1)];
}

/* Whether j holds the block at (lin, key), its page unwritten since. */
static inline bool emu_jump_hit(const struct emu_cpu *cpu, const struct emu_jump_entry *j, uint64_t lin,
				uint64_t key)
{
	return j->lin == lin && j->key == key && j->to &&
	       j->gen == atomic_load_explicit(&cpu->evm->page_gen[j->page], memory_order_acquire);
}

/* What, besides the linear address, decides which code a fetch reaches:
 * the address space and its TLB contents (asid, fetch_epoch), the
 * privilege its fetch translations were made for, and the decoding mode. */
static inline uint64_t emu_chain_key(const struct emu_cpu *cpu)
{
	return cpu->asid | (uint64_t)cpu->cpl << 11 | (uint64_t)cpu->mode << 13 | cpu->fetch_epoch << 16;
}

/* The block to run after b (cpu->rip is where b left off): a link of b
 * when its context still holds (emu_block_linked), else
 * emu_block_link_new().  NULL: let the run loop look up (and report)
 * itself.  The links are read under b's sequence count: another vCPU may
 * be rewriting one. */
static inline struct emu_block *emu_block_linked(struct emu_cpu *cpu, struct emu_block *b, uint64_t lin,
						  uint64_t key)
{
	uint32_t seq = atomic_load_explicit(&b->link_seq, memory_order_acquire);
	for (unsigned i = 0; i < EMU_BLOCK_CHAINS; i++) {
		const struct emu_block_link *l = &b->link[i];
		if (__atomic_load_n(&l->lin, __ATOMIC_RELAXED) == lin && __atomic_load_n(&l->key, __ATOMIC_RELAXED) == key) {
			struct emu_block *to = __atomic_load_n(&l->to, __ATOMIC_RELAXED);
			atomic_thread_fence(memory_order_acquire);
			/* Whole: seq even (no writer) and unchanged. */
			uint32_t torn = (seq & 1) | (atomic_load_explicit(&b->link_seq, memory_order_relaxed) ^ seq);
			if (__builtin_expect(!torn && to->gen == __atomic_load_n((uint32_t *)&cpu->evm->page_gen[to->page],
										__ATOMIC_ACQUIRE), 1))
				return to;
			break;
		}
	}
	return NULL;
}

static inline struct emu_block *emu_block_next(struct emu_cpu *cpu, struct emu_block *b)
{
	uint64_t lin = emu_fetch_linear(cpu, cpu->rip), key = emu_chain_key(cpu);
	struct emu_block *to = emu_block_linked(cpu, b, lin, key);
	return to ? to : emu_block_link_new(cpu, b, lin, key);
}

/* The block at (lin, key) that b's links or the vCPU's jump cache know,
 * or NULL where only a lookup (which may decode or fault) can tell. */
static inline struct emu_block *emu_block_known_next(struct emu_cpu *cpu, struct emu_block *b, uint64_t lin,
						     uint64_t key)
{
	struct emu_block *to = emu_block_linked(cpu, b, lin, key);
	if (to)
		return to;
	const struct emu_jump_entry *j = emu_jump_slot(emu_core_of(cpu), lin);
	return emu_jump_hit(cpu, j, lin, key) ? j->to : NULL;
}
/* Per VM: the cache of vm->code_cache_bytes (0: EMU_BLOCK_ARENA). */
int emu_block_cache_init(struct emu_vm *evm, uint64_t bytes);
void emu_block_cache_destroy(struct emu_vm *evm);
/* Empties the VM's cache (counted as an eviction); its memory is reused
 * once every vCPU has passed a run-loop boundary. */
void emu_block_cache_flush(struct emu_vm *evm);
/* Per vCPU: its staging and jump cache, its place among the readers
 * and its chain gate. */
int emu_blocks_alloc(struct emu_core_vcpu *cv, struct emu_vm *evm, unsigned id);
void emu_blocks_free(struct emu_core_vcpu *cv);
/* The run loop's boundaries: entering it (the vCPU may hold block
 * pointers from then on), leaving it, and between two blocks looked up
 * afresh, where it holds none. */
void emu_blocks_enter(struct emu_core_vcpu *cv);
void emu_blocks_leave(struct emu_core_vcpu *cv);
void emu_blocks_sync_slow(struct emu_core_vcpu *cv);
/* b's translation in the VM's code cache, made now unless another vCPU
 * made it meanwhile; NULL if it cannot be made: the cache is draining,
 * or was full and has just been flushed (b belongs to the old epoch). */
emu_jit_code emu_block_translate(struct emu_core_vcpu *cv, struct emu_block *b);
static inline bool emu_blocks_stale(const struct emu_core_vcpu *cv)
{
	return __builtin_expect(atomic_load_explicit(&cv->cache->epoch, memory_order_relaxed) != cv->epoch, 0);
}
static inline void emu_blocks_sync(struct emu_core_vcpu *cv)
{
	if (emu_blocks_stale(cv))
		emu_blocks_sync_slow(cv);
}

#endif
