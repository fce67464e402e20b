/* The engine interface (docs/architecture.md "Traps").
 *
 * An engine runs one vCPU until something needs the monitor.  Port I/O and
 * MMIO are the hot traps: the engine fills a struct vcpu_exit and calls
 * vcpu_dispatch_exit() synchronously (the emu engine from inside the
 * instruction, the KVM engine after KVM_RUN returns), which routes it to the
 * device bus and counts it.  The other traps (HLT, shutdown, a kick from
 * another thread, an internal error) end accel_ops.vcpu_run() and the vCPU
 * thread in src/vmm/vm.c handles them.
 *
 * Both engines present the same state accessors so that snapshots and the
 * triple-fault register dump (vcpu_dump_state) work on either, and reach
 * the local APIC by the same route (below). */
#ifndef VESSEL_MACHINE_ACCEL_H
#define VESSEL_MACHINE_ACCEL_H

#include "machine/x86.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct vcpu_tlb_range;

/* MSRs [base, base + count). */
struct msr_range {
	uint32_t base, count;
};

enum vcpu_exit_reason {
	VCPU_EXIT_NONE,
	VCPU_EXIT_IO,           /* port I/O (dispatched synchronously) */
	VCPU_EXIT_MMIO,         /* access outside RAM (dispatched synchronously) */
	VCPU_EXIT_MSR,          /* MSR the engine does not model (dispatched synchronously) */
	VCPU_EXIT_HYPERCALL,    /* VMCALL/VMMCALL or Hyper-V hypercall page (synchronous) */
	VCPU_EXIT_HLT,          /* vcpu_run returns: wait for an interrupt */
	VCPU_EXIT_KICK,         /* vcpu_run returns: another thread asked (pause, stop, INIT) */
	VCPU_EXIT_SHUTDOWN,     /* vcpu_run returns: triple fault */
	VCPU_EXIT_INTERNAL_ERROR, /* vcpu_run returns: engine cannot continue */
	VCPU_EXIT_REASON_COUNT,
};

const char *vcpu_exit_reason_name(enum vcpu_exit_reason r);

struct vcpu_exit {
	enum vcpu_exit_reason reason;
	union {
		struct {
			uint16_t port;
			uint8_t size;     /* 1, 2 or 4 */
			bool is_write;
			uint32_t data;    /* in: filled by the monitor; out: the value written */
		} io;
		struct {
			uint64_t gpa;
			uint8_t size;     /* 1, 2, 4 or 8 */
			bool is_write;
			uint64_t data;
		} mmio;
		struct {
			uint32_t index;
			bool is_write;
			uint64_t data;
			bool handled;     /* false: the engine raises #GP(0) */
		} msr;
		struct {
			uint64_t code;    /* hypercall input value (TLFS 3.7) */
			uint64_t in_gpa, out_gpa;
			uint64_t result;
		} hypercall;
		struct {
			char message[160];
		} error;              /* SHUTDOWN and INTERNAL_ERROR */
	};
};

/* What an engine keeps of guest code and translations, for `vessel ctl
 * stats` (docs/api.md): its code cache (shared by the VM's vCPUs) and its
 * software TLB's address spaces (docs/architecture.md "Decode once",
 * "Soft MMU"). */
struct accel_code_stats {
	uint64_t cache_bytes;       /* the bound (--code-cache) */
	uint64_t decoded_bytes;     /* decoded blocks held now */
	uint64_t decoded_peak;      /* the most held since the VM was built */
	/* Host code generated from them (--jit on; 0: none), in the VM's
	 * code cache, shared by its vCPUs: its bound, the bytes held now
	 * and the most held. */
	uint64_t jit_cache_bytes, translated_bytes, translated_peak;
	/* Code generation: blocks translated, full flushes a full code
	 * cache caused, translations run by a vCPU that did not make them
	 * (each counted once), and of the instructions translated, those
	 * that became inline templates, those that became handler calls,
	 * and the lazy-flags records left out as dead; direct jumps made
	 * between translations in the same guest page (near) and through
	 * the jump cache (far). */
	uint64_t jit_blocks, jit_flushes, jit_shared, jit_template_insns, jit_call_insns, jit_flags_skipped;
	uint64_t jit_links_near, jit_links_far;
	uint64_t blocks;            /* blocks decoded and kept */
	uint64_t shared_hits;       /* lookups that found a block another vCPU decoded */
	uint64_t uncached;          /* blocks decoded for one use while a flush drained */
	uint64_t evictions;         /* flushes of the whole cache for want of room */
	uint64_t as_switches;       /* address-space loads (MOV CR3, task switches) */
	uint64_t as_kept;           /* ... that kept the space's translations: they hit after the switch */
	uint64_t as_purged;         /* ... that purged them as stale */
	uint64_t tlb_full_flushes;  /* flushes of every address space */
	uint64_t pt_tracked;        /* paging-structure pages watched now */
	uint64_t pt_deferred;       /* walks that left a new paging structure untracked (past the limit) */
	uint64_t pt_restarts;       /* full flushes that restarted the tracking */
};

