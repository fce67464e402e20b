/* Integration services (ICs) on VMBus: shutdown, heartbeat and time
 * synchronization, the three that Linux's hv_utils drives itself
 * (drivers/hv/hv_util.c; message layouts in include/linux/hyperv.h).
 *
 * Every IC message is a pipe header (flags, size), an IC header (framework
 * and message versions, type, size, status, transaction, flags) and the
 * type's data.  The host speaks first: when the guest opens a channel,
 * vessel offers the versions it speaks (ICMSGTYPE_NEGOTIATE) and the guest
 * answers with its choice.  vessel offers one framework version (3.0) and
 * one version per service, so the outcome of a negotiation is known and a
 * restored channel needs no state beyond its being open: on a restore the
 * negotiation simply runs again, and the time service then sets the
 * guest's clock.
 *
 * - shutdown 3.0: flags 0 asks for an orderly power-off;
 * - heartbeat 3.0: every second the host sends a sequence number, the
 *   guest returns it plus one;
 * - timesync 3.0: the host's time in 100 ns units since 1601 with the
 *   SYNC flag, which makes Linux set its clock (version 4 would carry the
 *   reference time of the sample, which 3.0 lets the guest take itself). */
#include "hv/vmbus_ic.h"

#include "hv/vmbus.h"
#include "machine/timer.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ICMSG_NEGOTIATE 0
#define ICMSG_HEARTBEAT 1
#define ICMSG_SHUTDOWN  3
#define ICMSG_TIMESYNC  4
#define ICFLAG_TRANSACTION 1
#define ICFLAG_REQUEST     2
#define ICFLAG_RESPONSE    4
#define TIMESYNC_FLAG_SYNC 1

#define PIPE_HDR 8
#define IC_HDR   20
#define ICMSG_HDR (PIPE_HDR + IC_HDR)
#define FRAMEWORK_VERSION 0x00030000u   /* 3.0 */
#define HEARTBEAT_PERIOD_NS 1000000000ull
#define HEARTBEAT_STOPPED_PERIODS 3
/* 100 ns intervals from 1601-01-01 to 1970-01-01 (Windows file time). */
#define FILETIME_UNIX_EPOCH 116444736000000000ull

enum ic_kind { IC_SHUTDOWN, IC_HEARTBEAT, IC_TIMESYNC, IC_COUNT };

struct ic_service {
	struct vmbus_ic *ic;
	enum ic_kind kind;
	struct vmbus_channel *ch;
	bool negotiated;
	uint64_t next_trans;
};

struct vmbus_ic {
	struct vmbus *bus;
	struct ic_service svc[IC_COUNT];
	struct vm_timer hb_timer;
	struct timer_service *ts;
	void (*event)(void *opaque, const char *name);
	void *event_opaque;
	bool hb_outstanding, hb_stopped;
	uint64_t hb_seq, hb_answers, hb_sent_ns;
	uint64_t time_syncs;
};

/* The service versions offered, one each (major << 16 | minor). */
static const uint32_t service_version[IC_COUNT] = { 0x00030000u, 0x00030000u, 0x00030000u };

static const char *const names[IC_COUNT] = { "shutdown IC", "heartbeat IC", "timesync IC" };

static inline void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Fills the pipe and IC headers of a request of type with dlen data bytes. */
static void ic_header(uint8_t *m, const struct ic_service *s, uint16_t type, unsigned dlen)
{
	put32(m, 1);
	put32(m + 4, IC_HDR + dlen);
	uint8_t *h = m + PIPE_HDR;
	put16(h, FRAMEWORK_VERSION >> 16);
	put16(h + 2, FRAMEWORK_VERSION & 0xffff);
	put16(h + 4, type);
	put16(h + 6, (uint16_t)(service_version[s->kind] >> 16));
	put16(h + 8, (uint16_t)service_version[s->kind]);
	put16(h + 10, (uint16_t)dlen);
	put32(h + 12, 0);
	h[16] = (uint8_t)s->next_trans;
	h[17] = ICFLAG_TRANSACTION | ICFLAG_REQUEST;
}

static int ic_send(struct ic_service *s, const uint8_t *m, unsigned len)
{
	if (!s->ch)
		return -ENOTCONN;
	return vmbus_channel_send(s->ch, m, len, ++s->next_trans);
}

