/* 8254 programmable interval timer (Intel 82C54 datasheet): three
 * channels at ports 0x40-0x43, modes 0-5, latch and read-back commands;
 * channel 0 drives ISA IRQ0, channel 2's gate and output are bits 0 and 5
 * of port 0x61 (PC speaker / NMI status port).  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_PIT_H
#define VESSEL_HW_PIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct pit;

#define PIT_HZ 1193182ull

/* ctx->base[0]: the 4 counter/control ports, base[1]: port 0x61;
 * ctx->irq[0]: channel 0's output (IRQ0); timers on ctx->clock. */
struct pit *pit_new(const struct dev_ctx *ctx);
void pit_free(struct pit *p);
void pit_reset(struct pit *p);
extern const struct dev_desc pit_device;
/* Output pin of a channel now (for tests and port 0x61). */
bool pit_get_out(struct pit *p, unsigned ch);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t pit_snapshot_save(void *opaque, void *buf, size_t cap);
int pit_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
