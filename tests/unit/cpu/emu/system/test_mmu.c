/* Soft MMU: the paging walk, A/D bits, #PF error codes and CR2, the
 * permission matrix and the tagged TLB's flush rules (SDM vol. 3A ch. 4). */
#include <criterion/criterion.h>

#include "cpu/emu/system/sys.h"
#include "harness.h"
#include "machine/machine.h"

#include <stdatomic.h>

#define PML4 0x10000ull
#define PDPT 0x11000ull
#define PD   0x12000ull
#define PT   0x13000ull
#define P  1ull
#define RW 2ull
#define US 4ull
#define A  0x20ull
#define D  0x40ull
#define PS 0x80ull
#define XD (1ull << 63)

static struct sys_fixture fx;

/* Enters 64-bit mode directly (no instructions): CR0.PG|PE|WP, PAE, LME/LMA/NXE. */
static void long_mode(uint64_t cr4_extra)
{
	struct emu_cpu *cpu = fx.cpu;
	fx_w64(&fx, PML4, PDPT | P | RW | US);
	fx_w64(&fx, PDPT, PD | P | RW | US);
	fx_w64(&fx, PD + 2 * 8, PT | P | RW | US);   /* 4 MiB .. 6 MiB through PT */
	fx_w64(&fx, PD + 3 * 8, 0x600000 | P | RW | PS);   /* 6 MiB: a 2 MiB supervisor page */
	cpu->cr4 = X86_CR4_PAE | cr4_extra;
	cpu->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
	cpu->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP | X86_CR0_ET;
	cpu->cr3 = PML4;
	cpu->seg[SEG_CS].attr = 0x29b;   /* present code, L */
	emu_tlb_flush(cpu, true);
	mmu_set_cr3(cpu, PML4, false);
	emu_update_mode(cpu);
	cr_assert_eq(cpu->mode, EMU_MODE_LONG64);
}

static void map(unsigned i, uint64_t gpa, uint64_t flags)
{
	fx_w64(&fx, PT + i * 8, gpa | flags);
}

static uint64_t lin(unsigned i)
{
	return 0x400000ull + i * 0x1000ull;
}

/* A second address space B: its own PML4, PDPT, PD and PT; the PT maps
 * lin(6) to 0x201000. */
#define PML4B 0x20000ull
#define PTB   0x23000ull
static void second_space(void)
{
	fx_w64(&fx, PML4B, 0x21000 | P | RW | US);
	fx_w64(&fx, 0x21000, 0x22000 | P | RW | US);
	fx_w64(&fx, 0x22000 + 2 * 8, PTB | P | RW | US);
	fx_w64(&fx, PTB + 6 * 8, 0x201000 | P | RW);
}

static void setup(void)
{
	fx_init(&fx, 16 << 20);
}

static void teardown(void)
{
	fx_destroy(&fx);
}

TestSuite(emu_mmu, .init = setup, .fini = teardown);

Test(emu_mmu, reset_state_is_the_power_up_state)
{
	struct emu_cpu *cpu = fx.cpu;
	cr_assert_eq(cpu->seg[SEG_CS].base, 0xffff0000);
	cr_assert_eq(cpu->seg[SEG_CS].sel, 0xf000);
	cr_assert_eq(cpu->rip, 0xfff0);
	cr_assert_eq(cpu->cr0, 0x60000010);
	cr_assert_eq(cpu->mode, EMU_MODE_REAL);
	cr_assert_eq(cpu->gpr[RDX] & 0xf00, 0x600);   /* family 6 signature in EDX */
	cr_assert_eq(cpu->dr[6], 0xffff0ff0);
	cr_assert_eq(cpu->dr[7], 0x400);
}

