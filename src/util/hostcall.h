/* Counters of the host system calls vessel makes where compounding
 * matters (docs/compounding.md), and of what compounding saved.
 *
 * The places that count are the console's output and input, the timer
 * thread's wake-ups, the KVM engine's ioctls, the block layer's disk I/O
 * and io_uring calls, a tap's reads, writes and io_uring calls and the
 * wake-ups of the network backends' threads: each calls
 * host_call_note() next to its system call.  The counters are
 * process-wide (one VM per process) and relaxed atomics: a few
 * nanoseconds beside a system call of a microsecond or more.
 * `vessel ctl stats` reads them (docs/api.md). */
#ifndef VESSEL_UTIL_HOSTCALL_H
#define VESSEL_UTIL_HOSTCALL_H

#include <stdatomic.h>
#include <stdint.h>

enum host_call {
	HOST_CALL_WRITE,   /* write(2) and writev(2) of guest data */
	HOST_CALL_READ,    /* read(2) */
	HOST_CALL_POLL,    /* poll(2) */
	HOST_CALL_IOCTL,   /* ioctl(2): KVM_RUN and the register transfers */
	HOST_CALL_WAKE,    /* a thread woken through a futex or an eventfd */
	HOST_CALL_DISK,    /* pread/pwrite/fdatasync of a disk image (block I/O workers) */
	HOST_CALL_IO_SUBMIT, /* io_uring_enter(2) that hands disk requests to the kernel */
	HOST_CALL_IO_WAIT, /* io_uring_enter(2) that waits for their completions */
	HOST_CALL_NET_WRITE, /* write(2) of one guest frame to a tap */
	HOST_CALL_NET_READ, /* read(2) of one frame from a tap (or of none: EAGAIN) */
	HOST_CALL_NET_TX_SUBMIT, /* io_uring_enter(2) that carries a batch of frames to a tap */
	HOST_CALL_NET_RX_SUBMIT, /* io_uring_enter(2) of a batch of reads from a tap */
	HOST_CALL_KINDS,
};

/* What compounding did, by mechanism. */
enum compound_stat {
	COMPOUND_CONSOLE_BYTES,       /* guest output bytes given to the console */
	COMPOUND_CONSOLE_WRITES,      /* write(2) calls that carried them */
	COMPOUND_TIMER_REARMS,        /* device timers armed for an earlier deadline than the thread sleeps to */
	COMPOUND_TIMER_WAKES_SAVED,   /* ... of which needed no wake-up of the timer thread */
	COMPOUND_LOOKAHEAD_RUNS,      /* traps after which the lookahead ran on */
	COMPOUND_LOOKAHEAD_INSNS,     /* instructions it ran */
	COMPOUND_LOOKAHEAD_EXITS_SAVED, /* trapping instructions among them: exits the guest did not take */
	COMPOUND_DISK_REQUESTS,       /* guest disk requests handed to the host */
	COMPOUND_DISK_BATCHES,        /* ... in this many submissions (one io_uring_enter or worker hand-off each) */
	COMPOUND_NET_TX_FRAMES,       /* guest frames handed to a network backend */
	COMPOUND_NET_TX_BATCHES,      /* ... in this many batches (one per transmit notification) */
	COMPOUND_NET_RX_FRAMES,       /* frames a tap backend read for the guest */
	COMPOUND_NET_RX_BATCHES,      /* ... in this many rounds (one io_uring_enter, or reads until EAGAIN) */
	COMPOUND_STATS,
};

extern _Atomic uint64_t host_call_counts[HOST_CALL_KINDS];
extern _Atomic uint64_t compound_counts[COMPOUND_STATS];

static inline void host_call_note(enum host_call k)
{
	atomic_fetch_add_explicit(&host_call_counts[k], 1, memory_order_relaxed);
}

static inline void compound_note(enum compound_stat s, uint64_t n)
{
	atomic_fetch_add_explicit(&compound_counts[s], n, memory_order_relaxed);
}

static inline uint64_t host_call_total(enum host_call k)
{
	return atomic_load_explicit(&host_call_counts[k], memory_order_relaxed);
}

static inline uint64_t compound_total(enum compound_stat s)
{
	return atomic_load_explicit(&compound_counts[s], memory_order_relaxed);
}

/* "write", "read", ...; "console_bytes", ... (the names stats uses). */
const char *host_call_name(enum host_call k);
const char *compound_stat_name(enum compound_stat s);

#endif
