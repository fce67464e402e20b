/* Exception and interrupt delivery, IRET, far transfers, task switches and
 * mode transitions, driven through the system module's functions and
 * single decoded instructions (SDM vol. 3A chapters 6, 7, 9, 10). */
#include <criterion/criterion.h>

#include "cpu/emu/system/sys.h"
#include "harness.h"

#define GDT 0x1000ull
#define IDT 0x2000ull
#define TSS 0x3000ull
#define TSS2 0x3400ull

enum {
	SEL_CODE32 = 0x08, SEL_DATA32 = 0x10, SEL_UCODE32 = 0x1b, SEL_UDATA32 = 0x23, SEL_TSS = 0x28,
	SEL_CODE64 = 0x30, SEL_TSS2 = 0x38, SEL_CODE16 = 0x40, SEL_DATA16 = 0x48, SEL_UCODE64 = 0x53,
};

static struct sys_fixture fx;

static void setup(void)
{
	fx_init(&fx, 16 << 20);
	fx_w64(&fx, GDT + 0x08, fx_desc(0, 0xfffff, 0xb, 0, 0xc));   /* code32 DPL0 */
	fx_w64(&fx, GDT + 0x10, fx_desc(0, 0xfffff, 0x3, 0, 0xc));   /* data32 DPL0 */
	fx_w64(&fx, GDT + 0x18, fx_desc(0, 0xfffff, 0xb, 3, 0xc));   /* code32 DPL3 */
	fx_w64(&fx, GDT + 0x20, fx_desc(0, 0xfffff, 0x3, 3, 0xc));   /* data32 DPL3 */
	/* 32-bit available TSS (S = 0, type 9) */
	fx_w64(&fx, GDT + 0x28, fx_desc(TSS, 0x67, 0x9, 0, 0) & ~(1ull << 44));
	fx_w64(&fx, GDT + 0x30, fx_desc(0, 0xfffff, 0xb, 0, 0xa));   /* code64 DPL0 (G, L) */
	fx_w64(&fx, GDT + 0x38, fx_desc(TSS2, 0x67, 0x9, 0, 0) & ~(1ull << 44));
	fx_w64(&fx, GDT + 0x40, fx_desc(0, 0xffff, 0xb, 0, 0));      /* code16 */
	fx_w64(&fx, GDT + 0x48, fx_desc(0, 0xffff, 0x3, 0, 0));      /* data16 */
	fx_w64(&fx, GDT + 0x50, fx_desc(0, 0xfffff, 0xb, 3, 0xa));   /* code64 DPL3 */
	fx.cpu->gdtr.base = GDT;
	fx.cpu->gdtr.limit = 0x7f;
}

static void teardown(void)
{
	fx_destroy(&fx);
}

TestSuite(emu_except, .init = setup, .fini = teardown);

static void set_gate32(unsigned vec, uint16_t sel, uint32_t off, unsigned type, unsigned dpl)
{
	uint64_t g = (off & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)type << 40) | ((uint64_t)dpl << 45) |
		     (1ull << 47) | ((uint64_t)(off >> 16) << 48);
	fx_w64(&fx, IDT + vec * 8, g);
}

static void set_gate64(unsigned vec, uint16_t sel, uint64_t off, unsigned type, unsigned dpl, unsigned ist)
{
	uint64_t lo = (off & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)ist << 32) | ((uint64_t)type << 40) |
		      ((uint64_t)dpl << 45) | (1ull << 47) | (((off >> 16) & 0xffff) << 48);
	fx_w64(&fx, IDT + vec * 16, lo);
	fx_w64(&fx, IDT + vec * 16 + 8, off >> 32);
}

static void load_cs(struct emu_cpu *cpu, void *arg)
{
	uint16_t sel = (uint16_t)(uintptr_t)arg;
	emu_far_jmp(cpu, sel, cpu->rip, 4);
	cpu->rip = cpu->next_rip;
}

/* Real mode -> protected mode with flat 32-bit segments, CPL 0. */
static void enter_prot32(void)
{
	struct emu_cpu *cpu = fx.cpu;
	static const uint8_t mov_cr0_eax[] = { 0x0f, 0x22, 0xc0 };
	cpu->gpr[RAX] = cpu->cr0 | X86_CR0_PE;
	cr_assert_eq(fx_exec(&fx, mov_cr0_eax, 3), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_PROT16);
	cpu->rip = 0x5000;
	cr_assert_eq(fx_call(&fx, load_cs, (void *)(uintptr_t)SEL_CODE32), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_PROT32);
	emu_load_seg(cpu, SEG_DS, SEL_DATA32);
	emu_load_seg(cpu, SEG_ES, SEL_DATA32);
	emu_load_seg(cpu, SEG_SS, SEL_DATA32);
	cpu->idtr.base = IDT;
	cpu->idtr.limit = 0x7ff;
	cpu->tr.sel = SEL_TSS;
	cpu->tr.base = TSS;
	cpu->tr.limit = 0x67;
	cpu->tr.attr = 0x8b;
}

