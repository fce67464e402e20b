/* The translator (docs/architecture.md "Code generation"): a decoded
 * block becomes one host function.  Each instruction is either a call
 * of its handler -- direct, with the instruction's address as a
 * constant, in place of the run loop's load and indirect call -- or an
 * inline template (jit/templates.c) for the simple forms that dominate
 * kernel code.
 *
 * Register use inside the code: RBX = cpu, R12 = the guest RIP of an
 * earlier instruction boundary, the translator knowing statically how
 * many bytes lie between it and the current instruction (delta).  So
 * templates need not store RIP at all: cpu->rip and cpu->next_rip are
 * written only before a handler call (which reads them, and may fault
 * with cpu->rip at its instruction) and at the block's exits, and R12
 * is reloaded from cpu->next_rip after each call, since a handler may
 * have moved it (a branch, or a REP that repeats).
 *
 * Exactly the interpreter's block loop (core/cpu.c run_block_body):
 * icount grows by n first; after a handler that sets stop_block the
 * block ends with RIP at the next instruction and icount lowered by the
 * instructions not run. */
#include "cpu/emu/jit/jit.h"
#include "cpu/emu/jit/templates.h"
#include "cpu/emu/core/block.h"

#include <stddef.h>
#include <string.h>

#define CPU_OFF(field) ((int32_t)offsetof(struct emu_cpu, field))

/* RBX = cpu; R12, R13 (the entry RIP) and the register cache's
 * callee-saved R14, R15 and RBP saved with it, and 8 bytes more, so that
 * the stack stays 16-byte aligned at every call (the caller's call left
 * it at 8 mod 16). */
static void emit_prologue(struct x86_emit *e)
{
	xe_push(e, HR_RBX);
	xe_push(e, HR_R12);
	xe_push(e, HR_R13);
	xe_push(e, HR_R14);
	xe_push(e, HR_R15);
	xe_push(e, HR_RBP);
	xe_push(e, HR_RBP);
	xe_op_rr(e, 0x89, 8, HR_RDI, HR_RBX);          /* mov rbx, rdi */
	xe_load64(e, HR_R12, HR_RBX, CPU_OFF(rip));
}

void jit_emit_epilogue(struct x86_emit *e)
{
	xe_pop(e, HR_RBP);
	xe_pop(e, HR_RBP);
	xe_pop(e, HR_R15);
	xe_pop(e, HR_R14);
	xe_pop(e, HR_R13);
	xe_pop(e, HR_R12);
	xe_pop(e, HR_RBX);
	xe_ret(e);
}

/* cpu->rip = R12 + delta */
void jit_store_rip(struct jit_ctx *t)
{
	if (t->delta) {
		xe_lea(t->e, HR_RAX, HR_R12, (int32_t)t->delta);
		xe_store64(t->e, HR_RBX, CPU_OFF(rip), HR_RAX);
	} else {
		xe_store64(t->e, HR_RBX, CPU_OFF(rip), HR_R12);
	}
}

/* A call of in->fn(cpu, in) as the interpreter makes it, and the stop
 * check after it unless it is the block's last instruction. */
static void emit_call_only(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	jit_store_rip(t);
	xe_lea(e, HR_RAX, HR_R12, (int32_t)(t->delta + in->len));
	xe_store64(e, HR_RBX, CPU_OFF(next_rip), HR_RAX);
	xe_op_rr(e, 0x89, 8, HR_RBX, HR_RDI);          /* mov rdi, rbx */
	xe_mov_imm(e, HR_RSI, (uintptr_t)in);
	xe_call(e, (uintptr_t)in->fn);
}

/* The exit of a handler that stopped the block with `left` instructions
 * not run: RIP is its next_rip, icount less those. */
static void emit_stop_exit(struct x86_emit *e, unsigned left)
{
	if (left)
		xe_grp1_mem64_imm(e, 5, HR_RBX, CPU_OFF(icount), (int32_t)left);
	xe_store64(e, HR_RBX, CPU_OFF(rip), HR_R12);
	jit_emit_epilogue(e);
}

/* Slow paths: the handler call, as emit_handler_call() makes it, of an
 * instruction whose template's inline path missed.  Its next_rip is
 * the one the template assumed (loads and stores do not branch), so
 * the inline path goes on with R12 and delta as they were. */
