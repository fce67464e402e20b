/* Code generation against the interpreter (docs/architecture.md "Code
 * generation"): random blocks made of the forms that have inline
 * templates (jit/templates.c, jit/alu.c) -- ALU with registers,
 * immediates and memory, ADC/SBB, INC/DEC, NEG/NOT, shifts and rotates,
 * MUL, IMUL, MOVSX/MOVZX/MOVSXD, CMOVcc, SETcc, and the byte and word
 * forms -- run on two vCPUs, one interpreting and one translating every
 * block at its first run.  They
 * must end with the same registers, RFLAGS and memory.  Some blocks
 * fault part way (a load from an unmapped page): the exception frame
 * on the stack holds RFLAGS as the faulting instruction saw them, which
 * is what dead-flag elimination must not change.  The code generator's
 * counters show the templates and the elimination did run. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "machine/accel.h"
#include "cpu/emu/emu.h"
#include "cpu/engines.h"
#include "machine/machine.h"

#define RAM (4u << 20)
#define CODE 0x1000u
#define DATA 0x100000u     /* RBP: memory operands are [rbp + disp8] */
#define STACK 0x180000u
#define HANDLER 0x3000u    /* every exception vector: HLT */
#define IDT 0x4000u
#define GDT 0x5000u
#define PML4 0x200000u
#define UNMAPPED 0x40000000ull   /* past the identity-mapped GiB */
#define BLOCKS 400

struct jvm {
	struct vm vm;
	struct vcpu vcpu;
};

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static struct jvm *jvm_new(unsigned jit_hot)
{
	struct jvm *j = calloc(1, sizeof(*j));
	cr_assert_eq(gmem_init(&j->vm.mem, RAM), 0);
	bus_init(&j->vm.pio, "pio");
	bus_init(&j->vm.mmio, "mmio");
	pthread_mutex_init(&j->vm.dev_lock, NULL);
	j->vm.accel = &accel_emu;
	j->vm.jit_hot = jit_hot;
	j->vcpu.vm = &j->vm;
	pthread_mutex_init(&j->vcpu.lock, NULL);
	pthread_cond_init(&j->vcpu.wake, NULL);
	j->vm.vcpus[0] = &j->vcpu;
	j->vm.n_vcpus = 1;
	cr_assert_eq(accel_emu.vm_init(&j->vm), 0);
	cr_assert_eq(accel_emu.vcpu_init(&j->vcpu), 0);
	return j;
}

static void jvm_free(struct jvm *j)
{
	accel_emu.vcpu_destroy(&j->vcpu);
	accel_emu.vm_destroy(&j->vm);
	bus_destroy(&j->vm.pio);
	bus_destroy(&j->vm.mmio);
	gmem_destroy(&j->vm.mem);
	free(j);
}

/* 64-bit mode, CPL 0, the first GiB identity-mapped in 2 MiB pages, an
 * IDT whose every gate leads to HLT. */
static void jvm_setup(struct jvm *j, const uint8_t *code, size_t len, const struct x86_regs *regs)
{
	struct guest_memory *mem = &j->vm.mem;   /* new, so all zero */
	uint64_t *pml4 = gmem_ptr(mem, PML4, 4096), *pdpt = gmem_ptr(mem, PML4 + 0x1000, 4096),
		 *pd = gmem_ptr(mem, PML4 + 0x2000, 4096);
	pml4[0] = (PML4 + 0x1000) | 3;
	pdpt[0] = (PML4 + 0x2000) | 3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83;
	const uint8_t hlt = 0xf4;
	cr_assert_eq(gmem_write(mem, HANDLER, &hlt, 1), 0);
	for (unsigned v = 0; v < 32; v++) {
		uint64_t gate[2] = { (HANDLER & 0xffff) | 8ull << 16 | 0x8eull << 40, 0 };
		cr_assert_eq(gmem_write(mem, IDT + v * 16, gate, 16), 0);
	}
	const uint64_t code64 = 0x00af9b000000ffffull;
	cr_assert_eq(gmem_write(mem, GDT + 8, &code64, 8), 0);
	cr_assert_eq(gmem_write(mem, CODE, code, len), 0);
	for (unsigned i = 0; i < 256; i += 8) {
		uint64_t v = rnd();
		cr_assert_eq(gmem_write(mem, DATA + i, &v, 8), 0);
	}

	cr_assert_eq(vcpu_reset_state(&j->vcpu), 0);
	struct x86_sregs s;
	cr_assert_eq(accel_emu.get_sregs(&j->vcpu, &s), 0);
	for (int i = 0; i < SEG_COUNT; i++)
		s.seg[i] = (struct x86_segment){ .limit = 0xffffffff, .type = 3, .s = 1, .present = 1, .db = 1, .g = 1 };
	s.seg[SEG_CS] = (struct x86_segment){ .selector = 8, .limit = 0xffffffff, .type = 11, .s = 1, .present = 1,
					      .l = 1, .g = 1 };
	s.tr = (struct x86_segment){ .limit = 0x67, .type = 11, .present = 1 };
	s.gdt = (struct x86_dtable){ GDT, 15 };
	s.idt = (struct x86_dtable){ IDT, 32 * 16 - 1 };
	s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	s.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
	s.cr3 = PML4;
	s.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
	cr_assert_eq(accel_emu.set_sregs(&j->vcpu, &s), 0);
	cr_assert_eq(accel_emu.set_regs(&j->vcpu, regs), 0);
}

