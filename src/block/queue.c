/* Asynchronous request queue.  Two ways to the host:
 *
 * - Worker threads run the synchronous block_* calls from a FIFO, so
 *   several requests are in flight at once (host reads and writes
 *   overlap) and a device model's thread never blocks on disk I/O: the
 *   model of QEMU's thread-pool AIO and cloud-hypervisor's block workers.
 *   It serves every format and filter.
 * - An io_uring (BLOCK_QUEUE_URING) for the requests a driver maps
 *   straight onto its host file (raw images): the submitter puts them on
 *   the ring's submission queue and one io_uring_enter hands a whole
 *   batch to the kernel, which does the I/O without a thread of ours (or
 *   on its own io-wq workers); one reaper thread of the queue takes the
 *   completions.  This is the compounding of disk requests
 *   (docs/compounding.md "Disk"): a guest's burst of requests
 *   costs one system call, not one pread/pwrite and one wake-up each.
 *
 * Plugging (block_queue_plug/unplug) holds submissions back until the
 * batch is complete, on either path. */
#include "block/block.h"
#include "util/error.h"
#include "util/hostcall.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define URING_ENTRIES 256u   /* submission queue; a fuller batch is entered in parts */

struct block_queue {
	struct block_dev *bd;
	pthread_mutex_t lock;
	pthread_cond_t work;       /* a request was queued or stop was set */
	pthread_cond_t idle;       /* pending + running dropped to 0 */
	struct block_req *head, *tail;
	unsigned queued, running, depth, nthreads;
	unsigned idle_workers;     /* waiting on work */
	unsigned plugged;          /* plug depth */
	unsigned held;             /* queued for the workers while plugged, not yet signalled */
	bool stop;
	/* io_uring path: `running` counts its requests too. */
	bool uring;
	struct io_uring ring;
	unsigned sq_pending;       /* prepared SQEs not yet entered */
	pthread_t reaper;
	bool reaper_started;
	pthread_t threads[];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_req(struct block_dev *bd, struct block_req *r)
{
	if (r->run)
		return r->run(r);
	switch (r->op) {
	case BLOCK_OP_READ:
		return block_readv(bd, r->sector, r->iov, r->iovcnt);
	case BLOCK_OP_WRITE:
		return block_writev(bd, r->sector, r->iov, r->iovcnt);
	case BLOCK_OP_FLUSH:
		return block_flush(bd);
	case BLOCK_OP_DISCARD:
		return block_discard(bd, r->sector, r->count);
	default:
		return err_set(-EINVAL, "bad block request op %d", (int)r->op);
	}
}

/* A request is over (either path): its caller learns, drain may end. */
static void finish(struct block_queue *q, struct block_req *r, int ret)
{
	if (r->done)
		r->done(r, ret);
	pthread_mutex_lock(&q->lock);
	q->running--;
	if (!q->queued && !q->running)
		pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
}

static void *worker(void *arg)
{
	struct block_queue *q = arg;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->head && !q->stop) {
			q->idle_workers++;
			pthread_cond_wait(&q->work, &q->lock);
			q->idle_workers--;
		}
		if (!q->head)
			break;
		struct block_req *r = q->head;
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		q->queued--;
		q->running++;
		pthread_mutex_unlock(&q->lock);
		finish(q, r, run_req(q->bd, r));
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* ---- io_uring ---- */

/* Whether the kernel can do r alone: a read, write or flush without a
 * run callback, in range, on a driver that maps it onto its file in one
 * piece; for an O_DIRECT file, with buffers O_DIRECT takes as they are
 * (the workers bounce the others). */
static bool uring_takes(struct block_queue *q, const struct block_req *r, struct block_file **file, uint64_t *off,
			uint64_t *bytes)
{
	struct block_dev *bd = q->bd;
	if (r->run || !bd->drv->map || (r->op != BLOCK_OP_READ && r->op != BLOCK_OP_WRITE && r->op != BLOCK_OP_FLUSH))
		return false;
	if (r->op != BLOCK_OP_READ && bd->rdonly)
		return false;   /* the workers answer as block_write/flush do */
	if (r->op == BLOCK_OP_FLUSH) {
		*bytes = 0;
		return bd->drv->map(bd, 0, 0, file, off) == 0;
	}
	if (r->iovcnt < 1 || r->iovcnt > IOV_MAX)
		return false;
	uint64_t total = 0;
	bool aligned = true;
	for (int i = 0; i < r->iovcnt; i++) {
		total += r->iov[i].iov_len;
		aligned = aligned && (uintptr_t)r->iov[i].iov_base % BLOCK_BUF_ALIGN == 0 &&
			  r->iov[i].iov_len % BLOCK_SECTOR_SIZE == 0;
	}
	if (total % BLOCK_SECTOR_SIZE || r->sector > bd->sectors ||
	    total >> BLOCK_SECTOR_SHIFT > bd->sectors - r->sector)
		return false;   /* the workers report it */
	if (bd->drv->map(bd, r->sector, total >> BLOCK_SECTOR_SHIFT, file, off) < 0)
		return false;
	if ((*file)->direct && !aligned)
		return false;
	if (r->op == BLOCK_OP_WRITE && (*file)->rdonly)
		return false;
	*bytes = total;
	return true;
}

/* Hands the prepared SQEs to the kernel (q->lock held).  One system call
 * for the batch; what the kernel did not take (a busy completion queue)
 * stays pending for the next one, which the reaper makes after it has
 * taken completions. */
static void uring_enter(struct block_queue *q)
{
	if (!q->sq_pending)
		return;
	host_call_note(HOST_CALL_IO_SUBMIT);
	int n = io_uring_submit(&q->ring);
	if (n > 0) {
		compound_note(COMPOUND_DISK_BATCHES, 1);
		q->sq_pending -= (unsigned)n < q->sq_pending ? (unsigned)n : q->sq_pending;
	}
}

/* Puts r on the submission queue (q->lock held); false when it goes to
 * the workers instead. */
static bool uring_queue(struct block_queue *q, struct block_req *r)
{
	struct block_file *file;
	uint64_t off, bytes;
	if (!uring_takes(q, r, &file, &off, &bytes))
		return false;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	if (!sqe) {
		uring_enter(q);
		if (!(sqe = io_uring_get_sqe(&q->ring)))
			return false;
	}
	if (r->op == BLOCK_OP_READ)
		io_uring_prep_readv(sqe, file->fd, r->iov, (unsigned)r->iovcnt, off);
	else if (r->op == BLOCK_OP_WRITE)
		io_uring_prep_writev(sqe, file->fd, r->iov, (unsigned)r->iovcnt, off);
	else
		io_uring_prep_fsync(sqe, file->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, r);
	r->q_bytes = bytes;
	r->q_t0 = now_ns();
	q->sq_pending++;
	q->running++;
	return true;
}

/* A completion: anything but the whole transfer (an error, a short
 * read at the end of a truncated file, EAGAIN) is done again by the
 * synchronous path, which retries what can be retried and words the
 * error as the workers would.  Reads and writes at a fixed offset can
 * be repeated. */
static void uring_complete(struct block_queue *q, struct block_req *r, int res)
{
	int ret;
	if (res >= 0 && (uint64_t)res == r->q_bytes) {
		ret = 0;
		if (r->op == BLOCK_OP_WRITE)
			block_file_note_write();
		block_account(q->bd, r->op, r->q_bytes, now_ns() - r->q_t0, 0);
	} else {
		ret = run_req(q->bd, r);
	}
	finish(q, r, ret);
}

/* The reaper: takes completions in batches, one wait for each. */
static void *reaper(void *arg)
{
	struct block_queue *q = arg;
	for (;;) {
		struct io_uring_cqe *cqe;
		if (io_uring_peek_cqe(&q->ring, &cqe) != 0) {
			host_call_note(HOST_CALL_IO_WAIT);
			int rc = io_uring_wait_cqe(&q->ring, &cqe);
			if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -ETIME)
				return NULL;   /* the ring is gone: cannot happen while the queue lives */
			if (rc < 0)
				continue;
		}
		unsigned head, n = 0;
		bool stop = false;
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			n++;
			struct block_req *r = io_uring_cqe_get_data(cqe);
			if (r)
				uring_complete(q, r, cqe->res);
			else
				stop = true;   /* block_queue_free's NOP */
		}
		io_uring_cq_advance(&q->ring, n);
		if (stop)
			return NULL;
		pthread_mutex_lock(&q->lock);
		if (!q->plugged)
			uring_enter(q);   /* what a full completion queue held back */
		pthread_mutex_unlock(&q->lock);
	}
}

