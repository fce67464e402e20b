/* Hyper-V enlightenments: identity, recommendations, synthetic MSRs and
 * the hypercall entry (TLFS v6.0b, chapters 2, 3, 12; docs/hyperv.md).
 *
 * Only what vessel implements is advertised: a Linux guest that sees a
 * feature bit relies on it (TLB flush and IPI hypercalls, partition id,
 * isolation), so every bit in these leaves has its register or call
 * below, and every register here answers #GP while its bit is off. */
#include "hv/hyperv.h"

#include "hv/hv_vmbus.h"
#include "hv/stimer.h"
#include "hv/synic.h"

#include "hw/intc/lapic.h"
#include "util/error.h"
#include "util/log.h"
#include "machine/machine.h"
#include "machine/snap_state.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BIT(n) (1u << (n))
#define STR4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* CPUID 0x40000003 EAX, the partition privilege mask's low half (TLFS 2.4.4). */
#define HV_PRIV_TIME_REF_COUNT  BIT(1)
#define HV_PRIV_SYNIC           BIT(2)
#define HV_PRIV_SYNTIMER        BIT(3)
#define HV_PRIV_RESET           BIT(7)
#define HV_PRIV_HYPERCALL       BIT(5)
#define HV_PRIV_VP_INDEX        BIT(6)
#define HV_PRIV_REFERENCE_TSC   BIT(9)
#define HV_PRIV_FREQUENCY_MSRS  BIT(11)
/* CPUID 0x40000003 EBX, the privilege mask's high half. */
#define HV_PRIV_POST_MESSAGES   BIT(4)
#define HV_PRIV_SIGNAL_EVENTS   BIT(5)
/* CPUID 0x40000003 EDX. */
#define HV_MISC_FREQUENCY_MSRS  BIT(8)
#define HV_MISC_CRASH_MSRS      BIT(10)
#define HV_MISC_STIMER_DIRECT   BIT(19)
/* CPUID 0x40000004 EAX (TLFS 2.4.5). */
#define HV_HINT_REMOTE_TLB_FLUSH BIT(2)
#define HV_HINT_RELAXED_TIMING  BIT(5)
#define HV_HINT_CLUSTER_IPI     BIT(10)
#define HV_HINT_EX_PROCESSOR_MASKS BIT(11)

/* HYPERCALL MSR (TLFS 3.13): enable, locked, page GPA in 63:12. */
#define HC_ENABLE  1ull
#define HC_LOCKED  2ull
/* REFERENCE_TSC MSR (TLFS 12.7.1). */
#define REFTSC_ENABLE 1ull
/* CRASH_CTL (TLFS 2.4.4 "guest crash"): notify, and a message in P3/P4. */
#define CRASH_CTL_NOTIFY     (1ull << 63)
#define CRASH_CTL_NOTIFY_MSG (1ull << 62)
#define CRASH_MSG_MAX        4096u

/* Owners of SignalEvent connection ids: VMBus, and room for more. */
#define HV_MAX_EVENT_OWNERS 4

struct hv_vm {
	pthread_mutex_t lock;           /* partition-wide registers below */
	uint32_t features;              /* bit per enum hv_feature */
	uint64_t tsc_hz, apic_hz, tsc_scale;
	uint64_t guest_os_id;
	uint64_t hypercall;
	uint64_t reference_tsc;
	uint64_t crash[5];
	uint64_t vp_assist[MACHINE_MAX_CPUS];
	struct hv_synic *synic[MACHINE_MAX_CPUS];   /* device lock */
	struct hv_stimers *stimers[MACHINE_MAX_CPUS];   /* device lock */
	struct hv_vmbus_host *vmbus;    /* src/hv/hv_vmbus.c, NULL without */
	struct hv_event_conns {         /* owners of SignalEvent's connection ids */
		uint32_t first, count;
		hv_event_fn fn;
		void *opaque;
	} events[HV_MAX_EVENT_OWNERS];
	unsigned n_events;
	_Atomic uint64_t n_hypercalls, n_crashes;
	_Atomic uint64_t n_by_kind[HV_HC_KIND_COUNT];
};

