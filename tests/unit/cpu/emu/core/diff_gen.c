#include "diff_gen.h"

#include <string.h>

const char *const diff_group_names[DG_COUNT] = {
	[DG_ALU] = "alu", [DG_SHIFT] = "shift", [DG_MULDIV] = "muldiv", [DG_BIT] = "bit",
	[DG_STRING] = "string", [DG_MOVX] = "movx", [DG_MOV] = "mov", [DG_XCHG] = "xchg",
	[DG_BSWAP] = "bswap", [DG_STACK] = "stack", [DG_LEA] = "lea", [DG_BCD] = "bcd",
	[DG_FLAGS] = "flags", [DG_BRANCH] = "branch", [DG_MISC] = "misc",
};

uint32_t diff_seg_base(unsigned mode, int seg)
{
	static const uint32_t base[SEG_COUNT] = { [SEG_ES] = 0x800, [SEG_DS] = 0x400, [SEG_FS] = 0xc00, [SEG_GS] = 0x1000 };
	if (mode == EMU_MODE_LONG64 && seg != SEG_FS && seg != SEG_GS)
		return 0;
	return base[seg];
}

uint64_t diff_rand(struct diff_rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

static unsigned rnd(struct diff_rng *r, unsigned n)
{
	return (unsigned)(diff_rand(r) % n);
}

#define M16 1u
#define M32 2u
#define M64 4u
#define MALL (M16 | M32 | M64)
#define MNO64 (M16 | M32)

static unsigned mode_bit(unsigned mode)
{
	return mode == EMU_MODE_LONG64 ? M64 : mode == EMU_MODE_PROT32 ? M32 : M16;
}

enum form { F_ANY, F_MEM, F_REG, F_NONE /* no ModRM */ };

/* What an instruction needs set up before it, or patched in it. */
enum kind {
	K_NONE,
	K_CL,      /* count in CL: often a small one */
	K_DIV,     /* dividend high half: often small, so that some divisions do not overflow */
	K_BT,      /* memory BT*: the bit-offset register stays near the operand */
	K_STR,     /* RSI, RDI, RCX for string instructions */
	K_STACK,   /* RSP inside the stack area */
	K_FRAME,   /* ENTER/LEAVE: RSP and RBP inside the stack area */
	K_POPF,    /* POPF: a PUSH of a harmless flags image first */
	K_XLAT,    /* RBX points at the table */
	K_MOFFS,   /* A0-A3: the absolute address is patched */
	K_LEA,     /* no memory access: any address will do */
	K_BR,      /* relative branch, patched to a later instruction */
	K_CALL,    /* CALL rel: a branch that pushes */
	K_RET,     /* RET: a PUSH of a later instruction's address first */
	K_JMPI,    /* JMP/CALL r: the register loaded with a later instruction's address */
};

struct tmpl {
	uint8_t op[4];
	uint8_t oplen;
	uint8_t opvar;     /* random bits OR'ed into the last opcode byte */
	uint8_t regs;      /* allowed ModRM.reg values (bit mask) */
	uint8_t form;
	uint8_t modes;
	uint8_t kind;
	uint8_t no66;      /* no operand-size prefix */
};

#define R_ALL 0xff
#define R(n) (1u << (n))

static const struct tmpl t_alu[] = {
	{ { 0x00 }, 1, 0x38, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x01 }, 1, 0x38, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x02 }, 1, 0x38, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x03 }, 1, 0x38, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x04 }, 1, 0x38, 0, F_NONE, MALL, K_NONE, 0 }, { { 0x05 }, 1, 0x38, 0, F_NONE, MALL, K_NONE, 0 },
	{ { 0x80 }, 1, 0, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x81 }, 1, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x83 }, 1, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0xf6 }, 1, 1, R(0) | R(2) | R(3), F_ANY, MALL, K_NONE, 0 },   /* TEST NOT NEG, 8 bits and full */
	{ { 0xfe }, 1, 1, R(0) | R(1), F_ANY, MALL, K_NONE, 0 },          /* INC DEC */
	{ { 0x84 }, 1, 1, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0xa8 }, 1, 1, 0, F_NONE, MALL, K_NONE, 0 },
	{ { 0x40 }, 1, 0x0f, 0, F_NONE, MNO64, K_NONE, 0 },               /* one-byte INC/DEC (REX in 64-bit) */
};

