/* Soft MMU: paging-structure walk, the software tagged TLB, and the
 * segmented/linear access slow paths (docs/architecture.md "Soft MMU: shadow
 * page tables as a software tagged TLB").
 *
 * The TLB is direct-mapped, one array per access privilege (enum
 * emu_mmu_idx), with separate read/write/fetch tags so that one walk
 * grants exactly the rights the paging structures give.  Tags carry an
 * address-space tag: up to EMU_ASID_SLOTS address spaces (CR3 values, or
 * PCIDs) keep their translations side by side.  A slot is flushed by
 * bumping its generation, which is part of the tag.
 *
 * Paging structures that back cached translations are watched: the walker
 * marks their pages in emu_vm.pt_page, with the root (CR3 page) whose walk
 * read them in emu_vm.pt_owner.  A guest write to a page of one root bumps
 * that root's generation (emu_vm.root_gen), a write to a page several
 * roots share (the kernel half) the generation of all, emu_vm.pt_gen; an
 * address space whose translations are older than either is purged when
 * it becomes current again, and the others keep theirs.  Within the
 * current address space a stale translation may be used until the guest
 * flushes it, which SDM vol. 3A 4.10.4.2 allows.
 *
 * Past emu_vm.pt_track_limit watched pages, a paging structure found for
 * the first time is not watched: the address space whose walk found it is
 * marked untracked and purged at its next switch, and the next flush of
 * every translation empties the watch and starts it anew.
 *
 * A watched page that is written PT_UNWATCH_WRITES times in a row without
 * a walk reading it is most likely no paging structure any more (a freed
 * page table reused as a kernel stack, say): it is unwatched, so that its
 * writes go fast again and stop aging every other address space.  The
 * writes that unwatched it already bumped pt_gen, so translations made
 * through it are dropped when their address space becomes current again;
 * a later walk through it watches it anew.
 *
 * A write translation of a watched page (or of a page that became a code
 * or page-table page after it was cached) keeps its tag with EMU_TLB_MMIO
 * set: the inline path misses, and the slow path uses it without a walk,
 * notes the write, and makes it fast again once nothing watches the page. */
#include "cpu/emu/system/sys.h"

#include "machine/machine.h"
#include "machine/memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PTE_P   (1ull << 0)
#define PTE_RW  (1ull << 1)
#define PTE_US  (1ull << 2)
#define PTE_A   (1ull << 5)
#define PTE_D   (1ull << 6)
#define PTE_PS  (1ull << 7)
#define PTE_G   (1ull << 8)
#define PTE_XD  (1ull << 63)
#define PTE_ADDR (EMU_PHYS_MASK & ~0xfffull)

#define PT_UNWATCH_WRITES 64

/* The root_gen index of an address space's root: its CR3 page. */
static inline unsigned root_index(uint64_t cr3)
{
	uint64_t r = (cr3 & 0x000ffffffffff000ull) >> 12;
	return (unsigned)((r * 0x9e3779b97f4a7c15ull) >> 40) & (EMU_ROOT_GENS - 1);
}

static inline uint64_t root_gen_of(const struct emu_vm *evm, uint64_t cr3)
{
	return atomic_load_explicit(&evm->root_gen[root_index(cr3)], memory_order_acquire);
}

static void pt_tracking_restart(struct emu_vm *evm);

#define GEN_LIMIT 127   /* tag 0x7ff (slot 15, gen 127) would collide with an empty tag */

static inline uint64_t asid_tag(unsigned slot, uint32_t gen)
{
	return slot | (uint64_t)gen << 4;
}

static void tlb_clear(struct emu_cpu *cpu)
{
	memset(cpu->tlb, 0xff, sizeof(cpu->tlb));
}

static void gtlb_clear(struct emu_cpu *cpu)
{
	memset(cpu->gtlb, 0xff, sizeof(cpu->gtlb));
}

static unsigned gtlb_index(uint64_t lin)
{
	return (unsigned)(lin >> 12) & (EMU_GTLB_SIZE - 1);
}

/* Drops every translation of every address space (SDM vol. 3A 4.10.4.1:
 * CR0.PG/WP, CR4.PGE/PAE/PSE/SMEP/SMAP/PCIDE changes). */
void emu_tlb_flush(struct emu_cpu *cpu, bool include_global)
{
	/* Per-address-space entries may hold copies of global translations:
	 * they all go; the global table only when asked. */
	tlb_clear(cpu);
	cpu->fetch_epoch++;
	cpu->tlb_full_flushes++;
	if (include_global)
		gtlb_clear(cpu);
	if (cpu->evm && atomic_load_explicit(&cpu->evm->pt_deferring, memory_order_relaxed))
		pt_tracking_restart(cpu->evm);
	for (unsigned i = 0; i < EMU_ASID_SLOTS; i++) {
		struct emu_asid_slot *a = &cpu->asids[i];
		a->gen = 0;
		a->untracked = false;
		/* Nothing is cached: fresh as of now. */
		if (cpu->evm) {
			a->pt_gen = atomic_load_explicit(&cpu->evm->pt_gen, memory_order_acquire);
			a->root_gen = root_gen_of(cpu->evm, a->key);
		}
	}
	cpu->asid = asid_tag(cpu->asid_cur, 0);
	cpu->tlb_salt = EMU_TLB_SALT(cpu->asid_cur);
	if (cpu->evm)
		cpu->write_epoch_seen = atomic_load_explicit(&cpu->evm->write_epoch, memory_order_relaxed);
}