Test(emu_except, real_mode_interrupt_through_ivt)
{
	struct emu_cpu *cpu = fx.cpu;
	cpu->seg[SEG_CS].sel = 0x100;
	cpu->seg[SEG_CS].base = 0x1000;
	cpu->rip = 0x20;
	emu_load_seg(cpu, SEG_SS, 0);
	cpu->gpr[RSP] = 0x8000;
	emu_set_rflags(cpu, X86_FLAG_IF | X86_FLAG_FIXED | X86_FLAG_CF);
	fx_w32(&fx, 0x21 * 4, 0x0700 << 16 | 0x0123);   /* 0700:0123 */
	static const uint8_t int21[] = { 0xcd, 0x21 };
	cr_assert_eq(fx_exec(&fx, int21, 2), -1);
	cr_assert_eq(cpu->seg[SEG_CS].sel, 0x700);
	cr_assert_eq(cpu->seg[SEG_CS].base, 0x7000);
	cr_assert_eq(cpu->rip, 0x123);
	cr_assert_eq(cpu->gpr[RSP], 0x7ffa);
	cr_assert_eq(*(uint16_t *)fx_ptr(&fx, 0x7ffa), 0x22, "return IP after INT");
	cr_assert_eq(*(uint16_t *)fx_ptr(&fx, 0x7ffc), 0x100);
	cr_assert_eq(*(uint16_t *)fx_ptr(&fx, 0x7ffe) & (X86_FLAG_IF | X86_FLAG_CF), X86_FLAG_IF | X86_FLAG_CF);
	cr_assert_eq(emu_get_rflags(cpu) & X86_FLAG_IF, 0);
	/* IRET returns. */
	static const uint8_t iret[] = { 0xcf };
	cr_assert_eq(fx_exec(&fx, iret, 1), -1);
	cr_assert_eq(cpu->seg[SEG_CS].sel, 0x100);
	cr_assert_eq(cpu->rip, 0x22);
	cr_assert_eq(cpu->gpr[RSP], 0x8000);
	cr_assert(emu_get_rflags(cpu) & X86_FLAG_IF);
}

Test(emu_except, protected_mode_user_fault_switches_to_ring0_stack)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	set_gate32(13, SEL_CODE32, 0x6000, 0xe, 0);
	fx_w32(&fx, TSS + 4, 0x9000);        /* ESP0 */
	fx_w32(&fx, TSS + 8, SEL_DATA32);    /* SS0 */
	/* Drop to ring 3 with IRET (outer privilege). */
	cpu->gpr[RSP] = 0x8000 - 20;
	fx_w32(&fx, 0x8000 - 20, 0x7000);            /* EIP */
	fx_w32(&fx, 0x8000 - 16, SEL_UCODE32);
	fx_w32(&fx, 0x8000 - 12, 0x202);             /* EFLAGS: IF */
	fx_w32(&fx, 0x8000 - 8, 0x7800);             /* ESP */
	fx_w32(&fx, 0x8000 - 4, SEL_UDATA32);
	static const uint8_t iretd[] = { 0xcf };
	cr_assert_eq(fx_exec(&fx, iretd, 1), -1);
	cr_assert_eq(cpu->cpl, 3);
	cr_assert_eq(cpu->rip, 0x7000);
	cr_assert_eq(cpu->seg[SEG_SS].sel, SEL_UDATA32);
	cr_assert_eq(cpu->gpr[RSP], 0x7800);
	cr_assert_eq(cpu->seg[SEG_DS].sel, 0, "DS (DPL 0) is nulled on the way out");
	cr_assert_eq(cpu->seg[SEG_DS].attr & 0x80, 0, "and unusable (P = 0)");
	/* A privileged instruction at CPL 3: #GP(0), delivered on the ring-0 stack. */
	static const uint8_t hlt[] = { 0xf4 };
	cr_assert_eq(fx_exec(&fx, hlt, 1), X86_EXC_GP);
	cr_assert_eq(cpu->exc_error, 0);
	cpu->rip = 0x7000;   /* faults report the faulting instruction */
	cr_assert_eq(fx_deliver(&fx), -1);
	cr_assert_eq(cpu->cpl, 0);
	cr_assert_eq(cpu->rip, 0x6000);
	cr_assert_eq(cpu->seg[SEG_SS].sel, SEL_DATA32);
	cr_assert_eq(cpu->gpr[RSP], 0x9000 - 24);
	cr_assert_eq(fx_r32(&fx, 0x9000 - 24), 0, "error code");
	cr_assert_eq(fx_r32(&fx, 0x9000 - 20), 0x7000, "EIP");
	cr_assert_eq(fx_r32(&fx, 0x9000 - 16), SEL_UCODE32);
	cr_assert_eq(fx_r32(&fx, 0x9000 - 12) & 0x200, 0x200, "EFLAGS");
	cr_assert_eq(fx_r32(&fx, 0x9000 - 8), 0x7800, "ESP");
	cr_assert_eq(fx_r32(&fx, 0x9000 - 4), SEL_UDATA32, "SS");
	cr_assert_eq(emu_get_rflags(cpu) & X86_FLAG_IF, 0, "interrupt gate clears IF");
	/* Handler pops the error code and IRETs back to ring 3. */
	cpu->gpr[RSP] += 4;
	cr_assert_eq(fx_exec(&fx, iretd, 1), -1);
	cr_assert_eq(cpu->cpl, 3);
	cr_assert_eq(cpu->rip, 0x7000);
	cr_assert_eq(cpu->gpr[RSP], 0x7800);
}

