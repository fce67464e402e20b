/* The emu engine's internal contract: decoded instructions and the
 * functions the engine's modules provide one another.  The CPU state is
 * in state.h, operand access for every instruction family in operand.h.
 *
 * Modules:
 *   core    opcodes.c and handlers.c (the opcode table: formats, and the
 *           handlers of every family), decode.c (decoder), disasm.c
 *           (trace disassembly), block.c
 *           (decoded-block cache keyed by guest-physical address and
 *           mode), cpu.c (run loop, accel_emu), flags.c (lazy flags),
 *           int_*.c (general-purpose instructions)
 *   system  mmu.c (segmentation + paging + software TLB), seg.c, except.c
 *           (exception/interrupt delivery), far.c (far transfers, IRET),
 *           task.c, mode.c, msr.c, cpuid.c, io.c, sys_insn.c (system
 *           instructions), hooks.c (LAPIC adapters)
 *   fpu     x87.c, x87_host.c, simd_int.c, sse_*.c, xsave.c, fpu.c
 *
 * Faults: emu_raise() longjmps back to the run loop, which delivers the
 * exception with RIP pointing at the faulting instruction.  So an
 * instruction handler must perform every access that can fault before it
 * commits any architectural state (e.g. write the stack, then update RSP).
 */
#ifndef VESSEL_CPU_EMU_EMU_H
#define VESSEL_CPU_EMU_EMU_H

#include "machine/accel.h"
#include "machine/x86.h"

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cpu_model;
struct vcpu;
struct guest_memory;
struct emu_cpu;
struct emu_insn;

typedef void (*emu_handler)(struct emu_cpu *cpu, const struct emu_insn *insn);
/* Declares an instruction handler that a family exports to the opcode
 * table (core/handlers.c) through its header. */
#define EMU_HANDLER(name) void name(struct emu_cpu *cpu, const struct emu_insn *insn)

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
	uint8_t opsize;       /* 2, 4 or 8; 1 for the byte-operand forms of general-purpose opcodes */
	uint8_t adsize;       /* 2, 4 or 8 */
	uint8_t seg;          /* segment of the memory operand (enum x86_sreg) */
	uint8_t rep;          /* 0, 0xf3 or 0xf2 */
	uint8_t lock;
	uint8_t rex;          /* REX byte or 0; with REX, byte registers 4-7 are SPL..DIL */
	uint8_t base, index;  /* 0-15 or EMU_REG_NONE */
	uint8_t scale;        /* shift 0-3 */
	uint8_t rip_rel;      /* 64-bit RIP-relative addressing */
	uint16_t imm2;        /* second immediate (ENTER level, far pointer selector) */
	int32_t disp;
	uint64_t imm;         /* first immediate, sign-extended where the SDM says so */
};
/* 40 bytes: a boot decodes some 250k blocks into the VM's arena, whose
 * pages the host must fault in and zero first. */
_Static_assert(sizeof(struct emu_insn) == 40, "struct emu_insn grew");

/* Execution mode, fixed for a decoded block (part of its cache key). */
enum emu_mode {
	EMU_MODE_REAL,        /* CR0.PE = 0 */
	EMU_MODE_V86,         /* EFLAGS.VM = 1 */
	EMU_MODE_PROT16,      /* protected, CS.D = 0 */
	EMU_MODE_PROT32,      /* protected or compatibility, CS.D = 1 */
	EMU_MODE_LONG64,      /* IA-32e, CS.L = 1 */
};

#include "cpu/emu/state.h"

/* ---- core ---- */
/* The handler the opcode table (core/handlers.c) gives an instruction of
 * opcode map/opcode with mandatory prefix mp (enum emu_mprefix) and
 * ModRM.reg reg (0-7; 0 without ModRM): the form specialised to a
 * memory (mem) or register operand of opsize bytes when the row has one,
 * the generic handler when opsize is 0 or it has none; NULL when the row
 * has no handler (the decoder then takes emu_handler_ud). */
emu_handler emu_handler_find(unsigned map, unsigned opcode, unsigned mp, unsigned reg, bool mem, unsigned opsize);
/* Decodes one instruction from avail bytes.  0: decoded (out->fn may be
 * the #UD handler for an opcode the table has no handler for); -EAGAIN: avail is too short
 * (the caller fetches more, up to 15 bytes); -EINVAL: invalid format (VEX
 * or EVEX, an i64 opcode in 64-bit mode, longer than 15 bytes): out->fn
 * raises #UD or #GP(0) and out->len is valid. */
