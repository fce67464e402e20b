/* x87 FPU instructions, opcodes D8-DF and 9B (SDM vol. 1, chapter 8;
 * vol. 2A/2B instruction pages; opcode map vol. 2D, A.4).
 *
 * The register stack, tags and status/control words follow fpu.h's layout:
 * slot i of the image is ST(i), and the abridged tag is by physical
 * register, so moving TOP rotates the slots (x87_move_top).
 * Arithmetic runs on the host's own x87 (x87_host.c) so results, C1
 * rounding indication and exception flags are bit-exact; this file does
 * the guest-visible bookkeeping: stack faults, tags, TOP, the guest's
 * exception masks, FIP/FDP/FOP, the environment images, and #NM/#MF.
 */
#include "cpu/emu/fpu/fpu.h"
#include "cpu/emu/fpu/x87_host.h"

/* ---- register stack ---- */

static inline unsigned x87_top(const struct fpu_fx *fx)
{
	return (fx->fsw >> 11) & 7;
}

/* Moves TOP, keeping the register slots in stack order: physical register
 * TOP+i stays in slot i, so the slots rotate with TOP. */
static void x87_move_top(struct fpu_fx *fx, unsigned top)
{
	unsigned delta = (top - x87_top(fx)) & 7;
	if (delta) {
		uint8_t tmp[8][16];
		memcpy(tmp, fx->st, sizeof(tmp));
		for (unsigned i = 0; i < 8; i++)
			memcpy(fx->st[i].b, tmp[(i + delta) & 7], 16);
	}
	fx->fsw = (uint16_t)((fx->fsw & ~FSW_TOP) | ((top & 7) << 11));
}

static inline unsigned x87_phys(const struct fpu_fx *fx, unsigned i)
{
	return (x87_top(fx) + i) & 7;
}

static inline bool x87_empty(const struct fpu_fx *fx, unsigned i)
{
	return !(fx->ftw & (1u << x87_phys(fx, i)));
}

static inline void x87_get(const struct fpu_fx *fx, unsigned i, uint8_t *v10)
{
	memcpy(v10, fx->st[i & 7].b, 10);
}

static inline void x87_put(struct fpu_fx *fx, unsigned i, const uint8_t *v10)
{
	memcpy(fx->st[i & 7].b, v10, 10);
	memset(fx->st[i & 7].b + 10, 0, 6);
	fx->ftw |= (uint8_t)(1u << x87_phys(fx, i));
}

static inline void x87_pop(struct fpu_fx *fx)
{
	fx->ftw &= (uint8_t)~(1u << x87_phys(fx, 0));
	x87_move_top(fx, x87_top(fx) + 1);
}

/* The "real indefinite" QNaN a masked invalid operation produces
 * (SDM vol. 1, 4.8.3.7, table 4-3). */
static const uint8_t x87_indefinite[10] = { 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff };

/* ---- exception bookkeeping (SDM vol. 1, 8.4 and 8.5) ---- */

/* Records exception flags; returns true when an unmasked one occurred.
 * The ES and B summary bits follow the unmasked flags (8.1.3.1). */
static bool x87_signal(struct fpu_fx *fx, uint16_t exc)
{
	fx->fsw |= exc & (FSW_EXC | FSW_SF);
	if (exc & FSW_EXC & ~fx->fcw) {
		fx->fsw |= FSW_ES | FSW_B;
		return true;
	}
	return false;
}

/* Stack overflow/underflow: #IS with C1 = 1 for overflow, 0 for
 * underflow (8.5.1.1).  Returns true when masked: the caller then stores
 * the indefinite value. */
static bool x87_stack_fault(struct fpu_fx *fx, bool overflow)
{
	fx->fsw = (uint16_t)((fx->fsw & ~FSW_C1) | (overflow ? FSW_C1 : 0));
	return !x87_signal(fx, FSW_IE | FSW_SF);
}

/* Applies a host status word: condition codes in ccmask are taken from
 * the host, exception flags are merged.  Returns false when an unmasked
 * invalid, denormal or zero-divide exception suppresses the result
 * (8.5: pre-computation exceptions leave the destination unchanged). */
static bool x87_apply(struct fpu_fx *fx, uint16_t hsw, uint16_t ccmask)
{
	fx->fsw = (uint16_t)((fx->fsw & ~ccmask) | (hsw & ccmask));
	uint16_t exc = hsw & FSW_EXC;
	if (!x87_signal(fx, exc))
		return true;
	return !(exc & ~fx->fcw & (FSW_IE | FSW_DE | FSW_ZE));
}

/* Pushes v10 (or faults). */
static void x87_push(struct fpu_fx *fx, const uint8_t *v10)
{
	unsigned top = (x87_top(fx) - 1) & 7;
	if (fx->ftw & (1u << top)) {
		if (!x87_stack_fault(fx, true))
			return;
		v10 = x87_indefinite;
	}
	x87_move_top(fx, top);
	x87_put(fx, 0, v10);
}

/* ---- availability and the instruction/data pointers ---- */

void fpu_check_x87_nowait(struct emu_cpu *cpu)
{
	if (cpu->cr0 & (X86_CR0_EM | X86_CR0_TS))
		emu_raise_noerr(cpu, X86_EXC_NM);
}

void fpu_check_x87(struct emu_cpu *cpu)
{
	fpu_check_x87_nowait(cpu);
	/* A pending unmasked exception is reported at the next waiting
	 * instruction; without CR0.NE the PC-style FERR#/IGNNE# path applies,
	 * which vessel's platform does not wire, so it is ignored (8.7). */
	if ((fpu_fx(cpu)->fsw & FSW_ES) && (cpu->cr0 & X86_CR0_NE))
		emu_raise_noerr(cpu, X86_EXC_MF);
}

