/* Inline templates (jit/templates.c): host code for the simple forms
 * that dominate guest code, doing what their handlers do without a call. */
#ifndef VESSEL_CPU_EMU_JIT_TEMPLATES_H
#define VESSEL_CPU_EMU_JIT_TEMPLATES_H

#include "cpu/emu/jit/jit.h"
#include "cpu/emu/jit/x86_emit.h"

#define JIT_MAX_STOPS 40
#define JIT_MAX_COLD 32

/* Where a block leaves early: a handler set stop_block with `left`
 * instructions of the block not run. */
struct jit_stop {
	uint8_t *at;          /* rel32 of the jne to patch */
	unsigned left;
};

/* An out-of-line slow path: the handler call for an instruction whose
 * template's inline path missed (a TLB miss, say), then back. */
struct jit_cold {
	uint8_t *from[4];     /* rel32s of the jumps to it */
	unsigned n_from;
	uint8_t *resume;      /* where the inline path goes on */
	const struct emu_insn *in;
	uint64_t delta;
	unsigned left;        /* instructions after it in the block */
};

struct jit_ctx {
	struct x86_emit *e;
	unsigned n;           /* instructions in the block */
	unsigned i;           /* the one being translated */
	unsigned mode;        /* enum emu_mode of the block */
	unsigned n_cold;
	struct jit_cold cold[JIT_MAX_COLD];
	/* Bytes of guest code between the RIP in R12 and the current
	 * instruction (translate.c). */
	uint64_t delta;
	unsigned n_stops;
	struct jit_stop stops[JIT_MAX_STOPS];
};

/* Emits in's template and returns true, or returns false when in has
 * none (the translator then calls its handler).  A template's inline
 * code never faults and never sets stop_block: whatever might (a TLB
 * miss) jumps to its slow path, a handler call out of line
 * (struct jit_cold).  It may use RAX, RCX, RDX, RSI, RDI, R8-R11
 * (caller-saved) and must leave RBX, R12, R13 alone. */
bool jit_template(struct jit_ctx *t, const struct emu_insn *in);
/* cpu->rip = R12 + delta: for a template that calls out. */
void jit_store_rip(struct jit_ctx *t);
/* Emits the slow paths (after the block's exits). */
void jit_emit_cold(struct jit_ctx *t);

#endif
