/* Hyper-V integration services on VMBus (src/hv/vmbus_ic.c): shutdown,
 * heartbeat and time synchronization, as Linux's hv_utils drives them
 * (drivers/hv/hv_util.c).  Device lock held for every call. */
#ifndef VESSEL_HV_VMBUS_IC_H
#define VESSEL_HV_VMBUS_IC_H

#include <stdbool.h>
#include <stdint.h>

struct vmbus;
struct timer_service;
struct vmbus_ic;

/* Adds the three devices to the bus; NULL (err_set) on failure.  ts
 * paces the heartbeat; event(opaque, name) reports "heartbeat-stopped"
 * and "heartbeat-resumed" (may be NULL). */
struct vmbus_ic *vmbus_ic_new(struct vmbus *b, struct timer_service *ts,
			      void (*event)(void *opaque, const char *name), void *opaque);
void vmbus_ic_free(struct vmbus_ic *ic);

/* Asks the guest OS to shut down: 0 sent, -ENOTCONN the guest has not
 * opened and negotiated the shutdown channel, -ENOSPC its ring is full. */
int vmbus_ic_shutdown(struct vmbus_ic *ic);
/* Whether vmbus_ic_shutdown() can reach the guest now. */
bool vmbus_ic_shutdown_ready(const struct vmbus_ic *ic);
/* Sends the host's time with the SYNC flag (the guest sets its clock):
 * after a restore or a resume.  0, or -ENOTCONN. */
int vmbus_ic_time_sync(struct vmbus_ic *ic);

/* After an S3 wake: the heartbeat's clock starts again (a sleeping guest
 * answers nothing, and that is no stop), and the guest's clock is set. */
void vmbus_ic_wake(struct vmbus_ic *ic);

struct vmbus_ic_info {
	bool shutdown_open, heartbeat_open, timesync_open;
	uint64_t heartbeat;        /* the last sequence number the guest returned */
	uint64_t heartbeats;       /* answers received */
	bool heartbeat_stopped;    /* no answer for 3 periods after one came */
	uint64_t time_syncs;       /* SYNC messages sent */
};
void vmbus_ic_get_info(const struct vmbus_ic *ic, struct vmbus_ic_info *out);

#endif
