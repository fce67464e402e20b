/* The VM's VMBus host: src/hv/vmbus.c's bus with the SynICs as its
 * transport, the integration services of src/hv/vmbus_ic.c on it, and
 * the hypercalls HvCallPostMessage and HvCallSignalEvent, whose
 * connection ids the bus owns (TLFS 11.10).  docs/hyperv.md "VMBus". */
#include "hv/hv_vmbus.h"

#include "hv/hyperv.h"
#include "hv/synic.h"
#include "hv/vmbus.h"
#include "hv/vmbus_ic.h"
#include "hw/intc/lapic.h"
#include "machine/machine.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Hypercall status codes (TLFS appendix B). */
#define HV_STATUS_INVALID_ALIGNMENT    4
#define HV_STATUS_INVALID_PARAMETER    5

struct hv_vmbus_host {
	struct vm *vm;
	void (*event)(void *opaque, const char *name);
	void *event_opaque;
	struct vmbus *bus;
	struct vmbus_ic *ic;
};

static struct hv_synic *vp_synic(struct vm *vm, unsigned vp)
{
	return vp < vm->n_vcpus && vm->vcpus[vp] ? hv_vcpu_synic(vm->vcpus[vp]) : NULL;
}

static int transport_post(void *opaque, unsigned vp, const void *msg, unsigned len)
{
	struct hv_synic *s = vp_synic(opaque, vp);
	if (!s)
		return -ENODEV;
	int rc = hv_synic_post(s, VMBUS_SINT, VMBUS_HV_MESSAGE_TYPE, 0, msg, len);
	return rc > 0 ? 0 : rc;   /* 1: it waits in the slot's queue */
}

static void transport_signal(void *opaque, unsigned vp, unsigned flag)
{
	struct hv_synic *s = vp_synic(opaque, vp);
	if (s)
		hv_synic_signal_event(s, VMBUS_SINT, flag);
}

static void transport_kick(void *opaque, unsigned vp)
{
	struct hv_synic *s = vp_synic(opaque, vp);
	if (s)
		hv_synic_kick(s, VMBUS_SINT);
}

/* HvCallSignalEvent to a channel's connection id (TLFS 11.10.3; the
 * flag number is the channel's own: see vmbus_signal_event()). */
static int channel_signalled(void *opaque, struct vcpu *caller, uint32_t conn_id, unsigned flag)
{
	(void)caller;
	struct hv_vmbus_host *h = opaque;
	return vmbus_signal_event(h->bus, conn_id, (uint16_t)flag);
}

/* The services' events, but none while the machine sleeps in S3: a
 * sleeping guest answers no heartbeat, and that is no stop. */
static void host_event(void *opaque, const char *name)
{
	struct hv_vmbus_host *h = opaque;
	if (!atomic_load(&h->vm->suspended) && h->event)
		h->event(h->event_opaque, name);
}

int hv_vmbus_create(struct vm *vm, void (*event)(void *opaque, const char *name), void *opaque)
{
	if (!vm->hv || !hv_has_feature(vm, HV_FEAT_VMBUS) || !vm->n_vcpus || !vm->vcpus[0]->lapic)
		return 0;
	struct hv_vmbus_host *h = calloc(1, sizeof(*h));
	if (!h)
		return err_set(-ENOMEM, "out of memory");
	struct vmbus_transport t = { transport_post, transport_signal, transport_kick, vm->n_vcpus };
	h->vm = vm;
	h->event = event;
	h->event_opaque = opaque;
	h->bus = vmbus_new(&vm->mem, &t, vm);
	if (h->bus)
		h->ic = vmbus_ic_new(h->bus, lapic_timer_service(vm->vcpus[0]->lapic), host_event, h);
	if (!h->bus || !h->ic) {
		hv_vmbus_destroy(h);
		return err_set(-ENOMEM, "VMBus: out of memory");
	}
	/* The channels' event connection ids (relids start at 1). */
	int rc = hv_add_event_connections(vm, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0xffff, channel_signalled, h);
	if (rc < 0) {
		hv_vmbus_destroy(h);
		return rc;
	}
	hv_vm_set_vmbus(vm, h);
	return 0;
}

void hv_vmbus_destroy(struct hv_vmbus_host *h)
{
	if (!h)
		return;
	vmbus_ic_free(h->ic);
	vmbus_free(h->bus);
	free(h);
}

