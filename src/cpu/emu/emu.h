/* The emu engine's internal contract: CPU state, decoded instructions, and
 * the functions the engine's modules provide one another.
 *
 * Modules (each owns its files; this header is shared and grows additively):
 *   core    decode.c (table-driven decoder, opcode format tables for every
 *           map), block.c (decoded-block cache keyed by guest-physical
 *           address and mode), cpu.c (run loop, accel_emu), flags.c (lazy
 *           flags), operand.c, int_*.c (general-purpose instructions)
 *   system  mmu.c (segmentation + paging + software TLB), seg.c, except.c
 *           (exception/interrupt delivery, IRET), sys_*.c (system
 *           instructions, MSRs, CPUID, mode transitions, task switch)
 *   fpu     x87.c, mmx.c, sse_*.c, xsave.c
 *
 * Faults: emu_raise() longjmps back to the run loop, which delivers the
 * exception with RIP pointing at the faulting instruction.  So an
 * instruction handler must perform every access that can fault before it
 * commits any architectural state (e.g. write the stack, then update RSP).
 */
#ifndef VESSEL_CPU_EMU_EMU_H
#define VESSEL_CPU_EMU_EMU_H

#include "cpu/accel.h"
#include "cpu/x86.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct guest_memory;
struct emu_cpu;
struct emu_insn;

typedef void (*emu_handler)(struct emu_cpu *cpu, const struct emu_insn *insn);

/* Opcode maps (SDM vol. 2A, appendix A). */
enum emu_opmap { EMU_MAP_1B, EMU_MAP_0F, EMU_MAP_0F38, EMU_MAP_0F3A, EMU_MAP_COUNT };

/* Mandatory-prefix class used to select SSE handlers (SDM vol. 2A, 2.1.2). */
enum emu_mprefix { EMU_MP_NONE, EMU_MP_66, EMU_MP_F3, EMU_MP_F2, EMU_MP_COUNT };

#define EMU_REG_NONE 0xff

/* The decoded, cached form of one instruction. */
struct emu_insn {
	emu_handler fn;
	uint8_t len;
	uint8_t opmap;        /* enum emu_opmap */
	uint8_t opcode;
	uint8_t mprefix;      /* enum emu_mprefix */
	uint8_t modrm;        /* raw ModRM byte (0 if none) */
	uint8_t reg;          /* ModRM.reg with REX.R (0-15) */
	uint8_t rm;           /* ModRM.rm with REX.B when mod == 3 (0-15) */
	uint8_t mod;          /* ModRM.mod; 3 = register operand */
	uint8_t opsize;       /* 2, 4 or 8 */
	uint8_t adsize;       /* 2, 4 or 8 */
	uint8_t seg;          /* segment of the memory operand (enum x86_sreg) */
	uint8_t rep;          /* 0, 0xf3 or 0xf2 */
	uint8_t lock;
	uint8_t rex;          /* REX byte or 0; with REX, byte registers 4-7 are SPL..DIL */
	uint8_t base, index;  /* 0-15 or EMU_REG_NONE */
	uint8_t scale;        /* shift 0-3 */
	uint8_t rip_rel;      /* 64-bit RIP-relative addressing */
	int32_t disp;
	uint64_t imm;         /* first immediate, sign-extended where the SDM says so */
	uint16_t imm2;        /* second immediate (ENTER level, far pointer selector) */
};

/* Execution mode, fixed for a decoded block (part of its cache key). */
enum emu_mode {
	EMU_MODE_REAL,        /* CR0.PE = 0 */
	EMU_MODE_V86,         /* EFLAGS.VM = 1 */
	EMU_MODE_PROT16,      /* protected, CS.D = 0 */
	EMU_MODE_PROT32,      /* protected or compatibility, CS.D = 1 */
	EMU_MODE_LONG64,      /* IA-32e, CS.L = 1 */
};

/* Lazy flags (DESIGN.md "Lazy flags"): the last flag-setting operation's
 * kind and operands; arithmetic flags are computed only when read. */
