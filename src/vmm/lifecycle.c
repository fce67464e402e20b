/* VM lifecycle state machine: one table of legal transitions. */
#include "vmm/lifecycle.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const state_names[VM_STATE_COUNT] = {
	[VM_STATE_INITIALIZING] = "initializing",
	[VM_STATE_POWERING_UP] = "powering-up",
	[VM_STATE_LOADING_STATE] = "loading-state",
	[VM_STATE_RUNNING] = "running",
	[VM_STATE_PAUSED] = "paused",
	[VM_STATE_SAVING_STATE] = "saving-state",
	[VM_STATE_POWERING_DOWN] = "powering-down",
	[VM_STATE_TEARING_DOWN] = "tearing-down",
	[VM_STATE_OFF] = "off",
	[VM_STATE_SUSPENDED] = "suspended",
};

#define S(x) (1u << VM_STATE_##x)

/* allowed[from]: the states reachable from `from` in one step.
 * - initializing: built, nothing run yet; boots or loads a snapshot, or
 *   is torn down if building failed.
 * - powering-up: firmware/kernel loading and vCPU reset; also entered
 *   again from running/paused on a reset (reboot).
 * - loading-state: restoring a snapshot; ends running or paused (a
 *   snapshot taken of a paused VM stays paused), or torn down on error.
 * - saving-state: vCPUs are stopped while writing; returns to running or
 *   paused as before.
 * - powering-down: the guest was asked (ACPI power button) and may still
 *   run; it goes on running if the guest ignores the request and the user
 *   cancels with resume, or is torn down.
 * - suspended: the guest entered ACPI S3 (docs/power.md); a wake source
 *   brings it back to running, a reset powers it up again, power-off or
 *   quit tears it down.
 * - tearing-down can only end off; off is final. */
static const unsigned allowed[VM_STATE_COUNT] = {
	[VM_STATE_INITIALIZING] = S(POWERING_UP) | S(LOADING_STATE) | S(TEARING_DOWN),
	[VM_STATE_POWERING_UP] = S(RUNNING) | S(PAUSED) | S(TEARING_DOWN),
	[VM_STATE_LOADING_STATE] = S(RUNNING) | S(PAUSED) | S(TEARING_DOWN),
	[VM_STATE_RUNNING] = S(PAUSED) | S(SAVING_STATE) | S(POWERING_DOWN) | S(POWERING_UP) | S(TEARING_DOWN) |
			     S(SUSPENDED),
	[VM_STATE_PAUSED] = S(RUNNING) | S(SAVING_STATE) | S(POWERING_DOWN) | S(POWERING_UP) | S(TEARING_DOWN),
	[VM_STATE_SAVING_STATE] = S(RUNNING) | S(PAUSED) | S(TEARING_DOWN),
	[VM_STATE_POWERING_DOWN] = S(RUNNING) | S(POWERING_UP) | S(TEARING_DOWN),
	[VM_STATE_TEARING_DOWN] = S(OFF),
	[VM_STATE_OFF] = 0,
	[VM_STATE_SUSPENDED] = S(RUNNING) | S(POWERING_UP) | S(POWERING_DOWN) | S(TEARING_DOWN),
};

const char *vm_state_name(enum vm_state s)
{
	return (unsigned)s < VM_STATE_COUNT ? state_names[s] : "?";
}

int vm_state_parse(const char *name, enum vm_state *out)
{
	for (unsigned i = 0; i < VM_STATE_COUNT; i++) {
		if (!strcmp(name, state_names[i])) {
			*out = (enum vm_state)i;
			return 0;
		}
	}
	return err_set(-EINVAL, "'%s' is not a VM state", name);
}

bool lifecycle_allowed(enum vm_state from, enum vm_state to)
{
	return (unsigned)from < VM_STATE_COUNT && (unsigned)to < VM_STATE_COUNT && (allowed[from] & (1u << to));
}

