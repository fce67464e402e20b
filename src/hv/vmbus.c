/* VMBus host: channel messages, GPADLs and ring buffers (src/hv/vmbus.h).
 *
 * The protocol is the one Linux's hv_vmbus speaks (include/linux/hyperv.h
 * for the message layouts); vessel accepts protocol versions 4.0 (Windows
 * 10), 3.0 (8.1) and 2.4 (8), where a channel's host-to-guest interrupt is
 * its relid's flag in the VMBus SINT's event flags page and the guest
 * signals a channel by HvCallSignalEvent to the connection id of its
 * offer.  Offers carry no monitor page, so the guest never uses one.
 *
 * Guest input is never trusted: each message is checked against its
 * layout before use; a bad one about a channel closes that channel with
 * one log line, and ring indices or packets out of bounds do the same.
 * Guest memory is reached only through gmem_ptr() on one page at a time. */
#include "hv/vmbus.h"

#include "machine/memory.h"
#include "machine/snap_state.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

/* Channel message types (enum vmbus_channel_message_type). */
enum {
	MSG_OFFERCHANNEL = 1,
	MSG_RESCIND = 2,
	MSG_REQUESTOFFERS = 3,
	MSG_ALLOFFERS_DELIVERED = 4,
	MSG_OPENCHANNEL = 5,
	MSG_OPENCHANNEL_RESULT = 6,
	MSG_CLOSECHANNEL = 7,
	MSG_GPADL_HEADER = 8,
	MSG_GPADL_BODY = 9,
	MSG_GPADL_CREATED = 10,
	MSG_GPADL_TEARDOWN = 11,
	MSG_GPADL_TORNDOWN = 12,
	MSG_RELID_RELEASED = 13,
	MSG_INITIATE_CONTACT = 14,
	MSG_VERSION_RESPONSE = 15,
	MSG_UNLOAD = 16,
	MSG_UNLOAD_RESPONSE = 17,
	MSG_MODIFYCHANNEL = 23,
};

/* Protocol versions (major << 16 | minor), newest first. */
static const uint32_t versions[] = { 0x40000, 0x30000, 0x20004 };

/* Packet types and the ring's trailer (VM_PKT_*, VMBUS_PKT_TRAILER). */
#define PKT_DATA_INBAND 6
#define PKT_COMP        11
#define PKT_TRAILER     8
#define PKT_DESC        16
/* The largest packet vessel's devices take from the guest. */
#define PKT_MAX         (4 * PAGE)

#define MAX_DEVICES  8
#define MAX_GPADLS   64
#define MAX_GPADL_PAGES 1024
#define OUT_QUEUE    32
#define MSG_MAX      240

/* Ring header offsets (struct hv_ring_buffer). */
#define RB_WRITE   0
#define RB_READ    4
#define RB_MASK    8
#define RB_PENDING 12

struct gpadl {
	bool used, complete;
	uint32_t handle, relid;
	uint32_t n_pages, got;
	uint64_t *pfns;
};

/* A ring: its header page and data pages, as indexes into the GPADL. */
struct ring {
	uint32_t first, n_data;   /* header page index; data pages follow */
};

struct vmbus_channel {
	struct vmbus *bus;
	unsigned relid;
	const struct vmbus_device_ops *ops;
	void *opaque;
	bool open;
	uint32_t gpadl, target_vp, downstream;   /* as OPENCHANNEL gave them */
	struct gpadl *g;
	struct ring in, out;      /* guest-to-host, host-to-guest */
};

struct vmbus {
	struct guest_memory *mem;
	struct vmbus_transport t;
	void *opaque;
	bool connected;
	uint32_t version, target_vp;
	struct vmbus_channel ch[MAX_DEVICES];
	unsigned n_ch;
	struct gpadl gpadls[MAX_GPADLS];
	/* Host messages that wait for the SINT's slot, oldest first. */
	struct { uint8_t len; uint8_t data[MSG_MAX]; } out[OUT_QUEUE];
	unsigned out_head, out_count;
	struct vmbus_stats stats;
};

static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

struct vmbus *vmbus_new(struct guest_memory *mem, const struct vmbus_transport *t, void *opaque)
{
	struct vmbus *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->mem = mem;
	b->t = *t;
	b->opaque = opaque;
	return b;
}

static void gpadl_drop(struct gpadl *g)
{
	free(g->pfns);
	memset(g, 0, sizeof(*g));
}

void vmbus_free(struct vmbus *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < MAX_GPADLS; i++)
		gpadl_drop(&b->gpadls[i]);
	free(b);
}

