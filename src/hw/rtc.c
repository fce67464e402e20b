/* MC146818A RTC/CMOS (datasheet: registers A-D, "Address map"). */
#include "hw/rtc.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/timer.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
	RTC_SEC = 0, RTC_SEC_ALARM = 1, RTC_MIN = 2, RTC_MIN_ALARM = 3, RTC_HOUR = 4,
	RTC_HOUR_ALARM = 5, RTC_WDAY = 6, RTC_MDAY = 7, RTC_MONTH = 8, RTC_YEAR = 9,
	RTC_REG_A = 10, RTC_REG_B = 11, RTC_REG_C = 12, RTC_REG_D = 13, RTC_CENTURY = 0x32,
};

#define REG_A_UIP  0x80
#define REG_B_SET  0x80
#define REG_B_PIE  0x40
#define REG_B_AIE  0x20
#define REG_B_UIE  0x10
#define REG_B_DM   0x04   /* binary */
#define REG_B_24H  0x02
#define REG_C_IRQF 0x80
#define REG_C_PF   0x40
#define REG_C_AF   0x20
#define REG_C_UF   0x10
#define REG_D_VRT  0x80

/* The update cycle takes 244 us before each second (UIP set meanwhile). */
#define UIP_NS 244000ull

struct rtc {
	struct dev_ctx ctx;        /* irq[0]: IRQ8, irq[1]: the NMI mask (index port bit 7) */
	struct timer_service *ts;
	uint8_t cmos[RTC_CMOS_SIZE];
	uint8_t index;
	/* Time = base_time + (clock - base_clock) / 1e9, unless frozen by SET. */
	int64_t base_time;
	uint64_t base_clock;
	struct vm_timer periodic, second;
	uint64_t periodic_next;
	bool irq_level;
};

static uint64_t now_ns(struct rtc *r) { return vm_clock_ns(r->ts); }

static void rtc_update_irq(struct rtc *r)
{
	uint8_t c = r->cmos[RTC_REG_C] & (REG_C_PF | REG_C_AF | REG_C_UF);
	uint8_t b = r->cmos[RTC_REG_B];
	bool on = ((c & REG_C_PF) && (b & REG_B_PIE)) || ((c & REG_C_AF) && (b & REG_B_AIE)) ||
		  ((c & REG_C_UF) && (b & REG_B_UIE));
	if (on)
		r->cmos[RTC_REG_C] |= REG_C_IRQF;
	else
		r->cmos[RTC_REG_C] &= ~REG_C_IRQF;
	if (on != r->irq_level) {
		r->irq_level = on;
		irq_line_set(&r->ctx.irq[0], on);
	}
}

time_t rtc_get_time(struct rtc *r)
{
	uint64_t now = now_ns(r);
	return (time_t)(r->base_time + (int64_t)((now - r->base_clock) / 1000000000ull));
}

void rtc_set_time(struct rtc *r, time_t t)
{
	uint64_t now = now_ns(r);
	/* Keep the sub-second phase of the VM clock so seconds tick evenly. */
	r->base_clock = now - now % 1000000000ull;
	r->base_time = (int64_t)t;
}

static uint8_t to_bcd(struct rtc *r, unsigned v)
{
	return (r->cmos[RTC_REG_B] & REG_B_DM) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_bcd(struct rtc *r, uint8_t v)
{
	return (r->cmos[RTC_REG_B] & REG_B_DM) ? v : (unsigned)((v >> 4) * 10 + (v & 15));
}

static uint8_t hour_to_reg(struct rtc *r, unsigned hour)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return to_bcd(r, hour);
	/* 12-hour: 12, 1..11 with bit 7 = PM. */
	unsigned h = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(to_bcd(r, h) | (hour >= 12 ? 0x80 : 0));
}