Test(emu_mmu, real_mode_segment_base_and_limit)
{
	struct emu_cpu *cpu = fx.cpu;
	emu_load_seg(cpu, SEG_DS, 0x100);
	cr_assert_eq(fx_write(&fx, SEG_DS, 0x10, 4, 0xdeadbeef), -1);
	cr_assert_eq(fx_r32(&fx, 0x1010), 0xdeadbeef);
	uint64_t v = 0;
	cr_assert_eq(fx_read(&fx, SEG_DS, 0x10, 2, &v), -1);
	cr_assert_eq(v, 0xbeef);
	/* A word at offset 0xffff crosses the 64 KiB limit: #GP; through SS: #SS. */
	cr_assert_eq(fx_read(&fx, SEG_DS, 0xffff, 2, &v), X86_EXC_GP);
	cr_assert_eq(fx_read(&fx, SEG_SS, 0xffff, 2, &v), X86_EXC_SS);
}

Test(emu_mmu, walk_sets_accessed_then_dirty)
{
	long_mode(0);
	map(0, 0x200000, P | RW);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(0), 8, NULL), -1);
	cr_assert_eq(fx_r64(&fx, PT) & (A | D), A, "a read sets A only");
	cr_assert(fx_r64(&fx, PML4) & A);
	cr_assert(fx_r64(&fx, PDPT) & A);
	cr_assert(fx_r64(&fx, PD + 16) & A);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(0) + 8, 8, 0x1122334455667788ull), -1);
	cr_assert_eq(fx_r64(&fx, PT) & (A | D), A | D, "the first write sets D");
	cr_assert_eq(fx_r64(&fx, 0x200008), 0x1122334455667788ull);
	cr_assert_eq(fx_r64(&fx, PD + 16) & D, 0, "D is only set in the leaf");
}

Test(emu_mmu, large_page_translation)
{
	long_mode(0);
	fx_w64(&fx, 0x623456, 0xabcdef);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, 0x623456, 8, &v), -1);
	cr_assert_eq(v, 0xabcdef);
	cr_assert(fx_r64(&fx, PD + 24) & A);
}

Test(emu_mmu, not_present_fault_sets_cr2_and_error_code)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(5) + 0x123, 4, NULL), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, 0);
	cr_assert_eq(cpu->cr2, lin(5) + 0x123);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(5), 4, 0), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, X86_PF_W);
	cpu->cpl = 3;
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(5), 4, 0), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, X86_PF_W | X86_PF_U);
	cr_assert_eq(fx_fetch(&fx, lin(5), NULL), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, X86_PF_U | X86_PF_I);
}

Test(emu_mmu, reserved_bit_fault)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	map(1, 0x200000 | (1ull << 45), P | RW);   /* above MAXPHYADDR */
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(1), 4, NULL), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, X86_PF_P | X86_PF_RSVD);
	/* XD is reserved while EFER.NXE = 0. */
	cpu->efer &= ~X86_EFER_NXE;
	emu_tlb_flush(cpu, true);
	map(2, 0x200000, P | RW | XD);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(2), 4, NULL), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, X86_PF_P | X86_PF_RSVD);
}

/* The permission matrix: (page U/S, R/W, XD) x (CPL, access, WP, SMEP, SMAP, AC). */
struct perm_case {
	uint64_t pte;
	unsigned cpl;
	enum emu_access acc;
	bool wp, smep, smap, ac;
	int expect;   /* -1 or the #PF error code */
};

static int run_case(const struct perm_case *c)
{
	struct emu_cpu *cpu = fx.cpu;
	uint64_t cr4 = (c->smep ? X86_CR4_SMEP : 0) | (c->smap ? X86_CR4_SMAP : 0);
	long_mode(cr4);
	if (!c->wp)
		cpu->cr0 &= ~X86_CR0_WP;
	map(3, 0x200000, c->pte);
	emu_tlb_flush(cpu, true);
	cpu->cpl = (uint8_t)c->cpl;
	cpu->rflags = c->ac ? X86_FLAG_AC | 2 : 2;
	int r;
	if (c->acc == EMU_ACC_FETCH)
		r = fx_fetch(&fx, lin(3), NULL);
	else if (c->acc == EMU_ACC_WRITE)
		r = fx_write(&fx, SEG_DS, lin(3), 4, 1);
	else
		r = fx_read(&fx, SEG_DS, lin(3), 4, NULL);
	if (r == -1)
		return -1;
	cr_assert_eq(r, X86_EXC_PF);
	return (int)cpu->exc_error;
}

