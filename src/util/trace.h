/* The developer's execution trace (`vessel run --trace`, docs/cli.md):
 * decoded instructions and block entries of the emu engine, port and
 * MMIO accesses and interrupt deliveries of either engine, one line each.
 *
 * trace_mask is 0 unless a trace was asked for; the hot paths test it
 * once per block (emu) or per trap, one branch that is never taken when
 * tracing is off. */
#ifndef VESSEL_UTIL_TRACE_H
#define VESSEL_UTIL_TRACE_H

#include <stdbool.h>

enum trace_kind {
	TRACE_INSN = 1u << 0,    /* each instruction executed, disassembled (emu) */
	TRACE_BLOCK = 1u << 1,   /* each decoded block entered (emu) */
	TRACE_IO = 1u << 2,      /* port I/O and MMIO accesses with their data */
	TRACE_IRQ = 1u << 3,     /* external interrupts delivered to a vCPU */
};

extern unsigned trace_mask;

static inline bool trace_on(unsigned kinds)
{
	return __builtin_expect((trace_mask & kinds) != 0, 0);
}

/* "insn,block,io,irq" (any subset, comma-separated) -> mask; 0 or
 * -EINVAL with err_set(). */
int trace_parse(const char *spec, unsigned *mask);
/* Starts tracing the kinds in mask to path (NULL: stderr); 0 or a
 * negative errno with err_set().  trace_stop() flushes and closes. */
int trace_start(unsigned mask, const char *path);
void trace_stop(void);
/* One line (the newline is added); lines of concurrent vCPUs do not mix. */
void trace_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
