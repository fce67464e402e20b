/* Reset control register at port 0xcf9 (Intel ICH9 datasheet 13.7.5
 * "RST_CNT"): writing with bit 2 (RST_CPU) set resets the machine; the
 * FADT's RESET_REG points here.  The PCI host forwards byte accesses of
 * 0xcf9 to it (pci_host_set_cf9), so it claims no range of its own
 * (the PCI host's 0xcf8 dword covers 0xcf9).  Asks for DEV_REQ_RESET.
 * Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_RESET_CTL_H
#define VESSEL_HW_RESET_CTL_H

#include "machine/bus.h"

#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct reset_ctl;

#define RESET_CTL_VALUE 0x06   /* SYS_RST | RST_CPU: the FADT's RESET_VALUE */

struct reset_ctl *reset_ctl_new(const struct dev_ctx *ctx);
void reset_ctl_free(struct reset_ctl *r);
void reset_ctl_reset(struct reset_ctl *r);
extern const struct bus_ops reset_ctl_ops;
extern const struct dev_desc reset_ctl_device;

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t reset_ctl_snapshot_save(void *opaque, void *buf, size_t cap);
int reset_ctl_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
