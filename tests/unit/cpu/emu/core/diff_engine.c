#include "diff_engine.h"

#include "diff_flags.h"
#include "harness.h"

#include <string.h>

/* A REP string instruction is one step; nothing else repeats, since
 * branches only go forward. */
#define MAX_STEPS 256

void diff_engine_run(const struct diff_case *c, uint8_t *win, struct diff_engine_run *r)
{
	struct harness h;
	harness_init(&h, win, c->base, DIFF_WIN_SIZE, c->mode);
	struct emu_cpu *cpu = &h.cpu;
	for (int s = 0; s < SEG_COUNT; s++) {
		cpu->seg[s].base = diff_seg_base(c->mode, s);
		if (c->mode == EMU_MODE_REAL) {
			cpu->seg[s].limit = 0xffff;
			cpu->seg[s].sel = (uint16_t)(cpu->seg[s].base >> 4);
		}
	}
	memcpy(cpu->gpr, c->gpr, sizeof(cpu->gpr));
	emu_set_rflags(cpu, c->flags);
	cpu->rip = c->base + DIFF_CODE_AT;
	uint64_t end = cpu->rip + c->code_len;
	memset(r, 0, sizeof(*r));
	r->out.exc = -1;
	r->out.exact = true;
	while (cpu->rip != end && r->steps < MAX_STEPS) {
		struct emu_insn in;
		if (emu_decode(cpu, win + (cpu->rip - c->base), 16, &in) == 0) {
			struct diff_effect e;
			diff_effect_of(&in, cpu, &e);
			if ((e.reads & r->undef_flags) || e.dest_undef)
				break;
			int v = harness_step(&h);
			r->steps++;
			if (v >= 0) {
				r->out.exc = v;
				break;
			}
			r->undef_flags = (r->undef_flags & ~e.writes) | e.undef;
			if (e.dest_undef_if_zf && (emu_get_rflags(cpu) & X86_FLAG_ZF)) {
				r->undef_regs |= (uint16_t)(1u << e.dest_reg);
				break;
			}
		} else {
			/* Invalid encodings raise their exception from the step. */
			int v = harness_step(&h);
			r->steps++;
			if (v >= 0) {
				r->out.exc = v;
				break;
			}
		}
	}
	memcpy(r->out.gpr, cpu->gpr, sizeof(r->out.gpr));
	r->out.rip = cpu->rip;
	r->out.flags = (uint32_t)emu_get_rflags(cpu);
	r->stop = cpu->rip;
}
