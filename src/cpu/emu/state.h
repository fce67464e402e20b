/* The emu engine's state: struct emu_cpu (one vCPU's architectural
 * state, grouped as the SDM presents it) and struct emu_vm (per VM),
 * apart from the functions the engine's modules provide one another
 * (emu.h). */
#ifndef VESSEL_CPU_EMU_STATE_H
#define VESSEL_CPU_EMU_STATE_H

#include "machine/accel.h"
#include "machine/x86.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#define EMU_CHAIN_GATES 64   /* >= MACHINE_MAX_CPUS (core/block.c) */

struct vcpu;
struct cpu_model;
struct guest_memory;
struct emu_vm;
struct emu_ops;
struct emu_block_cache;

/* Lazy flags (docs/architecture.md "Lazy flags"): the last flag-setting operation's
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

/* One entry of the software TLB (docs/architecture.md "Soft MMU").  A tag is the
 * linear page | the address-space tag (cpu->asid, 11 bits); bit 11
 * (EMU_TLB_MMIO) marks a translation the inline fast path never matches:
 * to a page that is not RAM, a write to a watched or code page, or any
 * data access while DR7 enables a data breakpoint.  ~0 is an empty tag. */
struct emu_tlb_entry {
	uint64_t tag_read, tag_write, tag_fetch;  /* linear page | asid, or ~0 */
	uintptr_t addend;                         /* host = linear + addend */
	uint64_t gpa;                             /* guest-physical page */
};
#define EMU_TLB_SIZE 1024
#define EMU_TLB_MMIO 0x800ull
#define EMU_GTLB_SIZE 256
/* One TLB per kind of access privilege, so that a translation cached for
 * the kernel is never used by user code (SDM vol. 3A, 4.6). */
enum emu_mmu_idx {
	EMU_MMU_SUP,      /* CPL 0-2 with EFLAGS.AC = 0, and implicit supervisor accesses */
	EMU_MMU_USER,     /* CPL 3 */
	EMU_MMU_SUP_AC,   /* CPL 0-2 with EFLAGS.AC = 1: SMAP lets data accesses reach user pages */
	EMU_MMU_USER_AC,  /* CPL 3 with CR0.AM and EFLAGS.AC: alignment checking, slow path only */
	EMU_MMU_COUNT,
};
#define EMU_ASID_SLOTS 16
#define EMU_ROOT_GENS 1024          /* power of two */
#define EMU_PT_SHARED 0xffffffffu
/* An address space the TLB holds translations of (CR3 value, or PCID
 * when CR4.PCIDE = 1).  Its tag is slot | gen << 4; bumping gen drops
 * every translation of the slot at once. */
struct emu_asid_slot {
	uint64_t key;          /* CR3 page (PCIDE = 0) or PCID | 1 << 63; ~0 = free */
	uint32_t gen;          /* 0..126 */
	uint64_t pt_gen;       /* emu_vm.pt_gen when its translations were last known fresh */
	uint64_t root_gen;     /* emu_vm.root_gen[] of its root then */
	/* A walk went through a paging structure left untracked (the
	 * tracking limit was reached): its translations go at its next
	 * switch, whatever the generations say. */
	bool untracked;
	uint64_t last_use;
};

/* The architectural state of one vCPU, grouped as the SDM presents it,
 * then the engine's own bookkeeping.  The groups are anonymous structs:
 * fields are named cpu->gpr, cpu->cr0... whatever their group.  The
 * fields every instruction touches come first. */
struct emu_cpu {
	/* General-purpose registers, RIP and RFLAGS (SDM vol. 1, 3.4). */
	struct {
		uint64_t gpr[16];
		uint64_t rip;          /* of the instruction executing */
		uint64_t next_rip;     /* rip + insn->len while a handler runs */
		uint64_t rflags;       /* non-arithmetic bits are authoritative; arithmetic ones live in lf */
		struct emu_lazy_flags lf;
	};

	/* Segments and descriptor tables (SDM vol. 3A, chapter 3), and the
	 * privilege level and mode derived from them and CR0/EFER. */
	struct {
		struct emu_seg seg[SEG_COUNT];
		struct emu_seg ldtr, tr;
		struct x86_dtable gdtr, idtr;
		uint8_t cpl;
		uint8_t mode;          /* enum emu_mode, recomputed by emu_update_mode() */
		bool mode_changed;     /* set by CR0/CR4/EFER/CS changes: the run loop must look the next block up again */
	};

