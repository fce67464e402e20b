/* Operands, for every instruction family (core, system, fpu): the
 * effective address of a memory operand (its linear address is
 * emu_seg_linear(), in emu.h beside the inline TLB path that uses it),
 * general-purpose registers by size, ModRM r/m operands,
 * read-modify-write memory operands, the stack, and locked accesses of
 * every size.  One copy of each, so that the families agree on the
 * SDM's rules. */
#ifndef VESSEL_CPU_EMU_OPERAND_H
#define VESSEL_CPU_EMU_OPERAND_H

#include "cpu/emu/emu.h"

static inline uint64_t reg_get(const struct emu_cpu *cpu, unsigned r, unsigned size, bool rex)
{
	/* Without REX, byte registers 4-7 are AH, CH, DH, BH (SDM vol. 2A, 2.2.1.2). */
	if (size == 1) {
		if (!rex && r >= 4 && r < 8)
			return (cpu->gpr[r - 4] >> 8) & 0xff;
		return cpu->gpr[r] & 0xff;
	}
	return cpu->gpr[r] & emu_size_mask(size);
}

static inline void reg_set(struct emu_cpu *cpu, unsigned r, unsigned size, bool rex, uint64_t v)
{
	switch (size) {
	case 1:
		if (!rex && r >= 4 && r < 8)
			cpu->gpr[r - 4] = (cpu->gpr[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
		else
			cpu->gpr[r] = (cpu->gpr[r] & ~0xffull) | (v & 0xff);
		break;
	case 2:
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		/* 32-bit results zero-extend into the full register (SDM vol. 1, 3.4.1.1). */
		cpu->gpr[r] = (uint32_t)v;
		break;
	default:
		cpu->gpr[r] = v;
		break;
	}
}

/* Effective address of the ModRM memory operand (SDM vol. 1, 3.7.5). */
static inline uint64_t emu_insn_ea(const struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a = (uint64_t)(int64_t)in->disp;
	if (in->base != EMU_REG_NONE)
		a += cpu->gpr[in->base];
	if (in->index != EMU_REG_NONE)
		a += cpu->gpr[in->index] << in->scale;
	if (in->rip_rel)
		a += cpu->next_rip;
	return a & emu_size_mask(in->adsize);
}

static inline uint64_t rm_read(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	if (in->mod == 3)
		return reg_get(cpu, in->rm, size, in->rex);
	return emu_read(cpu, in->seg, emu_insn_ea(cpu, in), size);
}

static inline void rm_write(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size, uint64_t v)
{
	if (in->mod == 3)
		reg_set(cpu, in->rm, size, in->rex, v);
	else
		emu_write(cpu, in->seg, emu_insn_ea(cpu, in), size, v);
}

/* A read-modify-write memory operand.  Faults are precise (SDM vol. 3A
 * 6.5): an instruction whose write faults leaves the flags as they were,
 * so the write is checked before the read and any flag update.  On the
 * inline path a write-TLB hit proves the write cannot fault and serves
 * both accesses; otherwise emu_write_check() raises what the write would
 * (#PF with W set, as for any write). */
struct rmw_operand {
	void *host;           /* NULL: through emu_read/emu_write */
	int seg;
	uint64_t ea;
	unsigned size;
};

static inline uint64_t rmw_load(struct emu_cpu *cpu, struct rmw_operand *m, const struct emu_insn *in,
				unsigned size)
{
	m->seg = in->seg;
	m->ea = emu_insn_ea(cpu, in);
	m->size = size;
	m->host = emu_write_ptr_fast(cpu, m->seg, m->ea, size);
	if (__builtin_expect(m->host != NULL, 1))
		return emu_host_load(m->host, size);
	emu_write_check(cpu, m->seg, m->ea, size);
	return emu_read(cpu, m->seg, m->ea, size);
}

/* Cannot fault after rmw_load. */
static inline void rmw_store(struct emu_cpu *cpu, const struct rmw_operand *m, uint64_t v)
{
	if (__builtin_expect(m->host != NULL, 1))
		emu_host_store(m->host, m->size, v);
	else
		emu_write(cpu, m->seg, m->ea, m->size, v);
}

static inline uint64_t sext(uint64_t v, unsigned size)
{
	switch (size) {
	case 1: return (uint64_t)(int64_t)(int8_t)v;
	case 2: return (uint64_t)(int64_t)(int16_t)v;
	case 4: return (uint64_t)(int64_t)(int32_t)v;
	default: return v;
	}
}

static inline uint64_t msb(uint64_t v, unsigned size)
{
	return (v >> (size * 8 - 1)) & 1;
}

/* Stack (SDM vol. 1, 6.2): the stack address size is SS.B (64 in long mode). */
static inline unsigned stack_asize(const struct emu_cpu *cpu)
{
	if (cpu->mode == EMU_MODE_LONG64)
		return 8;
	return (cpu->seg[SEG_SS].attr & (1u << 10)) ? 4 : 2;
}

static inline uint64_t sp_get(const struct emu_cpu *cpu)
{
	return cpu->gpr[RSP] & emu_size_mask(stack_asize(cpu));
}

static inline void sp_set(struct emu_cpu *cpu, uint64_t v)
{
	unsigned s = stack_asize(cpu);
	if (s == 8)
		cpu->gpr[RSP] = v;
	else if (s == 4)
		cpu->gpr[RSP] = (uint32_t)v;
	else
		cpu->gpr[RSP] = (cpu->gpr[RSP] & ~0xffffull) | (v & 0xffff);
}

/* Push: write first, then commit RSP, so a fault leaves RSP untouched. */
static inline void stack_push_val(struct emu_cpu *cpu, unsigned size, uint64_t v)
{
	uint64_t sp = (sp_get(cpu) - size) & emu_size_mask(stack_asize(cpu));
	emu_write(cpu, SEG_SS, sp, size, v);
	sp_set(cpu, sp);
}

/* The same for 64-bit operands, which exist only in 64-bit mode, where
 * the stack address size is 64 bits: for the specialized handlers. */
static inline void stack_push64(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t sp = cpu->gpr[RSP] - 8;
	emu_write(cpu, SEG_SS, sp, 8, v);
	cpu->gpr[RSP] = sp;
}

static inline uint64_t stack_pop64(struct emu_cpu *cpu)
{
	uint64_t sp = cpu->gpr[RSP];
	uint64_t v = emu_read(cpu, SEG_SS, sp, 8);
	cpu->gpr[RSP] = sp + 8;
	return v;
}

static inline uint64_t stack_pop_val(struct emu_cpu *cpu, unsigned size)
{
	uint64_t sp = sp_get(cpu);
	uint64_t v = emu_read(cpu, SEG_SS, sp, size);
	sp_set(cpu, sp + size);
	return v;
}

/* Near branch target: truncated to the operand size (SDM vol. 2A, JMP). */
static inline void branch_to(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t target)
{
	cpu->next_rip = target & emu_size_mask(in->opsize);
}

/* Locked accesses to the host memory of a guest operand (LOCK prefix,
 * XCHG with memory): vCPUs are host threads, so a locked operation is a
 * host atomic of the operand's size (SDM vol. 3A, 8.1.2).  p comes from
 * emu_mem_ptr(). */
enum emu_atomic_op { EMU_ATOMIC_XCHG, EMU_ATOMIC_ADD, EMU_ATOMIC_OR, EMU_ATOMIC_AND, EMU_ATOMIC_XOR };

#define EMU_ATOMIC_SIZED(T)                                                        \
	switch (op) {                                                              \
	case EMU_ATOMIC_XCHG: return __atomic_exchange_n((T *)p, (T)v, __ATOMIC_SEQ_CST); \
	case EMU_ATOMIC_ADD: return __atomic_fetch_add((T *)p, (T)v, __ATOMIC_SEQ_CST);   \
	case EMU_ATOMIC_OR: return __atomic_fetch_or((T *)p, (T)v, __ATOMIC_SEQ_CST);     \
	case EMU_ATOMIC_AND: return __atomic_fetch_and((T *)p, (T)v, __ATOMIC_SEQ_CST);   \
	default: return __atomic_fetch_xor((T *)p, (T)v, __ATOMIC_SEQ_CST);               \
	}

/* Applies op with v to the size-byte value at p; returns the old value. */
static inline uint64_t emu_host_atomic(void *p, unsigned size, enum emu_atomic_op op, uint64_t v)
{
	switch (size) {
	case 1: EMU_ATOMIC_SIZED(uint8_t)
	case 2: EMU_ATOMIC_SIZED(uint16_t)
	case 4: EMU_ATOMIC_SIZED(uint32_t)
	default: EMU_ATOMIC_SIZED(uint64_t)
	}
}
#undef EMU_ATOMIC_SIZED

/* Compare-exchange of a size-byte value: stores desired if the value at
 * p is *expected; else loads the value into *expected.  True if stored. */
static inline bool emu_host_cmpxchg(void *p, unsigned size, uint64_t *expected, uint64_t desired)
{
	bool ok;
	switch (size) {
	case 1: {
		uint8_t e = (uint8_t)*expected;
		ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*expected = e;
		return ok;
	}
	case 2: {
		uint16_t e = (uint16_t)*expected;
		ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST);
		*expected = e;
		return ok;
	}
	case 4: {
		uint32_t e = (uint32_t)*expected;
		ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST);
		*expected = e;
		return ok;
	}
	default:
		return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
}

/* The same for 16 bytes (CMPXCHG16B), p 16-byte aligned. */
static inline bool emu_host_cmpxchg16(void *p, unsigned __int128 *expected, unsigned __int128 desired)
{
	uint64_t lo = (uint64_t)*expected, hi = (uint64_t)(*expected >> 64);
	bool ok;
	__asm__ volatile("lock cmpxchg16b %2; setz %3"
			 : "+a"(lo), "+d"(hi), "+m"(*(unsigned __int128 *)p), "=q"(ok)
			 : "b"((uint64_t)desired), "c"((uint64_t)(desired >> 64))
			 : "memory", "cc");
	*expected = ((unsigned __int128)hi << 64) | lo;
	return ok;
}

#endif
