/* Control API server: one thread, poll(2) over the listening socket, a
 * wake-up pipe and every client.  Clients are non-blocking with bounded
 * input and output buffers, so a slow or hostile client costs at most its
 * own connection and never stalls the VM (docs/api.md). */
#include "vmm/api.h"

#include "util/error.h"
#include "util/log.h"
#include "version.h"
#include "machine/machine.h"
#include "vmm/manifest.h"
#include "vmm/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A client that does not read its events has this much queued at most
 * before it is disconnected. */
#define API_MAX_OUTPUT (4u << 20)

struct client {
	int fd;
	bool events;          /* subscribed to the event stream */
	bool closing;         /* close once the output is flushed */
	char *in;
	size_t in_len;
	char *out;
	size_t out_len, out_cap;
};

struct api_server {
	char *path;
	int listen_fd;
	int wake[2];
	pthread_t thread;
	const struct vm_control_ops *ops;
	void *opaque;
	struct lifecycle *lc;
	int sub_id;
	struct client *clients[API_MAX_CLIENTS];
	pthread_mutex_t ev_lock;
	json_t *pending;      /* events queued by other threads */
	atomic_bool stop;
};

/* ---- output ---- */

static void client_close(struct api_server *srv, unsigned i)
{
	struct client *c = srv->clients[i];
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	srv->clients[i] = NULL;
}

static void client_send_json(struct client *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	if (!text)
		return;
	size_t n = strlen(text);
	if (c->out_len + n + 1 > API_MAX_OUTPUT) {
		/* It does not read what it asked for: let it go. */
		c->closing = true;
		c->out_len = 0;
		free(text);
		return;
	}
	if (c->out_len + n + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + n + 1)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			free(text);
			c->closing = true;
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	free(text);
}

/* false when the client is gone. */
static bool client_flush(struct client *c)
{
	while (c->out_len) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	return true;
}

static const char *errno_code(int err)
{
	switch (-err) {
	case EPERM: case EAGAIN: return "invalid-state";
	case ENOENT: return "not-found";
	case EEXIST: return "exists";
	case EBUSY: return "busy";
	case EINVAL: return "invalid-argument";
	case ENOSYS: case ENOTSUP: return "unsupported";
	default: return "failed";
	}
}

static void reply_error(struct client *c, json_t *id, const char *code, const char *message)
{
	json_t *r = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code, "message", message);
	if (id)
		json_object_set(r, "id", id);
	client_send_json(c, r);
	json_decref(r);
}

static void reply_ok(struct client *c, json_t *id, json_t *result)
{
	json_t *r = json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object());
	if (id)
		json_object_set(r, "id", id);
	client_send_json(c, r);
	json_decref(r);
}

