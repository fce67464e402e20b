/* 8042 keyboard controller (IBM PC/AT Technical Reference; the command set
 * of the Intel 8042/VIA VT82C42): data port 0x60, status/command port
 * 0x64, a keyboard that answers reset/identify, an auxiliary port with
 * loopback, IRQ1 and IRQ12, and the CPU reset line (command 0xfe, or
 * output port bit 0) which asks for DEV_REQ_RESET.  Enough for
 * Linux's i8042 and atkbd probes.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_I8042_H
#define VESSEL_HW_I8042_H

#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct i8042;

/* ctx->base[0]: the data port, base[1]: the status/command port;
 * ctx->irq[0]: IRQ1, irq[1]: IRQ12. */
struct i8042 *i8042_new(const struct dev_ctx *ctx);
void i8042_free(struct i8042 *k);
void i8042_reset(struct i8042 *k);
extern const struct dev_desc i8042_device;

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t i8042_snapshot_save(void *opaque, void *buf, size_t cap);
int i8042_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