Test(emu_except, int_n_checks_gate_dpl)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	set_gate32(0x80, SEL_CODE32, 0x6000, 0xf, 0);   /* trap gate, DPL 0 */
	cpu->cpl = 3;
	cpu->seg[SEG_CS].sel = SEL_UCODE32;
	static const uint8_t int80[] = { 0xcd, 0x80 };
	cr_assert_eq(fx_exec(&fx, int80, 2), X86_EXC_GP);
	cr_assert_eq(cpu->exc_error, 0x80 * 8 + 2, "IDT selector, EXT = 0");
}

Test(emu_except, not_present_gate_is_np_with_idt_error_code)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	set_gate32(0x30, SEL_CODE32, 0x6000, 0xe, 3);
	fx_w64(&fx, IDT + 0x30 * 8, fx_r64(&fx, IDT + 0x30 * 8) & ~(1ull << 47));
	set_gate32(X86_EXC_NP, SEL_CODE32, 0x6100, 0xe, 0);
	cpu->gpr[RSP] = 0x8000;
	static const uint8_t int30[] = { 0xcd, 0x30 };
	cr_assert_eq(fx_exec(&fx, int30, 2), X86_EXC_NP);
	cr_assert_eq(cpu->exc_error, 0x30 * 8 + 2);
	cr_assert_eq(fx_deliver(&fx), -1);
	cr_assert_eq(cpu->rip, 0x6100);
	cr_assert_eq(fx_r32(&fx, 0x8000 - 16), 0x30 * 8 + 2, "#NP error code pushed");
}

Test(emu_except, double_fault_then_triple_fault)
{
	struct emu_cpu *cpu = fx.cpu;
	struct vcpu_exit exit = { 0 };
	enter_prot32();
	cpu->exit = &exit;
	/* #GP's gate is not present -> #NP while delivering #GP: contributory
	 * pair -> #DF.  #DF's gate is fine. */
	set_gate32(X86_EXC_GP, SEL_CODE32, 0x6000, 0xe, 0);
	fx_w64(&fx, IDT + 13 * 8, fx_r64(&fx, IDT + 13 * 8) & ~(1ull << 47));
	set_gate32(X86_EXC_DF, SEL_CODE32, 0x6800, 0xe, 0);
	cpu->gpr[RSP] = 0x8000;
	cpu->exc_vector = X86_EXC_GP;
	cpu->exc_error = 0;
	cpu->exc_has_error = true;
	cr_assert_eq(fx_deliver(&fx), -1);
	cr_assert_eq(cpu->rip, 0x6800);
	cr_assert_eq(fx_r32(&fx, 0x8000 - 16), 0, "#DF error code is 0");
	/* Now #DF's gate is missing too: a fault delivering #DF is a triple fault. */
	cpu->idtr.limit = 8 * 8 - 1;   /* vectors 8+ outside the IDT */
	cpu->exc_vector = X86_EXC_GP;
	cpu->exc_has_error = true;
	cr_assert_eq(fx_deliver(&fx), -1);
	cr_assert_eq(exit.reason, VCPU_EXIT_SHUTDOWN);
	cr_assert(strstr(exit.error.message, "triple fault") != NULL);
}

Test(emu_except, page_fault_then_page_fault_is_double_fault_but_benign_is_serial)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	set_gate32(X86_EXC_DF, SEL_CODE32, 0x6800, 0xe, 0);
	set_gate32(X86_EXC_BP, SEL_CODE32, 0x6300, 0xe, 0);
	fx_w64(&fx, IDT + 3 * 8, fx_r64(&fx, IDT + 3 * 8) & ~(1ull << 47));
	set_gate32(X86_EXC_NP, SEL_CODE32, 0x6b00, 0xe, 0);
	cpu->gpr[RSP] = 0x8000;
	/* #BP is benign: #NP while delivering it is delivered normally. */
	cpu->exc_vector = X86_EXC_BP;
	cpu->exc_has_error = false;
	cr_assert_eq(fx_deliver(&fx), -1);
	cr_assert_eq(cpu->rip, 0x6b00);
	cr_assert_eq(fx_r32(&fx, 0x8000 - 16), 3 * 8 + 2 + 1, "EXT set: raised delivering an exception");
}

static void enter_long(void)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	/* Identity-map the first 2 MiB with one large page. */
	fx_w64(&fx, 0x10000, 0x11000 | 7);
	fx_w64(&fx, 0x11000, 0x12000 | 7);
	fx_w64(&fx, 0x12000, 0x0 | 0x87);
	static const uint8_t mov_cr4_eax[] = { 0x0f, 0x22, 0xe0 };
	static const uint8_t mov_cr3_eax[] = { 0x0f, 0x22, 0xd8 };
	static const uint8_t mov_cr0_eax[] = { 0x0f, 0x22, 0xc0 };
	static const uint8_t wrmsr[] = { 0x0f, 0x30 };
	cpu->gpr[RAX] = X86_CR4_PAE;
	cr_assert_eq(fx_exec(&fx, mov_cr4_eax, 3), -1);
	cpu->gpr[RAX] = 0x10000;
	cr_assert_eq(fx_exec(&fx, mov_cr3_eax, 3), -1);
	cpu->gpr[RCX] = MSR_EFER;
	cpu->gpr[RAX] = X86_EFER_LME | X86_EFER_SCE;
	cpu->gpr[RDX] = 0;
	cr_assert_eq(fx_exec(&fx, wrmsr, 2), -1);
	cpu->gpr[RAX] = cpu->cr0 | X86_CR0_PG;
	cr_assert_eq(fx_exec(&fx, mov_cr0_eax, 3), -1);
	cr_assert(cpu->efer & X86_EFER_LMA);
	cr_assert_eq(cpu->mode, EMU_MODE_PROT32, "compatibility mode until a 64-bit CS is loaded");
	cr_assert_eq(fx_call(&fx, load_cs, (void *)(uintptr_t)SEL_CODE64), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_LONG64);
}

