/* Character device backends: file descriptors and null. */
#include "hw/chardev.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	if (cd && cd->ops->write && len)
		cd->ops->write(cd, buf, len);
}

void chardev_accept_input(struct chardev *cd)
{
	if (cd && cd->ops->accept_input)
		cd->ops->accept_input(cd);
}

int chardev_set_frontend(struct chardev *cd, size_t (*can_receive)(void *),
			 void (*receive)(void *, const uint8_t *, size_t), void *opaque, pthread_mutex_t *lock)
{
	cd->can_receive = can_receive;
	cd->receive = receive;
	cd->fe_opaque = opaque;
	cd->fe_lock = lock;
	return cd->ops->start ? cd->ops->start(cd) : 0;
}

void chardev_detach(struct chardev *cd)
{
	cd->can_receive = NULL;
	cd->receive = NULL;
	cd->fe_opaque = NULL;
}

void chardev_free(struct chardev *cd)
{
	if (cd)
		cd->ops->destroy(cd);
}

/* ---- null ---- */

static void null_destroy(struct chardev *cd) { free(cd); }
static const struct chardev_ops null_ops = { .destroy = null_destroy };

struct chardev *chardev_null_new(void)
{
	struct chardev *cd = calloc(1, sizeof(*cd));
	if (!cd) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	cd->ops = &null_ops;
	return cd;
}

/* ---- file descriptors ---- */

struct chardev_fd {
	struct chardev cd;
	int in_fd, out_fd;
	int wake[2];          /* pipe: wakes the reader for room or stop */
	pthread_t thread;
	bool running;
	_Atomic bool stop;
};

static void fd_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	struct chardev_fd *f = (struct chardev_fd *)cd;
	if (f->out_fd < 0)
		return;
	while (len) {
		ssize_t n = write(f->out_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;   /* output gone or would block: drop, as a UART with no cable */
		buf += n;
		len -= (size_t)n;
	}
}

static void fd_accept_input(struct chardev *cd)
{
	struct chardev_fd *f = (struct chardev_fd *)cd;
	if (f->wake[1] >= 0) {
		char c = 0;
		ssize_t r = write(f->wake[1], &c, 1);
		(void)r;
	}
}

static void *fd_reader(void *arg)
{
	struct chardev_fd *f = arg;
	struct chardev *cd = &f->cd;
	uint8_t buf[64];
	while (!f->stop) {
		pthread_mutex_lock(cd->fe_lock);
		size_t room = cd->can_receive ? cd->can_receive(cd->fe_opaque) : 0;
		pthread_mutex_unlock(cd->fe_lock);
		struct pollfd pfd[2] = { { f->wake[0], POLLIN, 0 }, { f->in_fd, POLLIN, 0 } };
		/* No room: wait only for the frontend's "accept input" (flow control). */
		int n = poll(pfd, room ? 2 : 1, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN) {
			char drain[32];
			ssize_t r = read(f->wake[0], drain, sizeof(drain));
			(void)r;
		}
		if (!room || !(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t got = read(f->in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));
		if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
			break;   /* end of input */
		if (got < 0)
			continue;
		pthread_mutex_lock(cd->fe_lock);
		if (cd->receive)
			cd->receive(cd->fe_opaque, buf, (size_t)got);
		pthread_mutex_unlock(cd->fe_lock);
	}
	return NULL;
}

static int fd_start(struct chardev *cd)
{
	struct chardev_fd *f = (struct chardev_fd *)cd;
	if (f->in_fd < 0 || f->running || !cd->receive)
		return 0;
	int rc = pthread_create(&f->thread, NULL, fd_reader, f);
	if (rc)
		return err_set(-rc, "cannot start the console input thread: %s", strerror(rc));
	f->running = true;
	return 0;
}

static void fd_destroy(struct chardev *cd)
{
	struct chardev_fd *f = (struct chardev_fd *)cd;
	if (f->running) {
		f->stop = true;
		fd_accept_input(cd);
		pthread_join(f->thread, NULL);
	}
	if (f->wake[0] >= 0)
		close(f->wake[0]);
	if (f->wake[1] >= 0)
		close(f->wake[1]);
	free(f);
}

static const struct chardev_ops fd_ops = {
	.write = fd_write, .accept_input = fd_accept_input, .start = fd_start, .destroy = fd_destroy,
};

struct chardev *chardev_fd_new(int in_fd, int out_fd)
{
	struct chardev_fd *f = calloc(1, sizeof(*f));
	if (!f) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	f->cd.ops = &fd_ops;
	f->in_fd = in_fd;
	f->out_fd = out_fd;
	f->wake[0] = f->wake[1] = -1;
	if (in_fd >= 0 && pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		int e = errno;
		free(f);
		err_set(-e, "cannot create the console wake pipe: %s", strerror(e));
		return NULL;
	}
	return &f->cd;
}
