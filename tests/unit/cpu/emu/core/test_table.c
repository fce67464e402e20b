/* The opcode table's handler half (core/handlers.c) against its format
 * half (core/opcodes.c) and against Zydis 4:
 *  - every instruction Zydis knows in the table's maps has a handler,
 *    or is in the list below of what the engine leaves #UD on purpose
 *    (and each entry of that list is #UD);
 *  - every specialised form fits its row (memory forms only where the
 *    row has a memory operand, byte forms only on byte rows) and does
 *    what the generic handler does, run side by side on random states. */
#include "harness.h"

#include "cpu/emu/core/opcodes.h"

#include <Zydis/Zydis.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

uint64_t rng(void);   /* test_decode.c: xorshift64*, deterministic */

static const uint8_t mprefix_byte[EMU_MP_COUNT] = { 0, 0x66, 0xf3, 0xf2 };
static const uint8_t escape[EMU_MAP_COUNT][2] = { { 0 }, { 0x0f }, { 0x0f, 0x38 }, { 0x0f, 0x3a } };

/* Instruction bytes: mandatory prefix, escape, opcode, ModRM (register
 * form: rm = 1; memory form: [rcx]), then zeros. */
static unsigned encode(uint8_t *b, unsigned map, unsigned op, unsigned mp, unsigned reg, bool mem)
{
	unsigned n = 0;
	memset(b, 0, 16);
	if (mprefix_byte[mp])
		b[n++] = mprefix_byte[mp];
	for (unsigned e = 0; e < 2 && escape[map][e]; e++)
		b[n++] = escape[map][e];
	b[n++] = (uint8_t)op;
	b[n] = (uint8_t)((mem ? 0 : 0xc0) | reg << 3 | 1);
	return n;
}

/* What the engine leaves #UD on purpose though Zydis decodes it: by map,
 * opcode, mandatory prefixes (bit n: none, 66, F3, F2) and ModRM.reg
 * values (bit n: /n). */