int vmbus_add_device(struct vmbus *b, const struct vmbus_device_ops *ops, void *opaque)
{
	if (b->n_ch >= MAX_DEVICES)
		return err_set(-ENOSPC, "vmbus: too many devices");
	struct vmbus_channel *ch = &b->ch[b->n_ch];
	memset(ch, 0, sizeof(*ch));
	ch->bus = b;
	ch->relid = ++b->n_ch;   /* relid 0 is the bus's own flag */
	ch->ops = ops;
	ch->opaque = opaque;
	return (int)ch->relid;
}

/* A guest that floods the bus with bad messages does not flood the log:
 * the first few are logged, then one in 1024 (stats count them all). */
static bool bad_log_ok(const struct vmbus *b)
{
	return b->stats.bad <= 16 || b->stats.bad % 1024 == 0;
}

/* ---- host to guest messages ---- */

static void pump(struct vmbus *b)
{
	while (b->out_count) {
		unsigned i = b->out_head;
		int rc = b->t.post(b->opaque, b->target_vp, b->out[i].data, b->out[i].len);
		if (rc == -EAGAIN)
			return;   /* vmbus_slot_freed() goes on */
		if (rc < 0)
			log_warn("vmbus", "message type %u to VP %u lost (the SynIC cannot take it)",
				 rd32(b->out[i].data), b->target_vp);
		else
			b->stats.messages_out++;
		b->out_head = (b->out_head + 1) % OUT_QUEUE;
		b->out_count--;
	}
}

static void send_msg(struct vmbus *b, const uint8_t *msg, unsigned len)
{
	if (b->out_count == OUT_QUEUE) {
		log_warn("vmbus", "message queue full: message type %u dropped", rd32(msg));
		return;
	}
	unsigned i = (b->out_head + b->out_count) % OUT_QUEUE;
	b->out[i].len = (uint8_t)len;
	memcpy(b->out[i].data, msg, len);
	b->out_count++;
	pump(b);
}

void vmbus_slot_freed(struct vmbus *b)
{
	pump(b);
}

void vmbus_kick(struct vmbus *b)
{
	if (!b->connected || !b->t.kick)
		return;
	uint64_t done = 0;
	for (unsigned i = 0; i <= b->n_ch; i++) {
		unsigned vp = i < b->n_ch ? b->ch[i].target_vp : b->target_vp;
		if ((i < b->n_ch && !b->ch[i].open) || vp >= 64 || (done >> vp & 1))
			continue;
		done |= 1ull << vp;
		b->t.kick(b->opaque, vp);
	}
	vmbus_renotify(b);
}

static void send_hdr(struct vmbus *b, uint32_t type, const uint32_t *words, unsigned n)
{
	uint8_t msg[8 + 4 * 8] = { 0 };
	wr32(msg, type);
	for (unsigned i = 0; i < n; i++)
		wr32(msg + 8 + 4 * i, words[i]);
	send_msg(b, msg, 8 + 4 * n);
}

/* ---- channels ---- */

static void channel_close(struct vmbus_channel *ch, const char *why)
{
	if (!ch->open)
		return;
	if (why)
		log_warn("vmbus", "%s (relid %u): %s: channel closed", ch->ops->name, ch->relid, why);
	ch->open = false;
	ch->g = NULL;
	if (ch->ops->closed)
		ch->ops->closed(ch, ch->opaque);
}

static struct vmbus_channel *channel_by_relid(struct vmbus *b, uint32_t relid)
{
	return relid >= 1 && relid <= b->n_ch ? &b->ch[relid - 1] : NULL;
}

struct vmbus_channel *vmbus_channel_of(struct vmbus *b, int relid)
{
	struct vmbus_channel *ch = relid > 0 ? channel_by_relid(b, (uint32_t)relid) : NULL;
	return ch && ch->open ? ch : NULL;
}

bool vmbus_channel_is_open(const struct vmbus_channel *ch)
{
	return ch && ch->open;
}

bool vmbus_connected(const struct vmbus *b)
{
	return b->connected;
}

uint32_t vmbus_version(const struct vmbus *b)
{
	return b->connected ? b->version : 0;
}

/* A host pointer to bytes [off, off + len) of GPADL page `page`, within
 * that page; NULL when the page is not RAM. */
static uint8_t *gpadl_at(struct vmbus_channel *ch, uint32_t page, uint32_t off, uint32_t len)
{
	if (page >= ch->g->n_pages || off + len > PAGE)
		return NULL;
	return gmem_ptr(ch->bus->mem, ch->g->pfns[page] * PAGE + off, len);
}

