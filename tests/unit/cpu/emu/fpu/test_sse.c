/* Architectural rules of the MMX/SSE/XSAVE handlers, driven with
 * hand-built instructions: availability (#UD/#NM), alignment #GP, MXCSR
 * exception masking (#XM/#UD), MMX/x87 aliasing, FXSAVE/FXRSTOR,
 * XSAVE/XRSTOR, XGETBV/XSETBV, CPUID leaf 0xD and the snapshot accessors. */
#include <criterion/criterion.h>
#include <errno.h>

#include "harness.h"

static struct emu_insn reg(enum emu_opmap map, uint8_t op, enum emu_mprefix mp, unsigned r, unsigned rm)
{
	return h_insn_reg(map, op, mp, r, rm);
}

static struct emu_insn mem(enum emu_opmap map, uint8_t op, enum emu_mprefix mp, unsigned r, uint32_t addr)
{
	return h_insn_mem(map, op, mp, r, addr);
}

static void ok(struct emu_cpu *cpu, struct emu_insn in)
{
	int v = h_exec(cpu, &in);
	cr_assert_eq(v, -1, "op %02x raised %d", in.opcode, v);
}

static int exc(struct emu_cpu *cpu, struct emu_insn in)
{
	return h_exec(cpu, &in);
}

static void set_f32(struct emu_cpu *cpu, unsigned x, float a, float b, float c, float d)
{
	float v[4] = { a, b, c, d };
	memcpy(cpu->xmm[x].b, v, 16);
}

Test(sse, availability)
{
	struct emu_cpu *cpu = h_cpu();
	struct emu_insn addps = reg(EMU_MAP_0F, 0x58, EMU_MP_NONE, 0, 1);
	struct emu_insn paddb_mmx = reg(EMU_MAP_0F, 0xfc, EMU_MP_NONE, 0, 1);
	ok(cpu, addps);
	cpu->cr4 &= ~X86_CR4_OSFXSR;
	cr_assert_eq(exc(cpu, addps), X86_EXC_UD, "SSE without CR4.OSFXSR");
	cr_assert_eq(exc(cpu, paddb_mmx), -1, "MMX does not need OSFXSR");
	cpu->cr4 |= X86_CR4_OSFXSR;
	cpu->cr0 |= X86_CR0_TS;
	cr_assert_eq(exc(cpu, addps), X86_EXC_NM);
	cr_assert_eq(exc(cpu, paddb_mmx), X86_EXC_NM);
	cpu->cr0 |= X86_CR0_EM;
	cr_assert_eq(exc(cpu, addps), X86_EXC_UD, "EM wins over TS");
	cr_assert_eq(exc(cpu, paddb_mmx), X86_EXC_UD);
	h_free(cpu);
}

Test(sse, alignment)
{
	struct emu_cpu *cpu = h_cpu();
	memset(h_mem + 0x100, 0x11, 32);
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0x28, EMU_MP_NONE, 0, 0x108)), X86_EXC_GP, "MOVAPS misaligned");
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xfe, EMU_MP_66, 0, 0x108)), X86_EXC_GP, "PADDD m128 misaligned");
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0x7f, EMU_MP_66, 0, 0x104)), X86_EXC_GP, "MOVDQA store misaligned");
	ok(cpu, mem(EMU_MAP_0F, 0x10, EMU_MP_NONE, 0, 0x108));    /* MOVUPS */
	ok(cpu, mem(EMU_MAP_0F, 0x6f, EMU_MP_F3, 1, 0x101));      /* MOVDQU */
	ok(cpu, mem(EMU_MAP_0F, 0x58, EMU_MP_F3, 0, 0x103));      /* ADDSS m32 */
	ok(cpu, mem(EMU_MAP_0F3A, 0x63, EMU_MP_66, 0, 0x105));    /* PCMPISTRI m128 unaligned */
	ok(cpu, mem(EMU_MAP_0F, 0x28, EMU_MP_NONE, 2, 0x100));
	cr_assert_eq(cpu->xmm[2].q[0], 0x1111111111111111ull);
	/* in 32-bit code the segment base counts */
	cpu->mode = EMU_MODE_PROT32;
	cpu->seg[SEG_DS].base = 8;
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0x28, EMU_MP_NONE, 0, 0x108)), -1);
	h_free(cpu);
}

