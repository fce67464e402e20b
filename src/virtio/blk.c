/* virtio-blk (virtio 1.2, section 5.2) over the block layer: IN, OUT,
 * FLUSH, GET_ID, DISCARD and WRITE_ZEROES, read-only disks, topology,
 * one or more request queues.
 *
 * Requests run asynchronously: the notifying vCPU takes them off the
 * available ring and hands them to the block layer's request queue
 * (src/block/queue.c), whose worker threads do the host I/O; a vCPU
 * thread never waits for the host disk.  A worker that finishes a request
 * puts it on the device's done list and goes on to the next one; the
 * device's completion thread takes the device lock (the VM's, which the
 * interrupt controllers also run under) to move what is done onto the
 * used rings and interrupt the driver.  Workers never wait for the device
 * lock: requests keep flowing while someone holds it.
 *
 * Whoever holds the device lock and needs the device idle -- a save, a
 * device reset, pause, destroy -- waits for the host I/O alone and then
 * completes the done list itself; so nothing is in flight in a snapshot.
 * The completion thread, waiting for the lock, gives up when the device
 * is being destroyed. */
#include "virtio/blk.h"

#include "block/block.h"
#include "util/error.h"
#include "virtio/virtio_pci.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Feature bits (section 5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (section 5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20

#define BLK_QUEUE_SIZE 256
#define BLK_CONFIG_LEN 60     /* up to write_zeroes_may_unmap and padding */
#define BLK_HDR_LEN 16
/* Topology (section 5.2.4): 512-byte logical blocks, 4 KiB physical ones
 * (what host file systems and disks use: the guest aligns to them). */
#define BLK_PHYS_EXP 3
/* DISCARD and WRITE_ZEROES limits offered: ranges of up to 32 MiB, up to
 * 32 of them in one request (16 bytes each, section 5.2.6). */
#define BLK_MAX_RANGE_SECTORS (32u << 11)
#define BLK_MAX_RANGES 32u
#define BLK_RANGE_LEN 16
#define BLK_ZERO_CHUNK (1u << 20)   /* WRITE_ZEROES writes this much per call */

struct virtio_blk;

/* One request from its ring to its used entry. */
struct blk_req {
	struct block_req br;          /* what the block layer's queue runs */
	struct virtio_blk *b;
	struct blk_req *next;         /* free or done list */
	unsigned qi;
	uint32_t type;
	uint64_t sector;
	uint32_t written;             /* data bytes the device wrote */
	uint8_t status;
	int ret;                      /* the block layer's result */
	char msg[160];                /* its message, for the log line */
	unsigned n_ranges;            /* DISCARD / WRITE_ZEROES */
	uint8_t ranges[BLK_MAX_RANGES * BLK_RANGE_LEN];
	struct virtq_elem elem;
	struct iovec data[VIRTQ_MAX_SEGS];
};

struct virtio_blk {
	struct virtio_pci *t;
	struct block_dev *disk;
	struct block_queue *bq;
	struct virtio_device_ops ops;
	bool readonly;
	bool batch;                   /* conf->batch */
	enum virtio_blk_cache cache;
	char serial[VIRTIO_BLK_ID_BYTES];
	pthread_mutex_t *dev_lock;    /* the device lock (the VM's), or own_lock */
	pthread_mutex_t own_lock;     /* stands in for it in unit tests */
	pthread_mutex_t lock;         /* the lists and counters below */
	pthread_cond_t idle;          /* inflight dropped to 0 */
	pthread_cond_t work;          /* the done list or stopping changed */
	pthread_t completer;
	bool completer_started;
	struct blk_req *free_reqs, *done_head, *done_tail;
	unsigned inflight;            /* submitted, host I/O not finished */
	unsigned allocated;           /* requests in existence */
	bool stopping;                /* destroy: the completion thread ends */
};

static const uint8_t zero_chunk[BLK_ZERO_CHUNK];