static volatile uint32_t *ring_reg(struct vmbus_channel *ch, const struct ring *r, unsigned off)
{
	return (volatile uint32_t *)gpadl_at(ch, r->first, off, 4);
}

/* Copies len bytes at data offset pos of ring r (wrapping) to or from buf. */
static int ring_copy(struct vmbus_channel *ch, const struct ring *r, uint32_t pos, void *buf, uint32_t len,
		     bool to_guest)
{
	uint32_t size = r->n_data * PAGE;
	uint8_t *p = buf;
	while (len) {
		pos %= size;
		uint32_t in_page = pos % PAGE, n = PAGE - in_page;
		if (n > len)
			n = len;
		uint8_t *g = gpadl_at(ch, r->first + 1 + pos / PAGE, in_page, n);
		if (!g)
			return -EFAULT;
		if (to_guest)
			memcpy(g, p, n);
		else
			memcpy(p, g, n);
		p += n;
		pos += n;
		len -= n;
	}
	return 0;
}

int vmbus_channel_send(struct vmbus_channel *ch, const void *data, size_t len, uint64_t trans_id)
{
	if (!ch->open)
		return -ENOTCONN;
	const struct ring *r = &ch->out;
	uint32_t size = r->n_data * PAGE;
	volatile uint32_t *wi = ring_reg(ch, r, RB_WRITE), *ri = ring_reg(ch, r, RB_READ);
	volatile uint32_t *mask = ring_reg(ch, r, RB_MASK);
	if (!wi || !ri || !mask)
		return -EFAULT;
	uint32_t w = *wi, rd = __atomic_load_n(ri, __ATOMIC_ACQUIRE);
	if (w >= size || rd >= size || (w & 7) || (rd & 7)) {
		ch->bus->stats.bad++;
		channel_close(ch, "ring indices out of bounds");
		return -EIO;
	}
	uint32_t padded = (uint32_t)((len + 7) & ~7ull);
	uint32_t total = PKT_DESC + padded + PKT_TRAILER;
	uint32_t avail = w >= rd ? size - (w - rd) : rd - w;
	/* A full ring would look empty: one byte always stays free. */
	if (len > PKT_MAX || total >= avail)
		return -ENOSPC;
	uint8_t desc[PKT_DESC] = { 0 };
	wr16(desc, PKT_DATA_INBAND);
	wr16(desc + 2, PKT_DESC / 8);
	wr16(desc + 4, (uint16_t)((PKT_DESC + padded) / 8));
	wr64(desc + 8, trans_id);
	static const uint8_t zero[8];
	uint64_t trailer = (uint64_t)w << 32;
	if (ring_copy(ch, r, w, desc, PKT_DESC, true) < 0 || ring_copy(ch, r, w + PKT_DESC, (void *)data,
								      (uint32_t)len, true) < 0 ||
	    ring_copy(ch, r, w + PKT_DESC + (uint32_t)len, (void *)zero, padded - (uint32_t)len, true) < 0 ||
	    ring_copy(ch, r, w + PKT_DESC + padded, &trailer, PKT_TRAILER, true) < 0)
		return -EFAULT;
	/* The packet before the index that publishes it (ring_buffer.c). */
	__atomic_store_n(wi, (w + total) % size, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!*mask) {
		ch->bus->stats.events_out++;
		ch->bus->t.signal(ch->bus->opaque, ch->target_vp, ch->relid);
	}
	return 0;
}

void vmbus_renotify(struct vmbus *b)
{
	for (unsigned i = 0; i < b->n_ch; i++) {
		struct vmbus_channel *ch = &b->ch[i];
		if (!ch->open)
			continue;
		volatile uint32_t *wi = ring_reg(ch, &ch->out, RB_WRITE), *ri = ring_reg(ch, &ch->out, RB_READ);
		volatile uint32_t *mask = ring_reg(ch, &ch->out, RB_MASK);
		if (wi && ri && mask && *wi != *ri && !*mask)
			b->t.signal(b->opaque, ch->target_vp, ch->relid);
	}
}

