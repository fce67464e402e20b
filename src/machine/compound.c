#include "machine/compound.h"

#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	unsigned bit;
} mechanisms[] = {
	{ "console", COMPOUND_CONSOLE },
	{ "timer", COMPOUND_TIMER },
	{ "lookahead", COMPOUND_LOOKAHEAD },
	{ "block", COMPOUND_BLOCK },
	{ "net", COMPOUND_NET },
};

#define N_MECH (sizeof(mechanisms) / sizeof(mechanisms[0]))

static int parse_switch(const char *v, size_t len, bool *on)
{
	if (len == 2 && !strncmp(v, "on", 2))
		*on = true;
	else if (len == 3 && !strncmp(v, "off", 3))
		*on = false;
	else
		return -1;
	return 0;
}

int compound_parse(const char *spec, unsigned *out)
{
	unsigned mask = COMPOUND_ALL;
	if (!spec) {
		*out = mask;
		return 0;
	}
	const char *p = spec;
	for (;;) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);
		size_t name_len = eq ? (size_t)(eq - p) : len;
		bool on = true;
		if (len == 0)
			return err_set(-EINVAL, "compound: empty item in '%s' (expected on, off or NAME=on|off)", spec);
		if (!eq && parse_switch(p, len, &on) == 0) {
			mask = on ? COMPOUND_ALL : 0;
		} else {
			unsigned bit = 0;
			for (unsigned i = 0; i < N_MECH; i++)
				if (strlen(mechanisms[i].name) == name_len && !strncmp(p, mechanisms[i].name, name_len))
					bit = mechanisms[i].bit;
			if (!bit)
				return err_set(-EINVAL, "compound: unknown mechanism '%.*s' (expected console, timer, "
						       "lookahead, block or net)", (int)name_len, p);
			if (eq && parse_switch(eq + 1, len - name_len - 1, &on) < 0)
				return err_set(-EINVAL, "compound: '%.*s' is not on or off", (int)(len - name_len - 1),
					       eq + 1);
			mask = on ? mask | bit : mask & ~bit;
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	*out = mask;
	return 0;
}

const char *compound_describe(unsigned mask, char *buf, unsigned n)
{
	size_t used = 0;
	if (n)
		buf[0] = 0;
	for (unsigned i = 0; i < N_MECH; i++) {
		if (!(mask & mechanisms[i].bit))
			continue;
		int w = snprintf(buf + used, n > used ? n - used : 0, "%s%s", used ? "," : "", mechanisms[i].name);
		if (w > 0)
			used += (size_t)w;
	}
	if (!used)
		snprintf(buf, n, "off");
	return buf;
}
