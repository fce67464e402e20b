/* ACPI PM1 event/control and GPE0 registers (ACPI 6.4 sections 4.8.3.1,
 * 4.8.3.2 and 4.8.4.1). */
#include "hw/acpi_pm.h"

#include "machine/bus.h"
#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* PM1 status bits we implement and their enables (table 4.15/4.16). */
#define PM1_EN_MASK  0x0721u   /* TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN */
#define PM1_CNT_SLP_EN (1u << 13)

struct acpi_pm {
	struct dev_ctx ctx;           /* irq[0]: the SCI */
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint8_t gpe_sts[ACPI_GPE0_LEN / 2], gpe_en[ACPI_GPE0_LEN / 2];
	bool sci_level;
};

static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	bool sci = (pm->pm1_sts & pm->pm1_en & PM1_EN_MASK) != 0;
	for (unsigned i = 0; i < sizeof(pm->gpe_sts); i++)
		sci |= (pm->gpe_sts[i] & pm->gpe_en[i]) != 0;
	/* The SCI is only signalled in ACPI mode (SCI_EN). */
	sci = sci && (pm->pm1_cnt & ACPI_PM1_SCI_EN);
	if (sci != pm->sci_level) {
		pm->sci_level = sci;
		irq_line_set(&pm->ctx.irq[0], sci);
	}
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pm->pm1_sts |= ACPI_PM1_PWRBTN_STS;
	acpi_pm_update_sci(pm);
}

void acpi_pm_press_sleep_button(struct acpi_pm *pm)
{
	pm->pm1_sts |= ACPI_PM1_SLPBTN_STS;
	acpi_pm_update_sci(pm);
}

bool acpi_pm_rtc_event(struct acpi_pm *pm)
{
	pm->pm1_sts |= ACPI_PM1_RTC_STS;
	acpi_pm_update_sci(pm);
	return (pm->pm1_en & ACPI_PM1_RTC_STS) != 0;
}

bool acpi_pm_wake_enabled(struct acpi_pm *pm, unsigned sts_bit)
{
	/* Each enable sits at its status bit's position (table 4.16). */
	return (pm->pm1_en & sts_bit & PM1_EN_MASK) != 0;
}

void acpi_pm_wake(struct acpi_pm *pm, unsigned sts_bits)
{
	pm->pm1_sts |= (uint16_t)(ACPI_PM1_WAK_STS | sts_bits);
	/* The power-on state of the SCI line: the OS re-enables its events
	 * on resume and sees the wake source in the status bits. */
	pm->pm1_cnt |= ACPI_PM1_SCI_EN;
	acpi_pm_update_sci(pm);
}

unsigned acpi_pm_pending_wake(struct acpi_pm *pm)
{
	unsigned sts = pm->pm1_sts & (ACPI_PM1_PWRBTN_STS | ACPI_PM1_SLPBTN_STS);
	if (pm->pm1_sts & pm->pm1_en & ACPI_PM1_RTC_STS)
		sts |= ACPI_PM1_RTC_STS;
	return sts;
}

unsigned acpi_pm_sleep_type(struct acpi_pm *pm)
{
	return (pm->pm1_cnt >> 10) & 7;
}

void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit)
{
	if (bit >= 8 * sizeof(pm->gpe_sts))
		return;
	pm->gpe_sts[bit / 8] |= 1u << (bit % 8);
	acpi_pm_update_sci(pm);
}