/* Reads every packet the guest has put in its ring. */
static void channel_receive(struct vmbus_channel *ch)
{
	const struct ring *r = &ch->in;
	uint32_t size = r->n_data * PAGE;
	volatile uint32_t *wi = ring_reg(ch, r, RB_WRITE), *ri = ring_reg(ch, r, RB_READ);
	if (!wi || !ri)
		return;
	uint8_t *pkt = NULL;
	for (unsigned n = 0; ch->open && n < 1024; n++) {
		uint32_t w = __atomic_load_n(wi, __ATOMIC_ACQUIRE), rd = *ri;
		if (w == rd)
			break;
		const char *bad = NULL;
		uint8_t desc[PKT_DESC];
		uint32_t avail = w > rd ? w - rd : size - rd + w;
		if (w >= size || rd >= size || (w & 7) || (rd & 7))
			bad = "ring indices out of bounds";
		else if (avail < PKT_DESC + PKT_TRAILER || ring_copy(ch, r, rd, desc, PKT_DESC, false) < 0)
			bad = "short packet";
		uint32_t len = 0, off = 0;
		if (!bad) {
			len = (uint32_t)rd16(desc + 4) * 8;
			off = (uint32_t)rd16(desc + 2) * 8;
			if (off < PKT_DESC || len < off || len + PKT_TRAILER > avail || len - off > PKT_MAX)
				bad = "bad packet descriptor";
		}
		if (!bad && rd16(desc) == PKT_DATA_INBAND) {
			if (!pkt && !(pkt = malloc(PKT_MAX))) {
				log_warn("vmbus", "out of memory");
				break;
			}
			if (ring_copy(ch, r, rd + off, pkt, len - off, false) < 0)
				bad = "packet outside RAM";
		}
		if (bad) {
			ch->bus->stats.bad++;
			channel_close(ch, bad);
			break;
		}
		__atomic_store_n(ri, (rd + len + PKT_TRAILER) % size, __ATOMIC_RELEASE);
		/* Completions and other types carry nothing vessel asked for. */
		if (rd16(desc) == PKT_DATA_INBAND && ch->ops->packet &&
		    ch->ops->packet(ch, ch->opaque, pkt, len - off, rd64(desc + 8)) < 0) {
			ch->bus->stats.bad++;
			channel_close(ch, "malformed message");
		}
	}
	free(pkt);
	/* A writer waiting for room (pending_send_sz, ring_buffer.c's
	 * hv_signal_on_read) is told once there is as much as it wants. */
	if (ch->open) {
		volatile uint32_t *pend = ring_reg(ch, r, RB_PENDING);
		uint32_t want = pend ? *pend : 0, w = *wi, rd = *ri;
		uint32_t space = w >= rd ? size - (w - rd) : rd - w;
		if (want && space > want) {
			ch->bus->stats.events_out++;
			ch->bus->t.signal(ch->bus->opaque, ch->target_vp, ch->relid);
		}
	}
}

/* ---- guest to host messages ---- */

static struct gpadl *gpadl_find(struct vmbus *b, uint32_t handle)
{
	for (unsigned i = 0; i < MAX_GPADLS; i++)
		if (b->gpadls[i].used && b->gpadls[i].handle == handle)
			return &b->gpadls[i];
	return NULL;
}

static void gpadl_created(struct vmbus *b, struct gpadl *g, uint32_t status)
{
	uint32_t w[3] = { g->relid, g->handle, status };
	send_hdr(b, MSG_GPADL_CREATED, w, 3);
}

/* GPADL_HEADER: relid, handle, range_buflen, rangecount, then ranges
 * (byte_count, byte_offset, pfns); vessel takes one range, as Linux
 * sends for rings and buffers. */
static int msg_gpadl_header(struct vmbus *b, const uint8_t *m, uint32_t len)
{
	if (len < 28)
		return -EINVAL;
	uint32_t relid = rd32(m + 8), handle = rd32(m + 12);
	uint16_t buflen = rd16(m + 16), ranges = rd16(m + 18);
	uint32_t count = rd32(m + 20), offset = rd32(m + 24);
	uint32_t n = buflen >= 8 ? (buflen - 8u) / 8u : 0;
	struct gpadl *g = NULL;
	if (ranges != 1 || buflen < 16 || (buflen & 7) || n > MAX_GPADL_PAGES || gpadl_find(b, handle) || !handle ||
	    (uint64_t)offset + count > (uint64_t)n * PAGE) {
		b->stats.bad++;
		if (bad_log_ok(b))
			log_warn("vmbus", "GPADL %#x: %u ranges, %u bytes of pages refused", handle, ranges, buflen);
		struct gpadl bad = { .relid = relid, .handle = handle };
		gpadl_created(b, &bad, 1);
		return 0;
	}
	for (unsigned i = 0; i < MAX_GPADLS && !g; i++)
		if (!b->gpadls[i].used)
			g = &b->gpadls[i];
	uint64_t *pfns = g ? calloc(n, 8) : NULL;
	if (!pfns) {
		struct gpadl bad = { .relid = relid, .handle = handle };
		gpadl_created(b, &bad, 1);
		return 0;
	}
	*g = (struct gpadl){ .used = true, .handle = handle, .relid = relid, .n_pages = n, .pfns = pfns };
	for (uint32_t i = 0; 28 + 8 * (i + 1) <= len && g->got < n; i++)
		g->pfns[g->got++] = rd64(m + 28 + 8 * i);
	if (g->got == n) {
		g->complete = true;
		gpadl_created(b, g, 0);
	}
	return 0;
}

