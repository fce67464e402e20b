#include "vmm/console.h"

#include "util/error.h"
#include "util/hostcall.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define CONSOLE_QUEUE 65536
/* Guest output waiting for a slow reader.  A reader that does not keep up
 * loses what does not fit: the vCPU never waits for it. */
#define CONSOLE_OUT_RING (1u << 20)
/* How long console_close() waits for a reader to take what is left. */
#define CONSOLE_CLOSE_DRAIN_MS 500
#define CONSOLE_ESCAPE 0x01  /* Ctrl-A, as QEMU's -nographic */
/* Compounding (docs/compounding.md "Console"): output held back for a
 * burst is written at once when this much waits, whatever else happens. */
#define CONSOLE_BURST_BYTES (64u << 10)

struct console {
	int in_fd, out_fd;      /* -1 when absent */
	int listen_fd;          /* unix: the listening socket */
	int wake_fd;            /* eventfd: the device has room again */
	bool tty;
	bool escape_pending;
	struct termios saved;
	int out_flags;          /* the output's file status flags before O_NONBLOCK; -1: untouched */
	pthread_mutex_t out_lock;
	/* Output the descriptor did not take yet (under out_lock). */
	uint8_t *out_ring;
	size_t o_head, o_len;
	/* Compounding: guest output waits in the ring until the burst ends
	 * (console_flush(), console_poll(), a newline on a terminal, 64 KiB);
	 * off: written as it comes. */
	bool compound;
	bool out_tty;           /* the output is a terminal: a newline ends a burst */
	bool stalled;           /* the descriptor took less than offered: the main thread waits for POLLOUT */
	_Atomic uint64_t out_dropped;  /* bytes dropped: nobody read them in time */
	_Atomic bool drop_warn;        /* set at the first drop; warned once, by the main thread */
	bool drop_warned;
	console_sink_fn sink;
	void *sink_opaque;
	uint8_t queue[CONSOLE_QUEUE];
	size_t q_head, q_len;
	char *socket_path;
};

static const char escape_help[] =
	"\r\nC-a h    print this help\r\n"
	"C-a x    quit vessel\r\n"
	"C-a r    reset the guest\r\n"
	"C-a p    press the guest's power button\r\n"
	"C-a C-a  send C-a to the guest\r\n";

/* Writes what the non-blocking descriptor takes now; returns how much, or
 * -1 if the reader went away (guest output is then dropped, as on a real
 * line with nobody at the other end). */
