/* Decoded-block cache and self-modifying-code tracking (docs/architecture.md
 * "Decode once", "Self-modifying code").  A block is a run of decoded
 * instructions from one guest page ending at a control transfer, a mode
 * or interrupt-flag change, the page end, or EMU_BLOCK_MAX_INSNS.  Its
 * page is marked as a code page; a guest write there (the system module's
 * write slow path) calls emu_blocks_invalidate_page(), which bumps the
 * page's generation so that every vCPU decodes the page again. */
#include "cpu/emu/core/block.h"

#include "machine/memory.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

int emu_block_cache_init(struct emu_vm *evm, uint64_t bytes)
{
	struct emu_block_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (!bytes)
		bytes = EMU_BLOCK_ARENA;
	if (bytes < EMU_BLOCK_ARENA_MIN)
		bytes = EMU_BLOCK_ARENA_MIN;
	c->size = (size_t)bytes;
	c->slots = aligned_alloc(64, sizeof(*c->slots) * EMU_BLOCK_SLOTS);
	/* Reserved, not committed: only the pages blocks are decoded into
	 * cost memory. */
	void *arena = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	c->arena = arena == MAP_FAILED ? NULL : arena;
	/* Blocks are decoded into it in order: huge pages take one fault
	 * per 2 MiB instead of one per 4 KiB (a hint; refused, 4 KiB). */
	if (c->arena)
		madvise(c->arena, c->size, MADV_HUGEPAGE);
	if (!c->slots || !c->arena) {
		free(c->slots);
		if (c->arena)
			munmap(c->arena, c->size);
		free(c);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < EMU_BLOCK_SLOTS; i++)
		atomic_init(&c->slots[i], NULL);
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->epoch, 0);
	c->evm = evm;
	evm->blocks = c;
	return 0;
}

void emu_block_cache_destroy(struct emu_vm *evm)
{
	struct emu_block_cache *c = evm->blocks;
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	emu_jit_destroy(c->jit);
	free(c->slots);
	munmap(c->arena, c->size);
	free(c);
	evm->blocks = NULL;
}

/* Under c->lock: the arena is free again once no reader can hold a
 * pointer into it, i.e. each is outside its run loop or has seen the
 * epoch of the flush. */
static void try_reclaim(struct emu_block_cache *c)
{
	uint64_t e = atomic_load_explicit(&c->epoch, memory_order_seq_cst);
	for (unsigned i = 0; i < c->n_readers; i++) {
		uint64_t seen = atomic_load_explicit(c->readers[i], memory_order_seq_cst);
		if (seen != e && seen != EMU_BLOCKS_IDLE)
			return;
	}
	c->used = 0;
	c->draining = false;
	/* No vCPU runs the old translations either: each is outside its
	 * run loop or has left the old blocks, and with them their code. */
	if (c->jit)
		emu_jit_reset(c->jit);
}

static void flush_locked(struct emu_block_cache *c)
{
	for (unsigned i = 0; i < EMU_BLOCK_SLOTS; i++)
		atomic_store_explicit(&c->slots[i], NULL, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->epoch, 1, memory_order_seq_cst);
	/* After the epoch: translated code running on goes back to the loop
	 * at its next direct jump, where it finds the epoch moved. */
	emu_close_chain_gates(c->evm);
	c->draining = true;
	c->flushes++;
	try_reclaim(c);
}

void emu_block_cache_flush(struct emu_vm *evm)
{
	struct emu_block_cache *c = evm->blocks;
	pthread_mutex_lock(&c->lock);
	flush_locked(c);
	pthread_mutex_unlock(&c->lock);
}

_Static_assert(EMU_CHAIN_GATES >= MACHINE_MAX_CPUS, "a chain gate for every vCPU");

int emu_blocks_alloc(struct emu_core_vcpu *cv, struct emu_vm *evm, unsigned id)
{
	struct emu_block_cache *c = evm->blocks;
	const size_t most = sizeof(struct emu_block) + EMU_BLOCK_MAX_INSNS * sizeof(struct emu_insn);
	cv->cache = c;
	cv->id = (uint8_t)id;
	cv->staging = aligned_alloc(64, (most + 63) & ~(size_t)63);
	cv->scratch = malloc(sizeof(struct emu_block) + sizeof(struct emu_insn));
	cv->jumps = calloc(EMU_JUMP_CACHE, sizeof(*cv->jumps));
	atomic_init(&cv->seen, EMU_BLOCKS_IDLE);
	pthread_mutex_lock(&c->lock);
	bool room = c->n_readers < MACHINE_MAX_CPUS && id < MACHINE_MAX_CPUS;
	if (room) {
		c->readers[c->n_readers++] = &cv->seen;
		__atomic_store_n(&evm->chain_gates[id], &cv->cpu.chain_stop, __ATOMIC_RELEASE);
	}
	cv->epoch = atomic_load(&c->epoch);
	pthread_mutex_unlock(&c->lock);
	if (!cv->staging || !cv->scratch || !cv->jumps || !room) {
		emu_blocks_free(cv);
		return -ENOMEM;
	}
	return 0;
}