Test(emu_mmu, permission_matrix)
{
	const uint64_t U = P | US, UW = P | US | RW, S = P, SW = P | RW;
	const uint32_t PP = X86_PF_P, WW = X86_PF_W, UU = X86_PF_U, II = X86_PF_I;
	const struct perm_case cases[] = {
		/* user accesses */
		{ UW, 3, EMU_ACC_READ, true, false, false, false, -1 },
		{ UW, 3, EMU_ACC_WRITE, true, false, false, false, -1 },
		{ U, 3, EMU_ACC_WRITE, false, false, false, false, (int)(PP | WW | UU) },
		{ SW, 3, EMU_ACC_READ, true, false, false, false, (int)(PP | UU) },
		{ SW, 3, EMU_ACC_FETCH, true, false, false, false, (int)(PP | UU | II) },
		{ UW | XD, 3, EMU_ACC_FETCH, true, false, false, false, (int)(PP | UU | II) },
		{ UW, 3, EMU_ACC_FETCH, true, false, false, false, -1 },
		/* supervisor writes to read-only pages: WP decides */
		{ S, 0, EMU_ACC_WRITE, true, false, false, false, (int)(PP | WW) },
		{ S, 0, EMU_ACC_WRITE, false, false, false, false, -1 },
		{ U, 0, EMU_ACC_WRITE, true, false, false, false, (int)(PP | WW) },
		{ U, 0, EMU_ACC_WRITE, false, false, false, false, -1 },
		/* NX for the supervisor */
		{ SW | XD, 0, EMU_ACC_FETCH, true, false, false, false, (int)(PP | II) },
		{ SW | XD, 0, EMU_ACC_READ, true, false, false, false, -1 },
		/* SMEP: no supervisor fetch from user pages */
		{ UW, 0, EMU_ACC_FETCH, true, false, false, false, -1 },
		{ UW, 0, EMU_ACC_FETCH, true, true, false, false, (int)(PP | II) },
		/* SMAP: supervisor data accesses to user pages need EFLAGS.AC */
		{ UW, 0, EMU_ACC_READ, true, false, true, false, (int)PP },
		{ UW, 0, EMU_ACC_WRITE, true, false, true, false, (int)(PP | WW) },
		{ UW, 0, EMU_ACC_READ, true, false, true, true, -1 },
		{ UW, 0, EMU_ACC_WRITE, true, false, true, true, -1 },
		{ U, 0, EMU_ACC_WRITE, true, false, true, true, (int)(PP | WW) },
		{ UW, 0, EMU_ACC_READ, true, false, false, false, -1 },
		/* AC does not matter for user code */
		{ SW, 3, EMU_ACC_READ, true, false, true, true, (int)(PP | UU) },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = run_case(&cases[i]);
		cr_expect_eq(r, cases[i].expect, "case %zu: got %d, expected %d", i, r, cases[i].expect);
	}
}

Test(emu_mmu, tlb_keeps_translation_until_invlpg)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	map(4, 0x200000, P | RW | A | D);
	fx_w64(&fx, 0x200000, 1);
	fx_w64(&fx, 0x201000, 2);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(4), 8, &v), -1);
	cr_assert_eq(v, 1);
	/* The host changes the PTE behind the guest's back: the TLB still holds
	 * the old translation, as a real TLB may (SDM vol. 3A 4.10.4.2). */
	map(4, 0x201000, P | RW | A | D);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(4), 8, &v), -1);
	cr_assert_eq(v, 1);
	mmu_invlpg(cpu, lin(4));
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(4), 8, &v), -1);
	cr_assert_eq(v, 2);
}