static const struct {
	const char *name, *help;
} feature_info[HV_FEAT_COUNT] = {
	[HV_FEAT_RELAXED] = { "relaxed", "recommend relaxed timing (no watchdog on the hypervisor's time)" },
	[HV_FEAT_TIME] = { "time", "reference counter MSR and reference TSC page (hyperv_clocksource)" },
	[HV_FEAT_FREQUENCIES] = { "frequencies", "TSC and APIC timer frequency MSRs" },
	[HV_FEAT_CRASH] = { "crash", "crash MSRs: a guest panic is logged on the host with its message" },
	[HV_FEAT_RESET] = { "reset", "reset MSR: the guest resets the machine through it" },
	[HV_FEAT_SYNIC] = { "synic", "synthetic interrupt controller: SINTs, message and event flag pages, AutoEOI" },
	[HV_FEAT_STIMER] = { "stimer", "synthetic timers, message and direct mode (Hyper-V clockevent); needs time" },
	[HV_FEAT_TLBFLUSH] = { "tlbflush", "remote TLB flushes by hypercall instead of IPIs" },
	[HV_FEAT_IPI] = { "ipi", "IPIs by hypercall (HvCallSendSyntheticClusterIpi)" },
	[HV_FEAT_VMBUS] = { "vmbus", "VMBus with the shutdown, heartbeat and timesync services (hv_utils); needs synic" },
};

const char *hv_feature_name(enum hv_feature f)
{
	return f < HV_FEAT_COUNT ? feature_info[f].name : "?";
}

void hv_list_features(FILE *out)
{
	fputs("Hyper-V features (all on by default; --hyperv -NAME,... turns some off, --hyperv off all):\n", out);
	for (int i = 0; i < HV_FEAT_COUNT; i++)
		fprintf(out, "  %-12s %s\n", feature_info[i].name, feature_info[i].help);
}

int hv_parse(const char *spec, bool *enabled, uint32_t *features)
{
	*enabled = true;
	*features = HV_FEATURES_ALL;
	if (!spec || !strcmp(spec, "on"))
		return 0;
	if (!strcmp(spec, "off")) {
		*enabled = false;
		*features = 0;
		return 0;
	}
	char *copy = strdup(spec);
	if (!copy)
		return err_set(-ENOMEM, "out of memory");
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool on = true;
		const char *name = tok;
		if (*name == '-' || *name == '+') {
			on = *name == '+';
			name++;
		}
		if (!strncmp(name, "hv-", 3))
			name += 3;
		int f = -1;
		for (int i = 0; i < HV_FEAT_COUNT; i++)
			if (!strcmp(name, feature_info[i].name))
				f = i;
		if (f < 0) {
			rc = err_set(-EINVAL, "hyperv: '%s' is not a Hyper-V feature (see --hyperv help)", name);
			break;
		}
		if (on)
			*features |= BIT(f);
		else
			*features &= ~BIT(f);
	}
	free(copy);
	return rc;
}

uint64_t hv_tsc_scale(uint64_t tsc_hz)
{
	/* TscScale is a 64.64 fixed-point multiplier from TSC ticks to
	 * 100 ns units: 10^7 * 2^64 / tsc_hz (TLFS 12.7.3). */
	return tsc_hz ? (uint64_t)(((unsigned __int128)10000000u << 64) / tsc_hz) : 0;
}

int hv_vm_create(struct vm *vm, uint32_t features, uint64_t tsc_hz, uint64_t apic_hz)
{
	struct hv_vm *h = calloc(1, sizeof(*h));
	if (!h)
		return err_set(-ENOMEM, "out of memory");
	pthread_mutex_init(&h->lock, NULL);
	h->features = features & HV_FEATURES_ALL;
	h->tsc_hz = tsc_hz;
	h->apic_hz = apic_hz;
	h->tsc_scale = hv_tsc_scale(tsc_hz);
	vm->hv = h;
	return 0;
}