void emu_blocks_free(struct emu_core_vcpu *cv)
{
	struct emu_block_cache *c = cv->cache;
	if (c) {
		pthread_mutex_lock(&c->lock);
		for (unsigned i = 0; i < c->n_readers; i++) {
			if (c->readers[i] == &cv->seen) {
				c->readers[i] = c->readers[--c->n_readers];
				break;
			}
		}
		if (__atomic_load_n(&c->evm->chain_gates[cv->id], __ATOMIC_RELAXED) == &cv->cpu.chain_stop)
			__atomic_store_n(&c->evm->chain_gates[cv->id], NULL, __ATOMIC_RELEASE);
		if (c->draining)
			try_reclaim(c);
		pthread_mutex_unlock(&c->lock);
	}
	free(cv->staging);
	free(cv->scratch);
	free(cv->jumps);
	cv->staging = NULL;
	cv->scratch = NULL;
	cv->jumps = NULL;
	cv->cache = NULL;
}

/* Publishes the epoch this vCPU works in.  The store and the second read
 * are sequentially consistent, as the flusher's bump and scan are: either
 * the flusher sees this vCPU in the old epoch and waits, or this vCPU
 * sees the new one and drops its pointers (Dekker's pattern). */
static void publish_epoch(struct emu_core_vcpu *cv)
{
	struct emu_block_cache *c = cv->cache;
	uint64_t e;
	do {
		e = atomic_load_explicit(&c->epoch, memory_order_seq_cst);
		atomic_store_explicit(&cv->seen, e, memory_order_seq_cst);
	} while (atomic_load_explicit(&c->epoch, memory_order_seq_cst) != e);
	if (e != cv->epoch) {
		/* Its blocks may be reused: forget them.  Links die with the
		 * blocks, since a link only points at a block of its epoch. */
		memset(cv->jumps, 0, sizeof(*cv->jumps) * EMU_JUMP_CACHE);
		cv->epoch = e;
		pthread_mutex_lock(&c->lock);
		if (c->draining)
			try_reclaim(c);
		pthread_mutex_unlock(&c->lock);
	}
}

void emu_blocks_enter(struct emu_core_vcpu *cv)
{
	publish_epoch(cv);
}

void emu_blocks_leave(struct emu_core_vcpu *cv)
{
	atomic_store_explicit(&cv->seen, EMU_BLOCKS_IDLE, memory_order_release);
}

void emu_blocks_sync_slow(struct emu_core_vcpu *cv)
{
	publish_epoch(cv);
}

void emu_blocks_invalidate_page(struct emu_vm *evm, uint64_t gpa)
{
	uint64_t p = gpa >> 12;
	if (!evm || p >= evm->n_pages)
		return;
	atomic_fetch_add_explicit(&evm->page_gen[p], 1, memory_order_release);
	/* Writes go fast again until code is decoded from the page anew. */
	atomic_store_explicit(&evm->code_page[p], 0, memory_order_relaxed);
}

static void mark_code_page(struct emu_cpu *cpu, uint64_t page)
{
	struct emu_vm *evm = cpu->evm;
	if (page >= evm->n_pages || atomic_load_explicit(&evm->code_page[page], memory_order_relaxed))
		return;
	atomic_store_explicit(&evm->code_page[page], 1, memory_order_relaxed);
	/* Every vCPU makes write translations made before the mark slow: the
	 * others at their next block, this one now, since the block decoded
	 * here runs next and may store into its own page. */
	emu_write_epoch_move(evm);
	emu_tlb_sync_epoch_slow(cpu);
}

static inline unsigned slot_of(uint64_t gpa, unsigned mode)
{
	uint64_t h = gpa ^ (gpa >> 12) ^ ((uint64_t)mode << 7);
	return (unsigned)(h * 0x9e3779b1u >> 7) & (EMU_BLOCK_SLOTS - 1);
}

/* An instruction crossing into the next page: decoded from both pages
 * into the scratch block, which is never cached. */
