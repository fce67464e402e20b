#include "util/log.h"

#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum log_level log_threshold = LOG_WARN;

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };
static struct timespec log_start;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*_Atomic flush_hook)(void *);
static void *_Atomic flush_opaque;

void log_set_flush_hook(void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&log_lock);
	flush_opaque = opaque;
	flush_hook = fn;
	pthread_mutex_unlock(&log_lock);
}

static void run_flush_hook(void)
{
	void (*fn)(void *) = flush_hook;
	if (fn)
		fn(flush_opaque);
}

void log_flush_before_output(void)
{
	pthread_mutex_lock(&log_lock);
	run_flush_hook();
	pthread_mutex_unlock(&log_lock);
}

int log_parse_level(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_init(void)
{
	clock_gettime(CLOCK_MONOTONIC, &log_start);
	const char *env = getenv("VESSEL_LOG");
	if (env && *env && log_parse_level(env, &log_threshold) < 0)
		fprintf(stderr, "vessel: ignoring VESSEL_LOG=%s (expected error, warn, info, debug or trace)\n", env);
}

double log_uptime_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - log_start.tv_sec) + (now.tv_nsec - log_start.tv_nsec) / 1e9;
}

void log_raise_verbosity(int steps)
{
	int lvl = (int)log_threshold + steps;
	if (lvl > LOG_TRACE)
		lvl = LOG_TRACE;
	if (lvl > (int)log_threshold)
		log_threshold = (enum log_level)lvl;
}

void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = (double)(now.tv_sec - log_start.tv_sec) + (now.tv_nsec - log_start.tv_nsec) / 1e9;
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&log_lock);
	run_flush_hook();
	/* \r first: the console may be in raw mode, where \n alone does not return the carriage. */
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	fprintf(stderr, "[%10.6f] %-5s %-8s ", t, level_names[lvl], subsys);
	err_write_escaped(stderr, msg ? msg : fmt);   /* one line, whatever the message holds */
	free(msg);
	fputs("\r\n", stderr);
	pthread_mutex_unlock(&log_lock);
	va_end(ap);
}
