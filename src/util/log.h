/* Logging: one module for the whole program.
 *
 * Every message carries a level, a subsystem tag and a timestamp (seconds
 * since start).  The threshold comes from VESSEL_LOG (error, warn, info,
 * debug, trace) and is raised by each -v on the command line. */
#ifndef VESSEL_UTIL_LOG_H
#define VESSEL_UTIL_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

extern enum log_level log_threshold;

void log_init(void);                       /* reads VESSEL_LOG */
double log_uptime_seconds(void);           /* seconds since log_init() */
void log_raise_verbosity(int steps);       /* -v, -vv */
int log_parse_level(const char *name, enum log_level *out);
/* Called before a message is written, with the log's lock held: the VMM
 * puts guest console output held back for compounding out first, so that
 * the two keep their order on a shared terminal (docs/compounding.md).
 * NULL removes it.  fn must not log. */
void log_set_flush_hook(void (*fn)(void *opaque), void *opaque);
/* Calls the hook (for messages written to stderr without log_msg). */
void log_flush_before_output(void);
void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_enabled(lvl) ((lvl) <= log_threshold)
#define LOG(lvl, subsys, ...) \
	do { if (log_enabled(lvl)) log_msg(lvl, subsys, __VA_ARGS__); } while (0)
#define log_error(subsys, ...) LOG(LOG_ERROR, subsys, __VA_ARGS__)
#define log_warn(subsys, ...)  LOG(LOG_WARN, subsys, __VA_ARGS__)
#define log_info(subsys, ...)  LOG(LOG_INFO, subsys, __VA_ARGS__)
#define log_debug(subsys, ...) LOG(LOG_DEBUG, subsys, __VA_ARGS__)
#define log_trace(subsys, ...) LOG(LOG_TRACE, subsys, __VA_ARGS__)

#endif
