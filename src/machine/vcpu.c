/* vCPU side of the trap path: synchronous dispatch of I/O, MMIO and MSR
 * traps to the device buses, with per-reason counters. */
#include "machine/machine.h"

#include "util/log.h"
#include "util/trace.h"

#include <errno.h>
#include <sched.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* One bus access under the device lock; unclaimed reads return all ones
 * (bus_read fills them in). */
static void dispatch_bus(struct vcpu *vcpu, struct bus *bus, uint64_t addr, unsigned size, bool is_write,
			 uint64_t *data)
{
	struct vm *vm = vcpu->vm;
	pthread_mutex_lock(&vm->dev_lock);
	bool claimed = is_write ? bus_write(bus, vcpu, addr, size, *data) : bus_read(bus, vcpu, addr, size, data);
	pthread_mutex_unlock(&vm->dev_lock);
	if (!claimed)
		log_trace(bus->name, "unclaimed %s %#llx", is_write ? "write" : "read", (unsigned long long)addr);
}

void vcpu_dispatch_exit(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	struct vm *vm = vcpu->vm;
	atomic_fetch_add_explicit(&vcpu->exit_counts[exit->reason], 1, memory_order_relaxed);
	switch (exit->reason) {
	case VCPU_EXIT_IO: {
		uint64_t data = exit->io.data;
		dispatch_bus(vcpu, &vm->pio, exit->io.port, exit->io.size, exit->io.is_write, &data);
		exit->io.data = (uint32_t)data;
		if (trace_on(TRACE_IO))
			trace_printf("io    cpu%u %s port %#06x size %u data %#x", vcpu->id, exit->io.is_write ? "out" : "in ",
				     exit->io.port, exit->io.size, exit->io.data);
		break;
	}
	case VCPU_EXIT_MMIO:
		dispatch_bus(vcpu, &vm->mmio, exit->mmio.gpa, exit->mmio.size, exit->mmio.is_write, &exit->mmio.data);
		if (trace_on(TRACE_IO))
			trace_printf("mmio  cpu%u %s %#llx size %u data %#llx", vcpu->id, exit->mmio.is_write ? "write" : "read ",
				     (unsigned long long)exit->mmio.gpa, exit->mmio.size, (unsigned long long)exit->mmio.data);
		break;
	case VCPU_EXIT_MSR:
		/* The platform models the x2APIC and TSC-deadline MSRs; anything
		 * else makes the engine raise #GP(0). */
		exit->msr.handled = false;
		if (!vm->handle_msr || !vm->handle_msr(vcpu, exit))
			log_debug("msr", "cpu%u: unhandled %s of MSR %#x", vcpu->id, exit->msr.is_write ? "write" : "read",
				  exit->msr.index);
		break;
	case VCPU_EXIT_HYPERCALL:
		/* The Hyper-V interface when on (src/hv); else TLFS 3.8's
		 * HV_STATUS_INVALID_HYPERCALL_CODE. */
		exit->hypercall.result = 2;
		if (vm->handle_hypercall)
			vm->handle_hypercall(vcpu, exit);
		break;
	default:
		break;
	}
}

static void queue_lock(struct vcpu_tlb_queue *q)
{
	while (atomic_exchange_explicit(&q->busy, true, memory_order_acquire))
		sched_yield();
}

static void queue_unlock(struct vcpu_tlb_queue *q)
{
	atomic_store_explicit(&q->busy, false, memory_order_release);
}

void vcpu_tlb_flush_service(struct vcpu *vcpu)
{
	atomic_fetch_and(&vcpu->events, ~VCPU_EVT_TLB_FLUSH);
	/* Every request made before this load is covered by the flush: its
	 * ranges were queued before its number was taken. */
	uint64_t req = atomic_load(&vcpu->tlb_flush_req);
	struct vcpu_tlb_queue *q = &vcpu->tlb_queue;
	struct vcpu_tlb_range r[VCPU_TLB_QUEUE];
	queue_lock(q);
	bool all = q->all;
	unsigned n = q->n;
	memcpy(r, q->r, n * sizeof(r[0]));
	q->all = false;
	q->n = 0;
	queue_unlock(q);
	/* Nothing queued: an earlier service took this request's ranges. */
	if ((all || n) && vcpu->vm->accel && vcpu->vm->accel->tlb_flush)
		vcpu->vm->accel->tlb_flush(vcpu, all ? NULL : r, all ? 0 : n);
	atomic_store(&vcpu->tlb_flush_done, req);
}

/* Asks v to flush the n ranges r (everything when n is 0); the
 * request's sequence number. */
