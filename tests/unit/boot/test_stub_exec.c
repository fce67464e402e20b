/* Runs the firmware ROM's stub on Unicorn (QEMU's x86 CPU as a library)
 * as an independent oracle of its mode transitions, and checks the machine
 * state the boot protocols require at the kernel's entry.
 *
 * Unicorn cannot set a real-mode CS base of 0xffff0000, so the ROM is also
 * mapped at 0xf0000 (as the PC chipset aliases its top 64 KiB) and the CPU
 * starts at f000:fff0, the same ROM bytes; the stub's far jump then
 * continues at 0xffff0000 proper.  Unicorn's CPU has long mode only when
 * opened in 64-bit mode, so the Linux path runs in two overlapping parts:
 * reset -> protected mode -> the long-mode switch (checking CR3, CR4 and
 * the EFER write) up to the far jump into 64-bit code, then that jump's
 * target on a 64-bit CPU to the kernel's entry. */
#include "boot_test.h"

#include "util/error.h"

#include <errno.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicorn/unicorn.h>

#include "mb_aout.h"

#define MiB (1ull << 20)
#define RAM (32 * MiB)

static struct guest_memory mem;
static struct boot_config cfg;
static struct boot_info info;
static uc_engine *uc;

static void teardown(void)
{
	if (uc)
		uc_close(uc);
	uc = NULL;
	gmem_destroy(&mem);
}

TestSuite(stub_exec, .fini = teardown);

static uint64_t reg(int id)
{
	uint64_t v = 0;
	cr_assert_eq(uc_reg_read(uc, id, &v), UC_ERR_OK);
	return v;
}

static void trace(uc_engine *u, uint64_t addr, uint32_t size, void *data)
{
	uint64_t cs = 0;
	uc_reg_read(u, UC_X86_REG_CS, &cs);
	fprintf(stderr, "trace %04llx:%#llx (%u)\n", (unsigned long long)cs, (unsigned long long)addr, size);
}

static void trace_intr(uc_engine *u, uint32_t intno, void *data)
{
	uint64_t cr2 = 0, cr3 = 0, cr4 = 0, cr0 = 0;
	uc_x86_msr msr = { .rid = 0xc0000080 };
	uc_reg_read(u, UC_X86_REG_CR2, &cr2);
	uc_reg_read(u, UC_X86_REG_CR3, &cr3);
	uc_reg_read(u, UC_X86_REG_CR4, &cr4);
	uc_reg_read(u, UC_X86_REG_CR0, &cr0);
	uc_reg_read(u, UC_X86_REG_MSR, &msr);
	fprintf(stderr, "exception %u cr0 %#llx cr2 %#llx cr3 %#llx cr4 %#llx efer %#llx\n", intno,
		(unsigned long long)cr0, (unsigned long long)cr2, (unsigned long long)cr3, (unsigned long long)cr4,
		(unsigned long long)msr.value);
	uc_emu_stop(u);
}

/* Maps guest memory into Unicorn and runs from the reset vector until the
 * kernel's entry (or 500 instructions). */
static void map_memory(void)
{
	const struct gmem_region *ram = gmem_find_region(&mem, 0), *rom = gmem_find_region(&mem, GMEM_ROM_BASE);
	cr_assert(ram && rom);
	cr_assert_eq(uc_mem_map_ptr(uc, 0, 0xf0000, UC_PROT_ALL, ram->host), UC_ERR_OK);
	cr_assert_eq(uc_mem_map_ptr(uc, 0xf0000, 0x10000, UC_PROT_READ | UC_PROT_EXEC, rom->host), UC_ERR_OK);
	cr_assert_eq(uc_mem_map_ptr(uc, 0x100000, ram->size - 0x100000, UC_PROT_ALL, ram->host + 0x100000), UC_ERR_OK);
	cr_assert_eq(uc_mem_map_ptr(uc, GMEM_ROM_BASE, GMEM_ROM_SIZE, UC_PROT_READ | UC_PROT_EXEC, rom->host), UC_ERR_OK);
}

static void run_until(uint64_t begin, uint64_t until)
{
	uc_hook h;
	if (getenv("BOOT_TRACE"))
		uc_hook_add(uc, &h, UC_HOOK_CODE, (void *)trace, NULL, 1, 0);
	if (getenv("BOOT_TRACE"))
		uc_hook_add(uc, &h, UC_HOOK_INTR, (void *)trace_intr, NULL, 1, 0);
	uc_err e = uc_emu_start(uc, begin, until, 0, 500);
	cr_assert_eq(e, UC_ERR_OK, "unicorn: %s at rip %#llx", uc_strerror(e), (unsigned long long)reg(UC_X86_REG_EIP));
	cr_assert_eq(reg(UC_X86_REG_EIP), until, "stopped at %#llx, not at %#llx", (unsigned long long)reg(UC_X86_REG_EIP),
		     (unsigned long long)until);
}

static uint32_t wrmsr_ecx;
static uint64_t wrmsr_value;

/* Records the operands of the stub's WRMSR before it executes (this CPU
 * model has no long mode and drops EFER.LME). */