static void slot_flush(struct emu_cpu *cpu, unsigned slot)
{
	struct emu_asid_slot *a = &cpu->asids[slot];
	cpu->fetch_epoch++;
	if (++a->gen >= GEN_LIMIT) {
		/* Generations exhausted: old tags of this slot could come back. */
		emu_tlb_flush(cpu, false);   /* per-space entries only: globals stay */
	}
	if (cpu->evm) {
		a->pt_gen = atomic_load_explicit(&cpu->evm->pt_gen, memory_order_acquire);
		a->root_gen = root_gen_of(cpu->evm, a->key);
	}
	a->untracked = false;
	if (slot == cpu->asid_cur)
		cpu->asid = asid_tag(slot, a->gen);
}

void emu_tlb_sync_epoch_slow(struct emu_cpu *cpu)
{
	/* A page became a code or page-table page: writes to it must take the
	 * slow path from now on, so no cached write translation may remain. */
	cpu->write_epoch_seen = atomic_load_explicit(&cpu->evm->write_epoch, memory_order_acquire);
	for (unsigned m = 0; m < EMU_MMU_COUNT; m++) {
		for (unsigned i = 0; i < EMU_TLB_SIZE; i++)
			if (cpu->tlb[m][i].tag_write != ~0ull)
				cpu->tlb[m][i].tag_write |= EMU_TLB_MMIO;
		for (unsigned i = 0; i < EMU_GTLB_SIZE; i++)
			if (cpu->gtlb[m][i].tag_write != ~0ull)
				cpu->gtlb[m][i].tag_write |= EMU_TLB_MMIO;
	}
}

static uint64_t asid_key(const struct emu_cpu *cpu, uint64_t cr3)
{
	if (cpu->cr4 & X86_CR4_PCIDE)
		return cr3 & 0x000fffffffffffffull;
	return cr3 & 0x000fffffffffffe0ull;
}

void mmu_set_cr3(struct emu_cpu *cpu, uint64_t cr3, bool noflush)
{
	uint64_t key = asid_key(cpu, cr3);
	uint64_t pt_gen = cpu->evm && cpu->evm->pt_page ?
		atomic_load_explicit(&cpu->evm->pt_gen, memory_order_acquire) : ~0ull;
	unsigned slot = EMU_ASID_SLOTS, lru = 0;
	for (unsigned i = 0; i < EMU_ASID_SLOTS; i++) {
		if (cpu->asids[i].key == key) {
			slot = i;
			break;
		}
		if (cpu->asids[i].last_use < cpu->asids[lru].last_use)
			lru = i;
	}
	bool flush, stale = false;
	cpu->as_switches++;
	if (slot == EMU_ASID_SLOTS) {
		slot = lru;
		cpu->asids[slot].key = key;
		flush = true;
	} else {
		/* Stale: a paging structure of this address space, or one it
		 * shares, was written since its translations were made, or a
		 * walk of it went through one nobody watches. */
		const struct emu_asid_slot *a = &cpu->asids[slot];
		stale = pt_gen == ~0ull || a->pt_gen != pt_gen || a->untracked ||
			a->root_gen != root_gen_of(cpu->evm, key);
		/* SDM vol. 3A 4.10.4.1: MOV CR3 with bit 63 clear invalidates the
		 * PCID's non-global translations.  Without PCIDs every MOV CR3
		 * flushes; translations kept for this CR3 are still exact unless
		 * they are stale. */
		flush = stale || ((cpu->cr4 & X86_CR4_PCIDE) && !noflush);
		if (!flush)
			cpu->as_kept++;
		else if (stale && pt_gen != ~0ull)
			cpu->as_purged++;
	}
	cpu->asid_cur = slot;
	cpu->tlb_salt = EMU_TLB_SALT(slot);
	cpu->asids[slot].last_use = ++cpu->asid_clock;
	if (flush)
		slot_flush(cpu, slot);
	cpu->asid = asid_tag(slot, cpu->asids[slot].gen);
}

void mmu_reset(struct emu_cpu *cpu)
{
	for (unsigned i = 0; i < EMU_ASID_SLOTS; i++)
		cpu->asids[i] = (struct emu_asid_slot){ .key = ~0ull };
	cpu->asid_cur = 0;
	cpu->asid_clock = 0;
	emu_tlb_flush(cpu, true);
	mmu_set_cr3(cpu, cpu->cr3, false);
}

void mmu_invlpg(struct emu_cpu *cpu, uint64_t lin)
{
	/* Invalidates the page in every address space, which covers global
	 * translations made under another CR3/PCID (SDM vol. 2A INVLPG). */
	uint64_t page = lin & ~0xfffull;
	cpu->fetch_epoch++;
	for (unsigned m = 0; m < EMU_MMU_COUNT; m++) {
		struct emu_tlb_entry *g = &cpu->gtlb[m][gtlb_index(lin)];
		if ((g->tag_read & ~0xfffull) == page || (g->tag_write & ~0xfffull) == page ||
		    (g->tag_fetch & ~0xfffull) == page)
			g->tag_read = g->tag_write = g->tag_fetch = ~0ull;
	}
	for (unsigned s = 0; s < EMU_ASID_SLOTS; s++) {
		unsigned i = (unsigned)((lin >> 12) ^ EMU_TLB_SALT(s)) & (EMU_TLB_SIZE - 1);
		for (unsigned m = 0; m < EMU_MMU_COUNT; m++) {
			struct emu_tlb_entry *e = &cpu->tlb[m][i];
			if ((e->tag_read & ~0xfffull) == page || (e->tag_write & ~0xfffull) == page ||
			    (e->tag_fetch & ~0xfffull) == page)
				e->tag_read = e->tag_write = e->tag_fetch = ~0ull;
		}
	}
}

