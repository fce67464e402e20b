/* The timer service: ordering, re-arming, and the real timer thread. */
#include "machine/timer.h"
#include "util/hostcall.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

struct rec {
	int order[8];
	int n;
	int id;
	struct vm_timer *rearm;
	uint64_t rearm_at;
};

struct cb_arg {
	struct rec *rec;
	int id;
};

static uint64_t fake_now;
static uint64_t fake_clock(void *o) { return fake_now; }

static void record(void *opaque)
{
	struct cb_arg *a = opaque;
	if (a->rec->n < 8)
		a->rec->order[a->rec->n++] = a->id;
	if (a->rec->rearm && a->id == 2) {
		struct vm_timer *t = a->rec->rearm;
		a->rec->rearm = NULL;
		timer_mod(t, a->rec->rearm_at);
	}
}

Test(timer_service, fires_in_deadline_order_and_rearms)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct timer_service *ts = timer_service_new(&lock);
	cr_assert(ts);
	timer_service_set_clock(ts, fake_clock, NULL);
	fake_now = 1000;
	struct rec rec = { 0 };
	struct cb_arg a1 = { &rec, 1 }, a2 = { &rec, 2 }, a3 = { &rec, 3 };
	struct vm_timer t1, t2, t3;
	timer_init(&t1, ts, record, &a1);
	timer_init(&t2, ts, record, &a2);
	timer_init(&t3, ts, record, &a3);
	timer_mod(&t1, 3000);
	timer_mod(&t2, 2000);
	timer_mod(&t3, 2500);
	timer_mod(&t3, 5000);                 /* re-arming moves it */
	cr_assert_eq(timer_service_next_deadline(ts), 2000);
	rec.rearm = &t2;
	rec.rearm_at = 4000;
	fake_now = 3500;
	cr_assert_eq(timer_service_poll(ts), 2);
	cr_assert_eq(rec.order[0], 2);
	cr_assert_eq(rec.order[1], 1);
	cr_assert(timer_pending(&t2), "re-armed from its own callback");
	timer_del(&t3);
	fake_now = 10000;
	cr_assert_eq(timer_service_poll(ts), 1);
	cr_assert_eq(rec.order[2], 2);
	cr_assert_eq(rec.n, 3, "deleted timer never fired");
	cr_assert_eq(timer_service_next_deadline(ts), UINT64_MAX);
	timer_service_free(ts);
}

struct thread_arg {
	pthread_mutex_t *lock;
	atomic_int fired;
	int lock_held;
};

static void on_thread_fire(void *opaque)
{
	struct thread_arg *a = opaque;
	/* The callback runs with the service's lock held. */
	a->lock_held = pthread_mutex_trylock(a->lock) != 0;
	if (!a->lock_held)
		pthread_mutex_unlock(a->lock);
	atomic_fetch_add(&a->fired, 1);
}

Test(timer_service, thread_runs_callbacks_under_the_lock)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct timer_service *ts = timer_service_new(&lock);
	cr_assert(ts);
	cr_assert_eq(timer_service_start(ts), 0);
	struct thread_arg arg = { .lock = &lock };
	struct vm_timer t;
	timer_init(&t, ts, on_thread_fire, &arg);
	pthread_mutex_lock(&lock);
	timer_mod(&t, vm_clock_ns(ts) + 1000000);   /* 1 ms */
	pthread_mutex_unlock(&lock);
	/* Wait (bounded) for the thread; this checks that it fires, not how fast. */
	for (int i = 0; i < 5000 && !atomic_load(&arg.fired); i++) {
		struct timespec d = { 0, 1000000 };
		nanosleep(&d, NULL);
	}
	cr_assert_eq(atomic_load(&arg.fired), 1);
	cr_assert(arg.lock_held);
	timer_service_free(ts);
}

/* Compounding (docs/compounding.md "Timers"): re-arming the earliest
 * timer for later than the thread sleeps to does not wake it; an earlier
 * deadline does, and every timer still fires. */
Test(timer_service, later_rearms_do_not_wake_the_thread)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct timer_service *ts = timer_service_new(&lock);
	cr_assert(ts);
	timer_service_set_coalesce(ts, true);
	cr_assert_eq(timer_service_start(ts), 0);
	struct thread_arg arg = { .lock = &lock };
	struct vm_timer t;
	timer_init(&t, ts, on_thread_fire, &arg);
	pthread_mutex_lock(&lock);
	timer_mod(&t, vm_clock_ns(ts) + 200000000);   /* 200 ms */
	pthread_mutex_unlock(&lock);
	/* Let the thread go to sleep until that deadline. */
	struct timespec d = { 0, 20000000 };
	nanosleep(&d, NULL);
	uint64_t saved0 = compound_total(COMPOUND_TIMER_WAKES_SAVED), wakes0 = host_call_total(HOST_CALL_WAKE);
	pthread_mutex_lock(&lock);
	for (int i = 1; i <= 100; i++)
		timer_mod(&t, vm_clock_ns(ts) + 200000000 + (uint64_t)i * 1000);   /* later and later */
	pthread_mutex_unlock(&lock);
	cr_assert_eq(compound_total(COMPOUND_TIMER_WAKES_SAVED) - saved0, 100);
	cr_assert_eq(host_call_total(HOST_CALL_WAKE) - wakes0, 0);
	pthread_mutex_lock(&lock);
	timer_mod(&t, vm_clock_ns(ts) + 1000000);   /* earlier: this one must wake it */
	pthread_mutex_unlock(&lock);
	cr_assert_eq(host_call_total(HOST_CALL_WAKE) - wakes0, 1);
	for (int i = 0; i < 5000 && !atomic_load(&arg.fired); i++) {
		struct timespec s = { 0, 1000000 };
		nanosleep(&s, NULL);
	}
	cr_assert_eq(atomic_load(&arg.fired), 1, "fired at the earlier deadline");
	timer_service_free(ts);
}