void hv_vm_destroy(struct vm *vm)
{
	struct hv_vm *h = vm->hv;
	if (!h)
		return;
	hv_vmbus_destroy(h->vmbus);
	for (unsigned i = 0; i < MACHINE_MAX_CPUS; i++) {
		hv_stimers_free(h->stimers[i]);
		hv_synic_free(h->synic[i]);
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
	vm->hv = NULL;
}

static bool has(const struct hv_vm *h, enum hv_feature f)
{
	/* The timers count in reference time: without it there are none. */
	if (f == HV_FEAT_STIMER && !(h->features & BIT(HV_FEAT_TIME)))
		return false;
	/* VMBus rides on the SynIC's messages and event flags. */
	if (f == HV_FEAT_VMBUS && !(h->features & BIT(HV_FEAT_SYNIC)))
		return false;
	return h->features & BIT(f);
}

bool hv_has_feature(const struct vm *vm, enum hv_feature f)
{
	return vm && vm->hv && has(vm->hv, f);
}

struct hv_vmbus_host *hv_vm_vmbus(const struct vm *vm)
{
	return vm && vm->hv ? vm->hv->vmbus : NULL;
}

void hv_vm_set_vmbus(struct vm *vm, struct hv_vmbus_host *vb)
{
	vm->hv->vmbus = vb;
}

int hv_add_event_connections(struct vm *vm, uint32_t first, uint32_t count, hv_event_fn fn, void *opaque)
{
	struct hv_vm *h = vm->hv;
	if (!count || first + (uint64_t)count > UINT32_MAX + 1ull)
		return err_set(-EINVAL, "hyperv: empty or wrapping connection id range");
	for (unsigned i = 0; i < h->n_events; i++) {
		const struct hv_event_conns *e = &h->events[i];
		if (first < e->first + (uint64_t)e->count && e->first < first + (uint64_t)count)
			return err_set(-EBUSY, "hyperv: connection ids %#x-%#x are taken", first,
				       (uint32_t)(first + count - 1));
	}
	if (h->n_events == HV_MAX_EVENT_OWNERS)
		return err_set(-ENOSPC, "hyperv: too many owners of connection ids");
	h->events[h->n_events++] = (struct hv_event_conns){ first, count, fn, opaque };
	return 0;
}

int hv_signal_event(struct vcpu *caller, uint32_t conn_id, unsigned flag)
{
	const struct hv_vm *h = caller->vm->hv;
	for (unsigned i = 0; h && i < h->n_events; i++) {
		const struct hv_event_conns *e = &h->events[i];
		if (conn_id - e->first < e->count)
			return e->fn(e->opaque, caller, conn_id, flag);
	}
	return HV_STATUS_INVALID_CONNECTION_ID;
}

bool hv_cpuid(const struct vm *vm, unsigned n_cpus, uint32_t leaf, uint32_t out[4])
{
	const struct hv_vm *h = vm ? vm->hv : NULL;
	if (!h || leaf < 0x40000000u || (leaf > 0x4000000fu && leaf != VESSEL_CPUID_FEATURES))
		return false;
	memset(out, 0, 4 * sizeof(uint32_t));
	if (leaf == VESSEL_CPUID_FEATURES) {
		out[0] = VESSEL_FEAT_SELECTIVE_EOI;
		return true;
	}
	switch (leaf) {
	case 0x40000000:
		/* Max leaf and vendor (TLFS 2.4.1).  The range goes on to the
		 * engine's timing leaf 0x40000010; vessel's own identity is at
		 * 0x40000100 so that no second signature sits here (Linux takes
		 * the signature of the base leaf). */
		out[0] = 0x40000010u;
		out[1] = STR4('M', 'i', 'c', 'r');
		out[2] = STR4('o', 's', 'o', 'f');
		out[3] = STR4('t', ' ', 'H', 'v');
		break;
	case 0x40000001:
		out[0] = STR4('H', 'v', '#', '1');   /* interface signature (TLFS 2.4.2) */
		break;
	case 0x40000002:
		/* Hypervisor version (TLFS 2.4.3): build 14393, version 10.0,
		 * the values other monitors report for the same interface. */
		out[0] = 14393;
		out[1] = 10u << 16;
		break;
	case 0x40000003:
		out[0] = HV_PRIV_HYPERCALL | HV_PRIV_VP_INDEX;
		if (has(h, HV_FEAT_TIME))
			out[0] |= HV_PRIV_TIME_REF_COUNT | HV_PRIV_REFERENCE_TSC;
		if (has(h, HV_FEAT_FREQUENCIES)) {
			out[0] |= HV_PRIV_FREQUENCY_MSRS;
			out[3] |= HV_MISC_FREQUENCY_MSRS;
		}
		if (has(h, HV_FEAT_RESET))
			out[0] |= HV_PRIV_RESET;
		if (has(h, HV_FEAT_SYNIC))
			out[0] |= HV_PRIV_SYNIC;
		if (has(h, HV_FEAT_STIMER)) {
			out[0] |= HV_PRIV_SYNTIMER;
			out[3] |= HV_MISC_STIMER_DIRECT;
		}
		if (has(h, HV_FEAT_CRASH))
			out[3] |= HV_MISC_CRASH_MSRS;
		/* HvCallPostMessage and HvCallSignalEvent reach VMBus. */
		if (has(h, HV_FEAT_VMBUS))
			out[1] |= HV_PRIV_POST_MESSAGES | HV_PRIV_SIGNAL_EVENTS;
		break;
	case 0x40000004:
		/* Recommendations (TLFS 2.4.5).  The flush and IPI calls take
		 * VP sets (the Ex forms) as well as 64-bit masks; EBX
		 * 0xffffffff: never notify of long spin waits. */
		if (has(h, HV_FEAT_RELAXED))
			out[0] |= HV_HINT_RELAXED_TIMING;
		if (has(h, HV_FEAT_TLBFLUSH))
			out[0] |= HV_HINT_REMOTE_TLB_FLUSH | HV_HINT_EX_PROCESSOR_MASKS;
		if (has(h, HV_FEAT_IPI))
			out[0] |= HV_HINT_CLUSTER_IPI | HV_HINT_EX_PROCESSOR_MASKS;
		out[1] = 0xffffffffu;
		break;
	case 0x40000005:
		/* Implementation limits (TLFS 2.4.6). */
		out[0] = MACHINE_MAX_CPUS;
		out[1] = n_cpus;
		break;
	default:
		break;   /* 0x40000006 hardware features and the rest: none */
	}
	return true;
}

/* Writes the hypercall stub into the page (TLFS 3.13): the engine's, or
 * VMCALL; RET (the emu engine's CPU is an Intel one, so VMCALL rather
 * than VMMCALL).  The KVM engine's traps by port I/O (docs/hyperv.md
 * "The KVM engine"). */
static void fill_hypercall_page(struct vm *vm, uint64_t gpa)
{
	static const uint8_t vmcall[] = { 0x0f, 0x01, 0xc1, 0xc3 };
	const uint8_t *stub = vmcall;
	size_t len = sizeof(vmcall);
	if (vm->accel && vm->accel->hypercall_stub) {
		stub = vm->accel->hypercall_stub;
		len = vm->accel->hypercall_stub_len;
	}
	if (gmem_write(&vm->mem, gpa, stub, len) < 0)
		log_warn("hyperv", "hypercall page at %#" PRIx64 " is not in RAM", gpa);
}

/* What hv_msr() answers: the synthetic MSRs (TLFS 2.4.4 puts them all
 * in 0x40000000-0x400001ff) and vessel's selective EOI. */
const struct msr_range hv_msr_ranges[HV_MSR_RANGES] = {
	{ 0x40000000u, 0x200 },
	{ VESSEL_MSR_SELECTIVE_EOI, 1 },
};

/* The reference TSC page (TLFS 12.7.2): a non-zero sequence, the scale,
 * offset 0.  The guest reads ((tsc * scale) >> 64) + offset, which is what
 * TIME_REF_COUNT returns for the same TSC. */
static void fill_reference_tsc_page(struct vm *vm, const struct hv_vm *h, uint64_t gpa)
{
	uint8_t page[24] = { 0 };
	uint32_t seq = 1;
	int64_t offset = 0;
	memcpy(page, &seq, 4);
	memcpy(page + 8, &h->tsc_scale, 8);
	memcpy(page + 16, &offset, 8);
	if (gmem_write(&vm->mem, gpa, page, sizeof(page)) < 0)
		log_warn("hyperv", "reference TSC page at %#" PRIx64 " is not in RAM", gpa);
}

/* Prints a guest OS id; Linux's form is 0x8100 in 63:48 and its
 * LINUX_VERSION_CODE in 47:16 (TLFS 3.11, include/asm-generic/mshyperv.h). */
static void log_guest_os_id(uint64_t id)
{
	if (id >> 48 == 0x8100) {
		uint32_t v = (uint32_t)(id >> 16);
		log_info("hyperv", "guest OS id %#" PRIx64 " (Linux %u.%u.%u)", id, (v >> 16) & 0xff, (v >> 8) & 0xff,
			 v & 0xff);
	} else {
		log_info("hyperv", "guest OS id %#" PRIx64, id);
	}
}

/* CRASH_CTL written with Notify: the guest panicked.  Logs P0-P4 and, with
 * CrashMessage, the text at guest-physical P3, P4 bytes long (at most
 * 4 KiB: Linux's hv_kmsg_dump() fills one page), then hands both to the
 * VMM, which reports the panic and does what --on-panic says. */
static void report_crash(struct vcpu *vcpu, struct hv_vm *h, uint64_t ctl)
{
	struct vm *vm = vcpu->vm;
	atomic_fetch_add(&h->n_crashes, 1);
	log_error("hyperv", "guest reported a crash: P0 %#" PRIx64 " P1 %#" PRIx64 " P2 %#" PRIx64 " P3 %#" PRIx64
		  " P4 %#" PRIx64, h->crash[0], h->crash[1], h->crash[2], h->crash[3], h->crash[4]);
	uint64_t len = ctl & CRASH_CTL_NOTIFY_MSG ? (h->crash[4] < CRASH_MSG_MAX ? h->crash[4] : CRASH_MSG_MAX) : 0;
	char *msg = calloc(1, len + 1);
	if (msg && len && gmem_read(&vm->mem, h->crash[3], msg, len) < 0) {
		log_warn("hyperv", "crash message at %#" PRIx64 " (%" PRIu64 " bytes) is not in RAM", h->crash[3], len);
		msg[0] = 0;
		len = 0;
	}
	/* The guest's text, printable ASCII and newlines only, whatever bytes
	 * it holds; one log line per line. */
	for (uint64_t i = 0; msg && i < len; i++)
		if (msg[i] && msg[i] != '\n' && (msg[i] < 0x20 || msg[i] > 0x7e))
			msg[i] = '?';
	char *lines = msg ? strdup(msg) : NULL;
	char *save = NULL;
	for (char *line = lines ? strtok_r(lines, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
		log_error("hyperv", "guest crash message: %s", line);
	free(lines);
	if (vm->guest_panicked)
		vm->guest_panicked(vcpu, h->crash, msg ? msg : "");
	free(msg);
}

static int msr_read(struct vcpu *vcpu, struct hv_vm *h, uint32_t index, uint64_t *val, uint64_t tsc_now)
{
	switch (index) {
	case HV_MSR_GUEST_OS_ID: *val = h->guest_os_id; return 0;
	case HV_MSR_HYPERCALL: *val = h->hypercall; return 0;
	case HV_MSR_VP_INDEX: *val = vcpu->id; return 0;
	case HV_MSR_VP_ASSIST_PAGE: *val = h->vp_assist[vcpu->id]; return 0;
	case HV_MSR_RESET:
		if (!has(h, HV_FEAT_RESET))
			return -EINVAL;
		*val = 0;
		return 0;
	case HV_MSR_TIME_REF_COUNT:
		if (!has(h, HV_FEAT_TIME))
			return -EINVAL;
		*val = hv_ref_time(tsc_now, h->tsc_scale, 0);
		return 0;
	case HV_MSR_REFERENCE_TSC:
		if (!has(h, HV_FEAT_TIME))
			return -EINVAL;
		*val = h->reference_tsc;
		return 0;
	case HV_MSR_TSC_FREQUENCY:
	case HV_MSR_APIC_FREQUENCY:
		if (!has(h, HV_FEAT_FREQUENCIES))
			return -EINVAL;
		*val = index == HV_MSR_TSC_FREQUENCY ? h->tsc_hz : h->apic_hz;
		return 0;
	}
	if (index >= HV_MSR_CRASH_P0 && index <= HV_MSR_CRASH_CTL) {
		if (!has(h, HV_FEAT_CRASH))
			return -EINVAL;
		/* CRASH_CTL reads as the capabilities offered. */
		*val = index == HV_MSR_CRASH_CTL ? CRASH_CTL_NOTIFY | CRASH_CTL_NOTIFY_MSG
						 : h->crash[index - HV_MSR_CRASH_P0];
		return 0;
	}
	return -EINVAL;
}

static int msr_write(struct vcpu *vcpu, struct hv_vm *h, uint32_t index, uint64_t val)
{
	struct vm *vm = vcpu->vm;
	switch (index) {
	case HV_MSR_GUEST_OS_ID:
		if (val != h->guest_os_id)
			log_guest_os_id(val);
		h->guest_os_id = val;
		/* TLFS 3.13: with a zero guest OS id the hypercall page is off. */
		if (!val)
			h->hypercall &= ~HC_ENABLE;
		return 0;
	case HV_MSR_HYPERCALL:
		if (h->hypercall & HC_LOCKED)
			return 0;   /* locked until reset (TLFS 3.13) */
		val &= ~0xffcull;   /* bits 11:2 are reserved, read as zero */
		if (!h->guest_os_id)
			val &= ~HC_ENABLE;
		h->hypercall = val;
		if (val & HC_ENABLE)
			fill_hypercall_page(vm, val & ~0xfffull);
		return 0;
	case HV_MSR_VP_INDEX:
		return -EINVAL;   /* read-only */
	case HV_MSR_VP_ASSIST_PAGE:
		/* Accepted and held, nothing is placed in the page yet: Linux
		 * writes it on every vCPU whatever CPUID says (hv_cpu_init). */
		h->vp_assist[vcpu->id] = val & ~0xffeull;
		return 0;
	case HV_MSR_RESET:
		if (!has(h, HV_FEAT_RESET))
			return -EINVAL;
		if (val & 1) {
			log_info("hyperv", "cpu%u: reset through the Hyper-V reset MSR", vcpu->id);
			vm_request_stop(vm, VM_STOP_RESET);
		}
		return 0;
	case HV_MSR_REFERENCE_TSC:
		if (!has(h, HV_FEAT_TIME))
			return -EINVAL;
		val &= ~0xffeull;
		h->reference_tsc = val;
		if (val & REFTSC_ENABLE)
			fill_reference_tsc_page(vm, h, val & ~0xfffull);
		return 0;
	case HV_MSR_TIME_REF_COUNT:
	case HV_MSR_TSC_FREQUENCY:
	case HV_MSR_APIC_FREQUENCY:
		return -EINVAL;   /* read-only */
	}
	if (index >= HV_MSR_CRASH_P0 && index <= HV_MSR_CRASH_CTL) {
		if (!has(h, HV_FEAT_CRASH))
			return -EINVAL;
		if (index == HV_MSR_CRASH_CTL) {
			if (val & CRASH_CTL_NOTIFY)
				report_crash(vcpu, h, val);
			return 0;
		}
		h->crash[index - HV_MSR_CRASH_P0] = val;
		return 0;
	}
	return -EINVAL;
}

/* A SINT slot of the vCPU may have come free (EOM, EOI): the synthetic
 * timers retry a held expiry, VMBus sends what waits. */
static void slot_freed(void *opaque)
{
	struct vcpu *vcpu = opaque;
	struct hv_vm *h = vcpu->vm->hv;
	if (h->stimers[vcpu->id])
		hv_stimers_slot_freed(h->stimers[vcpu->id]);
	hv_vmbus_slot_freed(vcpu->vm);
}

struct hv_synic *hv_vcpu_synic(struct vcpu *vcpu)
{
	struct hv_vm *h = vcpu->vm->hv;
	if (!h || !has(h, HV_FEAT_SYNIC) || vcpu->id >= MACHINE_MAX_CPUS)
		return NULL;
	if (!h->synic[vcpu->id]) {
		h->synic[vcpu->id] = hv_synic_new(vcpu);
		if (h->synic[vcpu->id])
			hv_synic_set_slot_hook(h->synic[vcpu->id], slot_freed, vcpu);
	}
	return h->synic[vcpu->id];
}

/* The vCPU's synthetic timers, created on first use beside its SynIC
 * (which they post to when that feature is on).  Device lock held. */
static struct hv_stimers *vcpu_stimers(struct vcpu *vcpu)
{
	struct hv_vm *h = vcpu->vm->hv;
	if (!has(h, HV_FEAT_STIMER) || vcpu->id >= MACHINE_MAX_CPUS)
		return NULL;
	if (!h->stimers[vcpu->id]) {
		struct hv_synic *s = hv_vcpu_synic(vcpu);
		h->stimers[vcpu->id] = hv_stimers_new(vcpu, s, h->tsc_scale);
	}
	return h->stimers[vcpu->id];
}

/* SynIC and timer registers live with the LAPIC, under the device lock. */
static int synic_msr(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val, uint64_t tsc_now)
{
	int rc = -EINVAL;
	pthread_mutex_lock(&vcpu->vm->dev_lock);
	if (index >= HV_MSR_STIMER0_CONFIG && index <= HV_MSR_STIMER3_COUNT) {
		struct hv_stimers *st = vcpu_stimers(vcpu);
		if (st)
			rc = hv_stimers_msr(st, index, is_write, val, tsc_now);
	} else {
		struct hv_synic *s = hv_vcpu_synic(vcpu);
		if (s)
			rc = hv_synic_msr(s, index, is_write, val);
	}
	pthread_mutex_unlock(&vcpu->vm->dev_lock);
	return rc;
}

/* Selective EOI: bits 7:0 a vector, the rest reserved; reads as 0.  A
 * vector not in service is ignored, as an EOI with none in service is. */
static int selective_eoi(struct vcpu *vcpu, bool is_write, uint64_t *val)
{
	if (!is_write) {
		*val = 0;
		return 0;
	}
	if (*val > 0xff || !vcpu->lapic)
		return -EINVAL;
	pthread_mutex_lock(&vcpu->vm->dev_lock);
	if (lapic_eoi_vector(vcpu->lapic, (uint8_t)*val) < 0)
		log_debug("hyperv", "cpu%u: selective EOI of vector %#x, not in service", vcpu->id, (unsigned)*val);
	pthread_mutex_unlock(&vcpu->vm->dev_lock);
	return 0;
}

int hv_msr(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val, uint64_t tsc_now)
{
	struct hv_vm *h = vcpu && vcpu->vm ? vcpu->vm->hv : NULL;
	if (h && index == VESSEL_MSR_SELECTIVE_EOI)
		return selective_eoi(vcpu, is_write, val);
	if (!h || index < 0x40000000u || index > 0x400001ffu)
		return -ENOENT;
	if ((index >= HV_MSR_SCONTROL && index < HV_MSR_SINT0 + HV_SINT_COUNT) ||
	    (index >= HV_MSR_STIMER0_CONFIG && index <= HV_MSR_STIMER3_COUNT)) {
		int rc = synic_msr(vcpu, index, is_write, val, tsc_now);
		if (rc < 0)
			log_debug("hyperv", "cpu%u: %s of MSR %#x refused (#GP)", vcpu->id,
				  is_write ? "write" : "read", index);
		return rc;
	}
	pthread_mutex_lock(&h->lock);
	int rc = is_write ? msr_write(vcpu, h, index, *val) : msr_read(vcpu, h, index, val, tsc_now);
	pthread_mutex_unlock(&h->lock);
	if (rc < 0)
		log_debug("hyperv", "cpu%u: %s of MSR %#x refused (#GP)", vcpu->id, is_write ? "write" : "read", index);
	return rc;
}

void hv_hypercall(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	struct hv_vm *h = vcpu->vm->hv;
	if (!h) {
		exit->hypercall.result = HV_STATUS_INVALID_HYPERCALL_CODE;
		return;
	}
	struct hv_hc_allow allow = { .tlb_flush = has(h, HV_FEAT_TLBFLUSH), .ipi = has(h, HV_FEAT_IPI),
				     .vmbus = has(h, HV_FEAT_VMBUS) };
	enum hv_hc_kind kind;
	/* Fast calls take their two inputs in RDX and R8, the registers
	 * that hold the input and output GPAs otherwise (TLFS 3.7.1). */
	exit->hypercall.result = hv_hypercall_run(vcpu, &allow, exit->hypercall.code, exit->hypercall.in_gpa,
						  exit->hypercall.out_gpa, &kind);
	atomic_fetch_add(&h->n_hypercalls, 1);
	atomic_fetch_add(&h->n_by_kind[kind], 1);
}

/* Version 1: n_vcpus (u32); GUEST_OS_ID, HYPERCALL, REFERENCE_TSC,
 * CRASH_P0-P4; per vCPU: VP_ASSIST_PAGE, a SynIC flag and record, a
 * timers flag and record (records zero when the flag is 0: not used yet). */
#define HV_SNAP_VERSION 1
#define HV_SNAP_VCPU_BYTES (8 + 1 + HV_SYNIC_SNAP_BYTES + 1 + HV_STIMERS_SNAP_BYTES)

int64_t hv_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct vm *vm = opaque;
	struct hv_vm *h = vm->hv;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, HV_SNAP_VERSION);
	hw_snap_u32(&w, vm->n_vcpus);
	pthread_mutex_lock(&h->lock);
	hw_snap_u64(&w, h->guest_os_id);
	hw_snap_u64(&w, h->hypercall);
	hw_snap_u64(&w, h->reference_tsc);
	for (unsigned i = 0; i < 5; i++)
		hw_snap_u64(&w, h->crash[i]);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		hw_snap_u64(&w, h->vp_assist[i]);
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		hw_snap_u8(&w, h->synic[i] != NULL);
		size_t at = w.len;
		if (h->synic[i])
			hv_synic_save(h->synic[i], &w);
		while (w.len < at + HV_SYNIC_SNAP_BYTES)
			hw_snap_u8(&w, 0);
		hw_snap_u8(&w, h->stimers[i] != NULL);
		at = w.len;
		if (h->stimers[i])
			hv_stimers_save(h->stimers[i], &w);
		while (w.len < at + HV_STIMERS_SNAP_BYTES)
			hw_snap_u8(&w, 0);
	}
	return hw_snap_end(&w);
}

