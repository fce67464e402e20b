/* Differential test against Unicorn 2 (QEMU's x86 CPU as a library):
 * random instruction sequences of every general-purpose group
 * (diff_gen.c) run on the engine and on Unicorn in real-address mode
 * (16-bit, with 66/67 mixes), in 32-bit protected mode and in 64-bit
 * mode; registers, RIP, the flags the SDM defines, the whole memory
 * window and faults are compared.
 *
 * Unicorn's modes: UC_MODE_16 starts in real mode; UC_MODE_32 and
 * UC_MODE_64 start with CR0.PE set, flat 4 GiB segments cached in the
 * segment registers (no GDT needed, no segment loads are generated) and
 * no paging; UC_MODE_64 adds a 64-bit code segment and EFER.LMA.  Its
 * interrupt hook reports an exception before delivery; stopping there
 * leaves RIP at the faulting instruction with its state unchanged, as the
 * harness does, so state is compared after faults as well. */
#include "diff_run.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <unicorn/unicorn.h>

#define CI_CASES 2000u

struct uc_side {
	uc_engine *uc;
	uc_context *fresh;     /* CPU state right after uc_open */
	unsigned mode;
	int intno;
};

static void on_intr(uc_engine *uc, uint32_t intno, void *user)
{
	struct uc_side *s = user;
	s->intno = (int)intno;
	uc_emu_stop(uc);
}

static const int uc_gpr64[16] = {
	UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX, UC_X86_REG_RSP, UC_X86_REG_RBP,
	UC_X86_REG_RSI, UC_X86_REG_RDI, UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
	UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};
static const int uc_gpr32[8] = {
	UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
	UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI,
};

/* Instructions Unicorn 2.0.1 runs differently from the SDM or from the
 * engine's CPU model, left out of the comparison (the native test
 * compares each with the host CPU):
 *  - POPCNT (F3 0F B8) and MOVBE (0F 38 F0/F1) raise #UD, although the
 *    engine advertises both (CPUID.1:ECX bits 23 and 22), whatever CPU
 *    model is selected (uc_ctl_set_cpu_model does not reach TCG's
 *    feature checks);
 *  - F3 0F BC executes as TZCNT (BMI1), which the engine does not
 *    advertise, so there it is BSF (SDM vol. 2B TZCNT: "on processors
 *    that do not support TZCNT, the instruction byte encoding is executed
 *    as BSF");
 *  - MOV r/m, imm (C6/C7 /0) with REX.R raises #UD: QEMU takes REX.R as
 *    part of the opcode extension, which SDM vol. 2A 2.2.1.2 says is
 *    ignored when ModRM.reg extends the opcode;
 *  - SHLD/SHRD with an imm8 and a RIP-relative operand address the byte
 *    before the operand: QEMU leaves the immediate out of the
 *    instruction length it adds (SDM vol. 2A 2.2.1.6: RIP-relative
 *    addresses are relative to the next instruction);
 *  - CMPXCHG8B/16B after a flag-setting instruction in the same
 *    translated block leave EFLAGS as garbage (even TF set): QEMU's
 *    helper computes the old flags from a stale lazy-flags state;
 *  - 64-bit mode, CMPXCHG with a 32-bit register destination whose
 *    comparison fails zero-extends that register: QEMU (before 8.1)
 *    writes the destination back as the SDM's pseudo-code reads, where
 *    processors leave the register untouched;
 *  - 64-bit mode, LAHF/SAHF with a REX prefix use SPL instead of AH:
 *    QEMU applies the REX byte-register rule to the implicit operand
 *    (SDM vol. 2A LAHF/SAHF: the operand is AH);
 *  - LOCK NEG sets SF and PF from the wrong value (NEG of 3 reads back
 *    with SF clear and PF set): QEMU's locked NEG computes the flags
 *    from its compare-exchange loop's operands, not the result;
 *  - LOOPE/LOOPNE that end because the count reached zero read back
 *    with every arithmetic flag clear when a flag-setting instruction
 *    precedes them in the block: QEMU's translation of that exit drops
 *    the lazy-flags state.  (LOOP and JrCXZ are compared.) */
