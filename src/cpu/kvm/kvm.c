/* accel_kvm: the Linux KVM engine.
 *
 * vessel's own interrupt controllers serve this engine too (no in-kernel
 * irqchip: one implementation for every engine), so interrupts are
 * injected with KVM_INTERRUPT when the guest can take them, and an
 * interrupt window is requested otherwise.  Port I/O and MMIO exits are
 * dispatched through vcpu_dispatch_exit() like the emu engine's; after
 * one, the trap lookahead (src/cpu/lookahead.h) may run the trapping
 * instructions that follow in the emu engine (docs/compounding.md). */
#include "machine/accel.h"
#include "cpu/engines.h"
#include "cpu/kvm/kvm_cpuid.h"
#include "cpu/kvm/kvm_hv.h"
#include "cpu/lookahead.h"
#include "machine/compound.h"
#include "util/error.h"
#include "util/hostcall.h"
#include "util/log.h"
#include "util/trace.h"
#include "machine/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVM_KICK_SIGNAL SIGUSR1

struct kvm_vm_state {
	int sys_fd, vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid;
	unsigned cpuid_cap;          /* entries cpuid has room for */
	bool hv_cpuid_set;           /* the Hyper-V leaves are in cpuid */
	/* IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC MSRs exit to
	 * userspace (kvm_route_msrs) and take the LAPIC route; with the
	 * Hyper-V interface its MSRs too, to src/hv. */
	bool msrs_routed;
	uint64_t tsc_khz;            /* the guest TSC's rate; 0: unknown */
};

/* Lookahead sites (the port or MMIO page of the exit) whose last runs
 * saved nothing are tried again only now and then: each try costs six
 * ioctls. */
#define KVM_LA_SITES 64
#define KVM_LA_MISSES 4        /* runs in a row that saved nothing before backing off */
#define KVM_LA_RETRY 32        /* then one exit in this many tries again */

struct kvm_vcpu_state {
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	_Atomic bool thread_known;
	struct lookahead *la;      /* NULL: lookahead off */
	bool la_pending;           /* an I/O or MMIO exit was handled: complete it, then look ahead */
	unsigned la_site;
	uint8_t la_miss[KVM_LA_SITES];
	uint8_t la_skip[KVM_LA_SITES];
};

static struct kvm_vm_state *kvm_of(struct vm *vm)
{
	return vm->accel_state;
}

static struct kvm_vcpu_state *kv_of(struct vcpu *vcpu)
{
	return vcpu->accel;
}

static void kvm_kick_handler(int sig)
{
	(void)sig; /* its only job is to interrupt KVM_RUN with EINTR */
}

static void kvm_vm_destroy(struct vm *vm)
{
	struct kvm_vm_state *k = kvm_of(vm);
	if (!k)
		return;
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	free(k->cpuid);
	free(k);
	vm->accel_state = NULL;
}

/* The MSRs of the route to the LAPIC (machine/accel.h), as the emu
 * engine sends them there (system/msr.c): without an in-kernel irqchip
 * KVM would keep IA32_APIC_BASE to itself and fault the others.  With
 * user-space MSR exits (KVM_CAP_X86_USER_SPACE_MSR) for what the filter
 * denies (KVM_X86_SET_MSR_FILTER, api.rst 4.126), the guest's RDMSR and
 * WRMSR of them become KVM_EXIT_X86_RDMSR/WRMSR, handled by
 * kvm_handle_msr().  The Hyper-V interface's MSRs (vm->hv_msr_ranges)
 * are denied the same way, so that src/hv answers them rather than
 * KVM's own Hyper-V emulation.  Set when the first vCPU is made, after
 * the interface.  A KVM without the capabilities keeps its own
 * behaviour. */
