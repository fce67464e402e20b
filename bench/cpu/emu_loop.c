/* Instructions per second of the emu engine on simple guest loops, run
 * through accel_emu's vcpu_run in 32-bit flat protected mode:
 *   alu:    add/xor/dec/jnz                 (4 instructions per iteration)
 *   memory: load/add/store/inc/cmp/jb over an array
 *   call:   call/ret pairs
 * Usage: emu-loop [iterations] (default 50M). */
#include "machine/accel.h"
#include "cpu/engines.h"
#include "machine/machine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RAM (64ull << 20)
#define CODE 0x100000u

/* CPU time of this thread: the host is shared, so wall time would
 * measure the neighbours. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void flat(struct x86_segment *s, uint8_t type, uint16_t sel)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->s = 1;
	s->present = 1;
	s->db = 1;
	s->g = 1;
}

static int run(const char *name, const uint8_t *code, size_t len, uint64_t iters, unsigned per_iter)
{
	static struct vm vm;
	static struct vcpu vcpu;
	memset(&vm, 0, sizeof(vm));
	vm.accel = &accel_emu;
	if (gmem_init(&vm.mem, RAM) < 0)
		return -1;
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	pthread_mutex_init(&vm.dev_lock, NULL);
	gmem_write(&vm.mem, CODE, code, len);
	memset(&vcpu, 0, sizeof(vcpu));
	vcpu.vm = &vm;
	vcpu.run_state = VCPU_RUNNABLE;
	pthread_mutex_init(&vcpu.lock, NULL);
	pthread_cond_init(&vcpu.wake, NULL);
	vm.vcpus[0] = &vcpu;
	vm.n_vcpus = 1;
	if (accel_emu.vm_init(&vm) < 0 || accel_emu.vcpu_init(&vcpu) < 0)
		return -1;
	struct x86_sregs sr;
	accel_emu.get_sregs(&vcpu, &sr);
	flat(&sr.seg[SEG_CS], 0xb, 8);
	for (int s = 0; s < SEG_COUNT; s++)
		if (s != SEG_CS)
			flat(&sr.seg[s], 0x3, 16);
	sr.cr0 |= X86_CR0_PE;
	accel_emu.set_sregs(&vcpu, &sr);
	struct x86_regs r;
	accel_emu.get_regs(&vcpu, &r);
	memset(r.gpr, 0, sizeof(r.gpr));
	r.gpr[RCX] = iters;
	r.gpr[RSP] = 0x80000;
	r.gpr[RSI] = 0x200000;
	r.rip = CODE;
	r.rflags = 2;
	accel_emu.set_regs(&vcpu, &r);
	struct vcpu_exit exit;
	double t0 = now();
	do {
		memset(&exit, 0, sizeof(exit));
		accel_emu.vcpu_run(&vcpu, &exit);
	} while (exit.reason == VCPU_EXIT_KICK);
	double dt = now() - t0;
	double insns = (double)iters * per_iter;
	printf("%-7s %6.1f M instructions in %.2f s of CPU time: %.0f MIPS (%s)\n", name, insns / 1e6, dt, insns / dt / 1e6,
	       vcpu_exit_reason_name(exit.reason));
	accel_emu.vcpu_destroy(&vcpu);
	accel_emu.vm_destroy(&vm);
	gmem_destroy(&vm.mem);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 50000000ull;
	/* l: add eax, ebx; xor edx, eax; dec ecx; jnz l; hlt */
	static const uint8_t alu[] = { 0x01, 0xd8, 0x31, 0xc2, 0x49, 0x75, 0xf9, 0xf4 };
	/* l: mov eax, [esi+edx*4]; add eax, ecx; mov [esi+edx*4], eax; inc edx; and edx, 255;
	 *    dec ecx; jnz l; hlt */
	static const uint8_t mem[] = { 0x8b, 0x04, 0x96, 0x01, 0xc8, 0x89, 0x04, 0x96, 0x42, 0x81, 0xe2, 0xff, 0, 0, 0,
				       0x49, 0x75, 0xee, 0xf4 };
	/* l: call f; dec ecx; jnz l; hlt; f: ret */
	static const uint8_t call[] = { 0xe8, 0x04, 0, 0, 0, 0x49, 0x75, 0xf8, 0xf4, 0xc3 };
	if (run("alu", alu, sizeof(alu), n, 4) < 0 || run("memory", mem, sizeof(mem), n, 7) < 0 ||
	    run("call", call, sizeof(call), n, 4) < 0) {
		fprintf(stderr, "emu-loop: cannot set up the VM\n");
		return 1;
	}
	return 0;
}
