/* Code generation for the emu engine (docs/architecture.md "Code
 * generation"): a decoded block becomes one host function that runs its
 * instructions as the interpreter's block loop does (core/cpu.c
 * run_block_body), calling each instruction's handler directly, with
 * the hottest simple forms inlined as templates.
 *
 * Code lives in a cache of bounded size, one per VM and shared by its
 * vCPUs (the run loop keeps a block's translation in the decoded block,
 * core/block.h), flushed whole when full; a translation is valid while
 * the cache's epoch is the one it was made in.  The memory is shared
 * anonymous memory mapped twice, writable and executable, so no page is
 * ever both (W^X).
 * Nothing here locks: the VM's cache is written under the block cache's
 * lock (translation, emu_jit_chain), and its memory is reused only when
 * every vCPU has left the code of the old epoch (the block cache's
 * drain). */
#ifndef VESSEL_CPU_EMU_JIT_JIT_H
#define VESSEL_CPU_EMU_JIT_JIT_H

#include "cpu/emu/emu.h"

#include <stddef.h>
#include <stdint.h>

/* Runs the translated instructions on cpu; cpu->rip is where they left
 * off.  Called after emu_jit_enter(cpu). */
typedef void (*emu_jit_code)(struct emu_cpu *cpu);

/* What translated code reads of the vCPU and its caller sets before it
 * calls the code: the TLB its inline memory path uses, the one
 * emu_mmu_index() picks (CPL, EFLAGS.AC, CR0.AM).  Those change only in
 * blocks that have no exit that chains, which return to the caller, so
 * the blocks chained after the first keep it. */
static inline void emu_jit_enter(struct emu_cpu *cpu)
{
	cpu->tlb_row = cpu->tlb[emu_mmu_index(cpu)];
}

/* Bytes of host code per VM: a quarter of the decoded-block cache's
 * (--code-cache), which a full flush empties with it. */
#define EMU_JIT_CACHE_SHARE 4

struct emu_jit {
	uint8_t *rw, *rx;       /* the two views of the cache */
	size_t size, used;
	size_t peak;            /* the most of it ever used */
	uint32_t epoch;         /* bumped by every flush; starts at 1 */
	/* Set by an owner that flushes the cache itself (the VM's, whose
	 * flush must wait for every vCPU to leave the code): a translation
	 * that does not fit then fails with full set, rather than flushing. */
	bool owner_flushes;
	bool full;
	/* The owner's way on from a return exit of a 64-bit block that may
	 * chain (jit/branch.c exit_tail), NULL: every such exit returns.  Called
	 * with cpu->jit_exit set: the body (a translation + body_off) to
	 * jump into, with cpu->rip (and R12) its start and the chain loop's
	 * checks between blocks made, or NULL to return to the loop. */
	void *(*next)(struct emu_cpu *cpu);
	unsigned body_off;      /* bytes of a translation's prologue (jit/branch.c) */
	/* Counters since creation, read by other threads (relaxed atomics):
	 * flushes, blocks translated, bytes of host code made, and of the
	 * instructions translated, those that became inline templates, those
	 * that became handler calls, and the flags records left out as dead;
	 * direct jumps made, near and far (emu_jit_chain). */
	uint64_t flushes, blocks, bytes;
	uint64_t insns_template, insns_call, flags_skipped;
	uint64_t links_near, links_far;
};

/* A cache of size bytes (rounded up to pages); NULL with err_set() on failure. */
struct emu_jit *emu_jit_create(size_t size);
void emu_jit_destroy(struct emu_jit *j);
/* Forgets every translation (the epoch moves on), counted as a flush;
 * emu_jit_reset() does the same uncounted (the memory of a flush the
 * owner counted itself, or of one of the decoded blocks). */
void emu_jit_flush(struct emu_jit *j);
void emu_jit_reset(struct emu_jit *j);
/* Host code for the n (1..EMU_BLOCK_MAX_INSNS) instructions at insn,
 * decoded in mode (enum emu_mode),
 * which must stay where they are while the code may run: the code
 * passes their addresses to the handlers.  A full cache is flushed and
 * the block translated into the empty one; NULL only if it cannot hold
 * it even then (with owner_flushes: NULL and full set, unflushed).  Semantics: as the interpreter's block loop with no
 * instruction limit -- icount grows by n first and by less when a
 * handler sets stop_block, cpu->rip/next_rip are what each handler
 * sees, a fault longjmps out of the code with cpu->rip at the faulting
 * instruction.  The caller wraps RIP for 16/32-bit code afterwards.
 * page_off: the offset of the first instruction in its guest page, or
 * -1 if unknown (then no exit to a constant target is chainable).
 * from: the block, named in the code's exit records (below).  Once
 * its exits are patched, the code may go on into other translations
 * before it returns (direct jumps, emu_jit_chain). */