/* One pass over the blob after its header: checking only, or applying. */
static int snapshot_pass(struct vm *vm, const void *buf, size_t len, bool apply)
{
	struct hv_vm *h = vm->hv;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, HV_SNAPSHOT_DEVICE, HV_SNAP_VERSION,
			      4 + 8 * 8 + (size_t)vm->n_vcpus * HV_SNAP_VCPU_BYTES);
	if (rc < 0)
		return rc;
	if (hw_snap_get_u32(&r) != vm->n_vcpus)
		return err_set(-EINVAL, "hyperv state: saved for another vCPU count");
	uint64_t regs[8], assist[MACHINE_MAX_CPUS];
	for (unsigned i = 0; i < 8; i++)
		regs[i] = hw_snap_get_u64(&r);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		assist[i] = hw_snap_get_u64(&r);
	if (apply) {
		pthread_mutex_lock(&h->lock);
		h->guest_os_id = regs[0];
		h->hypercall = regs[1] & ~0xffcull;
		h->reference_tsc = regs[2] & ~0xffeull;
		memcpy(h->crash, regs + 3, sizeof(h->crash));
		for (unsigned i = 0; i < vm->n_vcpus; i++)
			h->vp_assist[i] = assist[i] & ~0xffeull;
		pthread_mutex_unlock(&h->lock);
	}
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		bool has_synic = hw_snap_get_bool(&r);
		if (has_synic && !has(h, HV_FEAT_SYNIC))
			return err_set(-EINVAL, "hyperv state: a SynIC, but the synic feature is off");
		struct hv_synic *s = has_synic && apply ? hv_vcpu_synic(v) : NULL;
		if (has_synic && apply && !s)
			return err_set(-ENOMEM, "out of memory");
		size_t at = r.pos;
		if (has_synic && (rc = hv_synic_load(s, &r, !apply)) < 0)
			return rc;
		r.pos = at + HV_SYNIC_SNAP_BYTES;
		bool has_timers = hw_snap_get_bool(&r);
		if (has_timers && !has(h, HV_FEAT_STIMER))
			return err_set(-EINVAL, "hyperv state: synthetic timers, but the stimer feature is off");
		struct hv_stimers *st = has_timers && apply ? vcpu_stimers(v) : NULL;
		if (has_timers && apply && !st)
			return err_set(-ENOMEM, "out of memory");
		at = r.pos;
		if (has_timers && (rc = hv_stimers_load(st, &r, !apply)) < 0)
			return rc;
		r.pos = at + HV_STIMERS_SNAP_BYTES;
	}
	return 0;
}

