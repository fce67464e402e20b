/* POST code port 0x80: firmware and Linux (io_delay) write it; writes are
 * kept (visible at debug log level), reads return the last value. */
#ifndef VESSEL_HW_PORT80_H
#define VESSEL_HW_PORT80_H

#include <stddef.h>
#include <stdint.h>

struct bus;
struct port80;

struct port80 *port80_new(void);
void port80_free(struct port80 *p);
int port80_register(struct port80 *p, struct bus *pio);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t port80_snapshot_save(void *opaque, void *buf, size_t cap);
int port80_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
