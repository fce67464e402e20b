/* Runs single instructions natively on the host for differential tests:
 * machine code built at run time into an executable page. */
#ifndef VESSEL_TEST_EMU_FPU_NATIVE_H
#define VESSEL_TEST_EMU_FPU_NATIVE_H

#include <stddef.h>
#include <stdint.h>

/* Returns a callable page (never freed; one per test process is enough),
 * or NULL when the host refuses executable mappings (test skips). */
uint8_t *native_page(void);
/* Copies code into the page and calls it with rdi = arg. */
void native_call(const uint8_t *code, size_t n, void *arg);

#endif
