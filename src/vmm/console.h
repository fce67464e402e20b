/* The guest's serial console on the host side: the terminal (raw mode,
 * QEMU-style Ctrl-A escapes), a file, a Unix socket, or nothing.
 *
 * Output from the guest goes to the output descriptor without waiting
 * (a bounded buffer, then drops: see console_write()); a unix: socket is
 * created 0600.  Input is
 * read by console_poll() on the main thread, escapes are interpreted, and
 * the rest is queued and handed to the device through the sink callback as
 * fast as the device accepts it (the 16550's receive FIFO is 16 bytes, so
 * pasted text must wait for the guest to drain it). */
#ifndef VESSEL_VMM_CONSOLE_H
#define VESSEL_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum console_event {
	CONSOLE_NONE,
	CONSOLE_QUIT,       /* Ctrl-A x */
	CONSOLE_RESET,      /* Ctrl-A r */
	CONSOLE_POWERDOWN,  /* Ctrl-A p: ACPI power button */
};

/* Offers bytes to the device; returns how many it took. */
typedef size_t (*console_sink_fn)(void *opaque, const uint8_t *buf, size_t len);

struct console;

/* spec: "stdio", "none", "file:PATH" (output only), "unix:PATH" (listen,
 * one client at a time).  0 or -errno with err_set(). */
int console_open(struct console **out, const char *spec);
void console_close(struct console *con);
void console_set_sink(struct console *con, console_sink_fn sink, void *opaque);
/* Guest output. Thread-safe, and never waits for the reader: what the
 * output does not take at once is kept in a bounded buffer (1 MiB) that
 * console_poll() hands on; what does not fit is dropped and counted, with
 * one warning. */
void console_write(struct console *con, const uint8_t *buf, size_t len);
/* Compounding (docs/compounding.md "Console"): on, guest output is
 * written once per burst; off (the default of a new console), as it
 * comes. */
void console_set_compound(struct console *con, bool on);
/* Ends the current burst: what waits is written now (unless the reader
 * is behind, which the main thread handles).  Thread-safe; called by a
 * vCPU thread when vcpu_run returns and before vessel writes to stderr. */
void console_flush(struct console *con);
/* console_flush() for a process about to end from a signal handler (the
 * sandbox's SIGSYS): writes what waits unless another thread holds the
 * output, without waiting for anything. */
void console_flush_at_exit(struct console *con);
/* Bytes of guest output dropped so far because nobody read them. */
uint64_t console_dropped_bytes(struct console *con);
/* Puts the terminal back as console_open() found it; async-signal-safe
 * (for a fatal signal handler). */
void console_restore_terminal(struct console *con);
/* Waits up to timeout_ms for input (and for wake-ups), processes it, and
 * pushes queued input into the sink.  Returns an escape event if one was
 * typed. */
enum console_event console_poll(struct console *con, int timeout_ms);
/* Called when the device can take more input (e.g. the guest read its
 * FIFO); wakes console_poll.  Thread-safe. */
void console_notify_room(struct console *con);

struct chardev;
/* The console as a serial-port backend (console_chardev.c); freed with
 * chardev_free() before the console is closed. */
struct chardev *console_chardev_new(struct console *con);

#endif