void mmu_invpcid(struct emu_cpu *cpu, unsigned type, uint64_t pcid, uint64_t lin)
{
	/* SDM vol. 2A INVPCID: 0 individual address, 1 single context,
	 * 2 all contexts including global, 3 all contexts except global. */
	switch (type) {
	case 0:
		mmu_invlpg(cpu, lin);
		break;
	case 1:
		for (unsigned i = 0; i < EMU_ASID_SLOTS; i++)
			if (cpu->asids[i].key != ~0ull && (cpu->asids[i].key & 0xfff) == pcid)
				slot_flush(cpu, i);
		/* Global translations are tagged per address space too: a
		 * single-context flush may drop them, which 4.10.4.1 permits. */
		break;
	default:
		emu_tlb_flush(cpu, type == 2);
		break;
	}
}

/* Whether the address-space slot key (asid_key()) is the address space
 * of CR3 page `space`.  Bit 12 is ignored: Linux with page-table
 * isolation runs user mode on the pgd page after the kernel's (its
 * "user" CR3), and a flush names the kernel's; dropping the neighbour's
 * translations too is allowed. */
static bool slot_is_space(uint64_t key, uint64_t space)
{
	uint64_t m = 0x000ffffffffff000ull & ~0x1000ull;
	return key != ~0ull && (key & m) == (space & m);
}

void mmu_flush_ranges(struct emu_cpu *cpu, const struct vcpu_tlb_range *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++, r++) {
		if (r->count) {
			/* Pages: INVLPG drops them from every address space and
			 * the global table, more than one space's but at the
			 * cost of a few tag compares each. */
			for (uint32_t k = 0; k < r->count; k++)
				mmu_invlpg(cpu, r->page + (uint64_t)k * 4096);
			continue;
		}
		if (!r->non_global || r->space == VCPU_TLB_ALL_SPACES) {
			/* Global translations have copies in every address
			 * space's entries: dropping them means every entry. */
			emu_tlb_flush(cpu, !r->non_global);
			continue;
		}
		for (unsigned s = 0; s < EMU_ASID_SLOTS; s++)
			if (slot_is_space(cpu->asids[s].key, r->space))
				slot_flush(cpu, s);
	}
}

bool mmu_canonical(const struct emu_cpu *cpu, uint64_t lin)
{
	unsigned bits = (cpu->cr4 & X86_CR4_LA57) ? 57 : 48;
	int64_t s = (int64_t)(lin << (64 - bits)) >> (64 - bits);
	return (uint64_t)s == lin;
}

/* ---- physical memory ---- */

static inline bool pfn_flag(_Atomic uint8_t *map, const struct emu_vm *evm, uint64_t gpa)
{
	uint64_t pfn = gpa >> 12;
	return map && pfn < evm->n_pages && atomic_load_explicit(&map[pfn], memory_order_relaxed);
}

/* Adds the current root to the address spaces page pfn serves. */
static void pt_note_owner(struct emu_cpu *cpu, uint64_t pfn)
{
	_Atomic uint32_t *o = &cpu->evm->pt_owner[pfn];
	uint32_t me = root_index(cpu->cr3) + 1, cur = atomic_load_explicit(o, memory_order_relaxed);
	if (cur == me || cur == EMU_PT_SHARED)
		return;
	if (cur == 0 && atomic_compare_exchange_strong_explicit(o, &cur, me, memory_order_seq_cst, memory_order_relaxed))
		return;
	if (cur != me)
		atomic_store_explicit(o, EMU_PT_SHARED, memory_order_seq_cst);
}

static void watch_pt_page(struct emu_cpu *cpu, uint64_t gpa)
{
	struct emu_vm *evm = cpu->evm;
	if (!evm || !evm->pt_page)
		return;
	uint64_t pfn = gpa >> 12;
	if (pfn >= evm->n_pages)
		return;
	if (atomic_load_explicit(&evm->pt_page[pfn], memory_order_relaxed)) {
		/* Still read as a paging structure: its writes stay watched. */
		if (atomic_load_explicit(&evm->pt_writes[pfn], memory_order_relaxed))
			atomic_store_explicit(&evm->pt_writes[pfn], 0, memory_order_relaxed);
		pt_note_owner(cpu, pfn);
		return;
	}
	if (atomic_load_explicit(&evm->pt_tracked, memory_order_relaxed) >= evm->pt_track_limit) {
		/* Deferred: this address space cannot know when the page changes,
		 * so it is purged at its next switch. */
		cpu->asids[cpu->asid_cur].untracked = true;
		atomic_store_explicit(&evm->pt_deferring, true, memory_order_relaxed);
		atomic_fetch_add_explicit(&evm->pt_deferred, 1, memory_order_relaxed);
		return;
	}
	pt_note_owner(cpu, pfn);
	atomic_store_explicit(&evm->pt_writes[pfn], 0, memory_order_relaxed);
	if (atomic_exchange_explicit(&evm->pt_page[pfn], 1, memory_order_relaxed))
		return;
	atomic_fetch_add_explicit(&evm->pt_tracked, 1, memory_order_relaxed);
	/* Cached write translations of this page (any vCPU) must go. */
	emu_write_epoch_move(evm);
	emu_tlb_sync_epoch_slow(cpu);
}

static void pt_unwatch(struct emu_vm *evm, uint64_t pfn)
{
	if (!atomic_exchange_explicit(&evm->pt_page[pfn], 0, memory_order_relaxed))
		return;
	atomic_store_explicit(&evm->pt_owner[pfn], 0, memory_order_relaxed);
	uint64_t n = atomic_load_explicit(&evm->pt_tracked, memory_order_relaxed);
	while (n && !atomic_compare_exchange_weak_explicit(&evm->pt_tracked, &n, n - 1, memory_order_relaxed,
							    memory_order_relaxed))
		;
}

