/* Translated code shared by the vCPUs of a VM (src/cpu/emu/jit,
 * docs/architecture.md "Code generation"): a block one vCPU translated
 * is run by the other without a second translation; a store by one vCPU
 * into code the other runs chained (direct jumps within a page) is seen
 * by the other (cross-modifying code, SDM vol. 3A 8.1.3); a code cache
 * too small for one vCPU's code is flushed whole while the other runs
 * chained translations, and neither goes wrong.  64-bit code, blocks
 * translated at their first run.
 *
 * A block that changes the fetch context without ending (INVPCID) must
 * not chain to a successor in its page by the old mapping.
 *
 * Memory: the first 2 MiB identity-mapped (page tables at 0x10000), the
 * next 2 MiB mapped to physical 4 MiB; vCPU i's stack below 0x8000 +
 * 0x1000 * i. */
#include "two_vcpus.h"

#include "cpu/engines.h"
#include "cpu/emu/core/block.h"
#include "cpu/emu/emu.h"
#include "machine/accel.h"
#include "machine/machine.h"
#include "machine/x86.h"

#include <pthread.h>
#include <string.h>

#define RAM_SIZE (8ull << 20)
#define PML4 0x10000u

static struct vm vm;
static struct vcpu vcpus[2];

static void put(uint64_t gpa, const void *p, size_t n)
{
	cr_assert_eq(gmem_write(&vm.mem, gpa, p, n), 0);
}

static void put64(uint64_t gpa, uint64_t v)
{
	put(gpa, &v, 8);
}

/* A VM of two vCPUs that translate every block at its first run, with a
 * code cache of cache_bytes (0: the default); the first 2 MiB mapped
 * one to one by a large page. */
static void setup_vm(uint64_t cache_bytes)
{
	two_vcpus_vm(&vm, vcpus, RAM_SIZE, cache_bytes, 1);
	put64(PML4, (PML4 + 0x1000) | 3);
	put64(PML4 + 0x1000, (PML4 + 0x2000) | 3);
	put64(PML4 + 0x2000, 0x83);            /* 2 MiB at 0: P, RW, PS */
	put64(PML4 + 0x2008, 0x400083);        /* 2 MiB at 2 MiB: physical 4 MiB */
	two_vcpus_init(&vm, vcpus);
}

static void teardown_vm(void)
{
	two_vcpus_destroy(&vm, vcpus);
}

static struct emu_cpu *cpu(unsigned i)
{
	return vcpus[i].accel;
}

/* vCPU i in 64-bit mode at rip, registers 0, with a budget. */
static void place(unsigned i, uint64_t rip, uint64_t budget)
{
	struct vcpu *v = &vcpus[i];
	struct x86_sregs sregs;
	cr_assert_eq(accel_emu.get_sregs(v, &sregs), 0);
	sregs.cr0 = X86_CR0_PE | X86_CR0_PG | 0x10;
	sregs.cr3 = PML4;
	sregs.cr4 = X86_CR4_PAE;
	sregs.efer = X86_EFER_LME | X86_EFER_LMA;
	for (unsigned s = 0; s < SEG_COUNT; s++)
		sregs.seg[s] = (struct x86_segment){ .selector = 0x10, .limit = 0xffffffff, .type = 3, .s = 1,
						     .present = 1, .db = 1, .g = 1 };
	sregs.seg[SEG_CS] = (struct x86_segment){ .selector = 0x08, .limit = 0xffffffff, .type = 0xb, .s = 1,
						  .present = 1, .l = 1, .g = 1 };
	cr_assert_eq(accel_emu.set_sregs(v, &sregs), 0);
	struct x86_regs regs;
	cr_assert_eq(accel_emu.get_regs(v, &regs), 0);
	memset(regs.gpr, 0, sizeof(regs.gpr));
	regs.rip = rip;
	regs.gpr[RSP] = 0x8000 + 0x1000 * i;
	regs.rflags = 2;
	cr_assert_eq(accel_emu.set_regs(v, &regs), 0);
	cpu(i)->icount_stop = cpu(i)->icount + budget;
}

/* Runs vCPU i until it stops for something else than a kick, or its
 * budget is spent; returns the exit reason. */
static enum vcpu_exit_reason run(unsigned i)
{
	struct vcpu_exit exit;
	do {
		memset(&exit, 0, sizeof(exit));
		accel_emu.vcpu_run(&vcpus[i], &exit);
	} while (exit.reason == VCPU_EXIT_KICK && cpu(i)->icount < cpu(i)->icount_stop);
	return exit.reason;
}

static void *run_thread(void *arg)
{
	return (void *)(uintptr_t)run((unsigned)(uintptr_t)arg);
}

/* vCPU 1 from rip1 on a thread of its own, with a large budget, while
 * vCPU 0 runs from rip0 to its HLT; returns how vCPU 1 stopped. */