static unsigned reg_to_hour(struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return from_bcd(r, v) % 24;
	unsigned h = from_bcd(r, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

/* Fills registers 0, 2, 4, 6-9 and the century byte from the clock. */
static void rtc_latch_time(struct rtc *r)
{
	time_t t = rtc_get_time(r);
	struct tm tm = { 0 };
	gmtime_r(&t, &tm);   /* fails only for years past int: registers read 0 */
	r->cmos[RTC_SEC] = to_bcd(r, (unsigned)tm.tm_sec);
	r->cmos[RTC_MIN] = to_bcd(r, (unsigned)tm.tm_min);
	r->cmos[RTC_HOUR] = hour_to_reg(r, (unsigned)tm.tm_hour);
	r->cmos[RTC_WDAY] = to_bcd(r, (unsigned)tm.tm_wday + 1);
	r->cmos[RTC_MDAY] = to_bcd(r, (unsigned)tm.tm_mday);
	r->cmos[RTC_MONTH] = to_bcd(r, (unsigned)tm.tm_mon + 1);
	r->cmos[RTC_YEAR] = to_bcd(r, (unsigned)(tm.tm_year % 100));
	r->cmos[RTC_CENTURY] = to_bcd(r, (unsigned)(tm.tm_year + 1900) / 100);
}

/* After the guest set the time (SET cleared): take the registers as the new clock. */
static void rtc_commit_time(struct rtc *r)
{
	struct tm tm = { 0 };
	tm.tm_sec = (int)from_bcd(r, r->cmos[RTC_SEC]);
	tm.tm_min = (int)from_bcd(r, r->cmos[RTC_MIN]);
	tm.tm_hour = (int)reg_to_hour(r, r->cmos[RTC_HOUR]);
	tm.tm_mday = (int)from_bcd(r, r->cmos[RTC_MDAY]);
	tm.tm_mon = (int)from_bcd(r, r->cmos[RTC_MONTH]) - 1;
	unsigned century = from_bcd(r, r->cmos[RTC_CENTURY]);
	if (century < 19 || century > 30)
		century = 20;
	tm.tm_year = (int)(century * 100 + from_bcd(r, r->cmos[RTC_YEAR])) - 1900;
	time_t t = timegm(&tm);
	if (t != (time_t)-1)
		rtc_set_time(r, t);
}

/* Periodic interrupt rate (datasheet table 3): 32768 Hz >> (rate - 1). */
static uint64_t periodic_ns(struct rtc *r)
{
	unsigned rate = r->cmos[RTC_REG_A] & 0x0f;
	unsigned dv = (r->cmos[RTC_REG_A] >> 4) & 7;
	if (!rate || dv != 2)
		return 0;   /* no rate, or the divider is not running at 32.768 kHz */
	if (rate <= 2)
		rate += 7;  /* rates 1 and 2 alias 8 and 9 with a 32.768 kHz base */
	return muldiv64(1ull << (rate - 1), 1000000000ull, 32768);
}

static void rtc_periodic_fire(void *opaque)
{
	struct rtc *r = opaque;
	uint64_t period = periodic_ns(r);
	if (!period)
		return;
	r->cmos[RTC_REG_C] |= REG_C_PF;
	rtc_update_irq(r);
	uint64_t now = now_ns(r);
	r->periodic_next += period;
	if (r->periodic_next <= now)
		r->periodic_next = now + period - (now - r->periodic_next) % period;
	timer_mod(&r->periodic, r->periodic_next);
}

static void rtc_periodic_update(struct rtc *r)
{
	uint64_t period = periodic_ns(r);
	if (!period || !(r->cmos[RTC_REG_B] & REG_B_PIE)) {
		timer_del(&r->periodic);
		return;
	}
	if (timer_pending(&r->periodic))
		return;
	uint64_t now = now_ns(r);
	r->periodic_next = now - now % period + period;
	timer_mod(&r->periodic, r->periodic_next);
}

static bool alarm_match(uint8_t alarm, uint8_t now)
{
	return (alarm & 0xc0) == 0xc0 || alarm == now;   /* 0xc0-0xff: don't care */
}

/* End of an update cycle: update-ended flag, alarm check (datasheet "Interrupts"). */
static void rtc_second_fire(void *opaque)
{
	struct rtc *r = opaque;
	if (!(r->cmos[RTC_REG_B] & REG_B_SET)) {
		rtc_latch_time(r);
		r->cmos[RTC_REG_C] |= REG_C_UF;
		if (alarm_match(r->cmos[RTC_SEC_ALARM], r->cmos[RTC_SEC]) &&
		    alarm_match(r->cmos[RTC_MIN_ALARM], r->cmos[RTC_MIN]) &&
		    alarm_match(r->cmos[RTC_HOUR_ALARM], r->cmos[RTC_HOUR]))
			r->cmos[RTC_REG_C] |= REG_C_AF;
		rtc_update_irq(r);
	}
	if (r->cmos[RTC_REG_B] & (REG_B_UIE | REG_B_AIE)) {
		uint64_t now = now_ns(r);
		uint64_t phase = (now - r->base_clock) % 1000000000ull;
		timer_mod(&r->second, now - phase + 1000000000ull);
	}
}

static void rtc_second_update(struct rtc *r)
{
	if (!(r->cmos[RTC_REG_B] & (REG_B_UIE | REG_B_AIE))) {
		timer_del(&r->second);
		return;
	}
	if (timer_pending(&r->second))
		return;
	uint64_t now = now_ns(r);
	uint64_t phase = (now - r->base_clock) % 1000000000ull;
	timer_mod(&r->second, now - phase + 1000000000ull);
}

static bool update_in_progress(struct rtc *r)
{
	if (r->cmos[RTC_REG_B] & REG_B_SET)
		return false;
	if (((r->cmos[RTC_REG_A] >> 4) & 7) != 2)
		return false;
	uint64_t phase = (now_ns(r) - r->base_clock) % 1000000000ull;
	return phase >= 1000000000ull - UIP_NS;
}

static uint64_t rtc_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct rtc *r = opaque;
	if (off == 0)
		return 0xff;   /* the index port is write-only */
	unsigned idx = r->index;
	switch (idx) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY: case RTC_MDAY: case RTC_MONTH:
	case RTC_YEAR: case RTC_CENTURY:
		if (!(r->cmos[RTC_REG_B] & REG_B_SET))
			rtc_latch_time(r);
		return r->cmos[idx];
	case RTC_REG_A:
		return (r->cmos[RTC_REG_A] & 0x7f) | (update_in_progress(r) ? REG_A_UIP : 0);
	case RTC_REG_C: {
		/* Reading C clears the flags and drops IRQ8. */
		uint8_t v = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0;
		rtc_update_irq(r);
		return v;
	}
	default:
		return r->cmos[idx];
	}
}