void lifecycle_init(struct lifecycle *lc)
{
	memset(lc, 0, sizeof(*lc));
	pthread_mutex_init(&lc->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lc->changed, &ca);
	pthread_condattr_destroy(&ca);
	lc->state = VM_STATE_INITIALIZING;
}

void lifecycle_destroy(struct lifecycle *lc)
{
	pthread_mutex_destroy(&lc->lock);
	pthread_cond_destroy(&lc->changed);
}

enum vm_state lifecycle_state(struct lifecycle *lc)
{
	pthread_mutex_lock(&lc->lock);
	enum vm_state s = lc->state;
	pthread_mutex_unlock(&lc->lock);
	return s;
}

unsigned long long lifecycle_transitions(struct lifecycle *lc)
{
	pthread_mutex_lock(&lc->lock);
	unsigned long long n = lc->transitions;
	pthread_mutex_unlock(&lc->lock);
	return n;
}

static int refuse(enum vm_state from, enum vm_state to)
{
	if ((unsigned)to >= VM_STATE_COUNT)
		return err_set(-EINVAL, "vm: %d is not a VM state", (int)to);
	if (!allowed[from])
		return err_set(-EPERM, "vm: cannot go from %s to %s: %s is final", state_names[from],
			       state_names[to], state_names[from]);
	char list[160] = "";
	for (unsigned i = 0; i < VM_STATE_COUNT; i++) {
		if (allowed[from] & (1u << i)) {
			size_t l = strlen(list);
			snprintf(list + l, sizeof(list) - l, "%s%s", l ? ", " : "", state_names[i]);
		}
	}
	return err_set(-EPERM, "vm: cannot go from %s to %s (from %s: %s)", state_names[from], state_names[to],
		       state_names[from], list);
}

static int transition_locked(struct lifecycle *lc, enum vm_state to, const char *reason)
{
	enum vm_state from = lc->state;
	if (!lifecycle_allowed(from, to)) {
		int rc = refuse(from, to);
		log_debug("vm", "refused: %s", err_msg());
		return rc;
	}
	lc->state = to;
	lc->transitions++;
	log_info("vm", "%s -> %s%s%s", state_names[from], state_names[to], reason ? ": " : "", reason ? reason : "");
	for (unsigned i = 0; i < LIFECYCLE_MAX_LISTENERS; i++)
		if (lc->listeners[i].fn)
			lc->listeners[i].fn(lc->listeners[i].opaque, from, to, reason);
	pthread_cond_broadcast(&lc->changed);
	return 0;
}

int lifecycle_transition(struct lifecycle *lc, enum vm_state to, const char *reason)
{
	pthread_mutex_lock(&lc->lock);
	int rc = transition_locked(lc, to, reason);
	pthread_mutex_unlock(&lc->lock);
	return rc;
}

int lifecycle_transition_from(struct lifecycle *lc, enum vm_state from, enum vm_state to, const char *reason)
{
	pthread_mutex_lock(&lc->lock);
	int rc;
	if (lc->state != from)
		rc = err_set(-EAGAIN, "vm: is %s, not %s", state_names[lc->state], vm_state_name(from));
	else
		rc = transition_locked(lc, to, reason);
	pthread_mutex_unlock(&lc->lock);
	return rc;
}

int lifecycle_subscribe(struct lifecycle *lc, lifecycle_listener_fn fn, void *opaque)
{
	int id = -ENOSPC;
	pthread_mutex_lock(&lc->lock);
	for (unsigned i = 0; i < LIFECYCLE_MAX_LISTENERS; i++) {
		if (!lc->listeners[i].fn) {
			lc->listeners[i].fn = fn;
			lc->listeners[i].opaque = opaque;
			id = (int)i;
			break;
		}
	}
	pthread_mutex_unlock(&lc->lock);
	if (id < 0)
		err_set(id, "vm: more than %d lifecycle subscribers", LIFECYCLE_MAX_LISTENERS);
	return id;
}