/* GPADL_BODY: msgnumber, handle, more pfns. */
static int msg_gpadl_body(struct vmbus *b, const uint8_t *m, uint32_t len)
{
	if (len < 16)
		return -EINVAL;
	struct gpadl *g = gpadl_find(b, rd32(m + 12));
	if (!g || g->complete)
		return -EINVAL;
	for (uint32_t i = 0; 16 + 8 * (i + 1) <= len && g->got < g->n_pages; i++)
		g->pfns[g->got++] = rd64(m + 16 + 8 * i);
	if (g->got == g->n_pages) {
		g->complete = true;
		gpadl_created(b, g, 0);
	}
	return 0;
}

static bool gpadl_in_use(struct vmbus *b, const struct gpadl *g)
{
	for (unsigned i = 0; i < b->n_ch; i++)
		if (b->ch[i].open && b->ch[i].g == g)
			return true;
	return false;
}

/* Sets a channel's rings from its GPADL: the guest's outbound ring is
 * pages [0, downstream), the host's [downstream, end), each a header page
 * and its data (channel.c, __vmbus_open).  0, or a reason. */
static const char *channel_map(struct vmbus_channel *ch, struct gpadl *g, uint32_t downstream)
{
	if (!g || !g->complete)
		return "no such GPADL";
	if (downstream < 2 || downstream + 2 > g->n_pages)
		return "ring offset out of bounds";
	for (uint32_t i = 0; i < g->n_pages; i++)
		if (!gmem_ptr(ch->bus->mem, g->pfns[i] * PAGE, PAGE) || g->pfns[i] > (UINT64_MAX >> 12))
			return "ring page outside RAM";
	ch->g = g;
	ch->in = (struct ring){ 0, downstream - 1 };
	ch->out = (struct ring){ downstream, g->n_pages - downstream - 1 };
	return NULL;
}

/* OPENCHANNEL: relid, openid, GPADL handle, target VP, downstream ring
 * page offset, user data. */
static int msg_open(struct vmbus *b, const uint8_t *m, uint32_t len)
{
	if (len < 28)
		return -EINVAL;
	uint32_t relid = rd32(m + 8), openid = rd32(m + 12), handle = rd32(m + 16);
	uint32_t vp = rd32(m + 20), downstream = rd32(m + 24);
	struct vmbus_channel *ch = channel_by_relid(b, relid);
	const char *why = NULL;
	if (!ch)
		why = "no such channel";
	else if (ch->open)
		why = "already open";
	else if (vp >= b->t.n_vps)
		why = "no such VP";
	else
		why = channel_map(ch, gpadl_find(b, handle), downstream);
	if (why) {
		b->stats.bad++;
		if (bad_log_ok(b))
			log_warn("vmbus", "open of relid %u refused: %s", relid, why);
	} else {
		ch->open = true;
		ch->gpadl = handle;
		ch->target_vp = vp;
		ch->downstream = downstream;
		/* The host's ring starts empty; its reader wants interrupts. */
		log_info("vmbus", "%s (relid %u) open", ch->ops->name, relid);
	}
	uint32_t w[3] = { relid, openid, why ? 1u : 0u };
	send_hdr(b, MSG_OPENCHANNEL_RESULT, w, 3);
	if (!why && ch->ops->opened)
		ch->ops->opened(ch, ch->opaque);
	return 0;
}

static void send_offers(struct vmbus *b)
{
	for (unsigned i = 0; i < b->n_ch; i++) {
		const struct vmbus_channel *ch = &b->ch[i];
		/* struct vmbus_channel_offer_channel, 196 bytes. */
		uint8_t m[196] = { 0 };
		wr32(m, MSG_OFFERCHANNEL);
		memcpy(m + 8, ch->ops->type, 16);
		memcpy(m + 24, ch->ops->instance, 16);
		wr32(m + 184, ch->relid);
		m[188] = 0;       /* monitor id; no monitor page allocated */
		m[189] = 0;
		wr16(m + 190, 1); /* dedicated interrupt: signal by connection id */
		wr32(m + 192, VMBUS_CHANNEL_CONNECTION_BASE + ch->relid);
		send_msg(b, m, sizeof(m));
	}
	send_hdr(b, MSG_ALLOFFERS_DELIVERED, NULL, 0);
}

