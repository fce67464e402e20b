/* Inline templates (jit/templates.h): the register forms of the simple
 * instructions that dominate kernel code, as host code.  An instruction
 * gets a template only when its decoded handler is exactly the
 * specialised form the opcode table gives its opcode, operand kind and
 * size (emu_handler_find): so a LOCK prefix, a #UD encoding or a CPU
 * model without the instruction keeps the handler call, and each
 * template does what that one form's C code does (core/int_arith.c,
 * core/int_move.c), including the lazy-flags record (core/flags.c),
 * field for field. */
#include "cpu/emu/jit/templates.h"

#include "cpu/emu/core/core.h"

#include <stddef.h>

#define CPU_OFF(field) ((int32_t)offsetof(struct emu_cpu, field))
#define GPR(r) (CPU_OFF(gpr) + 8 * (int32_t)(r))

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* ---- the register cache (templates.h) ----
 * Host registers for guest ones: the callee-saved R14, R15 and RBP
 * (the prologue saves them), which survive calls of C helpers, then
 * the caller-saved R9-R11, which the templates leave alone.  Straight
 * ALU code such as SHA-2's rounds then runs on host registers rather
 * than through cpu->gpr, where each instruction waited for the store
 * of the one before.  Not R13: it holds the block's entry RIP for the
 * stubs of its dynamic exits (jit/branch.c). */
static const uint8_t jit_rc_host[JIT_RC_SLOTS] = { HR_R14, HR_R15, HR_RBP, HR_R9, HR_R10, HR_R11 };
#define JIT_RC_CALLEE 3     /* slots 0-2 survive a call */

static void rc_store(struct jit_ctx *t, unsigned s)
{
	xe_store64(t->e, HR_RBX, GPR(t->rc[s].g), jit_rc_host[s]);
	t->rc[s].dirty = false;
}

static int rc_find(const struct jit_ctx *t, unsigned g)
{
	for (unsigned s = 0; s < JIT_RC_SLOTS; s++)
		if (t->rc[s].valid && t->rc[s].g == g)
			return (int)s;
	return -1;
}

/* A slot for g: its own, a free one or the least recently used (written
 * back first).  loaded: whether the register's value is in it. */
static unsigned rc_slot(struct jit_ctx *t, unsigned g, bool *loaded)
{
	int f = rc_find(t, g);
	*loaded = f >= 0;
	if (f < 0) {
		unsigned v = 0;
		for (unsigned s = 0; s < JIT_RC_SLOTS; s++) {
			if (!t->rc[s].valid) {
				v = s;
				break;
			}
			if (t->rc[s].last < t->rc[v].last)
				v = s;
		}
		if (t->rc[v].valid && t->rc[v].dirty)
			rc_store(t, v);
		t->rc[v] = (struct jit_rc_slot){ .g = (uint8_t)g, .valid = true };
		f = (int)v;
	}
	t->rc[f].last = ++t->rc_clock;
	return (unsigned)f;
}

unsigned rc_get(struct jit_ctx *t, unsigned g)
{
	bool loaded;
	unsigned s = rc_slot(t, g, &loaded);
	if (!loaded)
		xe_load64(t->e, jit_rc_host[s], HR_RBX, GPR(g));
	return jit_rc_host[s];
}

unsigned rc_def(struct jit_ctx *t, unsigned g)
{
	bool loaded;
	unsigned s = rc_slot(t, g, &loaded);
	t->rc[s].dirty = true;
	return jit_rc_host[s];
}

unsigned rc_modify(struct jit_ctx *t, unsigned g)
{
	unsigned h = rc_get(t, g);
	t->rc[rc_find(t, g)].dirty = true;
	return h;
}

void rc_writeback(struct jit_ctx *t)
{
	for (unsigned s = 0; s < JIT_RC_SLOTS; s++)
		if (t->rc[s].valid && t->rc[s].dirty)
			rc_store(t, s);
}

void rc_flush(struct jit_ctx *t)
{
	rc_writeback(t);
	for (unsigned s = 0; s < JIT_RC_SLOTS; s++)
		t->rc[s].valid = false;
}

void rc_clobber(struct jit_ctx *t)
{
	for (unsigned s = JIT_RC_CALLEE; s < JIT_RC_SLOTS; s++) {
		if (t->rc[s].valid && t->rc[s].dirty)
			rc_store(t, s);
		t->rc[s].valid = false;
	}
}

