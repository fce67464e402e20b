/* The Hyper-V interface end to end on each engine: bare-metal guests
 * (tests/unit/hv/guests, in long mode through tests/unit/hw/guests/entry.inc) on
 * the PC platform with src/hv wired as vessel wires it (CPUID, MSRs,
 * hypercalls), one thread per vCPU on the real clock.  Each guest checks
 * what it sees itself and ends with the debug-exit port: 0x42 when all
 * held, else the number of the failing step (named in each test). */
#include "cpu/engines.h"
#include "machine/accel.h"
#include "hw/chardev.h"
#include "hw/intc/lapic.h"
#include "board/pc.h"
#include "hv/hyperv.h"
#include "hv/synic.h"
#include "util/error.h"
#include "machine/machine.h"

#include "hv_eoi.h"
#include "hv_event.h"
#include "hv_refclock.h"
#include "hv_stimer.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GUEST_RAM (4ull << 20)

/* The engine the guests run on: the emu engine, or KVM's (the
 * hv_guests_kvm suite, where /dev/kvm can be opened). */
static const struct accel_ops *engine = &accel_emu;

static void use_kvm_or_skip(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("no usable /dev/kvm on this host: the KVM engine cannot be tested here");
	close(fd);
	engine = &accel_kvm;
}

struct gvm {
	struct vm vm;
	struct vcpu cpu[2];
	pthread_t thread[2];
	struct chardev *console;
};

/* A vCPU's run loop, as the VMM's (src/vmm/vm.c) without the gate and
 * SIPI handling: every vCPU starts at 0x1000 in real mode. */
static void *vcpu_loop(void *opaque)
{
	struct vcpu *v = opaque;
	struct vm *vm = v->vm;
	while (atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
		struct vcpu_exit exit = { 0 };
		atomic_store(&v->in_run, true);
		int rc = vm->accel->vcpu_run(v, &exit);
		atomic_store(&v->in_run, false);
		if (rc < 0 || exit.reason == VCPU_EXIT_SHUTDOWN || exit.reason == VCPU_EXIT_INTERNAL_ERROR) {
			fprintf(stderr, "cpu%u: %s %s\n", v->id, vcpu_exit_reason_name(exit.reason),
				rc < 0 ? err_msg() : exit.error.message);
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		if (exit.reason == VCPU_EXIT_KICK) {
			atomic_fetch_and(&v->events, ~VCPU_EVT_KICK);
		} else if (exit.reason == VCPU_EXIT_HLT) {
			struct x86_regs r;
			uint32_t mask = VCPU_EVT_NMI | VCPU_EVT_KICK;
			if (vm->accel->get_regs(v, &r) == 0 && (r.rflags & X86_FLAG_IF))
				mask |= VCPU_EVT_INTR;
			pthread_mutex_lock(&v->lock);
			while (!(atomic_load(&v->events) & mask) && atomic_load(&vm->stop_reason) == VM_STOP_NONE)
				pthread_cond_wait(&v->wake, &v->lock);
			pthread_mutex_unlock(&v->lock);
		}
	}
	return NULL;
}

static struct gvm *gvm_new(unsigned ncpus, const unsigned char *image, unsigned len)
{
	struct gvm *g = calloc(1, sizeof(*g));
	cr_assert(g);
	struct vm *vm = &g->vm;
	cr_assert_eq(gmem_init(&vm->mem, GUEST_RAM), 0);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->dev_lock, NULL);
	vm->accel = engine;
	cr_assert_eq(engine->vm_init(vm), 0, "%s", err_msg());
	/* As src/vmm/vm.c offers it: no remote flush on an engine that
	 * keeps no translations, the engine's TSC rate. */
	uint32_t features = HV_FEATURES_ALL;
	if (!engine->tlb_flush)
		features &= ~(1u << HV_FEAT_TLBFLUSH);
	uint64_t tsc_hz = engine->guest_tsc_hz ? engine->guest_tsc_hz(vm) : LAPIC_DEFAULT_TSC_HZ;
	if (!tsc_hz)
		cr_skip_test("this host's /dev/kvm cannot tell the guest TSC rate (no KVM_CAP_VM_TSC_CONTROL)");
	cr_assert_eq(hv_vm_create(vm, features, tsc_hz, LAPIC_TIMER_HZ), 0, "%s", err_msg());
	vm->handle_hypercall = hv_hypercall;
	vm->hv_cpuid = hv_cpuid;
	vm->hv_msr = hv_msr;
	vm->hv_msr_ranges = hv_msr_ranges;
	vm->hv_n_msr_ranges = HV_MSR_RANGES;
	for (unsigned i = 0; i < ncpus; i++) {
		struct vcpu *v = &g->cpu[i];
		v->vm = vm;
		v->id = i;
		v->run_state = VCPU_RUNNABLE;
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, NULL);
		vm->vcpus[vm->n_vcpus++] = v;
		cr_assert_eq(engine->vcpu_init(v), 0, "%s", err_msg());
	}
	g->console = chardev_null_new();
	struct platform_options opts = { .console = g->console };
	cr_assert_eq(platform_create_opts(vm, &opts), 0, "%s", err_msg());
	memcpy(gmem_ptr(&vm->mem, 0x1000, len), image, len);
	for (unsigned i = 0; i < ncpus; i++) {
		struct x86_sregs s;
		cr_assert_eq(engine->get_sregs(&g->cpu[i], &s), 0);
		for (int k = 0; k < SEG_COUNT; k++) {
			s.seg[k].selector = 0;
			s.seg[k].base = 0;
		}
		cr_assert_eq(engine->set_sregs(&g->cpu[i], &s), 0);
		struct x86_regs r = { .rip = 0x1000, .rflags = X86_FLAG_FIXED };
		cr_assert_eq(engine->set_regs(&g->cpu[i], &r), 0);
	}
	return g;
}

