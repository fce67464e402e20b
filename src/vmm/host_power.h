/* The host's AC and battery state for the guest (--host-power-status,
 * docs/power.md "The host's power state"): read from a power-supply
 * class directory (/sys/class/power_supply, or a tree of the same shape)
 * by a thread of its own, and handed to the board's AC adapter and
 * battery (hw/power_supply.h) through a struct power_supply_source. */
#ifndef VESSEL_VMM_HOST_POWER_H
#define VESSEL_VMM_HOST_POWER_H

#include "hw/power_supply.h"

#define HOST_POWER_DEFAULT_DIR "/sys/class/power_supply"
#define HOST_POWER_POLL_MS 500

struct host_power;

/* The state dir describes now, in _BIF/_BST units: 0 or -errno with
 * err_set() when dir cannot be listed. */
int host_power_read(const char *dir, struct power_supply_status *out);

/* Reads dir once (an error is the caller's: a bad directory) and starts
 * the thread that reads it again every period_ms.  Call after the
 * capabilities are dropped (threads keep the set they start with). */
int host_power_start(const char *dir, unsigned period_ms, struct host_power **out);
/* Stops the thread; NULL is fine. */
void host_power_stop(struct host_power *hp);
/* What the board takes the state from; lives as long as hp. */
const struct power_supply_source *host_power_source(struct host_power *hp);

#endif
