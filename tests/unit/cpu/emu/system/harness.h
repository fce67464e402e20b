/* Test fixture for the emu engine's system module: a CPU with guest RAM and
 * per-VM state, and helpers that run one access and report the exception
 * it raised (or -1). */
#ifndef VESSEL_TESTS_EMU_SYSTEM_HARNESS_H
#define VESSEL_TESTS_EMU_SYSTEM_HARNESS_H

#include "cpu/emu/emu.h"
#include "machine/memory.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct sys_fixture {
	struct guest_memory mem;
	struct emu_vm evm;
	struct emu_cpu *cpu;
	jmp_buf env;
};

static inline void fx_init(struct sys_fixture *fx, uint64_t ram)
{
	memset(fx, 0, sizeof(*fx));
	if (gmem_init(&fx->mem, ram) < 0)
		abort();
	fx->evm.mem = &fx->mem;
	fx->evm.n_pages = ram >> 12;
	fx->evm.code_page = calloc(fx->evm.n_pages, 1);
	fx->evm.page_gen = calloc(fx->evm.n_pages, sizeof(uint32_t));
	if (emu_sys_vm_init(&fx->evm) < 0)
		abort();
	fx->cpu = aligned_alloc(64, (sizeof(struct emu_cpu) + 63) & ~(size_t)63);
	memset(fx->cpu, 0, sizeof(*fx->cpu));
	fx->cpu->mem = &fx->mem;
	fx->cpu->evm = &fx->evm;
	fx->cpu->fault_env = &fx->env;
	emu_cpu_reset(fx->cpu, true);
}

static inline void fx_destroy(struct sys_fixture *fx)
{
	emu_sys_vm_destroy(&fx->evm);
	free((void *)fx->evm.code_page);
	free((void *)fx->evm.page_gen);
	free(fx->cpu);
	gmem_destroy(&fx->mem);
}

static inline uint8_t *fx_ptr(struct sys_fixture *fx, uint64_t gpa)
{
	return gmem_ptr(&fx->mem, gpa, 1);
}

static inline void fx_w64(struct sys_fixture *fx, uint64_t gpa, uint64_t v)
{
	memcpy(gmem_ptr(&fx->mem, gpa, 8), &v, 8);
}

static inline uint64_t fx_r64(struct sys_fixture *fx, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, gmem_ptr(&fx->mem, gpa, 8), 8);
	return v;
}

static inline void fx_w32(struct sys_fixture *fx, uint64_t gpa, uint32_t v)
{
	memcpy(gmem_ptr(&fx->mem, gpa, 4), &v, 4);
}

static inline uint32_t fx_r32(struct sys_fixture *fx, uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, gmem_ptr(&fx->mem, gpa, 4), 4);
	return v;
}

/* Runs one read; returns the exception vector or -1, value in *out. */
static inline int fx_read(struct sys_fixture *fx, int seg, uint64_t off, unsigned size, uint64_t *out)
{
	struct emu_cpu *cpu = fx->cpu;
	cpu->exc_vector = -1;
	if (setjmp(fx->env))
		return cpu->exc_vector;
	uint64_t v = emu_read(cpu, seg, off, size);
	if (out)
		*out = v;
	return -1;
}

static inline int fx_write(struct sys_fixture *fx, int seg, uint64_t off, unsigned size, uint64_t v)
{
	struct emu_cpu *cpu = fx->cpu;
	cpu->exc_vector = -1;
	if (setjmp(fx->env))
		return cpu->exc_vector;
	emu_write(cpu, seg, off, size, v);
	return -1;
}

static inline int fx_fetch(struct sys_fixture *fx, uint64_t lin, uint64_t *gpa)
{
	struct emu_cpu *cpu = fx->cpu;
	cpu->exc_vector = -1;
	if (setjmp(fx->env))
		return cpu->exc_vector;
	uint64_t g = emu_translate_fetch(cpu, lin);
	if (gpa)
		*gpa = g;
	return -1;
}

/* A flat 64-bit descriptor: code (type 0xb) or data (type 3), DPL dpl. */
static inline uint64_t fx_desc(uint32_t base, uint32_t limit, unsigned type, unsigned dpl, unsigned flags)
{
	/* flags: G<<3 | DB<<2 | L<<1 | AVL */
	uint64_t d = (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)type << 40) |
		     (1ull << 44) | ((uint64_t)dpl << 45) | (1ull << 47) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
		     ((uint64_t)flags << 52) | ((uint64_t)(base >> 24) << 56);
	return d;
}

/* Decodes one instruction from code[] (as if at cpu->rip) and runs its
 * handler; a fault is left pending (not delivered) and returned. */
static inline int fx_exec(struct sys_fixture *fx, const uint8_t *code, unsigned len)
{
	struct emu_cpu *cpu = fx->cpu;
	static struct emu_insn insn;
	cpu->exc_vector = -1;
	if (setjmp(fx->env))
		return cpu->exc_vector;
	if (emu_decode(cpu, code, len, &insn) < 0)
		return -2;
	cpu->next_rip = cpu->rip + insn.len;
	insn.fn(cpu, &insn);
	cpu->rip = cpu->next_rip;
	return -1;
}

/* Delivers the pending exception as the run loop does; returns -1 or the
 * vector of a fault escaping delivery (none should). */
static inline int fx_deliver(struct sys_fixture *fx)
{
	struct emu_cpu *cpu = fx->cpu;
	if (setjmp(fx->env))
		return cpu->exc_vector;
	emu_deliver_pending_exception(cpu);
	return -1;
}

/* Runs fn(cpu, arg) under the fault handler: -1 or the vector raised. */
static inline int fx_call(struct sys_fixture *fx, void (*fn)(struct emu_cpu *, void *), void *arg)
{
	struct emu_cpu *cpu = fx->cpu;
	cpu->exc_vector = -1;
	if (setjmp(fx->env))
		return cpu->exc_vector;
	fn(cpu, arg);
	return -1;
}

#endif
