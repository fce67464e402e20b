/* A flat-memory stand-in for the soft MMU and the port bus, for testing
 * the core's instruction handlers on their own: one RAM window at a fixed
 * linear address, segment bases added outside 64-bit mode, faults
 * longjmp back to harness_step().  The CPU reaches it through its
 * struct emu_ops (cpu->ops, emu.h); the engine's modules are all linked. */
#ifndef VESSEL_TESTS_EMU_CORE_HARNESS_H
#define VESSEL_TESTS_EMU_CORE_HARNESS_H

#include "cpu/emu/emu.h"

struct harness {
	struct emu_cpu cpu;
	uint8_t *mem;          /* host backing of [base, base + size) */
	uint64_t base, size;
	uint32_t io_last_port, io_last_val;
	unsigned io_count;
};

extern struct harness *harness_cur;

void harness_init(struct harness *h, uint8_t *mem, uint64_t base, uint64_t size, unsigned mode);
/* Executes one instruction at cpu->rip from the window; returns -1 or the
 * exception vector raised. */
int harness_step(struct harness *h);
/* Decodes bytes at cpu->rip and runs at most n instructions until RIP
 * reaches stop; returns -1 or the first exception vector. */
int harness_run(struct harness *h, uint64_t stop, unsigned n);

#endif
