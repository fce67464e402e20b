/* Block exits of translated code (docs/architecture.md "Code
 * generation"): templates for the control transfers that end a block in
 * 64-bit code -- Jcc rel, JMP rel, near CALL rel and RET -- and the
 * direct jumps between translations.
 *
 * A block's code leaves through an exit that stores RIP, writes the
 * exit's record (jit/jit.h struct emu_jit_exit, placed after the code)
 * into cpu->jit_exit and returns to the chain loop (core/cpu.c).  In
 * 64-bit code an exit that may chain (one whose target can lie in the
 * block's own page, jit/jit.h) goes through a jmp rel32 that first
 * points at the very next byte, the return.  Once the loop has found
 * the successor in the same page and the successor has a translation,
 * emu_jit_chain() appends a stub to the cache and points the jmp at it:
 * the stub checks, for a target that varies (RET, an indirect jump),
 * that it is the successor's RIP and in the linear page the block was
 * entered by (R13), makes the chain loop's checks between blocks and
 * jumps into the successor's body (after its prologue; R12 and cpu->rip
 * are already its start), or, when one fails, to the return as before.
 * The code is the VM's, run by all its vCPUs: the stub compares nothing
 * of one vCPU's with a constant, only what the running vCPU's own
 * fields say (through RBX) and what is the VM's (page generations).
 *
 * A successor in another guest page gets a far stub, which checks the
 * target and the running vCPU's jump cache entry for it instead of the
 * page (jit/jit.h emu_jit_chain).
 *
 * Patches live in the cache they point into: a flush of the code cache
 * forgets them with the translations, and a successor decoded anew (its
 * page written) fails the stub's page-generation check, so the loop
 * finds the new block and, once that is translated, the exit is
 * pointed at it. */
#include "cpu/emu/jit/templates.h"

#include "cpu/emu/core/block.h"
#include "cpu/emu/core/core.h"
#include "machine/machine.h"
#include "util/trace.h"

#include <stddef.h>
#include <string.h>

#define CPU_OFF(field) ((int32_t)offsetof(struct emu_cpu, field))
#define CV_OFF(field) ((int32_t)offsetof(struct emu_core_vcpu, field))
#define GPR(r) (CPU_OFF(gpr) + 8 * (int32_t)(r))

/* Jcc's condition from the lazy flags, one function per condition so
 * that each folds into emu_cond()'s fast paths as the handlers do. */
#define COND(cc)                                                        \
	static bool cond_##cc(const struct emu_cpu *cpu)                \
	{                                                               \
		return emu_cond(cpu, cc);                               \
	}
COND(0) COND(1) COND(2) COND(3) COND(4) COND(5) COND(6) COND(7)
COND(8) COND(9) COND(10) COND(11) COND(12) COND(13) COND(14) COND(15)
static bool (*const cond_fn[16])(const struct emu_cpu *) = {
	cond_0, cond_1, cond_2, cond_3, cond_4, cond_5, cond_6, cond_7,
	cond_8, cond_9, cond_10, cond_11, cond_12, cond_13, cond_14, cond_15,
};

static void setcc_al(struct x86_emit *e, unsigned cc)
{
	xe_u8(e, 0x0f);
	xe_u8(e, (uint8_t)(0x90 | cc));
	xe_u8(e, 0xc0);                                    /* setcc al */
}

/* AL = condition cc (emu_cond), where the block does not know the
 * record's kind (jit_flags_from_record), inline for the lazy-flags
 * records that precede most branches, with the host's own flags: CMP/SUB of 4 or 8
 * bytes (when res is src1 - src2 exactly, not an SBB with borrow, a host
 * CMP of the operands gives every flag), a logic operation of 4 or 8
 * bytes (a host CMP of the result with 0: ZF, SF, PF from it, CF = OF =
 * 0), and for E/NE/S/NS any record of 4 or 8 bytes (ZF and SF come from
 * the result).  Anything else calls emu_cond(). */