static void send_negotiate(struct ic_service *s)
{
	/* icmsg_negotiate: framework count, message count, reserved, then
	 * the framework versions and the message versions. */
	uint8_t m[ICMSG_HDR + 8 + 2 * 4] = { 0 };
	ic_header(m, s, ICMSG_NEGOTIATE, 16);
	uint8_t *d = m + ICMSG_HDR;
	put16(d, 1);
	put16(d + 2, 1);
	put16(d + 8, FRAMEWORK_VERSION >> 16);
	put16(d + 10, FRAMEWORK_VERSION & 0xffff);
	put16(d + 12, (uint16_t)(service_version[s->kind] >> 16));
	put16(d + 14, (uint16_t)service_version[s->kind]);
	if (ic_send(s, m, sizeof(m)) < 0)
		log_warn("vmbus", "%s: cannot send the version offer", names[s->kind]);
}

static uint64_t host_filetime(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return FILETIME_UNIX_EPOCH + (uint64_t)now.tv_sec * 10000000u + (uint64_t)now.tv_nsec / 100;
}

int vmbus_ic_time_sync(struct vmbus_ic *ic)
{
	struct ic_service *s = &ic->svc[IC_TIMESYNC];
	if (!s->ch || !s->negotiated)
		return -ENOTCONN;
	/* ictimesync_data: parent (host) time, child time, round trip, flags. */
	uint8_t m[ICMSG_HDR + 25] = { 0 };
	ic_header(m, s, ICMSG_TIMESYNC, 25);
	put64(m + ICMSG_HDR, host_filetime());
	m[ICMSG_HDR + 24] = TIMESYNC_FLAG_SYNC;
	int rc = ic_send(s, m, sizeof(m));
	if (rc == 0) {
		ic->time_syncs++;
		log_info("vmbus", "timesync IC: guest clock set to the host's");
	}
	return rc;
}

bool vmbus_ic_shutdown_ready(const struct vmbus_ic *ic)
{
	return ic && ic->svc[IC_SHUTDOWN].ch && ic->svc[IC_SHUTDOWN].negotiated;
}

int vmbus_ic_shutdown(struct vmbus_ic *ic)
{
	struct ic_service *s = &ic->svc[IC_SHUTDOWN];
	if (!vmbus_ic_shutdown_ready(ic))
		return -ENOTCONN;
	/* shutdown_msg_data: reason, timeout, flags (0: power off), message. */
	static const char text[] = "vessel: shutdown requested by the host";
	uint8_t *m = calloc(1, ICMSG_HDR + 12 + 2048);
	if (!m)
		return -ENOMEM;
	ic_header(m, s, ICMSG_SHUTDOWN, 12 + 2048);
	memcpy(m + ICMSG_HDR + 12, text, sizeof(text));
	int rc = ic_send(s, m, ICMSG_HDR + 12 + 2048);
	free(m);
	if (rc == 0)
		log_info("vmbus", "shutdown IC: asked the guest OS to shut down");
	return rc;
}

void vmbus_ic_wake(struct vmbus_ic *ic)
{
	ic->hb_sent_ns = vm_clock_ns(ic->ts);
	if (ic->hb_stopped) {
		ic->hb_stopped = false;
		if (ic->event)
			ic->event(ic->event_opaque, "heartbeat-resumed");
	}
	vmbus_ic_time_sync(ic);
}

static void heartbeat_send(struct vmbus_ic *ic)
{
	struct ic_service *s = &ic->svc[IC_HEARTBEAT];
	/* heartbeat_msg_data: sequence number, 32 reserved bytes. */
	uint8_t m[ICMSG_HDR + 40] = { 0 };
	ic_header(m, s, ICMSG_HEARTBEAT, 40);
	put64(m + ICMSG_HDR, ic->hb_seq);
	if (ic_send(s, m, sizeof(m)) == 0) {
		ic->hb_outstanding = true;
		ic->hb_sent_ns = vm_clock_ns(ic->ts);
	}
}

