/* String instructions: MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS with
 * REP/REPE/REPNE and 16/32/64-bit addressing (SDM vol. 2A/2B, and vol. 1,
 * 7.3.9).  The destination is always ES:rDI; the source segment may be
 * overridden.  Registers are committed after every element so that a fault
 * in the middle of a REP leaves a restartable state.  A long REP yields
 * after a bounded number of elements by re-executing itself, so that
 * interrupts and kicks are seen (SDM vol. 1, 7.3.9.3 "interrupted REP"). */
#include "cpu/emu/core/core.h"

#include <string.h>

#define REP_CHUNK 65536u   /* elements per handler call before yielding */

static inline uint64_t areg(const struct emu_cpu *cpu, unsigned r, unsigned as)
{
	return cpu->gpr[r] & emu_size_mask(as);
}

static inline void areg_set(struct emu_cpu *cpu, unsigned r, unsigned as, uint64_t v)
{
	reg_set(cpu, r, as, true, v);
}

static inline int64_t step(const struct emu_cpu *cpu, unsigned size)
{
	return (cpu->rflags & X86_FLAG_DF) ? -(int64_t)size : (int64_t)size;
}

/* Elements of this size left before an address of size as wraps or the
 * page ends, going forward from a. */
static uint64_t run_len(uint64_t a, unsigned size, unsigned as)
{
	uint64_t to_page = (4096 - (a & 4095)) / size;
	if (as < 8) {
		uint64_t to_wrap = (emu_size_mask(as) - a + 1) / size;
		if (to_wrap < to_page)
			to_page = to_wrap;
	}
	return to_page;
}

/* REP MOVS/STOS forward a page run at a time (docs/architecture.md "Bulk string
 * operations"); returns false when the fast path does not apply. */
static bool bulk_run(struct emu_cpu *cpu, const struct emu_insn *in, bool movs, uint64_t *count)
{
	unsigned size = in->opsize, as = in->adsize;
	/* Data breakpoints (a trap after the iteration that hit) and alignment
	 * checking (#AC) look at every element. */
	if ((cpu->rflags & X86_FLAG_DF) || cpu->dbg_data || emu_mmu_index(cpu) == EMU_MMU_USER_AC)
		return false;
	uint64_t di = areg(cpu, RDI, as), si = areg(cpu, RSI, as);
	uint64_t n = *count;
	uint64_t ld = run_len(di, size, as);
	if (ld < n)
		n = ld;
	if (movs) {
		uint64_t ls = run_len(si, size, as);
		if (ls < n)
			n = ls;
	}
	if (n == 0)
		return false;
	uint8_t *pd = emu_mem_ptr(cpu, SEG_ES, di, (unsigned)(n * size), true);
	if (!pd)
		return false;
	if (movs) {
		const uint8_t *ps = emu_mem_ptr(cpu, in->seg, si, (unsigned)(n * size), false);
		if (!ps)
			return false;
		uint64_t bytes = n * size;
		if (pd > ps && pd < ps + bytes) {
			/* The destination overlaps the source ahead of it: element
			 * order matters, and each element is read whole before it
			 * is written (SDM vol. 2B MOVS), which differs from a byte
			 * copy when the overlap is smaller than an element. */
			for (uint64_t i = 0; i < bytes; i += size)
				emu_host_store(pd + i, size, emu_host_load(ps + i, size));
		} else {
			memmove(pd, ps, bytes);
		}
		areg_set(cpu, RSI, as, si + n * size);
	} else {
		uint64_t v = cpu->gpr[RAX] & emu_size_mask(size);
		if (v == (v & 0xff) * (0x0101010101010101ull & emu_size_mask(size))) {
			memset(pd, (int)(v & 0xff), n * size);   /* every byte alike: zeroing a page, say */
		} else {
			for (uint64_t i = 0; i < n; i++)
				memcpy(pd + i * size, &v, size);
		}
	}
	areg_set(cpu, RDI, as, di + n * size);
	*count -= n;
	return true;
}

enum str_op { S_MOVS, S_CMPS, S_STOS, S_LODS, S_SCAS, S_INS, S_OUTS };

/* Resumes the REP later: RIP stays on it.  Between two iterations RF is
 * set, so that an event taken there pushes RF = 1 and the resumed REP does
 * not hit an instruction breakpoint on itself again (SDM vol. 3B
 * 17.3.1.1); the run loop clears it as the REP resumes. */
static void rep_yield(struct emu_cpu *cpu)
{
	cpu->next_rip = cpu->rip;
	cpu->stop_block = true;
	cpu->rflags |= X86_FLAG_RF;
}

