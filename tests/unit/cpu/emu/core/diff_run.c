#include "diff_run.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LONG_CASES 50000u
#define MAX_LOGGED 25u

unsigned diff_cases_per_group(unsigned dflt)
{
	const char *s = getenv("VESSEL_DIFF_CASES");
	if (s && *s)
		return (unsigned)strtoul(s, NULL, 0);
	return getenv("VESSEL_DIFF_LONG") ? LONG_CASES : dflt;
}

static uint64_t seed_for(unsigned mode)
{
	const char *s = getenv("VESSEL_DIFF_SEED");
	uint64_t seed = s && *s ? strtoull(s, NULL, 0) : 0x9e3779b97f4a7c15ull;
	return (seed ^ (0x100000001b3ull * (mode + 1))) | 1;
}

static const char *mode_name(unsigned mode)
{
	return mode == EMU_MODE_LONG64 ? "64-bit" : mode == EMU_MODE_PROT32 ? "32-bit" : "16-bit";
}

/* Memory faults are #GP, #SS or #PF depending on the side's memory
 * model (the harness has no paging, an oracle may have no segments). */
static int exc_class(int v)
{
	return v == X86_EXC_SS || v == X86_EXC_PF || v == X86_EXC_AC ? X86_EXC_GP : v;
}

static bool compare(const struct diff_case *c, const struct diff_engine_run *e, const struct diff_outcome *o,
		    const uint8_t *ewin, const uint8_t *owin, const struct diff_oracle *orc, char *why, size_t n)
{
	static const char *const names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
	if (exc_class(e->out.exc) != exc_class(o->exc)) {
		snprintf(why, n, "fault: %s %d, engine %d", orc->name, o->exc, e->out.exc);
		return false;
	}
	if (e->out.exc >= 0 && !o->exact)
		return true;
	unsigned nregs = c->mode == EMU_MODE_LONG64 ? 16 : 8;
	uint64_t rmask = c->mode == EMU_MODE_LONG64 ? ~0ull : 0xffffffffull;
	for (unsigned i = 0; i < nregs; i++) {
		if ((e->undef_regs >> i) & 1)
			continue;
		if ((e->out.gpr[i] ^ o->gpr[i]) & rmask) {
			snprintf(why, n, "%s: %s %#llx, engine %#llx", names[i], orc->name,
				 (unsigned long long)o->gpr[i], (unsigned long long)e->out.gpr[i]);
			return false;
		}
	}
	if (e->out.rip != o->rip) {
		snprintf(why, n, "rip: %s %#llx, engine %#llx", orc->name, (unsigned long long)o->rip,
			 (unsigned long long)e->out.rip);
		return false;
	}
	uint32_t fmask = (X86_FLAGS_ARITH | X86_FLAG_DF) & ~e->undef_flags;
	if ((e->out.flags ^ o->flags) & fmask) {
		snprintf(why, n, "flags: %s %#x, engine %#x (compared %#x)", orc->name, o->flags, e->out.flags, fmask);
		return false;
	}
	if (memcmp(ewin, owin, DIFF_WIN_SIZE) != 0)
		for (unsigned i = 0; i < DIFF_WIN_SIZE; i++)
			if (ewin[i] != owin[i]) {
				snprintf(why, n, "memory %#x: %s %02x, engine %02x", i, orc->name, owin[i], ewin[i]);
				return false;
			}
	return true;
}

static void log_case(const struct diff_case *c, const struct diff_engine_run *e, const char *why)
{
	char hex[3 * DIFF_CODE_MAX / 8];
	unsigned at = (unsigned)(e->stop - c->base - DIFF_CODE_AT), len = at + 16;
	if (len > c->code_len)
		len = c->code_len;
	if (len > sizeof(hex) / 3 - 1)
		len = sizeof(hex) / 3 - 1;
	for (unsigned i = 0; i < len; i++)
		sprintf(hex + 3 * i, "%02x ", c->code[i]);
	hex[3 * len] = 0;
	cr_log_error("%s %s: %s-> %s (stop +%#x; flags in %#x, rax %#llx rcx %#llx rdx %#llx)", mode_name(c->mode),
		     diff_group_names[c->group], hex, why, at, c->flags,
		     (unsigned long long)c->gpr[RAX],
		     (unsigned long long)c->gpr[RCX], (unsigned long long)c->gpr[RDX]);
}

unsigned diff_run_mode(unsigned mode, const struct diff_oracle *o, unsigned per)
{
	static uint8_t win[DIFF_WIN_SIZE], ewin[DIFF_WIN_SIZE];
	static struct diff_case c;
	struct diff_rng rng = { seed_for(mode) };
	unsigned bad = 0;
	for (unsigned g = 0; g < DG_COUNT; g++) {
		if (!diff_group_in_mode((enum diff_group)g, mode))
			continue;
		unsigned cases = 0, insns = 0, faults = 0;
		for (unsigned attempt = 0; cases < per && attempt < 4 * per; attempt++) {
			if (!diff_generate(&rng, mode, o->base, (enum diff_group)g, o->reject, &c))
				continue;
			diff_fill_window(&rng, &c, win);
			memcpy(ewin, win, DIFF_WIN_SIZE);
			struct diff_engine_run e;
			diff_engine_run(&c, ewin, &e);
			uint64_t start = c.base + DIFF_CODE_AT;
			if (e.stop == start && e.out.exc < 0)
				continue;   /* nothing comparable: the first instruction reads undefined state */
			/* After a fault the oracle runs on, to fault at the same place
			 * or show where it does not. */
			uint64_t until = e.out.exc >= 0 ? start + c.code_len : e.stop;
			struct diff_outcome out;
			if (!o->run(o->ctx, &c, win, until, &out))
				continue;
			cases++;
			insns += e.steps;
			faults += e.out.exc >= 0;
			char why[200];
			if (!compare(&c, &e, &out, ewin, win, o, why, sizeof(why)) && bad++ < MAX_LOGGED)
				log_case(&c, &e, why);
		}
		printf("%s diff, %s mode, group %-7s: %u cases (%u instructions run, %u ended in a fault)\n", o->name,
		       mode_name(mode), diff_group_names[g], cases, insns, faults);
	}
	fflush(stdout);
	return bad;
}
