/* Control API server against a fake VM: every command, errors, several
 * clients, events, and hostile input that must not disturb the server. */
#include "fake_vm.h"

#include "util/error.h"
#include "vmm/api.h"
#include "machine/machine.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/un.h>
#include <unistd.h>

static struct fake_vm vm;
static struct api_server *srv;
static char sock_path[108];

static void setup(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/vessel-api-test-%d.sock", getpid());
	cr_assert_eq(fake_vm_init(&vm, EXAMPLE_PLUGIN), 0, "%s", err_msg());
	cr_assert_eq(api_server_start(&srv, sock_path, &fake_vm_ops, &vm, &vm.lc), 0, "%s", err_msg());
}

static void teardown(void)
{
	fake_vm_hold(&vm, false); /* a failed test may leave an op held */
	api_server_stop(srv);
	fake_vm_destroy(&vm);
}

TestSuite(api, .init = setup, .fini = teardown);

struct cl {
	int fd;
	char buf[1 << 17];
	size_t len;
};

/* Next line as JSON (blocking; the receive timeout only guards against a
 * hang, the tests assert no timing). */
static json_t *cl_recv(struct cl *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			*nl = 0;
			json_error_t e;
			json_t *j = json_loads(c->buf, 0, &e);
			cr_assert_not_null(j, "server sent non-JSON: %s", c->buf);
			size_t used = (size_t)(nl - c->buf) + 1;
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			return j;
		}
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static struct cl *cl_open(void)
{
	struct cl *c = calloc(1, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, sock_path);
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	json_t *hello = cl_recv(c);
	cr_assert_not_null(hello);
	cr_assert_str_eq(json_string_value(json_object_get(hello, "hello")), "vessel");
	cr_assert_eq(json_integer_value(json_object_get(hello, "api")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(hello, "state")), "running");
	json_decref(hello);
	return c;
}

static void cl_close(struct cl *c)
{
	close(c->fd);
	free(c);
}

static void cl_send_raw(struct cl *c, const char *text)
{
	size_t n = strlen(text);
	cr_assert_eq(send(c->fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Sends one request line and returns the reply (events skipped). */
static json_t *call(struct cl *c, const char *line)
{
	cl_send_raw(c, line);
	cl_send_raw(c, "\n");
	for (;;) {
		json_t *r = cl_recv(c);
		cr_assert_not_null(r, "no reply to %s", line);
		if (!json_object_get(r, "event"))
			return r;
		json_decref(r);
	}
}

static void assert_ok(json_t *r)
{
	cr_assert(json_is_true(json_object_get(r, "ok")), "error: %s",
		  json_string_value(json_object_get(json_object_get(r, "error"), "message")));
}

static void assert_error(json_t *r, const char *code, const char *message)
{
	cr_assert(json_is_false(json_object_get(r, "ok")));
	json_t *e = json_object_get(r, "error");
	cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
	if (message)
		cr_assert_str_eq(json_string_value(json_object_get(e, "message")), message);
}

static const char *result_str(json_t *r, const char *key)
{
	return json_string_value(json_object_get(json_object_get(r, "result"), key));
}

Test(api, status_reports_state_and_vm_facts)
{
	struct cl *c = cl_open();
	json_t *r = call(c, "{\"cmd\": \"status\", \"id\": \"a1\"}");
	assert_ok(r);
	cr_assert_str_eq(json_string_value(json_object_get(r, "id")), "a1");
	cr_assert_str_eq(result_str(r, "state"), "running");
	cr_assert_str_eq(result_str(r, "engine"), "fake");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "result"), "api")), 1);
	json_decref(r);
	cl_close(c);
}

Test(api, pause_resume_and_their_refusals)
{
	struct cl *c = cl_open();
	json_t *r = call(c, "{\"cmd\": \"pause\", \"id\": 1}");
	assert_ok(r);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_PAUSED);
	r = call(c, "{\"cmd\": \"pause\"}");
	assert_error(r, "invalid-state", "cannot pause: the VM is paused");
	json_decref(r);
	cr_assert_eq(vm.calls_pause, 1, "a refused pause reached the VM");
	r = call(c, "{\"cmd\": \"powerdown\"}");
	assert_error(r, "invalid-state", "cannot powerdown: the VM is paused (the guest must run to see the power "
					 "button; resume it first)");
	json_decref(r);
	r = call(c, "{\"cmd\": \"resume\"}");
	assert_ok(r);
	json_decref(r);
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_RUNNING);
	r = call(c, "{\"cmd\": \"resume\"}");
	assert_error(r, "invalid-state", "cannot resume: the VM is running");
	json_decref(r);
	cl_close(c);
}

/* cpu-add, cpu-remove, memory-add and memory-remove refuse bad arguments
 * before the VM sees them, and pass on what they parsed. */