static void emit_cond(struct x86_emit *e, unsigned cc)
{
	uint8_t *done[8], *slow[4];
	unsigned n_done = 0, n_slow = 0;
#define TO(list, n, cond)                                               	do {                                                            		uint8_t *at_ = (cond) < 16 ? xe_jcc32(e, (cond)) : xe_jmp32(e); 		if ((n) < sizeof(list) / sizeof(list[0]))                			list[(n)++] = at_;                              	} while (0)
	xe_op_mem(e, 0x8b, 4, HR_RAX, HR_RBX, CPU_OFF(lf.op));              /* mov eax, [lf.op] */
	for (unsigned size = 8; size >= 4; size -= 4) {
		xe_u8(e, 0x3d);
		xe_u32(e, LF_SUB | size);                                   /* cmp eax, SUB|size */
		uint8_t *not_sub = xe_jcc32(e, 0x5);
		xe_load64(e, HR_RCX, HR_RBX, CPU_OFF(lf.src1));
		xe_load64(e, HR_RDX, HR_RBX, CPU_OFF(lf.src2));
		xe_op_rr(e, 0x89, 8, HR_RCX, HR_RSI);
		xe_op_rr(e, 0x29, 8, HR_RDX, HR_RSI);                      /* rsi = src1 - src2 */
		xe_op_mem(e, 0x3b, size, HR_RSI, HR_RBX, CPU_OFF(lf.res)); /* cmp rsi/esi, [res] */
		TO(slow, n_slow, 0x5);
		xe_op_rr(e, 0x39, size, HR_RDX, HR_RCX);                   /* cmp src1, src2 */
		setcc_al(e, cc);
		TO(done, n_done, 16);
		xe_patch_here(e, not_sub);
		xe_u8(e, 0x3d);
		xe_u32(e, LF_LOGIC | size);                                 /* cmp eax, LOGIC|size */
		uint8_t *not_logic = xe_jcc32(e, 0x5);
		xe_op_mem(e, 0x83, size, 7, HR_RBX, CPU_OFF(lf.res));
		xe_u8(e, 0);                                                /* cmp [res], 0 */
		setcc_al(e, cc);
		TO(done, n_done, 16);
		xe_patch_here(e, not_logic);
	}
	if ((cc >> 1) == 2 || (cc >> 1) == 4) {                             /* E/NE, S/NS */
		xe_u8(e, 0xa9);
		xe_u32(e, ~0xfu);                                           /* test eax, kind */
		TO(slow, n_slow, 0x4);                                      /* LF_NONE */
		xe_grp1_reg_imm(e, 4, 4, HR_RAX, 0xf);                      /* and eax, 0xf: the size */
		for (unsigned size = 8; size >= 4; size -= 4) {
			xe_u8(e, 0x3d);
			xe_u32(e, size);
			uint8_t *other = xe_jcc32(e, 0x5);
			xe_op_mem(e, 0x83, size, 7, HR_RBX, CPU_OFF(lf.res));
			xe_u8(e, 0);
			setcc_al(e, cc);
			TO(done, n_done, 16);
			xe_patch_here(e, other);
		}
	}
	for (unsigned i = 0; i < n_slow; i++)
		xe_patch_here(e, slow[i]);
	xe_op_rr(e, 0x89, 8, HR_RBX, HR_RDI);                              /* mov rdi, rbx */
	xe_call(e, (uintptr_t)cond_fn[cc]);
	for (unsigned i = 0; i < n_done; i++)
		xe_patch_here(e, done[i]);
#undef TO
}

/* R12 += off */
static void add_r12(struct x86_emit *e, int64_t off)
{
	if (!off)
		return;
	if (off == (int32_t)off) {
		xe_lea(e, HR_R12, HR_R12, (int32_t)off);
	} else {
		xe_mov_imm(e, HR_RAX, (uint64_t)off);
		xe_op_rr(e, 0x01, 8, HR_RAX, HR_R12);          /* add r12, rax */
	}
}

/* jmp to a known place of the buffer (writable view) */
static void jmp_to(struct x86_emit *e, const uint8_t *target)
{
	uint8_t *at = xe_jmp32(e);
	if (at) {
		int32_t rel = (int32_t)(target - (at + 4));
		memcpy(at, &rel, 4);
	}
}

/* jcc rel8 forward, patched by patch8(): the code it skips is short. */
static uint8_t *jcc8(struct x86_emit *e, unsigned cc)
{
	xe_u8(e, (uint8_t)(0x70 | cc));
	uint8_t *at = e->full ? NULL : e->p;
	xe_u8(e, 0);
	return at;
}