int emu_decode(struct emu_cpu *cpu, const uint8_t *bytes, unsigned avail, struct emu_insn *out);
int emu_decode_mode(unsigned mode, const uint8_t *bytes, unsigned avail, struct emu_insn *out);
/* Whether a decoded block must end after this instruction (control
 * transfer, mode, segment or interrupt-flag change, I/O). */
bool emu_insn_ends_block(const struct emu_insn *insn);
/* The instruction's mnemonic (Zydis's spelling) from the opcode table,
 * or "" (0 returned) where the table has none; and the whole instruction
 * in Intel syntax, rip being its address (for relative targets).  Both
 * write at most n bytes with the terminating NUL and return the length. */
unsigned emu_insn_mnemonic(const struct emu_insn *insn, char *buf, unsigned n);
unsigned emu_insn_format(const struct emu_insn *insn, uint64_t rip, char *buf, unsigned n);
void emu_handler_ud(struct emu_cpu *cpu, const struct emu_insn *insn);   /* raises #UD */
void emu_handler_gp0(struct emu_cpu *cpu, const struct emu_insn *insn);  /* raises #GP(0) */
uint64_t emu_get_rflags(struct emu_cpu *cpu);   /* materializes lazy flags */
void emu_set_rflags(struct emu_cpu *cpu, uint64_t value);  /* all bits, no privilege checks */
void emu_blocks_invalidate_page(struct emu_vm *evm, uint64_t gpa);
/* Ends vcpu_run after the current instruction with this returning trap
 * (HLT, SHUTDOWN, INTERNAL_ERROR); cpu->exit carries its details. */
void emu_exit_run(struct emu_cpu *cpu, enum vcpu_exit_reason reason);

/* ---- what instructions reach outside the CPU ----
 * Guest-memory accesses that miss the inline TLB path (emu_read and
 * emu_write below), instruction-fetch translation and port I/O go
 * through cpu->ops: emu_sys_ops (the system module's soft MMU and the
 * vCPU's port bus) in the engine, which emu_cpu_reset() installs when the
 * owner chose none; a unit test's harness plugs in a fake memory through
 * its own table instead of replacing modules at link time. */
struct emu_ops {
	uint64_t (*read)(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size);
	void (*write)(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val);
	/* Raises every fault a size-byte write at seg:off would, and sets the
	 * accessed and dirty bits it would, without writing: for instructions
	 * that must know their write succeeds before they change any state. */
	void (*write_check)(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size);
	void (*read_bytes)(struct emu_cpu *cpu, int seg, uint64_t off, void *dst, unsigned n);
	void (*write_bytes)(struct emu_cpu *cpu, int seg, uint64_t off, const void *src, unsigned n);
	/* Host pointer for a size-byte access inside one RAM page (for LOCKed
	 * read-modify-write and bulk string ops), or NULL: then use emu_read/write. */
	void *(*mem_ptr)(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write);
	/* Linear -> guest-physical for instruction fetch; faults as the SDM says. */
	uint64_t (*translate_fetch)(struct emu_cpu *cpu, uint64_t linear);
	/* Port I/O from IN/OUT/INS/OUTS after the permission checks (IOPL, TSS bitmap). */
	uint32_t (*io_in)(struct emu_cpu *cpu, uint16_t port, unsigned size);
	void (*io_out)(struct emu_cpu *cpu, uint16_t port, unsigned size, uint32_t val);
};
extern const struct emu_ops emu_sys_ops;

static inline uint64_t emu_read_slow(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	return cpu->ops->read(cpu, seg, off, size);
}

static inline void emu_write_slow(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val)
{
	cpu->ops->write(cpu, seg, off, size, val);
}

static inline void emu_write_check(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	cpu->ops->write_check(cpu, seg, off, size);
}

static inline void emu_read_bytes(struct emu_cpu *cpu, int seg, uint64_t off, void *dst, unsigned n)
{
	cpu->ops->read_bytes(cpu, seg, off, dst, n);
}

static inline void emu_write_bytes(struct emu_cpu *cpu, int seg, uint64_t off, const void *src, unsigned n)
{
	cpu->ops->write_bytes(cpu, seg, off, src, n);
}

/* emu_mem_ptr: below, after the inline TLB path it tries first. */
static inline void *emu_mem_ptr(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write);

static inline uint64_t emu_translate_fetch(struct emu_cpu *cpu, uint64_t linear)
{
	return cpu->ops->translate_fetch(cpu, linear);
}