static void broadcast_event(struct api_server *srv, json_t *ev)
{
	for (unsigned i = 0; i < API_MAX_CLIENTS; i++)
		if (srv->clients[i] && srv->clients[i]->events)
			client_send_json(srv->clients[i], ev);
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Lifecycle subscriber: runs on whichever thread made the transition, so
 * it only queues the event and wakes the server thread. */
static void on_transition(void *opaque, enum vm_state from, enum vm_state to, const char *reason)
{
	struct api_server *srv = opaque;
	json_t *ev = json_pack("{s:s, s:s, s:s, s:f}", "event", "state", "from", vm_state_name(from), "to",
			       vm_state_name(to), "time", now_seconds());
	json_object_set_new(ev, "reason", reason ? json_string(reason) : json_null());
	pthread_mutex_lock(&srv->ev_lock);
	json_array_append_new(srv->pending, ev);
	pthread_mutex_unlock(&srv->ev_lock);
	ssize_t n = write(srv->wake[1], "e", 1);
	(void)n; /* a full pipe already means "wake up" */
}

/* ---- commands ---- */

struct request {
	struct api_server *srv;
	struct client *client;
	json_t *id, *args;
};

/* States in which each command makes sense; a clear refusal otherwise
 * instead of whatever the VM would do. */
#define ST(x) (1u << VM_STATE_##x)

static int check_state(struct request *rq, const char *cmd, unsigned ok_states, const char *hint)
{
	enum vm_state s = lifecycle_state(rq->srv->lc);
	if (ok_states & (1u << s))
		return 0;
	char msg[160];
	snprintf(msg, sizeof(msg), "cannot %s: the VM is %s%s", cmd, vm_state_name(s), hint ? hint : "");
	reply_error(rq->client, rq->id, "invalid-state", msg);
	return -1;
}

static void finish(struct request *rq, int rc, json_t *result)
{
	if (rc < 0) {
		reply_error(rq->client, rq->id, errno_code(rc), err_msg());
		json_decref(result);
	} else {
		reply_ok(rq->client, rq->id, result);
	}
}

static int need_op(struct request *rq, bool op, const char *cmd)
{
	if (op)
		return 0;
	char msg[96];
	snprintf(msg, sizeof(msg), "%s is not supported by this VM", cmd);
	reply_error(rq->client, rq->id, "unsupported", msg);
	return -1;
}

static void cmd_status(struct request *rq)
{
	json_t *r = json_pack("{s:s, s:I, s:i}", "state", vm_state_name(lifecycle_state(rq->srv->lc)), "transitions",
			      (json_int_t)lifecycle_transitions(rq->srv->lc), "api", VESSEL_API_VERSION);
	if (rq->srv->ops->status)
		rq->srv->ops->status(rq->srv->opaque, r);
	reply_ok(rq->client, rq->id, r);
}

#define SIMPLE_CMD(NAME, FIELD, STATES, HINT)                                        \
	static void cmd_##FIELD(struct request *rq)                                  \
	{                                                                            \
		if (need_op(rq, rq->srv->ops->FIELD != NULL, NAME) < 0 ||      \
		    check_state(rq, NAME, STATES, HINT) < 0)                         \
			return;                                                      \
		err_clear();                                                         \
		finish(rq, rq->srv->ops->FIELD(rq->srv->opaque), NULL);              \
	}

SIMPLE_CMD("pause", pause, ST(RUNNING), NULL)
SIMPLE_CMD("resume", resume, ST(PAUSED) | ST(POWERING_DOWN), NULL)
SIMPLE_CMD("powerdown", powerdown, ST(RUNNING), " (the guest must run to see the power button; resume it first)")
SIMPLE_CMD("poweroff", poweroff,
	   ST(INITIALIZING) | ST(POWERING_UP) | ST(LOADING_STATE) | ST(RUNNING) | ST(PAUSED) | ST(SAVING_STATE) |
		   ST(POWERING_DOWN), NULL)
SIMPLE_CMD("reset", reset, ST(RUNNING) | ST(PAUSED) | ST(POWERING_DOWN), NULL)

static const char *arg_string(struct request *rq, const char *name)
{
	json_t *v = json_object_get(rq->args, name);
	if (!json_is_string(v)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "args.%s: %s (expected a string)", name, v ? "not a string" : "missing");
		reply_error(rq->client, rq->id, "invalid-argument", msg);
		return NULL;
	}
	return json_string_value(v);
}

static void cmd_save(struct request *rq)
{
	if (need_op(rq, rq->srv->ops->save != NULL, "save") < 0)
		return;
	const char *file = arg_string(rq, "file");
	if (!file || check_state(rq, "save", ST(RUNNING) | ST(PAUSED), NULL) < 0)
		return;
	if (file[0] != '/') {
		/* The server's working directory means nothing to the client. */
		reply_error(rq->client, rq->id, "invalid-argument", "args.file: not an absolute path");
		return;
	}
	err_clear();
	int rc = rq->srv->ops->save(rq->srv->opaque, file);
	finish(rq, rc, rc < 0 ? NULL : json_pack("{s:s}", "file", file));
}

static void cmd_stats(struct request *rq)
{
	if (need_op(rq, rq->srv->ops->stats != NULL, "stats") < 0)
		return;
	json_t *r = json_object();
	err_clear();
	int rc = rq->srv->ops->stats(rq->srv->opaque, r);
	finish(rq, rc, r);
}

