/* The opcode table: one row per opcode of each map (SDM vol. 2D, appendix
 * A, tables ), in two constant halves with the same indices:
 * emu_opcodes (opcodes.c), what the decoder, the block builder and the
 * trace disassembler need to know of its format, and emu_impls
 * (handlers.c), the handler that executes it and its specialised forms.
 * Nothing is registered at run time. */
#ifndef VESSEL_CPU_EMU_CORE_OPCODES_H
#define VESSEL_CPU_EMU_CORE_OPCODES_H

#include "cpu/emu/emu.h"

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

/* CPUID feature flags that gate opcodes (the "CPUID Feature Flag" of
 * each instruction in SDM vol. 2): an engine that implements the opcode
 * must advertise the flag, which tests/unit/emu_system checks. */
enum emu_feature {
	EMU_FEAT_NONE, EMU_FEAT_TSC, EMU_FEAT_MSR, EMU_FEAT_SEP, EMU_FEAT_CMOV, EMU_FEAT_MMX, EMU_FEAT_SSE,
	EMU_FEAT_SSE2, EMU_FEAT_SSE42, EMU_FEAT_MOVBE, EMU_FEAT_POPCNT, EMU_FEAT_SYSCALL, EMU_FEAT_LZCNT,
	EMU_FEAT_RDRAND, EMU_FEAT_RDSEED, EMU_FEAT_RDPID, EMU_FEAT_RDTSCP, EMU_FEAT_FSGSBASE,
	EMU_FEAT_COUNT,
};

struct emu_feature_flag {
	uint32_t leaf;     /* subleaf 0 */
	uint8_t reg;       /* 0 EAX, 1 EBX, 2 ECX, 3 EDX */
	uint8_t bit;
	const char *name;
};

extern const struct emu_feature_flag emu_feature_flags[EMU_FEAT_COUNT];

/* One opcode.  The per-/n masks (bit n = ModRM.reg n) hold what differs
 * between the members of a group (SDM vol. 2D, table A-6). */
struct emu_opcode {
	uint16_t fmt;      /* F_* | I_* */
	uint8_t lock;      /* /n that accept LOCK, with a memory operand only (SDM vol. 2A, LOCK) */
	uint8_t end;       /* /n that end a block, beside F_END (FF /2../5: indirect transfers) */
	uint8_t f64;       /* /n whose operand size is 64 in 64-bit mode (FF /2, /4) */
	uint8_t d64;       /* /n whose operand size defaults to 64 in 64-bit mode (FF /6) */
	/* Mnemonic, in Zydis's spelling; alternatives separated by '|' per
	 * ModRM.reg (groups), then ':' per mandatory prefix (none:66:F3:F2),
	 * then '~' memory~register operand, then '/' per operand size
	 * (16/32/64).  NULL: the trace prints the opcode bytes. */
	const char *name;
	/* Operands in the SDM's notation (appendix A.2): E/G ModRM r/m and
	 * reg, M memory, I immediate, J relative, O moffs, Z register in the
	 * opcode, S segment register, C/D control/debug register, A far
	 * pointer, V/W XMM reg and r/m, P/Q MMX reg and r/m; sizes b w d q v
	 * z y; fixed registers as written (AL, rAX, DX, CL). */
	const char *ops;
	/* Feature flag (enum emu_feature) per mandatory prefix (none, 66,
	 * F3, F2) that the opcode needs; 0: none. */
	uint8_t feat[4];
};

extern const struct emu_opcode emu_opcodes[4][256];

/* Group members that need a feature flag of their own, which the row's
 * per-prefix column cannot say (0F C7 /6 RDRAND, 0F 01 F9 RDTSCP...):
 * the flag of a decoded ModRM form, or EMU_FEAT_NONE.  Only the decoder
 * of a CPU model that removes flags asks. */
struct emu_group_feature {
	uint8_t map, opcode;
	uint8_t mprefixes;  /* bit n: mandatory prefix n (none, 66, F3, F2) */
	uint8_t reg;        /* ModRM.reg */
	int8_t rm;          /* ModRM.rm with mod = 3, or -1 for any register form */
	uint8_t feat;
};
extern const struct emu_group_feature emu_group_features[];
extern const unsigned emu_n_group_features;

/* Forms of a generic handler specialised to its operand kind and size
 * (docs/architecture.md "Specialized handlers"): the handler the decoder
 * takes instead for an instruction without LOCK whose operand is a
 * register (r8..r64; an opcode without ModRM counts as register) or
 * memory (m8..m64) of that operand size.  NULL: the generic handler.
 * A form has the generic handler's semantics for its case, which
 * tests/unit/cpu/emu/core/test_decode.c checks. */
struct emu_forms {
	union {
		struct { emu_handler r8, r16, r32, r64, m8, m16, m32, m64; };
		emu_handler by[2][4];   /* [memory][log2 of the operand size] */
	};
};

/* The members of a group, by ModRM.reg (SDM vol. 2D, table A-6), and the
 * forms of each member (or of the row's handler for a member without
 * one of its own). */
struct emu_impl_group {
	emu_handler reg[8];
	const struct emu_forms *forms[8];
};

/* Members by mandatory prefix and ModRM.reg (0F AE, 0F C7). */
struct emu_impl_mp_group {
	emu_handler reg[EMU_MP_COUNT][8];
};

/* The handlers of one opcode.  The decoder takes the most specific
 * entry: mp_grp by prefix and ModRM.reg, mp by prefix, grp by ModRM.reg,
 * then fn; none executes as #UD.  Forms replace a handler of grp or fn
 * (never one chosen by prefix). */
struct emu_impl {
	emu_handler fn;
	const struct emu_forms *forms;               /* of fn */
	emu_handler mp[EMU_MP_COUNT];                /* none, 66, F3, F2 */
	const struct emu_impl_group *grp;
	const struct emu_impl_mp_group *mp_grp;
};

extern const struct emu_impl emu_impls[EMU_MAP_COUNT][256];

#endif
