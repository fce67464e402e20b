/* Execution trace output (src/util/trace.h). */
#include "util/trace.h"

#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

unsigned trace_mask;
static FILE *trace_out;
static bool trace_own_file;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;

int trace_parse(const char *spec, unsigned *mask)
{
	static const struct { const char *name; unsigned bit; } kinds[] = {
		{ "insn", TRACE_INSN }, { "block", TRACE_BLOCK }, { "io", TRACE_IO }, { "irq", TRACE_IRQ },
	};
	unsigned m = 0;
	const char *p = spec;
	while (*p) {
		size_t len = strcspn(p, ",");
		unsigned k;
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (strlen(kinds[k].name) == len && strncmp(p, kinds[k].name, len) == 0)
				break;
		if (k == sizeof(kinds) / sizeof(kinds[0]))
			return err_set(-EINVAL, "--trace: unknown kind '%.*s' (expected insn, block, io or irq)", (int)len, p);
		m |= kinds[k].bit;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!m)
		return err_set(-EINVAL, "--trace: no kind given (expected insn, block, io or irq)");
	*mask = m;
	return 0;
}

int trace_start(unsigned mask, const char *path)
{
	FILE *f = stderr;
	if (path) {
		f = fopen(path, "w");
		if (!f)
			return err_set(-errno, "--trace-file: cannot open %s: %s", path, strerror(errno));
		/* Large buffer: a trace is written far faster than a terminal reads. */
		setvbuf(f, NULL, _IOFBF, 1 << 20);
	}
	trace_out = f;
	trace_own_file = path != NULL;
	__atomic_store_n(&trace_mask, mask, __ATOMIC_RELEASE);
	return 0;
}

void trace_stop(void)
{
	__atomic_store_n(&trace_mask, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&trace_lock);
	if (trace_out) {
		fflush(trace_out);
		if (trace_own_file)
			fclose(trace_out);
	}
	trace_out = NULL;
	pthread_mutex_unlock(&trace_lock);
}

void trace_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&trace_lock);
	if (trace_out) {
		vfprintf(trace_out, fmt, ap);
		fputc('\n', trace_out);
	}
	pthread_mutex_unlock(&trace_lock);
	va_end(ap);
}