static void cmd_device_list(struct request *rq)
{
	if (need_op(rq, rq->srv->ops->device_list != NULL, "device-list") < 0)
		return;
	json_t *list = json_array();
	err_clear();
	int rc = rq->srv->ops->device_list(rq->srv->opaque, list);
	finish(rq, rc, rc < 0 ? (json_decref(list), NULL) : json_pack("{s:o}", "devices", list));
}

static const unsigned device_states =
	ST(INITIALIZING) | ST(POWERING_UP) | ST(LOADING_STATE) | ST(RUNNING) | ST(PAUSED) | ST(POWERING_DOWN);

static void cmd_device_add(struct request *rq)
{
	if (need_op(rq, rq->srv->ops->device_add != NULL, "device-add") < 0 ||
	    check_state(rq, "add a device", device_states, NULL) < 0)
		return;
	struct vm_device_config dev;
	json_t *obj = json_object_get(rq->args, "device");
	if (!obj) {
		reply_error(rq->client, rq->id, "invalid-argument",
			    "args.device: missing (expected {\"type\": ..., \"id\": ..., \"params\": {...}})");
		return;
	}
	if (vm_manifest_parse_device(obj, "args.device", &dev) < 0) {
		reply_error(rq->client, rq->id, "invalid-argument", err_msg());
		return;
	}
	err_clear();
	int rc = rq->srv->ops->device_add(rq->srv->opaque, &dev);
	finish(rq, rc, rc < 0 ? NULL : json_pack("{s:s}", "id", dev.id));
	if (rc == 0) {
		json_t *ev = json_pack("{s:s, s:s, s:s, s:f}", "event", "device-added", "id", dev.id, "type", dev.type,
				       "time", now_seconds());
		broadcast_event(rq->srv, ev);
		json_decref(ev);
	}
	vm_device_config_free(&dev);
}

static void cmd_device_remove(struct request *rq)
{
	if (need_op(rq, rq->srv->ops->device_remove != NULL, "device-remove") < 0)
		return;
	const char *id = arg_string(rq, "id");
	if (!id || check_state(rq, "remove a device", device_states, NULL) < 0)
		return;
	err_clear();
	int rc = rq->srv->ops->device_remove(rq->srv->opaque, id);
	finish(rq, rc, rc < 0 ? NULL : json_pack("{s:s}", "id", id));
	if (rc == 0) {
		json_t *ev = json_pack("{s:s, s:s, s:f}", "event", "device-removed", "id", id, "time", now_seconds());
		broadcast_event(rq->srv, ev);
		json_decref(ev);
	}
}

static void cmd_events(struct request *rq)
{
	rq->client->events = true;
	reply_ok(rq->client, rq->id, json_pack("{s:s}", "state", vm_state_name(lifecycle_state(rq->srv->lc))));
}

static const struct {
	const char *name;
	void (*run)(struct request *rq);
} commands[] = {
	{ "status", cmd_status }, { "pause", cmd_pause }, { "resume", cmd_resume },
	{ "powerdown", cmd_powerdown }, { "poweroff", cmd_poweroff }, { "reset", cmd_reset },
	{ "save", cmd_save }, { "stats", cmd_stats }, { "device-list", cmd_device_list },
	{ "device-add", cmd_device_add }, { "device-remove", cmd_device_remove }, { "events", cmd_events },
};

