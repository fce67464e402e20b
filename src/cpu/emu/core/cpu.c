/* accel_emu: the software x86-64 engine's run loop and state accessors
 * (docs/architecture.md "The emu engine", src/machine/accel.h). */
#include "cpu/emu/core/block.h"
#include "cpu/emu/core/core.h"
#include "cpu/emu/jit/jit.h"
/* For msr_read/msr_write: the state accessors reach MSRs the way RDMSR and
 * WRMSR do. */
#include "cpu/emu/system/sys.h"

#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *jit_next(struct emu_cpu *cpu);

static int emu_vm_init(struct vm *vm)
{
	struct emu_vm *evm = calloc(1, sizeof(*evm));
	if (!evm)
		return err_set(-ENOMEM, "emu: out of memory");
	evm->mem = &vm->mem;
	/* Hot-added RAM included: its pages need counters from the start. */
	uint64_t end = gmem_span_end(&vm->mem);
	evm->n_pages = (end + 4095) >> 12;
	evm->page_gen = calloc(evm->n_pages ? evm->n_pages : 1, sizeof(*evm->page_gen));
	evm->code_page = calloc(evm->n_pages ? evm->n_pages : 1, sizeof(*evm->code_page));
	if (!evm->page_gen || !evm->code_page) {
		unsigned long long n = evm->n_pages;
		free((void *)evm->page_gen);
		free((void *)evm->code_page);
		free(evm);
		return err_set(-ENOMEM, "emu: out of memory for %llu page counters", n);
	}
	int rc = emu_sys_vm_init(evm);
	if (rc == 0 && emu_block_cache_init(evm, vm->code_cache_bytes) < 0) {
		emu_sys_vm_destroy(evm);
		rc = err_set(-ENOMEM, "emu: out of memory for the code cache");
	}
	if (rc == 0 && vm->jit_hot) {
		/* The VM's host code: a share of --code-cache, flushed with
		 * the decoded blocks (core/block.h). */
		struct emu_jit *j = emu_jit_create(evm->blocks->size / EMU_JIT_CACHE_SHARE);
		if (!j) {
			rc = -ENOMEM;   /* emu_jit_create() said why */
			emu_block_cache_destroy(evm);
			emu_sys_vm_destroy(evm);
		} else {
			j->owner_flushes = true;
			j->next = jit_next;
			evm->blocks->jit = j;
		}
	}
	if (rc < 0) {
		free((void *)evm->page_gen);
		free((void *)evm->code_page);
		free(evm);
		return rc;
	}
	vm->accel_state = evm;
	return 0;
}

static void emu_vm_destroy(struct vm *vm)
{
	struct emu_vm *evm = vm->accel_state;
	if (!evm)
		return;
	emu_block_cache_destroy(evm);
	emu_sys_vm_destroy(evm);
	free((void *)evm->page_gen);
	free((void *)evm->code_page);
	free(evm);
	vm->accel_state = NULL;
}

/* A device wrote guest RAM (accel_ops.memory_written): the same as a
 * vCPU's write for the self-modifying-code and page-table watches, page
 * by page (docs/architecture.md "Self-modifying code"). */
static void emu_memory_written(struct vm *vm, uint64_t gpa, uint64_t len)
{
	struct emu_vm *evm = vm->accel_state;
	if (!evm || !len)
		return;
	uint64_t last = gpa + len - 1 < gpa ? UINT64_MAX >> 12 : (gpa + len - 1) >> 12;
	for (uint64_t p = gpa >> 12; p <= last && p < evm->n_pages; p++) {
		if (atomic_load_explicit(&evm->code_page[p], memory_order_relaxed))
			emu_blocks_invalidate_page(evm, p << 12);
		if (evm->pt_page && atomic_load_explicit(&evm->pt_page[p], memory_order_relaxed))
			emu_pt_page_written(evm, p);
	}
}

static int emu_vcpu_init(struct vcpu *vcpu)
{
	struct emu_core_vcpu *cv = aligned_alloc(64, (sizeof(*cv) + 63) & ~(size_t)63);
	if (!cv)
		return err_set(-ENOMEM, "emu: out of memory for vCPU %u", vcpu->id);
	memset(cv, 0, sizeof(*cv));
	if (emu_blocks_alloc(cv, vcpu->vm->accel_state, vcpu->id) < 0) {
		free(cv);
		return err_set(-ENOMEM, "emu: out of memory for the block lookups of vCPU %u", vcpu->id);
	}
	cv->jit = cv->cache->jit;
	cv->jit_hot = vcpu->vm->jit_hot;
	struct emu_cpu *cpu = &cv->cpu;
	cpu->vcpu = vcpu;
	cpu->mem = &vcpu->vm->mem;
	cpu->evm = vcpu->vm->accel_state;
	cpu->ops = &emu_sys_ops;
	emu_cpu_set_model(cpu, &vcpu->vm->cpu_model);
	cpu->exc_vector = -1;
	cpu->icount_stop = ~0ull;
	emu_cpu_reset(cpu, vcpu->id == 0);
	vcpu->accel = cv;
	return 0;
}