Test(emu_except, long_mode_round_trip_to_real_mode)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_long();
	/* Turning paging off from 64-bit mode is #GP. */
	static const uint8_t mov_cr0_eax[] = { 0x0f, 0x22, 0xc0 };
	cpu->gpr[RAX] = cpu->cr0 & ~X86_CR0_PG;
	cr_assert_eq(fx_exec(&fx, mov_cr0_eax, 3), X86_EXC_GP);
	/* Back to compatibility mode, then paging off: LMA clears. */
	cr_assert_eq(fx_call(&fx, load_cs, (void *)(uintptr_t)SEL_CODE32), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_PROT32);
	cpu->gpr[RAX] = cpu->cr0 & ~X86_CR0_PG;
	cr_assert_eq(fx_exec(&fx, mov_cr0_eax, 3), -1);
	cr_assert_eq(cpu->efer & X86_EFER_LMA, 0);
	/* Through a 16-bit segment to real mode. */
	cr_assert_eq(fx_call(&fx, load_cs, (void *)(uintptr_t)SEL_CODE16), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_PROT16);
	emu_load_seg(cpu, SEG_DS, SEL_DATA16);
	cpu->gpr[RAX] = cpu->cr0 & ~X86_CR0_PE;
	cr_assert_eq(fx_exec(&fx, mov_cr0_eax, 3), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_REAL);
	static const uint8_t jmp_far[] = { 0xea, 0x34, 0x12, 0x00, 0x20 };   /* jmp 2000:1234 */
	cr_assert_eq(fx_exec(&fx, jmp_far, 5), -1);
	cr_assert_eq(cpu->seg[SEG_CS].base, 0x20000);
	cr_assert_eq(cpu->rip, 0x1234);
	cr_assert_eq(cpu->mode, EMU_MODE_REAL);
}

Test(emu_except, long_mode_interrupt_uses_ist_and_iretq_returns)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_long();
	cpu->idtr.limit = 0xfff;
	fx_w64(&fx, GDT + 0x58, fx_desc(0, 0xfffff, 0x3, 3, 0xc));
	fx.cpu->gdtr.limit = 0x5f;
	/* 64-bit TSS: RSP0 at 4, IST1 at 0x24. */
	fx_w64(&fx, TSS + 4, 0x9000);
	fx_w64(&fx, TSS + 0x24, 0xa008);
	set_gate64(0x20, SEL_CODE64, 0x123456, 0xe, 0, 1);
	cpu->gpr[RSP] = 0x8000;
	emu_set_rflags(cpu, X86_FLAG_IF | X86_FLAG_FIXED);
	cpu->rip = 0x5555;
	emu_deliver_interrupt(cpu, 0x20, true);
	cr_assert_eq(cpu->rip, 0x123456);
	cr_assert_eq(cpu->gpr[RSP], 0xa000 - 40, "IST stack, aligned to 16");
	cr_assert_eq(fx_r64(&fx, 0xa000 - 40), 0x5555, "RIP");
	cr_assert_eq(fx_r64(&fx, 0xa000 - 32), SEL_CODE64, "CS");
	cr_assert_eq(fx_r64(&fx, 0xa000 - 16), 0x8000, "RSP");
	cr_assert_eq(fx_r64(&fx, 0xa000 - 8), SEL_DATA32, "SS");
	static const uint8_t iretq[] = { 0x48, 0xcf };
	cr_assert_eq(fx_exec(&fx, iretq, 2), -1);
	cr_assert_eq(cpu->rip, 0x5555);
	cr_assert_eq(cpu->gpr[RSP], 0x8000);
	cr_assert(emu_get_rflags(cpu) & X86_FLAG_IF);
}

Test(emu_except, syscall_sysret_round_trip)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_long();
	fx_w64(&fx, GDT + 0x58, fx_desc(0, 0xfffff, 0x3, 3, 0xc));
	fx_w64(&fx, GDT + 0x60, fx_desc(0, 0xfffff, 0xb, 3, 0xa));
	cpu->gdtr.limit = 0x67;
	/* STAR: kernel CS 0x30 (SS 0x38), user base 0x50: SS 0x58, CS64 0x60. */
	cpu->star = (0x50ull << 48) | (0x30ull << 32);
	cpu->lstar = 0xffff800000001000ull;
	cpu->sfmask = X86_FLAG_IF;
	cpu->rip = 0x4000;
	emu_set_rflags(cpu, X86_FLAG_IF | X86_FLAG_FIXED);
	static const uint8_t syscall[] = { 0x0f, 0x05 };
	cr_assert_eq(fx_exec(&fx, syscall, 2), -1);
	cr_assert_eq(cpu->rip, 0xffff800000001000ull);
	cr_assert_eq(cpu->gpr[RCX], 0x4002);
	cr_assert(cpu->gpr[R11] & X86_FLAG_IF);
	cr_assert_eq(emu_get_rflags(cpu) & X86_FLAG_IF, 0);
	cr_assert_eq(cpu->seg[SEG_SS].sel, 0x38);
	static const uint8_t sysretq[] = { 0x48, 0x0f, 0x07 };
	cr_assert_eq(fx_exec(&fx, sysretq, 3), -1);
	cr_assert_eq(cpu->cpl, 3);
	cr_assert_eq(cpu->rip, 0x4002);
	cr_assert_eq(cpu->seg[SEG_CS].sel, 0x63);
	cr_assert_eq(cpu->seg[SEG_SS].sel, 0x5b);
	cr_assert_eq(cpu->mode, EMU_MODE_LONG64);
	cr_assert(emu_get_rflags(cpu) & X86_FLAG_IF);
}