	/* Events: interrupt shadows, exception and NMI delivery state (SDM
	 * vol. 3A, chapter 6). */
	struct {
		bool intr_shadow;      /* after MOV SS/POP SS/STI: no interrupt before the next instruction */
		bool ss_shadow;        /* set by MOV SS/POP SS: no debug trap after it either (SDM vol. 3A 6.8.3) */
		bool event_delivered;  /* set by every event delivery: the single-step path reads it */
		bool halted;
		bool nmi_blocked;      /* from NMI delivery until the next IRET (SDM vol. 3A 6.7.1) */
		/* An NMI received and not yet delivered: a latch, so that NMIs
		 * that arrive while one is pending or blocked collapse into one
		 * (6.7.1). */
		bool nmi_pending;
		bool exc_has_error;
		bool delivering_ext;
		int exc_vector;        /* exception raised by emu_raise(), -1 if none */
		uint32_t exc_error;
		uint32_t exc_ext;      /* EXT bit for error codes of the event being delivered */
		int delivering;        /* vector being delivered (for #DF, SDM vol. 3A 6.15 table 6-5), -1 if none */
	};

	/* Debug registers (SDM vol. 3B, chapter 17). */
	struct {
		uint64_t dr[8];
		/* Debug traps (17.3.1.2-17.3.1.5): DR6 bits (B0-B3 of the data
		 * and I/O breakpoints hit, BS, BT) of a #DB trap to deliver at
		 * the next instruction boundary.  Nonzero: the one-instruction
		 * path. */
		uint32_t dbg_pending;
		/* DR7 enables a data breakpoint: the TLB fills make the inline
		 * path miss, so that every data access reaches the slow path,
		 * which checks the breakpoints (docs/isa.md). */
		bool dbg_data;
	};

	/* Engine bookkeeping: the run loop, the run budget, the VM. */
	struct {
		bool stop_block;       /* set by emu_exit_run(): leave the run loop after this instruction */
		jmp_buf *fault_env;    /* where emu_raise() returns to */
		uint64_t icount;       /* instructions retired, plus REP iterations and events delivered */
		/* Run budget (tests, the fuzz target): vcpu_run returns
		 * VCPU_EXIT_KICK at the first boundary where icount has
		 * reached it; ~0 = none.  Deliveries count so that a guest
		 * faulting in a loop without retiring anything (a handler
		 * whose code is not present) also stops. */
		uint64_t icount_stop;
		/* The gate of the direct jumps between translated blocks
		 * (jit/branch.c emit_chain_checks): they go on while icount <
		 * chain_stop.  The run loop opens it (icount_stop) as it enters
		 * translated code with nothing pending that it must see
		 * (core/cpu.c chain_gate_open); whatever it must see next
		 * closes it (0), from any thread: an event posted through the
		 * engine's kick, a moved write epoch, a flush of the block
		 * cache (emu.h emu_close_chain_gates).  Accessed atomically. */
		uint64_t chain_stop;
		struct vcpu *vcpu;
		struct guest_memory *mem;
		struct emu_vm *evm;
		const struct emu_ops *ops;   /* memory past the TLB, fetch, ports (emu.h) */
		/* --cpu (machine/cpu_model.h): NULL is max.  feat_off holds the
		 * opcode-gating flags it removes (1 << enum emu_feature), which
		 * the decoder turns into #UD once per decoded instruction. */
		const struct cpu_model *model;
		uint32_t feat_off;
		struct vcpu_exit *exit;   /* set when a returning trap ends the run */
		/* Written by translated code at its exit (jit/jit.h): the
		 * exit's record; NULL after an interpreted block or a stop. */
		struct emu_jit_exit *jit_exit;
		/* emu_chain_key() as the run loop last entered translated
		 * code (core/cpu.c run_block_whole), for the steps between
		 * blocks made from there (jit_next, far links): the key
		 * changes only in blocks that have no exit that chains
		 * (jit/branch.c jit_keeps_fetch_context), which return to the
		 * loop. */
		uint64_t chain_key;
		/* &tlb[emu_mmu_index()] as translated code was entered from
		 * C (jit/jit.h emu_jit_enter), for its inline TLB path. */
		struct emu_tlb_entry *tlb_row;
	};

	/* Soft MMU state (docs/architecture.md "Soft MMU"), the TLB arrays
	 * last. */
	struct {
		uint64_t asid;             /* current address-space tag */
		uint32_t tlb_salt;         /* per address space: spreads equal linear pages of different spaces over the TLB */
		/* Bumped whenever a cached translation may change meaning
		 * within an address space (flushes, INVLPG): chained blocks
		 * (core) were found under the translations of one epoch. */
		uint64_t fetch_epoch;
		uint64_t write_epoch_seen; /* emu_vm.write_epoch the write TLB tags were built under */
		struct emu_asid_slot asids[EMU_ASID_SLOTS];
		unsigned asid_cur;         /* index into asids */
		uint64_t asid_clock;
		/* Counters (`vessel ctl stats`): CR3 loads and task switches
		 * that load an address space, those that found its
		 * translations still valid and kept them, those that purged
		 * them as stale (a paging structure of theirs was written, or
		 * untracked), and flushes of every address space. */
		uint64_t as_switches, as_kept, as_purged, tlb_full_flushes;
	};