static ssize_t write_some(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);
		host_call_note(HOST_CALL_WRITE);
		compound_note(COMPOUND_CONSOLE_WRITES, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? (ssize_t)done : -1;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Under out_lock: hands the ring to the descriptor as far as it goes;
 * what it does not take waits for POLLOUT in the main thread. */
static void flush_ring(struct console *con)
{
	con->stalled = false;
	while (con->o_len && con->out_fd >= 0) {
		size_t run = CONSOLE_OUT_RING - con->o_head;
		if (run > con->o_len)
			run = con->o_len;
		ssize_t n = write_some(con->out_fd, con->out_ring + con->o_head, run);
		if (n < 0) {
			con->o_len = 0;
			return;
		}
		con->o_head = (con->o_head + (size_t)n) % CONSOLE_OUT_RING;
		con->o_len -= (size_t)n;
		if ((size_t)n < run) {
			con->stalled = true;
			return;
		}
	}
}

/* The output must never block a vCPU (a pipe or a socket nobody reads):
 * non-blocking, with the old flags put back at close.  A regular file
 * ignores the flag. */
static void set_output_nonblocking(struct console *con)
{
	int fl = fcntl(con->out_fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(con->out_fd, F_SETFL, fl | O_NONBLOCK) == 0)
		con->out_flags = fl;
}

int console_open(struct console **out, const char *spec)
{
	struct console *con = calloc(1, sizeof(*con));
	if (!con)
		return err_set(-ENOMEM, "out of memory");
	con->in_fd = con->out_fd = con->listen_fd = -1;
	con->out_flags = -1;
	con->out_ring = malloc(CONSOLE_OUT_RING);
	if (!con->out_ring) {
		free(con);
		return err_set(-ENOMEM, "out of memory");
	}
	pthread_mutex_init(&con->out_lock, NULL);
	con->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (con->wake_fd < 0) {
		free(con->out_ring);
		free(con);
		return err_set(-errno, "eventfd: %s", strerror(errno));
	}
	if (strcmp(spec, "stdio") == 0) {
		con->in_fd = STDIN_FILENO;
		con->out_fd = STDOUT_FILENO;
		con->out_tty = isatty(STDOUT_FILENO);
		if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &con->saved) == 0) {
			struct termios raw = con->saved;
			cfmakeraw(&raw);
			raw.c_oflag |= OPOST | ONLCR; /* vessel's own messages end in \n */
			if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
				con->tty = true;
		}
		set_output_nonblocking(con);
	} else if (strcmp(spec, "none") == 0) {
		/* no console */
	} else if (strncmp(spec, "file:", 5) == 0) {
		con->out_fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (con->out_fd < 0) {
			int e = errno;
			console_close(con);
			return err_set(-e, "serial: cannot open %s: %s", spec + 5, strerror(e));
		}
	} else if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(spec + 5) >= sizeof(sa.sun_path)) {
			console_close(con);
			return err_set(-ENAMETOOLONG, "serial: socket path too long: %s", spec + 5);
		}
		strcpy(sa.sun_path, spec + 5);
		con->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		unlink(sa.sun_path);
		/* Whoever connects drives the guest's console: the owner only,
		 * whatever the umask, like the API socket.  Only one thread
		 * runs yet, so the umask change is seen by nobody else. */
		mode_t old_mask = umask(0177);
		int b = con->listen_fd < 0 ? -1 : bind(con->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
		int bind_errno = errno;
		umask(old_mask);
		errno = bind_errno;
		if (con->listen_fd < 0 || b < 0 || listen(con->listen_fd, 1) < 0) {
			int e = errno;
			console_close(con);
			return err_set(-e, "serial: cannot listen on %s: %s", spec + 5, strerror(e));
		}
		con->socket_path = strdup(sa.sun_path);
	} else {
		console_close(con);
		return err_set(-EINVAL, "serial: unknown console '%s'", spec);
	}
	*out = con;
	return 0;
}

void console_close(struct console *con)
{
	if (!con)
		return;
	/* What the reader has not taken yet, if it takes it soon: the last
	 * lines of a guest matter most. */
	pthread_mutex_lock(&con->out_lock);
	flush_ring(con);
	while (con->o_len && con->out_fd >= 0) {
		host_call_note(HOST_CALL_POLL);
		struct pollfd p = { .fd = con->out_fd, .events = POLLOUT };
		if (poll(&p, 1, CONSOLE_CLOSE_DRAIN_MS) <= 0)
			break;
		flush_ring(con);
	}
	pthread_mutex_unlock(&con->out_lock);
	if (con->out_flags >= 0)
		fcntl(con->out_fd, F_SETFL, con->out_flags);
	if (con->tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &con->saved);
	if (con->listen_fd >= 0) {
		close(con->listen_fd);
		if (con->in_fd >= 0)
			close(con->in_fd);
	} else if (con->out_fd > STDERR_FILENO) {
		close(con->out_fd);
	}
	if (con->socket_path) {
		unlink(con->socket_path);
		free(con->socket_path);
	}
	close(con->wake_fd);
	pthread_mutex_destroy(&con->out_lock);
	free(con->out_ring);
	free(con);
}

void console_set_compound(struct console *con, bool on)
{
	pthread_mutex_lock(&con->out_lock);
	con->compound = on;
	if (!on && !con->stalled)
		flush_ring(con);
	pthread_mutex_unlock(&con->out_lock);
}

void console_flush(struct console *con)
{
	pthread_mutex_lock(&con->out_lock);
	/* A stalled descriptor is the main thread's: it waits for room. */
	if (con->o_len && !con->stalled)
		flush_ring(con);
	pthread_mutex_unlock(&con->out_lock);
}

void console_flush_at_exit(struct console *con)
{
	/* The interrupted thread may hold the lock (it was writing): then
	 * what it holds is lost rather than the process hung. */
	if (pthread_mutex_trylock(&con->out_lock) != 0)
		return;
	flush_ring(con);
	pthread_mutex_unlock(&con->out_lock);
}