Test(emu_except, task_switch_by_far_jmp_and_back_by_iret_nested)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	/* Mark the current TSS busy, as LTR would. */
	fx_w64(&fx, GDT + 0x28, fx_r64(&fx, GDT + 0x28) | (2ull << 40));
	/* New task: EIP 0x7777, EAX 0xabc, flat ring-0 segments. */
	fx_w32(&fx, TSS2 + 0x20, 0x7777);
	fx_w32(&fx, TSS2 + 0x24, 0x2);
	fx_w32(&fx, TSS2 + 0x28, 0xabc);
	fx_w32(&fx, TSS2 + 0x38, 0x8800);   /* ESP */
	fx_w32(&fx, TSS2 + 0x48, SEL_DATA32);
	fx_w32(&fx, TSS2 + 0x4c, SEL_CODE32);
	fx_w32(&fx, TSS2 + 0x50, SEL_DATA32);
	fx_w32(&fx, TSS2 + 0x54, SEL_DATA32);
	cpu->gpr[RAX] = 0x111;
	cpu->rip = 0x5000;
	static const uint8_t call_far[] = { 0x9a, 0, 0, 0, 0, SEL_TSS2, 0 };   /* call 0x38:0 */
	cr_assert_eq(fx_exec(&fx, call_far, 7), -1);
	cr_assert_eq(cpu->tr.sel, SEL_TSS2);
	cr_assert_eq(cpu->rip, 0x7777);
	cr_assert_eq(cpu->gpr[RAX], 0xabc);
	cr_assert_eq(cpu->gpr[RSP], 0x8800);
	cr_assert(cpu->cr0 & X86_CR0_TS);
	cr_assert(emu_get_rflags(cpu) & X86_FLAG_NT, "CALL nests the task");
	cr_assert_eq(fx_r32(&fx, TSS2) & 0xffff, SEL_TSS, "back link");
	cr_assert_eq(fx_r32(&fx, TSS + 0x20), 0x5007, "old EIP saved");
	cr_assert_eq(fx_r32(&fx, TSS + 0x28), 0x111, "old EAX saved");
	cr_assert(fx_r64(&fx, GDT + 0x38) & (2ull << 40), "new TSS busy");
	/* IRET with NT returns to the old task. */
	static const uint8_t iret[] = { 0xcf };
	cr_assert_eq(fx_exec(&fx, iret, 1), -1);
	cr_assert_eq(cpu->tr.sel, SEL_TSS);
	cr_assert_eq(cpu->rip, 0x5007);
	cr_assert_eq(cpu->gpr[RAX], 0x111);
	cr_assert_eq(fx_r64(&fx, GDT + 0x38) & (2ull << 40), 0, "nested task no longer busy");
	/* Calling a busy TSS is #GP(selector). */
	cr_assert_eq(fx_exec(&fx, (const uint8_t[]){ 0x9a, 0, 0, 0, 0, SEL_TSS, 0 }, 7), X86_EXC_GP);
	cr_assert_eq(cpu->exc_error, SEL_TSS);
}

Test(emu_except, segment_load_errors_carry_the_selector)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	static const uint8_t mov_ds_ax[] = { 0x8e, 0xd8 };
	cpu->gpr[RAX] = SEL_CODE32 + 0x100;   /* beyond the GDT limit */
	cr_assert_eq(fx_exec(&fx, mov_ds_ax, 2), X86_EXC_GP);
	cr_assert_eq(cpu->exc_error, SEL_CODE32 + 0x100);
	cpu->gpr[RAX] = SEL_TSS;              /* a system descriptor */
	cr_assert_eq(fx_exec(&fx, mov_ds_ax, 2), X86_EXC_GP);
	cr_assert_eq(cpu->exc_error, SEL_TSS);
	fx_w64(&fx, GDT + 0x20, fx_r64(&fx, GDT + 0x20) & ~(1ull << 47));
	cpu->gpr[RAX] = SEL_UDATA32;          /* not present */
	cr_assert_eq(fx_exec(&fx, mov_ds_ax, 2), X86_EXC_NP);
	cr_assert_eq(cpu->exc_error, SEL_UDATA32 & 0xfffc);
	static const uint8_t mov_ss_ax[] = { 0x8e, 0xd0 };
	cpu->gpr[RAX] = SEL_CODE32;           /* SS must be writable data */
	cr_assert_eq(fx_exec(&fx, mov_ss_ax, 2), X86_EXC_GP);
	cr_assert_eq(cpu->exc_error, SEL_CODE32);
	cpu->gpr[RAX] = 0;                    /* null SS outside 64-bit mode */
	cr_assert_eq(fx_exec(&fx, mov_ss_ax, 2), X86_EXC_GP);
	cpu->gpr[RAX] = 0;                    /* null DS is fine, its use is not */
	cr_assert_eq(fx_exec(&fx, mov_ds_ax, 2), -1);
	cr_assert_eq(fx_read(&fx, SEG_DS, 0, 4, NULL), X86_EXC_GP);
	/* Accessed bit set by a successful load. */
	cr_assert(fx_r64(&fx, GDT + 0x10) & (1ull << 40));
}