static const struct tmpl t_shift[] = {
	{ { 0xc0 }, 1, 1, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0xd0 }, 1, 1, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0xd2 }, 1, 1, R_ALL, F_ANY, MALL, K_CL, 0 },
	{ { 0x0f, 0xa4 }, 2, 0, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x0f, 0xac }, 2, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x0f, 0xa5 }, 2, 0, R_ALL, F_ANY, MALL, K_CL, 0 }, { { 0x0f, 0xad }, 2, 0, R_ALL, F_ANY, MALL, K_CL, 0 },
};

static const struct tmpl t_muldiv[] = {
	{ { 0xf6 }, 1, 1, R(4) | R(5), F_ANY, MALL, K_NONE, 0 },
	{ { 0xf6 }, 1, 1, R(6) | R(7), F_ANY, MALL, K_DIV, 0 },
	{ { 0x0f, 0xaf }, 2, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x69 }, 1, 0, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x6b }, 1, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
};

static const struct tmpl t_bit[] = {
	{ { 0x0f, 0xa3 }, 2, 0, R_ALL, F_ANY, MALL, K_BT, 0 }, { { 0x0f, 0xab }, 2, 0, R_ALL, F_ANY, MALL, K_BT, 0 },
	{ { 0x0f, 0xb3 }, 2, 0, R_ALL, F_ANY, MALL, K_BT, 0 }, { { 0x0f, 0xbb }, 2, 0, R_ALL, F_ANY, MALL, K_BT, 0 },
	{ { 0x0f, 0xba }, 2, 0, 0xf0, F_ANY, MALL, K_NONE, 0 },
	{ { 0x0f, 0xbc }, 2, 0, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x0f, 0xbd }, 2, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0xf3, 0x0f, 0xbc }, 3, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0xf3, 0x0f, 0xbd }, 3, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0xf3, 0x0f, 0xb8 }, 3, 0, R_ALL, F_ANY, MALL, K_NONE, 0 },
};

static const struct tmpl t_string[] = {
	{ { 0xa4 }, 1, 3, 0, F_NONE, MALL, K_STR, 0 }, { { 0xaa }, 1, 1, 0, F_NONE, MALL, K_STR, 0 },
	{ { 0xac }, 1, 3, 0, F_NONE, MALL, K_STR, 0 },
};

static const struct tmpl t_movx[] = {
	{ { 0x0f, 0xb6 }, 2, 1, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x0f, 0xbe }, 2, 1, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x63 }, 1, 0, R_ALL, F_ANY, M64, K_NONE, 0 },
	{ { 0x0f, 0x40 }, 2, 0x0f, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x0f, 0x90 }, 2, 0x0f, R(0), F_ANY, MALL, K_NONE, 0 },
	{ { 0x98 }, 1, 1, 0, F_NONE, MALL, K_NONE, 0 },
};

static const struct tmpl t_mov[] = {
	{ { 0x88 }, 1, 3, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0xc6 }, 1, 1, R(0), F_ANY, MALL, K_NONE, 0 },
	{ { 0xb0 }, 1, 0x0f, 0, F_NONE, MALL, K_NONE, 0 },
	{ { 0xa0 }, 1, 3, 0, F_NONE, MALL, K_MOFFS, 0 },
	{ { 0xd7 }, 1, 0, 0, F_NONE, MALL, K_XLAT, 0 },
};

