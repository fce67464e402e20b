/* The opcode table (SDM vol. 2D, appendix A, tables ): per
 * opcode its ModRM and immediate format, the 64-bit mode superscripts
 * (i64, d64, f64), LOCK legality, whether it ends a decoded block, and
 * its mnemonic and operands for the trace.  Prefix bytes never reach it.
 * Opcodes the SDM leaves undefined get the most common format; they
 * decode to the #UD handler anyway.  tests/unit/emu_core/test_decode.c
 * decodes every row and compares length and mnemonic with Zydis. */
#include "cpu/emu/core/opcodes.h"

#include "cpu/emu/emu.h"

#include <stddef.h>

const struct emu_feature_flag emu_feature_flags[EMU_FEAT_COUNT] = {
	[EMU_FEAT_TSC] = { 0x1, 3, 4, "TSC" },
	[EMU_FEAT_MSR] = { 0x1, 3, 5, "MSR" },
	[EMU_FEAT_SEP] = { 0x1, 3, 11, "SEP" },
	[EMU_FEAT_CMOV] = { 0x1, 3, 15, "CMOV" },
	[EMU_FEAT_MMX] = { 0x1, 3, 23, "MMX" },
	[EMU_FEAT_SSE] = { 0x1, 3, 25, "SSE" },
	[EMU_FEAT_SSE2] = { 0x1, 3, 26, "SSE2" },
	[EMU_FEAT_SSE42] = { 0x1, 2, 20, "SSE4.2" },
	[EMU_FEAT_MOVBE] = { 0x1, 2, 22, "MOVBE" },
	[EMU_FEAT_POPCNT] = { 0x1, 2, 23, "POPCNT" },
	[EMU_FEAT_SYSCALL] = { 0x80000001, 3, 11, "SYSCALL" },
	[EMU_FEAT_LZCNT] = { 0x80000001, 2, 5, "ABM (LZCNT)" },
	[EMU_FEAT_RDRAND] = { 0x1, 2, 30, "RDRAND" },
	[EMU_FEAT_RDSEED] = { 0x7, 1, 18, "RDSEED" },
	[EMU_FEAT_RDPID] = { 0x7, 2, 22, "RDPID" },
	[EMU_FEAT_RDTSCP] = { 0x80000001, 3, 27, "RDTSCP" },
	[EMU_FEAT_FSGSBASE] = { 0x7, 1, 0, "FSGSBASE" },
};

/* Register forms only (SDM vol. 2: RDRAND, RDSEED, RDPID, RDTSCP,
 * RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE). */
const struct emu_group_feature emu_group_features[] = {
	{ 1, 0xc7, 0x3, 6, -1, EMU_FEAT_RDRAND },     /* 0F C7 /6, 66 0F C7 /6 */
	{ 1, 0xc7, 0x3, 7, -1, EMU_FEAT_RDSEED },     /* 0F C7 /7, 66 0F C7 /7 */
	{ 1, 0xc7, 0x4, 7, -1, EMU_FEAT_RDPID },      /* F3 0F C7 /7 */
	{ 1, 0x01, 0xf, 7, 1, EMU_FEAT_RDTSCP },      /* 0F 01 F9 */
	{ 1, 0xae, 0x4, 0, -1, EMU_FEAT_FSGSBASE },   /* F3 0F AE /0../3 */
	{ 1, 0xae, 0x4, 1, -1, EMU_FEAT_FSGSBASE },
	{ 1, 0xae, 0x4, 2, -1, EMU_FEAT_FSGSBASE },
	{ 1, 0xae, 0x4, 3, -1, EMU_FEAT_FSGSBASE },
};
const unsigned emu_n_group_features = sizeof(emu_group_features) / sizeof(emu_group_features[0]);

#define M F_MODRM
/* An opcode needing feature flag x whatever its prefix; SSE rows: the
 * packed-single and scalar-single forms need SSE, the double ones SSE2. */