static void handle_line(struct api_server *srv, struct client *c, const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i == len)
		return; /* blank lines are keep-alives */
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		char msg[256];
		snprintf(msg, sizeof(msg), "not JSON: %s at column %d", jerr.text, jerr.column);
		reply_error(c, NULL, "bad-request", msg);
		return;
	}
	struct request rq = { .srv = srv, .client = c, .id = NULL, .args = NULL };
	if (!json_is_object(req)) {
		reply_error(c, NULL, "bad-request", "a request is a JSON object {\"cmd\": ..., \"args\": {...}, \"id\": ...}");
		goto out;
	}
	rq.id = json_object_get(req, "id");
	json_t *cmd = json_object_get(req, "cmd");
	rq.args = json_object_get(req, "args");
	const char *key;
	json_t *v;
	json_object_foreach(req, key, v) {
		if (strcmp(key, "id") && strcmp(key, "cmd") && strcmp(key, "args")) {
			char msg[128];
			snprintf(msg, sizeof(msg), "%.64s: unknown field (expected cmd, args, id)", key);
			reply_error(c, rq.id, "bad-request", msg);
			goto out;
		}
	}
	if (!json_is_string(cmd)) {
		reply_error(c, rq.id, "bad-request", "cmd: missing or not a string");
		goto out;
	}
	if (rq.args && !json_is_object(rq.args)) {
		reply_error(c, rq.id, "bad-request", "args: not an object");
		goto out;
	}
	json_t *empty = NULL;
	if (!rq.args)
		rq.args = empty = json_object();
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		if (!strcmp(commands[k].name, json_string_value(cmd))) {
			log_debug("api", "request %s", commands[k].name);
			commands[k].run(&rq);
			json_decref(empty);
			goto out;
		}
	}
	json_decref(empty);
	char msg[512], list[384] = "";
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", k ? ", " : "", commands[k].name);
	}
	snprintf(msg, sizeof(msg), "unknown command '%.64s' (expected one of %s)", json_string_value(cmd), list);
	reply_error(c, rq.id, "unknown-command", msg);
out:
	json_decref(req);
}

/* false when the client is gone. */
static bool client_read(struct api_server *srv, struct client *c)
{
	/* A few reads per wake-up: a client that floods cannot keep the
	 * thread from the others (poll comes back to it soon enough). */
	for (int rounds = 0; rounds < 8; rounds++) {
		if (c->closing)
			return true;
		ssize_t n = recv(c->fd, c->in + c->in_len, API_MAX_LINE - c->in_len, MSG_DONTWAIT);
		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->in_len += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < c->in_len; i++) {
			if (c->in[i] == '\n') {
				handle_line(srv, c, c->in + start, i - start);
				start = i + 1;
			}
		}
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
		if (c->in_len == API_MAX_LINE) {
			reply_error(c, NULL, "bad-request", "request longer than 64 KiB: closing the connection");
			c->closing = true;
			c->in_len = 0;
		}
	}
	return true;
}

static void accept_client(struct api_server *srv)
{
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	unsigned slot = API_MAX_CLIENTS;
	for (unsigned i = 0; i < API_MAX_CLIENTS && slot == API_MAX_CLIENTS; i++)
		if (!srv->clients[i])
			slot = i;
	struct client *c = slot < API_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
	if (c)
		c->in = malloc(API_MAX_LINE);
	if (!c || !c->in) {
		static const char busy[] = "{\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"too many clients\"}}\n";
		ssize_t n = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
		close(fd);
		if (c)
			free(c);
		return;
	}
	c->fd = fd;
	srv->clients[slot] = c;
	json_t *hello = json_pack("{s:s, s:i, s:s, s:s}", "hello", "vessel", "api", VESSEL_API_VERSION, "version",
				  VESSEL_VERSION, "state", vm_state_name(lifecycle_state(srv->lc)));
	client_send_json(c, hello);
	json_decref(hello);
	client_flush(c);
}

