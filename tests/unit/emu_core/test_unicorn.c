/* Differential test against Unicorn 2 (QEMU's x86 CPU as a library) in
 * real-address (16-bit) mode: random instances of the
 * general-purpose groups, including those that do not exist in 64-bit
 * mode (BCD, PUSHA/POPA, one-byte INC/DEC) and 16-bit addressing.  One
 * instruction per case; registers, defined flags, EIP, memory and faults
 * are compared. */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicorn/unicorn.h>

#define WIN_SIZE 0x20000u
#define CODE_AT  0x1f000u

static uint64_t rng_state = 0x13198a2e03707344ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static const int uc_gpr[8] = { UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
			       UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI };

struct utmpl {
	const char *group;
	uint8_t op[3];
	uint8_t oplen;
	int8_t reg;          /* forced ModRM.reg; -1 random; -2 no ModRM */
	uint32_t undef;
	uint8_t kind;
};

enum { U_NONE, U_SHIFT, U_STR, U_STACK, U_BT, U_BRANCH };

#define AF X86_FLAG_AF
#define OF X86_FLAG_OF
#define ALLF X86_FLAGS_ARITH
#define SZAP (X86_FLAG_SF | X86_FLAG_ZF | X86_FLAG_AF | X86_FLAG_PF)

static const struct utmpl utmpls[] = {
	{ "alu", { 0x01 }, 1, -1, 0, 0 }, { "alu", { 0x12 }, 1, -1, 0, 0 }, { "alu", { 0x2b }, 1, -1, 0, 0 },
	{ "alu", { 0x19 }, 1, -1, 0, 0 }, { "alu", { 0x3b }, 1, -1, 0, 0 }, { "alu", { 0x81 }, 1, -1, 0, 0 },
	{ "alu", { 0x83 }, 1, -1, 0, 0 }, { "alu", { 0x80 }, 1, -1, 0, 0 }, { "alu", { 0x40 }, 1, -2, 0, 0 },
	{ "alu", { 0x4b }, 1, -2, 0, 0 }, { "alu", { 0xf7 }, 1, 3, 0, 0 }, { "alu", { 0xfe }, 1, 1, 0, 0 },
	{ "logic", { 0x21 }, 1, -1, AF, 0 }, { "logic", { 0x0a }, 1, -1, AF, 0 }, { "logic", { 0x35 }, 1, -2, AF, 0 },
	{ "logic", { 0x85 }, 1, -1, AF, 0 }, { "logic", { 0xf7 }, 1, 2, 0, 0 },
	{ "shift", { 0xd3 }, 1, -1, 0, U_SHIFT }, { "shift", { 0xc0 }, 1, -1, 0, U_SHIFT },
	{ "shift", { 0xd1 }, 1, -1, 0, U_SHIFT },
	{ "muldiv", { 0xf7 }, 1, 4, SZAP, 0 }, { "muldiv", { 0xf6 }, 1, 5, SZAP, 0 },
	{ "muldiv", { 0xf7 }, 1, 6, ALLF, 0 }, { "muldiv", { 0xf7 }, 1, 7, ALLF, 0 },
	{ "muldiv", { 0x0f, 0xaf }, 2, -1, SZAP, 0 }, { "muldiv", { 0x6b }, 1, -1, SZAP, 0 },
	{ "move", { 0x89 }, 1, -1, 0, 0 }, { "move", { 0x8a }, 1, -1, 0, 0 }, { "move", { 0x8d }, 1, -1, 0, 0 },
	{ "move", { 0xc7 }, 1, 0, 0, 0 }, { "move", { 0x0f, 0xbe }, 2, -1, 0, 0 }, { "move", { 0x87 }, 1, -1, 0, 0 },
	{ "move", { 0x0f, 0xc1 }, 2, -1, 0, 0 }, { "move", { 0x0f, 0xb1 }, 2, -1, 0, 0 },
	{ "move", { 0x0f, 0x4c }, 2, -1, 0, 0 }, { "move", { 0x0f, 0x97 }, 2, 0, 0, 0 },
	{ "move", { 0x98 }, 1, -2, 0, 0 }, { "move", { 0x99 }, 1, -2, 0, 0 }, { "move", { 0xd7 }, 1, -2, 0, 0 },
	{ "move", { 0x9f }, 1, -2, 0, 0 }, { "move", { 0xa1 }, 1, -2, 0, 0 },
	{ "stack", { 0x50 }, 1, -2, 0, U_STACK }, { "stack", { 0x5f }, 1, -2, 0, U_STACK },
	{ "stack", { 0x60 }, 1, -2, 0, U_STACK }, { "stack", { 0x61 }, 1, -2, 0, U_STACK },
	{ "stack", { 0x68 }, 1, -2, 0, U_STACK }, { "stack", { 0xc8 }, 1, -2, 0, U_STACK },
	{ "stack", { 0xc9 }, 1, -2, 0, U_STACK }, { "stack", { 0xff }, 1, 6, 0, U_STACK },
	{ "bit", { 0x0f, 0xa3 }, 2, -1, OF | X86_FLAG_SF | AF | X86_FLAG_PF, U_BT },
	{ "bit", { 0x0f, 0xab }, 2, -1, OF | X86_FLAG_SF | AF | X86_FLAG_PF, U_BT },
	{ "bit", { 0x0f, 0xba }, 2, 6, OF | X86_FLAG_SF | AF | X86_FLAG_PF, 0 },
	{ "string", { 0xa4 }, 1, -2, 0, U_STR }, { "string", { 0xa5 }, 1, -2, 0, U_STR },
	{ "string", { 0xaa }, 1, -2, 0, U_STR }, { "string", { 0xa7 }, 1, -2, 0, U_STR },
	{ "string", { 0xae }, 1, -2, 0, U_STR }, { "string", { 0xad }, 1, -2, 0, U_STR },
	{ "bcd", { 0x27 }, 1, -2, OF, 0 }, { "bcd", { 0x2f }, 1, -2, OF, 0 },
	{ "bcd", { 0x37 }, 1, -2, OF | X86_FLAG_SF | X86_FLAG_ZF | X86_FLAG_PF, 0 },
	{ "bcd", { 0x3f }, 1, -2, OF | X86_FLAG_SF | X86_FLAG_ZF | X86_FLAG_PF, 0 },
	{ "bcd", { 0xd4 }, 1, -2, OF | AF | X86_FLAG_CF, 0 }, { "bcd", { 0xd5 }, 1, -2, OF | AF | X86_FLAG_CF, 0 },
	{ "branch", { 0x74 }, 1, -2, 0, U_BRANCH }, { "branch", { 0x0f, 0x8c }, 2, -2, 0, U_BRANCH },
	{ "branch", { 0xe9 }, 1, -2, 0, U_BRANCH }, { "branch", { 0xe8 }, 1, -2, 0, U_BRANCH | 0x10 },
	{ "branch", { 0xc3 }, 1, -2, 0, U_BRANCH | 0x10 }, { "branch", { 0xc2 }, 1, -2, 0, U_BRANCH | 0x10 },
	{ "branch", { 0xe2 }, 1, -2, 0, U_BRANCH }, { "branch", { 0xe3 }, 1, -2, 0, U_BRANCH },
	{ "branch", { 0xe1 }, 1, -2, 0, U_BRANCH }, { "branch", { 0xff }, 1, 4, 0, U_BRANCH },
	{ "misc", { 0xf5 }, 1, -2, 0, 0 }, { "misc", { 0xfc }, 1, -2, 0, 0 },
};
#define N_UTMPL (sizeof(utmpls) / sizeof(utmpls[0]))

