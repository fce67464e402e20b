/* Split and packed virtqueues, device side (virtio 1.2, sections 2.7 and
 * 2.8; see queue.h). */
#include "virtio/queue.h"

#include "util/error.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* Ring layouts (section 2.7.5, 2.7.6, 2.7.8): all little-endian. */
#define DESC_SIZE 16u
#define AVAIL_BYTES(n) (4u + 2u * (n) + 2u)   /* flags, idx, ring[n], used_event */
#define USED_BYTES(n)  (4u + 8u * (n) + 2u)   /* flags, idx, ring[n], avail_event */

static inline uint16_t ld16(const void *p)
{
	/* The driver writes these concurrently: read each field once. */
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static inline void st16(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

bool virtq_size_valid(unsigned size, unsigned max)
{
	return size && size <= max && !(size & (size - 1));
}

bool virtq_packed_size_valid(unsigned size, unsigned max)
{
	return size && size <= max && size <= 32768;
}

bool virtq_rings_aligned(const struct virtq *q)
{
	/* Split: desc 16, avail 2, used 4 (section 2.7); packed: the ring
	 * 16, both event suppression structures 4 (section 2.8.10.1). */
	if (q->packed)
		return !(q->desc & 15) && !(q->avail & 3) && !(q->used & 3);
	return !(q->desc & 15) && !(q->avail & 1) && !(q->used & 3);
}

void virtq_reset(struct virtq *q)
{
	virtio_dma_fn dma = q->dma;
	virtio_dma_written_fn written = q->dma_written;
	void *opaque = q->dma_opaque;
	memset(q, 0, sizeof(*q));
	q->dma = dma;
	q->dma_written = written;
	q->dma_opaque = opaque;
	q->msix_vector = 0xffff;   /* VIRTIO_MSI_NO_VECTOR */
	q->avail_wrap = q->used_wrap = true;   /* section 2.8.1: both start at 1 */
}

/* One buffer of a request into e (descriptor i, for messages): in RAM,
 * not empty, readable ones first (sections 2.7.4.2 and 2.8.18). */
static int add_buffer(const struct virtq *q, struct virtq_elem *e, unsigned i, uint64_t addr, uint32_t len,
		      bool writable)
{
	if (!len)
		return err_set(-EINVAL, "descriptor %u: zero-length buffer", i);
	void *p = q->dma(q->dma_opaque, addr, len);
	if (!p)
		return err_set(-EFAULT, "descriptor %u: buffer at %#llx (%u bytes) is not in guest RAM", i,
			       (unsigned long long)addr, len);
	if (e->n_out + e->n_in >= VIRTQ_MAX_SEGS)
		return err_set(-ELOOP, "descriptor chain of buffer %u has more than %u buffers", e->head,
			       VIRTQ_MAX_SEGS);
	if (writable) {
		e->n_in++;
		e->in_len += len;
	} else {
		if (e->n_in)
			return err_set(-EINVAL, "descriptor %u: device-readable buffer after a writable one", i);
		e->n_out++;
		e->out_len += len;
	}
	e->iov[e->n_out + e->n_in - 1] = (struct iovec){ .iov_base = p, .iov_len = len };
	e->gpa[e->n_out + e->n_in - 1] = addr;
	return 0;
}

static uint8_t *ring_avail(const struct virtq *q)
{
	/* Alignment (section 2.7, table "Virtqueue Part Alignment"): desc 16,
	 * avail 2, used 4.  Checked so the 16-bit loads below are aligned. */
	if (q->avail & 1)
		return NULL;
	return q->dma(q->dma_opaque, q->avail, AVAIL_BYTES(q->size));
}

static uint8_t *ring_used(const struct virtq *q)
{
	if (q->used & 3)
		return NULL;
	return q->dma(q->dma_opaque, q->used, USED_BYTES(q->size));
}

static int split_pop(struct virtq *q, struct virtq_elem *e)
{
	uint8_t *avail = ring_avail(q);
	if (!avail)
		return err_set(-EFAULT, "available ring at %#llx (%u entries) is not in guest RAM or misaligned",
			       (unsigned long long)q->avail, q->size);
	uint16_t idx = ld16(avail + 2);
	uint16_t pending = (uint16_t)(idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size)
		return err_set(-EINVAL, "available index %u is %u entries ahead of %u: more than the queue size %u",
			       idx, pending, q->last_avail, q->size);
	/* The ring entry is read after the index (section 2.7.13.3.1). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	uint16_t head = ld16(avail + 4 + 2u * (q->last_avail & (q->size - 1)));
	if (head >= q->size)
		return err_set(-EINVAL, "available ring names descriptor %u of a %u-entry table", head, q->size);
	const uint8_t *table = (q->desc & 15) ? NULL : q->dma(q->dma_opaque, q->desc, (uint64_t)DESC_SIZE * q->size);
	if (!table)
		return err_set(-EFAULT, "descriptor table at %#llx (%u entries) is not in guest RAM or misaligned",
			       (unsigned long long)q->desc, q->size);
	unsigned table_size = q->size, i = head, walked = 0;
	bool in_indirect = false;
	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		/* A chain visits each descriptor of its table at most once, so
		 * more steps than entries is a loop (section 2.7.5.2). */
		if (++walked > table_size)
			return err_set(-ELOOP, "descriptor chain from %u is longer than its %u-entry table (a loop?)",
				       head, table_size);
		uint8_t d[DESC_SIZE];
		memcpy(d, table + (size_t)DESC_SIZE * i, DESC_SIZE);   /* read once: the driver may change it */
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		memcpy(&addr, d, 8);
		memcpy(&len, d + 8, 4);
		memcpy(&flags, d + 12, 2);
		memcpy(&next, d + 14, 2);
		addr = le64toh(addr);
		len = le32toh(len);
		flags = le16toh(flags);
		next = le16toh(next);
		if (flags & VIRTQ_DESC_F_INDIRECT) {
			/* Section 2.7.5.3.1: only with VIRTIO_F_INDIRECT_DESC, not
			 * inside an indirect table, not with NEXT, a whole number
			 * of descriptors. */
			if (!q->indirect || in_indirect || (flags & VIRTQ_DESC_F_NEXT))
				return err_set(-EINVAL, "descriptor %u: indirect table %s", i,
					       !q->indirect ? "without VIRTIO_F_INDIRECT_DESC"
					       : in_indirect ? "inside an indirect table" : "with NEXT set");
			if (!len || len % DESC_SIZE || len / DESC_SIZE > VIRTQ_MAX_SEGS)
				return err_set(-EINVAL, "descriptor %u: indirect table of %u bytes", i, len);
			if (addr & 15 || !(table = q->dma(q->dma_opaque, addr, len)))
				return err_set(-EFAULT, "descriptor %u: indirect table at %#llx (%u bytes) is not in guest RAM",
					       i, (unsigned long long)addr, len);
			table_size = len / DESC_SIZE;
			in_indirect = true;
			i = 0;
			walked = 0;
			continue;
		}
		int rc = add_buffer(q, e, i, addr, len, flags & VIRTQ_DESC_F_WRITE);
		if (rc < 0)
			return rc;
		if (!(flags & VIRTQ_DESC_F_NEXT))
			break;
		if (next >= table_size)
			return err_set(-EINVAL, "descriptor %u: next %u is outside its %u-entry table", i, next, table_size);
		i = next;
	}
	q->last_avail++;
	return 1;
}

/* The bytes the device says it wrote, in buffer order, to dma_written. */
static void report_written(const struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
	if (!q->dma_written)
		return;
	uint64_t left = len;
	for (unsigned i = e->n_out; i < e->n_out + e->n_in && left; i++) {
		uint64_t k = e->iov[i].iov_len < left ? e->iov[i].iov_len : left;
		q->dma_written(q->dma_opaque, e->gpa[i], k);
		left -= k;
	}
}

static int split_push(struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
	uint8_t *used = ring_used(q);
	if (!used)
		return err_set(-EFAULT, "used ring at %#llx (%u entries) is not in guest RAM or misaligned",
			       (unsigned long long)q->used, q->size);
	report_written(q, e, len);
	if (q->dma_written)
		q->dma_written(q->dma_opaque, q->used, USED_BYTES(q->size));
	uint8_t *ent = used + 4 + 8u * (q->used_idx & (q->size - 1));
	uint32_t id = htole32(e->head), l = htole32(len);
	memcpy(ent, &id, 4);
	memcpy(ent + 4, &l, 4);
	/* The entry is visible before the index that publishes it (2.7.8.2). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	st16(used + 2, ++q->used_idx);
	return 0;
}

static bool split_should_notify(struct virtq *q)
{
	uint8_t *avail = ring_avail(q);
	if (!avail)
		return false;
	/* Our used index store before the driver's suppression fields. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(ld16(avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	uint16_t event = ld16(avail + 4 + 2u * q->size);
	uint16_t old = q->signalled_used, now = q->used_idx;
	bool valid = q->signalled_valid;
	q->signalled_used = now;
	q->signalled_valid = true;
	/* vring_need_event (section 2.7.10): did used->idx pass used_event? */
	return !valid || (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

static bool split_enable_notify(struct virtq *q)
{
	uint8_t *avail = ring_avail(q);
	if (!avail)
		return false;
	if (q->event_idx) {
		uint8_t *used = ring_used(q);
		if (used)
			st16(used + 4 + 8u * q->size, q->last_avail);
	}
	/* avail_event before re-reading avail->idx: the driver does the mirror. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ld16(avail + 2) != q->last_avail;
}

/* ---- packed virtqueues (section 2.8) ---- */

#define PACKED_F_AVAIL (1u << 7)
#define PACKED_F_USED  (1u << 15)
#define PACKED_EVENT_ENABLE  0
#define PACKED_EVENT_DISABLE 1
#define PACKED_EVENT_DESC    2

struct pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id, flags;
};

static uint8_t *packed_ring(const struct virtq *q)
{
	if (q->desc & 15)
		return NULL;
	return q->dma(q->dma_opaque, q->desc, (uint64_t)DESC_SIZE * q->size);
}

/* Reads descriptor slot i once (the driver may be changing it). */
static struct pdesc pdesc_read(const uint8_t *ring, unsigned i, bool flags_acquire)
{
	const uint8_t *d = ring + (size_t)DESC_SIZE * i;
	struct pdesc x;
	if (flags_acquire) {
		/* Section 2.8.21.3: the flags that make the slot available
		 * are read before the rest of it. */
		x.flags = ld16(d + 14);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	}
	memcpy(&x.addr, d, 8);
	memcpy(&x.len, d + 8, 4);
	memcpy(&x.id, d + 12, 2);
	x.addr = le64toh(x.addr);
	x.len = le32toh(x.len);
	x.id = le16toh(x.id);
	if (!flags_acquire)
		x.flags = ld16(d + 14);
	return x;
}

static bool pdesc_avail(uint16_t flags, bool wrap)
{
	/* Section 2.8.1: available when AVAIL matches the driver's wrap
	 * counter and USED does not. */
	return !!(flags & PACKED_F_AVAIL) == wrap && !!(flags & PACKED_F_USED) != wrap;
}

static int packed_pop(struct virtq *q, struct virtq_elem *e)
{
	const uint8_t *ring = packed_ring(q);
	if (!ring)
		return err_set(-EFAULT, "descriptor ring at %#llx (%u entries) is not in guest RAM or misaligned",
			       (unsigned long long)q->desc, q->size);
	unsigned i = q->last_avail;
	bool wrap = q->avail_wrap;
	struct pdesc d = pdesc_read(ring, i, true);
	if (!pdesc_avail(d.flags, wrap))
		return 0;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	unsigned n = 0;
	for (;;) {
		/* A buffer takes at most the whole ring (section 2.8.13.1): a
		 * longer chain is a driver that lost count. */
		if (++n > q->size)
			return err_set(-ELOOP, "descriptor chain from slot %u is longer than the %u-entry ring",
				       q->last_avail, q->size);
		e->head = d.id;
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* Section 2.8.19: with VIRTIO_F_INDIRECT_DESC only, alone
			 * (no NEXT), a whole number of descriptors used in order. */
			if (!q->indirect || (d.flags & VIRTQ_DESC_F_NEXT) || e->n_out + e->n_in)
				return err_set(-EINVAL, "slot %u: indirect table %s", i,
					       !q->indirect ? "without VIRTIO_F_INDIRECT_DESC" : "chained to other buffers");
			if (!d.len || d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_MAX_SEGS)
				return err_set(-EINVAL, "slot %u: indirect table of %u bytes", i, d.len);
			const uint8_t *table = (d.addr & 15) ? NULL : q->dma(q->dma_opaque, d.addr, d.len);
			if (!table)
				return err_set(-EFAULT, "slot %u: indirect table at %#llx (%u bytes) is not in guest RAM", i,
					       (unsigned long long)d.addr, d.len);
			for (unsigned k = 0; k < d.len / DESC_SIZE; k++) {
				struct pdesc x = pdesc_read(table, k, false);
				if (x.flags & VIRTQ_DESC_F_INDIRECT)
					return err_set(-EINVAL, "slot %u: indirect table inside an indirect table", i);
				int rc = add_buffer(q, e, k, x.addr, x.len, x.flags & VIRTQ_DESC_F_WRITE);
				if (rc < 0)
					return rc;
			}
		} else {
			int rc = add_buffer(q, e, i, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE);
			if (rc < 0)
				return rc;
		}
		bool more = d.flags & VIRTQ_DESC_F_NEXT;
		if (++i == q->size) {
			i = 0;
			wrap = !wrap;
		}
		if (!more)
			break;
		d = pdesc_read(ring, i, false);
	}
	e->ndesc = (uint16_t)n;
	q->last_avail = (uint16_t)i;
	q->avail_wrap = wrap;
	return 1;
}

static int packed_push(struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
	uint8_t *ring = packed_ring(q);
	if (!ring)
		return err_set(-EFAULT, "descriptor ring at %#llx (%u entries) is not in guest RAM or misaligned",
			       (unsigned long long)q->desc, q->size);
	report_written(q, e, len);
	/* Section 2.8.9: the used descriptor goes in the next slot, with the
	 * buffer ID and length, its AVAIL and USED flags both the device's
	 * wrap counter, written last; the next one goes as many slots on as
	 * the buffer took. */
	uint8_t *d = ring + (size_t)DESC_SIZE * q->used_idx;
	uint32_t l = htole32(len);
	uint16_t id = htole16(e->head);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &id, 2);
	uint16_t flags = q->used_wrap ? PACKED_F_AVAIL | PACKED_F_USED : 0;
	if (len)
		flags |= VIRTQ_DESC_F_WRITE;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	st16(d + 14, flags);
	if (q->dma_written)
		q->dma_written(q->dma_opaque, q->desc + (uint64_t)DESC_SIZE * q->used_idx, DESC_SIZE);
	unsigned next = q->used_idx + (e->ndesc ? e->ndesc : 1u);
	if (next >= q->size) {
		next -= q->size;
		q->used_wrap = !q->used_wrap;
		/* The index went round: the next interrupt is not suppressed
		 * by a comparison across the wrap. */
		q->signalled_valid = false;
	}
	q->used_idx = (uint16_t)next;
	return 0;
}

static bool packed_should_notify(struct virtq *q)
{
	const uint8_t *drv = (q->avail & 3) ? NULL : q->dma(q->dma_opaque, q->avail, 4);
	if (!drv)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t off_wrap = ld16(drv), flags = ld16(drv + 2) & 3;
	uint16_t old = q->signalled_used, now = q->used_idx;
	bool valid = q->signalled_valid;
	q->signalled_used = now;
	q->signalled_valid = true;
	if (flags == PACKED_EVENT_ENABLE || (flags == PACKED_EVENT_DESC && !q->event_idx))
		return true;
	if (flags != PACKED_EVENT_DESC)
		return false;
	/* Section 2.8.10: an interrupt when the used index passes the
	 * driver's event offset, taken in the wrap it names. */
	int off = off_wrap & 0x7fff;
	if (!!(off_wrap >> 15) != q->used_wrap)
		off -= q->size;
	return !valid || (uint16_t)(now - off - 1) < (uint16_t)(now - old);
}

/* The device event suppression structure (section 2.8.10): where the
 * driver looks before it notifies (Linux: virtqueue_kick_prepare_packed). */
static uint8_t *packed_dev_events(struct virtq *q)
{
	return (q->used & 3) ? NULL : q->dma(q->dma_opaque, q->used, 4);
}

static void packed_disable_notify(struct virtq *q)
{
	/* With EVENT_IDX the event offset published last already lies
	 * behind the buffers being taken: the driver does not notify until
	 * it is moved on.  Without it, flags DISABLE. */
	uint8_t *dev = packed_dev_events(q);
	if (dev && !q->event_idx && ld16(dev + 2) != PACKED_EVENT_DISABLE)
		st16(dev + 2, PACKED_EVENT_DISABLE);
}

static bool packed_enable_notify(struct virtq *q)
{
	/* Notifications wanted again: with EVENT_IDX for the first buffer
	 * the device has not seen (its slot and wrap counter, flags DESC),
	 * as split rings' avail_event; otherwise ENABLE.  Then look again
	 * for a buffer made available meanwhile. */
	uint8_t *dev = packed_dev_events(q);
	if (dev && q->event_idx) {
		st16(dev, (uint16_t)(q->last_avail | (q->avail_wrap ? 0x8000u : 0)));
		__atomic_thread_fence(__ATOMIC_RELEASE);
		if (ld16(dev + 2) != PACKED_EVENT_DESC)
			st16(dev + 2, PACKED_EVENT_DESC);
	} else if (dev && ld16(dev + 2) != PACKED_EVENT_ENABLE) {
		st16(dev + 2, PACKED_EVENT_ENABLE);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	const uint8_t *ring = packed_ring(q);
	return ring && pdesc_avail(ld16(ring + (size_t)DESC_SIZE * q->last_avail + 14), q->avail_wrap);
}

/* ---- either kind ---- */

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	if (!q->ready || !q->size)
		return 0;
	e->ndesc = 0;
	return q->packed ? packed_pop(q, e) : split_pop(q, e);
}

struct virtq_mark virtq_mark(const struct virtq *q)
{
	return (struct virtq_mark){ .last_avail = q->last_avail, .avail_wrap = q->avail_wrap };
}

void virtq_rewind(struct virtq *q, struct virtq_mark m)
{
	/* Packed rings: the wrap counter too, the buffers may have crossed
	 * the ring's end (section 2.8.1). */
	q->last_avail = m.last_avail;
	q->avail_wrap = m.avail_wrap;
}

int virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
	return q->packed ? packed_push(q, e, len) : split_push(q, e, len);
}

bool virtq_should_notify(struct virtq *q)
{
	return q->packed ? packed_should_notify(q) : split_should_notify(q);
}

void virtq_disable_notify(struct virtq *q)
{
	/* Split rings: with EVENT_IDX the stale avail_event does it (as
	 * above); without, VIRTQ_USED_F_NO_NOTIFY is a hint we do without. */
	if (q->packed && q->ready && q->size)
		packed_disable_notify(q);
}

bool virtq_enable_notify(struct virtq *q)
{
	return q->packed ? packed_enable_notify(q) : split_enable_notify(q);
}

static size_t copy_iov(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len, bool to_iov)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off;
		if (k > len - done)
			k = len - done;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, (uint8_t *)buf + done, k);
		else
			memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + off, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t virtq_copy_from(const struct virtq_elem *e, size_t off, void *buf, size_t len)
{
	return copy_iov(e->iov, e->n_out, off, buf, len, false);
}

size_t virtq_copy_to(const struct virtq_elem *e, size_t off, const void *buf, size_t len)
{
	return copy_iov(e->iov + e->n_out, e->n_in, off, (void *)buf, len, true);
}
