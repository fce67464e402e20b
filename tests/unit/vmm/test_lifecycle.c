/* Lifecycle: every (from, to) pair against the documented transition list,
 * events to subscribers, refusals that change nothing. */
#include "util/error.h"
#include "vmm/lifecycle.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The legal transitions as docs/api.md lists them, written out by name
 * independently of the table in lifecycle.c. */
static const char *const legal[][2] = {
	{ "initializing", "powering-up" }, { "initializing", "loading-state" }, { "initializing", "tearing-down" },
	{ "powering-up", "running" }, { "powering-up", "paused" }, { "powering-up", "tearing-down" },
	{ "loading-state", "running" }, { "loading-state", "paused" }, { "loading-state", "tearing-down" },
	{ "running", "paused" }, { "running", "saving-state" }, { "running", "powering-down" },
	{ "running", "powering-up" }, { "running", "tearing-down" },
	{ "paused", "running" }, { "paused", "saving-state" }, { "paused", "powering-down" },
	{ "paused", "powering-up" }, { "paused", "tearing-down" },
	{ "saving-state", "running" }, { "saving-state", "paused" }, { "saving-state", "tearing-down" },
	{ "powering-down", "running" }, { "powering-down", "powering-up" }, { "powering-down", "tearing-down" },
	{ "tearing-down", "off" },
	/* ACPI S3 (docs/power.md): the guest suspends from running; a wake
	 * runs it again, a reset powers it up, power-off or quit end it. */
	{ "running", "suspended" }, { "suspended", "running" }, { "suspended", "powering-up" },
	{ "suspended", "powering-down" }, { "suspended", "tearing-down" },
};

static bool expected_legal(enum vm_state from, enum vm_state to)
{
	for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
		if (!strcmp(legal[i][0], vm_state_name(from)) && !strcmp(legal[i][1], vm_state_name(to)))
			return true;
	return false;
}

/* A shortest legal path from initializing to each state (BFS over the
 * expected list), to put a fresh lifecycle into any state. */
static int path_to(enum vm_state target, enum vm_state *path)
{
	int prev[VM_STATE_COUNT];
	for (int i = 0; i < VM_STATE_COUNT; i++)
		prev[i] = -2;
	enum vm_state queue[VM_STATE_COUNT];
	int head = 0, tail = 0;
	queue[tail++] = VM_STATE_INITIALIZING;
	prev[VM_STATE_INITIALIZING] = -1;
	while (head < tail) {
		enum vm_state s = queue[head++];
		for (int t = 0; t < VM_STATE_COUNT; t++)
			if (prev[t] == -2 && expected_legal(s, (enum vm_state)t)) {
				prev[t] = (int)s;
				queue[tail++] = (enum vm_state)t;
			}
	}
	cr_assert_neq(prev[target], -2, "%s unreachable", vm_state_name(target));
	int n = 0;
	for (int s = (int)target; s != VM_STATE_INITIALIZING; s = prev[s])
		path[n++] = (enum vm_state)s;
	for (int i = 0; i < n / 2; i++) {
		enum vm_state t = path[i];
		path[i] = path[n - 1 - i];
		path[n - 1 - i] = t;
	}
	return n;
}

struct recorder {
	int n;
	enum vm_state from[32], to[32];
	char reason[32][64];
};

static void record(void *opaque, enum vm_state from, enum vm_state to, const char *reason)
{
	struct recorder *r = opaque;
	if (r->n < 32) {
		r->from[r->n] = from;
		r->to[r->n] = to;
		snprintf(r->reason[r->n], sizeof(r->reason[0]), "%s", reason ? reason : "");
		r->n++;
	}
}

Test(lifecycle, names_round_trip)
{
	for (int s = 0; s < VM_STATE_COUNT; s++) {
		enum vm_state back;
		cr_assert_eq(vm_state_parse(vm_state_name((enum vm_state)s), &back), 0);
		cr_assert_eq(back, s);
	}
	enum vm_state x;
	cr_assert_eq(vm_state_parse("asleep", &x), -EINVAL);
	cr_assert_str_eq(vm_state_name(VM_STATE_COUNT), "?");
}

