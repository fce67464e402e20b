/* Code generation for the emu engine (docs/architecture.md "Code
 * generation"): a decoded block becomes one host function that runs its
 * instructions as the interpreter's block loop does (core/cpu.c
 * run_block_body), calling each instruction's handler directly, with
 * the hottest simple forms inlined as templates.
 *
 * Code lives in a per-vCPU cache of bounded size, flushed whole when
 * full; a translation is valid while the cache's epoch is the one it was
 * made in.  The memory is a memfd mapped twice, writable and executable,
 * so no page is ever both (W^X). */
#ifndef VESSEL_CPU_EMU_JIT_JIT_H
#define VESSEL_CPU_EMU_JIT_JIT_H

#include "cpu/emu/emu.h"

#include <stddef.h>
#include <stdint.h>

/* Runs the translated instructions on cpu; cpu->rip is where they left off. */
typedef void (*emu_jit_code)(struct emu_cpu *cpu);

#define EMU_JIT_CACHE_DEFAULT (32u << 20)    /* bytes of host code per vCPU */

struct emu_jit {
	uint8_t *rw, *rx;       /* the two views of the cache */
	size_t size, used;
	uint32_t epoch;         /* bumped by every flush; starts at 1 */
	/* Counters since creation, read by other threads (relaxed atomics):
	 * flushes, blocks translated, bytes of host code made, and of the
	 * instructions translated, those that became inline templates, those
	 * that became handler calls, and the flags records left out as dead. */
	uint64_t flushes, blocks, bytes;
	uint64_t insns_template, insns_call, flags_skipped;
};

/* A cache of size bytes (rounded up to pages); NULL with err_set() on failure. */
struct emu_jit *emu_jit_create(size_t size);
void emu_jit_destroy(struct emu_jit *j);
/* Forgets every translation (the epoch moves on). */
void emu_jit_flush(struct emu_jit *j);
/* Host code for the n (1..EMU_BLOCK_MAX_INSNS) instructions at insn,
 * decoded in mode (enum emu_mode),
 * which must stay where they are while the code may run: the code
 * passes their addresses to the handlers.  A full cache is flushed and
 * the block translated into the empty one; NULL only if it cannot hold
 * it even then.  Semantics: as the interpreter's block loop with no
 * instruction limit -- icount grows by n first and by less when a
 * handler sets stop_block, cpu->rip/next_rip are what each handler
 * sees, a fault longjmps out of the code with cpu->rip at the faulting
 * instruction.  The caller wraps RIP for 16/32-bit code afterwards. */
emu_jit_code emu_jit_translate(struct emu_jit *j, const struct emu_insn *insn, unsigned n, unsigned mode);

#endif
