/* A small x86-64 instruction emitter for the translator (jit/translate.c):
 * just the forms the templates use, encoded as SDM vol. 2 chapter 2
 * describes (REX, ModRM, SIB, displacements).  Writes into a buffer; an
 * emitter that runs out of room sets .full and writes nothing more, so
 * the translator checks once at the end. */
#ifndef VESSEL_CPU_EMU_JIT_X86_EMIT_H
#define VESSEL_CPU_EMU_JIT_X86_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum x86_hreg {
	HR_RAX, HR_RCX, HR_RDX, HR_RBX, HR_RSP, HR_RBP, HR_RSI, HR_RDI,
	HR_R8, HR_R9, HR_R10, HR_R11, HR_R12, HR_R13, HR_R14, HR_R15,
};

struct x86_emit {
	uint8_t *p, *end;     /* where the next byte goes (RW view), the buffer's end */
	uintptr_t rx_delta;   /* executable address - writable address */
	bool full;
};

static inline void xe_bytes(struct x86_emit *e, const void *b, unsigned n)
{
	if (e->full || (size_t)(e->end - e->p) < n) {
		e->full = true;
		return;
	}
	memcpy(e->p, b, n);
	e->p += n;
}

static inline void xe_u8(struct x86_emit *e, uint8_t b)
{
	xe_bytes(e, &b, 1);
}

static inline void xe_u32(struct x86_emit *e, uint32_t v)
{
	xe_bytes(e, &v, 4);
}

static inline void xe_u64(struct x86_emit *e, uint64_t v)
{
	xe_bytes(e, &v, 8);
}

/* The executable address of the next byte. */
static inline uintptr_t xe_here(const struct x86_emit *e)
{
	return (uintptr_t)e->p + e->rx_delta;
}

/* REX with W, R (reg), B (base) as needed; forced for byte registers
 * SPL..DIL when byte_regs. */
static inline void xe_rex(struct x86_emit *e, bool w, unsigned reg, unsigned base, bool force)
{
	uint8_t rex = (uint8_t)(0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((base & 8) ? 1 : 0));
	if (rex != 0x40 || force)
		xe_u8(e, rex);
}

/* ModRM (+SIB) for [base + disp]: always with a displacement (disp8 or
 * disp32), so RBP/R13 need no special case; RSP/R12 take a SIB. */
static inline void xe_mem(struct x86_emit *e, unsigned reg, unsigned base, int32_t disp)
{
	bool d8 = disp >= -128 && disp <= 127;
	xe_u8(e, (uint8_t)((d8 ? 0x40 : 0x80) | (reg & 7) << 3 | (base & 7)));
	if ((base & 7) == HR_RSP)
		xe_u8(e, 0x24);
	if (d8)
		xe_u8(e, (uint8_t)disp);
	else
		xe_u32(e, (uint32_t)disp);
}

/* op r, [base + disp] or op [base + disp], r with a one-byte opcode;
 * size 1, 2, 4 or 8 (size 2 adds 66, size 1 uses the opcode given). */
static inline void xe_op_mem(struct x86_emit *e, uint8_t op, unsigned size, unsigned reg, unsigned base, int32_t disp)
{
	if (size == 2)
		xe_u8(e, 0x66);
	xe_rex(e, size == 8, reg, base, size == 1 && reg >= 4 && reg < 8);
	xe_u8(e, op);
	xe_mem(e, reg, base, disp);
}

