/* Hyper-V synthetic timers (TLFS 12.6), four per vCPU.
 *
 * Time is reference time, 100 ns units, the count TIME_REF_COUNT and the
 * reference TSC page give (src/hv/hyperv.c).  A timer's expiration is
 * kept in reference time and armed on the VM clock through an anchor:
 * the reference time and VM-clock time of the vCPU's last timer MSR
 * access, where the guest's TSC was known.  Both clocks run at fixed
 * rates from the same source, so the anchor holds until the guest
 * rewrites its TSC, and the next access moves it.
 *
 * Semantics follow TLFS 12.6.2-12.6.4 (and what Linux's hyperv_timer.c
 * relies on):
 * - CONFIG: Enable (0), Periodic (1), Lazy (2), AutoEnable (3),
 *   ApicVector (11:4), DirectMode (12), SINTx (19:16); other bits are
 *   reserved (#GP).  In message mode SINTx 0 leaves the timer disabled.
 * - COUNT: a period in periodic mode, an absolute reference time in
 *   one-shot mode.  Writing 0 disables the timer; writing another value
 *   with AutoEnable set enables it.
 * - Expiry: direct mode raises ApicVector as an edge-triggered fixed
 *   interrupt (no SynIC needed: Linux uses it before VMBus exists);
 *   message mode posts HvMessageTypeTimerExpired to SINTx's slot.  When
 *   the slot and its one waiting place are both taken, the expiry waits
 *   and is retried when a slot comes free.  A one-shot timer disables
 *   itself once delivered; a periodic one re-arms, skipping periods the
 *   host missed rather than firing them back to back. */
#include "hv/stimer.h"

#include "hv/hyperv.h"
#include "hv/synic.h"
#include "hw/intc/lapic.h"
#include "util/log.h"
#include "machine/machine.h"
#include "machine/snap_state.h"
#include "machine/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CFG_ENABLE      (1ull << 0)
#define CFG_PERIODIC    (1ull << 1)
#define CFG_LAZY        (1ull << 2)
#define CFG_AUTO_ENABLE (1ull << 3)
#define CFG_VECTOR(c)   ((uint8_t)((c) >> 4))
#define CFG_DIRECT      (1ull << 12)
#define CFG_SINT(c)     ((unsigned)((c) >> 16) & 0xf)
#define CFG_WRITABLE    (0xfffull | CFG_DIRECT | (0xfull << 16))

struct hv_stimer {
	struct hv_stimers *owner;
	unsigned index;
	uint64_t config, count;
	uint64_t exp;          /* expiration, reference time */
	bool waiting;          /* expired, its message waits for a free slot */
	struct vm_timer timer;
};

struct hv_stimers {
	struct vcpu *vcpu;
	struct hv_synic *synic;
	struct timer_service *ts;
	uint64_t tsc_scale;
	uint64_t anchor_ref, anchor_ns;   /* reference time at VM-clock time */
	struct hv_stimer t[HV_STIMER_COUNT];
	struct hv_stimer_stats stats;
};

static uint64_t ref_now(const struct hv_stimers *st)
{
	uint64_t ns = vm_clock_ns(st->ts);
	return st->anchor_ref + (ns - st->anchor_ns) / 100;
}

static void stimer_arm(struct hv_stimer *t)
{
	struct hv_stimers *st = t->owner;
	uint64_t now = ref_now(st);
	uint64_t ns = vm_clock_ns(st->ts);
	timer_mod(&t->timer, t->exp > now ? ns + (t->exp - now) * 100 : ns);
}

/* Delivers the expiry: true when done (or impossible: dropped), false
 * when its message must wait for a slot. */
static bool stimer_deliver(struct hv_stimer *t)
{
	struct hv_stimers *st = t->owner;
	struct lapic *l = st->vcpu->lapic;
	if (t->config & CFG_DIRECT) {
		/* Vectors below 16 are no interrupts: the LAPIC flags them. */
		if (l)
			lapic_sint_raise(l, CFG_VECTOR(t->config));
		st->stats.direct++;
		return true;
	}
	/* HV_TIMER_MESSAGE_PAYLOAD (TLFS 12.6.4): timer index, reserved,
	 * expiration time, delivery time. */
	uint64_t payload[3] = { t->index, t->exp, ref_now(st) };
	int rc = st->synic ? hv_synic_post(st->synic, CFG_SINT(t->config), HV_MESSAGE_TIMER_EXPIRED, 0, payload,
					   sizeof(payload))
			   : -ENODEV;
	if (rc == -EAGAIN)
		return false;
	if (rc >= 0)
		st->stats.messages++;
	return true;   /* SynIC, page or SINT off: the expiry is lost, as on Hyper-V */
}

static void stimer_expire(struct hv_stimer *t)
{
	struct hv_stimers *st = t->owner;
	st->stats.expirations++;
	if (!stimer_deliver(t)) {
		t->waiting = true;
		return;
	}
	t->waiting = false;
	if (!(t->config & CFG_PERIODIC)) {
		t->config &= ~CFG_ENABLE;
		return;
	}
	uint64_t now = ref_now(st);
	t->exp += t->count;
	if (t->exp <= now)
		t->exp = now + t->count;
	stimer_arm(t);
}

static void stimer_timer_cb(void *opaque)
{
	stimer_expire(opaque);
}

static void stimer_stop(struct hv_stimer *t)
{
	timer_del(&t->timer);
	t->waiting = false;
}