Test(emu_mmu, address_spaces_live_side_by_side)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	uint64_t pml4b = PML4B, ptb = PTB;
	second_space();
	map(6, 0x200000, P | RW);
	fx_w64(&fx, 0x200000, 0xa);
	fx_w64(&fx, 0x201000, 0xb);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xa);
	uint64_t asid_a = cpu->asid;
	mode_write_cr3(cpu, pml4b);
	cr_assert_neq(cpu->asid, asid_a);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xb);
	/* Back to A: the translation survived the switch (same tag). */
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(cpu->asid, asid_a);
	unsigned idx = emu_tlb_index(cpu, lin(6));
	cr_assert_eq(cpu->tlb[EMU_MMU_SUP][idx].tag_read, lin(6) | asid_a);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xa);
	/* A guest write to A's page table (while B runs) is seen: A's
	 * translations are dropped when A becomes current again. */
	mode_write_cr3(cpu, pml4b);
	cpu->efer |= 0;
	/* Map a linear page of B onto A's PT so the guest can write it. */
	fx_w64(&fx, ptb + 7 * 8, PT | P | RW);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(7) + 6 * 8, 8, 0x202000 | P | RW), -1);
	fx_w64(&fx, 0x202000, 0xc);
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc);
}

Test(emu_mmu, pcid_noflush_keeps_and_flush_drops)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	cpu->cr4 |= X86_CR4_PCIDE;
	emu_tlb_flush(cpu, true);
	mmu_set_cr3(cpu, PML4 | 1, false);
	map(8, 0x200000, P | RW | A | D);
	fx_w64(&fx, 0x200000, 1);
	fx_w64(&fx, 0x201000, 2);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8), 8, &v), -1);
	map(8, 0x201000, P | RW | A | D);   /* host-side change, no watch */
	mmu_set_cr3(cpu, PML4 | 1, true);   /* bit 63: keep */
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8), 8, &v), -1);
	cr_assert_eq(v, 1);
	mmu_set_cr3(cpu, PML4 | 1, false);  /* flush this PCID */
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8), 8, &v), -1);
	cr_assert_eq(v, 2);
}

Test(emu_mmu, legacy_32bit_paging_with_pse)
{
	struct emu_cpu *cpu = fx.cpu;
	/* 32-bit paging: PD at 0x30000; 4 MiB page at 8 MiB; 4 KiB page via PT. */
	fx_w32(&fx, 0x30000 + 2 * 4, 0x800000 | 0x83);          /* P RW PS */
	fx_w32(&fx, 0x30000 + 1 * 4, 0x31000 | 0x07);            /* PT, user */
	fx_w32(&fx, 0x31000 + 5 * 4, 0x205000 | 0x05);           /* user read-only */
	cpu->cr4 = X86_CR4_PSE;
	cpu->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP | X86_CR0_ET;
	cpu->cr3 = 0x30000;
	cpu->seg[SEG_CS].attr = 0x49b;
	cpu->seg[SEG_DS].limit = 0xffffffff;
	emu_tlb_flush(cpu, true);
	mmu_set_cr3(cpu, 0x30000, false);
	emu_update_mode(cpu);
	fx_w32(&fx, 0x812345, 0x77);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, 0x812345, 4, &v), -1);
	cr_assert_eq(v, 0x77);
	cr_assert(fx_r32(&fx, 0x30008) & 0x20);
	cr_assert_eq(fx_write(&fx, SEG_DS, 0x405000, 4, 1), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, X86_PF_P | X86_PF_W);
	cr_assert_eq(cpu->cr2, 0x405000);
}

