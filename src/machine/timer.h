/* VM clock and device timers.
 *
 * The VM clock counts nanoseconds from the host's CLOCK_MONOTONIC (so it
 * keeps running while the host sleeps vCPUs in HLT).  A clock hook lets a
 * deterministic mode (virtual time from instruction counts) replace it
 * later; in that mode, or in unit tests, no thread runs and whoever
 * advances the clock calls timer_service_poll().
 *
 * Timers belong to devices.  One thread per VM sleeps until the earliest
 * deadline and runs expired callbacks with vm->dev_lock held, the same
 * lock every device callback runs under, so device state needs no lock of
 * its own.  timer_mod()/timer_del() must be called with vm->dev_lock held
 * (they are, from device callbacks). */
#ifndef VESSEL_MACHINE_TIMER_H
#define VESSEL_MACHINE_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timer_service;

typedef void (*timer_cb)(void *opaque);

struct vm_timer {
	struct timer_service *ts;
	timer_cb cb;
	void *opaque;
	uint64_t deadline;         /* VM-clock ns */
	bool armed;
	struct vm_timer *next;     /* armed list, sorted by deadline */
};

typedef uint64_t (*vm_clock_fn)(void *opaque);

/* lock is the VM's device lock; the service never frees it. */
struct timer_service *timer_service_new(pthread_mutex_t *lock);
/* Stops the thread (if started) and frees the service; armed timers are dropped. */
void timer_service_free(struct timer_service *ts);
/* Starts the timer thread; 0 or -errno with err_set(). */
int timer_service_start(struct timer_service *ts);
/* Compounding (docs/compounding.md "Timers"): on, arming a timer wakes
 * the thread only when the new deadline comes before the one it sleeps
 * to.  Off by default. */
void timer_service_set_coalesce(struct timer_service *ts, bool on);
/* Replaces the clock (deterministic mode, tests).  Call before start. */
void timer_service_set_clock(struct timer_service *ts, vm_clock_fn fn, void *opaque);
/* Runs every expired timer's callback; call with the lock held.  Returns
 * how many fired.  Used by the thread and by manual-clock owners. */
unsigned timer_service_poll(struct timer_service *ts);
/* Deadline of the earliest armed timer, UINT64_MAX if none (lock held). */
uint64_t timer_service_next_deadline(struct timer_service *ts);

uint64_t vm_clock_ns(struct timer_service *ts);

void timer_init(struct vm_timer *t, struct timer_service *ts, timer_cb cb, void *opaque);
/* Arms (or re-arms) t to fire at VM-clock time deadline_ns. */
void timer_mod(struct vm_timer *t, uint64_t deadline_ns);
void timer_del(struct vm_timer *t);
static inline bool timer_pending(const struct vm_timer *t) { return t->armed; }

/* a * b / c without intermediate overflow (c > 0). */
static inline uint64_t muldiv64(uint64_t a, uint64_t b, uint64_t c)
{
	return (uint64_t)((unsigned __int128)a * b / c);
}

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t timer_service_snapshot_save(void *opaque, void *buf, size_t cap);
int timer_service_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
