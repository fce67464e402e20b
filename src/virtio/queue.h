/* Split (virtio 1.2, section 2.7) and packed (section 2.8) virtqueues:
 * the device side.
 *
 * The rings live in guest memory; every access goes through the dma
 * callback, which returns a host pointer only when the whole range is
 * guest RAM.  A ring the driver broke (a descriptor loop, a chain longer
 * than the queue, an address outside RAM, a device-writable descriptor
 * before a readable one, a bad indirect table) makes virtq_pop() fail:
 * the transport then sets DEVICE_NEEDS_RESET (section 2.1.2).  Nothing in
 * a ring can make the parser loop or touch memory outside guest RAM. */
#ifndef VESSEL_VIRTIO_QUEUE_H
#define VESSEL_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Host pointer to guest-physical [gpa, gpa + len), or NULL when any of it
 * is not RAM. */
typedef void *(*virtio_dma_fn)(void *opaque, uint64_t gpa, uint64_t len);
/* Tells the machine that the device wrote guest-physical [gpa, gpa + len)
 * (the emu engine forgets code it decoded there); may be NULL. */
typedef void (*virtio_dma_written_fn)(void *opaque, uint64_t gpa, uint64_t len);

#define VIRTQ_MAX_SIZE 1024u      /* section 2.7: at most 32768; we offer 256 */
#define VIRTQ_MAX_SEGS 1024u      /* buffers of one request, indirect included */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq {
	uint16_t size;            /* queue_size; a power of two when split */
	bool ready;               /* queue_enable */
	bool event_idx;           /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;            /* VIRTIO_F_INDIRECT_DESC negotiated */
	bool packed;              /* VIRTIO_F_RING_PACKED negotiated */
	/* Split: descriptor table, available and used rings.  Packed: the
	 * descriptor ring, the driver and the device event suppression. */
	uint64_t desc, avail, used;    /* guest-physical ring addresses */
	uint16_t last_avail;      /* split: next avail ring entry the device takes;
				   * packed: next descriptor ring slot to look at */
	uint16_t used_idx;        /* split: the device's used->idx; packed: next slot to write */
	bool avail_wrap, used_wrap;    /* packed: the wrap counters (section 2.8.1) */
	uint16_t signalled_used;  /* used_idx when the driver was last interrupted */
	bool signalled_valid;
	uint16_t msix_vector;
	virtio_dma_fn dma;
	virtio_dma_written_fn dma_written;
	void *dma_opaque;
};

/* One request: its buffers in ring order, device-readable ones first. */
struct virtq_elem {
	uint16_t head;            /* split: head descriptor; packed: buffer ID */
	uint16_t ndesc;           /* packed: ring slots the buffer took */
	unsigned n_out, n_in;     /* iov[0..n_out) readable, then n_in writable */
	uint64_t out_len, in_len; /* total bytes of each kind */
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint64_t gpa[VIRTQ_MAX_SEGS];     /* guest-physical address of each */
};

/* Queue size check for queue_enable: a power of two, 1..max. */
bool virtq_size_valid(unsigned size, unsigned max);
/* The same for a packed queue: any size 1..max (section 2.8.10.1). */
bool virtq_packed_size_valid(unsigned size, unsigned max);
/* Ring alignment for queue_enable (section 2.7 and 2.8.10.1). */
bool virtq_rings_aligned(const struct virtq *q);
/* Takes the next available request.  1: *e is filled; 0: the ring is
 * empty; negative: the ring is broken (-EFAULT outside RAM, -ELOOP a loop
 * or a chain longer than allowed, -EINVAL a malformed chain), with a
 * message in err_msg(). */
int virtq_pop(struct virtq *q, struct virtq_elem *e);
/* Where the device stands in the available ring: virtq_rewind() gives
 * back the requests popped since virtq_mark() (a device that took
 * buffers for a request it cannot finish leaves them to the next try). */
struct virtq_mark {
	uint16_t last_avail;
	bool avail_wrap;
};
struct virtq_mark virtq_mark(const struct virtq *q);
void virtq_rewind(struct virtq *q, struct virtq_mark m);
/* Puts a request on the used ring with len bytes written by the device
 * (reported through dma_written with the used ring entry). */
int virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len);
/* Whether the driver wants an interrupt for what was pushed since the
 * last one (used_event with VIRTIO_F_EVENT_IDX, section 2.7.10; else the
 * avail ring's NO_INTERRUPT flag); when true, records it as signalled. */
bool virtq_should_notify(struct virtq *q);
/* With VIRTIO_F_EVENT_IDX, publishes avail_event = last_avail and returns
 * whether more requests arrived meanwhile (the caller pops again).
 * Packed: the device event suppression, flags DESC at the next slot with
 * EVENT_IDX, else ENABLE (section 2.8.10). */
bool virtq_enable_notify(struct virtq *q);
/* The device is about to take what the ring holds, and will call
 * virtq_enable_notify once it is empty: the driver need not notify
 * meanwhile (packed without EVENT_IDX: flags DISABLE). */
void virtq_disable_notify(struct virtq *q);
/* Copies out / in over an element's readable / writable buffers, from
 * byte offset off; returns bytes copied. */
size_t virtq_copy_from(const struct virtq_elem *e, size_t off, void *buf, size_t len);
size_t virtq_copy_to(const struct virtq_elem *e, size_t off, const void *buf, size_t len);
void virtq_reset(struct virtq *q);

#endif
