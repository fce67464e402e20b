/* Synthetic interrupt controller, SynIC (TLFS chapter 11): per vCPU, 16
 * synthetic interrupt sources (SINTs) on top of the local APIC, each with
 * its vector, Masked, AutoEOI and Polling bits; a message page with one
 * 256-byte slot per SINT and the MessagePending handshake; an event flags
 * page with 2048 flags per SINT.
 *
 * State is guarded by the device lock, like the LAPIC it extends through
 * lapic_set_sint_ops(): AutoEOI and EOI are the LAPIC asking, never
 * src/hv writing into it. */
#include "hv/synic.h"

#include "hv/hyperv.h"
#include "hw/intc/lapic.h"
#include "util/error.h"
#include "util/log.h"
#include "machine/machine.h"
#include "machine/snap_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SCONTROL_ENABLE 1ull
#define PAGE_ENABLE     1ull
#define SINT_MASKED     (1ull << 16)
#define SINT_AUTO_EOI   (1ull << 17)
#define SINT_POLLING    (1ull << 18)
#define SINT_WRITABLE   (0xffull | SINT_MASKED | SINT_AUTO_EOI | SINT_POLLING)
#define MSG_FLAG_PENDING 1u

struct hv_synic {
	struct vcpu *vcpu;
	uint64_t scontrol, siefp, simp;
	uint64_t sint[HV_SINT_COUNT];
	/* One message waits per SINT while its slot is busy (TLFS 11.9.2). */
	bool queued[HV_SINT_COUNT];
	uint8_t queue[HV_SINT_COUNT][HV_MESSAGE_SIZE];
	struct hv_synic_stats stats;
	void (*slot_hook)(void *opaque);
	void *slot_opaque;
};

static bool synic_auto_eoi(void *opaque, uint8_t vector)
{
	struct hv_synic *s = opaque;
	if (!(s->scontrol & SCONTROL_ENABLE))
		return false;
	for (unsigned i = 0; i < HV_SINT_COUNT; i++) {
		uint64_t r = s->sint[i];
		if ((r & 0xff) == vector && !(r & SINT_MASKED) && (r & SINT_AUTO_EOI)) {
			s->stats.auto_eoi++;
			return true;
		}
	}
	return false;
}

static void synic_deliver_queued(struct hv_synic *s, int only_vector);

static void synic_eoi(void *opaque, uint8_t vector)
{
	/* An APIC EOI of a SINT's vector frees its slot as EOM would. */
	struct hv_synic *s = opaque;
	synic_deliver_queued(s, vector);
	if (s->slot_hook)
		s->slot_hook(s->slot_opaque);
}

static const struct lapic_sint_ops synic_ops = { synic_auto_eoi, synic_eoi };

struct hv_synic *hv_synic_new(struct vcpu *vcpu)
{
	struct hv_synic *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->vcpu = vcpu;
	for (unsigned i = 0; i < HV_SINT_COUNT; i++)
		s->sint[i] = SINT_MASKED;
	if (vcpu->lapic)
		lapic_set_sint_ops(vcpu->lapic, &synic_ops, s);
	return s;
}

void hv_synic_free(struct hv_synic *s)
{
	/* With the machine: its LAPIC is gone already or goes with it. */
	free(s);
}

/* The SINT's interrupt, unless it is masked, polled or the SynIC is off. */
static void synic_raise(struct hv_synic *s, unsigned sint)
{
	uint64_t r = s->sint[sint];
	if (!(s->scontrol & SCONTROL_ENABLE) || (r & (SINT_MASKED | SINT_POLLING)) || !s->vcpu->lapic)
		return;
	s->stats.interrupts++;
	lapic_sint_raise(s->vcpu->lapic, (uint8_t)r);
}

static uint8_t *page_ptr(struct hv_synic *s, uint64_t msr, unsigned sint)
{
	if (!(msr & PAGE_ENABLE))
		return NULL;
	return gmem_ptr(&s->vcpu->vm->mem, (msr & ~0xfffull) + (uint64_t)sint * HV_MESSAGE_SIZE, HV_MESSAGE_SIZE);
}

/* Copies a message into a free slot: the payload first, the type last, so
 * that a guest that sees the type sees the whole message. */
static void slot_write(uint8_t *slot, const uint8_t *msg)
{
	memcpy(slot + 4, msg + 4, HV_MESSAGE_SIZE - 4);
	slot[5] &= (uint8_t)~MSG_FLAG_PENDING;
	uint32_t type;
	memcpy(&type, msg, 4);
	__atomic_store_n((uint32_t *)slot, type, __ATOMIC_RELEASE);
}

