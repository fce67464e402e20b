/* ACPI AC adapter and battery backed by the host (docs/power.md "The
 * host's power state"): the register block the DSDT's AC (ACPI0003) and
 * BAT0 (PNP0C0A) objects read, and the GPE that tells the OS to read them
 * again (ACPI 6.4 sections 10.2 "Control Method Batteries", 10.3 "AC
 * Adapters", 5.6.4 "General-Purpose Event Handling").
 *
 * Dword registers (ctx->base[0] on ctx->pio):
 *   +0x00 STA   bit 0 AC online, bit 1 battery present, bits 8-10 the
 *               battery state of _BST (discharging, charging, critical)
 *   +0x04 EVT   read: what changed since the last read (POWER_SUPPLY_EVT_*);
 *               the dword read clears what it returns
 *   +0x08 UNIT  _BIF power unit: 0 mWh/mW, 1 mAh/mA
 *   +0x0c DCAP  design capacity          +0x10 FCAP last full charge capacity
 *   +0x14 DVOL  design voltage (mV)      +0x18 RATE present rate
 *   +0x1c RCAP  remaining capacity       +0x20 PVOL present voltage (mV)
 *   +0x24 TECH  technology (0 primary, 1 rechargeable)
 * A value nobody knows reads 0xffffffff, as _BIF and _BST say.
 *
 * The host's state comes from a source the board passes in ctx->arg
 * (struct power_supply_source, NULL: no source, the registers read 0 and
 * nothing is polled), checked every POWER_SUPPLY_CHECK_MS on the VM clock;
 * each change sets EVT bits and pulses ctx->irq[0], which the board wires
 * to a GPE status bit.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_POWER_SUPPLY_H
#define VESSEL_HW_POWER_SUPPLY_H

#include <stdbool.h>
#include <stdint.h>

#define POWER_SUPPLY_STA   0x00
#define POWER_SUPPLY_EVT   0x04
#define POWER_SUPPLY_UNIT  0x08
#define POWER_SUPPLY_DCAP  0x0c
#define POWER_SUPPLY_FCAP  0x10
#define POWER_SUPPLY_DVOL  0x14
#define POWER_SUPPLY_RATE  0x18
#define POWER_SUPPLY_RCAP  0x1c
#define POWER_SUPPLY_PVOL  0x20
#define POWER_SUPPLY_TECH  0x24
#define POWER_SUPPLY_LEN   0x28

#define POWER_SUPPLY_STA_AC       0x1u
#define POWER_SUPPLY_STA_BATTERY  0x2u
#define POWER_SUPPLY_STA_STATE_SHIFT 8

/* EVT bits: which Notify the GPE handler sends (ACPI 6.4 5.6.6). */
#define POWER_SUPPLY_EVT_AC       0x1u   /* Notify (AC, 0x80): _PSR changed */
#define POWER_SUPPLY_EVT_STATUS   0x2u   /* Notify (BAT0, 0x80): _BST changed */
#define POWER_SUPPLY_EVT_INFO     0x4u   /* Notify (BAT0, 0x81): _STA or _BIF changed */

/* _BST battery state bits (10.2.2.6). */
#define POWER_SUPPLY_DISCHARGING  0x1u
#define POWER_SUPPLY_CHARGING     0x2u
#define POWER_SUPPLY_CRITICAL     0x4u

#define POWER_SUPPLY_UNKNOWN      0xffffffffu
#define POWER_SUPPLY_CHECK_MS     500

/* The host's state in the units of _BIF and _BST. */
struct power_supply_status {
	bool ac_online;
	bool battery;            /* a battery is present */
	uint32_t state;          /* POWER_SUPPLY_DISCHARGING | ... */
	uint32_t unit;           /* 0 mWh, 1 mAh */
	uint32_t design_capacity, full_capacity, design_voltage;
	uint32_t rate, remaining, voltage;
	uint32_t technology;     /* 0 primary, 1 rechargeable */
};

/* Where the device takes the host's state from: get copies the latest
 * into *out (under the source's own lock; called with vm->dev_lock held,
 * so it must not block on the host). */
struct power_supply_source {
	void (*get)(void *opaque, struct power_supply_status *out);
	void *opaque;
};

struct power_supply;

extern const struct dev_desc power_supply_device;

/* Takes the source's state now (rather than at the next check): a change
 * sets EVT and raises the GPE.  Lock held. */
void power_supply_check(struct power_supply *ps);

#endif
