/* libFuzzer target: the control API request parser (docs/api.md).  The
 * input is what a client sends on the socket: a real server
 * (api_server_start) over a fake VM whose operations only count, one
 * connection per input, the input sent and the connection half-closed,
 * then every reply read until the server closes or goes quiet.  Any
 * crash, leak or sanitizer report is a bug: bad requests must only
 * produce error replies. */
#include "vmm/api.h"
#include "vmm/lifecycle.h"
#include "vmm/manifest.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* api.c's helpers for a real VM (stats, plug-in devices) reach into the
 * machine; the fake VM never calls them, so they link against these. */
#include "machine/accel.h"
#include "vmm/plugin.h"
__attribute__((weak)) const char *vcpu_exit_reason_name(enum vcpu_exit_reason r) { (void)r; abort(); }
__attribute__((weak)) int plugin_devices_info(const struct plugin_devices *set, unsigned i,
					      struct plugin_device_info *info)
{
	(void)set, (void)i, (void)info;
	abort();
}

static int op_ok(void *opaque) { (void)opaque; return 0; }
static int op_save(void *opaque, const char *path) { (void)opaque, (void)path; return -ENOTSUP; }
static int op_stats(void *opaque, json_t *out) { (void)opaque; return json_object_set_new(out, "n", json_integer(1)); }
static int op_list(void *opaque, json_t *out) { (void)opaque; return json_array_append_new(out, json_object()); }
static int op_add(void *opaque, const struct vm_device_config *dev) { (void)opaque, (void)dev; return 0; }
static int op_remove(void *opaque, const char *id, const struct api_remove_opts *o) { (void)opaque, (void)id, (void)o; return -ENOENT; }

static const struct vm_control_ops ops = {
	.pause = op_ok, .resume = op_ok, .powerdown = op_ok, .poweroff = op_ok, .reset = op_ok,
	.save = op_save, .stats = op_stats, .device_list = op_list, .device_add = op_add,
	.device_remove = op_remove,
};

static struct lifecycle lc;
static struct api_server *srv;
static char sock_path[108];

static void server_stop(void)
{
	api_server_stop(srv);
}

static int server_start(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/vessel-fuzz-api-%d.sock", (int)getpid());
	lifecycle_init(&lc);
	/* Running, so that the state-dependent commands get past their check. */
	lifecycle_transition(&lc, VM_STATE_POWERING_UP, "fuzz");
	lifecycle_transition(&lc, VM_STATE_RUNNING, "fuzz");
	if (api_server_start(&srv, sock_path, &ops, NULL, &lc) < 0) {
		fprintf(stderr, "fuzz_api: cannot start the server at %s\n", sock_path);
		abort();
	}
	atexit(server_stop);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		server_start();
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("fuzz_api: connect");
		abort();
	}
	/* The request stream, then a last newline so that every line is
	 * handled, then end of input. */
	size_t done = 0;
	char buf[4096];
	while (done < size) {
		ssize_t n = send(fd, data + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			break;
		/* Drain replies so that the server never waits on us. */
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == 0)
			break;
		struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
		poll(&p, 1, 100);
	}
	send(fd, "\n", 1, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			break;
		if (recv(fd, buf, sizeof(buf), 0) <= 0)
			break;
	}
	close(fd);
	return 0;
}