Test(lifecycle, every_pair_legal_or_refused)
{
	unsigned n_legal = 0;
	for (int from = 0; from < VM_STATE_COUNT; from++) {
		for (int to = 0; to < VM_STATE_COUNT; to++) {
			struct lifecycle lc;
			lifecycle_init(&lc);
			enum vm_state path[VM_STATE_COUNT];
			int n = path_to((enum vm_state)from, path);
			for (int i = 0; i < n; i++)
				cr_assert_eq(lifecycle_transition(&lc, path[i], "setup"), 0, "%s", err_msg());
			cr_assert_eq(lifecycle_state(&lc), (enum vm_state)from);
			struct recorder rec = { 0 };
			cr_assert_geq(lifecycle_subscribe(&lc, record, &rec), 0);
			err_clear();
			int rc = lifecycle_transition(&lc, (enum vm_state)to, "test");
			bool want = expected_legal((enum vm_state)from, (enum vm_state)to);
			cr_assert_eq(lifecycle_allowed((enum vm_state)from, (enum vm_state)to), want);
			if (want) {
				n_legal++;
				cr_assert_eq(rc, 0, "%s -> %s refused: %s", vm_state_name(from), vm_state_name(to), err_msg());
				cr_assert_eq(lifecycle_state(&lc), (enum vm_state)to);
				cr_assert_eq(rec.n, 1);
				cr_assert_eq(rec.from[0], (enum vm_state)from);
				cr_assert_eq(rec.to[0], (enum vm_state)to);
				cr_assert_str_eq(rec.reason[0], "test");
			} else {
				cr_assert_eq(rc, -EPERM, "%s -> %s allowed", vm_state_name(from), vm_state_name(to));
				cr_assert_eq(lifecycle_state(&lc), (enum vm_state)from, "refusal changed the state");
				cr_assert_eq(rec.n, 0, "refusal emitted an event");
				char want_prefix[96];
				snprintf(want_prefix, sizeof(want_prefix), "vm: cannot go from %s to %s", vm_state_name(from),
					 vm_state_name(to));
				cr_assert(!strncmp(err_msg(), want_prefix, strlen(want_prefix)), "%s", err_msg());
			}
			lifecycle_destroy(&lc);
		}
	}
	cr_assert_eq(n_legal, sizeof(legal) / sizeof(legal[0]));
}

Test(lifecycle, refusal_lists_the_legal_targets)
{
	struct lifecycle lc;
	lifecycle_init(&lc);
	cr_assert_eq(lifecycle_transition(&lc, VM_STATE_PAUSED, NULL), -EPERM);
	cr_assert_str_eq(err_msg(), "vm: cannot go from initializing to paused "
				    "(from initializing: powering-up, loading-state, tearing-down)");
	cr_assert_eq(lifecycle_transition(&lc, VM_STATE_TEARING_DOWN, NULL), 0);
	cr_assert_eq(lifecycle_transition(&lc, VM_STATE_OFF, NULL), 0);
	cr_assert_eq(lifecycle_transition(&lc, VM_STATE_RUNNING, NULL), -EPERM);
	cr_assert_str_eq(err_msg(), "vm: cannot go from off to running: off is final");
	cr_assert_eq(lifecycle_transition(&lc, VM_STATE_COUNT, NULL), -EINVAL);
	lifecycle_destroy(&lc);
}

Test(lifecycle, transition_from_checks_the_current_state)
{
	struct lifecycle lc;
	lifecycle_init(&lc);
	cr_assert_eq(lifecycle_transition_from(&lc, VM_STATE_RUNNING, VM_STATE_PAUSED, NULL), -EAGAIN);
	cr_assert_str_eq(err_msg(), "vm: is initializing, not running");
	cr_assert_eq(lifecycle_transition_from(&lc, VM_STATE_INITIALIZING, VM_STATE_POWERING_UP, NULL), 0);
	cr_assert_eq(lifecycle_state(&lc), VM_STATE_POWERING_UP);
	lifecycle_destroy(&lc);
}

Test(lifecycle, subscribers_see_every_transition_in_order_until_unsubscribed)
{
	struct lifecycle lc;
	lifecycle_init(&lc);
	struct recorder a = { 0 }, b = { 0 };
	int ida = lifecycle_subscribe(&lc, record, &a);
	int idb = lifecycle_subscribe(&lc, record, &b);
	cr_assert_neq(ida, idb);
	lifecycle_transition(&lc, VM_STATE_POWERING_UP, "boot");
	lifecycle_transition(&lc, VM_STATE_RUNNING, NULL);
	lifecycle_unsubscribe(&lc, ida);
	lifecycle_transition(&lc, VM_STATE_PAUSED, "api");
	cr_assert_eq(a.n, 2);
	cr_assert_eq(b.n, 3);
	cr_assert_eq(b.to[0], VM_STATE_POWERING_UP);
	cr_assert_str_eq(b.reason[0], "boot");
	cr_assert_eq(b.to[1], VM_STATE_RUNNING);
	cr_assert_eq(b.from[2], VM_STATE_RUNNING);
	cr_assert_eq(b.to[2], VM_STATE_PAUSED);
	cr_assert_eq(lc.transitions, 3);
	lifecycle_destroy(&lc);
}