Test(emu_except, expand_down_and_limit_checks)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	/* Expand-down data, limit 0xfff, B = 1: valid offsets 0x1000..0xffffffff. */
	fx_w64(&fx, GDT + 0x48, fx_desc(0x100000, 0xfff, 0x7, 0, 0x4));
	emu_load_seg(cpu, SEG_ES, SEL_DATA16);
	cr_assert_eq(fx_read(&fx, SEG_ES, 0x800, 4, NULL), X86_EXC_GP);
	cr_assert_eq(fx_read(&fx, SEG_ES, 0x1000, 4, NULL), -1);
	cr_assert_eq(fx_write(&fx, SEG_ES, 0x2000, 4, 7), -1);
	cr_assert_eq(fx_r32(&fx, 0x102000), 7);
	/* Code segments: no writes. */
	emu_load_seg(cpu, SEG_ES, SEL_CODE32);
	cr_assert_eq(fx_write(&fx, SEG_ES, 0, 4, 7), X86_EXC_GP);
	cr_assert_eq(fx_read(&fx, SEG_ES, 0, 4, NULL), -1, "readable code can be read");
}

Test(emu_except, cpuid_and_msrs)
{
	struct emu_cpu *cpu = fx.cpu;
	static const uint8_t cpuid[] = { 0x0f, 0xa2 };
	cpu->gpr[RAX] = 0;
	cr_assert_eq(fx_exec(&fx, cpuid, 2), -1);
	char vendor[13] = { 0 };
	memcpy(vendor, &cpu->gpr[RBX], 4);
	memcpy(vendor + 4, &cpu->gpr[RDX], 4);
	memcpy(vendor + 8, &cpu->gpr[RCX], 4);
	cr_assert_str_eq(vendor, "GenuineIntel");
	cpu->gpr[RAX] = 0x40000000;
	cr_assert_eq(fx_exec(&fx, cpuid, 2), -1);
	memcpy(vendor, &cpu->gpr[RBX], 4);
	memcpy(vendor + 4, &cpu->gpr[RCX], 4);
	memcpy(vendor + 8, &cpu->gpr[RDX], 4);
	cr_assert_str_eq(vendor, "VesselVessel");
	cpu->gpr[RAX] = 0x40000010;
	cr_assert_eq(fx_exec(&fx, cpuid, 2), -1);
	cr_assert_eq(cpu->gpr[RAX], EMU_TSC_HZ / 1000);
	/* vessel's own identity leaf, where it stays with Hyper-V on. */
	cpu->gpr[RAX] = 0x40000100;
	cr_assert_eq(fx_exec(&fx, cpuid, 2), -1);
	memcpy(vendor, &cpu->gpr[RBX], 4);
	memcpy(vendor + 4, &cpu->gpr[RCX], 4);
	memcpy(vendor + 8, &cpu->gpr[RDX], 4);
	cr_assert_str_eq(vendor, "VesselVessel");
	cr_assert_eq(cpu->gpr[RAX], 0x40000101, "up to vessel's feature leaf");
	/* Without the Hyper-V interface vessel's features (selective EOI)
	 * are off too. */
	cpu->gpr[RAX] = 0x40000101;
	cr_assert_eq(fx_exec(&fx, cpuid, 2), -1);
	cr_assert_eq(cpu->gpr[RAX], 0);
	/* Without a VM (so without the Hyper-V interface) its MSRs are #GP. */
	cpu->gpr[RCX] = 0x40000000;
	static const uint8_t rdmsr_hv[] = { 0x0f, 0x32 };
	cr_assert_eq(fx_exec(&fx, rdmsr_hv, 2), X86_EXC_GP);
	cpu->gpr[RAX] = 0x80000001;
	cr_assert_eq(fx_exec(&fx, cpuid, 2), -1);
	cr_assert(cpu->gpr[RDX] & (1u << 29), "long mode");
	cr_assert(cpu->gpr[RDX] & (1u << 20), "NX");
	cpu->gpr[RAX] = 7;
	cpu->gpr[RCX] = 0;
	cr_assert_eq(fx_exec(&fx, cpuid, 2), -1);
	cr_assert(cpu->gpr[RBX] & (1u << 9), "ERMS");
	cr_assert(cpu->gpr[RDX] & (1u << 4), "FSRM");
	/* RDMSR of an MSR nobody models: #GP(0). */
	static const uint8_t rdmsr[] = { 0x0f, 0x32 };
	cpu->gpr[RCX] = 0x12345;
	cr_assert_eq(fx_exec(&fx, rdmsr, 2), X86_EXC_GP);
	cpu->gpr[RCX] = MSR_IA32_PAT;
	cr_assert_eq(fx_exec(&fx, rdmsr, 2), -1);
	cr_assert_eq(cpu->gpr[RAX], 0x00070406);
	/* ARCH_CAPABILITIES: not affected by Meltdown (bit 0), MDS (5), BHI
	 * (20) nor indirect target selection (62, the bit Linux needs from a
	 * hypervisor before it leaves returns alone). */
	cpu->gpr[RCX] = 0x10a;
	cr_assert_eq(fx_exec(&fx, rdmsr, 2), -1);
	cr_assert(cpu->gpr[RAX] & 1u);
	cr_assert(cpu->gpr[RAX] & (1u << 5));
	cr_assert(cpu->gpr[RAX] & (1u << 20));
	cr_assert(cpu->gpr[RDX] & (1u << 30));
	/* WRMSR of an invalid PAT type: #GP(0). */
	static const uint8_t wrmsr[] = { 0x0f, 0x30 };
	cpu->gpr[RAX] = 0x02;
	cpu->gpr[RDX] = 0;
	cr_assert_eq(fx_exec(&fx, wrmsr, 2), X86_EXC_GP);
	/* The TSC moves forward. */
	static const uint8_t rdtsc[] = { 0x0f, 0x31 };
	cr_assert_eq(fx_exec(&fx, rdtsc, 2), -1);
	uint64_t t0 = (uint32_t)cpu->gpr[RAX] | cpu->gpr[RDX] << 32;
	cr_assert_eq(fx_exec(&fx, rdtsc, 2), -1);
	uint64_t t1 = (uint32_t)cpu->gpr[RAX] | cpu->gpr[RDX] << 32;
	cr_assert_gt(t1, t0);
}

