/* Control API server: one thread, poll(2) over the listening socket, a
 * wake-up pipe and every client, and one worker thread that runs the long
 * operations (save, device-add, device-remove) one at a time.  Clients are
 * non-blocking with bounded input and output buffers and timeouts, so a
 * slow, idle or hostile client costs at most its own connection and never
 * stalls the VM or the other clients (docs/api.md "Limits"). */
#include "vmm/api.h"

#include "hv/hv_vmbus.h"
#include "hv/hyperv.h"
#include "machine/compound.h"
#include "util/error.h"
#include "util/hostcall.h"
#include "util/log.h"
#include "version.h"
#include "machine/machine.h"
#include "vmm/manifest.h"
#include "vmm/plugin.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Events queued for a client that does not read them: beyond this it is
 * disconnected. */
#define API_MAX_OUTPUT (4u << 20)
/* A client's next request waits while this much output waits for it, so
 * a client that pipelines requests is answered as fast as it reads, and
 * only events can pile up towards API_MAX_OUTPUT. */
#define API_OUTPUT_HIGH (64u << 10)
/* How often the requester of a long operation hears that it still runs. */
#define API_PROGRESS_MS 1000
#define API_SLOTS (API_MAX_CLIENTS + API_RESERVED_CLIENTS)

struct client {
	int fd;
	uint64_t serial;      /* tells a client from a later one in its slot */
	bool reserved;        /* on a reserved slot: control commands only */
	bool events;          /* subscribed to the event stream */
	bool closing;         /* close once the output is flushed */
	bool eof;             /* the peer sent all it will: answer it, then close */
	bool gone;            /* the peer closed entirely: nobody reads replies */
	bool waiting;         /* its long operation runs: its next requests wait */
	bool stalled;         /* its next request waits for another's operation */
	char *in;
	size_t in_off, in_len; /* unprocessed input is in[in_off, in_len) */
	char *out;
	size_t out_len, out_cap;
	int64_t active_ms;    /* last input, or end of its last operation */
	int64_t out_ms;       /* last time its output moved (while out_len) */
};

