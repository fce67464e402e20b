/* The machine layer (docs/architecture.md "Layers"): what engines and
 * devices see of a VM -- guest memory, the two buses, the vCPUs with their
 * events, the device lock, the interrupt and MSR hooks the board sets, and
 * the stop request.  Built and run by the VMM (src/vmm/vm.c); nothing here
 * knows the configuration, the lifecycle or plug-ins. */
#ifndef VESSEL_MACHINE_MACHINE_H
#define VESSEL_MACHINE_MACHINE_H

#include "machine/accel.h"
#include "machine/bus.h"
#include "machine/cpu_model.h"
#include "machine/memory.h"
#include "machine/vnuma.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>

struct hv_vm;
struct lapic;
struct platform;
struct vm_config;

#define MACHINE_MAX_CPUS 64

/* vcpu->events: requests from other threads, checked by the engine at
 * instruction-block boundaries (one relaxed load on the fast path). */
#define VCPU_EVT_INTR (1u << 0)  /* LAPIC/PIC may have a deliverable interrupt: call intc_ack() */
#define VCPU_EVT_NMI  (1u << 1)
#define VCPU_EVT_INIT (1u << 2)
#define VCPU_EVT_SIPI (1u << 3)
#define VCPU_EVT_KICK (1u << 4)  /* leave vcpu_run with VCPU_EXIT_KICK */
#define VCPU_EVT_TLB_FLUSH (1u << 5)  /* another vCPU asks: vcpu_tlb_flush_service() */

/* One translation range a remote flush drops (the Hyper-V flush
 * hypercalls, TLFS 4.5): pages [page, page + 4 KiB * count) of the
 * address space whose CR3 page is space, or of every address space
 * (VCPU_TLB_ALL_SPACES); count 0: all of that address space.
 * non_global: global translations may stay (they may go too). */
#define VCPU_TLB_ALL_SPACES (~0ull)
struct vcpu_tlb_range {
	uint64_t space;
	uint64_t page;
	uint32_t count;
	bool non_global;
};

/* The ranges asked of a vCPU and not yet served; past VCPU_TLB_QUEUE
 * ranges (or for vm_request_tlb_flush_all) it flushes everything. */
#define VCPU_TLB_QUEUE 32
struct vcpu_tlb_queue {
	_Atomic bool busy;               /* a spin lock: held for a copy only */
	bool all;
	unsigned n;
	struct vcpu_tlb_range r[VCPU_TLB_QUEUE];
};

enum vcpu_run_state {
	VCPU_WAIT_FOR_SIPI,      /* application processor after reset/INIT */
	VCPU_RUNNABLE,
	VCPU_HALTED,
	VCPU_STOPPED,
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	pthread_t thread;
	_Atomic int tid;                /* the thread's id, once it runs (numa status) */
	void *accel;                    /* engine's private state */
	struct lapic *lapic;            /* src/hw/intc/lapic.c */
	_Atomic uint32_t events;        /* VCPU_EVT_* */
	pthread_mutex_t lock;           /* guards run_state and the HLT wait */
	pthread_cond_t wake;
	enum vcpu_run_state run_state;
	uint8_t sipi_vector;
	/* A possible CPU that is not plugged in (docs/hotplug.md "CPUs"):
	 * its thread waits, and INIT and SIPI do not start it. */
	_Atomic bool absent;
	_Atomic uint64_t exit_counts[VCPU_EXIT_REASON_COUNT];
	/* Remote TLB flushes (vcpu_flush_tlbs): requests made and served,
	 * and whether the thread is inside the engine's vcpu_run (set by
	 * the run loop): outside it, no translation is in use, and the
	 * pending request is served before the next instruction. */
	_Atomic uint64_t tlb_flush_req, tlb_flush_done;
	_Atomic bool in_run;
	struct vcpu_tlb_queue tlb_queue;
};

enum vm_stop_reason {
	VM_STOP_NONE,
	VM_STOP_POWEROFF,    /* ACPI S5 or control API */
	VM_STOP_RESET,       /* guest reboot */
	VM_STOP_TRIPLE_FAULT,
	VM_STOP_DEBUG_EXIT,  /* isa-debug-exit port */
	VM_STOP_QUIT,        /* console escape or signal */
	VM_STOP_ERROR,       /* a vCPU or the run loop failed */
	VM_STOP_SUSPEND,     /* ACPI S3: the vCPUs stop, the machine stays (not final) */
	VM_STOP_HIBERNATE,   /* ACPI S4: off, the guest's image saved on its disk */
	VM_STOP_PANIC,       /* the guest panicked and --on-panic says poweroff */
	/* Set by vm_run (src/vmm) only: the machine never ran. */
	VM_STOP_BAD_INPUT,   /* a file or setting given is unusable */
	VM_STOP_START_FAILED, /* the host could not build the machine */
};

/* What ended an ACPI S3 sleep (docs/power.md "Wake sources"). */
enum vm_wake_reason {
	VM_WAKE_NONE,
	VM_WAKE_HOST,          /* control API: wakeup */
	VM_WAKE_POWER_BUTTON,
	VM_WAKE_SLEEP_BUTTON,
	VM_WAKE_ALARM,         /* the RTC alarm the guest programmed */
};