static const struct tmpl t_xchg[] = {
	{ { 0x86 }, 1, 1, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x90 }, 1, 7, 0, F_NONE, MALL, K_NONE, 0 },
	{ { 0x0f, 0xc0 }, 2, 1, R_ALL, F_ANY, MALL, K_NONE, 0 }, { { 0x0f, 0xb0 }, 2, 1, R_ALL, F_ANY, MALL, K_NONE, 0 },
	{ { 0x0f, 0xc7 }, 2, 0, R(1), F_MEM, MALL, K_NONE, 1 },
};

static const struct tmpl t_bswap[] = {
	{ { 0x0f, 0xc8 }, 2, 7, 0, F_NONE, MALL, K_NONE, 0 },
	{ { 0x0f, 0x38, 0xf0 }, 3, 1, R_ALL, F_MEM, MALL, K_NONE, 0 },   /* MOVBE */
};

static const struct tmpl t_stack[] = {
	{ { 0x50 }, 1, 7, 0, F_NONE, MALL, K_STACK, 0 }, { { 0x58 }, 1, 7, 0, F_NONE, MALL, K_STACK, 0 },
	{ { 0x68 }, 1, 2, 0, F_NONE, MALL, K_STACK, 0 },
	{ { 0xff }, 1, 0, R(6), F_ANY, MALL, K_STACK, 0 }, { { 0x8f }, 1, 0, R(0), F_ANY, MALL, K_STACK, 0 },
	{ { 0xc8 }, 1, 0, 0, F_NONE, MALL, K_FRAME, 0 }, { { 0xc9 }, 1, 0, 0, F_NONE, MALL, K_FRAME, 0 },
	{ { 0x60 }, 1, 1, 0, F_NONE, MNO64, K_STACK, 0 },
};

static const struct tmpl t_lea[] = {
	{ { 0x8d }, 1, 0, R_ALL, F_MEM, MALL, K_LEA, 0 },
};

static const struct tmpl t_bcd[] = {
	{ { 0x27 }, 1, 0x08, 0, F_NONE, MNO64, K_NONE, 0 }, { { 0x37 }, 1, 0x08, 0, F_NONE, MNO64, K_NONE, 0 },
	{ { 0xd4 }, 1, 1, 0, F_NONE, MNO64, K_NONE, 0 },
};

static const struct tmpl t_flags[] = {
	{ { 0xf5 }, 1, 0, 0, F_NONE, MALL, K_NONE, 0 }, { { 0xf8 }, 1, 1, 0, F_NONE, MALL, K_NONE, 0 },
	{ { 0xfc }, 1, 1, 0, F_NONE, MALL, K_NONE, 0 }, { { 0x9e }, 1, 1, 0, F_NONE, MALL, K_NONE, 0 },
	{ { 0x9c }, 1, 0, 0, F_NONE, MALL, K_STACK, 0 }, { { 0x9d }, 1, 0, 0, F_NONE, MALL, K_POPF, 0 },
};

static const struct tmpl t_branch[] = {
	{ { 0x70 }, 1, 0x0f, 0, F_NONE, MALL, K_BR, 1 }, { { 0x0f, 0x80 }, 2, 0x0f, 0, F_NONE, MALL, K_BR, 1 },
	{ { 0xeb }, 1, 0, 0, F_NONE, MALL, K_BR, 1 }, { { 0xe9 }, 1, 0, 0, F_NONE, MALL, K_BR, 1 },
	{ { 0xe0 }, 1, 3, 0, F_NONE, MALL, K_BR, 1 }, { { 0xe8 }, 1, 0, 0, F_NONE, MALL, K_CALL, 1 },
	{ { 0xc2 }, 1, 1, 0, F_NONE, MALL, K_RET, 1 }, { { 0xff }, 1, 0, R(2) | R(4), F_REG, MALL, K_JMPI, 1 },
};

static const struct tmpl t_misc[] = {
	{ { 0x62 }, 1, 0, R_ALL, F_MEM, MNO64, K_NONE, 0 },                /* BOUND (#BR) */
	{ { 0xf2, 0x0f, 0x38, 0xf0 }, 4, 1, R_ALL, F_ANY, MALL, K_NONE, 0 }, /* CRC32 */
	{ { 0x0f, 0x1f }, 2, 0, R(0), F_ANY, MALL, K_NONE, 0 },              /* NOP r/m */
};

