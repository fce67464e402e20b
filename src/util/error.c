#include "util/error.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The message of this thread, on the heap so that no path or reason is
 * ever cut; a thread-specific key frees it when the thread ends. */
static _Thread_local char *err_text;
static _Thread_local char err_oom[96];
static pthread_key_t err_key;
static pthread_once_t err_once = PTHREAD_ONCE_INIT;

static void err_key_free(void *p)
{
	free(p);
}

static void err_key_init(void)
{
	pthread_key_create(&err_key, err_key_free);
}

/* Takes ownership of text (NULL: out of memory while formatting). */
static void err_store(char *text)
{
	pthread_once(&err_once, err_key_init);
	free(err_text);
	err_text = text;
	pthread_setspecific(err_key, text);
	if (!text)
		snprintf(err_oom, sizeof(err_oom), "out of memory while reporting an error");
}

int err_set(int err, const char *fmt, ...)
{
	char *text;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	err_store(text);
	return err;
}

int err_wrap(int err, const char *fmt, ...)
{
	char *prefix, *text = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&prefix, fmt, ap) < 0)
		prefix = NULL;
	va_end(ap);
	if (!prefix) {
		err_store(NULL);
		return err;
	}
	const char *old = err_text;
	size_t n = strlen(prefix);
	/* A message that already starts with this context keeps it once
	 * ("device m1: device m1: ..." said nothing more). */
	if (old && old[0] && strncmp(old, prefix, n) == 0 && (old[n] == ':' || old[n] == 0)) {
		free(prefix);
		return err;
	}
	if (old && old[0]) {
		if (asprintf(&text, "%s: %s", prefix, old) < 0)
			text = NULL;
		free(prefix);
	} else {
		text = prefix;
	}
	err_store(text);
	return err;
}

const char *err_msg(void)
{
	if (err_text && err_text[0])
		return err_text;
	return err_oom[0] ? err_oom : "unknown error";
}

void err_clear(void)
{
	free(err_text);
	err_text = NULL;
	err_oom[0] = 0;
	pthread_once(&err_once, err_key_init);
	pthread_setspecific(err_key, NULL);
}

void err_write_escaped(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	for (; *p; p++) {
		if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			fprintf(f, "\\u%04x", p[1]), p++;   /* a C1 control in UTF-8 (CSI...) */
		else
			fputc(*p, f);
	}
}