void fpu_check_mmx(struct emu_cpu *cpu)
{
	if (cpu->cr0 & X86_CR0_EM)
		emu_raise_noerr(cpu, X86_EXC_UD);
	if (cpu->cr0 & X86_CR0_TS)
		emu_raise_noerr(cpu, X86_EXC_NM);
	if ((fpu_fx(cpu)->fsw & FSW_ES) && (cpu->cr0 & X86_CR0_NE))
		emu_raise_noerr(cpu, X86_EXC_MF);
}

/* Last instruction opcode/pointer and data pointer (8.1.8, 8.1.9).  In
 * 64-bit mode the pointers are 64-bit offsets; elsewhere the 32-bit
 * offset with the selector in bits 32-47, as the FXSAVE image keeps them. */
static void x87_note(struct emu_cpu *cpu, const struct emu_insn *insn, bool mem, uint64_t ea)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	fx->fop = (uint16_t)(((insn->opcode & 7) << 8) | insn->modrm);
	if (cpu->mode == EMU_MODE_LONG64) {
		fx->fip = cpu->rip;
		if (mem)
			fx->fdp = ea;
	} else {
		fx->fip = (uint32_t)cpu->rip | ((uint64_t)cpu->seg[SEG_CS].sel << 32);
		if (mem)
			fx->fdp = (uint32_t)ea | ((uint64_t)cpu->seg[insn->seg].sel << 32);
	}
}

void fpu_mmx_enter_slow(struct emu_cpu *cpu)
{
	x87_move_top(fpu_fx(cpu), 0);
}

void fpu_x87_init(struct emu_cpu *cpu)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	/* FNINIT (vol. 2A "FINIT"): registers keep their contents, TOP = 0. */
	x87_move_top(fx, 0);
	fx->fcw = FCW_DEFAULT;
	fx->fsw = 0;
	fx->ftw = 0;
	fx->fop = 0;
	fx->fip = 0;
	fx->fdp = 0;
}

/* Full two-bit tag of physical register p (8.1.7, 10.5.1.1). */
static unsigned x87_tag_of(const struct fpu_fx *fx, unsigned p)
{
	if (!(fx->ftw & (1u << p)))
		return 3;
	uint64_t mant;
	uint16_t se;
	unsigned slot = (p - x87_top(fx)) & 7;
	memcpy(&mant, fx->st[slot].b, 8);
	memcpy(&se, fx->st[slot].b + 8, 2);
	unsigned exp = se & 0x7fff;
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return mant ? 2 : 1;
	return (mant >> 63) ? 0 : 2;
}

uint16_t fpu_x87_full_tag(struct emu_cpu *cpu)
{
	const struct fpu_fx *fx = fpu_fx(cpu);
	uint16_t t = 0;
	for (unsigned p = 0; p < 8; p++)
		t |= (uint16_t)(x87_tag_of(fx, p) << (2 * p));
	return t;
}

/* ---- memory operands ---- */

static void x87_read_mem(struct emu_cpu *cpu, const struct emu_insn *insn, uint64_t ea, uint8_t *dst, unsigned n)
{
	if (n == 2 || n == 4 || n == 8) {
		uint64_t v = emu_read(cpu, insn->seg, ea, n);
		memcpy(dst, &v, n);
	} else {
		emu_read_bytes(cpu, insn->seg, ea, dst, n);
	}
}

static void x87_write_mem(struct emu_cpu *cpu, const struct emu_insn *insn, uint64_t ea, const uint8_t *src, unsigned n)
{
	if (n == 2 || n == 4 || n == 8) {
		uint64_t v = 0;
		memcpy(&v, src, n);
		emu_write(cpu, insn->seg, ea, n, v);
	} else {
		emu_write_bytes(cpu, insn->seg, ea, src, n);
	}
}

/* ---- arithmetic ---- */

enum x87_arith { XA_ADD, XA_MUL, XA_COM, XA_COMP, XA_SUB, XA_SUBR, XA_DIV, XA_DIVR };

/* ST(d) = ST(x) op ST(y) for the register forms; sub/div reversal is a
 * swap of operands, which the host computes with the same rounding. */
static void x87_arith_reg(struct emu_cpu *cpu, unsigned op, unsigned dst, unsigned other, bool dst_is_st0, bool pop)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	unsigned d = dst_is_st0 ? 0 : other;
	unsigned s = dst_is_st0 ? other : 0;
	(void)dst;
	if (x87_empty(fx, 0) || x87_empty(fx, other)) {
		if (!x87_stack_fault(fx, false))
			return;
		x87_put(fx, d, x87_indefinite);
		if (pop)
			x87_pop(fx);
		return;
	}
	struct x87_host h;
	h.cw = fx->fcw;
	x87_get(fx, d, h.a);
	x87_get(fx, s, h.b);
	enum x87_hop hop;
	switch (op) {
	case XA_ADD: hop = XH_ADD; break;
	case XA_MUL: hop = XH_MUL; break;
	case XA_SUB: hop = XH_SUB; break;
	case XA_DIV: hop = XH_DIV; break;
	case XA_SUBR: hop = XH_SUB; x87_get(fx, s, h.a); x87_get(fx, d, h.b); break;
	default: hop = XH_DIV; x87_get(fx, s, h.a); x87_get(fx, d, h.b); break;
	}
	x87_host_run(hop, &h);
	if (x87_apply(fx, h.sw, FSW_C1))
		x87_put(fx, d, h.r0);
	if (pop)
		x87_pop(fx);
}