static void kvm_route_msrs(struct vm *vm, struct kvm_vm_state *k)
{
	k->msrs_routed = true;
	if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0 ||
	    ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0) {
		if (vm->hv_msr)
			log_warn("kvm", "this KVM cannot pass MSRs to vessel: the Hyper-V MSRs stay KVM's");
		return;
	}
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR, .args = { KVM_MSR_EXIT_REASON_FILTER } };
	if (ioctl(k->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return;
	static uint8_t deny[KVM_HV_DENY_BITS / 8];
	struct kvm_msr_filter f;
	if (kvm_hv_msr_filter(&f, vm->hv_msr_ranges, vm->hv_n_msr_ranges, deny) < 0 ||
	    ioctl(k->vm_fd, KVM_X86_SET_MSR_FILTER, &f) < 0) {
		log_debug("kvm", "no MSR filter: %s; the APIC MSRs stay KVM's", strerror(errno));
		return;
	}
}

/* The guest TSC's rate, for the Hyper-V reference time and timers
 * (accel_ops.guest_tsc_hz): KVM_GET_TSC_KHZ on the VM, where this KVM
 * has per-VM TSC control. */
static uint64_t kvm_guest_tsc_hz(struct vm *vm)
{
	return kvm_of(vm)->tsc_khz * 1000;
}

/* Memory slot i is region i of vm->mem: set at creation, and again when
 * RAM is hot-added or ejected (a size of 0 deletes the slot). */
static int kvm_set_slot(struct vm *vm, unsigned i)
{
	const struct gmem_region *r = &vm->mem.regions[i];
	struct kvm_userspace_memory_region mr = {
		.slot = i,
		.guest_phys_addr = r->gpa,
		.memory_size = r->size,
		.userspace_addr = (uintptr_t)r->host,
		/* Guest writes to the firmware ROM become MMIO exits, which no device claims. */
		.flags = r->rom ? KVM_MEM_READONLY : 0,
	};
	if (ioctl(kvm_of(vm)->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
		return err_set(-errno, "kvm: cannot map guest memory at %#llx: %s", (unsigned long long)r->gpa,
			       strerror(errno));
	return 0;
}

static int kvm_vm_init(struct vm *vm)
{
	struct kvm_vm_state *k = calloc(1, sizeof(*k));
	if (!k)
		return err_set(-ENOMEM, "out of memory");
	k->sys_fd = k->vm_fd = -1;
	vm->accel_state = k;
	k->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->sys_fd < 0) {
		int e = errno;
		kvm_vm_destroy(vm);
		return err_set(-e, "kvm: cannot open /dev/kvm: %s", strerror(e));
	}
	if (ioctl(k->sys_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		kvm_vm_destroy(vm);
		return err_set(-ENOTSUP, "kvm: unsupported KVM API version");
	}
	k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
	k->run_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vm_fd < 0 || k->run_size <= 0) {
		int e = errno;
		kvm_vm_destroy(vm);
		return err_set(-e, "kvm: cannot create a VM: %s", strerror(e));
	}
	/* Intel VMX needs these pages for real-mode emulation; they sit in
	 * the MMIO hole just below the BIOS area's top, as QEMU places them. */
	ioctl(k->vm_fd, KVM_SET_TSS_ADDR, 0xfeffd000UL);
	uint64_t idmap = 0xfeffc000;
	ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	for (unsigned i = 0; i < vm->mem.n_regions; i++) {
		int rc = kvm_set_slot(vm, i);
		if (rc < 0) {
			kvm_vm_destroy(vm);
			return rc;
		}
	}
	if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TSC_CONTROL) > 0) {
		int khz = ioctl(k->vm_fd, KVM_GET_TSC_KHZ, 0);
		k->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	}
	/* The CPUID the host's KVM supports, with room for the Hyper-V
	 * leaves (kvm_hv_cpuid()); each vCPU gets its own version of it
	 * (kvm_cpuid.h). */
	int n = 128;
	k->cpuid_cap = (unsigned)n + 32;
	k->cpuid = calloc(1, sizeof(*k->cpuid) + k->cpuid_cap * sizeof(struct kvm_cpuid_entry2));
	if (!k->cpuid) {
		kvm_vm_destroy(vm);
		return err_set(-ENOMEM, "out of memory");
	}
	k->cpuid->nent = n;
	if (ioctl(k->sys_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid) < 0) {
		free(k->cpuid);
		k->cpuid = NULL;
	}
	struct sigaction sa = { .sa_handler = kvm_kick_handler };
	sigaction(KVM_KICK_SIGNAL, &sa, NULL);
	return 0;
}

static void kvm_vcpu_destroy(struct vcpu *vcpu)
{
	struct kvm_vcpu_state *kv = kv_of(vcpu);
	if (!kv)
		return;
	lookahead_free(kv->la);
	if (kv->run)
		munmap(kv->run, (size_t)kvm_of(vcpu->vm)->run_size);
	if (kv->fd >= 0)
		close(kv->fd);
	free(kv);
	vcpu->accel = NULL;
}