static void heartbeat_tick(void *opaque)
{
	struct vmbus_ic *ic = opaque;
	struct ic_service *s = &ic->svc[IC_HEARTBEAT];
	if (!s->ch || !s->negotiated)
		return;
	uint64_t now = vm_clock_ns(ic->ts);
	/* Once a second, whatever waits unread gets its flag again. */
	vmbus_renotify(ic->bus);
	if (!ic->hb_outstanding) {
		heartbeat_send(ic);
	} else if (!ic->hb_stopped && ic->hb_answers &&
		   now - ic->hb_sent_ns >= HEARTBEAT_STOPPED_PERIODS * HEARTBEAT_PERIOD_NS) {
		ic->hb_stopped = true;
		log_warn("vmbus", "heartbeat IC: the guest stopped answering (last sequence %llu)",
			 (unsigned long long)ic->hb_seq);
		if (ic->event)
			ic->event(ic->event_opaque, "heartbeat-stopped");
	}
	timer_mod(&ic->hb_timer, now + HEARTBEAT_PERIOD_NS);
}

/* A negotiation answer: the guest's choice in the first framework and
 * message entries, status 0 when it found one. */
static int on_negotiate(struct ic_service *s, const uint8_t *p, size_t len)
{
	if (len < ICMSG_HDR + 8 + 8)
		return -EINVAL;
	uint32_t status = get32(p + PIPE_HDR + 12);
	const uint8_t *d = p + ICMSG_HDR;
	uint32_t fw = (uint32_t)get16(d + 8) << 16 | get16(d + 10);
	uint32_t sv = (uint32_t)get16(d + 12) << 16 | get16(d + 14);
	if (status || fw != FRAMEWORK_VERSION || sv != service_version[s->kind]) {
		log_warn("vmbus", "%s: the guest refused the versions offered (status %#x)", names[s->kind], status);
		return 0;
	}
	bool again = s->negotiated;
	s->negotiated = true;
	if (!again)
		log_info("vmbus", "%s: version %u.%u", names[s->kind], sv >> 16, sv & 0xffff);
	struct vmbus_ic *ic = s->ic;
	if (s->kind == IC_TIMESYNC)
		vmbus_ic_time_sync(ic);
	if (s->kind == IC_HEARTBEAT) {
		ic->hb_outstanding = false;
		heartbeat_send(ic);
		timer_mod(&ic->hb_timer, vm_clock_ns(ic->ts) + HEARTBEAT_PERIOD_NS);
	}
	return 0;
}