static void acpi_pm_sleep(struct acpi_pm *pm)
{
	unsigned typ = (pm->pm1_cnt >> 10) & 7;
	pm->pm1_cnt &= ~PM1_CNT_SLP_EN;   /* SLP_EN always reads 0 */
	if (typ == ACPI_SLP_TYP_S5) {
		log_info("acpi", "guest entered S5: powering off");
		dev_request(&pm->ctx, DEV_REQ_POWEROFF, 0);
		return;
	}
	if (typ == ACPI_SLP_TYP_S3) {
		/* Suspend to RAM (7.4.2.4): the board stops the processors
		 * and keeps memory; WAK_STS is set when a wake source fires
		 * (acpi_pm_wake).  SLP_TYP stays for the firmware to see. */
		log_info("acpi", "guest entered S3: suspending");
		dev_request(&pm->ctx, DEV_REQ_SUSPEND, 0);
		return;
	}
	if (typ == ACPI_SLP_TYP_S4) {
		/* Hibernate (7.4.2.5): the guest saved its image; the
		 * machine goes off, as from S5, with its own stop reason. */
		log_info("acpi", "guest entered S4: hibernated");
		dev_request(&pm->ctx, DEV_REQ_HIBERNATE, 0);
		return;
	}
	/* Only \_S3, \_S4 and \_S5 are offered in the DSDT; others wake at once. */
	log_debug("acpi", "ignoring sleep type %u", typ);
	pm->pm1_sts |= ACPI_PM1_WAK_STS;
}

static uint64_t acpi_pm_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = off + i;
		uint8_t b = 0;
		if (o < 2)
			b = (uint8_t)(pm->pm1_sts >> (8 * o));
		else if (o < 4)
			b = (uint8_t)(pm->pm1_en >> (8 * (o - 2)));
		else if (o < 6)
			b = (uint8_t)(pm->pm1_cnt >> (8 * (o - 4)));
		else if (o >= ACPI_GPE0_OFF && o < ACPI_GPE0_OFF + ACPI_GPE0_LEN / 2)
			b = pm->gpe_sts[o - ACPI_GPE0_OFF];
		else if (o >= ACPI_GPE0_OFF + ACPI_GPE0_LEN / 2 && o < ACPI_GPE0_OFF + ACPI_GPE0_LEN)
			b = pm->gpe_en[o - ACPI_GPE0_OFF - ACPI_GPE0_LEN / 2];
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static void acpi_pm_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct acpi_pm *pm = opaque;
	bool sleep = false;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = off + i;
		uint8_t b = (uint8_t)(val >> (8 * i));
		if (o < 2) {
			/* Status bits are cleared by writing 1 (4.8.3.1.1). */
			pm->pm1_sts &= (uint16_t)~((unsigned)b << (8 * o));
		} else if (o < 4) {
			unsigned sh = 8 * (unsigned)(o - 2);
			pm->pm1_en = (uint16_t)((pm->pm1_en & ~(0xffu << sh)) | ((unsigned)b << sh)) & PM1_EN_MASK;
		} else if (o < 6) {
			unsigned sh = 8 * (unsigned)(o - 4);
			uint16_t cnt = (uint16_t)((pm->pm1_cnt & ~(0xffu << sh)) | ((unsigned)b << sh));
			/* SCI_EN is owned by the platform (no SMI_CMD): stays set. */
			pm->pm1_cnt = (uint16_t)(cnt | ACPI_PM1_SCI_EN);
			if (cnt & PM1_CNT_SLP_EN)
				sleep = true;
		} else if (o >= ACPI_GPE0_OFF && o < ACPI_GPE0_OFF + ACPI_GPE0_LEN / 2) {
			pm->gpe_sts[o - ACPI_GPE0_OFF] &= (uint8_t)~b;
		} else if (o >= ACPI_GPE0_OFF + ACPI_GPE0_LEN / 2 && o < ACPI_GPE0_OFF + ACPI_GPE0_LEN) {
			pm->gpe_en[o - ACPI_GPE0_OFF - ACPI_GPE0_LEN / 2] = b;
		}
	}
	if (sleep)
		acpi_pm_sleep(pm);
	acpi_pm_update_sci(pm);
}

/* GPE0 is claimed as a range of its own: its offsets start at the block. */
static uint64_t acpi_gpe_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	return acpi_pm_read(opaque, vcpu, off + ACPI_GPE0_OFF, size);
}

