/* Hyper-V hypercalls (TLFS chapter 3 for the calling convention; 4.5 and
 * 10.5 for the calls): src/hv/hypercall.c.  The entry, hv_hypercall(),
 * is in hyperv.h; this is what it runs. */
#ifndef VESSEL_HV_HYPERCALL_H
#define VESSEL_HV_HYPERCALL_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct vcpu_tlb_range;

/* Call codes (TLFS appendix A). */
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE    0x0002
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST     0x0003
#define HVCALL_NOTIFY_LONG_SPIN_WAIT          0x0008
#define HVCALL_SEND_IPI                       0x000b
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX 0x0013
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX  0x0014
#define HVCALL_SEND_IPI_EX                    0x0015
#define HVCALL_POST_MESSAGE                   0x005c
#define HVCALL_SIGNAL_EVENT                   0x005d

/* The calls vessel counts one by one (`vessel ctl stats`); the rest
 * fall under HV_HC_OTHER. */
enum hv_hc_kind {
	HV_HC_FLUSH_SPACE,
	HV_HC_FLUSH_LIST,
	HV_HC_FLUSH_SPACE_EX,
	HV_HC_FLUSH_LIST_EX,
	HV_HC_SEND_IPI,
	HV_HC_SEND_IPI_EX,
	HV_HC_LONG_SPIN_WAIT,
	HV_HC_POST_MESSAGE,
	HV_HC_SIGNAL_EVENT,
	HV_HC_OTHER,
	HV_HC_KIND_COUNT,
};

/* The TLFS name of a kind ("HvCallSendSyntheticClusterIpi"...). */
const char *hv_hypercall_name(enum hv_hc_kind kind);

/* Which calls the VM offers (its features). */
struct hv_hc_allow {
	bool tlb_flush, ipi, vmbus;
};

/* Runs the call described by the input value `control` (TLFS 3.7: code,
 * fast, variable header size, rep count and start) with the inputs in
 * in (a GPA, or the first fast register) and in2 (the second fast
 * register).  Returns the hypercall result value (status in 15:0, reps
 * completed in 43:32) and the kind it counted as in *kind. */
uint64_t hv_hypercall_run(struct vcpu *vcpu, const struct hv_hc_allow *allow, uint64_t control, uint64_t in,
			  uint64_t in2, enum hv_hc_kind *kind);

/* The ranges a flush call drops (TLFS 4.5): the address space `space`
 * (a CR3 value) with the call's flags, and for the List forms the n_gva
 * GVA ranges gva (a page, and the number of pages after it in the low
 * 12 bits); gva NULL: the whole address space.  A list too long to be
 * worth flushing page by page becomes the whole address space.  Fills
 * r (room for HV_FLUSH_RANGES_MAX) and returns how many it holds. */
#define HV_FLUSH_RANGES_MAX 8
int hv_flush_ranges(uint64_t space, uint64_t flags, const uint64_t *gva, unsigned n_gva,
		    struct vcpu_tlb_range *r);

#endif
