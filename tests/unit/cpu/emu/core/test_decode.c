/* Decoder vs Zydis 4: lengths and operands agree on random byte streams
 * in 16-, 32- and 64-bit modes, plus hand-picked tricky encodings. */
#include "cpu/emu/emu.h"

#include <Zydis/Zydis.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Also test_table.c's. */
uint64_t rng(void);
uint64_t rng(void)
{
	/* xorshift64*: deterministic so that a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static int gpr_id(ZydisRegister r)
{
	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR16:
	case ZYDIS_REGCLASS_GPR32:
	case ZYDIS_REGCLASS_GPR64:
		return ZydisRegisterGetId(r);
	default:
		return -1;
	}
}

static int seg_id(ZydisRegister r)
{
	switch (r) {
	case ZYDIS_REGISTER_ES: return SEG_ES;
	case ZYDIS_REGISTER_CS: return SEG_CS;
	case ZYDIS_REGISTER_SS: return SEG_SS;
	case ZYDIS_REGISTER_DS: return SEG_DS;
	case ZYDIS_REGISTER_FS: return SEG_FS;
	case ZYDIS_REGISTER_GS: return SEG_GS;
	default: return -1;
	}
}

static void hexdump(char *buf, const uint8_t *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(buf + 3 * i, "%02x ", b[i]);
}

/* Returns NULL when the two decoders agree, else what differs. */
static const char *compare_one(const ZydisDecoder *zd, unsigned mode, const uint8_t *b, unsigned n, bool *compared)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	struct emu_insn in;
	*compared = false;
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(zd, b, n, &zi, zo)))
		return NULL;  /* Zydis rejects it: nothing to compare */
	/* VEX, EVEX, XOP, MVEX are not advertised: the engine raises #UD
	 * (or, for 8F XOP, decodes POP, whose /0 is all a CPU without XOP has). */
	if (zi.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY && zi.encoding != ZYDIS_INSTRUCTION_ENCODING_3DNOW)
		return NULL;
	int rc = emu_decode_mode(mode, b, n, &in);
	if (rc == -EINVAL)
		return "rejected a valid instruction";
	if (rc != 0)
		return "decode error";
	*compared = true;
	if (in.len != zi.length)
		return "length";
	if (zi.raw.imm[0].size) {
		uint64_t mask = zi.raw.imm[0].size >= 64 ? ~0ull : (1ull << zi.raw.imm[0].size) - 1;
		if ((in.imm ^ zi.raw.imm[0].value.u) & mask)
			return "immediate";
		if (zi.raw.imm[1].size && ((in.imm2 ^ zi.raw.imm[1].value.u) & ((1u << zi.raw.imm[1].size) - 1)))
			return "second immediate";
	}
	bool moffs = in.opmap == EMU_MAP_1B && in.opcode >= 0xa0 && in.opcode <= 0xa3;
	for (unsigned k = 0; k < zi.operand_count; k++) {
		const ZydisDecodedOperand *o = &zo[k];
		if (o->visibility != ZYDIS_OPERAND_VISIBILITY_EXPLICIT)
			continue;
		if (o->type == ZYDIS_OPERAND_TYPE_REGISTER && o->encoding == ZYDIS_OPERAND_ENCODING_MODRM_REG) {
			int id = gpr_id(o->reg.value);
			if (id >= 0 && id != in.reg)
				return "ModRM.reg register";
		}
		if (o->type == ZYDIS_OPERAND_TYPE_REGISTER && o->encoding == ZYDIS_OPERAND_ENCODING_MODRM_RM) {
			int id = gpr_id(o->reg.value);
			if (id >= 0 && (in.mod != 3 || id != in.rm))
				return "ModRM.rm register";
		}
		if (o->type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    (o->mem.type == ZYDIS_MEMOP_TYPE_MEM || o->mem.type == ZYDIS_MEMOP_TYPE_AGEN)) {
			if (moffs) {
				if (((uint64_t)o->mem.disp.value ^ in.imm) & emu_size_mask(in.adsize))
					return "moffs";
				continue;
			}
			if (in.mod == 3)
				return "memory operand decoded as register";
			ZydisRegister zb = o->mem.base;
			if (zb == ZYDIS_REGISTER_RIP || zb == ZYDIS_REGISTER_EIP) {
				if (!in.rip_rel)
					return "RIP-relative";
			} else if (zb == ZYDIS_REGISTER_R13D && in.mod == 0 && in.base == EMU_REG_NONE) {
				/* Zydis 4.0 reports r13d for SIB base 101, mod 00 with
				 * 67 and REX.B, and drops the displacement; SDM vol. 2A
				 * table 2-5: no base, disp32. */
				continue;
			} else if (zb == ZYDIS_REGISTER_NONE ? in.base != EMU_REG_NONE : gpr_id(zb) != in.base) {
				return "base";
			}
			if (o->mem.index == ZYDIS_REGISTER_NONE ? in.index != EMU_REG_NONE : gpr_id(o->mem.index) != in.index)
				return "index";
			if (o->mem.index != ZYDIS_REGISTER_NONE && o->mem.scale != (1u << in.scale))
				return "scale";
			uint64_t dmask = zi.raw.disp.size >= 64 ? ~0ull : (1ull << zi.raw.disp.size) - 1;
			if (zi.raw.disp.size && (((uint64_t)(int64_t)in.disp ^ (uint64_t)o->mem.disp.value) & dmask))
				return "displacement";
			if (zi.raw.disp.size == 0 && in.disp != 0)
				return "displacement present";
			/* Zydis reads 3E on FF /2 and /4 as NOTRACK, not as DS. */
			bool notrack = in.opmap == EMU_MAP_1B && in.opcode == 0xff && in.mod != 3;
			if (o->mem.type == ZYDIS_MEMOP_TYPE_MEM && !notrack && seg_id(o->mem.segment) != in.seg)
				return "segment";
		}
	}
	/* Operand size of the plain integer forms. */
	if (in.opmap == EMU_MAP_1B && in.opsize != 1 && zi.operand_width >= 16 &&
	    (in.opcode == 0x01 || in.opcode == 0x03 || in.opcode == 0x89 || in.opcode == 0x8b ||
	     in.opcode == 0x85 || (in.opcode >= 0x50 && in.opcode <= 0x5f) || in.opcode == 0xc7 ||
	     in.opcode == 0xe8 || in.opcode == 0xc3 || in.opcode == 0x9c) &&
	    zi.operand_width != in.opsize * 8)
		return "operand size";
	return NULL;
}