void rc_evict(struct jit_ctx *t, unsigned g)
{
	int s = rc_find(t, g);
	if (s < 0)
		return;
	if (t->rc[s].dirty)
		rc_store(t, (unsigned)s);
	t->rc[s].valid = false;
}

void cold_resume(struct jit_ctx *t, struct jit_cold *k)
{
	k->resume = t->e->p;
	k->rc_live = 0;
	for (unsigned s = 0; s < JIT_RC_SLOTS; s++) {
		if (t->rc[s].valid) {
			k->rc_live |= 1u << s;
			k->rc_g[s] = t->rc[s].g;
		}
	}
}

/* The slow path's return to the inline one: the cached registers
 * reloaded from cpu->gpr, which the handler left as the inline path
 * would have them. */
void rc_reload(struct jit_ctx *t, const struct jit_cold *k)
{
	for (unsigned s = 0; s < JIT_RC_SLOTS; s++)
		if (k->rc_live & (1u << s))
			xe_load64(t->e, jit_rc_host[s], HR_RBX, GPR(k->rc_g[s]));
}

/* mov r, gpr[g] (size 4: zero-extended, as reg_get then the mask) */
void load_gpr(struct jit_ctx *t, unsigned hr, unsigned g, unsigned size)
{
	xe_op_rr(t->e, 0x89, size == 8 ? 8 : 4, rc_get(t, g), hr);
}

/* gpr[g] = hr, zero-extended from 32 bits for size 4 (reg_set). */
void store_gpr(struct jit_ctx *t, unsigned g, unsigned hr, unsigned size)
{
	xe_op_rr(t->e, 0x89, size == 4 ? 4 : 8, hr, rc_def(t, g));
}

void store_gpr_imm(struct jit_ctx *t, unsigned g, uint64_t v)
{
	xe_mov_imm(t->e, rc_def(t, g), v);
}

/* MOV d, s of 4 or 8 bytes on the cached registers (a 32-bit one
 * zero-extends, as reg_set does); s is read first, as d may be s. */
static void emit_mov_rr(struct jit_ctx *t, unsigned size, unsigned d, unsigned s)
{
	unsigned hs = rc_get(t, s);
	xe_op_rr(t->e, 0x89, size, hs, rc_def(t, d));
	t->fx[t->i] = JIT_FX_NONE;
}

/* ADD, OR, AND, SUB, XOR of register d with register s (or with in's
 * immediate when s is EMU_REG_NONE), 4 or 8 bytes, whose flags record is
 * dead: one host instruction on the cached registers (a 32-bit one
 * zero-extends, as reg_set does).  false: the record is live, or CMP. */
static bool alu_in_place(struct jit_ctx *t, const struct emu_insn *in, unsigned alu, unsigned size, unsigned d,
			 unsigned s)
{
	static const uint8_t host_op[8] = {
		[ALU_ADD] = 0x01, [ALU_OR] = 0x09, [ALU_AND] = 0x21, [ALU_SUB] = 0x29, [ALU_XOR] = 0x31,
	};
	if (alu == ALU_CMP || !jit_flags_dead(t))
		return false;
	t->n_flags_skipped++;
	if (s != EMU_REG_NONE) {
		unsigned hs = rc_get(t, s);
		xe_op_rr(t->e, host_op[alu], size, hs, rc_modify(t, d));
	} else {
		xe_grp1_reg_imm(t->e, alu, size, rc_modify(t, d), (int32_t)in->imm);
	}
	t->lf_known = (alu == ALU_ADD ? LF_ADD : alu == ALU_SUB ? LF_SUB : LF_LOGIC) | size;
	t->fx[t->i] = JIT_FX_WRITE;
	return true;
}

/* lf_set(cpu, kind, size, res = RDX, src1, src2): RAX/RCX for ADD and
 * SUB, 0 for the logic kinds; nothing when a later instruction of the
 * block overwrites the record before anything can see it. */
void record_flags(struct jit_ctx *t, unsigned kind, unsigned size)
{
	struct x86_emit *e = t->e;
	if (jit_flags_dead(t)) {
		t->n_flags_skipped++;
		return;
	}
	xe_store64(e, HR_RBX, CPU_OFF(lf.res), HR_RDX);
	if (kind == LF_LOGIC) {
		xe_store64_imm(e, HR_RBX, CPU_OFF(lf.src1), 0);
		xe_store64_imm(e, HR_RBX, CPU_OFF(lf.src2), 0);
	} else {
		xe_store64(e, HR_RBX, CPU_OFF(lf.src1), HR_RAX);
		xe_store64(e, HR_RBX, CPU_OFF(lf.src2), HR_RCX);
	}
	xe_store32_imm(e, HR_RBX, CPU_OFF(lf.op), kind | size);
}

