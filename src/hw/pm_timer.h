/* ACPI power-management timer (ACPI 6.4 section 4.8.3.3): a free-running
 * 32-bit counter at 3.579545 MHz (the FADT sets TMR_VAL_EXT), read at
 * PM_TMR_BLK.  Stateless apart from the clock it reads. */
#ifndef VESSEL_HW_PM_TIMER_H
#define VESSEL_HW_PM_TIMER_H

#include <stdint.h>

struct timer_service;

#define PM_TIMER_HZ 3579545ull

/* ctx->base[0]: PM_TMR_BLK (a 4-byte port); reads ctx->clock. */
extern const struct dev_desc pm_timer_device;
uint32_t pm_timer_read(struct timer_service *ts);

#endif
