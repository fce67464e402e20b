/* Firmware configuration device, QEMU's fw_cfg port interface (QEMU's
 * docs/specs/fw_cfg.rst): selector at 0x510 (16-bit), data at 0x511
 * (byte stream).  Items: signature "QEMU", interface ID, RAM size, CPU
 * count and the file directory (0x19) with named blobs for firmware and
 * guest tools.  DMA is not offered (ID bit 1 clear).  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_FW_CFG_H
#define VESSEL_HW_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct fw_cfg;

#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID        0x01
#define FW_CFG_RAM_SIZE  0x03
#define FW_CFG_NB_CPUS   0x05
#define FW_CFG_MAX_CPUS  0x0f
#define FW_CFG_FILE_DIR  0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_MAX_FILES 64
#define FW_CFG_NAME_LEN  56

/* ctx->base[0]: the selector port (data at +1). */
struct fw_cfg *fw_cfg_new(const struct dev_ctx *ctx);
void fw_cfg_free(struct fw_cfg *f);
void fw_cfg_reset(struct fw_cfg *f);
extern const struct dev_desc fw_cfg_device;
/* Items are copied.  0 or -errno with err_set(). */
int fw_cfg_add_item(struct fw_cfg *f, uint16_t key, const void *data, size_t len);
int fw_cfg_add_u16(struct fw_cfg *f, uint16_t key, uint16_t v);
int fw_cfg_add_u64(struct fw_cfg *f, uint16_t key, uint64_t v);
/* A named file in the directory; returns its selector key or -errno. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, size_t len);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t fw_cfg_snapshot_save(void *opaque, void *buf, size_t cap);
int fw_cfg_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