Test(api, hotplug_commands_check_and_pass_their_arguments)
{
	struct cl *c = cl_open();
	static const struct { const char *req, *msg; } cases[] = {
		{ "{\"cmd\": \"cpu-add\", \"args\": {\"node\": 1024}}", "args.node: not a node number" },
		{ "{\"cmd\": \"cpu-add\", \"args\": {\"node\": \"0\"}}", "args.node: not a node number" },
		{ "{\"cmd\": \"cpu-remove\"}", "cpu-remove: cpu: not a CPU number (0 to 63)" },
		{ "{\"cmd\": \"cpu-remove\", \"args\": {\"cpu\": 64}}", "cpu-remove: cpu: not a CPU number (0 to 63)" },
		{ "{\"cmd\": \"memory-add\", \"args\": {\"node\": 1024}}", "args.size: missing or not a number of bytes" },
		{ "{\"cmd\": \"memory-add\", \"args\": {\"size\": 0}}", "args.size: missing or not a number of bytes" },
		{ "{\"cmd\": \"memory-add\", \"args\": {\"size\": 4096, \"node\": -1}}", "args.node: not a node number" },
		{ "{\"cmd\": \"memory-remove\", \"args\": {\"gpa\": 1.5}}", "args.gpa: missing or not an address" },
		{ "{\"cmd\": \"memory-remove\", \"args\": {\"gpa\": 4096, \"timeout\": 0}}",
		  "args.timeout: not a number of seconds (expected more than 0, at most 3600)" },
		{ "{\"cmd\": \"cpu-add\"}", "{\"node\":-1}" },
		{ "{\"cmd\": \"cpu-add\", \"args\": {\"node\": 1023}}", "{\"node\":1023}" },
		{ "{\"cmd\": \"cpu-remove\", \"args\": {\"cpu\": 63}}", "{\"cpu\":63}" },
		{ "{\"cmd\": \"memory-add\", \"args\": {\"size\": 4096}}", "{\"size\":4096,\"node\":-1}" },
		{ "{\"cmd\": \"memory-add\", \"args\": {\"size\": 4096, \"node\": 2}}", "{\"size\":4096,\"node\":2}" },
		{ "{\"cmd\": \"memory-remove\", \"args\": {\"gpa\": 4096, \"timeout\": 0.0001}}",
		  "{\"gpa\":4096,\"timeout_ms\":1}" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *r = call(c, cases[i].req);
		if (cases[i].msg[0] != '{') {
			assert_error(r, "invalid-argument", cases[i].msg);
		} else {
			assert_ok(r);
			char *got = json_dumps(json_object_get(r, "result"), JSON_COMPACT | JSON_PRESERVE_ORDER);
			cr_assert_str_eq(got, cases[i].msg, "%s", cases[i].req);
			free(got);
		}
		json_decref(r);
	}
	cl_close(c);
}

Test(api, reset_powerdown_poweroff)
{
	struct cl *c = cl_open();
	json_t *r = call(c, "{\"cmd\": \"reset\"}");
	assert_ok(r);
	json_decref(r);
	cr_assert_eq(vm.calls_reset, 1);
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_RUNNING);
	vm.guest_ignores_powerdown = true;
	r = call(c, "{\"cmd\": \"powerdown\"}");
	assert_ok(r);
	json_decref(r);
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_POWERING_DOWN);
	r = call(c, "{\"cmd\": \"poweroff\"}");
	assert_ok(r);
	json_decref(r);
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_OFF);
	r = call(c, "{\"cmd\": \"poweroff\"}");
	assert_error(r, "invalid-state", "cannot poweroff: the VM is off");
	json_decref(r);
	cl_close(c);
}

Test(api, save_takes_an_absolute_file_and_reports_failure)
{
	struct cl *c = cl_open();
	json_t *r = call(c, "{\"cmd\": \"save\", \"args\": {\"file\": \"/tmp/x.snap\"}}");
	assert_ok(r);
	cr_assert_str_eq(result_str(r, "file"), "/tmp/x.snap");
	json_decref(r);
	cr_assert_str_eq(vm.last_save, "/tmp/x.snap");
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_RUNNING);
	r = call(c, "{\"cmd\": \"save\", \"args\": {\"file\": \"rel.snap\"}}");
	assert_error(r, "invalid-argument", "args.file: not an absolute path");
	json_decref(r);
	r = call(c, "{\"cmd\": \"save\"}");
	assert_error(r, "invalid-argument", "args.file: missing (expected a string)");
	json_decref(r);
	vm.fail_save = -ENOSPC;
	r = call(c, "{\"cmd\": \"save\", \"args\": {\"file\": \"/full/x\"}}");
	assert_error(r, "failed", "snapshot /full/x: No space left on device");
	json_decref(r);
	cr_assert_eq(vm.calls_save, 2);
	cl_close(c);
}

