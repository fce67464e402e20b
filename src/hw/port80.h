/* POST code port 0x80: firmware and Linux (io_delay) write it; writes are
 * kept (visible at debug log level), reads return the last value. */
#ifndef VESSEL_HW_PORT80_H
#define VESSEL_HW_PORT80_H

#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct port80;

/* ctx->base[0]: the port (0x80 on a PC). */
struct port80 *port80_new(const struct dev_ctx *ctx);
void port80_free(struct port80 *p);
extern const struct dev_desc port80_device;

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t port80_snapshot_save(void *opaque, void *buf, size_t cap);
int port80_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
