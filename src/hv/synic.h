/* Hyper-V synthetic interrupt controller (TLFS chapter 11), one per vCPU;
 * src/hv/synic.c.  Everything here runs with the device lock held. */
#ifndef VESSEL_HV_SYNIC_H
#define VESSEL_HV_SYNIC_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct hv_synic;

#define HV_SINT_COUNT       16
#define HV_MESSAGE_SIZE     256   /* one slot of the message page (TLFS 11.9.3) */
#define HV_MESSAGE_PAYLOAD  240
#define HV_MESSAGE_NONE     0     /* HvMessageTypeNone: the slot is free */

#define HV_MSR_SCONTROL 0x40000080u
#define HV_MSR_SVERSION 0x40000081u
#define HV_MSR_SIEFP    0x40000082u
#define HV_MSR_SIMP     0x40000083u
#define HV_MSR_EOM      0x40000084u
#define HV_MSR_SINT0    0x40000090u

struct hv_synic_stats {
	uint64_t messages, queued, eoms, events, interrupts, auto_eoi;
};

/* Hooks the vCPU's LAPIC (AutoEOI, EOI); NULL when out of memory. */
struct hv_synic *hv_synic_new(struct vcpu *vcpu);
/* With the machine, after or with its LAPIC (the hook is not undone). */
void hv_synic_free(struct hv_synic *s);
/* SCONTROL, SVERSION, SIEFP, SIMP, EOM, SINT0-15: 0, or -EINVAL (#GP). */
int hv_synic_msr(struct hv_synic *s, uint32_t index, bool is_write, uint64_t *val);
/* Posts a message of type (not 0) with len (<= 240) payload bytes to the
 * SINT's slot (TLFS 11.9): 0 delivered and its interrupt raised; 1 the
 * slot is busy, the message waits and MessagePending is set, EOM (or an
 * EOI of the SINT's vector) delivers it; -EAGAIN one waits already;
 * -ENODEV the SynIC, its message page or the SINT is off/masked. */
int hv_synic_post(struct hv_synic *s, unsigned sint, uint32_t type, uint64_t origin, const void *payload,
		  unsigned len);
/* Sets event flag `flag` of the SINT (TLFS 11.8.4): 0 set and the
 * interrupt raised; 1 it was set already (no interrupt); -ENODEV off. */
int hv_synic_signal_event(struct hv_synic *s, unsigned sint, unsigned flag);
/* Raises the SINT's interrupt again, whatever its slot and flags hold:
 * for a machine woken from S3, whose LAPIC lost the interrupts pending
 * when it slept (a set event flag interrupts no more by itself). */
void hv_synic_kick(struct hv_synic *s, unsigned sint);
/* fn(opaque) runs after each EOM and each EOI of a SINT's vector, when a
 * slot may have come free (the synthetic timers' retry, src/hv/stimer.c). */
void hv_synic_set_slot_hook(struct hv_synic *s, void (*fn)(void *opaque), void *opaque);
/* Snapshot state (src/hv/hyperv.c's "hyperv" blob): a fixed-size record
 * of HV_SYNIC_SNAP_BYTES.  Load checks every register as a guest write
 * would and returns -EINVAL (err_set) on a bad one, changing nothing;
 * with check_only it changes nothing either way (s may be NULL). */
#define HV_SYNIC_SNAP_BYTES (3 * 8 + HV_SINT_COUNT * 8 + HV_SINT_COUNT * (1 + HV_MESSAGE_SIZE))
struct hw_snap_writer;
struct hw_snap_reader;
void hv_synic_save(const struct hv_synic *s, struct hw_snap_writer *w);
int hv_synic_load(struct hv_synic *s, struct hw_snap_reader *r, bool check_only);
void hv_synic_get_stats(const struct hv_synic *s, struct hv_synic_stats *out);

#endif