struct deliberate_ud {
	uint8_t map, op, mps, regs;
	const char *why;
};
#define ALL 0xff
#define MPS_ALL 0xf
/* Mandatory prefixes: none, 66, F3, F2. */
#define P0 1
#define P66 2
#define PF3 4
#define PF2 8
static const struct deliberate_ud deliberate_ud[] = {
	{ 0, 0xfe, MPS_ALL, 0xfc, "FE /2../7 are undefined" },
	{ 1, 0x01, PF3 | PF2, 1u << 5, "CET RSTORSSP/SAVEPREVSSP, TSX XRESLDTRK: not advertised" },
	{ 1, 0x0b, MPS_ALL, ALL, "UD2 raises #UD by definition" },
	{ 1, 0x0e, MPS_ALL, ALL, "FEMMS (3DNow!): not advertised" },
	{ 1, 0x2b, PF3 | PF2, ALL, "MOVNTSS/MOVNTSD (SSE4a): not advertised" },
	{ 1, 0x37, MPS_ALL, ALL, "GETSEC (SMX): not advertised" },
	{ 1, 0x78, MPS_ALL, ALL, "VMREAD (VMX), EXTRQ/INSERTQ (SSE4a): not advertised" },
	{ 1, 0x79, MPS_ALL, ALL, "VMWRITE (VMX), EXTRQ/INSERTQ (SSE4a): not advertised" },
	{ 1, 0xaa, MPS_ALL, ALL, "RSM: there is no system-management mode" },
	{ 1, 0xae, PF3, 0x70, "PTWRITE, INCSSP (CET), UMONITOR (WAITPKG): not advertised" },
	{ 1, 0xae, PF2, 1u << 6, "UMWAIT (WAITPKG): not advertised" },
	{ 1, 0xb9, MPS_ALL, ALL, "UD1 raises #UD by definition" },
	{ 1, 0xc7, P0, 0x38, "XRSTORS, XSAVEC, XSAVES: CPUID 0xD.1 does not advertise them" },
	{ 1, 0xc7, PF3 | PF2, 1u << 1, "CMPXCHG8B with REP: reserved (SDM vol. 2A, 2.1.1)" },
	{ 1, 0xc7, PF3, 1u << 6, "SENDUIPI (user interrupts), VMXON (VMX): not advertised" },
	{ 1, 0xff, MPS_ALL, ALL, "UD0 raises #UD by definition" },
	{ 2, 0x80, P66, ALL, "INVEPT (VMX): not advertised" },
	{ 2, 0x81, P66, ALL, "INVVPID (VMX): not advertised" },
	{ 2, 0x82, P0 | PF3 | PF2, ALL, "only 66 0F 38 82 (INVPCID) exists" },
	{ 2, 0xc8, P0, ALL, "SHA: not advertised" }, { 2, 0xc9, P0, ALL, "SHA" }, { 2, 0xca, P0, ALL, "SHA" },
	{ 2, 0xcb, P0, ALL, "SHA" }, { 2, 0xcc, P0, ALL, "SHA" }, { 2, 0xcd, P0, ALL, "SHA" },
	{ 2, 0xcf, P66, ALL, "GF2P8MULB (GFNI): not advertised" },
	{ 2, 0xd8, PF3, 0x0f, "Key Locker: not advertised" },
	{ 2, 0xdb, P66, ALL, "AES-NI: not advertised" },
	{ 2, 0xdc, P66 | PF3, ALL, "AES-NI, Key Locker: not advertised" },
	{ 2, 0xdd, P66 | PF3, ALL, "AES-NI, Key Locker" }, { 2, 0xde, P66 | PF3, ALL, "AES-NI, Key Locker" },
	{ 2, 0xdf, P66 | PF3, ALL, "AES-NI, Key Locker" },
	{ 2, 0xf5, P66, ALL, "WRUSS (CET): not advertised" },
	{ 2, 0xf6, P0 | P66 | PF3, ALL, "WRSS (CET), ADCX/ADOX (ADX): not advertised" },
	{ 2, 0xf8, P66 | PF3 | PF2, ALL, "MOVDIR64B, ENQCMD(S): not advertised" },
	{ 2, 0xf9, P0, ALL, "MOVDIRI: not advertised" },
	{ 2, 0xfa, PF3, ALL, "ENCODEKEY128 (Key Locker): not advertised" },
	{ 2, 0xfb, PF3, ALL, "ENCODEKEY256 (Key Locker): not advertised" },
	{ 3, 0x44, P66, ALL, "PCLMULQDQ: not advertised" },
	{ 3, 0xcc, P0, ALL, "SHA1RNDS4 (SHA): not advertised" },
	{ 3, 0xce, P66, ALL, "GF2P8AFFINEQB (GFNI): not advertised" },
	{ 3, 0xcf, P66, ALL, "GF2P8AFFINEINVQB (GFNI): not advertised" },
	{ 3, 0xdf, P66, ALL, "AESKEYGENASSIST (AES-NI): not advertised" },
};

static const struct deliberate_ud *listed(unsigned map, unsigned op, unsigned mp, unsigned reg)
{
	for (unsigned i = 0; i < sizeof(deliberate_ud) / sizeof(deliberate_ud[0]); i++) {
		const struct deliberate_ud *d = &deliberate_ud[i];
		if (d->map == map && d->op == op && ((d->mps >> mp) & 1) && ((d->regs >> reg) & 1))
			return d;
	}
	return NULL;
}

