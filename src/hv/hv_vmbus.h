/* The VM's VMBus host (src/hv/hv_vmbus.c): the bus of src/hv/vmbus.c on
 * the vCPUs' SynICs, its integration services, the two hypercalls that
 * reach it, and what the VMM asks of it. */
#ifndef VESSEL_HV_HV_VMBUS_H
#define VESSEL_HV_HV_VMBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct hv_vmbus_host;

/* Creates the bus and its devices when the interface and its vmbus
 * feature are on (after the machine's LAPICs exist); event(opaque, name)
 * gets the services' events.  0 (nothing to do when off), or -errno. */
int hv_vmbus_create(struct vm *vm, void (*event)(void *opaque, const char *name), void *opaque);
void hv_vmbus_destroy(struct hv_vmbus_host *h);
/* A SINT slot of vcpu may have come free (EOM, EOI): device lock held. */
void hv_vmbus_slot_freed(struct vm *vm);

/* HvCallPostMessage (TLFS 11.10.2): the hypercall status.  Its
 * HvCallSignalEvent connection ids are registered with
 * hv_add_event_connections() at creation. */
int hv_vmbus_post_message(struct vcpu *vcpu, bool fast, uint64_t in);

/* Asks the guest OS to shut down through the shutdown service: 0,
 * -ENOTCONN when the guest has not opened it (or no VMBus). */
int hv_vmbus_shutdown_guest(struct vm *vm);
bool hv_vmbus_shutdown_ready(struct vm *vm);
/* The machine woke from S3: the guest is interrupted again for what
 * waits in its channels and slots, the heartbeat's clock restarts, and
 * the guest's clock is set from the host's. */
void hv_vmbus_wake(struct vm *vm);

/* Snapshot device "vmbus" (opaque the vm), registered when VMBus is on. */
#define HV_VMBUS_SNAPSHOT_DEVICE "vmbus"
int64_t hv_vmbus_snapshot_save(void *opaque, void *buf, size_t cap);
int hv_vmbus_snapshot_load(void *opaque, const void *buf, size_t len);

struct hv_vmbus_info {
	bool connected;
	uint32_t version;            /* protocol, major << 16 | minor */
	uint64_t posts, signals, messages_out, events_out, bad;
	bool shutdown_open, heartbeat_open, timesync_open, heartbeat_stopped;
	uint64_t heartbeat, heartbeats, time_syncs;
};
/* false when the VM has no VMBus. */
bool hv_vmbus_get_info(struct vm *vm, struct hv_vmbus_info *out);

#endif
