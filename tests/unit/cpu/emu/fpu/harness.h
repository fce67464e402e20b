/* Test harness for the fpu module: drives its handlers with hand-built
 * emu_insn values over a flat fake guest memory, without the decoder or
 * the soft MMU: harness.c gives the CPU a struct emu_ops of its own
 * (cpu->ops), and takes the handlers from the opcode table. */
#ifndef VESSEL_TEST_EMU_FPU_HARNESS_H
#define VESSEL_TEST_EMU_FPU_HARNESS_H

#include "cpu/emu/emu.h"
#include "cpu/emu/fpu/fpu.h"

#define H_MEM_SIZE 0x10000u

extern uint8_t h_mem[H_MEM_SIZE];

/* A fresh CPU in 64-bit mode with CR0.NE|MP, CR4.OSFXSR|OSXMMEXCPT|OSXSAVE,
 * the fpu power-up state followed by FNINIT, and zeroed fake memory. */
struct emu_cpu *h_cpu(void);
void h_free(struct emu_cpu *cpu);

/* Instruction builders.  reg/rm are the ModRM fields (rm: register when
 * mod == 3); h_insn_mem addresses h_mem[addr] with an absolute disp32. */
struct emu_insn h_insn_reg(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg, unsigned rm);
struct emu_insn h_insn_mem(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg, uint32_t addr);
/* x87 escape: opcode D8-DF with the raw ModRM byte (mod 3) or a memory
 * operand at addr with ModRM.reg = reg. */
struct emu_insn h_x87(uint8_t opcode, uint8_t modrm);
struct emu_insn h_x87_mem(uint8_t opcode, unsigned reg, uint32_t addr);

/* Executes one instruction through the registered handler.  Returns -1
 * when it completed, else the exception vector it raised. */
int h_exec(struct emu_cpu *cpu, const struct emu_insn *insn);
/* The opcode table's generic handler for (map, opcode, mp, reg), or NULL. */
emu_handler h_lookup(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg);

/* Random numbers (xorshift), deterministic per seed. */
uint64_t h_rand(void);
void h_srand(uint64_t seed);
/* Number of random cases per differential group: base, times 20 with
 * VESSEL_DIFF_LONG=1. */
unsigned h_cases(unsigned base);

#endif