/* Compare ST(0) with v (set C0/C2/C3, C1 = 0), popping n times (8.3.8). */
static void x87_compare_result(struct fpu_fx *fx, uint16_t hsw, unsigned pops)
{
	uint16_t exc = hsw & FSW_EXC;
	fx->fsw &= ~FSW_C1;
	/* An unmasked #IA/#D leaves the condition codes and the stack alone. */
	if (exc & ~fx->fcw & (FSW_IE | FSW_DE)) {
		x87_signal(fx, exc);
		return;
	}
	fx->fsw = (uint16_t)((fx->fsw & ~(FSW_C0 | FSW_C2 | FSW_C3)) | (hsw & (FSW_C0 | FSW_C2 | FSW_C3)));
	x87_signal(fx, exc);
	while (pops--)
		x87_pop(fx);
}

static void x87_compare_empty(struct fpu_fx *fx, unsigned pops)
{
	/* Masked #IS: the operands are unordered. */
	if (x87_stack_fault(fx, false))
		fx->fsw |= FSW_C0 | FSW_C2 | FSW_C3;
	else
		return;
	while (pops--)
		x87_pop(fx);
}

static void x87_compare_reg(struct emu_cpu *cpu, unsigned i, bool unordered, unsigned pops)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	if (x87_empty(fx, 0) || x87_empty(fx, i)) {
		x87_compare_empty(fx, pops);
		return;
	}
	struct x87_host h;
	h.cw = fx->fcw;
	x87_get(fx, 0, h.a);
	x87_get(fx, i, h.b);
	x87_host_run(unordered ? XH_UCOM : XH_COM, &h);
	x87_compare_result(fx, h.sw, pops);
}

/* FCOMI/FUCOMI(P): ZF, PF, CF from C3, C2, C0; OF, SF, AF cleared
 * (vol. 2A "FCOMI/FCOMIP/FUCOMI/FUCOMIP"). */
static void x87_comi(struct emu_cpu *cpu, unsigned i, bool unordered, bool pop)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint16_t cc;
	if (x87_empty(fx, 0) || x87_empty(fx, i)) {
		fx->fsw &= ~FSW_C1;
		if (!x87_stack_fault(fx, false))
			return;
		cc = FSW_C0 | FSW_C2 | FSW_C3;
	} else {
		struct x87_host h;
		h.cw = fx->fcw;
		x87_get(fx, 0, h.a);
		x87_get(fx, i, h.b);
		x87_host_run(unordered ? XH_UCOM : XH_COM, &h);
		fx->fsw &= ~FSW_C1;
		if (!x87_apply(fx, h.sw, 0))
			return;
		cc = h.sw;
	}
	uint64_t fl = emu_get_rflags(cpu) & ~(uint64_t)X86_FLAGS_ARITH;
	if (cc & FSW_C3)
		fl |= X86_FLAG_ZF;
	if (cc & FSW_C2)
		fl |= X86_FLAG_PF;
	if (cc & FSW_C0)
		fl |= X86_FLAG_CF;
	emu_set_rflags(cpu, fl);
	if (pop)
		x87_pop(fx);
}

/* D8, DA, DC, DE with a memory operand: ST(0) op m (8.3.5). */
static void x87_arith_mem(struct emu_cpu *cpu, const struct emu_insn *insn, unsigned kind)
{
	/* kind: 0 = m32fp, 1 = m64fp, 2 = m16int, 3 = m32int */
	static const unsigned sizes[4] = { 4, 8, 2, 4 };
	static const uint8_t base_hop[8] = { XH_ADD_F32, XH_MUL_F32, XH_COM_F32, XH_COM_F32,
					     XH_SUB_F32, XH_SUBR_F32, XH_DIV_F32, XH_DIVR_F32 };
	struct fpu_fx *fx = fpu_fx(cpu);
	uint64_t ea = emu_insn_ea(cpu, insn);
	unsigned op = (insn->modrm >> 3) & 7;
	struct x87_host h;
	x87_read_mem(cpu, insn, ea, h.m, sizes[kind]);
	x87_note(cpu, insn, true, ea);
	bool cmp = op == XA_COM || op == XA_COMP;
	if (x87_empty(fx, 0)) {
		if (cmp) {
			x87_compare_empty(fx, op == XA_COMP);
		} else if (x87_stack_fault(fx, false)) {
			x87_put(fx, 0, x87_indefinite);
		}
		return;
	}
	h.cw = fx->fcw;
	x87_get(fx, 0, h.a);
	x87_host_run((enum x87_hop)(base_hop[op] + kind), &h);
	if (cmp) {
		x87_compare_result(fx, h.sw, op == XA_COMP);
		return;
	}
	if (x87_apply(fx, h.sw, FSW_C1))
		x87_put(fx, 0, h.r0);
}

/* ---- loads and stores ---- */

static void x87_load(struct emu_cpu *cpu, const struct emu_insn *insn, enum x87_hop hop, unsigned size)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint64_t ea = emu_insn_ea(cpu, insn);
	struct x87_host h;
	x87_read_mem(cpu, insn, ea, h.m, size);
	x87_note(cpu, insn, true, ea);
	if (!(x87_empty(fx, 7))) {
		/* the push would overwrite a valid register */
		if (x87_stack_fault(fx, true)) {
			x87_move_top(fx, x87_top(fx) - 1);
			x87_put(fx, 0, x87_indefinite);
		}
		return;
	}
	if (size == 10 && hop != XH_LD_BCD) {
		memcpy(h.r0, h.m, 10);  /* FLD m80fp: no conversion, no exception */
		fx->fsw &= ~FSW_C1;
	} else {
		h.cw = fx->fcw;
		x87_host_run(hop, &h);
		fx->fsw &= ~FSW_C1;
		if (!x87_apply(fx, h.sw, 0))
			return;
	}
	x87_push(fx, h.r0);
}