Test(lifecycle, subscriber_slots_are_bounded)
{
	struct lifecycle lc;
	lifecycle_init(&lc);
	struct recorder r = { 0 };
	for (int i = 0; i < LIFECYCLE_MAX_LISTENERS; i++)
		cr_assert_geq(lifecycle_subscribe(&lc, record, &r), 0);
	cr_assert_eq(lifecycle_subscribe(&lc, record, &r), -ENOSPC);
	lifecycle_unsubscribe(&lc, 3);
	cr_assert_eq(lifecycle_subscribe(&lc, record, &r), 3);
	lifecycle_destroy(&lc);
}

static void *go_running(void *arg)
{
	struct lifecycle *lc = arg;
	usleep(1000);
	lifecycle_transition(lc, VM_STATE_POWERING_UP, NULL);
	lifecycle_transition(lc, VM_STATE_RUNNING, NULL);
	return NULL;
}

Test(lifecycle, wait_returns_the_state_reached)
{
	struct lifecycle lc;
	lifecycle_init(&lc);
	cr_assert_eq(lifecycle_wait(&lc, 1u << VM_STATE_RUNNING, 0), -ETIMEDOUT);
	pthread_t t;
	pthread_create(&t, NULL, go_running, &lc);
	cr_assert_eq(lifecycle_wait(&lc, 1u << VM_STATE_RUNNING | 1u << VM_STATE_OFF, -1), VM_STATE_RUNNING);
	pthread_join(t, NULL);
	lifecycle_destroy(&lc);
}

/* ---- vCPU gate: threads standing in for vCPU loops ---- */

#include <sched.h>
#include <stdatomic.h>

struct fake_vcpu {
	struct vcpu_gate *gate;
	atomic_bool kicked, stop, ignore_kicks, leave_now;
	atomic_ulong work;
	pthread_t thread;
};

static void *fake_vcpu_loop(void *arg)
{
	struct fake_vcpu *v = arg;
	while (!atomic_load(&v->stop)) {
		vcpu_gate_checkpoint(v->gate);
		if (atomic_load(&v->leave_now))
			break;
		/* "vcpu_run": guest work until kicked. */
		while (!atomic_load(&v->stop) && (!atomic_load(&v->kicked) || atomic_load(&v->ignore_kicks))) {
			atomic_fetch_add(&v->work, 1);
			sched_yield(); /* two cores shared by many */
		}
		atomic_store(&v->kicked, false);
	}
	vcpu_gate_leave(v->gate);
	return NULL;
}

#define N_FAKE 3
static struct fake_vcpu fakes[N_FAKE];

static void kick_all(void *opaque)
{
	for (int i = 0; i < N_FAKE; i++)
		atomic_store(&fakes[i].kicked, true);
}

static void start_fakes(struct vcpu_gate *g)
{
	vcpu_gate_init(g, N_FAKE);
	for (int i = 0; i < N_FAKE; i++) {
		memset(&fakes[i], 0, sizeof(fakes[i]));
		fakes[i].gate = g;
		pthread_create(&fakes[i].thread, NULL, fake_vcpu_loop, &fakes[i]);
	}
}

static void stop_fakes(struct vcpu_gate *g)
{
	for (int i = 0; i < N_FAKE; i++)
		atomic_store(&fakes[i].stop, true);
	vcpu_gate_release(g);
	for (int i = 0; i < N_FAKE; i++)
		pthread_join(fakes[i].thread, NULL);
	vcpu_gate_destroy(g);
}

Test(vcpu_gate, hold_parks_every_vcpu_until_release)
{
	struct vcpu_gate g;
	start_fakes(&g);
	cr_assert_eq(vcpu_gate_hold(&g, kick_all, NULL, -1), 0);
	cr_assert(vcpu_gate_all_parked(&g));
	unsigned long before[N_FAKE];
	for (int i = 0; i < N_FAKE; i++)
		before[i] = atomic_load(&fakes[i].work);
	usleep(2000);
	for (int i = 0; i < N_FAKE; i++)
		cr_assert_eq(atomic_load(&fakes[i].work), before[i], "vCPU %d ran while held", i);
	/* Nested: pause, then save inside it. */
	cr_assert_eq(vcpu_gate_hold(&g, kick_all, NULL, -1), 0);
	vcpu_gate_release(&g);
	cr_assert(vcpu_gate_all_parked(&g), "inner release let the vCPUs go");
	vcpu_gate_release(&g);
	cr_assert_not(vcpu_gate_all_parked(&g));
	/* They run again: wait for progress (no time limit asserted). */
	while (atomic_load(&fakes[0].work) == before[0])
		usleep(100);
	stop_fakes(&g);
}