static const uint8_t prefixes[] = { 0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65 };

static void random_stream(uint8_t *b, unsigned mode)
{
	for (unsigned i = 0; i < 16; i++)
		b[i] = (uint8_t)rng();
	unsigned pos = 0, np = rng() % 4;
	for (unsigned k = 0; k < np; k++)
		b[pos++] = prefixes[rng() % sizeof(prefixes)];
	if (mode == EMU_MODE_LONG64 && rng() % 2)
		b[pos++] = (uint8_t)(0x40 | (rng() & 15));
	switch (rng() % 4) {  /* bias towards the escape maps */
	case 0: b[pos] = 0x0f; break;
	case 1: b[pos] = 0x0f; b[pos + 1] = (rng() & 1) ? 0x38 : 0x3a; break;
	default: break;
	}
}

static void run_mode(unsigned mode, ZydisMachineMode zm, ZydisStackWidth sw, const char *name, unsigned n)
{
	ZydisDecoder zd;
	cr_assert(ZYAN_SUCCESS(ZydisDecoderInit(&zd, zm, sw)));
	unsigned compared = 0, bad = 0;
	for (unsigned t = 0; t < n; t++) {
		uint8_t b[16];
		bool did;
		random_stream(b, mode);
		const char *why = compare_one(&zd, mode, b, 16, &did);
		compared += did;
		if (why) {
			char hex[64];
			hexdump(hex, b, 16);
			if (bad++ < 20)
				cr_log_error("%s: %s: %s", name, why, hex);
		}
	}
	printf("decoder vs Zydis, %s mode: %u instructions compared, %u differ\n", name, compared, bad);
	cr_assert_eq(bad, 0, "%u of %u %s-mode instructions differ from Zydis", bad, compared, name);
	cr_assert_gt(compared, n / 4);
}