#define FEAT(x) .feat = { (x), (x), (x), (x) }
#define FEAT_SSE_PS_PD_SS_SD .feat = { EMU_FEAT_SSE, EMU_FEAT_SSE2, EMU_FEAT_SSE, EMU_FEAT_SSE2 }
#define FEAT_SSE_PS_PD .feat = { EMU_FEAT_SSE, EMU_FEAT_SSE2 }
#define MB (F_MODRM | F_BYTE)
#define ALL 0xff
#define OP(f, n, o) { .fmt = (f), .name = (n), .ops = (o) }
#define OPL(f, n, o) { .fmt = (f), .lock = ALL, .name = (n), .ops = (o) }
/* ADD..CMP rows: the r/m destination forms accept LOCK, CMP's do not. */
#define ALU_ROW(base, n, lk) \
	[(base) + 0] = { MB, lk, .name = n, .ops = "Eb,Gb" }, [(base) + 1] = { M, lk, .name = n, .ops = "Ev,Gv" }, \
	[(base) + 2] = OP(MB, n, "Gb,Eb"), [(base) + 3] = OP(M, n, "Gv,Ev"), \
	[(base) + 4] = OP(F_BYTE | I_B, n, "AL,Ib"), [(base) + 5] = OP(I_Z, n, "rAX,Iz")
