/* Inline templates (jit/templates.c): host code for the simple forms
 * that dominate guest code, doing what their handlers do without a call. */
#ifndef VESSEL_CPU_EMU_JIT_TEMPLATES_H
#define VESSEL_CPU_EMU_JIT_TEMPLATES_H

#include "cpu/emu/jit/jit.h"
#include "cpu/emu/jit/x86_emit.h"

#define JIT_MAX_STOPS 40
#define JIT_MAX_COLD 32
#define JIT_MAX_INSNS 32      /* EMU_BLOCK_MAX_INSNS */

/* What an instruction's code does to the lazy flags (struct
 * emu_lazy_flags), for dead-flag elimination (translate.c): a template
 * sets t->fx[t->i]; anything else -- a handler call, a template that
 * reads the flags or has a slow path that may fault -- is a barrier. */
enum jit_fx {
	JIT_FX_BARRIER = 0,   /* may read the flags, fault or leave the block */
	JIT_FX_NONE,          /* none of those, and writes no flags */
	JIT_FX_WRITE,         /* none of those, and writes the whole record */
};

/* Where a block leaves early: a handler set stop_block with `left`
 * instructions of the block not run. */
struct jit_stop {
	uint8_t *at;          /* rel32 of the jne to patch */
	unsigned left;
};

/* The register cache (templates.c): guest registers held in host
 * registers within a translation, slot s in jit_rc_host[s]. */
#define JIT_RC_SLOTS 6
struct jit_rc_slot {
	uint8_t g;            /* the guest register */
	bool valid, dirty;    /* dirty: newer than cpu->gpr[g] */
	unsigned last;        /* when last used, for the choice of a victim */
};

/* An out-of-line slow path: the handler call for an instruction whose
 * template's inline path missed (a TLB miss, say), then back. */
#define JIT_COLD_FROM 4
struct jit_cold {
	uint8_t *from[JIT_COLD_FROM];  /* rel32s of the jumps to it */
	unsigned n_from;
	/* The guest registers dirty in host registers at each jump (slot s
	 * holding from_g[f][s] when bit s of from_dirty[f]): the slow path
	 * writes them back first, so that the inline path need not. */
	uint8_t from_dirty[JIT_COLD_FROM];
	uint8_t from_g[JIT_COLD_FROM][JIT_RC_SLOTS];
	uint8_t *resume;      /* where the inline path goes on */
	/* The guest registers cached at resume (slot s: rc_g[s] when bit
	 * s of rc_live): the slow path reloads them after the handler. */
	unsigned rc_live;
	uint8_t rc_g[JIT_RC_SLOTS];
	const struct emu_insn *in;
	uint64_t delta;
	unsigned left;        /* instructions after it in the block */
};

/* An exit of the block (jit/branch.c): the lea of its record, which
 * follows the code, and the jump to patch (NULL: not chainable). */
#define JIT_MAX_EXITS 4
struct jit_exit_site {
	uint8_t *lea;         /* rel32 of lea rax, [rip + record] */
	uint8_t *jmp;         /* rel32 of the exit's jmp, writable view */
	bool dynamic;         /* the target varies */
	bool in_page;         /* a constant target in the block's page */
};