static void emu_vcpu_destroy(struct vcpu *vcpu)
{
	struct emu_core_vcpu *cv = vcpu->accel;
	if (!cv)
		return;
	emu_blocks_free(cv);
	free(cv);
	vcpu->accel = NULL;
}

void emu_exit_run(struct emu_cpu *cpu, enum vcpu_exit_reason reason)
{
	if (cpu->exit)
		cpu->exit->reason = reason;
	cpu->stop_block = true;
}

static void internal_error(struct emu_cpu *cpu, const char *why)
{
	struct vcpu_exit *e = cpu->exit;
	e->reason = VCPU_EXIT_INTERNAL_ERROR;
	snprintf(e->error.message, sizeof(e->error.message), "%s at %04x:%llx (mode %u)", why,
		 cpu->seg[SEG_CS].sel, (unsigned long long)cpu->rip, cpu->mode);
}

/* The trace lines of a block entry and of one instruction
 * (`vessel run --trace block,insn`, docs/cli.md). */
static void trace_block(const struct emu_cpu *cpu, unsigned n)
{
	trace_printf("block cpu%u %04x:%016llx mode %u insns %u", cpu->vcpu ? cpu->vcpu->id : 0, cpu->seg[SEG_CS].sel,
		     (unsigned long long)cpu->rip, cpu->mode, n);
}

static void trace_insn(const struct emu_cpu *cpu, const struct emu_insn *in)
{
	char text[96];
	emu_insn_format(in, cpu->rip, text, sizeof(text));
	trace_printf("insn  cpu%u %04x:%016llx %s", cpu->vcpu ? cpu->vcpu->id : 0, cpu->seg[SEG_CS].sel,
		     (unsigned long long)cpu->rip, text);
}

/* Outside 64-bit mode EIP wraps at 4 GiB, IP at 64 KiB (16-bit CS),
 * after each block. */
static inline void block_wrap_rip(struct emu_cpu *cpu)
{
	if (cpu->mode != EMU_MODE_LONG64)
		cpu->rip &= (cpu->seg[SEG_CS].attr & (1u << 10)) ? 0xffffffffull : 0xffffull;
}

/* Executes up to limit instructions of b.  Instruction handlers see
 * cpu->rip (this instruction) and cpu->next_rip (the next one, or the
 * branch target they set).  traced is a constant in each caller, so the
 * untraced copy has no trace test at all. */
static inline __attribute__((always_inline)) void run_block_body(struct emu_cpu *cpu, const struct emu_block *b,
								 unsigned limit, bool traced)
{
	const struct emu_insn *in = b->insn, *end = b->insn + (b->n < limit ? b->n : limit);
	if (traced && trace_on(TRACE_BLOCK))
		trace_block(cpu, (unsigned)(end - in));
	/* Retired instructions are counted per block, not per instruction;
	 * a fault in the middle leaves the count slightly high. */
	cpu->icount += (uint64_t)(end - in);
	for (; in < end; in++) {
		if (traced && trace_on(TRACE_INSN))
			trace_insn(cpu, in);
		cpu->next_rip = cpu->rip + in->len;
		in->fn(cpu, in);
		cpu->rip = cpu->next_rip;
		/* A handler ending the run, or a store into decoded code (which
		 * may be the rest of this block), stops the block. */
		if (__builtin_expect(cpu->stop_block, 0)) {
			cpu->icount -= (uint64_t)(end - in - 1);
			break;
		}
	}
	block_wrap_rip(cpu);
}

static __attribute__((noinline)) void run_block_traced(struct emu_cpu *cpu, const struct emu_block *b, unsigned limit)
{
	run_block_body(cpu, b, limit, true);
}

static void run_block(struct emu_cpu *cpu, const struct emu_block *b, unsigned limit)
{
	run_block_body(cpu, b, limit, false);
}

/* Whether pending events (vcpu->events) need the run loop (emu_vcpu_run)
 * before the next block.  An interrupt request while EFLAGS.IF = 0 does not: it
 * waits for the instruction that sets IF (STI and IRET end their block;
 * a POPF's is taken at the end of its block).  A request that arrives
 * while the guest runs with interrupts off -- a timer tick during an
 * interrupt handler or a spin_lock_irqsave section -- then costs nothing
 * until IF is set, instead of a block lookup per block. */
static inline bool events_stop_chain(const struct emu_cpu *cpu, uint32_t ev)
{
	return (ev & ~VCPU_EVT_INTR) || (ev && (cpu->rflags & X86_FLAG_IF));
}

