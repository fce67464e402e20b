#include "vmm/api_client.h"

#include "util/error.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int api_client_connect(struct api_client *c, const char *path, int timeout_ms, json_t **hello)
{
	c->fd = -1;
	c->len = c->used = 0;
	c->timeout_ms = timeout_ms;
	c->deadline_ms = 0;
	if (hello)
		*hello = NULL;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return err_set(-ENAMETOOLONG, "%s: path longer than %zu bytes", path, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		api_client_close(c);
		return err_set(-e, "cannot connect to %s: %s", path, strerror(e));
	}
	char *line;
	int r = api_client_read_line(c, &line);
	json_t *msg = r > 0 ? json_loads(line, 0, NULL) : NULL;
	if (!msg || !json_is_integer(json_object_get(msg, "api"))) {
		json_t *err = json_object_get(json_object_get(msg, "error"), "message");
		err_set(-EPROTO, "%s: %s", path,
			json_is_string(err) ? json_string_value(err)
					    : r == -ETIMEDOUT ? "no hello from the VM in time"
							      : "no hello from the VM (not a vessel API socket?)");
		json_decref(msg);
		api_client_close(c);
		return -EPROTO;
	}
	json_int_t v = json_integer_value(json_object_get(msg, "api"));
	if (v != VESSEL_API_VERSION) {
		err_set(-EPROTO, "%s speaks API version %lld, this client version %d", path, (long long)v,
			VESSEL_API_VERSION);
		json_decref(msg);
		api_client_close(c);
		return -EPROTO;
	}
	if (hello)
		*hello = msg;
	else
		json_decref(msg);
	return 0;
}

void api_client_close(struct api_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int api_client_send(struct api_client *c, json_t *req)
{
	char *text = json_dumps(req, JSON_COMPACT);
	if (!text)
		return err_set(-ENOMEM, "out of memory");
	size_t n = strlen(text);
	text[n] = '\n';   /* over the NUL: send() takes a length */
	ssize_t w = send(c->fd, text, n + 1, MSG_NOSIGNAL);
	int e = errno;
	free(text);
	if (w != (ssize_t)(n + 1))
		return err_set(w < 0 ? -e : -EIO, "cannot send: %s", w < 0 ? strerror(e) : "short write");
	return 0;
}

long long api_client_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int api_client_read_line(struct api_client *c, char **line)
{
	memmove(c->buf, c->buf + c->used, c->len - c->used);
	c->len -= c->used;
	c->used = 0;
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			*nl = 0;
			*line = c->buf;
			c->used = (size_t)(nl - c->buf) + 1;
			return 1;
		}
		if (c->len == API_MAX_LINE)
			return -EPROTO;
		/* Events (a save's progress) keep a connection busy: the
		 * deadline bounds the whole wait, not each read. */
		int wait = c->timeout_ms;
		if (c->deadline_ms) {
			long long left = c->deadline_ms - api_client_now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			if (wait < 0 || left < wait)
				wait = (int)left;
		}
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = read(c->fd, c->buf + c->len, API_MAX_LINE - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ECONNRESET ? 0 : -errno;
		if (n == 0)
			return 0;
		c->len += (size_t)n;
	}
}

int api_client_call(struct api_client *c, const char *cmd, json_t *args, json_t **result)
{
	if (result)
		*result = NULL;
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	if (args)
		json_object_set(req, "args", args);
	int rc = api_client_send(c, req);
	json_decref(req);
	if (rc < 0)
		return rc;
	for (;;) {
		char *line;
		int r = api_client_read_line(c, &line);
		if (r == 0)
			return err_set(-EPIPE, "%s: the VM closed the connection without a reply", cmd);
		if (r == -ETIMEDOUT)
			return err_set(-ETIMEDOUT, "%s: no reply in time", cmd);
		if (r < 0)
			return err_set(r, "%s: cannot read the reply: %s", cmd, strerror(-r));
		json_t *msg = json_loads(line, 0, NULL);
		if (!msg)
			return err_set(-EPROTO, "%s: the VM sent something that is not JSON", cmd);
		if (json_object_get(msg, "event")) {
			json_decref(msg);
			continue;
		}
		if (!json_is_true(json_object_get(msg, "ok"))) {
			json_t *m = json_object_get(json_object_get(msg, "error"), "message");
			err_set(-EREMOTEIO, "%s", json_is_string(m) ? json_string_value(m) : "error");
			json_decref(msg);
			return -EREMOTEIO;
		}
		if (result) {
			*result = json_object_get(msg, "result");
			json_incref(*result);
		}
		json_decref(msg);
		return 0;
	}
}
