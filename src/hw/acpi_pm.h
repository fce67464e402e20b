/* ACPI fixed hardware (ACPI 6.4 chapter 4.8): PM1a event and control
 * blocks, GPE0 block, SCI on ISA IRQ9 (level, active high), sleep control
 * (SLP_TYP for S5 powers the VM off, for S3 suspends it) and the fixed
 * power and sleep buttons.  The PM
 * timer is a device of its own (pm_timer.h).  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_ACPI_PM_H
#define VESSEL_HW_ACPI_PM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct acpi_pm;

/* Offsets inside the block at PC_PORT_ACPI_PM (also in the FADT). */
#define ACPI_PM1_EVT_OFF  0x00   /* PM1_STS (2 bytes), PM1_EN (2 bytes) */
#define ACPI_PM1_CNT_OFF  0x04   /* 2 bytes */
#define ACPI_PM_TMR_OFF   0x08   /* 4 bytes */
#define ACPI_GPE0_OFF     0x20   /* GPE0_STS (8 bytes), GPE0_EN (8 bytes) */
#define ACPI_GPE0_LEN     16
/* SLP_TYP values the DSDT's \_S3 and \_S5 objects name. */
#define ACPI_SLP_TYP_S3   1
#define ACPI_SLP_TYP_S4   4
#define ACPI_SLP_TYP_S5   5

#define ACPI_PM1_TMR_STS    (1u << 0)
#define ACPI_PM1_PWRBTN_STS (1u << 8)
#define ACPI_PM1_SLPBTN_STS (1u << 9)
#define ACPI_PM1_RTC_STS    (1u << 10)
#define ACPI_PM1_WAK_STS    (1u << 15)
#define ACPI_PM1_SCI_EN     (1u << 0)

/* ctx->base[0]: the block (PM1a event at +0, GPE0 at +0x20); ctx->irq[0]:
 * the SCI; asks for DEV_REQ_POWEROFF on S5 and DEV_REQ_SUSPEND on S3. */
struct acpi_pm *acpi_pm_new(const struct dev_ctx *ctx);
void acpi_pm_free(struct acpi_pm *pm);
void acpi_pm_reset(struct acpi_pm *pm);
extern const struct dev_desc acpi_pm_device;
void acpi_pm_press_power_button(struct acpi_pm *pm);
/* The fixed-feature sleep button (4.8.2.2.2): SLPBTN_STS, an SCI if enabled. */
void acpi_pm_press_sleep_button(struct acpi_pm *pm);
/* The RTC's interrupt output went high: RTC_STS (4.8.2.1.1).  Returns
 * whether RTC_EN is set, i.e. whether the event may wake the machine. */
bool acpi_pm_rtc_event(struct acpi_pm *pm);
/* Whether PM1_EN enables the wake of the given PM1 status bit. */
bool acpi_pm_wake_enabled(struct acpi_pm *pm, unsigned sts_bit);
/* The machine leaves S3 (7.4.2, 16.1.5): WAK_STS set, SLP_TYP kept (the
 * firmware reads it to tell a resume from a boot), enables kept;
 * sts_bits (e.g. PWRBTN_STS) says what woke it. */
void acpi_pm_wake(struct acpi_pm *pm, unsigned sts_bits);
/* The wake event already pending when the machine stops (its status set
 * since the OS cleared them before SLP_EN): PWRBTN_STS, SLPBTN_STS, or
 * RTC_STS with RTC_EN; 0 if none.  Hardware wakes at once then. */
unsigned acpi_pm_pending_wake(struct acpi_pm *pm);
/* SLP_TYP of PM1_CNT: ACPI_SLP_TYP_S3 after a wake from S3. */
unsigned acpi_pm_sleep_type(struct acpi_pm *pm);
/* Raises a general-purpose event (GPE0 bit), e.g. for device hot-plug. */
void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t acpi_pm_snapshot_save(void *opaque, void *buf, size_t cap);
int acpi_pm_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