static bool patch8(struct x86_emit *e, uint8_t *at)
{
	if (!at)
		return false;
	ptrdiff_t rel = e->p - (at + 1);
	if (rel > 127)
		return false;
	*at = (uint8_t)rel;
	return true;
}

/* The jmp of an exit that may chain, its rel32 4-byte aligned: the
 * patch (emu_jit_chain) rewrites it with one aligned 4-byte store,
 * which another vCPU executing the jmp meanwhile sees whole, old or new
 * (an aligned store that does not cross a cache line is atomic, also
 * for instruction fetch: SDM vol. 3A 9.1.1, 9.1.3). */
static uint8_t *exit_jmp(struct x86_emit *e)
{
	while ((((uintptr_t)e->p + 1) & 3) && !e->full)
		xe_u8(e, 0x90);                                /* nop */
	return xe_jmp32(e);
}

/* The return: the exit's record into jit_exit, then, in 64-bit code,
 * the owner's lookup of the next block (struct emu_jit next): its body
 * runs on in this frame when it has one and the chain loop's checks
 * pass, so that an exit with no direct jump -- a target in another page,
 * a return to another caller -- costs a call, not a return to the loop
 * and a call from it, whose one indirect call site mispredicts; then
 * the epilogue. */
static void exit_tail(struct jit_ctx *t, uint8_t *jmp, bool dynamic, bool in_page)
{
	struct x86_emit *e = t->e;
	if (t->n_exits >= JIT_MAX_EXITS) {
		xe_store64_imm(e, HR_RBX, CPU_OFF(jit_exit), 0);
		jit_emit_epilogue(e);
		return;
	}
	xe_u8(e, 0x48);
	xe_u8(e, 0x8d);
	xe_u8(e, 0x05);                                 /* lea rax, [rip + record] */
	uint8_t *lea = e->full ? NULL : e->p;
	xe_u32(e, 0);
	xe_store64(e, HR_RBX, CPU_OFF(jit_exit), HR_RAX);
	t->exits[t->n_exits++] = (struct jit_exit_site){ .lea = lea, .jmp = jmp, .dynamic = dynamic, .in_page = in_page };
	if (t->next && t->mode == EMU_MODE_LONG64 && !t->no_chain) {
		xe_op_rr(e, 0x89, 8, HR_RBX, HR_RDI);          /* mov rdi, rbx */
		xe_call(e, (uintptr_t)t->next);
		xe_op_rr(e, 0x85, 8, HR_RAX, HR_RAX);          /* test rax, rax */
		uint8_t *none = jcc8(e, 0x4);                  /* jz: return */
		xe_u8(e, 0xff);
		xe_u8(e, 0xe0);                                /* jmp rax */
		patch8(e, none);
	}
	jit_emit_epilogue(e);
}

void jit_exit_static(struct jit_ctx *t, int64_t off)
{
	struct x86_emit *e = t->e;
	rc_flush(t);
	/* Only 64-bit code chains: elsewhere RIP wraps after the block
	 * (core/cpu.c block_wrap_rip).  A near link needs the target in the
	 * block's page: R12 still the block's start, the offset within the
	 * page; a far one compares the target (jit.h). */
	bool chain = t->mode == EMU_MODE_LONG64 && !t->no_chain;
	bool in_page = t->page_off >= 0 && !t->r12_moved && t->page_off + off >= 0 && t->page_off + off < 4096;
	add_r12(e, off);
	xe_store64(e, HR_RBX, CPU_OFF(rip), HR_R12);
	exit_tail(t, chain ? exit_jmp(e) : NULL, false, in_page);   /* to the next byte until patched */
}

/* The stub's first check is the target, so an exit whose target varies
 * may be patched too: it goes on directly while the target is the one
 * the stub was made for. */
void jit_exit_dynamic(struct jit_ctx *t)
{
	struct x86_emit *e = t->e;
	rc_flush(t);
	xe_store64(e, HR_RBX, CPU_OFF(rip), HR_R12);
	exit_tail(t, !t->no_chain && t->mode == EMU_MODE_LONG64 ? exit_jmp(e) : NULL, true, false);
}