struct group_def {
	const struct tmpl *t;
	unsigned n;
	int mix;           /* group whose instructions are interleaved, or -1 */
};

#define G(arr, mix) { arr, sizeof(arr) / sizeof(arr[0]), mix }

static const struct group_def groups[DG_COUNT] = {
	[DG_ALU] = G(t_alu, -1), [DG_SHIFT] = G(t_shift, -1), [DG_MULDIV] = G(t_muldiv, -1),
	[DG_BIT] = G(t_bit, -1), [DG_STRING] = G(t_string, -1), [DG_MOVX] = G(t_movx, DG_ALU),
	[DG_MOV] = G(t_mov, -1), [DG_XCHG] = G(t_xchg, -1), [DG_BSWAP] = G(t_bswap, -1),
	[DG_STACK] = G(t_stack, -1), [DG_LEA] = G(t_lea, -1), [DG_BCD] = G(t_bcd, DG_ALU),
	[DG_FLAGS] = G(t_flags, DG_ALU), [DG_BRANCH] = G(t_branch, DG_ALU), [DG_MISC] = G(t_misc, -1),
};

bool diff_group_in_mode(enum diff_group g, unsigned mode)
{
	for (unsigned i = 0; i < groups[g].n; i++)
		if (groups[g].t[i].modes & mode_bit(mode))
			return true;
	return false;
}

/* ---- assembling ---- */

struct unit {
	unsigned start;        /* first byte of the set-up */
	unsigned insn;         /* the tested instruction */
	unsigned len;
	int rel_at;            /* offset of a branch displacement, or -1 */
	unsigned rel_size;
	int abs_at;            /* offset of an absolute branch target (in a set-up), or -1 */
	unsigned abs_size;
};

struct asm_state {
	struct diff_rng *r;
	struct diff_case *c;
	unsigned mode;
	bool sp_ok;            /* RSP still points into the stack area */
};

static void put(struct diff_case *c, const void *b, unsigned n)
{
	memcpy(c->code + c->code_len, b, n);
	c->code_len += n;
}

/* MOV reg, imm with the full register width (32 bits in real mode, where
 * 32-bit addressing uses the whole register). */
static void emit_mov(struct diff_case *c, unsigned reg, uint64_t v)
{
	uint8_t b[10];
	unsigned n = 0;
	if (c->mode == EMU_MODE_LONG64)
		b[n++] = (uint8_t)(0x48 | (reg >> 3));
	else if (c->mode == EMU_MODE_REAL)
		b[n++] = 0x66;
	b[n++] = (uint8_t)(0xb8 | (reg & 7));
	unsigned isz = c->mode == EMU_MODE_LONG64 ? 8 : 4;
	memcpy(b + n, &v, isz);
	put(c, b, n + isz);
}

static uint64_t stack_ptr(const struct asm_state *s)
{
	return s->c->base + DIFF_STACK_TOP - 0x400 + rnd(s->r, 0x100) * 4;
}

static uint64_t data_target(const struct asm_state *s)
{
	return s->c->base + DIFF_DATA_LO + 0x100 + rnd(s->r, DIFF_DATA_HI - DIFF_DATA_LO - 0x200);
}

static const struct tmpl *pick(struct diff_rng *r, enum diff_group g, unsigned mode)
{
	const struct group_def *d = &groups[g];
	for (;;) {
		const struct tmpl *t = &d->t[rnd(r, d->n)];
		if (t->modes & mode_bit(mode))
			return t;
	}
}

/* Legacy and REX prefixes, then the opcode, then ModRM/SIB/displacement
 * and random immediate bytes.  Returns the offset of the displacement
 * (or -1) through disp_at, and of the byte after the opcode. */
