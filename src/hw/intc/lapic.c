/* Local APIC, xAPIC and x2APIC (SDM vol. 3A, chapter 10). */
#include "hw/intc/lapic.h"

#include "machine/x86.h"
#include "machine/bus.h"
#include "machine/timer.h"
#include "machine/snap_state.h"
#include "util/error.h"
#include "util/log.h"
#include "machine/machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Register offsets in the xAPIC page (SDM vol. 3A, table 10-1); the x2APIC
 * MSR is 0x800 + offset / 16 (table 10-6). */
enum {
	APIC_ID = 0x20, APIC_VER = 0x30, APIC_TPR = 0x80, APIC_APR = 0x90, APIC_PPR = 0xa0,
	APIC_EOI = 0xb0, APIC_RRD = 0xc0, APIC_LDR = 0xd0, APIC_DFR = 0xe0, APIC_SVR = 0xf0,
	APIC_ISR = 0x100, APIC_TMR = 0x180, APIC_IRR = 0x200, APIC_ESR = 0x280,
	APIC_LVT_CMCI = 0x2f0, APIC_ICR_LO = 0x300, APIC_ICR_HI = 0x310,
	APIC_LVT_TIMER = 0x320, APIC_LVT_THERMAL = 0x330, APIC_LVT_PERF = 0x340,
	APIC_LVT_LINT0 = 0x350, APIC_LVT_LINT1 = 0x360, APIC_LVT_ERROR = 0x370,
	APIC_TMICT = 0x380, APIC_TMCCT = 0x390, APIC_TDCR = 0x3e0, APIC_SELF_IPI = 0x3f0,
};

enum { LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_COUNT };

#define LVT_MASKED        (1u << 16)
#define LVT_LEVEL         (1u << 15)
#define LVT_REMOTE_IRR    (1u << 14)
#define LVT_TIMER_MODE(v) (((v) >> 17) & 3)
#define TIMER_ONESHOT  0
#define TIMER_PERIODIC 1
#define TIMER_DEADLINE 2

#define SVR_ENABLE         (1u << 8)
#define SVR_SUPPRESS_EOI   (1u << 12)

#define APIC_BASE_BSP  (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN   (1ull << 11)

/* ESR bits (SDM vol. 3A, 10.5.3). */
#define ESR_SEND_ILLEGAL   (1u << 5)
#define ESR_RECV_ILLEGAL   (1u << 6)
#define ESR_ILLEGAL_REG    (1u << 7)

/* Version 0x14 (integrated APIC), 7 LVT entries (max LVT 6), and bit 24:
 * EOI-broadcast suppression supported (directed EOI, 10.8.5). */
#define APIC_VERSION (0x14u | (6u << 16) | (1u << 24))

struct lapic {
	struct vcpu *vcpu;         /* the CPU it belongs to (its INTR, NMI, INIT and SIPI pins) */
	const struct apic_bus *bus;
	uint64_t apic_base;
	uint32_t id;               /* APIC ID (xAPIC reads id << 24) */
	uint32_t tpr, ldr, dfr, svr;
	uint32_t esr, esr_pending;
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[LVT_COUNT];
	uint32_t irr[8], isr[8], tmr[8];
	uint32_t tmict, tdcr;
	/* Timer (10.5.4): count-down state in VM-clock ns. */
	struct vm_timer timer;
	uint64_t timer_start;      /* when the current period began */
	uint64_t timer_period;     /* ns per period, 0 when stopped */
	uint64_t tsc_deadline;
	uint64_t tsc_hz;
	bool lint1_level;
	/* The processor is in wait-for-SIPI (after power-on or INIT, for an
	 * AP): only then is a SIPI taken, and only the first (SDM vol. 3A
	 * 10.6.1, "Start-Up"; Linux sends two). */
	bool wait_sipi;
	/* Synthetic interrupt sources of this CPU (lapic_set_sint_ops). */
	const struct lapic_sint_ops *sint_ops;
	void *sint_opaque;
};

static const uint32_t lvt_writable[LVT_COUNT] = {
	[LVT_CMCI] = 0x107ff, [LVT_TIMER] = 0x700ff, [LVT_THERMAL] = 0x107ff, [LVT_PERF] = 0x107ff,
	[LVT_LINT0] = 0x1a7ff, [LVT_LINT1] = 0x1a7ff, [LVT_ERROR] = 0x100ff,
};

static void lapic_update(struct lapic *l);
static void lapic_timer_fire(void *opaque);

/* ---- bit arrays ---- */

static inline void vec_set(uint32_t *a, uint8_t v) { a[v >> 5] |= 1u << (v & 31); }
static inline void vec_clear(uint32_t *a, uint8_t v) { a[v >> 5] &= ~(1u << (v & 31)); }
static inline bool vec_test(const uint32_t *a, uint8_t v) { return a[v >> 5] >> (v & 31) & 1; }

static int vec_highest(const uint32_t *a)
{
	for (int i = 7; i >= 0; i--)
		if (a[i])
			return i * 32 + 31 - __builtin_clz(a[i]);
	return -1;
}