static inline uint32_t emu_io_in(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	return cpu->ops->io_in(cpu, port, size);
}

static inline void emu_io_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint32_t val)
{
	cpu->ops->io_out(cpu, port, size, val);
}

/* ---- system ---- */
_Noreturn void emu_raise(struct emu_cpu *cpu, unsigned vector, uint32_t error_code);
_Noreturn void emu_raise_noerr(struct emu_cpu *cpu, unsigned vector);
/* Virtual-address accesses through segmentation and paging; fault on
 * error.  emu_read/emu_write (below, inline) try the TLB and fall back
 * to cpu->ops (emu_read_slow/emu_write_slow above). */
static inline uint64_t emu_read(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size);
static inline void emu_write(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val);
void emu_deliver_interrupt(struct emu_cpu *cpu, unsigned vector, bool external);
/* Called by the run loop after emu_raise() longjmps: delivers
 * cpu->exc_vector, escalating to #DF and to a triple fault (shutdown) as
 * SDM vol. 3A, 6.15 "Interrupt 8" table 6-5 says. */
void emu_deliver_pending_exception(struct emu_cpu *cpu);
void emu_update_mode(struct emu_cpu *cpu);   /* after CR0/EFER/CS/EFLAGS.VM change */
void emu_tlb_flush(struct emu_cpu *cpu, bool include_global);
/* Power-on/INIT state (SDM vol. 3A, 9.1.1); installs emu_sys_ops when
 * cpu->ops is NULL. */
void emu_cpu_reset(struct emu_cpu *cpu, bool bsp);
/* Applies a CPU model (NULL: max) to CPUID, the MSRs, CR4 and the decoder. */
void emu_cpu_set_model(struct emu_cpu *cpu, const struct cpu_model *model);

/* After state was written from outside (set_sregs, snapshot restore, INIT):
 * re-derives CPL (from SS.DPL in protected mode), the mode and the address
 * space, and drops every cached translation. */
void emu_sys_sync(struct emu_cpu *cpu);
/* Per-VM system state (page-table watch bitmap); called by the core's
 * vm_init/vm_destroy after evm->mem and evm->n_pages are set. */
int emu_sys_vm_init(struct emu_vm *evm);
void emu_sys_vm_destroy(struct emu_vm *evm);
/* A write to watched paging-structure page pfn (by a vCPU or a device):
 * ages the address spaces it serves. */
void emu_pt_page_written(struct emu_vm *evm, uint64_t pfn);
/* Run loop: call at each block boundary (before executing a block) so that
 * write translations made before a page became a code or page-table page
 * (possibly by another vCPU) are dropped. */
void emu_tlb_sync_epoch_slow(struct emu_cpu *cpu);
/* Closes every vCPU's chain gate (struct emu_cpu chain_stop):
 * translated code that runs on goes back to the run loop at its next
 * direct jump. */
static inline void emu_close_chain_gates(struct emu_vm *evm)
{
	for (unsigned i = 0; i < EMU_CHAIN_GATES; i++) {
		uint64_t *gate = __atomic_load_n(&evm->chain_gates[i], __ATOMIC_ACQUIRE);
		if (gate)
			__atomic_store_n(gate, 0, __ATOMIC_SEQ_CST);
	}
}

/* Moves the VM's write epoch (a page became a code or page-table page):
 * every vCPU drops its write translations at its next block boundary,
 * in translated code too (its gate closed). */
static inline void emu_write_epoch_move(struct emu_vm *evm)
{
	atomic_fetch_add_explicit(&evm->write_epoch, 1, memory_order_seq_cst);
	emu_close_chain_gates(evm);
}
static inline void emu_tlb_sync_epoch(struct emu_cpu *cpu)
{
	if (cpu->evm && __builtin_expect(cpu->write_epoch_seen !=
			__atomic_load_n((uint64_t *)&cpu->evm->write_epoch, __ATOMIC_RELAXED), 0))
		emu_tlb_sync_epoch_slow(cpu);
}
/* Loads a segment register as MOV/POP Sreg do (SDM vol. 2A MOV "Operation",
 * all the descriptor checks; #GP/#SS/#NP with the selector as error code). */