Test(api, devices_add_list_stats_remove)
{
	struct cl *c = cl_open();
	json_t *r = call(c, "{\"cmd\": \"device-add\", \"args\": {\"device\": {\"type\": \"mailbox\", \"id\": \"mb0\","
			    " \"params\": {\"port\": 1536}}}}");
	assert_ok(r);
	cr_assert_str_eq(result_str(r, "id"), "mb0");
	json_decref(r);
	/* The guest touches the device: per-device counters show it. */
	pthread_mutex_lock(&vm.dev_lock);
	bus_write(&vm.pio, NULL, 1536, 4, 5);
	bus_write(&vm.pio, NULL, 1536, 4, 6);
	uint64_t v;
	bus_read(&vm.pio, NULL, 1540, 4, &v);
	pthread_mutex_unlock(&vm.dev_lock);
	cr_assert_eq(v, 2);
	r = call(c, "{\"cmd\": \"device-list\"}");
	assert_ok(r);
	json_t *list = json_object_get(json_object_get(r, "result"), "devices");
	cr_assert_eq(json_array_size(list), 1);
	json_t *d = json_array_get(list, 0);
	cr_assert_str_eq(json_string_value(json_object_get(d, "id")), "mb0");
	cr_assert_str_eq(json_string_value(json_object_get(d, "plugin")), "device-example");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(d, "params"), "port")), 1536);
	json_t *res0 = json_array_get(json_object_get(d, "resources"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(res0, "kind")), "pio");
	cr_assert_eq(json_integer_value(json_object_get(res0, "base")), 1536);
	json_decref(r);
	r = call(c, "{\"cmd\": \"stats\"}");
	assert_ok(r);
	json_t *devs = json_object_get(json_object_get(r, "result"), "devices");
	json_t *mb = json_array_get(devs, 0);
	cr_assert_str_eq(json_string_value(json_object_get(mb, "name")), "mb0");
	cr_assert_eq(json_integer_value(json_object_get(mb, "writes")), 2);
	cr_assert_eq(json_integer_value(json_object_get(mb, "reads")), 1);
	json_decref(r);
	r = call(c, "{\"cmd\": \"device-add\", \"args\": {\"device\": {\"type\": \"mailbox\", \"id\": \"mb0\"}}}");
	assert_error(r, "exists", "device mb0: a device with this id exists");
	json_decref(r);
	r = call(c, "{\"cmd\": \"device-add\", \"args\": {\"device\": {\"type\": \"mailbox\", \"id\": \"mb1\","
		    " \"params\": {\"port\": 1540}}}}");
	assert_error(r, "busy", NULL);
	json_decref(r);
	r = call(c, "{\"cmd\": \"device-add\", \"args\": {\"device\": {\"type\": \"mailbox\"}}}");
	assert_error(r, "invalid-argument", "args.device.id: missing (expected a unique device id)");
	json_decref(r);
	/* device-remove's options (docs/hotplug.md) are checked first. */
	r = call(c, "{\"cmd\": \"device-remove\", \"args\": {\"id\": \"mb0\", \"force\": 1}}");
	assert_error(r, "invalid-argument", "args.force: not a boolean");
	json_decref(r);
	r = call(c, "{\"cmd\": \"device-remove\", \"args\": {\"id\": \"mb0\", \"timeout\": 0}}");
	assert_error(r, "invalid-argument", "args.timeout: not a number of seconds (expected more than 0, at most 3600)");
	json_decref(r);
	r = call(c, "{\"cmd\": \"device-remove\", \"args\": {\"id\": \"mb0\", \"timeout\": \"5\"}}");
	assert_error(r, "invalid-argument", NULL);
	json_decref(r);
	r = call(c, "{\"cmd\": \"device-remove\", \"args\": {\"id\": \"mb0\", \"force\": false, \"timeout\": 2.5}}");
	assert_ok(r);
	json_decref(r);
	cr_assert_not(bus_read(&vm.pio, NULL, 1536, 4, &v), "removed device still on the bus");
	r = call(c, "{\"cmd\": \"device-remove\", \"args\": {\"id\": \"mb0\"}}");
	assert_error(r, "not-found", "device mb0: no device with this id");
	json_decref(r);
	cl_close(c);
}