bool lapic_test_irr(const struct lapic *l, uint8_t v) { return vec_test(l->irr, v); }
bool lapic_test_isr(const struct lapic *l, uint8_t v) { return vec_test(l->isr, v); }
bool lapic_test_tmr(const struct lapic *l, uint8_t v) { return vec_test(l->tmr, v); }

static bool hw_enabled(const struct lapic *l) { return l->apic_base & APIC_BASE_EN; }
static bool sw_enabled(const struct lapic *l) { return hw_enabled(l) && (l->svr & SVR_ENABLE); }
bool lapic_x2apic_mode(const struct lapic *l)
{
	return (l->apic_base & (APIC_BASE_EN | APIC_BASE_EXTD)) == (APIC_BASE_EN | APIC_BASE_EXTD);
}

/* PPR (10.8.3.1): the higher of TPR and the class of the highest in-service vector. */
static uint32_t lapic_ppr(const struct lapic *l)
{
	int isrv = vec_highest(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (l->tpr & 0xf0) >= isr_class ? l->tpr & 0xff : isr_class;
}

static int lapic_deliverable(const struct lapic *l)
{
	if (!sw_enabled(l))
		return -1;
	int v = vec_highest(l->irr);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (lapic_ppr(l) & 0xf0))
		return -1;
	return v;
}

bool lapic_has_interrupt(struct lapic *l) { return lapic_deliverable(l) >= 0; }

bool lapic_accepts_pic(struct lapic *l)
{
	if (!hw_enabled(l))
		return l->vcpu->id == 0;
	uint32_t lvt0 = l->lvt[LVT_LINT0];
	return !(lvt0 & LVT_MASKED) && ((lvt0 >> 8) & 7) == APIC_DM_EXTINT;
}

static void lapic_update(struct lapic *l)
{
	if (lapic_has_interrupt(l))
		vcpu_signal(l->vcpu, VCPU_EVT_INTR);
}

static void lapic_set_error(struct lapic *l, uint32_t bits);

/* Whether the BSP takes the 8259's INTR may have changed (LINT0, the
 * enable bit): the board looks again. */
static void lapic_pic_changed(struct lapic *l)
{
	if (l->bus->pic_changed)
		l->bus->pic_changed(l->bus->opaque);
}

/* A fixed or lowest-priority interrupt arrives (10.8.1). */
static void lapic_accept(struct lapic *l, uint8_t vector, bool level)
{
	if (!hw_enabled(l))
		return;
	if (vector < 16) {
		/* Vectors 0-15 are reserved: "received illegal vector" (10.5.3). */
		lapic_set_error(l, ESR_RECV_ILLEGAL);
		return;
	}
	vec_set(l->irr, vector);
	if (level)
		vec_set(l->tmr, vector);
	else
		vec_clear(l->tmr, vector);
	lapic_update(l);
}

static void lapic_set_error(struct lapic *l, uint32_t bits)
{
	l->esr_pending |= bits;
	uint32_t lvt = l->lvt[LVT_ERROR];
	if (!(lvt & LVT_MASKED) && (lvt & 0xff) >= 16)
		lapic_accept(l, lvt & 0xff, false);
}

/* A local interrupt through an LVT entry (10.5.1). */
static void lapic_local_irq(struct lapic *l, unsigned idx)
{
	uint32_t lvt = l->lvt[idx];
	if (!sw_enabled(l) || (lvt & LVT_MASKED))
		return;
	switch ((lvt >> 8) & 7) {
	case APIC_DM_FIXED:
		lapic_accept(l, lvt & 0xff, idx != LVT_TIMER && (lvt & LVT_LEVEL));
		break;
	case APIC_DM_NMI:
		vcpu_signal(l->vcpu, VCPU_EVT_NMI);
		break;
	case APIC_DM_EXTINT:
		vcpu_signal(l->vcpu, VCPU_EVT_INTR);
		break;
	default:
		break;
	}
}

void lapic_set_lint(struct lapic *l, unsigned lint, bool level)
{
	if (lint > 1)
		return;
	unsigned idx = lint ? LVT_LINT1 : LVT_LINT0;
	bool old = lint ? l->lint1_level : false;
	if (lint)
		l->lint1_level = level;
	/* Edge-triggered entries (and NMI, always edge) act on the rising edge;
	 * level-triggered fixed entries on the level (10.5.1). */
	if (level && (!old || (l->lvt[idx] & LVT_LEVEL)))
		lapic_local_irq(l, idx);
}

int lapic_ack(struct lapic *l)
{
	int v = lapic_deliverable(l);
	if (v < 0)
		return -1;
	vec_clear(l->irr, (uint8_t)v);
	/* An AutoEOI source's vector is delivered without entering the ISR,
	 * so the guest sends no EOI for it (TLFS 11.8.3). */
	if (l->sint_ops && l->sint_ops->auto_eoi && l->sint_ops->auto_eoi(l->sint_opaque, (uint8_t)v)) {
		lapic_update(l);
		return v;
	}
	vec_set(l->isr, (uint8_t)v);
	return v;
}

void lapic_set_sint_ops(struct lapic *l, const struct lapic_sint_ops *ops, void *opaque)
{
	l->sint_ops = ops;
	l->sint_opaque = opaque;
}

