/* The host's AC and battery state (see host_power.h).
 *
 * Linux's power-supply class (Documentation/ABI/testing/sysfs-class-power)
 * has one directory per supply with a "type": "Mains" and "USB" supplies
 * say with "online" whether they feed the machine, a "Battery" reports
 * "status", "capacity" (percent) and its charge either as energy
 * (energy_* in µWh, power_now in µW) or as charge (charge_* in µAh,
 * current_now in µA).  The guest's battery gets the first system battery
 * (by name; a "scope" of "Device" is a peripheral's, such as a mouse's)
 * in the units of _BIF/_BST (mWh or mAh, mV).  sysfs attributes give no
 * inotify events, hence the poll. */
#include "vmm/host_power.h"

#include "util/error.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct host_power {
	char *dir;
	unsigned period_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct power_supply_status st;   /* the latest read, under lock */
	struct power_supply_source source;
};

/* The first line of dir/name/attr into buf; false if there is none. */
static bool read_attr(const char *dir, const char *name, const char *attr, char *buf, size_t cap)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

/* A non-negative number attribute, or -1. */
static long long read_num(const char *dir, const char *name, const char *attr)
{
	char buf[64], *end;
	if (!read_attr(dir, name, attr, buf, sizeof(buf)))
		return -1;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || end == buf || v < 0)
		return -1;
	return v;
}

/* micro-units to the milli-units of _BIF/_BST; unknown stays unknown. */
static uint32_t milli(long long micro)
{
	if (micro < 0 || micro / 1000 >= POWER_SUPPLY_UNKNOWN)
		return POWER_SUPPLY_UNKNOWN;
	return (uint32_t)(micro / 1000);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The battery called name, into out (out->battery false if it reports
 * itself absent). */
static void read_battery(const char *dir, const char *name, struct power_supply_status *out)
{
	char buf[64];
	long long present = read_num(dir, name, "present");
	out->battery = present != 0;   /* no "present": there */
	if (!out->battery)
		return;
	/* Energy (mWh) where the battery reports it, else charge (mAh). */
	const char *full = "energy_full", *design = "energy_full_design", *now = "energy_now", *rate = "power_now";
	if (read_num(dir, name, "energy_full") < 0 && read_num(dir, name, "charge_full") >= 0) {
		full = "charge_full", design = "charge_full_design", now = "charge_now", rate = "current_now";
		out->unit = 1;
	}
	out->full_capacity = milli(read_num(dir, name, full));
	out->design_capacity = milli(read_num(dir, name, design));
	out->remaining = milli(read_num(dir, name, now));
	out->rate = milli(read_num(dir, name, rate));
	out->voltage = milli(read_num(dir, name, "voltage_now"));
	out->design_voltage = milli(read_num(dir, name, "voltage_min_design"));
	long long percent = read_num(dir, name, "capacity");
	if (out->full_capacity == POWER_SUPPLY_UNKNOWN || out->full_capacity == 0) {
		/* Only a percentage: a battery of 10000 mWh shows it exactly. */
		out->unit = 0;
		out->full_capacity = 10000;
		out->remaining = POWER_SUPPLY_UNKNOWN;
	}
	if (out->remaining == POWER_SUPPLY_UNKNOWN && percent >= 0 && percent <= 100)
		/* Rounded up: the OS shows remaining * 100 / full, rounded down. */
		out->remaining = (uint32_t)(((uint64_t)percent * out->full_capacity + 99) / 100);
	if (out->design_capacity == POWER_SUPPLY_UNKNOWN || out->design_capacity == 0)
		out->design_capacity = out->full_capacity;
	out->technology = 1;   /* every laptop battery is rechargeable */
	if (read_attr(dir, name, "status", buf, sizeof(buf))) {
		if (!strcmp(buf, "Discharging"))
			out->state = POWER_SUPPLY_DISCHARGING;
		else if (!strcmp(buf, "Charging"))
			out->state = POWER_SUPPLY_CHARGING;
	}
	if (read_attr(dir, name, "capacity_level", buf, sizeof(buf)) && !strcmp(buf, "Critical"))
		out->state |= POWER_SUPPLY_CRITICAL;
}

int host_power_read(const char *dir, struct power_supply_status *out)
{
	memset(out, 0, sizeof(*out));
	DIR *d = opendir(dir);
	if (!d)
		return err_set(-errno, "%s: %s", dir, strerror(errno));
	char *names[64];
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < sizeof(names) / sizeof(names[0]))
		if (e->d_name[0] != '.' && (names[n] = strdup(e->d_name)))
			n++;
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);
	bool mains = false;
	char buf[64];
	for (unsigned i = 0; i < n; i++) {
		if (!read_attr(dir, names[i], "type", buf, sizeof(buf)))
			continue;
		if (!strcmp(buf, "Mains") || !strcmp(buf, "USB")) {
			mains = true;
			if (read_num(dir, names[i], "online") > 0)
				out->ac_online = true;
		} else if (!strcmp(buf, "Battery") && !out->battery) {
			char scope[32];
			if (read_attr(dir, names[i], "scope", scope, sizeof(scope)) && !strcmp(scope, "Device"))
				continue;
			read_battery(dir, names[i], out);
		}
	}
	for (unsigned i = 0; i < n; i++)
		free(names[i]);
	/* A host with no mains supply listed runs on mains unless its
	 * battery says it discharges (a desktop lists nothing at all). */
	if (!mains)
		out->ac_online = !(out->battery && (out->state & POWER_SUPPLY_DISCHARGING));
	return 0;
}

