/* Disassembly of a decoded instruction from the opcode table, for
 * `vessel run --trace insn` (docs/cli.md) and the decoder test.  Intel
 * syntax, Zydis's mnemonics; operands as the table's notation says. */
#include "cpu/emu/core/opcodes.h"
#include "cpu/emu/emu.h"

#include <stdio.h>
#include <string.h>

/* Picks alternative k of a name list separated by sep (the last one when
 * there are fewer), into [*s, *e). */
static void pick(const char **s, const char **e, char sep, unsigned k)
{
	const char *p = *s;
	for (; k; k--) {
		const char *q = memchr(p, sep, (size_t)(*e - p));
		if (!q)
			break;
		p = q + 1;
	}
	const char *q = memchr(p, sep, (size_t)(*e - p));
	*s = p;
	*e = q ? q : *e;
}

static bool has(const char *s, const char *e, char c)
{
	return memchr(s, c, (size_t)(e - s)) != NULL;
}

unsigned emu_insn_mnemonic(const struct emu_insn *in, char *buf, unsigned n)
{
	const struct emu_opcode *row = &emu_opcodes[in->opmap & 3][in->opcode];
	if (!row->name || !n)
		return 0;
	const char *s = row->name, *e = s + strlen(s);
	if (has(s, e, '|'))
		pick(&s, &e, '|', (in->modrm >> 3) & 7);
	if (has(s, e, ':'))
		pick(&s, &e, ':', in->mprefix);
	if (has(s, e, '~'))
		pick(&s, &e, '~', in->mod == 3);
	if (has(s, e, '/'))
		pick(&s, &e, '/', in->opsize == 8 ? 2 : in->opsize == 4 ? 1 : 0);
	unsigned len = (unsigned)(e - s);
	if (len >= n)
		len = n - 1;
	memcpy(buf, s, len);
	buf[len] = 0;
	return len;
}