struct emu_lazy_flags {
	uint64_t res, src1, src2;
	uint32_t op;          /* operation and size, defined in flags.c */
};

struct emu_seg {
	uint64_t base;
	uint32_t limit;       /* byte granular */
	uint16_t sel;
	uint16_t attr;        /* descriptor bits 40-47 and 52-55: type|S<<4|DPL<<5|P<<7|AVL<<8|L<<9|DB<<10|G<<11 */
};

/* One entry of the software TLB (DESIGN.md "Soft MMU"). */
struct emu_tlb_entry {
	uint64_t tag_read, tag_write, tag_fetch;  /* linear page | asid, or ~0 */
	uintptr_t addend;                         /* host = linear + addend */
	uint64_t gpa;                             /* guest-physical page */
};
#define EMU_TLB_SIZE 1024

struct emu_cpu {
	uint64_t gpr[16];
	uint64_t rip;          /* of the instruction executing */
	uint64_t next_rip;     /* rip + insn->len while a handler runs */
	uint64_t rflags;       /* non-arithmetic bits are authoritative; arithmetic ones live in lf */
	struct emu_lazy_flags lf;
	struct emu_seg seg[SEG_COUNT];
	struct emu_seg ldtr, tr;
	struct x86_dtable gdtr, idtr;
	uint64_t cr0, cr2, cr3, cr4, xcr0;
	uint64_t dr[8];
	uint64_t efer, star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, tsc_aux, misc_enable, spec_ctrl, tsc_offset;
	uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16];
	uint8_t cpl;
	uint8_t mode;          /* enum emu_mode, recomputed by emu_update_mode() */
	bool intr_shadow;      /* after MOV SS/POP SS/STI: no interrupt before the next instruction */
	bool halted;

	/* x87/MMX/SSE, in FXSAVE layout for cheap FXSAVE/XSAVE and snapshots. */
	struct x86_fpu fpu;
	union { uint8_t b[16]; uint32_t d[4]; uint64_t q[2]; } xmm[16] __attribute__((aligned(16)));
	uint32_t mxcsr;

	struct emu_tlb_entry tlb[EMU_TLB_SIZE];
	uint64_t asid;         /* current address-space tag */

	jmp_buf *fault_env;    /* where emu_raise() returns to */
	int exc_vector;        /* exception raised by emu_raise(), -1 if none */
	uint32_t exc_error;
	bool exc_has_error;
	bool stop_block;       /* set by emu_exit_run(): leave the run loop after this instruction */
	uint64_t icount;       /* instructions retired */

	struct vcpu *vcpu;
	struct guest_memory *mem;
	struct emu_vm *evm;
	struct vcpu_exit *exit;   /* set when a returning trap ends the run */
};

/* Per-VM engine state shared by all vCPUs. */
struct emu_vm {
	struct guest_memory *mem;
	/* Self-modifying code (DESIGN.md): one generation counter per guest
	 * page; a write to a page holding decoded blocks bumps it, and blocks
	 * of an older generation are decoded again. */
	_Atomic uint32_t *page_gen;
	_Atomic uint8_t *code_page;   /* nonzero: page holds decoded blocks, writes take the slow path */
	uint64_t n_pages;
	_Atomic uint64_t write_epoch; /* bumped when a page becomes a code page: vCPUs drop write TLB entries */
};

/* ---- core ---- */
void emu_register(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, int modrm_reg, emu_handler fn);
/* mp or modrm_reg may be -1 (as int) for "any"; later, more specific registrations win. */
void emu_isa_init(void);                 /* calls the *_register functions below once */
void emu_int_register(void);             /* core: general-purpose instructions */
void emu_sys_register(void);             /* system */
void emu_fpu_register(void);             /* fpu: x87, MMX, SSE, XSAVE */
int emu_decode(struct emu_cpu *cpu, const uint8_t *bytes, unsigned avail, struct emu_insn *out);
uint64_t emu_get_rflags(struct emu_cpu *cpu);   /* materializes lazy flags */
void emu_set_rflags(struct emu_cpu *cpu, uint64_t value);  /* all bits, no privilege checks */
void emu_blocks_invalidate_page(struct emu_vm *evm, uint64_t gpa);
/* Ends vcpu_run after the current instruction with this returning trap
 * (HLT, SHUTDOWN, INTERNAL_ERROR); cpu->exit carries its details. */