static void acpi_gpe_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	acpi_pm_write(opaque, vcpu, off + ACPI_GPE0_OFF, size, val);
}

static const struct bus_ops acpi_pm_ops = { acpi_pm_read, acpi_pm_write };
static const struct bus_ops acpi_gpe_ops = { acpi_gpe_read, acpi_gpe_write };

void acpi_pm_reset(struct acpi_pm *pm)
{
	pm->pm1_sts = 0;
	pm->pm1_en = 0;
	/* Hardware starts in ACPI mode: the FADT has no SMI_CMD port, which
	 * tells the OS there is no legacy mode to leave (5.2.9, SMI_CMD). */
	pm->pm1_cnt = ACPI_PM1_SCI_EN;
	memset(pm->gpe_sts, 0, sizeof(pm->gpe_sts));
	memset(pm->gpe_en, 0, sizeof(pm->gpe_en));
	if (pm->sci_level) {
		pm->sci_level = false;
		irq_line_set(&pm->ctx.irq[0], false);
	}
}

struct acpi_pm *acpi_pm_new(const struct dev_ctx *ctx)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	pm->ctx = *ctx;
	acpi_pm_reset(pm);
	uint64_t base = ctx->base[0];
	if (bus_register(ctx->pio, base + ACPI_PM1_EVT_OFF, 6, &acpi_pm_ops, pm, "acpi-pm1") < 0 ||
	    bus_register(ctx->pio, base + ACPI_GPE0_OFF, ACPI_GPE0_LEN, &acpi_gpe_ops, pm, "acpi-gpe0") < 0) {
		acpi_pm_free(pm);
		return NULL;
	}
	return pm;
}

void acpi_pm_free(struct acpi_pm *pm)
{
	if (!pm)
		return;
	bus_release(pm->ctx.pio, pm);
	free(pm);
}

static void *acpi_pm_create(const struct dev_ctx *ctx) { return acpi_pm_new(ctx); }
static void acpi_pm_reset_dev(void *dev) { acpi_pm_reset(dev); }
static void acpi_pm_destroy(void *dev) { acpi_pm_free(dev); }

const struct dev_desc acpi_pm_device = {
	.name = "acpi-pm", .create = acpi_pm_create, .reset = acpi_pm_reset_dev,
	.save = acpi_pm_snapshot_save, .load = acpi_pm_snapshot_load, .destroy = acpi_pm_destroy,
};

/* Version 1: PM1 status/enable/control, GPE0 status/enable, SCI level. */
static void acpi_pm_write_state(struct acpi_pm *pm, struct hw_snap_writer *w)
{
	hw_snap_u16(w, pm->pm1_sts);
	hw_snap_u16(w, pm->pm1_en);
	hw_snap_u16(w, pm->pm1_cnt);
	hw_snap_bytes(w, pm->gpe_sts, sizeof(pm->gpe_sts));
	hw_snap_bytes(w, pm->gpe_en, sizeof(pm->gpe_en));
	hw_snap_u8(w, pm->sci_level);
}

int64_t acpi_pm_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	acpi_pm_write_state(opaque, &w);
	return hw_snap_end(&w);
}

int acpi_pm_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct acpi_pm *pm = opaque;
	struct hw_snap_writer size = { 0 };
	acpi_pm_write_state(pm, &size);
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "acpi-pm", 1, size.len);
	if (rc < 0)
		return rc;
	pm->pm1_sts = hw_snap_get_u16(&r);
	pm->pm1_en = hw_snap_get_u16(&r);
	pm->pm1_cnt = hw_snap_get_u16(&r);
	hw_snap_get_bytes(&r, pm->gpe_sts, sizeof(pm->gpe_sts));
	hw_snap_get_bytes(&r, pm->gpe_en, sizeof(pm->gpe_en));
	pm->sci_level = hw_snap_get_bool(&r);
	return 0;
}