void lapic_sint_raise(struct lapic *l, uint8_t vector)
{
	lapic_accept(l, vector, false);
}

struct timer_service *lapic_timer_service(const struct lapic *l)
{
	return l->timer.ts;
}

static void lapic_eoi(struct lapic *l)
{
	int v = vec_highest(l->isr);
	if (v >= 0)
		lapic_eoi_vector(l, (uint8_t)v);
}

int lapic_eoi_vector(struct lapic *l, uint8_t v)
{
	if (!vec_test(l->isr, v))
		return -ENOENT;
	vec_clear(l->isr, v);
	/* Level-triggered: broadcast the EOI to the I/O APIC unless the guest
	 * asked for directed EOI (10.8.5). */
	if (vec_test(l->tmr, (uint8_t)v) && !(l->svr & SVR_SUPPRESS_EOI) && l->bus->eoi)
		l->bus->eoi(l->bus->opaque, (uint8_t)v);
	if (l->sint_ops && l->sint_ops->eoi)
		l->sint_ops->eoi(l->sint_opaque, (uint8_t)v);
	/* PPR follows the highest vector still in service (10.8.3.1). */
	lapic_update(l);
	if (l->vcpu->id == 0)
		lapic_pic_changed(l);
	return 0;
}

/* ---- timer (10.5.4) ---- */

static uint64_t timer_divisor(const struct lapic *l)
{
	unsigned v = (l->tdcr & 3) | ((l->tdcr & 8) >> 1);
	return 1ull << ((v + 1) & 7);
}

static uint64_t lapic_now(const struct lapic *l) { return vm_clock_ns(l->timer.ts); }

static void lapic_timer_stop(struct lapic *l)
{
	timer_del(&l->timer);
	l->timer_period = 0;
}

static void lapic_timer_start(struct lapic *l)
{
	lapic_timer_stop(l);
	if (!l->tmict || LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_DEADLINE)
		return;
	uint64_t ticks = (uint64_t)l->tmict * timer_divisor(l);
	l->timer_period = muldiv64(ticks, 1000000000ull, LAPIC_TIMER_HZ);
	if (!l->timer_period)
		l->timer_period = 1;
	l->timer_start = lapic_now(l);
	timer_mod(&l->timer, l->timer_start + l->timer_period);
}

static uint32_t lapic_timer_current(struct lapic *l)
{
	if (!l->timer_period || LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_DEADLINE)
		return 0;
	uint64_t now = lapic_now(l);
	uint64_t elapsed = now > l->timer_start ? now - l->timer_start : 0;
	uint64_t ticks = muldiv64(elapsed, LAPIC_TIMER_HZ, 1000000000ull) / timer_divisor(l);
	if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_PERIODIC)
		return l->tmict - (uint32_t)(ticks % l->tmict);
	return ticks >= l->tmict ? 0 : l->tmict - (uint32_t)ticks;
}

static uint64_t tsc_to_ns(const struct lapic *l, uint64_t tsc)
{
	return muldiv64(tsc, 1000000000ull, l->tsc_hz);
}

static void lapic_timer_fire(void *opaque)
{
	struct lapic *l = opaque;
	unsigned mode = LVT_TIMER_MODE(l->lvt[LVT_TIMER]);
	if (mode == TIMER_DEADLINE) {
		if (!l->tsc_deadline)
			return;
		l->tsc_deadline = 0;
	} else if (mode == TIMER_PERIODIC && l->timer_period) {
		uint64_t now = lapic_now(l);
		l->timer_start += l->timer_period;
		/* Far behind (host stalled): skip the lost periods instead of
		 * firing them back to back. */
		if (now > l->timer_start + l->timer_period)
			l->timer_start = now - (now - l->timer_start) % l->timer_period;
		timer_mod(&l->timer, l->timer_start + l->timer_period);
	} else {
		l->timer_period = 0;   /* one-shot done: current count reads 0 */
	}
	lapic_local_irq(l, LVT_TIMER);
}

/* Arms TSC-deadline mode for deadline, the TSC being tsc_now at this moment. */
static void lapic_set_deadline_at(struct lapic *l, uint64_t tsc, uint64_t tsc_now)
{
	if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) != TIMER_DEADLINE)
		return;   /* writes are ignored outside TSC-deadline mode (10.5.4.1) */
	timer_del(&l->timer);
	l->tsc_deadline = tsc;
	if (!tsc)
		return;
	if (tsc <= tsc_now) {
		lapic_timer_fire(l);
		return;
	}
	timer_mod(&l->timer, lapic_now(l) + tsc_to_ns(l, tsc - tsc_now));
}

static void lapic_set_deadline(struct lapic *l, uint64_t tsc)
{
	lapic_set_deadline_at(l, tsc, muldiv64(lapic_now(l), l->tsc_hz, 1000000000ull));
}

/* ---- register interface ---- */

static void lapic_update_x2apic_ldr(struct lapic *l)
{
	/* 10.12.10.2: cluster = ID[31:4], bit ID[3:0] within the cluster. */
	l->ldr = ((l->id >> 4) << 16) | (1u << (l->id & 15));
}