static const char *const reg64[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
				       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
static const char *const reg8[8] = { "al", "cl", "dl", "bl", "ah", "ch", "dh", "bh" };
static const char *const reg8rex[8] = { "al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil" };
static const char *const sregs[8] = { "es", "cs", "ss", "ds", "fs", "gs", "?", "?" };

static int gpr_name(char *b, size_t n, unsigned r, unsigned size, bool rex)
{
	r &= 15;
	if (size == 1)
		return r < 8 ? snprintf(b, n, "%s", rex ? reg8rex[r] : reg8[r]) : snprintf(b, n, "r%ub", r);
	if (size == 8)
		return snprintf(b, n, "%s", reg64[r]);
	if (r >= 8)
		return snprintf(b, n, "r%u%s", r, size == 4 ? "d" : "w");
	return snprintf(b, n, "%s%s", size == 4 ? "e" : "", reg64[r] + 1);
}

static int mem_operand(char *b, size_t n, const struct emu_insn *in, unsigned size)
{
	static const char *const ptr[9] = { "", "byte ", "word ", "", "dword ", "", "", "", "qword " };
	int k = snprintf(b, n, "%s", size <= 8 ? ptr[size] : "");
	if (in->seg >= SEG_FS || in->seg == SEG_CS || in->seg == SEG_ES)
		k += snprintf(b + k, n > (size_t)k ? n - (size_t)k : 0, "%s:", sregs[in->seg & 7]);
	char *p = b + k;
	size_t left = n > (size_t)k ? n - (size_t)k : 0;
	int m = snprintf(p, left, "[");
	const char *plus = "";
	if (in->rip_rel) {
		m += snprintf(p + m, left > (size_t)m ? left - (size_t)m : 0, "rip");
		plus = "+";
	}
	if (in->base != EMU_REG_NONE) {
		m += snprintf(p + m, left > (size_t)m ? left - (size_t)m : 0, "%s", plus);
		m += gpr_name(p + m, left > (size_t)m ? left - (size_t)m : 0, in->base, in->adsize, false);
		plus = "+";
	}
	if (in->index != EMU_REG_NONE) {
		m += snprintf(p + m, left > (size_t)m ? left - (size_t)m : 0, "%s", plus);
		m += gpr_name(p + m, left > (size_t)m ? left - (size_t)m : 0, in->index, in->adsize, false);
		if (in->scale)
			m += snprintf(p + m, left > (size_t)m ? left - (size_t)m : 0, "*%u", 1u << in->scale);
		plus = "+";
	}
	if (!*plus)
		m += snprintf(p + m, left > (size_t)m ? left - (size_t)m : 0, "0x%x", (uint32_t)in->disp);
	else if (in->disp)
		m += snprintf(p + m, left > (size_t)m ? left - (size_t)m : 0, "%c0x%x", in->disp < 0 ? '-' : '+',
			      in->disp < 0 ? (uint32_t)-(int64_t)in->disp : (uint32_t)in->disp);
	m += snprintf(p + m, left > (size_t)m ? left - (size_t)m : 0, "]");
	return k + m;
}

/* The size an operand's size letter gives. */
static unsigned op_size(char c, const struct emu_insn *in)
{
	switch (c) {
	case 'b': return 1;
	case 'w': return 2;
	case 'd': return 4;
	case 'q': return 8;
	case 'y': return in->opsize == 8 ? 8 : 4;
	case 'z': return in->opsize == 2 ? 2 : 4;
	default: return in->opsize;
	}
}

static int operand(char *b, size_t n, const char *op, unsigned len, const struct emu_insn *in, uint64_t rip,
		   bool second_imm)
{
	char c = op[0], sz = len > 1 ? op[1] : 'v';
	if (sz >= 'A' && sz <= 'Z')
		c = 0;   /* a fixed register: AL, CL, DX, ES... */
	unsigned size = op_size(sz, in);
	bool rex = in->rex != 0;
	switch (c) {
	case 'E':
		if (in->mod == 3)
			return gpr_name(b, n, in->rm, size, rex);
		return mem_operand(b, n, in, len > 1 ? size : 0);
	case 'M':
		return mem_operand(b, n, in, 0);
	case 'G':
		return gpr_name(b, n, in->reg, size, rex);
	case 'Z':
		return gpr_name(b, n, in->rm, size, rex);
	case 'I':
		if (second_imm)   /* ENTER's level */
			return snprintf(b, n, "0x%x", in->imm2);
		return snprintf(b, n, "0x%llx", (unsigned long long)(in->imm & emu_size_mask(sz == 'w' ? 2 : in->opsize)));
	case 'J':
		return snprintf(b, n, "0x%llx", (unsigned long long)((rip + in->len + in->imm) &
								       emu_size_mask(in->opsize == 2 ? 2 : 8)));
	case 'O':
		return snprintf(b, n, "%s[0x%llx]", in->seg >= SEG_FS ? (in->seg == SEG_FS ? "fs:" : "gs:") : "",
				(unsigned long long)in->imm);
	case 'A':
		return snprintf(b, n, "0x%x:0x%llx", in->imm2, (unsigned long long)in->imm);
	case 'S':
		return snprintf(b, n, "%s", sregs[in->reg & 7]);
	case 'C':
		return snprintf(b, n, "cr%u", in->reg);
	case 'D':
		return snprintf(b, n, "dr%u", in->reg);
	case 'V':
		return snprintf(b, n, "xmm%u", in->reg);
	case 'U':
		return snprintf(b, n, "xmm%u", in->rm);
	case 'W':
		if (in->mod == 3)
			return snprintf(b, n, "xmm%u", in->rm);
		return mem_operand(b, n, in, 0);
	case 'P':
		return snprintf(b, n, "mm%u", in->reg & 7);
	case 'Q':
		if (in->mod == 3)
			return snprintf(b, n, "mm%u", in->rm & 7);
		return mem_operand(b, n, in, 0);
	case 'r':   /* rAX: the accumulator of the operand size */
		return gpr_name(b, n, 0, in->opsize, false);
	case 'e':   /* eAX: AX or EAX */
		return gpr_name(b, n, 0, in->opsize == 2 ? 2 : 4, false);
	default:
		break;
	}
	/* Fixed operands: AL, CL, DX, segment registers, "1". */
	int k = 0;
	for (unsigned i = 0; i < len && (size_t)k + 1 < n; i++)
		b[k++] = (char)(op[i] >= 'A' && op[i] <= 'Z' ? op[i] - 'A' + 'a' : op[i]);
	if (n)
		b[(size_t)k < n ? (size_t)k : n - 1] = 0;
	return k;
}

/* The whole text, in a buffer any instruction fits. */
static size_t format_full(const struct emu_insn *in, uint64_t rip, char *buf, size_t n)
{
	const struct emu_opcode *row = &emu_opcodes[in->opmap & 3][in->opcode];
	size_t k = 0;
	buf[0] = 0;
	if (in->lock)
		k += (size_t)snprintf(buf, n, "lock ");
	/* String instructions: REP, and REPE/REPNE for CMPS and SCAS. */
	unsigned op = in->opcode;
	if (in->rep && in->opmap == EMU_MAP_1B && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) ||
						    (op >= 0x6c && op <= 0x6f))) {
		bool cond = (op >= 0xa6 && op <= 0xa7) || op >= 0xae;
		k += (size_t)snprintf(buf + k, n - k, "%s ", in->rep == 0xf2 ? "repne" : cond ? "repe" : "rep");
	}
	unsigned m = emu_insn_mnemonic(in, buf + k, (unsigned)(n - k));
	if (!m) {
		static const char *const map[4] = { "", "0f ", "0f 38 ", "0f 3a " };
		return k + (size_t)snprintf(buf + k, n - k, "(%s%02x)", map[in->opmap & 3], in->opcode);
	}
	k += m;
	const char *ops = row->ops ? row->ops : "";
	char sep = ' ';
	unsigned imms = 0;
	while (*ops && k + 1 < n) {
		const char *end = strchr(ops, ',');
		unsigned len = end ? (unsigned)(end - ops) : (unsigned)strlen(ops);
		buf[k++] = sep;
		buf[k] = 0;
		int w = operand(buf + k, n - k, ops, len, in, rip, ops[0] == 'I' && imms++ > 0);
		k += w > 0 ? (size_t)w : 0;
		if (k >= n)
			return n - 1;
		sep = ',';
		ops += len + (end ? 1 : 0);
	}
	/* F6/F7 /0, /1 (TEST) carry an immediate the others lack. */
	if ((row->fmt & F_IMM_MASK) == I_GRP3 && ((in->modrm >> 3) & 7) < 2 && k + 1 < n)
		k += (size_t)snprintf(buf + k, n - k, ",0x%llx",
				      (unsigned long long)(in->imm & emu_size_mask(in->opsize > 4 ? 4 : in->opsize)));
	return k < n ? k : n - 1;
}

unsigned emu_insn_format(const struct emu_insn *in, uint64_t rip, char *buf, unsigned n)
{
	char text[192];
	if (!n)
		return 0;
	size_t k = format_full(in, rip, text, sizeof(text));
	if (k >= n)
		k = n - 1;
	memcpy(buf, text, k);
	buf[k] = 0;
	return (unsigned)k;
}
