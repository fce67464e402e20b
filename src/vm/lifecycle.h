/* VM lifecycle state machine (seed 2; docs/api.md "Lifecycle").
 *
 * A VM moves through initializing, powering-up (or loading-state when
 * restored), running and paused, saving-state, powering-down, tearing-down
 * and off.  Every transition is checked against one table: an illegal
 * one is refused with a reason and changes nothing; a legal one is logged
 * and reported to every subscriber (the control API streams them as
 * events). */
#ifndef VESSEL_VM_LIFECYCLE_H
#define VESSEL_VM_LIFECYCLE_H

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

/* Moves to `to`; reason (may be NULL) says why ("control API: pause",
 * "guest: ACPI S5").  -EPERM with err_set() naming both states and the
 * legal targets if the table forbids it; the state is then unchanged. */
int lifecycle_transition(struct lifecycle *lc, enum vm_state to, const char *reason);
/* As lifecycle_transition, but only if the current state is `from`
 * (-EAGAIN otherwise): for callers that must know what they leave. */
int lifecycle_transition_from(struct lifecycle *lc, enum vm_state from, enum vm_state to, const char *reason);

/* Returns a subscription id >= 0, or -ENOSPC. */
int lifecycle_subscribe(struct lifecycle *lc, lifecycle_listener_fn fn, void *opaque);
void lifecycle_unsubscribe(struct lifecycle *lc, int id);

/* Blocks until the state is one in mask (1u << state) or timeout_ms
 * passes (-1: forever).  Returns the state reached, or -ETIMEDOUT. */
int lifecycle_wait(struct lifecycle *lc, unsigned mask, int timeout_ms);

#endif