Test(api, events_stream_transitions_to_subscribers_only)
{
	struct cl *watcher = cl_open(), *other = cl_open(), *actor = cl_open();
	json_t *r = call(watcher, "{\"cmd\": \"events\"}");
	assert_ok(r);
	cr_assert_str_eq(result_str(r, "state"), "running");
	json_decref(r);
	json_decref(call(actor, "{\"cmd\": \"pause\"}"));
	json_decref(call(actor, "{\"cmd\": \"device-add\", \"args\": {\"device\": {\"type\": \"mailbox\", \"id\": \"m\"}}}"));
	json_decref(call(actor, "{\"cmd\": \"resume\"}"));
	json_t *e = cl_recv(watcher);
	cr_assert_str_eq(json_string_value(json_object_get(e, "event")), "state");
	cr_assert_str_eq(json_string_value(json_object_get(e, "from")), "running");
	cr_assert_str_eq(json_string_value(json_object_get(e, "to")), "paused");
	cr_assert_str_eq(json_string_value(json_object_get(e, "reason")), "control API: pause");
	cr_assert(json_is_number(json_object_get(e, "time")));
	json_decref(e);
	e = cl_recv(watcher);
	cr_assert_str_eq(json_string_value(json_object_get(e, "event")), "device-added");
	cr_assert_str_eq(json_string_value(json_object_get(e, "id")), "m");
	json_decref(e);
	e = cl_recv(watcher);
	cr_assert_str_eq(json_string_value(json_object_get(e, "to")), "running");
	json_decref(e);
	/* A client that did not ask gets replies only. */
	r = call(other, "{\"cmd\": \"status\"}");
	cr_assert_null(json_object_get(r, "event"));
	assert_ok(r);
	json_decref(r);
	cr_assert_eq(other->len, 0, "unsubscribed client got: %.*s", (int)other->len, other->buf);
	cl_close(watcher);
	cl_close(other);
	cl_close(actor);
}

Test(api, malformed_requests_get_errors_and_harm_nothing)
{
	struct cl *c = cl_open();
	json_t *r = call(c, "this is not json");
	assert_error(r, "bad-request", NULL);
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "not JSON"));
	json_decref(r);
	r = call(c, "[1, 2]");
	assert_error(r, "bad-request", "a request is a JSON object {\"cmd\": ..., \"args\": {...}, \"id\": ...}");
	json_decref(r);
	r = call(c, "{\"cmd\": \"explode\", \"id\": 9}");
	assert_error(r, "unknown-command", NULL);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 9);
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
			 "unknown command 'explode' (expected one of status, pause,"));
	json_decref(r);
	r = call(c, "{\"cmd\": 5}");
	assert_error(r, "bad-request", "cmd: missing or not a string");
	json_decref(r);
	r = call(c, "{\"cmd\": \"status\", \"args\": 3}");
	assert_error(r, "bad-request", "args: not an object");
	json_decref(r);
	r = call(c, "{\"cmd\": \"status\", \"extra\": 1}");
	assert_error(r, "bad-request", "extra: unknown field (expected cmd, args, id)");
	json_decref(r);
	r = call(c, "{\"cmd\": \"status\", \"cmd\": \"pause\"}");
	assert_error(r, "bad-request", NULL);
	json_decref(r);
	/* Binary junk with NUL bytes, then blank lines: ignored or refused. */
	cr_assert_eq(send(c->fd, "\x00\x01\xff\n", 4, MSG_NOSIGNAL), 4);
	json_decref(cl_recv(c));
	cl_send_raw(c, "\n  \n");
	/* Still serving, and the VM untouched. */
	r = call(c, "{\"cmd\": \"status\"}");
	assert_ok(r);
	cr_assert_str_eq(result_str(r, "state"), "running");
	json_decref(r);
	cr_assert_eq(vm.calls_pause + vm.calls_poweroff + vm.calls_reset, 0);
	cl_close(c);
}

Test(api, overlong_request_closes_only_that_client)
{
	struct cl *bad = cl_open(), *good = cl_open();
	char *big = malloc(API_MAX_LINE + 100);
	memset(big, 'x', API_MAX_LINE + 99);
	big[API_MAX_LINE + 99] = 0;
	cl_send_raw(bad, big);
	free(big);
	json_t *r = cl_recv(bad);
	assert_error(r, "bad-request", "request longer than 64 KiB: closing the connection");
	json_decref(r);
	cr_assert_null(cl_recv(bad), "connection left open");
	r = call(good, "{\"cmd\": \"status\"}");
	assert_ok(r);
	json_decref(r);
	cl_close(bad);
	cl_close(good);
}

Test(api, pipelined_requests_answer_in_order)
{
	struct cl *c = cl_open();
	cl_send_raw(c, "{\"cmd\":\"status\",\"id\":1}\n{\"cmd\":\"pause\",\"id\":2}\n{\"cmd\":\"status\",\"id\":3}\n");
	for (int i = 1; i <= 3; i++) {
		json_t *r = cl_recv(c);
		cr_assert_eq(json_integer_value(json_object_get(r, "id")), i);
		assert_ok(r);
		if (i == 3)
			cr_assert_str_eq(result_str(r, "state"), "paused");
		json_decref(r);
	}
	cl_close(c);
}