Test(emu_except, io_permission_bitmap)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	cpu->tr.limit = 0x67 + 0x2000 / 8 + 1;
	fx_w32(&fx, TSS + 0x64, 0x68u << 16);          /* I/O map base 0x68 */
	memset(fx_ptr(&fx, TSS + 0x68), 0xff, 0x2000 / 8 + 1);
	*fx_ptr(&fx, TSS + 0x68 + 0x80 / 8) = 0xfe;    /* port 0x80 allowed */
	cpu->cpl = 3;
	emu_set_rflags(cpu, X86_FLAG_FIXED);           /* IOPL 0 */
	static const uint8_t out80[] = { 0xe6, 0x80 };
	static const uint8_t out81[] = { 0xe6, 0x81 };
	static const uint16_t dummy = 0;
	(void)dummy;
	cr_assert_eq(fx_exec(&fx, out80, 2), -1);
	cr_assert_eq(fx_exec(&fx, out81, 2), X86_EXC_GP);
	cr_assert_eq(cpu->exc_error, 0);
	/* A word at 0x80 also needs 0x81. */
	static const uint8_t out80w[] = { 0x66, 0xe7, 0x80 };
	cr_assert_eq(fx_exec(&fx, out80w, 3), X86_EXC_GP);
	/* IOPL 3 skips the bitmap. */
	emu_set_rflags(cpu, X86_FLAG_FIXED | X86_FLAG_IOPL);
	cr_assert_eq(fx_exec(&fx, out81, 2), -1);
}

/* V86 state directly: PE, EFLAGS.VM, TR at TSS with a redirection bitmap. */
static void enter_v86_vme(unsigned iopl)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	memset(fx_ptr(&fx, TSS), 0, 0x100);
	fx_w32(&fx, TSS + 0x64, 0x88u << 16);       /* I/O map at 0x88: redirection bitmap at 0x68 */
	memset(fx_ptr(&fx, TSS + 0x68), 0xff, 32);
	*fx_ptr(&fx, TSS + 0x68 + 0x21 / 8) &= (uint8_t)~(1u << (0x21 & 7));   /* redirect INT 0x21 */
	cpu->tr.limit = 0x88 + 0x2000 / 8;
	cpu->cr4 |= X86_CR4_VME;
	emu_set_rflags(cpu, X86_FLAG_FIXED | X86_FLAG_VM | X86_FLAG_VIF | ((uint64_t)iopl << 12));
	emu_update_mode(cpu);
	for (int s = 0; s < SEG_COUNT; s++)
		emu_load_seg(cpu, s, s == SEG_CS ? 0x100 : 0);
	cpu->rip = 0x10;
	cpu->gpr[RSP] = 0x8000;
	fx_w32(&fx, 0x21 * 4, 0x0200u << 16 | 0x0040);   /* V86 IVT: 0200:0040 */
}

