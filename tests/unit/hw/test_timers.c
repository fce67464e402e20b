/* PIT, RTC/CMOS, HPET and ACPI PM timer through their guest interfaces,
 * on a manual VM clock. */
#include "harness.h"

#include "hw/hpet.h"
#include "hw/pit.h"
#include "hw/pm_timer.h"
#include "hw/rtc.h"

#include <time.h>

/* PIC routes IRQ0..15 to vectors 0x20..0x2f; the BSP takes them via LINT0. */
static int ack(struct tvm *t) { return tvm_intr_ack(&t->cpu[0]); }

static uint16_t pit_latch(struct tvm *t, unsigned ch)
{
	outb(t, 0x43, (uint8_t)(ch << 6));
	uint8_t lo = inb(t, 0x40 + ch);
	return (uint16_t)(lo | inb(t, 0x40 + ch) << 8);
}

Test(pit, mode2_periodic_irq0_and_count)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xfe, 0xff);
	outb(t, 0x43, 0x34);                      /* ch0, lo/hi, mode 2 */
	outb(t, 0x40, 0x9c);
	outb(t, 0x40, 0x2e);                      /* 11932: ~10 ms */
	/* Half a period: the counter went down by about half. */
	tvm_advance(t, 5000000);
	uint16_t c = pit_latch(t, 0);
	cr_assert(c > 11932 / 2 - 10 && c < 11932 / 2 + 10, "count %u", c);
	cr_assert_eq(ack(t), -1);
	for (int i = 0; i < 3; i++) {
		tvm_advance(t, 10000000);
		cr_assert_eq(ack(t), 0x20, "tick %d", i);
		outb(t, 0x20, 0x20);
	}
	tvm_free(t);
}

Test(pit, mode0_oneshot_and_readback_status)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xfe, 0xff);
	outb(t, 0x43, 0x30);                      /* ch0, lo/hi, mode 0 */
	outb(t, 0x43, 0xe2);                      /* read-back status of ch0 */
	uint8_t st = inb(t, 0x40);
	cr_assert_eq(st & 0x3f, 0x30, "rw=3 mode=0 binary: %#x", st);
	cr_assert(st & 0x40, "null count before the count is written");
	cr_assert_eq(st & 0x80, 0, "mode 0 output starts low");
	outb(t, 0x40, 0xe8);
	outb(t, 0x40, 0x03);                      /* 1000 ticks = 838 us */
	tvm_advance(t, 800000);
	cr_assert_eq(ack(t), -1);
	cr_assert(!pit_get_out(t->vm.platform->pit, 0));
	tvm_advance(t, 50000);
	cr_assert(pit_get_out(t->vm.platform->pit, 0), "terminal count reached");
	cr_assert_eq(ack(t), 0x20);
	outb(t, 0x20, 0x20);
	tvm_advance(t, 10000000);
	cr_assert_eq(ack(t), -1, "one-shot");
	tvm_free(t);
}

Test(pit, channel2_gate_and_port61)
{
	struct tvm *t = tvm_new(1);
	cr_assert_eq(inb(t, 0x61) & 0x23, 0x00);
	outb(t, 0x61, 0x01);                      /* gate on, speaker off */
	outb(t, 0x43, 0xb0);                      /* ch2, lo/hi, mode 0 */
	outb(t, 0x42, 0xff);
	outb(t, 0x42, 0xff);
	cr_assert_eq(inb(t, 0x61) & 0x20, 0, "OUT2 low while counting");
	tvm_advance(t, 60000000);                 /* 65535 ticks is ~55 ms */
	cr_assert_eq(inb(t, 0x61) & 0x21, 0x21, "OUT2 high after terminal count");
	/* Latched count survives further counting until read. */
	outb(t, 0x43, 0xb0);
	outb(t, 0x42, 0x10);
	outb(t, 0x42, 0x27);                      /* 10000 */
	outb(t, 0x43, 0x80);                      /* latch ch2 */
	tvm_advance(t, 1000000);
	uint8_t lo = inb(t, 0x42), hi = inb(t, 0x42);
	cr_assert_eq(lo | hi << 8, 10000);
	tvm_free(t);
}

static uint8_t cmos(struct tvm *t, uint8_t idx)
{
	outb(t, 0x70, idx);
	return inb(t, 0x71);
}

static void cmos_w(struct tvm *t, uint8_t idx, uint8_t v)
{
	outb(t, 0x70, idx);
	outb(t, 0x71, v);
}

static unsigned bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