Test(api, client_limit_refuses_extra_connections)
{
	/* The ordinary slots, then the ones reserved for control commands. */
	enum { ALL = API_MAX_CLIENTS + API_RESERVED_CLIENTS };
	struct cl *cs[ALL];
	for (int i = 0; i < ALL; i++)
		cs[i] = cl_open();
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, sock_path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char buf[256] = "";
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(n, 0);
	cr_assert(strstr(buf, "too many clients"), "%s", buf);
	close(fd);
	/* Closing one frees a slot. */
	cl_close(cs[0]);
	json_t *r = call(cs[1], "{\"cmd\": \"status\"}");
	json_decref(r);
	cs[0] = cl_open();
	for (int i = 0; i < ALL; i++)
		cl_close(cs[i]);
}

Test(api, socket_file_rules, .init = NULL, .fini = NULL)
{
	char path[108];
	snprintf(path, sizeof(path), "/tmp/vessel-api-rules-%d.sock", getpid());
	struct fake_vm v;
	cr_assert_eq(fake_vm_init(&v, NULL), 0);
	/* A regular file in the way is not replaced. */
	FILE *f = fopen(path, "w");
	fclose(f);
	struct api_server *s;
	cr_assert_eq(api_server_start(&s, path, &fake_vm_ops, &v, &v.lc), -EEXIST);
	unlink(path);
	cr_assert_eq(api_server_start(&s, path, &fake_vm_ops, &v, &v.lc), 0, "%s", err_msg());
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	/* A live server is not displaced. */
	struct api_server *s2;
	cr_assert_eq(api_server_start(&s2, path, &fake_vm_ops, &v, &v.lc), -EADDRINUSE);
	api_server_stop(s);
	cr_assert_neq(stat(path, &st), 0, "socket left behind");
	fake_vm_destroy(&v);
}

/* api_stats_from_machine over a struct vm: trap counters per reason and
 * per vCPU, and per-device access counters from both buses. */
static void fake_code_stats(struct vm *vm, struct accel_code_stats *out)
{
	(void)vm;
	out->cache_bytes = 64 << 20;
	out->decoded_bytes = 12345;
	out->as_kept = 7;
	out->pt_deferred = 3;
}

Test(api, stats_from_machine, .init = NULL, .fini = NULL)
{
	static struct vm m;
	static struct vcpu v0, v1;
	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&m.dev_lock, NULL);
	bus_init(&m.pio, "pio");
	bus_init(&m.mmio, "mmio");
	static const struct bus_ops nop = { 0 };
	cr_assert_eq(bus_register(&m.pio, 0x3f8, 8, &nop, NULL, "serial0"), 0);
	cr_assert_eq(bus_register(&m.mmio, 0xfec00000, 0x1000, &nop, NULL, "ioapic"), 0);
	m.pio.ranges[0].reads = 10;
	m.pio.ranges[0].writes = 20;
	m.mmio.ranges[0].writes = 3;
	v0.id = 0;
	v1.id = 1;
	v0.exit_counts[VCPU_EXIT_IO] = 30;
	v1.exit_counts[VCPU_EXIT_IO] = 5;
	v1.exit_counts[VCPU_EXIT_HLT] = 2;
	m.vcpus[0] = &v0;
	m.vcpus[1] = &v1;
	m.n_vcpus = 2;
	json_t *out = json_object();
	cr_assert_eq(api_stats_from_machine(&m, out), 0);
	json_t *exits = json_object_get(out, "exits");
	cr_assert_eq(json_integer_value(json_object_get(exits, "io")), 35);
	cr_assert_eq(json_integer_value(json_object_get(exits, "hlt")), 2);
	cr_assert_eq(json_integer_value(json_object_get(exits, "mmio")), 0);
	cr_assert_null(json_object_get(exits, "none"));
	json_t *c1 = json_array_get(json_object_get(out, "vcpus"), 1);
	cr_assert_eq(json_integer_value(json_object_get(c1, "id")), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(c1, "exits"), "io")), 5);
	json_t *devs = json_object_get(out, "devices");
	cr_assert_eq(json_array_size(devs), 2);
	json_t *s = json_array_get(devs, 0), *io = json_array_get(devs, 1);
	cr_assert_str_eq(json_string_value(json_object_get(s, "name")), "serial0");
	cr_assert_str_eq(json_string_value(json_object_get(s, "bus")), "pio");
	cr_assert_eq(json_integer_value(json_object_get(s, "base")), 0x3f8);
	cr_assert_eq(json_integer_value(json_object_get(s, "reads")), 10);
	cr_assert_eq(json_integer_value(json_object_get(s, "writes")), 20);
	cr_assert_str_eq(json_string_value(json_object_get(io, "bus")), "mmio");
	cr_assert_eq(json_integer_value(json_object_get(io, "writes")), 3);
	cr_assert_null(json_object_get(out, "code_cache"), "no engine, no code cache");
	json_decref(out);
	/* An engine that keeps code reports it under code_cache. */
	static const struct accel_ops engine = { .name = "fake", .code_stats = fake_code_stats };
	m.accel = &engine;
	out = json_object();
	cr_assert_eq(api_stats_from_machine(&m, out), 0);
	json_t *code = json_object_get(out, "code_cache");
	cr_assert_eq(json_integer_value(json_object_get(code, "cache_bytes")), 64 << 20);
	cr_assert_eq(json_integer_value(json_object_get(code, "decoded_bytes")), 12345);
	cr_assert_eq(json_integer_value(json_object_get(code, "as_kept")), 7);
	cr_assert_eq(json_integer_value(json_object_get(code, "pt_deferred")), 3);
	json_decref(out);
	bus_destroy(&m.pio);
	bus_destroy(&m.mmio);
}