struct jit_ctx {
	struct x86_emit *e;
	unsigned n;           /* instructions in the block */
	unsigned i;           /* the one being translated */
	unsigned mode;        /* enum emu_mode of the block */
	int page_off;         /* the block's offset in its guest page; -1: unknown */
	/* R12 was reloaded after a handler: no longer the block's start
	 * plus a constant (exits to a constant target are then unknown). */
	bool r12_moved;
	/* A template asked for more than a slow path can take (to_cold):
	 * the block is left to the interpreter. */
	bool unfit;
	/* An instruction of the block may change the fetch context
	 * (jit_keeps_fetch_context): no exit chains. */
	bool no_chain;
	unsigned n_cold;
	struct jit_cold cold[JIT_MAX_COLD];
	/* Bytes of guest code between the RIP in R12 and the current
	 * instruction (translate.c). */
	uint64_t delta;
	unsigned n_stops;
	struct jit_stop stops[JIT_MAX_STOPS];
	/* Dead-flag elimination: fx[] as the templates set it, and
	 * flags_dead[i] when nothing can see instruction i's flags record
	 * (a later JIT_FX_WRITE overwrites it first). */
	uint8_t fx[JIT_MAX_INSNS];
	bool flags_dead[JIT_MAX_INSNS];
	/* The kind | size of the flags record an earlier template of the
	 * block left (alu_tail: ADD or SUB without carry, logic), 0 when
	 * unknown; for CMOVcc and SETcc (jit/alu.c).  A template that
	 * changes the record while JIT_FX_NONE sets lf_touched, one that
	 * leaves it while a barrier sets lf_keep. */
	unsigned lf_known;
	bool lf_touched, lf_keep;
	/* lf_known as it was before the current instruction: what a
	 * template that reads the flags (Jcc, CMOVcc, SETcc, ADC, INC)
	 * finds in the record. */
	unsigned lf_before;
	/* Guest registers in host registers (templates.c "register cache"). */
	struct jit_rc_slot rc[JIT_RC_SLOTS];
	unsigned rc_clock;
	/* Counted as the block is translated (struct emu_jit). */
	unsigned n_templates, n_flags_skipped;
	/* Block exits (jit/branch.c): the block's tag for its exit records,
	 * and the exits whose records follow the code. */
	void *from;
	void *(*next)(struct emu_cpu *cpu);   /* struct emu_jit's */
	unsigned n_exits;
	struct jit_exit_site exits[JIT_MAX_EXITS];
};

/* Emits in's template and returns true, or returns false when in has
 * none (the translator then calls its handler).  A template's inline
 * code never faults and never sets stop_block: whatever might (a TLB
 * miss) jumps to its slow path, a handler call out of line
 * (struct jit_cold).  It may use RAX, RCX, RDX, RSI, RDI and R8
 * (caller-saved) and must leave RBX, R12, R13 (the block's entry RIP,
 * jit/branch.c) and the register cache's (R14, R15, RBP, R9-R11)
 * alone. */
bool jit_template(struct jit_ctx *t, const struct emu_insn *in);
/* cpu->rip = R12 + delta: for a template that calls out. */
void jit_store_rip(struct jit_ctx *t);
/* Emits the slow paths (after the block's exits). */
void jit_emit_cold(struct jit_ctx *t);
/* The translation's return (translate.c). */
void jit_emit_epilogue(struct x86_emit *e);

/* ---- shared with the control-transfer templates (jit/branch.c) ---- */
/* A slow path for in (NULL when the block has no room for one, or
 * outside 64-bit code), a jump to it, and the inline TLB hit path of a
 * size-byte access at offset RAX in segment seg, leaving RSI = linear
 * address and RAX = its host addend (templates.c). */
struct jit_cold *cold_new(struct jit_ctx *t, const struct emu_insn *in);
void to_cold(struct jit_ctx *t, struct jit_cold *k, unsigned cc);
void emit_tlb_hit(struct jit_ctx *t, unsigned seg, unsigned size, bool write, struct jit_cold *k);

/* The block's last instruction when it is a near Jcc, JMP or CALL rel,
 * RET, or JMP or CALL through a 64-bit register in 64-bit code: emits
 * it with the block's exits and returns true;
 * false: no template (the translator calls its handler). */
bool jit_branch(struct jit_ctx *t, const struct emu_insn *in);
/* The block's end: RIP = R12 + off, chainable in 64-bit code. */
void jit_exit_static(struct jit_ctx *t, int64_t off);
/* The block's end where RIP = R12, a target that varies. */
void jit_exit_dynamic(struct jit_ctx *t);
/* Whether an instruction leaves the fetch context (address space, TLB,
 * CPL, mode) as it was: one that does not end blocks (but INVPCID), or
 * a near transfer. */
bool jit_keeps_fetch_context(const struct emu_insn *in);
/* Writes the exit records after the block's code. */
void jit_emit_exit_records(struct jit_ctx *t);

/* When the record before the current instruction is of a known kind
 * (t->lf_before: an ADD or SUB without carry, a logic operation): emits
 * the host operation that redoes it on the recorded operands at their
 * size, which leaves every host status flag as the guest's, and returns
 * true; false, emitting nothing, otherwise (jit/alu.c).  Uses RAX. */
