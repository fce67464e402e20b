/* fw_cfg port interface (QEMU docs/specs/fw_cfg.rst, "Legacy Interface"). */
#include "hw/fw_cfg.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FW_CFG_MAX_KEY (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)

struct fw_cfg_item {
	uint8_t *data;
	size_t len;
};

struct fw_cfg {
	struct dev_ctx ctx;
	struct fw_cfg_item items[FW_CFG_MAX_KEY];
	char names[FW_CFG_MAX_FILES][FW_CFG_NAME_LEN];
	unsigned n_files;
	uint16_t selector;
	size_t offset;
};

int fw_cfg_add_item(struct fw_cfg *f, uint16_t key, const void *data, size_t len)
{
	/* Bit 14 selects write access and bit 15 the architecture-specific range. */
	uint16_t k = key & 0x3fff;
	if (k >= FW_CFG_MAX_KEY)
		return err_set(-EINVAL, "fw_cfg key %#x out of range", key);
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return err_set(-ENOMEM, "out of memory");
	if (len)
		memcpy(copy, data, len);
	free(f->items[k].data);
	f->items[k].data = copy;
	f->items[k].len = len;
	return 0;
}

int fw_cfg_add_u16(struct fw_cfg *f, uint16_t key, uint16_t v)
{
	uint8_t le[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	return fw_cfg_add_item(f, key, le, sizeof(le));
}

int fw_cfg_add_u64(struct fw_cfg *f, uint16_t key, uint64_t v)
{
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	return fw_cfg_add_item(f, key, le, sizeof(le));
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* The directory: be32 count, then { be32 size, be16 select, be16 reserved, name[56] }. */
static int fw_cfg_rebuild_dir(struct fw_cfg *f)
{
	size_t len = 4 + (size_t)f->n_files * 64;
	uint8_t *dir = calloc(1, len);
	if (!dir)
		return err_set(-ENOMEM, "out of memory");
	put_be32(dir, f->n_files);
	for (unsigned i = 0; i < f->n_files; i++) {
		uint8_t *e = dir + 4 + 64 * i;
		uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + i);
		put_be32(e, (uint32_t)f->items[key].len);
		e[4] = (uint8_t)(key >> 8);
		e[5] = (uint8_t)key;
		memcpy(e + 8, f->names[i], FW_CFG_NAME_LEN);
	}
	int rc = fw_cfg_add_item(f, FW_CFG_FILE_DIR, dir, len);
	free(dir);
	return rc;
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, size_t len)
{
	size_t nlen = strlen(name);
	if (!nlen || nlen >= FW_CFG_NAME_LEN)
		return err_set(-EINVAL, "fw_cfg file name \"%s\" must have 1 to %d characters", name,
			       FW_CFG_NAME_LEN - 1);
	if (len > UINT32_MAX)
		return err_set(-EINVAL, "fw_cfg file %s is too large", name);
	for (unsigned i = 0; i < f->n_files; i++)
		if (!strcmp(f->names[i], name))
			return err_set(-EEXIST, "fw_cfg file %s exists already", name);
	if (f->n_files == FW_CFG_MAX_FILES)
		return err_set(-ENOSPC, "fw_cfg: too many files");
	uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + f->n_files);
	int rc = fw_cfg_add_item(f, key, data, len);
	if (rc < 0)
		return rc;
	memset(f->names[f->n_files], 0, FW_CFG_NAME_LEN);
	memcpy(f->names[f->n_files], name, nlen);
	f->n_files++;
	rc = fw_cfg_rebuild_dir(f);
	return rc < 0 ? rc : key;
}

static uint8_t fw_cfg_read_byte(struct fw_cfg *f)
{
	uint16_t k = f->selector & 0x3fff;
	if (k >= FW_CFG_MAX_KEY || !f->items[k].data || f->offset >= f->items[k].len)
		return 0;   /* past the end or no such item: reads as 0 */
	return f->items[k].data[f->offset++];
}

static uint64_t fw_cfg_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct fw_cfg *f = opaque;
	if (off == 0)
		return size >= 2 ? f->selector : (uint8_t)f->selector;
	if (off != 1)
		return 0;
	/* Wider reads of the data port return consecutive bytes, little end first. */
	uint64_t v = 0;
	for (unsigned i = 0; i < size && i < 8; i++)
		v |= (uint64_t)fw_cfg_read_byte(f) << (8 * i);
	return v;
}

static void fw_cfg_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct fw_cfg *f = opaque;
	if (off == 0) {
		f->selector = (uint16_t)val;
		f->offset = 0;
	}
	/* Writes to the data port are ignored (read-only items). */
}

static const struct bus_ops fw_cfg_ops = { fw_cfg_read, fw_cfg_write };

void fw_cfg_reset(struct fw_cfg *f)
{
	f->selector = 0;
	f->offset = 0;
}

struct fw_cfg *fw_cfg_new(const struct dev_ctx *ctx)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	if (!f) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	f->ctx = *ctx;
	static const uint8_t id[4] = { 1, 0, 0, 0 };   /* LE32: traditional interface only */
	if (fw_cfg_add_item(f, FW_CFG_SIGNATURE, "QEMU", 4) < 0 ||
	    fw_cfg_add_item(f, FW_CFG_ID, id, 4) < 0 || fw_cfg_rebuild_dir(f) < 0 ||
	    bus_register(ctx->pio, ctx->base[0], 2, &fw_cfg_ops, f, "fw_cfg") < 0) {
		fw_cfg_free(f);
		return NULL;
	}
	return f;
}

void fw_cfg_free(struct fw_cfg *f)
{
	if (!f)
		return;
	bus_release(f->ctx.pio, f);
	for (unsigned i = 0; i < FW_CFG_MAX_KEY; i++)
		free(f->items[i].data);
	free(f);
}

static void *fw_cfg_create(const struct dev_ctx *ctx) { return fw_cfg_new(ctx); }
static void fw_cfg_reset_dev(void *dev) { fw_cfg_reset(dev); }
static void fw_cfg_destroy(void *dev) { fw_cfg_free(dev); }

const struct dev_desc fw_cfg_device = {
	.name = "fw-cfg", .create = fw_cfg_create, .reset = fw_cfg_reset_dev,
	.save = fw_cfg_snapshot_save, .load = fw_cfg_snapshot_load, .destroy = fw_cfg_destroy,
};

/* Snapshot state, version 1: the selector and the read offset in the
 * selected item.  The items themselves come from the VM's configuration,
 * which the restoring process rebuilds the same. */
int64_t fw_cfg_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct fw_cfg *f = opaque;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u16(&w, f->selector);
	hw_snap_u64(&w, f->offset);
	return hw_snap_end(&w);
}

int fw_cfg_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct fw_cfg *f = opaque;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "fw-cfg", 1, 10);
	if (rc < 0)
		return rc;
	/* fw_cfg_data_read() bounds-checks both against the item, so any
	 * value is harmless. */
	f->selector = hw_snap_get_u16(&r);
	f->offset = (size_t)hw_snap_get_u64(&r);
	return 0;
}