static int kvm_vcpu_init(struct vcpu *vcpu)
{
	struct kvm_vm_state *k = kvm_of(vcpu->vm);
	struct kvm_vcpu_state *kv = calloc(1, sizeof(*kv));
	if (!kv)
		return err_set(-ENOMEM, "out of memory");
	vcpu->accel = kv;
	kv->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, vcpu->id);
	if (kv->fd < 0) {
		int e = errno;
		kvm_vcpu_destroy(vcpu);
		return err_set(-e, "kvm: cannot create cpu%u: %s", vcpu->id, strerror(e));
	}
	kv->run = mmap(NULL, (size_t)k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, kv->fd, 0);
	if (kv->run == MAP_FAILED) {
		int e = errno;
		kv->run = NULL;
		kvm_vcpu_destroy(vcpu);
		return err_set(-e, "kvm: cannot map the run structure: %s", strerror(e));
	}
	if (!k->msrs_routed)
		kvm_route_msrs(vcpu->vm, k);
	if (k->cpuid && vcpu->vm->hv_cpuid && !k->hv_cpuid_set) {
		/* "Microsoft Hv" in place of KVM's leaves, set once for every
		 * vCPU: the implementation limits (0x40000005, TLFS 2.4.6)
		 * give vessel's limit of logical processors, since the VM's
		 * vCPUs are still being made. */
		k->hv_cpuid_set = true;
		if (kvm_hv_cpuid(k->cpuid, k->cpuid_cap, vcpu->vm, MACHINE_MAX_CPUS, k->tsc_khz * 1000) < 0)
			log_warn("kvm", "no room for the Hyper-V CPUID leaves");
	}
	if (k->cpuid) {
		struct kvm_cpuid2 *t = kvm_cpuid_for_vcpu(k->cpuid, vcpu->vm, vcpu->id);
		if (!t) {
			kvm_vcpu_destroy(vcpu);
			return err_set(-ENOMEM, "out of memory");
		}
		ioctl(kv->fd, KVM_SET_CPUID2, t);
		free(t);
	}
	if (vcpu->vm->compound & COMPOUND_LOOKAHEAD) {
		kv->la = lookahead_new(vcpu);
		if (!kv->la) {
			kvm_vcpu_destroy(vcpu);
			return -ENOMEM;
		}
	}
	return 0;
}

static void kvm_vcpu_kick(struct vcpu *vcpu)
{
	struct kvm_vcpu_state *kv = kv_of(vcpu);
	if (!kv || !kv->run)
		return;
	kv->run->immediate_exit = 1;
	if (atomic_load(&kv->thread_known) && !pthread_equal(kv->thread, pthread_self()))
		pthread_kill(kv->thread, KVM_KICK_SIGNAL);
}

/* Port I/O: string instructions come as count items of size bytes each. */
static void kvm_handle_io(struct vcpu *vcpu, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		struct vcpu_exit e = { .reason = VCPU_EXIT_IO };
		e.io.port = run->io.port;
		e.io.size = run->io.size;
		e.io.is_write = run->io.direction == KVM_EXIT_IO_OUT;
		if (e.io.is_write)
			memcpy(&e.io.data, data, run->io.size);
		vcpu_dispatch_exit(vcpu, &e);
		if (!e.io.is_write)
			memcpy(data, &e.io.data, run->io.size);
	}
}

static void kvm_handle_mmio(struct vcpu *vcpu, struct kvm_run *run)
{
	struct vcpu_exit e = { .reason = VCPU_EXIT_MMIO };
	e.mmio.gpa = run->mmio.phys_addr;
	e.mmio.size = (uint8_t)run->mmio.len;
	e.mmio.is_write = run->mmio.is_write;
	if (e.mmio.is_write)
		memcpy(&e.mmio.data, run->mmio.data, run->mmio.len);
	vcpu_dispatch_exit(vcpu, &e);
	if (!e.mmio.is_write)
		memcpy(run->mmio.data, &e.mmio.data, run->mmio.len);
}

/* Injects an external interrupt if one is pending and the guest can take
 * it; otherwise asks KVM to exit as soon as it can. */