Test(rtc, time_matches_host_clock)
{
	struct tvm *t = tvm_new(1);
	time_t host = time(NULL);
	struct tm tm;
	unsigned y = bcd(cmos(t, 0x32)) * 100 + bcd(cmos(t, 9));
	struct tm g = { .tm_sec = (int)bcd(cmos(t, 0)), .tm_min = (int)bcd(cmos(t, 2)), .tm_hour = (int)bcd(cmos(t, 4)),
			.tm_mday = (int)bcd(cmos(t, 7)), .tm_mon = (int)bcd(cmos(t, 8)) - 1, .tm_year = (int)y - 1900 };
	time_t guest = timegm(&g);
	cr_assert(guest >= host - 2 && guest <= host + 2, "guest %ld host %ld", (long)guest, (long)host);
	gmtime_r(&guest, &tm);
	cr_assert_eq(bcd(cmos(t, 6)), (unsigned)tm.tm_wday + 1);
	cr_assert_eq(cmos(t, 0x0d), 0x80, "valid RAM and time");
	cr_assert_eq(cmos(t, 0x0b), 0x02, "24-hour BCD");
	/* Time advances with the VM clock. */
	rtc_set_time(t->vm.platform->rtc, 1700000000);   /* 2023-11-14 22:13:20 UTC */
	tvm_advance(t, 3000000000ull);
	cr_assert_eq(cmos(t, 0), 0x23);
	cr_assert_eq(cmos(t, 2), 0x13);
	cr_assert_eq(cmos(t, 4), 0x22);
	tvm_free(t);
}

Test(rtc, binary_12h_and_guest_set)
{
	struct tvm *t = tvm_new(1);
	rtc_set_time(t->vm.platform->rtc, 1700000000);   /* 22:13:20 */
	cmos_w(t, 0x0b, 0x04);                    /* binary, 12-hour */
	cr_assert_eq(cmos(t, 4), 0x80 | 10, "10 PM");
	cr_assert_eq(cmos(t, 2), 13);
	/* Set the clock: SET, write, release. */
	cmos_w(t, 0x0b, 0x86);                    /* SET, binary, 24h */
	cmos_w(t, 0, 5); cmos_w(t, 2, 4); cmos_w(t, 4, 3);
	cmos_w(t, 7, 2); cmos_w(t, 8, 1); cmos_w(t, 9, 30); cmos_w(t, 0x32, 0x20);
	cmos_w(t, 0x0b, 0x06);
	cr_assert_eq(rtc_get_time(t->vm.platform->rtc), 1893553445, "2030-01-02 03:04:05");
	tvm_free(t);
}

Test(rtc, periodic_update_and_alarm_irq8)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xfb, 0xfe);
	rtc_set_time(t->vm.platform->rtc, 1700000000);
	cmos_w(t, 0x0a, 0x26);                    /* 1024 Hz */
	cmos_w(t, 0x0b, 0x42);                    /* PIE */
	tvm_advance(t, 976562);
	cr_assert_eq(ack(t), 0x28);
	cr_assert_eq(cmos(t, 0x0c), 0xc0, "IRQF | PF");
	cr_assert_eq(cmos(t, 0x0c), 0x00, "C clears on read");
	outb(t, 0xa0, 0x20); outb(t, 0x20, 0x20);
	cmos_w(t, 0x0b, 0x12);                    /* UIE only */
	tvm_advance(t, 1000000000);
	cr_assert_eq(ack(t), 0x28);
	cr_assert_eq(cmos(t, 0x0c) & 0x90, 0x90, "update-ended");
	outb(t, 0xa0, 0x20); outb(t, 0x20, 0x20);
	/* Alarm at hh:mm:25 with don't-care hour and minute. */
	cmos_w(t, 0x01, 0x25); cmos_w(t, 0x03, 0xc0); cmos_w(t, 0x05, 0xc0);
	cmos_w(t, 0x0b, 0x22);                    /* AIE */
	int fired = 0;
	for (int i = 0; i < 6 && !fired; i++) {
		tvm_advance(t, 1000000000);
		if (ack(t) == 0x28) {
			fired = 1;
			cr_assert(cmos(t, 0x0c) & 0x20, "AF");
			cr_assert_eq(cmos(t, 0), 0x25);
		}
	}
	cr_assert(fired, "alarm within 5 s");
	tvm_free(t);
}

Test(rtc, uip_and_memory_size)
{
	struct tvm *t = tvm_new(1);
	rtc_set_time(t->vm.platform->rtc, 1700000000);
	cr_assert_eq(cmos(t, 0x0a) & 0x80, 0);
	tvm_advance(t, 999900000);               /* within 244 us of the next second */
	cr_assert_eq(cmos(t, 0x0a) & 0x80, 0x80, "update in progress");
	/* 64 MiB guest: 63 MiB extended, 48 MiB above 16 MiB. */
	cr_assert_eq(cmos(t, 0x30) | cmos(t, 0x31) << 8, 63 * 1024);
	cr_assert_eq(cmos(t, 0x34) | cmos(t, 0x35) << 8, 48 * 16);
	cr_assert_eq(cmos(t, 0x5b), 0);
	/* NMI mask bit of the index port. */
	outb(t, 0x70, 0x8d);
	cr_assert(t->vm.platform->nmi_masked);
	tvm_free(t);
}