/* Opens the chain gate (struct emu_cpu chain_stop) as translated code
 * is entered, unless something the loop must see is pending: then the
 * code runs its block and goes no further.  The gate is written, then
 * what closes it is read (events, the write epoch), each side with a
 * full barrier, so that a closing that raced the opening is either
 * seen here or lands after it.  An open gate stays as it is: nothing
 * closed it since it was opened. */
static inline void chain_gate_open(struct emu_core_vcpu *cv)
{
	struct emu_cpu *cpu = &cv->cpu;
	if (__atomic_load_n(&cpu->chain_stop, __ATOMIC_RELAXED) == cpu->icount_stop)
		return;
	__atomic_exchange_n(&cpu->chain_stop, cpu->icount_stop, __ATOMIC_SEQ_CST);
	if (events_stop_chain(cpu, atomic_load_explicit(&cpu->vcpu->events, memory_order_seq_cst)) ||
	    cpu->write_epoch_seen != __atomic_load_n((uint64_t *)&cpu->evm->write_epoch, __ATOMIC_SEQ_CST) ||
	    emu_blocks_stale(cv))
		__atomic_store_n(&cpu->chain_stop, 0, __ATOMIC_RELAXED);
}

/* A whole block (the chain's path): the VM's host code for it when it
 * has some (jit/jit.h, the same semantics as run_block), whichever vCPU
 * made it, translated at its jit_hot-th run, else the interpreter. */
static void run_block_whole(struct emu_core_vcpu *cv, struct emu_block *b)
{
	struct emu_cpu *cpu = &cv->cpu;
	if (cv->jit)
		cpu->jit_exit = NULL;   /* only translated code sets it: no store without */
	if (cv->jit && b->cacheable) {
		emu_jit_code fn = atomic_load_explicit(&b->jit_fn, memory_order_acquire);
		if (__builtin_expect(!fn, 0)) {
			/* Racy increments: a count lost now and then only
			 * delays the translation. */
			uint32_t runs = __atomic_load_n(&b->jit_runs, __ATOMIC_RELAXED) + 1;
			__atomic_store_n(&b->jit_runs, runs, __ATOMIC_RELAXED);
			if (runs < cv->jit_hot || !(fn = emu_block_translate(cv, b))) {
				if (runs >= cv->jit_hot)
					__atomic_store_n(&b->jit_runs, 0, __ATOMIC_RELAXED);
				run_block(cpu, b, EMU_BLOCK_MAX_INSNS);
				return;
			}
		} else if (__builtin_expect(b->jit_maker != cv->id, 0) &&
			   !atomic_load_explicit(&b->jit_shared, memory_order_relaxed) &&
			   !atomic_exchange_explicit(&b->jit_shared, 1, memory_order_relaxed)) {
			__atomic_store_n(&cv->jit_shared, cv->jit_shared + 1, __ATOMIC_RELAXED);   /* read by ctl stats */
		}
		cpu->chain_key = emu_chain_key(cpu);
		chain_gate_open(cv);
		emu_jit_enter(cpu);
		fn(cpu);
		block_wrap_rip(cpu);
		return;
	}
	run_block(cpu, b, EMU_BLOCK_MAX_INSNS);
}

/* A translated block left through exit x, which can be patched, and the
 * next block, in guest page `page` (generation gen) with translation
 * `to`, follows: from now on the exit jumps straight to it, behind the
 * same checks the loop made, and when it lies elsewhere than x's page
 * behind the vCPU's jump cache entry for it (jit/jit.h emu_jit_chain).
 * The caller knows both are 64-bit code.  The exit's record is read first without the lock, as a hint:
 * most exits come here with their link made already. */
static void jit_link_to(struct emu_core_vcpu *cv, struct emu_jit_exit *x, uint64_t page, uint32_t gen, emu_jit_code to)
{
	struct emu_cpu *cpu = &cv->cpu;
	if (emu_blocks_stale(cv))
		return;
	/* Near: the successor in the block's page, reached as jit/jit.h
	 * says; far otherwise, through the jump cache's entry, which the
	 * caller has just filled. */
	bool far = page != x->page || (!x->dynamic && !x->in_page);
	uint32_t patches = __atomic_load_n(&x->patches, __ATOMIC_RELAXED);
	if (patches >= JIT_EXIT_PATCHES ||
	    (patches && __atomic_load_n(&x->to, __ATOMIC_RELAXED) == (uintptr_t)to &&
	     __atomic_load_n(&x->gen, __ATOMIC_RELAXED) == gen &&
	     (!(x->dynamic || far) || __atomic_load_n(&x->lin, __ATOMIC_RELAXED) == cpu->rip)))
		return;
	struct emu_block_cache *c = cv->cache;
	pthread_mutex_lock(&c->lock);
	/* b, from and their code belong to the current epoch. */
	if (!c->draining && !emu_blocks_stale(cv))
		emu_jit_chain(c->jit, x, cpu, &cpu->evm->page_gen[page], gen, to, far);
	pthread_mutex_unlock(&c->lock);
}