Test(emu_mmu, pae_legacy_paging)
{
	struct emu_cpu *cpu = fx.cpu;
	/* PAE without long mode: 4-entry PDPT (32-byte aligned), 2 MiB pages. */
	fx_w64(&fx, 0x40000 + 8, 0x41000 | P);          /* PDPTE 1: 1 GiB .. 2 GiB */
	fx_w64(&fx, 0x41000 + 3 * 8, 0x400000 | P | RW | PS);
	cpu->cr4 = X86_CR4_PAE;
	cpu->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET;
	cpu->cr3 = 0x40000;
	cpu->seg[SEG_CS].attr = 0x49b;
	cpu->seg[SEG_DS].limit = 0xffffffff;
	emu_tlb_flush(cpu, true);
	mmu_set_cr3(cpu, 0x40000, false);
	emu_update_mode(cpu);
	fx_w64(&fx, 0x400010, 0x55);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, 0x40600010, 8, &v), -1);
	cr_assert_eq(v, 0x55);
	/* A PDPTE with a reserved bit (bit 1) set faults with RSVD. */
	fx_w64(&fx, 0x40000 + 16, 0x41000 | P | RW);
	cr_assert_eq(fx_read(&fx, SEG_DS, 0x80000000, 4, NULL), X86_EXC_PF);
	cr_assert_eq(cpu->exc_error, X86_PF_P | X86_PF_RSVD);
}

Test(emu_mmu, crossing_write_checks_both_pages_first)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	map(9, 0x200000, P | RW);
	map(10, 0x201000, P);   /* read-only */
	fx_w64(&fx, 0x200ff8, 0);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(9) + 0xffc, 8, ~0ull), X86_EXC_PF);
	cr_assert_eq(cpu->cr2, lin(10));
	cr_assert_eq(fx_r64(&fx, 0x200ff8), 0, "nothing written before the fault");
}

Test(emu_mmu, non_canonical_is_gp_or_ss)
{
	long_mode(0);
	cr_assert_eq(fx_read(&fx, SEG_DS, 0x0000800000000000ull, 1, NULL), X86_EXC_GP);
	cr_assert_eq(fx_read(&fx, SEG_SS, 0x0000800000000000ull, 1, NULL), X86_EXC_SS);
}

Test(emu_mmu, global_translations_survive_cr3_switches)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(X86_CR4_PGE);
	map(11, 0x200000, P | RW | 0x100);   /* G */
	fx_w64(&fx, 0x200000, 0x6161);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(11), 8, &v), -1);
	cr_assert_eq(v, 0x6161);
	/* Address space B does not map lin(11) at all. */
	uint64_t pml4b = 0x20000;
	memset(fx_ptr(&fx, pml4b), 0, 4096);
	mode_write_cr3(cpu, pml4b);
	/* The global translation is still used (SDM vol. 3A 4.10.2.4): MOV CR3
	 * does not invalidate it. */
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(11), 8, &v), -1);
	cr_assert_eq(v, 0x6161);
	/* INVLPG drops it: now B's (empty) tables fault. */
	mmu_invlpg(cpu, lin(11));
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(11), 8, &v), X86_EXC_PF);
	/* Back in A, cache it again, then toggling CR4.PGE flushes globals too. */
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(11), 8, &v), -1);
	mode_write_cr3(cpu, pml4b);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(11), 8, &v), -1);
	mode_write_cr4(cpu, cpu->cr4 & ~X86_CR4_PGE);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(11), 8, &v), X86_EXC_PF);
	/* A non-global translation does not leak into another space. */
	mode_write_cr4(cpu, cpu->cr4 | X86_CR4_PGE);
	mode_write_cr3(cpu, PML4);
	map(12, 0x201000, P | RW);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(12), 8, &v), -1);
	mode_write_cr3(cpu, pml4b);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(12), 8, &v), X86_EXC_PF);
}