/* Closes every channel and forgets every GPADL: UNLOAD, or a new
 * INITIATE_CONTACT (a kexec'd or reloaded guest). */
static void bus_reset(struct vmbus *b)
{
	for (unsigned i = 0; i < b->n_ch; i++)
		channel_close(&b->ch[i], NULL);
	for (unsigned i = 0; i < MAX_GPADLS; i++)
		gpadl_drop(&b->gpadls[i]);
	b->connected = false;
}

static int msg_initiate(struct vmbus *b, const uint8_t *m, uint32_t len)
{
	if (len < 40)
		return -EINVAL;
	uint32_t version = rd32(m + 8), vp = rd32(m + 12);
	bool ok = false;
	for (unsigned i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		ok |= versions[i] == version;
	if (vp >= b->t.n_vps)
		vp = 0;
	if (ok) {
		bus_reset(b);
		b->connected = true;
		b->version = version;
		log_info("vmbus", "guest connected, protocol %u.%u", version >> 16, version & 0xffff);
	}
	b->target_vp = vp;
	/* VERSION_RESPONSE: supported, connection state, the message
	 * connection id (read from protocol 5.0 on). */
	uint8_t r[16] = { 0 };
	wr32(r, MSG_VERSION_RESPONSE);
	r[8] = ok;
	wr32(r + 12, VMBUS_MESSAGE_CONNECTION_ID);
	send_msg(b, r, sizeof(r));
	return 0;
}

/* One channel message; -EINVAL when it is malformed. */
static int handle_message(struct vmbus *b, const uint8_t *m, uint32_t len)
{
	if (len < 8)
		return -EINVAL;
	uint32_t type = rd32(m);
	if (type != MSG_INITIATE_CONTACT && !b->connected) {
		log_debug("vmbus", "message type %u before INITIATE_CONTACT ignored", type);
		return 0;
	}
	switch (type) {
	case MSG_INITIATE_CONTACT:
		return msg_initiate(b, m, len);
	case MSG_REQUESTOFFERS:
		send_offers(b);
		return 0;
	case MSG_GPADL_HEADER:
		return msg_gpadl_header(b, m, len);
	case MSG_GPADL_BODY:
		return msg_gpadl_body(b, m, len);
	case MSG_GPADL_TEARDOWN: {
		if (len < 16)
			return -EINVAL;
		struct gpadl *g = gpadl_find(b, rd32(m + 12));
		if (!g)
			return -EINVAL;
		/* Linux closes the channel first; a GPADL still behind an
		 * open ring is kept, and the guest told it is gone. */
		if (!gpadl_in_use(b, g))
			gpadl_drop(g);
		uint32_t w = rd32(m + 12);
		send_hdr(b, MSG_GPADL_TORNDOWN, &w, 1);
		return 0;
	}
	case MSG_OPENCHANNEL:
		return msg_open(b, m, len);
	case MSG_CLOSECHANNEL: {
		if (len < 12)
			return -EINVAL;
		struct vmbus_channel *ch = channel_by_relid(b, rd32(m + 8));
		if (!ch)
			return -EINVAL;
		if (ch->open)
			log_info("vmbus", "%s (relid %u) closed by the guest", ch->ops->name, ch->relid);
		channel_close(ch, NULL);
		return 0;
	}
	case MSG_UNLOAD:
		bus_reset(b);
		log_info("vmbus", "guest unloaded the bus");
		send_hdr(b, MSG_UNLOAD_RESPONSE, NULL, 0);
		return 0;
	case MSG_RELID_RELEASED:
	case MSG_MODIFYCHANNEL:
		return 0;
	default:
		return -EINVAL;
	}
}

int vmbus_post_message(struct vmbus *b, uint32_t conn_id, uint32_t type, const void *payload, uint32_t len)
{
	if (conn_id != VMBUS_MESSAGE_CONNECTION_ID && conn_id != VMBUS_MESSAGE_CONNECTION_ID_4)
		return VMBUS_HV_STATUS_INVALID_CONNECTION_ID;
	if (type == 0 || (type & 0x80000000u) || len > MSG_MAX)
		return VMBUS_HV_STATUS_INVALID_PARAMETER;
	b->stats.posts++;
	uint8_t m[MSG_MAX] = { 0 };
	memcpy(m, payload, len);
	if (handle_message(b, m, len) < 0) {
		b->stats.bad++;
		uint32_t t = len >= 4 ? rd32(m) : 0;
		/* A message about a channel that does not parse closes it. */
		struct vmbus_channel *ch = len >= 12 && t != MSG_GPADL_BODY && t != MSG_GPADL_TEARDOWN
						   ? channel_by_relid(b, rd32(m + 8)) : NULL;
		if (ch && ch->open)
			channel_close(ch, "malformed channel message");
		else if (bad_log_ok(b))
			log_warn("vmbus", "malformed or unknown channel message (type %u, %u bytes) ignored", t, len);
	}
	return VMBUS_HV_STATUS_SUCCESS;
}

int vmbus_signal_event(struct vmbus *b, uint32_t conn_id, uint16_t flag)
{
	(void)flag;   /* one flag per connection: the channel's */
	if (conn_id <= VMBUS_CHANNEL_CONNECTION_BASE)
		return VMBUS_HV_STATUS_INVALID_CONNECTION_ID;
	struct vmbus_channel *ch = channel_by_relid(b, conn_id - VMBUS_CHANNEL_CONNECTION_BASE);
	if (!ch)
		return VMBUS_HV_STATUS_INVALID_CONNECTION_ID;
	b->stats.signals++;
	if (ch->open)
		channel_receive(ch);
	return VMBUS_HV_STATUS_SUCCESS;
}

void vmbus_get_stats(const struct vmbus *b, struct vmbus_stats *out)
{
	*out = b->stats;
}

/* ---- snapshots ---- */

/* Version 1: connected, version, target VP; the GPADLs (count, then
 * handle, relid, complete, page count, pfns); per device: open, GPADL
 * handle, target VP, downstream offset; the waiting messages. */
#define SNAP_VERSION 1

int64_t vmbus_save(struct vmbus *b, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, SNAP_VERSION);
	hw_snap_u8(&w, b->connected);
	hw_snap_u32(&w, b->version);
	hw_snap_u32(&w, b->target_vp);
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_GPADLS; i++)
		n += b->gpadls[i].used;
	hw_snap_u32(&w, n);
	for (unsigned i = 0; i < MAX_GPADLS; i++) {
		const struct gpadl *g = &b->gpadls[i];
		if (!g->used)
			continue;
		hw_snap_u32(&w, g->handle);
		hw_snap_u32(&w, g->relid);
		hw_snap_u8(&w, g->complete);
		hw_snap_u32(&w, g->n_pages);
		hw_snap_u32(&w, g->got);
		for (uint32_t p = 0; p < g->n_pages; p++)
			hw_snap_u64(&w, g->pfns[p]);
	}
	hw_snap_u32(&w, b->n_ch);
	for (unsigned i = 0; i < b->n_ch; i++) {
		const struct vmbus_channel *ch = &b->ch[i];
		hw_snap_u8(&w, ch->open);
		hw_snap_u32(&w, ch->gpadl);
		hw_snap_u32(&w, ch->target_vp);
		hw_snap_u32(&w, ch->downstream);
	}
	hw_snap_u32(&w, b->out_count);
	for (unsigned k = 0; k < b->out_count; k++) {
		unsigned i = (b->out_head + k) % OUT_QUEUE;
		hw_snap_u8(&w, b->out[i].len);
		hw_snap_bytes(&w, b->out[i].data, MSG_MAX);
	}
	return hw_snap_end(&w);
}