static void *server_thread(void *arg)
{
	struct api_server *srv = arg;
	struct pollfd pfd[API_MAX_CLIENTS + 2];
	unsigned map[API_MAX_CLIENTS + 2];
	while (!atomic_load(&srv->stop)) {
		unsigned n = 0;
		pfd[n++] = (struct pollfd){ .fd = srv->wake[0], .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < API_MAX_CLIENTS; i++) {
			struct client *c = srv->clients[i];
			if (!c)
				continue;
			map[n] = i;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = (short)((c->closing ? 0 : POLLIN) |
										 (c->out_len ? POLLOUT : 0)) };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("api", "poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents) {
			char buf[64];
			while (read(srv->wake[0], buf, sizeof(buf)) > 0)
				;
			pthread_mutex_lock(&srv->ev_lock);
			json_t *events = srv->pending;
			srv->pending = json_array();
			pthread_mutex_unlock(&srv->ev_lock);
			size_t k;
			json_t *ev;
			json_array_foreach(events, k, ev)
				broadcast_event(srv, ev);
			json_decref(events);
		}
		for (unsigned p = 2; p < n; p++) {
			unsigned i = map[p];
			struct client *c = srv->clients[i];
			bool alive = true;
			if (pfd[p].revents & (POLLERR | POLLNVAL))
				alive = false;
			else if (pfd[p].revents & (POLLIN | POLLHUP))
				alive = client_read(srv, c);
			if (alive)
				alive = client_flush(c) && !(c->closing && !c->out_len);
			if (!alive)
				client_close(srv, i);
		}
		/* Events queued by broadcast above go out without waiting. */
		for (unsigned i = 0; i < API_MAX_CLIENTS; i++)
			if (srv->clients[i] && (!client_flush(srv->clients[i]) ||
						(srv->clients[i]->closing && !srv->clients[i]->out_len)))
				client_close(srv, i);
		if (pfd[1].revents & POLLIN)
			accept_client(srv);
	}
	return NULL;
}

int api_server_start(struct api_server **out, const char *path, const struct vm_control_ops *ops, void *opaque,
		     struct lifecycle *lc)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return err_set(-ENAMETOOLONG, "api socket %s: path longer than %zu bytes", path, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(-EEXIST, "api socket %s: a file that is not a socket is in the way", path);
		/* A socket nobody listens on is left over from a VM that died. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0;
		if (probe >= 0)
			close(probe);
		if (live)
			return err_set(-EADDRINUSE, "api socket %s: another VM is serving it", path);
		unlink(path);
	}
	struct api_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return err_set(-ENOMEM, "api: out of memory");
	srv->ops = ops;
	srv->opaque = opaque;
	srv->lc = lc;
	srv->wake[0] = srv->wake[1] = -1;
	srv->sub_id = -1;
	srv->path = strdup(path);
	srv->pending = json_array();
	pthread_mutex_init(&srv->ev_lock, NULL);
	int rc;
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->listen_fd < 0) {
		rc = err_set(-errno, "api socket %s: %s", path, strerror(errno));
		goto fail;
	}
	/* Owner only: the API can stop the VM and read its memory (save). */
	mode_t old = umask(0177);
	int b = bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr));
	int bind_errno = errno;
	umask(old);
	if (b < 0 || listen(srv->listen_fd, 8) < 0) {
		rc = err_set(-(b < 0 ? bind_errno : errno), "api socket %s: %s", path, strerror(b < 0 ? bind_errno : errno));
		goto fail;
	}
	if (pipe2(srv->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		rc = err_set(-errno, "api: pipe: %s", strerror(errno));
		goto fail_unlink;
	}
	if ((srv->sub_id = lifecycle_subscribe(lc, on_transition, srv)) < 0) {
		rc = srv->sub_id;
		goto fail_unlink;
	}
	if ((rc = -pthread_create(&srv->thread, NULL, server_thread, srv)) < 0) {
		err_set(rc, "api: cannot start its thread");
		lifecycle_unsubscribe(lc, srv->sub_id);
		goto fail_unlink;
	}
	log_info("api", "serving API version %d on %s", VESSEL_API_VERSION, path);
	*out = srv;
	return 0;
fail_unlink:
	unlink(path);
fail:
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->wake[0] >= 0) {
		close(srv->wake[0]);
		close(srv->wake[1]);
	}
	json_decref(srv->pending);
	pthread_mutex_destroy(&srv->ev_lock);
	free(srv->path);
	free(srv);
	return rc;
}