static bool string_one(struct emu_cpu *cpu, const struct emu_insn *in, enum str_op op)
{
	unsigned size = in->opsize, as = in->adsize;
	int64_t d = step(cpu, size);
	uint64_t si = areg(cpu, RSI, as), di = areg(cpu, RDI, as), a, b;
	switch (op) {
	case S_MOVS:
		a = emu_read(cpu, in->seg, si, size);
		emu_write(cpu, SEG_ES, di, size, a);
		areg_set(cpu, RSI, as, si + d);
		areg_set(cpu, RDI, as, di + d);
		return true;
	case S_STOS:
		emu_write(cpu, SEG_ES, di, size, cpu->gpr[RAX]);
		areg_set(cpu, RDI, as, di + d);
		return true;
	case S_LODS:
		a = emu_read(cpu, in->seg, si, size);
		reg_set(cpu, RAX, size, false, a);
		areg_set(cpu, RSI, as, si + d);
		return true;
	case S_CMPS:
		a = emu_read(cpu, in->seg, si, size);
		b = emu_read(cpu, SEG_ES, di, size);
		lf_set(cpu, LF_SUB, size, (a - b) & emu_size_mask(size), a, b);
		areg_set(cpu, RSI, as, si + d);
		areg_set(cpu, RDI, as, di + d);
		return a == b;
	case S_SCAS:
		a = cpu->gpr[RAX] & emu_size_mask(size);
		b = emu_read(cpu, SEG_ES, di, size);
		lf_set(cpu, LF_SUB, size, (a - b) & emu_size_mask(size), a, b);
		areg_set(cpu, RDI, as, di + d);
		return a == b;
	case S_INS:
		/* The destination is probed before the port is read, so that a
		 * fault does not lose the device's data (SDM vol. 2A, INS). */
		emu_read(cpu, SEG_ES, di, size);
		a = emu_io_in(cpu, (uint16_t)cpu->gpr[RDX], size);
		emu_write(cpu, SEG_ES, di, size, a);
		areg_set(cpu, RDI, as, di + d);
		return true;
	default:
		a = emu_read(cpu, in->seg, si, size);
		emu_io_out(cpu, (uint16_t)cpu->gpr[RDX], size, (uint32_t)a);
		areg_set(cpu, RSI, as, si + d);
		return true;
	}
}

static void string_exec(struct emu_cpu *cpu, const struct emu_insn *in, enum str_op op)
{
	if (!in->rep) {
		string_one(cpu, in, op);
		return;
	}
	unsigned as = in->adsize;
	uint64_t cx = areg(cpu, RCX, as);
	bool cond = op == S_CMPS || op == S_SCAS;
	/* Single-stepping traps after each iteration, with RIP still on the
	 * instruction while iterations remain; so does a data or I/O
	 * breakpoint after the iteration that hit it (SDM vol. 3B 17.3.1.2),
	 * which is why bulk_run declines while DR7 enables a data breakpoint. */
	unsigned chunk = (cpu->rflags & X86_FLAG_TF) ? 1 : REP_CHUNK;
	unsigned budget = chunk;
	while (cx) {
		if (budget == 0) {
			rep_yield(cpu);
			break;
		}
		if ((op == S_MOVS || op == S_STOS) && cx > 1 && budget > 1) {
			uint64_t left = cx;
			if (bulk_run(cpu, in, op == S_MOVS, &left)) {
				budget = budget > (cx - left) ? budget - (unsigned)(cx - left) : 0;
				cx = left;
				areg_set(cpu, RCX, as, cx);
				continue;
			}
		}
		bool eq = string_one(cpu, in, op);
		cx = (cx - 1) & emu_size_mask(as);
		areg_set(cpu, RCX, as, cx);
		budget--;
		/* REPE stops on a difference, REPNE on equality (F3/F2). */
		if (cond && (in->rep == 0xf3 ? !eq : eq))
			break;
		if (__builtin_expect(cpu->dbg_pending != 0, 0)) {
			if (cx)
				rep_yield(cpu);
			break;
		}
		if (op == S_INS || op == S_OUTS) {
			/* Port I/O may raise an interrupt: one element per pass. */
			if (cx)
				rep_yield(cpu);
			break;
		}
	}
	/* Iterations are work the run budget (emu.h icount_stop) must see: a
	 * long REP is a loop, whatever its instruction count. */
	cpu->icount += chunk - budget;
}

void h_movs(struct emu_cpu *cpu, const struct emu_insn *in) { string_exec(cpu, in, S_MOVS); }
void h_cmps(struct emu_cpu *cpu, const struct emu_insn *in) { string_exec(cpu, in, S_CMPS); }
void h_stos(struct emu_cpu *cpu, const struct emu_insn *in) { string_exec(cpu, in, S_STOS); }
void h_lods(struct emu_cpu *cpu, const struct emu_insn *in) { string_exec(cpu, in, S_LODS); }
void h_scas(struct emu_cpu *cpu, const struct emu_insn *in) { string_exec(cpu, in, S_SCAS); }

/* INS/OUTS: operand size 8 is not encodable; REX.W gives 32 bits. */
void h_ins(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_insn c = *in;
	if (c.opsize == 8)
		c.opsize = 4;
	string_exec(cpu, &c, S_INS);
}

void h_outs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_insn c = *in;
	if (c.opsize == 8)
		c.opsize = 4;
	string_exec(cpu, &c, S_OUTS);
}