void lapic_reset(struct lapic *l, bool init)
{
	lapic_timer_stop(l);
	if (!init) {
		l->apic_base = LAPIC_DEFAULT_BASE | APIC_BASE_EN | (l->vcpu->id == 0 ? APIC_BASE_BSP : 0);
		l->id = l->vcpu->id;
	}
	l->wait_sipi = l->vcpu->id != 0;
	l->tpr = 0;
	l->ldr = 0;
	l->dfr = 0xffffffff;
	l->svr = 0xff;
	l->esr = l->esr_pending = 0;
	l->icr_lo = l->icr_hi = 0;
	for (unsigned i = 0; i < LVT_COUNT; i++)
		l->lvt[i] = LVT_MASKED;
	/* Like a BIOS leaving virtual-wire mode (MP spec 3.6.2.2): the BSP's
	 * LINT0 takes the 8259 as ExtINT and LINT1 is NMI, so a guest booted
	 * without firmware gets PIC interrupts before it programs its APIC. */
	if (!init && l->vcpu->id == 0) {
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
		l->lvt[LVT_LINT1] = APIC_DM_NMI << 8;
	}
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->tmict = 0;
	l->tdcr = 0;
	l->tsc_deadline = 0;
	if (lapic_x2apic_mode(l))
		lapic_update_x2apic_ldr(l);
}

struct lapic *lapic_new(struct vcpu *vcpu, struct timer_service *ts, const struct apic_bus *bus)
{
	struct lapic *l = calloc(1, sizeof(*l));
	if (!l) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	l->vcpu = vcpu;
	l->bus = bus;
	l->tsc_hz = LAPIC_DEFAULT_TSC_HZ;
	timer_init(&l->timer, ts, lapic_timer_fire, l);
	lapic_reset(l, false);
	return l;
}

void lapic_free(struct lapic *l)
{
	if (!l)
		return;
	timer_del(&l->timer);
	free(l);
}

uint32_t lapic_reg_read(struct lapic *l, unsigned off)
{
	off &= 0xff0;
	if (off >= APIC_ISR && off < APIC_ISR + 0x80)
		return l->isr[(off - APIC_ISR) >> 4];
	if (off >= APIC_TMR && off < APIC_TMR + 0x80)
		return l->tmr[(off - APIC_TMR) >> 4];
	if (off >= APIC_IRR && off < APIC_IRR + 0x80)
		return l->irr[(off - APIC_IRR) >> 4];
	switch (off) {
	case APIC_ID: return lapic_x2apic_mode(l) ? l->id : l->id << 24;
	case APIC_VER: return APIC_VERSION;
	case APIC_TPR: return l->tpr;
	case APIC_APR: return 0;
	case APIC_PPR: return lapic_ppr(l);
	case APIC_LDR: return l->ldr;
	case APIC_DFR: return lapic_x2apic_mode(l) ? 0 : l->dfr;
	case APIC_SVR: return l->svr;
	case APIC_ESR: return l->esr;
	case APIC_ICR_LO: return l->icr_lo & ~(1u << 12);   /* delivery status: always idle */
	case APIC_ICR_HI: return l->icr_hi;
	case APIC_LVT_CMCI: return l->lvt[LVT_CMCI];
	case APIC_LVT_TIMER: return l->lvt[LVT_TIMER];
	case APIC_LVT_THERMAL: return l->lvt[LVT_THERMAL];
	case APIC_LVT_PERF: return l->lvt[LVT_PERF];
	case APIC_LVT_LINT0: return l->lvt[LVT_LINT0];
	case APIC_LVT_LINT1: return l->lvt[LVT_LINT1];
	case APIC_LVT_ERROR: return l->lvt[LVT_ERROR];
	case APIC_TMICT: return l->tmict;
	case APIC_TMCCT: return lapic_timer_current(l);
	case APIC_TDCR: return l->tdcr;
	default: return 0;
	}
}

static bool lapic_match_dest(struct lapic *l, const struct apic_msg *m)
{
	if (lapic_x2apic_mode(l)) {
		if (!m->dest_logical)
			return m->dest == 0xffffffff || m->dest == l->id;
		if (m->dest == 0xffffffff)
			return true;
		/* 10.12.10.2: same cluster and a common bit. */
		return (m->dest >> 16) == (l->ldr >> 16) && (m->dest & l->ldr & 0xffff);
	}
	uint8_t dest = (uint8_t)m->dest;
	if (!m->dest_logical)
		return dest == 0xff || dest == (uint8_t)l->id;
	if (dest == 0xff)
		return true;
	uint8_t ldr = (uint8_t)(l->ldr >> 24);
	if ((l->dfr >> 28) == 0xf)
		return ldr & dest;   /* flat model (10.6.2.2) */
	/* Cluster model: cluster address in the upper nibble, members below. */
	return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0x0f);
}