void api_server_stop(struct api_server *srv)
{
	if (!srv)
		return;
	lifecycle_unsubscribe(srv->lc, srv->sub_id);
	atomic_store(&srv->stop, true);
	ssize_t n = write(srv->wake[1], "s", 1);
	(void)n;
	pthread_join(srv->thread, NULL);
	/* The last transitions (to off) are what an event watcher waits for:
	 * deliver what is queued before closing. */
	size_t k;
	json_t *ev;
	json_array_foreach(srv->pending, k, ev)
		broadcast_event(srv, ev);
	json_array_clear(srv->pending);
	for (unsigned i = 0; i < API_MAX_CLIENTS; i++)
		if (srv->clients[i]) {
			client_flush(srv->clients[i]);
			client_close(srv, i);
		}
	close(srv->listen_fd);
	close(srv->wake[0]);
	close(srv->wake[1]);
	unlink(srv->path);
	json_decref(srv->pending);
	pthread_mutex_destroy(&srv->ev_lock);
	free(srv->path);
	free(srv);
}

/* ---- helpers for the integrator's ops ---- */

static void add_bus(json_t *devices, struct bus *bus)
{
	for (unsigned i = 0; i < bus->n; i++) {
		const struct bus_range *r = &bus->ranges[i];
		json_array_append_new(devices, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "bus", bus->name, "name",
							 r->name ? r->name : "?", "base", (json_int_t)r->base, "len",
							 (json_int_t)r->len, "reads", (json_int_t)r->reads, "writes",
							 (json_int_t)r->writes));
	}
}

int api_stats_from_machine(struct vm *vm, json_t *out)
{
	uint64_t total[VCPU_EXIT_REASON_COUNT] = { 0 };
	json_t *vcpus = json_array();
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		json_t *exits = json_object();
		for (unsigned r = 1; r < VCPU_EXIT_REASON_COUNT; r++) {
			uint64_t n = atomic_load_explicit(&v->exit_counts[r], memory_order_relaxed);
			total[r] += n;
			json_object_set_new(exits, vcpu_exit_reason_name((enum vcpu_exit_reason)r), json_integer((json_int_t)n));
		}
		json_array_append_new(vcpus, json_pack("{s:i, s:o}", "id", (int)v->id, "exits", exits));
	}
	json_t *exits = json_object();
	for (unsigned r = 1; r < VCPU_EXIT_REASON_COUNT; r++)
		json_object_set_new(exits, vcpu_exit_reason_name((enum vcpu_exit_reason)r), json_integer((json_int_t)total[r]));
	json_t *devices = json_array();
	pthread_mutex_lock(&vm->dev_lock);
	add_bus(devices, &vm->pio);
	add_bus(devices, &vm->mmio);
	pthread_mutex_unlock(&vm->dev_lock);
	json_object_set_new(out, "exits", exits);
	json_object_set_new(out, "vcpus", vcpus);
	json_object_set_new(out, "devices", devices);
	return 0;
}

static const char *const res_kind[] = { "?", "pio", "mmio", "irq", "pci" };

int api_devices_to_json(const struct plugin_devices *set, json_t *out)
{
	struct plugin_device_info info;
	for (unsigned i = 0; plugin_devices_info(set, i, &info) == 0; i++) {
		json_t *params = json_loads(info.params ? info.params : "{}", 0, NULL);
		json_t *res = json_array();
		for (unsigned r = 0; r < info.n_resources; r++) {
			unsigned k = (unsigned)info.specs[r].kind <= 4 ? (unsigned)info.specs[r].kind : 0;
			json_t *o = json_pack("{s:s, s:s, s:I}", "name", info.specs[r].name, "kind", res_kind[k], "base",
					      (json_int_t)info.bases[r]);
			if (k == VESSEL_RES_PIO || k == VESSEL_RES_MMIO)
				json_object_set_new(o, "len", json_integer((json_int_t)info.specs[r].len));
			json_array_append_new(res, o);
		}
		json_t *d = json_pack("{s:s, s:s, s:o, s:o}", "id", info.id, "type", info.type, "params",
				      params ? params : json_object(), "resources", res);
		json_object_set_new(d, "plugin", info.plugin ? json_string(info.plugin) : json_null());
		json_array_append_new(out, d);
	}
	return 0;
}