/* Runs every vCPU until the guest stops the machine; its debug-exit value. */
static int gvm_run(struct gvm *g, int seconds)
{
	struct vm *vm = &g->vm;
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		cr_assert_eq(pthread_create(&g->thread[i], NULL, vcpu_loop, &g->cpu[i]), 0);
	time_t end = time(NULL) + seconds;
	while (atomic_load(&vm->stop_reason) == VM_STOP_NONE && time(NULL) < end) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	bool timed_out = atomic_load(&vm->stop_reason) == VM_STOP_NONE;
	vm_request_stop(vm, VM_STOP_QUIT);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		pthread_join(g->thread[i], NULL);
	cr_assert(!timed_out, "the guest did not finish within %d s", seconds);
	cr_assert_eq(atomic_load(&vm->stop_reason), VM_STOP_DEBUG_EXIT, "stopped otherwise: %d",
		     atomic_load(&vm->stop_reason));
	return vm->debug_exit_value;
}

static void gvm_free(struct gvm *g)
{
	struct vm *vm = &g->vm;
	platform_destroy(vm);
	chardev_free(g->console);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		engine->vcpu_destroy(&g->cpu[i]);
	engine->vm_destroy(vm);
	hv_vm_destroy(vm);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	gmem_destroy(&vm->mem);
	free(g);
}

/* The event ports of hv_event.asm, owned by this harness as VMBus owns
 * its channels' (hv_add_event_connections()): connection id
 * EVENT_CONN_FIRST + i sets flag base + the caller's flag number (TLFS
 * 11.10.3: the number is relative to the port's base) in SINT sint of
 * VP vp. */
#define EVENT_CONN_FIRST 0x100
static const struct {
	unsigned vp, sint, base;
} event_ports[] = { { 0, 4, 0 }, { 1, 4, 32 }, { 0, 5, 0 }, { 1, 5, 0 }, { 0, 6, 0 } };