Test(sse, faulting_access_commits_nothing)
{
	struct emu_cpu *cpu = h_cpu();
	memset(cpu->xmm[3].b, 0x33, 16);
	memset(h_mem + H_MEM_SIZE - 8, 0x44, 8);
	/* MOVDQU xmm3, [end - 8]: the second half faults */
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0x6f, EMU_MP_F3, 3, H_MEM_SIZE - 8)), X86_EXC_PF);
	cr_assert_eq(cpu->xmm[3].q[0], 0x3333333333333333ull);
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F38, 0x38, EMU_MP_66, 3, H_MEM_SIZE - 8)), X86_EXC_GP, "PMINSB m128 misaligned");
	/* MOVNTDQA and LDDQU have no register form */
	cr_assert_eq(exc(cpu, reg(EMU_MAP_0F38, 0x2a, EMU_MP_66, 0, 1)), X86_EXC_UD);
	cr_assert_eq(exc(cpu, reg(EMU_MAP_0F, 0xf0, EMU_MP_F2, 0, 1)), X86_EXC_UD);
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xf0, EMU_MP_F2, 0, 0x101)), -1, "LDDQU unaligned");
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F38, 0x2a, EMU_MP_66, 0, 0x101)), X86_EXC_GP, "MOVNTDQA aligned");
	h_free(cpu);
}

Test(sse, mxcsr_masked_and_unmasked)
{
	struct emu_cpu *cpu = h_cpu();
	set_f32(cpu, 0, 1.0f, 2.0f, 3.0f, 4.0f);
	set_f32(cpu, 1, 0.0f, 1.0f, 1.0f, 1.0f);
	ok(cpu, reg(EMU_MAP_0F, 0x5e, EMU_MP_NONE, 0, 1));       /* divps: 1/0 masked */
	cr_assert_eq(cpu->mxcsr & MXCSR_FLAGS, 0x4, "ZE flag");
	cr_assert_eq(cpu->xmm[0].d[0], 0x7f800000u);
	/* unmask ZE: #XM, destination untouched, flag recorded */
	cpu->mxcsr = MXCSR_DEFAULT & ~0x200u;
	set_f32(cpu, 0, 1.0f, 2.0f, 3.0f, 4.0f);
	cr_assert_eq(exc(cpu, reg(EMU_MAP_0F, 0x5e, EMU_MP_NONE, 0, 1)), X86_EXC_XM);
	cr_assert_eq(cpu->xmm[0].d[0], 0x3f800000u);
	cr_assert(cpu->mxcsr & 0x4);
	cpu->cr4 &= ~X86_CR4_OSXMMEXCPT;
	cr_assert_eq(exc(cpu, reg(EMU_MAP_0F, 0x5e, EMU_MP_NONE, 0, 1)), X86_EXC_UD);
	/* reserved MXCSR bits planted from outside never reach the host's LDMXCSR */
	cpu->mxcsr = 0xffff1f80u;
	ok(cpu, reg(EMU_MAP_0F, 0x58, EMU_MP_NONE, 2, 3));
	/* rounding control: 1/3 rounded up vs down differ by one ulp */
	set_f32(cpu, 2, 1.0f, 0, 0, 0);
	set_f32(cpu, 3, 3.0f, 1, 1, 1);
	cpu->mxcsr = 0x1f80 | (1u << 13);                        /* down */
	ok(cpu, reg(EMU_MAP_0F, 0x5e, EMU_MP_F3, 2, 3));
	uint32_t down = cpu->xmm[2].d[0];
	set_f32(cpu, 2, 1.0f, 0, 0, 0);
	cpu->mxcsr = 0x1f80 | (2u << 13);                        /* up */
	ok(cpu, reg(EMU_MAP_0F, 0x5e, EMU_MP_F3, 2, 3));
	cr_assert_eq(cpu->xmm[2].d[0], down + 1);
	cr_assert(cpu->mxcsr & 0x20, "PE");
	/* LDMXCSR rejects reserved bits, STMXCSR stores */
	memcpy(h_mem + 0x40, &(uint32_t){ 0x10000 }, 4);
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 2, 0x40)), X86_EXC_GP);
	memcpy(h_mem + 0x40, &(uint32_t){ 0x9fc0 }, 4);
	ok(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 2, 0x40));
	ok(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 3, 0x44));
	cr_assert_eq(*(uint32_t *)(h_mem + 0x44), 0x9fc0);
	h_free(cpu);
}