static void lapic_deliver_one(struct lapic *l, const struct apic_msg *m)
{
	struct vcpu *v = l->vcpu;
	switch (m->delivery) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		lapic_accept(l, m->vector, m->level_trig);
		break;
	case APIC_DM_NMI:
		vcpu_signal(v, VCPU_EVT_NMI);
		break;
	case APIC_DM_INIT:
		/* The INIT level de-assert message only synchronises arbitration IDs. */
		if (m->level_trig && !m->assert)
			break;
		lapic_reset(l, true);
		vcpu_signal(v, VCPU_EVT_INIT);
		break;
	case APIC_DM_SIPI:
		if (!l->wait_sipi)
			break;   /* already started: the repeated SIPI is ignored */
		l->wait_sipi = false;
		v->sipi_vector = m->vector;
		vcpu_signal(v, VCPU_EVT_SIPI);
		break;
	case APIC_DM_EXTINT:
		vcpu_signal(v, VCPU_EVT_INTR);
		break;
	default:   /* SMI: no SMM */
		break;
	}
}

void apic_deliver(struct lapic *const *lapics, unsigned n, const struct apic_msg *m, struct lapic *src)
{
	struct lapic *lowest = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct lapic *l = lapics[i];
		if (!l)
			continue;
		bool match;
		switch (m->shorthand) {
		case 1: match = l == src; break;
		case 2: match = true; break;
		case 3: match = l != src; break;
		default: match = lapic_match_dest(l, m); break;
		}
		if (!match)
			continue;
		if (m->delivery == APIC_DM_LOWEST && m->shorthand == 0) {
			/* Lowest priority (10.6.2.4): the enabled target with the lowest TPR. */
			if (sw_enabled(l) && (!lowest || (l->tpr & 0xf0) < (lowest->tpr & 0xf0)))
				lowest = l;
			continue;
		}
		lapic_deliver_one(l, m);
	}
	if (lowest)
		lapic_deliver_one(lowest, m);
}

void apic_deliver_msi(const struct apic_bus *bus, uint64_t addr, uint32_t data)
{
	if ((addr & 0xfff00000ull) != 0xfee00000ull)
		return;
	struct apic_msg m = {
		.dest = (uint32_t)((addr >> 12) & 0xff),
		.dest_logical = (addr >> 2) & 1,
		.vector = data & 0xff,
		.delivery = (data >> 8) & 7,
		.level_trig = (data >> 15) & 1,
		.assert = true,
	};
	bus->deliver(bus->opaque, &m, NULL);
}

static void lapic_send_ipi(struct lapic *l)
{
	struct apic_msg m = {
		.vector = l->icr_lo & 0xff,
		.delivery = (l->icr_lo >> 8) & 7,
		.dest_logical = (l->icr_lo >> 11) & 1,
		.assert = (l->icr_lo >> 14) & 1,
		.level_trig = (l->icr_lo >> 15) & 1,
		.shorthand = (l->icr_lo >> 18) & 3,
		.dest = lapic_x2apic_mode(l) ? l->icr_hi : l->icr_hi >> 24,
	};
	if ((m.delivery == APIC_DM_FIXED || m.delivery == APIC_DM_LOWEST) && m.vector < 16) {
		lapic_set_error(l, ESR_SEND_ILLEGAL);
		return;
	}
	l->bus->deliver(l->bus->opaque, &m, l);
}

static void lapic_write_lvt(struct lapic *l, unsigned idx, uint32_t val)
{
	uint32_t old = l->lvt[idx];
	val &= lvt_writable[idx];
	if (idx == LVT_TIMER && LVT_TIMER_MODE(val) == 3)
		val &= ~(3u << 17);   /* reserved mode: treat as one-shot */
	if (!(l->svr & SVR_ENABLE))
		val |= LVT_MASKED;   /* software-disabled: masks stay set (10.4.7.2) */
	l->lvt[idx] = val | (old & LVT_REMOTE_IRR);
	if (idx == LVT_TIMER && LVT_TIMER_MODE(old) != LVT_TIMER_MODE(val)) {
		/* A mode switch disarms the timer (10.5.4.1). */
		lapic_timer_stop(l);
		l->tmict = 0;
		l->tsc_deadline = 0;
	}
	if (idx == LVT_LINT0 && l->vcpu->id == 0)
		lapic_pic_changed(l);
}