void emu_exit_run(struct emu_cpu *cpu, enum vcpu_exit_reason reason);

/* ---- system ---- */
_Noreturn void emu_raise(struct emu_cpu *cpu, unsigned vector, uint32_t error_code);
_Noreturn void emu_raise_noerr(struct emu_cpu *cpu, unsigned vector);
/* Virtual-address accesses through segmentation and paging; fault on error. */
uint64_t emu_read(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size);
void emu_write(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val);
void emu_read_bytes(struct emu_cpu *cpu, int seg, uint64_t off, void *dst, unsigned n);
void emu_write_bytes(struct emu_cpu *cpu, int seg, uint64_t off, const void *src, unsigned n);
/* Host pointer for a size-byte access inside one RAM page (for LOCKed
 * read-modify-write and bulk string ops), or NULL: then use emu_read/write. */
void *emu_mem_ptr(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write);
/* Linear -> guest-physical for instruction fetch; faults as the SDM says. */
uint64_t emu_translate_fetch(struct emu_cpu *cpu, uint64_t linear);
void emu_deliver_interrupt(struct emu_cpu *cpu, unsigned vector, bool external);
/* Called by the run loop after emu_raise() longjmps: delivers
 * cpu->exc_vector, escalating to #DF and to a triple fault (shutdown) as
 * SDM vol. 3A, 6.15 "Interrupt 8" table 6-5 says. */
void emu_deliver_pending_exception(struct emu_cpu *cpu);
void emu_update_mode(struct emu_cpu *cpu);   /* after CR0/EFER/CS/EFLAGS.VM change */
void emu_tlb_flush(struct emu_cpu *cpu, bool include_global);
void emu_cpu_reset(struct emu_cpu *cpu, bool bsp);  /* power-on/INIT state, SDM vol. 3A, 9.1.1 */
/* Port I/O from IN/OUT/INS/OUTS after the permission checks (IOPL, TSS bitmap). */
uint32_t emu_io_in(struct emu_cpu *cpu, uint16_t port, unsigned size);
void emu_io_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint32_t val);

/* ---- fpu ---- */
/* x87/SSE power-on state: FINIT state, MXCSR 0x1F80, XCR0 = x87 (core's
 * emu_cpu_reset or vcpu_init calls it). */
void emu_fpu_reset(struct emu_cpu *cpu);
/* Snapshot accessors behind accel_emu's get_fpu/set_fpu: a standard
 * FXSAVE image (registers in stack order) plus XCR0.  set returns 0 or
 * -EINVAL (reserved MXCSR bits, bad XCR0) with err_set(). */
void emu_fpu_get(struct emu_cpu *cpu, struct x86_fpu *out);
int emu_fpu_set(struct emu_cpu *cpu, const struct x86_fpu *in);
/* CPUID leaf 0xD (SDM vol. 1, 13.2) for the state components the fpu
 * module implements; out = EAX, EBX, ECX, EDX. */
void emu_fpu_cpuid_xsave(struct emu_cpu *cpu, uint32_t subleaf, uint32_t out[4]);
/* XGETBV (0F 01 D0) and XSETBV (0F 01 D1) handlers, for system's group-7
 * dispatcher to call (0F 01 /2 is LGDT with a memory operand). */
void emu_fpu_xgetbv(struct emu_cpu *cpu, const struct emu_insn *insn);
void emu_fpu_xsetbv(struct emu_cpu *cpu, const struct emu_insn *insn);

/* Register access helpers shared by every module. */
static inline uint64_t emu_size_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

#endif