bool jit_keeps_fetch_context(const struct emu_insn *in)
{
	unsigned op = in->opcode, reg = (in->modrm >> 3) & 7;
	/* INVPCID flushes TLB entries without ending its block. */
	if (in->opmap == EMU_MAP_0F38 && op == 0x82)
		return false;
	if (!emu_insn_ends_block(in))
		return true;
	if (in->opmap == EMU_MAP_0F)
		return op >= 0x80 && op <= 0x8f;                       /* Jcc rel */
	return in->opmap == EMU_MAP_1B &&
	       ((op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3) || /* Jcc, LOOP, JCXZ */
		op == 0xe8 || op == 0xe9 || op == 0xeb ||              /* CALL, JMP rel */
		op == 0xc2 || op == 0xc3 ||                            /* RET near */
		(op == 0xff && (reg == 2 || reg == 4)));               /* CALL, JMP near indirect */
}

void jit_emit_exit_records(struct jit_ctx *t)
{
	struct x86_emit *e = t->e;
	while (((uintptr_t)e->p & 7) && !e->full)
		xe_u8(e, 0xcc);
	for (unsigned i = 0; i < t->n_exits; i++) {
		const struct jit_exit_site *s = &t->exits[i];
		struct emu_jit_exit rec = {
			.from = t->from,
			.page = t->from ? ((const struct emu_block *)t->from)->page : ~0ull,
			.jmp = s->jmp ? (uint8_t *)((uintptr_t)s->jmp + e->rx_delta) : NULL,
			.dynamic = s->dynamic,
			.in_page = s->in_page,
			.lin = ~0ull,
		};
		uint8_t *at = e->p;
		xe_bytes(e, &rec, sizeof(rec));
		if (!e->full && s->lea) {
			int32_t rel = (int32_t)(at - (s->lea + 4));
			memcpy(s->lea, &rel, 4);
		}
	}
}

/* The handler the opcode table gives in's opcode in 64-bit code: the
 * form a template stands for (no ModRM: register forms). */
static bool is_plain64(const struct emu_insn *in)
{
	return in->opsize == 8 && !in->lock &&
	       in->fn == emu_handler_find(in->opmap, in->opcode, in->mprefix, 0, false, in->opsize);
}

/* A near CALL's push of its return address, as PUSH does it (the
 * write, then RSP); a miss goes to k, the call's handler. */
static void emit_push_return(struct jit_ctx *t, const struct emu_insn *in, struct jit_cold *k)
{
	struct x86_emit *e = t->e;
	xe_load64(e, HR_RAX, HR_RBX, GPR(RSP));
	xe_lea(e, HR_RAX, HR_RAX, -8);
	emit_tlb_hit(t, SEG_SS, 8, true, k);
	xe_lea(e, HR_RCX, HR_R12, (int32_t)(t->delta + in->len));     /* the return address */
	xe_mem_bi(e, 0x89, 8, HR_RCX, HR_RAX, HR_RSI);                 /* mov [rax + rsi], rcx */
	xe_store64(e, HR_RBX, GPR(RSP), HR_RSI);
}

/* CALL rel32 (call_rel64 of core/int_control.c): the push, then the
 * jump. */
static bool emit_call(struct jit_ctx *t, const struct emu_insn *in)
{
	struct jit_cold *k = cold_new(t, in);
	if (!k)
		return false;
	emit_push_return(t, in, k);
	/* The slow path's handler made the same push and jump. */
	cold_resume(t, k);
	jit_exit_static(t, (int64_t)(t->delta + in->len) + (int64_t)in->imm);
	return true;
}

/* RET (ret64): the pop as POP does it; the exit's stub goes on where
 * the return went last time, else the chain loop's links and jump cache
 * find the block. */
static bool emit_ret(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	struct jit_cold *k = cold_new(t, in);
	if (!k)
		return false;
	xe_load64(e, HR_RAX, HR_RBX, GPR(RSP));
	emit_tlb_hit(t, SEG_SS, 8, false, k);
	xe_mem_bi(e, 0x8b, 8, HR_RAX, HR_RAX, HR_RSI);                 /* mov rax, [rax + rsi] */
	xe_lea(e, HR_RSI, HR_RSI, 8);
	xe_store64(e, HR_RBX, GPR(RSP), HR_RSI);
	xe_store64(e, HR_RBX, CPU_OFF(next_rip), HR_RAX);
	/* Here the slow path's handler left the target in next_rip too. */
	cold_resume(t, k);
	xe_load64(e, HR_R12, HR_RBX, CPU_OFF(next_rip));
	jit_exit_dynamic(t);
	return true;
}

