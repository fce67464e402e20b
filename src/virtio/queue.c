/* Split virtqueues, device side (virtio 1.2, section 2.7; see queue.h). */
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

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	if (!q->ready || !q->size)
		return 0;
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
		if (!len)
			return err_set(-EINVAL, "descriptor %u: zero-length buffer", i);
		void *p = q->dma(q->dma_opaque, addr, len);
		if (!p)
			return err_set(-EFAULT, "descriptor %u: buffer at %#llx (%u bytes) is not in guest RAM", i,
				       (unsigned long long)addr, len);
		if (e->n_out + e->n_in >= VIRTQ_MAX_SEGS)
			return err_set(-ELOOP, "descriptor chain from %u has more than %u buffers", head, VIRTQ_MAX_SEGS);
		if (flags & VIRTQ_DESC_F_WRITE) {
			e->n_in++;
			e->in_len += len;
		} else {
			/* Section 2.7.4.2: readable buffers come first. */
			if (e->n_in)
				return err_set(-EINVAL, "descriptor %u: device-readable buffer after a writable one", i);
			e->n_out++;
			e->out_len += len;
		}
		e->iov[e->n_out + e->n_in - 1] = (struct iovec){ .iov_base = p, .iov_len = len };
		e->gpa[e->n_out + e->n_in - 1] = addr;
		if (!(flags & VIRTQ_DESC_F_NEXT))
			break;
		if (next >= table_size)
			return err_set(-EINVAL, "descriptor %u: next %u is outside its %u-entry table", i, next, table_size);
		i = next;
	}
	q->last_avail++;
	return 1;
}

int virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
	uint8_t *used = ring_used(q);
	if (!used)
		return err_set(-EFAULT, "used ring at %#llx (%u entries) is not in guest RAM or misaligned",
			       (unsigned long long)q->used, q->size);
	if (q->dma_written) {
		/* The bytes the device says it wrote, in buffer order. */
		uint64_t left = len;
		for (unsigned i = e->n_out; i < e->n_out + e->n_in && left; i++) {
			uint64_t k = e->iov[i].iov_len < left ? e->iov[i].iov_len : left;
			q->dma_written(q->dma_opaque, e->gpa[i], k);
			left -= k;
		}
		q->dma_written(q->dma_opaque, q->used, USED_BYTES(q->size));
	}
	uint8_t *ent = used + 4 + 8u * (q->used_idx & (q->size - 1));
	uint32_t id = htole32(e->head), l = htole32(len);
	memcpy(ent, &id, 4);
	memcpy(ent + 4, &l, 4);
	/* The entry is visible before the index that publishes it (2.7.8.2). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	st16(used + 2, ++q->used_idx);
	return 0;
}

bool virtq_should_notify(struct virtq *q)
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

bool virtq_enable_notify(struct virtq *q)
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
