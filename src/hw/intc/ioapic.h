/* I/O APIC (Intel 82093AA datasheet; version 0x20 with the EOI register of
 * the ICH I/O APICs): 24 pins, redirection table, edge and level
 * triggering with remote IRR.  MMIO at 0xfec00000.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_INTC_IOAPIC_H
#define VESSEL_HW_INTC_IOAPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct ioapic;

#define IOAPIC_NUM_PINS 24

/* ctx->base[0]: the register page on ctx->mmio; ctx->arg: the APIC bus
 * (const struct apic_bus *, intc/lapic.h) its messages go to. */
struct ioapic *ioapic_new(const struct dev_ctx *ctx);
void ioapic_free(struct ioapic *io);
void ioapic_reset(struct ioapic *io);
extern const struct dev_desc ioapic_device;
/* level true = asserted (polarity is the wiring's business, ACPI _PRT/MADT). */
void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);
/* EOI broadcast from a LAPIC or a write of the EOI register. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);
uint64_t ioapic_get_redir(const struct ioapic *io, unsigned pin);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t ioapic_snapshot_save(void *opaque, void *buf, size_t cap);
int ioapic_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
