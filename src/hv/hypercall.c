/* Hyper-V hypercalls that Linux's guest code uses (arch/x86/hyperv:
 * mmu.c for the TLB flushes, hv_apic.c for the IPIs, hv_spinlock.c):
 *
 * - HvCallFlushVirtualAddressSpace/List and their Ex forms (TLFS 4.5):
 *   the target vCPUs drop the translations named before the call
 *   returns: the address space's (by its CR3 page), or every one's, and
 *   for the List forms only the pages listed; the engine may drop more
 *   (hv_flush_ranges(), docs/hyperv.md "Behaviour"), which the
 *   TLFS allows.  All reps complete at once.
 * - HvCallSendSyntheticClusterIpi/Ex (TLFS 10.5.2, 10.5.3): a fixed,
 *   edge-triggered interrupt of the vector to each target's LAPIC.
 * - HvCallNotifyLongSpinWait (TLFS 14.5.1): the host thread yields.
 * - HvCallPostMessage and HvCallSignalEvent (TLFS 11.10.2, 11.10.3) to
 *   the connection ids devices own: VMBus (src/hv/hv_vmbus.c) for its
 *   messages, and for events whoever registered the id
 *   (hv_add_event_connections()).
 *
 * The calling convention is TLFS 3.7: the input value's fields, inputs
 * at a guest-physical address (8-byte aligned) or, for fast calls, in
 * two registers; the result value carries the status and the reps
 * completed. */
#include "hv/hypercall.h"

#include "hv/hv_vmbus.h"
#include "hv/hyperv.h"
#include "hv/synic.h"
#include "hw/intc/lapic.h"
#include "util/log.h"
#include "machine/machine.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

/* Hypercall status codes (TLFS appendix B). */
#define HV_STATUS_INVALID_HYPERCALL_INPUT 3
#define HV_STATUS_INVALID_ALIGNMENT       4
#define HV_STATUS_INVALID_PARAMETER       5

/* The input value (TLFS 3.7). */
#define CTL_CODE(c)      ((uint16_t)(c))
#define CTL_FAST         (1ull << 16)
#define CTL_VARHEAD(c)   ((unsigned)((c) >> 17) & 0x3ff)
#define CTL_REP_COUNT(c) ((unsigned)((c) >> 32) & 0xfff)
#define CTL_REP_START(c) ((unsigned)((c) >> 48) & 0xfff)
#define CTL_RESERVED     ((0x1full << 27) | (0xfull << 44) | (0xfull << 60))
#define RESULT(status, reps) ((uint64_t)(status) | (uint64_t)(reps) << 32)

/* Flush flags (TLFS 4.5.1). */
#define FLUSH_ALL_PROCESSORS      (1ull << 0)
#define FLUSH_ALL_ADDRESS_SPACES  (1ull << 1)
#define FLUSH_NON_GLOBAL_ONLY     (1ull << 2)
#define FLUSH_EXTENDED_RANGES     (1ull << 3)
#define FLUSH_FLAGS_KNOWN         0xfull
/* An address space is named by its CR3 value (TLFS 4.5.1); its page
 * identifies it, the PCID and cache bits do not. */
#define CR3_PAGE 0x000ffffffffff000ull

/* HV_GENERIC_SET formats (TLFS 7.8.7.5). */
#define SET_SPARSE_4K 0
#define SET_ALL       1

/* The lowest vector a synthetic IPI may carry (TLFS 10.5.2). */
#define IPI_LOW_VECTOR 0x10

static const char *const names[HV_HC_KIND_COUNT] = {
	[HV_HC_FLUSH_SPACE] = "HvCallFlushVirtualAddressSpace",
	[HV_HC_FLUSH_LIST] = "HvCallFlushVirtualAddressList",
	[HV_HC_FLUSH_SPACE_EX] = "HvCallFlushVirtualAddressSpaceEx",
	[HV_HC_FLUSH_LIST_EX] = "HvCallFlushVirtualAddressListEx",
	[HV_HC_SEND_IPI] = "HvCallSendSyntheticClusterIpi",
	[HV_HC_SEND_IPI_EX] = "HvCallSendSyntheticClusterIpiEx",
	[HV_HC_LONG_SPIN_WAIT] = "HvCallNotifyLongSpinWait",
	[HV_HC_POST_MESSAGE] = "HvCallPostMessage",
	[HV_HC_SIGNAL_EVENT] = "HvCallSignalEvent",
	[HV_HC_OTHER] = "other",
};