/* The chain loop found b after exit x. */
static void jit_link(struct emu_core_vcpu *cv, struct emu_jit_exit *x, struct emu_block *b)
{
	const struct emu_block *from = x->from;
	if (!b->cacheable || b->mode != from->mode || b->mode != EMU_MODE_LONG64)
		return;
	emu_jit_code to = atomic_load_explicit(&b->jit_fn, memory_order_acquire);
	if (to)
		jit_link_to(cv, x, b->page, b->gen, to);
}

/* One instruction, where the block path would be wrong:
 *  - after STI, MOV SS or POP SS, no interrupt before it completes (SDM
 *    vol. 3A 6.8.3 and 6.9);
 *  - single-stepping: an instruction that began with EFLAGS.TF set is
 *    followed by a #DB trap with DR6.BS (vol. 3B 17.3.1.4).  So the
 *    instruction that sets TF (POPF, IRET) is not trapped, one that
 *    clears it is.  No trap after an instruction that delivered an event:
 *    INT n, INT3, INTO and INT1 enter their handler with TF clear, and the
 *    handler's IRET restores it.  No trap after MOV SS/POP SS either: it
 *    comes after the next instruction (6.8.3).  A faulting instruction
 *    never gets here; its fault is delivered instead.
 *  - data and I/O breakpoints: the instruction's accesses that meet one
 *    leave DR6.Bn in cpu->dbg_pending, delivered as a #DB trap after it
 *    (with BS when single-stepping; 17.3.1.2), under the same exceptions
 *    as the single-step trap (a faulting instruction's hits are dropped);
 *  - EFLAGS.RF, which suppresses instruction breakpoints for one
 *    instruction: cleared as it starts (vol. 3B 17.3.1.1), unless the
 *    instruction loads it again (IRET);
 *  - instruction breakpoints (DR7 enables), checked by the caller.
 * A shadow lasts one instruction: cleared before it runs, so an
 * instruction that opens one again (MOV SS twice) extends it, which the
 * SDM allows ("only the first is guaranteed to inhibit"). */
static void run_one(struct emu_cpu *cpu, const struct emu_block *b)
{
	bool step = cpu->rflags & X86_FLAG_TF;
	cpu->rflags &= ~(uint64_t)X86_FLAG_RF;
	cpu->intr_shadow = false;
	cpu->ss_shadow = false;
	cpu->event_delivered = false;
	if (__builtin_expect(trace_mask != 0, 0))
		run_block_traced(cpu, b, 1);
	else
		run_block(cpu, b, 1);
	/* After an event delivery, what it left (a task switch's BT) waits
	 * for the boundary before the handler's first instruction. */
	if (cpu->ss_shadow || cpu->event_delivered)
		return;
	if (step)
		cpu->dbg_pending |= 1u << 14;   /* BS */
	if (!cpu->dbg_pending)
		return;
	/* HLT: the trap is an event at the boundary after it, which a halted
	 * processor leaves the halt state to take. */
	if (cpu->halted && cpu->exit && cpu->exit->reason == VCPU_EXIT_HLT)
		cpu->exit->reason = VCPU_EXIT_NONE;
	emu_debug_trap(cpu);
}

/* What needs the one-instruction path besides an interrupt shadow, in
 * one test: TF or RF (non-arithmetic bits, so cpu->rflags holds them),
 * DR7 L0-G3, a pending debug trap. */
static inline uint64_t needs_one_insn_unshadowed(const struct emu_cpu *cpu)
{
	return (cpu->rflags & (X86_FLAG_TF | X86_FLAG_RF)) | (cpu->dr[7] & 0xff) | cpu->dbg_pending;
}

static inline uint64_t needs_one_insn(const struct emu_cpu *cpu)
{
	return needs_one_insn_unshadowed(cpu) | cpu->intr_shadow;
}

/* jit_next() past its common case, out of line so that the common case
 * saves no registers: the jump cache's entry j for (lin, key) is filled
 * from the block's links unless it held the translation (hit), and an
 * exit that may be patched is linked to the successor. */