int lapic_reg_write(struct lapic *l, unsigned off, uint32_t val)
{
	bool x2 = lapic_x2apic_mode(l);
	switch (off) {
	case APIC_ID:
		if (x2)
			return -EINVAL;
		l->id = val >> 24;
		break;
	case APIC_TPR:
		l->tpr = val & 0xff;
		lapic_update(l);
		if (l->vcpu->id == 0)
			lapic_pic_changed(l);
		break;
	case APIC_EOI:
		if (x2 && val)
			return -EINVAL;
		lapic_eoi(l);
		break;
	case APIC_LDR:
		if (x2)
			return -EINVAL;
		l->ldr = val & 0xff000000;
		break;
	case APIC_DFR:
		if (x2)
			return -EINVAL;
		l->dfr = val | 0x0fffffff;
		break;
	case APIC_SVR: {
		uint32_t mask = 0x1ff | ((APIC_VERSION >> 24) & 1 ? SVR_SUPPRESS_EOI : 0);
		l->svr = val & mask;
		if (!(l->svr & SVR_ENABLE)) {
			for (unsigned i = 0; i < LVT_COUNT; i++)
				l->lvt[i] |= LVT_MASKED;
		}
		lapic_update(l);
		if (l->vcpu->id == 0)
			lapic_pic_changed(l);
		break;
	}
	case APIC_ESR:
		if (x2 && val)
			return -EINVAL;
		/* A write latches the errors seen since the last write (10.5.3). */
		l->esr = l->esr_pending;
		l->esr_pending = 0;
		break;
	case APIC_ICR_LO:
		l->icr_lo = val & 0x000cdfff;
		lapic_send_ipi(l);
		break;
	case APIC_ICR_HI:
		if (x2)
			return -EINVAL;
		l->icr_hi = val & 0xff000000;
		break;
	case APIC_LVT_CMCI: lapic_write_lvt(l, LVT_CMCI, val); break;
	case APIC_LVT_TIMER: lapic_write_lvt(l, LVT_TIMER, val); break;
	case APIC_LVT_THERMAL: lapic_write_lvt(l, LVT_THERMAL, val); break;
	case APIC_LVT_PERF: lapic_write_lvt(l, LVT_PERF, val); break;
	case APIC_LVT_LINT0: lapic_write_lvt(l, LVT_LINT0, val); break;
	case APIC_LVT_LINT1: lapic_write_lvt(l, LVT_LINT1, val); break;
	case APIC_LVT_ERROR: lapic_write_lvt(l, LVT_ERROR, val); break;
	case APIC_TMICT:
		if (LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_DEADLINE)
			break;   /* ignored in TSC-deadline mode */
		l->tmict = val;
		lapic_timer_start(l);
		break;
	case APIC_TDCR:
		l->tdcr = val & 0xb;
		break;
	case APIC_SELF_IPI:
		if (!x2)
			return 0;
		if ((val & 0xff) < 16) {
			lapic_set_error(l, ESR_SEND_ILLEGAL);
			break;
		}
		lapic_accept(l, val & 0xff, false);
		break;
	case APIC_VER: case APIC_PPR: case APIC_APR: case APIC_RRD: case APIC_TMCCT:
		if (x2)
			return -EINVAL;   /* read-only */
		break;
	default:
		if (off >= APIC_ISR && off < APIC_IRR + 0x80) {
			if (x2)
				return -EINVAL;
			break;
		}
		if (x2)
			return -EINVAL;
		lapic_set_error(l, ESR_ILLEGAL_REG);
		break;
	}
	return 0;
}

/* ---- xAPIC MMIO ---- */

/* Each CPU sees its own APIC in the shared page (10.4.1); an access that
 * comes from no vCPU (a debugger, a test) sees the BSP's, the range's
 * opaque. */
static struct lapic *lapic_of_caller(void *bsp, struct vcpu *vcpu)
{
	return vcpu && vcpu->lapic ? vcpu->lapic : bsp;
}

static uint64_t lapic_mmio_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct lapic *l = lapic_of_caller(opaque, vcpu);
	if (!l || lapic_x2apic_mode(l) || !hw_enabled(l))
		return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
	uint32_t v = lapic_reg_read(l, (unsigned)off & 0xff0);
	unsigned shift = (off & 3) * 8;
	return (v >> shift) & (size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1);
}

static void lapic_mmio_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct lapic *l = lapic_of_caller(opaque, vcpu);
	if (!l || lapic_x2apic_mode(l) || !hw_enabled(l))
		return;
	/* Registers are 32 bits wide at 16-byte strides; other accesses are
	 * undefined (10.4.1): drop them. */
	if (size < 4 || (off & 0xf))
		return;
	lapic_reg_write(l, (unsigned)off, (uint32_t)val);
}

static const struct bus_ops lapic_mmio_ops = { lapic_mmio_read, lapic_mmio_write };

int lapic_mmio_register(struct bus *mmio, uint64_t base, struct lapic *bsp)
{
	return bus_register(mmio, base, 0x1000, &lapic_mmio_ops, bsp, "lapic");
}

/* ---- MSR and CR8 hooks ---- */

static int lapic_base_write(struct lapic *l, uint64_t val)
{
	/* Reserved bits (SDM vol. 4, IA32_APIC_BASE): 0-7, 9, and above 52 bits. */
	if (val & (0xffull | (1ull << 9) | ~((1ull << 52) - 1)))
		return -EINVAL;
	uint64_t old = l->apic_base;
	bool en = val & APIC_BASE_EN, extd = val & APIC_BASE_EXTD;
	bool old_x2 = lapic_x2apic_mode(l);
	/* Invalid transitions (10.12.5, figure 10-27). */
	if (!en && extd)
		return -EINVAL;
	if (old_x2 && en && !extd)
		return -EINVAL;
	if (!(old & APIC_BASE_EN) && en && extd)
		return -EINVAL;
	/* The BSP flag is read-only. */
	l->apic_base = (val & ~APIC_BASE_BSP) | (old & APIC_BASE_BSP);
	if (!en) {
		lapic_reset(l, true);
		l->apic_base = (val & ~APIC_BASE_BSP) | (old & APIC_BASE_BSP);
	} else if (extd && !old_x2) {
		l->id = l->vcpu->id;
		lapic_update_x2apic_ldr(l);
	}
	if (l->vcpu->id == 0)
		lapic_pic_changed(l);
	return 0;
}