enum job_kind { JOB_SAVE, JOB_DEVICE_ADD, JOB_DEVICE_REMOVE, JOB_NUMA_MOVE, JOB_MEMORY_REMOVE };
enum job_phase { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

/* The long operation in progress: the API thread fills it in and queues
 * it, the worker runs it and marks it done, the API thread replies. */
struct job {
	enum job_kind kind;
	const char *cmd;
	uint64_t client;      /* serial of the requester */
	json_t *id;           /* of the request */
	char *arg;            /* save: the file; device-remove: the id */
	struct api_remove_opts remove;   /* device-remove */
	struct vm_device_config dev;   /* device-add */
	unsigned node;                 /* numa-move: the virtual node, */
	uint64_t host_nodes;           /* and where it goes */
	uint64_t gpa;                  /* memory-remove: the piece */
	json_t *result;                /* numa-move, memory-remove: the op's reply */
	struct api_progress progress;
	int64_t start_ms, progress_ms;
	int rc;
	char msg[1024];       /* the worker's err_msg() when rc < 0 */
};

struct api_server {
	char *path;
	int listen_fd;
	int wake[2];
	pthread_t thread;
	const struct vm_control_ops *ops;
	void *opaque;
	struct lifecycle *lc;
	struct api_limits lim;
	int sub_id;
	struct client *clients[API_SLOTS];
	uint64_t next_serial;
	pthread_mutex_t ev_lock;
	json_t *pending;      /* events queued by other threads */
	atomic_bool stop;
	/* The worker and its job. */
	pthread_t worker;
	pthread_mutex_t job_lock;
	pthread_cond_t job_cond;
	enum job_phase phase; /* under job_lock */
	bool worker_stop;     /* under job_lock */
	bool job_active;      /* API thread only: job is in use */
	struct job job;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

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
	if (c->gone)
		return;
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
	if (!c->out_len)
		c->out_ms = mono_ms();
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
		c->out_ms = mono_ms();
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
	case ETIMEDOUT: return "timeout";
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
	for (unsigned i = 0; i < API_SLOTS; i++)
		if (srv->clients[i] && srv->clients[i]->events)
			client_send_json(srv->clients[i], ev);
}

static void wake_server(struct api_server *srv, char why)
{
	ssize_t n = write(srv->wake[1], &why, 1);
	(void)n; /* a full pipe already means "wake up" */
}

/* Lifecycle subscriber: runs on whichever thread made the transition, so
 * it only queues the event and wakes the server thread. */
static void on_transition(void *opaque, enum vm_state from, enum vm_state to, const char *reason)
{
	struct api_server *srv = opaque;
	json_t *ev = json_pack("{s:s, s:s, s:s, s:f}", "event", "state", "from", vm_state_name(from), "to",
			       vm_state_name(to), "time", now_seconds());
	json_object_set_new(ev, "reason", reason ? json_string(reason) : json_null());
	const char *cause = lifecycle_reason_cause(reason);
	json_object_set_new(ev, "cause", cause ? json_string(cause) : json_null());
	pthread_mutex_lock(&srv->ev_lock);
	json_array_append_new(srv->pending, ev);
	pthread_mutex_unlock(&srv->ev_lock);
	wake_server(srv, 'e');
}

/* ---- long operations ---- */

static void *worker_thread(void *arg)
{
	struct api_server *srv = arg;
	struct job *j = &srv->job;
	pthread_mutex_lock(&srv->job_lock);
	for (;;) {
		while (srv->phase != JOB_QUEUED && !srv->worker_stop)
			pthread_cond_wait(&srv->job_cond, &srv->job_lock);
		if (srv->phase != JOB_QUEUED)
			break;
		srv->phase = JOB_RUNNING;
		pthread_mutex_unlock(&srv->job_lock);
		err_clear();
		switch (j->kind) {
		case JOB_SAVE: j->rc = srv->ops->save(srv->opaque, j->arg); break;
		case JOB_DEVICE_ADD: j->rc = srv->ops->device_add(srv->opaque, &j->dev); break;
		case JOB_DEVICE_REMOVE: j->rc = srv->ops->device_remove(srv->opaque, j->arg, &j->remove); break;
		case JOB_NUMA_MOVE:
			j->rc = srv->ops->numa_move(srv->opaque, j->node, j->host_nodes, &j->progress, j->result);
			break;
		case JOB_MEMORY_REMOVE:
			j->rc = srv->ops->memory_remove(srv->opaque, j->gpa, j->remove.timeout_ms, j->result);
			break;
		}
		if (j->rc < 0)
			snprintf(j->msg, sizeof(j->msg), "%s", err_msg()[0] ? err_msg() : strerror(-j->rc));
		pthread_mutex_lock(&srv->job_lock);
		srv->phase = JOB_DONE;
		wake_server(srv, 'j');
	}
	pthread_mutex_unlock(&srv->job_lock);
	return NULL;
}

static struct client *client_by_serial(struct api_server *srv, uint64_t serial)
{
	for (unsigned i = 0; i < API_SLOTS; i++)
		if (srv->clients[i] && srv->clients[i]->serial == serial)
			return srv->clients[i];
	return NULL;
}

static void send_progress(struct api_server *srv, struct client *c, const char *stage)
{
	const struct job *j = &srv->job;
	json_t *ev = json_pack("{s:s, s:s, s:s, s:f, s:f}", "event", "progress", "cmd", j->cmd, "stage", stage,
			       "elapsed", (double)(mono_ms() - j->start_ms) / 1000.0, "time", now_seconds());
	json_object_set(ev, "request", j->id ? j->id : json_null());
	uint64_t total = atomic_load(&j->progress.total);
	if (total) {
		json_object_set_new(ev, "done", json_integer((json_int_t)atomic_load(&j->progress.done)));
		json_object_set_new(ev, "total", json_integer((json_int_t)total));
	}
	client_send_json(c, ev);
	json_decref(ev);
}

/* A long operation while another runs: refused, naming the one that runs. */
static bool job_refuse_busy(struct api_server *srv, struct client *c, json_t *id)
{
	if (!srv->job_active)
		return false;
	char msg[160];
	snprintf(msg, sizeof(msg), "a %s is in progress (for %.1f s); try again when it ends", srv->job.cmd,
		 (double)(mono_ms() - srv->job.start_ms) / 1000.0);
	reply_error(c, id, "busy", msg);
	return true;
}

/* Hands srv->job (kind-specific fields already set, arg copied in when
 * given) to the worker; the client's next requests wait for its reply. */
static void job_start(struct api_server *srv, struct client *c, json_t *id, enum job_kind kind, const char *cmd,
		      const char *arg)
{
	struct job *j = &srv->job;
	if (arg && !(j->arg = strdup(arg))) {
		reply_error(c, id, "failed", "out of memory");
		return;
	}
	j->kind = kind;
	j->cmd = cmd;
	j->client = c->serial;
	j->id = id ? json_incref(id) : NULL;
	j->start_ms = j->progress_ms = mono_ms();
	j->rc = 0;
	j->msg[0] = 0;
	srv->job_active = true;
	c->waiting = true;
	send_progress(srv, c, "started");
	log_debug("api", "%s: started", cmd);
	pthread_mutex_lock(&srv->job_lock);
	srv->phase = JOB_QUEUED;
	pthread_cond_broadcast(&srv->job_cond);
	pthread_mutex_unlock(&srv->job_lock);
}

/* A finished operation: its reply (if the requester is still there), its
 * event, and the way clear for the next one. */
static void job_finish(struct api_server *srv)
{
	pthread_mutex_lock(&srv->job_lock);
	bool done = srv->phase == JOB_DONE;
	pthread_mutex_unlock(&srv->job_lock);
	if (!done)
		return;
	struct job *j = &srv->job;
	struct client *c = client_by_serial(srv, j->client);
	json_t *ev = NULL;
	if (c) {
		c->waiting = false;
		c->active_ms = mono_ms();
	}
	for (unsigned i = 0; i < API_SLOTS; i++)
		if (srv->clients[i])
			srv->clients[i]->stalled = false;
	if (j->rc < 0) {
		if (c)
			reply_error(c, j->id, errno_code(j->rc), j->msg);
	} else if (j->kind == JOB_SAVE) {
		if (c)
			reply_ok(c, j->id, json_pack("{s:s}", "file", j->arg));
	} else if (j->kind == JOB_NUMA_MOVE || j->kind == JOB_MEMORY_REMOVE) {
		if (c)
			reply_ok(c, j->id, json_incref(j->result));
		ev = json_deep_copy(j->result);
		json_object_set_new(ev, "event", json_string(j->kind == JOB_NUMA_MOVE ? "numa-moved" : "memory-removed"));
		json_object_set_new(ev, "time", json_real(now_seconds()));
	} else {
		const char *dev_id = j->kind == JOB_DEVICE_ADD ? j->dev.id : j->arg;
		if (c)
			reply_ok(c, j->id, json_pack("{s:s}", "id", dev_id));
		if (j->kind == JOB_DEVICE_ADD)
			ev = json_pack("{s:s, s:s, s:s, s:f}", "event", "device-added", "id", dev_id, "type", j->dev.type,
				       "time", now_seconds());
		else
			ev = json_pack("{s:s, s:s, s:f}", "event", "device-removed", "id", dev_id, "time", now_seconds());
	}
	if (ev) {
		broadcast_event(srv, ev);
		json_decref(ev);
	}
	log_debug("api", "%s: %s", j->cmd, j->rc < 0 ? j->msg : "done");
	json_decref(j->id);
	free(j->arg);
	if (j->kind == JOB_DEVICE_ADD)
		vm_device_config_free(&j->dev);
	json_decref(j->result);
	memset(j, 0, sizeof(*j));
	srv->job_active = false;
	pthread_mutex_lock(&srv->job_lock);
	srv->phase = JOB_IDLE;
	pthread_mutex_unlock(&srv->job_lock);
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
static const unsigned live_states = ST(RUNNING) | ST(PAUSED);

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

/* A command's gate: its op offered, no other long operation (long_op), the
 * VM in ok_states (verb NULL: checked later); false once refused. */
static bool admit(struct request *rq, bool op, const char *name, bool long_op, const char *verb, unsigned ok_states,
		  const char *hint)
{
	return need_op(rq, op, name) == 0 && !(long_op && job_refuse_busy(rq->srv, rq->client, rq->id)) &&
	       (!verb || check_state(rq, verb, ok_states, hint) == 0);
}

static void cmd_status(struct request *rq)
{
	struct api_server *srv = rq->srv;
	json_t *r = json_pack("{s:s, s:I, s:i}", "state", vm_state_name(lifecycle_state(srv->lc)), "transitions",
			      (json_int_t)lifecycle_transitions(srv->lc), "api", VESSEL_API_VERSION);
	json_object_set_new(r, "operation",
			    srv->job_active ? json_pack("{s:s, s:f}", "cmd", srv->job.cmd, "elapsed",
							(double)(mono_ms() - srv->job.start_ms) / 1000.0)
					    : json_null());
	if (srv->ops->status)
		srv->ops->status(srv->opaque, r);
	reply_ok(rq->client, rq->id, r);
}

#define SIMPLE_CMD(NAME, FIELD, STATES, HINT)                                        \
	static void cmd_##FIELD(struct request *rq)                                  \
	{                                                                            \
		if (!admit(rq, rq->srv->ops->FIELD != NULL, NAME, false, NAME, STATES, HINT)) \
			return;                                                      \
		err_clear();                                                         \
		finish(rq, rq->srv->ops->FIELD(rq->srv->opaque), NULL);              \
	}

SIMPLE_CMD("pause", pause, ST(RUNNING), NULL)
SIMPLE_CMD("resume", resume, ST(PAUSED) | ST(POWERING_DOWN), NULL)

/* powerdown [method]: "auto" (the default) asks through the guest OS's
 * VMBus shutdown service when the guest has opened it, else presses the
 * ACPI power button; "guest-os" only through the service (docs/api.md). */
static void cmd_powerdown(struct request *rq)
{
	json_t *m = json_object_get(rq->args, "method");
	const char *method = m ? json_string_value(m) : "auto";
	if (!method || (strcmp(method, "auto") && strcmp(method, "guest-os"))) {
		reply_error(rq->client, rq->id, "invalid-argument", "args.method: expected \"auto\" or \"guest-os\"");
		return;
	}
	bool guest_os = !strcmp(method, "guest-os");
	if (!admit(rq, (guest_os ? (void *)rq->srv->ops->powerdown_guest_os : (void *)rq->srv->ops->powerdown) != NULL,
		   "powerdown", false, "powerdown", guest_os ? ST(RUNNING) : ST(RUNNING) | ST(SUSPENDED),
		   " (the guest must run to see the power button; resume it first)"))
		return;
	err_clear();
	finish(rq, guest_os ? rq->srv->ops->powerdown_guest_os(rq->srv->opaque) : rq->srv->ops->powerdown(rq->srv->opaque),
	       NULL);
}
SIMPLE_CMD("poweroff", poweroff,
	   ST(INITIALIZING) | ST(POWERING_UP) | ST(LOADING_STATE) | ST(RUNNING) | ST(PAUSED) | ST(SAVING_STATE) |
		   ST(POWERING_DOWN) | ST(SUSPENDED), NULL)
SIMPLE_CMD("reset", reset, ST(RUNNING) | ST(PAUSED) | ST(POWERING_DOWN) | ST(SUSPENDED), NULL)
SIMPLE_CMD("wakeup", wakeup, ST(SUSPENDED), " (only a suspended guest wakes)")
SIMPLE_CMD("sleep", sleep, ST(RUNNING) | ST(SUSPENDED),
	   " (the guest must run to see the sleep button; resume it first)")

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

/* args.NAME: an integer from min to max (absent: -1 when optional), else
 * the request is answered with msg and false is returned. */
static bool arg_int(struct request *rq, const char *name, bool optional, json_int_t min, json_int_t max,
		    const char *msg, json_int_t *out)
{
	json_t *v = json_object_get(rq->args, name);
	*out = v ? json_integer_value(v) : -1;
	if ((!v && optional) || (json_is_integer(v) && *out >= min && *out <= max))
		return true;
	reply_error(rq->client, rq->id, "invalid-argument", msg);
	return false;
}

static void cmd_save(struct request *rq)
{
	struct api_server *srv = rq->srv;
	if (!admit(rq, srv->ops->save != NULL, "save", true, NULL, 0, NULL))
		return;
	const char *file = arg_string(rq, "file");
	if (!file || check_state(rq, "save", live_states, NULL) < 0)
		return;
	if (file[0] != '/') {
		/* The server's working directory means nothing to the client. */
		reply_error(rq->client, rq->id, "invalid-argument", "args.file: not an absolute path");
		return;
	}
	/* Writing guest RAM takes a while (seconds for GiBs): on the worker. */
	job_start(srv, rq->client, rq->id, JOB_SAVE, "save", file);
}

/* A request answered by one operation that fills a result object; op
 * NULL: not offered here. */
static void answer_with(struct request *rq, int (*op)(void *opaque, json_t *out), const char *name)
{
	if (need_op(rq, op != NULL, name) < 0)
		return;
	json_t *r = json_object();
	err_clear();
	finish(rq, op(rq->srv->opaque, r), r);
}

static void cmd_stats(struct request *rq)
{
	answer_with(rq, rq->srv->ops->stats, "stats");
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

/* args.timeout of a removal (device-remove, memory-remove): absent, or
 * seconds above 0 and at most an hour; else the request is answered with
 * the error and false is returned. */
static bool timeout_ok(struct request *rq, json_t *timeout)
{
	if (!timeout || (json_is_number(timeout) && json_number_value(timeout) > 0 &&
			 json_number_value(timeout) <= 3600))
		return true;
	reply_error(rq->client, rq->id, "invalid-argument",
		    "args.timeout: not a number of seconds (expected more than 0, at most 3600)");
	return false;
}

/* A checked timeout in ms, at least 1 (0 means the operation's default,
 * which a tiny timeout must not become); 0 when absent. */
static unsigned timeout_ms(json_t *timeout)
{
	unsigned ms = timeout ? (unsigned)(json_number_value(timeout) * 1000.0) : 0;
	return timeout && !ms ? 1 : ms;
}

static const unsigned device_states =
	ST(INITIALIZING) | ST(POWERING_UP) | ST(LOADING_STATE) | ST(RUNNING) | ST(PAUSED) | ST(POWERING_DOWN);

/* A plug-in's create() or destroy() may take its time: both run on the
 * worker. */
static void cmd_device_add(struct request *rq)
{
	struct api_server *srv = rq->srv;
	if (!admit(rq, srv->ops->device_add != NULL, "device-add", true, "add a device", device_states, NULL))
		return;
	json_t *obj = json_object_get(rq->args, "device");
	if (!obj) {
		reply_error(rq->client, rq->id, "invalid-argument",
			    "args.device: missing (expected {\"type\": ..., \"id\": ..., \"params\": {...}})");
		return;
	}
	if (vm_manifest_parse_device(obj, "args.device", &srv->job.dev) < 0) {
		reply_error(rq->client, rq->id, "invalid-argument", err_msg());
		return;
	}
	job_start(srv, rq->client, rq->id, JOB_DEVICE_ADD, "device-add", NULL);
}

static void cmd_device_remove(struct request *rq)
{
	struct api_server *srv = rq->srv;
	if (!admit(rq, srv->ops->device_remove != NULL, "device-remove", true, NULL, 0, NULL))
		return;
	const char *id = arg_string(rq, "id");
	if (!id || check_state(rq, "remove a device", device_states, NULL) < 0)
		return;
	json_t *force = json_object_get(rq->args, "force"), *timeout = json_object_get(rq->args, "timeout");
	if (force && !json_is_boolean(force)) {
		reply_error(rq->client, rq->id, "invalid-argument", "args.force: not a boolean");
		return;
	}
	if (!timeout_ok(rq, timeout))
		return;
	srv->job.remove.force = force && json_is_true(force);
	srv->job.remove.timeout_ms = timeout_ms(timeout);
	job_start(srv, rq->client, rq->id, JOB_DEVICE_REMOVE, "device-remove", id);
}

/* args.node: a virtual node; args.host_nodes: a host node number or a
 * list of them. */
static void cmd_numa_move(struct request *rq)
{
	struct api_server *srv = rq->srv;
	json_int_t node;
	if (!admit(rq, srv->ops->numa_move != NULL, "numa-move", true, "move a numa node", live_states, NULL) ||
	    !arg_int(rq, "node", false, 0, 1023, "args.node: missing or not a node number", &node))
		return;
	json_t *hosts = json_object_get(rq->args, "host_nodes");
	uint64_t mask = 0;
	json_t *one = hosts;
	size_t i = 0, n = json_is_array(hosts) ? json_array_size(hosts) : 1;
	for (; i < n; i++) {
		if (json_is_array(hosts))
			one = json_array_get(hosts, i);
		if (!json_is_integer(one) || json_integer_value(one) < 0 || json_integer_value(one) > 63)
			break;
		mask |= 1ull << json_integer_value(one);
	}
	if (i < n || !mask) {
		reply_error(rq->client, rq->id, "invalid-argument",
			    "args.host_nodes: missing or not a host node number 0-63 (or a list of them)");
		return;
	}
	srv->job.node = (unsigned)node;
	srv->job.host_nodes = mask;
	srv->job.result = json_object();
	atomic_store(&srv->job.progress.done, 0);
	atomic_store(&srv->job.progress.total, 0);
	job_start(srv, rq->client, rq->id, JOB_NUMA_MOVE, "numa-move", NULL);
}

static void cmd_numa_status(struct request *rq)
{
	answer_with(rq, rq->srv->ops->numa_status, "numa-status");
}

/* args.node: a virtual node (optional). */
static void cmd_cpu_add(struct request *rq)
{
	json_int_t node;
	if (!admit(rq, rq->srv->ops->cpu_add != NULL, "cpu-add", false, "cpu-add", live_states, NULL) ||
	    !arg_int(rq, "node", true, 0, 1023, "args.node: not a node number", &node))
		return;
	json_t *r = json_object();
	err_clear();
	finish(rq, rq->srv->ops->cpu_add(rq->srv->opaque, (int)node, r), r);
}

static void cmd_cpu_remove(struct request *rq)
{
	json_int_t cpu;
	if (!admit(rq, rq->srv->ops->cpu_remove != NULL, "cpu-remove", false, "cpu-remove", live_states, NULL) ||
	    !arg_int(rq, "cpu", false, 0, 63, "cpu-remove: cpu: not a CPU number (0 to 63)", &cpu))
		return;
	json_t *r = json_object();
	err_clear();
	finish(rq, rq->srv->ops->cpu_remove(rq->srv->opaque, (unsigned)cpu, r), r);
}

/* args.size: bytes; args.node: a virtual node (optional). */
static void cmd_memory_add(struct request *rq)
{
	json_int_t size, node;
	if (!admit(rq, rq->srv->ops->memory_add != NULL, "memory-add", false, "add memory", live_states, NULL) ||
	    !arg_int(rq, "size", false, 1, INT64_MAX, "args.size: missing or not a number of bytes", &size) ||
	    !arg_int(rq, "node", true, 0, 1023, "args.node: not a node number", &node))
		return;
	json_t *r = json_object();
	err_clear();
	finish(rq, rq->srv->ops->memory_add(rq->srv->opaque, (uint64_t)size, (int)node, r), r);
}

/* args.gpa: where the piece starts; args.timeout: seconds (optional). */
static void cmd_memory_remove(struct request *rq)
{
	struct api_server *srv = rq->srv;
	json_int_t gpa;
	json_t *timeout = json_object_get(rq->args, "timeout");
	if (!admit(rq, srv->ops->memory_remove != NULL, "memory-remove", true, "remove memory", live_states, NULL) ||
	    !arg_int(rq, "gpa", false, 1, INT64_MAX, "args.gpa: missing or not an address", &gpa) ||
	    !timeout_ok(rq, timeout))
		return;
	srv->job.gpa = (uint64_t)gpa;
	srv->job.remove.timeout_ms = timeout_ms(timeout);
	srv->job.result = json_object();
	job_start(srv, rq->client, rq->id, JOB_MEMORY_REMOVE, "memory-remove", NULL);
}

static void cmd_events(struct request *rq)
{
	rq->client->events = true;
	reply_ok(rq->client, rq->id, json_pack("{s:s}", "state", vm_state_name(lifecycle_state(rq->srv->lc))));
}

/* control: allowed on a reserved slot (what must get through when every
 * other slot is taken); lists_devices: waits while a device is added or
 * removed, as the device set changes under it. */
static const struct {
	const char *name;
	void (*run)(struct request *rq);
	bool control, lists_devices;
} commands[] = {
	{ "status", cmd_status, true, false }, { "pause", cmd_pause, true, false },
	{ "resume", cmd_resume, true, false }, { "powerdown", cmd_powerdown, true, false },
	{ "poweroff", cmd_poweroff, true, false }, { "reset", cmd_reset, true, false },
	{ "wakeup", cmd_wakeup, true, false }, { "sleep", cmd_sleep, true, false },
	{ "save", cmd_save, false, false }, { "stats", cmd_stats, false, false },
	{ "device-list", cmd_device_list, false, true }, { "device-add", cmd_device_add, false, false },
	{ "device-remove", cmd_device_remove, false, false }, { "events", cmd_events, false, false },
	{ "numa-move", cmd_numa_move, false, false }, { "numa-status", cmd_numa_status, false, false },
	{ "cpu-add", cmd_cpu_add, false, false }, { "cpu-remove", cmd_cpu_remove, false, false },
	{ "memory-add", cmd_memory_add, false, false }, { "memory-remove", cmd_memory_remove, false, false },
};

/* false: the request must wait for the long operation to end (it stays
 * in the client's buffer and is handled again then). */
static bool handle_line(struct api_server *srv, struct client *c, const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i == len)
		return true; /* blank lines are keep-alives */
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		char msg[256];
		snprintf(msg, sizeof(msg), "not JSON: %s at column %d", jerr.text, jerr.column);
		reply_error(c, NULL, "bad-request", msg);
		return true;
	}
	bool handled = true;
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
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		if (strcmp(commands[k].name, json_string_value(cmd)))
			continue;
		if (c->reserved && !commands[k].control) {
			char msg[256];
			snprintf(msg, sizeof(msg),
				 "all %d client slots are taken: this connection, on a slot reserved for control "
				 "commands, accepts only status, pause, resume, powerdown, poweroff, reset, wakeup and "
				 "sleep",
				 API_MAX_CLIENTS);
			reply_error(c, rq.id, "busy", msg);
		} else if (commands[k].lists_devices && srv->job_active && srv->job.kind != JOB_SAVE) {
			handled = false;
		} else {
			json_t *empty = NULL;
			if (!rq.args)
				rq.args = empty = json_object();
			log_debug("api", "request %s", commands[k].name);
			commands[k].run(&rq);
			json_decref(empty);
		}
		goto out;
	}
	char msg[512], list[384] = "";
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", k ? ", " : "", commands[k].name);
	}
	snprintf(msg, sizeof(msg), "unknown command '%.64s' (expected one of %s)", json_string_value(cmd), list);
	reply_error(c, rq.id, "unknown-command", msg);
