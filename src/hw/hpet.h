/* High Precision Event Timer (IA-PC HPET specification 1.0a): MMIO at
 * 0xfed00000, 64-bit main counter at 10 MHz, 3 comparators (0 and 1
 * periodic-capable), legacy replacement route (timer 0 -> IRQ0, timer 1
 * -> IRQ8) and I/O APIC routes.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_HPET_H
#define VESSEL_HW_HPET_H

#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct hpet;

#define HPET_NUM_TIMERS 3
#define HPET_PERIOD_FS  100000000u   /* 10 MHz */
/* General capabilities, low 32 bits (also the ACPI HPET table's block ID):
 * revision 1, 3 timers, 64-bit counter, legacy route capable, vendor 8086. */
#define HPET_CAP_ID_LOW (0x01u | ((HPET_NUM_TIMERS - 1u) << 8) | (1u << 13) | (1u << 15) | (0x8086u << 16))

/* ctx->base[0]: the 1 KiB register block on ctx->mmio; ctx->irq[0]: the
 * first of the interrupt controller's inputs (timer routes and the legacy
 * IRQs 0 and 8 are offsets from it); ctx->irq[1]: the legacy replacement
 * output, high while LEG_RT_CNF is set (a PC gates the PIT's IRQ0 and the
 * RTC's IRQ8 with it); timers on ctx->clock. */
struct hpet *hpet_new(const struct dev_ctx *ctx);
void hpet_free(struct hpet *h);
void hpet_reset(struct hpet *h);
extern const struct dev_desc hpet_device;

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t hpet_snapshot_save(void *opaque, void *buf, size_t cap);
int hpet_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