const char *hv_hypercall_name(enum hv_hc_kind kind)
{
	return kind < HV_HC_KIND_COUNT ? names[kind] : "?";
}

/* The vCPUs in a VP set (TLFS 7.8.7.5 HV_VP_SET): format, valid bank
 * mask, then one 64-bit bank per bit set in the mask, in bank order.
 * vessel's VP indexes are below 64, so only bank 0 can name one; banks
 * past what the variable header holds are an error.  0, or a status. */
static int vp_set_mask(const uint64_t *set, unsigned words, uint64_t *mask)
{
	if (words < 2)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (set[0] == SET_ALL) {
		*mask = ~0ull;
		return 0;
	}
	if (set[0] != SET_SPARSE_4K)
		return HV_STATUS_INVALID_PARAMETER;
	unsigned banks = (unsigned)__builtin_popcountll(set[1]);
	if (banks > words - 2)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	*mask = (set[1] & 1) ? set[2] : 0;
	return 0;
}

/* Reads the fixed and variable header of a memory-input call. */
static int read_input(struct vcpu *vcpu, uint64_t gpa, void *buf, size_t len)
{
	if (gpa & 7)
		return HV_STATUS_INVALID_ALIGNMENT;
	if (gmem_read(&vcpu->vm->mem, gpa, buf, len) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	return 0;
}

/* The VP mask the vCPUs exist for. */
static uint64_t present(const struct vcpu *vcpu)
{
	unsigned n = vcpu->vm->n_vcpus;
	return n >= 64 ? ~0ull : (1ull << n) - 1;
}

/* Past these, a list flush drops the whole address space instead: more
 * pages cost more to drop one by one than the refills a whole flush
 * costs (Linux itself switches to a full flush past 33 pages), and a
 * target's queue holds VCPU_TLB_QUEUE ranges. */
#define FLUSH_LIST_PAGES_MAX  64

int hv_flush_ranges(uint64_t space, uint64_t flags, const uint64_t *gva, unsigned n_gva,
		    struct vcpu_tlb_range *r)
{
	/* HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES: the address space given is
	 * ignored; NON_GLOBAL_MAPPINGS_ONLY: global translations may stay
	 * (TLFS 4.5.1). */
	struct vcpu_tlb_range whole = {
		.space = (flags & FLUSH_ALL_ADDRESS_SPACES) ? VCPU_TLB_ALL_SPACES : space & CR3_PAGE,
		.non_global = flags & FLUSH_NON_GLOBAL_ONLY,
	};
	unsigned pages = 0;
	if (n_gva > HV_FLUSH_RANGES_MAX || !gva) {
		r[0] = whole;
		return 1;
	}
	/* A GVA range (TLFS 4.5.3, HV_GVA_RANGE): the page, and in its low
	 * 12 bits how many pages follow it. */
	for (unsigned i = 0; i < n_gva; i++) {
		r[i] = whole;
		r[i].page = gva[i] & ~0xfffull;
		r[i].count = (uint32_t)(gva[i] & 0xfff) + 1;
		pages += r[i].count;
	}
	if (pages > FLUSH_LIST_PAGES_MAX) {
		r[0] = whole;
		return 1;
	}
	return (int)n_gva;
}

static int flush(struct vcpu *vcpu, uint64_t control, uint64_t in, bool ex, bool list)
{
	/* HV_TLB_FLUSH: address space, flags, processor mask; the Ex form
	 * has an HV_VP_SET in place of the mask, its banks in the variable
	 * header (TLFS 4.5.2-4.5.5).  The list forms' GVA ranges follow the
	 * headers, one per rep. */
	uint64_t hdr[4 + 64];
	unsigned words = ex ? 4 + CTL_VARHEAD(control) : 3;
	if (words > sizeof(hdr) / sizeof(hdr[0]))
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (control & CTL_FAST) {
		/* Two registers hold the address space and the flags only:
		 * a processor set needs XMM input, which vessel does not offer. */
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	}
	int st = read_input(vcpu, in, hdr, words * 8);
	if (st)
		return st;
	uint64_t flags = hdr[1], mask;
	if (flags & ~FLUSH_FLAGS_KNOWN)
		return HV_STATUS_INVALID_PARAMETER;
	if (flags & FLUSH_ALL_PROCESSORS)
		mask = ~0ull;
	else if (!ex)
		mask = hdr[2];
	else if ((st = vp_set_mask(hdr + 2, words - 2, &mask)) != 0)
		return st;
	/* The reps not yet done (TLFS 3.7.4: from the rep start index). */
	uint64_t gva[HV_FLUSH_RANGES_MAX];
	unsigned n_gva = 0;
	if (list) {
		unsigned first = CTL_REP_START(control);
		n_gva = CTL_REP_COUNT(control) - first;
		if (!n_gva)
			return 0;   /* no page left to flush */
		if (n_gva <= HV_FLUSH_RANGES_MAX &&
		    gmem_read(&vcpu->vm->mem, in + (uint64_t)(words + first) * 8, gva, n_gva * 8) < 0)
			return HV_STATUS_INVALID_PARAMETER;
	}
	struct vcpu_tlb_range r[HV_FLUSH_RANGES_MAX];
	int n = hv_flush_ranges(hdr[0], flags, list ? gva : NULL, n_gva, r);
	vcpu_flush_tlbs(vcpu, mask & present(vcpu), r, (unsigned)n);
	return 0;
}

static int send_ipi(struct vcpu *vcpu, uint64_t control, uint64_t in, uint64_t in2, bool ex)
{
	/* HV_SEND_IPI: vector (32 bits), reserved (32), processor mask; the
	 * Ex form an HV_VP_SET after vector and reserved. */
	uint64_t buf[3 + 64];
	uint64_t mask;
	uint32_t vector;
	int st;
	if (!ex) {
		if (control & CTL_FAST) {
			buf[0] = in;
			buf[1] = in2;
		} else if ((st = read_input(vcpu, in, buf, 16)) != 0) {
			return st;
		}
		mask = buf[1];
	} else {
		unsigned words = 3 + CTL_VARHEAD(control);
		if (words > sizeof(buf) / sizeof(buf[0]) || (control & CTL_FAST))
			return HV_STATUS_INVALID_HYPERCALL_INPUT;
		if ((st = read_input(vcpu, in, buf, words * 8)) != 0)
			return st;
		if ((st = vp_set_mask(buf + 1, words - 1, &mask)) != 0)
			return st;
	}
	vector = (uint32_t)buf[0];
	if (vector < IPI_LOW_VECTOR || vector > 0xff)
		return HV_STATUS_INVALID_PARAMETER;
	mask &= present(vcpu);
	struct vm *vm = vcpu->vm;
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned i = 0; i < vm->n_vcpus && i < 64; i++)
		if ((mask >> i & 1) && vm->vcpus[i] && vm->vcpus[i]->lapic)
			lapic_sint_raise(vm->vcpus[i]->lapic, (uint8_t)vector);
	pthread_mutex_unlock(&vm->dev_lock);
	return 0;
}