/* CALL and JMP near indirect, 64-bit (FF /2, /4: h_call_rm, h_jmp_rm)
 * through a register or memory: the target read first (CALL RSP calls
 * the RSP before the push; a memory target through the inline TLB path,
 * whose miss goes to the slow path as the push's does), CALL's push as
 * emit_call() makes it, then a dynamic exit to the target, as emit_ret()
 * leaves through. */
static bool emit_indirect(struct jit_ctx *t, const struct emu_insn *in, bool call)
{
	struct x86_emit *e = t->e;
	bool mem = in->mod != 3;
	struct jit_cold *k = call || mem ? cold_new(t, in) : NULL;
	if ((call || mem) && !k)
		return false;
	if (mem) {
		emit_ea(t, in);
		emit_tlb_hit(t, in->seg, 8, false, k);
		xe_mem_bi(e, 0x8b, 8, HR_R8, HR_RAX, HR_RSI);                /* mov r8, [rax + rsi]: the target */
	} else {
		xe_load64(e, HR_R8, HR_RBX, GPR(in->rm));                    /* the target */
	}
	if (!k) {
		xe_op_rr(e, 0x89, 8, HR_R8, HR_R12);                         /* mov r12, r8 */
	} else {
		if (call)
			emit_push_return(t, in, k);
		xe_store64(e, HR_RBX, CPU_OFF(next_rip), HR_R8);
		/* Here the slow path's handler left the target in next_rip too. */
		cold_resume(t, k);
		xe_load64(e, HR_R12, HR_RBX, CPU_OFF(next_rip));
	}
	jit_exit_dynamic(t);
	return true;
}

bool jit_branch(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	unsigned grp = (in->modrm >> 3) & 7;
	if (t->mode == EMU_MODE_LONG64 && in->opmap == EMU_MAP_1B && in->opcode == 0xff &&
	    (grp == 2 || grp == 4) && in->opsize == 8 && !in->lock &&
	    in->fn == emu_handler_find(in->opmap, in->opcode, in->mprefix, grp, in->mod != 3, in->opsize)) {
		rc_flush(t);   /* the target and RSP in cpu->gpr */
		return emit_indirect(t, in, grp == 2);
	}
	if (t->mode != EMU_MODE_LONG64 || !is_plain64(in))
		return false;
	/* Before the condition: both ways leave the block, and CALL and
	 * RET reach RSP in cpu->gpr. */
	rc_flush(t);
	int64_t next = (int64_t)(t->delta + in->len);
	unsigned op = in->opcode;
	if (in->opmap == EMU_MAP_1B && (op == 0xe9 || op == 0xeb)) {       /* JMP rel */
		jit_exit_static(t, next + (int64_t)in->imm);
		return true;
	}
	if ((in->opmap == EMU_MAP_1B && op >= 0x70 && op <= 0x7f) ||
	    (in->opmap == EMU_MAP_0F && op >= 0x80 && op <= 0x8f)) {           /* Jcc rel */
		uint8_t *taken;
		if (jit_flags_from_record(t)) {
			taken = xe_jcc32(e, op & 15);                      /* the guest's own jcc */
		} else {
			emit_cond(e, op & 15);
			xe_u8(e, 0x84);
			xe_u8(e, 0xc0);                                    /* test al, al */
			taken = xe_jcc32(e, 0x5);                          /* jnz */
		}
		jit_exit_static(t, next);
		xe_patch_here(e, taken);
		jit_exit_static(t, next + (int64_t)in->imm);
		return true;
	}
	if (in->opmap == EMU_MAP_1B && op == 0xe8)
		return emit_call(t, in);
	if (in->opmap == EMU_MAP_1B && op == 0xc3)
		return emit_ret(t, in);
	return false;
}

/* ---- direct jumps: the stub behind a patched exit ---- */

/* mov rax, imm64 in its long form, so that the constant can be
 * rewritten in place: returns where it lies. */
static uint8_t *mov_rax_imm64(struct x86_emit *e, uint64_t v)
{
	xe_u8(e, 0x48);
	xe_u8(e, 0xb8);
	uint8_t *at = e->p;
	xe_u64(e, v);
	return at;
}

/* The writable view of an executable address of the cache. */
static uint8_t *to_rw(const struct emu_jit *j, uintptr_t rx)
{
	return j->rw + (rx - (uintptr_t)j->rx);
}

