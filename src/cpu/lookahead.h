/* Trap lookahead (docs/compounding.md "Lookahead"): after a trap, the
 * instructions that follow are run in the emu engine, on a copy of the
 * vCPU's registers, for as long as they are cheap to emulate and keep
 * touching emulated devices, so that a run of trapping instructions (an
 * 8250 transmit loop, a status-register poll, string I/O) costs the guest
 * one exit instead of one per instruction.
 *
 * Engine-neutral: the caller gives the state at an instruction boundary
 * (as the engine's get_regs/get_sregs return it) and writes back what
 * lookahead_run() leaves in regs.  The device accesses go through the
 * vCPU's buses (vcpu_dispatch_exit), guest memory through its page tables
 * (the emu engine's MMU, walked afresh on every run: the engine that ran
 * the guest may have changed them), so the effects are those of running
 * the same instructions on the engine itself.
 *
 * Correctness rules:
 *  - only instructions that need nothing but the general registers,
 *    RFLAGS, memory and the buses run: IN/OUT, INS/OUTS (REP too), loads
 *    and stores, ALU, flag and stack instructions and near branches;
 *    anything else (a mode, segment, control-register or IF change, HLT,
 *    CPUID, RDTSC, MSRs, x87/SSE, far transfers, LOCK) stops the run
 *    before it;
 *  - an interrupt the guest could take (VCPU_EVT_INTR with EFLAGS.IF), an
 *    NMI, INIT, SIPI, a kick or a stop request stops it at the boundary
 *    where it is seen, so that the engine delivers it there, the boundary
 *    where it would have without lookahead;
 *  - a fault stops it with the state the fault leaves (RIP at the faulting
 *    instruction, a REP string instruction's registers at the iteration
 *    that faulted): the engine runs the instruction again and takes the
 *    fault itself;
 *  - single-stepping (EFLAGS.TF) or a breakpoint armed in DR7 runs
 *    nothing (the runner does not report debug traps);
 *  - a budget of instructions, of instructions without a device access,
 *    and of time bounds every run. */
#ifndef VESSEL_CPU_LOOKAHEAD_H
#define VESSEL_CPU_LOOKAHEAD_H

#include "machine/accel.h"
#include "machine/x86.h"

#include <stdint.h>

struct vcpu;
struct lookahead;

enum lookahead_stop {
	LOOKAHEAD_STOP_BUDGET,   /* max_insns or max_ns reached */
	LOOKAHEAD_STOP_IDLE,     /* max_idle instructions without a device access */
	LOOKAHEAD_STOP_INSN,     /* an instruction the rules leave to the engine */
	LOOKAHEAD_STOP_EVENT,    /* an interrupt, NMI, INIT, SIPI, kick or stop to take */
	LOOKAHEAD_STOP_FAULT,    /* an instruction faulted */
	LOOKAHEAD_STOP_FETCH,    /* the code is not in RAM */
};

struct lookahead_budget {
	unsigned max_insns;      /* instructions in one run */
	unsigned max_idle;       /* instructions in a row without a device access */
	uint64_t max_ns;         /* host time of one run */
};

/* Defaults: 4096 instructions, 64 without a device access, 100 us. */
extern const struct lookahead_budget lookahead_default_budget;

struct lookahead_result {
	unsigned insns;          /* instructions run */
	unsigned traps;          /* of them (REP iterations counted each), device accesses: exits saved */
	enum lookahead_stop stop;
	const char *why;         /* for LOOKAHEAD_STOP_INSN: the instruction's mnemonic, or "" */
};

/* A runner for vcpu (its buses, its memory, its events); NULL with
 * err_set() when out of memory. */
struct lookahead *lookahead_new(struct vcpu *vcpu);
void lookahead_free(struct lookahead *la);

/* Runs from the boundary regs/sregs describe, dr7 being the guest's DR7.
 * On return regs holds the state after the instructions run (unchanged
 * when none ran); nothing that runs changes sregs.  budget NULL: the
 * default.  Returns 0, or -EINVAL when the state cannot be loaded. */
int lookahead_run(struct lookahead *la, struct x86_regs *regs, const struct x86_sregs *sregs, uint64_t dr7,
		  const struct lookahead_budget *budget, struct lookahead_result *res);

/* "budget", "idle", ...: for traces and tests. */
const char *lookahead_stop_name(enum lookahead_stop s);

#endif
