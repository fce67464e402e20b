#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/hostcall.h"
#include "vmm/console.h"

struct sink {
	char got[256];
	size_t len, limit;
};

static size_t take(void *opaque, const uint8_t *buf, size_t len)
{
	struct sink *s = opaque;
	size_t n = len < s->limit - s->len ? len : s->limit - s->len;
	memcpy(s->got + s->len, buf, n);
	s->len += n;
	return n;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static struct console *open_socket_console(char *path, size_t n)
{
	snprintf(path, n, "/tmp/vessel-console-test-%d.sock", getpid());
	char spec[128];
	snprintf(spec, sizeof(spec), "unix:%s", path);
	struct console *con;
	cr_assert_eq(console_open(&con, spec), 0);
	return con;
}

Test(console, escapes_and_passthrough)
{
	char path[96];
	struct console *con = open_socket_console(path, sizeof(path));
	struct sink s = { .limit = sizeof(s.got) };
	console_set_sink(con, take, &s);
	int fd = connect_to(path);
	console_poll(con, 1000); /* accept */
	cr_assert_eq(write(fd, "ls\r\x01\x01", 5), 5);
	enum console_event ev = CONSOLE_NONE;
	for (int i = 0; i < 10 && s.len < 4; i++)
		ev = console_poll(con, 100);
	cr_assert_eq(ev, CONSOLE_NONE);
	cr_assert_eq(s.len, 4);
	cr_assert_eq(memcmp(s.got, "ls\r\x01", 4), 0);
	cr_assert_eq(write(fd, "\x01r", 2), 2);
	cr_assert_eq(console_poll(con, 1000), CONSOLE_RESET);
	cr_assert_eq(write(fd, "\x01x", 2), 2);
	cr_assert_eq(console_poll(con, 1000), CONSOLE_QUIT);
	console_write(con, (const uint8_t *)"hello", 5);
	char out[8] = { 0 };
	cr_assert_eq(read(fd, out, 5), 5);
	cr_assert_str_eq(out, "hello");
	close(fd);
	console_close(con);
	cr_assert_neq(access(path, F_OK), 0, "the socket file is removed on close");
}

Test(console, slow_device_gets_everything_in_order)
{
	char path[96];
	struct console *con = open_socket_console(path, sizeof(path));
	struct sink s = { .limit = 3 };
	console_set_sink(con, take, &s);
	int fd = connect_to(path);
	console_poll(con, 1000);
	cr_assert_eq(write(fd, "abcdefgh", 8), 8);
	console_poll(con, 1000);
	cr_assert_eq(s.len, 3, "the device took only what it had room for");
	s.limit = sizeof(s.got);
	console_notify_room(con);
	console_poll(con, 1000);
	cr_assert_eq(s.len, 8);
	cr_assert_eq(memcmp(s.got, "abcdefgh", 8), 0);
	close(fd);
	console_close(con);
}

Test(console, bad_specs)
{
	struct console *con;
	cr_assert_lt(console_open(&con, "tty:/dev/null"), 0);
	cr_assert_lt(console_open(&con, "file:/nonexistent-dir/x"), 0);
}

Test(console, socket_is_owner_only_whatever_the_umask)
{
	mode_t old = umask(0);
	char path[96];
	struct console *con = open_socket_console(path, sizeof(path));
	umask(old);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	console_close(con);
}

/* A client that never reads: the writer (a vCPU) must come back at once,
 * whatever it writes; what does not fit is dropped and counted, and what
 * was kept arrives first and in order. */
Test(console, output_nobody_reads_never_blocks_the_writer, .timeout = 60)
{
	signal(SIGPIPE, SIG_IGN);   /* as `vessel run`: the client leaves before the end */
	char path[96];
	struct console *con = open_socket_console(path, sizeof(path));
	int fd = connect_to(path);
	console_poll(con, 1000); /* accept */
	cr_assert_eq(console_dropped_bytes(con), 0);
	static uint8_t chunk[4096];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)i;
	for (int i = 0; i < 1024; i++)   /* 4 MiB: more than the socket and the buffer hold */
		console_write(con, chunk, sizeof(chunk));
	uint64_t dropped = console_dropped_bytes(con);
	cr_assert_gt(dropped, 0);
	cr_assert_lt(dropped, 4u << 20);
	console_poll(con, 0);   /* warns once, hands on what the socket takes */
	uint8_t got[4096];
	size_t n = 0;
	while (n < sizeof(got)) {
		ssize_t r = read(fd, got + n, sizeof(got) - n);
		cr_assert_gt(r, 0);
		n += (size_t)r;
	}
	cr_assert_eq(memcmp(got, chunk, sizeof(got)), 0);
	close(fd);
	console_close(con);
}