static void kvm_inject_interrupts(struct vcpu *vcpu, struct kvm_vcpu_state *kv)
{
	struct vm *vm = vcpu->vm;
	if (atomic_load(&vcpu->events) & VCPU_EVT_NMI) {
		atomic_fetch_and(&vcpu->events, ~VCPU_EVT_NMI);
		host_call_note(HOST_CALL_IOCTL);
		ioctl(kv->fd, KVM_NMI);
	}
	if (!(atomic_load(&vcpu->events) & VCPU_EVT_INTR) || !vm->intr_ack) {
		kv->run->request_interrupt_window = 0;
		return;
	}
	if (kv->run->ready_for_interrupt_injection && kv->run->if_flag) {
		atomic_fetch_and(&vcpu->events, ~VCPU_EVT_INTR);
		pthread_mutex_lock(&vm->dev_lock);
		int vector = vm->intr_ack(vcpu);
		pthread_mutex_unlock(&vm->dev_lock);
		if (vector >= 0) {
			struct kvm_interrupt irq = { .irq = (uint32_t)vector };
			host_call_note(HOST_CALL_IOCTL);
			ioctl(kv->fd, KVM_INTERRUPT, &irq);
			if (trace_on(TRACE_IRQ))
				trace_printf("irq   cpu%u vector %#04x", vcpu->id, vector);
			/* Others may be pending behind this one: look again next entry. */
			atomic_fetch_or(&vcpu->events, VCPU_EVT_INTR);
		}
	}
	kv->run->request_interrupt_window = (atomic_load(&vcpu->events) & VCPU_EVT_INTR) ? 1 : 0;
}

/* The guest's TSC now (IA32_TSC, offset included). */
static int kvm_guest_tsc(struct kvm_vcpu_state *kv, uint64_t *tsc)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = MSR_IA32_TSC };
	if (ioctl(kv->fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*tsc = m.e.data;
	return 0;
}

/* KVM_EXIT_X86_RDMSR/WRMSR of a filtered MSR: a Hyper-V one to src/hv
 * with the guest's TSC (the reference counter and the timers follow
 * it), the others the route to the LAPIC, as system/msr.c takes them for
 * the emu engine; a refusal (no LAPIC, a reserved bit, x2APIC off, a
 * Hyper-V feature off) makes KVM inject #GP(0). */
static void kvm_handle_msr(struct vcpu *vcpu, struct kvm_vcpu_state *kv, struct kvm_run *run)
{
	struct vm *vm = vcpu->vm;
	bool write = run->exit_reason == KVM_EXIT_X86_WRMSR;
	uint64_t val = write ? run->msr.data : 0, tsc;
	int rc;
	if (vm->hv_msr && kvm_hv_msr_in(vm->hv_msr_ranges, vm->hv_n_msr_ranges, run->msr.index))
		rc = kvm_guest_tsc(kv, &tsc) < 0 ? -EIO : vm->hv_msr(vcpu, run->msr.index, write, &val, tsc);
	else if (write && run->msr.index == MSR_IA32_TSC_DEADLINE)
		rc = kvm_guest_tsc(kv, &tsc) < 0 ? -EIO : vcpu_apic_set_tsc_deadline(vcpu, val, tsc);
	else
		rc = vcpu_apic_msr(vcpu, run->msr.index, write, &val);
	run->msr.error = rc < 0;
	if (!write && rc == 0)
		run->msr.data = val;
}

static int kvm_get_regs(struct vcpu *vcpu, struct x86_regs *regs);
static int kvm_set_regs(struct vcpu *vcpu, const struct x86_regs *regs);
static int kvm_get_sregs(struct vcpu *vcpu, struct x86_sregs *sregs);

/* The site of an I/O or MMIO exit, for the lookahead's back-off. */
static unsigned kvm_exit_site(const struct kvm_run *run)
{
	uint64_t key = run->exit_reason == KVM_EXIT_IO ? run->io.port : (run->mmio.phys_addr >> 12) ^ 0x5a5a;
	return (unsigned)((key * 0x9e3779b1u) >> 7) % KVM_LA_SITES;
}

/* After an I/O or MMIO exit has been completed: the lookahead from the
 * boundary after the trapping instruction (docs/compounding.md
 * "Lookahead").  Whatever it ran is written back; on any error the guest
 * simply goes on where it is. */
static void kvm_lookahead(struct vcpu *vcpu, struct kvm_vcpu_state *kv)
{
	/* Completing the exit can leave an event for KVM to deliver before
	 * the next instruction (a fault in a string instruction's next
	 * iteration, an injected interrupt or NMI) or an interrupt shadow:
	 * then the next instruction is not the guest's to run now. */
	struct kvm_vcpu_events ev;
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 || ev.exception.injected || ev.exception.pending ||
	    ev.interrupt.injected || ev.interrupt.shadow || ev.nmi.injected || ev.nmi.pending)
		return;
	struct kvm_debugregs dbg;
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv->fd, KVM_GET_DEBUGREGS, &dbg) < 0)
		return;
	struct x86_regs regs;
	struct x86_sregs sregs;
	if (kvm_get_regs(vcpu, &regs) < 0 || kvm_get_sregs(vcpu, &sregs) < 0)
		return;
	struct lookahead_result res;
	if (lookahead_run(kv->la, &regs, &sregs, dbg.dr7, NULL, &res) < 0)
		return;
	unsigned site = kv->la_site;
	if (res.traps) {
		kv->la_miss[site] = 0;
	} else if (kv->la_miss[site] < KVM_LA_MISSES) {
		kv->la_miss[site]++;
	}
	compound_note(COMPOUND_LOOKAHEAD_RUNS, 1);
	compound_note(COMPOUND_LOOKAHEAD_INSNS, res.insns);
	compound_note(COMPOUND_LOOKAHEAD_EXITS_SAVED, res.traps);
	if (trace_on(TRACE_IO))
		trace_printf("look  cpu%u %u insns, %u accesses, stop %s %s", vcpu->id, res.insns, res.traps,
			     lookahead_stop_name(res.stop), res.why);
	if (res.insns || res.stop == LOOKAHEAD_STOP_FAULT)
		kvm_set_regs(vcpu, &regs);
}