Test(emu_mmu, unpaged_accesses_use_the_tlb_and_respect_code_pages)
{
	struct emu_cpu *cpu = fx.cpu;
	/* Real mode: the identity translation is cached for the inline path. */
	cr_assert_eq(fx_write(&fx, SEG_DS, 0x3000, 4, 0x11), -1);
	unsigned i = emu_tlb_index(cpu, 0x3000);
	cr_assert_eq(cpu->tlb[EMU_MMU_SUP][i].tag_write, 0x3000 | cpu->asid);
	/* A page holding decoded code never gets a write tag the inline path
	 * matches: its writes must reach the slow path. */
	fx.evm.code_page[0x4] = 1;
	cr_assert_eq(fx_write(&fx, SEG_DS, 0x4000, 4, 0x22), -1);
	unsigned j = emu_tlb_index(cpu, 0x4000);
	cr_assert_eq(cpu->tlb[EMU_MMU_SUP][j].tag_write, 0x4000 | cpu->asid | EMU_TLB_MMIO);
	cr_assert_eq(fx_r32(&fx, 0x4000), 0x22);
	/* Once the page holds no code, the next slow write makes it fast. */
	fx.evm.code_page[0x4] = 0;
	cr_assert_eq(fx_write(&fx, SEG_DS, 0x4000, 4, 0x33), -1);
	cr_assert_eq(cpu->tlb[EMU_MMU_SUP][j].tag_write, 0x4000 | cpu->asid);
	cr_assert_eq(fx_r32(&fx, 0x4000), 0x33);
}

Test(emu_mmu, page_table_reused_as_data_is_unwatched_then_watched_again)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	/* B's page table sits in a page that A maps as data at lin(7). */
	uint64_t pml4b = PML4B, ptb = PTB;
	second_space();
	map(7, ptb, P | RW | D | A);
	uint64_t v;
	mode_write_cr3(cpu, pml4b);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);   /* walks ptb: watched */
	cr_assert(fx.evm.pt_page[ptb >> 12]);
	mode_write_cr3(cpu, PML4);
	/* Many writes with no walk reading the page in between: it is data now. */
	for (unsigned i = 0; i < 200; i++)
		cr_assert_eq(fx_write(&fx, SEG_DS, lin(7) + 8 * (i % 512), 8, i), -1);
	cr_assert_not(fx.evm.pt_page[ptb >> 12]);
	unsigned idx = emu_tlb_index(cpu, lin(7));
	cr_assert_eq(cpu->tlb[EMU_MMU_SUP][idx].tag_write, lin(7) | cpu->asid);   /* fast again */
	/* B's translation through the old contents is gone when B is current. */
	fx_w64(&fx, ptb + 6 * 8, 0x202000 | P | RW);
	fx_w64(&fx, 0x202000, 0xd);
	mode_write_cr3(cpu, pml4b);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xd);
	/* That walk watched the page again: A's cached write tag must not let
	 * a write bypass the watch. */
	cr_assert(fx.evm.pt_page[ptb >> 12]);
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(7) + 6 * 8, 8, 0x201000 | P | RW), -1);
	mode_write_cr3(cpu, pml4b);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0);   /* 0x201000 holds 0 */
}

Test(emu_mmu, alignment_check_at_cpl3_with_am_and_ac)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	map(8, 0x208000, P | RW | US | A | D);
	uint64_t v;
	/* Misaligned, but no checking yet: CPL 3 without AC, then AC without AM. */
	cpu->cpl = 3;
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(8) + 1, 4, 0x11223344), -1);
	cpu->rflags |= X86_FLAG_AC;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8) + 1, 4, &v), -1);
	cr_assert_eq(v, 0x11223344);
	/* CR0.AM + EFLAGS.AC + CPL 3: misaligned word, dword and qword
	 * references raise #AC(0) and touch nothing (SDM vol. 3A 6.15). */
	cpu->cr0 |= X86_CR0_AM;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8) + 1, 4, &v), X86_EXC_AC);
	cr_assert_eq(cpu->exc_error, 0);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(8) + 2, 8, 0), X86_EXC_AC);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(8) + 3, 2, 0), X86_EXC_AC);
	cr_assert_eq(fx_r32(&fx, 0x208001), 0x11223344);
	/* Aligned references and bytes are fine, and keep working after a
	 * translation was cached. */
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(8) + 8, 8, 0x55), -1);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8) + 8, 8, &v), -1);
	cr_assert_eq(v, 0x55);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8) + 1, 1, &v), -1);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8) + 9, 4, &v), X86_EXC_AC);
	/* The kernel is never alignment-checked. */
	cpu->cpl = 0;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(8) + 9, 4, &v), -1);
}