static unsigned iterations(void)
{
	return getenv("VESSEL_DIFF_LONG") ? 2000000 : 100000;
}

Test(decode_zydis, random_64)
{
	run_mode(EMU_MODE_LONG64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64, "64-bit", iterations());
}

Test(decode_zydis, random_32)
{
	run_mode(EMU_MODE_PROT32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32, "32-bit", iterations());
}

Test(decode_zydis, random_16)
{
	run_mode(EMU_MODE_REAL, ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_STACK_WIDTH_16, "16-bit", iterations());
}

struct tricky { unsigned mode; const char *hex; unsigned len; };

static unsigned parse_hex(const char *s, uint8_t *b)
{
	unsigned n = 0;
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		b[n++] = (uint8_t)strtoul(s, (char **)&s, 16);
	}
	return n;
}

Test(decode_fixed, tricky_cases)
{
	static const struct tricky cases[] = {
		{ EMU_MODE_LONG64, "48 b8 88 77 66 55 44 33 22 11", 10 },     /* mov rax, imm64 */
		{ EMU_MODE_LONG64, "66 e9 00 00 00 00", 6 },                    /* jmp rel32: 66 ignored */
		{ EMU_MODE_LONG64, "48 66 01 c0", 4 },                          /* REX before 66: consumed but ignored */
		{ EMU_MODE_LONG64, "8b 05 10 00 00 00", 6 },                    /* rip-relative */
		{ EMU_MODE_LONG64, "42 8b 04 25 00 10 00 00", 8 },              /* SIB without base, index 4|REX.X = r12 */
		{ EMU_MODE_PROT32, "8b 04 65 00 10 00 00", 7 },                 /* no base, index esp -> none */
		{ EMU_MODE_REAL, "8b 46 02", 3 },                               /* [bp+2] -> SS */
		{ EMU_MODE_REAL, "8b 06 34 12", 4 },                            /* [disp16] */
		{ EMU_MODE_REAL, "66 67 8b 44 24 04", 6 },                      /* 32-bit addressing in 16-bit code */
		{ EMU_MODE_PROT32, "f7 05 00 00 00 00 01 00 00 00", 10 },       /* test with iz */
		{ EMU_MODE_PROT32, "f6 35 00 00 00 00", 6 },                    /* div: no immediate */
		{ EMU_MODE_PROT32, "c8 10 00 01", 4 },                          /* enter */
		{ EMU_MODE_PROT32, "ea 78 56 34 12 08 00", 7 },                 /* jmp far ptr16:32 */
		{ EMU_MODE_PROT32, "0f 20 00", 3 },                             /* mov eax, cr0 (mod ignored) */
		{ EMU_MODE_PROT32, "c4 00", 2 },                                /* les eax, [eax] */
		{ EMU_MODE_LONG64, "a1 88 77 66 55 44 33 22 11", 9 },           /* mov eax, moffs64 */
		{ EMU_MODE_LONG64, "64 2e 8b 00", 4 },                          /* CS prefix is a null prefix: FS stays */
	};
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint8_t b[16] = { 0 };
		struct emu_insn in;
		parse_hex(cases[k].hex, b);
		int rc = emu_decode_mode(cases[k].mode, b, 16, &in);
		cr_assert_eq(rc, 0, "case %u (%s) rc %d", k, cases[k].hex, rc);
		cr_assert_eq(in.len, cases[k].len, "case %u (%s): len %u, expected %u", k, cases[k].hex, in.len, cases[k].len);
	}
	struct emu_insn in;
	uint8_t b[16];
	/* moffs64 keeps all 8 bytes. */
	parse_hex("a1 88 77 66 55 44 33 22 11", b);
	emu_decode_mode(EMU_MODE_LONG64, b, 16, &in);
	cr_assert_eq(in.imm, 0x1122334455667788ull);
	/* REX.W and imm32 sign extension. */
	parse_hex("48 c7 c0 ff ff ff ff", b);
	emu_decode_mode(EMU_MODE_LONG64, b, 16, &in);
	cr_assert_eq(in.opsize, 8);
	cr_assert_eq(in.imm, ~0ull);
	/* Last segment override wins; in 64-bit mode CS/DS/ES/SS prefixes are
	 * null prefixes that leave an FS or GS override in force. */
	parse_hex("64 2e 8b 00", b);
	emu_decode_mode(EMU_MODE_LONG64, b, 16, &in);
	cr_assert_eq(in.seg, SEG_FS);
	parse_hex("64 2e 8b 00", b);
	emu_decode_mode(EMU_MODE_PROT32, b, 16, &in);
	cr_assert_eq(in.seg, SEG_CS);
	parse_hex("2e 64 8b 00", b);
	emu_decode_mode(EMU_MODE_LONG64, b, 16, &in);
	cr_assert_eq(in.seg, SEG_FS);
	parse_hex("2e 8b 46 00", b);
	emu_decode_mode(EMU_MODE_REAL, b, 16, &in);
	cr_assert_eq(in.seg, SEG_CS);
	/* REX not last: ignored. */
	parse_hex("48 66 01 c0", b);
	emu_decode_mode(EMU_MODE_LONG64, b, 16, &in);
	cr_assert_eq(in.opsize, 2);
	cr_assert_eq(in.rex, 0);
	/* VEX in 64-bit mode and i64 opcodes: #UD; too long: #GP. */
	parse_hex("c5 f8 77", b);
	cr_assert_eq(emu_decode_mode(EMU_MODE_LONG64, b, 16, &in), -EINVAL);
	cr_assert_eq(in.fn, emu_handler_ud);
	parse_hex("06", b);
	cr_assert_eq(emu_decode_mode(EMU_MODE_LONG64, b, 16, &in), -EINVAL);
	memset(b, 0x66, 16);
	cr_assert_eq(emu_decode_mode(EMU_MODE_LONG64, b, 16, &in), -EINVAL);
	cr_assert_eq(in.fn, emu_handler_gp0);
	/* Too few bytes: ask for more. */
	parse_hex("b8 01", b);
	cr_assert_eq(emu_decode_mode(EMU_MODE_PROT32, b, 2, &in), -EAGAIN);
}