static bool slot_free(const uint8_t *slot)
{
	return __atomic_load_n((const uint32_t *)slot, __ATOMIC_ACQUIRE) == HV_MESSAGE_NONE;
}

/* After EOM (only_vector -1) or an EOI of only_vector: each waiting
 * message whose slot the guest has freed goes in, with its interrupt. */
static void synic_deliver_queued(struct hv_synic *s, int only_vector)
{
	for (unsigned i = 0; i < HV_SINT_COUNT; i++) {
		if (!s->queued[i] || (only_vector >= 0 && (int)(s->sint[i] & 0xff) != only_vector))
			continue;
		uint8_t *slot = page_ptr(s, s->simp, i);
		if (!slot || !slot_free(slot))
			continue;
		slot_write(slot, s->queue[i]);
		s->queued[i] = false;
		s->stats.messages++;
		synic_raise(s, i);
	}
}

int hv_synic_post(struct hv_synic *s, unsigned sint, uint32_t type, uint64_t origin, const void *payload,
		  unsigned len)
{
	if (sint >= HV_SINT_COUNT || type == HV_MESSAGE_NONE || len > HV_MESSAGE_PAYLOAD)
		return -EINVAL;
	uint8_t *slot = page_ptr(s, s->simp, sint);
	if (!(s->scontrol & SCONTROL_ENABLE) || !slot || (s->sint[sint] & SINT_MASKED))
		return -ENODEV;
	uint8_t msg[HV_MESSAGE_SIZE] = { 0 };
	memcpy(msg, &type, 4);
	msg[4] = (uint8_t)len;
	memcpy(msg + 8, &origin, 8);
	if (len)
		memcpy(msg + 16, payload, len);
	if (!slot_free(slot)) {
		if (s->queued[sint])
			return -EAGAIN;   /* HV_STATUS_INSUFFICIENT_BUFFERS for the sender */
		memcpy(s->queue[sint], msg, sizeof(msg));
		s->queued[sint] = true;
		/* MessagePending: the guest writes EOM when it frees the slot. */
		__atomic_fetch_or(&slot[5], MSG_FLAG_PENDING, __ATOMIC_RELEASE);
		s->stats.queued++;
		return 1;
	}
	slot_write(slot, msg);
	s->stats.messages++;
	synic_raise(s, sint);
	return 0;
}

int hv_synic_signal_event(struct hv_synic *s, unsigned sint, unsigned flag)
{
	if (sint >= HV_SINT_COUNT || flag >= HV_MESSAGE_SIZE * 8)
		return -EINVAL;
	uint8_t *flags = page_ptr(s, s->siefp, sint);
	if (!(s->scontrol & SCONTROL_ENABLE) || !flags || (s->sint[sint] & SINT_MASKED))
		return -ENODEV;
	uint8_t bit = (uint8_t)(1u << (flag & 7));
	if (__atomic_fetch_or(&flags[flag / 8], bit, __ATOMIC_ACQ_REL) & bit)
		return 1;   /* already signalled: no second interrupt (TLFS 11.8.4) */
	s->stats.events++;
	synic_raise(s, sint);
	return 0;
}

void hv_synic_kick(struct hv_synic *s, unsigned sint)
{
	if (sint < HV_SINT_COUNT)
		synic_raise(s, sint);
}

/* The page is cleared when the guest enables it, as Hyper-V does. */
static void page_enable(struct hv_synic *s, uint64_t old, uint64_t val)
{
	if (!(val & PAGE_ENABLE) || ((old & PAGE_ENABLE) && (old & ~0xfffull) == (val & ~0xfffull)))
		return;
	uint8_t *p = gmem_ptr(&s->vcpu->vm->mem, val & ~0xfffull, 4096);
	if (p)
		memset(p, 0, 4096);
	else
		log_warn("hyperv", "cpu%u: SynIC page at %#llx is not in RAM", s->vcpu->id,
			 (unsigned long long)(val & ~0xfffull));
}