static void on_wrmsr(uc_engine *u, uint64_t addr, uint32_t size, void *data)
{
	uint8_t op[2] = { 0 };
	if (size != 2 || uc_mem_read(u, addr, op, 2) != UC_ERR_OK || op[0] != 0x0f || op[1] != 0x30)
		return;
	uint64_t ecx = 0, eax = 0, edx = 0;
	uc_reg_read(u, UC_X86_REG_ECX, &ecx);
	uc_reg_read(u, UC_X86_REG_EAX, &eax);
	uc_reg_read(u, UC_X86_REG_EDX, &edx);
	wrmsr_ecx = (uint32_t)ecx;
	wrmsr_value = (uint32_t)eax | (uint64_t)(uint32_t)edx << 32;
}

static uint64_t efer(void)
{
	uc_x86_msr msr = { .rid = 0xc0000080 };
	cr_assert_eq(uc_reg_read(uc, UC_X86_REG_MSR, &msr), UC_ERR_OK);
	return msr.value;
}

/* From the reset vector, in real mode at f000:fff0. */
static void run_from_reset(uint64_t until)
{
	cr_assert_eq(uc_open(UC_ARCH_X86, UC_MODE_16, &uc), UC_ERR_OK);
	map_memory();
	uint64_t cs = 0xf000, cr0 = 0x60000010;   /* reset value: CD, NW, ET (SDM vol. 3A, 9.1.1) */
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_CS, &cs), UC_ERR_OK);
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_CR0, &cr0), UC_ERR_OK);
	run_until(0xfff0, until);
}

/* Address of the stub's far jump (EA imm32 sel16) to selector sel in
 * protected-mode code, and its target. */
static uint64_t far_jump_to(uint16_t sel, uint32_t *target)
{
	const uint8_t *rom = gmem_find_region(&mem, GMEM_ROM_BASE)->host;
	for (unsigned i = 0x40; i + 7 <= 0x400; i++) {
		if (rom[i] == 0xea && (rom[i + 5] | rom[i + 6] << 8) == sel && rom[i - 1] != 0x66) {
			memcpy(target, rom + i + 1, 4);
			return GMEM_ROM_BASE + i;
		}
	}
	cr_assert_fail("no far jump to selector %#x in the stub", sel);
	return 0;
}

Test(stub_exec, multiboot_kernel_is_entered_in_32_bit_protected_mode)
{
	bt_mem_init(&mem, RAM);
	bt_config(&cfg, bt_write_file(0, mb_aout, mb_aout_len), NULL, "x");
	cr_assert_eq(boot_load_mem(&mem, &cfg, NULL, &info), 0, "%s", err_msg());
	run_from_reset(info.stub.entry);
	/* Multiboot 0.6.96, 3.2 "Machine state". */
	cr_assert_eq(reg(UC_X86_REG_EAX) & 0xffffffff, 0x2badb002);
	cr_assert_eq(reg(UC_X86_REG_EBX) & 0xffffffff, BOOT_MB_INFO);
	uint64_t cr0 = reg(UC_X86_REG_CR0);
	cr_assert(cr0 & 1, "CR0.PE set");
	cr_assert_not(cr0 & 0x80000000u, "CR0.PG clear");
	cr_assert_not(cr0 & 0x60000000u, "caches enabled: CR0.CD and NW clear");
	cr_assert_not(efer() & 0x400, "not in long mode");
	cr_assert_eq(reg(UC_X86_REG_CS), 0x08);
	cr_assert_eq(reg(UC_X86_REG_DS), 0x18);
	cr_assert_eq(reg(UC_X86_REG_SS), 0x18);
	cr_assert_not(reg(UC_X86_REG_EFLAGS) & 0x20200, "IF and VM clear");
}

/* The stub parameters as linux_load() fills them (test_linux.c checks
 * that it does). */