static void put_le16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put_le32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }

static void blk_config(void *dev, uint8_t *buf)
{
	struct virtio_blk *b = dev;
	uint64_t cap = htole64(b->disk->sectors);
	memcpy(buf + 0, &cap, 8);                           /* capacity, in 512-byte sectors */
	put_le32(buf + 12, BLK_QUEUE_SIZE - 2);             /* seg_max: header and status take two */
	put_le32(buf + 20, BLOCK_SECTOR_SIZE);              /* blk_size */
	buf[24] = BLK_PHYS_EXP;                             /* topology.physical_block_exp */
	buf[25] = 0;                                        /* alignment_offset */
	put_le16(buf + 26, 1u << BLK_PHYS_EXP);             /* min_io_size, in blocks */
	put_le32(buf + 28, 0);                              /* opt_io_size: none */
	put_le16(buf + 34, (uint16_t)b->ops.n_queues);      /* num_queues */
	put_le32(buf + 36, BLK_MAX_RANGE_SECTORS);          /* max_discard_sectors */
	put_le32(buf + 40, BLK_MAX_RANGES);                 /* max_discard_seg */
	put_le32(buf + 44, 1u << BLK_PHYS_EXP);             /* discard_sector_alignment */
	put_le32(buf + 48, BLK_MAX_RANGE_SECTORS);          /* max_write_zeroes_sectors */
	put_le32(buf + 52, BLK_MAX_RANGES);                 /* max_write_zeroes_seg */
	buf[56] = 0;   /* write_zeroes_may_unmap: zeros are always written */
}

/* ---- requests ---- */

static struct blk_req *req_get(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	struct blk_req *r = b->free_reqs;
	if (r)
		b->free_reqs = r->next;
	pthread_mutex_unlock(&b->lock);
	if (!r && (r = malloc(sizeof(*r)))) {
		pthread_mutex_lock(&b->lock);
		b->allocated++;
		pthread_mutex_unlock(&b->lock);
	}
	if (r) {
		memset(&r->br, 0, sizeof(r->br));
		r->b = b;
		r->next = NULL;
		r->written = 0;
		r->status = VIRTIO_BLK_S_OK;
		r->ret = 0;
		r->msg[0] = 0;
		r->n_ranges = 0;
	}
	return r;
}

static void req_put(struct virtio_blk *b, struct blk_req *r)
{
	pthread_mutex_lock(&b->lock);
	r->next = b->free_reqs;
	b->free_reqs = r;
	pthread_mutex_unlock(&b->lock);
}

/* Data buffers of a request: the iovecs from byte skip of the readable
 * (out) or writable (in) part, less trim bytes at the end. */
static int blk_data_iov(struct blk_req *r, bool in, uint64_t skip, uint64_t trim, uint64_t *total)
{
	const struct virtq_elem *e = &r->elem;
	const struct iovec *iov = in ? e->iov + e->n_out : e->iov;
	unsigned n = in ? e->n_in : e->n_out;
	uint64_t left = (in ? e->in_len : e->out_len) - skip - trim;
	int cnt = 0;
	*total = left;
	for (unsigned i = 0; i < n && left; i++) {
		uint64_t len = iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		uint64_t k = len - skip < left ? len - skip : left;
		r->data[cnt++] = (struct iovec){ .iov_base = (uint8_t *)iov[i].iov_base + skip, .iov_len = k };
		left -= k;
		skip = 0;
	}
	return cnt;
}

static bool range_ok(struct virtio_blk *b, const char *what, uint64_t sector, uint64_t count)
{
	if (sector <= b->disk->sectors && count <= b->disk->sectors - sector)
		return true;
	virtio_pci_guest_error(b->t, "%s of %llu sectors at %llu: past the end (%llu sectors)", what,
			       (unsigned long long)count, (unsigned long long)sector,
			       (unsigned long long)b->disk->sectors);
	return false;
}