/* HvCallSignalEvent (TLFS 11.10.3): HV_INPUT_SIGNAL_EVENT is the
 * connection id (32 bits), the flag number (16) and 16 reserved bits,
 * in RDX for the fast form, else at an 8-byte aligned guest-physical
 * address.  The id's owner does the rest (hv_add_event_connections()). */
static int signal_event(struct vcpu *vcpu, bool fast, uint64_t in)
{
	uint64_t v = in;
	if (!fast) {
		if (in & 7)
			return HV_STATUS_INVALID_ALIGNMENT;
		if (gmem_read(&vcpu->vm->mem, in, &v, 8) < 0)
			return HV_STATUS_INVALID_PARAMETER;
	}
	unsigned flag = (unsigned)(v >> 32) & 0xffff;
	if (flag >= HV_MESSAGE_SIZE * 8)
		return HV_STATUS_INVALID_PARAMETER;
	pthread_mutex_lock(&vcpu->vm->dev_lock);
	int st = hv_signal_event(vcpu, (uint32_t)v, flag);
	pthread_mutex_unlock(&vcpu->vm->dev_lock);
	return st;
}

uint64_t hv_hypercall_run(struct vcpu *vcpu, const struct hv_hc_allow *allow, uint64_t control, uint64_t in,
			  uint64_t in2, enum hv_hc_kind *kind)
{
	bool rep = false, varhead = false;
	switch (CTL_CODE(control)) {
	case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE: *kind = HV_HC_FLUSH_SPACE; break;
	case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST: *kind = HV_HC_FLUSH_LIST; rep = true; break;
	case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX: *kind = HV_HC_FLUSH_SPACE_EX; varhead = true; break;
	case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX: *kind = HV_HC_FLUSH_LIST_EX; rep = varhead = true; break;
	case HVCALL_SEND_IPI: *kind = HV_HC_SEND_IPI; break;
	case HVCALL_SEND_IPI_EX: *kind = HV_HC_SEND_IPI_EX; varhead = true; break;
	case HVCALL_NOTIFY_LONG_SPIN_WAIT: *kind = HV_HC_LONG_SPIN_WAIT; break;
	case HVCALL_POST_MESSAGE: *kind = HV_HC_POST_MESSAGE; break;
	case HVCALL_SIGNAL_EVENT: *kind = HV_HC_SIGNAL_EVENT; break;
	default: *kind = HV_HC_OTHER; break;
	}
	bool offered = (*kind <= HV_HC_FLUSH_LIST_EX && allow->tlb_flush) ||
		       ((*kind == HV_HC_SEND_IPI || *kind == HV_HC_SEND_IPI_EX) && allow->ipi) ||
		       *kind == HV_HC_LONG_SPIN_WAIT ||
		       ((*kind == HV_HC_POST_MESSAGE || *kind == HV_HC_SIGNAL_EVENT) && allow->vmbus);
	if (!offered) {
		log_debug("hyperv", "cpu%u: hypercall %#x not offered", vcpu->id, CTL_CODE(control));
		return RESULT(HV_STATUS_INVALID_HYPERCALL_CODE, 0);
	}
	/* A simple call has no reps; only a variable-size call a header. */
	unsigned reps = CTL_REP_COUNT(control);
	if ((control & CTL_RESERVED) || (!rep && (reps || CTL_REP_START(control))) ||
	    (!varhead && CTL_VARHEAD(control)) || (rep && CTL_REP_START(control) > reps))
		return RESULT(HV_STATUS_INVALID_HYPERCALL_INPUT, 0);
	int st = 0;
	switch (*kind) {
	case HV_HC_FLUSH_SPACE:
	case HV_HC_FLUSH_LIST:
		st = flush(vcpu, control, in, false, *kind == HV_HC_FLUSH_LIST);
		break;
	case HV_HC_FLUSH_SPACE_EX:
	case HV_HC_FLUSH_LIST_EX:
		st = flush(vcpu, control, in, true, *kind == HV_HC_FLUSH_LIST_EX);
		break;
	case HV_HC_SEND_IPI:
	case HV_HC_SEND_IPI_EX:
		st = send_ipi(vcpu, control, in, in2, *kind == HV_HC_SEND_IPI_EX);
		break;
	case HV_HC_POST_MESSAGE:
		st = hv_vmbus_post_message(vcpu, control & CTL_FAST, in);
		break;
	case HV_HC_SIGNAL_EVENT:
		st = signal_event(vcpu, control & CTL_FAST, in);
		break;
	case HV_HC_LONG_SPIN_WAIT:
		/* The lock holder may be a vCPU this host thread keeps from
		 * running on a loaded host. */
		sched_yield();
		break;
	default:
		break;
	}
	/* A rep call that succeeded did every rep (the list is one flush). */
	return RESULT(st, st == 0 && rep ? reps : 0);
}