/* The chain loop's checks between blocks (core/cpu.c emu_vcpu_run),
 * inline in every stub as one test of the chain gate (struct emu_cpu
 * chain_stop), its failure a jcc32 recorded in fails[]:
 * icount below the gate, which the loop opens to the run budget as it
 * enters translated code, with no event pending that would stop the
 * chain (core/cpu.c events_stop_chain) and the write epoch synced, and
 * which an event posted through the engine's kick, a moved write epoch
 * or a flush of the block cache closes (a flush waits for this vCPU to
 * leave its blocks: core/block.c flush_locked).
 * An interrupt request while IF = 0 reopens it at the loop: only
 * instructions that end their block without chaining set IF.  Not
 * checked:
 * - a stop: a handler that sets stop_block, the last instruction's
 *   included, is followed by a jump to the block's stop exit, which has
 *   no direct jump (jit/translate.c emit_handler_call);
 * - tracing, which is on or off for the whole run, and when on keeps
 *   the loop from entering translated code;
 * - TF/RF, DR7 and a pending debug trap, which the loop checks before it
 *   enters translated code (core/cpu.c needs_one_insn): only
 *   instructions that end their block change TF/RF or DR7 (POPF, IRET,
 *   SYSRET, MOV DR7...), such a block has no exit that chains
 *   (jit_keeps_fetch_context), and a debug trap comes only from
 *   single-step, breakpoints DR7 enables, or a task switch (a far
 *   transfer);
 * - the interrupt shadows: only instructions that end their block open
 *   one (STI, MOV SS, POP SS), whose blocks have no exit that chains,
 *   and a block is entered with none (the loop ends them, or runs the
 *   instruction after one alone).
 * Uses RAX.  Returns how many failures it recorded. */
static unsigned emit_chain_checks(struct x86_emit *e, uint8_t **fails)
{
	xe_load64(e, HR_RAX, HR_RBX, CPU_OFF(icount));
	xe_op_mem(e, 0x3b, 8, HR_RAX, HR_RBX, CPU_OFF(chain_stop));       /* cmp rax, [chain_stop] */
	fails[0] = xe_jcc32(e, 0x3);                                       /* jae */
	return 1;
}

/* A far link's own checks (emu_jit_chain): the running vCPU's jump
 * cache entry for lin (core/block.h emu_jump_slot) holds lin, the
 * vCPU's fetch context now (cpu->chain_key, its emu_chain_key() as it
 * entered translated code, which a chained block cannot change) and
 * body, the successor's body.  An entry is written only by the vCPU's
 * own lookup of lin in that context, so that lin reaches the
 * successor's guest page for this vCPU.  Uses RAX and RDX; returns how
 * many failures it recorded. */
static unsigned emit_jump_cache_checks(struct x86_emit *e, uint64_t lin, uintptr_t body, uint8_t **fails)
{
	unsigned n = 0;
	int32_t slot = (int32_t)(((lin ^ lin >> 12) & (EMU_JUMP_CACHE - 1)) * sizeof(struct emu_jump_entry));
	xe_load64(e, HR_RDX, HR_RBX, CV_OFF(jumps));
	mov_rax_imm64(e, lin);
	xe_op_mem(e, 0x3b, 8, HR_RAX, HR_RDX, slot + (int32_t)offsetof(struct emu_jump_entry, lin));
	fails[n++] = xe_jcc32(e, 0x5);
	xe_load64(e, HR_RAX, HR_RBX, CPU_OFF(chain_key));
	xe_op_mem(e, 0x3b, 8, HR_RAX, HR_RDX, slot + (int32_t)offsetof(struct emu_jump_entry, key));
	fails[n++] = xe_jcc32(e, 0x5);
	mov_rax_imm64(e, body);
	xe_op_mem(e, 0x3b, 8, HR_RAX, HR_RDX, slot + (int32_t)offsetof(struct emu_jump_entry, body));
	fails[n++] = xe_jcc32(e, 0x5);
	return n;
}

/* A probe stub, for an exit whose target varies among several (a
 * return to many callers, a jump through a table): whatever the target
 * in R12, the running vCPU's jump cache entry for it as the step between
 * blocks reads it (core/cpu.c jit_next): the RIP, the chain key and a
 * body, and the page generation the entry holds still current; then an
 * indirect jump into the body.  The entry's slot is computed from R12
 * as core/block.h emu_jump_slot() does.  Uses RAX, RCX, RDX, RSI and R8;
 * returns how many failures it recorded (the jump is emitted). */