/* FST/FSTP/FIST/FISTP/FISTTP/FBSTP to memory.  The store happens before
 * the pop so that a fault leaves the stack intact. */
static void x87_store(struct emu_cpu *cpu, const struct emu_insn *insn, enum x87_hop hop, unsigned size, bool pop)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint64_t ea = emu_insn_ea(cpu, insn);
	struct x87_host h;
	x87_note(cpu, insn, true, ea);
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0)) {
		if (!x87_stack_fault(fx, false))
			return;
		/* masked #IS stores the indefinite of the destination format */
		memcpy(h.a, x87_indefinite, 10);
		h.cw = fx->fcw;
		if (size == 10)
			memcpy(h.m, x87_indefinite, 10);
		else
			x87_host_run(hop, &h);
		x87_write_mem(cpu, insn, ea, h.m, size);
		if (pop)
			x87_pop(fx);
		return;
	}
	uint16_t hsw = 0;
	if (size == 10 && hop == XH_ST_F32) {   /* FSTP m80fp: exact copy */
		x87_get(fx, 0, h.m);
	} else {
		h.cw = fx->fcw;
		x87_get(fx, 0, h.a);
		x87_host_run(hop, &h);
		hsw = h.sw;
	}
	uint16_t exc = hsw & FSW_EXC;
	/* An unmasked #I, #D, #O or #U leaves a memory destination and the
	 * stack unchanged (vol. 1, 8.5.1.2, 8.5.4.2, 8.5.5.2); an unmasked #P
	 * still stores the rounded result (8.5.6). */
	if (exc & ~fx->fcw & (FSW_IE | FSW_DE | FSW_OE | FSW_UE)) {
		x87_apply(fx, hsw, FSW_C1);
		return;
	}
	x87_write_mem(cpu, insn, ea, h.m, size);
	x87_apply(fx, hsw, FSW_C1);
	if (pop)
		x87_pop(fx);
}

/* ---- environment (8.1.10, vol. 1 figures 8-9 to 8-12) ---- */

static bool x87_env32(const struct emu_insn *insn)
{
	return insn->opsize != 2;
}

static bool x87_real_format(struct emu_cpu *cpu)
{
	return cpu->mode == EMU_MODE_REAL || cpu->mode == EMU_MODE_V86;
}

/* Builds the 14- or 28-byte environment image; returns its size. */
static unsigned x87_env_build(struct emu_cpu *cpu, const struct emu_insn *insn, uint8_t *env)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint16_t tag = fpu_x87_full_tag(cpu);
	uint32_t fip = (uint32_t)fx->fip, fdp = (uint32_t)fx->fdp;
	uint16_t fcs = (uint16_t)(fx->fip >> 32), fds = (uint16_t)(fx->fdp >> 32);
	bool real = x87_real_format(cpu);
	if (cpu->mode == EMU_MODE_LONG64)
		fcs = fds = 0;
	if (x87_env32(insn)) {
		uint32_t w[7];
		w[0] = 0xffff0000u | fx->fcw;
		w[1] = 0xffff0000u | fx->fsw;
		w[2] = 0xffff0000u | tag;
		if (real) {
			/* Real-address format: 20-bit linear pointers split in two. */
			uint32_t lip = fip + ((uint32_t)fcs << 4), ldp = fdp + ((uint32_t)fds << 4);
			w[3] = 0xffff0000u | (lip & 0xffff);
			w[4] = ((lip >> 16) << 12) | (fx->fop & 0x7ff);
			w[5] = 0xffff0000u | (ldp & 0xffff);
			w[6] = (ldp >> 16) << 12;
		} else {
			w[3] = fip;
			w[4] = fcs | ((uint32_t)(fx->fop & 0x7ff) << 16);
			w[5] = fdp;
			w[6] = 0xffff0000u | fds;
		}
		memcpy(env, w, 28);
		return 28;
	}
	uint16_t w[7];
	w[0] = fx->fcw;
	w[1] = fx->fsw;
	w[2] = tag;
	if (real) {
		uint32_t lip = fip + ((uint32_t)fcs << 4), ldp = fdp + ((uint32_t)fds << 4);
		w[3] = (uint16_t)lip;
		w[4] = (uint16_t)(((lip >> 16) << 12) | (fx->fop & 0x7ff));
		w[5] = (uint16_t)ldp;
		w[6] = (uint16_t)((ldp >> 16) << 12);
	} else {
		w[3] = (uint16_t)fip;
		w[4] = fcs;
		w[5] = (uint16_t)fdp;
		w[6] = fds;
	}
	memcpy(env, w, 14);
	return 14;
}

static void x87_env_load(struct emu_cpu *cpu, const struct emu_insn *insn, const uint8_t *env)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint16_t tag;
	bool real = x87_real_format(cpu);
	if (x87_env32(insn)) {
		uint32_t w[7];
		memcpy(w, env, 28);
		fx->fcw = (uint16_t)w[0];
		x87_move_top(fx, (w[1] >> 11) & 7);   /* physical registers stay put */
		fx->fsw = (uint16_t)w[1];
		tag = (uint16_t)w[2];
		if (real) {
			fx->fip = (w[3] & 0xffff) | ((w[4] >> 12) << 16);
			fx->fop = w[4] & 0x7ff;
			fx->fdp = (w[5] & 0xffff) | ((w[6] >> 12) << 16);
		} else {
			fx->fip = w[3] | ((uint64_t)(w[4] & 0xffff) << 32);
			fx->fop = (w[4] >> 16) & 0x7ff;
			fx->fdp = w[5] | ((uint64_t)(w[6] & 0xffff) << 32);
		}
	} else {
		uint16_t w[7];
		memcpy(w, env, 14);
		fx->fcw = w[0];
		x87_move_top(fx, (w[1] >> 11) & 7);
		fx->fsw = w[1];
		tag = w[2];
		if (real) {
			fx->fip = w[3] | ((uint32_t)(w[4] >> 12) << 16);
			fx->fop = w[4] & 0x7ff;
			fx->fdp = w[5] | ((uint32_t)(w[6] >> 12) << 16);
		} else {
			fx->fip = w[3] | ((uint64_t)w[4] << 32);
			fx->fdp = w[5] | ((uint64_t)w[6] << 32);
		}
	}
	fx->ftw = 0;
	for (unsigned p = 0; p < 8; p++)
		if (((tag >> (2 * p)) & 3) != 3)
			fx->ftw |= (uint8_t)(1u << p);
	/* ES/B follow the loaded flags and masks (8.1.3.1). */
	if (fx->fsw & FSW_EXC & ~fx->fcw)
		fx->fsw |= FSW_ES | FSW_B;
	else
		fx->fsw &= ~(FSW_ES | FSW_B);
}