Test(handler_table, every_known_instruction_has_a_handler)
{
	ZydisDecoder z64, z32;
	cr_assert(ZYAN_SUCCESS(ZydisDecoderInit(&z64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)));
	cr_assert(ZYAN_SUCCESS(ZydisDecoderInit(&z32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32)));
	unsigned known = 0, missing = 0;
	for (unsigned map = 0; map < EMU_MAP_COUNT; map++) {
		for (unsigned op = 0; op < 256; op++) {
			/* prefixes, REX, escapes, VEX/EVEX: not rows of their own */
			if (map == 0 && (op == 0x0f || op == 0x26 || op == 0x2e || op == 0x36 || op == 0x3e ||
					 (op & 0xf0) == 0x40 || op == 0x62 || op == 0x64 || op == 0x65 || op == 0x66 ||
					 op == 0x67 || op == 0xc4 || op == 0xc5 || op == 0xf0 || op == 0xf2 || op == 0xf3))
				continue;
			if (map == 1 && (op == 0x38 || op == 0x3a))
				continue;
			bool i64 = emu_opcodes[map][op].fmt & F_INV64;
			for (unsigned mp = 0; mp < EMU_MP_COUNT; mp++) {
				for (unsigned reg = 0; reg < 8; reg++) {
					bool zknown = false, ud = true;
					for (unsigned mem = 0; mem < 2; mem++) {
						uint8_t b[16];
						encode(b, map, op, mp, reg, mem);
						ZydisDecodedInstruction zi;
						ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
						zknown |= ZYAN_SUCCESS(ZydisDecoderDecodeFull(i64 ? &z32 : &z64, b, 16, &zi, zo));
						struct emu_insn in;
						int rc = emu_decode_mode(i64 ? EMU_MODE_PROT32 : EMU_MODE_LONG64, b, 16, &in);
						cr_assert_eq(rc, 0, "%u:%02x prefix %02x /%u does not decode", map, op,
							     mprefix_byte[mp], reg);
						ud &= in.fn == emu_handler_ud;
					}
					const struct deliberate_ud *d = listed(map, op, mp, reg);
					if (d) {
						cr_assert(ud, "%u:%02x prefix %02x /%u is listed as #UD (%s) but has a handler",
							  map, op, mprefix_byte[mp], reg, d->why);
						continue;
					}
					if (!zknown)
						continue;
					known++;
					if (ud) {
						cr_log_error("%u:%02x prefix %02x /%u: Zydis decodes it, the table has no handler",
							     map, op, mprefix_byte[mp], reg);
						missing++;
					}
				}
			}
		}
	}
	cr_assert_eq(missing, 0, "%u instructions without a handler or a reason", missing);
	cr_assert_gt(known, 5000);
}

/* ---- forms ---- */

#define WIN_BASE 0x100000ull
#define WIN_SIZE 0x10000u

struct state {
	uint64_t gpr[16], rip, next_rip, rflags;
	int exc;
	uint8_t mem[WIN_SIZE];
};

static void run_one(struct harness *h, uint8_t *win, const struct state *from, const struct emu_insn *in,
		    emu_handler fn, struct state *out)
{
	struct emu_cpu *cpu = &h->cpu;
	memcpy(win, from->mem, WIN_SIZE);
	memcpy(cpu->gpr, from->gpr, sizeof(cpu->gpr));
	cpu->rip = from->rip;
	cpu->next_rip = from->rip + in->len;
	emu_set_rflags(cpu, from->rflags);
	jmp_buf env;
	cpu->fault_env = &env;
	cpu->exc_vector = -1;
	if (!setjmp(env))
		fn(cpu, in);
	out->exc = cpu->exc_vector;
	memcpy(out->gpr, cpu->gpr, sizeof(out->gpr));
	out->next_rip = cpu->next_rip;
	out->rflags = emu_get_rflags(cpu);
	memcpy(out->mem, win, WIN_SIZE);
}

