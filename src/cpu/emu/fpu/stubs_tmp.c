#include "cpu/emu/fpu/fpu.h"
void fpu_simd_int_register(void) {}
void fpu_sse_fp_register(void) {}
void fpu_sse_move_register(void) {}
void fpu_xsave_register(void) {}
void emu_fpu_cpuid_xsave(struct emu_cpu *cpu, uint32_t subleaf, uint32_t out[4]) {}