static unsigned encode(struct asm_state *s, const struct tmpl *t, uint8_t *b, int *disp_at, unsigned *op_end)
{
	struct diff_rng *r = s->r;
	unsigned n = 0;
	bool m64 = s->mode == EMU_MODE_LONG64;
	unsigned op0 = 0;
	if (t->op[0] == 0xf3 || t->op[0] == 0xf2)
		b[n++] = t->op[op0++];   /* mandatory prefix first */
	if (t->kind == K_STR && rnd(r, 2))
		b[n++] = rnd(r, 2) ? 0xf3 : 0xf2;
	if (t->kind != K_BR && t->kind != K_CALL && rnd(r, 8) == 0) {
		static const uint8_t segp[] = { 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65 };
		b[n++] = segp[rnd(r, 6)];
	}
	if (!t->no66 && rnd(r, 4) == 0)
		b[n++] = 0x66;
	if (rnd(r, 4) == 0 && t->kind != K_CALL && !(t->kind == K_BR && t->op[0] != 0xe0))
		b[n++] = 0x67;
	if (m64 && rnd(r, 2))
		b[n++] = (uint8_t)(0x40 | rnd(r, 16));
	for (unsigned i = op0; i < t->oplen; i++)
		b[n++] = t->op[i];
	b[n - 1] |= (uint8_t)(diff_rand(r) & t->opvar);
	*op_end = n;
	*disp_at = -1;
	/* The address size this encoding gets (a 67 prefix toggles it). */
	bool p67 = memchr(b, 0x67, n) != NULL;
	unsigned adsize = m64 ? (p67 ? 4 : 8) : (s->mode == EMU_MODE_PROT32) != p67 ? 4 : 2;
	if (t->form != F_NONE) {
		unsigned reg;
		do
			reg = rnd(r, 8);
		while (!(t->regs & (1u << reg)));
		bool mem = t->form == F_MEM || (t->form == F_ANY && rnd(r, 2));
		unsigned mod = mem ? rnd(r, 3) : 3, rm = rnd(r, 8);
		b[n++] = (uint8_t)(mod << 6 | reg << 3 | rm);
		unsigned dsz = 0;
		if (mod != 3 && adsize == 2) {
			dsz = mod == 1 ? 1 : mod == 2 || rm == 6 ? 2 : 0;
		} else if (mod != 3) {
			if (rm == 4) {
				uint8_t sib = (uint8_t)diff_rand(r);
				b[n++] = sib;
				if (mod == 0 && (sib & 7) == 5)
					dsz = 4;
			}
			if (mod == 0 && rm == 5)
				dsz = 4;
			dsz = mod == 1 ? 1 : mod == 2 ? 4 : dsz;
		}
		if (dsz) {
			*disp_at = (int)n;
			for (unsigned i = 0; i < dsz; i++)
				b[n++] = (uint8_t)diff_rand(r);
		}
	}
	for (unsigned i = 0; i < 8; i++)
		b[n++] = (uint8_t)diff_rand(r);
	return n;
}

/* Sets registers so that the memory operand of in lands at a random data
 * address; fixed displacements are patched in b instead.  Registers in
 * keep (bit mask) must not be used for addressing. */
static bool place_operand(struct asm_state *s, const struct emu_insn *in, uint8_t *b, int disp_at,
			  uint64_t insn_addr, unsigned keep, bool stack)
{
	struct diff_case *c = s->c;
	uint64_t target = data_target(s);
	uint64_t amask = emu_size_mask(in->adsize);
	uint64_t disp = (uint64_t)(int64_t)in->disp;
	unsigned base = in->base, index = in->index;
	if ((base != EMU_REG_NONE && (keep >> base & 1)) || (index != EMU_REG_NONE && (keep >> index & 1)))
		return false;
	uint64_t idx = 0;
	if (index != EMU_REG_NONE && index != base) {
		idx = rnd(s->r, 64);
		emit_mov(c, index, idx);
		if (index == RSP)
			s->sp_ok = false;
		idx <<= in->scale;
	}
	if (in->rip_rel) {
		uint32_t d = (uint32_t)(target - (insn_addr + in->len));
		memcpy(b + disp_at, &d, 4);
	} else if (base == EMU_REG_NONE) {
		uint64_t d = target - idx;
		memcpy(b + disp_at, &d, in->adsize == 2 ? 2 : 4);
	} else if (base == index) {
		uint64_t k = 1 + (1ull << in->scale);
		emit_mov(c, base, ((target - disp) & amask) / k);
	} else {
		uint64_t v = (target - idx - disp) & amask;
		/* PUSH/POP [RSP+disp]: the stack itself must stay in the window. */
		if (stack && base == RSP && (v < c->base + DIFF_DATA_LO || v >= c->base + DIFF_CODE_AT))
			return false;
		emit_mov(c, base, v);
	}
	if (base == RSP)
		s->sp_ok = false;
	return true;
}