static int lapic_msr_read_locked(struct lapic *l, uint32_t msr, uint64_t *val)
{
	if (msr == MSR_IA32_APIC_BASE) {
		*val = l->apic_base;
		return 0;
	}
	if (msr == MSR_IA32_TSC_DEADLINE) {
		*val = LVT_TIMER_MODE(l->lvt[LVT_TIMER]) == TIMER_DEADLINE ? l->tsc_deadline : 0;
		return 0;
	}
	if (msr < 0x800 || msr > 0x8ff)
		return -ENOENT;
	if (!lapic_x2apic_mode(l))
		return -EINVAL;
	unsigned off = (msr - 0x800) << 4;
	switch (off) {
	case APIC_EOI: case APIC_SELF_IPI: case APIC_DFR: case APIC_ICR_HI: case APIC_RRD: case APIC_APR:
		return -EINVAL;   /* write-only or absent in x2APIC mode (table 10-6) */
	case APIC_ICR_LO:
		*val = ((uint64_t)l->icr_hi << 32) | l->icr_lo;
		return 0;
	default:
		break;
	}
	bool valid = (off >= APIC_ISR && off < APIC_IRR + 0x80) || off == APIC_ID || off == APIC_VER ||
		     off == APIC_TPR || off == APIC_PPR || off == APIC_LDR || off == APIC_SVR ||
		     off == APIC_ESR || off == APIC_LVT_CMCI ||
		     (off >= APIC_LVT_TIMER && off <= APIC_TMCCT) || off == APIC_TDCR;
	if (!valid)
		return -EINVAL;
	*val = lapic_reg_read(l, off);
	return 0;
}

static int lapic_msr_write_locked(struct lapic *l, uint32_t msr, uint64_t val)
{
	if (msr == MSR_IA32_APIC_BASE)
		return lapic_base_write(l, val);
	if (msr == MSR_IA32_TSC_DEADLINE) {
		lapic_set_deadline(l, val);
		return 0;
	}
	if (msr < 0x800 || msr > 0x8ff)
		return -ENOENT;
	if (!lapic_x2apic_mode(l))
		return -EINVAL;
	unsigned off = (msr - 0x800) << 4;
	if (off == APIC_ICR_LO) {
		/* One 64-bit write sends the IPI (10.12.9). */
		l->icr_hi = (uint32_t)(val >> 32);
		l->icr_lo = (uint32_t)val & 0x000cdfff;
		lapic_send_ipi(l);
		return 0;
	}
	if (val >> 32)
		return -EINVAL;
	/* SELF IPI: only the vector (bits 7:0); a reserved bit set is #GP
	 * (SDM vol. 3A 10.12.11). */
	if (off == APIC_SELF_IPI && (val & ~0xffull))
		return -EINVAL;
	bool valid = off == APIC_TPR || off == APIC_EOI || off == APIC_SVR || off == APIC_ESR ||
		     off == APIC_LVT_CMCI || (off >= APIC_LVT_TIMER && off <= APIC_TMICT) ||
		     off == APIC_TDCR || off == APIC_SELF_IPI;
	if (!valid)
		return -EINVAL;
	return lapic_reg_write(l, off, (uint32_t)val);
}

/* The route from a CPU to its local APIC (machine/accel.h), one for every
 * engine, installed by the board as vm->apic_ops.  Each takes the device
 * lock (recursive, so a caller may hold it already). */

static void lapic_lock(struct lapic *l)
{
	if (l->bus->lock)
		pthread_mutex_lock(l->bus->lock);
}

static void lapic_unlock(struct lapic *l)
{
	if (l->bus->lock)
		pthread_mutex_unlock(l->bus->lock);
}

static int lapic_route_msr(struct vcpu *vcpu, uint32_t msr, bool is_write, uint64_t *val)
{
	struct lapic *l = vcpu->lapic;
	if (!l)
		return -ENOENT;
	lapic_lock(l);
	int rc = is_write ? lapic_msr_write_locked(l, msr, *val) : lapic_msr_read_locked(l, msr, val);
	lapic_unlock(l);
	return rc;
}

/* CR8 is TPR[7:4] (SDM vol. 3A, 10.8.6.1). */
static int lapic_route_get_cr8(struct vcpu *vcpu, uint64_t *cr8)
{
	struct lapic *l = vcpu->lapic;
	if (!l)
		return -ENOENT;
	lapic_lock(l);
	*cr8 = (l->tpr >> 4) & 0xf;
	lapic_unlock(l);
	return 0;
}

static int lapic_route_set_cr8(struct vcpu *vcpu, uint64_t cr8)
{
	struct lapic *l = vcpu->lapic;
	if (!l)
		return -ENOENT;
	lapic_lock(l);
	lapic_reg_write(l, APIC_TPR, (uint32_t)(cr8 & 0xf) << 4);
	lapic_unlock(l);
	return 0;
}

static int lapic_route_set_tsc_deadline(struct vcpu *vcpu, uint64_t deadline, uint64_t tsc_now)
{
	struct lapic *l = vcpu->lapic;
	if (!l)
		return -ENOENT;
	lapic_lock(l);
	lapic_set_deadline_at(l, deadline, tsc_now);
	lapic_unlock(l);
	return 0;
}