static int event_port_signalled(void *opaque, struct vcpu *caller, uint32_t conn_id, unsigned flag)
{
	struct vm *vm = opaque;
	(void)caller;
	unsigned i = conn_id - EVENT_CONN_FIRST;
	struct hv_synic *s = hv_vcpu_synic(vm->vcpus[event_ports[i].vp]);
	int rc = s ? hv_synic_signal_event(s, event_ports[i].sint, event_ports[i].base + flag) : -ENODEV;
	/* Set, already set, or the SINT masked: the call itself succeeded. */
	return rc == -EINVAL ? 5 /* HV_STATUS_INVALID_PARAMETER */ : HV_STATUS_SUCCESS;
}

static int run_guest_ports(unsigned ncpus, const unsigned char *image, unsigned len, int seconds,
			   struct hv_info *info, bool ports)
{
	struct gvm *g = gvm_new(ncpus, image, len);
	if (ports)
		cr_assert_eq(hv_add_event_connections(&g->vm, EVENT_CONN_FIRST,
						      sizeof(event_ports) / sizeof(event_ports[0]),
						      event_port_signalled, &g->vm), 0, "%s", err_msg());
	int v = gvm_run(g, seconds);
	if (info)
		cr_assert(hv_get_info(&g->vm, info));
	gvm_free(g);
	return v;
}

static int run_guest(unsigned ncpus, const unsigned char *image, unsigned len, int seconds, struct hv_info *info)
{
	return run_guest_ports(ncpus, image, len, seconds, info, false);
}

static void autoeoi_nesting_and_selective_eoi(void)
{
	struct hv_info info;
	int v = run_guest(1, hv_eoi, hv_eoi_len, 60, &info);
	static const char *const step[] = {
		[1] = "CPUID 0x40000101 does not announce selective EOI",
		[2] = "the AutoEOI SINT's vector was set in the ISR",
		[3] = "a lower-priority interrupt was not taken inside the AutoEOI handler",
		[4] = "the AutoEOI SINT was not delivered",
		[5] = "an ISR bit was left after the AutoEOI handler",
		[6] = "before the selective EOI: ISR or PPR wrong (0x61 and 0xa1 in service, PPR 0xa0)",
		[7] = "after the selective EOI of 0x61: ISR or PPR wrong (only 0xa1 in service, PPR 0xa0)",
		[8] = "after the EOI of 0xa1: ISR not empty or PPR not 0",
		[9] = "the nested interrupts were not all taken",
	};
	cr_assert_eq(v, 0x42, "step %d: %s", v, v > 0 && v < 10 ? step[v] : "?");
	cr_assert_geq(info.auto_eoi, 1);
}

static void synthetic_timers_and_message_pending(void)
{
	struct hv_info info;
	int v = run_guest(1, hv_stimer, hv_stimer_len, 60, &info);
	static const char *const step[] = {
		[1] = "direct mode, periodic: fewer than 5 interrupts",
		[2] = "direct mode, one-shot: no interrupt",
		[3] = "direct mode, one-shot: fired again, or stayed enabled",
		[4] = "message mode, periodic: wrong message type or timer index",
		[5] = "message mode, periodic: fewer than 3 messages",
		[6] = "busy slot: the second expiry interrupted, or the slot changed",
		[7] = "busy slot: MessagePending not set",
		[8] = "after EOM: the waiting message was not delivered",
		[9] = "after EOM: the delivered message is not the second timer's",
	};
	cr_assert_eq(v, 0x42, "step %d: %s", v, v > 0 && v < 10 ? step[v] : "?");
	cr_assert_geq(info.stimer_direct, 6);
	cr_assert_geq(info.stimer_messages, 5);
	cr_assert_geq(info.queued, 1);
	cr_assert_geq(info.eoms, 1);
}

static void reference_page_and_counter_monotonic_on_two_vcpus(void)
{
	int v = run_guest(2, hv_refclock, hv_refclock_len, 120, NULL);
	static const char *const step[] = {
		[1] = "the reference TSC page was not valid (sequence 0)",
		[2] = "the page's time went back from the MSR read before it",
		[3] = "the MSR went back from the page's time read before it",
		[4] = "the other vCPU did not finish",
	};
	cr_assert_eq(v, 0x42, "step %d: %s", v, v > 0 && v < 5 ? step[v] : "?");
}