static void uring_setup(struct block_queue *q, unsigned depth)
{
	if (!q->bd->drv->map)
		return;   /* nothing would go there */
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	/* Room for every completion of a full queue: none overflows. */
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = depth > URING_ENTRIES ? depth : URING_ENTRIES;
	if (io_uring_queue_init_params(URING_ENTRIES, &q->ring, &p) < 0)
		return;   /* ENOSYS, EPERM (kernel.io_uring_disabled), ENOMEM: the workers do it all */
	if (pthread_create(&q->reaper, NULL, reaper, q) != 0) {
		io_uring_queue_exit(&q->ring);
		return;
	}
	q->reaper_started = true;
	q->uring = true;
}

static void uring_stop(struct block_queue *q)
{
	if (!q->uring)
		return;
	pthread_mutex_lock(&q->lock);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	if (!sqe) {
		uring_enter(q);
		sqe = io_uring_get_sqe(&q->ring);
	}
	if (sqe) {
		/* Not a disk request: not counted. */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		while (io_uring_submit(&q->ring) == -EINTR)
			;
	}
	pthread_mutex_unlock(&q->lock);
	if (sqe)
		pthread_join(q->reaper, NULL);
	else
		pthread_cancel(q->reaper);   /* cannot happen: the queue is drained */
	io_uring_queue_exit(&q->ring);
	q->uring = false;
}