/* Whether to look ahead after this exit: on, and its site not backing
 * off. */
static bool kvm_want_lookahead(struct kvm_vcpu_state *kv, const struct kvm_run *run)
{
	if (!kv->la)
		return false;
	unsigned site = kvm_exit_site(run);
	kv->la_site = site;
	if (kv->la_miss[site] < KVM_LA_MISSES)
		return true;
	return ++kv->la_skip[site] % KVM_LA_RETRY == 0;
}

static int kvm_complete_exit(struct kvm_vcpu_state *kv);

/* The hypercall page's OUT (kvm_hv.h): the call goes to src/hv as the
 * emu engine's VMCALL does, and its result to RAX.  The OUT is complete
 * (RIP past it) only once KVM_RUN is entered again (api.rst
 * "KVM_EXIT_IO"), so that is done first, without entering the guest. */
static int kvm_handle_hypercall(struct vcpu *vcpu, struct kvm_vcpu_state *kv, struct vcpu_exit *exit)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (kvm_complete_exit(kv) != 1 || ioctl(kv->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(kv->fd, KVM_GET_SREGS, &sregs) < 0) {
		exit->reason = VCPU_EXIT_INTERNAL_ERROR;
		snprintf(exit->error.message, sizeof(exit->error.message), "kvm: cannot complete a hypercall");
		return 0;
	}
	struct vcpu_exit hc;
	if (kvm_hv_hypercall_decode(&regs, sregs.ss.dpl, &hc))
		vcpu_dispatch_exit(vcpu, &hc);
	regs.rax = hc.hypercall.result;
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv->fd, KVM_SET_REGS, &regs) < 0) {
		exit->reason = VCPU_EXIT_INTERNAL_ERROR;
		snprintf(exit->error.message, sizeof(exit->error.message), "kvm: KVM_SET_REGS: %s", strerror(errno));
		return 0;
	}
	return 1;
}

