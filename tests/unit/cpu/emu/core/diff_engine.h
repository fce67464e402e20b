/* Runs a generated case on the engine's instruction handlers (through
 * the flat-memory harness) one instruction at a time, tracking which
 * flags and registers the SDM leaves undefined, and deciding where the
 * comparable part of the sequence ends: before an instruction that would
 * consume an undefined flag or produce an undefined destination, or right
 * after one that leaves its destination register undefined.  Another
 * implementation is then run to the same stop address. */
#ifndef VESSEL_TESTS_EMU_CORE_DIFF_ENGINE_H
#define VESSEL_TESTS_EMU_CORE_DIFF_ENGINE_H

#include "diff_gen.h"

/* The architectural outcome of a run, as either side reports it. */
struct diff_outcome {
	uint64_t gpr[16];
	uint64_t rip;
	uint32_t flags;
	int exc;                /* exception vector that stopped the run, or -1 */
	bool exact;             /* registers, RIP and memory are meaningful after exc */
};

struct diff_engine_run {
	struct diff_outcome out;
	uint64_t stop;          /* RIP where the other side must stop */
	unsigned steps;         /* instructions executed, set-up included */
	uint32_t undef_flags;   /* arithmetic flags undefined at the stop */
	uint16_t undef_regs;    /* registers undefined at the stop */
};

/* win holds the window (diff_fill_window()); the engine writes to it. */
void diff_engine_run(const struct diff_case *c, uint8_t *win, struct diff_engine_run *r);

#endif