int vmbus_load(struct vmbus *b, const void *buf, size_t len)
{
	struct hw_snap_reader r;
	/* The layout's size follows the GPADLs: every read below checks
	 * that its bytes are there. */
	int rc = hw_snap_open(&r, buf, len, "vmbus", SNAP_VERSION, len > HW_SNAP_HEADER ? len - HW_SNAP_HEADER : 1);
	if (rc < 0)
		return rc;
#define NEED(n) (r.pos + (size_t)(n) <= r.len)
	struct vmbus *nb = calloc(1, sizeof(*nb));
	if (!nb)
		return err_set(-ENOMEM, "out of memory");
	*nb = *b;
	memset(nb->gpadls, 0, sizeof(nb->gpadls));
	if (!NEED(13)) {
		free(nb);
		return err_set(-EINVAL, "vmbus state: truncated");
	}
	nb->connected = hw_snap_get_bool(&r);
	nb->version = hw_snap_get_u32(&r);
	nb->target_vp = hw_snap_get_u32(&r);
	uint32_t n = hw_snap_get_u32(&r);
	const char *bad = n > MAX_GPADLS || nb->target_vp >= b->t.n_vps ? "bad GPADL count or VP" : NULL;
	for (uint32_t i = 0; !bad && i < n; i++) {
		struct gpadl *g = &nb->gpadls[i];
		if (!NEED(17)) {
			bad = "truncated";
			break;
		}
		g->used = true;
		g->handle = hw_snap_get_u32(&r);
		g->relid = hw_snap_get_u32(&r);
		g->complete = hw_snap_get_bool(&r);
		g->n_pages = hw_snap_get_u32(&r);
		g->got = hw_snap_get_u32(&r);
		if (g->n_pages > MAX_GPADL_PAGES || g->got > g->n_pages || r.pos + 8ull * g->n_pages > r.len) {
			bad = "bad GPADL";
			break;
		}
		g->pfns = calloc(g->n_pages ? g->n_pages : 1, 8);
		if (!g->pfns) {
			bad = "out of memory";
			break;
		}
		for (uint32_t p = 0; p < g->n_pages; p++)
			g->pfns[p] = hw_snap_get_u64(&r);
	}
	if (!bad && (!NEED(4 + 13 * b->n_ch + 4) || hw_snap_get_u32(&r) != b->n_ch))
		bad = "saved with other devices";
	for (unsigned i = 0; !bad && i < b->n_ch; i++) {
		struct vmbus_channel *ch = &nb->ch[i];
		ch->bus = b;
		ch->g = NULL;
		ch->open = hw_snap_get_bool(&r);
		ch->gpadl = hw_snap_get_u32(&r);
		ch->target_vp = hw_snap_get_u32(&r);
		ch->downstream = hw_snap_get_u32(&r);
		if (ch->open && (ch->target_vp >= b->t.n_vps ||
				 channel_map(ch, gpadl_find(nb, ch->gpadl), ch->downstream)))
			bad = "bad channel";
	}
	uint32_t q = bad ? 0 : hw_snap_get_u32(&r);
	if (q > OUT_QUEUE || !NEED((size_t)q * (1 + MSG_MAX)))
		bad = "bad message queue";
	nb->out_head = 0;
	nb->out_count = bad ? 0 : q;
	for (uint32_t k = 0; !bad && k < q; k++) {
		nb->out[k].len = hw_snap_get_u8(&r);
		hw_snap_get_bytes(&r, nb->out[k].data, MSG_MAX);
		if (nb->out[k].len > MSG_MAX)
			bad = "bad message";
	}
	if (!bad && r.pos != r.len)
		bad = "trailing bytes";
#undef NEED
	if (bad) {
		for (unsigned i = 0; i < MAX_GPADLS; i++)
			gpadl_drop(&nb->gpadls[i]);
		free(nb);
		return err_set(-EINVAL, "vmbus state: %s", bad);
	}
	/* Apply: the old channels close quietly, the saved ones open. */
	for (unsigned i = 0; i < b->n_ch; i++)
		if (b->ch[i].open && b->ch[i].ops->closed) {
			b->ch[i].open = false;
			b->ch[i].ops->closed(&b->ch[i], b->ch[i].opaque);
		}
	for (unsigned i = 0; i < MAX_GPADLS; i++)
		gpadl_drop(&b->gpadls[i]);
	memcpy(b->gpadls, nb->gpadls, sizeof(b->gpadls));
	b->connected = nb->connected;
	b->version = nb->version;
	b->target_vp = nb->target_vp;
	b->out_head = 0;
	b->out_count = nb->out_count;
	memcpy(b->out, nb->out, sizeof(b->out));
	for (unsigned i = 0; i < b->n_ch; i++) {
		struct vmbus_channel *ch = &b->ch[i];
		ch->open = nb->ch[i].open;
		ch->gpadl = nb->ch[i].gpadl;
		ch->target_vp = nb->ch[i].target_vp;
		ch->downstream = nb->ch[i].downstream;
		ch->g = NULL;
		if (ch->open)
			channel_map(ch, gpadl_find(b, ch->gpadl), ch->downstream);
	}
	free(nb);
	for (unsigned i = 0; i < b->n_ch; i++)
		if (b->ch[i].open && b->ch[i].ops->opened)
			b->ch[i].ops->opened(&b->ch[i], b->ch[i].opaque);
	return 0;
}