/* alu() of core/int_arith.c with RAX = a, RCX = b (both masked to
 * size): RDX = the unmasked 64-bit result, flags recorded; then the
 * destination register unless CMP or TEST (dst EMU_REG_NONE). */
void alu_tail(struct jit_ctx *t, unsigned op, unsigned size, unsigned dst)
{
	struct x86_emit *e = t->e;
	static const uint8_t host_op[8] = {
		[ALU_ADD] = 0x01, [ALU_OR] = 0x09, [ALU_AND] = 0x21, [ALU_SUB] = 0x29, [ALU_XOR] = 0x31, [ALU_CMP] = 0x29,
	};
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);                     /* mov rdx, rax */
	xe_op_rr(e, host_op[op], 8, HR_RCX, HR_RDX);              /* op rdx, rcx */
	unsigned kind = op == ALU_ADD ? LF_ADD : (op == ALU_SUB || op == ALU_CMP) ? LF_SUB : LF_LOGIC;
	record_flags(t, kind, size);
	t->lf_known = kind | size;
	if (op != ALU_CMP && dst != EMU_REG_NONE)
		store_gpr(t, dst, HR_RDX, size);
}

/* RAX = emu_insn_ea(): disp + base + index << scale (+ next_rip),
 * masked to the address size. */
void emit_ea(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	xe_mov_imm(e, HR_RAX, (uint64_t)(int64_t)in->disp);
	if (in->base != EMU_REG_NONE)
		xe_op_rr(e, 0x01, 8, rc_get(t, in->base), HR_RAX);            /* add rax, base */
	if (in->index != EMU_REG_NONE) {
		load_gpr(t, HR_RCX, in->index, 8);
		if (in->scale) {
			xe_rex(e, true, 0, HR_RCX, false);
			xe_u8(e, 0xc1);
			xe_u8(e, 0xe1);                                          /* shl rcx, imm8 */
			xe_u8(e, in->scale);
		}
		xe_op_rr(e, 0x01, 8, HR_RCX, HR_RAX);                           /* add rax, rcx */
	}
	if (in->rip_rel) {
		xe_lea(e, HR_RCX, HR_R12, (int32_t)(t->delta + in->len));       /* next_rip */
		xe_op_rr(e, 0x01, 8, HR_RCX, HR_RAX);
	}
	if (in->adsize == 2) {
		xe_u8(e, 0x0f);
		xe_u8(e, 0xb7);
		xe_u8(e, 0xc0);                                                  /* movzx eax, ax */
	} else if (in->adsize == 4) {
		xe_op_rr(e, 0x89, 4, HR_RAX, HR_RAX);                           /* mov eax, eax */
	}
}

/* reg_set(reg, size, emu_insn_ea()) */
static void emit_lea(struct jit_ctx *t, const struct emu_insn *in, unsigned size)
{
	emit_ea(t, in);
	store_gpr(t, in->reg, HR_RAX, size);
}

/* A jump to the instruction's slow path (jit_emit_cold). */
void to_cold(struct jit_ctx *t, struct jit_cold *k, unsigned cc)
{
	/* The handler reads cpu->gpr, and may fault: the slow path writes
	 * back what is dirty here (rc_cold_writeback).  A jump that could
	 * not be patched would go on inline after a miss: none is made. */
	unsigned f = k->n_from;
	if (f == JIT_COLD_FROM) {
		t->unfit = true;
		return;
	}
	uint8_t *at = xe_jcc32(t->e, cc);
	if (!at)
		return;
	k->from[f] = at;
	k->from_dirty[f] = 0;
	for (unsigned s = 0; s < JIT_RC_SLOTS; s++) {
		if (t->rc[s].valid && t->rc[s].dirty) {
			k->from_dirty[f] |= (uint8_t)(1u << s);
			k->from_g[f][s] = t->rc[s].g;
		}
	}
	k->n_from++;
}

/* In k's slow path, entered from its jump f: the registers dirty there
 * written back. */
void rc_cold_writeback(struct jit_ctx *t, const struct jit_cold *k, unsigned f)
{
	for (unsigned s = 0; s < JIT_RC_SLOTS; s++)
		if (k->from_dirty[f] & (1u << s))
			xe_store64(t->e, HR_RBX, GPR(k->from_g[f][s]), jit_rc_host[s]);
}