Test(sse, comiss_flags)
{
	struct emu_cpu *cpu = h_cpu();
	set_f32(cpu, 0, 1.0f, 0, 0, 0);
	set_f32(cpu, 1, 2.0f, 0, 0, 0);
	cpu->rflags = X86_FLAG_FIXED | X86_FLAG_OF | X86_FLAG_SF | X86_FLAG_AF;
	ok(cpu, reg(EMU_MAP_0F, 0x2f, EMU_MP_NONE, 0, 1));
	cr_assert_eq(cpu->rflags & X86_FLAGS_ARITH, X86_FLAG_CF);
	cpu->xmm[1].d[0] = 0x7fc00000u;                          /* QNaN */
	ok(cpu, reg(EMU_MAP_0F, 0x2e, EMU_MP_NONE, 0, 1));       /* ucomiss: no IE for QNaN */
	cr_assert_eq(cpu->rflags & X86_FLAGS_ARITH, X86_FLAG_ZF | X86_FLAG_PF | X86_FLAG_CF);
	cr_assert_eq(cpu->mxcsr & 1, 0);
	ok(cpu, reg(EMU_MAP_0F, 0x2f, EMU_MP_NONE, 0, 1));       /* comiss: IE */
	cr_assert_eq(cpu->mxcsr & 1, 1);
	h_free(cpu);
}

Test(mmx, aliasing_and_emms)
{
	struct emu_cpu *cpu = h_cpu();
	struct fpu_fx *fx = fpu_fx(cpu);
	/* push one x87 value so TOP != 0 */
	ok(cpu, h_x87(0xd9, 0xe8));
	cr_assert_eq((fx->fsw >> 11) & 7, 7);
	memcpy(h_mem + 0x80, &(uint64_t){ 0x0102030405060708ull }, 8);
	ok(cpu, mem(EMU_MAP_0F, 0x6f, EMU_MP_NONE, 3, 0x80));    /* movq mm3, [0x80] */
	cr_assert_eq((fx->fsw >> 11) & 7, 0, "MMX sets TOP = 0");
	cr_assert_eq(fx->ftw, 0xff, "MMX tags all valid");
	cr_assert_eq(fx->st[3].b[8], 0xff);
	cr_assert_eq(fx->st[3].b[9], 0xff, "exponent all ones");
	cr_assert_eq(fpu_mmx_get(cpu, 3), 0x0102030405060708ull);
	/* the x87 view sees a NaN in physical register 3 */
	ok(cpu, reg(EMU_MAP_0F, 0xfc, EMU_MP_NONE, 3, 3));      /* paddb mm3, mm3 */
	cr_assert_eq(fpu_mmx_get(cpu, 3), 0x020406080a0c0e10ull);
	ok(cpu, reg(EMU_MAP_0F, 0x77, EMU_MP_NONE, 0, 0));      /* emms */
	cr_assert_eq(fx->ftw, 0);
	/* MOVD r32 <- mm zero-extends */
	cpu->gpr[RDX] = ~0ull;
	ok(cpu, reg(EMU_MAP_0F, 0x7e, EMU_MP_NONE, 3, RDX));
	cr_assert_eq(cpu->gpr[RDX], 0x0a0c0e10ull);
	/* pending x87 exception: MMX raises #MF */
	fx->fsw |= FSW_ES | FSW_IE;
	cr_assert_eq(exc(cpu, reg(EMU_MAP_0F, 0xfc, EMU_MP_NONE, 3, 3)), X86_EXC_MF);
	h_free(cpu);
}