/* IN or OUT: checks the request; true when it goes to the block queue. */
static bool blk_rw(struct virtio_blk *b, struct blk_req *r, bool write)
{
	/* Section 5.2.6: a read's data is device-writable and a write's
	 * device-readable; data on the wrong side is a broken request. */
	if (write ? r->elem.in_len != 1 : r->elem.out_len != BLK_HDR_LEN) {
		virtio_pci_guest_error(b->t, "%s with %llu device-%s bytes besides header and status",
				       write ? "write" : "read",
				       (unsigned long long)(write ? r->elem.in_len - 1 : r->elem.out_len - BLK_HDR_LEN),
				       write ? "writable" : "readable");
		r->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	uint64_t bytes;
	int cnt = write ? blk_data_iov(r, false, BLK_HDR_LEN, 0, &bytes) : blk_data_iov(r, true, 0, 1, &bytes);
	if (bytes % BLOCK_SECTOR_SIZE) {
		virtio_pci_guest_error(b->t, "%s of %llu bytes: not whole sectors", write ? "write" : "read",
				       (unsigned long long)bytes);
		r->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	uint64_t count = bytes / BLOCK_SECTOR_SIZE;
	if (!range_ok(b, write ? "write" : "read", r->sector, count) || (write && b->readonly)) {
		/* Section 5.2.6.2: the driver was told VIRTIO_BLK_F_RO. */
		r->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	if (!count)
		return false;
	r->br.op = write ? BLOCK_OP_WRITE : BLOCK_OP_READ;
	r->br.sector = r->sector;
	r->br.count = count;
	r->br.iov = r->data;
	r->br.iovcnt = cnt;
	if (!write)
		r->written = (uint32_t)bytes;
	return true;
}

/* DISCARD and WRITE_ZEROES carry their ranges in the readable buffers
 * after the header (section 5.2.6: struct virtio_blk_discard_write_zeroes). */
static bool blk_ranges(struct virtio_blk *b, struct blk_req *r)
{
	bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	const char *what = zeroes ? "write-zeroes" : "discard";
	uint64_t len = r->elem.out_len - BLK_HDR_LEN;
	if (b->readonly) {
		r->status = VIRTIO_BLK_S_UNSUPP;   /* not offered for a read-only disk */
		return false;
	}
	if (!len || len % BLK_RANGE_LEN || len / BLK_RANGE_LEN > BLK_MAX_RANGES || r->elem.in_len != 1) {
		virtio_pci_guest_error(b->t, "%s with %llu bytes of ranges (at most %u of %u bytes)", what,
				       (unsigned long long)len, BLK_MAX_RANGES, BLK_RANGE_LEN);
		r->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	r->n_ranges = (unsigned)(len / BLK_RANGE_LEN);
	virtq_copy_from(&r->elem, BLK_HDR_LEN, r->ranges, len);
	for (unsigned i = 0; i < r->n_ranges; i++) {
		uint64_t sector;
		uint32_t count, flags;
		memcpy(&sector, r->ranges + BLK_RANGE_LEN * i, 8);
		memcpy(&count, r->ranges + BLK_RANGE_LEN * i + 8, 4);
		memcpy(&flags, r->ranges + BLK_RANGE_LEN * i + 12, 4);
		sector = le64toh(sector);
		count = le32toh(count);
		flags = le32toh(flags);
		/* Section 5.2.6.2: more than the limits, or flags other than
		 * unmap (for WRITE_ZEROES only), is an error. */
		if (count > BLK_MAX_RANGE_SECTORS || (flags & ~(uint32_t)(zeroes ? 1 : 0))) {
			virtio_pci_guest_error(b->t, "%s of %u sectors with flags %#x", what, count, flags);
			r->status = zeroes ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_UNSUPP;
			return false;
		}
		if (!range_ok(b, what, sector, count)) {
			r->status = VIRTIO_BLK_S_IOERR;
			return false;
		}
	}
	return true;
}

/* Worker side of DISCARD and WRITE_ZEROES: each range in turn. */
static int blk_run_ranges(struct block_req *br)
{
	struct blk_req *r = br->opaque;
	struct virtio_blk *b = r->b;
	for (unsigned i = 0; i < r->n_ranges; i++) {
		uint64_t sector;
		uint32_t count;
		memcpy(&sector, r->ranges + BLK_RANGE_LEN * i, 8);
		memcpy(&count, r->ranges + BLK_RANGE_LEN * i + 8, 4);
		sector = le64toh(sector);
		count = le32toh(count);
		r->sector = sector;   /* for the log line */
		int rc = 0;
		if (r->type == VIRTIO_BLK_T_DISCARD) {
			rc = block_discard(b->disk, sector, count);
		} else {
			/* Zeros written, whatever the unmap flag: a discard does not
			 * read back as zeros on every host file system or under
			 * encryption. */
			while (count && rc == 0) {
				uint32_t n = count < BLK_ZERO_CHUNK / BLOCK_SECTOR_SIZE ? count
											 : BLK_ZERO_CHUNK / BLOCK_SECTOR_SIZE;
				struct iovec iov = { .iov_base = (void *)zero_chunk, .iov_len = (size_t)n * BLOCK_SECTOR_SIZE };
				rc = block_writev(b->disk, sector, &iov, 1);
				sector += n;
				count -= n;
			}
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* cache=unsafe: the guest's flushes are not the host's business. */
static int blk_run_no_flush(struct block_req *br)
{
	return 0;
}

/* Parses a request; true when it goes to the block queue, false when it
 * is answered at once (r->status, r->written set). */
static bool blk_prepare(struct virtio_blk *b, struct blk_req *r)
{
	uint8_t hdr[BLK_HDR_LEN];
	if (virtq_copy_from(&r->elem, 0, hdr, sizeof(hdr)) < sizeof(hdr)) {
		virtio_pci_guest_error(b->t, "request with a %llu-byte header", (unsigned long long)r->elem.out_len);
		r->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	memcpy(&r->type, hdr, 4);
	memcpy(&r->sector, hdr + 8, 8);
	r->type = le32toh(r->type);
	r->sector = le64toh(r->sector);
	r->br.opaque = r;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return blk_rw(b, r, false);
	case VIRTIO_BLK_T_OUT:
		return blk_rw(b, r, true);
	case VIRTIO_BLK_T_FLUSH:
		r->sector = 0;
		r->br.op = BLOCK_OP_FLUSH;   /* the block layer's flush, on a worker or the io_uring */
		if (b->cache == VIRTIO_BLK_CACHE_UNSAFE)
			r->br.run = blk_run_no_flush;
		return true;
	case VIRTIO_BLK_T_GET_ID: {
		/* Section 5.2.6.1: 20 bytes, not NUL-terminated when full. */
		uint64_t room = r->elem.in_len - 1;
		size_t n = room < VIRTIO_BLK_ID_BYTES ? (size_t)room : VIRTIO_BLK_ID_BYTES;
		r->written = (uint32_t)virtq_copy_to(&r->elem, 0, b->serial, n);
		return false;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!blk_ranges(b, r))
			return false;
		r->br.op = r->type == VIRTIO_BLK_T_DISCARD ? BLOCK_OP_DISCARD : BLOCK_OP_WRITE;
		r->br.run = blk_run_ranges;
		return true;
	default:
		r->status = VIRTIO_BLK_S_UNSUPP;
		return false;
	}
}

/* Puts a finished request on its used ring (device lock held); false
 * when the ring is broken. */
static bool blk_complete(struct virtio_blk *b, struct blk_req *r)
{
	struct virtq *q = virtio_pci_queue(b->t, r->qi);
	if (r->ret < 0) {
		/* One line naming the disk and the offset (rate-limited). */
		const char *what = r->type == VIRTIO_BLK_T_IN ? "read" : r->type == VIRTIO_BLK_T_OUT ? "write"
				 : r->type == VIRTIO_BLK_T_FLUSH ? "flush" : r->type == VIRTIO_BLK_T_DISCARD ? "discard"
				 : "write-zeroes";
		virtio_pci_guest_error(b->t, "disk %s: %s at byte %llu failed: %s", b->disk->name, what,
				       (unsigned long long)r->sector * BLOCK_SECTOR_SIZE, r->msg);
		r->status = VIRTIO_BLK_S_IOERR;
		r->written = 0;
	}
	virtq_copy_to(&r->elem, r->elem.in_len - 1, &r->status, 1);
	int rc = virtq_push(q, &r->elem, r->written + 1);
	if (rc < 0)
		virtio_pci_broken(b->t, r->qi);
	return rc == 0;
}

/* Moves the done list to the used rings and interrupts the driver for
 * each queue that got something (device lock held). */
static void blk_deliver(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	struct blk_req *r = b->done_head;
	b->done_head = b->done_tail = NULL;
	pthread_mutex_unlock(&b->lock);
	uint32_t touched = 0;
	while (r) {
		struct blk_req *next = r->next;
		if (blk_complete(b, r))
			touched |= 1u << r->qi;
		req_put(b, r);
		r = next;
	}
	for (unsigned qi = 0; qi < b->ops.n_queues; qi++)
		if (touched >> qi & 1)
			virtio_pci_queue_done(b->t, qi);
}

/* Waits for the host I/O of every submitted request (device lock held:
 * workers do not need it for that). */
static void blk_wait_io(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	while (b->inflight)
		pthread_cond_wait(&b->idle, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

void virtio_blk_drain(void *dev)
{
	struct virtio_blk *b = dev;
	pthread_mutex_lock(b->dev_lock);
	blk_wait_io(b);
	blk_deliver(b);
	pthread_mutex_unlock(b->dev_lock);
}

/* A worker thread: the host I/O of r is done. */
static void blk_io_done(struct block_req *br, int ret)
{
	struct blk_req *r = br->opaque;
	struct virtio_blk *b = r->b;
	r->ret = ret;
	if (ret < 0)
		snprintf(r->msg, sizeof(r->msg), "%s", err_msg());
	pthread_mutex_lock(&b->lock);
	if (b->done_tail)
		b->done_tail->next = r;
	else
		b->done_head = r;
	b->done_tail = r;
	r->next = NULL;
	if (--b->inflight == 0)
		pthread_cond_broadcast(&b->idle);
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->lock);
}

/* The completion thread: the done list onto the used rings, under the
 * device lock.  Whoever holds the lock to save, reset or pause the
 * device completes the list itself; destroy sets stopping so that this
 * thread does not wait for the lock forever. */
static void *blk_completer(void *arg)
{
	struct virtio_blk *b = arg;
	for (;;) {
		pthread_mutex_lock(&b->lock);
		while (!b->done_head && !b->stopping)
			pthread_cond_wait(&b->work, &b->lock);
		bool stop = b->stopping;
		pthread_mutex_unlock(&b->lock);
		if (stop)
			return NULL;
		for (;;) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_mutex_timedlock(b->dev_lock, &ts) == 0)
				break;
			pthread_mutex_lock(&b->lock);
			stop = b->stopping;
			pthread_mutex_unlock(&b->lock);
			if (stop)
				return NULL;
		}
		blk_deliver(b);
		pthread_mutex_unlock(b->dev_lock);
	}
}

static void blk_notify(void *dev, unsigned qi)
{
	struct virtio_blk *b = dev;
	struct virtq *q = virtio_pci_queue(b->t, qi);
	pthread_mutex_lock(b->dev_lock);   /* held already on a bus callback; not in unit tests */
	bool pushed = false;
	/* Compounding: what this notification brings goes to the host as one
	 * batch when the ring is empty (a driver queues several requests and
	 * notifies once). */
	if (b->batch)
		block_queue_plug(b->bq);
	virtq_disable_notify(q);   /* until the ring is empty (virtq_enable_notify) */
	for (;;) {
		struct blk_req *r = req_get(b);
		if (!r) {
			/* Out of memory: the rest waits in the ring for the next
			 * notification or completion. */
			virtio_pci_guest_error(b->t, "queue %u: out of memory for requests", qi);
			virtq_enable_notify(q);
			break;
		}
		int rc = virtq_pop(q, &r->elem);
		if (rc == 0) {
			req_put(b, r);
			if (virtq_enable_notify(q))
				continue;   /* a request arrived as we looked: take it */
			break;
		}
		if (rc < 0) {
			req_put(b, r);
			virtio_pci_broken(b->t, qi);
			break;
		}
		if (!r->elem.in_len) {
			req_put(b, r);
			err_set(-EINVAL, "request without a status byte");
			virtio_pci_broken(b->t, qi);
			break;
		}
		r->qi = qi;
		if (blk_prepare(b, r)) {
			r->br.done = blk_io_done;
			pthread_mutex_lock(&b->lock);
			b->inflight++;
			pthread_mutex_unlock(&b->lock);
			if ((rc = block_queue_submit(b->bq, &r->br)) == 0)
				continue;
			pthread_mutex_lock(&b->lock);
			b->inflight--;
			pthread_mutex_unlock(&b->lock);
			r->ret = rc;
			snprintf(r->msg, sizeof(r->msg), "%s", err_msg());
		}
		if (blk_complete(b, r))
			pushed = true;
		req_put(b, r);
	}
	if (b->batch)
		block_queue_unplug(b->bq);
	if (pushed)
		virtio_pci_queue_done(b->t, qi);
	pthread_mutex_unlock(b->dev_lock);
}

/* The driver reset the device (or the machine did): what is in flight
 * finishes first, and its used entries are dropped with the rings
 * (section 2.4: the device resets its queues). */
static void blk_reset_requests(void *dev)
{
	struct virtio_blk *b = dev;
	pthread_mutex_lock(b->dev_lock);
	blk_wait_io(b);
	pthread_mutex_lock(&b->lock);
	struct blk_req *r = b->done_head;
	b->done_head = b->done_tail = NULL;
	pthread_mutex_unlock(&b->lock);
	while (r) {
		struct blk_req *next = r->next;
		req_put(b, r);
		r = next;
	}
	pthread_mutex_unlock(b->dev_lock);
}

static void blk_free_lists(struct virtio_blk *b)
{
	for (struct blk_req *r = b->free_reqs, *next; r; r = next) {
		next = r->next;
		free(r);
	}
	for (struct blk_req *r = b->done_head, *next; r; r = next) {
		next = r->next;
		free(r);
	}
	b->free_reqs = b->done_head = b->done_tail = NULL;
}

static void blk_free(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->work);
	pthread_mutex_unlock(&b->lock);
	if (b->bq)
		block_queue_free(b->bq);   /* the workers finish what they have */
	if (b->completer_started)
		pthread_join(b->completer, NULL);   /* it gives up on the device lock */
	virtio_pci_free(b->t);          /* nothing touches the rings after the workers */
	blk_free_lists(b);
	pthread_cond_destroy(&b->idle);
	pthread_cond_destroy(&b->work);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->own_lock);
	free(b);
}

static void *blk_create(const struct dev_ctx *ctx)
{
	const struct virtio_board *board = ctx->arg;
	const struct virtio_blk_conf *conf = board ? board->conf : NULL;
	if (!conf || !conf->disk) {
		err_set(-EINVAL, "%s: no disk", ctx->name);
		return NULL;
	}
	unsigned queues = conf->queues ? conf->queues : 1;
	if (queues > VIRTIO_BLK_MAX_QUEUES) {
		block_close(conf->disk);
		err_set(-EINVAL, "%s: %u request queues (at most %u)", ctx->name, queues, VIRTIO_BLK_MAX_QUEUES);
		return NULL;
	}
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		block_close(conf->disk);
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&b->own_lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->idle, NULL);
	pthread_cond_init(&b->work, NULL);
	b->dev_lock = ctx->lock ? ctx->lock : &b->own_lock;
	b->disk = conf->disk;
	b->readonly = conf->readonly || conf->disk->rdonly;
	b->cache = conf->cache;
	b->batch = conf->batch;
	if (conf->serial) {
		size_t n = strlen(conf->serial);
		memcpy(b->serial, conf->serial, n < sizeof(b->serial) ? n : sizeof(b->serial));
	}
	b->ops = (struct virtio_device_ops){
		.device_id = VIRTIO_ID_BLOCK, .class_code = 0x018000, .n_queues = queues, .queue_max = BLK_QUEUE_SIZE,
		.features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH |
			    1ull << VIRTIO_BLK_F_TOPOLOGY,
		.config_len = BLK_CONFIG_LEN, .config = blk_config, .notify = blk_notify, .reset = blk_reset_requests,
	};
	if (queues > 1)
		b->ops.features |= 1ull << VIRTIO_BLK_F_MQ;
	if (!conf->split_only)
		b->ops.features |= 1ull << VIRTIO_F_RING_PACKED;
	/* Section 5.2.3.1: DISCARD and WRITE_ZEROES change the disk. */
	b->ops.features |= b->readonly ? 1ull << VIRTIO_BLK_F_RO
				       : 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	/* Workers: host reads and writes overlap (two a queue, at most 8);
	 * the queue never refuses what the rings can hold.  With batching, a
	 * raw image's reads, writes and flushes go through io_uring instead. */
	unsigned workers = 2 * queues > 8 ? 8 : 2 * queues;
	int rc = block_queue_new_flags(b->disk, workers, queues * BLK_QUEUE_SIZE, b->batch ? BLOCK_QUEUE_URING : 0,
				       &b->bq);
	if (rc == 0 && (rc = -pthread_create(&b->completer, NULL, blk_completer, b)) < 0)
		err_set(rc, "%s: cannot start the completion thread", ctx->name);
	b->completer_started = rc == 0;
	if (rc < 0) {
		block_close(b->disk);
		blk_free(b);
		return NULL;
	}
	if (!(b->t = virtio_pci_new(ctx, &b->ops, b))) {
		block_close(b->disk);
		blk_free(b);
		return NULL;
	}
	return b;
}

static void blk_reset(void *dev)
{
	virtio_pci_reset(((struct virtio_blk *)dev)->t);
}

static int64_t blk_save(void *dev, void *buf, size_t cap)
{
	/* Nothing in flight in a snapshot: what the host is still doing
	 * completes, onto the used rings, before the transport is captured
	 * (the caller holds the device lock). */
	virtio_blk_drain(dev);
	return virtio_pci_save(((struct virtio_blk *)dev)->t, buf, cap);
}

static int blk_load(void *dev, const void *buf, size_t len)
{
	virtio_blk_drain(dev);
	return virtio_pci_load(((struct virtio_blk *)dev)->t, buf, len);
}

static void blk_destroy(void *dev)
{
	struct virtio_blk *b = dev;
	if (!b)
		return;
	struct block_dev *disk = b->disk;
	blk_free(b);
	block_flush(disk);          /* what the guest wrote is on the file when the VM ends */
	block_close(disk);
}

const struct dev_desc virtio_blk_device = {
	.name = "virtio-blk", .create = blk_create, .reset = blk_reset,
	.save = blk_save, .load = blk_load, .destroy = blk_destroy,
};