struct ucase {
	uint8_t bytes[16];
	struct emu_insn in;
	uint32_t gpr[8];
	uint32_t flags;
};

static int uc_intno;

static void on_intr(uc_engine *uc, uint32_t intno, void *user)
{
	uc_intno = (int)intno;
	uc_emu_stop(uc);
}

static bool generate(const struct utmpl *t, unsigned mode, struct ucase *c)
{
	uint8_t *b = c->bytes;
	unsigned n = 0;
	if ((t->kind & 0xf) == U_STR && rng() % 2)
		b[n++] = (rng() & 1) ? 0xf3 : 0xf2;
	if (rng() % 4 == 0)
		b[n++] = 0x66;
	if (rng() % 4 == 0 && (t->kind & 0xf) != U_STACK && (t->kind & 0xf) != U_BRANCH)
		b[n++] = 0x67;
	memcpy(b + n, t->op, t->oplen);
	n += t->oplen;
	for (unsigned i = n; i < 16; i++)
		b[i] = (uint8_t)rng();
	if (t->reg >= 0 || t->reg == -1) {
		uint8_t m = b[n];
		if (t->reg >= 0)
			m = (uint8_t)((m & 0xc7) | (t->reg << 3));
		b[n] = m;
	}
	if (t->op[0] == 0xc8)
		b[n + 2] &= 3;
	if ((t->kind & 0xf) == U_BRANCH)
		b[n] = (uint8_t)(b[n] % 32);   /* short forward displacement (low byte of rel16/32 too) */
	if ((t->kind & 0xf) == U_BRANCH && t->oplen + n > 0) {
		for (unsigned i = n + 1; i < n + 4; i++)
			b[i] = 0;
	}
	if (emu_decode_mode(mode, b, 16, &c->in) != 0)
		return false;
	for (unsigned r = 0; r < 8; r++)
		c->gpr[r] = (uint32_t)rng();
	if (rng() % 3 == 0)
		for (unsigned r = 0; r < 8; r++)
			c->gpr[r] &= 0xff;
	/* Every address must land in the window: 16-bit addresses always do;
	 * 32-bit ones are built from the decoded base/index. */
	c->gpr[RSP] = 0x8000 + (uint32_t)(rng() % 512) * 4;
	if ((t->kind & 0xf) == U_STACK)
		c->gpr[RBP] = 0x9000 + (uint32_t)(rng() % 256) * 4;
	if ((t->kind & 0xf) == U_STR) {
		c->gpr[RSI] = 0x2000 + (uint32_t)(rng() % 0x1000);
		c->gpr[RDI] = 0x4000 + (uint32_t)(rng() % 0x1000);
		c->gpr[RCX] = (uint32_t)(rng() % 20);
	}
	if ((t->kind & 0xf) == U_BT && c->in.mod != 3)
		c->gpr[c->in.reg & 7] = (uint32_t)(rng() % 512);
	if ((t->kind & 0xf) == U_BRANCH && (t->kind & 0x10))
		c->gpr[RSP] = 0x8000;  /* RET pops a random return address: any value is fine */
	if (c->in.adsize == 4 && t->reg != -2 && c->in.mod != 3) {
		uint32_t target = 0x10000 + (uint32_t)(rng() % 0x4000);
		uint8_t base = c->in.base, index = c->in.index;
		if (base == EMU_REG_NONE) {
			if (index != EMU_REG_NONE)
				return false;
			return (uint32_t)c->in.disp < WIN_SIZE - 16 && c->in.disp >= 0;
		}
		if (index != EMU_REG_NONE && index != base && index != RSP)
			c->gpr[index] = (uint32_t)(rng() % 64);
		uint32_t idx = index != EMU_REG_NONE ? c->gpr[index] << c->in.scale : 0;
		if (base == RSP || index == base)
			return false;
		c->gpr[base] = target - idx - (uint32_t)c->in.disp;
	}
	if (c->in.adsize == 2 && t->reg != -2 && c->in.mod != 3) {
		/* An access running past offset FFFF faults on the segment limit,
		 * which is the system module's check, not modelled here. */
		uint32_t ea = (uint32_t)c->in.disp;
		if (c->in.base != EMU_REG_NONE)
			ea += c->gpr[c->in.base];
		if (c->in.index != EMU_REG_NONE)
			ea += c->gpr[c->in.index];
		if ((ea & 0xffff) > 0xfff0)
			return false;
	}
	if (c->in.adsize == 4 && t->op[0] == 0xa1 && t->oplen == 1)
		return false;   /* moffs32 out of the window */
	if (t->op[0] == 0xd7 && c->in.adsize == 4)
		c->gpr[RBX] = 0x3000;
	c->flags = ((uint32_t)rng() & X86_FLAGS_ARITH) | X86_FLAG_FIXED;
	if ((t->kind & 0xf) == U_STR && rng() % 2)
		c->flags |= X86_FLAG_DF;
	return true;
}