static __attribute__((noinline)) void *jit_next_slow(struct emu_core_vcpu *cv, struct emu_jit_exit *x,
						    struct emu_jump_entry *j, uint64_t lin, uint64_t key, bool hit)
{
	struct emu_cpu *cpu = &cv->cpu;
	if (!hit) {
		struct emu_block *b = emu_block_known_next(cpu, x->from, lin, key);
		emu_jit_code fn = b && b->cacheable ? atomic_load_explicit(&b->jit_fn, memory_order_acquire) : NULL;
		if (!fn)
			return NULL;   /* counted and translated by the loop */
		if (__builtin_expect(b->jit_maker != cv->id, 0) &&
		    !atomic_load_explicit(&b->jit_shared, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&b->jit_shared, 1, memory_order_relaxed))
			__atomic_store_n(&cv->jit_shared, cv->jit_shared + 1, __ATOMIC_RELAXED);   /* read by ctl stats */
		*j = (struct emu_jump_entry){ .lin = lin, .key = key, .to = b, .page = b->page, .gen = b->gen,
					      .body = (uint8_t *)(void *)fn + cv->cache->jit->body_off };
	}
	if (x->jmp)
		jit_link_to(cv, x, j->page, j->gen,
			    (emu_jit_code)(void *)((uint8_t *)j->body - cv->cache->jit->body_off));
	cpu->jit_exit = NULL;
	return j->body;
}

/* The chain loop's step between two blocks (emu_vcpu_run below), made
 * by translated code at a return exit of a 64-bit block that may chain
 * (jit/jit.h struct emu_jit next): the body of the next block's
 * translation, or NULL to return to the loop, which then makes the step
 * itself.  Only what needs a few loads: the checks a direct jump makes
 * pass (jit/branch.c emit_chain_checks, which says why the others
 * cannot fire in such a block: no stop, debug trap, shadow or mode
 * change),
 * and the successor's translation is in the vCPU's jump cache, or known
 * from the block's links and then put there; a lookup, a decode or a
 * translation stays the loop's.  The jump cache's entry holds all it
 * needs, so that the usual step reads neither block's header. */
static void *jit_next(struct emu_cpu *cpu)
{
	struct emu_core_vcpu *cv = emu_core_of(cpu);
	struct emu_jit_exit *x = cpu->jit_exit;
	if (cpu->icount >= __atomic_load_n(&cpu->chain_stop, __ATOMIC_RELAXED))
		return NULL;
	uint64_t lin = cpu->rip, key = cpu->chain_key;
	struct emu_jump_entry *j = emu_jump_slot(cv, lin);
	bool hit = j->body && emu_jump_hit(cpu, j, lin, key);
	if (__builtin_expect(!hit, 0) || x->jmp)
		return jit_next_slow(cv, x, j, lin, key, hit);
	/* The successor's exits set their own record; one that stops the
	 * block sets none, and the loop must not take this one for it. */
	cpu->jit_exit = NULL;
	return j->body;
}