/* A client that sends requests without reading replies fills its own
 * output budget and is dropped; others are served all along. */
Test(api, flooding_client_does_not_starve_others)
{
	struct cl *flood = cl_open(), *good = cl_open();
	static const char req[] = "{\"cmd\":\"status\"}\n";
	char *burst = malloc(64 * 1024);
	size_t n = 0;
	while (n + sizeof(req) - 1 <= 64 * 1024) {
		memcpy(burst + n, req, sizeof(req) - 1);
		n += sizeof(req) - 1;
	}
	int sent_total = 0;
	for (int i = 0; i < 200; i++) {
		ssize_t s = send(flood->fd, burst, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (s < 0)
			break;
		sent_total += (int)s;
		json_t *r = call(good, "{\"cmd\": \"status\"}");
		assert_ok(r);
		json_decref(r);
	}
	free(burst);
	cr_assert_gt(sent_total, 0);
	json_t *r = call(good, "{\"cmd\": \"status\"}");
	assert_ok(r);
	json_decref(r);
	cl_close(flood);
	cl_close(good);
}

/* Every ordinary slot held by a client that sends nothing: a control
 * command still gets through on a reserved slot, which refuses anything
 * else. */
Test(api, reserved_slot_lets_control_commands_through)
{
	struct cl *idle[API_MAX_CLIENTS];
	for (int i = 0; i < API_MAX_CLIENTS; i++)
		idle[i] = cl_open();
	struct cl *c = cl_open();
	json_t *r = call(c, "{\"cmd\": \"device-list\"}");
	assert_error(r, "busy", NULL);
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
			 "reserved for control commands"));
	json_decref(r);
	r = call(c, "{\"cmd\": \"status\"}");
	assert_ok(r);
	json_decref(r);
	struct cl *c2 = cl_open();
	r = call(c2, "{\"cmd\": \"poweroff\"}");
	assert_ok(r);
	json_decref(r);
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_OFF);
	cl_close(c2);
	cl_close(c);
	for (int i = 0; i < API_MAX_CLIENTS; i++)
		cl_close(idle[i]);
}

/* `echo REQUEST | socat - UNIX-CONNECT:sock`: the client shuts its write
 * side after the request and still reads the reply. */
Test(api, half_closed_client_gets_its_replies)
{
	struct cl *c = cl_open();
	cl_send_raw(c, "{\"cmd\":\"status\",\"id\":1}\n{\"cmd\":\"pause\",\"id\":2}\n{\"cmd\":\"status\",\"id\":3}");
	cr_assert_eq(shutdown(c->fd, SHUT_WR), 0);
	for (int i = 1; i <= 3; i++) {
		json_t *r = cl_recv(c);
		cr_assert_not_null(r, "reply %d lost after the half-close", i);
		assert_ok(r);
		cr_assert_eq(json_integer_value(json_object_get(r, "id")), i);
		json_decref(r);
	}
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_PAUSED);
	cr_assert_null(cl_recv(c), "the connection stays open after the last reply");
	cl_close(c);
}

struct writer {
	int fd;
	int n;
	atomic_int sent;
	atomic_bool done;
};

static void *write_requests(void *arg)
{
	struct writer *w = arg;
	char line[64];
	for (int i = 1; i <= w->n; i++) {
		int len = snprintf(line, sizeof(line), "{\"cmd\":\"status\",\"id\":%d}\n", i);
		if (send(w->fd, line, (size_t)len, MSG_NOSIGNAL) != len)
			break;
		atomic_store(&w->sent, i);
	}
	atomic_store(&w->done, true);
	return NULL;
}

/* A client that pipelines many requests before it reads (far more
 * replies than the output limit in all) is answered in full and in order:
 * the server stops reading its requests while their replies wait, instead
 * of queueing replies until it looks like a client that does not read. */
Test(api, pipelined_requests_of_a_reading_client_are_all_answered, .timeout = 120)
{
	struct cl *c = cl_open();
	struct writer w = { .fd = c->fd, .n = 100000 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, write_requests, &w), 0);
	/* Start reading once the writer is done or held back. */
	int last = -1, still = 0;
	while (!atomic_load(&w.done) && still < 4) {
		usleep(50 * 1000);
		int now = atomic_load(&w.sent);
		still = now == last ? still + 1 : 0;
		last = now;
	}
	int got = 0;
	for (int i = 1; i <= w.n; i++) {
		json_t *r = cl_recv(c);
		if (!r)
			break;
		cr_assert_eq(json_integer_value(json_object_get(r, "id")), i);
		json_decref(r);
		got = i;
	}
	shutdown(c->fd, SHUT_RDWR);
	pthread_join(t, NULL);
	cr_assert_eq(got, w.n, "disconnected after %d of %d replies", got, w.n);
	cl_close(c);
}