void jit_emit_cold(struct jit_ctx *t)
{
	struct x86_emit *e = t->e;
	for (unsigned c = 0; c < t->n_cold; c++) {
		struct jit_cold *k = &t->cold[c];
		/* Each jump's own write-back, then the handler call. */
		uint8_t *join[JIT_COLD_FROM];
		for (unsigned f = 0; f < k->n_from; f++) {
			xe_patch_here(e, k->from[f]);
			rc_cold_writeback(t, k, f);
			join[f] = f + 1 < k->n_from ? xe_jmp32(e) : NULL;
		}
		for (unsigned f = 0; f + 1 < k->n_from; f++)
			xe_patch_here(e, join[f]);
		uint64_t delta = t->delta;
		t->delta = k->delta;
		emit_call_only(t, k->in);
		t->delta = delta;
		xe_cmp_byte0(e, HR_RBX, CPU_OFF(stop_block));
		uint8_t *stop = xe_jcc32(e, 0x5);              /* jne: stop */
		rc_reload(t, k);
		uint8_t *go_on = xe_jmp32(e);                  /* resume */
		if (go_on) {
			int32_t rel = (int32_t)(k->resume - (go_on + 4));
			memcpy(go_on, &rel, 4);
		}
		xe_patch_here(e, stop);
		xe_load64(e, HR_R12, HR_RBX, CPU_OFF(next_rip));
		emit_stop_exit(e, k->left);
	}
}

/* Returns whether R12 moved: after an instruction that ends its block (a
 * branch) it is the handler's next_rip; after any other, which either
 * goes on to the next instruction or stops the block (the interpreter
 * runs the block's next instruction with no other RIP: core/cpu.c
 * run_block_body), R12 and delta stay known, so that the block's static
 * exit can still chain. */
static bool emit_handler_call(struct jit_ctx *t, const struct emu_insn *in, unsigned i)
{
	struct x86_emit *e = t->e;
	rc_flush(t);   /* the handler reads and writes cpu->gpr, and may fault */
	emit_call_only(t, in);
	if (emu_insn_ends_block(in)) {
		xe_load64(e, HR_R12, HR_RBX, CPU_OFF(next_rip));
		t->delta = 0;
		t->r12_moved = true;
	} else {
		t->delta += in->len;
	}
	/* After the last instruction too: the block's exits then never see
	 * stop_block set, so that they and their direct jumps need not
	 * check it. */
	xe_cmp_byte0(e, HR_RBX, CPU_OFF(stop_block));
	uint8_t *j = xe_jcc32(e, 0x5);                 /* jne: stop */
	if (t->n_stops < JIT_MAX_STOPS)
		t->stops[t->n_stops++] = (struct jit_stop){ .at = j, .left = t->n - i - 1 };
	return t->r12_moved;
}

/* Dead-flag elimination from what the templates of a first pass set in
 * fx[]: instruction i's flags record is dead when, after it, a
 * JIT_FX_WRITE comes before any barrier (a flags reader, a handler call,
 * a slow path that may fault, the block's end, where the run loop and
 * the next block may read them).  A dead record is never observable:
 * nothing runs between i and the overwrite that could read it, fault
 * with it in the saved RFLAGS or leave the block.  Returns whether any
 * record is dead. */
static bool find_dead_flags(struct jit_ctx *t)
{
	bool live = true, any = false;
	for (unsigned i = t->n; i-- > 0;) {
		t->flags_dead[i] = !live;
		any |= !live;
		if (t->fx[i] == JIT_FX_WRITE)
			live = false;
		else if (t->fx[i] != JIT_FX_NONE)
			live = true;
	}
	return any;
}

/* The block's code: each instruction a template or a handler call; a
 * block-ending branch with a template makes the block's exits itself
 * (jit/branch.c), else the exit is static (RIP known here) or dynamic
 * (after a handler, which set it). */