static uint64_t hpet_r(struct tvm *t, unsigned off) { return mmio_read(t, GMEM_HPET_BASE + off, 8); }
static void hpet_w(struct tvm *t, unsigned off, uint64_t v) { mmio_write(t, GMEM_HPET_BASE + off, 8, v); }

Test(hpet, capabilities_and_counter)
{
	struct tvm *t = tvm_new(1);
	uint64_t cap = hpet_r(t, 0);
	cr_assert_eq(cap >> 32, 100000000, "10 MHz");
	cr_assert_eq((cap >> 8) & 0x1f, 2, "3 timers");
	cr_assert(cap & (1 << 15), "legacy route capable");
	cr_assert_eq((uint32_t)cap, HPET_CAP_ID_LOW);
	cr_assert_eq(hpet_r(t, 0xf0), 0, "halted");
	hpet_w(t, 0x10, 1);
	tvm_advance(t, 1000000);
	cr_assert_eq(hpet_r(t, 0xf0), 10000);
	cr_assert_eq(mmio_read(t, GMEM_HPET_BASE + 0xf4, 4), 0, "high half by 32-bit read");
	hpet_w(t, 0x10, 0);
	tvm_advance(t, 1000000);
	cr_assert_eq(hpet_r(t, 0xf0), 10000, "stopped counter holds");
	hpet_w(t, 0xf0, 5);
	cr_assert_eq(hpet_r(t, 0xf0), 5);
	tvm_free(t);
}

Test(hpet, legacy_periodic_timer0_on_irq0)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xfe, 0xff);
	/* Timer 0 periodic with VAL_SET: first write sets the comparator, second the period. */
	hpet_w(t, 0x100, (1 << 2) | (1 << 3) | (1 << 6));
	hpet_w(t, 0x108, 1000);                   /* 100 us */
	hpet_w(t, 0x108, 1000);
	hpet_w(t, 0x10, 3);                       /* enable + legacy replacement */
	cr_assert(t->vm.platform->hpet_legacy);
	for (int i = 0; i < 3; i++) {
		tvm_advance(t, 100000);
		cr_assert_eq(ack(t), 0x20, "tick %d", i);
		outb(t, 0x20, 0x20);
	}
	cr_assert_eq(mmio_read(t, GMEM_HPET_BASE + 0x108, 8), 4000, "comparator advanced by the period");
	/* The PIT no longer reaches IRQ0. */
	hpet_w(t, 0x100, 0);
	outb(t, 0x43, 0x34); outb(t, 0x40, 100); outb(t, 0x40, 0);
	tvm_advance(t, 1000000);
	cr_assert_eq(ack(t), -1);
	tvm_free(t);
}

Test(hpet, oneshot_level_on_ioapic_route)
{
	struct tvm *t = tvm_new(1);
	apic_w(t, 0xf0, 0x1ff);
	apic_w(t, 0x350, 0x10700);
	ioapic_w(t, 20, 0x64 | (1 << 15));
	uint64_t cfg = hpet_r(t, 0x140);
	cr_assert(cfg & (1ull << (32 + 20)), "route to pin 20 offered");
	cr_assert_eq(cfg & (1 << 4), 0, "timer 2 is not periodic-capable");
	hpet_w(t, 0x140, (1 << 1) | (1 << 2) | (20 << 9));
	hpet_w(t, 0x148, 500);
	hpet_w(t, 0x10, 1);
	tvm_advance(t, 49000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1);
	tvm_advance(t, 1000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x64);
	cr_assert_eq(hpet_r(t, 0x20), 4, "level status bit of timer 2");
	hpet_w(t, 0x20, 4);
	cr_assert_eq(hpet_r(t, 0x20), 0);
	apic_w(t, 0xb0, 0);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "line dropped with the status bit");
	tvm_free(t);
}

Test(pm_timer, counts_at_3_58_mhz)
{
	struct tvm *t = tvm_new(1);
	uint32_t a = inl(t, 0x608);
	tvm_advance(t, 1000000000);
	uint32_t b = inl(t, 0x608);
	cr_assert_eq(b - a, 3579545);
	tvm_free(t);
}

/* The legacy route is a gate the board wires: while it is on, the RTC's
 * IRQ8 does not reach GSI 8; turned off, the line the RTC holds reaches
 * it again (IA-PC HPET 1.0a, 2.3.9.2.1). */
Test(hpet, legacy_gate_gives_irq8_back_to_the_rtc)
{
	struct tvm *t = tvm_new(1);
	hpet_w(t, 0x10, 2);                       /* legacy replacement, counter halted */
	outb(t, 0x70, 0x0b);
	outb(t, 0x71, 0x02 | 0x10);               /* 24 h, update-ended interrupt */
	tvm_advance(t, 1100000000ull);
	cr_assert_not(t->vm.platform->gsi_level[8], "the HPET owns IRQ8");
	hpet_w(t, 0x10, 0);
	cr_assert(t->vm.platform->gsi_level[8], "the RTC's held line is back on IRQ8");
	tvm_free(t);
}
