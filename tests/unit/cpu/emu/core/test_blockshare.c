/* The decoded-block cache shared by the vCPUs of a VM (src/cpu/emu/core/
 * block.c, docs/architecture.md "Decode once"): a block one vCPU decoded
 * is run by the other without decoding it again; a store by one vCPU
 * into code the other decoded is seen by the other (cross-modifying code,
 * SDM vol. 3A 8.1.3); a cache too small for the code is flushed whole,
 * counted, and never grows past its bound, also while two vCPUs run the
 * same code at once.  Real-mode code, CS = 0. */
#include "two_vcpus.h"

#include "cpu/engines.h"
#include "cpu/emu/core/block.h"
#include "cpu/emu/emu.h"
#include "machine/accel.h"
#include "machine/machine.h"

#include <pthread.h>
#include <string.h>

#define RAM_SIZE (2ull << 20)

static struct vm vm;
static struct vcpu vcpus[2];

static void setup_vm(uint64_t cache_bytes)
{
	two_vcpus_vm(&vm, vcpus, RAM_SIZE, cache_bytes, 0);
	two_vcpus_init(&vm, vcpus);
}

static void teardown_vm(void)
{
	two_vcpus_destroy(&vm, vcpus);
}

/* Puts vCPU i at 0000:rip in real mode with AX = 0 and an instruction
 * budget. */
static void place(unsigned i, uint16_t rip)
{
	struct vcpu *v = &vcpus[i];
	struct x86_sregs sregs;
	cr_assert_eq(accel_emu.get_sregs(v, &sregs), 0);
	sregs.seg[SEG_CS].base = 0;
	sregs.seg[SEG_CS].selector = 0;
	cr_assert_eq(accel_emu.set_sregs(v, &sregs), 0);
	struct x86_regs regs;
	cr_assert_eq(accel_emu.get_regs(v, &regs), 0);
	memset(regs.gpr, 0, sizeof(regs.gpr));
	regs.rip = rip;
	regs.gpr[RSP] = 0x8000 + 0x1000 * i;
	cr_assert_eq(accel_emu.set_regs(v, &regs), 0);
	((struct emu_cpu *)v->accel)->icount_stop = ((struct emu_cpu *)v->accel)->icount + 50000000;
}

/* Runs vCPU i to its HLT; returns AX. */
static uint64_t run_to_hlt(unsigned i)
{
	struct vcpu_exit exit;
	cr_assert_eq(accel_emu.vcpu_run(&vcpus[i], &exit), 0);
	cr_assert_eq(exit.reason, VCPU_EXIT_HLT, "vCPU %u stopped for %d", i, exit.reason);
	struct x86_regs regs;
	accel_emu.get_regs(&vcpus[i], &regs);
	return regs.gpr[RAX] & 0xffff;
}

static struct emu_core_vcpu *core(unsigned i)
{
	return emu_core_of(vcpus[i].accel);
}

static struct emu_block_cache *cache(void)
{
	return ((struct emu_vm *)vm.accel_state)->blocks;
}

/* CX times: AX += 3 through three blocks, then HLT. */
static const uint8_t loop_code[] = {
	0xb9, 0x64, 0x00,   /* mov cx, 100 */
	0x40,               /* l: inc ax */
	0xeb, 0x00,         /* jmp $+2 (ends the block) */
	0x40,               /* inc ax */
	0xeb, 0x00,         /* jmp $+2 */
	0x40,               /* inc ax */
	0xe2, 0xf7,         /* loop l */
	0xf4,               /* hlt */
};

Test(emu_blockshare, second_vcpu_runs_the_blocks_the_first_decoded)
{
	setup_vm(0);
	cr_assert_eq(gmem_write(&vm.mem, 0x1000, loop_code, sizeof(loop_code)), 0);
	place(0, 0x1000);
	cr_assert_eq(run_to_hlt(0), 300);
	uint64_t blocks = cache()->blocks;
	cr_assert_gt(core(0)->decoded, 0);
	cr_assert_eq(core(0)->decoded, blocks);

	place(1, 0x1000);
	cr_assert_eq(run_to_hlt(1), 300);
	cr_assert_eq(core(1)->decoded, 0, "vCPU 1 decoded %llu blocks again", (unsigned long long)core(1)->decoded);
	cr_assert_gt(core(1)->shared_hits, 0);
	cr_assert_eq(cache()->blocks, blocks);
	teardown_vm();
}