static int lapic_route_read_tsc(struct vcpu *vcpu, uint64_t *tsc)
{
	struct lapic *l = vcpu->lapic;
	if (!l)
		return -ENOENT;
	*tsc = lapic_read_tsc(l);
	return 0;
}

const struct vcpu_apic_ops lapic_apic_ops = {
	.msr = lapic_route_msr,
	.get_cr8 = lapic_route_get_cr8,
	.set_cr8 = lapic_route_set_cr8,
	.set_tsc_deadline = lapic_route_set_tsc_deadline,
	.read_tsc = lapic_route_read_tsc,
};

void lapic_set_tsc_hz(struct lapic *l, uint64_t hz)
{
	if (hz)
		l->tsc_hz = hz;
}

uint64_t lapic_read_tsc(const struct lapic *l)
{
	return muldiv64(lapic_now(l), l->tsc_hz, 1000000000ull);
}

/* ---- snapshot ---- */

/* Version 1: IA32_APIC_BASE, the registers of SDM vol. 3A table 10-1
 * (ID, TPR, LDR, DFR, SVR, ESR and the error bits waiting for the next
 * ESR write, ICR, the LVT, IRR/ISR/TMR, initial count, divide
 * configuration), the timer's period start and period in VM-clock ns, the
 * TSC deadline, the armed deadline, the LINT1 level and wait-for-SIPI.
 * The TSC rate is the engine's, not the guest's, and is not saved. */
#define LAPIC_SNAP_VERSION 1

static void lapic_write_state(struct lapic *l, struct hw_snap_writer *w)
{
	hw_snap_u64(w, l->apic_base);
	hw_snap_u32(w, l->id);
	hw_snap_u32(w, l->tpr);
	hw_snap_u32(w, l->ldr);
	hw_snap_u32(w, l->dfr);
	hw_snap_u32(w, l->svr);
	hw_snap_u32(w, l->esr);
	hw_snap_u32(w, l->esr_pending);
	hw_snap_u32(w, l->icr_lo);
	hw_snap_u32(w, l->icr_hi);
	for (unsigned i = 0; i < LVT_COUNT; i++)
		hw_snap_u32(w, l->lvt[i]);
	for (unsigned i = 0; i < 8; i++)
		hw_snap_u32(w, l->irr[i]);
	for (unsigned i = 0; i < 8; i++)
		hw_snap_u32(w, l->isr[i]);
	for (unsigned i = 0; i < 8; i++)
		hw_snap_u32(w, l->tmr[i]);
	hw_snap_u32(w, l->tmict);
	hw_snap_u32(w, l->tdcr);
	hw_snap_u64(w, l->timer_start);
	hw_snap_u64(w, l->timer_period);
	hw_snap_u64(w, l->tsc_deadline);
	hw_snap_timer(w, &l->timer);
	hw_snap_u8(w, l->lint1_level);
	hw_snap_u8(w, l->wait_sipi);
}

int64_t lapic_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, LAPIC_SNAP_VERSION);
	lapic_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int lapic_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct lapic *l = opaque;
	struct hw_snap_writer size = { 0 };
	lapic_write_state(l, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "lapic", LAPIC_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	struct lapic n = *l;
	n.apic_base = hw_snap_get_u64(&r);
	n.id = hw_snap_get_u32(&r);
	n.tpr = hw_snap_get_u32(&r);
	n.ldr = hw_snap_get_u32(&r);
	n.dfr = hw_snap_get_u32(&r);
	n.svr = hw_snap_get_u32(&r);
	n.esr = hw_snap_get_u32(&r);
	n.esr_pending = hw_snap_get_u32(&r);
	n.icr_lo = hw_snap_get_u32(&r);
	n.icr_hi = hw_snap_get_u32(&r);
	for (unsigned i = 0; i < LVT_COUNT; i++)
		n.lvt[i] = hw_snap_get_u32(&r);
	for (unsigned i = 0; i < 8; i++)
		n.irr[i] = hw_snap_get_u32(&r);
	for (unsigned i = 0; i < 8; i++)
		n.isr[i] = hw_snap_get_u32(&r);
	for (unsigned i = 0; i < 8; i++)
		n.tmr[i] = hw_snap_get_u32(&r);
	n.tmict = hw_snap_get_u32(&r);
	n.tdcr = hw_snap_get_u32(&r);
	n.timer_start = hw_snap_get_u64(&r);
	n.timer_period = hw_snap_get_u64(&r);
	n.tsc_deadline = hw_snap_get_u64(&r);
	struct hw_snap_timer_state tm = hw_snap_get_timer(&r);
	n.lint1_level = hw_snap_get_bool(&r);
	n.wait_sipi = hw_snap_get_bool(&r);
	/* The current-count read divides by the initial count while a
	 * period runs (10.5.4): a period without a count cannot be. */
	if (n.timer_period && !n.tmict)
		return err_set(-EINVAL, "lapic state: timer running with an initial count of 0");
	timer_del(&l->timer);
	n.timer = l->timer;
	*l = n;
	hw_snap_rearm(&l->timer, tm);
	/* Pending interrupts in IRR reach the vCPU as they did before. */
	lapic_update(l);
	return 0;
}