static void x87_fstenv(struct emu_cpu *cpu, const struct emu_insn *insn, bool save)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint64_t ea = emu_insn_ea(cpu, insn);
	uint8_t img[108];
	unsigned n = x87_env_build(cpu, insn, img);
	if (save) {
		for (unsigned i = 0; i < 8; i++)
			memcpy(img + n + 10 * i, fx->st[i].b, 10);
		n += 80;
	}
	emu_write_bytes(cpu, insn->seg, ea, img, n);
	if (save) {
		fpu_x87_init(cpu);
	} else {
		/* FNSTENV masks all exceptions after saving (vol. 2A "FSTENV"). */
		fx->fcw |= FSW_EXC;
	}
}

static void x87_fldenv(struct emu_cpu *cpu, const struct emu_insn *insn, bool restore)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint64_t ea = emu_insn_ea(cpu, insn);
	uint8_t img[108];
	unsigned n = x87_env32(insn) ? 28 : 14;
	emu_read_bytes(cpu, insn->seg, ea, img, n + (restore ? 80 : 0));
	x87_env_load(cpu, insn, img);
	if (restore)
		for (unsigned i = 0; i < 8; i++) {
			memcpy(fx->st[i].b, img + n + 10 * i, 10);
			memset(fx->st[i].b + 10, 0, 6);
		}
}

/* ---- handlers per escape opcode ---- */

static inline unsigned modrm_reg(const struct emu_insn *insn)
{
	return (insn->modrm >> 3) & 7;
}

static inline unsigned modrm_rm(const struct emu_insn *insn)
{
	return insn->modrm & 7;
}

void x87_d8(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_x87(cpu);
	if (insn->mod != 3) {
		x87_arith_mem(cpu, insn, 0);
		return;
	}
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	x87_note(cpu, insn, false, 0);
	if (op == XA_COM || op == XA_COMP)
		x87_compare_reg(cpu, i, false, op == XA_COMP);
	else
		x87_arith_reg(cpu, op, 0, i, true, false);
}

void x87_dc(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_x87(cpu);
	if (insn->mod != 3) {
		x87_arith_mem(cpu, insn, 1);
		return;
	}
	/* DC/DE register forms: ST(i) = ST(i) op ST(0), with the SUB/SUBR and
	 * DIV/DIVR encodings swapped relative to D8 (vol. 2D, table A-17). */
	static const uint8_t swap[8] = { XA_ADD, XA_MUL, XA_COM, XA_COMP, XA_SUBR, XA_SUB, XA_DIVR, XA_DIV };
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	x87_note(cpu, insn, false, 0);
	if (op == XA_COM || op == XA_COMP) /* FCOM2/FCOMP3 aliases */
		x87_compare_reg(cpu, i, false, op == XA_COMP);
	else
		x87_arith_reg(cpu, swap[op], i, i, false, false);
}

void x87_de(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_x87(cpu);
	if (insn->mod != 3) {
		x87_arith_mem(cpu, insn, 2);
		return;
	}
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	x87_note(cpu, insn, false, 0);
	if (op == XA_COM) {          /* FCOMP5 alias */
		x87_compare_reg(cpu, i, false, 1);
	} else if (op == XA_COMP) {
		if (i != 1)
			emu_raise_noerr(cpu, X86_EXC_UD);
		x87_compare_reg(cpu, 1, false, 2);   /* FCOMPP */
	} else {
		/* DE E0+i FSUBRP: ST(i) = ST(0) - ST(i); DE E8+i FSUBP: ST(i) - ST(0) */
		static const uint8_t map[8] = { XA_ADD, XA_MUL, 0, 0, XA_SUBR, XA_SUB, XA_DIVR, XA_DIV };
		x87_arith_reg(cpu, map[op], i, i, false, true);
	}
}

/* x87_arith_reg with dst_is_st0 == false computes ST(i) = ST(i) op ST(0)
 * as op(a = ST(i), b = ST(0)): "FSUB(P) ST(i),ST(0)" (ST(i) - ST(0), reg 5)
 * is XA_SUB and "FSUBR(P) ST(i),ST(0)" (ST(0) - ST(i), reg 4) is XA_SUBR. */