static void source_get(void *opaque, struct power_supply_status *out)
{
	struct host_power *hp = opaque;
	pthread_mutex_lock(&hp->lock);
	*out = hp->st;
	pthread_mutex_unlock(&hp->lock);
}

static void *host_power_thread(void *opaque)
{
	struct host_power *hp = opaque;
	pthread_mutex_lock(&hp->lock);
	while (!hp->stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)(hp->period_ms % 1000) * 1000000L;
		until.tv_sec += hp->period_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!hp->stop && pthread_cond_timedwait(&hp->cond, &hp->lock, &until) != ETIMEDOUT)
			;
		if (hp->stop)
			break;
		/* The files are read without the lock: a slow battery (an
		 * embedded controller) holds up no reader of the last state. */
		pthread_mutex_unlock(&hp->lock);
		struct power_supply_status st;
		int rc = host_power_read(hp->dir, &st);
		if (rc < 0)
			log_debug("power", "host power status: %s", err_msg());
		pthread_mutex_lock(&hp->lock);
		if (rc == 0)
			hp->st = st;
	}
	pthread_mutex_unlock(&hp->lock);
	return NULL;
}

int host_power_start(const char *dir, unsigned period_ms, struct host_power **out)
{
	struct host_power *hp = calloc(1, sizeof(*hp));
	if (!hp || !(hp->dir = strdup(dir))) {
		free(hp);
		return err_set(-ENOMEM, "out of memory");
	}
	int rc = host_power_read(dir, &hp->st);
	if (rc < 0) {
		free(hp->dir);
		free(hp);
		return rc;
	}
	hp->period_ms = period_ms ? period_ms : HOST_POWER_POLL_MS;
	hp->source = (struct power_supply_source){ .get = source_get, .opaque = hp };
	pthread_mutex_init(&hp->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hp->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = pthread_create(&hp->thread, NULL, host_power_thread, hp)) != 0) {
		pthread_cond_destroy(&hp->cond);
		pthread_mutex_destroy(&hp->lock);
		free(hp->dir);
		free(hp);
		return err_set(-rc, "cannot start the host power thread: %s", strerror(rc));
	}
	log_debug("power", "host power status from %s: AC %s, %s", dir, hp->st.ac_online ? "online" : "offline",
		  hp->st.battery ? "a battery" : "no battery");
	*out = hp;
	return 0;
}

void host_power_stop(struct host_power *hp)
{
	if (!hp)
		return;
	pthread_mutex_lock(&hp->lock);
	hp->stop = true;
	pthread_cond_signal(&hp->cond);
	pthread_mutex_unlock(&hp->lock);
	pthread_join(hp->thread, NULL);
	pthread_cond_destroy(&hp->cond);
	pthread_mutex_destroy(&hp->lock);
	free(hp->dir);
	free(hp);
}

const struct power_supply_source *host_power_source(struct host_power *hp)
{
	return hp ? &hp->source : NULL;
}