Test(mmx, reads_physical_register_whatever_top)
{
	struct emu_cpu *cpu = h_cpu();
	ok(cpu, h_x87(0xd9, 0xe8));                               /* fld1: TOP = 7, physical 7 = 1.0 */
	ok(cpu, h_x87(0xd9, 0xee));                               /* fldz: TOP = 6, physical 6 = 0.0 */
	ok(cpu, mem(EMU_MAP_0F, 0x7f, EMU_MP_NONE, 7, 0x80));    /* movq [0x80], mm7 */
	cr_assert_eq(*(uint64_t *)(h_mem + 0x80), 0x8000000000000000ull, "mantissa of 1.0");
	cr_assert_eq((fpu_fx(cpu)->fsw >> 11) & 7, 0);
	long double st;
	memcpy(&st, fpu_fx(cpu)->st[7].b, 10);
	cr_assert_eq(st, 1.0L, "physical 7 is slot 7 once TOP = 0");
	h_free(cpu);
}

Test(snapshot, internal_image_is_standard_fxsave)
{
	struct emu_cpu *cpu = h_cpu();
	ok(cpu, h_x87(0xd9, 0xeb));
	ok(cpu, h_x87(0xd9, 0xe8));
	ok(cpu, h_x87(0xd9, 0xf7));                               /* fincstp: TOP moves, slots rotate */
	struct x86_fpu img;
	emu_fpu_get(cpu, &img);
	/* MXCSR (bytes 24-31) lives in cpu->mxcsr */
	cr_assert_eq(memcmp(img.fxsave, cpu->fpu.fxsave, 24), 0, "x87 part of cpu->fpu is an FXSAVE image");
	cr_assert_eq(memcmp(img.fxsave + 32, cpu->fpu.fxsave + 32, 128), 0, "registers in stack order");
	long double st7;
	memcpy(&st7, img.fxsave + 32 + 16 * 7, 10);
	cr_assert_eq(st7, 1.0L, "after FINCSTP the old ST0 is ST7");
	h_free(cpu);
}

Test(fxsave, round_trip_and_checks)
{
	struct emu_cpu *cpu = h_cpu();
	ok(cpu, h_x87(0xd9, 0xeb));                               /* fldpi */
	ok(cpu, h_x87(0xd9, 0xe8));                               /* fld1 */
	for (unsigned i = 0; i < 16; i++)
		memset(cpu->xmm[i].b, (int)(i + 1), 16);
	cpu->mxcsr = 0x3f80;
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 0, 0x1008)), X86_EXC_GP, "FXSAVE needs 16-byte alignment");
	struct emu_insn fxsave64 = mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 0, 0x1000);
	fxsave64.rex = 0x48;
	ok(cpu, fxsave64);
	const uint8_t *img = h_mem + 0x1000;
	cr_assert_eq(*(uint16_t *)img, 0x037f);
	cr_assert_eq((*(uint16_t *)(img + 2) >> 11) & 7, 6);
	cr_assert_eq(img[4], 0xc0, "abridged tag: physical 6 and 7");
	cr_assert_eq(*(uint32_t *)(img + 24), 0x3f80);
	cr_assert_eq(*(uint32_t *)(img + 28), 0xffff, "MXCSR_MASK");
	long double st0;
	memcpy(&st0, img + 32, 10);
	cr_assert_eq(st0, 1.0L, "ST0 first, in stack order");
	cr_assert_eq(img[160 + 16 * 15], 16);
	/* wipe the state, restore it */
	ok(cpu, h_x87(0xdb, 0xe3));
	memset(cpu->xmm, 0, sizeof(cpu->xmm));
	cpu->mxcsr = 0x1f80;
	struct emu_insn fxrstor = mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 1, 0x1000);
	ok(cpu, fxrstor);
	cr_assert_eq(cpu->mxcsr, 0x3f80);
	cr_assert_eq(cpu->xmm[15].b[0], 16);
	ok(cpu, h_x87_mem(0xdb, 7, 0x40));
	ok(cpu, h_x87_mem(0xdb, 7, 0x50));
	long double a, b;
	memcpy(&a, h_mem + 0x40, 10);
	memcpy(&b, h_mem + 0x50, 10);
	cr_assert_eq(a, 1.0L);
	cr_assert_eq(b, 3.14159265358979323851280895940618620443274267L);
	/* reserved MXCSR bits in the image: #GP */
	*(uint32_t *)(h_mem + 0x1000 + 24) = 0x40000;
	cr_assert_eq(exc(cpu, fxrstor), X86_EXC_GP);
	cpu->cr0 |= X86_CR0_TS;
	cr_assert_eq(exc(cpu, fxsave64), X86_EXC_NM);
	h_free(cpu);
}