/* One exit of KVM_RUN: 1 to enter the guest again, 0 to return *exit. */
static int kvm_handle_exit(struct vcpu *vcpu, struct kvm_vcpu_state *kv, struct vcpu_exit *exit)
{
	struct kvm_run *run = kv->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		if (vcpu->vm->handle_hypercall && kvm_hv_is_hypercall(run))
			return kvm_handle_hypercall(vcpu, kv, exit);
		kvm_handle_io(vcpu, run);
		kv->la_pending = kvm_want_lookahead(kv, run);
		return 1;
	case KVM_EXIT_MMIO:
		kvm_handle_mmio(vcpu, run);
		kv->la_pending = kvm_want_lookahead(kv, run);
		return 1;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		kvm_handle_msr(vcpu, kv, run);
		return 1;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		return 1;
	case KVM_EXIT_HLT:
		exit->reason = VCPU_EXIT_HLT;
		return 0;
	case KVM_EXIT_SHUTDOWN:
		exit->reason = VCPU_EXIT_SHUTDOWN;
		snprintf(exit->error.message, sizeof(exit->error.message), "KVM reported a shutdown");
		return 0;
	case KVM_EXIT_FAIL_ENTRY:
		exit->reason = VCPU_EXIT_INTERNAL_ERROR;
		snprintf(exit->error.message, sizeof(exit->error.message),
			 "kvm: entry failed, hardware reason %#llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return 0;
	case KVM_EXIT_INTERNAL_ERROR:
		exit->reason = VCPU_EXIT_INTERNAL_ERROR;
		snprintf(exit->error.message, sizeof(exit->error.message),
			 "kvm: internal error, suberror %u", run->internal.suberror);
		return 0;
	default:
		exit->reason = VCPU_EXIT_INTERNAL_ERROR;
		snprintf(exit->error.message, sizeof(exit->error.message),
			 "kvm: unexpected exit reason %u", run->exit_reason);
		return 0;
	}
}

/* The guest's state after an I/O or MMIO exit is complete only once
 * KVM_RUN has been called again (the IN's result in RAX, RIP past the
 * instruction; api.rst, "KVM_EXIT_IO"): with immediate_exit set, KVM
 * completes it and returns EINTR without entering the guest.  Returns 1
 * when the lookahead may run, 0 when KVM_RUN reported another exit
 * instead (a string instruction's next batch), -1 on error. */
static int kvm_complete_exit(struct kvm_vcpu_state *kv)
{
	struct kvm_run *run = kv->run;
	run->immediate_exit = 1;
	host_call_note(HOST_CALL_IOCTL);
	int rc = ioctl(kv->fd, KVM_RUN, 0);
	int e = errno;
	run->immediate_exit = 0;
	if (rc < 0)
		return e == EINTR ? 1 : -1;
	return 0;
}

static int kvm_vcpu_run(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	struct kvm_vcpu_state *kv = kv_of(vcpu);
	struct kvm_run *run = kv->run;
	if (!atomic_load(&kv->thread_known)) {
		kv->thread = pthread_self();
		atomic_store(&kv->thread_known, true);
	}
	for (;;) {
		if (kv->la_pending) {
			kv->la_pending = false;
			int c = kvm_complete_exit(kv);
			if (c == 1)
				kvm_lookahead(vcpu, kv);
			else if (c == 0 && !kvm_handle_exit(vcpu, kv, exit))
				return 0;
		}
		if (atomic_load(&vcpu->events) & VCPU_EVT_KICK) {
			exit->reason = VCPU_EXIT_KICK;
			return 0;
		}
		kvm_inject_interrupts(vcpu, kv);
		/* The TPR through the route to the LAPIC (machine/accel.h): without
		 * an in-kernel irqchip KVM takes CR8 from kvm_run on entry and
		 * puts the guest's back on exit (api.rst, "cr8"). */
		uint64_t cr8 = 0;
		bool has_apic = vcpu_apic_get_cr8(vcpu, &cr8) == 0;
		if (has_apic)
			run->cr8 = cr8;
		host_call_note(HOST_CALL_IOCTL);
		int run_rc = ioctl(kv->fd, KVM_RUN, 0);
		int run_errno = errno;
		if (has_apic && run->cr8 != cr8)
			vcpu_apic_set_cr8(vcpu, run->cr8);   /* the guest wrote CR8 */
		errno = run_errno;
		if (run_rc < 0) {
			run->immediate_exit = 0;
			if (errno == EINTR || errno == EAGAIN) {
				exit->reason = VCPU_EXIT_KICK;
				return 0;
			}
			return err_set(-errno, "kvm: KVM_RUN failed: %s", strerror(errno));
		}
		if (!kvm_handle_exit(vcpu, kv, exit))
			return 0;
	}
}