struct accel_ops {
	const char *name;
	/* Per-VM set-up after guest memory exists; 0 or -errno with err_set(). */
	int (*vm_init)(struct vm *vm);
	void (*vm_destroy)(struct vm *vm);
	int (*vcpu_init)(struct vcpu *vcpu);
	void (*vcpu_destroy)(struct vcpu *vcpu);
	/* Runs until a returning trap; fills *exit with it. */
	int (*vcpu_run)(struct vcpu *vcpu, struct vcpu_exit *exit);
	/* Makes vcpu_run return VCPU_EXIT_KICK soon; callable from any thread. */
	void (*vcpu_kick)(struct vcpu *vcpu);
	int (*get_regs)(struct vcpu *vcpu, struct x86_regs *regs);
	int (*set_regs)(struct vcpu *vcpu, const struct x86_regs *regs);
	int (*get_sregs)(struct vcpu *vcpu, struct x86_sregs *sregs);
	int (*set_sregs)(struct vcpu *vcpu, const struct x86_sregs *sregs);
	int (*get_fpu)(struct vcpu *vcpu, struct x86_fpu *fpu);
	int (*set_fpu)(struct vcpu *vcpu, const struct x86_fpu *fpu);
	/* n entries; returns how many were read/written or -errno. */
	int (*get_msrs)(struct vcpu *vcpu, struct x86_msr_entry *msrs, size_t n);
	int (*set_msrs)(struct vcpu *vcpu, const struct x86_msr_entry *msrs, size_t n);
	/* Guest RAM [gpa, gpa + len) was written by a device (DMA), not by a
	 * vCPU: the engine forgets what it derived from those bytes (decoded
	 * code, cached page walks).  NULL: nothing to forget (KVM). */
	void (*memory_written)(struct vm *vm, uint64_t gpa, uint64_t len);
	/* Drops the translations of the n ranges r the vCPU has cached, or
	 * every one (global ones too) when r is NULL; from its own thread.
	 * NULL: the engine keeps none (KVM, whose hardware flushes through
	 * the guest's own instructions). */
	void (*tlb_flush)(struct vcpu *vcpu, const struct vcpu_tlb_range *r, unsigned n);
	/* The code of the Hyper-V hypercall page (TLFS 3.13): an instruction
	 * that traps to the engine as VCPU_EXIT_HYPERCALL, then RET.  NULL:
	 * VMCALL; RET. */
	const uint8_t *hypercall_stub;
	unsigned hypercall_stub_len;
	/* The rate of the guest's TSC (IA32_TSC) in Hz, once vm_init has
	 * run; 0 when the engine cannot tell.  NULL: vessel's fixed rate
	 * (LAPIC_DEFAULT_TSC_HZ, the emu engine's). */
	uint64_t (*guest_tsc_hz)(struct vm *vm);
	/* Region index of vm->mem was added (or emptied by gmem_unplug())
	 * while the machine exists: the engine maps it (or unmaps it).
	 * NULL: the engine reads vm->mem as it goes (emu). */
	int (*memory_changed)(struct vm *vm, unsigned index);
	/* Fills *out (zeroed by the caller); from any thread, so counters
	 * may be a moment old.  NULL: the engine keeps no code. */
	void (*code_stats)(struct vm *vm, struct accel_code_stats *out);
};

/* Implemented by src/machine/vcpu.c: routes an IO/MMIO/MSR/HYPERCALL trap
 * to the devices and counts it by reason.  An MSR trap goes to the board's
 * hook (vm->handle_msr), which takes the LAPIC route below. */
void vcpu_dispatch_exit(struct vcpu *vcpu, struct vcpu_exit *exit);

/* The route from a CPU to its local APIC, the one both engines use
 * (docs/devices.md "The CPU-to-APIC route").  The calls below
 * (src/machine/vcpu.c) go through vm->apic_ops, the LAPIC's table that the
 * board installs (src/hw/intc/lapic.c implements it): the engines sit
 * below the devices and never call them by name.  Each takes the device
 * lock itself, so it may be called with or without it.  All return 0, or
 * -ENOENT when the vCPU has no local APIC (an engine's unit tests) or,
 * for vcpu_apic_msr, when the MSR is not the APIC's; the engine then
 * models the register itself. */
/* Frequency of the LAPIC timer's input clock: the core crystal clock the
 * emu engine reports in CPUID 0x15 ECX (25 MHz).  Linux sets its APIC
 * timer period from that leaf without calibrating, so the two must agree
 * (arch/x86/kernel/tsc.c, native_calibrate_tsc()). */
#define LAPIC_TIMER_HZ 25000000ull

struct vcpu_apic_ops {
	int (*msr)(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val);
	int (*get_cr8)(struct vcpu *vcpu, uint64_t *cr8);
	int (*set_cr8)(struct vcpu *vcpu, uint64_t cr8);
	int (*set_tsc_deadline)(struct vcpu *vcpu, uint64_t deadline, uint64_t tsc_now);
	int (*read_tsc)(struct vcpu *vcpu, uint64_t *tsc);
};

/* IA32_APIC_BASE (0x1b), IA32_TSC_DEADLINE (0x6e0) and the x2APIC
 * registers (0x800-0x8ff); -EINVAL: the access raises #GP(0).  A write of
 * IA32_TSC_DEADLINE compares with vcpu_apic_read_tsc(): an engine whose
 * TSC has an offset uses vcpu_apic_set_tsc_deadline() instead. */
int vcpu_apic_msr(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val);
/* MOV from/to CR8: TPR[7:4] (SDM vol. 3A 10.8.6.1). */
int vcpu_apic_get_cr8(struct vcpu *vcpu, uint64_t *cr8);
int vcpu_apic_set_cr8(struct vcpu *vcpu, uint64_t cr8);
/* IA32_TSC_DEADLINE written while the guest TSC read tsc_now: the timer
 * fires after (deadline - tsc_now) ticks whatever the engine's offset. */
int vcpu_apic_set_tsc_deadline(struct vcpu *vcpu, uint64_t deadline, uint64_t tsc_now);
/* The TSC the APIC's deadline mode counts: the VM clock at the TSC rate. */
int vcpu_apic_read_tsc(struct vcpu *vcpu, uint64_t *tsc);

#endif