static uint64_t request_flush(struct vcpu *v, const struct vcpu_tlb_range *r, unsigned n)
{
	struct vcpu_tlb_queue *q = &v->tlb_queue;
	queue_lock(q);
	if (!n || q->all || q->n + n > VCPU_TLB_QUEUE) {
		q->all = true;
		q->n = 0;
	} else {
		memcpy(q->r + q->n, r, n * sizeof(r[0]));
		q->n += n;
	}
	queue_unlock(q);
	uint64_t want = atomic_fetch_add(&v->tlb_flush_req, 1) + 1;
	/* With the engine's kick: translated code looks at events only
	 * when kicked. */
	vcpu_signal(v, VCPU_EVT_TLB_FLUSH);
	return want;
}

void vm_request_tlb_flush_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i])
			request_flush(vm->vcpus[i], NULL, 0);
}

void vcpu_flush_tlbs(struct vcpu *self, uint64_t mask, const struct vcpu_tlb_range *r, unsigned n)
{
	struct vm *vm = self->vm;
	uint64_t want[MACHINE_MAX_CPUS] = { 0 };
	for (unsigned i = 0; i < vm->n_vcpus && i < 64; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (!(mask >> i & 1) || !v || v == self)
			continue;
		want[i] = request_flush(v, r, n);
	}
	if ((mask >> self->id & 1) && vm->accel && vm->accel->tlb_flush)
		vm->accel->tlb_flush(self, n ? r : NULL, n);
	/* Each target flushes at its next block boundary.  One that is out
	 * of its engine (halted, parked, waiting for SIPI) serves the request
	 * before it runs again: no need to wait for it.  The request was
	 * made visible (seq_cst) before in_run is read, as the run loop sets
	 * in_run before it looks at its events. */
	for (unsigned i = 0; i < vm->n_vcpus && i < 64; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (!want[i])
			continue;
		unsigned spins = 0;
		while (atomic_load(&v->tlb_flush_done) < want[i] && atomic_load(&v->in_run) &&
		       atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
			/* Two vCPUs flushing each other: serve ours meanwhile. */
			if (atomic_load_explicit(&self->events, memory_order_relaxed) & VCPU_EVT_TLB_FLUSH)
				vcpu_tlb_flush_service(self);
			if (++spins > 64)
				sched_yield();
		}
	}
}

void vcpu_signal(struct vcpu *vcpu, uint32_t events)
{
	/* INIT and SIPI are the vCPU thread's business, not the engine's:
	 * get a running vCPU out to it. */
	if (events & (VCPU_EVT_INIT | VCPU_EVT_SIPI))
		events |= VCPU_EVT_KICK;
	atomic_fetch_or_explicit(&vcpu->events, events, memory_order_release);
	pthread_mutex_lock(&vcpu->lock);
	pthread_cond_broadcast(&vcpu->wake);
	pthread_mutex_unlock(&vcpu->lock);
	if (vcpu->vm->accel && vcpu->vm->accel->vcpu_kick)
		vcpu->vm->accel->vcpu_kick(vcpu);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason)
{
	/* The first reason wins, except that a pending reset yields to
	 * anything final: a power-off asked for while the machine is still
	 * resetting must not be lost in the reboot. */
	/* A suspend (ACPI S3) yields to anything else: a sleeping machine
	 * may be reset, powered off or quit. */
	int cur = atomic_load(&vm->stop_reason);
	bool final = reason != VM_STOP_RESET && reason != VM_STOP_SUSPEND;
	while ((cur == VM_STOP_NONE || (cur == VM_STOP_RESET && final) ||
		(cur == VM_STOP_SUSPEND && reason != VM_STOP_SUSPEND)) &&
	       !atomic_compare_exchange_weak(&vm->stop_reason, &cur, (int)reason))
		;
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		vcpu_signal(vm->vcpus[i], VCPU_EVT_KICK);
}

void vm_request_wake(struct vm *vm, enum vm_wake_reason reason)
{
	if (!atomic_load(&vm->suspended))
		return;
	int none = VM_WAKE_NONE;
	atomic_compare_exchange_strong(&vm->wake_reason, &none, (int)reason);
}

/* The state INIT and power-up leave a processor in (SDM vol. 3A, 9.1.1,
 * table 9-1), written through the engine's accessors so that it works on
 * either engine. */