/* docs/isa.md lists representative encodings per group; each must decode
 * to a real handler (so the document cannot claim what is not there). */
Test(isa_doc, listed_opcodes_have_handlers)
{
	FILE *f = fopen(VESSEL_SOURCE_ROOT "/docs/isa.md", "r");
	cr_assert(f, "docs/isa.md not found");
	char line[1024];
	unsigned checked = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "| ", 2) != 0 || !strchr(line, '`'))
			continue;
		for (char *p = strchr(line, '`'); p; p = strchr(p + 1, '`')) {
			char *end = strchr(p + 1, '`');
			if (!end)
				break;
			*end = 0;
			/* "0F BA/4": bytes, then an optional /reg for the ModRM. */
			uint8_t b[16] = { 0 };
			unsigned n = 0;
			int reg = -1;
			char *s = p + 1;
			while (*s) {
				if (*s == ' ') { s++; continue; }
				if (*s == '/') { reg = s[1] - '0'; break; }
				b[n++] = (uint8_t)strtoul(s, &s, 16);
			}
			/* A register ModRM (or a memory one for memory-only forms). */
			b[n] = (uint8_t)(0xc0 | ((reg < 0 ? 0 : reg) << 3) | 1);
			bool memonly = (b[0] == 0x8d) || (b[0] == 0x62) || (n == 2 && b[0] == 0x0f && b[1] == 0xc7) ||
				       (n == 3 && b[1] == 0x38 && b[2] == 0xf0);
			if (memonly)
				b[n] = (uint8_t)(((reg < 0 ? 0 : reg) << 3) | 1);
			struct emu_insn in;
			int rc = emu_decode_mode(EMU_MODE_PROT32, b, 16, &in);
			cr_assert_eq(rc, 0, "isa.md encoding `%s` does not decode", p + 1);
			cr_assert(in.fn != emu_handler_ud, "isa.md encoding `%s` has no handler", p + 1);
			checked++;
			*end = '`';
			p = end;
		}
	}
	fclose(f);
	cr_assert_gt(checked, 50);
	printf("docs/isa.md: %u listed encodings have handlers\n", checked);
}