static struct emu_block *decode_straddling(struct emu_cpu *cpu, uint64_t lin, uint64_t gpa, const char **err)
{
	struct emu_core_vcpu *cv = emu_core_of(cpu);
	uint8_t buf[16];
	unsigned first = 4096 - (unsigned)(gpa & 4095);
	const uint8_t *p = gmem_ptr(cpu->mem, gpa, first);
	if (!p) {
		*err = "instruction fetch outside RAM";
		return NULL;
	}
	memcpy(buf, p, first);
	uint64_t gpa2 = emu_translate_fetch(cpu, (lin + first) & (cpu->mode == EMU_MODE_LONG64 ? ~0ull : 0xffffffffull));
	const uint8_t *p2 = gmem_ptr(cpu->mem, gpa2, 16 - first);
	if (!p2) {
		*err = "instruction fetch outside RAM";
		return NULL;
	}
	memcpy(buf + first, p2, 16 - first);
	struct emu_block *b = cv->scratch;
	emu_decode(cpu, buf, 15, &b->insn[0]);
	b->gpa = gpa;
	b->page = gpa >> 12;
	b->mode = cpu->mode;
	b->n = 1;
	b->cacheable = false;
	atomic_init(&b->jit_fn, NULL);
	/* No link: emu_block_next() reads them all the same. */
	atomic_init(&b->link_seq, 0);
	for (unsigned i = 0; i < EMU_BLOCK_CHAINS; i++)
		b->link[i] = (struct emu_block_link){ .lin = ~0ull };
	return b;
}

/* Linear -> guest-physical for a fetch: the system module's fetch TLB
 * entry when it holds the page (the inline hit path, as emu_read has),
 * else its full translation, which may fault. */
static inline uint64_t fetch_gpa(struct emu_cpu *cpu, uint64_t lin)
{
	if (!(cpu->cr0 & X86_CR0_PG))
		return (cpu->efer & X86_EFER_LMA) ? lin : (uint32_t)lin;
	unsigned idx = cpu->cpl == 3 ? EMU_MMU_USER : EMU_MMU_SUP;
	const struct emu_tlb_entry *e = &cpu->tlb[idx][emu_tlb_index(cpu, lin)];
	if (__builtin_expect((e->tag_fetch & ~EMU_TLB_MMIO) == ((lin & ~0xfffull) | cpu->asid), 1))
		return e->gpa | (lin & 0xfff);
	return emu_translate_fetch(cpu, lin);
}

/* Publishes the block decoded in cv->staging: a copy in the arena, or,
 * while a flush drains or when another vCPU published the same block
 * meanwhile, that one or the staging block for one use. */
static struct emu_block *publish(struct emu_core_vcpu *cv, _Atomic(struct emu_block *) *slot, size_t size)
{
	struct emu_block_cache *c = cv->cache;
	struct emu_block *b = cv->staging;
	pthread_mutex_lock(&c->lock);
	struct emu_block *had = atomic_load_explicit(slot, memory_order_relaxed);
	if (had && had->gpa == b->gpa && had->mode == b->mode && had->gen == b->gen) {
		pthread_mutex_unlock(&c->lock);
		return had;
	}
	if (c->draining)
		try_reclaim(c);
	if (!c->draining && c->used + size > c->size)
		flush_locked(c);
	if (c->draining) {
		c->uncached++;
		pthread_mutex_unlock(&c->lock);
		b->cacheable = false;
		/* Back to the run loop's top after this block, where this vCPU
		 * holds no block and follows the flush, so that the arena is
		 * free again soon. */
		cv->cpu.stop_block = true;
		return b;
	}
	struct emu_block *n = (struct emu_block *)(c->arena + c->used);
	memcpy(n, b, size);
	c->used += size;
	if (c->used > c->high_water)
		c->high_water = c->used;
	c->blocks++;
	atomic_store_explicit(slot, n, memory_order_release);
	pthread_mutex_unlock(&c->lock);
	cv->decoded++;
	return n;
}

struct emu_block *emu_block_lookup(struct emu_cpu *cpu, const char **err)
{
	struct emu_core_vcpu *cv = emu_core_of(cpu);
	struct emu_vm *evm = cpu->evm;
	uint64_t lin = emu_fetch_linear(cpu, cpu->rip);
	uint64_t gpa = fetch_gpa(cpu, lin);
	uint64_t page = gpa >> 12;
	_Atomic(struct emu_block *) *slot = &cv->cache->slots[slot_of(gpa, cpu->mode)];
	if (__builtin_expect(page >= evm->n_pages, 0)) {
		*err = "instruction fetch outside RAM";
		return NULL;
	}
	uint32_t gen = atomic_load_explicit(&evm->page_gen[page], memory_order_acquire);
	struct emu_block *hit = atomic_load_explicit(slot, memory_order_acquire);
	if (__builtin_expect(hit && hit->gpa == gpa && hit->mode == cpu->mode && hit->gen == gen, 1)) {
		if (hit->decoder != cv->id)
			cv->shared_hits++;
		return hit;
	}