/* Whether the instruction may leave RSP outside the stack area. */
static bool clobbers_sp(const struct tmpl *t, const struct emu_insn *in)
{
	if (t->kind == K_STACK || t->kind == K_FRAME || t->kind == K_POPF || t->kind == K_CALL ||
	    t->kind == K_RET || t->kind == K_JMPI) {
		bool pop_rsp = (in->opcode == 0x58 + (RSP & 7) && in->rm == RSP) ||
			       (in->opcode == 0x8f && in->mod == 3 && in->rm == RSP);
		return pop_rsp;
	}
	return true;
}

/* The read-modify-write forms LOCK applies to (SDM vol. 2A, LOCK). */
static bool lockable(const struct emu_insn *in)
{
	unsigned op = in->opcode, reg = (in->modrm >> 3) & 7;
	if (in->mod == 3)
		return false;
	if (in->opmap == EMU_MAP_1B)
		return (op < 0x38 && (op & 7) <= 1) || (op >= 0x80 && op <= 0x83 && reg != 7) ||
		       ((op == 0xf6 || op == 0xf7) && (reg == 2 || reg == 3)) ||
		       ((op == 0xfe || op == 0xff) && reg <= 1) || op == 0x86 || op == 0x87;
	if (in->opmap == EMU_MAP_0F)
		return op == 0xab || op == 0xb3 || op == 0xbb || (op == 0xba && reg >= 5) || op == 0xb0 ||
		       op == 0xb1 || op == 0xc0 || op == 0xc1 || (op == 0xc7 && reg == 1);
	return false;
}

