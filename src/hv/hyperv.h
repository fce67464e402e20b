/* Hyper-V enlightenments (Microsoft Hypervisor Top-Level Functional
 * Specification, TLFS v6.0b): the identity and feature CPUID leaves, the
 * synthetic MSRs and the hypercall entry, shared by the engines.
 * docs/hyperv.md describes what a guest sees. */
#ifndef VESSEL_HV_HYPERV_H
#define VESSEL_HV_HYPERV_H

#include "hv/hypercall.h"
#include "machine/accel.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct vcpu;

/* Features a user can switch off one by one (`--hyperv -NAME`), like
 * QEMU's hv-* flags.  The hypercall page and the VP index are the base
 * that Linux requires before it believes in Hyper-V at all, and are on
 * whenever the interface is. */
enum hv_feature {
	HV_FEAT_RELAXED,      /* 0x40000004 EAX bit 5: relaxed timing recommended */
	HV_FEAT_TIME,         /* reference counter MSR and reference TSC page */
	HV_FEAT_FREQUENCIES,  /* TSC and APIC frequency MSRs */
	HV_FEAT_CRASH,        /* crash MSRs P0-P4 and CRASH_CTL */
	HV_FEAT_RESET,        /* reset MSR */
	HV_FEAT_SYNIC,        /* synthetic interrupt controller (src/hv/synic.c) */
	HV_FEAT_STIMER,       /* synthetic timers, direct mode too (src/hv/stimer.c); needs time */
	HV_FEAT_TLBFLUSH,     /* remote TLB flush hypercalls recommended (src/hv/hypercall.c) */
	HV_FEAT_IPI,          /* synthetic cluster IPI hypercalls recommended */
	HV_FEAT_VMBUS,        /* VMBus and its integration services (src/hv/vmbus.c); needs synic */
	HV_FEAT_COUNT,
};

#define HV_FEATURES_ALL ((1u << HV_FEAT_COUNT) - 1)

/* Synthetic MSRs (TLFS appendix "Hypervisor Synthetic MSRs"). */
#define HV_MSR_GUEST_OS_ID      0x40000000u
#define HV_MSR_HYPERCALL        0x40000001u
#define HV_MSR_VP_INDEX         0x40000002u
#define HV_MSR_RESET            0x40000003u
#define HV_MSR_TIME_REF_COUNT   0x40000020u
#define HV_MSR_REFERENCE_TSC    0x40000021u
#define HV_MSR_TSC_FREQUENCY    0x40000022u
#define HV_MSR_APIC_FREQUENCY   0x40000023u
#define HV_MSR_VP_ASSIST_PAGE   0x40000073u
#define HV_MSR_CRASH_P0         0x40000100u
#define HV_MSR_CRASH_CTL        0x40000105u
/* vessel's own interface (docs/hyperv.md "Selective EOI"): CPUID
 * 0x40000101 EAX bit 0 announces the MSR; writing a vector EOIs it. */
#define VESSEL_CPUID_FEATURES       0x40000101u
#define VESSEL_FEAT_SELECTIVE_EOI   (1u << 0)
#define VESSEL_MSR_SELECTIVE_EOI    0x40000200u

/* Hypercall status codes (TLFS 3.8 / appendix). */
#define HV_STATUS_SUCCESS                 0
#define HV_STATUS_INVALID_HYPERCALL_CODE  2
#define HV_STATUS_INVALID_CONNECTION_ID   0x12

/* Parses a --hyperv value: "on", "off", or a comma-separated list of
 * feature names each optionally prefixed by '-' (off) or '+' (on),
 * starting from all features on.  *enabled says whether the interface is
 * presented at all.  0, or -EINVAL with err_set(). */
int hv_parse(const char *spec, bool *enabled, uint32_t *features);
/* Writes the feature names and what each does, one a line. */
void hv_list_features(FILE *out);
const char *hv_feature_name(enum hv_feature f);

/* Per-VM state, created with the machine when the interface is on.
 * tsc_hz: the guest TSC's rate; apic_hz: the LAPIC timer's input. */
struct hv_vm;
int hv_vm_create(struct vm *vm, uint32_t features, uint64_t tsc_hz, uint64_t apic_hz);
void hv_vm_destroy(struct vm *vm);

/* CPUID leaves 0x40000000-0x4000000f and vessel's feature leaf
 * 0x40000101 while the interface is on: returns
 * true when it filled out[]; false for other leaves, or when vm is NULL or
 * has no interface (the engine's own table answers). */