/* Every row of the opcode table (core/opcodes.c), each /reg of a group,
 * with a register and a memory ModRM: decodes to Zydis's length, and the
 * table's mnemonic (what `--trace insn` prints) is Zydis's.  Rows the SDM
 * marks i64 are tried in 32-bit mode, the others in 64-bit mode. */
Test(decode_rows, every_row_matches_zydis)
{
	ZydisDecoder z64, z32;
	cr_assert(ZYAN_SUCCESS(ZydisDecoderInit(&z64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)));
	cr_assert(ZYAN_SUCCESS(ZydisDecoderInit(&z32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32)));
	static const uint8_t escape[4][2] = { { 0 }, { 0x0f }, { 0x0f, 0x38 }, { 0x0f, 0x3a } };
	static const uint8_t prefixes[] = { 0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x0f };
	unsigned rows = 0, named = 0, bad = 0;
	for (unsigned map = 0; map < 4; map++) {
		for (unsigned op = 0; op < 256; op++) {
			bool skip = false;
			for (unsigned k = 1; k < sizeof(prefixes); k++)
				skip |= map == 0 && op == prefixes[k];
			if (skip || (map == 0 && ((op & 0xf0) == 0x40 || op == 0xc4 || op == 0xc5 || op == 0x62)) ||
			    (map == 1 && (op == 0x38 || op == 0x3a)))
				continue;   /* prefixes, REX, VEX, EVEX, escapes */
			bool has_modrm = false;
			for (unsigned form = 0; form < 16; form++) {
				uint8_t b[16] = { 0 };
				unsigned n = 0;
				for (unsigned e = 0; e < 2 && escape[map][e]; e++)
					b[n++] = escape[map][e];
				b[n++] = (uint8_t)op;
				/* form 0-7: register ModRM with reg = form; 8-15: [rax] / [eax]. */
				unsigned reg = form & 7;
				b[n] = (uint8_t)((form < 8 ? 0xc0 : 0) | reg << 3 | (form < 8 ? 1 : 0));
				struct emu_insn in;
				int rc = emu_decode_mode(EMU_MODE_LONG64, b, 16, &in);
				unsigned mode = EMU_MODE_LONG64;
				ZydisDecoder *zd = &z64;
				if (rc == -EINVAL) {
					mode = EMU_MODE_PROT32;
					zd = &z32;
					rc = emu_decode_mode(mode, b, 16, &in);
				}
				cr_assert_eq(rc, 0, "row %u:%02x form %u does not decode", map, op, form);
				/* Form 0's register ModRM (C1) is nonzero when decoded. */
				if (form == 0)
					has_modrm = in.modrm != 0;
				if (!has_modrm && form)
					break;   /* no ModRM: one form is enough */
				rows++;
				ZydisDecodedInstruction zi;
				ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
				if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(zd, b, 16, &zi, zo)))
					continue;   /* undefined on the CPUs Zydis knows */
				if (in.len != zi.length) {
					cr_log_error("row %u:%02x form %u (mode %u): length %u, Zydis %u", map, op, form, mode,
						     in.len, zi.length);
					bad++;
				}
				char name[32];
				if (!emu_insn_mnemonic(&in, name, sizeof(name)))
					continue;
				named++;
				const char *zn = ZydisMnemonicGetString(zi.mnemonic);
				if (strcmp(name, zn) != 0) {
					cr_log_error("row %u:%02x form %u (mode %u): mnemonic %s, Zydis %s", map, op, form, mode,
						     name, zn);
					bad++;
				}
			}
		}
	}
	cr_assert_eq(bad, 0, "%u rows differ from Zydis", bad);
	cr_assert_gt(rows, 1000);
	cr_assert_gt(named, 600);
	cr_log_info("%u rows and forms, %u mnemonics compared", rows, named);
}