static bool add_unit(struct asm_state *s, const struct tmpl *t, diff_filter reject, struct unit *u)
{
	struct diff_case *c = s->c;
	struct diff_rng *r = s->r;
	uint8_t b[48];
	int disp_at;
	unsigned op_end;
	unsigned total = encode(s, t, b, &disp_at, &op_end);
	struct emu_insn in;
	if (emu_decode_mode(s->mode, b, total, &in) != 0)
		return false;
	if (lockable(&in) && rnd(r, 8) == 0) {
		/* LOCK, which Unicorn accepts on more forms than these without
		 * the #UD the SDM requires: only the valid forms are drawn. */
		memmove(b + 1, b, total);
		b[0] = 0xf0;
		total++;
		op_end++;
		if (disp_at >= 0)
			disp_at++;
		if (emu_decode_mode(s->mode, b, total, &in) != 0)
			return false;
	}
	if (reject && reject(&in, s->mode))
		return false;
	u->start = c->code_len;
	u->rel_at = -1;
	unsigned keep = 0;
	u->abs_at = -1;
	bool stack = t->kind == K_STACK || t->kind == K_FRAME || t->kind == K_POPF || t->kind == K_CALL ||
		     t->kind == K_RET || t->kind == K_JMPI;
	if (stack && (!s->sp_ok || rnd(r, 4) == 0)) {
		emit_mov(c, RSP, stack_ptr(s));
		s->sp_ok = true;
	}
	switch (t->kind) {
	case K_CL:
		if (rnd(r, 2))
			emit_mov(c, RCX, rnd(r, 70));
		break;
	case K_DIV:
		if (rnd(r, 3)) {
			if (in.opsize == 1) {
				uint8_t mov_ah[2] = { 0xb4, (uint8_t)rnd(r, 4) };
				put(c, mov_ah, 2);
			} else {
				emit_mov(c, RDX, rnd(r, 3) ? 0 : rnd(r, 16));
			}
		}
		break;
	case K_BT:
		if (in.mod != 3) {
			emit_mov(c, in.reg, (uint64_t)((int64_t)rnd(r, 1024) - 512));
			keep = 1u << in.reg;
		}
		break;
	case K_STR:
		emit_mov(c, RSI, data_target(s));
		emit_mov(c, RDI, data_target(s));
		emit_mov(c, RCX, rnd(r, 5) == 0 ? 0 : rnd(r, 24));
		break;
	case K_FRAME:
		emit_mov(c, RBP, stack_ptr(s));
		if (in.opcode == 0xc8) {
			b[op_end] = (uint8_t)rnd(r, 0x80);   /* frame size */
			b[op_end + 1] = 0;
			b[op_end + 2] &= 3;                    /* nesting level */
		}
		break;
	case K_POPF: {
		/* PUSH imm32/imm16 of arithmetic flags and DF, IF set: TF, IF and
		 * IOPL stay as they are on every side, whatever its privilege. */
		uint32_t img = ((uint32_t)diff_rand(r) & (X86_FLAGS_ARITH | X86_FLAG_DF)) | X86_FLAG_FIXED | X86_FLAG_IF;
		uint8_t push[5] = { 0x68 };
		memcpy(push + 1, &img, 4);
		put(c, push, c->mode == EMU_MODE_REAL ? 3 : 5);
		break;
	}
	case K_RET: {
		/* PUSH imm of the target (patched with the others); RET imm16
		 * pops a few bytes more. */
		uint8_t push[5] = { 0x68 };
		u->abs_at = (int)c->code_len + 1;
		u->abs_size = c->mode == EMU_MODE_REAL ? 2 : 4;
		put(c, push, 1 + u->abs_size);
		if (in.opcode == 0xc2) {
			b[op_end] = (uint8_t)(rnd(r, 8) * 2);
			b[op_end + 1] = 0;
		}
		break;
	}
	case K_JMPI:
		if (in.rm == RSP)
			return false;   /* CALL would push into the code */
		emit_mov(c, in.rm, 0);
		u->abs_at = (int)c->code_len - (c->mode == EMU_MODE_LONG64 ? 8 : 4);
		u->abs_size = 4;
		break;
	case K_XLAT:
		emit_mov(c, RBX, data_target(s));
		break;
	case K_MOFFS: {
		uint64_t a = data_target(s);
		memcpy(b + op_end, &a, in.adsize);
		break;
	}
	default:
		break;
	}
	bool has_modrm = t->form != F_NONE;
	/* A RIP-relative operand has no registers to set up, so its address
	 * is known here. */
	if (has_modrm && in.mod != 3 && t->kind != K_LEA &&
	    !place_operand(s, &in, b, disp_at, c->base + DIFF_CODE_AT + c->code_len, keep, stack))
		return false;
	if (clobbers_sp(t, &in))
		s->sp_ok = false;
	u->insn = c->code_len;
	u->len = in.len;
	if (t->kind == K_BR || t->kind == K_CALL) {
		u->rel_at = (int)(c->code_len + op_end);
		u->rel_size = in.len - op_end;
	}
	put(c, b, in.len);
	return true;
}

/* Forward targets: the start of a later unit (its set-up included) or
 * the end, within the displacement's reach. */
