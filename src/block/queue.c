/* Asynchronous request queue: a FIFO served by worker threads that run the
 * synchronous block_* calls, so several requests are in flight at once
 * (host reads/writes overlap) and a device model's thread never blocks on
 * disk I/O.  The model QEMU's thread-pool AIO and cloud-hypervisor's
 * block workers use. */
#include "block/block.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct block_queue {
	struct block_dev *bd;
	pthread_mutex_t lock;
	pthread_cond_t work;       /* a request was queued or stop was set */
	pthread_cond_t idle;       /* pending + running dropped to 0 */
	struct block_req *head, *tail;
	unsigned queued, running, depth, nthreads;
	bool stop;
	pthread_t threads[];
};

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

static void *worker(void *arg)
{
	struct block_queue *q = arg;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->head && !q->stop)
			pthread_cond_wait(&q->work, &q->lock);
		if (!q->head)
			break;
		struct block_req *r = q->head;
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		q->queued--;
		q->running++;
		pthread_mutex_unlock(&q->lock);
		int ret = run_req(q->bd, r);
		if (r->done)
			r->done(r, ret);
		pthread_mutex_lock(&q->lock);
		q->running--;
		if (!q->queued && !q->running)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int block_queue_new(struct block_dev *bd, unsigned nthreads, unsigned depth, struct block_queue **out)
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
	*out = q;
	return 0;
}

int block_queue_submit(struct block_queue *q, struct block_req *req)
{
	if (req->op >= BLOCK_OP_COUNT)
		return err_set(-EINVAL, "bad block request op %d", (int)req->op);
	pthread_mutex_lock(&q->lock);
	if (q->queued >= q->depth || q->stop) {
		pthread_mutex_unlock(&q->lock);
		return err_set(-EAGAIN, "block queue full");
	}
	req->next = NULL;
	if (q->tail)
		q->tail->next = req;
	else
		q->head = req;
	q->tail = req;
	q->queued++;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void block_queue_drain(struct block_queue *q)
{
	pthread_mutex_lock(&q->lock);
	while (q->queued || q->running)
		pthread_cond_wait(&q->idle, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void block_queue_free(struct block_queue *q)
{
	if (!q)
		return;
	block_queue_drain(q);
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