Test(emu_blockshare, store_by_one_vcpu_into_code_the_other_decoded_is_seen)
{
	static const uint8_t reader[] = { 0xb8, 0x01, 0x00, 0xf4 };          /* mov ax, 1; hlt */
	static const uint8_t writer[] = { 0xc6, 0x06, 0x01, 0x10, 0x02, 0xf4 }; /* mov byte [0x1001], 2; hlt */
	setup_vm(0);
	cr_assert_eq(gmem_write(&vm.mem, 0x1000, reader, sizeof(reader)), 0);
	cr_assert_eq(gmem_write(&vm.mem, 0x3000, writer, sizeof(writer)), 0);
	place(0, 0x1000);
	cr_assert_eq(run_to_hlt(0), 1);
	place(1, 0x3000);
	run_to_hlt(1);
	place(0, 0x1000);
	cr_assert_eq(run_to_hlt(0), 2, "vCPU 0 ran the block decoded before vCPU 1's store");
	teardown_vm();
}

/* 1200 blocks of one INC AX and a JMP to the next, run CX times: far
 * more than a cache of EMU_BLOCK_ARENA_MIN bytes holds. */
static void put_many_blocks(uint16_t at, unsigned n, uint16_t passes)
{
	uint8_t code[4 + 1200 * 3 + 8];
	unsigned k = 0;
	cr_assert_leq(n, 1200);
	code[k++] = 0xb9;                      /* mov cx, passes */
	code[k++] = (uint8_t)passes;
	code[k++] = (uint8_t)(passes >> 8);
	unsigned top = k;
	for (unsigned i = 0; i < n; i++) {
		code[k++] = 0x40;              /* inc ax */
		code[k++] = 0xeb;              /* jmp $+2 */
		code[k++] = 0x00;
	}
	code[k++] = 0x49;                      /* dec cx */
	code[k++] = 0x0f;                      /* jnz near top */
	code[k++] = 0x85;
	int rel = (int)top - (int)(k + 2);
	code[k++] = (uint8_t)rel;
	code[k++] = (uint8_t)(rel >> 8);
	code[k++] = 0xf4;                      /* hlt */
	cr_assert_eq(gmem_write(&vm.mem, at, code, k), 0);
}

Test(emu_blockshare, tiny_cache_is_flushed_whole_and_stays_in_its_bound)
{
	setup_vm(EMU_BLOCK_ARENA_MIN);
	put_many_blocks(0x1000, 1200, 5);
	place(0, 0x1000);
	cr_assert_eq(run_to_hlt(0), 6000);
	cr_assert_eq(cache()->size, EMU_BLOCK_ARENA_MIN);
	cr_assert_gt(cache()->flushes, 0);
	cr_assert_leq(cache()->high_water, cache()->size);
	/* Flushed blocks were decoded again: more blocks than the code has. */
	cr_assert_gt(cache()->blocks, 1200);
	teardown_vm();
}

static void *run_thread(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	struct vcpu_exit exit;
	do
		accel_emu.vcpu_run(&vcpus[i], &exit);
	while (exit.reason == VCPU_EXIT_KICK && ((struct emu_cpu *)vcpus[i].accel)->icount <
		 ((struct emu_cpu *)vcpus[i].accel)->icount_stop);
	return (void *)(uintptr_t)exit.reason;
}

Test(emu_blockshare, two_vcpus_run_the_same_code_through_flushes_at_once)
{
	setup_vm(EMU_BLOCK_ARENA_MIN);
	put_many_blocks(0x1000, 1200, 20);
	place(0, 0x1000);
	place(1, 0x1000);
	pthread_t t[2];
	for (uintptr_t i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, run_thread, (void *)i), 0);
	for (unsigned i = 0; i < 2; i++) {
		void *reason;
		pthread_join(t[i], &reason);
		cr_assert_eq((uintptr_t)reason, VCPU_EXIT_HLT);
		struct x86_regs regs;
		accel_emu.get_regs(&vcpus[i], &regs);
		cr_assert_eq(regs.gpr[RAX] & 0xffff, 24000, "vCPU %u: AX %llu", i,
			     (unsigned long long)regs.gpr[RAX]);
	}
	cr_assert_gt(cache()->flushes, 1);
	cr_assert_leq(cache()->high_water, cache()->size);
	teardown_vm();
}