void lifecycle_unsubscribe(struct lifecycle *lc, int id)
{
	if (id < 0 || id >= LIFECYCLE_MAX_LISTENERS)
		return;
	pthread_mutex_lock(&lc->lock);
	lc->listeners[id].fn = NULL;
	lc->listeners[id].opaque = NULL;
	pthread_mutex_unlock(&lc->lock);
}

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int lifecycle_wait(struct lifecycle *lc, unsigned mask, int timeout_ms)
{
	struct timespec deadline;
	if (timeout_ms >= 0)
		deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&lc->lock);
	int rc = 0;
	while (!(mask & (1u << lc->state)) && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&lc->changed, &lc->lock);
		else
			rc = pthread_cond_timedwait(&lc->changed, &lc->lock, &deadline);
	}
	int out = (mask & (1u << lc->state)) ? (int)lc->state : -ETIMEDOUT;
	pthread_mutex_unlock(&lc->lock);
	return out;
}

/* ---- vCPU gate ---- */

void vcpu_gate_init(struct vcpu_gate *g, unsigned n_vcpus)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cond, &ca);
	pthread_condattr_destroy(&ca);
	g->n_members = n_vcpus;
}

void vcpu_gate_destroy(struct vcpu_gate *g)
{
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
}

bool vcpu_gate_checkpoint(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	bool parked = false;
	if (g->holds && !g->stopping) {
		parked = true;
		g->n_parked++;
		pthread_cond_broadcast(&g->cond);
		while (g->holds && !g->stopping)
			pthread_cond_wait(&g->cond, &g->lock);
		g->n_parked--;
	}
	pthread_mutex_unlock(&g->lock);
	return parked;
}

void vcpu_gate_leave(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->n_members)
		g->n_members--;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}


int vcpu_gate_hold(struct vcpu_gate *g, void (*kick)(void *opaque), void *opaque, int timeout_ms)
{
	struct timespec deadline;
	if (timeout_ms >= 0)
		deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&g->lock);
	g->holds++;
	pthread_mutex_unlock(&g->lock);
	/* Kick outside the lock: a kicked vCPU goes straight to its
	 * checkpoint, which takes it. */
	if (kick)
		kick(opaque);
	pthread_mutex_lock(&g->lock);
	int rc = 0;
	while (g->n_parked < g->n_members && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&g->cond, &g->lock);
		else
			rc = pthread_cond_timedwait(&g->cond, &g->lock, &deadline);
	}
	if (g->n_parked < g->n_members) {
		g->holds--;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		return err_set(-ETIMEDOUT, "vm: %u of %u vCPUs did not stop within %d ms", g->n_members - g->n_parked,
			       g->n_members, timeout_ms);
	}
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void vcpu_gate_release(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->holds)
		g->holds--;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void vcpu_gate_hold_nowait(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->holds++;
	pthread_mutex_unlock(&g->lock);
}

void vcpu_gate_stop(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void vcpu_gate_rejoin(struct vcpu_gate *g, unsigned n_vcpus)
{
	pthread_mutex_lock(&g->lock);
	g->n_members = n_vcpus;
	g->stopping = false;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

bool vcpu_gate_all_parked(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	bool all = g->holds && g->n_parked >= g->n_members;
	pthread_mutex_unlock(&g->lock);
	return all;
}

const char *lifecycle_reason_cause(const char *reason)
{
	if (!reason)
		return NULL;
	if (strstr(reason, "button"))
		return "button";
	if (!strncmp(reason, "guest:", 6))
		return "guest";
	if (!strcmp(reason, "wake: RTC alarm"))
		return "alarm";
	static const char *const host[] = { "control API:", "console:", "signal", "restore", "wake: control API", NULL };
	for (unsigned i = 0; host[i]; i++) {
		if (!strncmp(reason, host[i], strlen(host[i])))
			return "host";
	}
	return NULL;
}