int hv_snapshot_load(void *opaque, const void *buf, size_t len)
{
	/* Checked whole before anything changes. */
	int rc = snapshot_pass(opaque, buf, len, false);
	return rc < 0 ? rc : snapshot_pass(opaque, buf, len, true);
}

bool hv_get_info(const struct vm *vm, struct hv_info *info)
{
	struct hv_vm *h = vm ? vm->hv : NULL;
	if (!h)
		return false;
	pthread_mutex_lock(&h->lock);
	info->guest_os_id = h->guest_os_id;
	pthread_mutex_unlock(&h->lock);
	info->hypercalls = atomic_load(&h->n_hypercalls);
	info->crashes = atomic_load(&h->n_crashes);
	for (unsigned k = 0; k < HV_HC_KIND_COUNT; k++)
		info->hypercalls_by[k] = atomic_load(&h->n_by_kind[k]);
	info->messages = info->queued = info->eoms = info->events = info->auto_eoi = 0;
	info->stimer_expirations = info->stimer_direct = info->stimer_messages = 0;
	pthread_mutex_lock((pthread_mutex_t *)&vm->dev_lock);
	for (unsigned i = 0; i < MACHINE_MAX_CPUS; i++) {
		if (h->stimers[i]) {
			struct hv_stimer_stats ts;
			hv_stimers_get_stats(h->stimers[i], &ts);
			info->stimer_expirations += ts.expirations;
			info->stimer_direct += ts.direct;
			info->stimer_messages += ts.messages;
		}
		if (!h->synic[i])
			continue;
		struct hv_synic_stats st;
		hv_synic_get_stats(h->synic[i], &st);
		info->messages += st.messages;
		info->queued += st.queued;
		info->eoms += st.eoms;
		info->events += st.events;
		info->auto_eoi += st.auto_eoi;
	}
	pthread_mutex_unlock((pthread_mutex_t *)&vm->dev_lock);
	return true;
}
