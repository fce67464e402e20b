/* Internal declarations shared by the system module's files (soft MMU,
 * segmentation, exceptions, system instructions).  Not part of the engine
 * contract: other modules use emu.h. */
#ifndef VESSEL_CPU_EMU_SYSTEM_SYS_H
#define VESSEL_CPU_EMU_SYSTEM_SYS_H

#include "cpu/emu/emu.h"
#include "cpu/emu/operand.h"

/* Physical address width advertised in CPUID 0x80000008 (SDM vol. 3A, 4.1.4). */
#define EMU_MAXPHYADDR 40
#define EMU_PHYS_MASK ((1ull << EMU_MAXPHYADDR) - 1)

enum emu_access { EMU_ACC_READ, EMU_ACC_WRITE, EMU_ACC_FETCH };

/* ---- mmu.c ---- */
/* Translates a linear address for one access (no segmentation); raises
 * #PF on failure.  Returns the guest-physical address. */
uint64_t mmu_translate(struct emu_cpu *cpu, uint64_t lin, enum emu_access acc, unsigned idx);
/* Linear-address accesses with an explicit privilege (enum emu_mmu_idx):
 * descriptor tables, TSS and the stacks of event delivery use EMU_MMU_SUP
 * (implicit supervisor accesses, SDM vol. 3A 4.6). */
uint64_t mmu_read_lin(struct emu_cpu *cpu, uint64_t lin, unsigned size, unsigned idx);
void mmu_write_lin(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t val, unsigned idx);
/* Switches to the address space of the current CR3/PCID; flush as MOV CR3 does. */
void mmu_set_cr3(struct emu_cpu *cpu, uint64_t cr3, bool noflush);
void mmu_invlpg(struct emu_cpu *cpu, uint64_t lin);
void mmu_invpcid(struct emu_cpu *cpu, unsigned type, uint64_t pcid, uint64_t lin);
/* Drops the n ranges r of a remote flush (machine.h struct vcpu_tlb_range). */
void mmu_flush_ranges(struct emu_cpu *cpu, const struct vcpu_tlb_range *r, unsigned n);
void mmu_reset(struct emu_cpu *cpu);
bool mmu_canonical(const struct emu_cpu *cpu, uint64_t lin);

/* ---- seg.c ---- */
/* Checks an access through a segment register or a segment copy and returns
 * the linear address (SDM vol. 3A, 5.3 limit checking, 5.5-5.6 type and
 * privilege; 3.3.7.1 canonical addresses in 64-bit mode). */
uint64_t seg_linear(struct emu_cpu *cpu, const struct emu_seg *s, int segno, uint64_t off, unsigned size,
		    enum emu_access acc);
/* The same for execution mode `mode` (enum emu_mode) instead of cpu->mode. */
uint64_t seg_linear_m(struct emu_cpu *cpu, unsigned mode, const struct emu_seg *s, int segno, uint64_t off,
		      unsigned size, enum emu_access acc);
/* Reads the 8-byte descriptor for sel from the GDT/LDT; false if outside the table. */
bool seg_read_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc);
void seg_write_desc_hi(struct emu_cpu *cpu, uint16_t sel, uint32_t hi);
/* Decodes a descriptor into a segment cache. */
void seg_from_desc(struct emu_seg *s, uint16_t sel, uint64_t desc);
void seg_real(struct emu_seg *s, uint16_t sel);       /* real/V86 mode: base = sel << 4 */
/* Descriptor loads with the SDM checks; raise on failure. */
void seg_load_ss_checked(struct emu_cpu *cpu, uint16_t sel, unsigned cpl, struct emu_seg *out, unsigned exc);
void seg_load_data_checked(struct emu_cpu *cpu, int segno, uint16_t sel, struct emu_seg *out, unsigned exc);
/* Sets the accessed bit of a descriptor if clear (SDM vol. 3A, 3.4.5.1). */
void seg_set_accessed(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc);
/* After a privilege drop (RET/IRET to outer level): data segments whose DPL
 * is below the new CPL become null (SDM vol. 2A RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"). */
void seg_invalidate_for_cpl(struct emu_cpu *cpu);

static inline unsigned seg_dpl(const struct emu_seg *s) { return (s->attr >> 5) & 3; }
static inline bool seg_is_code(const struct emu_seg *s) { return (s->attr & 0x18) == 0x18; }

/* ---- except.c ---- */
/* Delivers vector through IVT/IDT; soft: INT n (gate DPL check), ret_rip:
 * the saved instruction pointer. */
void exc_deliver(struct emu_cpu *cpu, unsigned vector, bool has_err, uint32_t err, bool soft,
		 uint64_t ret_rip);
