/* The console as the COM1 backend: a struct chardev (src/hw/chardev.h)
 * whose output goes to console_write() and whose input is the console's
 * queue, handed to the UART under its lock as fast as its FIFO allows. */
#include "hw/chardev.h"
#include "util/error.h"
#include "vmm/console.h"

#include <errno.h>
#include <stdlib.h>

struct console_chardev {
	struct chardev cd;
	struct console *con;
};

static void cc_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	console_write(((struct console_chardev *)cd)->con, buf, len);
}

static void cc_accept_input(struct chardev *cd)
{
	console_notify_room(((struct console_chardev *)cd)->con);
}

static void cc_destroy(struct chardev *cd)
{
	struct console_chardev *cc = (struct console_chardev *)cd;
	console_set_sink(cc->con, NULL, NULL);
	free(cc);
}

static const struct chardev_ops cc_ops = {
	.write = cc_write,
	.accept_input = cc_accept_input,
	.destroy = cc_destroy,
};

/* Console sink: offers queued input to the UART. */
static size_t cc_sink(void *opaque, const uint8_t *buf, size_t len)
{
	struct chardev *cd = opaque;
	size_t n = 0;
	if (cd->fe_lock)
		pthread_mutex_lock(cd->fe_lock);
	if (cd->can_receive && cd->receive) {
		n = cd->can_receive(cd->fe_opaque);
		if (n > len)
			n = len;
		if (n)
			cd->receive(cd->fe_opaque, buf, n);
	}
	if (cd->fe_lock)
		pthread_mutex_unlock(cd->fe_lock);
	return n;
}

struct chardev *console_chardev_new(struct console *con)
{
	struct console_chardev *cc = calloc(1, sizeof(*cc));
	if (!cc) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	cc->cd.ops = &cc_ops;
	cc->con = con;
	console_set_sink(con, cc_sink, &cc->cd);
	return &cc->cd;
}
