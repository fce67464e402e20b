/* VM lifecycle state machine (seed 2; docs/api.md "Lifecycle").
 *
 * A VM moves through initializing, powering-up (or loading-state when
 * restored), running and paused, suspended (ACPI S3), saving-state,
 * powering-down, tearing-down and off.  Every transition is checked against one table: an illegal
 * one is refused with a reason and changes nothing; a legal one is logged
 * and reported to every subscriber (the control API streams them as
 * events). */
#ifndef VESSEL_VMM_LIFECYCLE_H
#define VESSEL_VMM_LIFECYCLE_H

#include <pthread.h>
#include <stdbool.h>

enum vm_state {
	VM_STATE_INITIALIZING,
	VM_STATE_POWERING_UP,
	VM_STATE_LOADING_STATE,
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_SAVING_STATE,
	VM_STATE_POWERING_DOWN,
	VM_STATE_TEARING_DOWN,
	VM_STATE_OFF,
	VM_STATE_SUSPENDED,       /* guest in ACPI S3: vCPUs stopped, RAM kept */
	VM_STATE_COUNT,
};

#define LIFECYCLE_MAX_LISTENERS 16

/* Called with the lifecycle lock held, in transition order; must not
 * call lifecycle_transition() itself (post work to another thread). */
typedef void (*lifecycle_listener_fn)(void *opaque, enum vm_state from, enum vm_state to, const char *reason);

struct lifecycle {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum vm_state state;
	unsigned long long transitions;      /* count of legal transitions */
	struct {
		lifecycle_listener_fn fn;
		void *opaque;
	} listeners[LIFECYCLE_MAX_LISTENERS];
};

/* "running", "loading-state"...; "?" if out of range. */
const char *vm_state_name(enum vm_state s);
/* Name -> state; -EINVAL (err_set) if unknown. */
int vm_state_parse(const char *name, enum vm_state *out);
/* Whether the table allows from -> to. */
bool lifecycle_allowed(enum vm_state from, enum vm_state to);

void lifecycle_init(struct lifecycle *lc);    /* state: initializing */
void lifecycle_destroy(struct lifecycle *lc);
enum vm_state lifecycle_state(struct lifecycle *lc);
/* Count of legal transitions so far, read under the lock. */
unsigned long long lifecycle_transitions(struct lifecycle *lc);

/* Moves to `to`; reason (may be NULL) says why ("control API: pause",
 * "guest: ACPI S5").  -EPERM with err_set() naming both states and the
 * legal targets if the table forbids it; the state is then unchanged. */
int lifecycle_transition(struct lifecycle *lc, enum vm_state to, const char *reason);
/* As lifecycle_transition, but only if the current state is `from`
 * (-EAGAIN otherwise): for callers that must know what they leave. */
int lifecycle_transition_from(struct lifecycle *lc, enum vm_state from, enum vm_state to, const char *reason);

/* Who caused a transition, from its reason's form (docs/api.md
 * "Reasons"): "guest" (the guest's own act: "guest: ACPI S5"), "button"
 * (the guest answering a button, or a button waking it), "alarm" (the
 * RTC alarm woke it), "host" (the control API, the console, a signal, a
 * restore); NULL when the reason is NULL or unknown. */
const char *lifecycle_reason_cause(const char *reason);

/* Returns a subscription id >= 0, or -ENOSPC. */
int lifecycle_subscribe(struct lifecycle *lc, lifecycle_listener_fn fn, void *opaque);
void lifecycle_unsubscribe(struct lifecycle *lc, int id);

/* Blocks until the state is one in mask (1u << state) or timeout_ms
 * passes (-1: forever).  Returns the state reached, or -ETIMEDOUT. */
int lifecycle_wait(struct lifecycle *lc, unsigned mask, int timeout_ms);

/* ---- stopping the vCPUs for pause, save and device changes ----
 *
 * The vCPU threads stop at a safe point (between two vcpu_run() calls)
 * when the controller holds the gate: the API thread calls
 * vcpu_gate_hold() (which kicks every vCPU out of guest code and waits
 * until each is parked or gone), does its work -- pause, save, restore --
 * and vcpu_gate_release()s them.  A vCPU thread calls
 * vcpu_gate_checkpoint() at the top of its loop, and vcpu_gate_leave()
 * when it ends, so that a hold never waits for a thread that is gone. */
struct vcpu_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n_members;       /* vCPU threads that have not left */
	unsigned n_parked;
	unsigned holds;           /* nested holds (pause, then save) */
	bool stopping;            /* the machine stops: nobody parks any more */
};

void vcpu_gate_init(struct vcpu_gate *g, unsigned n_vcpus);
void vcpu_gate_destroy(struct vcpu_gate *g);
/* vCPU thread: parks while the gate is held; true if it parked. */
bool vcpu_gate_checkpoint(struct vcpu_gate *g);
/* vCPU thread: it ends and will not call checkpoint again. */
void vcpu_gate_leave(struct vcpu_gate *g);
/* Controller: holds the gate, calls kick(opaque) to get the vCPUs to their
 * checkpoints (vcpu_signal(VCPU_EVT_KICK) on each), and waits until all
 * are parked.  -ETIMEDOUT (and the hold is undone) if they are not within
 * timeout_ms (-1: wait forever). */
int vcpu_gate_hold(struct vcpu_gate *g, void (*kick)(void *opaque), void *opaque, int timeout_ms);
void vcpu_gate_release(struct vcpu_gate *g);
/* A hold that does not wait: the vCPUs park at their next checkpoint.
 * For a vCPU thread, which cannot wait for itself; released as any hold. */
void vcpu_gate_hold_nowait(struct vcpu_gate *g);
/* The machine stops (power-off, quit, a signal, an error): parked vCPUs
 * leave the gate and no vCPU parks again, held or not, so that a paused
 * machine can end.  A holder still waiting sees them leave. */
void vcpu_gate_stop(struct vcpu_gate *g);
/* The machine's vCPU threads start again after a suspend (ACPI S3): n
 * members, and the stop of vcpu_gate_stop() forgotten. */
void vcpu_gate_rejoin(struct vcpu_gate *g, unsigned n_vcpus);
/* Whether every vCPU is parked now (the gate is held). */
bool vcpu_gate_all_parked(struct vcpu_gate *g);

#endif