/* The inline TLB hit path of emu_read/emu_write (emu.h) for a size-byte
 * access at offset RAX in segment seg, 64-bit mode: the linear address
 * (FS/GS base added), then the entry of the current privilege's TLB, its
 * read or write tag against page | asid, where the page is the one of
 * the access's last byte (so that the access lies inside one page).
 * The TLB is the one emu_mmu_index() picks, which the code's caller
 * found (cpu->tlb_row, jit/jit.h emu_jit_enter): with EFLAGS.AC, SMAP's, whose entries
 * reach user pages, or alignment checking's, whose entries all take
 * the slow path.
 * Leaves RSI = linear address and RAX = its addend; misses jump to k. */
void emit_tlb_hit(struct jit_ctx *t, unsigned seg, unsigned size, bool write, struct jit_cold *k)
{
	struct x86_emit *e = t->e;
	if (seg >= SEG_FS)
		xe_op_mem(e, 0x03, 8, HR_RAX, HR_RBX, CPU_OFF(seg[0].base) + (int32_t)(seg * sizeof(struct emu_seg)));
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RSI);                                  /* mov rsi, rax */
	/* RDX = &cpu->tlb_row[((lin >> 12) ^ salt) & (EMU_TLB_SIZE - 1)] */
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);                                  /* mov rdx, rax */
	xe_u8(e, 0x48);
	xe_u8(e, 0xc1);
	xe_u8(e, 0xea);
	xe_u8(e, 12);                                                          /* shr rdx, 12 */
	xe_op_mem(e, 0x33, 4, HR_RDX, HR_RBX, CPU_OFF(tlb_salt));              /* xor edx, [salt] */
	xe_grp1_reg_imm(e, 4, 4, HR_RDX, EMU_TLB_SIZE - 1);                   /* and edx, mask */
	xe_u8(e, 0x69);
	xe_u8(e, 0xd2);
	xe_u32(e, (uint32_t)sizeof(struct emu_tlb_entry));                    /* imul edx, edx, sizeof */
	xe_op_mem(e, 0x03, 8, HR_RDX, HR_RBX, CPU_OFF(tlb_row));               /* add rdx, [tlb_row] */
	/* tag: page | asid, the page of the access's last byte: one that
	 * crosses into the next page then misses, as that page's
	 * translation never sits in the first page's slot (the slots of
	 * two neighbouring pages differ in their lowest bit). */
	xe_lea(e, HR_RCX, HR_RSI, (int32_t)size - 1);                          /* lea rcx, [rsi + size - 1] */
	xe_grp1_reg_imm(e, 4, 8, HR_RCX, -4096);                               /* and rcx, ~0xfff */
	xe_op_mem(e, 0x0b, 8, HR_RCX, HR_RBX, CPU_OFF(asid));                  /* or rcx, [asid] */
	int32_t tag = write ? (int32_t)offsetof(struct emu_tlb_entry, tag_write)
			    : (int32_t)offsetof(struct emu_tlb_entry, tag_read);
	xe_op_mem(e, 0x3b, 8, HR_RCX, HR_RDX, tag);                            /* cmp rcx, [tag] */
	to_cold(t, k, 0x5);                                                     /* jne */
	xe_load64(e, HR_RAX, HR_RDX, (int32_t)offsetof(struct emu_tlb_entry, addend));
}

/* A slow path for in, when the block may have one more: 64-bit code only. */
struct jit_cold *cold_new(struct jit_ctx *t, const struct emu_insn *in)
{
	if (t->mode != EMU_MODE_LONG64 || t->n_cold >= JIT_MAX_COLD)
		return NULL;
	struct jit_cold *k = &t->cold[t->n_cold++];
	*k = (struct jit_cold){ .in = in, .delta = t->delta, .left = t->n - t->i - 1 };
	return k;
}

/* MOV r, [m] and MOV [m], r (mov_load_N, mov_store_N of core/int_move.c),
 * MOVZX r, byte/word [m] (movzx_load_b/w: zx is 1 or 2, the size read):
 * the inline TLB path, else the handler out of line. */
