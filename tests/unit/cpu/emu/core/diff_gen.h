/* Random instruction sequences for differential tests of the core's
 * general-purpose instructions, in real-address (16-bit), 32-bit
 * protected and 64-bit mode.
 *
 * A case is a short sequence of instructions of one group (some groups
 * mix in ALU instructions, whose flags they consume).  Every memory
 * operand lands in the data part of a fixed window: the generator puts
 * "MOV reg, imm" set-up instructions before an instruction to load its
 * base, index, stack, string and bit-offset registers, and patches
 * absolute and RIP-relative displacements.  Branches only go forward, to
 * the start of a later instruction (with its set-up) or to the end, so
 * every sequence ends. */
#ifndef VESSEL_TESTS_EMU_CORE_DIFF_GEN_H
#define VESSEL_TESTS_EMU_CORE_DIFF_GEN_H

#include "cpu/emu/emu.h"

#include <stdbool.h>
#include <stdint.h>

/* The window's layout, as offsets from its linear address (diff_case.base,
 * 0 outside 64-bit mode, where offsets are also segment-relative). */
#define DIFF_WIN_SIZE   0x10000u
#define DIFF_DATA_LO    0x1000u    /* memory operands land in [LO, HI) + segment base */
#define DIFF_DATA_HI    0xc000u
#define DIFF_STACK_TOP  0xd800u    /* stack pointers start below this */
#define DIFF_CODE_AT    0xe000u
#define DIFF_CODE_MAX   0x1000u
#define DIFF_MAX_INSNS  8

enum diff_group {
	DG_ALU, DG_SHIFT, DG_MULDIV, DG_BIT, DG_STRING, DG_MOVX, DG_MOV, DG_XCHG, DG_BSWAP,
	DG_STACK, DG_LEA, DG_BCD, DG_FLAGS, DG_BRANCH, DG_MISC, DG_COUNT
};

extern const char *const diff_group_names[DG_COUNT];

/* A group's existence in a mode (BCD is invalid in 64-bit mode). */
bool diff_group_in_mode(enum diff_group g, unsigned mode);

/* Segment bases the cases run with: DS, ES, FS and GS differ from one
 * another and from CS and SS (0), so that a wrong default or override
 * segment shows; in 64-bit mode only FS and GS have bases.  Real mode
 * uses selector = base / 16. */
uint32_t diff_seg_base(unsigned mode, int seg);

struct diff_rng { uint64_t s; };
uint64_t diff_rand(struct diff_rng *r);

struct diff_case {
	unsigned mode;                  /* EMU_MODE_REAL, _PROT32 or _LONG64 */
	uint64_t base;                  /* linear address of the window */
	enum diff_group group;
	uint8_t code[DIFF_CODE_MAX];    /* placed at base + DIFF_CODE_AT */
	unsigned code_len;
	unsigned n_insns;               /* tested instructions, set-up MOVs excluded */
	uint64_t gpr[16];               /* initial state */
	uint32_t flags;
};

/* Instructions an oracle cannot run faithfully, for diff_generate() to
 * leave out: returns true to reject the decoded instruction. */
typedef bool (*diff_filter)(const struct emu_insn *in, unsigned mode);

/* Fills c with a random case of group g for a window at base (64-bit mode
 * only; 0 otherwise); false when the attempt produced nothing usable
 * (the caller just draws again). */
bool diff_generate(struct diff_rng *r, unsigned mode, uint64_t base, enum diff_group g, diff_filter reject,
		   struct diff_case *c);

/* Random window contents: data, and in real mode an IVT whose vectors
 * all lead to F000:vector*4, outside the window. */
void diff_fill_window(struct diff_rng *r, const struct diff_case *c, uint8_t *win);

#endif
