/* Miscellaneous general-purpose instructions: decimal arithmetic (DAA,
 * DAS, AAA, AAS, AAM, AAD), flag instructions (CLC, STC, CMC, CLD, STD),
 * SALC, BOUND, IN/OUT, RDRAND/RDSEED, CRC32 (SDM vol. 2A/2B). */
#include "cpu/emu/core/core.h"

#include <sys/random.h>

static inline uint32_t cf_af(bool cf, bool af)
{
	return (cf ? X86_FLAG_CF : 0) | (af ? X86_FLAG_AF : 0);
}

static void set_al_szp(struct emu_cpu *cpu, uint8_t al, uint32_t mask, uint32_t val)
{
	lf_set(cpu, LF_LOGIC, 1, al, 0, 0);
	emu_flags_store(cpu, mask, val);
}

void h_daa_das(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint32_t f = emu_flags_arith(cpu);
	uint8_t al = (uint8_t)cpu->gpr[RAX], old = al;
	bool cf = false, af = false, old_cf = f & X86_FLAG_CF, sub = in->opcode == 0x2f;
	if ((al & 0xf) > 9 || (f & X86_FLAG_AF)) {
		cf = old_cf || (sub ? al < 6 : al > 0xf9);
		al = (uint8_t)(sub ? al - 6 : al + 6);
		af = true;
	}
	if (old > 0x99 || old_cf) {
		al = (uint8_t)(sub ? al - 0x60 : al + 0x60);
		cf = true;
	}
	reg_set(cpu, RAX, 1, false, al);
	/* OF is undefined: cleared. */
	set_al_szp(cpu, al, X86_FLAG_CF | X86_FLAG_AF | X86_FLAG_OF, cf_af(cf, af));
}

void h_aaa_aas(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint32_t f = emu_flags_arith(cpu);
	uint16_t ax = (uint16_t)cpu->gpr[RAX];
	bool adj = (ax & 0xf) > 9 || (f & X86_FLAG_AF);
	if (adj) {
		if (in->opcode == 0x37)
			ax = (uint16_t)(ax + 0x106);
		else
			ax = (uint16_t)(ax - 6 - 0x100);   /* AX -= 6 (borrowing from AH), then AH -= 1 */
	}
	ax &= 0xff0f;
	reg_set(cpu, RAX, 2, false, ax);
	set_al_szp(cpu, (uint8_t)ax, X86_FLAG_CF | X86_FLAG_AF | X86_FLAG_OF, cf_af(adj, adj));
}

void h_aam(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t base = (uint8_t)in->imm, al = (uint8_t)cpu->gpr[RAX];
	if (base == 0)
		emu_raise_noerr(cpu, X86_EXC_DE);
	uint8_t q = al / base, r = al % base;
	reg_set(cpu, RAX, 2, false, (uint16_t)(q << 8 | r));
	set_al_szp(cpu, r, X86_FLAG_CF | X86_FLAG_AF | X86_FLAG_OF, 0);
}

void h_aad(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t base = (uint8_t)in->imm;
	uint16_t ax = (uint16_t)cpu->gpr[RAX];
	uint8_t al = (uint8_t)((ax & 0xff) + (ax >> 8) * base);
	reg_set(cpu, RAX, 2, false, al);
	set_al_szp(cpu, al, X86_FLAG_CF | X86_FLAG_AF | X86_FLAG_OF, 0);
}

/* D6 SALC (undocumented, i64): AL = CF ? FF : 00. */
void h_salc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	reg_set(cpu, RAX, 1, false, emu_flag_cf(cpu) ? 0xff : 0);
}

void h_flagop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	switch (in->opcode) {
	case 0xf5: emu_flags_store(cpu, X86_FLAG_CF, emu_flag_cf(cpu) ? 0 : X86_FLAG_CF); break;
	case 0xf8: emu_flags_store(cpu, X86_FLAG_CF, 0); break;
	case 0xf9: emu_flags_store(cpu, X86_FLAG_CF, X86_FLAG_CF); break;
	case 0xfc: cpu->rflags &= ~(uint64_t)X86_FLAG_DF; break;
	default: cpu->rflags |= X86_FLAG_DF; break;
	}
}

/* BOUND r, m16&16 / m32&32: #BR when the signed index is outside. */
void h_bound(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod == 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	unsigned size = in->opsize;
	uint64_t ea = emu_insn_ea(cpu, in);
	int64_t lo = (int64_t)sext(emu_read(cpu, in->seg, ea, size), size);
	int64_t hi = (int64_t)sext(emu_read(cpu, in->seg, (ea + size) & emu_size_mask(in->adsize), size), size);
	int64_t idx = (int64_t)sext(reg_get(cpu, in->reg, size, false), size);
	if (idx < lo || idx > hi)
		emu_raise_noerr(cpu, X86_EXC_BR);
}

/* RDRAND/RDSEED r (0F C7 /6, /7; register form only): host entropy,
 * CF = 1 on success and the other arithmetic flags cleared. */
void h_rdrand(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->mod != 3)
		emu_raise_noerr(cpu, X86_EXC_UD);
	uint64_t v = 0;
	bool ok = getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v);
	if (!ok)
		v = 0;
	reg_set(cpu, in->rm, in->opsize, in->rex, v);
	emu_flags_store(cpu, X86_FLAGS_ARITH, ok ? X86_FLAG_CF : 0);
}

/* CRC32 (F2 0F 38 F0/F1): CRC-32C, polynomial 11EDC6F41h, bit-reflected
 * (SDM vol. 2A, CRC32). */
static uint32_t crc32c_update(uint32_t crc, uint64_t data, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		crc ^= (uint8_t)(data >> (8 * i));
		for (unsigned k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return crc;
}

void h_crc32(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned ss = in->opcode == 0xf0 ? 1 : in->opsize;
	uint64_t v = rm_read(cpu, in, ss);
	uint32_t crc = crc32c_update((uint32_t)cpu->gpr[in->reg], v, ss);
	cpu->gpr[in->reg] = crc;   /* 32- or 64-bit destination, zero-extended */
}