static uint32_t undefined_flags(const struct utmpl *t, const struct ucase *c, bool *skip)
{
	uint32_t u = t->undef;
	*skip = false;
	if (t->kind == U_SHIFT) {
		unsigned size = c->in.opsize, op = (c->in.modrm >> 3) & 7;
		uint32_t cnt = c->in.opcode == 0xd1 ? 1 : c->in.opcode == 0xd3 ? c->gpr[RCX] & 0xff : (uint32_t)c->in.imm & 0xff;
		cnt &= 0x1f;
		if (cnt != 1)
			u |= OF;
		if (op >= 4)
			u |= AF;
		if (op >= 4 && cnt >= size * 8)
			*skip = true;   /* result of an over-wide 8/16-bit shift: flags undefined */
		if ((op == 2 || op == 3) && size < 4)
			u |= OF;
	}
	return u;
}

struct ugroup { const char *name; unsigned n; };

static void run_mode(unsigned mode, uc_mode um, const char *mname)
{
	uc_engine *uc;
	cr_assert_eq(uc_open(UC_ARCH_X86, um, &uc), UC_ERR_OK);
	cr_assert_eq(uc_mem_map(uc, 0, WIN_SIZE, UC_PROT_ALL), UC_ERR_OK);
	uc_hook hh;
	uc_hook_add(uc, &hh, UC_HOOK_INTR, (void *)on_intr, NULL, 1, 0);
	static uint8_t win[WIN_SIZE], emu_win[WIN_SIZE], uc_win[WIN_SIZE];
	unsigned per = getenv("VESSEL_DIFF_LONG") ? 20000 : 300;
	struct ugroup groups[16];
	unsigned ng = 0, bad = 0;
	for (unsigned k = 0; k < N_UTMPL; k++) {
		const struct utmpl *t = &utmpls[k];
		unsigned gi;
		for (gi = 0; gi < ng && strcmp(groups[gi].name, t->group); gi++)
			;
		if (gi == ng)
			groups[ng++] = (struct ugroup){ t->group, 0 };
		for (unsigned iter = 0; iter < per; iter++) {
			struct ucase c;
			if (!generate(t, mode, &c))
				continue;
			for (unsigned i = 0; i < WIN_SIZE; i += 8) {
				uint64_t v = rng();
				memcpy(win + i, &v, 8);
			}
			memcpy(win + CODE_AT, c.bytes, 16);
			if (mode == EMU_MODE_REAL) {
				/* Every IVT vector leads outside the window (F000:0000), where
				 * Unicorn stops on the fetch after delivering a real-mode
				 * exception. */
				for (unsigned v = 0; v < 256; v++) {
					uint16_t ivt[2] = { 0, 0xf000 };
					memcpy(win + v * 4, ivt, 4);
				}
			}
			memcpy(emu_win, win, WIN_SIZE);
			/* Unicorn */
			uc_mem_write(uc, 0, win, WIN_SIZE);
			/* New code at the same address: drop QEMU's translated blocks. */
			uc_ctl_remove_cache(uc, CODE_AT, CODE_AT + 16);
			for (unsigned r = 0; r < 8; r++)
				uc_reg_write(uc, uc_gpr[r], &c.gpr[r]);
			uint32_t fl = c.flags, zero = 0;
			uc_reg_write(uc, UC_X86_REG_EFLAGS, &fl);
			static const int segs[] = { UC_X86_REG_DS, UC_X86_REG_ES, UC_X86_REG_SS };
			/* Real mode: the code at 1000:F000 (IP is 16 bits); Unicorn takes
			 * and reports EIP as the linear address there. */
			uint32_t cs = 0x1000;
			if (mode == EMU_MODE_REAL) {
				uc_reg_write(uc, UC_X86_REG_CS, &cs);
				for (unsigned s = 0; s < 3; s++)
					uc_reg_write(uc, segs[s], &zero);
			}
			uint32_t eip = CODE_AT;
			uc_reg_write(uc, UC_X86_REG_EIP, &eip);
			if (getenv("UC_TRACE")) { fprintf(stderr, "case %s:", t->group); for (unsigned i = 0; i < c.in.len; i++) fprintf(stderr, " %02x", c.bytes[i]); fprintf(stderr, "\n"); }
			uc_intno = -1;
			/* Run to the next instruction (a REP is one instruction per
			 * iteration for Unicorn's counter, and its counting hook trips
			 * TCG on some encodings); branches stop by count. */
			uc_err ue = (t->kind & 0xf) != U_BRANCH
				? uc_emu_start(uc, CODE_AT, CODE_AT + c.in.len, 0, 0)
				: uc_emu_start(uc, CODE_AT, CODE_AT + 0x800, 0, 1);
			int uexc = uc_intno;
			if (ue != UC_ERR_OK && uexc < 0 && mode != EMU_MODE_REAL)
				uexc = X86_EXC_GP;
			/* engine */
			struct harness h;
			harness_init(&h, emu_win, 0, WIN_SIZE, mode);
			for (unsigned r = 0; r < 8; r++)
				h.cpu.gpr[r] = c.gpr[r];
			emu_set_rflags(&h.cpu, c.flags);
			h.cpu.rip = CODE_AT;
			if (mode == EMU_MODE_REAL) {
				for (int s = 0; s < SEG_COUNT; s++)
					h.cpu.seg[s].limit = 0xffff;
				h.cpu.seg[SEG_CS].sel = 0x1000;
				h.cpu.seg[SEG_CS].base = 0x10000;
				h.cpu.rip = CODE_AT - 0x10000;
			}
			int eexc = harness_step(&h);
			if (eexc == X86_EXC_SS)
				eexc = X86_EXC_GP;
			if (mode == EMU_MODE_REAL && eexc >= 0 && uexc == X86_EXC_DF)
				uexc = eexc;   /* the unmapped handler fetch after delivery */
			if (mode == EMU_MODE_REAL && eexc >= 0 && uexc < 0) {
				/* Unicorn delivers real-mode exceptions itself, through
				 * the IVT: it stands at the vector's handler. */
				uint16_t ip, sel;
				uint32_t ucs, ueip;
				memcpy(&ip, win + eexc * 4, 2);
				memcpy(&sel, win + eexc * 4 + 2, 2);
				uc_reg_read(uc, UC_X86_REG_CS, &ucs);
				uc_reg_read(uc, UC_X86_REG_EIP, &ueip);
				if ((ucs == sel && (ueip == ip || ueip == (uint32_t)sel * 16 + ip)) || ueip == CODE_AT - 0x10000)
					uexc = eexc;   /* at the handler, or stopped on the faulting instruction */
			}
			groups[gi].n++;
			char why[160] = "";
			bool skip;
			uint32_t undef = undefined_flags(t, &c, &skip);
			if ((uexc >= 0) != (eexc >= 0) || (uexc >= 0 && uexc != eexc && uexc != X86_EXC_GP)) {
				snprintf(why, sizeof(why), "fault: unicorn %d, engine %d", uexc, eexc);
			} else if (uexc < 0 && !skip) {
				uint32_t v, uf;
				for (unsigned r = 0; r < 8 && !why[0]; r++) {
					uc_reg_read(uc, uc_gpr[r], &v);
					if (v != (uint32_t)h.cpu.gpr[r])
						snprintf(why, sizeof(why), "reg %u: unicorn %#x, engine %#llx", r, v,
							 (unsigned long long)h.cpu.gpr[r]);
				}
				uc_reg_read(uc, UC_X86_REG_EFLAGS, &uf);
				uint32_t mask = (X86_FLAGS_ARITH | X86_FLAG_DF) & ~undef;
				if (!why[0] && ((uf ^ (uint32_t)emu_get_rflags(&h.cpu)) & mask))
					snprintf(why, sizeof(why), "flags: unicorn %#x, engine %#llx (mask %#x)", uf,
						 (unsigned long long)emu_get_rflags(&h.cpu), mask);
				uc_reg_read(uc, UC_X86_REG_EIP, &v);
				/* Unicorn reports a real-mode EIP as linear or as IP depending
				 * on how it stopped: either will do. */
				if (!why[0] && v != (uint32_t)(h.cpu.rip + h.cpu.seg[SEG_CS].base) && v != (uint32_t)h.cpu.rip)
					snprintf(why, sizeof(why), "eip: unicorn %#x, engine %#llx", v,
						 (unsigned long long)h.cpu.rip);
				uc_mem_read(uc, 0, uc_win, WIN_SIZE);
				if (!why[0] && memcmp(uc_win, emu_win, WIN_SIZE))
					for (unsigned i = 0; i < WIN_SIZE; i++)
						if (uc_win[i] != emu_win[i]) {
							snprintf(why, sizeof(why), "memory %#x: unicorn %02x, engine %02x", i,
								 uc_win[i], emu_win[i]);
							break;
						}
			}
			if (why[0] && bad++ < 25) {
				char hex[64] = "";
				for (unsigned i = 0; i < c.in.len; i++)
					sprintf(hex + 3 * i, "%02x ", c.bytes[i]);
				cr_log_error("%s %s: %s-> %s", mname, t->group, hex, why);
			}
		}
	}
	for (unsigned gi = 0; gi < ng; gi++)
		printf("unicorn diff, %s mode, group %-7s: %u cases\n", mname, groups[gi].name, groups[gi].n);
	uc_close(uc);
	cr_assert_eq(bad, 0, "%u %s-mode cases differ from Unicorn", bad, mname);
}