out:
	json_decref(req);
	return handled;
}

/* ---- clients ---- */

static bool has_line(const struct client *c)
{
	return memchr(c->in + c->in_off, '\n', c->in_len - c->in_off) != NULL;
}

/* One read; false when the connection failed. */
static bool client_read(struct client *c)
{
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->eof || c->in_len == API_MAX_LINE)
		return true;
	ssize_t n = recv(c->fd, c->in + c->in_len, API_MAX_LINE - c->in_len, MSG_DONTWAIT);
	if (n == 0) {
		/* A half-close ends the requests, not the replies: what came
		 * is answered before the connection closes. */
		c->eof = true;
		return true;
	}
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	c->in_len += (size_t)n;
	c->active_ms = mono_ms();
	/* Only read while no whole line waits: a full buffer is one line. */
	if (c->in_len == API_MAX_LINE && !has_line(c)) {
		reply_error(c, NULL, "bad-request", "request longer than 64 KiB: closing the connection");
		c->closing = true;
		c->in_len = 0;
	}
	return true;
}

/* Answers the client's requests in order, as long as its output drains
 * and no operation of its own runs. */
static void client_process(struct api_server *srv, struct client *c)
{
	while (!c->closing && !c->waiting && !c->stalled && c->out_len < API_OUTPUT_HIGH) {
		char *start = c->in + c->in_off;
		size_t avail = c->in_len - c->in_off, len, used;
		char *nl = memchr(start, '\n', avail);
		if (nl) {
			len = (size_t)(nl - start);
			used = len + 1;
		} else if (c->eof && avail) {
			len = used = avail; /* the last request needs no newline */
		} else if (c->gone && !c->eof) {
			/* No poll for a closed peer: what it sent is there. */
			if (!client_read(c))
				c->eof = true;
			continue;
		} else {
			break;
		}
		if (!handle_line(srv, c, start, len)) {
			c->stalled = true;
			break;
		}
		c->in_off += used;
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
}

static bool client_finished(const struct client *c)
{
	if (c->waiting)
		return false;
	if (c->closing)
		return c->out_len == 0;
	return c->eof && c->out_len == 0 && c->in_off == c->in_len;
}

/* 0 when the client is due to be closed for a timeout, else the
 * milliseconds until it could be (-1: never). */
static int64_t client_deadline(const struct api_server *srv, const struct client *c, int64_t now, const char **why)
{
	if (c->out_len) {
		if (!srv->lim.stall_ms)
			return -1;
		*why = "it read none of its output";
		int64_t left = c->out_ms + srv->lim.stall_ms - now;
		return left > 0 ? left : 0;
	}
	int idle = c->reserved ? srv->lim.reserved_idle_ms : srv->lim.idle_ms;
	if (!idle || c->events || c->waiting || c->eof || c->closing || has_line(c))
		return -1;
	*why = "idle";
	int64_t left = c->active_ms + idle - now;
	return left > 0 ? left : 0;
}

static void accept_client(struct api_server *srv)
{
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* The reserved slots only once every other one is taken. */
	unsigned slot = API_SLOTS;
	for (unsigned i = 0; i < API_SLOTS && slot == API_SLOTS; i++)
		if (!srv->clients[i])
			slot = i;
	struct client *c = slot < API_SLOTS ? calloc(1, sizeof(*c)) : NULL;
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
	c->serial = ++srv->next_serial;
	c->reserved = slot >= API_MAX_CLIENTS;
	c->active_ms = mono_ms();
	srv->clients[slot] = c;
	json_t *hello = json_pack("{s:s, s:i, s:s, s:s}", "hello", "vessel", "api", VESSEL_API_VERSION, "version",
				  VESSEL_VERSION, "state", vm_state_name(lifecycle_state(srv->lc)));
	if (c->reserved)
		json_object_set_new(hello, "control_only", json_true());
	client_send_json(c, hello);
	json_decref(hello);
	client_flush(c);
}

void api_server_post_event(struct api_server *srv, json_t *ev)
{
	if (!srv || !ev) {
		json_decref(ev);
		return;
	}
	json_object_set_new(ev, "time", json_real(now_seconds()));
	pthread_mutex_lock(&srv->ev_lock);
	json_array_append_new(srv->pending, ev);
	pthread_mutex_unlock(&srv->ev_lock);
	wake_server(srv, 'e');
}

static void deliver_pending_events(struct api_server *srv)
{
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

/* Requests, output, timeouts and closing for every client after a
 * wake-up; returns the poll timeout until the next deadline. */
static int service_clients(struct api_server *srv)
{
	int64_t now = mono_ms(), next = -1;
	for (unsigned i = 0; i < API_SLOTS; i++) {
		struct client *c = srv->clients[i];
		if (!c)
			continue;
		client_process(srv, c);
		if (!client_flush(c) || client_finished(c)) {
			client_close(srv, i);
			continue;
		}
		const char *why = NULL;
		int64_t left = client_deadline(srv, c, now, &why);
		if (left == 0) {
			if (!c->out_len) {
				/* Best effort: say why before going. */
				char reason[64];
				snprintf(reason, sizeof(reason), "idle for %.1f s", (double)(now - c->active_ms) / 1000.0);
				json_t *ev = json_pack("{s:s, s:s, s:f}", "event", "closing", "reason", reason, "time",
						       now_seconds());
				client_send_json(c, ev);
				json_decref(ev);
				client_flush(c);
			}
			log_info("api", "closing a client: %s", why);
			client_close(srv, i);
			continue;
		}
		if (left > 0 && (next < 0 || left < next))
			next = left;
		/* Output went out and requests wait that nothing else would
		 * wake us for (their input is read already): go on at once. */
		if (!c->closing && !c->waiting && !c->stalled && c->out_len < API_OUTPUT_HIGH && has_line(c))
			next = 0;
	}
	/* After the clients: a request just read may have started an
	 * operation, whose first progress event is due in a second. */
	if (srv->job_active) {
		struct client *c = client_by_serial(srv, srv->job.client);
		if (now - srv->job.progress_ms >= API_PROGRESS_MS) {
			if (c)
				send_progress(srv, c, "running");
			srv->job.progress_ms = now;
		}
		int64_t due = srv->job.progress_ms + API_PROGRESS_MS - now;
		if (next < 0 || due < next)
			next = due < 0 ? 0 : due;
	}
	return next < 0 ? -1 : next > 60000 ? 60000 : (int)next;
}

static void *server_thread(void *arg)
{
	struct api_server *srv = arg;
	struct pollfd pfd[API_SLOTS + 2];
	unsigned map[API_SLOTS + 2];
	int timeout = -1;
	while (!atomic_load(&srv->stop)) {
		unsigned n = 0;
		pfd[n++] = (struct pollfd){ .fd = srv->wake[0], .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < API_SLOTS; i++) {
			struct client *c = srv->clients[i];
			if (!c || c->gone)
				continue; /* a closed peer would report POLLHUP forever */
			short ev = 0;
			/* Read only while no whole request waits: a client that
			 * does not read its replies, or whose request waits for
			 * an operation, is not read either. */
			if (!c->eof && !c->closing && !has_line(c))
				ev |= POLLIN;
			if (c->out_len)
				ev |= POLLOUT;
			map[n] = i;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_error("api", "poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents) {
			char buf[64];
			while (read(srv->wake[0], buf, sizeof(buf)) > 0)
				;
			deliver_pending_events(srv);
			job_finish(srv);
		}
		for (unsigned p = 2; p < n; p++) {
			struct client *c = srv->clients[map[p]];
			bool alive = !(pfd[p].revents & (POLLERR | POLLNVAL));
			if (alive && (pfd[p].revents & POLLIN))
				alive = client_read(c);
			if (alive && (pfd[p].revents & POLLHUP)) {
				c->gone = true;
				c->out_len = 0;
			}
			if (alive && (pfd[p].revents & POLLOUT))
				alive = client_flush(c);
			if (!alive)
				client_close(srv, map[p]);
		}
		if (pfd[1].revents & POLLIN)
			accept_client(srv);
		timeout = service_clients(srv);
	}
	return NULL;
}

static void stop_worker(struct api_server *srv)
{
	pthread_mutex_lock(&srv->job_lock);
	srv->worker_stop = true;
	pthread_cond_broadcast(&srv->job_cond);
	pthread_mutex_unlock(&srv->job_lock);
	pthread_join(srv->worker, NULL);
}

static const struct api_limits default_limits = {
	.idle_ms = API_IDLE_MS_DEFAULT,
	.stall_ms = API_STALL_MS_DEFAULT,
	.reserved_idle_ms = API_RESERVED_IDLE_MS_DEFAULT,
};

int api_server_start(struct api_server **out, const char *path, const struct vm_control_ops *ops, void *opaque,
		     struct lifecycle *lc)
{
	return api_server_start_with(out, path, ops, opaque, lc, NULL);
}

int api_server_start_with(struct api_server **out, const char *path, const struct vm_control_ops *ops, void *opaque,
			  struct lifecycle *lc, const struct api_limits *limits)
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
	srv->lim = limits ? *limits : default_limits;
	srv->wake[0] = srv->wake[1] = -1;
	srv->sub_id = -1;
	srv->path = strdup(path);
	srv->pending = json_array();
	pthread_mutex_init(&srv->ev_lock, NULL);
	pthread_mutex_init(&srv->job_lock, NULL);
	pthread_cond_init(&srv->job_cond, NULL);
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
	/* Both threads now: nothing is created once the VM runs. */
	if ((rc = -pthread_create(&srv->worker, NULL, worker_thread, srv)) < 0) {
		err_set(rc, "api: cannot start its worker thread");
		lifecycle_unsubscribe(lc, srv->sub_id);
		goto fail_unlink;
	}
	if ((rc = -pthread_create(&srv->thread, NULL, server_thread, srv)) < 0) {
		err_set(rc, "api: cannot start its thread");
		lifecycle_unsubscribe(lc, srv->sub_id);
		stop_worker(srv);
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
	pthread_mutex_destroy(&srv->job_lock);
	pthread_cond_destroy(&srv->job_cond);
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
	wake_server(srv, 's');
	pthread_join(srv->thread, NULL);
	/* An operation in progress ends before the VM goes (the VM side
	 * waits for it too); its requester still gets the reply. */
	stop_worker(srv);
	job_finish(srv);
	/* The last transitions (to off) are what an event watcher waits for:
	 * deliver what is queued before closing. */
	deliver_pending_events(srv);
	for (unsigned i = 0; i < API_SLOTS; i++)
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
	pthread_mutex_destroy(&srv->job_lock);
	pthread_cond_destroy(&srv->job_cond);
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

static double monotonic_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Host system calls by kind (docs/compounding.md "Counting"): the totals,
 * and the rate per second since the previous stats request (the first
 * one: since the process started counting). */
static void add_host_calls(const struct vm *vm, json_t *out)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static uint64_t prev[HOST_CALL_KINDS];
	static double prev_t;
	pthread_mutex_lock(&lock);
	double now = monotonic_seconds();
	if (prev_t == 0)
		prev_t = now - log_uptime_seconds();
	double dt = now - prev_t;
	json_t *calls = json_object(), *rate = json_object();
	for (unsigned k = 0; k < HOST_CALL_KINDS; k++) {
		uint64_t n = host_call_total((enum host_call)k);
		json_object_set_new(calls, host_call_name((enum host_call)k), json_integer((json_int_t)n));
		json_object_set_new(rate, host_call_name((enum host_call)k),
				    json_real(dt > 0 ? (double)(n - prev[k]) / dt : 0.0));
		prev[k] = n;
	}
	prev_t = now;
	pthread_mutex_unlock(&lock);
	json_object_set_new(out, "host_calls", calls);
	json_object_set_new(out, "host_calls_per_second", rate);
	char on[64];
	json_t *c = json_pack("{s:s}", "mechanisms", compound_describe(vm->compound, on, sizeof(on)));
	for (unsigned k = 0; k < COMPOUND_STATS; k++)
		json_object_set_new(c, compound_stat_name((enum compound_stat)k),
				    json_integer((json_int_t)compound_total((enum compound_stat)k)));
	json_object_set_new(out, "compound", c);
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
	add_host_calls(vm, out);
	if (vm->accel && vm->accel->code_stats) {
		struct accel_code_stats cs = { 0 };
		vm->accel->code_stats(vm, &cs);
		json_t *c = json_object();
		const struct { const char *name; uint64_t v; } f[] = {
			{ "cache_bytes", cs.cache_bytes }, { "decoded_bytes", cs.decoded_bytes },
			{ "decoded_peak_bytes", cs.decoded_peak }, { "jit_cache_bytes", cs.jit_cache_bytes },
			{ "translated_bytes", cs.translated_bytes }, { "translated_peak_bytes", cs.translated_peak },
			{ "blocks", cs.blocks }, { "shared_hits", cs.shared_hits }, { "uncached_blocks", cs.uncached },
			{ "evictions", cs.evictions }, { "as_switches", cs.as_switches },
			{ "as_kept", cs.as_kept }, { "as_purged", cs.as_purged },
			{ "tlb_full_flushes", cs.tlb_full_flushes }, { "pt_pages_tracked", cs.pt_tracked },
			{ "pt_deferred", cs.pt_deferred }, { "pt_tracking_restarts", cs.pt_restarts },
			{ "jit_blocks", cs.jit_blocks }, { "jit_flushes", cs.jit_flushes }, { "jit_shared", cs.jit_shared },
			{ "jit_template_insns", cs.jit_template_insns }, { "jit_call_insns", cs.jit_call_insns },
			{ "jit_flags_skipped", cs.jit_flags_skipped }, { "jit_links_near", cs.jit_links_near },
			{ "jit_links_far", cs.jit_links_far },
		};
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			json_object_set_new(c, f[i].name, json_integer((json_int_t)f[i].v));
		json_object_set_new(out, "code_cache", c);
	}
	struct hv_info hv;
	if (hv_get_info(vm, &hv)) {
		char id[24];
		snprintf(id, sizeof(id), "%#" PRIx64, hv.guest_os_id);
		json_t *h = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "guest_os_id", id,
				      "hypercalls", (json_int_t)hv.hypercalls,
				      "crashes", (json_int_t)hv.crashes, "synic_messages", (json_int_t)hv.messages,
				      "synic_queued", (json_int_t)hv.queued, "synic_eoms", (json_int_t)hv.eoms,
				      "synic_events", (json_int_t)hv.events, "auto_eoi", (json_int_t)hv.auto_eoi);
		json_object_set_new(h, "stimer_expirations", json_integer((json_int_t)hv.stimer_expirations));
		json_object_set_new(h, "stimer_direct", json_integer((json_int_t)hv.stimer_direct));
		json_object_set_new(h, "stimer_messages", json_integer((json_int_t)hv.stimer_messages));
		/* By call, TLFS names; calls vessel does not answer are "other". */
		json_t *by = json_object();
		for (unsigned k = 0; k < HV_HC_KIND_COUNT; k++)
			json_object_set_new(by, hv_hypercall_name((enum hv_hc_kind)k),
					    json_integer((json_int_t)hv.hypercalls_by[k]));
		json_object_set_new(h, "hypercalls_by_call", by);
		json_object_set_new(out, "hyperv", h);
	}
	/* VMBus (docs/hyperv.md "VMBus"): the guest's messages and signals,
	 * the host's messages and channel interrupts, what was malformed. */
	struct hv_vmbus_info vb;
	if (hv_vmbus_get_info(vm, &vb)) {
		json_t *b = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "connected", vb.connected,
				      "post_messages", (json_int_t)vb.posts, "signal_events", (json_int_t)vb.signals,
				      "messages_sent", (json_int_t)vb.messages_out, "channel_interrupts",
				      (json_int_t)vb.events_out, "malformed", (json_int_t)vb.bad, "heartbeats",
				      (json_int_t)vb.heartbeats, "time_syncs", (json_int_t)vb.time_syncs,
				      "shutdown_open", vb.shutdown_open);
		json_object_set_new(out, "vmbus", b);
	}
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
