#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[1024];

int err_set(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	return err;
}

int err_wrap(int err, const char *fmt, ...)
{
	char prefix[512], old[sizeof(err_buf)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err_buf, sizeof(old));
	if (old[0])
		snprintf(err_buf, sizeof(err_buf), "%s: %s", prefix, old);
	else
		snprintf(err_buf, sizeof(err_buf), "%s", prefix);
	return err;
}

const char *err_msg(void)
{
	return err_buf[0] ? err_buf : "unknown error";
}

void err_clear(void)
{
	err_buf[0] = 0;
}