void console_set_sink(struct console *con, console_sink_fn sink, void *opaque)
{
	con->sink = sink;
	con->sink_opaque = opaque;
}

void console_restore_terminal(struct console *con)
{
	if (con->out_flags >= 0)
		fcntl(con->out_fd, F_SETFL, con->out_flags);
	if (con->tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &con->saved);
}

uint64_t console_dropped_bytes(struct console *con)
{
	return atomic_load(&con->out_dropped);
}

/* Appends to the ring what fits; counts and warns about the rest.
 * Returns true when the main thread must be woken for the warning. */
static bool ring_append(struct console *con, const uint8_t *buf, size_t len)
{
	size_t room = CONSOLE_OUT_RING - con->o_len;
	size_t take = len < room ? len : room;
	size_t at = (con->o_head + con->o_len) % CONSOLE_OUT_RING;
	size_t first = CONSOLE_OUT_RING - at < take ? CONSOLE_OUT_RING - at : take;
	memcpy(con->out_ring + at, buf, first);
	memcpy(con->out_ring, buf + first, take - first);
	con->o_len += take;
	if (take < len) {
		atomic_fetch_add(&con->out_dropped, len - take);
		return !atomic_exchange(&con->drop_warn, true);
	}
	return false;
}

/* Guest output never waits for the reader: what the descriptor does not
 * take at once goes to the ring, which the main thread's console_poll()
 * hands on when the descriptor has room; what does not fit in the ring is
 * dropped and counted.
 *
 * Compounding on, the output of a burst waits in the ring and goes in
 * one write(2) when the burst ends (docs/compounding.md "Console"): when
 * the vCPU stops running guest code (console_flush() after vcpu_run, an
 * idle HLT among them), at the main thread's next poll (at most 100 ms
 * on), before vessel writes a message of its own (the log's flush hook),
 * at a newline on a terminal, when 64 KiB wait, and at close.  The bytes
 * and their order are the same either way; only the number of writes
 * changes. */
void console_write(struct console *con, const uint8_t *buf, size_t len)
{
	bool woke = false;
	pthread_mutex_lock(&con->out_lock);
	if (con->out_fd < 0) {
		pthread_mutex_unlock(&con->out_lock);
		return;   /* nobody connected: dropped, as on a line with no cable */
	}
	compound_note(COMPOUND_CONSOLE_BYTES, len);
	if (con->compound) {
		woke = ring_append(con, buf, len);
		if (!con->stalled &&
		    (con->o_len >= CONSOLE_BURST_BYTES || (con->out_tty && memchr(buf, '\n', len)))) {
			flush_ring(con);
			/* Short: the main thread must start polling for room. */
			woke |= con->stalled;
		}
		pthread_mutex_unlock(&con->out_lock);
		if (woke)
			console_notify_room(con);
		return;
	}
	if (con->o_len == 0) {
		ssize_t n = write_some(con->out_fd, buf, len);
		if (n < 0) {
			pthread_mutex_unlock(&con->out_lock);
			return;
		}
		buf += n;
		len -= (size_t)n;
		woke = len != 0;   /* the ring was empty: the main thread must start polling */
		con->stalled = len != 0;
	}
	woke |= ring_append(con, buf, len);
	pthread_mutex_unlock(&con->out_lock);
	if (woke)
		console_notify_room(con);
}