static int ic_packet(struct vmbus_channel *ch, void *opaque, const uint8_t *p, size_t len, uint64_t trans)
{
	struct ic_service *s = opaque;
	(void)ch;
	(void)trans;
	if (len < ICMSG_HDR)
		return -EINVAL;
	uint16_t type = get16(p + PIPE_HDR + 4);
	uint8_t flags = p[PIPE_HDR + 17];
	if (!(flags & ICFLAG_RESPONSE))
		return -EINVAL;   /* the guest only answers */
	if (type == ICMSG_NEGOTIATE)
		return on_negotiate(s, p, len);
	/* Not negotiated (again) yet: an answer to a message sent before a
	 * restore, which was in flight at the save (a heartbeat the guest had
	 * not answered yet); the negotiation under way supersedes it. */
	if (!s->negotiated)
		return 0;
	struct vmbus_ic *ic = s->ic;
	switch (s->kind) {
	case IC_HEARTBEAT:
		if (type != ICMSG_HEARTBEAT || len < ICMSG_HDR + 8)
			return -EINVAL;
		ic->hb_seq = get64(p + ICMSG_HDR);
		ic->hb_answers++;
		ic->hb_outstanding = false;
		if (ic->hb_stopped) {
			ic->hb_stopped = false;
			log_info("vmbus", "heartbeat IC: the guest answers again");
			if (ic->event)
				ic->event(ic->event_opaque, "heartbeat-resumed");
		}
		return 0;
	case IC_SHUTDOWN:
		if (type != ICMSG_SHUTDOWN)
			return -EINVAL;
		if (get32(p + PIPE_HDR + 12))
			log_warn("vmbus", "shutdown IC: the guest refused to shut down (status %#x)",
				 get32(p + PIPE_HDR + 12));
		return 0;
	case IC_TIMESYNC:
		return type == ICMSG_TIMESYNC ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

static void ic_opened(struct vmbus_channel *ch, void *opaque)
{
	struct ic_service *s = opaque;
	s->ch = ch;
	s->negotiated = false;
	send_negotiate(s);
}

static void ic_closed(struct vmbus_channel *ch, void *opaque)
{
	struct ic_service *s = opaque;
	(void)ch;
	s->ch = NULL;
	s->negotiated = false;
	if (s->kind == IC_HEARTBEAT) {
		timer_del(&s->ic->hb_timer);
		s->ic->hb_outstanding = false;
	}
}

/* Device class GUIDs (HV_SHUTDOWN_GUID, HV_HEART_BEAT_GUID, HV_TS_GUID)
 * in their wire form: the first three fields little-endian. */
static const struct vmbus_device_ops ic_ops[IC_COUNT] = {
	[IC_SHUTDOWN] = { .name = "shutdown IC",
			  .type = { 0x31, 0x60, 0x0b, 0x0e, 0x13, 0x52, 0x34, 0x49, 0x81, 0x8b, 0x38, 0xd9, 0x0c,
				    0xed, 0x39, 0xdb },
			  .instance = { 0x76, 0x65, 0x73, 0x73, 0x65, 0x6c, 0x00, 0x40, 0x80, 0x00, 0x69, 0x63, 0x00,
					0x00, 0x00, 0x01 },
			  .opened = ic_opened, .closed = ic_closed, .packet = ic_packet },
	[IC_HEARTBEAT] = { .name = "heartbeat IC",
			   .type = { 0x39, 0x4f, 0x16, 0x57, 0x15, 0x91, 0x78, 0x4e, 0xab, 0x55, 0x38, 0x2f, 0x3b,
				     0xd5, 0x42, 0x2d },
			   .instance = { 0x76, 0x65, 0x73, 0x73, 0x65, 0x6c, 0x00, 0x40, 0x80, 0x00, 0x69, 0x63,
					 0x00, 0x00, 0x00, 0x02 },
			   .opened = ic_opened, .closed = ic_closed, .packet = ic_packet },
	[IC_TIMESYNC] = { .name = "timesync IC",
			  .type = { 0x30, 0xe6, 0x27, 0x95, 0xae, 0xd0, 0x7b, 0x49, 0xad, 0xce, 0xe8, 0x0a, 0xb0,
				    0x17, 0x5c, 0xaf },
			  .instance = { 0x76, 0x65, 0x73, 0x73, 0x65, 0x6c, 0x00, 0x40, 0x80, 0x00, 0x69, 0x63, 0x00,
					0x00, 0x00, 0x03 },
			  .opened = ic_opened, .closed = ic_closed, .packet = ic_packet },
};

struct vmbus_ic *vmbus_ic_new(struct vmbus *b, struct timer_service *ts,
			      void (*event)(void *opaque, const char *name), void *opaque)
{
	struct vmbus_ic *ic = calloc(1, sizeof(*ic));
	if (!ic) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	ic->bus = b;
	ic->ts = ts;
	ic->event = event;
	ic->event_opaque = opaque;
	timer_init(&ic->hb_timer, ts, heartbeat_tick, ic);
	for (unsigned i = 0; i < IC_COUNT; i++) {
		ic->svc[i] = (struct ic_service){ .ic = ic, .kind = (enum ic_kind)i };
		if (vmbus_add_device(b, &ic_ops[i], &ic->svc[i]) < 0) {
			free(ic);
			return NULL;
		}
	}
	return ic;
}

void vmbus_ic_free(struct vmbus_ic *ic)
{
	if (!ic)
		return;
	timer_del(&ic->hb_timer);
	free(ic);
}

void vmbus_ic_get_info(const struct vmbus_ic *ic, struct vmbus_ic_info *out)
{
	memset(out, 0, sizeof(*out));
	out->shutdown_open = ic->svc[IC_SHUTDOWN].ch != NULL;
	out->heartbeat_open = ic->svc[IC_HEARTBEAT].ch != NULL;
	out->timesync_open = ic->svc[IC_TIMESYNC].ch != NULL;
	out->heartbeat = ic->hb_seq;
	out->heartbeats = ic->hb_answers;
	out->heartbeat_stopped = ic->hb_stopped;
	out->time_syncs = ic->time_syncs;
}