/* op r/m(reg form): op dst(rm), src(reg) */
static inline void xe_op_rr(struct x86_emit *e, uint8_t op, unsigned size, unsigned reg, unsigned rm)
{
	if (size == 2)
		xe_u8(e, 0x66);
	xe_rex(e, size == 8, reg, rm, size == 1 && (reg >= 4 || rm >= 4));
	xe_u8(e, op);
	xe_u8(e, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* mov r64, [base + disp] */
static inline void xe_load64(struct x86_emit *e, unsigned r, unsigned base, int32_t disp)
{
	xe_op_mem(e, 0x8b, 8, r, base, disp);
}

/* mov [base + disp], r64 */
static inline void xe_store64(struct x86_emit *e, unsigned base, int32_t disp, unsigned r)
{
	xe_op_mem(e, 0x89, 8, r, base, disp);
}

/* lea r64, [base + disp] */
static inline void xe_lea(struct x86_emit *e, unsigned r, unsigned base, int32_t disp)
{
	xe_op_mem(e, 0x8d, 8, r, base, disp);
}

/* mov r64, imm64 (the short forms when the value fits) */
static inline void xe_mov_imm(struct x86_emit *e, unsigned r, uint64_t v)
{
	if (v <= 0xffffffffull) {
		xe_rex(e, false, 0, r, false);
		xe_u8(e, (uint8_t)(0xb8 + (r & 7)));
		xe_u32(e, (uint32_t)v);
	} else if ((int64_t)v == (int32_t)v) {
		xe_rex(e, true, 0, r, false);
		xe_u8(e, 0xc7);
		xe_u8(e, (uint8_t)(0xc0 | (r & 7)));
		xe_u32(e, (uint32_t)v);
	} else {
		xe_rex(e, true, 0, r, false);
		xe_u8(e, (uint8_t)(0xb8 + (r & 7)));
		xe_u64(e, v);
	}
}

/* Group 1 (81 /op) on qword [base + disp] with a sign-extended imm32:
 * op 0 = ADD, 5 = SUB, 7 = CMP. */
static inline void xe_grp1_mem64_imm(struct x86_emit *e, unsigned op, unsigned base, int32_t disp, int32_t imm)
{
	xe_op_mem(e, 0x81, 8, op, base, disp);
	xe_u32(e, (uint32_t)imm);
}

/* Group 1 (81 /op) on a register with an imm32 (sign-extended for
 * size 8): op 0 = ADD, 1 = OR, 4 = AND, 7 = CMP. */
static inline void xe_grp1_reg_imm(struct x86_emit *e, unsigned op, unsigned size, unsigned r, int32_t imm)
{
	xe_rex(e, size == 8, 0, r, false);
	xe_u8(e, 0x81);
	xe_u8(e, (uint8_t)(0xc0 | op << 3 | (r & 7)));
	xe_u32(e, (uint32_t)imm);
}

/* mov r, [b + i] (load) or mov [b + i], r (store), size 4 or 8; b is
 * neither RBP nor R13, i not RSP. */
static inline void xe_mem_bi(struct x86_emit *e, uint8_t op, unsigned size, unsigned r, unsigned b, unsigned i)
{
	uint8_t rex = (uint8_t)(0x40 | (size == 8 ? 8 : 0) | ((r & 8) ? 4 : 0) | ((i & 8) ? 2 : 0) | ((b & 8) ? 1 : 0));
	if (rex != 0x40)
		xe_u8(e, rex);
	xe_u8(e, op);
	xe_u8(e, (uint8_t)(0x04 | (r & 7) << 3));
	xe_u8(e, (uint8_t)((i & 7) << 3 | (b & 7)));
}

/* mov dword [base + disp], imm32 */
static inline void xe_store32_imm(struct x86_emit *e, unsigned base, int32_t disp, uint32_t imm)
{
	xe_op_mem(e, 0xc7, 4, 0, base, disp);
	xe_u32(e, imm);
}

/* mov qword [base + disp], simm32 */
static inline void xe_store64_imm(struct x86_emit *e, unsigned base, int32_t disp, int32_t imm)
{
	xe_op_mem(e, 0xc7, 8, 0, base, disp);
	xe_u32(e, (uint32_t)imm);
}

/* cmp byte [base + disp], 0 */
static inline void xe_cmp_byte0(struct x86_emit *e, unsigned base, int32_t disp)
{
	xe_op_mem(e, 0x80, 1, 7, base, disp);
	xe_u8(e, 0);
}

static inline void xe_push(struct x86_emit *e, unsigned r)
{
	xe_rex(e, false, 0, r, false);
	xe_u8(e, (uint8_t)(0x50 + (r & 7)));
}

static inline void xe_pop(struct x86_emit *e, unsigned r)
{
	xe_rex(e, false, 0, r, false);
	xe_u8(e, (uint8_t)(0x58 + (r & 7)));
}

static inline void xe_ret(struct x86_emit *e)
{
	xe_u8(e, 0xc3);
}

/* A rel32 branch whose target is patched later: returns where its
 * displacement lies (NULL when the buffer is full). */
static inline uint8_t *xe_jcc32(struct x86_emit *e, unsigned cc)
{
	xe_u8(e, 0x0f);
	xe_u8(e, (uint8_t)(0x80 | cc));
	uint8_t *at = e->p;
	xe_u32(e, 0);
	return e->full ? NULL : at;
}

static inline uint8_t *xe_jmp32(struct x86_emit *e)
{
	xe_u8(e, 0xe9);
	uint8_t *at = e->p;
	xe_u32(e, 0);
	return e->full ? NULL : at;
}

/* Points the rel32 at `at` to the next byte emitted. */
static inline void xe_patch_here(struct x86_emit *e, uint8_t *at)
{
	if (!at)
		return;
	int32_t rel = (int32_t)(e->p - (at + 4));
	memcpy(at, &rel, 4);
}

/* call target: rel32 when it reaches, else through RAX. */
static inline void xe_call(struct x86_emit *e, uintptr_t target)
{
	int64_t rel = (int64_t)(target - (xe_here(e) + 5));
	if (rel == (int32_t)rel) {
		xe_u8(e, 0xe8);
		xe_u32(e, (uint32_t)(int32_t)rel);
	} else {
		xe_mov_imm(e, HR_RAX, target);
		xe_u8(e, 0xff);
		xe_u8(e, 0xd0);   /* call rax */
	}
}

#endif