static bool emit_mem_move(struct jit_ctx *t, const struct emu_insn *in, unsigned size, bool store, unsigned zx)
{
	struct x86_emit *e = t->e;
	struct jit_cold *k = cold_new(t, in);
	if (!k)
		return false;
	emit_ea(t, in);
	emit_tlb_hit(t, in->seg, zx ? zx : size, store, k);
	if (store) {
		load_gpr(t, HR_RCX, in->reg, 8);
		xe_mem_bi(e, 0x89, size, HR_RCX, HR_RAX, HR_RSI);              /* mov [rax + rsi], rcx */
	} else if (zx) {
		xe_u8(e, 0x0f);
		xe_mem_bi(e, zx == 1 ? 0xb6 : 0xb7, 4, HR_RAX, HR_RAX, HR_RSI); /* movzx eax, b/w [rax + rsi] */
		store_gpr(t, in->reg, HR_RAX, 8);
	} else {
		xe_mem_bi(e, 0x8b, size, HR_RAX, HR_RAX, HR_RSI);              /* mov rax, [rax + rsi] */
		store_gpr(t, in->reg, HR_RAX, 8);
	}
	cold_resume(t, k);
	t->lf_keep = true;   /* no flags, either path */
	return true;
}

/* PUSH r64 / POP r64 (push_r64, pop_r64 of core/int_stack.c): the
 * stack access first, RSP after it, then POP's register (POP RSP keeps
 * the value popped). */
static bool emit_push_pop(struct jit_ctx *t, const struct emu_insn *in, bool pop)
{
	struct x86_emit *e = t->e;
	struct jit_cold *k = cold_new(t, in);
	if (!k)
		return false;
	load_gpr(t, HR_RAX, RSP, 8);
	if (!pop)
		xe_lea(e, HR_RAX, HR_RAX, -8);
	emit_tlb_hit(t, SEG_SS, 8, !pop, k);
	if (pop) {
		xe_mem_bi(e, 0x8b, 8, HR_RAX, HR_RAX, HR_RSI);                 /* mov rax, [rax + rsi] */
		xe_lea(e, HR_RSI, HR_RSI, 8);
		store_gpr(t, RSP, HR_RSI, 8);
		store_gpr(t, in->rm, HR_RAX, 8);
	} else {
		load_gpr(t, HR_RCX, in->rm, 8);
		xe_mem_bi(e, 0x89, 8, HR_RCX, HR_RAX, HR_RSI);                 /* mov [rax + rsi], rcx */
		store_gpr(t, RSP, HR_RSI, 8);
	}
	cold_resume(t, k);
	t->lf_keep = true;   /* no flags, either path */
	return true;
}

/* SHL/SHR/SAR r, imm8 (shl_ri_N, shr_ri_N, sar_ri_N of core/int_shift.c)
 * and r, 1 (h_grp2 with D1), c the masked count:
 * a zero count writes the register back (zero-extended) and leaves the
 * flags; any other records kind, the result, the operand and the count. */
bool emit_shift_ri(struct jit_ctx *t, const struct emu_insn *in, unsigned size, unsigned c)
{
	struct x86_emit *e = t->e;
	unsigned ext = (in->modrm >> 3) & 7;   /* 4 SHL, 5 SHR, 7 SAR */
	load_gpr(t, HR_RAX, in->rm, size);
	if (!c) {
		store_gpr(t, in->rm, HR_RAX, 8);
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	}
	t->fx[t->i] = JIT_FX_WRITE;
	if (jit_flags_dead(t)) {
		/* No record: the shift on the cached register itself. */
		t->n_flags_skipped++;
		unsigned h = rc_modify(t, in->rm);
		xe_rex(e, size == 8, 0, h, false);
		xe_u8(e, 0xc1);
		xe_u8(e, (uint8_t)(0xc0 | ext << 3 | (h & 7)));
		xe_u8(e, (uint8_t)c);                                          /* shift r32/r64, c */
		return true;
	}
	xe_op_rr(e, 0x89, 8, HR_RAX, HR_RDX);                                  /* mov rdx, rax */
	xe_rex(e, size == 8, 0, HR_RDX, false);
	xe_u8(e, 0xc1);
	xe_u8(e, (uint8_t)(0xc0 | ext << 3 | HR_RDX));
	xe_u8(e, (uint8_t)c);                                                  /* shift edx/rdx, c */
	if (jit_flags_dead(t)) {
		t->n_flags_skipped++;
	} else {
		xe_store64(e, HR_RBX, CPU_OFF(lf.res), HR_RDX);
		xe_store64(e, HR_RBX, CPU_OFF(lf.src1), HR_RAX);
		xe_store64_imm(e, HR_RBX, CPU_OFF(lf.src2), (int32_t)c);
		unsigned kind = ext == 4 ? LF_SHL : ext == 5 ? LF_SHR : LF_SAR;
		xe_store32_imm(e, HR_RBX, CPU_OFF(lf.op), kind | size);
	}
	store_gpr(t, in->rm, HR_RDX, 8);
	return true;
}