static const char *event_name(json_t *e)
{
	return json_string_value(json_object_get(e, "event"));
}

/* save runs while the server goes on serving others: status shows it, a
 * second long operation is refused as busy, and the requester gets a
 * progress event, then its reply. */
Test(api, save_runs_off_the_api_thread, .timeout = 60)
{
	struct cl *a = cl_open(), *b = cl_open();
	fake_vm_hold(&vm, true);
	cl_send_raw(a, "{\"cmd\": \"save\", \"args\": {\"file\": \"/tmp/held.snap\"}, \"id\": \"s1\"}\n");
	json_t *e = cl_recv(a);
	cr_assert_not_null(e);
	cr_assert_str_eq(event_name(e), "progress");
	cr_assert_str_eq(json_string_value(json_object_get(e, "cmd")), "save");
	cr_assert_str_eq(json_string_value(json_object_get(e, "request")), "s1");
	cr_assert_str_eq(json_string_value(json_object_get(e, "stage")), "started");
	json_decref(e);
	cr_assert(fake_vm_wait_held(&vm, 1), "save never reached the VM");
	json_t *r = call(b, "{\"cmd\": \"status\"}");
	assert_ok(r);
	cr_assert_str_eq(result_str(r, "state"), "saving-state");
	json_t *op = json_object_get(json_object_get(r, "result"), "operation");
	cr_assert_str_eq(json_string_value(json_object_get(op, "cmd")), "save");
	json_decref(r);
	r = call(b, "{\"cmd\": \"save\", \"args\": {\"file\": \"/tmp/other.snap\"}}");
	assert_error(r, "busy", NULL);
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
			 "save is in progress"));
	json_decref(r);
	r = call(b, "{\"cmd\": \"device-add\", \"args\": {\"device\": {\"type\": \"mailbox\", \"id\": \"m\"}}}");
	assert_error(r, "busy", NULL);
	json_decref(r);
	fake_vm_hold(&vm, false);
	for (;;) {
		r = cl_recv(a);
		cr_assert_not_null(r);
		if (!json_object_get(r, "event"))
			break;
		json_decref(r);
	}
	assert_ok(r);
	cr_assert_str_eq(json_string_value(json_object_get(r, "id")), "s1");
	cr_assert_str_eq(result_str(r, "file"), "/tmp/held.snap");
	json_decref(r);
	cr_assert_eq(lifecycle_state(&vm.lc), VM_STATE_RUNNING);
	r = call(b, "{\"cmd\": \"status\"}");
	cr_assert(json_is_null(json_object_get(json_object_get(r, "result"), "operation")));
	json_decref(r);
	cl_close(a);
	cl_close(b);
}

/* A plug-in whose create() takes its time blocks nobody but the client
 * that asked; that client's next requests are answered after it, in order. */
Test(api, slow_device_add_blocks_only_its_client, .timeout = 60)
{
	struct cl *a = cl_open(), *b = cl_open();
	fake_vm_hold(&vm, true);
	cl_send_raw(a, "{\"cmd\": \"device-add\", \"args\": {\"device\": {\"type\": \"mailbox\", \"id\": \"m\"}}, \"id\": 1}\n"
		       "{\"cmd\": \"device-list\", \"id\": 2}\n");
	cr_assert(fake_vm_wait_held(&vm, 1), "device-add never reached the VM");
	json_t *r = call(b, "{\"cmd\": \"pause\"}");
	assert_ok(r);
	json_decref(r);
	r = call(b, "{\"cmd\": \"resume\"}");
	assert_ok(r);
	json_decref(r);
	fake_vm_hold(&vm, false);
	int next = 1;
	while (next <= 2) {
		r = cl_recv(a);
		cr_assert_not_null(r);
		if (json_object_get(r, "event")) {
			json_decref(r);
			continue;
		}
		assert_ok(r);
		cr_assert_eq(json_integer_value(json_object_get(r, "id")), next);
		if (next == 2)
			cr_assert_eq(json_array_size(json_object_get(json_object_get(r, "result"), "devices")), 1);
		json_decref(r);
		next++;
	}
	cl_close(a);
	cl_close(b);
}

/* ---- timeouts, with short limits ---- */