static bool uc_reject(const struct emu_insn *in, unsigned mode)
{
	bool m64 = mode == EMU_MODE_LONG64;
	unsigned op = in->opcode, reg = (in->modrm >> 3) & 7;
	switch (in->opmap) {
	case EMU_MAP_1B:
		if (op == 0xe0 || op == 0xe1)
			return true;                                      /* LOOPNE LOOPE */
		if (in->lock && (op == 0xf6 || op == 0xf7) && reg == 3)
			return true;                                      /* LOCK NEG */
		if (m64 && (op == 0xc6 || op == 0xc7) && (in->rex & 4))
			return true;                                      /* MOV r/m, imm with REX.R */
		return m64 && (op == 0x9e || op == 0x9f) && in->rex;      /* SAHF LAHF with REX */
	case EMU_MAP_0F:
		if (in->mprefix == EMU_MP_F3 && (op == 0xb8 || op == 0xbc))
			return true;                                      /* POPCNT, TZCNT */
		if ((op == 0xa4 || op == 0xac) && in->rip_rel)
			return true;                                      /* SHLD/SHRD ib, RIP-relative */
		if (m64 && (op == 0xb0 || op == 0xb1) && in->mod == 3 && in->opsize == 4)
			return true;                                      /* CMPXCHG r32 */
		return op == 0xc7;                                        /* CMPXCHG8B/16B */
	case EMU_MAP_0F38:
		return op == 0xf0 || op == 0xf1;                          /* MOVBE */
	default:
		return false;
	}
}

static int fault_of(struct uc_side *s, uc_err err)
{
	if (s->intno >= 0)
		return s->intno;
	switch (err) {
	case UC_ERR_OK:
		return -1;
	case UC_ERR_INSN_INVALID:
		return X86_EXC_UD;
	case UC_ERR_FETCH_UNMAPPED: {
		/* Real mode: an exception Unicorn delivered through the IVT,
		 * whose vectors lead to F000:vector*4 (diff_fill_window). */
		uint32_t cs = 0, ip = 0;
		uc_reg_read(s->uc, UC_X86_REG_CS, &cs);
		uc_reg_read(s->uc, UC_X86_REG_EIP, &ip);
		if (s->mode == EMU_MODE_REAL && cs == 0xf000)
			return (int)(ip / 4);
		return X86_EXC_GP;
	}
	default:
		return X86_EXC_GP;    /* unmapped or protected memory */
	}
}

static bool uc_run(void *ctx, const struct diff_case *c, uint8_t *win, uint64_t stop, struct diff_outcome *out)
{
	struct uc_side *s = ctx;
	uc_engine *uc = s->uc;
	/* Unicorn stops in the interrupt hook before delivering, so QEMU
	 * keeps the exception as the one being delivered: the next one would
	 * become #DF, then a triple fault that ends the run silently.  A CPU
	 * state saved before any exception starts every case afresh. */
	uc_context_restore(uc, s->fresh);
	uc_mem_write(uc, 0, win, DIFF_WIN_SIZE);
	/* New code at the same address: drop the translated blocks. */
	uc_ctl_remove_cache(uc, DIFF_CODE_AT, DIFF_CODE_AT + DIFF_CODE_MAX);
	if (s->mode == EMU_MODE_LONG64) {
		for (unsigned r = 0; r < 16; r++)
			uc_reg_write(uc, uc_gpr64[r], &c->gpr[r]);
	} else {
		for (unsigned r = 0; r < 8; r++) {
			uint32_t v = (uint32_t)c->gpr[r];
			uc_reg_write(uc, uc_gpr32[r], &v);
		}
	}
	uint32_t fl = c->flags;
	uc_reg_write(uc, UC_X86_REG_EFLAGS, &fl);
	s->intno = -1;
	uc_err err = uc_emu_start(uc, DIFF_CODE_AT, stop, 0, 0);
	out->exc = fault_of(s, err);
	/* Stopped in the interrupt hook (before delivery, in real mode too),
	 * the state is that before the faulting instruction.  Not so after a
	 * memory error (QEMU has not brought EIP up to date within the block)
	 * or an exception delivered through the real-mode IVT anyway (a frame
	 * pushed). */
	out->exact = s->intno >= 0;
	if (s->mode == EMU_MODE_LONG64) {
		for (unsigned r = 0; r < 16; r++)
			uc_reg_read(uc, uc_gpr64[r], &out->gpr[r]);
		uc_reg_read(uc, UC_X86_REG_RIP, &out->rip);
	} else {
		uint32_t v;
		for (unsigned r = 0; r < 8; r++) {
			uc_reg_read(uc, uc_gpr32[r], &v);
			out->gpr[r] = v;
		}
		uc_reg_read(uc, UC_X86_REG_EIP, &v);
		out->rip = v;
	}
	uc_reg_read(uc, UC_X86_REG_EFLAGS, &fl);
	out->flags = fl;
	uc_mem_read(uc, 0, win, DIFF_WIN_SIZE);
	return true;
}

static uint64_t descriptor(uint32_t base, uint8_t access)
{
	/* Limit 4 GiB (FFFFF, G = 1), D/B = 1 (SDM vol. 3A, 3.4.5). */
	return 0xffff | (uint64_t)(base & 0xffffff) << 16 | (uint64_t)access << 40 | 0xfull << 48 |
	       0xcull << 52 | (uint64_t)(base >> 24) << 56;
}