Test(emu_except, vme_redirects_int_n_through_the_v86_ivt)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_v86_vme(0);
	cr_assert_eq(cpu->mode, EMU_MODE_V86);
	static const uint8_t int21[] = { 0xcd, 0x21 };
	cr_assert_eq(fx_exec(&fx, int21, 2), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_V86);
	cr_assert_eq(cpu->seg[SEG_CS].sel, 0x200);
	cr_assert_eq(cpu->rip, 0x40);
	cr_assert_eq(*(uint16_t *)fx_ptr(&fx, 0x7ffa), 0x12, "return IP");
	cr_assert_eq(*(uint16_t *)fx_ptr(&fx, 0x7ffc), 0x100, "return CS");
	uint16_t pushed = *(uint16_t *)fx_ptr(&fx, 0x7ffe);
	cr_assert(pushed & X86_FLAG_IF, "VIF shows as IF");
	cr_assert_eq(pushed & X86_FLAG_IOPL, X86_FLAG_IOPL, "IOPL shows as 3");
	cr_assert_eq(emu_get_rflags(cpu) & X86_FLAG_VIF, 0, "VIF cleared");
	/* 16-bit IRET at IOPL 0 with VME: VIF back from the popped IF. */
	static const uint8_t iret[] = { 0xcf };
	cr_assert_eq(fx_exec(&fx, iret, 1), -1);
	cr_assert_eq(cpu->seg[SEG_CS].sel, 0x100);
	cr_assert_eq(cpu->rip, 0x12);
	cr_assert(emu_get_rflags(cpu) & X86_FLAG_VIF);
	cr_assert_eq(emu_get_rflags(cpu) & X86_FLAG_IOPL, 0, "IOPL unchanged");
	/* A vector whose bitmap bit is set faults at IOPL < 3. */
	static const uint8_t int22[] = { 0xcd, 0x22 };
	cr_assert_eq(fx_exec(&fx, int22, 2), X86_EXC_GP);
	/* A 32-bit IRET at IOPL < 3 faults even with VME. */
	static const uint8_t iretd[] = { 0x66, 0xcf };
	cr_assert_eq(fx_exec(&fx, iretd, 2), X86_EXC_GP);
	/* CLI/STI act on VIF. */
	static const uint8_t cli[] = { 0xfa }, sti[] = { 0xfb };
	cr_assert_eq(fx_exec(&fx, cli, 1), -1);
	cr_assert_eq(emu_get_rflags(cpu) & X86_FLAG_VIF, 0);
	cr_assert_eq(fx_exec(&fx, sti, 1), -1);
	cr_assert(emu_get_rflags(cpu) & X86_FLAG_VIF);
}

Test(emu_except, v86_int_n_at_iopl3_without_redirection_uses_the_idt)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_v86_vme(3);
	set_gate32(0x22, SEL_CODE32, 0x6000, 0xe, 3);
	fx_w32(&fx, TSS + 4, 0x9000);
	fx_w32(&fx, TSS + 8, SEL_DATA32);
	cpu->seg[SEG_DS].sel = 0x1234;
	static const uint8_t int22[] = { 0xcd, 0x22 };
	cr_assert_eq(fx_exec(&fx, int22, 2), -1);
	cr_assert_eq(cpu->mode, EMU_MODE_PROT32);
	cr_assert_eq(cpu->cpl, 0);
	cr_assert_eq(cpu->rip, 0x6000);
	/* Frame: EIP CS EFLAGS ESP SS ES DS FS GS, DS/ES/FS/GS nulled. */
	cr_assert_eq(fx_r32(&fx, 0x9000 - 36), 0x12);
	cr_assert(fx_r32(&fx, 0x9000 - 28) & X86_FLAG_VM);
	cr_assert_eq(fx_r32(&fx, 0x9000 - 12), 0x1234, "DS saved");
	cr_assert_eq(cpu->seg[SEG_DS].attr, 0);
}

Test(emu_except, cr8_reads_back_without_a_lapic)
{
	struct emu_cpu *cpu = fx.cpu;
	static const uint8_t mov_cr8_rax[] = { 0x44, 0x0f, 0x22, 0xc0 };
	static const uint8_t mov_rax_cr8[] = { 0x44, 0x0f, 0x20, 0xc0 };
	cpu->mode = EMU_MODE_LONG64;
	cpu->gpr[RAX] = 0x9;
	cr_assert_eq(fx_exec(&fx, mov_cr8_rax, 4), -1);
	cr_assert_eq(emu_hook_get_tpr(cpu), 0x90, "TPR = CR8 << 4");
	cpu->gpr[RAX] = 0;
	cr_assert_eq(fx_exec(&fx, mov_rax_cr8, 4), -1);
	cr_assert_eq(cpu->gpr[RAX], 0x9);
	cpu->gpr[RAX] = 0x10;
	cr_assert_eq(fx_exec(&fx, mov_cr8_rax, 4), X86_EXC_GP, "reserved CR8 bits");
}

Test(emu_except, single_step_trap_reports_the_next_instruction)
{
	struct emu_cpu *cpu = fx.cpu;
	enter_prot32();
	set_gate32(X86_EXC_DB, SEL_CODE32, 0x6400, 0xe, 0);
	cpu->gpr[RSP] = 0x8000;
	emu_set_rflags(cpu, X86_FLAG_FIXED | X86_FLAG_TF);
	cpu->rip = 0x5003;   /* the instruction after the one that ran with TF */
	cpu->dbg_pending = 1u << 14;   /* BS */
	emu_debug_trap(cpu);
	cr_assert_eq(cpu->rip, 0x6400);
	cr_assert(cpu->dr[6] & (1u << 14), "DR6.BS");
	cr_assert_eq(fx_r32(&fx, 0x8000 - 12), 0x5003, "trap: saved EIP is the next instruction");
	cr_assert(fx_r32(&fx, 0x8000 - 4) & X86_FLAG_TF, "TF saved in the frame");
	cr_assert_eq(emu_get_rflags(cpu) & X86_FLAG_TF, 0, "handler runs with TF clear");
}