static void rtc_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val64)
{
	struct rtc *r = opaque;
	uint8_t val = (uint8_t)val64;
	if (off == 0) {
		r->index = val & 0x7f;
		irq_line_set(&r->ctx.irq[1], val & 0x80);
		return;
	}
	unsigned idx = r->index;
	switch (idx) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = val & 0x7f;
		timer_del(&r->periodic);
		rtc_periodic_update(r);
		break;
	case RTC_REG_B: {
		uint8_t old = r->cmos[RTC_REG_B];
		if (!(old & REG_B_SET) && (val & REG_B_SET))
			rtc_latch_time(r);   /* freeze the registers for the guest to edit */
		if (val & REG_B_SET)
			val &= ~REG_B_UIE;   /* SET clears UIE (datasheet register B) */
		if ((old ^ val) & (REG_B_DM | REG_B_24H)) {
			/* Format changed: registers are re-read from the clock in the new format. */
			r->cmos[RTC_REG_B] = val;
			if (!(val & REG_B_SET))
				rtc_latch_time(r);
		}
		r->cmos[RTC_REG_B] = val;
		if ((old & REG_B_SET) && !(val & REG_B_SET))
			rtc_commit_time(r);
		rtc_periodic_update(r);
		rtc_second_update(r);
		rtc_update_irq(r);
		break;
	}
	case RTC_REG_C: case RTC_REG_D:
		break;   /* read-only */
	default:
		r->cmos[idx] = val;
		break;
	}
}

static const struct bus_ops rtc_ops = { rtc_read, rtc_write };

void rtc_cmos_set(struct rtc *r, unsigned idx, uint8_t val)
{
	if (idx < RTC_CMOS_SIZE)
		r->cmos[idx] = val;
}

uint8_t rtc_cmos_get(struct rtc *r, unsigned idx)
{
	return idx < RTC_CMOS_SIZE ? r->cmos[idx] : 0xff;
}

/* Memory size as a PC BIOS reports it (and as SeaBIOS reads it from QEMU). */
void rtc_set_memory_size(struct rtc *r, uint64_t low_bytes, uint64_t high_bytes)
{
	r->cmos[0x15] = 0x80;   /* 640 KiB base memory */
	r->cmos[0x16] = 0x02;
	uint64_t ext_kb = low_bytes > 0x100000 ? (low_bytes - 0x100000) / 1024 : 0;
	if (ext_kb > 0xffff)
		ext_kb = 0xffff;
	r->cmos[0x17] = r->cmos[0x30] = (uint8_t)ext_kb;
	r->cmos[0x18] = r->cmos[0x31] = (uint8_t)(ext_kb >> 8);
	uint64_t above16 = low_bytes > 0x1000000 ? (low_bytes - 0x1000000) / 65536 : 0;
	if (above16 > 0xffff)
		above16 = 0xffff;
	r->cmos[0x34] = (uint8_t)above16;
	r->cmos[0x35] = (uint8_t)(above16 >> 8);
	uint64_t high = high_bytes / 65536;
	r->cmos[0x5b] = (uint8_t)high;
	r->cmos[0x5c] = (uint8_t)(high >> 8);
	r->cmos[0x5d] = (uint8_t)(high >> 16);
}