int hv_synic_msr(struct hv_synic *s, uint32_t index, bool is_write, uint64_t *val)
{
	if (index >= HV_MSR_SINT0 && index < HV_MSR_SINT0 + HV_SINT_COUNT) {
		unsigned i = index - HV_MSR_SINT0;
		if (!is_write) {
			*val = s->sint[i];
			return 0;
		}
		uint64_t v = *val;
		/* Vectors 0-15 are not interrupts (TLFS 11.8.2). */
		if (v & ~SINT_WRITABLE || ((v & 0xff) < 16 && !(v & SINT_MASKED)))
			return -EINVAL;
		s->sint[i] = v;
		/* Unmasked with a message waiting in its slot: interrupt again. */
		if (!(v & SINT_MASKED)) {
			uint8_t *slot = page_ptr(s, s->simp, i);
			if (slot && !slot_free(slot))
				synic_raise(s, i);
		}
		return 0;
	}
	switch (index) {
	case HV_MSR_SCONTROL:
		if (is_write) {
			if (*val & ~SCONTROL_ENABLE)
				return -EINVAL;
			s->scontrol = *val;
		} else {
			*val = s->scontrol;
		}
		return 0;
	case HV_MSR_SVERSION:
		if (is_write)
			return -EINVAL;
		*val = 1;   /* TLFS 11.8.1 */
		return 0;
	case HV_MSR_SIEFP:
	case HV_MSR_SIMP: {
		uint64_t *reg = index == HV_MSR_SIMP ? &s->simp : &s->siefp;
		if (!is_write) {
			*val = *reg;
			return 0;
		}
		if (*val & 0xffeull)
			return -EINVAL;
		page_enable(s, *reg, *val);
		*reg = *val;
		return 0;
	}
	case HV_MSR_EOM:
		if (!is_write) {
			*val = 0;
			return 0;
		}
		s->stats.eoms++;
		synic_deliver_queued(s, -1);
		if (s->slot_hook)
			s->slot_hook(s->slot_opaque);
		return 0;
	}
	return -EINVAL;
}

void hv_synic_save(const struct hv_synic *s, struct hw_snap_writer *w)
{
	hw_snap_u64(w, s->scontrol);
	hw_snap_u64(w, s->siefp);
	hw_snap_u64(w, s->simp);
	for (unsigned i = 0; i < HV_SINT_COUNT; i++)
		hw_snap_u64(w, s->sint[i]);
	for (unsigned i = 0; i < HV_SINT_COUNT; i++) {
		hw_snap_u8(w, s->queued[i]);
		hw_snap_bytes(w, s->queue[i], HV_MESSAGE_SIZE);
	}
}

int hv_synic_load(struct hv_synic *s, struct hw_snap_reader *r, bool check_only)
{
	uint64_t scontrol = hw_snap_get_u64(r), siefp = hw_snap_get_u64(r), simp = hw_snap_get_u64(r);
	uint64_t sint[HV_SINT_COUNT];
	bool queued[HV_SINT_COUNT];
	uint8_t queue[HV_SINT_COUNT][HV_MESSAGE_SIZE];
	for (unsigned i = 0; i < HV_SINT_COUNT; i++)
		sint[i] = hw_snap_get_u64(r);
	for (unsigned i = 0; i < HV_SINT_COUNT; i++) {
		queued[i] = hw_snap_get_bool(r);
		hw_snap_get_bytes(r, queue[i], HV_MESSAGE_SIZE);
	}
	if ((scontrol & ~SCONTROL_ENABLE) || (siefp & 0xffeull) || (simp & 0xffeull))
		return err_set(-EINVAL, "hyperv state: bad SynIC register");
	for (unsigned i = 0; i < HV_SINT_COUNT; i++)
		if ((sint[i] & ~SINT_WRITABLE) || ((sint[i] & 0xff) < 16 && !(sint[i] & SINT_MASKED)))
			return err_set(-EINVAL, "hyperv state: bad SINT%u %#llx", i, (unsigned long long)sint[i]);
	if (check_only)
		return 0;
	/* The pages are in the restored RAM already: nothing is cleared. */
	s->scontrol = scontrol;
	s->siefp = siefp;
	s->simp = simp;
	memcpy(s->sint, sint, sizeof(sint));
	memcpy(s->queued, queued, sizeof(queued));
	memcpy(s->queue, queue, sizeof(queue));
	return 0;
}

void hv_synic_set_slot_hook(struct hv_synic *s, void (*fn)(void *opaque), void *opaque)
{
	s->slot_hook = fn;
	s->slot_opaque = opaque;
}

void hv_synic_get_stats(const struct hv_synic *s, struct hv_synic_stats *out)
{
	*out = s->stats;
}
