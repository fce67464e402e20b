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
#include <stdatomic.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

int emu_blocks_alloc(struct emu_core_vcpu *cv)
{
	cv->slots = aligned_alloc(64, sizeof(*cv->slots) * EMU_BLOCK_SLOTS);
	cv->scratch = malloc(sizeof(struct emu_block) + sizeof(struct emu_insn));
	cv->jumps = malloc(sizeof(*cv->jumps) * EMU_JUMP_CACHE);
	/* Reserved, not committed: only the pages blocks are decoded into
	 * cost memory. */
	void *arena = mmap(NULL, EMU_BLOCK_ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			   -1, 0);
	cv->arena = arena == MAP_FAILED ? NULL : arena;
	if (!cv->slots || !cv->scratch || !cv->jumps || !cv->arena) {
		emu_blocks_free(cv);
		return -ENOMEM;
	}
	emu_blocks_flush(cv);
	return 0;
}

void emu_blocks_free(struct emu_core_vcpu *cv)
{
	free(cv->slots);
	free(cv->scratch);
	free(cv->jumps);
	if (cv->arena)
		munmap(cv->arena, EMU_BLOCK_ARENA);
	cv->slots = NULL;
	cv->scratch = NULL;
	cv->jumps = NULL;
	cv->arena = NULL;
}

/* Forgets every block; links die with them, since a link only ever points
 * at a block decoded after the last flush. */
void emu_blocks_flush(struct emu_core_vcpu *cv)
{
	memset(cv->slots, 0, sizeof(*cv->slots) * EMU_BLOCK_SLOTS);
	memset(cv->jumps, 0, sizeof(*cv->jumps) * EMU_JUMP_CACHE);
	cv->arena_used = 0;
	cv->arena_flushes++;
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
	atomic_fetch_add_explicit(&evm->write_epoch, 1, memory_order_acq_rel);
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
	b->jit = NULL;
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

/* Room for a block of the longest length at the arena's end. */
static struct emu_block *arena_reserve(struct emu_core_vcpu *cv)
{
	const size_t most = sizeof(struct emu_block) + EMU_BLOCK_MAX_INSNS * sizeof(struct emu_insn);
	if (cv->arena_used + most > EMU_BLOCK_ARENA)
		emu_blocks_flush(cv);
	return (struct emu_block *)(cv->arena + cv->arena_used);
}

struct emu_block *emu_block_lookup(struct emu_cpu *cpu, const char **err)
{
	struct emu_core_vcpu *cv = emu_core_of(cpu);
	struct emu_vm *evm = cpu->evm;
	uint64_t lin = emu_fetch_linear(cpu, cpu->rip);
	uint64_t gpa = fetch_gpa(cpu, lin);
	uint64_t page = gpa >> 12;
	struct emu_block **slot = &cv->slots[slot_of(gpa, cpu->mode)];
	if (__builtin_expect(page >= evm->n_pages, 0)) {
		*err = "instruction fetch outside RAM";
		return NULL;
	}
	uint32_t gen = atomic_load_explicit(&evm->page_gen[page], memory_order_acquire);
	struct emu_block *hit = *slot;
	if (__builtin_expect(hit && hit->gpa == gpa && hit->mode == cpu->mode && hit->gen == gen, 1))
		return hit;

	/* Decode a new block.  The generation is read before the bytes so
	 * that a concurrent write makes the block stale, never missed. */
	unsigned off = (unsigned)(gpa & 4095), avail = 4096 - off;
	const uint8_t *p = gmem_ptr(cpu->mem, gpa, avail);
	if (!p) {
		*err = "instruction fetch outside RAM";
		return NULL;
	}
	mark_code_page(cpu, page);
	struct emu_block *b = arena_reserve(cv);
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
	b->runs = 0;
	b->jit = NULL;
	for (unsigned i = 0; i < EMU_BLOCK_CHAINS; i++)
		b->link[i] = (struct emu_block_link){ .lin = ~0ull };
	cv->arena_used += (sizeof(*b) + n * sizeof(b->insn[0]) + 63) & ~(size_t)63;
	*slot = b;
	return b;
}

struct emu_block *emu_block_link_new(struct emu_cpu *cpu, struct emu_block *b, uint64_t lin, uint64_t key)
{
	struct emu_core_vcpu *cv = emu_core_of(cpu);
	struct emu_jump_entry *j = &cv->jumps[(lin ^ lin >> 12) & (EMU_JUMP_CACHE - 1)];
	struct emu_block *to = j->to;
	if (!(j->lin == lin && j->key == key && to &&
	      to->gen == atomic_load_explicit(&cpu->evm->page_gen[to->page], memory_order_acquire))) {
		const char *why = NULL;
		uint64_t flushes = cv->arena_flushes;
		to = emu_block_lookup(cpu, &why);
		/* A lookup that flushed the arena took b with it; a straddling
		 * block is decoded for one use. */
		if (!to || !to->cacheable || cv->arena_flushes != flushes)
			return to;
		*j = (struct emu_jump_entry){ .lin = lin, .key = key, .to = to };
	}
	if (b->cacheable) {
		b->link[b->next_link] = (struct emu_block_link){ .lin = lin, .key = key, .to = to };
		b->next_link = (uint8_t)((b->next_link + 1) % EMU_BLOCK_CHAINS);
	}
	return to;
}
