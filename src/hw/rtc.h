/* MC146818 real-time clock and CMOS RAM (Motorola MC146818A datasheet) at
 * ports 0x70/0x71: time from the host's clock, BCD or binary, 12/24-hour,
 * periodic, alarm and update-ended interrupts on ISA IRQ8; bit 7 of the
 * index port is the NMI mask.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_RTC_H
#define VESSEL_HW_RTC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct dev_ctx;
struct rtc;

#define RTC_CMOS_SIZE 128

/* ctx->base[0]: the index/data port pair; ctx->irq[0]: IRQ8, irq[1]: the
 * NMI mask, driven with index-port bit 7 on every index write; timers on
 * ctx->clock. */
struct rtc *rtc_new(const struct dev_ctx *ctx);
void rtc_free(struct rtc *r);
/* Registers A-D and the interrupt state to power-on; time and CMOS RAM stay. */
void rtc_reset(struct rtc *r);
extern const struct dev_desc rtc_device;
/* CMOS RAM bytes for firmware-style data (memory size, century). */
void rtc_cmos_set(struct rtc *r, unsigned idx, uint8_t val);
uint8_t rtc_cmos_get(struct rtc *r, unsigned idx);
/* The memory-size bytes (0x15-0x18, 0x30-0x31, 0x34-0x35, 0x5b-0x5d). */
void rtc_set_memory_size(struct rtc *r, uint64_t low_bytes, uint64_t high_bytes);
/* Sets the clock to t (UTC seconds since the epoch). */
void rtc_set_time(struct rtc *r, time_t t);
/* The clock now (UTC seconds since the epoch). */
time_t rtc_get_time(struct rtc *r);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t rtc_snapshot_save(void *opaque, void *buf, size_t cap);
int rtc_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