	/* Control registers and MSRs (SDM vol. 3A, 2.5; vol. 4). */
	struct {
		uint64_t cr0, cr2, cr3, cr4, xcr0;
		uint64_t efer, star, lstar, cstar, sfmask, kernel_gs_base;
		uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
		uint64_t pat, tsc_aux, misc_enable, spec_ctrl, tsc_offset;
		uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16];
		uint64_t apic_base;        /* IA32_APIC_BASE (the LAPIC hook sees writes) */
		uint64_t tsc_deadline;
		uint8_t tpr;               /* TPR (CR8 << 4) when the vCPU has no LAPIC */
		uint64_t feature_control;
		uint64_t tsc_base_ns;      /* host monotonic time at TSC 0 (minus tsc_offset) */
	};

	/* x87/MMX/SSE, in FXSAVE layout for cheap FXSAVE/XSAVE and snapshots. */
	struct {
		struct x86_fpu fpu;
		union { uint8_t b[16]; uint32_t d[4]; uint64_t q[2]; } xmm[16] __attribute__((aligned(16)));
		uint32_t mxcsr;
	};

	/* The software TLB: one array per access privilege, and the global
	 * translations (PTE.G with CR4.PGE), tagged by linear page only,
	 * shared by every address space, refilled into tlb[] on a miss
	 * instead of walking; they survive CR3 writes (SDM vol. 3A 4.10.2.4). */
	struct {
		struct emu_tlb_entry tlb[EMU_MMU_COUNT][EMU_TLB_SIZE];
		struct emu_tlb_entry gtlb[EMU_MMU_COUNT][EMU_GTLB_SIZE];
	};
};

/* Per-VM engine state shared by all vCPUs. */
struct emu_vm {
	struct guest_memory *mem;
	/* Decoded blocks of every vCPU (core/block.h, docs/architecture.md
	 * "Decode once"); NULL in unit tests of the system module. */
	struct emu_block_cache *blocks;
	/* Self-modifying code (docs/architecture.md "Self-modifying code"):
	 * one generation counter per guest page; a write to a page holding
	 * decoded blocks bumps it, and blocks of an older generation are
	 * decoded again. */
	_Atomic uint32_t *page_gen;
	_Atomic uint8_t *code_page;   /* nonzero: page holds decoded blocks, writes take the slow path */
	uint64_t n_pages;
	_Atomic uint64_t write_epoch; /* bumped when a page becomes a code page: vCPUs drop write TLB entries */
	/* Each vCPU's chain gate (struct emu_cpu chain_stop) by vCPU id,
	 * NULL where none (core/block.c emu_blocks_alloc), closed by
	 * emu_close_chain_gates().  A vCPU is
	 * freed only once the VM no longer runs. */
	uint64_t *chain_gates[EMU_CHAIN_GATES];   /* accessed atomically */
	/* Page-table watch (docs/architecture.md "Soft MMU"): nonzero for guest pages
	 * read as paging structures; a guest write to one bumps pt_gen, and an
	 * address space whose translations predate pt_gen is flushed when it
	 * becomes current again.  NULL: every CR3 switch flushes. */
	_Atomic uint8_t *pt_page;
	_Atomic uint8_t *pt_writes;   /* writes to a watched page since a walk last read it */
	_Atomic uint64_t pt_gen;
	/* Which address spaces a watched page serves: the root (CR3 page)
	 * whose walks read it, as an index into root_gen plus one, or
	 * EMU_PT_SHARED once walks of several roots read it (the kernel
	 * half).  A write to a page of one root bumps that root's
	 * generation only, so that the other address spaces stay. */
	_Atomic uint32_t *pt_owner;
	_Atomic uint64_t root_gen[EMU_ROOT_GENS];
	/* Tracking limit: once pt_tracked pages are watched, paging
	 * structures found for the first time are left untracked (their
	 * address space is purged at each switch) until the next flush of
	 * every translation restarts the tracking. */
	_Atomic uint64_t pt_tracked;
	uint64_t pt_track_limit;
	_Atomic bool pt_deferring;
	_Atomic uint64_t pt_deferred;   /* walks that found a paging structure and left it untracked */
	_Atomic uint64_t pt_restarts;   /* tracking restarted by a full flush */
};

#endif