static unsigned emit_jump_cache_probe(struct x86_emit *e, uint8_t **fails)
{
	unsigned n = 0;
	int32_t lin = (int32_t)offsetof(struct emu_jump_entry, lin), key = (int32_t)offsetof(struct emu_jump_entry, key);
	int32_t body = (int32_t)offsetof(struct emu_jump_entry, body), page = (int32_t)offsetof(struct emu_jump_entry, page);
	int32_t gen = (int32_t)offsetof(struct emu_jump_entry, gen);
	xe_op_rr(e, 0x89, 8, HR_R12, HR_RAX);                              /* mov rax, r12 */
	xe_op_rr(e, 0x89, 8, HR_R12, HR_RCX);                              /* mov rcx, r12 */
	xe_u8(e, 0x48);
	xe_u8(e, 0xc1);
	xe_u8(e, 0xe9);
	xe_u8(e, 12);                                                      /* shr rcx, 12 */
	xe_op_rr(e, 0x31, 8, HR_RCX, HR_RAX);                              /* xor rax, rcx */
	xe_grp1_reg_imm(e, 4, 4, HR_RAX, EMU_JUMP_CACHE - 1);              /* and eax, slots - 1 */
	xe_u8(e, 0x69);
	xe_u8(e, 0xc0);
	xe_u32(e, (uint32_t)sizeof(struct emu_jump_entry));                /* imul eax, eax, sizeof */
	xe_op_mem(e, 0x03, 8, HR_RAX, HR_RBX, CV_OFF(jumps));              /* add rax, [jumps] */
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);                              /* mov rdx, rax */
	xe_op_mem(e, 0x3b, 8, HR_R12, HR_RDX, lin);                        /* cmp r12, [lin] */
	fails[n++] = xe_jcc32(e, 0x5);
	xe_load64(e, HR_RAX, HR_RBX, CPU_OFF(chain_key));
	xe_op_mem(e, 0x3b, 8, HR_RAX, HR_RDX, key);                        /* cmp rax, [key] */
	fails[n++] = xe_jcc32(e, 0x5);
	xe_load64(e, HR_RCX, HR_RDX, body);
	xe_op_rr(e, 0x85, 8, HR_RCX, HR_RCX);                              /* test rcx, rcx */
	fails[n++] = xe_jcc32(e, 0x4);
	xe_load64(e, HR_RAX, HR_RDX, page);
	xe_load64(e, HR_R8, HR_RBX, CPU_OFF(evm));
	xe_load64(e, HR_R8, HR_R8, (int32_t)offsetof(struct emu_vm, page_gen));
	xe_op_mem(e, 0x8b, 4, HR_RSI, HR_RDX, gen);                        /* mov esi, [gen] */
	xe_u8(e, 0x41);
	xe_u8(e, 0x3b);
	xe_u8(e, 0x34);
	xe_u8(e, 0x80);                                                    /* cmp esi, [r8 + rax * 4] */
	fails[n++] = xe_jcc32(e, 0x5);
	xe_u8(e, 0xff);
	xe_u8(e, 0xe1);                                                    /* jmp rcx */
	return n;
}

