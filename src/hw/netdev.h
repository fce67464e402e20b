/* Network backends for network devices: where the frames a guest sends go
 * and where the frames it receives come from (a NIC such as virtio-net is
 * the frontend; user networking and tap are host backends, src/vmm).
 *
 * Guest to host: the frontend calls netdev_send() on the vCPU thread that
 * notified, with its lock held; the backend takes the frame without
 * blocking and without calling back into the frontend.  After the frames
 * of one notification the frontend calls netdev_commit(): a backend that
 * batches (netdev.batch, --compound net, docs/compounding.md "Network")
 * holds the frames until then and hands them to the host together.
 *
 * Host to guest: a backend runs a thread of its own (never a vCPU) and
 * hands each frame to netdev_deliver(), which calls the frontend's
 * receive callback with the frontend's lock (vm->dev_lock for devices)
 * held.  A frontend without room (the guest has not posted receive
 * buffers) answers NETDEV_RX_NO_ROOM and calls netdev_wake() once it has
 * room; the backend keeps the frame meanwhile (netdev_queue_frame and
 * netdev_flush hold a bounded queue of them for a backend that produces
 * frames it cannot hold back).
 *
 * The VMM holds a backend while it pauses or saves the VM
 * (netdev_hold): no frame reaches guest memory until netdev_release, so
 * a snapshot's RAM and device state agree.  A backend outlives the
 * machines of a run (a guest reboot builds a new frontend): the frontend
 * attaches to it when created and detaches, without its lock held, before
 * it is destroyed. */
#ifndef VESSEL_HW_NETDEV_H
#define VESSEL_HW_NETDEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETDEV_FRAME_MAX 65550u   /* an Ethernet frame with a 64 KiB payload and a VLAN tag */
#define NETDEV_QUEUE_MAX 256u     /* frames a backend keeps for a frontend without room */

enum netdev_rx {
	NETDEV_RX_DROP = -1,     /* the frontend cannot take it now or ever: drop it */
	NETDEV_RX_NO_ROOM = 0,   /* keep it; netdev_wake() follows when there is room */
	NETDEV_RX_DONE = 1,      /* in the guest */
};

struct netdev;

struct netdev_ops {
	/* Starts the backend's thread: 0 or -errno with err_set().  Apart
	 * from opening, so that what needs privileges (a tap's TUNSETIFF, a
	 * low forwarded port) is done before the VMM drops them, and the
	 * thread is made after, without them. */
	int (*start)(struct netdev *nd);
	/* A frame from the guest (vCPU thread, frontend lock held).  The
	 * frame is the caller's only for the call: a backend that holds it
	 * until commit copies it. */
	void (*send)(struct netdev *nd, const uint8_t *frame, size_t len);
	/* The end of a batch of sends (same thread and lock): what the
	 * backend holds goes to the host now.  NULL: nothing is held. */
	void (*commit)(struct netdev *nd);
	/* The frontend has room again or was released: the backend's thread
	 * retries what it keeps.  Thread-safe, does not block. */
	void (*wake)(struct netdev *nd);
	/* Stops the backend's thread and frees it (netdev_free). */
	void (*destroy)(struct netdev *nd);
};

struct netdev_frame {
	size_t len;
	uint8_t data[];
};

struct netdev {
	const struct netdev_ops *ops;
	char name[64];             /* "user", "tap:NAME": for messages */
	uint8_t mac[6];            /* the guest's address (the frontend offers it) */
	/* The backend builds the frames it delivers itself, with correct
	 * checksums (user networking), so a frontend may tell the guest not to
	 * check them; frames off a wire (tap) it must check. */
	bool checksums_valid;
	/* --compound net: frames sent are held until netdev_commit() and go to
	 * the host in one submission, and frames are read in batches.  Set
	 * by the VMM before netdev_start(); off, each frame is one system
	 * call as it comes. */
	bool batch;
	/* With batch, a frontend waits a moment after a transmit notification
	 * for the frames the guest queues next, so that they go in the same
	 * commit (docs/compounding.md "Network").  It pays where a commit
	 * costs the backend a host system call (a tap's io_uring_enter);
	 * where frames go in-process (user networking) the hop to the thread
	 * that waits costs more host CPU than the batch saves.  Set by the
	 * backend when it is opened. */
	bool tx_wait_pays;
	pthread_mutex_t lock;      /* guards the frontend fields, holds and busy */
	pthread_cond_t idle;       /* busy went false */
	enum netdev_rx (*receive)(void *opaque, const uint8_t *frame, size_t len);
	void *fe_opaque;
	pthread_mutex_t *fe_lock;
	unsigned holds;
	bool busy;                 /* a delivery is under way */
	/* Frames kept for the frontend (backend thread only but for the count). */
	pthread_mutex_t q_lock;
	struct netdev_frame *q[NETDEV_QUEUE_MAX];
	unsigned q_head, q_len;
	uint64_t rx_dropped;       /* frames the queue had no room for */
};

/* Backend side. */
void netdev_init(struct netdev *nd, const struct netdev_ops *ops, const char *name);
/* Frees the kept frames and the locks (the backend's destroy calls it). */
void netdev_fini(struct netdev *nd);
/* Calls the frontend's receive under its lock, unless no frontend is
 * attached (NETDEV_RX_DROP) or the backend is held (NETDEV_RX_NO_ROOM). */
enum netdev_rx netdev_deliver(struct netdev *nd, const uint8_t *frame, size_t len);
/* Copies a frame into the queue; false (and counted) when it is full. */
bool netdev_queue_frame(struct netdev *nd, const uint8_t *frame, size_t len);
/* Delivers queued frames while the frontend takes them; true when none is
 * left. */
bool netdev_flush(struct netdev *nd);

/* A backend thread's wake-up: an eventfd in the thread's poll set that
 * other threads (a sending vCPU, the frontend's netdev_wake) signal.  A
 * flag keeps a busy signaller to one write until the thread has read it,
 * so that the invariant is: pending set => the eventfd holds a count, and
 * no signal is lost between the thread's poll and its next round. */
struct netdev_wakeup {
	int fd;
	atomic_bool pending;
};

/* 0 or -errno (err_set()). */
int netdev_wakeup_init(struct netdev_wakeup *w);
void netdev_wakeup_fini(struct netdev_wakeup *w);
/* Any thread; does not block. */
void netdev_wakeup_signal(struct netdev_wakeup *w);
/* The polling thread, once poll() reports w->fd readable, before it
 * looks at what the signallers asked for. */
void netdev_wakeup_consume(struct netdev_wakeup *w);

/* Frontend side. */
int netdev_attach(struct netdev *nd, enum netdev_rx (*receive)(void *, const uint8_t *, size_t), void *opaque,
		  pthread_mutex_t *lock);
/* Waits for a delivery under way: call it without the frontend's lock. */
void netdev_detach(struct netdev *nd);
void netdev_send(struct netdev *nd, const uint8_t *frame, size_t len);
/* After the frames of one notification (counted: net_tx_batches). */
void netdev_commit(struct netdev *nd);
void netdev_wake(struct netdev *nd);

/* The VMM: holds stop deliveries (nested); the first waits for one under
 * way.  Neither may be called with the frontend's lock held. */
int netdev_start(struct netdev *nd);
void netdev_hold(struct netdev *nd);
void netdev_release(struct netdev *nd);
void netdev_free(struct netdev *nd);

#endif