/* The specialised form for in's opcode, operand kind and size: what
 * the decoder gives an instruction with nothing unusual about it.
 * modrm: whether the opcode has a ModRM byte (else no memory operand). */
bool is_plain_form(const struct emu_insn *in, bool modrm)
{
	unsigned reg = (in->modrm >> 3) & 7;
	return in->fn == emu_handler_find(in->opmap, in->opcode, in->mprefix, reg, modrm && in->mod != 3, in->opsize);
}

bool jit_template(struct jit_ctx *t, const struct emu_insn *in)
{
	struct x86_emit *e = t->e;
	unsigned size = in->opsize, op = in->opcode;
	if (jit_template_alu(t, in))
		return true;
	if ((size != 4 && size != 8) || in->lock)
		return false;
	if (in->opmap == EMU_MAP_0F && (op == 0xb6 || op == 0xb7) && in->mod != 3 && is_plain_form(in, true))
		return emit_mem_move(t, in, size, false, op == 0xb6 ? 1 : 2);   /* MOVZX r, [m] */
	if (in->opmap != EMU_MAP_1B)
		return false;
	if (op >= 0x50 && op <= 0x5f && size == 8 && is_plain_form(in, false))
		return emit_push_pop(t, in, op >= 0x58);
	if (op >= 0xb8 && op <= 0xbf) {
		/* MOV r, imm: the generic handler for every size */
		if (in->fn != h_mov_r_imm)
			return false;
		store_gpr_imm(t, in->rm, size == 4 ? (uint32_t)in->imm : in->imm);
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	}
	if (!is_plain_form(in, true))
		return false;
	bool reg_form = in->mod == 3;
	/* ALU r/m, r (00-3F, ModRM, Ev,Gv at +1) and ALU r, r/m (Gv,Ev at +3) */
	if (op < 0x40 && (op & 7) <= 3 && (op & 1) && reg_form) {
		unsigned alu = op >> 3;
		if (alu == ALU_ADC || alu == ALU_SBB)
			return false;
		unsigned d = (op & 2) ? in->reg : in->rm, s = (op & 2) ? in->rm : in->reg;
		if (alu_in_place(t, in, alu, size, d, s))
			return true;
		load_gpr(t, HR_RAX, d, size);
		load_gpr(t, HR_RCX, s, size);
		alu_tail(t, alu, size, d);
		t->fx[t->i] = JIT_FX_WRITE;
		return true;
	}
	switch (op) {
	case 0x81:
	case 0x83: {
		unsigned alu = (in->modrm >> 3) & 7;
		if (!reg_form || alu == ALU_ADC || alu == ALU_SBB)
			return false;
		if (alu_in_place(t, in, alu, size, in->rm, EMU_REG_NONE))
			return true;
		load_gpr(t, HR_RAX, in->rm, size);
		xe_mov_imm(e, HR_RCX, size == 4 ? (uint32_t)in->imm : in->imm);
		alu_tail(t, alu, size, in->rm);
		t->fx[t->i] = JIT_FX_WRITE;
		return true;
	}
	case 0xc1: {  /* group 2 by imm8: the SHL, SHR and SAR forms */
		unsigned ext = (in->modrm >> 3) & 7;
		if (!reg_form || (ext != 4 && ext != 5 && ext != 7))
			return false;
		return emit_shift_ri(t, in, size, (unsigned)in->imm & (size == 8 ? 0x3f : 0x1f));
	}
	case 0x85:   /* TEST r/m, r */
		if (!reg_form)
			return false;
		load_gpr(t, HR_RAX, in->rm, size);
		load_gpr(t, HR_RCX, in->reg, size);
		alu_tail(t, ALU_AND, size, EMU_REG_NONE);
		t->fx[t->i] = JIT_FX_WRITE;
		return true;
	case 0x89:   /* MOV r/m, r */
		if (!reg_form)
			return emit_mem_move(t, in, size, true, 0);
		emit_mov_rr(t, size, in->rm, in->reg);
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	case 0x8b:   /* MOV r, r/m */
		if (!reg_form)
			return emit_mem_move(t, in, size, false, 0);
		emit_mov_rr(t, size, in->reg, in->rm);
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	case 0x8d:   /* LEA */
		if (reg_form)
			return false;
		emit_lea(t, in, size);
		t->fx[t->i] = JIT_FX_NONE;
		return true;
	default:
		return false;
	}
}
