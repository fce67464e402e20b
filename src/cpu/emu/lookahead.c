/* The trap lookahead runner (src/cpu/lookahead.h, docs/compounding.md
 * "Lookahead"): the emu engine's decoder and instruction handlers, one
 * instruction at a time, on a CPU of its own over the vCPU's memory and
 * buses.
 *
 * The runner keeps no decoded blocks and no translations from one run to
 * the next: the engine that runs the guest between two runs (KVM) writes
 * guest memory and page tables without telling it.  Each instruction is
 * fetched through a fresh walk of the guest's page tables and decoded
 * before it runs. */
#include "cpu/lookahead.h"

#include "cpu/emu/emu.h"
#include "cpu/engines.h"
#include "machine/machine.h"
#include "util/error.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const struct lookahead_budget lookahead_default_budget = {
	.max_insns = 4096,
	.max_idle = 64,
	.max_ns = 100000,
};

struct lookahead {
	struct vcpu *vcpu;
	struct emu_vm evm;
	struct emu_cpu *cpu;
	/* The emu engine's state accessors take a struct vcpu whose accel is
	 * the emu CPU: this one, never run, serves them. */
	struct vcpu acc;
};

struct lookahead *lookahead_new(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct lookahead *la = calloc(1, sizeof(*la));
	if (!la) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	la->vcpu = vcpu;
	la->evm.mem = &vm->mem;
	/* Hot-added RAM included: its pages need counters from the start. */
	uint64_t end = gmem_span_end(&vm->mem);
	la->evm.n_pages = (end + 4095) >> 12;
	la->evm.page_gen = calloc(la->evm.n_pages ? la->evm.n_pages : 1, sizeof(*la->evm.page_gen));
	la->evm.code_page = calloc(la->evm.n_pages ? la->evm.n_pages : 1, sizeof(*la->evm.code_page));
	la->cpu = aligned_alloc(64, (sizeof(*la->cpu) + 63) & ~(size_t)63);
	if (!la->evm.page_gen || !la->evm.code_page || !la->cpu || emu_sys_vm_init(&la->evm) < 0) {
		free((void *)la->evm.page_gen);
		free((void *)la->evm.code_page);
		free(la->cpu);
		free(la);
		err_set(-ENOMEM, "out of memory for the lookahead runner");
		return NULL;
	}
	struct emu_cpu *cpu = la->cpu;
	memset(cpu, 0, sizeof(*cpu));
	cpu->ops = &emu_sys_ops;
	cpu->vcpu = vcpu;
	cpu->mem = &vm->mem;
	cpu->evm = &la->evm;
	emu_cpu_set_model(cpu, &vm->cpu_model);
	cpu->exc_vector = -1;
	cpu->icount_stop = ~0ull;
	emu_cpu_reset(cpu, vcpu->id == 0);
	la->acc.vm = vm;
	la->acc.id = vcpu->id;
	la->acc.accel = cpu;
	return la;
}

void lookahead_free(struct lookahead *la)
{
	if (!la)
		return;
	emu_sys_vm_destroy(&la->evm);
	free((void *)la->evm.page_gen);
	free((void *)la->evm.code_page);
	free(la->cpu);
	free(la);
}