	/* Decode a new block.  The generation is read before the bytes so
	 * that a concurrent write makes the block stale, never missed. */
	unsigned off = (unsigned)(gpa & 4095), avail = 4096 - off;
	const uint8_t *p = gmem_ptr(cpu->mem, gpa, avail);
	if (!p) {
		*err = "instruction fetch outside RAM";
		return NULL;
	}
	mark_code_page(cpu, page);
	struct emu_block *b = cv->staging;
	unsigned n = 0, pos = 0;
	while (n < EMU_BLOCK_MAX_INSNS && pos < avail) {
		struct emu_insn *in = &b->insn[n];
		int rc = emu_decode(cpu, p + pos, avail - pos, in);
		if (rc == -EAGAIN) {
			if (n == 0)
				return decode_straddling(cpu, lin, gpa, err);
			break;
		}
		n++;
		pos += in->len;
		if (emu_insn_ends_block(in))
			break;
	}
	b->gpa = gpa;
	b->page = page;
	b->gen = gen;
	b->mode = cpu->mode;
	b->n = (uint8_t)n;
	b->cacheable = true;
	b->next_link = 0;
	b->decoder = cv->id;
	b->jit_maker = 0;
	atomic_init(&b->jit_shared, 0);
	b->jit_runs = 0;
	atomic_init(&b->jit_fn, NULL);
	atomic_init(&b->link_seq, 0);
	for (unsigned i = 0; i < EMU_BLOCK_CHAINS; i++)
		b->link[i] = (struct emu_block_link){ .lin = ~0ull };
	return publish(cv, slot, (sizeof(*b) + n * sizeof(b->insn[0]) + 63) & ~(size_t)63);
}

/* Adds a link to b unless another vCPU is writing one of b's: the
 * sequence count goes odd while a link changes. */
static void link_add(struct emu_block *b, uint64_t lin, uint64_t key, struct emu_block *to)
{
	uint32_t seq = atomic_load_explicit(&b->link_seq, memory_order_relaxed);
	if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&b->link_seq, &seq, seq + 1, memory_order_relaxed,
								  memory_order_relaxed))
		return;
	atomic_thread_fence(memory_order_release);
	struct emu_block_link *l = &b->link[b->next_link];
	__atomic_store_n(&l->lin, lin, __ATOMIC_RELAXED);
	__atomic_store_n(&l->key, key, __ATOMIC_RELAXED);
	__atomic_store_n(&l->to, to, __ATOMIC_RELAXED);
	b->next_link = (uint8_t)((b->next_link + 1) % EMU_BLOCK_CHAINS);
	atomic_store_explicit(&b->link_seq, seq + 2, memory_order_release);
}

struct emu_block *emu_block_link_new(struct emu_cpu *cpu, struct emu_block *b, uint64_t lin, uint64_t key)
{
	struct emu_core_vcpu *cv = emu_core_of(cpu);
	struct emu_jump_entry *j = emu_jump_slot(cv, lin);
	struct emu_block *to = j->to;
	/* The lookup below may decode into the staging block that b is. */
	bool linkable = b->cacheable && b != cv->staging;
	if (!emu_jump_hit(cpu, j, lin, key)) {
		const char *why = NULL;
		to = emu_block_lookup(cpu, &why);
		/* A block decoded for one use is linked nowhere; a lookup that
		 * flushed the cache left b in the old epoch, which no link of
		 * the new one may reach. */
		if (!to || !to->cacheable || emu_blocks_stale(cv))
			return to;
		*j = (struct emu_jump_entry){ .lin = lin, .key = key, .to = to, .page = to->page, .gen = to->gen };
	}
	if (linkable)
		link_add(b, lin, key, to);
	return to;
}

emu_jit_code emu_block_translate(struct emu_core_vcpu *cv, struct emu_block *b)
{
	struct emu_block_cache *c = cv->cache;
	pthread_mutex_lock(&c->lock);
	emu_jit_code fn = atomic_load_explicit(&b->jit_fn, memory_order_relaxed);
	/* Not draining: b belongs to the current epoch (a vCPU holding a
	 * block of the old one keeps the drain going), and so does the code
	 * cache's memory. */
	if (!fn && !c->draining) {
		fn = emu_jit_translate(c->jit, b->insn, b->n, b->mode, (int)(b->gpa & 4095), b);
		if (fn) {
			b->jit_maker = cv->id;
			atomic_store_explicit(&b->jit_fn, fn, memory_order_release);
		} else if (c->jit->full) {
			/* Evicted with the decoded blocks it was made from:
			 * the code is reused once no vCPU can run it. */
			__atomic_store_n(&c->jit->flushes, c->jit->flushes + 1, __ATOMIC_RELAXED);
			flush_locked(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return fn;
}