static void emit_block(struct jit_ctx *t, struct emu_jit *j, const struct emu_insn *insn)
{
	struct x86_emit *e = t->e;
	uint8_t *start = e->p;
	emit_prologue(e);
	/* Where a direct jump from another translation enters, with R12
	 * and cpu->rip at the block's start (jit/branch.c).  R13 keeps that
	 * start for the block's dynamic exits, whose stubs check that the
	 * target lies in the same linear page. */
	j->body_off = (unsigned)(e->p - start);
	xe_op_rr(e, 0x89, 8, HR_R12, HR_R13);          /* mov r13, r12 */
	xe_grp1_mem64_imm(e, 0, HR_RBX, CPU_OFF(icount), (int32_t)t->n);   /* add icount, n */
	bool ended = false, called = false;
	/* Exits chain only while the fetch context is the one the block
	 * was entered under (jit/jit.h). */
	for (unsigned i = 0; i < t->n; i++)
		t->no_chain |= !jit_keeps_fetch_context(&insn[i]);
	for (unsigned i = 0; i < t->n; i++) {
		const struct emu_insn *in = &insn[i];
		unsigned lf_known = t->lf_known;
		t->i = i;
		t->fx[i] = JIT_FX_BARRIER;   /* a branch reads the flags */
		t->lf_before = lf_known;
		t->lf_known = 0;
		t->lf_touched = t->lf_keep = false;
		called = false;
		if (i + 1 == t->n && jit_branch(t, in)) {
			ended = true;
			t->n_templates++;
		} else if (!jit_template(t, in)) {
			called = emit_handler_call(t, in, i);
		} else {
			t->delta += in->len;
			t->n_templates++;
			if (t->lf_keep || (t->fx[i] == JIT_FX_NONE && !t->lf_touched))
				t->lf_known = lf_known;
		}
	}
	if (!ended && called)
		jit_exit_dynamic(t);
	else if (!ended)
		jit_exit_static(t, (int64_t)t->delta);
	/* The exits of a handler that stopped the block: RIP is its
	 * next_rip, icount less the instructions not run. */
	for (unsigned s = 0; s < t->n_stops; s++) {
		xe_patch_here(e, t->stops[s].at);
		xe_load64(e, HR_R12, HR_RBX, CPU_OFF(next_rip));
		emit_stop_exit(e, t->stops[s].left);
	}
	jit_emit_cold(t);
	jit_emit_exit_records(t);
}

emu_jit_code emu_jit_translate(struct emu_jit *j, const struct emu_insn *insn, unsigned n, unsigned mode,
				int page_off, void *from)
{
	if (n > JIT_MAX_INSNS)
		return NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		size_t start = (j->used + 15) & ~(size_t)15;
		if (start >= j->size) {
			if (j->owner_flushes) {
				j->full = true;
				return NULL;
			}
			emu_jit_flush(j);
			continue;
		}
		struct x86_emit e;
		struct jit_ctx t;
		bool dead[JIT_MAX_INSNS] = { false };
		/* A first pass finds which instructions have templates and
		 * what they do to the flags; a second, only when some flags
		 * record is dead, emits the block without those records. */
		for (int pass = 0; pass < 2; pass++) {
			e = (struct x86_emit){ .p = j->rw + start, .end = j->rw + j->size,
					       .rx_delta = (uintptr_t)(j->rx - j->rw) };
			t = (struct jit_ctx){ .e = &e, .n = n, .mode = mode, .page_off = page_off, .from = from,
					      .next = j->next };
			memcpy(t.flags_dead, dead, sizeof(dead));
			emit_block(&t, j, insn);
			if (pass || e.full || !find_dead_flags(&t))
				break;
			memcpy(dead, t.flags_dead, sizeof(dead));
		}
		if (!e.full && (t.n_stops >= JIT_MAX_STOPS || t.unfit))
			return NULL;   /* too many stops or slow-path jumps for one block: interpreted */
		if (e.full) {
			if (start == 0)
				return NULL;   /* cannot hold it even empty */
			if (j->owner_flushes) {
				j->full = true;
				return NULL;
			}
			emu_jit_flush(j);
			continue;
		}
		__atomic_store_n(&j->used, (size_t)(e.p - j->rw), __ATOMIC_RELAXED);   /* read by ctl stats */
		if (j->used > j->peak)
			__atomic_store_n(&j->peak, j->used, __ATOMIC_RELAXED);
		/* Read by `vessel ctl stats` from another thread. */
		__atomic_store_n(&j->blocks, j->blocks + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&j->bytes, j->bytes + (j->used - start), __ATOMIC_RELAXED);
		__atomic_store_n(&j->insns_template, j->insns_template + t.n_templates, __ATOMIC_RELAXED);
		__atomic_store_n(&j->insns_call, j->insns_call + (n - t.n_templates), __ATOMIC_RELAXED);
		__atomic_store_n(&j->flags_skipped, j->flags_skipped + t.n_flags_skipped, __ATOMIC_RELAXED);
		/* from is the block (core/cpu.c), or NULL in the unit tests. */
		emu_jit_perf_map(j->rx + start, j->used - start, from ? ((const struct emu_block *)from)->gpa : 0, n);
		return (emu_jit_code)(void *)(j->rx + start);
	}
	return NULL;
}