static void signal_event_to_self_and_to_the_other_vcpu(void)
{
	struct hv_info info;
	int v = run_guest_ports(2, hv_event, hv_event_len, 60, &info, true);
	static const char *const step[] = {
		[1] = "the second vCPU did not set up its SynIC",
		[2] = "SignalEvent to itself (memory input) failed",
		[3] = "SignalEvent to itself: no interrupt",
		[4] = "SignalEvent to itself: the flag is not (only) in its own page's SINT4 slot, or the other vCPU was interrupted",
		[5] = "a flag signalled while still set interrupted again",
		[6] = "the flag cleared and signalled again did not interrupt",
		[7] = "SignalEvent to the other vCPU (fast input) failed",
		[8] = "SignalEvent to the other vCPU: no interrupt there",
		[9] = "SignalEvent to the other vCPU: flag 32 + 5 not (only) set in its page's SINT4 slot",
		[10] = "SignalEvent to the other vCPU: this vCPU was interrupted or its page changed",
		[11] = "SignalEvent to an AutoEOI SINT failed",
		[12] = "AutoEOI SINT on this vCPU: no interrupt, or flag 0 not in the SINT5 slot",
		[13] = "AutoEOI SINT on the other vCPU: no interrupt, or flag 2047 not in the SINT5 slot",
		[14] = "SignalEvent to a masked SINT failed",
		[15] = "a masked SINT delivered an interrupt",
		[16] = "an unknown connection id did not give HV_STATUS_INVALID_CONNECTION_ID (0x12)",
		[17] = "flag 2048 did not give HV_STATUS_INVALID_PARAMETER, or an unaligned input HV_STATUS_INVALID_ALIGNMENT",
		[18] = "a SINT vector was left in service",
		[19] = "the interrupts counted on each vCPU are not the ones signalled",
		[20] = "the SINT without AutoEOI was not in service in its handler",
		[21] = "the AutoEOI SINT was in service in its handler",
	};
	cr_assert_eq(v, 0x42, "step %d: %s", v, v > 0 && v < 22 ? step[v] : "?");
	/* Flags newly set: two on the first vCPU's SINT4 (the repeat while
	 * set is none), one on the second's, one on each SINT5; the masked
	 * SINT takes none.  Every call is counted, the failed ones too. */
	cr_assert_eq(info.events, 5);
	cr_assert_eq(info.hypercalls_by[HV_HC_SIGNAL_EVENT], 11);
}

/* Each guest on each engine. */
Test(hv_guests, autoeoi_nesting_and_selective_eoi)
{
	autoeoi_nesting_and_selective_eoi();
}

Test(hv_guests, synthetic_timers_and_message_pending)
{
	synthetic_timers_and_message_pending();
}

Test(hv_guests, reference_page_and_counter_monotonic_on_two_vcpus)
{
	reference_page_and_counter_monotonic_on_two_vcpus();
}

Test(hv_guests, signal_event_to_self_and_to_the_other_vcpu)
{
	signal_event_to_self_and_to_the_other_vcpu();
}


Test(hv_guests_kvm, autoeoi_nesting_and_selective_eoi)
{
	use_kvm_or_skip();
	autoeoi_nesting_and_selective_eoi();
}

Test(hv_guests_kvm, synthetic_timers_and_message_pending)
{
	use_kvm_or_skip();
	synthetic_timers_and_message_pending();
}

Test(hv_guests_kvm, reference_page_and_counter_monotonic_on_two_vcpus)
{
	use_kvm_or_skip();
	reference_page_and_counter_monotonic_on_two_vcpus();
}

Test(hv_guests_kvm, signal_event_to_self_and_to_the_other_vcpu)
{
	use_kvm_or_skip();
	signal_event_to_self_and_to_the_other_vcpu();
}