void emu_pt_page_written(struct emu_vm *evm, uint64_t pfn)
{
	uint32_t o = atomic_load_explicit(&evm->pt_owner[pfn], memory_order_seq_cst);
	if (o == 0 || o == EMU_PT_SHARED)
		atomic_fetch_add_explicit(&evm->pt_gen, 1, memory_order_release);
	else
		atomic_fetch_add_explicit(&evm->root_gen[o - 1], 1, memory_order_release);
}

/* The next flush of every translation after the limit was reached: every
 * page is unwatched and every address space aged, and the walks that
 * follow find the paging structures in use now. */
static void pt_tracking_restart(struct emu_vm *evm)
{
	if (!atomic_exchange_explicit(&evm->pt_deferring, false, memory_order_acq_rel))
		return;
	atomic_fetch_add_explicit(&evm->pt_gen, 1, memory_order_release);
	for (uint64_t p = 0; p < evm->n_pages; p++)
		if (atomic_load_explicit(&evm->pt_page[p], memory_order_relaxed))
			pt_unwatch(evm, p);
	atomic_fetch_add_explicit(&evm->pt_restarts, 1, memory_order_relaxed);
}

/* A guest write to RAM page gpa that is not through a TLB write tag. */
static void phys_note_write(struct emu_cpu *cpu, uint64_t gpa)
{
	struct emu_vm *evm = cpu->evm;
	if (!evm)
		return;
	if (pfn_flag(evm->code_page, evm, gpa)) {
		emu_blocks_invalidate_page(evm, gpa & ~0xfffull);
		/* The running block may be the code written: fetch again after
		 * this instruction (other vCPUs see the new generation at their
		 * next block, as cross-modifying code allows, SDM vol. 3A 8.1.3). */
		cpu->stop_block = true;
	}
	if (pfn_flag(evm->pt_page, evm, gpa)) {
		uint64_t pfn = gpa >> 12;
		emu_pt_page_written(evm, pfn);
		if (atomic_fetch_add_explicit(&evm->pt_writes[pfn], 1, memory_order_relaxed) + 1 >= PT_UNWATCH_WRITES)
			pt_unwatch(evm, pfn);
	}
}

static bool page_watched(const struct emu_vm *evm, uint64_t gpa)
{
	return evm && (pfn_flag(evm->code_page, evm, gpa) || pfn_flag(evm->pt_page, evm, gpa));
}

static uint64_t mmio_access(struct emu_cpu *cpu, uint64_t gpa, unsigned size, bool write, uint64_t val)
{
	struct vcpu_exit ex = { .reason = VCPU_EXIT_MMIO };
	ex.mmio.gpa = gpa;
	ex.mmio.size = (uint8_t)size;
	ex.mmio.is_write = write;
	ex.mmio.data = write ? val : 0;
	if (!cpu->vcpu)
		return ~0ull & emu_size_mask(size);
	vcpu_dispatch_exit(cpu->vcpu, &ex);
	return write ? 0 : ex.mmio.data & emu_size_mask(size);
}

static uint64_t phys_read(struct emu_cpu *cpu, uint64_t gpa, unsigned size)
{
	const uint8_t *p = gmem_ptr(cpu->mem, gpa, size);
	if (!p)
		return mmio_access(cpu, gpa, size, false, 0);
	uint64_t v = 0;
	memcpy(&v, p, size);
	return v;
}

static void phys_write(struct emu_cpu *cpu, uint64_t gpa, unsigned size, uint64_t val)
{
	uint8_t *p = gmem_ptr(cpu->mem, gpa, size);
	if (!p) {
		mmio_access(cpu, gpa, size, true, val);
		return;
	}
	phys_note_write(cpu, gpa);
	memcpy(p, &val, size);
}

/* ---- the walk (SDM vol. 3A 4.3 32-bit, 4.4 PAE, 4.5 4/5-level) ---- */

struct walk {
	uint64_t gpa;          /* guest-physical address of lin */
	uint64_t leaf_addr;    /* guest-physical address of the leaf entry */
	bool leaf_is_32;
	bool user, writable, nx, dirty, global;
};

/* Reads a paging-structure entry.  A paging structure outside RAM reads as
 * not present: the walk then faults instead of touching a device. */
static uint64_t pte_load(struct emu_cpu *cpu, uint64_t addr, bool is32)
{
	void *p = gmem_ptr(cpu->mem, addr, is32 ? 4 : 8);
	if (!p)
		return 0;
	watch_pt_page(cpu, addr);
	if (is32)
		return __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
	return __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
}

/* Sets A (and D) bits atomically: other vCPUs may walk the same tables. */
static void pte_set_bits(struct emu_cpu *cpu, uint64_t addr, bool is32, uint64_t bits)
{
	void *p = gmem_ptr(cpu->mem, addr, is32 ? 4 : 8);
	if (!p)
		return;
	if (is32)
		__atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_RELAXED);
	else
		__atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_RELAXED);
}

static _Noreturn void page_fault(struct emu_cpu *cpu, uint64_t lin, enum emu_access acc, unsigned idx,
				 uint32_t bits)
{
	uint32_t err = bits;
	if (acc == EMU_ACC_WRITE)
		err |= X86_PF_W;
	if (idx == EMU_MMU_USER || idx == EMU_MMU_USER_AC)
		err |= X86_PF_U;
	/* SDM vol. 3A 4.7: I/D is reported for fetches when NX or SMEP can apply. */
	if (acc == EMU_ACC_FETCH &&
	    (((cpu->efer & X86_EFER_NXE) && (cpu->cr4 & X86_CR4_PAE)) || (cpu->cr4 & X86_CR4_SMEP)))
		err |= X86_PF_I;
	cpu->cr2 = lin;
	emu_raise(cpu, X86_EXC_PF, err);
}