void x87_da(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	fpu_check_x87(cpu);
	if (insn->mod != 3) {
		x87_arith_mem(cpu, insn, 3);
		return;
	}
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	x87_note(cpu, insn, false, 0);
	if (op == 5 && i == 1) {     /* FUCOMPP */
		x87_compare_reg(cpu, 1, true, 2);
		return;
	}
	if (op > 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	/* FCMOVB/E/BE/U (vol. 2A "FCMOVcc") */
	uint64_t fl = emu_get_rflags(cpu);
	bool cond;
	switch (op) {
	case 0: cond = fl & X86_FLAG_CF; break;
	case 1: cond = fl & X86_FLAG_ZF; break;
	case 2: cond = fl & (X86_FLAG_CF | X86_FLAG_ZF); break;
	default: cond = fl & X86_FLAG_PF; break;
	}
	struct fpu_fx *fx = fpu_fx(cpu);
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0) || x87_empty(fx, i)) {
		if (x87_stack_fault(fx, false))
			x87_put(fx, 0, x87_indefinite);
		return;
	}
	if (cond) {
		uint8_t v[10];
		x87_get(fx, i, v);
		x87_put(fx, 0, v);
	}
}

void x87_db(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	if (insn->mod == 3 && op == 4) {
		/* FNCLEX, FNINIT; FENI/FDISI/FSETPM are no-ops since the 387. */
		fpu_check_x87_nowait(cpu);
		switch (i) {
		case 2: fx->fsw &= ~(FSW_EXC | FSW_SF | FSW_ES | FSW_B); return;
		case 3: fpu_x87_init(cpu); return;
		case 0: case 1: case 4: return;
		default: emu_raise_noerr(cpu, X86_EXC_UD);
		}
	}
	fpu_check_x87(cpu);
	if (insn->mod != 3) {
		switch (op) {
		case 0: x87_load(cpu, insn, XH_LD_I32, 4); return;
		case 1: x87_store(cpu, insn, XH_STT_I32, 4, true); return;
		case 2: x87_store(cpu, insn, XH_ST_I32, 4, false); return;
		case 3: x87_store(cpu, insn, XH_ST_I32, 4, true); return;
		case 5: x87_load(cpu, insn, XH_LD_F32, 10); return;
		case 7: x87_store(cpu, insn, XH_ST_F32, 10, true); return;
		default: emu_raise_noerr(cpu, X86_EXC_UD);
		}
	}
	x87_note(cpu, insn, false, 0);
	if (op == 5 || op == 6) {    /* FUCOMI, FCOMI */
		x87_comi(cpu, i, op == 5, false);
		return;
	}
	if (op > 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	uint64_t fl = emu_get_rflags(cpu);
	bool cond;
	switch (op) {
	case 0: cond = !(fl & X86_FLAG_CF); break;
	case 1: cond = !(fl & X86_FLAG_ZF); break;
	case 2: cond = !(fl & (X86_FLAG_CF | X86_FLAG_ZF)); break;
	default: cond = !(fl & X86_FLAG_PF); break;
	}
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0) || x87_empty(fx, i)) {
		if (x87_stack_fault(fx, false))
			x87_put(fx, 0, x87_indefinite);
		return;
	}
	if (cond) {
		uint8_t v[10];
		x87_get(fx, i, v);
		x87_put(fx, 0, v);
	}
}

/* FST/FSTP ST(i) and FLD ST(i), FXCH: plain moves, no exceptions but #IS. */
static void x87_fst_reg(struct emu_cpu *cpu, unsigned i, bool pop)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0)) {
		if (!x87_stack_fault(fx, false))
			return;
		x87_put(fx, i, x87_indefinite);
	} else {
		uint8_t v[10];
		x87_get(fx, 0, v);
		x87_put(fx, i, v);
	}
	if (pop)
		x87_pop(fx);
}

static void x87_fxch(struct emu_cpu *cpu, unsigned i)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint8_t a[10], b[10];
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0) || x87_empty(fx, i)) {
		if (!x87_stack_fault(fx, false))
			return;
		/* masked: empty operands are replaced by the indefinite first */
		if (x87_empty(fx, 0))
			x87_put(fx, 0, x87_indefinite);
		if (x87_empty(fx, i))
			x87_put(fx, i, x87_indefinite);
	}
	x87_get(fx, 0, a);
	x87_get(fx, i, b);
	x87_put(fx, 0, b);
	x87_put(fx, i, a);
}

/* One-operand ST(0) operations of D9 E0-FF. */
static void x87_unary(struct emu_cpu *cpu, enum x87_hop hop, uint16_t ccmask)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0)) {
		if (x87_stack_fault(fx, false))
			x87_put(fx, 0, x87_indefinite);
		return;
	}
	struct x87_host h;
	h.cw = fx->fcw;
	x87_get(fx, 0, h.a);
	x87_host_run(hop, &h);
	/* FSIN/FCOS out of range (C2 = 1) leave ST(0) as it was; the host
	 * hands it back unchanged in r0 then. */
	if (x87_apply(fx, h.sw, ccmask))
		x87_put(fx, 0, h.r0);
}

/* Two-operand ops on ST(0), ST(1): FPATAN/FYL2X/FYL2XP1 pop, FSCALE and
 * FPREM/FPREM1 replace ST(0). */
static void x87_binary(struct emu_cpu *cpu, enum x87_hop hop, bool pop, uint16_t ccmask)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0) || x87_empty(fx, 1)) {
		if (!x87_stack_fault(fx, false))
			return;
		if (pop) {
			x87_put(fx, 1, x87_indefinite);
			x87_pop(fx);
		} else {
			x87_put(fx, 0, x87_indefinite);
		}
		return;
	}
	struct x87_host h;
	h.cw = fx->fcw;
	x87_get(fx, 0, h.a);
	x87_get(fx, 1, h.b);
	x87_host_run(hop, &h);
	if (!x87_apply(fx, h.sw, ccmask))
		return;
	if (pop) {
		x87_put(fx, 1, h.r0);
		x87_pop(fx);
	} else {
		x87_put(fx, 0, h.r0);
	}
}

