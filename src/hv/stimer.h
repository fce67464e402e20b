/* Hyper-V synthetic timers (TLFS chapter 12.6): four per vCPU, each a
 * config and a count MSR, periodic or one-shot, expiring either as a
 * message through a SINT of the vCPU's SynIC or, in direct mode, as a
 * plain fixed interrupt of a vector.  src/hv/stimer.c.  Everything here
 * runs with the device lock held. */
#ifndef VESSEL_HV_STIMER_H
#define VESSEL_HV_STIMER_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct hv_synic;
struct hv_stimers;

#define HV_STIMER_COUNT 4
#define HV_MSR_STIMER0_CONFIG 0x400000b0u   /* CONFIG n at +2n, COUNT n at +2n+1 */
#define HV_MSR_STIMER3_COUNT  0x400000b7u
/* HvMessageTypeTimerExpired (TLFS 12.6.4). */
#define HV_MESSAGE_TIMER_EXPIRED 0x80000010u

struct hv_stimer_stats {
	uint64_t expirations, direct, messages, retries;
};

/* The vCPU's timers on its LAPIC's clock; messages go to synic.  NULL
 * when out of memory or the vCPU has no LAPIC. */
struct hv_stimers *hv_stimers_new(struct vcpu *vcpu, struct hv_synic *synic, uint64_t tsc_scale);
void hv_stimers_free(struct hv_stimers *st);
/* STIMERn_CONFIG/COUNT; tsc_now is the guest TSC of the access, which
 * anchors reference time to the VM clock.  0, or -EINVAL (#GP). */
int hv_stimers_msr(struct hv_stimers *st, uint32_t index, bool is_write, uint64_t *val, uint64_t tsc_now);
/* A message slot may have come free (EOM, EOI of a SINT): expirations
 * that waited for one are delivered now. */
void hv_stimers_slot_freed(struct hv_stimers *st);
/* Snapshot state: a fixed-size record of HV_STIMERS_SNAP_BYTES, the
 * deadlines in VM-clock time (which a restore continues).  Load checks
 * the registers as guest writes would: -EINVAL (err_set) changes nothing;
 * check_only changes nothing either way (st may be NULL). */
#define HV_STIMERS_SNAP_BYTES (2 * 8 + HV_STIMER_COUNT * (3 * 8 + 1 + 1 + 8))
struct hw_snap_writer;
struct hw_snap_reader;
void hv_stimers_save(const struct hv_stimers *st, struct hw_snap_writer *w);
int hv_stimers_load(struct hv_stimers *st, struct hw_snap_reader *r, bool check_only);
void hv_stimers_get_stats(const struct hv_stimers *st, struct hv_stimer_stats *out);

#endif
