/* VMBus host (src/hv/vmbus.c): the channel bus of Hyper-V's guest
 * interface as Linux's hv_vmbus speaks it (drivers/hv/connection.c,
 * channel_mgmt.c, channel.c, ring_buffer.c; TLFS chapter 11 for the
 * messages and events it rides on).  The guest posts channel messages
 * with HvCallPostMessage and signals channels with HvCallSignalEvent;
 * vessel answers through the SynIC of the vCPU the guest named, by a
 * message in its VMBus SINT's slot or a flag in its event flags page.
 *
 * The bus knows nothing of vCPUs: it posts and signals through a
 * transport (the SynICs in src/hv/hyperv.c, a fake in the unit tests).
 * Everything here runs with the device lock held. */
#ifndef VESSEL_HV_VMBUS_H
#define VESSEL_HV_VMBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_memory;
struct vmbus;
struct vmbus_channel;

/* The SINT Linux uses for VMBus (VMBUS_MESSAGE_SINT). */
#define VMBUS_SINT 2
/* The SynIC message type of a channel message. */
#define VMBUS_HV_MESSAGE_TYPE 1
/* The connection ids the guest posts channel messages to: 1 before
 * protocol 5.0, 4 for INITIATE_CONTACT from 5.0 on. */
#define VMBUS_MESSAGE_CONNECTION_ID   1
#define VMBUS_MESSAGE_CONNECTION_ID_4 4
/* A channel's event connection id is this plus its relid. */
#define VMBUS_CHANNEL_CONNECTION_BASE 0x10000

/* Hypercall status codes the bus returns (TLFS appendix B). */
#define VMBUS_HV_STATUS_SUCCESS             0
#define VMBUS_HV_STATUS_INVALID_PARAMETER   5
#define VMBUS_HV_STATUS_INVALID_CONNECTION_ID 0x12
#define VMBUS_HV_STATUS_INSUFFICIENT_BUFFERS 0x13

/* How the bus reaches the guest. */
struct vmbus_transport {
	/* A message of len (<= 240) bytes into the VMBus SINT's slot of
	 * VP vp: 0 delivered or waiting in the slot's queue, -EAGAIN the
	 * SINT cannot take one now (the bus retries at vmbus_slot_freed()),
	 * another negative errno: lost (no SynIC, page or SINT). */
	int (*post)(void *opaque, unsigned vp, const void *msg, unsigned len);
	/* Sets event flag `flag` of the VMBus SINT on VP vp and interrupts. */
	void (*signal)(void *opaque, unsigned vp, unsigned flag);
	/* Raises the VMBus SINT on VP vp again (vmbus_kick()). */
	void (*kick)(void *opaque, unsigned vp);
	unsigned n_vps;
};

/* A device on the bus (an integration service).  The callbacks run with
 * the device lock held; ch is valid until closed() returns. */
struct vmbus_device_ops {
	const char *name;                 /* for log lines */
	uint8_t type[16], instance[16];   /* GUIDs in their wire form */
	void (*opened)(struct vmbus_channel *ch, void *opaque);
	void (*closed)(struct vmbus_channel *ch, void *opaque);
	/* An in-band data packet from the guest (its payload, after the
	 * descriptor).  A negative return: malformed, the channel closes. */
	int (*packet)(struct vmbus_channel *ch, void *opaque, const uint8_t *data, size_t len, uint64_t trans_id);
};

struct vmbus_stats {
	uint64_t posts, signals;          /* guest hypercalls accepted */
	uint64_t messages_out, events_out; /* host messages posted, channel interrupts */
	uint64_t bad;                     /* malformed messages and rings */
};

struct vmbus *vmbus_new(struct guest_memory *mem, const struct vmbus_transport *t, void *opaque);
void vmbus_free(struct vmbus *b);
/* Adds a device (before the guest connects); its relid, or -errno. */
int vmbus_add_device(struct vmbus *b, const struct vmbus_device_ops *ops, void *opaque);

/* HvCallPostMessage to connection conn_id (TLFS 11.10.2): a hypercall status. */
int vmbus_post_message(struct vmbus *b, uint32_t conn_id, uint32_t type, const void *payload, uint32_t len);
/* HvCallSignalEvent to conn_id (TLFS 11.10.3): a hypercall status. */
int vmbus_signal_event(struct vmbus *b, uint32_t conn_id, uint16_t flag);
/* A VMBus SINT slot came free: messages that waited go out. */
void vmbus_slot_freed(struct vmbus *b);

/* After an S3 wake: interrupts every VP that has an open channel or gets
 * the bus's messages, so that the guest looks at flags and slots set
 * while it slept (the interrupts then pending were lost). */
void vmbus_kick(struct vmbus *b);

/* Signals again each open channel whose host-to-guest ring holds packets
 * the guest has not read while it wants interrupts: a flag the guest lost
 * (its SynIC pages are cleared when it enables them again, as Linux does
 * around S3) is set again.  Costs nothing when the flag is still set. */
void vmbus_renotify(struct vmbus *b);

/* Sends an in-band data packet (VM_PKT_DATA_INBAND) on an open channel:
 * 0, -ENOSPC the guest's ring is full, -ENOTCONN not open. */
int vmbus_channel_send(struct vmbus_channel *ch, const void *data, size_t len, uint64_t trans_id);
bool vmbus_channel_is_open(const struct vmbus_channel *ch);
/* Whether the guest is connected (after INITIATE_CONTACT). */
bool vmbus_connected(const struct vmbus *b);
uint32_t vmbus_version(const struct vmbus *b);
/* The open channel of the device with this relid, or NULL. */
struct vmbus_channel *vmbus_channel_of(struct vmbus *b, int relid);
void vmbus_get_stats(const struct vmbus *b, struct vmbus_stats *out);

/* Snapshot state (docs/snapshot.md, device "vmbus"): the connection, the
 * GPADLs and the open channels.  The rings are in the saved RAM.  Load
 * checks everything first and changes nothing on -EINVAL (err_set); the
 * devices' opened() runs again for each open channel (so a service can
 * act on the restore). */
int64_t vmbus_save(struct vmbus *b, void *buf, size_t cap);
int vmbus_load(struct vmbus *b, const void *buf, size_t len);

#endif