/* FSINCOS/FPTAN/FXTRACT: replace ST(0) and push a second result. */
static void x87_two_results(struct emu_cpu *cpu, enum x87_hop hop)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	fx->fsw &= ~FSW_C1;
	if (x87_empty(fx, 0)) {
		if (x87_stack_fault(fx, false)) {
			x87_put(fx, 0, x87_indefinite);
			x87_push(fx, x87_indefinite);
		}
		return;
	}
	if (!x87_empty(fx, 7)) {
		if (x87_stack_fault(fx, true)) {
			x87_put(fx, 0, x87_indefinite);
			x87_push(fx, x87_indefinite);
		}
		return;
	}
	struct x87_host h;
	h.cw = fx->fcw;
	x87_get(fx, 0, h.a);
	x87_host_run(hop, &h);
	uint16_t cc = hop == XH_XTRACT ? FSW_C1 : FSW_C1 | FSW_C2;
	if (!x87_apply(fx, h.sw, cc))
		return;
	if (hop != XH_XTRACT && (h.sw & FSW_C2))
		return;   /* operand out of range: ST(0) unchanged, nothing pushed */
	x87_put(fx, 0, h.r1);
	x87_push(fx, h.r0);
}

static void x87_fxam(struct emu_cpu *cpu)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	uint8_t v[10];
	x87_get(fx, 0, v);
	uint16_t c1 = (v[9] & 0x80) ? FSW_C1 : 0;
	uint16_t cc;
	if (x87_empty(fx, 0)) {
		cc = FSW_C3 | FSW_C0;
	} else {
		struct x87_host h;
		h.cw = fx->fcw;
		memcpy(h.a, v, 10);
		x87_host_run(XH_XAM, &h);
		cc = h.sw & (FSW_C0 | FSW_C2 | FSW_C3);
	}
	fx->fsw = (uint16_t)((fx->fsw & ~FSW_CC) | cc | c1);
}

void x87_d9(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	if (insn->mod != 3) {
		uint64_t ea;
		switch (op) {
		case 0: fpu_check_x87(cpu); x87_load(cpu, insn, XH_LD_F32, 4); return;
		case 2: fpu_check_x87(cpu); x87_store(cpu, insn, XH_ST_F32, 4, false); return;
		case 3: fpu_check_x87(cpu); x87_store(cpu, insn, XH_ST_F32, 4, true); return;
		case 4: fpu_check_x87(cpu); x87_fldenv(cpu, insn, false); return;
		case 5: /* FLDCW */
			fpu_check_x87(cpu);
			ea = emu_insn_ea(cpu, insn);
			fx->fcw = (uint16_t)emu_read(cpu, insn->seg, ea, 2);
			if (fx->fsw & FSW_EXC & ~fx->fcw)
				fx->fsw |= FSW_ES | FSW_B;
			else
				fx->fsw &= ~(FSW_ES | FSW_B);
			return;
		case 6: fpu_check_x87_nowait(cpu); x87_fstenv(cpu, insn, false); return;
		case 7: /* FNSTCW */
			fpu_check_x87_nowait(cpu);
			ea = emu_insn_ea(cpu, insn);
			emu_write(cpu, insn->seg, ea, 2, fx->fcw);
			return;
		default: emu_raise_noerr(cpu, X86_EXC_UD);
		}
	}
	fpu_check_x87(cpu);
	switch (op) {
	case 0: { /* FLD ST(i) */
		x87_note(cpu, insn, false, 0);
		fx->fsw &= ~FSW_C1;
		if (x87_empty(fx, i)) {
			if (x87_stack_fault(fx, false))
				x87_push(fx, x87_indefinite);
			return;
		}
		uint8_t v[10];
		x87_get(fx, i, v);
		x87_push(fx, v);
		return;
	}
	case 1: x87_note(cpu, insn, false, 0); x87_fxch(cpu, i); return;
	case 2:
		if (i != 0)
			emu_raise_noerr(cpu, X86_EXC_UD);
		x87_note(cpu, insn, false, 0);   /* FNOP */
		return;
	case 3: x87_note(cpu, insn, false, 0); x87_fst_reg(cpu, i, true); return;  /* FSTP1 alias */
	default: break;
	}
	x87_note(cpu, insn, false, 0);
	switch (insn->modrm) {
	case 0xe0: case 0xe1: { /* FCHS, FABS: sign bit only, no exceptions but #IS */
		fx->fsw &= ~FSW_C1;
		if (x87_empty(fx, 0)) {
			if (x87_stack_fault(fx, false))
				x87_put(fx, 0, x87_indefinite);
			return;
		}
		uint8_t v[10];
		x87_get(fx, 0, v);
		if (insn->modrm == 0xe0)
			v[9] ^= 0x80;
		else
			v[9] &= 0x7f;
		x87_put(fx, 0, v);
		return;
	}
	case 0xe4: /* FTST */
		if (x87_empty(fx, 0)) {
			x87_compare_empty(fx, 0);
			return;
		}
		{
			struct x87_host h;
			h.cw = fx->fcw;
			x87_get(fx, 0, h.a);
			x87_host_run(XH_TST, &h);
			x87_compare_result(fx, h.sw, 0);
		}
		return;
	case 0xe5: x87_fxam(cpu); return;
	case 0xe8: case 0xe9: case 0xea: case 0xeb: case 0xec: case 0xed: case 0xee: {
		static const uint8_t k[7] = { XH_LD1, XH_LDL2T, XH_LDL2E, XH_LDPI, XH_LDLG2, XH_LDLN2, XH_LDZ };
		struct x87_host h;
		h.cw = fx->fcw;
		x87_host_run((enum x87_hop)k[insn->modrm - 0xe8], &h);
		fx->fsw &= ~FSW_C1;
		x87_push(fx, h.r0);
		return;
	}
	case 0xf0: x87_unary(cpu, XH_F2XM1, FSW_C1); return;
	case 0xf1: x87_binary(cpu, XH_YL2X, true, FSW_C1); return;
	case 0xf2: x87_two_results(cpu, XH_PTAN); return;
	case 0xf3: x87_binary(cpu, XH_PATAN, true, FSW_C1); return;
	case 0xf4: x87_two_results(cpu, XH_XTRACT); return;
	case 0xf5: x87_binary(cpu, XH_PREM1, false, FSW_CC); return;
	case 0xf6: /* FDECSTP */
		fx->fsw &= ~FSW_C1;
		x87_move_top(fx, x87_top(fx) - 1);
		return;
	case 0xf7: /* FINCSTP */
		fx->fsw &= ~FSW_C1;
		x87_move_top(fx, x87_top(fx) + 1);
		return;
	case 0xf8: x87_binary(cpu, XH_PREM, false, FSW_CC); return;
	case 0xf9: x87_binary(cpu, XH_YL2XP1, true, FSW_C1); return;
	case 0xfa: x87_unary(cpu, XH_SQRT, FSW_C1); return;
	case 0xfb: x87_two_results(cpu, XH_SINCOS); return;
	case 0xfc: x87_unary(cpu, XH_RNDINT, FSW_C1); return;
	case 0xfd: x87_binary(cpu, XH_SCALE, false, FSW_C1); return;
	case 0xfe: x87_unary(cpu, XH_SIN, FSW_C1 | FSW_C2); return;
	case 0xff: x87_unary(cpu, XH_COS, FSW_C1 | FSW_C2); return;
	default: emu_raise_noerr(cpu, X86_EXC_UD);
	}
}