void exc_shutdown(struct emu_cpu *cpu, const char *why);
/* Stack helpers working on a segment copy with an explicit privilege. */
void stack_push(struct emu_cpu *cpu, unsigned mode, const struct emu_seg *ss, uint64_t *sp, unsigned size,
		uint64_t val, unsigned idx);
uint64_t stack_pop(struct emu_cpu *cpu, unsigned mode, const struct emu_seg *ss, uint64_t *sp, unsigned size,
		   unsigned idx);

/* ---- task.c ---- */
enum task_reason { TASK_JMP, TASK_CALL, TASK_IRET, TASK_INT };
void task_switch(struct emu_cpu *cpu, uint16_t sel, uint64_t desc, enum task_reason why, bool has_err,
		 uint32_t err, uint64_t ret_rip);

/* ---- mode.c ---- */
void mode_write_cr0(struct emu_cpu *cpu, uint64_t val);
void mode_write_cr4(struct emu_cpu *cpu, uint64_t val);
void mode_write_cr3(struct emu_cpu *cpu, uint64_t val);
int mode_write_efer(struct emu_cpu *cpu, uint64_t val);   /* -1: #GP */
/* Sets RSP/SP according to the stack segment size. */
void sys_set_sp(struct emu_cpu *cpu, const struct emu_seg *ss, uint64_t sp);
uint64_t sys_get_sp(const struct emu_cpu *cpu, const struct emu_seg *ss);

/* ---- msr.c ---- */
int msr_read(struct emu_cpu *cpu, uint32_t index, uint64_t *val);   /* -1: #GP */
int msr_write(struct emu_cpu *cpu, uint32_t index, uint64_t val);

/* ---- cpuid.c ---- */
void cpuid_query(struct emu_cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

/* ---- io.c: port I/O behind emu_sys_ops ---- */
uint32_t io_port_in(struct emu_cpu *cpu, uint16_t port, unsigned size);
void io_port_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint32_t val);

/* ---- sys_insn.c: the system instructions' handlers, for the opcode
 * table (core/handlers.c) ---- */
/* Segment registers */
EMU_HANDLER(h_mov_sreg); EMU_HANDLER(h_pop_es); EMU_HANDLER(h_pop_ss); EMU_HANDLER(h_pop_ds);
EMU_HANDLER(h_pop_fs); EMU_HANDLER(h_pop_gs); EMU_HANDLER(h_les); EMU_HANDLER(h_lds); EMU_HANDLER(h_lss);
EMU_HANDLER(h_lfs); EMU_HANDLER(h_lgs);
/* Far transfers, interrupts, HLT, CLI/STI, port I/O */
EMU_HANDLER(h_jmp_far_ptr); EMU_HANDLER(h_call_far_ptr); EMU_HANDLER(h_call_far_mem); EMU_HANDLER(h_jmp_far_mem);
EMU_HANDLER(h_retf); EMU_HANDLER(h_iret); EMU_HANDLER(h_int3); EMU_HANDLER(h_int_n); EMU_HANDLER(h_into);
EMU_HANDLER(h_int1); EMU_HANDLER(h_hlt); EMU_HANDLER(h_cli); EMU_HANDLER(h_sti); EMU_HANDLER(h_in);
EMU_HANDLER(h_out);
/* 0F 00, 0F 01: descriptor tables, LDT/TR, MSW, INVLPG, SWAPGS... */
EMU_HANDLER(h_grp6); EMU_HANDLER(h_grp7_0); EMU_HANDLER(h_grp7_1); EMU_HANDLER(h_grp7_2); EMU_HANDLER(h_grp7_3);
EMU_HANDLER(h_smsw); EMU_HANDLER(h_lmsw); EMU_HANDLER(h_grp7_7); EMU_HANDLER(h_lar); EMU_HANDLER(h_lsl);
/* Control and debug registers, caches, MSRs, TSC, CPUID, fast system calls */
EMU_HANDLER(h_syscall); EMU_HANDLER(h_clts); EMU_HANDLER(h_sysret); EMU_HANDLER(h_wbinvd);
EMU_HANDLER(h_mov_from_cr); EMU_HANDLER(h_mov_from_dr); EMU_HANDLER(h_mov_to_cr); EMU_HANDLER(h_mov_to_dr);
EMU_HANDLER(h_wrmsr); EMU_HANDLER(h_rdtsc); EMU_HANDLER(h_rdmsr); EMU_HANDLER(h_rdpmc); EMU_HANDLER(h_sysenter);
EMU_HANDLER(h_sysexit); EMU_HANDLER(h_cpuid); EMU_HANDLER(h_rdpid); EMU_HANDLER(h_invpcid);
EMU_HANDLER(h_fsgsbase);

#endif
