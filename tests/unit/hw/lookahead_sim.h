/* A KVM-like run of a bare-metal guest on the emu engine, for the trap
 * lookahead's differential tests (test_lookahead.c) and its benchmark
 * (bench/compound/uart_lookahead.c).
 *
 * The guest runs one decoded block per vcpu_run (blocks end after an I/O
 * instruction), so that, as on KVM, the monitor gets control right after
 * each trapping instruction: that return is counted as an exit.  With the
 * lookahead on, the monitor then hands the state to the lookahead runner
 * (src/cpu/lookahead.h), as the KVM engine does, and writes back what it
 * ran; the device accesses it made are exits the guest did not take.
 * Port I/O ends a block; an MMIO access does not, so an exit here is
 * "a block that made device accesses", which for the port-I/O loops these
 * guests run is one per trapping instruction. */
#ifndef VESSEL_TESTS_HW_LOOKAHEAD_SIM_H
#define VESSEL_TESTS_HW_LOOKAHEAD_SIM_H

#include "board/pc.h"
#include "cpu/emu/emu.h"
#include "cpu/engines.h"
#include "cpu/lookahead.h"
#include "hw/chardev.h"
#include "machine/machine.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct la_machine {
	struct vm vm;
	struct vcpu cpu;
	FILE *out;                  /* COM1's output */
	struct chardev *console;
	struct lookahead *la;
	uint64_t exits;             /* trapping blocks the guest ran itself */
	uint64_t saved;             /* device accesses the lookahead ran */
	uint64_t runs, insns;
};

static inline uint64_t la_traps(const struct vcpu *v)
{
	return atomic_load(&v->exit_counts[VCPU_EXIT_IO]) + atomic_load(&v->exit_counts[VCPU_EXIT_MMIO]);
}

/* 0, or -1 with err_msg() set. */
static inline int la_machine_init(struct la_machine *m, const unsigned char *image, unsigned len, uint64_t ram)
{
	memset(m, 0, sizeof(*m));
	if (gmem_init(&m->vm.mem, ram) < 0)
		return -1;
	bus_init(&m->vm.pio, "pio");
	bus_init(&m->vm.mmio, "mmio");
	pthread_mutex_init(&m->vm.dev_lock, NULL);
	m->vm.accel = &accel_emu;
	m->cpu.vm = &m->vm;
	pthread_mutex_init(&m->cpu.lock, NULL);
	pthread_cond_init(&m->cpu.wake, NULL);
	m->cpu.thread = pthread_self();
	m->vm.vcpus[0] = &m->cpu;
	m->vm.n_vcpus = 1;
	if (accel_emu.vm_init(&m->vm) < 0 || accel_emu.vcpu_init(&m->cpu) < 0)
		return -1;
	m->out = tmpfile();
	if (!m->out || !(m->console = chardev_fd_new(-1, fileno(m->out))))
		return -1;
	struct platform_options opts = { .console = m->console };
	if (platform_create_opts(&m->vm, &opts) < 0)
		return -1;
	memcpy(gmem_ptr(&m->vm.mem, 0x1000, len), image, len);
	struct x86_sregs s;
	accel_emu.get_sregs(&m->cpu, &s);
	for (int i = 0; i < SEG_COUNT; i++) {
		s.seg[i].selector = 0;
		s.seg[i].base = 0;
	}
	accel_emu.set_sregs(&m->cpu, &s);
	struct x86_regs r = { .rip = 0x1000, .rflags = X86_FLAG_FIXED };
	r.gpr[RSP] = 0x8000;
	accel_emu.set_regs(&m->cpu, &r);
	m->la = lookahead_new(&m->cpu);
	return m->la ? 0 : -1;
}

static inline void la_machine_fini(struct la_machine *m)
{
	lookahead_free(m->la);
	platform_destroy(&m->vm);
	chardev_free(m->console);
	if (m->out)
		fclose(m->out);
	accel_emu.vcpu_destroy(&m->cpu);
	accel_emu.vm_destroy(&m->vm);
	bus_destroy(&m->vm.pio);
	bus_destroy(&m->vm.mmio);
	gmem_destroy(&m->vm.mem);
}

/* HLT: sleeps, as the VM's vCPU thread does, until an interrupt or NMI is
 * signalled (by the timer thread or a device) or the VM stops; -1 after
 * 20 s without one. */
static inline int la_machine_wait(struct la_machine *m)
{
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += 20;
	int rc = 0;
	pthread_mutex_lock(&m->cpu.lock);
	while (!(atomic_load(&m->cpu.events) & (VCPU_EVT_INTR | VCPU_EVT_NMI)) &&
	       atomic_load(&m->vm.stop_reason) == VM_STOP_NONE && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&m->cpu.wake, &m->cpu.lock, &end);
	pthread_mutex_unlock(&m->cpu.lock);
	return rc == ETIMEDOUT ? -1 : 0;
}

/* Runs until the VM stops (at most max_blocks blocks).  0 when it stopped,
 * -1 on a shutdown or internal error, a HLT nothing wakes, or when out of
 * blocks. */
static inline int la_machine_run(struct la_machine *m, bool lookahead, uint64_t max_blocks)
{
	struct emu_cpu *cpu = m->cpu.accel;
	for (uint64_t n = 0; n < max_blocks; n++) {
		if (atomic_load(&m->vm.stop_reason) != VM_STOP_NONE)
			return 0;
		uint64_t t0 = la_traps(&m->cpu);
		cpu->icount_stop = cpu->icount + 1;
		struct vcpu_exit ex = { 0 };
		if (accel_emu.vcpu_run(&m->cpu, &ex) < 0)
			return -1;
		if (ex.reason == VCPU_EXIT_KICK) {
			atomic_fetch_and(&m->cpu.events, ~VCPU_EVT_KICK);
		} else if (ex.reason == VCPU_EXIT_HLT) {
			if (la_machine_wait(m) < 0)
				return -1;
			continue;
		} else if (ex.reason != VCPU_EXIT_NONE) {
			return atomic_load(&m->vm.stop_reason) != VM_STOP_NONE ? 0 : -1;
		}
		if (la_traps(&m->cpu) == t0)
			continue;
		m->exits++;
		if (!lookahead || atomic_load(&m->vm.stop_reason) != VM_STOP_NONE)
			continue;
		struct x86_regs r;
		struct x86_sregs s;
		struct lookahead_result res;
		accel_emu.get_regs(&m->cpu, &r);
		accel_emu.get_sregs(&m->cpu, &s);
		if (lookahead_run(m->la, &r, &s, cpu->dr[7], NULL, &res) < 0)
			return -1;
		m->runs++;
		m->insns += res.insns;
		m->saved += res.traps;
		if (res.insns || res.stop == LOOKAHEAD_STOP_FAULT)
			accel_emu.set_regs(&m->cpu, &r);
	}
	return -1;
}

/* COM1's output so far (malloc'd, *len bytes). */
static inline char *la_machine_output(struct la_machine *m, size_t *len)
{
	int fd = fileno(m->out);
	off_t n = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
	ssize_t got = pread(fd, buf, (size_t)(n > 0 ? n : 0), 0);
	*len = got > 0 ? (size_t)got : 0;
	return buf;
}

#endif
