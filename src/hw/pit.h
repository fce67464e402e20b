/* 8254 programmable interval timer (Intel 82C54 datasheet): three
 * channels at ports 0x40-0x43, modes 0-5, latch and read-back commands;
 * channel 0 drives ISA IRQ0, channel 2's gate and output are bits 0 and 5
 * of port 0x61 (PC speaker / NMI status port).  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_PIT_H
#define VESSEL_HW_PIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct bus;
struct timer_service;
struct pit;

#define PIT_HZ 1193182ull

struct pit *pit_new(struct vm *vm, struct timer_service *ts);
void pit_free(struct pit *p);
void pit_reset(struct pit *p);
int pit_register(struct pit *p, struct bus *pio);
/* Output pin of a channel now (for tests and port 0x61). */
bool pit_get_out(struct pit *p, unsigned ch);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t pit_snapshot_save(void *opaque, void *buf, size_t cap);
int pit_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