Test(handler_table, forms_agree_with_their_row)
{
	static uint8_t win[WIN_SIZE];
	static struct state from, a, b;
	static const unsigned sizes[4] = { 1, 2, 4, 8 };
	struct harness h;
	unsigned forms = 0, runs = 0;
	for (unsigned map = 0; map < EMU_MAP_COUNT; map++) {
		for (unsigned op = 0; op < 256; op++) {
			const struct emu_opcode *row = &emu_opcodes[map][op];
			for (unsigned mp = 0; mp < EMU_MP_COUNT; mp++) {
				for (unsigned reg = 0; reg < 8; reg++) {
					emu_handler generic = emu_handler_find(map, op, mp, reg, false, 0);
					for (unsigned mem = 0; mem < 2; mem++) {
						for (unsigned lg = 0; lg < 4; lg++) {
							emu_handler f = emu_handler_find(map, op, mp, reg, mem, sizes[lg]);
							if (f == generic)
								continue;
							/* one check per distinct (row, generic, form, kind, size) */
							static struct { emu_handler g, f; unsigned key; } seen[2048];
							static unsigned n_seen;
							unsigned key = map << 12 | op << 4 | mem << 2 | lg, k;
							for (k = 0; k < n_seen; k++)
								if (seen[k].key == key && seen[k].g == generic && seen[k].f == f)
									break;
							if (k < n_seen)
								continue;
							cr_assert_lt(n_seen, 2048);
							seen[n_seen].g = generic;
							seen[n_seen].f = f;
							seen[n_seen++].key = key;
							forms++;
							cr_assert(generic, "%u:%02x: a form without a generic handler", map, op);
							cr_assert(!mem || ((row->fmt & F_MODRM) && !(row->fmt & F_MODREG)),
								  "%u:%02x /%u: a memory form on a row without a memory operand",
								  map, op, reg);
							cr_assert_eq(lg == 0, (row->fmt & F_BYTE) != 0,
								     "%u:%02x /%u: a form of size %u on a row of %s operands", map,
								     op, reg, sizes[lg], row->fmt & F_BYTE ? "byte" : "full-size");
							/* Same instruction, generic handler and form, same state. */
							for (unsigned t = 0; t < 300; t++) {
								uint8_t bytes[16];
								unsigned n = 0;
								if (sizes[lg] == 2)
									bytes[n++] = 0x66;
								if (mprefix_byte[mp])
									bytes[n++] = mprefix_byte[mp];
								if (sizes[lg] == 8)
									bytes[n++] = (uint8_t)(0x48 | (rng() & 5));
								for (unsigned e = 0; e < 2 && escape[map][e]; e++)
									bytes[n++] = escape[map][e];
								bytes[n++] = (uint8_t)op;
								/* ModRM: [base] or [base + disp8] without SIB or RIP, or a register */
								unsigned rm = (unsigned)rng() & 7;
								if (mem && (rm == 4 || rm == 5))
									rm = 3;
								unsigned mod = mem ? (unsigned)(rng() & 1) : 3;
								bytes[n++] = (uint8_t)(mod << 6 | reg << 3 | rm);
								while (n < 16)
									bytes[n++] = (uint8_t)rng();
								struct emu_insn in;
								harness_init(&h, win, WIN_BASE, WIN_SIZE, EMU_MODE_LONG64);
								if (emu_decode_mode(EMU_MODE_LONG64, bytes, 16, &in) != 0)
									continue;
								if (in.fn != f)
									continue;   /* another size (REX.W with 66) */
								for (unsigned r = 0; r < 16; r++)
									from.gpr[r] = WIN_BASE + 0x1000 + (rng() & 0xdff8);
								/* some counts, values and flags at random */
								from.gpr[rng() & 15] = rng();
								from.rip = WIN_BASE + (rng() & 0xfff);
								from.rflags = X86_FLAG_FIXED | (rng() & X86_FLAGS_ARITH);
								for (unsigned i = 0; i < WIN_SIZE; i += 8) {
									uint64_t v = rng();
									memcpy(from.mem + i, &v, 8);
								}
								run_one(&h, win, &from, &in, generic, &a);
								run_one(&h, win, &from, &in, f, &b);
								cr_assert_eq(a.exc, b.exc, "%u:%02x /%u size %u: exception %d, form %d",
									     map, op, reg, sizes[lg], a.exc, b.exc);
								cr_assert_arr_eq(a.gpr, b.gpr, sizeof(a.gpr), "%u:%02x /%u %s size %u: registers",
										 map, op, reg, mem ? "memory" : "register", sizes[lg]);
								cr_assert_eq(a.next_rip, b.next_rip, "%u:%02x: next RIP", map, op);
								cr_assert_eq(a.rflags, b.rflags, "%u:%02x /%u size %u: flags %llx, form %llx",
									     map, op, reg, sizes[lg], (unsigned long long)a.rflags,
									     (unsigned long long)b.rflags);
								cr_assert_arr_eq(a.mem, b.mem, WIN_SIZE, "%u:%02x: memory", map, op);
								runs++;
							}
						}
					}
				}
			}
		}
	}
	cr_assert_gt(forms, 100);
	cr_assert_gt(runs, 100 * forms);
	cr_log_info("%u forms, %u runs", forms, runs);
}