const char *lookahead_stop_name(enum lookahead_stop s)
{
	static const char *const names[] = { "budget", "idle", "insn", "event", "fault", "fetch" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* The instructions the runner takes: those that need nothing but the
 * general registers, RFLAGS, memory and the buses, none of which changes
 * EFLAGS.IF or TF, a segment, a control register or the mode, and none
 * gated by a CPUID flag an x86-64 processor may lack.  A LOCK prefix, and
 * XCHG with memory (locked by itself), are left to the engine. */
static bool insn_allowed(const struct emu_insn *in)
{
	unsigned op = in->opcode, reg = (in->modrm >> 3) & 7;
	if (in->lock)
		return false;
	if (in->opmap == EMU_MAP_1B) {
		if (op < 0x40)   /* ALU r/m, reg, imm; not the segment pushes/pops, DAA..AAS */
			return (op & 7) < 6;
		switch (op) {
		case 0x40 ... 0x5f:   /* INC/DEC (outside 64-bit mode), PUSH/POP reg */
		case 0x68: case 0x69: case 0x6a: case 0x6b:   /* PUSH imm, IMUL */
		case 0x6c ... 0x6f:   /* INS, OUTS */
		case 0x70 ... 0x7f:   /* Jcc */
		case 0x80 ... 0x85:   /* group 1, TEST */
		case 0x88 ... 0x8c:   /* MOV, MOV r/m from Sreg */
		case 0x8d:            /* LEA */
		case 0x90 ... 0x99:   /* NOP/PAUSE, XCHG with rAX, CBW, CWD */
		case 0x9c:            /* PUSHF */
		case 0x9e: case 0x9f: /* SAHF, LAHF */
		case 0xa0 ... 0xaf:   /* MOV moffs, string instructions, TEST */
		case 0xb0 ... 0xbf:   /* MOV imm */
		case 0xc0: case 0xc1: case 0xd0 ... 0xd3:   /* shifts and rotates */
		case 0xc2: case 0xc3: /* RET near */
		case 0xc9:            /* LEAVE */
		case 0xe0 ... 0xe3:   /* LOOPcc, JrCXZ */
		case 0xe4 ... 0xe7: case 0xec ... 0xef:   /* IN, OUT */
		case 0xe8: case 0xe9: case 0xeb:   /* CALL, JMP near */
		case 0xf5: case 0xf8: case 0xf9: case 0xfc: case 0xfd:   /* CMC, CLC, STC, CLD, STD */
		case 0xf6: case 0xf7: /* TEST, NOT, NEG, MUL, IMUL, DIV, IDIV */
			return true;
		case 0x86: case 0x87: /* XCHG: with memory it is locked */
			return in->mod == 3;
		case 0x8f:            /* POP r/m */
			return reg == 0;
		case 0xc6: case 0xc7: /* MOV imm (not XABORT/XBEGIN) */
			return reg == 0;
		case 0xfe:            /* INC, DEC */
			return reg <= 1;
		case 0xff:            /* INC, DEC, CALL near, JMP near, PUSH (not far) */
			return reg <= 2 || reg == 4 || reg == 6;
		default:
			return false;
		}
	}
	if (in->opmap == EMU_MAP_0F && in->mprefix == EMU_MP_NONE) {
		switch (op) {
		case 0x1f:            /* NOP r/m */
		case 0x40 ... 0x4f:   /* CMOVcc */
		case 0x80 ... 0x8f:   /* Jcc near */
		case 0x90 ... 0x9f:   /* SETcc */
		case 0xa3: case 0xab: case 0xb3: case 0xbb: case 0xba:   /* BT, BTS, BTR, BTC */
		case 0xaf:            /* IMUL */
		case 0xb6: case 0xb7: case 0xbe: case 0xbf:   /* MOVZX, MOVSX */
		case 0xbc: case 0xbd: /* BSF, BSR */
		case 0xc8 ... 0xcf:   /* BSWAP */
			return true;
		default:
			return false;
		}
	}
	/* 66-prefixed forms of the same general-purpose 0F opcodes. */
	if (in->opmap == EMU_MAP_0F && in->mprefix == EMU_MP_66) {
		switch (op) {
		case 0x1f: case 0x40 ... 0x4f: case 0x80 ... 0x8f: case 0x90 ... 0x9f:
		case 0xa3: case 0xab: case 0xb3: case 0xbb: case 0xba: case 0xaf:
		case 0xb6: case 0xb7: case 0xbe: case 0xbf: case 0xbc: case 0xbd:
			return true;
		default:
			return false;
		}
	}
	return false;
}

/* Fetches the instruction at cpu->rip into buf (up to 15 bytes; fewer at
 * the end of RAM).  Returns how many bytes, 0 when the code is not in
 * RAM; a fetch fault longjmps. */
static unsigned fetch(struct emu_cpu *cpu, uint8_t *buf)
{
	uint64_t lin = emu_fetch_linear(cpu, cpu->rip);
	uint64_t gpa = emu_translate_fetch(cpu, lin);
	unsigned first = 4096 - (unsigned)(gpa & 4095);
	if (first > 15)
		first = 15;
	const uint8_t *p = gmem_ptr(cpu->mem, gpa, first);
	if (!p)
		return 0;
	memcpy(buf, p, first);
	if (first == 15)
		return 15;
	/* The instruction may go on into the next page, which may fault or
	 * be absent; only if the decoder needs its bytes does that matter. */
	uint64_t lin2 = (lin + first) & (cpu->mode == EMU_MODE_LONG64 ? ~0ull : 0xffffffffull);
	struct emu_insn probe;
	if (emu_decode(cpu, buf, first, &probe) != -EAGAIN)
		return first;
	uint64_t gpa2 = emu_translate_fetch(cpu, lin2);
	const uint8_t *p2 = gmem_ptr(cpu->mem, gpa2, 15 - first);
	if (!p2)
		return 0;
	memcpy(buf + first, p2, 15 - first);
	return 15;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t count_of(const struct vcpu *vcpu, enum vcpu_exit_reason r)
{
	return atomic_load_explicit(&vcpu->exit_counts[r], memory_order_relaxed);
}

static uint64_t device_traps(const struct vcpu *vcpu)
{
	return count_of(vcpu, VCPU_EXIT_IO) + count_of(vcpu, VCPU_EXIT_MMIO);
}

/* Whether something waits to be delivered at this boundary. */
static bool event_waits(const struct emu_cpu *cpu, const struct vcpu *vcpu)
{
	uint32_t ev = atomic_load_explicit(&vcpu->events, memory_order_acquire);
	if (ev & (VCPU_EVT_NMI | VCPU_EVT_INIT | VCPU_EVT_SIPI | VCPU_EVT_KICK))
		return true;
	if ((ev & VCPU_EVT_INTR) && (cpu->rflags & X86_FLAG_IF))
		return true;
	return atomic_load_explicit(&vcpu->vm->stop_reason, memory_order_relaxed) != VM_STOP_NONE;
}

/* The instruction loop of lookahead_run(), with the state loaded: its
 * own function so that nothing the fault path reads lives in a register
 * across the setjmp. */
static void run_steps(struct lookahead *la, const struct lookahead_budget *budget, struct lookahead_result *res)
{
	struct emu_cpu *cpu = la->cpu;
	struct vcpu *vcpu = la->vcpu;
	/* volatile: written after the setjmp (the fault path reads neither). */
	volatile uint64_t start = budget->max_ns ? now_ns() : 0;
	volatile unsigned idle = 0;
	jmp_buf env;
	res->insns = 0;
	res->stop = LOOKAHEAD_STOP_BUDGET;
	cpu->fault_env = &env;
	if (setjmp(env)) {
		/* A fault: RIP is at the faulting instruction, and whatever it
		 * committed before faulting (a REP string's finished
		 * iterations) stays, as the architecture leaves it. */
		cpu->exc_vector = -1;
		res->stop = LOOKAHEAD_STOP_FAULT;
		cpu->fault_env = NULL;
		return;
	}
	for (;;) {
		if (res->insns >= budget->max_insns)
			break;
		if (idle >= budget->max_idle) {
			res->stop = LOOKAHEAD_STOP_IDLE;
			break;
		}
		if (budget->max_ns && (res->insns & 63) == 63 && now_ns() - start >= budget->max_ns)
			break;
		if (event_waits(cpu, vcpu)) {
			res->stop = LOOKAHEAD_STOP_EVENT;
			break;
		}
		uint8_t bytes[15];
		unsigned n = fetch(cpu, bytes);
		if (!n) {
			res->stop = LOOKAHEAD_STOP_FETCH;
			break;
		}
		struct emu_insn in;
		if (emu_decode(cpu, bytes, n, &in) < 0 || in.fn == emu_handler_ud || !insn_allowed(&in)) {
			static __thread char name[24];
			emu_insn_mnemonic(&in, name, sizeof(name));
			res->why = name;
			res->stop = LOOKAHEAD_STOP_INSN;
			break;
		}
		uint64_t before = device_traps(vcpu);
		cpu->next_rip = cpu->rip + in.len;
		in.fn(cpu, &in);
		cpu->rip = cpu->next_rip;
		if (cpu->mode != EMU_MODE_LONG64)
			cpu->rip &= (cpu->seg[SEG_CS].attr & (1u << 10)) ? 0xffffffffull : 0xffffull;
		res->insns++;
		idle = device_traps(vcpu) != before ? 0 : idle + 1;
	}
	cpu->fault_env = NULL;
}

int lookahead_run(struct lookahead *la, struct x86_regs *regs, const struct x86_sregs *sregs, uint64_t dr7,
		  const struct lookahead_budget *budget, struct lookahead_result *res)
{
	struct emu_cpu *cpu = la->cpu;
	struct vcpu *vcpu = la->vcpu;
	memset(res, 0, sizeof(*res));
	res->why = "";
	/* Debug traps are the engine's to report (SDM vol. 3B 17.3). */
	if (regs->rflags & X86_FLAG_TF) {
		res->stop = LOOKAHEAD_STOP_INSN;
		res->why = "single-step";
		return 0;
	}
	if (dr7 & 0xff) {
		res->stop = LOOKAHEAD_STOP_INSN;
		res->why = "breakpoints";
		return 0;
	}
	/* Fresh translations every run (set_sregs flushes the TLB). */
	if (accel_emu.set_sregs(&la->acc, sregs) < 0 || accel_emu.set_regs(&la->acc, regs) < 0)
		return err_set(-EINVAL, "lookahead: cannot load the vCPU state");
	cpu->exit = NULL;
	cpu->dbg_pending = 0;
	cpu->intr_shadow = cpu->ss_shadow = false;
	uint64_t io0 = count_of(vcpu, VCPU_EXIT_IO), mmio0 = count_of(vcpu, VCPU_EXIT_MMIO);
	run_steps(la, budget ? budget : &lookahead_default_budget, res);
	/* The vCPU's exit counters count exits the guest took: the accesses
	 * run here took none (the buses count them as accesses, and
	 * `vessel ctl stats` the exits saved). */
	uint64_t io = count_of(vcpu, VCPU_EXIT_IO) - io0, mmio = count_of(vcpu, VCPU_EXIT_MMIO) - mmio0;
	atomic_fetch_sub_explicit(&vcpu->exit_counts[VCPU_EXIT_IO], io, memory_order_relaxed);
	atomic_fetch_sub_explicit(&vcpu->exit_counts[VCPU_EXIT_MMIO], mmio, memory_order_relaxed);
	res->traps = (unsigned)(io + mmio);
	if (res->insns || res->stop == LOOKAHEAD_STOP_FAULT)
		accel_emu.get_regs(&la->acc, regs);
	return 0;
}