Test(vcpu_gate, a_vcpu_that_never_stops_times_out_and_undoes_the_hold)
{
	struct vcpu_gate g;
	start_fakes(&g);
	atomic_store(&fakes[1].ignore_kicks, true);
	/* Once it has done work it is in its guest loop, which it now never
	 * leaves. */
	while (atomic_load(&fakes[1].work) == 0)
		usleep(100);
	cr_assert_eq(vcpu_gate_hold(&g, kick_all, NULL, 50), -ETIMEDOUT);
	/* At least the stuck one; the others may not have been scheduled yet
	 * on a loaded machine, which is no error of the gate. */
	unsigned stuck = 0;
	cr_assert_eq(sscanf(err_msg(), "vm: %u of 3 vCPUs did not stop within 50 ms", &stuck), 1, "%s", err_msg());
	cr_assert(stuck >= 1 && stuck <= 3, "%s", err_msg());
	cr_assert_not(vcpu_gate_all_parked(&g));
	atomic_store(&fakes[1].ignore_kicks, false);
	unsigned long w = atomic_load(&fakes[0].work);
	atomic_store(&fakes[0].kicked, true);
	while (atomic_load(&fakes[0].work) == w)
		usleep(100);
	stop_fakes(&g);
}

Test(vcpu_gate, threads_that_left_are_not_waited_for)
{
	struct vcpu_gate g;
	start_fakes(&g);
	atomic_store(&fakes[2].leave_now, true);
	atomic_store(&fakes[2].kicked, true);
	pthread_join(fakes[2].thread, NULL);
	cr_assert_eq(vcpu_gate_hold(&g, kick_all, NULL, -1), 0);
	cr_assert(vcpu_gate_all_parked(&g));
	vcpu_gate_release(&g);
	for (int i = 0; i < 2; i++)
		atomic_store(&fakes[i].stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(fakes[i].thread, NULL);
	vcpu_gate_destroy(&g);
}

/* A paused machine that must stop (a signal, Ctrl-A x): its vCPUs leave
 * the gate although the pause still holds it, and a vCPU that reaches its
 * checkpoint later does not park. */
Test(vcpu_gate, stop_lets_parked_vcpus_go_while_held, .timeout = 60)
{
	struct vcpu_gate g;
	start_fakes(&g);
	cr_assert_eq(vcpu_gate_hold(&g, kick_all, NULL, -1), 0);   /* pause */
	for (int i = 0; i < N_FAKE; i++)
		atomic_store(&fakes[i].stop, true);
	vcpu_gate_stop(&g);
	for (int i = 0; i < N_FAKE; i++)
		pthread_join(fakes[i].thread, NULL);   /* hangs without the stop */
	cr_assert_not(vcpu_gate_checkpoint(&g), "parked after the stop");
	vcpu_gate_release(&g);
	vcpu_gate_destroy(&g);
}

/* The cause the control API's state events carry, from the reasons the
 * VMM writes (docs/api.md "Reasons"). */
Test(lifecycle, reason_causes)
{
	static const char *const cases[][2] = {
		{ "guest: ACPI S5", "guest" }, { "guest: reboot", "guest" }, { "guest: ACPI S3", "guest" },
		{ "guest: triple fault", "guest" }, { "guest: ACPI S5 after the power button", "button" },
		{ "guest: ACPI S3 after the sleep button", "button" }, { "wake: power button", "button" },
		{ "wake: sleep button", "button" }, { "wake: RTC alarm", "alarm" }, { "wake: control API", "host" },
		{ "control API: poweroff", "host" }, { "control API: pause", "host" }, { "console: quit", "host" },
		{ "signal", "host" }, { "restore", "host" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *c = lifecycle_reason_cause(cases[i][0]);
		cr_assert(c && !strcmp(c, cases[i][1]), "%s: %s, expected %s", cases[i][0], c ? c : "NULL", cases[i][1]);
	}
	cr_assert_null(lifecycle_reason_cause(NULL));
	cr_assert_null(lifecycle_reason_cause("something else"));
}