/* Compounding (docs/compounding.md "Console"): bytes written one at a
 * time wait for the end of the burst and then arrive in one piece, the
 * same bytes in the same order; without it they arrive as written. */
static size_t pending_bytes(int fd)
{
	uint8_t buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
	return n > 0 ? (size_t)n : 0;
}

Test(console, compounded_output_waits_for_the_end_of_the_burst, .timeout = 60)
{
	signal(SIGPIPE, SIG_IGN);
	char path[96];
	for (int on = 0; on <= 1; on++) {
		struct console *con = open_socket_console(path, sizeof(path));
		console_set_compound(con, on);
		int fd = connect_to(path);
		console_poll(con, 1000); /* accept */
		uint64_t writes0 = compound_total(COMPOUND_CONSOLE_WRITES);
		for (int i = 0; i < 1000; i++) {
			uint8_t c = (uint8_t)('a' + i % 26);
			console_write(con, &c, 1);
		}
		uint64_t writes = compound_total(COMPOUND_CONSOLE_WRITES) - writes0;
		if (on) {
			cr_assert_eq(pending_bytes(fd), 0, "held back until the burst ends");
			cr_assert_eq(writes, 0);
			console_flush(con);
			cr_assert_eq(compound_total(COMPOUND_CONSOLE_WRITES) - writes0, 1, "one write(2) for the burst");
		} else {
			/* One write(2) per byte, until the socket's buffer is full of
			 * one-byte messages; the rest waits in the ring. */
			cr_assert_gt(writes, 100, "one write(2) per byte: %llu", (unsigned long long)writes);
		}
		uint8_t got[1000];
		size_t n = 0;
		while (n < sizeof(got)) {
			ssize_t r = recv(fd, got + n, sizeof(got) - n, MSG_DONTWAIT);
			if (r <= 0)
				console_poll(con, 10);   /* the main thread hands on what waits */
			else
				n += (size_t)r;
		}
		for (int i = 0; i < 1000; i++)
			cr_assert_eq(got[i], 'a' + i % 26, "byte %d (compounding %s)", i, on ? "on" : "off");
		/* The main thread's poll ends a burst too (the 100 ms timer). */
		console_write(con, (const uint8_t *)"xyz", 3);
		if (on)
			cr_assert_eq(pending_bytes(fd), 0);
		console_poll(con, 0);
		cr_assert_eq(pending_bytes(fd), 3);
		close(fd);
		console_close(con);
	}
}

/* What is held back when the console closes still goes out. */
Test(console, close_writes_what_the_burst_held)
{
	char tmpl[] = "/tmp/vessel-console-test-XXXXXX";
	int fd = mkstemp(tmpl);
	cr_assert(fd >= 0);
	close(fd);
	char spec[64];
	snprintf(spec, sizeof(spec), "file:%s", tmpl);
	struct console *con;
	cr_assert_eq(console_open(&con, spec), 0);
	console_set_compound(con, true);
	console_write(con, (const uint8_t *)"last words", 10);
	console_close(con);
	FILE *f = fopen(tmpl, "r");
	char buf[32] = { 0 };
	cr_assert_eq(fread(buf, 1, sizeof(buf) - 1, f), 10);
	cr_assert_str_eq(buf, "last words");
	fclose(f);
	unlink(tmpl);
}