/* Would an access of this kind and privilege be allowed (SDM vol. 3A 4.6)? */
static bool access_allowed(const struct emu_cpu *cpu, const struct walk *w, enum emu_access acc, unsigned idx)
{
	if (idx == EMU_MMU_USER || idx == EMU_MMU_USER_AC) {
		if (!w->user)
			return false;
		if (acc == EMU_ACC_WRITE)
			return w->writable;
		if (acc == EMU_ACC_FETCH)
			return !w->nx;
		return true;
	}
	if (acc == EMU_ACC_FETCH)
		return !w->nx && !(w->user && (cpu->cr4 & X86_CR4_SMEP));
	if (w->user && (cpu->cr4 & X86_CR4_SMAP) && idx != EMU_MMU_SUP_AC)
		return false;
	if (acc == EMU_ACC_WRITE && !w->writable && (cpu->cr0 & X86_CR0_WP))
		return false;
	return true;
}

static void walk(struct emu_cpu *cpu, uint64_t lin, enum emu_access acc, unsigned idx, struct walk *w)
{
	bool nxe = cpu->efer & X86_EFER_NXE;
	w->user = w->writable = true;
	w->nx = false;
	w->global = false;

	if (!(cpu->cr4 & X86_CR4_PAE)) {
		/* 32-bit paging, 4.3: two levels of 4-byte entries; PSE 4 MiB pages. */
		uint64_t pde_addr = (cpu->cr3 & 0xfffff000u) + ((lin >> 22) & 0x3ff) * 4;
		uint64_t pde = pte_load(cpu, pde_addr, true);
		if (!(pde & PTE_P))
			page_fault(cpu, lin, acc, idx, 0);
		w->user = pde & PTE_US;
		w->writable = pde & PTE_RW;
		if ((pde & PTE_PS) && (cpu->cr4 & X86_CR4_PSE)) {
			/* PSE-36: PDE bits 20:13 are physical bits 39:32; bit 21 is reserved. */
			if (pde & (1u << 21))
				page_fault(cpu, lin, acc, idx, X86_PF_P | X86_PF_RSVD);
			w->gpa = (pde & 0xffc00000u) | ((pde >> 13) & 0xff) << 32 | (lin & 0x3fffff);
			w->leaf_addr = pde_addr;
			w->leaf_is_32 = true;
			w->dirty = pde & PTE_D;
			w->global = pde & PTE_G;
			if (!access_allowed(cpu, w, acc, idx))
				page_fault(cpu, lin, acc, idx, X86_PF_P);
			pte_set_bits(cpu, pde_addr, true, PTE_A | (acc == EMU_ACC_WRITE ? PTE_D : 0));
			w->dirty |= acc == EMU_ACC_WRITE;
			return;
		}
		uint64_t pte_addr = (pde & 0xfffff000u) + ((lin >> 12) & 0x3ff) * 4;
		uint64_t pte = pte_load(cpu, pte_addr, true);
		if (!(pte & PTE_P))
			page_fault(cpu, lin, acc, idx, 0);
		w->user &= !!(pte & PTE_US);
		w->writable &= !!(pte & PTE_RW);
		w->gpa = (pte & 0xfffff000u) | (lin & 0xfff);
		w->leaf_addr = pte_addr;
		w->leaf_is_32 = true;
		w->dirty = pte & PTE_D;
		w->global = pte & PTE_G;
		if (!access_allowed(cpu, w, acc, idx))
			page_fault(cpu, lin, acc, idx, X86_PF_P);
		pte_set_bits(cpu, pde_addr, true, PTE_A);
		pte_set_bits(cpu, pte_addr, true, PTE_A | (acc == EMU_ACC_WRITE ? PTE_D : 0));
		w->dirty |= acc == EMU_ACC_WRITE;
		return;
	}

	/* PAE (4.4) and 4/5-level paging (4.5): 8-byte entries, 9 bits a level. */
	bool lma = cpu->efer & X86_EFER_LMA;
	int top = lma ? ((cpu->cr4 & X86_CR4_LA57) ? 5 : 4) : 3;
	uint64_t table = lma ? (cpu->cr3 & PTE_ADDR) : (cpu->cr3 & 0xffffffe0u);
	uint64_t addrs[5];
	unsigned n_addrs = 0;
	uint64_t rsvd_phys = 0x000fffffffffffffull & ~EMU_PHYS_MASK;   /* bits MAXPHYADDR..51 */
	uint64_t rsvd_xd = nxe ? 0 : PTE_XD;
	for (int lvl = top; lvl >= 1; lvl--) {
		uint64_t index = lma || lvl < 3 ? (lin >> (12 + 9 * (lvl - 1))) & 0x1ff : (lin >> 30) & 3;
		uint64_t addr = table + index * 8;
		uint64_t e = pte_load(cpu, addr, false);
		if (!(e & PTE_P))
			page_fault(cpu, lin, acc, idx, 0);
		uint64_t rsvd = rsvd_phys | rsvd_xd;
		bool pdpte_legacy = !lma && lvl == 3;
		if (pdpte_legacy)
			rsvd = rsvd_phys | 0x1e6ull | PTE_XD;   /* 4.4.1: bits 2:1, 8:5 and 63 */
		else if (lvl >= 4)
			rsvd |= PTE_PS;
		bool leaf = lvl == 1 || (!pdpte_legacy && lvl <= 3 && (e & PTE_PS));
		if (leaf && lvl == 3)
			rsvd |= 0x3fffe000ull;   /* 1 GiB page: bits 29:13 */
		else if (leaf && lvl == 2)
			rsvd |= 0x1fe000ull;     /* 2 MiB page: bits 20:13 */
		if (e & rsvd)
			page_fault(cpu, lin, acc, idx, X86_PF_P | X86_PF_RSVD);
		if (!pdpte_legacy) {
			w->user &= !!(e & PTE_US);
			w->writable &= !!(e & PTE_RW);
			w->nx |= nxe && (e & PTE_XD);
			addrs[n_addrs++] = addr;
		}
		if (leaf) {
			uint64_t psize = 1ull << (12 + 9 * (lvl - 1));
			w->gpa = (e & PTE_ADDR & ~(psize - 1)) | (lin & (psize - 1));
			w->leaf_addr = addr;
			w->leaf_is_32 = false;
			w->dirty = e & PTE_D;
			w->global = e & PTE_G;
			break;
		}
		table = e & PTE_ADDR;
	}
	if (!access_allowed(cpu, w, acc, idx))
		page_fault(cpu, lin, acc, idx, X86_PF_P);
	for (unsigned i = 0; i < n_addrs; i++)
		pte_set_bits(cpu, addrs[i], false,
			     PTE_A | (i + 1 == n_addrs && acc == EMU_ACC_WRITE ? PTE_D : 0));
	w->dirty |= acc == EMU_ACC_WRITE;
}