bool jit_flags_from_record(struct jit_ctx *t);

/* Whether the current instruction may skip its flags record. */
static inline bool jit_flags_dead(const struct jit_ctx *t)
{
	return t->flags_dead[t->i];
}

/* ---- the register cache (templates.c) ----
 * Within a translation, a guest register is loaded into a host register
 * on first use and stays there; a write goes to the host register only
 * (dirty).  Dirty registers are written back to cpu->gpr before
 * anything that may read cpu->gpr or fault: a handler call, a helper
 * call (caller-saved slots), the block's exits, and on the way into a
 * slow path (to_cold: in the slow path itself, the inline one stores
 * nothing).
 * So cpu->gpr at a fault or an exit is the interpreter's.  Templates
 * reach guest registers only through these (or after rc_evict). */
/* The host register that holds guest register g, loaded if need be. */
unsigned rc_get(struct jit_ctx *t, unsigned g);
/* The host register for an instruction that writes guest register g
 * (rc_def: not loaded) or changes it (rc_modify: loaded); the template
 * then writes that host register itself. */
unsigned rc_def(struct jit_ctx *t, unsigned g);
unsigned rc_modify(struct jit_ctx *t, unsigned g);
/* Dirty slots written back; they stay cached. */
void rc_writeback(struct jit_ctx *t);
/* Written back and forgotten: before a handler call or an exit. */
void rc_flush(struct jit_ctx *t);
/* Before a call of a C helper that reads no guest register: the slots
 * in caller-saved host registers written back and forgotten. */
void rc_clobber(struct jit_ctx *t);
/* Guest register g written back and forgotten, before code that
 * accesses cpu->gpr[g] in memory (its byte and word parts). */
void rc_evict(struct jit_ctx *t, unsigned g);
/* k's inline path goes on here: records the cached registers for the
 * slow path to reload. */
void cold_resume(struct jit_ctx *t, struct jit_cold *k);
/* In k's slow path, before its jump back: the registers cached there. */
void rc_reload(struct jit_ctx *t, const struct jit_cold *k);
/* In k's slow path, entered from its jump f: the registers dirty at that
 * jump written back (to_cold). */
void rc_cold_writeback(struct jit_ctx *t, const struct jit_cold *k, unsigned f);

/* ---- shared by the template files (templates.c) ---- */
/* mov hr, gpr[g] (size 4: zero-extended) */
void load_gpr(struct jit_ctx *t, unsigned hr, unsigned g, unsigned size);
/* gpr[g] = hr, zero-extended from 32 bits first for size 4 (reg_set). */
void store_gpr(struct jit_ctx *t, unsigned g, unsigned hr, unsigned size);
/* gpr[g] = the constant v (reg_set of a 64-bit value) */
void store_gpr_imm(struct jit_ctx *t, unsigned g, uint64_t v);
/* lf_set(cpu, kind, size, res = RDX, src1 = RAX, src2 = RCX), or with
 * src1 = src2 = 0 for LF_LOGIC; nothing when the flags are dead. */
void record_flags(struct jit_ctx *t, unsigned kind, unsigned size);
/* alu() with RAX = a, RCX = b masked to size, for ADD, OR, AND, SUB,
 * XOR, CMP: RDX = the unmasked result, flags recorded, then the
 * destination register unless CMP or dst is EMU_REG_NONE. */
void alu_tail(struct jit_ctx *t, unsigned op, unsigned size, unsigned dst);
/* RAX = emu_insn_ea() */
void emit_ea(struct jit_ctx *t, const struct emu_insn *in);
/* in is the specialised form its opcode, operand kind and size get. */
bool is_plain_form(const struct emu_insn *in, bool modrm);
/* SHL/SHR/SAR (in's ModRM.reg) of register in->rm by the constant c. */
bool emit_shift_ri(struct jit_ctx *t, const struct emu_insn *in, unsigned size, unsigned c);
/* The templates of jit/alu.c; false when in has none there. */
bool jit_template_alu(struct jit_ctx *t, const struct emu_insn *in);

#endif