static void set_edx_eax(struct emu_cpu *cpu, uint64_t v)
{
	cpu->gpr[RAX] = (uint32_t)v;
	cpu->gpr[RDX] = v >> 32;
}

Test(xsave, xsetbv_xgetbv_rules)
{
	struct emu_cpu *cpu = h_cpu();
	struct emu_insn in = reg(EMU_MAP_0F, 0x01, EMU_MP_NONE, 2, 1);
	jmp_buf env;
	cpu->fault_env = &env;
#define TRY(fn) (setjmp(env) ? cpu->exc_vector : ((fn)(cpu, &in), -1))
	cpu->gpr[RCX] = 0;
	set_edx_eax(cpu, 3);
	cr_assert_eq(TRY(emu_fpu_xsetbv), -1);
	cr_assert_eq(cpu->xcr0, 3);
	set_edx_eax(cpu, 0);
	cr_assert_eq(TRY(emu_fpu_xgetbv), -1);
	cr_assert_eq(cpu->gpr[RAX], 3);
	cr_assert_eq(cpu->gpr[RDX], 0);
	set_edx_eax(cpu, 2);
	cr_assert_eq(TRY(emu_fpu_xsetbv), X86_EXC_GP, "x87 bit must stay set");
	set_edx_eax(cpu, 7);
	cr_assert_eq(TRY(emu_fpu_xsetbv), X86_EXC_GP, "AVX is not supported");
	set_edx_eax(cpu, 1ull << 32 | 3);
	cr_assert_eq(TRY(emu_fpu_xsetbv), X86_EXC_GP);
	set_edx_eax(cpu, 3);
	cpu->gpr[RCX] = 1;
	cr_assert_eq(TRY(emu_fpu_xsetbv), X86_EXC_GP, "only XCR0 is writable");
	cr_assert_eq(TRY(emu_fpu_xgetbv), -1, "XGETBV ECX=1: XINUSE");
	cpu->gpr[RCX] = 2;
	cr_assert_eq(TRY(emu_fpu_xgetbv), X86_EXC_GP);
	cpu->gpr[RCX] = 0;
	cpu->cpl = 3;
	cr_assert_eq(TRY(emu_fpu_xsetbv), X86_EXC_GP, "CPL 3");
	cr_assert_eq(TRY(emu_fpu_xgetbv), -1, "XGETBV works at CPL 3");
	cpu->cpl = 0;
	cpu->cr4 &= ~X86_CR4_OSXSAVE;
	cr_assert_eq(TRY(emu_fpu_xsetbv), X86_EXC_UD);
	cr_assert_eq(TRY(emu_fpu_xgetbv), X86_EXC_UD);
#undef TRY
	uint32_t r[4];
	emu_fpu_cpuid_xsave(cpu, 0, r);
	cr_assert_eq(r[0], 3);
	cr_assert_eq(r[1], 576);
	cr_assert_eq(r[2], 576);
	cr_assert_eq(r[3], 0);
	emu_fpu_cpuid_xsave(cpu, 1, r);
	cr_assert_eq(r[0] & 1, 1, "XSAVEOPT");
	emu_fpu_cpuid_xsave(cpu, 2, r);
	cr_assert_eq(r[0] | r[1] | r[2] | r[3], 0, "no AVX component");
	h_free(cpu);
}