static enum vcpu_exit_reason run_both(uint64_t rip0, uint64_t rip1)
{
	place(1, rip1, 2000000000);
	place(0, rip0, 100000000);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, run_thread, (void *)(uintptr_t)1), 0);
	cr_assert_eq(run(0), VCPU_EXIT_HLT);
	void *reason;
	pthread_join(t, &reason);
	return (enum vcpu_exit_reason)(uintptr_t)reason;
}

static struct accel_code_stats stats(void)
{
	struct accel_code_stats s = { 0 };
	accel_emu.code_stats(&vm, &s);
	return s;
}

/* RAX += 3 by a call ECX times, the loop closing with a Jcc each way,
 * all in one page (so every exit may chain): RAX = 3 * ECX at the HLT. */
static void put_calls(uint64_t at, uint32_t times)
{
	uint8_t code[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0, 0, 0, 0,                   /* mov ecx, times */
		0xe8, 0x0a, 0x00, 0x00, 0x00,       /* l: call f */
		0xf6, 0xc1, 0x01,                   /* test cl, 1 */
		0x74, 0x00,                         /* jz $+2: both ways, one target */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0xf2,                         /* jnz l */
		0xf4,                               /* hlt */
		0x48, 0x83, 0xc0, 0x03,             /* f: add rax, 3 */
		0xeb, 0x00,                         /* jmp $+2 */
		0xc3,                               /* ret */
	};
	memcpy(&code[3], &times, 4);
	put(at, code, sizeof(code));
}

Test(emu_jitshare, second_vcpu_runs_the_translations_the_first_made)
{
	setup_vm(0);
	put_calls(0x1000, 1000);
	place(0, 0x1000, 100000000);
	cr_assert_eq(run(0), VCPU_EXIT_HLT);
	cr_assert_eq(cpu(0)->gpr[RAX], 3000);
	struct accel_code_stats before = stats();
	cr_assert_gt(before.jit_blocks, 0);
	cr_assert_eq(before.jit_shared, 0);
	cr_assert_gt(before.translated_bytes, 0);

	place(1, 0x1000, 100000000);
	cr_assert_eq(run(1), VCPU_EXIT_HLT);
	cr_assert_eq(cpu(1)->gpr[RAX], 3000);
	struct accel_code_stats after = stats();
	cr_assert_eq(after.jit_blocks, before.jit_blocks, "vCPU 1 translated %llu blocks again",
		     (unsigned long long)(after.jit_blocks - before.jit_blocks));
	/* Every block vCPU 0 translated and vCPU 1 entered from the loop:
	 * at least the first one. */
	cr_assert_gt(after.jit_shared, 0);
	cr_assert_leq(after.jit_shared, after.jit_blocks);
	cr_assert_eq(after.jit_flushes, 0);
	teardown_vm();
}

/* vCPU 1 calls f until it returns 2, in one page, so that its blocks
 * jump to each other directly; vCPU 0 spins a while, then rewrites f's
 * immediate from 1 to 2.  vCPU 1 must see the store and halt. */
Test(emu_jitshare, store_by_one_vcpu_into_code_the_other_runs_chained_is_seen)
{
	static const uint8_t reader[] = {
		0xe8, 0x06, 0x00, 0x00, 0x00,       /* l: call f */
		0x83, 0xf8, 0x02,                   /* cmp eax, 2 */
		0x75, 0xf6,                         /* jne l */
		0xf4,                               /* hlt */
		0xb8, 0x01, 0x00, 0x00, 0x00,       /* f: mov eax, 1 */
		0xc3,                               /* ret */
	};
	static const uint8_t writer[] = {
		0xb9, 0x40, 0x0d, 0x03, 0x00,       /* mov ecx, 200000 */
		0xff, 0xc9,                         /* w: dec ecx */
		0x75, 0xfc,                         /* jnz w */
		0xc6, 0x04, 0x25, 0x0c, 0x10, 0x00, 0x00, 0x02, /* mov byte [0x100c], 2 */
		0xf4,                               /* hlt */
	};
	setup_vm(0);
	put(0x1000, reader, sizeof(reader));
	put(0x3000, writer, sizeof(writer));
	enum vcpu_exit_reason r1 = run_both(0x3000, 0x1000);
	cr_assert_eq(r1, VCPU_EXIT_HLT, "vCPU 1 never saw the store (exit %d after %llu instructions)", (int)r1,
		     (unsigned long long)cpu(1)->icount);
	cr_assert_eq(cpu(1)->gpr[RAX], 2);
	cr_assert_gt(stats().jit_shared + stats().jit_blocks, 0);
	teardown_vm();
}

/* 700 blocks of ADD EAX, 1 and a JMP to the next in one page, run 30
 * times: far more host code than a code cache of a quarter of 256 KiB
 * holds, so it is flushed again and again. */