void x87_dd(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	if (insn->mod != 3) {
		switch (op) {
		case 0: fpu_check_x87(cpu); x87_load(cpu, insn, XH_LD_F64, 8); return;
		case 1: fpu_check_x87(cpu); x87_store(cpu, insn, XH_STT_I64, 8, true); return;
		case 2: fpu_check_x87(cpu); x87_store(cpu, insn, XH_ST_F64, 8, false); return;
		case 3: fpu_check_x87(cpu); x87_store(cpu, insn, XH_ST_F64, 8, true); return;
		case 4: fpu_check_x87(cpu); x87_fldenv(cpu, insn, true); return;
		case 6: fpu_check_x87_nowait(cpu); x87_fstenv(cpu, insn, true); return;
		case 7: /* FNSTSW m16 */
			fpu_check_x87_nowait(cpu);
			emu_write(cpu, insn->seg, emu_insn_ea(cpu, insn), 2, fx->fsw);
			return;
		default: emu_raise_noerr(cpu, X86_EXC_UD);
		}
	}
	fpu_check_x87(cpu);
	x87_note(cpu, insn, false, 0);
	switch (op) {
	case 0: /* FFREE */
		fx->ftw &= (uint8_t)~(1u << x87_phys(fx, i));
		return;
	case 1: x87_fxch(cpu, i); return;          /* FXCH4 alias */
	case 2: x87_fst_reg(cpu, i, false); return;
	case 3: x87_fst_reg(cpu, i, true); return;
	case 4: x87_compare_reg(cpu, i, true, 0); return;
	case 5: x87_compare_reg(cpu, i, true, 1); return;
	default: emu_raise_noerr(cpu, X86_EXC_UD);
	}
}

void x87_df(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	struct fpu_fx *fx = fpu_fx(cpu);
	unsigned op = modrm_reg(insn), i = modrm_rm(insn);
	if (insn->mod != 3) {
		fpu_check_x87(cpu);
		switch (op) {
		case 0: x87_load(cpu, insn, XH_LD_I16, 2); return;
		case 1: x87_store(cpu, insn, XH_STT_I16, 2, true); return;
		case 2: x87_store(cpu, insn, XH_ST_I16, 2, false); return;
		case 3: x87_store(cpu, insn, XH_ST_I16, 2, true); return;
		case 4: x87_load(cpu, insn, XH_LD_BCD, 10); return;
		case 5: x87_load(cpu, insn, XH_LD_I64, 8); return;
		case 6: x87_store(cpu, insn, XH_ST_BCD, 10, true); return;
		default: x87_store(cpu, insn, XH_ST_I64, 8, true); return;
		}
	}
	if (op == 4) {
		if (i != 0)
			emu_raise_noerr(cpu, X86_EXC_UD);
		fpu_check_x87_nowait(cpu);   /* FNSTSW AX */
		cpu->gpr[RAX] = (cpu->gpr[RAX] & ~0xffffull) | fx->fsw;
		return;
	}
	fpu_check_x87(cpu);
	x87_note(cpu, insn, false, 0);
	switch (op) {
	case 0: /* FFREEP (undocumented, 287+) */
		fx->ftw &= (uint8_t)~(1u << x87_phys(fx, i));
		x87_pop(fx);
		return;
	case 1: x87_fxch(cpu, i); return;
	case 2: case 3: x87_fst_reg(cpu, i, true); return;
	case 5: x87_comi(cpu, i, true, true); return;
	case 6: x87_comi(cpu, i, false, true); return;
	default: emu_raise_noerr(cpu, X86_EXC_UD);
	}
}

void x87_fwait(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	/* WAIT/FWAIT: #NM only when both MP and TS are set (vol. 3A, 2.5 table 2-2). */
	if ((cpu->cr0 & (X86_CR0_MP | X86_CR0_TS)) == (X86_CR0_MP | X86_CR0_TS))
		emu_raise_noerr(cpu, X86_EXC_NM);
	if ((fpu_fx(cpu)->fsw & FSW_ES) && (cpu->cr0 & X86_CR0_NE))
		emu_raise_noerr(cpu, X86_EXC_MF);
}