bool hv_cpuid(const struct vm *vm, unsigned n_cpus, uint32_t leaf, uint32_t out[4]);

/* A synthetic MSR access by vcpu, whose guest TSC read tsc_now.
 * 0: done; -EINVAL: the access raises #GP(0) (an MSR of the Hyper-V range
 * whose feature is off, a read-only register, a reserved bit); -ENOENT:
 * not a Hyper-V MSR or the interface is off (the engine goes on). */
int hv_msr(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val, uint64_t tsc_now);
/* The MSRs hv_msr() answers (for vm->hv_msr_ranges). */
#define HV_MSR_RANGES 2
extern const struct msr_range hv_msr_ranges[HV_MSR_RANGES];

/* Whether the VM's interface offers feature f (false when it is off). */
bool hv_has_feature(const struct vm *vm, enum hv_feature f);
/* The VM's VMBus host (src/hv/hv_vmbus.c), NULL without one. */
struct hv_vmbus_host;
struct hv_vmbus_host *hv_vm_vmbus(const struct vm *vm);
void hv_vm_set_vmbus(struct vm *vm, struct hv_vmbus_host *vb);

/* HvCallSignalEvent's connection ids (TLFS 11.8, 11.10.3).  vessel
 * creates no ports of its own: each id belongs to the device that
 * registered it (VMBus's channels, src/hv/hv_vmbus.c), and a signal to
 * an id nobody owns fails with HV_STATUS_INVALID_CONNECTION_ID.  The
 * owner's fn runs with the device lock held, with the calling vCPU and
 * the call's flag number (below 2048), and returns the hypercall status;
 * a port that targets a guest VP sets its flag with
 * hv_synic_signal_event().  Register ids [first, first + count) before
 * the vCPUs run: 0, or -EBUSY (taken, err_set), -ENOSPC. */
typedef int (*hv_event_fn)(void *opaque, struct vcpu *caller, uint32_t conn_id, unsigned flag);
int hv_add_event_connections(struct vm *vm, uint32_t first, uint32_t count, hv_event_fn fn, void *opaque);
/* HvCallSignalEvent to conn_id from caller (device lock held): the status. */
int hv_signal_event(struct vcpu *caller, uint32_t conn_id, unsigned flag);

/* The vCPU's SynIC, created on first use (its LAPIC hooked then); NULL
 * when the interface or its synic feature is off.  Device lock held. */
struct hv_synic *hv_vcpu_synic(struct vcpu *vcpu);

/* A hypercall (VMCALL from the hypercall page): fills hc->result. */
void hv_hypercall(struct vcpu *vcpu, struct vcpu_exit *exit);

/* The reference time (100 ns units) for a guest TSC value: the one
 * formula behind both the TIME_REF_COUNT MSR and the reference TSC page
 * (TLFS 12.7.3: ReferenceTime = ((VirtualTsc * TscScale) >> 64) + TscOffset). */
uint64_t hv_tsc_scale(uint64_t tsc_hz);
static inline uint64_t hv_ref_time(uint64_t tsc, uint64_t scale, int64_t offset)
{
	return (uint64_t)(((unsigned __int128)tsc * scale) >> 64) + (uint64_t)offset;
}

/* Snapshot state of the whole interface (docs/snapshot.md "Devices"),
 * registered as device "hyperv" after the LAPICs, opaque the vm: the
 * partition's registers, each vCPU's VP assist page, SynIC and timers.
 * Device lock held; load refuses a bad blob with -EINVAL (err_set). */
#define HV_SNAPSHOT_DEVICE "hyperv"
int64_t hv_snapshot_save(void *opaque, void *buf, size_t cap);
int hv_snapshot_load(void *opaque, const void *buf, size_t len);

/* For `vessel ctl status` and `stats`: false when the interface is off. */
struct hv_info {
	uint64_t guest_os_id;
	uint64_t hypercalls;
	uint64_t hypercalls_by[HV_HC_KIND_COUNT];   /* enum hv_hc_kind */
	uint64_t crashes;
	/* SynIC, all vCPUs: messages delivered, messages that waited for a
	 * busy slot, EOMs, event flags set, AutoEOI deliveries. */
	uint64_t messages, queued, eoms, events, auto_eoi;
	/* Synthetic timers, all vCPUs: expirations, of which direct-mode
	 * interrupts and messages. */
	uint64_t stimer_expirations, stimer_direct, stimer_messages;
};
bool hv_get_info(const struct vm *vm, struct hv_info *info);

#endif
