/* The two cascaded 8259A programmable interrupt controllers of the PC
 * (Intel 8259A datasheet) with the edge/level control registers of the
 * PIIX/ICH (ELCR, ports 0x4d0/0x4d1).  The master's INT output feeds LINT0
 * of the bootstrap processor's LAPIC.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_INTC_PIC_H
#define VESSEL_HW_INTC_PIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct pic;

/* ctx->base[0]: the master's ports, base[1]: the slave's, base[2]: the
 * ELCR pair; ctx->irq[0]: the master's INT output, driven on every change
 * of the request state. */
struct pic *pic_new(const struct dev_ctx *ctx);
void pic_free(struct pic *p);
void pic_reset(struct pic *p);
extern const struct dev_desc pic_device;
void pic_set_irq(struct pic *p, unsigned irq, bool level);
/* Level of the master's INT pin. */
bool pic_has_output(struct pic *p);
/* INTA cycle: the vector to take (IRQ7/15 spurious vectors if none). */
int pic_read_irq(struct pic *p);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t pic_snapshot_save(void *opaque, void *buf, size_t cap);
int pic_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