/* A third address space C: its own PML4, PDPT and PD; its PD entry for
 * 4-6 MiB points at pt. */
#define PML4C 0x30000ull
static void third_space(uint64_t pt)
{
	fx_w64(&fx, PML4C, 0x31000 | P | RW | US);
	fx_w64(&fx, 0x31000, 0x32000 | P | RW | US);
	fx_w64(&fx, 0x32000 + 2 * 8, pt | P | RW | US);
}

Test(emu_mmu, write_to_one_space_page_table_purges_that_space_alone)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	second_space();
	third_space(0x33000);
	fx_w64(&fx, 0x33000 + 6 * 8, 0x203000 | P | RW);
	map(6, 0x200000, P | RW);
	map(7, PTB, P | RW | A | D);   /* A sees B's page table as data */
	fx_w64(&fx, 0x200000, 0xa);
	fx_w64(&fx, 0x201000, 0xb);
	fx_w64(&fx, 0x202000, 0xc);
	fx_w64(&fx, 0x203000, 0xe);
	fx_w64(&fx, 0x204000, 0xf);
	uint64_t v;
	mode_write_cr3(cpu, PML4B);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xb);
	mode_write_cr3(cpu, PML4C);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xe);
	mode_write_cr3(cpu, PML4);
	/* The guest rewrites B's mapping; the host moves C's behind the
	 * guest's back, which only a purge of C would show. */
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(7) + 6 * 8, 8, 0x202000 | P | RW), -1);
	fx_w64(&fx, 0x33000 + 6 * 8, 0x204000 | P | RW);
	uint64_t kept = cpu->as_kept, purged = cpu->as_purged;
	mode_write_cr3(cpu, PML4C);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xe, "C was purged for a write to B's page table");
	cr_assert_eq(cpu->as_kept, kept + 1);
	mode_write_cr3(cpu, PML4B);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc, "B kept a translation through its rewritten page table");
	cr_assert_eq(cpu->as_purged, purged + 1);
}

Test(emu_mmu, write_to_a_shared_page_table_purges_every_space_using_it)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	second_space();
	third_space(PT);               /* C walks A's page table */
	map(6, 0x200000, P | RW);
	fx_w64(&fx, PTB + 7 * 8, PT | P | RW | A | D);   /* B sees it as data */
	fx_w64(&fx, 0x200000, 0xa);
	fx_w64(&fx, 0x202000, 0xc);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	mode_write_cr3(cpu, PML4C);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xa);
	cr_assert_eq(fx.evm.pt_owner[PT >> 12], EMU_PT_SHARED);
	mode_write_cr3(cpu, PML4B);
	cr_assert_eq(fx_write(&fx, SEG_DS, lin(7) + 6 * 8, 8, 0x202000 | P | RW), -1);
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc);
	mode_write_cr3(cpu, PML4C);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc);
}

Test(emu_mmu, past_the_tracking_limit_spaces_are_purged_until_a_full_flush)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	second_space();
	map(6, 0x200000, P | RW);
	fx_w64(&fx, 0x200000, 0xa);
	fx_w64(&fx, 0x202000, 0xc);
	fx.evm.pt_track_limit = 0;
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(atomic_load(&fx.evm.pt_tracked), 0);
	cr_assert_gt(atomic_load(&fx.evm.pt_deferred), 0);
	cr_assert_not(fx.evm.pt_page[PT >> 12]);
	/* Nothing watches A's page table: a switch away and back purges A,
	 * so even a change no write reported is seen. */
	mode_write_cr3(cpu, PML4B);
	map(6, 0x202000, P | RW);
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc);
	/* The next full flush empties the watch and tracks anew. */
	fx.evm.pt_track_limit = 1000;
	emu_tlb_flush(cpu, true);
	mmu_set_cr3(cpu, PML4, false);
	cr_assert_eq(atomic_load(&fx.evm.pt_restarts), 1);
	cr_assert_not(atomic_load(&fx.evm.pt_deferring));
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert(fx.evm.pt_page[PT >> 12]);
	cr_assert_gt(atomic_load(&fx.evm.pt_tracked), 0);
	/* Tracked again: a switch away and back keeps both spaces (B has
	 * nothing cached since the flush, which left it fresh). */
	uint64_t kept = cpu->as_kept, purged = cpu->as_purged;
	mode_write_cr3(cpu, PML4B);
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(cpu->as_kept, kept + 2);
	cr_assert_eq(cpu->as_purged, purged);
}