static int kvm_get_regs(struct vcpu *vcpu, struct x86_regs *regs)
{
	struct kvm_regs r;
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv_of(vcpu)->fd, KVM_GET_REGS, &r) < 0)
		return err_set(-errno, "kvm: KVM_GET_REGS: %s", strerror(errno));
	const uint64_t g[16] = { r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
				 r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15 };
	memcpy(regs->gpr, g, sizeof(g));
	regs->rip = r.rip;
	regs->rflags = r.rflags;
	return 0;
}

static int kvm_set_regs(struct vcpu *vcpu, const struct x86_regs *regs)
{
	const uint64_t *g = regs->gpr;
	struct kvm_regs r = {
		.rax = g[RAX], .rcx = g[RCX], .rdx = g[RDX], .rbx = g[RBX],
		.rsp = g[RSP], .rbp = g[RBP], .rsi = g[RSI], .rdi = g[RDI],
		.r8 = g[R8], .r9 = g[R9], .r10 = g[R10], .r11 = g[R11],
		.r12 = g[R12], .r13 = g[R13], .r14 = g[R14], .r15 = g[R15],
		.rip = regs->rip, .rflags = regs->rflags,
	};
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv_of(vcpu)->fd, KVM_SET_REGS, &r) < 0)
		return err_set(-errno, "kvm: KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

static void seg_from_kvm(struct x86_segment *o, const struct kvm_segment *s)
{
	*o = (struct x86_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
		.s = s->s, .dpl = s->dpl, .present = s->present, .avl = s->avl, .l = s->l,
		.db = s->db, .g = s->g, .unusable = s->unusable,
	};
}

static void seg_to_kvm(struct kvm_segment *o, const struct x86_segment *s)
{
	*o = (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
		.s = s->s, .dpl = s->dpl, .present = s->present, .avl = s->avl, .l = s->l,
		.db = s->db, .g = s->g, .unusable = s->unusable,
	};
}

static int kvm_get_sregs(struct vcpu *vcpu, struct x86_sregs *sr)
{
	struct kvm_sregs s;
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv_of(vcpu)->fd, KVM_GET_SREGS, &s) < 0)
		return err_set(-errno, "kvm: KVM_GET_SREGS: %s", strerror(errno));
	const struct kvm_segment *segs[SEG_COUNT] = { &s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs };
	for (int i = 0; i < SEG_COUNT; i++)
		seg_from_kvm(&sr->seg[i], segs[i]);
	seg_from_kvm(&sr->tr, &s.tr);
	seg_from_kvm(&sr->ldt, &s.ldt);
	sr->gdt = (struct x86_dtable){ s.gdt.base, s.gdt.limit };
	sr->idt = (struct x86_dtable){ s.idt.base, s.idt.limit };
	sr->cr0 = s.cr0;
	sr->cr2 = s.cr2;
	sr->cr3 = s.cr3;
	sr->cr4 = s.cr4;
	sr->cr8 = s.cr8;
	sr->efer = s.efer;
	sr->apic_base = s.apic_base;
	return 0;
}

static int kvm_set_sregs(struct vcpu *vcpu, const struct x86_sregs *sr)
{
	struct kvm_sregs s;
	/* Read first so that the interrupt bitmap keeps its value. */
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv_of(vcpu)->fd, KVM_GET_SREGS, &s) < 0)
		return err_set(-errno, "kvm: KVM_GET_SREGS: %s", strerror(errno));
	struct kvm_segment *segs[SEG_COUNT] = { &s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs };
	for (int i = 0; i < SEG_COUNT; i++)
		seg_to_kvm(segs[i], &sr->seg[i]);
	seg_to_kvm(&s.tr, &sr->tr);
	seg_to_kvm(&s.ldt, &sr->ldt);
	s.gdt.base = sr->gdt.base;
	s.gdt.limit = sr->gdt.limit;
	s.idt.base = sr->idt.base;
	s.idt.limit = sr->idt.limit;
	s.cr0 = sr->cr0;
	s.cr2 = sr->cr2;
	s.cr3 = sr->cr3;
	s.cr4 = sr->cr4;
	s.cr8 = sr->cr8;
	s.efer = sr->efer;
	s.apic_base = sr->apic_base;
	host_call_note(HOST_CALL_IOCTL);
	if (ioctl(kv_of(vcpu)->fd, KVM_SET_SREGS, &s) < 0)
		return err_set(-errno, "kvm: KVM_SET_SREGS: %s", strerror(errno));
	return 0;
}