/* After a CONFIG or COUNT write left the timer enabled. */
static void stimer_start(struct hv_stimer *t)
{
	uint64_t now = ref_now(t->owner);
	if (t->config & CFG_PERIODIC) {
		if (!t->count)
			return;
		t->exp = now + t->count;
		stimer_arm(t);
		return;
	}
	t->exp = t->count;
	if (t->exp <= now)
		stimer_expire(t);   /* already due: at once */
	else
		stimer_arm(t);
}

struct hv_stimers *hv_stimers_new(struct vcpu *vcpu, struct hv_synic *synic, uint64_t tsc_scale)
{
	if (!vcpu->lapic)
		return NULL;
	struct hv_stimers *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->vcpu = vcpu;
	st->synic = synic;
	st->ts = lapic_timer_service(vcpu->lapic);
	st->tsc_scale = tsc_scale;
	st->anchor_ns = vm_clock_ns(st->ts);
	for (unsigned i = 0; i < HV_STIMER_COUNT; i++) {
		st->t[i].owner = st;
		st->t[i].index = i;
		timer_init(&st->t[i].timer, st->ts, stimer_timer_cb, &st->t[i]);
	}
	return st;
}

void hv_stimers_free(struct hv_stimers *st)
{
	if (!st)
		return;
	/* A no-op once the clock is gone: it empties its armed list. */
	for (unsigned i = 0; i < HV_STIMER_COUNT; i++)
		timer_del(&st->t[i].timer);
	free(st);
}

int hv_stimers_msr(struct hv_stimers *st, uint32_t index, bool is_write, uint64_t *val, uint64_t tsc_now)
{
	if (index < HV_MSR_STIMER0_CONFIG || index > HV_MSR_STIMER3_COUNT)
		return -EINVAL;
	struct hv_stimer *t = &st->t[(index - HV_MSR_STIMER0_CONFIG) / 2];
	bool is_count = (index - HV_MSR_STIMER0_CONFIG) & 1;
	if (!is_write) {
		*val = is_count ? t->count : t->config;
		return 0;
	}
	st->anchor_ref = hv_ref_time(tsc_now, st->tsc_scale, 0);
	st->anchor_ns = vm_clock_ns(st->ts);
	uint64_t v = *val;
	if (is_count) {
		stimer_stop(t);
		t->count = v;
		if (!v)
			t->config &= ~CFG_ENABLE;
		else if (t->config & CFG_AUTO_ENABLE)
			t->config |= CFG_ENABLE;
	} else {
		if (v & ~CFG_WRITABLE)
			return -EINVAL;
		stimer_stop(t);
		/* Message mode needs a SINT: SINTx 0 does not enable. */
		if (!(v & CFG_DIRECT) && !CFG_SINT(v))
			v &= ~CFG_ENABLE;
		t->config = v;
	}
	if ((t->config & CFG_ENABLE) && t->count)
		stimer_start(t);
	return 0;
}

void hv_stimers_slot_freed(struct hv_stimers *st)
{
	for (unsigned i = 0; i < HV_STIMER_COUNT; i++) {
		struct hv_stimer *t = &st->t[i];
		if (t->waiting && (t->config & CFG_ENABLE)) {
			st->stats.retries++;
			st->stats.expirations--;   /* the same expiry, counted once */
			stimer_expire(t);
		}
	}
}

void hv_stimers_save(const struct hv_stimers *st, struct hw_snap_writer *w)
{
	hw_snap_u64(w, st->anchor_ref);
	hw_snap_u64(w, st->anchor_ns);
	for (unsigned i = 0; i < HV_STIMER_COUNT; i++) {
		const struct hv_stimer *t = &st->t[i];
		hw_snap_u64(w, t->config);
		hw_snap_u64(w, t->count);
		hw_snap_u64(w, t->exp);
		hw_snap_u8(w, t->waiting);
		hw_snap_timer(w, &t->timer);
	}
}

int hv_stimers_load(struct hv_stimers *st, struct hw_snap_reader *r, bool check_only)
{
	uint64_t anchor_ref = hw_snap_get_u64(r), anchor_ns = hw_snap_get_u64(r);
	uint64_t config[HV_STIMER_COUNT], count[HV_STIMER_COUNT], exp[HV_STIMER_COUNT];
	bool waiting[HV_STIMER_COUNT];
	struct hw_snap_timer_state timer[HV_STIMER_COUNT];
	for (unsigned i = 0; i < HV_STIMER_COUNT; i++) {
		config[i] = hw_snap_get_u64(r);
		count[i] = hw_snap_get_u64(r);
		exp[i] = hw_snap_get_u64(r);
		waiting[i] = hw_snap_get_bool(r);
		timer[i] = hw_snap_get_timer(r);
		if (config[i] & ~CFG_WRITABLE)
			return err_set(-EINVAL, "hyperv state: bad STIMER%u_CONFIG %#llx", i,
				       (unsigned long long)config[i]);
	}
	if (check_only)
		return 0;
	st->anchor_ref = anchor_ref;
	st->anchor_ns = anchor_ns;
	for (unsigned i = 0; i < HV_STIMER_COUNT; i++) {
		struct hv_stimer *t = &st->t[i];
		t->config = config[i];
		t->count = count[i];
		t->exp = exp[i];
		t->waiting = waiting[i];
		hw_snap_rearm(&t->timer, timer[i]);
	}
	return 0;
}

void hv_stimers_get_stats(const struct hv_stimers *st, struct hv_stimer_stats *out)
{
	*out = st->stats;
}