void console_notify_room(struct console *con)
{
	uint64_t one = 1;
	host_call_note(HOST_CALL_WAKE);
	if (write(con->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("console", "eventfd write: %s", strerror(errno));
}

static void enqueue(struct console *con, uint8_t c)
{
	if (con->q_len == CONSOLE_QUEUE)
		return; /* the guest stopped reading: drop, as a UART would */
	con->queue[(con->q_head + con->q_len) % CONSOLE_QUEUE] = c;
	con->q_len++;
}

static void pump(struct console *con)
{
	while (con->q_len && con->sink) {
		size_t run = CONSOLE_QUEUE - con->q_head;
		if (run > con->q_len)
			run = con->q_len;
		size_t taken = con->sink(con->sink_opaque, con->queue + con->q_head, run);
		if (taken == 0)
			break;
		con->q_head = (con->q_head + taken) % CONSOLE_QUEUE;
		con->q_len -= taken;
	}
}

/* QEMU's escapes, so that users' fingers already know them. */
static enum console_event process_input(struct console *con, const uint8_t *buf, size_t n)
{
	enum console_event ev = CONSOLE_NONE;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = buf[i];
		if (con->escape_pending) {
			con->escape_pending = false;
			switch (c) {
			case 'x': case 'X': return CONSOLE_QUIT;
			case 'r': case 'R': ev = CONSOLE_RESET; break;
			case 'p': case 'P': ev = CONSOLE_POWERDOWN; break;
			case 'h': case 'H': case '?':
				console_write(con, (const uint8_t *)escape_help, sizeof(escape_help) - 1);
				break;
			case CONSOLE_ESCAPE: enqueue(con, c); break;
			default: break; /* unknown escape: swallowed, as QEMU does */
			}
		} else if (c == CONSOLE_ESCAPE) {
			con->escape_pending = true;
		} else {
			enqueue(con, c);
		}
	}
	return ev;
}

enum console_event console_poll(struct console *con, int timeout_ms)
{
	struct pollfd p[4];
	int n = 0, in_idx = -1, listen_idx = -1, out_idx = -1;
	p[n++] = (struct pollfd){ .fd = con->wake_fd, .events = POLLIN };
	pthread_mutex_lock(&con->out_lock);
	/* The compounding timer: a burst still held back is written now. */
	if (con->o_len && !con->stalled)
		flush_ring(con);
	if (con->o_len && con->out_fd >= 0) {
		out_idx = n;
		p[n++] = (struct pollfd){ .fd = con->out_fd, .events = POLLOUT };
	}
	pthread_mutex_unlock(&con->out_lock);
	/* Read more only while there is queue space: back-pressure to the sender. */
	if (con->in_fd >= 0 && con->q_len < CONSOLE_QUEUE / 2) {
		in_idx = n;
		p[n++] = (struct pollfd){ .fd = con->in_fd, .events = POLLIN };
	}
	if (con->listen_fd >= 0 && con->in_fd < 0) {
		listen_idx = n;
		p[n++] = (struct pollfd){ .fd = con->listen_fd, .events = POLLIN };
	}
	enum console_event ev = CONSOLE_NONE;
	host_call_note(HOST_CALL_POLL);
	if (poll(p, (nfds_t)n, timeout_ms) > 0) {
		if (p[0].revents & POLLIN) {
			uint64_t v;
			host_call_note(HOST_CALL_READ);
			if (read(con->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("console", "eventfd read: %s", strerror(errno));
		}
		if (out_idx >= 0 && p[out_idx].revents) {
			pthread_mutex_lock(&con->out_lock);
			flush_ring(con);
			pthread_mutex_unlock(&con->out_lock);
		}
		if (listen_idx >= 0 && (p[listen_idx].revents & POLLIN)) {
			int fd = accept4(con->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd >= 0) {
				pthread_mutex_lock(&con->out_lock);
				con->in_fd = con->out_fd = fd;
				con->stalled = false;
				pthread_mutex_unlock(&con->out_lock);
			}
		}
		if (in_idx >= 0 && (p[in_idx].revents & (POLLIN | POLLHUP | POLLERR))) {
			uint8_t buf[4096];
			size_t room = CONSOLE_QUEUE - con->q_len;
			host_call_note(HOST_CALL_READ);
			ssize_t got = read(con->in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));
			if (got > 0) {
				ev = process_input(con, buf, (size_t)got);
			} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				/* End of input (a pipe or a socket client closed): keep running, stop reading. */
				if (con->listen_fd >= 0) {
					pthread_mutex_lock(&con->out_lock);
					close(con->in_fd);
					con->in_fd = con->out_fd = -1;
					con->o_len = 0;   /* for the client that left, nobody else */
					con->stalled = false;
					pthread_mutex_unlock(&con->out_lock);
				} else {
					con->in_fd = -1;
				}
			}
		}
	}
	/* Once, from this thread: a vCPU must not wait on stderr either. */
	if (atomic_load(&con->drop_warn) && !con->drop_warned) {
		con->drop_warned = true;
		log_warn("console", "nobody reads the guest's console output fast enough: dropping what does not fit "
			 "in %u KiB (`vessel ctl stats` counts it)", CONSOLE_OUT_RING >> 10);
	}
	pump(con);
	return ev;
}