/* struct kvm_fpu holds the FXSAVE fields unpacked; convert to and from the
 * FXSAVE image (SDM vol. 1, 10.5.1, table 10-2). */
static int kvm_get_fpu(struct vcpu *vcpu, struct x86_fpu *fpu)
{
	struct kvm_fpu f;
	if (ioctl(kv_of(vcpu)->fd, KVM_GET_FPU, &f) < 0)
		return err_set(-errno, "kvm: KVM_GET_FPU: %s", strerror(errno));
	uint8_t *x = fpu->fxsave;
	memset(x, 0, sizeof(fpu->fxsave));
	memcpy(x + 0, &f.fcw, 2);
	memcpy(x + 2, &f.fsw, 2);
	x[4] = f.ftwx;
	memcpy(x + 6, &f.last_opcode, 2);
	memcpy(x + 8, &f.last_ip, 8);
	memcpy(x + 16, &f.last_dp, 8);
	memcpy(x + 24, &f.mxcsr, 4);
	uint32_t mxcsr_mask = 0xffff;
	memcpy(x + 28, &mxcsr_mask, 4);
	for (int i = 0; i < 8; i++)
		memcpy(x + 32 + 16 * i, f.fpr[i], 16);
	memcpy(x + 160, f.xmm, 256);
	fpu->xcr0 = 3;
	return 0;
}

static int kvm_set_fpu(struct vcpu *vcpu, const struct x86_fpu *fpu)
{
	struct kvm_fpu f;
	memset(&f, 0, sizeof(f));
	const uint8_t *x = fpu->fxsave;
	memcpy(&f.fcw, x + 0, 2);
	memcpy(&f.fsw, x + 2, 2);
	f.ftwx = x[4];
	memcpy(&f.last_opcode, x + 6, 2);
	memcpy(&f.last_ip, x + 8, 8);
	memcpy(&f.last_dp, x + 16, 8);
	memcpy(&f.mxcsr, x + 24, 4);
	for (int i = 0; i < 8; i++)
		memcpy(f.fpr[i], x + 32 + 16 * i, 16);
	memcpy(f.xmm, x + 160, 256);
	if (ioctl(kv_of(vcpu)->fd, KVM_SET_FPU, &f) < 0)
		return err_set(-errno, "kvm: KVM_SET_FPU: %s", strerror(errno));
	return 0;
}

static int kvm_msrs_io(struct vcpu *vcpu, struct x86_msr_entry *msrs, size_t n, unsigned long req)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	if (!m)
		return err_set(-ENOMEM, "out of memory");
	m->nmsrs = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		m->entries[i].index = msrs[i].index;
		m->entries[i].data = msrs[i].value;
	}
	int rc = ioctl(kv_of(vcpu)->fd, req, m);
	if (rc < 0) {
		rc = err_set(-errno, "kvm: MSR access: %s", strerror(errno));
	} else if (req == KVM_GET_MSRS) {
		for (int i = 0; i < rc; i++)
			msrs[i].value = m->entries[i].data;
	}
	free(m);
	return rc;
}

static int kvm_get_msrs(struct vcpu *vcpu, struct x86_msr_entry *msrs, size_t n)
{
	return kvm_msrs_io(vcpu, msrs, n, KVM_GET_MSRS);
}

static int kvm_set_msrs(struct vcpu *vcpu, const struct x86_msr_entry *msrs, size_t n)
{
	return kvm_msrs_io(vcpu, (struct x86_msr_entry *)msrs, n, KVM_SET_MSRS);
}

const struct accel_ops accel_kvm = {
	.name = "kvm",
	.vm_init = kvm_vm_init,
	.vm_destroy = kvm_vm_destroy,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.get_regs = kvm_get_regs,
	.set_regs = kvm_set_regs,
	.get_sregs = kvm_get_sregs,
	.set_sregs = kvm_set_sregs,
	.get_fpu = kvm_get_fpu,
	.set_fpu = kvm_set_fpu,
	.get_msrs = kvm_get_msrs,
	.set_msrs = kvm_set_msrs,
	.memory_changed = kvm_set_slot,
	.hypercall_stub = kvm_hv_hypercall_stub,
	.hypercall_stub_len = KVM_HV_HYPERCALL_STUB_LEN,
	.guest_tsc_hz = kvm_guest_tsc_hz,
};
