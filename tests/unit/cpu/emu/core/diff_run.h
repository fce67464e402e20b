/* The differential loop shared by the oracles: per instruction group,
 * generate a case, run it on the engine and on the oracle from the same
 * window, compare the outcomes, count and report. */
#ifndef VESSEL_TESTS_EMU_CORE_DIFF_RUN_H
#define VESSEL_TESTS_EMU_CORE_DIFF_RUN_H

#include "diff_engine.h"

struct diff_oracle {
	const char *name;
	uint64_t base;          /* linear address of the window in 64-bit mode */
	diff_filter reject;     /* instructions the oracle cannot run faithfully */
	/* Runs c on win (filled like the engine's) from c->base + DIFF_CODE_AT
	 * until RIP reaches stop or a fault, leaving the memory it ends with
	 * in win; false drops the case. */
	bool (*run)(void *ctx, const struct diff_case *c, uint8_t *win, uint64_t stop, struct diff_outcome *out);
	void *ctx;
};

/* Cases per group: VESSEL_DIFF_CASES if set, else a long run's count
 * with VESSEL_DIFF_LONG, else dflt. */
unsigned diff_cases_per_group(unsigned dflt);

/* Runs per cases of every group that exists in mode, prints the counts;
 * returns the number of cases that differ (each logged). */
unsigned diff_run_mode(unsigned mode, const struct diff_oracle *o, unsigned per);

#endif