static int emu_vcpu_run(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	struct emu_core_vcpu *cv = vcpu->accel;
	struct emu_cpu *cpu = &cv->cpu;
	struct vm *vm = vcpu->vm;
	jmp_buf env;

	exit->reason = VCPU_EXIT_NONE;
	cpu->exit = exit;
	cpu->fault_env = &env;
	cpu->stop_block = false;
	emu_blocks_enter(cv);
	if (setjmp(env)) {
		/* emu_raise() landed here: the faulting instruction's RIP is still
		 * in cpu->rip; deliver (which may escalate to #DF or shutdown). */
		cpu->stop_block = false;
		cpu->icount++;
		/* A faulting instruction reports no data or I/O breakpoint. */
		cpu->dbg_pending &= ~0xfu;
		if (cpu->exc_vector >= 0)
			emu_deliver_pending_exception(cpu);
		cpu->exc_vector = -1;
	}
	for (;;) {
		if (exit->reason != VCPU_EXIT_NONE) {
			cpu->fault_env = NULL;
			emu_blocks_leave(cv);
			return 0;
		}
		/* No block pointer is held here: the place to follow a flush
		 * of the shared cache. */
		emu_tlb_sync_epoch(cpu);
		emu_blocks_sync(cv);
		if (__builtin_expect(cpu->icount >= cpu->icount_stop, 0)) {
			exit->reason = VCPU_EXIT_KICK;
			continue;
		}
		cpu->stop_block = false;
		uint32_t ev = atomic_load_explicit(&vcpu->events, memory_order_relaxed);
		if (__builtin_expect(ev != 0, 0)) {
			/* Another vCPU's flush hypercall waits for this one. */
			if (ev & VCPU_EVT_TLB_FLUSH)
				vcpu_tlb_flush_service(vcpu);
			if (ev & VCPU_EVT_KICK) {
				atomic_fetch_and_explicit(&vcpu->events, ~VCPU_EVT_KICK, memory_order_acq_rel);
				exit->reason = VCPU_EXIT_KICK;
				continue;
			}
			if (ev & VCPU_EVT_NMI) {
				atomic_fetch_and_explicit(&vcpu->events, ~VCPU_EVT_NMI, memory_order_acq_rel);
				cpu->nmi_pending = true;
			}
		}
		/* NMI: before INTR (SDM vol. 3A 6.9, table 6-2), after a debug
		 * trap of the previous instruction; held off by NMI blocking
		 * until an IRET (6.7.1) and by the MOV SS/STI shadow (6.8.3). */
		if (__builtin_expect(cpu->nmi_pending, 0) && !cpu->nmi_blocked && !cpu->intr_shadow &&
		    !cpu->dbg_pending) {
			cpu->nmi_pending = false;
			cpu->halted = false;
			cpu->icount++;
			emu_deliver_interrupt(cpu, X86_EXC_NMI, true);
			continue;
		}
		if (__builtin_expect(ev != 0, 0)) {
			if ((ev & VCPU_EVT_INTR) && (cpu->rflags & X86_FLAG_IF) && !cpu->intr_shadow && vm->intr_ack) {
				atomic_fetch_and_explicit(&vcpu->events, ~VCPU_EVT_INTR, memory_order_acq_rel);
				int vector = vm->intr_ack(vcpu);
				if (vector >= 0) {
					/* More may be pending: look again at the next boundary. */
					atomic_fetch_or_explicit(&vcpu->events, VCPU_EVT_INTR, memory_order_relaxed);
					cpu->halted = false;
					cpu->icount++;
					if (trace_on(TRACE_IRQ))
						trace_printf("irq   cpu%u vector %#04x", vcpu->id, vector);
					emu_deliver_interrupt(cpu, (unsigned)vector, true);
					continue;
				}
			}
		}
		if (cpu->halted) {
			/* Still waiting for an interrupt: the vCPU thread sleeps. */
			exit->reason = VCPU_EXIT_HLT;
			continue;
		}
		uint64_t one = needs_one_insn(cpu);
		/* A trap left by an event or by an instruction run outside
		 * run_one (a task switch into a TSS with T = 1) comes first,
		 * unless MOV SS holds it for one instruction; then instruction
		 * breakpoints, before the fetch: code breakpoints take priority
		 * over fetch faults (SDM vol. 3A 6.9, table 6-2). */
		if (__builtin_expect(one != 0, 0)) {
			bool trap = cpu->dbg_pending && !cpu->ss_shadow;
			if (trap)
				emu_debug_trap(cpu);
			if (trap || ((cpu->dr[7] & 0xff) && !(cpu->rflags & X86_FLAG_RF) &&
				     emu_check_insn_breakpoints(cpu))) {
				cpu->icount++;   /* a delivery, for the run budget */
				continue;
			}
		}
		const char *why = NULL;
		struct emu_block *b = emu_block_lookup(cpu, &why);
		if (!b) {
			internal_error(cpu, why);
			continue;
		}
		if (__builtin_expect(one != 0, 0)) {
			run_one(cpu, b);
			continue;
		}
		/* Run b and the blocks chained after it until something needs
		 * the loop above: a trap (HLT and shutdown included), an event,
		 * the one-instruction path or the run budget. */
		/* Tracing (docs/cli.md) costs this one branch per chain when
		 * off; when on, every block comes through the lookup above. */
		if (__builtin_expect(trace_mask != 0, 0)) {
			run_block_traced(cpu, b, EMU_BLOCK_MAX_INSNS);
			continue;
		}
		for (;;) {
			run_block_whole(cv, b);
			/* A flush of the shared cache (blocks and host code)
			 * waits for this vCPU to take the loop's top; it closes
			 * the chain gate after it moves the cache's epoch, which
			 * the gate's opening looks at again (chain_gate_open). */
			emu_tlb_sync_epoch(cpu);
			if (cpu->stop_block || needs_one_insn_unshadowed(cpu) || cpu->icount >= cpu->icount_stop ||
			    events_stop_chain(cpu, atomic_load_explicit(&vcpu->events, memory_order_relaxed)) ||
			    emu_blocks_stale(cv))
				break;
			/* An interrupt shadow (STI, MOV SS, POP SS) holds off
			 * events, which only the loop above takes: with none
			 * pending, the next block runs whole and the shadow has
			 * ended with its first instruction, as run_one() would
			 * have it.  An event arriving meanwhile waits for the
			 * block's end like any other (Linux's syscall entry and
			 * spin_unlock_irq run an STI each; the one-instruction
			 * path cost two block lookups apiece). */
			cpu->intr_shadow = false;
			cpu->ss_shadow = false;
			/* Translated code may have run blocks after b (direct
			 * jumps): its exit says which one ran last. */
			struct emu_jit_exit *x = cpu->jit_exit;
			b = emu_block_next(cpu, x ? x->from : b);
			if (!b)
				break;
			if (x && x->jmp)
				jit_link(cv, x, b);
		}
	}
}