emu_jit_code emu_jit_translate(struct emu_jit *j, const struct emu_insn *insn, unsigned n, unsigned mode,
				int page_off, void *from);

/* Names the host code [code, code + size), the translation of the n
 * instructions at guest-physical gpa, in /tmp/perf-PID.map, the file
 * Linux perf reads for code made at run time ("START SIZE name" a
 * line), when the environment sets VESSEL_JIT_PERF_MAP=1; nothing
 * otherwise.  A flushed cache's addresses are named again by the code
 * made there next: perf takes the latest line that covers an address. */
void emu_jit_perf_map(const void *code, size_t size, uint64_t gpa, unsigned n);

/* ---- Block exits and direct jumps between translations (jit/branch.c) ----
 * Every exit of a translated block but a stop (a handler that set
 * stop_block) leaves in cpu->jit_exit the record of the exit it took:
 * the block that ran last (from, as given to emu_jit_translate), and in
 * 64-bit code, for an exit that may chain, the jump to patch.  Since
 * the code is shared by vCPUs whose fetch contexts (address space, TLB
 * contents) differ, a near link goes only to a target in the block's
 * own guest page, reached by the same linear page the block was entered
 * by (as QEMU's TCG does): that page's translation was checked when the
 * block was entered, so the target is the same guest-physical code for
 * every vCPU.  An exit whose target is a constant offset from the
 * block's RIP (Jcc both ways, JMP, CALL, a block ending without a
 * transfer) is linked so when the target lies in the block's page; one
 * whose target varies (RET, a near indirect transfer or other handler
 * that keeps the fetch context) when its last successor lay in the
 * page it was entered by.  A successor elsewhere gets a far link, which
 * asks the running vCPU's jump cache instead (emu_jit_chain).  An exit
 * whose target varies, once it has gone to a second target, is pointed
 * at a probe of the jump cache for any target and never re-pointed;
 * other exits at most JIT_EXIT_PATCHES times, so that no exit fills
 * the cache with stubs.  A block with an
 * instruction that may change the fetch context (MOV CR3, INVLPG, IRET,
 * a far transfer..., which end their block, and INVPCID) has no exit
 * that chains. */
#define JIT_EXIT_PATCHES 8
struct emu_jit_exit {
	void *from;
	uint64_t page;          /* from's guest page (~0: unknown) */
	uint8_t *jmp;           /* the rel32 of the exit's jmp (executable view); NULL: none */
	bool dynamic;           /* the target varies: the stub compares it */
	bool in_page;           /* a constant target in from's own page */
	/* The link the jump points at (emu_jit_chain), so that a link that
	 * failed its checks for a passing reason is not made again. */
	uint64_t lin;
	uintptr_t to;
	uint32_t gen;
	uint32_t patches;       /* times pointed at a new stub: a few at most */
};

/* Points x's jump at code that enters `to` (a translation of this cache)
 * directly when, at the exit, the chain loop's checks between blocks all
 * pass (core/cpu.c): for a dynamic exit, the target RIP is the one now
 * in cpu->rip and lies in the linear page the block was entered by; the
 * successor's page generation (*gen_at) is still gen; the running
 * vCPU's chain gate is open (struct emu_cpu chain_stop: no event would
 * stop the chain, the write epoch and the block cache's epoch hold, the
 * run budget is not reached) -- all but the target read from the
 * running vCPU, whichever it is.  Any failed check leaves through the
 * exit as before the patch.  x must come from the translation that just
 * ran, and `to` must be a translation of a 64-bit block in the same
 * guest page as x's (the caller checks).
 * far: `to` lies elsewhere (another guest page, or a constant target
 * out of x's page): the jump then holds, in place of the page checks,
 * when the target RIP is the one now in cpu->rip and the running
 * vCPU's jump cache (core/block.h) has `to` for it under the vCPU's
 * current fetch context (emu_chain_key), the same proof the chain
 * loop's own step between blocks takes (core/cpu.c jit_next).
 * A dynamic exit linked before to another target gets the probe
 * instead: the same proof for whatever target R12 holds, read from the
 * entry's slot for it, and an indirect jump to the entry's body.
 * Callers serialise (the VM's cache: under the block cache's lock). */
void emu_jit_chain(struct emu_jit *j, struct emu_jit_exit *x, const struct emu_cpu *cpu,
		   const _Atomic uint32_t *gen_at, uint32_t gen, emu_jit_code to, bool far);

#endif
