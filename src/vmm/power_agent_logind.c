/* The power agent on systemd-logind's D-Bus interface
 * (org.freedesktop.login1.Manager, "Inhibitor Locks" in the logind
 * documentation): a "delay" inhibitor lets the agent act between logind's
 * PrepareForSleep(true) / PrepareForShutdown(true) signal and the system
 * going down, for at most InhibitDelayMaxUSec; closing the inhibitor's
 * file descriptor tells logind that the agent is done. */
#include "vmm/power_agent.h"

#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#define LOGIND "org.freedesktop.login1"
#define LOGIND_PATH "/org/freedesktop/login1"
#define LOGIND_MANAGER "org.freedesktop.login1.Manager"
/* logind's default InhibitDelayMaxUSec (logind.conf(5)). */
#define DELAY_DEFAULT_MS 5000
/* Left between the agent's deadline and logind's: the release itself. */
#define RELEASE_MARGIN_MS 250

struct serve {
	struct power_agent *a;
	const struct power_agent_options *opt;
	sd_bus *bus;
	int fd[2];            /* inhibitor per power_event; -1 when not held */
	int deadline_ms;
};

static const char *const what[] = { [POWER_EVENT_SLEEP] = "sleep", [POWER_EVENT_SHUTDOWN] = "shutdown" };

static int inhibit(struct serve *s, enum power_event ev)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int rc = sd_bus_call_method(s->bus, LOGIND, LOGIND_PATH, LOGIND_MANAGER, "Inhibit", &err, &reply, "ssss",
				    what[ev], "vessel", "Suspend, save or pause the virtual machines first", "delay");
	int fd = -1;
	if (rc >= 0)
		rc = sd_bus_message_read(reply, "h", &fd);
	if (rc >= 0) {
		/* The reply owns its descriptor: keep a copy. */
		s->fd[ev] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		rc = s->fd[ev] < 0 ? -errno : 0;
	}
	if (rc < 0)
		power_agent_log(s->a, "cannot take logind's %s inhibitor: %s", what[ev],
				err.message ? err.message : strerror(-rc));
	sd_bus_error_free(&err);
	sd_bus_message_unref(reply);
	return rc;
}

static void release(struct serve *s, enum power_event ev)
{
	if (s->fd[ev] >= 0) {
		close(s->fd[ev]);
		s->fd[ev] = -1;
		power_agent_log(s->a, "released the %s inhibitor", what[ev]);
	}
}

static void on_prepare(struct serve *s, enum power_event ev, bool start)
{
	if (start) {
		power_agent_prepare(s->a, ev, s->deadline_ms);
		release(s, ev);
	} else {
		/* Back from sleep, or a shutdown was cancelled. */
		power_agent_resume(s->a, s->opt->resume_deadline_ms);
		if (s->fd[ev] < 0)
			inhibit(s, ev);
	}
}

static int on_signal(sd_bus_message *m, void *opaque, sd_bus_error *ret)
{
	(void)ret;
	struct serve *s = opaque;
	int start = 0;
	if (sd_bus_message_read(m, "b", &start) < 0)
		return 0;
	enum power_event ev = !strcmp(sd_bus_message_get_member(m), "PrepareForSleep") ? POWER_EVENT_SLEEP
										      : POWER_EVENT_SHUTDOWN;
	on_prepare(s, ev, start);
	return 0;
}

int power_agent_serve(struct power_agent *a, const struct power_agent_options *opt)
{
	struct serve s = { .a = a, .opt = opt, .fd = { -1, -1 } };
	int rc = sd_bus_open_system(&s.bus);
	if (rc < 0)
		return err_set(rc, "cannot reach the system bus: %s", strerror(-rc));
	uint64_t usec = 0;
	sd_bus_error err = SD_BUS_ERROR_NULL;
	int delay_ms = DELAY_DEFAULT_MS;
	if (sd_bus_get_property_trivial(s.bus, LOGIND, LOGIND_PATH, LOGIND_MANAGER, "InhibitDelayMaxUSec", &err, 't',
					&usec) >= 0 && usec)
		delay_ms = usec / 1000 > 0x7fffffff ? 0x7fffffff : (int)(usec / 1000);
	sd_bus_error_free(&err);
	s.deadline_ms = delay_ms - RELEASE_MARGIN_MS;
	if (opt->deadline_ms > 0 && opt->deadline_ms < s.deadline_ms)
		s.deadline_ms = opt->deadline_ms;
	if (s.deadline_ms < 100)
		s.deadline_ms = 100;
	static const char *const members[] = { "PrepareForSleep", "PrepareForShutdown" };
	for (unsigned i = 0; i < 2 && rc >= 0; i++)
		rc = sd_bus_match_signal(s.bus, NULL, LOGIND, LOGIND_PATH, LOGIND_MANAGER, members[i], on_signal, &s);
	if (rc < 0) {
		err_set(rc, "cannot subscribe to logind's signals: %s", strerror(-rc));
		goto out;
	}
	if (inhibit(&s, POWER_EVENT_SLEEP) < 0 || inhibit(&s, POWER_EVENT_SHUTDOWN) < 0) {
		rc = err_set(-EACCES, "logind refused the delay inhibitors");
		goto out;
	}
	power_agent_log(a, "holding delay inhibitors for sleep and shutdown (deadline %.1f s, registry %s)",
			s.deadline_ms / 1000.0, a->dir);
	while (!*opt->quit) {
		rc = sd_bus_process(s.bus, NULL);
		if (rc < 0) {
			err_set(rc, "the system bus failed: %s", strerror(-rc));
			goto out;
		}
		if (rc > 0)
			continue;
		rc = sd_bus_wait(s.bus, 500000);
		if (rc < 0 && rc != -EINTR) {
			err_set(rc, "the system bus failed: %s", strerror(-rc));
			goto out;
		}
	}
	rc = 0;
out:
	release(&s, POWER_EVENT_SLEEP);
	release(&s, POWER_EVENT_SHUTDOWN);
	sd_bus_flush_close_unref(s.bus);
	return rc;
}