int vcpu_reset_state(struct vcpu *vcpu)
{
	const struct accel_ops *a = vcpu->vm->accel;
	struct x86_sregs s;
	int rc = a->get_sregs(vcpu, &s);
	if (rc < 0)
		return rc;
	for (int i = 0; i < SEG_COUNT; i++)
		s.seg[i] = (struct x86_segment){ .limit = 0xffff, .type = 3, .s = 1, .present = 1 };
	s.seg[SEG_CS] = (struct x86_segment){ .selector = 0xf000, .base = 0xffff0000, .limit = 0xffff,
					      .type = 11, .s = 1, .present = 1 };
	s.ldt = (struct x86_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	s.tr = (struct x86_segment){ .limit = 0xffff, .type = 11, .present = 1 };
	s.gdt = (struct x86_dtable){ 0, 0xffff };
	s.idt = (struct x86_dtable){ 0, 0xffff };
	s.cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
	s.cr2 = s.cr3 = s.cr4 = s.cr8 = 0;
	s.efer = 0;
	rc = a->set_sregs(vcpu, &s);
	if (rc < 0)
		return rc;
	struct x86_regs r = { .rip = 0xfff0, .rflags = X86_FLAG_FIXED };
	r.gpr[RDX] = 0x600; /* family 6 processor signature, as the reset value of EDX */
	return a->set_regs(vcpu, &r);
}

void vcpu_dump_state(struct vcpu *vcpu, FILE *out)
{
	const struct accel_ops *a = vcpu->vm->accel;
	struct x86_regs r;
	struct x86_sregs s;
	if (a->get_regs(vcpu, &r) < 0 || a->get_sregs(vcpu, &s) < 0) {
		fprintf(out, "cpu%u: state unavailable\r\n", vcpu->id);
		return;
	}
	static const char *const names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
	for (int i = 0; i < 16; i++)
		fprintf(out, "%-3s=%016" PRIx64 "%s", names[i], r.gpr[i], i % 4 == 3 ? "\r\n" : " ");
	fprintf(out, "rip=%016" PRIx64 " rflags=%08" PRIx64 "\r\n", r.rip, r.rflags);
	static const char *const segs[SEG_COUNT] = { "es", "cs", "ss", "ds", "fs", "gs" };
	for (int i = 0; i < SEG_COUNT; i++)
		fprintf(out, "%s=%04x base=%016" PRIx64 " limit=%08x type=%x dpl=%u%s\r\n", segs[i], s.seg[i].selector,
			s.seg[i].base, s.seg[i].limit, s.seg[i].type, s.seg[i].dpl, s.seg[i].l ? " long" : "");
	fprintf(out, "gdt=%016" PRIx64 "/%04x idt=%016" PRIx64 "/%04x tr=%04x ldt=%04x\r\n", s.gdt.base, s.gdt.limit,
		s.idt.base, s.idt.limit, s.tr.selector, s.ldt.selector);
	fprintf(out, "cr0=%016" PRIx64 " cr2=%016" PRIx64 " cr3=%016" PRIx64 " cr4=%016" PRIx64 " efer=%016" PRIx64 "\r\n",
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

const char *vcpu_exit_reason_name(enum vcpu_exit_reason r)
{
	static const char *const names[VCPU_EXIT_REASON_COUNT] = {
		[VCPU_EXIT_NONE] = "none",
		[VCPU_EXIT_IO] = "io",
		[VCPU_EXIT_MMIO] = "mmio",
		[VCPU_EXIT_MSR] = "msr",
		[VCPU_EXIT_HYPERCALL] = "hypercall",
		[VCPU_EXIT_HLT] = "hlt",
		[VCPU_EXIT_KICK] = "kick",
		[VCPU_EXIT_SHUTDOWN] = "shutdown",
		[VCPU_EXIT_INTERNAL_ERROR] = "internal_error",
	};
	return (unsigned)r < VCPU_EXIT_REASON_COUNT ? names[r] : "?";
}

/* The CPU-to-APIC route (machine/accel.h): the vCPU's LAPIC through the
 * table the board installed, or -ENOENT where there is none. */
static const struct vcpu_apic_ops *vcpu_apic_route(const struct vcpu *vcpu)
{
	return vcpu->lapic && vcpu->vm ? vcpu->vm->apic_ops : NULL;
}

int vcpu_apic_msr(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val)
{
	const struct vcpu_apic_ops *a = vcpu_apic_route(vcpu);
	return a ? a->msr(vcpu, index, is_write, val) : -ENOENT;
}

int vcpu_apic_get_cr8(struct vcpu *vcpu, uint64_t *cr8)
{
	const struct vcpu_apic_ops *a = vcpu_apic_route(vcpu);
	return a ? a->get_cr8(vcpu, cr8) : -ENOENT;
}

int vcpu_apic_set_cr8(struct vcpu *vcpu, uint64_t cr8)
{
	const struct vcpu_apic_ops *a = vcpu_apic_route(vcpu);
	return a ? a->set_cr8(vcpu, cr8) : -ENOENT;
}

int vcpu_apic_set_tsc_deadline(struct vcpu *vcpu, uint64_t deadline, uint64_t tsc_now)
{
	const struct vcpu_apic_ops *a = vcpu_apic_route(vcpu);
	return a ? a->set_tsc_deadline(vcpu, deadline, tsc_now) : -ENOENT;
}

int vcpu_apic_read_tsc(struct vcpu *vcpu, uint64_t *tsc)
{
	const struct vcpu_apic_ops *a = vcpu_apic_route(vcpu);
	return a ? a->read_tsc(vcpu, tsc) : -ENOENT;
}
