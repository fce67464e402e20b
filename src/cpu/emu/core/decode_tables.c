/* Opcode format tables (SDM vol. 2D, appendix A, tables ):
 * which opcodes take a ModRM byte and which immediate, and the 64-bit
 * mode superscripts (i64, d64, f64).  Prefix bytes never reach these
 * tables.  Opcodes the SDM leaves undefined get the most common format;
 * they decode to the #UD handler anyway. */
#include "cpu/emu/core/decode_tables.h"

#define M F_MODRM
#define MB (F_MODRM | F_BYTE)
#define ALU_ROW(base) \
	[(base) + 0] = MB, [(base) + 1] = M, [(base) + 2] = MB, [(base) + 3] = M, \
	[(base) + 4] = F_BYTE | I_B, [(base) + 5] = I_Z

const uint16_t emu_decode_fmt[4][256] = {
	[0] = {
		ALU_ROW(0x00), ALU_ROW(0x08), ALU_ROW(0x10), ALU_ROW(0x18),
		ALU_ROW(0x20), ALU_ROW(0x28), ALU_ROW(0x30), ALU_ROW(0x38),
		[0x06] = F_INV64, [0x07] = F_INV64, [0x0e] = F_INV64,
		[0x16] = F_INV64, [0x17] = F_INV64 | F_END, [0x1e] = F_INV64, [0x1f] = F_INV64,
		[0x27] = F_INV64, [0x2f] = F_INV64, [0x37] = F_INV64, [0x3f] = F_INV64,
		[0x50 ... 0x5f] = F_DEF64,
		[0x60] = F_INV64, [0x61] = F_INV64, [0x62] = M | F_INV64, [0x63] = M,
		[0x68] = F_DEF64 | I_Z, [0x69] = M | I_Z, [0x6a] = F_DEF64 | I_B, [0x6b] = M | I_B,
		[0x6c] = F_BYTE | F_END, [0x6d] = F_END, [0x6e] = F_BYTE | F_END, [0x6f] = F_END,
		[0x70 ... 0x7f] = F_FORCE64 | F_END | I_B,
		[0x80] = MB | I_B, [0x81] = M | I_Z, [0x82] = MB | I_B | F_INV64, [0x83] = M | I_B,
		[0x84] = MB, [0x85] = M, [0x86] = MB, [0x87] = M,
		[0x88] = MB, [0x89] = M, [0x8a] = MB, [0x8b] = M,
		[0x8c] = M, [0x8d] = M, [0x8e] = M | F_END, [0x8f] = M | F_DEF64,
		[0x9a] = I_FAR | F_INV64 | F_END, [0x9c] = F_DEF64, [0x9d] = F_DEF64 | F_END,
		[0xa0] = F_BYTE | I_MOFFS, [0xa1] = I_MOFFS, [0xa2] = F_BYTE | I_MOFFS, [0xa3] = I_MOFFS,
		[0xa4] = F_BYTE, [0xa6] = F_BYTE, [0xa8] = F_BYTE | I_B, [0xa9] = I_Z,
		[0xaa] = F_BYTE, [0xac] = F_BYTE, [0xae] = F_BYTE,
		[0xb0 ... 0xb7] = F_BYTE | I_B, [0xb8 ... 0xbf] = I_V,
		[0xc0] = MB | I_B, [0xc1] = M | I_B,
		[0xc2] = F_FORCE64 | F_END | I_W, [0xc3] = F_FORCE64 | F_END,
		[0xc4] = M | F_INV64, [0xc5] = M | F_INV64,
		[0xc6] = MB | I_B, [0xc7] = M | I_Z,
		[0xc8] = F_DEF64 | I_WB, [0xc9] = F_DEF64,
		[0xca] = I_W | F_END, [0xcb] = F_END, [0xcc] = F_END, [0xcd] = I_B | F_END,
		[0xce] = F_INV64 | F_END, [0xcf] = F_END,
		[0xd0] = MB, [0xd1] = M, [0xd2] = MB, [0xd3] = M,
		[0xd4] = I_B | F_INV64, [0xd5] = I_B | F_INV64, [0xd6] = F_INV64,
		[0xd8 ... 0xdf] = M,
		[0xe0 ... 0xe3] = F_FORCE64 | F_END | I_B,
		[0xe4] = F_BYTE | I_B | F_END, [0xe5] = I_B | F_END, [0xe6] = F_BYTE | I_B | F_END, [0xe7] = I_B | F_END,
		[0xe8] = F_FORCE64 | F_END | I_REL, [0xe9] = F_FORCE64 | F_END | I_REL,
		[0xea] = I_FAR | F_INV64 | F_END, [0xeb] = F_FORCE64 | F_END | I_B,
		[0xec] = F_BYTE | F_END, [0xed] = F_END, [0xee] = F_BYTE | F_END, [0xef] = F_END,
		[0xf1] = F_END, [0xf4] = F_END,
		[0xf6] = MB | I_GRP3, [0xf7] = M | I_GRP3,
		[0xfa] = F_END, [0xfb] = F_END,
		[0xfe] = MB, [0xff] = M,
	},
	[1] = {  /* 0F xx */
		[0x00] = M | F_END, [0x01] = M | F_END, [0x02] = M, [0x03] = M,
		[0x05] = F_END, [0x06] = F_END, [0x07] = F_END, [0x08] = F_END, [0x09] = F_END,
		[0x0b] = F_END, [0x0d] = M, [0x0f] = M | I_B,
		[0x10 ... 0x1f] = M,
		[0x20 ... 0x23] = M | F_MODREG | F_FORCE64 | F_END,
		[0x28 ... 0x2f] = M,
		[0x30] = F_END, [0x34] = F_END, [0x35] = F_END, [0x37] = F_END,
		[0x40 ... 0x4f] = M,
		[0x50 ... 0x6f] = M,
		[0x70 ... 0x73] = M | I_B, [0x74 ... 0x76] = M,
		[0x78] = M | I_SSE4A, [0x79] = M, [0x7c ... 0x7f] = M,
		[0x80 ... 0x8f] = F_FORCE64 | F_END | I_REL,
		[0x90 ... 0x9f] = M | F_BYTE,
		[0xa0] = F_DEF64, [0xa1] = F_DEF64, [0xa3] = M, [0xa4] = M | I_B, [0xa5] = M,
		[0xa6] = M, [0xa7] = M,  /* VIA PadLock on some CPUs: keep ModRM framing */
		[0xa8] = F_DEF64, [0xa9] = F_DEF64, [0xaa] = F_END,
		[0xab] = M, [0xac] = M | I_B, [0xad] = M, [0xae] = M, [0xaf] = M,
		[0xb0] = MB, [0xb1 ... 0xb7] = M,
		[0xb8 ... 0xb9] = M, [0xba] = M | I_B, [0xbb ... 0xbf] = M,
		[0xc0] = MB, [0xc1] = M, [0xc2] = M | I_B, [0xc3] = M,
		[0xc4 ... 0xc6] = M | I_B, [0xc7] = M,
		[0xd0 ... 0xff] = M,
	},
	[2] = {  /* 0F 38 xx: every opcode takes ModRM, none an immediate */
		[0x00 ... 0xff] = M,
	},
	[3] = {  /* 0F 3A xx: ModRM and ib */
		[0x00 ... 0xff] = M | I_B,
	},
};