/* While DR7 enables a data breakpoint, and for alignment-checked user
 * accesses (EMU_MMU_USER_AC), read and write translations are filled with
 * EMU_TLB_MMIO so that every data access takes the slow path, which checks
 * the breakpoints and the alignment (emu_debug_dr7_changed flushes the TLB
 * when the former changes; the latter has TLB arrays of its own; global
 * entries copied from these keep the bit). */
static inline uint64_t data_slow(const struct emu_cpu *cpu, unsigned idx)
{
	return cpu->dbg_data || idx == EMU_MMU_USER_AC ? EMU_TLB_MMIO : 0;
}

/* What data_slow() sends to the slow path, checked on every slow-path
 * data access of size bytes at lin under idx:
 *  - #AC(0) for a misaligned word, doubleword or quadword at CPL 3 with
 *    CR0.AM and EFLAGS.AC (SDM vol. 3A 6.15 "Interrupt 17", table 6-7);
 *    other sizes (x87 80-bit, SSE, far pointers, FXSAVE) are not checked;
 *  - the data breakpoints, recorded for the trap after the instruction
 *    (recording one access twice is harmless: the bits are OR-ed). */
static inline void data_checks(struct emu_cpu *cpu, uint64_t lin, unsigned size, bool write, unsigned idx)
{
	if (__builtin_expect(idx == EMU_MMU_USER_AC, 0) && (size == 2 || size == 4 || size == 8) &&
	    (lin & (size - 1)))
		emu_raise(cpu, X86_EXC_AC, 0);
	if (__builtin_expect(cpu->dbg_data, 0))
		emu_debug_data(cpu, lin, size, write);
}

/* Fills the TLB entry for lin with every right the walk grants under idx. */
static void tlb_fill(struct emu_cpu *cpu, uint64_t lin, unsigned idx, const struct walk *w)
{
	struct emu_tlb_entry *e = &cpu->tlb[idx][emu_tlb_index(cpu, lin)];
	uint64_t page = lin & ~0xfffull, gpa = w->gpa & ~0xfffull;
	uint8_t *host = gmem_ptr(cpu->mem, gpa, 4096);
	uint64_t tag = page | cpu->asid | (host ? 0 : EMU_TLB_MMIO);
	struct emu_vm *evm = cpu->evm;
	e->gpa = gpa;
	e->addend = host ? (uintptr_t)host - (uintptr_t)page : 0;
	e->tag_read = access_allowed(cpu, w, EMU_ACC_READ, idx) ? tag | data_slow(cpu, idx) : ~0ull;
	e->tag_fetch = access_allowed(cpu, w, EMU_ACC_FETCH, idx) ? tag : ~0ull;
	/* Writes walk again until D is set; writes to pages whose writes must
	 * be seen (decoded code, watched paging structures) take the slow
	 * path without a walk. */
	if (!w->dirty || !access_allowed(cpu, w, EMU_ACC_WRITE, idx))
		e->tag_write = ~0ull;
	else
		e->tag_write = page_watched(evm, gpa) ? tag | EMU_TLB_MMIO : tag | data_slow(cpu, idx);
	if (w->global && (cpu->cr4 & X86_CR4_PGE)) {
		/* The same rights without the address-space tag. */
		struct emu_tlb_entry *g = &cpu->gtlb[idx][gtlb_index(lin)];
		uint64_t strip = ~(uint64_t)(EMU_TLB_MMIO - 1);
		*g = *e;
		g->tag_read = e->tag_read == ~0ull ? ~0ull : e->tag_read & strip;
		g->tag_write = e->tag_write == ~0ull ? ~0ull : e->tag_write & strip;
		g->tag_fetch = e->tag_fetch == ~0ull ? ~0ull : e->tag_fetch & strip;
	}
}

/* A miss in the address space's TLB: a global translation made under any
 * CR3 is valid here too.  Copies it in and returns true. */
static bool gtlb_refill(struct emu_cpu *cpu, uint64_t lin, enum emu_access acc, unsigned idx,
			struct emu_tlb_entry *e)
{
	struct emu_tlb_entry *g = &cpu->gtlb[idx][gtlb_index(lin)];
	uint64_t page = lin & ~0xfffull;
	uint64_t tag = acc == EMU_ACC_READ ? g->tag_read : acc == EMU_ACC_WRITE ? g->tag_write : g->tag_fetch;
	if (tag == ~0ull || (tag & ~EMU_TLB_MMIO) != page)
		return false;
	e->gpa = g->gpa;
	e->addend = g->addend;
	e->tag_read = g->tag_read == ~0ull ? ~0ull : g->tag_read | cpu->asid;
	e->tag_write = g->tag_write == ~0ull ? ~0ull : g->tag_write | cpu->asid;
	e->tag_fetch = g->tag_fetch == ~0ull ? ~0ull : g->tag_fetch | cpu->asid;
	return true;
}