struct gen {
	uint8_t b[1024];
	size_t n;
};

static void put(struct gen *g, uint8_t v)
{
	g->b[g->n++] = v;
}

static void put32(struct gen *g, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		put(g, (uint8_t)(v >> (8 * i)));
}

/* A register for an operand: any but RSP and RBP (the stack, the data
 * pointer) and R15 (the unmapped pointer). */
static unsigned any_reg(void)
{
	static const uint8_t regs[] = { 0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
	return regs[rnd() % sizeof(regs)];
}

/* [REX] [0F] op ModRM for reg, rm (register form) or reg, [rbp + disp8] */
static void modrm_insn(struct gen *g, bool w, bool map0f, uint8_t op, unsigned reg, unsigned rm, bool mem)
{
	uint8_t rex = (uint8_t)(0x40 | (w ? 8 : 0) | (reg & 8 ? 4 : 0) | (!mem && (rm & 8) ? 1 : 0));
	if (rex != 0x40)
		put(g, rex);
	if (map0f)
		put(g, 0x0f);
	put(g, op);
	if (mem) {
		put(g, (uint8_t)(0x45 | (reg & 7) << 3));
		put(g, (uint8_t)(8 * (rnd() % 31)));
	} else {
		put(g, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
	}
}

static void gen_insn(struct gen *g)
{
	bool w = rnd() & 1, mem = (rnd() % 3) == 0;
	unsigned reg = any_reg(), rm = any_reg(), ext = rnd() % 8;
	switch (rnd() % 25) {
	case 16:  /* byte and word ALU with registers and memory (not ADC/SBB) */
	case 17: {
		bool word = rnd() & 1;
		unsigned alu = rnd() % 8;
		if (alu == 2 || alu == 3)
			alu = 7;
		if (word)
			put(g, 0x66);
		if (rnd() & 1) {
			modrm_insn(g, false, false, (uint8_t)(alu << 3 | (rnd() & 2) | word), word ? reg : reg & 7,
				   word ? rm : rm & 7, mem);
		} else {
			static const uint8_t ops[] = { 0x80, 0x84, 0xf6, 0x88, 0x8a, 0xc6 };
			uint8_t op = (uint8_t)(ops[rnd() % 6] | word);
			if (op == 0x81 && (rnd() & 1))
				op = 0x83;
			bool imm8 = op == 0x80 || op == 0xc6 || op == 0x83 || op == 0xf6;
			modrm_insn(g, false, false, op, op == 0x80 || op == 0x81 || op == 0x83 ? alu :
				   op >= 0xc6 || op >= 0xf6 ? 0 : reg & 7, rm & 7, mem);
			if (imm8)
				put(g, (uint8_t)rnd());
			else if (op == 0x81 || op == 0xc7 || op == 0xf7) {
				put(g, (uint8_t)rnd());
				put(g, (uint8_t)rnd());
			}
		}
		break;
	}
	case 18:  /* ALU and TEST of the accumulator with an immediate */
		if (rnd() & 1) {
			put(g, (uint8_t)((rnd() % 8) << 3 | 4));
			put(g, (uint8_t)rnd());
		} else if (rnd() & 1) {
			put(g, 0xa8);
			put(g, (uint8_t)rnd());
		} else {
			if (w)
				put(g, 0x48);
			put(g, (rnd() & 1) ? 0xa9 : (uint8_t)((rnd() % 8) << 3 | 5));
			put32(g, (uint32_t)rnd());
		}
		break;
	case 19:  /* MOV r/m, imm32; INC/DEC [m] */
		if (rnd() & 1) {
			modrm_insn(g, w, false, 0xc7, 0, rm, mem);
			put32(g, (uint32_t)rnd());
		} else {
			modrm_insn(g, w, false, 0xff, rnd() & 1, rm, true);
		}
		break;
	case 20:  /* CBW/CWDE/CDQE, CWD/CDQ/CQO, NOP r/m */
		if (rnd() & 1) {
			if (rnd() & 1)
				put(g, 0x66);
			else if (w)
				put(g, 0x48);
			put(g, (rnd() & 1) ? 0x98 : 0x99);
		} else {
			modrm_insn(g, w, true, 0x1f, 0, rm, mem);
		}
		break;
	case 0:
	case 1:   /* ALU r/m, r and r, r/m (ADC/SBB included) */
		modrm_insn(g, w, false, (uint8_t)(ext << 3 | (rnd() & 2) | 1), reg, rm, mem);
		break;
	case 2:   /* ALU r/m, imm32 / imm8 */
		if (rnd() & 1) {
			modrm_insn(g, w, false, 0x81, ext, rm, mem);
			put32(g, (uint32_t)rnd());
		} else {
			modrm_insn(g, w, false, 0x83, ext, rm, mem);
			put(g, (uint8_t)rnd());
		}
		break;
	case 3:   /* TEST r/m, r; TEST r/m, imm; NOT; NEG; MUL, IMUL */
		if (rnd() & 1) {
			modrm_insn(g, w, false, 0x85, reg, rm, mem);
		} else {
			ext = rnd() % 6;
			modrm_insn(g, w, false, 0xf7, ext, rm, mem && ext < 2);
			if (ext < 2)
				put32(g, (uint32_t)rnd());
		}
		break;
	case 4:   /* INC/DEC */
		modrm_insn(g, w, false, 0xff, rnd() & 1, rm, false);
		break;
	case 5: { /* SHL/SHR/SAR/ROL/ROR by imm8, by 1, by CL */
		static const uint8_t exts[] = { 0, 1, 4, 5, 7 };
		ext = exts[rnd() % 5];
		unsigned how = rnd() % 3;
		modrm_insn(g, w, false, how == 0 ? 0xc1 : how == 1 ? 0xd1 : 0xd3, ext, rm, false);
		if (how == 0)
			put(g, (rnd() & 3) ? (uint8_t)(rnd() % 70) : 0);
		break;
	}
	case 6:   /* IMUL r, r/m; r, r/m, imm */
		if (rnd() & 1) {
			modrm_insn(g, w, true, 0xaf, reg, rm, false);
		} else if (rnd() & 1) {
			modrm_insn(g, w, false, 0x69, reg, rm, false);
			put32(g, (uint32_t)rnd());
		} else {
			modrm_insn(g, w, false, 0x6b, reg, rm, false);
			put(g, (uint8_t)rnd());
		}
		break;
	case 7: { /* MOVZX/MOVSX r, r8/r16/m8/m16; MOVSXD */
		static const uint8_t ops[] = { 0xb6, 0xb7, 0xbe, 0xbf };
		if (rnd() & 1) {
			modrm_insn(g, w, true, ops[rnd() % 4], reg, rnd() % 8, mem);  /* AH..BH without REX */
		} else {
			modrm_insn(g, true, false, 0x63, reg, rm, mem);
		}
		break;
	}
	case 24:  /* MOV r, r of 32 and 64 bits, a register onto itself too */
		modrm_insn(g, w, false, (uint8_t)(0x89 | (rnd() & 2)), reg, (rnd() & 3) ? rm : reg, false);
		break;
	case 23:  /* BSWAP r; XCHG r, rAX (90: NOP) */
		if (w || (rm & 8))
			put(g, (uint8_t)(0x40 | (w ? 8 : 0) | (rm & 8 ? 1 : 0)));
		if (rnd() & 1) {
			put(g, 0x0f);
			put(g, (uint8_t)(0xc8 | (rm & 7)));
		} else {
			put(g, (uint8_t)(0x90 | ((rnd() & 3) ? rm & 7 : 0)));
		}
		break;
	case 22:  /* a memory operand whose base register the block has just
		   * written (held in a host register by the register cache) */
		put(g, 0x48);
		put(g, 0x83);
		put(g, 0xc5);
		put(g, 8);                                                   /* add rbp, 8 */
		modrm_insn(g, w, false, (uint8_t)(ext << 3 | (rnd() & 2) | 1), reg, rm, true);
		put(g, 0x48);
		put(g, 0x83);
		put(g, 0xed);
		put(g, 8);                                                   /* sub rbp, 8 */
		break;
	case 8:   /* CMOVcc */
		modrm_insn(g, w, true, (uint8_t)(0x40 | (rnd() % 16)), reg, rm, false);
		break;
	case 9:   /* SETcc r8: AH..BH without REX, low bytes with one */
		if (rnd() & 1)
			modrm_insn(g, false, true, (uint8_t)(0x90 | (rnd() % 16)), 0, rnd() % 4 + (rnd() & 1) * 4, false);
		else
			modrm_insn(g, false, true, (uint8_t)(0x90 | (rnd() % 16)), 0, rm | 8, false);
		break;
	case 10:  /* a load that faults: ADD r, [r15] with R15 unmapped */
		if (rnd() % 6 == 0) {
			put(g, (uint8_t)(0x49 | (reg & 8 ? 4 : 0)));
			put(g, 0x03);
			put(g, (uint8_t)(0x07 | (reg & 7) << 3));
			break;
		}
		/* fall through */
	default:  /* ALU of registers: what overwrites the flags most */
		modrm_insn(g, w, false, (uint8_t)((rnd() % 8) << 3 | 1), reg, rm, false);
		break;
	}
}

static void run_to_halt(struct jvm *j)
{
	for (int i = 0; i < 4; i++) {
		struct vcpu_exit exit = { 0 };
		cr_assert_eq(accel_emu.vcpu_run(&j->vcpu, &exit), 0);
		if (exit.reason == VCPU_EXIT_HLT)
			return;
		cr_assert_eq(exit.reason, VCPU_EXIT_KICK, "exit %d: %s", exit.reason, exit.error.message);
	}
	cr_assert_fail("no HLT");
}

Test(emu_jit, templates_do_what_the_interpreter_does, .timeout = 300)
{
	struct accel_code_stats cs = { 0 };
	unsigned faults = 0;
	for (unsigned seed = 1; seed <= BLOCKS; seed++) {
		/* Fresh machines: no block decoded from an earlier seed's code. */
		struct jvm *interp = jvm_new(0), *jit = jvm_new(1);
		rng = 0x9e3779b97f4a7c15ull * seed;
		struct gen g = { .n = 0 };
		unsigned n = 4 + rnd() % 28;
		for (unsigned i = 0; i < n; i++)
			gen_insn(&g);
		put(&g, 0xf4);
		struct x86_regs regs = { .rip = CODE, .rflags = X86_FLAG_FIXED | (rnd() & X86_FLAGS_ARITH) };
		for (int i = 0; i < 16; i++)
			regs.gpr[i] = (rnd() & 1) ? rnd() : rnd() & 0xff;
		regs.gpr[RSP] = STACK;
		regs.gpr[RBP] = DATA;
		regs.gpr[R15] = UNMAPPED;
		uint64_t data_seed = rnd();
		struct jvm *vms[2] = { interp, jit };
		struct x86_regs out[2];
		for (int k = 0; k < 2; k++) {
			rng = data_seed;
			jvm_setup(vms[k], g.b, g.n, &regs);
			run_to_halt(vms[k]);
			cr_assert_eq(accel_emu.get_regs(&vms[k]->vcpu, &out[k]), 0);
		}
		if (out[0].rip == HANDLER + 1)
			faults++;
		cr_assert_eq(out[1].rip, out[0].rip, "block %u: rip %#llx, interpreter %#llx", seed,
			     (unsigned long long)out[1].rip, (unsigned long long)out[0].rip);
		cr_assert_eq(out[1].rflags, out[0].rflags, "block %u: rflags %#llx, interpreter %#llx", seed,
			     (unsigned long long)out[1].rflags, (unsigned long long)out[0].rflags);
		for (int i = 0; i < 16; i++)
			cr_assert_eq(out[1].gpr[i], out[0].gpr[i], "block %u: r%d %#llx, interpreter %#llx", seed, i,
				     (unsigned long long)out[1].gpr[i], (unsigned long long)out[0].gpr[i]);
		/* The data the block wrote, and the exception frame (RIP, CS,
		 * RFLAGS, RSP, SS) of one that faulted. */
		cr_assert_eq(memcmp(gmem_ptr(&interp->vm.mem, DATA, 256), gmem_ptr(&jit->vm.mem, DATA, 256), 256), 0,
			     "block %u: memory", seed);
		cr_assert_eq(memcmp(gmem_ptr(&interp->vm.mem, STACK - 64, 64), gmem_ptr(&jit->vm.mem, STACK - 64, 64), 64),
			     0, "block %u: exception frame", seed);
		struct accel_code_stats c = { 0 };
		accel_emu.code_stats(&jit->vm, &c);
		cs.jit_blocks += c.jit_blocks;
		cs.jit_template_insns += c.jit_template_insns;
		cs.jit_call_insns += c.jit_call_insns;
		cs.jit_flags_skipped += c.jit_flags_skipped;
		jvm_free(interp);
		jvm_free(jit);
	}
	cr_log_info("%u blocks (%u faulted): %llu translated, %llu instructions inline, %llu calls, %llu flags records "
		    "left out", BLOCKS, faults, (unsigned long long)cs.jit_blocks,
		    (unsigned long long)cs.jit_template_insns, (unsigned long long)cs.jit_call_insns,
		    (unsigned long long)cs.jit_flags_skipped);
	cr_assert_gt(faults, 10, "blocks that fault part way are part of the test");
	cr_assert_gt(cs.jit_blocks, 0);
	/* Most of the instructions have templates; dead records were left out. */
	cr_assert_gt(cs.jit_template_insns, 4 * cs.jit_call_insns);
	cr_assert_gt(cs.jit_flags_skipped, 0);
}
