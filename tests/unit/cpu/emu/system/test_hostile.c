/* Host safety (docs/architecture.md "Host safety"): hostile page tables, descriptor
 * tables and IDTs built from random bytes must only ever produce
 * architectural exceptions, never a host crash or an access outside guest
 * memory (the ASan build checks the latter). */
#include <criterion/criterion.h>

#include "cpu/emu/system/sys.h"
#include "harness.h"

#define RAM (4u << 20)

static struct sys_fixture fx;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static void setup(void)
{
	fx_init(&fx, RAM);
	uint8_t *ram = fx_ptr(&fx, 0);
	for (unsigned i = 0; i < RAM; i += 8) {
		uint64_t v = rnd();
		/* Mostly small physical addresses so that walks go somewhere. */
		if (v & 1)
			v = (v & 0x8000000000000fffull) | ((v >> 8) & (RAM - 1) & ~0xfffull);
		memcpy(ram + i, &v, 8);
	}
}

static void teardown(void)
{
	fx_destroy(&fx);
}

TestSuite(emu_hostile, .init = setup, .fini = teardown);

static bool architectural(int v)
{
	return v == -1 || v == X86_EXC_PF || v == X86_EXC_GP || v == X86_EXC_SS || v == X86_EXC_NP ||
	       v == X86_EXC_TS || v == X86_EXC_UD;
}

Test(emu_hostile, random_page_tables_in_every_paging_mode)
{
	struct emu_cpu *cpu = fx.cpu;
	static const uint64_t cr4s[] = { 0, X86_CR4_PSE, X86_CR4_PAE, X86_CR4_PAE | X86_CR4_PGE,
					 X86_CR4_PAE | X86_CR4_SMEP | X86_CR4_SMAP, X86_CR4_PAE | X86_CR4_LA57 };
	unsigned faults = 0, ok = 0;
	for (unsigned round = 0; round < 3000; round++) {
		uint64_t cr4 = cr4s[round % 6];
		bool lma = (cr4 & X86_CR4_PAE) && (round & 8);
		cpu->cr4 = cr4;
		cpu->efer = lma ? X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE : (round & 16 ? X86_EFER_NXE : 0);
		cpu->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | (round & 2 ? X86_CR0_WP : 0);
		cpu->cr3 = rnd() & (RAM - 1) & ~0xfffull;
		cpu->seg[SEG_CS].attr = lma ? 0x29b : 0xc9b;
		cpu->seg[SEG_DS].limit = 0xffffffff;
		cpu->seg[SEG_DS].attr = 0xc93;
		cpu->cpl = (round & 4) ? 3 : 0;
		emu_update_mode(cpu);
		emu_sys_sync(cpu);
		for (unsigned i = 0; i < 20; i++) {
			uint64_t off = rnd();
			if (!lma)
				off = (uint32_t)off;
			else if (i & 1)
				off &= 0x7fffffffffffull;
			int r;
			uint64_t v;
			switch (i % 3) {
			case 0: r = fx_read(&fx, SEG_DS, off, 1u << (i % 4), &v); break;
			case 1: r = fx_write(&fx, SEG_DS, off, 1u << (i % 4), rnd()); break;
			default: r = fx_fetch(&fx, off, NULL); break;
			}
			cr_assert(architectural(r), "round %u: vector %d", round, r);
			if (r == -1)
				ok++;
			else
				faults++;
		}
	}
	/* Both outcomes happen: the tables are neither all-faulting nor trivial. */
	cr_assert_gt(faults, 0);
	cr_assert_gt(ok, 0);
}

struct op {
	unsigned kind;
	uint16_t sel;
	uint64_t off;
	unsigned size;
};

static void run_op(struct emu_cpu *cpu, void *arg)
{
	const struct op *o = arg;
	switch (o->kind) {
	case 0: emu_load_seg(cpu, SEG_DS, o->sel); break;
	case 1: emu_load_seg(cpu, SEG_SS, o->sel); break;
	case 2: cpu->next_rip = cpu->rip + 5; emu_far_call(cpu, o->sel, o->off, o->size); break;
	default: cpu->next_rip = cpu->rip + 1; emu_iret(cpu, o->size); break;
	}
}

Test(emu_hostile, random_descriptor_tables_and_idt)
{
	struct emu_cpu *cpu = fx.cpu;
	struct vcpu_exit exit;
	cpu->exit = &exit;
	unsigned ops_ok = 0;
	for (unsigned round = 0; round < 3000; round++) {
		bool lma = round & 1;
		cpu->cr0 = X86_CR0_PE | X86_CR0_ET;
		cpu->cr4 = lma ? X86_CR4_PAE : 0;
		cpu->efer = lma ? X86_EFER_LME | X86_EFER_LMA : 0;
		if (lma) {
			/* IA-32e needs paging: identity map 4 MiB with 2 MiB pages. */
			cpu->cr0 |= X86_CR0_PG;
			fx_w64(&fx, 0x1000, 0x2000 | 7);
			fx_w64(&fx, 0x2000, 0x3000 | 7);
			fx_w64(&fx, 0x3000, 0x000000 | 0x87);
			fx_w64(&fx, 0x3008, 0x200000 | 0x87);
			cpu->cr3 = 0x1000;
		}
		cpu->gdtr.base = 0x100000 + (rnd() & 0xffff);
		cpu->gdtr.limit = (uint16_t)rnd();
		cpu->idtr.base = 0x200000 + (rnd() & 0xffff);
		cpu->idtr.limit = (uint16_t)rnd();
		cpu->ldtr = (struct emu_seg){ .sel = 0x18, .base = 0x300000 + (rnd() & 0xfff), .limit = 0xfff, .attr = 0x82 };
		cpu->tr = (struct emu_seg){ .sel = 0x20, .base = 0x380000 + (rnd() & 0xfff), .limit = (uint32_t)(rnd() & 0x3fff), .attr = 0x8b };
		cpu->seg[SEG_CS] = (struct emu_seg){ .sel = 0x8, .limit = 0xffffffff, .attr = lma ? 0x29b : 0xc9b };
		cpu->seg[SEG_SS] = (struct emu_seg){ .sel = 0x10, .limit = 0xffffffff, .attr = 0xc93 };
		cpu->gpr[RSP] = 0x3f0000 + (rnd() & 0xfff0);
		cpu->cpl = (round & 2) ? 3 : 0;
		emu_update_mode(cpu);
		emu_sys_sync(cpu);
		struct op o = { .kind = round % 4, .sel = (uint16_t)rnd(), .off = rnd(), .size = lma ? 8 : 4 };
		int r = fx_call(&fx, run_op, &o);
		cr_assert(architectural(r), "round %u: vector %d", round, r);
		/* Deliver a random event through the random IDT: it may escalate to
		 * a triple fault, but must return. */
		memset(&exit, 0, sizeof(exit));
		cpu->stop_block = false;
		cpu->exc_vector = (int)(rnd() & 0xff);
		cpu->exc_has_error = rnd() & 1;
		cpu->exc_error = (uint32_t)rnd();
		cr_assert_eq(fx_deliver(&fx), -1);
		if (exit.reason == VCPU_EXIT_SHUTDOWN)
			cr_assert(strstr(exit.error.message, "triple fault"), "round %u: %s", round, exit.error.message);
		ops_ok += r == -1;
	}
	cr_assert_gt(ops_ok, 0, "some random operations succeed");
}