/* Returns the guest-physical address for lin, or raises #PF. */
/* Without paging the translation is the identity with every right; it is
 * still cached so that real-mode and unpaged code take the inline path. */
static uint64_t identity_fill(struct emu_cpu *cpu, uint64_t lin, unsigned idx)
{
	struct emu_tlb_entry *e = &cpu->tlb[idx][emu_tlb_index(cpu, lin)];
	uint64_t page = lin & ~0xfffull;
	uint8_t *host = gmem_ptr(cpu->mem, page, 4096);
	uint64_t tag = page | cpu->asid | (host ? 0 : EMU_TLB_MMIO);
	e->gpa = page;
	e->addend = host ? (uintptr_t)host - (uintptr_t)page : 0;
	e->tag_read = tag | data_slow(cpu, idx);
	e->tag_fetch = tag;
	e->tag_write = page_watched(cpu->evm, page) ? tag | EMU_TLB_MMIO : tag | data_slow(cpu, idx);
	return lin;
}

uint64_t mmu_translate(struct emu_cpu *cpu, uint64_t lin, enum emu_access acc, unsigned idx)
{
	if (!(cpu->cr0 & X86_CR0_PG))
		return identity_fill(cpu, (cpu->efer & X86_EFER_LMA) ? lin : (uint32_t)lin, idx);
	struct emu_tlb_entry *e = &cpu->tlb[idx][emu_tlb_index(cpu, lin)];
	uint64_t want = (lin & ~0xfffull) | cpu->asid;
	uint64_t tag = acc == EMU_ACC_READ ? e->tag_read : acc == EMU_ACC_WRITE ? e->tag_write : e->tag_fetch;
	if ((tag & ~EMU_TLB_MMIO) == want) {
		if (acc == EMU_ACC_WRITE && tag != want && !data_slow(cpu, idx) && !page_watched(cpu->evm, e->gpa) &&
		    gmem_ptr(cpu->mem, e->gpa, 4096))
			e->tag_write = want;   /* nothing watches the RAM page any more */
		return e->gpa | (lin & 0xfff);
	}
	if (gtlb_refill(cpu, lin, acc, idx, e))
		return e->gpa | (lin & 0xfff);
	struct walk w;
	walk(cpu, lin, acc, idx, &w);
	tlb_fill(cpu, lin, idx, &w);
	return w.gpa;
}

/* ---- linear accesses ---- */

uint64_t mmu_read_lin(struct emu_cpu *cpu, uint64_t lin, unsigned size, unsigned idx)
{
	if ((lin & 0xfff) + size <= 4096)
		return phys_read(cpu, mmu_translate(cpu, lin, EMU_ACC_READ, idx), size);
	/* Split across two pages: both must translate before either is read. */
	unsigned first = 4096 - (lin & 0xfff);
	uint64_t g0 = mmu_translate(cpu, lin, EMU_ACC_READ, idx);
	uint64_t g1 = mmu_translate(cpu, lin + first, EMU_ACC_READ, idx);
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= phys_read(cpu, i < first ? g0 + i : g1 + (i - first), 1) << (8 * i);
	return v;
}

void mmu_write_lin(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t val, unsigned idx)
{
	if ((lin & 0xfff) + size <= 4096) {
		phys_write(cpu, mmu_translate(cpu, lin, EMU_ACC_WRITE, idx), size, val);
		return;
	}
	unsigned first = 4096 - (lin & 0xfff);
	uint64_t g0 = mmu_translate(cpu, lin, EMU_ACC_WRITE, idx);
	uint64_t g1 = mmu_translate(cpu, lin + first, EMU_ACC_WRITE, idx);
	for (unsigned i = 0; i < size; i++)
		phys_write(cpu, i < first ? g0 + i : g1 + (i - first), 1, (val >> (8 * i)) & 0xff);
}

static uint64_t mmu_read_slow(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t lin = seg_linear(cpu, &cpu->seg[seg], seg, off, size, EMU_ACC_READ);
	unsigned idx = emu_mmu_index(cpu);
	data_checks(cpu, lin, size, false, idx);
	return mmu_read_lin(cpu, lin, size, idx);
}

static void mmu_write_slow(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val)
{
	uint64_t lin = seg_linear(cpu, &cpu->seg[seg], seg, off, size, EMU_ACC_WRITE);
	unsigned idx = emu_mmu_index(cpu);
	data_checks(cpu, lin, size, true, idx);
	mmu_write_lin(cpu, lin, size, val & emu_size_mask(size), idx);
}

static void mmu_read_bytes(struct emu_cpu *cpu, int seg, uint64_t off, void *dst, unsigned n)
{
	if (!n)
		return;
	uint64_t lin = seg_linear(cpu, &cpu->seg[seg], seg, off, n, EMU_ACC_READ);
	unsigned idx = emu_mmu_index(cpu);
	uint8_t *out = dst;
	data_checks(cpu, lin, n, false, idx);
	while (n) {
		unsigned chunk = 4096 - (lin & 0xfff);
		if (chunk > n)
			chunk = n;
		uint64_t gpa = mmu_translate(cpu, lin, EMU_ACC_READ, idx);
		void *p = gmem_ptr(cpu->mem, gpa, chunk);
		if (p)
			memcpy(out, p, chunk);
		else
			for (unsigned i = 0; i < chunk; i++)
				out[i] = (uint8_t)phys_read(cpu, gpa + i, 1);
		out += chunk;
		lin = cpu->mode == EMU_MODE_LONG64 ? lin + chunk : (uint32_t)(lin + chunk);
		n -= chunk;
	}
}