Test(stub_exec, linux_kernel_is_entered_in_64_bit_mode_with_rsi_at_boot_params)
{
	bt_mem_init(&mem, RAM);
	uint64_t cr3;
	cr_assert_eq(boot_build_identity_map(&mem, &cr3), 0);
	uint8_t hlt = 0xf4;
	cr_assert_eq(gmem_write(&mem, 0x1000000, &hlt, 1), 0);
	info.stub = (struct boot_stub_params){ .magic = BOOT_STUB_MAGIC, .mode = BOOT_MODE_LONG64, .cr3 = (uint32_t)cr3,
					       .entry = 0x1000000, .rsi = BOOT_ZERO_PAGE, .stack = BOOT_STACK_TOP };
	cr_assert_eq(boot_install_rom(&mem, &info.stub), 0, "%s", err_msg());

	/* Part 1: reset to the jump into 64-bit code (SDM vol. 3A, 10.8.5:
	 * PAE on, CR3 loaded, EFER.LME written, then CR0.PG). */
	uint32_t start64;
	uint64_t jump = far_jump_to(0x10, &start64);
	uc_hook h;
	cr_assert_eq(uc_open(UC_ARCH_X86, UC_MODE_16, &uc), UC_ERR_OK);
	cr_assert_eq(uc_hook_add(uc, &h, UC_HOOK_CODE, (void *)on_wrmsr, NULL, 1, 0), UC_ERR_OK);
	map_memory();
	uint64_t cs = 0xf000;
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_CS, &cs), UC_ERR_OK);
	/* Stop at the "mov cr0, eax" that turns paging on: this CPU has no
	 * long mode, so it would walk the tables as PAE ones after it. */
	uint8_t mov_cr0[3];
	cr_assert_eq(gmem_read(&mem, jump - 3, mov_cr0, 3), 0);
	cr_assert(mov_cr0[0] == 0x0f && mov_cr0[1] == 0x22 && mov_cr0[2] == 0xc0, "mov cr0, eax before the jump");
	run_until(0xfff0, jump - 3);
	cr_assert(reg(UC_X86_REG_CR4) & 0x20, "CR4.PAE");
	cr_assert_eq(reg(UC_X86_REG_CR3), BOOT_PML4);
	cr_assert_eq(reg(UC_X86_REG_EAX) & 0x80000001u, 0x80000001u, "CR0.PE and PG about to be set");
	cr_assert_eq(wrmsr_ecx, 0xc0000080u, "EFER written");
	cr_assert(wrmsr_value & 0x100, "with LME");
	cr_assert_eq(reg(UC_X86_REG_CS), 0x08);
	uc_close(uc);

	/* Part 2: the 64-bit code to the kernel's entry. */
	cr_assert_eq(uc_open(UC_ARCH_X86, UC_MODE_64, &uc), UC_ERR_OK);
	map_memory();
	uint64_t cr4 = 0x20, cr0 = 0x80000011u;
	cr3 = BOOT_PML4;
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_CR3, &cr3), UC_ERR_OK);
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_CR4, &cr4), UC_ERR_OK);
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_CR0, &cr0), UC_ERR_OK);
	uint64_t eflags = 0x202;                  /* IF set: the stub must clear it */
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_EFLAGS, &eflags), UC_ERR_OK);
	run_until(start64, info.stub.entry);

	/* boot.rst "64-bit Boot Protocol": reached through the identity map
	 * (CR3 = ours), RSI = boot_params, interrupts off. */
	cr_assert_eq(reg(UC_X86_REG_RSI), BOOT_ZERO_PAGE);
	cr_assert_eq(reg(UC_X86_REG_RSP), BOOT_STACK_TOP);
	cr_assert_not(reg(UC_X86_REG_EFLAGS) & 0x200, "IF clear");
}

/* A wake from ACPI S3 (docs/power.md): with the resume mark set, the
 * stub leaves the boot path and enters the FACS's 32-bit Firmware Waking
 * Vector in real mode, CS = vector >> 4, IP = vector & 0xf (ACPI 6.4,
 * 5.2.10), as Linux's wakeup trampoline expects. */
Test(stub_exec, s3_resume_enters_the_waking_vector_in_real_mode)
{
	bt_mem_init(&mem, RAM);
	info.stub = (struct boot_stub_params){ .magic = BOOT_STUB_MAGIC, .mode = BOOT_MODE_LONG64, .entry = 0x1000000,
					       .stack = BOOT_STACK_TOP };
	cr_assert_eq(boot_install_rom(&mem, &info.stub), 0, "%s", err_msg());
	const uint32_t facs = 0xe0040, vector = 0x9a000 + 0x5;
	uint8_t f[64] = { 'F', 'A', 'C', 'S', 64 };
	memcpy(f + 12, &vector, 4);
	cr_assert_eq(gmem_write(&mem, facs, f, sizeof(f)), 0);
	cr_assert_eq(gmem_write(&mem, vector, (uint8_t[]){ 0xf4 }, 1), 0);
	cr_assert_eq(boot_set_resume(&mem, facs), 0, "%s", err_msg());
	/* Unicorn stops at a linear address; the HLT placed there would
	 * otherwise end the run one byte later. */
	cr_assert_eq(uc_open(UC_ARCH_X86, UC_MODE_16, &uc), UC_ERR_OK);
	map_memory();
	uint64_t cs = 0xf000;
	cr_assert_eq(uc_reg_write(uc, UC_X86_REG_CS, &cs), UC_ERR_OK);
	uc_err e = uc_emu_start(uc, 0xfff0, vector, 0, 500);
	cr_assert_eq(e, UC_ERR_OK, "unicorn: %s", uc_strerror(e));
	cr_assert_eq(reg(UC_X86_REG_CS), vector >> 4);
	cr_assert_eq(reg(UC_X86_REG_EIP), vector & 0xf);
	cr_assert_not(reg(UC_X86_REG_CR0) & 1, "still in real mode");
	cr_assert_not(reg(UC_X86_REG_EFLAGS) & 0x200, "interrupts off");
	/* Out of real-mode reach: refused. */
	cr_assert_eq(boot_set_resume(&mem, 0x100000), -ERANGE);
}