static void setup_short_limits(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/vessel-api-test-%d.sock", getpid());
	cr_assert_eq(fake_vm_init(&vm, EXAMPLE_PLUGIN), 0, "%s", err_msg());
	/* Idle long enough that a busy client is never idle between two of
	 * its requests on a loaded machine (the subscriber test's actor),
	 * short enough for the idle test to wait for it. */
	struct api_limits lim = { .idle_ms = 3000, .stall_ms = 300, .reserved_idle_ms = 200 };
	cr_assert_eq(api_server_start_with(&srv, sock_path, &fake_vm_ops, &vm, &vm.lc, &lim), 0, "%s", err_msg());
}

/* numa-move is a long operation whose progress events count pages; its
 * arguments are checked before the VM sees them. */
Test(api, numa_move_checks_its_arguments_and_reports_progress, .timeout = 60)
{
	struct cl *c = cl_open();
	static const struct { const char *req, *msg; } bad[] = {
		{ "{\"cmd\": \"numa-move\", \"args\": {\"host_nodes\": 0}}", "args.node: missing or not a node number" },
		{ "{\"cmd\": \"numa-move\", \"args\": {\"node\": -1, \"host_nodes\": 0}}",
		  "args.node: missing or not a node number" },
		{ "{\"cmd\": \"numa-move\", \"args\": {\"node\": 1}}",
		  "args.host_nodes: missing or not a host node number 0-63 (or a list of them)" },
		{ "{\"cmd\": \"numa-move\", \"args\": {\"node\": 1, \"host_nodes\": [0, 64]}}",
		  "args.host_nodes: missing or not a host node number 0-63 (or a list of them)" },
		{ "{\"cmd\": \"numa-move\", \"args\": {\"node\": 1, \"host_nodes\": []}}",
		  "args.host_nodes: missing or not a host node number 0-63 (or a list of them)" },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *r = call(c, bad[i].req);
		assert_error(r, "invalid-argument", bad[i].msg);
		json_decref(r);
	}
	fake_vm_hold(&vm, true);
	cl_send_raw(c, "{\"cmd\": \"numa-move\", \"id\": 7, \"args\": {\"node\": 1, \"host_nodes\": [0, 2]}}\n");
	cr_assert(fake_vm_wait_held(&vm, 1));
	json_t *ev;
	for (;;) {   /* "started", then a "running" event each second */
		ev = cl_recv(c);
		cr_assert_not_null(ev);
		if (json_integer_value(json_object_get(ev, "total")) == 1000)
			break;
		json_decref(ev);
	}
	cr_assert_str_eq(json_string_value(json_object_get(ev, "event")), "progress");
	cr_assert_str_eq(json_string_value(json_object_get(ev, "cmd")), "numa-move");
	cr_assert_eq(json_integer_value(json_object_get(ev, "done")), 500);
	json_decref(ev);
	fake_vm_hold(&vm, false);
	json_t *r;
	while ((r = cl_recv(c)) && json_object_get(r, "event"))
		json_decref(r);
	cr_assert_not_null(r);
	assert_ok(r);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 7);
	json_t *res = json_object_get(r, "result");
	cr_assert_eq(json_integer_value(json_object_get(res, "node")), 1);
	cr_assert_eq(json_integer_value(json_object_get(res, "host_mask")), 5, "host nodes 0 and 2");
	json_decref(r);
	cl_close(c);
}

TestSuite(api_limits, .init = setup_short_limits, .fini = teardown);

Test(api_limits, idle_client_is_closed, .timeout = 60)
{
	struct cl *c = cl_open();
	json_t *e = cl_recv(c);
	cr_assert_not_null(e, "an idle client was not told it is closed");
	cr_assert_str_eq(event_name(e), "closing");
	cr_assert(strstr(json_string_value(json_object_get(e, "reason")), "idle"));
	json_decref(e);
	cr_assert_null(cl_recv(c), "an idle client stays connected");
	cl_close(c);
}

/* An event subscriber that stops reading is closed once its output has
 * not moved for the stall limit, long before the output limit. */
Test(api_limits, subscriber_that_stops_reading_is_closed, .timeout = 120)
{
	struct cl *sub = cl_open(), *actor = cl_open();
	json_decref(call(sub, "{\"cmd\": \"events\"}"));
	/* About 1 MiB of events: more than the socket buffers hold, less
	 * than the output limit. */
	for (int i = 0; i < 5000; i++) {
		json_decref(call(actor, "{\"cmd\": \"pause\"}"));
		json_decref(call(actor, "{\"cmd\": \"resume\"}"));
	}
	bool closed = false;
	for (int tries = 0; tries < 200 && !closed; tries++) {
		usleep(100 * 1000);
		closed = send(sub->fd, "\n", 1, MSG_NOSIGNAL) < 0;
	}
	cr_assert(closed, "a subscriber that does not read stays connected");
	/* A new client (the actor may be closed as idle by now). */
	struct cl *c = cl_open();
	json_t *r = call(c, "{\"cmd\": \"status\"}");
	assert_ok(r);
	json_decref(r);
	cl_close(c);
	cl_close(sub);
	cl_close(actor);
}