struct vm {
	const struct vm_config *cfg;    /* read by the VMM only (snapshots) */
	const struct accel_ops *accel;
	void *accel_state;
	struct guest_memory mem;
	struct bus pio, mmio;
	pthread_mutex_t dev_lock;       /* held around every device callback */
	unsigned n_vcpus;               /* the possible CPUs, present or not (vcpu->absent) */
	/* How many the VMM is creating (n_vcpus counts them as they come):
	 * an engine that fixes the topology at a vCPU's creation reads it;
	 * 0: n_vcpus. */
	unsigned planned_vcpus;
	struct vcpu *vcpus[MACHINE_MAX_CPUS];
	/* Some CPUs may come and go: the board describes them to the OS as
	 * hot-pluggable (ACPI processor hot-plug, docs/hotplug.md). */
	bool cpu_hotplug;
	struct platform *platform;      /* src/board/pc.c: the PC's devices */
	/* Virtual NUMA nodes (SRAT, SLIT, CPUID topology) and their host
	 * binding; n_nodes 0: none (docs/numa.md). */
	struct numa_config numa;
	struct hv_vm *hv;               /* src/hv: Hyper-V interface, NULL when off */
	struct cpu_model cpu_model;     /* --cpu: the CPUID flags removed (all zero: max) */
	/* --code-cache: bytes of decoded (and translated) guest code the
	 * engine keeps for the whole VM; 0: the engine's default. */
	uint64_t code_cache_bytes;
	/* Set by the platform: the highest-priority deliverable external
	 * interrupt of this vCPU (LAPIC, or the PIC through LINT0 in
	 * ExtINT mode), moved to in-service; -1 if none.  Engines call it
	 * when VCPU_EVT_INTR is set and the guest can take an interrupt. */
	int (*intr_ack)(struct vcpu *vcpu);
	/* Set by the platform: handles an MSR trap the engine does not model
	 * (x2APIC, TSC deadline); false if nobody claims the MSR. */
	bool (*handle_msr)(struct vcpu *vcpu, struct vcpu_exit *exit);
	/* Set by the platform: the route to a vCPU's LAPIC (vcpu->lapic) that
	 * the vcpu_apic_* calls of machine/accel.h take. */
	const struct vcpu_apic_ops *apic_ops;
	/* Set with the Hyper-V interface (src/hv): fills exit->hypercall.result. */
	void (*handle_hypercall)(struct vcpu *vcpu, struct vcpu_exit *exit);
	/* Set with the Hyper-V interface too, NULL when off: the CPUID leaves
	 * 0x40000000-0x4000000f and the synthetic MSRs it answers.  Engines
	 * reach src/hv only through these, as they reach the board. */
	bool (*hv_cpuid)(const struct vm *vm, unsigned n_cpus, uint32_t leaf, uint32_t out[4]);
	int (*hv_msr)(struct vcpu *vcpu, uint32_t index, bool is_write, uint64_t *val, uint64_t tsc_now);
	/* The MSRs hv_msr answers, for an engine that must ask to see them
	 * (KVM's MSR filter); set with hv_msr. */
	const struct msr_range *hv_msr_ranges;
	unsigned hv_n_msr_ranges;
	/* Set by the VMM, NULL in a machine built by hand: the guest reported
	 * a panic (Hyper-V CRASH_CTL, src/hv).  params are CRASH_P0-P4,
	 * message the guest's text ("" when it gave none).  Called on the
	 * reporting vCPU's thread inside src/hv's lock: it must neither wait
	 * for the vCPUs nor take the device lock. */
	void (*guest_panicked)(struct vcpu *vcpu, const uint64_t params[5], const char *message);
	void *panic_opaque;
	_Atomic int stop_reason;        /* enum vm_stop_reason, first writer wins */
	/* ACPI S3 (docs/power.md): set while the guest sleeps with its
	 * vCPUs stopped; wake_reason is the first wake source seen (enum
	 * vm_wake_reason), picked up by the VMM's run loop. */
	_Atomic bool suspended;
	_Atomic int wake_reason;
	int debug_exit_value;
	/* The compounding mechanisms that run (machine/compound.h), set by
	 * the VMM from --compound; 0 (all off) in a machine built by hand. */
	unsigned compound;
	/* The emu engine's code generation (--jit, docs/architecture.md
	 * "Code generation"): a block is translated to host code at its
	 * jit_hot-th run; 0 (a machine built by hand): never, the
	 * interpreter runs everything. */
	unsigned jit_hot;
};

/* Asks the VMM to wake a suspended machine; the first reason is kept.
 * Does nothing unless vm->suspended. */
void vm_request_wake(struct vm *vm, enum vm_wake_reason reason);

/* Drops the cached translations of the n ranges r (n 0: every
 * translation) of every vCPU whose id is set in mask (the Hyper-V flush
 * hypercalls): self's at once, the others' at their next instruction
 * boundary, and returns only when none of them can use an old
 * translation any more (each has flushed, or is outside its engine and
 * flushes before it runs again).  From self's own thread, without the
 * device lock. */
void vcpu_flush_tlbs(struct vcpu *self, uint64_t mask, const struct vcpu_tlb_range *r, unsigned n);
/* Asks every vCPU to drop its cached translations before it runs again,
 * without waiting: for a caller that holds them all out of their engine
 * (the vCPU gate), as memory removal does. */
void vm_request_tlb_flush_all(struct vm *vm);
/* Serves a pending VCPU_EVT_TLB_FLUSH through the engine's tlb_flush;
 * from the vCPU's own thread (the engine's run loop, at a boundary). */
void vcpu_tlb_flush_service(struct vcpu *vcpu);

/* Sets event bits and wakes the vCPU (from HLT, or out of vcpu_run). */
void vcpu_signal(struct vcpu *vcpu, uint32_t events);
/* Prints the registers, segments and control registers (triple fault,
 * errors); works on either engine. */
void vcpu_dump_state(struct vcpu *vcpu, FILE *out);
/* Puts the vCPU in the INIT/power-up state (SDM vol. 3A, 9.1.1). */
int vcpu_reset_state(struct vcpu *vcpu);
/* Asks every vCPU to stop; the first reason given is kept, except that a
 * pending reset gives way to a final stop (power-off, quit, error). */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason);

#endif
