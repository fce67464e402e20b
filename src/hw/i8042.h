/* 8042 keyboard controller (IBM PC/AT Technical Reference; the command set
 * of the Intel 8042/VIA VT82C42): data port 0x60, status/command port
 * 0x64, a keyboard that answers reset/identify, an auxiliary port with
 * loopback, IRQ1 and IRQ12, and the CPU reset line (command 0xfe, or
 * output port bit 0) which ends the run with VM_STOP_RESET.  Enough for
 * Linux's i8042 and atkbd probes.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_I8042_H
#define VESSEL_HW_I8042_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct bus;
struct i8042;

struct i8042 *i8042_new(struct vm *vm);
void i8042_free(struct i8042 *k);
void i8042_reset(struct i8042 *k);
int i8042_register(struct i8042 *k, struct bus *pio);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t i8042_snapshot_save(void *opaque, void *buf, size_t cap);
int i8042_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