/* Translates every page of an n-byte write at lin, faulting as the write
 * would, so that no byte is written unless all can be. */
static void translate_write_range(struct emu_cpu *cpu, uint64_t lin, unsigned n, unsigned idx)
{
	while (n) {
		unsigned chunk = 4096 - (lin & 0xfff);
		if (chunk > n)
			chunk = n;
		mmu_translate(cpu, lin, EMU_ACC_WRITE, idx);
		lin = cpu->mode == EMU_MODE_LONG64 ? lin + chunk : (uint32_t)(lin + chunk);
		n -= chunk;
	}
}

static void mmu_write_check(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t lin = seg_linear(cpu, &cpu->seg[seg], seg, off, size, EMU_ACC_WRITE);
	unsigned idx = emu_mmu_index(cpu);
	data_checks(cpu, lin, size, true, idx);
	translate_write_range(cpu, lin, size, idx);
}

static void mmu_write_bytes(struct emu_cpu *cpu, int seg, uint64_t off, const void *src, unsigned n)
{
	if (!n)
		return;
	uint64_t lin0 = seg_linear(cpu, &cpu->seg[seg], seg, off, n, EMU_ACC_WRITE);
	unsigned idx = emu_mmu_index(cpu);
	translate_write_range(cpu, lin0, n, idx);
	data_checks(cpu, lin0, n, true, idx);
	const uint8_t *in = src;
	uint64_t lin = lin0;
	while (n) {
		unsigned chunk = 4096 - (lin & 0xfff);
		if (chunk > n)
			chunk = n;
		uint64_t gpa = mmu_translate(cpu, lin, EMU_ACC_WRITE, idx);
		void *p = gmem_ptr(cpu->mem, gpa, chunk);
		if (p) {
			phys_note_write(cpu, gpa);
			memcpy(p, in, chunk);
		} else {
			for (unsigned i = 0; i < chunk; i++)
				phys_write(cpu, gpa + i, 1, in[i]);
		}
		in += chunk;
		lin = cpu->mode == EMU_MODE_LONG64 ? lin + chunk : (uint32_t)(lin + chunk);
		n -= chunk;
	}
}

static void *mmu_mem_ptr(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write)
{
	uint64_t lin = seg_linear(cpu, &cpu->seg[seg], seg, off, size, write ? EMU_ACC_WRITE : EMU_ACC_READ);
	if ((lin & 0xfff) + size > 4096)
		return NULL;   /* the caller's emu_read/emu_write do the checks */
	unsigned idx = emu_mmu_index(cpu);
	data_checks(cpu, lin, size, write, idx);
	uint64_t gpa = mmu_translate(cpu, lin, write ? EMU_ACC_WRITE : EMU_ACC_READ, idx);
	void *p = gmem_ptr(cpu->mem, gpa, size);
	if (p && write)
		phys_note_write(cpu, gpa);
	return p;
}

static uint64_t mmu_translate_fetch(struct emu_cpu *cpu, uint64_t linear)
{
	if (cpu->mode == EMU_MODE_LONG64 && !mmu_canonical(cpu, linear))
		emu_raise(cpu, X86_EXC_GP, 0);
	return mmu_translate(cpu, linear, EMU_ACC_FETCH, cpu->cpl == 3 ? EMU_MMU_USER : EMU_MMU_SUP);
}

/* The engine's route to guest memory and ports (emu.h, struct emu_ops). */
const struct emu_ops emu_sys_ops = {
	.read = mmu_read_slow,
	.write = mmu_write_slow,
	.write_check = mmu_write_check,
	.read_bytes = mmu_read_bytes,
	.write_bytes = mmu_write_bytes,
	.mem_ptr = mmu_mem_ptr,
	.translate_fetch = mmu_translate_fetch,
	.io_in = io_port_in,
	.io_out = io_port_out,
};

/* Paging structures watched at most: 1/64 of the pages, and 1024 in a
 * small VM; a busybox Linux boot uses some hundreds. */
#define PT_TRACK_DIVISOR 64
#define PT_TRACK_MIN 1024

int emu_sys_vm_init(struct emu_vm *evm)
{
	evm->pt_page = NULL;
	evm->pt_writes = NULL;
	evm->pt_owner = NULL;
	atomic_store(&evm->pt_gen, 0);
	atomic_store(&evm->pt_tracked, 0);
	atomic_store(&evm->pt_deferring, false);
	evm->pt_track_limit = evm->n_pages / PT_TRACK_DIVISOR > PT_TRACK_MIN ? evm->n_pages / PT_TRACK_DIVISOR : PT_TRACK_MIN;
	for (unsigned i = 0; i < EMU_ROOT_GENS; i++)
		atomic_store(&evm->root_gen[i], 0);
	if (evm->n_pages) {
		evm->pt_page = calloc(evm->n_pages, 1);
		evm->pt_writes = calloc(evm->n_pages, 1);
		evm->pt_owner = calloc(evm->n_pages, sizeof(*evm->pt_owner));
		if (!evm->pt_page || !evm->pt_writes || !evm->pt_owner) {
			emu_sys_vm_destroy(evm);
			return -ENOMEM;
		}
	}
	return 0;
}

void emu_sys_vm_destroy(struct emu_vm *evm)
{
	free((void *)evm->pt_page);
	free((void *)evm->pt_writes);
	free((void *)evm->pt_owner);
	evm->pt_page = NULL;
	evm->pt_writes = NULL;
	evm->pt_owner = NULL;
}
