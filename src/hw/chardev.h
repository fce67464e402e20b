/* Character device backends for serial ports: where guest output goes
 * and guest input comes from.
 *
 * The frontend (a UART) calls chardev_write() for output and registers
 * input callbacks with chardev_set_frontend().  Input is flow-controlled:
 * a backend hands over only as many bytes as can_receive() allows, and the
 * frontend calls chardev_accept_input() when it has room again.  Input
 * callbacks run in the backend's thread with the frontend's lock held
 * (vm->dev_lock for devices). */
#ifndef VESSEL_HW_CHARDEV_H
#define VESSEL_HW_CHARDEV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct chardev;

struct chardev_ops {
	void (*write)(struct chardev *cd, const uint8_t *buf, size_t len);
	/* The frontend has room again: resume reading input. */
	void (*accept_input)(struct chardev *cd);
	/* Called once the frontend is set: start input. 0 or -errno. */
	int (*start)(struct chardev *cd);
	void (*destroy)(struct chardev *cd);
};

struct chardev {
	const struct chardev_ops *ops;
	/* Frontend, set by chardev_set_frontend(). */
	size_t (*can_receive)(void *opaque);
	void (*receive)(void *opaque, const uint8_t *buf, size_t len);
	void *fe_opaque;
	pthread_mutex_t *fe_lock;
};

void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len);
void chardev_accept_input(struct chardev *cd);
int chardev_set_frontend(struct chardev *cd, size_t (*can_receive)(void *), void (*receive)(void *, const uint8_t *, size_t),
			 void *opaque, pthread_mutex_t *lock);
/* Drops the frontend (with its lock held); input is then discarded. */
void chardev_detach(struct chardev *cd);
void chardev_free(struct chardev *cd);

/* Backend on file descriptors: output to out_fd, input from in_fd (-1:
 * none), read by a thread of its own.  The descriptors stay the caller's. */
struct chardev *chardev_fd_new(int in_fd, int out_fd);
/* Discards output, never has input. */
struct chardev *chardev_null_new(void);

#endif
