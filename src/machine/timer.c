/* VM clock and the per-VM timer thread (see timer.h for the locking). */
#include "machine/timer.h"

#include "machine/snap_state.h"
#include "util/error.h"
#include "util/hostcall.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct timer_service {
	pthread_mutex_t *lock;
	pthread_cond_t cond;        /* signalled when the earliest deadline moves or on stop */
	struct vm_timer *head;
	vm_clock_fn clock;
	void *clock_opaque;
	uint64_t base_ns;           /* host monotonic time at creation: VM clock 0 */
	uint64_t offset;            /* added to the clock: a restored VM's clock continues */
	pthread_t thread;
	bool running, stop;
	/* Compounding (docs/compounding.md "Timers"): the VM-clock time the
	 * thread sleeps until (UINT64_MAX: no deadline; 0: it is awake and
	 * will look at the list before it sleeps again).  A timer armed no
	 * earlier than that needs no wake-up: the thread looks at the list
	 * when it wakes anyway. */
	uint64_t sleep_until;
	bool coalesce;
};

static uint64_t host_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t default_clock(void *opaque)
{
	struct timer_service *ts = opaque;
	return host_monotonic_ns() - ts->base_ns;
}

struct timer_service *timer_service_new(pthread_mutex_t *lock)
{
	struct timer_service *ts = calloc(1, sizeof(*ts));
	if (!ts) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	/* Deadlines are VM-clock (monotonic) times: wait on the same clock. */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ts->cond, &attr);
	pthread_condattr_destroy(&attr);
	ts->lock = lock;
	ts->clock = default_clock;
	ts->clock_opaque = ts;
	/* Start at 1 s so that a zero deadline or timestamp is never "now". */
	ts->base_ns = host_monotonic_ns() - 1000000000ull;
	return ts;
}

void timer_service_set_clock(struct timer_service *ts, vm_clock_fn fn, void *opaque)
{
	ts->clock = fn ? fn : default_clock;
	ts->clock_opaque = fn ? opaque : ts;
}

uint64_t vm_clock_ns(struct timer_service *ts)
{
	return ts->clock(ts->clock_opaque) + ts->offset;
}

void timer_init(struct vm_timer *t, struct timer_service *ts, timer_cb cb, void *opaque)
{
	memset(t, 0, sizeof(*t));
	t->ts = ts;
	t->cb = cb;
	t->opaque = opaque;
}

static void list_remove(struct vm_timer *t)
{
	struct vm_timer **pp = &t->ts->head;
	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
	t->next = NULL;
	t->armed = false;
}

void timer_del(struct vm_timer *t)
{
	if (t->armed)
		list_remove(t);
}

void timer_mod(struct vm_timer *t, uint64_t deadline_ns)
{
	struct timer_service *ts = t->ts;
	timer_del(t);
	t->deadline = deadline_ns;
	t->armed = true;
	struct vm_timer **pp = &ts->head;
	while (*pp && (*pp)->deadline <= deadline_ns)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	/* A new earliest deadline: the thread must shorten its sleep, unless
	 * it wakes by then anyway (a guest that re-arms its timer later and
	 * later, as a tickless kernel does, costs no wake-up each time). */
	if (ts->head == t && ts->running) {
		compound_note(COMPOUND_TIMER_REARMS, 1);
		if (ts->coalesce && deadline_ns >= ts->sleep_until) {
			compound_note(COMPOUND_TIMER_WAKES_SAVED, 1);
			return;
		}
		host_call_note(HOST_CALL_WAKE);
		pthread_cond_signal(&ts->cond);
	}
}

void timer_service_set_coalesce(struct timer_service *ts, bool on)
{
	ts->coalesce = on;
}

uint64_t timer_service_next_deadline(struct timer_service *ts)
{
	return ts->head ? ts->head->deadline : UINT64_MAX;
}

unsigned timer_service_poll(struct timer_service *ts)
{
	unsigned fired = 0;
	/* Bounded so that a callback re-arming itself in the past cannot
	 * keep the thread here forever; the rest runs on the next pass. */
	for (unsigned budget = 1000; budget && ts->head; budget--) {
		uint64_t now = vm_clock_ns(ts);
		struct vm_timer *t = ts->head;
		if (t->deadline > now)
			break;
		list_remove(t);
		t->cb(t->opaque);
		fired++;
	}
	return fired;
}

static void *timer_thread(void *arg)
{
	struct timer_service *ts = arg;
	pthread_mutex_lock(ts->lock);
	while (!ts->stop) {
		timer_service_poll(ts);
		uint64_t next = timer_service_next_deadline(ts);
		if (next == UINT64_MAX) {
			ts->sleep_until = UINT64_MAX;
			pthread_cond_wait(&ts->cond, ts->lock);
			ts->sleep_until = 0;
			continue;
		}
		uint64_t now = vm_clock_ns(ts);
		if (next <= now)
			continue;
		uint64_t abs_ns = host_monotonic_ns() + (next - now);
		struct timespec until = { .tv_sec = (time_t)(abs_ns / 1000000000ull),
					  .tv_nsec = (long)(abs_ns % 1000000000ull) };
		ts->sleep_until = next;
		pthread_cond_timedwait(&ts->cond, ts->lock, &until);
		ts->sleep_until = 0;
	}
	pthread_mutex_unlock(ts->lock);
	return NULL;
}

int timer_service_start(struct timer_service *ts)
{
	if (ts->running)
		return 0;
	ts->stop = false;
	int rc = pthread_create(&ts->thread, NULL, timer_thread, ts);
	if (rc)
		return err_set(-rc, "cannot start the timer thread: %s", strerror(rc));
	ts->running = true;
	return 0;
}

void timer_service_free(struct timer_service *ts)
{
	if (!ts)
		return;
	if (ts->running) {
		pthread_mutex_lock(ts->lock);
		ts->stop = true;
		pthread_cond_signal(&ts->cond);
		pthread_mutex_unlock(ts->lock);
		pthread_join(ts->thread, NULL);
		ts->running = false;
	}
	while (ts->head)
		list_remove(ts->head);
	pthread_cond_destroy(&ts->cond);
	free(ts);
}

/* Snapshot state, version 1: the VM clock when saved.  Loading it sets the
 * offset so that the clock goes on from that value in the restoring
 * process; devices then re-arm their saved absolute deadlines unchanged,
 * and the guest sees no jump in the PM timer, HPET counter or RTC.  The
 * writer saves this blob first ("vm-clock" registers before any device),
 * so the reader loads it first. */
int64_t timer_service_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u64(&w, vm_clock_ns(opaque));
	return hw_snap_end(&w);
}

int timer_service_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct timer_service *ts = opaque;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "vm-clock", 1, 8);
	if (rc < 0)
		return rc;
	uint64_t saved = hw_snap_get_u64(&r);
	/* Unsigned wrap-around makes this right whichever clock is ahead. */
	ts->offset = saved - ts->clock(ts->clock_opaque);
	/* Timers armed on the old time base fire sooner or later now: wake
	 * the thread so that it recomputes its sleep. */
	if (ts->running) {
		ts->sleep_until = 0;
		pthread_cond_signal(&ts->cond);
	}
	return 0;
}