void emu_load_seg(struct emu_cpu *cpu, int seg, uint16_t sel);
/* Far transfers for the core's CALL/JMP/RET far and IRET handlers. */
void emu_far_jmp(struct emu_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
void emu_far_call(struct emu_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
void emu_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes);
void emu_iret(struct emu_cpu *cpu, unsigned opsize);
/* Debug trap for the run loop: with cpu->rip already at the next
 * instruction, moves cpu->dbg_pending into DR6 (B0-B3 replaced when it
 * has any) and delivers #DB as a trap (SDM vol. 3B 17.3.1.2, 17.3.1.4,
 * 17.3.1.5). */
void emu_debug_trap(struct emu_cpu *cpu);
/* After DR7 changes: recomputes cpu->dbg_data, flushing the TLB when it
 * changes so that the inline path starts or stops missing. */
void emu_debug_dr7_changed(struct emu_cpu *cpu);
/* Data (R/W = 01 write, 11 read or write) and I/O (R/W = 10 with
 * CR4.DE) breakpoints: adds to cpu->dbg_pending the DR6.Bn of the enabled
 * DRn whose range (LEN 1, 2, 8 or 4 bytes, DRn aligned down, 17.2.5)
 * meets the size-byte access at lin or port. */
void emu_debug_data(struct emu_cpu *cpu, uint64_t lin, unsigned size, bool write);
void emu_debug_io(struct emu_cpu *cpu, uint16_t port, unsigned size);
/* Instruction breakpoints for the run loop, before the instruction at
 * cpu->rip is fetched: delivers #DB (a fault) with DR6.B0-B3 for the
 * enabled DR0-DR3 execute breakpoints at its linear address and returns
 * true (SDM vol. 3B 17.2.4, 17.3.1.1).  The caller skips it while
 * EFLAGS.RF is set. */
bool emu_check_insn_breakpoints(struct emu_cpu *cpu);
/* Software interrupt (INT n, INT3, INTO, INT1): return address cpu->next_rip. */
void emu_soft_interrupt(struct emu_cpu *cpu, unsigned vector, bool is_int_n);
/* The TLB slot of a linear address in the current address space. */
static inline unsigned emu_tlb_index(const struct emu_cpu *cpu, uint64_t lin)
{
	return (unsigned)((lin >> 12) ^ cpu->tlb_salt) & (EMU_TLB_SIZE - 1);
}
#define EMU_TLB_SALT(slot) ((uint32_t)(slot) * 0x45u)

/* The linear address of an instruction fetch at rip: CS.base is ignored
 * in 64-bit mode, and the address wraps at 4 GiB elsewhere. */
static inline uint64_t emu_fetch_linear(const struct emu_cpu *cpu, uint64_t rip)
{
	if (cpu->mode == EMU_MODE_LONG64)
		return rip;
	return (uint32_t)(cpu->seg[SEG_CS].base + rip);
}

/* Current privilege for data accesses (enum emu_mmu_idx). */
static inline unsigned emu_mmu_index(const struct emu_cpu *cpu)
{
	if (cpu->cpl == 3)
		return (cpu->rflags & X86_FLAG_AC) && (cpu->cr0 & X86_CR0_AM) ? EMU_MMU_USER_AC : EMU_MMU_USER;
	return (cpu->rflags & X86_FLAG_AC) ? EMU_MMU_SUP_AC : EMU_MMU_SUP;
}
/* CR8, IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC MSRs go to the
 * vCPU's LAPIC through the route of machine/accel.h (vcpu_apic_*) when it has
 * one; the guest TSC is then the LAPIC's VM clock scaled to EMU_TSC_HZ.
 * Without a LAPIC the engine keeps the values itself. */
uint8_t emu_hook_get_tpr(struct emu_cpu *cpu);   /* the TPR register: CR8 = TPR >> 4 (SDM vol. 3A 10.8.6.1) */
void emu_hook_set_tpr(struct emu_cpu *cpu, uint8_t tpr);
/* TSC frequency advertised in CPUID 0x15/0x16/0x40000010. */
#define EMU_TSC_HZ 2000000000ull
uint64_t emu_rdtsc(struct emu_cpu *cpu);

/* The inline TLB hit path (docs/architecture.md "Soft MMU"): segment check, one tag
 * compare, one host access.  Everything else goes to the slow path. */
/* The linear address of seg:off, without checks (those are the MMU's,
 * system/seg.c): in 64-bit mode only FS and GS have a base (SDM vol. 3A,
 * 3.4.4); elsewhere the address wraps at 4 GiB. */
static inline uint64_t emu_seg_linear(const struct emu_cpu *cpu, int seg, uint64_t off)
{
	if (cpu->mode == EMU_MODE_LONG64)
		return off + (seg >= SEG_FS ? cpu->seg[seg].base : 0);
	return (uint32_t)(cpu->seg[seg].base + off);
}

static inline bool emu_seg_fast_ok(const struct emu_cpu *cpu, int seg, uint64_t off, unsigned size,
				   uint16_t attr_mask, uint16_t attr_want, uint64_t *lin)
{
	const struct emu_seg *s = &cpu->seg[seg];
	if (cpu->mode != EMU_MODE_LONG64 && ((s->attr & attr_mask) != attr_want || off + size - 1 > s->limit))
		return false;
	*lin = emu_seg_linear(cpu, seg, off);
	return true;
}

/* A 1, 2, 4 or 8-byte little-endian access to host memory. */
static inline uint64_t emu_host_load(const void *p, unsigned size)
{
	switch (size) {
	case 1: return *(const uint8_t *)p;
	case 2: { uint16_t v; __builtin_memcpy(&v, p, 2); return v; }
	case 4: { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
	default: { uint64_t v; __builtin_memcpy(&v, p, 8); return v; }
	}
}

static inline void emu_host_store(void *p, unsigned size, uint64_t val)
{
	switch (size) {
	case 1: *(uint8_t *)p = (uint8_t)val; return;
	case 2: { uint16_t v = (uint16_t)val; __builtin_memcpy(p, &v, 2); return; }
	case 4: { uint32_t v = (uint32_t)val; __builtin_memcpy(p, &v, 4); return; }
	default: __builtin_memcpy(p, &val, 8); return;
	}
}

static inline uint64_t emu_read(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t lin;
	/* Present, data, expand-up: readable. */
	if (__builtin_expect(emu_seg_fast_ok(cpu, seg, off, size, 0x9c, 0x90, &lin), 1)) {
		const struct emu_tlb_entry *e = &cpu->tlb[emu_mmu_index(cpu)][emu_tlb_index(cpu, lin)];
		if (__builtin_expect(e->tag_read == ((lin & ~0xfffull) | cpu->asid) && (lin & 0xfff) + size <= 4096, 1))
			return emu_host_load((const void *)(uintptr_t)(lin + e->addend), size);
	}
	return emu_read_slow(cpu, seg, off, size);
}

/* The host address of a size-byte write at seg:off when the write TLB
 * holds its page -- the write cannot fault then -- else NULL. */
static inline void *emu_write_ptr_fast(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t lin;
	/* Present, data, expand-up, writable. */
	if (__builtin_expect(emu_seg_fast_ok(cpu, seg, off, size, 0x9e, 0x92, &lin), 1)) {
		const struct emu_tlb_entry *e = &cpu->tlb[emu_mmu_index(cpu)][emu_tlb_index(cpu, lin)];
		if (__builtin_expect(e->tag_write == ((lin & ~0xfffull) | cpu->asid) && (lin & 0xfff) + size <= 4096, 1))
			return (void *)(uintptr_t)(lin + e->addend);
	}
	return NULL;
}

/* A page the TLB holds for the access is RAM with nothing to watch (no
 * code, no page table, no data breakpoint): its host pointer, as emu_read
 * and emu_write use it; anything else asks cpu->ops. */
static inline void *emu_mem_ptr(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write)
{
	uint64_t lin;
	if (__builtin_expect(emu_seg_fast_ok(cpu, seg, off, size, write ? 0x9e : 0x9c, write ? 0x92 : 0x90, &lin), 1)) {
		const struct emu_tlb_entry *e = &cpu->tlb[emu_mmu_index(cpu)][emu_tlb_index(cpu, lin)];
		uint64_t tag = write ? e->tag_write : e->tag_read;
		if (__builtin_expect(tag == ((lin & ~0xfffull) | cpu->asid) && (lin & 0xfff) + size <= 4096, 1))
			return (void *)(uintptr_t)(lin + e->addend);
	}
	return cpu->ops->mem_ptr(cpu, seg, off, size, write);
}

static inline void emu_write(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val)
{
	void *p = emu_write_ptr_fast(cpu, seg, off, size);
	if (__builtin_expect(p != NULL, 1))
		emu_host_store(p, size, val);
	else
		emu_write_slow(cpu, seg, off, size, val);
}

/* ---- fpu ---- */
/* x87/SSE power-up state (SDM vol. 3A, table 9-1): FCW 0x0040, tag word
 * 0x5555, MXCSR 0x1F80, XMM 0, XCR0 = x87.  INIT leaves x87/SSE state
 * alone, so a caller handling INIT need not call it. */
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