Test(unicorn_diff, real_mode_16)
{
	run_mode(EMU_MODE_REAL, UC_MODE_16, "16-bit");
}
/* No 32-bit variant: Unicorn 2.0.1's UC_MODE_32 neither reports #DE
 * through its interrupt hook nor survives ("tcg fatal error") some
 * single-instruction runs; 32-bit code is covered by the system module's
 * guest tests and the 64-bit native comparison shares every handler. */

/* Regression: AAS subtracts 6 from all of AX (AL's borrow reaches AH)
 * before decrementing AH (SDM vol. 2A, AAS "Operation"). */
Test(regressions, aas_borrows_from_ah)
{
	static uint8_t mem[0x20000];
	struct harness h;
	harness_init(&h, mem, 0, sizeof(mem), EMU_MODE_REAL);
	mem[0x100] = 0x3f;   /* aas */
	h.cpu.rip = 0x100;
	h.cpu.gpr[RAX] = 0x0105;
	emu_set_rflags(&h.cpu, X86_FLAG_FIXED | X86_FLAG_AF);
	cr_assert_eq(harness_step(&h), -1);
	cr_assert_eq(h.cpu.gpr[RAX] & 0xffff, 0xff0f);
	cr_assert(emu_get_rflags(&h.cpu) & X86_FLAG_CF);
}