/* The segment bases of diff_seg_base().  Real mode: selectors.  32-bit:
 * a GDT with one data descriptor per base, loaded through selectors (the
 * GDT itself is only read here; no case loads a segment).  64-bit: the
 * FS and GS base registers. */
static void set_segments(uc_engine *uc, unsigned mode)
{
	static const int regs[SEG_COUNT] = { [SEG_ES] = UC_X86_REG_ES, [SEG_CS] = UC_X86_REG_CS,
		[SEG_SS] = UC_X86_REG_SS, [SEG_DS] = UC_X86_REG_DS, [SEG_FS] = UC_X86_REG_FS, [SEG_GS] = UC_X86_REG_GS };
	if (mode == EMU_MODE_LONG64) {
		uint64_t fs = diff_seg_base(mode, SEG_FS), gs = diff_seg_base(mode, SEG_GS);
		cr_assert_eq(uc_reg_write(uc, UC_X86_REG_FS_BASE, &fs), UC_ERR_OK);
		cr_assert_eq(uc_reg_write(uc, UC_X86_REG_GS_BASE, &gs), UC_ERR_OK);
		return;
	}
	if (mode == EMU_MODE_PROT32) {
		uint64_t gdt[SEG_COUNT + 1] = { 0 };
		for (int s = 0; s < SEG_COUNT; s++)
			gdt[s + 1] = descriptor(diff_seg_base(mode, s), 0x93);
		const uint64_t gdt_at = 0x100;
		cr_assert_eq(uc_mem_write(uc, gdt_at, gdt, sizeof(gdt)), UC_ERR_OK);
		uc_x86_mmr gdtr = { .base = gdt_at, .limit = sizeof(gdt) - 1 };
		cr_assert_eq(uc_reg_write(uc, UC_X86_REG_GDTR, &gdtr), UC_ERR_OK);
	}
	for (int s = 0; s < SEG_COUNT; s++) {
		if (s == SEG_CS && mode != EMU_MODE_REAL)
			continue;   /* Unicorn's flat 32-bit code segment stays */
		uint32_t sel = mode == EMU_MODE_REAL ? diff_seg_base(mode, s) >> 4 : (uint32_t)(s + 1) * 8;
		cr_assert_eq(uc_reg_write(uc, regs[s], &sel), UC_ERR_OK);
	}
}

static void run_mode(unsigned mode, uc_mode um)
{
	struct uc_side s = { .mode = mode };
	cr_assert_eq(uc_open(UC_ARCH_X86, um, &s.uc), UC_ERR_OK);
	cr_assert_eq(uc_mem_map(s.uc, 0, DIFF_WIN_SIZE, UC_PROT_ALL), UC_ERR_OK);
	uc_hook hh;
	cr_assert_eq(uc_hook_add(s.uc, &hh, UC_HOOK_INTR, (void *)on_intr, &s, 1, 0), UC_ERR_OK);
	set_segments(s.uc, mode);
	cr_assert_eq(uc_context_alloc(s.uc, &s.fresh), UC_ERR_OK);
	cr_assert_eq(uc_context_save(s.uc, s.fresh), UC_ERR_OK);
	struct diff_oracle o = {
		.name = "unicorn", .reject = uc_reject, .run = uc_run, .ctx = &s,
	};
	unsigned bad = diff_run_mode(mode, &o, diff_cases_per_group(CI_CASES));
	uc_context_free(s.fresh);
	uc_close(s.uc);
	cr_assert_eq(bad, 0, "%u cases differ from Unicorn", bad);
}

Test(unicorn_diff, real_mode_16)
{
	run_mode(EMU_MODE_REAL, UC_MODE_16);
}

Test(unicorn_diff, protected_mode_32)
{
	run_mode(EMU_MODE_PROT32, UC_MODE_32);
}

Test(unicorn_diff, long_mode_64)
{
	run_mode(EMU_MODE_LONG64, UC_MODE_64);
}

/* Regression: AAS subtracts 6 from all of AX (AL's borrow reaches AH)
 * before decrementing AH (SDM vol. 2A, AAS "Operation"). */
Test(regressions, aas_borrows_from_ah)
{
	static uint8_t mem[0x20000];
	struct harness h;
	harness_init(&h, mem, 0, sizeof(mem), EMU_MODE_REAL);
	mem[0x100] = 0x3f;   /* aas */
	h.cpu.rip = 0x100;
	h.cpu.gpr[RAX] = 0x0105;
	emu_set_rflags(&h.cpu, X86_FLAG_FIXED | X86_FLAG_AF);
	cr_assert_eq(harness_step(&h), -1);
	cr_assert_eq(h.cpu.gpr[RAX] & 0xffff, 0xff0f);
	cr_assert(emu_get_rflags(&h.cpu) & X86_FLAG_CF);
}