/* ---- the queue ---- */

int block_queue_new_flags(struct block_dev *bd, unsigned nthreads, unsigned depth, unsigned flags,
			  struct block_queue **out)
{
	if (nthreads < 1 || nthreads > 64)
		return err_set(-EINVAL, "block queue: %u workers (1..64)", nthreads);
	struct block_queue *q = calloc(1, sizeof(*q) + nthreads * sizeof(pthread_t));
	if (!q)
		return err_set(-ENOMEM, "out of memory");
	q->bd = bd;
	q->depth = depth ? depth : 256;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->idle, NULL);
	for (unsigned i = 0; i < nthreads; i++) {
		int e = pthread_create(&q->threads[i], NULL, worker, q);
		if (e) {
			block_queue_free(q);
			return err_set(-e, "block queue: cannot start worker thread");
		}
		q->nthreads++;
	}
	if (flags & BLOCK_QUEUE_URING)
		uring_setup(q, q->depth);
	*out = q;
	return 0;
}

int block_queue_new(struct block_dev *bd, unsigned nthreads, unsigned depth, struct block_queue **out)
{
	return block_queue_new_flags(bd, nthreads, depth, 0, out);
}

bool block_queue_uses_uring(const struct block_queue *q)
{
	return q->uring;
}

/* Wakes workers for the requests handed over since the last time (q->lock
 * held): one hand-off. */
static void wake_workers(struct block_queue *q, unsigned n)
{
	compound_note(COMPOUND_DISK_BATCHES, 1);
	for (unsigned i = 0; i < n && i < q->idle_workers; i++) {
		host_call_note(HOST_CALL_WAKE);
		pthread_cond_signal(&q->work);
	}
}

int block_queue_submit(struct block_queue *q, struct block_req *req)
{
	if (req->op >= BLOCK_OP_COUNT)
		return err_set(-EINVAL, "bad block request op %d", (int)req->op);
	pthread_mutex_lock(&q->lock);
	if (q->stop) {
		pthread_mutex_unlock(&q->lock);
		return err_set(-EAGAIN, "block queue full");
	}
	if (q->uring && uring_queue(q, req)) {
		compound_note(COMPOUND_DISK_REQUESTS, 1);
		if (!q->plugged)
			uring_enter(q);
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	if (q->queued >= q->depth) {
		pthread_mutex_unlock(&q->lock);
		return err_set(-EAGAIN, "block queue full");
	}
	compound_note(COMPOUND_DISK_REQUESTS, 1);
	req->next = NULL;
	if (q->tail)
		q->tail->next = req;
	else
		q->head = req;
	q->tail = req;
	q->queued++;
	if (q->plugged)
		q->held++;
	else
		wake_workers(q, 1);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* What plugging held back goes to the host (q->lock held). */
static void release_held(struct block_queue *q)
{
	if (q->uring)
		uring_enter(q);
	if (q->held) {
		wake_workers(q, q->held);
		q->held = 0;
	}
}

void block_queue_plug(struct block_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->plugged++;
	pthread_mutex_unlock(&q->lock);
}

void block_queue_unplug(struct block_queue *q)
{
	pthread_mutex_lock(&q->lock);
	if (q->plugged && --q->plugged == 0)
		release_held(q);
	pthread_mutex_unlock(&q->lock);
}

void block_queue_drain(struct block_queue *q)
{
	pthread_mutex_lock(&q->lock);
	release_held(q);   /* a plugged batch would never finish */
	while (q->queued || q->running)
		pthread_cond_wait(&q->idle, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void block_queue_free(struct block_queue *q)
{
	if (!q)
		return;
	block_queue_drain(q);
	uring_stop(q);
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->idle);
	free(q);
}