void hv_vmbus_slot_freed(struct vm *vm)
{
	struct hv_vmbus_host *h = hv_vm_vmbus(vm);
	if (h)
		vmbus_slot_freed(h->bus);
}

int hv_vmbus_post_message(struct vcpu *vcpu, bool fast, uint64_t in)
{
	/* HV_INPUT_POST_MESSAGE: connection id, reserved, message type,
	 * payload size, 240 payload bytes; memory input only. */
	struct hv_vmbus_host *h = hv_vm_vmbus(vcpu->vm);
	uint8_t msg[16 + 240];
	if (!h)
		return VMBUS_HV_STATUS_INVALID_CONNECTION_ID;
	if (fast)
		return HV_STATUS_INVALID_PARAMETER;
	if (in & 7)
		return HV_STATUS_INVALID_ALIGNMENT;
	if (gmem_read(&vcpu->vm->mem, in, msg, 16) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	uint32_t conn, type, size;
	memcpy(&conn, msg, 4);
	memcpy(&type, msg + 8, 4);
	memcpy(&size, msg + 12, 4);
	if (size > 240 || gmem_read(&vcpu->vm->mem, in + 16, msg + 16, size) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	pthread_mutex_lock(&vcpu->vm->dev_lock);
	int st = vmbus_post_message(h->bus, conn, type, msg + 16, size);
	pthread_mutex_unlock(&vcpu->vm->dev_lock);
	return st;
}

int hv_vmbus_shutdown_guest(struct vm *vm)
{
	struct hv_vmbus_host *h = hv_vm_vmbus(vm);
	if (!h)
		return err_set(-ENOTCONN, "the guest has no VMBus (Hyper-V or its vmbus feature is off)");
	pthread_mutex_lock(&vm->dev_lock);
	int rc = vmbus_ic_shutdown(h->ic);
	pthread_mutex_unlock(&vm->dev_lock);
	if (rc == -ENOTCONN)
		return err_set(rc, "the guest OS has not opened the VMBus shutdown service (hv_utils not loaded?)");
	if (rc < 0)
		return err_set(rc, "cannot reach the guest's shutdown service: its ring is full");
	return 0;
}

bool hv_vmbus_shutdown_ready(struct vm *vm)
{
	struct hv_vmbus_host *h = hv_vm_vmbus(vm);
	if (!h)
		return false;
	pthread_mutex_lock(&vm->dev_lock);
	bool ok = vmbus_ic_shutdown_ready(h->ic);
	pthread_mutex_unlock(&vm->dev_lock);
	return ok;
}

void hv_vmbus_wake(struct vm *vm)
{
	struct hv_vmbus_host *h = hv_vm_vmbus(vm);
	if (!h)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	vmbus_kick(h->bus);
	vmbus_ic_wake(h->ic);
	pthread_mutex_unlock(&vm->dev_lock);
}

int64_t hv_vmbus_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct hv_vmbus_host *h = hv_vm_vmbus(opaque);
	return vmbus_save(h->bus, buf, cap);
}

int hv_vmbus_snapshot_load(void *opaque, const void *buf, size_t len)
{
	/* The open channels' services negotiate again, and the time service
	 * then sets the guest's clock (src/hv/vmbus_ic.c). */
	struct hv_vmbus_host *h = hv_vm_vmbus(opaque);
	return vmbus_load(h->bus, buf, len);
}

bool hv_vmbus_get_info(struct vm *vm, struct hv_vmbus_info *out)
{
	struct hv_vmbus_host *h = hv_vm_vmbus(vm);
	memset(out, 0, sizeof(*out));
	if (!h)
		return false;
	struct vmbus_stats st;
	struct vmbus_ic_info ic;
	pthread_mutex_lock(&vm->dev_lock);
	vmbus_get_stats(h->bus, &st);
	vmbus_ic_get_info(h->ic, &ic);
	out->connected = vmbus_connected(h->bus);
	out->version = vmbus_version(h->bus);
	pthread_mutex_unlock(&vm->dev_lock);
	out->posts = st.posts;
	out->signals = st.signals;
	out->messages_out = st.messages_out;
	out->events_out = st.events_out;
	out->bad = st.bad;
	out->shutdown_open = ic.shutdown_open;
	out->heartbeat_open = ic.heartbeat_open;
	out->timesync_open = ic.timesync_open;
	out->heartbeat_stopped = ic.heartbeat_stopped;
	out->heartbeat = ic.heartbeat;
	out->heartbeats = ic.heartbeats;
	out->time_syncs = ic.time_syncs;
	return true;
}