Test(xsave, save_restore_and_header_checks)
{
	struct emu_cpu *cpu = h_cpu();
	cpu->xcr0 = 3;
	ok(cpu, h_x87(0xd9, 0xe8));
	memset(cpu->xmm[5].b, 0x55, 16);
	cpu->mxcsr = 0x1fa0;
	set_edx_eax(cpu, 3);
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 4, 0x1010)), X86_EXC_GP, "64-byte alignment");
	memset(h_mem + 0x1000, 0xee, 576);
	memset(h_mem + 0x1000 + 512, 0, 64);
	ok(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 4, 0x1000));
	uint64_t bv;
	memcpy(&bv, h_mem + 0x1000 + 512, 8);
	cr_assert_eq(bv, 3, "XSTATE_BV = XINUSE");
	cr_assert_eq(h_mem[0x1000 + 160 + 16 * 5], 0x55);
	cr_assert_eq(h_mem[0x1000 + 416], 0xee, "bytes 416-511 untouched");
	/* RFBM = x87 only: the SSE part is neither written nor restored */
	memset(h_mem + 0x2000, 0, 576);
	set_edx_eax(cpu, 1);
	ok(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 4, 0x2000));
	cr_assert_eq(h_mem[0x2000 + 160 + 16 * 5], 0);
	memcpy(&bv, h_mem + 0x2000 + 512, 8);
	cr_assert_eq(bv, 1);
	/* XRSTOR with XSTATE_BV[1] = 0 initializes XMM, loads MXCSR */
	memset(cpu->xmm, 0x77, sizeof(cpu->xmm));
	memcpy(h_mem + 0x1000 + 512, &(uint64_t){ 1 }, 8);
	set_edx_eax(cpu, 3);
	ok(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 5, 0x1000));
	cr_assert_eq(cpu->xmm[5].q[0], 0);
	cr_assert_eq(cpu->mxcsr, 0x1fa0);
	cr_assert_eq(fpu_fx(cpu)->ftw, 0x80);
	/* malformed headers */
	memcpy(h_mem + 0x1000 + 512, &(uint64_t){ 4 }, 8);
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 5, 0x1000)), X86_EXC_GP, "XSTATE_BV beyond XCR0");
	memcpy(h_mem + 0x1000 + 512, &(uint64_t){ 3 }, 8);
	memcpy(h_mem + 0x1000 + 520, &(uint64_t){ 1ull << 63 | 3 }, 8);
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 5, 0x1000)), X86_EXC_GP, "compacted form");
	memset(h_mem + 0x1000 + 520, 0, 8);
	cpu->cr4 &= ~X86_CR4_OSXSAVE;
	cr_assert_eq(exc(cpu, mem(EMU_MAP_0F, 0xae, EMU_MP_NONE, 4, 0x1000)), X86_EXC_UD);
	h_free(cpu);
}

Test(snapshot, power_up_state)
{
	struct emu_cpu *cpu = h_cpu();
	emu_fpu_reset(cpu);
	struct x86_fpu img;
	emu_fpu_get(cpu, &img);
	cr_assert_eq(*(uint16_t *)img.fxsave, 0x0040, "FCW at power-up");
	cr_assert_eq(img.fxsave[4], 0xff, "tag 5555h: all registers tagged zero");
	cr_assert_eq(*(uint32_t *)(img.fxsave + 24), 0x1f80);
	cr_assert_eq(img.xcr0, 1);
	/* FSTENV reports the full tag word 5555h */
	cpu->mode = EMU_MODE_PROT32;
	ok(cpu, h_x87_mem(0xd9, 6, 0x100));
	cr_assert_eq(*(uint16_t *)(h_mem + 0x108), 0x5555);
	h_free(cpu);
}

Test(snapshot, get_set_fpu)
{
	struct emu_cpu *cpu = h_cpu(), *other = h_cpu();
	ok(cpu, h_x87(0xd9, 0xeb));
	ok(cpu, h_x87(0xd9, 0xe8));
	memset(cpu->xmm[9].b, 0x99, 16);
	cpu->mxcsr = 0x1f80 | 0x6000;
	cpu->xcr0 = 3;
	struct x86_fpu snap;
	emu_fpu_get(cpu, &snap);
	cr_assert_eq(snap.xcr0, 3);
	cr_assert_eq(emu_fpu_set(other, &snap), 0);
	struct x86_fpu again;
	emu_fpu_get(other, &again);
	cr_assert_arr_eq(snap.fxsave, again.fxsave, 512);
	cr_assert_eq(other->mxcsr, cpu->mxcsr);
	cr_assert_eq(memcmp(cpu->fpu.fxsave, other->fpu.fxsave, 160), 0, "internal x87 state identical");
	/* bad input is refused, not trusted */
	*(uint32_t *)(snap.fxsave + 24) = 0xffffffffu;
	cr_assert_eq(emu_fpu_set(other, &snap), -EINVAL);
	*(uint32_t *)(snap.fxsave + 24) = 0x1f80;
	snap.xcr0 = 0x7;
	cr_assert_eq(emu_fpu_set(other, &snap), -EINVAL);
	h_free(cpu);
	h_free(other);
}
