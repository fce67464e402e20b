/* What a general-purpose instruction does to the arithmetic flags, per
 * the "Flags Affected" sections of SDM vol. 2: which it reads, which it
 * writes, which of those it leaves undefined, and when its destination
 * is undefined.  Differential tests use it to mask what the SDM does not
 * define and to end a sequence before an instruction would consume an
 * undefined value. */
#ifndef VESSEL_TESTS_EMU_CORE_DIFF_FLAGS_H
#define VESSEL_TESTS_EMU_CORE_DIFF_FLAGS_H

#include "cpu/emu/emu.h"

#include <stdbool.h>
#include <stdint.h>

struct diff_effect {
	uint32_t reads;         /* flags whose value the instruction consumes */
	uint32_t writes;        /* flags it changes (to defined or undefined values) */
	uint32_t undef;         /* of those, the ones it leaves undefined */
	bool dest_undef;        /* the destination is undefined (known before running it) */
	bool dest_undef_if_zf;  /* BSF/BSR: the destination register is undefined when ZF ends up set */
	uint8_t dest_reg;       /* the register for the two above */
};

/* in as decoded at cpu->rip, cpu the state it starts from. */
void diff_effect_of(const struct emu_insn *in, const struct emu_cpu *cpu, struct diff_effect *e);

#endif
