/* Client side of the control API (docs/api.md): connect and check the
 * hello, send requests, read replies and events, each step bounded by a
 * timeout.  `vessel ctl` and the power agent use it. */
#ifndef VESSEL_VMM_API_CLIENT_H
#define VESSEL_VMM_API_CLIENT_H

#include "vmm/api.h"

#include <jansson.h>
#include <stddef.h>

struct api_client {
	int fd;
	int timeout_ms;                 /* per read; -1: forever */
	long long deadline_ms;          /* CLOCK_MONOTONIC ms no read outlasts; 0: none */
	size_t len, used;
	char buf[API_MAX_LINE + 1];
};

/* Connects to the socket at path and reads the hello (within timeout_ms),
 * refusing a server of another API version.  0, or -errno with err_set()
 * naming the socket; *hello (may be NULL) gets the hello object. */
int api_client_connect(struct api_client *c, const char *path, int timeout_ms, json_t **hello);
void api_client_close(struct api_client *c);
/* Sends one request (a line of compact JSON).  0 or -errno (err_set). */
int api_client_send(struct api_client *c, json_t *req);
/* The current CLOCK_MONOTONIC time in ms, for deadline_ms. */
long long api_client_now_ms(void);
/* Next line from the server, NUL-terminated, valid until the next call:
 * 1 on success, 0 on EOF, -ETIMEDOUT, -EPROTO (line too long) or -errno. */
int api_client_read_line(struct api_client *c, char **line);
/* Sends {"cmd", "args"} and waits for its reply, skipping events.
 * 0 with *result (new reference, may be NULL) on "ok"; -EREMOTEIO with
 * err_set() to the server's message on an error reply; -EPIPE if the
 * server closed the connection; -ETIMEDOUT. */
int api_client_call(struct api_client *c, const char *cmd, json_t *args, json_t **result);

#endif
