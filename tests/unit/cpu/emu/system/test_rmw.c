/* Faults are precise (SDM vol. 3A 6.5): an instruction that reads, modifies
 * and writes a memory operand on a page it may read but not write raises
 * #PF with the flags, the registers and memory as they were before it. */
#include <criterion/criterion.h>

#include "harness.h"

#define RAM (4u << 20)
#define PML4 0x1000u
#define PT 0x4000u
#define DATA 0x100000u            /* read-only page */
#define DATA_VALUE 0x8000000180000001ull
#define FLAGS_BEFORE (X86_FLAG_FIXED | X86_FLAGS_ARITH)

static struct sys_fixture fx;

/* 64-bit mode, CPL 0, CR0.WP: the first 2 MiB mapped writable in 4 KiB
 * pages but for DATA, present and read-only. */
static void setup(void)
{
	fx_init(&fx, RAM);
	struct emu_cpu *cpu = fx.cpu;
	fx_w64(&fx, PML4, 0x2000 | 3);
	fx_w64(&fx, 0x2000, 0x3000 | 3);
	fx_w64(&fx, 0x3000, PT | 3);
	for (uint64_t i = 0; i < 512; i++)
		fx_w64(&fx, PT + i * 8, i << 12 | (i == DATA >> 12 ? 1 : 3));
	cpu->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP | X86_CR0_ET;
	cpu->cr4 = X86_CR4_PAE;
	cpu->efer = X86_EFER_LME | X86_EFER_LMA;
	cpu->cr3 = PML4;
	cpu->seg[SEG_CS].attr = 0x29b;
	cpu->cpl = 0;
	emu_update_mode(cpu);
	emu_sys_sync(cpu);
}

static void teardown(void)
{
	fx_destroy(&fx);
}

TestSuite(emu_rmw, .init = setup, .fini = teardown);

struct rmw_case {
	const char *name;
	uint8_t code[8];
	unsigned len;
	bool writes;          /* false: a read-only form (CMP, TEST, BT) that must not fault */
};

/* Every operand is [rbx] = DATA; EAX and ECX hold values unlike the
 * memory so that each instruction would change the flags; EDX is a bit
 * offset within the page. */
static const struct rmw_case cases[] = {
	{ "add [rbx], eax", { 0x01, 0x03 }, 2, true },
	{ "adc byte [rbx], 1", { 0x80, 0x13, 0x01 }, 3, true },
	{ "sub qword [rbx], 5", { 0x48, 0x83, 0x2b, 0x05 }, 4, true },
	{ "or word [rbx], ax", { 0x66, 0x09, 0x03 }, 3, true },
	{ "xor dword [rbx], 0x12345678", { 0x81, 0x33, 0x78, 0x56, 0x34, 0x12 }, 6, true },
	{ "lock add [rbx], eax", { 0xf0, 0x01, 0x03 }, 3, true },
	{ "inc dword [rbx]", { 0xff, 0x03 }, 2, true },
	{ "dec byte [rbx]", { 0xfe, 0x0b }, 2, true },
	{ "lock inc qword [rbx]", { 0xf0, 0x48, 0xff, 0x03 }, 4, true },
	{ "neg qword [rbx]", { 0x48, 0xf7, 0x1b }, 3, true },
	{ "not dword [rbx]", { 0xf7, 0x13 }, 2, true },
	{ "shl dword [rbx], 1", { 0xd1, 0x23 }, 2, true },
	{ "rol byte [rbx], cl", { 0xd2, 0x03 }, 2, true },
	{ "rcr dword [rbx], 3", { 0xc1, 0x1b, 0x03 }, 3, true },
	{ "sar qword [rbx], 5", { 0x48, 0xc1, 0x3b, 0x05 }, 4, true },
	{ "shld [rbx], eax, 4", { 0x0f, 0xa4, 0x03, 0x04 }, 4, true },
	{ "shrd [rbx], eax, cl", { 0x0f, 0xad, 0x03 }, 3, true },
	{ "bts [rbx], edx", { 0x0f, 0xab, 0x13 }, 3, true },
	{ "btc dword [rbx], 3", { 0x0f, 0xba, 0x3b, 0x03 }, 4, true },
	{ "xadd [rbx], eax", { 0x0f, 0xc1, 0x03 }, 3, true },
	{ "cmpxchg [rbx], ecx", { 0x0f, 0xb1, 0x0b }, 3, true },
	{ "cmpxchg8b [rbx]", { 0x0f, 0xc7, 0x0b }, 3, true },
	{ "cmp [rbx], eax", { 0x39, 0x03 }, 2, false },
	{ "test [rbx], eax", { 0x85, 0x03 }, 2, false },
	{ "bt [rbx], edx", { 0x0f, 0xa3, 0x13 }, 3, false },
};

Test(emu_rmw, a_faulting_write_changes_neither_flags_nor_memory)
{
	struct emu_cpu *cpu = fx.cpu;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rmw_case *c = &cases[i];
		fx_w64(&fx, DATA, DATA_VALUE);
		memset(cpu->gpr, 0, sizeof(cpu->gpr));
		cpu->gpr[RAX] = 0x7fffffff7ffffffeull;
		cpu->gpr[RCX] = 1;
		cpu->gpr[RDX] = 0x1234;
		cpu->gpr[RBX] = DATA;
		cpu->gpr[RSP] = 0x80000;
		cpu->rip = 0x10000;
		emu_set_rflags(cpu, FLAGS_BEFORE);
		uint64_t gpr[16];
		memcpy(gpr, cpu->gpr, sizeof(gpr));

		int v = fx_exec(&fx, c->code, c->len);
		if (!c->writes) {
			cr_expect_eq(v, -1, "%s: a read-only form faulted (%d)", c->name, v);
			continue;
		}
		cr_expect_eq(v, X86_EXC_PF, "%s: vector %d, not #PF", c->name, v);
		cr_expect_eq(cpu->exc_error, X86_PF_P | X86_PF_W, "%s: #PF error %#x", c->name, cpu->exc_error);
		cr_expect_eq(emu_get_rflags(cpu), FLAGS_BEFORE, "%s: RFLAGS %#llx after the fault", c->name,
			     (unsigned long long)emu_get_rflags(cpu));
		cr_expect_eq(fx_r64(&fx, DATA), DATA_VALUE, "%s: memory changed", c->name);
		cr_expect_arr_eq(cpu->gpr, gpr, sizeof(gpr), "%s: registers changed", c->name);
		cr_expect_eq(cpu->rip, 0x10000, "%s: RIP moved", c->name);
	}
}

Test(emu_rmw, a_writable_page_still_gets_result_and_flags)
{
	/* The same path on a writable page: ADD with carry out and zero. */
	struct emu_cpu *cpu = fx.cpu;
	static const uint8_t add[] = { 0x01, 0x03 };   /* add [rbx], eax */
	fx_w32(&fx, 0x20000, 0xffffffff);
	cpu->gpr[RAX] = 1;
	cpu->gpr[RBX] = 0x20000;
	emu_set_rflags(cpu, X86_FLAG_FIXED);
	cr_assert_eq(fx_exec(&fx, add, sizeof(add)), -1);
	cr_assert_eq(fx_r32(&fx, 0x20000), 0);
	uint64_t fl = emu_get_rflags(cpu);
	cr_assert(fl & X86_FLAG_CF);
	cr_assert(fl & X86_FLAG_ZF);
	cr_assert_not(fl & X86_FLAG_SF);
}