/* The 16 conditions (SDM vol. 1, appendix B) of Jcc, SETcc and CMOVcc. */
#define OPF(f, n, o, ...) { .fmt = (f), .name = (n), .ops = (o), ##__VA_ARGS__ }
#define CC_ROWS(base, f, p, o, ...) \
	[(base) + 0x0] = OPF(f, p "o", o, ##__VA_ARGS__), [(base) + 0x1] = OPF(f, p "no", o, ##__VA_ARGS__), [(base) + 0x2] = OPF(f, p "b", o, ##__VA_ARGS__), \
	[(base) + 0x3] = OPF(f, p "nb", o, ##__VA_ARGS__), [(base) + 0x4] = OPF(f, p "z", o, ##__VA_ARGS__), [(base) + 0x5] = OPF(f, p "nz", o, ##__VA_ARGS__), \
	[(base) + 0x6] = OPF(f, p "be", o, ##__VA_ARGS__), [(base) + 0x7] = OPF(f, p "nbe", o, ##__VA_ARGS__), [(base) + 0x8] = OPF(f, p "s", o, ##__VA_ARGS__), \
	[(base) + 0x9] = OPF(f, p "ns", o, ##__VA_ARGS__), [(base) + 0xa] = OPF(f, p "p", o, ##__VA_ARGS__), [(base) + 0xb] = OPF(f, p "np", o, ##__VA_ARGS__), \
	[(base) + 0xc] = OPF(f, p "l", o, ##__VA_ARGS__), [(base) + 0xd] = OPF(f, p "nl", o, ##__VA_ARGS__), [(base) + 0xe] = OPF(f, p "le", o, ##__VA_ARGS__), \
	[(base) + 0xf] = OPF(f, p "nle", o, ##__VA_ARGS__)
#define GRP1 "add|or|adc|sbb|and|sub|xor|cmp"
#define GRP2 "rol|ror|rcl|rcr|shl|shr|shl|sar"
#define SSE_PS_PD_SS_SD(n) n "ps:" n "pd:" n "ss:" n "sd"

const struct emu_opcode emu_opcodes[4][256] = {
	[0] = {
		ALU_ROW(0x00, "add", ALL), ALU_ROW(0x08, "or", ALL), ALU_ROW(0x10, "adc", ALL), ALU_ROW(0x18, "sbb", ALL),
		ALU_ROW(0x20, "and", ALL), ALU_ROW(0x28, "sub", ALL), ALU_ROW(0x30, "xor", ALL), ALU_ROW(0x38, "cmp", 0),
		[0x06] = OP(F_INV64, "push", "ES"), [0x07] = OP(F_INV64, "pop", "ES"),
		[0x0e] = OP(F_INV64, "push", "CS"),
		[0x16] = OP(F_INV64, "push", "SS"), [0x17] = OP(F_INV64 | F_END, "pop", "SS"),
		[0x1e] = OP(F_INV64, "push", "DS"), [0x1f] = OP(F_INV64, "pop", "DS"),
		[0x27] = OP(F_INV64, "daa", ""), [0x2f] = OP(F_INV64, "das", ""),
		[0x37] = OP(F_INV64, "aaa", ""), [0x3f] = OP(F_INV64, "aas", ""),
		[0x40 ... 0x47] = OP(0, "inc", "Zv"), [0x48 ... 0x4f] = OP(0, "dec", "Zv"),
		[0x50 ... 0x57] = OP(F_DEF64, "push", "Zv"), [0x58 ... 0x5f] = OP(F_DEF64, "pop", "Zv"),
		[0x60] = OP(F_INV64, "pusha/pushad/pushad", ""), [0x61] = OP(F_INV64, "popa/popad/popad", ""),
		[0x62] = OP(M | F_INV64, "bound", "Gv,M"), [0x63] = OP(M, "movsxd", "Gv,Ed"),
		[0x68] = OP(F_DEF64 | I_Z, "push", "Iz"), [0x69] = OP(M | I_Z, "imul", "Gv,Ev,Iz"),
		[0x6a] = OP(F_DEF64 | I_B, "push", "Ib"), [0x6b] = OP(M | I_B, "imul", "Gv,Ev,Ib"),
		[0x6c] = OP(F_BYTE | F_END, "insb", ""), [0x6d] = OP(F_END, "insw/insd/insd", ""),
		[0x6e] = OP(F_BYTE | F_END, "outsb", ""), [0x6f] = OP(F_END, "outsw/outsd/outsd", ""),
		CC_ROWS(0x70, F_FORCE64 | F_END | I_B, "j", "Jb"),
		[0x80] = { MB | I_B, 0x7f, .name = GRP1, .ops = "Eb,Ib" },
		[0x81] = { M | I_Z, 0x7f, .name = GRP1, .ops = "Ev,Iz" },
		[0x82] = { MB | I_B | F_INV64, 0x7f, .name = GRP1, .ops = "Eb,Ib" },
		[0x83] = { M | I_B, 0x7f, .name = GRP1, .ops = "Ev,Ib" },
		[0x84] = OP(MB, "test", "Eb,Gb"), [0x85] = OP(M, "test", "Ev,Gv"),
		[0x86] = OPL(MB, "xchg", "Eb,Gb"), [0x87] = OPL(M, "xchg", "Ev,Gv"),
		[0x88] = OP(MB, "mov", "Eb,Gb"), [0x89] = OP(M, "mov", "Ev,Gv"),
		[0x8a] = OP(MB, "mov", "Gb,Eb"), [0x8b] = OP(M, "mov", "Gv,Ev"),
		[0x8c] = OP(M, "mov", "Ev,Sw"), [0x8d] = OP(M, "lea", "Gv,M"),
		[0x8e] = OP(M | F_END, "mov", "Sw,Ew"), [0x8f] = OP(M | F_DEF64, "pop", "Ev"),
		[0x90] = OP(0, "nop:nop:pause:nop", ""), [0x91 ... 0x97] = OP(0, "xchg", "Zv,rAX"),
		[0x98] = OP(0, "cbw/cwde/cdqe", ""), [0x99] = OP(0, "cwd/cdq/cqo", ""),
		[0x9a] = OP(I_FAR | F_INV64 | F_END, "call", "Ap"), [0x9b] = OP(0, "fwait", ""),
		[0x9c] = OP(F_DEF64, "pushf/pushfd/pushfq", ""), [0x9d] = OP(F_DEF64 | F_END, "popf/popfd/popfq", ""),
		[0x9e] = OP(0, "sahf", ""), [0x9f] = OP(0, "lahf", ""),
		[0xa0] = OP(F_BYTE | I_MOFFS, "mov", "AL,Ob"), [0xa1] = OP(I_MOFFS, "mov", "rAX,Ov"),
		[0xa2] = OP(F_BYTE | I_MOFFS, "mov", "Ob,AL"), [0xa3] = OP(I_MOFFS, "mov", "Ov,rAX"),
		[0xa4] = OP(F_BYTE, "movsb", ""), [0xa5] = OP(0, "movsw/movsd/movsq", ""),
		[0xa6] = OP(F_BYTE, "cmpsb", ""), [0xa7] = OP(0, "cmpsw/cmpsd/cmpsq", ""),
		[0xa8] = OP(F_BYTE | I_B, "test", "AL,Ib"), [0xa9] = OP(I_Z, "test", "rAX,Iz"),
		[0xaa] = OP(F_BYTE, "stosb", ""), [0xab] = OP(0, "stosw/stosd/stosq", ""),
		[0xac] = OP(F_BYTE, "lodsb", ""), [0xad] = OP(0, "lodsw/lodsd/lodsq", ""),
		[0xae] = OP(F_BYTE, "scasb", ""), [0xaf] = OP(0, "scasw/scasd/scasq", ""),
		[0xb0 ... 0xb7] = OP(F_BYTE | I_B, "mov", "Zb,Ib"), [0xb8 ... 0xbf] = OP(I_V, "mov", "Zv,Iv"),
		[0xc0] = OP(MB | I_B, GRP2, "Eb,Ib"), [0xc1] = OP(M | I_B, GRP2, "Ev,Ib"),
		[0xc2] = OP(F_FORCE64 | F_END | I_W, "ret", "Iw"), [0xc3] = OP(F_FORCE64 | F_END, "ret", ""),
		[0xc4] = OP(M | F_INV64, "les", "Gz,M"), [0xc5] = OP(M | F_INV64, "lds", "Gz,M"),
		[0xc6] = OP(MB | I_B, "mov", "Eb,Ib"), [0xc7] = OP(M | I_Z, "mov", "Ev,Iz"),
		[0xc8] = OP(F_DEF64 | I_WB, "enter", "Iw,Ib"), [0xc9] = OP(F_DEF64, "leave", ""),
		[0xca] = OP(I_W | F_END, "ret", "Iw"), [0xcb] = OP(F_END, "ret", ""),
		[0xcc] = OP(F_END, "int3", ""), [0xcd] = OP(I_B | F_END, "int", "Ib"),
		[0xce] = OP(F_INV64 | F_END, "into", ""), [0xcf] = OP(F_END, "iret/iretd/iretq", ""),
		[0xd0] = OP(MB, GRP2, "Eb,1"), [0xd1] = OP(M, GRP2, "Ev,1"),
		[0xd2] = OP(MB, GRP2, "Eb,CL"), [0xd3] = OP(M, GRP2, "Ev,CL"),
		[0xd4] = OP(I_B | F_INV64, "aam", "Ib"), [0xd5] = OP(I_B | F_INV64, "aad", "Ib"),
		[0xd6] = OP(F_INV64, "salc", ""), [0xd7] = OP(0, "xlat", ""),
		[0xd8 ... 0xdf] = OP(M, NULL, "E"),
		[0xe0] = OP(F_FORCE64 | F_END | I_B, "loopne", "Jb"), [0xe1] = OP(F_FORCE64 | F_END | I_B, "loope", "Jb"),
		[0xe2] = OP(F_FORCE64 | F_END | I_B, "loop", "Jb"), [0xe3] = OP(F_FORCE64 | F_END | I_B, "jcxz/jecxz/jrcxz", "Jb"),
		[0xe4] = OP(F_BYTE | I_B | F_END, "in", "AL,Ib"), [0xe5] = OP(I_B | F_END, "in", "eAX,Ib"),
		[0xe6] = OP(F_BYTE | I_B | F_END, "out", "Ib,AL"), [0xe7] = OP(I_B | F_END, "out", "Ib,eAX"),
		[0xe8] = OP(F_FORCE64 | F_END | I_REL, "call", "Jz"), [0xe9] = OP(F_FORCE64 | F_END | I_REL, "jmp", "Jz"),
		[0xea] = OP(I_FAR | F_INV64 | F_END, "jmp", "Ap"), [0xeb] = OP(F_FORCE64 | F_END | I_B, "jmp", "Jb"),
		[0xec] = OP(F_BYTE | F_END, "in", "AL,DX"), [0xed] = OP(F_END, "in", "eAX,DX"),
		[0xee] = OP(F_BYTE | F_END, "out", "DX,AL"), [0xef] = OP(F_END, "out", "DX,eAX"),
		[0xf1] = OP(F_END, "int1", ""), [0xf4] = OP(F_END, "hlt", ""), [0xf5] = OP(0, "cmc", ""),
		[0xf6] = { MB | I_GRP3, 0x0c, .name = "test|test|not|neg|mul|imul|div|idiv", .ops = "Eb" },
		[0xf7] = { M | I_GRP3, 0x0c, .name = "test|test|not|neg|mul|imul|div|idiv", .ops = "Ev" },
		[0xf8] = OP(0, "clc", ""), [0xf9] = OP(0, "stc", ""),
		[0xfa] = OP(F_END, "cli", ""), [0xfb] = OP(F_END, "sti", ""),
		[0xfc] = OP(0, "cld", ""), [0xfd] = OP(0, "std", ""),
		[0xfe] = { MB, 0x03, .name = "inc|dec", .ops = "Eb" },
		/* FF /2 and /4 (near CALL/JMP) are f64, /6 (PUSH) d64; /2../5
		 * are indirect near and far calls and jumps. */
		[0xff] = { M, 0x03, 0x3c, 0x14, 0x40, .name = "inc|dec|call|call|jmp|jmp|push", .ops = "Ev" },
	},
	[1] = {  /* 0F xx */
		[0x00] = OP(M | F_END, "sldt|str|lldt|ltr|verr|verw", "Ew"),
		[0x01] = OP(M | F_END, "sgdt~|sidt~|lgdt~|lidt~|smsw||lmsw|invlpg~", "M"),
		[0x02] = OP(M, "lar", "Gv,Ew"), [0x03] = OP(M, "lsl", "Gv,Ew"),
		[0x05] = OPF(F_END, "syscall", "", FEAT(EMU_FEAT_SYSCALL)), [0x06] = OP(F_END, "clts", ""), [0x07] = OPF(F_END, "sysret", "", FEAT(EMU_FEAT_SYSCALL)),
		[0x08] = OP(F_END, "invd", ""), [0x09] = OP(F_END, "wbinvd", ""),
		[0x0b] = OP(F_END, "ud2", ""), [0x0d] = OP(M, NULL, "M"), [0x0f] = OP(M | I_B, NULL, "P,Q"),
		[0x10] = OPF(M, "movups:movupd:movss:movsd", "V,W", FEAT_SSE_PS_PD_SS_SD), [0x11] = OPF(M, "movups:movupd:movss:movsd", "W,V", FEAT_SSE_PS_PD_SS_SD),
		[0x12 ... 0x17] = OP(M, NULL, "V,W"),
		[0x18 ... 0x1f] = OP(M, NULL, "E"),
		[0x20] = OP(M | F_MODREG | F_FORCE64 | F_END, "mov", "Ey,Cd"),
		[0x21] = OP(M | F_MODREG | F_FORCE64 | F_END, "mov", "Ey,Dd"),
		[0x22] = OP(M | F_MODREG | F_FORCE64 | F_END, "mov", "Cd,Ey"),
		[0x23] = OP(M | F_MODREG | F_FORCE64 | F_END, "mov", "Dd,Ey"),
		[0x28] = OPF(M, "movaps:movapd", "V,W", FEAT_SSE_PS_PD), [0x29] = OPF(M, "movaps:movapd", "W,V", FEAT_SSE_PS_PD),
		[0x2a ... 0x2f] = OP(M, NULL, "V,W"),
		[0x30] = OPF(F_END, "wrmsr", "", FEAT(EMU_FEAT_MSR)), [0x31] = OPF(0, "rdtsc", "", FEAT(EMU_FEAT_TSC)), [0x32] = OPF(0, "rdmsr", "", FEAT(EMU_FEAT_MSR)),
		[0x33] = OP(0, "rdpmc", ""),
		[0x34] = OPF(F_END, "sysenter", "", FEAT(EMU_FEAT_SEP)), [0x35] = OPF(F_END, "sysexit", "", FEAT(EMU_FEAT_SEP)), [0x37] = OP(F_END, "getsec", ""),
		CC_ROWS(0x40, M, "cmov", "Gv,Ev", FEAT(EMU_FEAT_CMOV)),
		[0x50] = OP(M, NULL, "Gd,U"),
		[0x51] = OPF(M, SSE_PS_PD_SS_SD("sqrt"), "V,W", FEAT_SSE_PS_PD_SS_SD),
		[0x52 ... 0x53] = OP(M, NULL, "V,W"),
		[0x54] = OPF(M, "andps:andpd", "V,W", FEAT_SSE_PS_PD), [0x55] = OPF(M, "andnps:andnpd", "V,W", FEAT_SSE_PS_PD),
		[0x56] = OPF(M, "orps:orpd", "V,W", FEAT_SSE_PS_PD), [0x57] = OPF(M, "xorps:xorpd", "V,W", FEAT_SSE_PS_PD),
		[0x58] = OPF(M, SSE_PS_PD_SS_SD("add"), "V,W", FEAT_SSE_PS_PD_SS_SD), [0x59] = OPF(M, SSE_PS_PD_SS_SD("mul"), "V,W", FEAT_SSE_PS_PD_SS_SD),
		[0x5a ... 0x5b] = OP(M, NULL, "V,W"),
		[0x5c] = OPF(M, SSE_PS_PD_SS_SD("sub"), "V,W", FEAT_SSE_PS_PD_SS_SD), [0x5d] = OPF(M, SSE_PS_PD_SS_SD("min"), "V,W", FEAT_SSE_PS_PD_SS_SD),
		[0x5e] = OPF(M, SSE_PS_PD_SS_SD("div"), "V,W", FEAT_SSE_PS_PD_SS_SD), [0x5f] = OPF(M, SSE_PS_PD_SS_SD("max"), "V,W", FEAT_SSE_PS_PD_SS_SD),
		[0x60 ... 0x6b] = OPF(M, NULL, "P,Q", .feat = { EMU_FEAT_MMX, EMU_FEAT_SSE2 }),
		[0x6c ... 0x6d] = OPF(M, NULL, "P,Q", .feat = { [EMU_MP_66] = EMU_FEAT_SSE2 }),  /* PUNPCK*QDQ */
		[0x6e ... 0x6f] = OPF(M, NULL, "P,Q", .feat = { EMU_FEAT_MMX, EMU_FEAT_SSE2 }),
		[0x70 ... 0x73] = OP(M | I_B, NULL, "P,Q,Ib"), [0x74 ... 0x76] = OP(M, NULL, "P,Q"),
		[0x77] = OP(0, "emms", ""),
		[0x78] = OP(M | I_SSE4A, NULL, "E"), [0x79] = OP(M, NULL, "E"), [0x7c ... 0x7f] = OP(M, NULL, "P,Q"),
		CC_ROWS(0x80, F_FORCE64 | F_END | I_REL, "j", "Jz"),
		CC_ROWS(0x90, MB, "set", "Eb"),
		[0xa0] = OP(F_DEF64, "push", "FS"), [0xa1] = OP(F_DEF64, "pop", "FS"), [0xa2] = OP(0, "cpuid", ""),
		[0xa3] = OP(M, "bt", "Ev,Gv"), [0xa4] = OP(M | I_B, "shld", "Ev,Gv,Ib"), [0xa5] = OP(M, "shld", "Ev,Gv,CL"),
		[0xa6] = OP(M, NULL, "E"), [0xa7] = OP(M, NULL, "E"),  /* VIA PadLock on some CPUs: keep ModRM framing */
		[0xa8] = OP(F_DEF64, "push", "GS"), [0xa9] = OP(F_DEF64, "pop", "GS"), [0xaa] = OP(F_END, "rsm", ""),
		[0xab] = OPL(M, "bts", "Ev,Gv"), [0xac] = OP(M | I_B, "shrd", "Ev,Gv,Ib"), [0xad] = OP(M, "shrd", "Ev,Gv,CL"),
		[0xae] = OP(M, NULL, "E"), [0xaf] = OP(M, "imul", "Gv,Ev"),
		[0xb0] = OPL(MB, "cmpxchg", "Eb,Gb"), [0xb1] = OPL(M, "cmpxchg", "Ev,Gv"),
		[0xb2] = OP(M, "lss", "Gv,M"), [0xb3] = OPL(M, "btr", "Ev,Gv"),
		[0xb4] = OP(M, "lfs", "Gv,M"), [0xb5] = OP(M, "lgs", "Gv,M"),
		[0xb6] = OP(M, "movzx", "Gv,Eb"), [0xb7] = OP(M, "movzx", "Gv,Ew"),
		[0xb8] = OPF(M, "jmpe::popcnt", "Gv,Ev", .feat = { [EMU_MP_F3] = EMU_FEAT_POPCNT }),
		[0xb9] = OP(M, "ud1", "Gv,Ev"),
		[0xba] = { M | I_B, 0xe0, .name = "||||bt|bts|btr|btc", .ops = "Ev,Ib" },
		/* F3 0F BC is TZCNT only with BMI1, which is not advertised (int_bit.c). */
		[0xbb] = OPL(M, "btc", "Ev,Gv"), [0xbc] = OP(M, "bsf", "Gv,Ev"),
		[0xbd] = OPF(M, "bsr:bsr:lzcnt", "Gv,Ev", .feat = { [EMU_MP_F3] = EMU_FEAT_LZCNT }),
		[0xbe] = OP(M, "movsx", "Gv,Eb"), [0xbf] = OP(M, "movsx", "Gv,Ew"),
		[0xc0] = OPL(MB, "xadd", "Eb,Gb"), [0xc1] = OPL(M, "xadd", "Ev,Gv"), [0xc2] = OP(M | I_B, NULL, "V,W,Ib"),
		[0xc3] = OP(M, "movnti", "M,Gy"),
		[0xc4 ... 0xc6] = OP(M | I_B, NULL, "V,W,Ib"),
		[0xc7] = { M, 0x02, .name = "|cmpxchg8b/cmpxchg8b/cmpxchg16b|||||~rdrand|~rdseed", .ops = "E" },
		[0xc8 ... 0xcf] = OP(0, "bswap", "Zy"),
		[0xd0 ... 0xff] = OP(M, NULL, "P,Q"),
	},
	[2] = {  /* 0F 38 xx: every opcode takes ModRM, none an immediate */
		[0x00 ... 0xef] = OP(M, NULL, "V,W"),
		/* MOVBE; F2: CRC32 */
		[0xf0] = OPF(M, "movbe:movbe::crc32", "Gv,M",
			     .feat = { EMU_FEAT_MOVBE, EMU_FEAT_MOVBE, EMU_FEAT_NONE, EMU_FEAT_SSE42 }),
		[0xf1] = OPF(M, "movbe:movbe::crc32", "M,Gv",
			     .feat = { EMU_FEAT_MOVBE, EMU_FEAT_MOVBE, EMU_FEAT_NONE, EMU_FEAT_SSE42 }),
		[0xf2 ... 0xff] = OP(M, NULL, "V,W"),
	},
	[3] = {  /* 0F 3A xx: ModRM and ib */
		[0x00 ... 0xff] = OP(M | I_B, NULL, "V,W,Ib"),
	},
};