static void emu_vcpu_tlb_flush(struct vcpu *vcpu, const struct vcpu_tlb_range *r, unsigned n)
{
	if (r)
		mmu_flush_ranges(vcpu->accel, r, n);
	else
		emu_tlb_flush(vcpu->accel, true);
}

static void emu_vcpu_kick(struct vcpu *vcpu)
{
	/* vcpu->events is polled at every block boundary the loop makes;
	 * translated code's direct jumps see the gate. */
	struct emu_cpu *cpu = vcpu->accel;
	if (cpu)
		__atomic_store_n(&cpu->chain_stop, 0, __ATOMIC_SEQ_CST);
}

static int emu_get_regs(struct vcpu *vcpu, struct x86_regs *regs)
{
	struct emu_cpu *cpu = vcpu->accel;
	memcpy(regs->gpr, cpu->gpr, sizeof(regs->gpr));
	regs->rip = cpu->rip;
	regs->rflags = emu_get_rflags(cpu);
	return 0;
}

static int emu_set_regs(struct vcpu *vcpu, const struct x86_regs *regs)
{
	struct emu_cpu *cpu = vcpu->accel;
	memcpy(cpu->gpr, regs->gpr, sizeof(cpu->gpr));
	cpu->rip = regs->rip;
	emu_set_rflags(cpu, regs->rflags);
	/* The monitor placing the vCPU at an instruction (INIT/SIPI, a
	 * restore) also ends a HLT it was in, as KVM's MP state does. */
	cpu->halted = false;
	emu_sys_sync(cpu);
	return 0;
}

static void seg_to_x86(const struct emu_seg *s, struct x86_segment *o)
{
	o->base = s->base;
	o->limit = s->limit;
	o->selector = s->sel;
	o->type = s->attr & 15;
	o->s = (s->attr >> 4) & 1;
	o->dpl = (s->attr >> 5) & 3;
	o->present = (s->attr >> 7) & 1;
	o->avl = (s->attr >> 8) & 1;
	o->l = (s->attr >> 9) & 1;
	o->db = (s->attr >> 10) & 1;
	o->g = (s->attr >> 11) & 1;
	o->unusable = !o->present;
}

static void seg_from_x86(struct emu_seg *s, const struct x86_segment *o)
{
	s->base = o->base;
	s->limit = o->limit;
	s->sel = o->selector;
	s->attr = (uint16_t)((o->type & 15) | (o->s & 1) << 4 | (o->dpl & 3) << 5 | (o->present & 1) << 7 |
			     (o->avl & 1) << 8 | (o->l & 1) << 9 | (o->db & 1) << 10 | (o->g & 1) << 11);
	if (o->unusable)
		s->attr &= (uint16_t)~0x80u;
}

static int emu_get_sregs(struct vcpu *vcpu, struct x86_sregs *sr)
{
	struct emu_cpu *cpu = vcpu->accel;
	memset(sr, 0, sizeof(*sr));
	for (unsigned i = 0; i < SEG_COUNT; i++)
		seg_to_x86(&cpu->seg[i], &sr->seg[i]);
	seg_to_x86(&cpu->tr, &sr->tr);
	seg_to_x86(&cpu->ldtr, &sr->ldt);
	sr->gdt = cpu->gdtr;
	sr->idt = cpu->idtr;
	sr->cr0 = cpu->cr0;
	sr->cr2 = cpu->cr2;
	sr->cr3 = cpu->cr3;
	sr->cr4 = cpu->cr4;
	sr->efer = cpu->efer;
	sr->cr8 = emu_hook_get_tpr(cpu) >> 4;
	sr->apic_base = cpu->apic_base;
	return 0;
}

static int emu_set_sregs(struct vcpu *vcpu, const struct x86_sregs *sr)
{
	struct emu_cpu *cpu = vcpu->accel;
	for (unsigned i = 0; i < SEG_COUNT; i++)
		seg_from_x86(&cpu->seg[i], &sr->seg[i]);
	seg_from_x86(&cpu->tr, &sr->tr);
	seg_from_x86(&cpu->ldtr, &sr->ldt);
	cpu->gdtr = sr->gdt;
	cpu->idtr = sr->idt;
	cpu->cr0 = sr->cr0;
	cpu->cr2 = sr->cr2;
	cpu->cr3 = sr->cr3;
	cpu->cr4 = sr->cr4;
	cpu->efer = sr->efer;
	if (sr->apic_base)
		cpu->apic_base = sr->apic_base;
	if (!(cpu->cr0 & X86_CR0_PE))
		cpu->cpl = 0;
	/* CPL from SS.DPL, the mode, the address space; cached blocks of the
	 * old mode simply miss (the mode is part of their key). */
	emu_sys_sync(cpu);
	return 0;
}