void rtc_reset(struct rtc *r)
{
	timer_del(&r->periodic);
	timer_del(&r->second);
	r->cmos[RTC_REG_A] = 0x26;             /* 32.768 kHz divider, 1024 Hz rate */
	r->cmos[RTC_REG_B] = REG_B_24H;        /* BCD, 24-hour */
	r->cmos[RTC_REG_C] = 0;
	r->cmos[RTC_REG_D] = REG_D_VRT;        /* battery good */
	r->index = 0;
	if (r->irq_level) {
		r->irq_level = false;
		irq_line_set(&r->ctx.irq[0], false);
	}
}

struct rtc *rtc_new(const struct dev_ctx *ctx)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	r->ctx = *ctx;
	struct timer_service *ts = r->ts = ctx->clock;
	timer_init(&r->periodic, ts, rtc_periodic_fire, r);
	timer_init(&r->second, ts, rtc_second_fire, r);
	rtc_reset(r);
	struct timespec host;
	clock_gettime(CLOCK_REALTIME, &host);
	/* Align the VM clock's second boundary with the host's so the guest's
	 * time matches to well under a second. */
	uint64_t now = now_ns(r);
	uint64_t sub = (uint64_t)host.tv_nsec;
	r->base_clock = now >= sub ? now - sub : 0;
	r->base_time = (int64_t)host.tv_sec;
	r->cmos[0x0e] = 0;   /* diagnostics: all good */
	r->cmos[0x14] = 0x06; /* equipment: FPU, display adapter */
	rtc_latch_time(r);
	if (bus_register(ctx->pio, ctx->base[0], 2, &rtc_ops, r, "rtc") < 0) {
		rtc_free(r);
		return NULL;
	}
	return r;
}

void rtc_free(struct rtc *r)
{
	if (!r)
		return;
	timer_del(&r->periodic);
	timer_del(&r->second);
	bus_release(r->ctx.pio, r);
	free(r);
}

static void *rtc_create(const struct dev_ctx *ctx) { return rtc_new(ctx); }
static void rtc_reset_dev(void *dev) { rtc_reset(dev); }
static void rtc_destroy(void *dev) { rtc_free(dev); }

const struct dev_desc rtc_device = {
	.name = "rtc", .create = rtc_create, .reset = rtc_reset_dev,
	.save = rtc_snapshot_save, .load = rtc_snapshot_load, .destroy = rtc_destroy,
};

/* Snapshot state, version 1: the whole CMOS RAM (clock registers A-D
 * included), the index register, the time base (guest time and the VM
 * clock it was taken at), both timers (periodic interrupt; update-ended
 * and alarm, checked once a second) and the IRQ8 line. */
#define RTC_SNAP_VERSION 1

static void rtc_write_state(struct rtc *r, struct hw_snap_writer *w)
{
	hw_snap_bytes(w, r->cmos, RTC_CMOS_SIZE);
	hw_snap_u8(w, r->index);
	hw_snap_u64(w, (uint64_t)r->base_time);
	hw_snap_u64(w, r->base_clock);
	hw_snap_timer(w, &r->periodic);
	hw_snap_u64(w, r->periodic_next);
	hw_snap_timer(w, &r->second);
	hw_snap_u8(w, r->irq_level);
}

int64_t rtc_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, RTC_SNAP_VERSION);
	rtc_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int rtc_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct rtc *r = opaque;
	struct hw_snap_writer size = { 0 };
	rtc_write_state(r, &size);
	struct hw_snap_reader rd;
	int rc = hw_snap_open(&rd, buf, len, "rtc", RTC_SNAP_VERSION, size.len);
	if (rc < 0)
		return rc;
	uint8_t cmos[RTC_CMOS_SIZE];
	hw_snap_get_bytes(&rd, cmos, RTC_CMOS_SIZE);
	uint8_t index = hw_snap_get_u8(&rd);
	int64_t base_time = (int64_t)hw_snap_get_u64(&rd);
	uint64_t base_clock = hw_snap_get_u64(&rd);
	struct hw_snap_timer_state periodic = hw_snap_get_timer(&rd);
	uint64_t periodic_next = hw_snap_get_u64(&rd);
	struct hw_snap_timer_state second = hw_snap_get_timer(&rd);
	bool irq_level = hw_snap_get_bool(&rd);
	/* Seconds since 1970 within +-2^40 (35,000 years): the time sums
	 * and gmtime_r() stay in range. */
	if (base_time > (1ll << 40) || base_time < -(1ll << 40))
		return err_set(-EINVAL, "rtc state: time base %lld s is out of range", (long long)base_time);
	memcpy(r->cmos, cmos, RTC_CMOS_SIZE);
	r->index = index & (RTC_CMOS_SIZE - 1);
	r->base_time = base_time;
	r->base_clock = base_clock;
	r->periodic_next = periodic_next;
	r->irq_level = irq_level;
	hw_snap_rearm(&r->periodic, periodic);
	hw_snap_rearm(&r->second, second);
	return 0;
}
