/* Opcode format tables of the decoder (SDM vol. 2D, appendix A). */
#ifndef VESSEL_CPU_EMU_CORE_DECODE_TABLES_H
#define VESSEL_CPU_EMU_CORE_DECODE_TABLES_H

#include <stdint.h>

#define F_MODRM   (1u << 0)   /* has a ModRM byte */
#define F_BYTE    (1u << 1)   /* byte operands: insn->opsize = 1 */
#define F_INV64   (1u << 2)   /* #UD in 64-bit mode (the "i64" superscript) */
#define F_DEF64   (1u << 3)   /* operand size defaults to 64 in 64-bit mode ("d64") */
#define F_FORCE64 (1u << 4)   /* operand size is 64 in 64-bit mode, 66 ignored ("f64") */
#define F_END     (1u << 5)   /* ends a decoded block (control transfer, mode or IF change) */
#define F_MODREG  (1u << 6)   /* ModRM.mod ignored, always a register (MOV CRn/DRn) */
#define F_IMM_SHIFT 8
#define F_IMM_MASK  (0xfu << F_IMM_SHIFT)

enum {
	I_NONE = 0,
	I_B = 1u << F_IMM_SHIFT,      /* ib */
	I_W = 2u << F_IMM_SHIFT,      /* iw */
	I_Z = 3u << F_IMM_SHIFT,      /* iz: 16 or 32 bits */
	I_V = 4u << F_IMM_SHIFT,      /* iv: 16, 32 or 64 bits (MOV r, imm) */
	I_REL = 5u << F_IMM_SHIFT,    /* near relative: rel16/rel32, rel32 in 64-bit mode */
	I_WB = 6u << F_IMM_SHIFT,     /* iw, ib (ENTER) */
	I_FAR = 7u << F_IMM_SHIFT,    /* ptr16:16 / ptr16:32 */
	I_MOFFS = 8u << F_IMM_SHIFT,  /* moffs: address-size offset */
	I_GRP3 = 9u << F_IMM_SHIFT,   /* F6/F7: ib/iz for /0 and /1 (TEST) only */
	I_BB = 10u << F_IMM_SHIFT,    /* ib, ib */
	I_SSE4A = 11u << F_IMM_SHIFT, /* 0F 78: ib, ib with 66 or F2 */
};

extern const uint16_t emu_decode_fmt[4][256];

#endif