/* The FPU module owns the image: it fills MXCSR_MASK and validates MXCSR
 * and XCR0 on the way in, so a bad snapshot cannot reach the host's
 * LDMXCSR. */
static int emu_get_fpu(struct vcpu *vcpu, struct x86_fpu *fpu)
{
	emu_fpu_get(vcpu->accel, fpu);
	return 0;
}

static int emu_set_fpu(struct vcpu *vcpu, const struct x86_fpu *fpu)
{
	return emu_fpu_set(vcpu->accel, fpu);
}

/* MSR accessors: as RDMSR/WRMSR from the monitor's side; an MSR no one
 * models ends the list (the return value says how many were done). */
static int emu_get_msrs(struct vcpu *vcpu, struct x86_msr_entry *msrs, size_t n)
{
	struct emu_cpu *cpu = vcpu->accel;
	struct vcpu_exit scratch = { 0 }, *saved = cpu->exit;
	size_t i;
	cpu->exit = &scratch;
	for (i = 0; i < n; i++)
		if (msr_read(cpu, msrs[i].index, &msrs[i].value) < 0)
			break;
	cpu->exit = saved;
	return (int)i;
}

static int emu_set_msrs(struct vcpu *vcpu, const struct x86_msr_entry *msrs, size_t n)
{
	struct emu_cpu *cpu = vcpu->accel;
	struct vcpu_exit scratch = { 0 }, *saved = cpu->exit;
	size_t i;
	cpu->exit = &scratch;
	for (i = 0; i < n; i++)
		if (msr_write(cpu, msrs[i].index, msrs[i].value) < 0)
			break;
	cpu->exit = saved;
	return (int)i;
}

static uint64_t peek(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static void emu_code_stats(struct vm *vm, struct accel_code_stats *out)
{
	struct emu_vm *evm = vm->accel_state;
	if (!evm || !evm->blocks)
		return;
	struct emu_block_cache *c = evm->blocks;
	pthread_mutex_lock(&c->lock);
	out->cache_bytes = c->size;
	out->decoded_bytes = c->used;
	out->decoded_peak = c->high_water;
	out->blocks = c->blocks;
	out->uncached = c->uncached;
	out->evictions = c->flushes;
	if (c->jit) {
		out->jit_cache_bytes = c->jit->size;
		out->translated_bytes = __atomic_load_n(&c->jit->used, __ATOMIC_RELAXED);
		out->translated_peak = __atomic_load_n(&c->jit->peak, __ATOMIC_RELAXED);
		out->jit_blocks = peek(&c->jit->blocks);
		out->jit_flushes = peek(&c->jit->flushes);
		out->jit_template_insns = peek(&c->jit->insns_template);
		out->jit_call_insns = peek(&c->jit->insns_call);
		out->jit_flags_skipped = peek(&c->jit->flags_skipped);
		out->jit_links_near = peek(&c->jit->links_near);
		out->jit_links_far = peek(&c->jit->links_far);
	}
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct emu_core_vcpu *cv = vm->vcpus[i] ? vm->vcpus[i]->accel : NULL;
		if (!cv)
			continue;
		out->shared_hits += peek(&cv->shared_hits);
		out->as_switches += peek(&cv->cpu.as_switches);
		out->as_kept += peek(&cv->cpu.as_kept);
		out->as_purged += peek(&cv->cpu.as_purged);
		out->tlb_full_flushes += peek(&cv->cpu.tlb_full_flushes);
		out->jit_shared += peek(&cv->jit_shared);
	}
	out->pt_tracked = atomic_load_explicit(&evm->pt_tracked, memory_order_relaxed);
	out->pt_deferred = atomic_load_explicit(&evm->pt_deferred, memory_order_relaxed);
	out->pt_restarts = atomic_load_explicit(&evm->pt_restarts, memory_order_relaxed);
}

const struct accel_ops accel_emu = {
	.name = "emu",
	.vm_init = emu_vm_init,
	.vm_destroy = emu_vm_destroy,
	.vcpu_init = emu_vcpu_init,
	.vcpu_destroy = emu_vcpu_destroy,
	.vcpu_run = emu_vcpu_run,
	.vcpu_kick = emu_vcpu_kick,
	.tlb_flush = emu_vcpu_tlb_flush,
	.get_regs = emu_get_regs,
	.set_regs = emu_set_regs,
	.get_sregs = emu_get_sregs,
	.set_sregs = emu_set_sregs,
	.get_fpu = emu_get_fpu,
	.set_fpu = emu_set_fpu,
	.get_msrs = emu_get_msrs,
	.set_msrs = emu_set_msrs,
	.memory_written = emu_memory_written,
	.code_stats = emu_code_stats,
};
