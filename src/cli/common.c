#include "cli/cli.h"
#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line: "vessel SUBCMD: message", control characters in the message
 * (paths, names, values from the user, a file or the guest) escaped. */
static void vprint(const char *subcmd, const char *fmt, va_list ap)
{
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	fprintf(stderr, "vessel%s%s: ", subcmd ? " " : "", subcmd ? subcmd : "");
	err_write_escaped(stderr, msg ? msg : "out of memory while reporting an error");
	fputc('\n', stderr);
	free(msg);
}

int cli_usage_error(const char *subcmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint(subcmd, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

void cli_error(const char *subcmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint(subcmd, fmt, ap);
	va_end(ap);
}

int cli_parse_size(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0 || !isfinite(v))
		return -EINVAL;
	unsigned long long mult = 1;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mult = 1ULL << 10; break;
		case 'm': case 'M': mult = 1ULL << 20; break;
		case 'g': case 'G': mult = 1ULL << 30; break;
		case 't': case 'T': mult = 1ULL << 40; break;
		case 'b': case 'B': mult = 1; break;
		default: return -EINVAL;
		}
		end++;
		/* accept K, KB, KiB, M, MiB... */
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	double bytes = v * (double)mult;
	if (bytes > 18446744073709549568.0 || bytes != floor(bytes))
		return -EINVAL;
	*out = (unsigned long long)bytes;
	return 0;
}