static void put_many_blocks(uint64_t at)
{
	uint8_t code[4096];
	unsigned k = 0;
	code[k++] = 0x31;                      /* xor eax, eax */
	code[k++] = 0xc0;
	code[k++] = 0xb9;                      /* mov ecx, 30 */
	code[k++] = 30;
	code[k++] = 0;
	code[k++] = 0;
	code[k++] = 0;
	unsigned top = k;
	for (unsigned i = 0; i < 700; i++) {
		code[k++] = 0x83;              /* add eax, 1 */
		code[k++] = 0xc0;
		code[k++] = 0x01;
		code[k++] = 0xeb;              /* jmp $+2 */
		code[k++] = 0x00;
	}
	code[k++] = 0xff;                      /* dec ecx */
	code[k++] = 0xc9;
	code[k++] = 0x0f;                      /* jnz near top */
	code[k++] = 0x85;
	int32_t rel = (int32_t)top - (int32_t)(k + 4);
	memcpy(&code[k], &rel, 4);
	k += 4;
	code[k++] = 0xf4;                      /* hlt */
	cr_assert_leq(k, sizeof(code));
	put(at, code, k);
}

Test(emu_jitshare, flush_of_a_full_code_cache_while_the_other_vcpu_runs_chained)
{
	setup_vm(256 << 10);
	put_calls(0x1000, 2000000);
	put_many_blocks(0x3000);
	cr_assert_eq(run_both(0x3000, 0x1000), VCPU_EXIT_HLT);
	cr_assert_eq(cpu(0)->gpr[RAX], 700 * 30);
	cr_assert_eq(cpu(1)->gpr[RAX], 3 * 2000000ull);
	struct accel_code_stats s = stats();
	cr_assert_eq(s.jit_cache_bytes, (256 << 10) / EMU_JIT_CACHE_SHARE);
	cr_assert_gt(s.jit_flushes, 0, "the code cache was never full");
	cr_assert_leq(s.translated_peak, s.jit_cache_bytes);
	/* How much is translated again after a flush depends on how soon
	 * the other vCPU's thread passes its loop's top (the drain): on a
	 * loaded host it may get no CPU for the rest of the run. */
	teardown_vm();
}

/* A loop at linear 2 MiB stores the page's own directory entry and
 * INVPCIDs it every time, the same mapping until the last pass, which
 * maps physical 6 MiB there instead: a copy of the code that adds 100
 * rather than 1 after the INVPCID.  The INVPCID ends a block of
 * EMU_BLOCK_MAX_INSNS, so the block's exit follows it: it must reach
 * the new page, as the interpreter's lookup does, not the block linked
 * under the old mapping.  99 * 1 + 100. */
Test(emu_jitshare, no_chain_after_invpcid_remapped_the_page)
{
	uint8_t code[128];
	static const uint8_t head[] = {
		0x31, 0xc0,                         /* xor eax, eax */
		0xb9, 0x64, 0x00, 0x00, 0x00,       /* mov ecx, 100 */
		0x49, 0xc7, 0xc0, 0x83, 0x00, 0x40, 0x00, /* l: mov r8, 0x400083 */
		0x49, 0xc7, 0xc1, 0x83, 0x00, 0x60, 0x00, /* mov r9, 0x600083 */
		0x83, 0xf9, 0x01,                   /* cmp ecx, 1 */
		0x4d, 0x0f, 0x44, 0xc1,             /* cmove r8, r9 */
		0x4c, 0x89, 0x04, 0x25, 0x08, 0x20, 0x01, 0x00, /* mov [PML4 + 0x2008], r8 */
		0xeb, 0x00,                         /* jmp $+2 */
		0x31, 0xd2,                         /* xor edx, edx: individual address */
	};
	static const uint8_t tail[] = {
		0x66, 0x0f, 0x38, 0x82, 0x14, 0x25, 0x00, 0x90, 0x00, 0x00, /* invpcid rdx, [0x9000] */
		0x83, 0xc0, 0x01,                   /* add eax, 1 */
		0xff, 0xc9,                         /* dec ecx */
		0x75, 0x00,                         /* jnz l */
		0xf4,                               /* hlt */
	};
	unsigned k = 0;
	memcpy(code, head, sizeof(head));
	k += sizeof(head);
	memset(code + k, 0x90, EMU_BLOCK_MAX_INSNS - 2);   /* nop: INVPCID the block's last */
	k += EMU_BLOCK_MAX_INSNS - 2;
	memcpy(code + k, tail, sizeof(tail));
	unsigned add = k + 12, jnz = k + 15;
	k += sizeof(tail);
	code[jnz + 1] = (uint8_t)(7 - (int)(jnz + 2));
	setup_vm(0);
	put(0x400000, code, k);
	code[add] = 100;                        /* the copy: add eax, 100 */
	put(0x600000, code, k);
	put64(0x9000, 0);                       /* PCID 0 */
	put64(0x9008, 0x200000);                /* the linear address */
	place(0, 0x200000, 100000000);
	cr_assert_eq(run(0), VCPU_EXIT_HLT, "stopped at %#llx", (unsigned long long)cpu(0)->rip);
	cr_assert_eq(cpu(0)->gpr[RAX], 99 + 100);
	teardown_vm();
}