void emu_jit_chain(struct emu_jit *j, struct emu_jit_exit *x, const struct emu_cpu *cpu,
		   const _Atomic uint32_t *gen_at, uint32_t gen, emu_jit_code to, bool far)
{
	uint8_t *xp = (uint8_t *)x;
	if (!x->jmp || xp < j->rx || xp + sizeof(*x) > j->rx + j->used)
		return;
	uint64_t lin = cpu->rip;
	/* Pointed there already: its checks failed for a passing reason. */
	if (x->patches && x->to == (uintptr_t)to && x->gen == gen && (!(x->dynamic || far) || x->lin == lin))
		return;
	if (x->patches >= JIT_EXIT_PATCHES)
		return;
	/* A second target of a dynamic exit: from now on the probe, for
	 * any target, and no more patches. */
	bool probe = x->dynamic && x->patches && x->lin != lin;
	size_t start = (j->used + 15) & ~(size_t)15;
	if (start >= j->size)
		return;   /* the next translation finds the cache full */
	struct x86_emit e = { .p = j->rw + start, .end = j->rw + j->size, .rx_delta = (uintptr_t)(j->rx - j->rw) };
	uint8_t *stub = e.p;
	uint8_t *fails[16];
	unsigned n_fail = 0, max = sizeof(fails) / sizeof(fails[0]);
	if (probe) {
		n_fail += emit_chain_checks(&e, fails);
		n_fail += emit_jump_cache_probe(&e, fails + n_fail);
	} else if (far) {
		/* The target: R12, which the block's exit set, against the RIP
		 * the successor was found at. */
		mov_rax_imm64(&e, lin);
		xe_op_rr(&e, 0x39, 8, HR_RAX, HR_R12);                     /* cmp r12, rax */
		fails[n_fail++] = xe_jcc32(&e, 0x5);
	} else if (x->dynamic) {
		/* The target: R12, which the block's exit set, against the RIP
		 * the successor was found at, and in the linear page the block
		 * was entered by (R13), whose translation was checked then, so
		 * that it reaches the successor's guest page on any vCPU. */
		mov_rax_imm64(&e, lin);
		xe_op_rr(&e, 0x39, 8, HR_RAX, HR_R12);                     /* cmp r12, rax */
		fails[n_fail++] = xe_jcc32(&e, 0x5);
		xe_op_rr(&e, 0x31, 8, HR_R13, HR_RAX);                     /* xor rax, r13 */
		xe_u8(&e, 0x48);
		xe_u8(&e, 0xc1);
		xe_u8(&e, 0xe8);
		xe_u8(&e, 12);                                             /* shr rax, 12 */
		fails[n_fail++] = xe_jcc32(&e, 0x5);
	}
	if (!probe) {
		n_fail += emit_chain_checks(&e, fails + n_fail);
		if (far)
			n_fail += emit_jump_cache_checks(&e, lin, (uintptr_t)to + j->body_off, fails + n_fail);
		/* The successor's page not written since it was decoded. */
		mov_rax_imm64(&e, (uintptr_t)gen_at);
		xe_op_mem(&e, 0x81, 4, 7, HR_RAX, 0);
		xe_u32(&e, gen);                                           /* cmp dword [gen_at], gen */
		fails[n_fail++] = xe_jcc32(&e, 0x5);
		jmp_to(&e, to_rw(j, (uintptr_t)to + j->body_off));
	}
	/* Failed: the exit's return, as before the patch. */
	for (unsigned i = 0; i < n_fail; i++)
		xe_patch_here(&e, fails[i]);
	jmp_to(&e, to_rw(j, (uintptr_t)x->jmp + 4));
	if (e.full || n_fail >= max)
		return;
	__atomic_store_n(&j->used, (size_t)(e.p - j->rw), __ATOMIC_RELAXED);   /* read by ctl stats */
	if (j->used > j->peak)
		__atomic_store_n(&j->peak, j->used, __ATOMIC_RELAXED);
	__atomic_store_n(&j->bytes, j->bytes + (j->used - start), __ATOMIC_RELAXED);
	/* The stub is complete before the jump reaches it: one aligned
	 * 4-byte store (exit_jmp), which a vCPU running the exit meanwhile
	 * sees old or new, never torn. */
	int32_t rel = (int32_t)(((uintptr_t)stub + e.rx_delta) - ((uintptr_t)x->jmp + 4));
	__atomic_store_n((int32_t *)(void *)to_rw(j, (uintptr_t)x->jmp), rel, __ATOMIC_RELEASE);
	/* Read without the lock by the run loop, as a hint (core/cpu.c). */
	struct emu_jit_exit *w = (struct emu_jit_exit *)to_rw(j, (uintptr_t)xp);
	__atomic_store_n(&w->lin, lin, __ATOMIC_RELAXED);
	__atomic_store_n(&w->to, (uintptr_t)to, __ATOMIC_RELAXED);
	__atomic_store_n(&w->gen, gen, __ATOMIC_RELAXED);
	__atomic_store_n(&w->patches, probe ? JIT_EXIT_PATCHES : w->patches + 1, __ATOMIC_RELAXED);
	uint64_t *links = far || probe ? &j->links_far : &j->links_near;
	__atomic_store_n(links, *links + 1, __ATOMIC_RELAXED);
}