/* The trace's disassembly never writes past its buffer, whatever the
 * instruction: random byte streams in each mode, formatted into buffers
 * of every size up to 96 bytes, stay NUL-terminated inside the buffer and
 * agree with the full-size text as far as they go. */
Test(decode_rows, format_stays_in_its_buffer)
{
	static const unsigned modes[] = { EMU_MODE_REAL, EMU_MODE_PROT32, EMU_MODE_LONG64 };
	unsigned formatted = 0;
	for (unsigned t = 0; t < 3000; t++) {
		uint8_t b[16];
		unsigned mode = modes[t % 3];
		random_stream(b, mode);
		struct emu_insn in;
		if (emu_decode_mode(mode, b, 16, &in) != 0)
			continue;
		char full[128], small[97];
		unsigned len = emu_insn_format(&in, 0x1000, full, sizeof(full));
		cr_assert_lt(len, sizeof(full));
		cr_assert_eq(full[len], 0);
		for (unsigned n = 1; n <= 96; n++) {
			memset(small, 'x', sizeof(small));
			unsigned k = emu_insn_format(&in, 0x1000, small, n);
			cr_assert_lt(k, n, "%s: length %u in a buffer of %u", full, k, n);
			cr_assert_eq(small[k], 0);
			cr_assert_eq(small[n], 'x', "%s: wrote past a buffer of %u", full, n);
			cr_assert_eq(strncmp(small, full, k), 0, "%s: '%s' in a buffer of %u", full, small, n);
		}
		formatted++;
	}
	cr_assert_gt(formatted, 1000);
}

/* What `vessel run --trace insn` prints for a few instructions. */
Test(decode_rows, format_examples)
{
	static const struct { unsigned mode; const char *hex, *text; } cases[] = {
		{ EMU_MODE_LONG64, "48 8b 44 24 08", "mov rax,qword [rsp+0x8]" },
		{ EMU_MODE_LONG64, "f0 0f c1 03", "lock xadd dword [rbx],eax" },
		{ EMU_MODE_LONG64, "e8 fb ff ff ff", "call 0x1000" },
		{ EMU_MODE_LONG64, "0f 05", "syscall" },
		{ EMU_MODE_LONG64, "48 8d 05 10 00 00 00", "lea rax,[rip+0x10]" },
		{ EMU_MODE_LONG64, "64 48 8b 04 25 28 00 00 00", "mov rax,qword fs:[0x28]" },
		{ EMU_MODE_LONG64, "41 c1 e0 04", "shl r8d,0x4" },
		{ EMU_MODE_LONG64, "40 88 f7", "mov dil,sil" },
		{ EMU_MODE_LONG64, "f7 c1 ff 00 00 00", "test ecx,0xff" },
		{ EMU_MODE_PROT32, "f3 ab", "rep stosd" },
		{ EMU_MODE_PROT32, "f3 a6", "repe cmpsb" },
		{ EMU_MODE_PROT32, "f2 ae", "repne scasb" },
		{ EMU_MODE_PROT32, "e6 80", "out 0x80,al" },
		{ EMU_MODE_PROT32, "0f 22 d8", "mov cr3,eax" },
		{ EMU_MODE_REAL, "ea 00 7c 00 00", "jmp 0x0:0x7c00" },
		{ EMU_MODE_REAL, "8b 46 fe", "mov ax,word [bp-0x2]" },
		{ EMU_MODE_LONG64, "0f 38 00 c1", "(0f 38 00)" },
	};
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint8_t b[16] = { 0 };
		struct emu_insn in;
		parse_hex(cases[k].hex, b);
		cr_assert_eq(emu_decode_mode(cases[k].mode, b, 16, &in), 0, "%s", cases[k].hex);
		char text[96];
		emu_insn_format(&in, 0x1000, text, sizeof(text));
		cr_assert_str_eq(text, cases[k].text, "%s", cases[k].hex);
	}
}