/* A remote flush of a page list (Hyper-V HvCallFlushVirtualAddressList,
 * machine.h struct vcpu_tlb_range) drops those pages only: the host
 * moves two mappings behind the guest's back, and only the flushed one
 * is seen. */
Test(emu_mmu, remote_flush_of_a_page_leaves_the_other_pages)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(0);
	map(4, 0x200000, P | RW | A | D);
	map(5, 0x201000, P | RW | A | D);
	fx_w64(&fx, 0x200000, 1);
	fx_w64(&fx, 0x201000, 2);
	fx_w64(&fx, 0x202000, 3);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(4), 8, &v), -1);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(5), 8, &v), -1);
	map(4, 0x202000, P | RW | A | D);
	map(5, 0x202000, P | RW | A | D);
	struct vcpu_tlb_range r = { .space = PML4, .page = lin(4), .count = 1 };
	mmu_flush_ranges(cpu, &r, 1);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(4), 8, &v), -1);
	cr_assert_eq(v, 3, "the page flushed walks again");
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(5), 8, &v), -1);
	cr_assert_eq(v, 2, "the other page kept its translation");
	/* A range of two pages from lin(4). */
	r.count = 2;
	mmu_flush_ranges(cpu, &r, 1);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(5), 8, &v), -1);
	cr_assert_eq(v, 3);
}

/* A remote flush of one address space's non-global translations (what
 * Linux asks for an mm) leaves another address space's; with global
 * ones included, or of every space, nothing survives. */
Test(emu_mmu, remote_flush_of_one_address_space_leaves_another)
{
	struct emu_cpu *cpu = fx.cpu;
	long_mode(X86_CR4_PGE);
	second_space();
	map(6, 0x200000, P | RW);
	fx_w64(&fx, 0x200000, 0xa);
	fx_w64(&fx, 0x201000, 0xb);
	fx_w64(&fx, 0x202000, 0xc);
	uint64_t v;
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	mode_write_cr3(cpu, PML4B);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xb);
	/* Both spaces' mappings move host-side; B is current. */
	map(6, 0x202000, P | RW);
	fx_w64(&fx, PTB + 6 * 8, 0x202000 | P | RW);
	struct vcpu_tlb_range r = { .space = PML4, .non_global = true };
	mmu_flush_ranges(cpu, &r, 1);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xb, "B kept its translation");
	mode_write_cr3(cpu, PML4);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc, "A's was dropped");
	/* Global translations included: B's goes too. */
	r.non_global = false;
	mmu_flush_ranges(cpu, &r, 1);
	mode_write_cr3(cpu, PML4B);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc);
	/* A PCID address space is named by its CR3 page alone. */
	mode_write_cr4(cpu, cpu->cr4 | X86_CR4_PCIDE);
	mode_write_cr3(cpu, PML4 | 5);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	map(6, 0x200000, P | RW);
	mode_write_cr3(cpu, PML4B | 6);
	mode_write_cr3(cpu, (PML4 | 5) | (1ull << 63));
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xc, "kept across the no-flush switch");
	r = (struct vcpu_tlb_range){ .space = PML4, .non_global = true };
	mmu_flush_ranges(cpu, &r, 1);
	cr_assert_eq(fx_read(&fx, SEG_DS, lin(6), 8, &v), -1);
	cr_assert_eq(v, 0xa, "the PCID's translations were dropped");
}