static void patch_branches(struct asm_state *s, struct unit *u, unsigned n)
{
	struct diff_case *c = s->c;
	for (unsigned i = 0; i < n; i++) {
		if (u[i].rel_at < 0 && u[i].abs_at < 0)
			continue;
		unsigned from = u[i].insn + u[i].len;
		unsigned j = i + 1 + rnd(s->r, n - i);
		unsigned to = j < n ? u[j].start : c->code_len;
		if (u[i].rel_size == 1 && to - from > 127)
			to = i + 1 < n ? u[i + 1].start : c->code_len;
		uint64_t rel = to - from, abs = c->base + DIFF_CODE_AT + to;
		if (u[i].rel_at >= 0)
			memcpy(c->code + u[i].rel_at, &rel, u[i].rel_size);
		else
			memcpy(c->code + u[i].abs_at, &abs, u[i].abs_size);
	}
}

bool diff_generate(struct diff_rng *r, unsigned mode, uint64_t base, enum diff_group g, diff_filter reject,
		   struct diff_case *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->base = mode == EMU_MODE_LONG64 ? base : 0;
	c->group = g;
	for (unsigned i = 0; i < 16; i++)
		c->gpr[i] = diff_rand(r);
	/* Small values and the signed/unsigned limits of each size reach
	 * the carries, overflows and zero results random ones rarely do. */
	static const uint64_t edges[] = { 0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff,
					  0x80000000, 0xffffffff, 0x7fffffffffffffff, 0x8000000000000000, ~0ull };
	unsigned style = rnd(r, 4);
	for (unsigned i = 0; i < 16; i++) {
		if (style == 1)
			c->gpr[i] &= rnd(r, 2) ? 0xff : 0x8000000f;
		else if (style == 2 && rnd(r, 2))
			c->gpr[i] = edges[rnd(r, sizeof(edges) / sizeof(edges[0]))] + rnd(r, 3) - 1;
	}
	if (mode != EMU_MODE_LONG64)
		for (unsigned i = 0; i < 16; i++)
			c->gpr[i] = (uint32_t)c->gpr[i];
	struct asm_state s = { .r = r, .c = c, .mode = mode, .sp_ok = true };
	c->gpr[RSP] = stack_ptr(&s);
	/* IF set: user-mode code cannot clear it. */
	c->flags = ((uint32_t)diff_rand(r) & (X86_FLAGS_ARITH | X86_FLAG_DF)) | X86_FLAG_FIXED | X86_FLAG_IF;

	struct unit u[DIFF_MAX_INSNS];
	unsigned want = 1 + rnd(r, 6), n = 0;
	for (unsigned tries = 0; n < want && tries < 4 * want; tries++) {
		enum diff_group from = g;
		if (groups[g].mix >= 0 && n + 1 < want && rnd(r, 2))
			from = (enum diff_group)groups[g].mix;
		unsigned saved_len = c->code_len;
		bool saved_sp = s.sp_ok;
		if (!add_unit(&s, pick(r, from, mode), reject, &u[n])) {
			c->code_len = saved_len;
			s.sp_ok = saved_sp;
			continue;
		}
		if (from == g)
			c->n_insns++;
		n++;
	}
	if (c->n_insns == 0)
		return false;
	patch_branches(&s, u, n);
	return true;
}

void diff_fill_window(struct diff_rng *r, const struct diff_case *c, uint8_t *win)
{
	for (unsigned i = 0; i < DIFF_WIN_SIZE; i += 8) {
		uint64_t v = diff_rand(r);
		memcpy(win + i, &v, 8);
	}
	if (c->mode == EMU_MODE_REAL)
		for (unsigned v = 0; v < 256; v++) {
			uint16_t ivt[2] = { (uint16_t)(v * 4), 0xf000 };
			memcpy(win + v * 4, ivt, 4);
		}
	memcpy(win + DIFF_CODE_AT, c->code, c->code_len);
	/* Past the end: UD2s, so that a path that runs off stops. */
	for (unsigned i = DIFF_CODE_AT + c->code_len; i + 1 < DIFF_WIN_SIZE && i < DIFF_CODE_AT + c->code_len + 32; i += 2) {
		win[i] = 0x0f;
		win[i + 1] = 0x0b;
	}
}
