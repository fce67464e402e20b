#include "harness.h"

#include <stdlib.h>
#include <string.h>

uint8_t h_mem[H_MEM_SIZE];

static void h_check(struct emu_cpu *cpu, uint64_t off, unsigned size)
{
	if (off >= H_MEM_SIZE || size > H_MEM_SIZE - off) {
		cpu->cr2 = off;
		emu_raise(cpu, X86_EXC_PF, 0);
	}
}

static uint64_t h_read(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	h_check(cpu, off, size);
	memcpy(&v, h_mem + off, size);
	return v;
}

static void h_write(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val)
{
	h_check(cpu, off, size);
	memcpy(h_mem + off, &val, size);
}

static void h_write_check(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	h_check(cpu, off, size);
}

static void h_read_bytes(struct emu_cpu *cpu, int seg, uint64_t off, void *dst, unsigned n)
{
	h_check(cpu, off, n);
	memcpy(dst, h_mem + off, n);
}

static void h_write_bytes(struct emu_cpu *cpu, int seg, uint64_t off, const void *src, unsigned n)
{
	h_check(cpu, off, n);
	memcpy(h_mem + off, src, n);
}

static void *h_mem_ptr(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write)
{
	if (off >= H_MEM_SIZE || size > H_MEM_SIZE - off)
		return NULL;
	return h_mem + off;
}

/* The fpu module's operands live in h_mem at their effective address
 * (no segmentation, no paging); ports are not reached. */
static const struct emu_ops h_ops = {
	.read = h_read,
	.write = h_write,
	.write_check = h_write_check,
	.read_bytes = h_read_bytes,
	.write_bytes = h_write_bytes,
	.mem_ptr = h_mem_ptr,
};

struct emu_cpu *h_cpu(void)
{
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	cpu->mode = EMU_MODE_LONG64;
	cpu->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	cpu->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | X86_CR4_OSXSAVE;
	cpu->efer = X86_EFER_LME | X86_EFER_LMA;
	cpu->rflags = X86_FLAG_FIXED;
	cpu->exc_vector = -1;
	cpu->ops = &h_ops;
	/* no TLB entry matches: every access takes the slow path below */
	memset(cpu->tlb, 0xff, sizeof(cpu->tlb));
	emu_fpu_reset(cpu);
	fpu_x87_init(cpu);      /* as firmware leaves it: FNINIT state */
	memset(h_mem, 0, sizeof(h_mem));
	return cpu;
}

void h_free(struct emu_cpu *cpu)
{
	free(cpu);
}

static struct emu_insn h_base(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp)
{
	struct emu_insn in;
	memset(&in, 0, sizeof(in));
	in.opmap = (uint8_t)map;
	in.opcode = opcode;
	in.mprefix = (uint8_t)mp;
	in.len = 4;
	in.opsize = mp == EMU_MP_66 ? 2 : 4;
	in.adsize = 8;
	in.seg = SEG_DS;
	in.base = in.index = EMU_REG_NONE;
	return in;
}

struct emu_insn h_insn_reg(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg, unsigned rm)
{
	struct emu_insn in = h_base(map, opcode, mp);
	in.mod = 3;
	in.reg = (uint8_t)reg;
	in.rm = (uint8_t)rm;
	in.modrm = (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7));
	in.fn = h_lookup(map, opcode, mp, reg);
	return in;
}

struct emu_insn h_insn_mem(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg, uint32_t addr)
{
	struct emu_insn in = h_base(map, opcode, mp);
	in.mod = 0;
	in.reg = (uint8_t)reg;
	in.modrm = (uint8_t)(((reg & 7) << 3) | 4);
	in.disp = (int32_t)addr;
	in.fn = h_lookup(map, opcode, mp, reg);
	return in;
}

struct emu_insn h_x87(uint8_t opcode, uint8_t modrm)
{
	struct emu_insn in = h_insn_reg(EMU_MAP_1B, opcode, EMU_MP_NONE, (modrm >> 3) & 7, modrm & 7);
	in.modrm = modrm;
	return in;
}

struct emu_insn h_x87_mem(uint8_t opcode, unsigned reg, uint32_t addr)
{
	return h_insn_mem(EMU_MAP_1B, opcode, EMU_MP_NONE, reg, addr);
}

int h_exec(struct emu_cpu *cpu, const struct emu_insn *insn)
{
	jmp_buf env;
	emu_handler fn = insn->fn ? insn->fn : h_lookup(insn->opmap, insn->opcode, insn->mprefix, insn->reg);
	if (!fn)
		return X86_EXC_UD;
	cpu->exc_vector = -1;
	cpu->fault_env = &env;
	cpu->next_rip = cpu->rip + insn->len;
	if (setjmp(env))
		return cpu->exc_vector;
	fn(cpu, insn);
	cpu->rip = cpu->next_rip;
	return -1;
}

static uint64_t h_state = 0x9e3779b97f4a7c15ull;

void h_srand(uint64_t seed)
{
	h_state = seed ? seed : 1;
}

uint64_t h_rand(void)
{
	h_state ^= h_state << 13;
	h_state ^= h_state >> 7;
	h_state ^= h_state << 17;
	return h_state;
}

unsigned h_cases(unsigned base)
{
	const char *l = getenv("VESSEL_DIFF_LONG");
	return (l && *l == '1') ? base * 20 : base;
}
