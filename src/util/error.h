/* Error reporting convention (docs/architecture.md "Conventions"): functions return 0
 * or a negative errno and leave a human-readable message here; the CLI
 * prints that message as one line. The message is per thread. */
#ifndef VESSEL_UTIL_ERROR_H
#define VESSEL_UTIL_ERROR_H

#include <stdio.h>

/* Sets the message and returns err (a negative errno) for `return err_set(...)`. */
int err_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with context: "ctx: old message". */
int err_wrap(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *err_msg(void);
void err_clear(void);

/* Writes s with its control characters escaped (\n, \r, \t, \xNN; C1
 * controls as \uNNNN): text from users, files and guests never moves the
 * terminal's cursor or changes its state, and a message stays one line. */
void err_write_escaped(FILE *f, const char *s);

#endif
